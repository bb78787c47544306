//! Finishing or undoing a compaction swap at open (`docs/FORMAT.md`,
//! "Key compaction").

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::{self, HEADER_LEN, SegmentHeader, segment_file_name};
use crate::fs::{FileSystem, OpenMode, read_full_at};
use crate::log::RecoveryReport;

/// Finishes or undoes a compaction swap (docs/FORMAT.md, "Compaction").
/// With a durable manifest, every segment it replaces is deleted and each
/// compacted file is renamed into place (read-only: the view is adjusted
/// instead, through the returned path overrides); without one, compacted
/// files are leftovers of a pass that never committed and are deleted.
pub(super) fn settle_compaction(
    fs: &dyn crate::fs::FileSystem,
    dir: &Path,
    read_only: bool,
    has_manifest: bool,
    bases: &mut Vec<u64>,
    compacted: &[u64],
    report: &mut RecoveryReport,
) -> Result<BTreeMap<u64, PathBuf>> {
    let mut overrides = BTreeMap::new();
    let io = |op: &'static str, p: PathBuf| move |e: io::Error| Error::io(op, p, e);
    let manifest = if has_manifest { Some(read_manifest(fs, dir)?) } else { None };
    let Some(manifest) = manifest else {
        if !read_only {
            for &b in compacted {
                remove_if_present(fs, &dir.join(format::compacted_file_name(b)))?;
                report.temporaries_removed.push(format::compacted_file_name(b));
            }
        }
        return Ok(overrides);
    };
    for &(base, next) in &manifest.entries {
        let has_new = compacted.binary_search(&base).is_ok();
        // Without its compacted file, the rename must have happened: the
        // segment in place must be that compacted segment. Anything else
        // would make finishing the swap delete records.
        let renamed =
            !has_new && bases.binary_search(&base).is_ok() && is_compacted(fs, &dir.join(segment_file_name(base)));
        if !has_new && !renamed {
            return Err(Error::corruption(
                dir.join(format::MANIFEST_FILE_NAME),
                0,
                format!(
                    "the compaction manifest names segment {base}, but its compacted file is missing and {} is not a compacted segment; restore the directory from a backup or salvage it",
                    segment_file_name(base)
                ),
            ));
        }
        let replaced: Vec<u64> = bases.iter().copied().filter(|&b| b > base && b < next).collect();
        bases.retain(|&b| !(b > base && b < next));
        if !bases.contains(&base) {
            bases.push(base);
            bases.sort_unstable();
        }
        if read_only {
            if has_new {
                overrides.insert(base, dir.join(format::compacted_file_name(base)));
            }
            continue;
        }
        swap_in(fs, dir, base, &replaced, has_new)?;
    }
    if read_only {
        return Ok(overrides);
    }
    fs.sync_dir(dir).map_err(io("syncing the log directory", dir.to_path_buf()))?;
    for &b in compacted {
        if !manifest.entries.iter().any(|&(base, _)| base == b) {
            remove_if_present(fs, &dir.join(format::compacted_file_name(b)))?;
        }
    }
    remove_if_present(fs, &dir.join(format::MANIFEST_FILE_NAME))?;
    fs.sync_dir(dir).map_err(io("syncing the log directory", dir.to_path_buf()))?;
    report.finished_compaction = true;
    Ok(overrides)
}

/// Reads and decodes the compaction manifest `log.compaction`.
fn read_manifest(fs: &dyn FileSystem, dir: &Path) -> Result<format::Manifest> {
    let path = dir.join(format::MANIFEST_FILE_NAME);
    let io = |op: &'static str| {
        let path = path.clone();
        move |e: io::Error| Error::io(op, path, e)
    };
    let f = fs.open(&path, OpenMode::Read).map_err(io("opening"))?;
    let len = f.len().map_err(io("reading the size of"))?;
    let mut buf = vec![0u8; usize::try_from(len.min(1 << 24)).unwrap_or(0)];
    let got = read_full_at(&*f, &mut buf, 0).map_err(io("reading"))?;
    buf.truncate(got);
    format::Manifest::decode(&buf)
        .map_err(|e| Error::corruption(&path, 0, format!("{e:?}; the compaction it describes cannot be finished")))
}

/// One manifest entry's swap (idempotent): the segments it `replaced` and
/// their index files go, and its compacted file (if still there) is renamed
/// over segment `base`, whose index files go first.
fn swap_in(fs: &dyn FileSystem, dir: &Path, base: u64, replaced: &[u64], has_new: bool) -> Result<()> {
    use format::IndexKind::{Offset, Time};
    for &b in replaced {
        remove_if_present(fs, &dir.join(segment_file_name(b)))?;
        remove_if_present(fs, &dir.join(format::index_file_name(Offset, b)))?;
        remove_if_present(fs, &dir.join(format::index_file_name(Time, b)))?;
    }
    if has_new {
        remove_if_present(fs, &dir.join(format::index_file_name(Offset, base)))?;
        remove_if_present(fs, &dir.join(format::index_file_name(Time, base)))?;
        let from = dir.join(format::compacted_file_name(base));
        let to = dir.join(segment_file_name(base));
        fs.rename(&from, &to).map_err(|e| Error::io("renaming a compacted segment to", to.clone(), e))?;
    }
    Ok(())
}

/// Removes `path`; a file already gone is fine.
fn remove_if_present(fs: &dyn FileSystem, path: &Path) -> Result<()> {
    match fs.remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("removing", path.to_path_buf(), e)),
    }
}

/// Whether the segment file at `path` has a valid compacted (version 2)
/// header.
fn is_compacted(fs: &dyn crate::fs::FileSystem, path: &Path) -> bool {
    let Ok(f) = fs.open(path, OpenMode::Read) else { return false };
    let mut b = [0u8; HEADER_LEN as usize];
    matches!(read_full_at(&*f, &mut b, 0), Ok(n) if n == b.len()) && SegmentHeader::decode(&b).is_ok_and(|h| h.sparse)
}
