//! A segment's sparse index as the log uses it: loaded from its index
//! files when both verify and describe the segment as it is, else rebuilt
//! by a scan that checks every frame against the segment's summary (and
//! marked dirty, so that the next roll or close writes it back).

use std::sync::atomic::Ordering;

use tracing::warn;

use crate::error::{Error, Result};
use crate::format::{self, Frame, HEADER_LEN, IndexKind, MarkerKind, decode_index, index_file_name};
use crate::fs::{OpenMode, read_full_at};
use crate::index::SparseIndex;
use crate::log::{Log, Record};
use crate::segment::{FrameCursor, SCAN_CHUNK, Segment, Stop};

impl Log {
    pub(crate) fn stop_error(&self, seg: &Segment, stop: Stop) -> Error {
        match stop {
            Stop::Invalid { pos, why } => Error::corruption(&seg.path, pos, why),
            Stop::Discontinuous { pos, expected, found } => Error::corruption(
                &seg.path,
                pos,
                format!("expected the record with offset {expected}, found offset {found}"),
            ),
            Stop::Torn { pos } => Error::corruption(&seg.path, pos, "a frame runs past the end of the segment's data"),
            Stop::Io(e) => Error::io("reading", seg.path.clone(), e),
        }
    }

    /// The sparse index of `seg`, loading or rebuilding it on first use.
    pub(crate) fn index_of<'a>(&self, seg: &'a Segment) -> Result<&'a SparseIndex> {
        if let Some(ix) = seg.index.get() {
            return Ok(ix);
        }
        let file_len = seg.tail.end_pos + format::MARKER_FRAME_LEN as u64;
        let ix = match self.load_index_files(seg, file_len) {
            Some(ix) => ix,
            None => {
                let ix = self.scan_segment(seg)?;
                seg.index_dirty.store(true, Ordering::Relaxed);
                self.indexes_rebuilt.fetch_add(1, Ordering::Relaxed);
                warn!(segment = %seg.path.display(), "index files missing or stale; rebuilt from the segment");
                ix
            }
        };
        Ok(seg.index.get_or_init(|| ix))
    }

    /// Loads a segment's index files if both verify and describe a segment of
    /// exactly `file_len` bytes.
    pub(crate) fn load_index_files(&self, seg: &Segment, file_len: u64) -> Option<SparseIndex> {
        let mut files = [IndexKind::Offset, IndexKind::Time].map(|kind| {
            let path = self.path_of(&index_file_name(kind, seg.base));
            let f = self.fs.open(&path, OpenMode::Read).ok()?;
            let len = f.len().ok()?;
            // A sane index holds at most one entry per 64 bytes of segment.
            if len > file_len / 4 + 4096 {
                return None;
            }
            let mut buf = vec![0u8; usize::try_from(len).ok()?];
            if read_full_at(&*f, &mut buf, 0).ok()? != buf.len() {
                return None;
            }
            decode_index(kind, &buf).ok().filter(|i| i.base_offset == seg.base && i.end_pos == file_len)
        });
        let times = files[1].take()?;
        let offsets = files[0].take()?;
        if offsets.entries.last().is_some_and(|&(o, p)| o >= seg.tail.next_offset || p >= seg.tail.end_pos) {
            return None;
        }
        SparseIndex::from_files(offsets, times, seg.tail.max_ts, HEADER_LEN)
    }

    /// Reads all of `seg`'s frames, checks them against its summary and
    /// returns its rebuilt index.
    pub(crate) fn scan_segment(&self, seg: &Segment) -> Result<SparseIndex> {
        let src = self.source(seg);
        let mut cursor =
            FrameCursor::new(HEADER_LEN, seg.tail.end_pos, SCAN_CHUNK, &self.meta).expecting(seg.base, seg.sparse);
        let mut ix = SparseIndex::new(HEADER_LEN);
        let mut expect = seg.base;
        let mut n = 0u64;
        let (mut min_ts, mut max_ts) = (u64::MAX, 0u64);
        let interval = self.config.index_interval_bytes;
        loop {
            match cursor.next_frame(&src) {
                Ok(Some((at, Frame::Record(r)))) => {
                    ix.observe(r.offset, at, r.timestamp_ms, interval);
                    min_ts = min_ts.min(r.timestamp_ms);
                    max_ts = max_ts.max(r.timestamp_ms);
                    expect = r.offset + 1;
                    n += 1;
                }
                Ok(Some((at, Frame::Marker(m)))) => {
                    let consistent = !seg.sparse
                        && m.kind != MarkerKind::Seal
                        && m.own_pos == at
                        && m.base_offset == seg.base
                        && m.next_offset == expect
                        && m.n_records == n;
                    if !consistent {
                        return Err(Error::corruption(&seg.path, at, "marker does not match the records before it"));
                    }
                }
                Ok(None) => break,
                Err(stop) => return Err(self.stop_error(seg, stop)),
            }
        }
        let end_ok = if seg.sparse { expect <= seg.tail.next_offset } else { expect == seg.tail.next_offset };
        if !end_ok || n != seg.tail.n_records || (n > 0 && (min_ts, max_ts) != (seg.tail.min_ts, seg.tail.max_ts)) {
            return Err(Error::corruption(
                &seg.path,
                seg.tail.end_pos,
                format!(
                    "the segment holds {n} records up to offset {expect}, but its summary says {} up to {}",
                    seg.tail.n_records, seg.tail.next_offset
                ),
            ));
        }
        Ok(ix)
    }

    /// The byte position and contents of record `offset`, which `seg` holds:
    /// entered through the sparse index, falling back to a scan from the
    /// segment's start if the index pointed somewhere wrong.
    pub(crate) fn locate(&self, seg: &Segment, offset: u64) -> Result<(u64, Record)> {
        let index = self.index_of(seg)?;
        let start = index.floor(offset).unwrap_or((seg.base, HEADER_LEN));
        match self.find_in_segment(seg, offset, start) {
            Err(Error::Corruption { .. }) if start.1 != HEADER_LEN => {
                // The segment may still be fine: a scan from the start decides.
                warn!(segment = %seg.path.display(), "index entry did not match the segment; scanning");
                self.find_in_segment(seg, offset, (seg.base, HEADER_LEN))
            }
            other => other,
        }
    }

    fn find_in_segment(&self, seg: &Segment, offset: u64, (expect, pos): (u64, u64)) -> Result<(u64, Record)> {
        let src = self.source(seg);
        // One index interval plus room for the frame that straddles its end.
        let chunk = self.config.index_interval_bytes as usize + 1024;
        let mut cursor = FrameCursor::new(pos, seg.tail.end_pos, chunk, &self.meta).expecting(expect, seg.sparse);
        loop {
            match cursor.next_frame(&src) {
                Ok(Some((at, Frame::Record(r)))) => {
                    if r.offset == offset {
                        return Ok((at, Record::from_ref(&r)));
                    }
                    if r.offset > offset {
                        return Err(Error::Compacted { offset });
                    }
                }
                Ok(Some((_, Frame::Marker(_)))) => {}
                Ok(None) if seg.sparse => return Err(Error::Compacted { offset }),
                Ok(None) => {
                    return Err(Error::corruption(
                        &seg.path,
                        seg.tail.end_pos,
                        format!("segment ends before offset {offset}, which its summary says it holds"),
                    ));
                }
                Err(stop) => return Err(self.stop_error(seg, stop)),
            }
        }
    }
}
