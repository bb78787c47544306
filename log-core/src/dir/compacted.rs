//! Compacted segment files, for compaction (`compact/`) and a suffix cut
//! into compacted data (`dir/cut.rs`): reading a sealed segment as a
//! source (`Source`, `walk`), and writing a compacted segment file
//! (`<base>.log.compacted`, or a cut compacted segment's replacement):
//! records kept, index, seal footer (`Writer`, `cut_compacted`).

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};
use crate::format::{
    self, Frame, HEADER_LEN, MARKER_FRAME_LEN, Marker, MarkerKind, Meta, RecordRef, SegmentHeader, segment_file_name,
};
use crate::fs::{FileHandle, FileSystem, OpenMode, write_all_at};
use crate::index::SparseIndex;
use crate::log::Log;
use crate::segment::{FileSource, FrameCursor, SCAN_CHUNK, Stop, Tail};

/// Writes one compacted segment.
pub(crate) struct Writer {
    fs: Arc<dyn FileSystem>,
    path: PathBuf,
    file: Arc<dyn FileHandle>,
    buf: Vec<u8>,
    /// Bytes of `buf` start at this file position.
    buf_pos: u64,
    pub(crate) tail: Tail,
    index: SparseIndex,
    interval: u32,
    /// CRC32 of the bytes flushed to the file (`0..buf_pos`): with the
    /// file's length, the identity the compaction manifest records.
    crc: crc32fast::Hasher,
}

/// A finished compacted segment file: fsynced, sealed, not yet in place.
pub(crate) struct Written {
    pub(crate) file: Arc<dyn FileHandle>,
    pub(crate) path: PathBuf,
    pub(crate) tail: Tail,
    pub(crate) index: SparseIndex,
    /// The file's identity: its length and the CRC32 of all its bytes.
    pub(crate) identity: format::FileIdentity,
}

pub(crate) struct WriterMark {
    tail: Tail,
    index: crate::index::IndexMark,
}

impl Writer {
    pub(crate) fn create(
        fs: &Arc<dyn FileSystem>,
        path: PathBuf,
        base: u64,
        created_ms: u64,
        interval: u32,
    ) -> Result<Self> {
        let io = |e: io::Error| write_error("creating a compacted segment", &path, e);
        if fs.exists(&path).map_err(io)? {
            fs.remove_file(&path).map_err(io)?;
        }
        let file = fs.open(&path, OpenMode::CreateNew).map_err(io)?;
        let header = SegmentHeader::new(base, created_ms, format::SegmentKind::Compacted);
        let mut buf = Vec::with_capacity(WRITE_CHUNK + 4096);
        buf.extend_from_slice(&header.encode());
        Ok(Writer {
            fs: Arc::clone(fs),
            path,
            file,
            buf,
            buf_pos: 0,
            tail: Tail::empty(base),
            index: SparseIndex::new(HEADER_LEN),
            interval,
            crc: crc32fast::Hasher::new(),
        })
    }

    pub(crate) fn mark(&self) -> WriterMark {
        WriterMark { tail: self.tail, index: self.index.mark() }
    }

    /// Forgets everything written since `m` (a source that did not fit).
    pub(crate) fn rollback(&mut self, m: WriterMark) -> Result<()> {
        if m.tail.end_pos < self.buf_pos {
            self.file.set_len(m.tail.end_pos).map_err(|e| write_error("cutting", &self.path, e))?;
            self.buf.clear();
            self.buf_pos = m.tail.end_pos;
            self.crc = crate::fs::crc_of_prefix(&*self.file, m.tail.end_pos)
                .map_err(|e| write_error("reading back", &self.path, e))?;
        } else {
            self.buf.truncate((m.tail.end_pos - self.buf_pos) as usize);
        }
        self.tail = m.tail;
        self.index.rollback(m.index);
        Ok(())
    }

    pub(crate) fn flush(&mut self) -> Result<()> {
        write_all_at(&*self.file, &self.buf, self.buf_pos).map_err(|e| write_error("writing", &self.path, e))?;
        self.crc.update(&self.buf);
        self.buf_pos += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Copies the records of `src` that `keep` accepts; the output then
    /// covers offsets up to `end` (exclusive).
    pub(crate) fn add_source(
        &mut self,
        src: &Source,
        end: u64,
        mut keep: impl FnMut(&RecordRef<'_>) -> bool,
    ) -> Result<()> {
        let mut failed = None;
        walk(src, |r| {
            if keep(r)
                && let Err(e) = self.add_record(r)
            {
                failed = Some(e);
                return false;
            }
            true
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        self.tail.next_offset = end;
        Ok(())
    }

    /// Appends one record (offsets must increase; gaps are allowed).
    pub(crate) fn add_record(&mut self, r: &RecordRef<'_>) -> Result<()> {
        let at = self.tail.end_pos;
        let before = self.buf.len();
        format::encode_record(&mut self.buf, r);
        let len = (self.buf.len() - before) as u64;
        self.index.observe(r.offset, at, r.timestamp_ms, self.interval);
        self.tail.add_record_at(r.offset, r.timestamp_ms, len);
        if self.buf.len() >= WRITE_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    /// The output covers offsets up to `end` (exclusive), past its last
    /// record if `end` says so.
    pub(crate) fn cover_to(&mut self, end: u64) {
        self.tail.next_offset = self.tail.next_offset.max(end);
    }

    pub(crate) fn abandon(self) {
        let _ = self.fs.remove_file(&self.path);
    }

    /// Writes the footer and fsyncs; on failure removes the file.
    pub(crate) fn finish(mut self, base: u64, now_ms: u64) -> Result<Written> {
        let res = (|| -> Result<()> {
            let m = Marker {
                kind: MarkerKind::Seal,
                next_offset: self.tail.next_offset,
                timestamp_ms: now_ms,
                n_records: self.tail.n_records,
                min_ts: self.tail.min_ts,
                max_ts: self.tail.max_ts,
                batch_start_pos: self.tail.end_pos,
                own_pos: self.tail.end_pos,
                base_offset: base,
            };
            format::encode_marker(&mut self.buf, &m);
            self.flush()?;
            self.file.sync().map_err(|e| write_error("fsyncing", &self.path, e))
        })();
        if let Err(e) = res {
            let _ = self.fs.remove_file(&self.path);
            return Err(e);
        }
        let identity = format::FileIdentity { len: self.buf_pos, crc: self.crc.finalize() };
        Ok(Written { file: self.file, path: self.path, tail: self.tail, index: self.index, identity })
    }
}

impl Log {
    /// Cuts the compacted segment `base` before `offset` (suffix truncation
    /// into compacted data, and recovery finishing one): it is rewritten as
    /// `<base>.log.tmp` with its records below `offset` and a footer ending
    /// at `offset`, fsynced, renamed over the segment, and the directory
    /// fsynced. It stays sealed; the next append starts a new segment. In a
    /// read-only log only the view changes (reads stop at `offset`).
    pub(crate) fn cut_compacted(&mut self, base: u64, offset: u64) -> Result<()> {
        let Some(seg) = self.segments.get(&base) else { return Ok(()) };
        if self.read_only {
            return Ok(());
        }
        let src = Source {
            base,
            path: seg.path.clone(),
            file: Arc::clone(&seg.file),
            tail: seg.tail,
            sparse: true,
            created_ms: seg.created_ms,
            meta: self.meta.clone(),
        };
        let path = seg.path.clone();
        let tmp = self.path_of(&format!("{}.tmp", segment_file_name(base)));
        let interval = self.config.index_interval_bytes;
        let now = self.clock.now_ms();
        let written = (|| -> Result<_> {
            let mut w = Writer::create(&self.fs, tmp.clone(), base, src.created_ms, interval)?;
            w.add_source(&src, offset, |r| r.offset < offset)?;
            w.finish(base, now)
        })();
        let Written { file, tail, index, .. } = written.inspect_err(|_| {
            let _ = self.fs.remove_file(&tmp);
        })?;
        self.remove_index_files(base).map_err(|(p, e)| Error::io("removing", p, e))?;
        self.install_temporary(&tmp, &path).map_err(|(e, renamed)| match renamed {
            false => Error::io("renaming a cut compacted segment to", path.clone(), e),
            true => Error::io("syncing the log directory", self.dir.clone(), e),
        })?;
        if let Some(seg) = self.segments.get_mut(&base) {
            seg.file = file;
            seg.tail = tail;
            seg.sealed = true;
            seg.sparse = true;
            seg.index = OnceLock::new();
            let _ = seg.index.set(index);
        }
        Ok(())
    }
}

/// A failed write of a compaction file: the log itself is untouched, so
/// nothing is poisoned; ENOSPC stays recognisable.
pub(crate) fn write_error(op: &'static str, path: &std::path::Path, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::StorageFull {
        return Error::DiskFull { op, path: path.to_path_buf() };
    }
    Error::io(op, path.to_path_buf(), e)
}

/// Output is written in chunks of this size.
const WRITE_CHUNK: usize = 1 << 20;

/// A sealed segment as the job saw it.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) base: u64,
    pub(crate) path: PathBuf,
    pub(crate) file: Arc<dyn FileHandle>,
    pub(crate) tail: Tail,
    pub(crate) sparse: bool,
    pub(crate) created_ms: u64,
    /// The log's metadata (for its epochs) when the job was planned: a
    /// later suffix truncation changes them only at offsets the job does
    /// not read.
    pub(crate) meta: Meta,
}

impl Source {
    pub(crate) fn bytes(&self) -> u64 {
        self.tail.end_pos + MARKER_FRAME_LEN as u64
    }
}

/// Calls `f` on each record of `src` in order until it returns false.
pub(crate) fn walk(src: &Source, mut f: impl FnMut(&RecordRef<'_>) -> bool) -> Result<()> {
    let file = FileSource(&*src.file);
    let mut cursor =
        FrameCursor::new(HEADER_LEN, src.tail.end_pos, SCAN_CHUNK, &src.meta).expecting(src.base, src.sparse);
    loop {
        match cursor.next_frame(&file) {
            Ok(Some((_, Frame::Record(r)))) => {
                if !f(&r) {
                    return Ok(());
                }
            }
            Ok(Some((_, Frame::Marker(_)))) => {}
            Ok(None) => return Ok(()),
            Err(Stop::Invalid { pos, why }) => return Err(Error::corruption(&src.path, pos, why)),
            Err(Stop::Discontinuous { pos, expected, found }) => {
                return Err(Error::corruption(
                    &src.path,
                    pos,
                    format!("expected the record with offset {expected}, found offset {found}"),
                ));
            }
            Err(Stop::Torn { pos }) => {
                return Err(Error::corruption(&src.path, pos, "a frame runs past the end of the segment's data"));
            }
            Err(Stop::Io(e)) => return Err(Error::io("reading", src.path.clone(), e)),
        }
    }
}
