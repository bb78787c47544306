//! One segment file: its summary, its sparse index, and a cursor that walks
//! its frames.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use crate::format::{self, DecodeError, Frame, HEADER_LEN, Marker, MarkerKind, Meta, RecordRef};
use crate::fs::{FileHandle, read_full_at};
use crate::index::SparseIndex;

/// Summary of one segment, as reported by [`Log::segments`](crate::Log::segments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Offset of the segment's first record (its file name).
    pub base_offset: u64,
    /// Offset of its last record, `None` if it holds none (for a compacted
    /// segment: the last offset it covers, `next_offset - 1`, whose record
    /// compaction may have dropped).
    pub last_offset: Option<u64>,
    /// Number of records.
    pub n_records: u64,
    /// Size in bytes (header, frames and footer; for the active segment,
    /// including accepted bytes not yet written to the file).
    pub bytes: u64,
    /// Smallest record timestamp, `None` if it holds no records.
    pub min_timestamp_ms: Option<u64>,
    /// Largest record timestamp, `None` if it holds no records.
    pub max_timestamp_ms: Option<u64>,
    /// Whether the segment is sealed (immutable, with a footer).
    pub sealed: bool,
    /// Whether key compaction rewrote it: its records' offsets may skip
    /// (the ones compaction dropped); it still covers every offset from
    /// `base_offset` up to `next_offset`.
    pub compacted: bool,
    /// One past the last offset the segment covers (the next segment's
    /// base); more than `last_offset + 1` when compaction dropped the
    /// segment's last records.
    pub next_offset: u64,
    /// The segment file.
    pub path: PathBuf,
}

/// The running summary of a segment's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tail {
    /// Offset the next record gets.
    pub next_offset: u64,
    /// Records in the segment.
    pub n_records: u64,
    /// Smallest record timestamp (`u64::MAX` if none).
    pub min_ts: u64,
    /// Largest record timestamp (0 if none).
    pub max_ts: u64,
    /// Logical end of the segment's frames (where the next frame goes).
    pub end_pos: u64,
}

impl Tail {
    pub fn empty(base: u64) -> Self {
        Self { next_offset: base, n_records: 0, min_ts: u64::MAX, max_ts: 0, end_pos: HEADER_LEN }
    }

    pub fn add_record(&mut self, ts: u64, frame_len: u64) {
        self.add_record_at(self.next_offset, ts, frame_len);
    }

    /// Adds the record at `offset` (≥ `next_offset`; more in a compacted
    /// segment, whose offsets skip).
    pub fn add_record_at(&mut self, offset: u64, ts: u64, frame_len: u64) {
        self.next_offset = offset + 1;
        self.n_records += 1;
        self.min_ts = self.min_ts.min(ts);
        self.max_ts = self.max_ts.max(ts);
        self.end_pos += frame_len;
    }
}

/// A segment known to the log.
#[derive(Debug)]
pub(crate) struct Segment {
    pub base: u64,
    pub path: PathBuf,
    pub file: Arc<dyn FileHandle>,
    pub created_ms: u64,
    /// For a sealed segment, `tail.end_pos` is the position of its footer.
    pub tail: Tail,
    pub sealed: bool,
    /// Compacted (kind 2 in a version-3 header, or version 2): offsets strictly increase but
    /// may skip; always sealed.
    pub sparse: bool,

    /// Loaded lazily for sealed segments; always present for the active one.
    pub index: OnceLock<SparseIndex>,
    /// Set when the index was rebuilt in memory and its files are stale.
    pub index_dirty: AtomicBool,
}

impl Segment {
    pub fn info(&self) -> SegmentInfo {
        let has = self.tail.n_records > 0;
        SegmentInfo {
            base_offset: self.base,
            last_offset: self.tail.next_offset.checked_sub(1).filter(|_| has),
            n_records: self.tail.n_records,
            bytes: self.tail.end_pos + if self.sealed { format::MARKER_FRAME_LEN as u64 } else { 0 },
            min_timestamp_ms: has.then_some(self.tail.min_ts),
            max_timestamp_ms: has.then_some(self.tail.max_ts),
            sealed: self.sealed,
            compacted: self.sparse,
            next_offset: self.tail.next_offset,
            path: self.path.clone(),
        }
    }
}

/// Where a frame walk stopped before its end position.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The bytes at `pos` are not a valid frame.
    Invalid { pos: u64, why: &'static str },
    /// The record frame at `pos` breaks the offset rule (see
    /// [`FrameCursor::expecting`]): it holds `found` where `expected` (or,
    /// in a compacted segment, a later offset) was due.
    Discontinuous { pos: u64, expected: u64, found: u64 },
    /// The frame at `pos` runs past the end of the range.
    Torn { pos: u64 },
    /// Reading failed.
    Io(io::Error),
}

/// Reads bytes of one segment: from its file, or for the active segment from
/// the file and the in-memory write buffer.
pub(crate) trait ByteSource {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize>;
}

/// A whole file as a [`ByteSource`].
pub(crate) struct FileSource<'a>(pub &'a dyn FileHandle);

impl ByteSource for FileSource<'_> {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        read_full_at(self.0, buf, pos)
    }
}

/// Why a walk refuses a record frame of an older epoch.
pub(crate) const STALE_FRAME: &str = "stale record frame: it was written in an older epoch than the log records for its offset (a write after a suffix truncation was lost)";

/// Read size for sequential scans.
pub(crate) const SCAN_CHUNK: usize = 256 << 10;

/// Walks the frames of a byte range `[pos, end)`, reading in chunks.
#[derive(Debug)]
pub(crate) struct FrameCursor {
    /// Read buffer; only `..valid` holds data. Grows, never shrinks, and is
    /// zeroed only when it grows.
    buf: Vec<u8>,
    valid: usize,
    /// File position of `buf[0]`.
    buf_pos: u64,
    /// Position of the next frame.
    pos: u64,
    end: u64,
    /// Bytes to read at a time (more when a frame is larger); doubles on
    /// every refill up to `max_chunk`, so short walks read little and long
    /// scans read big.
    chunk: usize,
    max_chunk: usize,
    /// The last record `next_frame` returned, by position in `buf`, so
    /// that it can be lent again without decoding it twice.
    last: Option<LastRecord>,
    /// The log's metadata, for its epochs: a record frame of an older
    /// epoch than its offset's is stale (left behind by a lost write after
    /// a suffix truncation) and stops the walk like any other invalid frame
    /// ([`Meta::admits`]).
    meta: Meta,
    /// The offset rule, when the walk enforces it.
    rule: Option<OffsetRule>,
}

/// Where the last record a [`FrameCursor`] returned lies in its buffer, and
/// its fixed fields.
#[derive(Debug, Clone, Copy)]
struct LastRecord {
    offset: u64,
    timestamp_ms: u64,
    flags: format::RecordFlags,
    epoch: u16,
    has_key: bool,
    key_at: usize,
    value_at: usize,
    end: usize,
}

/// The offset rule: a plain segment's records are dense from its base
/// (each the one after the last), a compacted segment's only strictly
/// increase. Records at or past `until` end the walk and are not checked.
#[derive(Debug, Clone, Copy)]
struct OffsetRule {
    expect: u64,
    sparse: bool,
    until: u64,
}

impl FrameCursor {
    /// A cursor over `[pos, end)` that reads `chunk` bytes at a time and
    /// admits only record frames of the epoch `meta` gives their offset.
    pub fn new(pos: u64, end: u64, chunk: usize, meta: &Meta) -> Self {
        let chunk = chunk.max(format::MARKER_FRAME_LEN);
        Self {
            buf: Vec::new(),
            valid: 0,
            buf_pos: pos,
            pos,
            end,
            chunk,
            max_chunk: chunk,
            last: None,
            meta: meta.clone(),
            rule: None,
        }
    }

    /// Enforces the offset rule from here on: the next record must hold
    /// `first` (or, `sparse`, a later offset), and each one after it the
    /// offset after its predecessor (or later). A record that breaks it
    /// stops the walk with [`Stop::Discontinuous`].
    pub fn expecting(mut self, first: u64, sparse: bool) -> Self {
        self.rule = Some(OffsetRule { expect: first, sparse, until: u64::MAX });
        self
    }

    /// With [`expecting`](Self::expecting): a record at or past `until` is
    /// returned unchecked (the walk's caller stops there).
    pub fn until(mut self, until: u64) -> Self {
        if let Some(rule) = self.rule.as_mut() {
            rule.until = until;
        }
        self
    }

    /// A cursor that starts with `first` bytes per read and doubles up to
    /// `max` (for scans of unknown length).
    pub fn growing(pos: u64, end: u64, first: usize, max: usize, meta: &Meta) -> Self {
        let mut c = Self::new(pos, end, first, meta);
        c.max_chunk = max.max(c.chunk);
        c
    }

    /// Position of the next frame.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// The next frame (checksum verified) and its position, `Ok(None)` at
    /// exactly `end`.
    pub fn next_frame<'a>(&'a mut self, src: &dyn ByteSource) -> Result<Option<(u64, Frame<'a>)>, Stop> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let remaining = self.end - self.pos;
        let prefix = format::FRAME_PREFIX_LEN as u64;
        if prefix > remaining {
            return Err(Stop::Torn { pos: self.pos });
        }
        if ((self.valid as u64 + self.buf_pos) - self.pos) < prefix {
            self.ensure(src, prefix)?;
        }
        let start = (self.pos - self.buf_pos) as usize;
        let len_bytes: [u8; 4] =
            self.buf.get(start + 4..start + 8).and_then(|s| s.try_into().ok()).ok_or(Stop::Torn { pos: self.pos })?;
        let body_len = u64::from(u32::from_le_bytes(len_bytes));
        if !(4..=format::BODY_LEN_LIMIT).contains(&body_len) {
            return Err(Stop::Invalid { pos: self.pos, why: "frame length out of range" });
        }
        let total = prefix + body_len;
        if total > remaining {
            return Err(Stop::Torn { pos: self.pos });
        }
        if ((self.valid - start) as u64) < total {
            self.ensure(src, total)?;
        }
        let start = (self.pos - self.buf_pos) as usize;
        let end = start + total as usize;
        let bytes = self.buf.get(start..end).ok_or(Stop::Torn { pos: self.pos })?;
        // The length field was checked above against the format's limits.
        match format::decode_sized_frame(bytes) {
            Ok(Frame::Record(r)) if !self.meta.admits(r.offset, r.epoch) => {
                Err(Stop::Invalid { pos: self.pos, why: STALE_FRAME })
            }
            Ok(frame) => {
                if let (Frame::Record(r), Some(rule)) = (&frame, self.rule.as_mut())
                    && r.offset < rule.until
                {
                    if r.offset != rule.expect && !(rule.sparse && r.offset > rule.expect) {
                        return Err(Stop::Discontinuous { pos: self.pos, expected: rule.expect, found: r.offset });
                    }
                    rule.expect = r.offset + 1;
                }
                let at = self.pos;
                self.pos += total;
                self.last = match &frame {
                    Frame::Record(r) => {
                        let key_at = start + format::RECORD_OVERHEAD;
                        let value_at = key_at + r.key.map_or(0, <[u8]>::len);
                        Some(LastRecord {
                            offset: r.offset,
                            timestamp_ms: r.timestamp_ms,
                            flags: r.flags,
                            epoch: r.epoch,
                            has_key: r.key.is_some(),
                            key_at,
                            value_at,
                            end,
                        })
                    }
                    Frame::Marker(_) => None,
                };
                Ok(Some((at, frame)))
            }
            Err(DecodeError::Invalid(why)) => Err(Stop::Invalid { pos: self.pos, why }),
            Err(DecodeError::Incomplete(_)) => Err(Stop::Torn { pos: self.pos }),
            Err(DecodeError::UnknownVersion(_)) => Err(Stop::Invalid { pos: self.pos, why: "unknown frame version" }),
        }
    }

    /// The offset of the next record frame (markers are checked and
    /// skipped), `Ok(None)` at exactly `end`; the record itself is lent by
    /// [`last_record`](Self::last_record). The readers' walk.
    pub fn next_record(&mut self, src: &dyn ByteSource) -> Result<Option<u64>, Stop> {
        loop {
            match self.next_frame(src)? {
                None => return Ok(None),
                Some((_, Frame::Record(r))) => return Ok(Some(r.offset)),
                Some((_, Frame::Marker(_))) => {}
            }
        }
    }

    /// The record last returned by `next_frame` (already verified), again,
    /// without decoding it again; `None` if that frame was a marker.
    pub fn last_record(&self) -> Option<RecordRef<'_>> {
        let l = self.last.as_ref()?;
        let key = if l.has_key { Some(self.buf.get(l.key_at..l.value_at)?) } else { None };
        Some(RecordRef {
            offset: l.offset,
            timestamp_ms: l.timestamp_ms,
            flags: l.flags,
            key,
            value: self.buf.get(l.value_at..l.end)?,
            epoch: l.epoch,
        })
    }

    /// Makes `want` bytes from `pos` available in `buf`, or fails with `Torn`
    /// if the source ends first.
    fn ensure(&mut self, src: &dyn ByteSource, want: u64) -> Result<(), Stop> {
        let start = (self.pos - self.buf_pos) as usize;
        if (self.valid.saturating_sub(start) as u64) >= want {
            return Ok(());
        }
        self.refill(src, want)?;
        if (self.valid as u64) < want {
            return Err(Stop::Torn { pos: self.pos });
        }
        Ok(())
    }

    /// Makes at least `want` bytes from `pos` available (fewer at the end).
    fn refill(&mut self, src: &dyn ByteSource, want: u64) -> Result<(), Stop> {
        let start = ((self.pos - self.buf_pos) as usize).min(self.valid);
        self.buf.copy_within(start..self.valid, 0);
        self.valid -= start;
        self.buf_pos = self.pos;
        self.last = None;
        let remaining = self.end - self.pos;
        let target = want.max(self.chunk as u64).min(remaining) as usize;
        self.chunk = (self.chunk * 2).min(self.max_chunk);
        if self.valid >= target {
            return Err(Stop::Torn { pos: self.pos });
        }
        if self.buf.len() < target {
            self.buf.resize(target, 0);
        }
        let got = src
            .read_at(self.buf.get_mut(self.valid..target).unwrap_or_default(), self.buf_pos + self.valid as u64)
            .map_err(Stop::Io)?;
        self.valid += got;
        if got == 0 {
            return Err(Stop::Torn { pos: self.pos });
        }
        Ok(())
    }
}

/// A marker describing `seg` as it stands.
pub(crate) fn marker(kind: MarkerKind, seg: &Segment, batch_start_pos: u64, now_ms: u64) -> Marker {
    Marker {
        kind,
        next_offset: seg.tail.next_offset,
        timestamp_ms: now_ms,
        n_records: seg.tail.n_records,
        min_ts: seg.tail.min_ts,
        max_ts: seg.tail.max_ts,
        batch_start_pos,
        own_pos: seg.tail.end_pos,
        base_offset: seg.base,
    }
}
