//! Salvage: read whatever records still verify out of damaged segment files,
//! without trusting footers, summaries or indexes, and say exactly what was
//! lost. The operator's last resort (`seglog salvage`).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use crate::dir::compacted::Writer;
use crate::error::{Error, Result};
use crate::format::{
    self, FileKind, Frame, HEADER_LEN, MARKER_FRAME_LEN, Meta, RECORD_OVERHEAD, RecordRef, SegmentHeader, SegmentKind,
    parse_file_name, segment_file_name,
};
use crate::fs::{FileSystem, OpenMode, read_full_at, write_all_at};
use crate::log::Record;

/// One thing found while salvaging a segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A record whose frame verifies.
    Record(Record),
    /// Bytes `from..to` of `path` that hold no verifiable frame.
    Damaged {
        /// The file.
        path: PathBuf,
        /// First damaged byte.
        from: u64,
        /// One past the last damaged byte.
        to: u64,
    },
}

/// Reads every verifiable record of every segment in `dir`, in file order,
/// resynchronising after damage by searching for the next valid frame.
/// Sectors that cannot be read (EIO) are damage like any other: the rest
/// of the file is still salvaged. If
/// `log.meta` is readable, its epochs tell stale frames (left behind by a
/// lost write after a suffix truncation) from current ones; stale frames
/// are reported as damaged bytes. Without it, every record frame counts.
pub fn salvage_dir(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<Found>> {
    let names = fs.read_dir(dir).map_err(|e| Error::io("listing", dir, e))?;
    let meta = read_meta(fs, dir);
    let mut bases: Vec<u64> = names
        .iter()
        .filter_map(|n| match parse_file_name(n) {
            Some(FileKind::Segment(b)) => Some(b),
            _ => None,
        })
        .collect();
    bases.sort_unstable();
    let mut out = Vec::new();
    for base in bases {
        let path = dir.join(segment_file_name(base));
        let f = fs.open(&path, OpenMode::Read).map_err(|e| Error::io("opening", path.clone(), e))?;
        let len = f.len().map_err(|e| Error::io("reading the size of", path.clone(), e))?;
        let mut bytes = vec![0u8; usize::try_from(len).map_err(|_| Error::corruption(&path, 0, "file too large"))?];
        let n = match read_full_at(&*f, &mut bytes, 0) {
            Ok(n) => n,
            // An unreadable sector (EIO) must not cost the rest of the
            // file: read it again piece by piece, leaving what cannot be
            // read as zeros, which no frame verifies over (so it is
            // reported as damage).
            Err(e) if e.kind() != io::ErrorKind::NotFound => read_around_errors(&*f, &mut bytes),
            Err(e) => return Err(Error::io("reading", path.clone(), e)),
        };
        bytes.truncate(n);
        salvage_bytes(&path, &bytes, meta.as_ref(), &mut out);
    }
    Ok(out)
}

/// Reads `buf` from `f` in pieces of 512 bytes (the smallest sector),
/// leaving every piece that fails to read as zeros; returns how many bytes
/// the file had.
fn read_around_errors(f: &dyn crate::fs::FileHandle, buf: &mut [u8]) -> usize {
    const PIECE: usize = 512;
    buf.fill(0);
    let mut end = 0;
    for (i, piece) in buf.chunks_mut(PIECE).enumerate() {
        let at = (i * PIECE) as u64;
        match read_full_at(f, piece, at) {
            Ok(n) => {
                end = i * PIECE + n;
                if n < piece.len() {
                    break;
                }
            }
            Err(_) => {
                piece.fill(0);
                end = i * PIECE + piece.len();
            }
        }
    }
    end
}

/// `dir`'s `log.meta`, if it can be read and decoded.
fn read_meta(fs: &dyn FileSystem, dir: &Path) -> Option<Meta> {
    let f = fs.open(&dir.join(format::META_FILE_NAME), OpenMode::Read).ok()?;
    let len = f.len().ok()?.min(40 + 16 * format::EPOCH_ENTRIES_MAX as u64);
    let mut buf = vec![0u8; usize::try_from(len).ok()?];
    let n = read_full_at(&*f, &mut buf, 0).ok()?;
    Meta::decode(buf.get(..n)?).ok()
}

/// Salvages one segment file's bytes into `out`; with the log's `meta`, a
/// record frame of an older epoch than its offset's counts as damage.
pub fn salvage_bytes(path: &Path, bytes: &[u8], meta: Option<&Meta>, out: &mut Vec<Found>) {
    let mut pos = if format::SegmentHeader::decode(bytes).is_ok() { HEADER_LEN as usize } else { 0 };
    let mut damaged_from: Option<usize> = if pos == 0 { Some(0) } else { None };
    while pos < bytes.len() {
        // Cheap plausibility before the checksum, so resynchronising through
        // damage does not hash megabytes at every byte.
        let plausible = matches!(bytes.get(pos + 8), Some(1..=4));
        if !plausible {
            damaged_from.get_or_insert(pos);
            pos += 1;
            continue;
        }
        match format::decode_frame(bytes.get(pos..).unwrap_or_default()) {
            Ok((Frame::Record(r), _)) if meta.is_some_and(|m| !m.admits(r.offset, r.epoch)) => {
                damaged_from.get_or_insert(pos);
                pos += 1;
            }
            Ok((frame, len)) => {
                if let Some(from) = damaged_from.take() {
                    out.push(Found::Damaged { path: path.to_path_buf(), from: from as u64, to: pos as u64 });
                }
                if let Frame::Record(r) = frame {
                    out.push(Found::Record(Record::from_ref(&r)));
                }
                pos += len;
            }
            Err(_) => {
                damaged_from.get_or_insert(pos);
                pos += 1;
            }
        }
    }
    if let Some(from) = damaged_from {
        out.push(Found::Damaged { path: path.to_path_buf(), from: from as u64, to: bytes.len() as u64 });
    }
}

/// What [`write_sparse_log`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SparseLog {
    /// Records written, each at its own offset.
    pub records: u64,
    /// Sealed segments written (compacted segments, whose offsets may skip).
    pub segments: u64,
    /// The offsets between the first and the last record that hold no
    /// record: reads of them fail with [`Error::Compacted`], iteration skips
    /// them.
    pub holes: Vec<std::ops::Range<u64>>,
    /// Offsets of records that were not written because they did not come
    /// after the record before them (a duplicate or out-of-order frame).
    pub skipped: Vec<u64>,
}

/// Writes `records` as a new log in `dir` (created if missing, and empty
/// otherwise) **keeping their offsets**: the log starts at the first
/// record's offset, ends after the last, and the offsets between that hold
/// no record are holes, as key compaction leaves them (`seglog salvage
/// --keep-offsets`, so that consumers and Raft indexes that name offsets
/// still find their records). A record whose offset is not above the one
/// before it is skipped and listed. The records go into sealed compacted
/// segments of at most `config.segment_bytes_max`, followed by an empty
/// active segment; `log.meta` is written first and names that last
/// segment, so an interrupted run leaves a directory that refuses to open
/// (a lost file) rather than a shorter log that looks whole: remove it and
/// run again. When it returns, the new log is durable, the new
/// directory's own entry in its parent included. Open the result with
/// [`Log::open`](crate::Log::open).
pub fn write_sparse_log(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    records: &[Record],
    config: &Config,
    now_ms: u64,
) -> Result<SparseLog> {
    config.validate()?;
    fs.create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    let names = fs.read_dir(dir).map_err(|e| Error::io("listing", dir, e))?;
    if let Some(name) = names.first() {
        let e =
            io::Error::new(io::ErrorKind::AlreadyExists, format!("it holds `{name}`: salvage into an empty directory"));
        return Err(Error::io("writing a salvaged log into", dir, e));
    }
    let mut report = SparseLog::default();
    let mut kept: Vec<&Record> = Vec::with_capacity(records.len());
    for r in records {
        match kept.last() {
            Some(last) if r.offset <= last.offset => report.skipped.push(r.offset),
            Some(last) => {
                if r.offset > last.offset + 1 {
                    report.holes.push(last.offset + 1..r.offset);
                }
                kept.push(r);
            }
            None => kept.push(r),
        }
    }
    let (Some(first), Some(last)) = (kept.first(), kept.last()) else { return Ok(report) };
    let end = last.offset + 1;
    let meta = Meta { first_offset: first.offset, last_segment: Some(end), ..Meta::default() };
    write_synced(fs, dir, format::META_FILE_NAME, &meta.encode())?;
    // The directory and every parent: `dir` may be new, and its own entry
    // must be as durable as what goes into it.
    crate::recovery::sync_directories(&**fs, dir)?;
    let epoch = format::Epochs::tag(meta.epochs.current());
    let room = config.segment_bytes_max.saturating_sub(HEADER_LEN + MARKER_FRAME_LEN as u64);
    let chunks = chunks(&kept, room);
    for (i, chunk) in chunks.iter().enumerate() {
        let base = chunk.first().map_or(end, |r| r.offset);
        let next = chunks.get(i + 1).and_then(|c| c.first()).map_or(end, |r| r.offset);
        let name = segment_file_name(base);
        let tmp = dir.join(format!("{name}.tmp"));
        let mut w = Writer::create(fs, tmp.clone(), base, now_ms, config.index_interval_bytes)?;
        for r in chunk {
            let rec = RecordRef {
                offset: r.offset,
                timestamp_ms: r.timestamp_ms,
                flags: r.flags,
                key: r.key.as_deref(),
                value: &r.value,
                epoch,
            };
            if let Err(e) = w.add_record(&rec) {
                w.abandon();
                return Err(e);
            }
        }
        w.cover_to(next);
        w.finish(base, now_ms)?;
        fs.rename(&tmp, &dir.join(&name)).map_err(|e| Error::io("renaming", tmp, e))?;
        report.records += chunk.len() as u64;
        report.segments = i as u64 + 1;
    }
    let header = SegmentHeader::new(end, now_ms, SegmentKind::Plain);
    write_synced(fs, dir, &segment_file_name(end), &header.encode())?;
    fs.sync_dir(dir).map_err(|e| Error::io("syncing", dir, e))?;
    Ok(report)
}

/// `kept` cut into runs whose frames fit in `room` bytes (at least one
/// record each).
fn chunks<'a>(kept: &[&'a Record], room: u64) -> Vec<Vec<&'a Record>> {
    let mut out: Vec<Vec<&Record>> = Vec::new();
    let mut bytes = 0u64;
    for r in kept {
        let size = (RECORD_OVERHEAD + r.value.len() + r.key.as_ref().map_or(0, Vec::len)) as u64;
        match out.last_mut() {
            Some(cur) if bytes + size <= room => cur.push(r),
            _ => {
                out.push(vec![r]);
                bytes = 0;
            }
        }
        bytes += size;
    }
    out
}

/// `dir/name` written through `name.tmp`, fsynced, renamed into place.
fn write_synced(fs: &Arc<dyn FileSystem>, dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let f = fs.open(&tmp, OpenMode::CreateNew).map_err(|e| Error::io("creating", tmp.clone(), e))?;
    write_all_at(&*f, bytes, 0).map_err(|e| Error::io("writing", tmp.clone(), e))?;
    f.sync().map_err(|e| Error::io("fsyncing", tmp.clone(), e))?;
    fs.rename(&tmp, &path).map_err(|e| Error::io("renaming", tmp, e))
}
