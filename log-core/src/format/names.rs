//! File names in a log directory.

use super::{IndexKind, MANIFEST_FILE_NAME, META_FILE_NAME};

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `<base>.log`
    Segment(u64),
    /// `<base>.index`
    OffsetIndex(u64),
    /// `<base>.timeindex`
    TimeIndex(u64),
    /// `*.tmp`: a leftover of an interrupted operation.
    Temporary,
    /// `log.meta`
    Meta,
    /// `<base>.log.compacted`: a compacted segment written by a compaction
    /// pass; part of the log only once `log.compaction` names it.
    Compacted(u64),
    /// `log.compaction`: the manifest of a compaction swap in progress.
    CompactionManifest,
    /// `log.lock`: the lock file a read-write open holds (empty).
    Lock,
    /// `log.resync`: an fsync of the log's files failed in an earlier
    /// process; the next read-write open rewrites the log's files from
    /// what it reads before trusting them (lists the files, one per line).
    ResyncMarker,
    /// `log.spare`: room reserved for the resync marker (newlines), renamed
    /// to `log.resync` when an fsync fails, so that the marker can be
    /// written even on a full disk.
    ResyncSpare,
}

/// Name of the lock file every read-write open holds an exclusive lock on.
pub const LOCK_FILE_NAME: &str = "log.lock";

/// Name of the marker a failed fsync leaves ([`FileKind::ResyncMarker`]).
pub const RESYNC_FILE_NAME: &str = "log.resync";

/// Name of the room reserved for the resync marker ([`FileKind::ResyncSpare`]).
pub const RESYNC_SPARE_FILE_NAME: &str = "log.spare";

/// Bytes reserved for the resync marker: a boot line and well over a
/// hundred file names.
pub const RESYNC_SPARE_BYTES: usize = 4096;

/// The first line of a resync marker: the boot it was written in
/// (`boot <id>`, or `boot ?` when the filesystem does not know), with its
/// newline.
pub fn resync_boot_line(boot_id: Option<&str>) -> String {
    format!("boot {}\n", boot_id.unwrap_or("?"))
}

/// Segment file name for a base offset.
pub fn segment_file_name(base: u64) -> String {
    format!("{base:020}.log")
}

/// Name of a compacted segment before the swap makes it live.
pub fn compacted_file_name(base: u64) -> String {
    format!("{base:020}.log.compacted")
}

/// Index file name for a base offset.
pub fn index_file_name(kind: IndexKind, base: u64) -> String {
    match kind {
        IndexKind::Offset => format!("{base:020}.index"),
        IndexKind::Time => format!("{base:020}.timeindex"),
    }
}

/// Classifies a directory entry; `None` for names the log does not own.
pub fn parse_file_name(name: &str) -> Option<FileKind> {
    if name.ends_with(".tmp") && name.len() > 4 {
        return Some(FileKind::Temporary);
    }
    if name == META_FILE_NAME {
        return Some(FileKind::Meta);
    }
    if name == MANIFEST_FILE_NAME {
        return Some(FileKind::CompactionManifest);
    }
    if name == LOCK_FILE_NAME {
        return Some(FileKind::Lock);
    }
    if name == RESYNC_FILE_NAME {
        return Some(FileKind::ResyncMarker);
    }
    if name == RESYNC_SPARE_FILE_NAME {
        return Some(FileKind::ResyncSpare);
    }
    let (stem, ext) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let base: u64 = stem.parse().ok()?;
    match ext {
        "log" => Some(FileKind::Segment(base)),
        "index" => Some(FileKind::OffsetIndex(base)),
        "timeindex" => Some(FileKind::TimeIndex(base)),
        "log.compacted" => Some(FileKind::Compacted(base)),
        _ => None,
    }
}
