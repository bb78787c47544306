//! Salvage: read whatever records still verify out of damaged segment files,
//! without trusting footers, summaries or indexes, and say exactly what was
//! lost. The operator's last resort (`seglog salvage`).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::{self, FileKind, Frame, HEADER_LEN, Meta, parse_file_name, segment_file_name};
use crate::fs::{FileSystem, OpenMode, read_full_at};
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
/// resynchronising after damage by searching for the next valid frame. If
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
        let n = read_full_at(&*f, &mut bytes, 0).map_err(|e| Error::io("reading", path.clone(), e))?;
        bytes.truncate(n);
        salvage_bytes(&path, &bytes, meta.as_ref(), &mut out);
    }
    Ok(out)
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
