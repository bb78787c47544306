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
    for entry in &manifest.entries {
        let (base, next) = (entry.base, entry.next_offset);
        let has_new = compacted.binary_search(&base).is_ok();
        if !has_new {
            // Without its compacted file, the rename must have happened: the
            // segment in place must be that compacted file. Anything else
            // (the file was lost) would make finishing the swap delete
            // records, or keep ones the pass dropped.
            let in_place = dir.join(segment_file_name(base));
            let on_disk = bases.binary_search(&base).is_ok();
            let renamed = on_disk && is_the_output(fs, &in_place, entry.output)?;
            if !renamed {
                return Err(lost_output(dir, base, on_disk));
            }
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
        if !manifest.entries.iter().any(|e| e.base == b) {
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

/// Whether the segment file at `path` is the compacted file the manifest
/// entry names: the same length and CRC32 (a version-1 manifest, which has
/// no identity, only tells a compacted header).
fn is_the_output(fs: &dyn FileSystem, path: &Path, output: Option<format::FileIdentity>) -> Result<bool> {
    let io = |op: &'static str| move |e: io::Error| Error::io(op, path.to_path_buf(), e);
    let f = fs.open(path, OpenMode::Read).map_err(io("opening"))?;
    let Some(id) = output else {
        let mut b = [0u8; HEADER_LEN as usize];
        let n = read_full_at(&*f, &mut b, 0).map_err(io("reading"))?;
        return Ok(n == b.len() && SegmentHeader::decode(&b).is_ok_and(|h| h.is_compacted()));
    };
    if f.len().map_err(io("reading the size of"))? != id.len {
        return Ok(false);
    }
    Ok(crate::fs::crc_of_prefix(&*f, id.len).map_err(io("reading"))?.finalize() == id.crc)
}

/// The manifest names segment `base`, but its compacted file is gone and
/// the segment in place (if any) is not it.
fn lost_output(dir: &Path, base: u64, on_disk: bool) -> Error {
    let in_place = if on_disk {
        format!("{} in place is not that file (its length or checksum differs)", segment_file_name(base))
    } else {
        format!("there is no {}", segment_file_name(base))
    };
    Error::corruption(
        dir.join(format::MANIFEST_FILE_NAME),
        0,
        format!(
            "the compaction manifest names the compacted segment {}, which is missing, and {in_place}: the file was lost, so the swap cannot be finished; restore the directory from a backup or a replica, or salvage it",
            format::compacted_file_name(base)
        ),
    )
}
