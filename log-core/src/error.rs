//! Typed errors. Each message says what happened and what to do about it.

use std::io;
use std::path::PathBuf;

/// A configuration field outside its allowed range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: `{field}` {msg}; fix the Config passed to Log::open")]
pub struct ConfigError {
    /// The offending field of [`Config`](crate::Config).
    pub field: &'static str,
    /// What is wrong with it.
    pub msg: String,
}

/// What a log operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration was rejected before anything was touched.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// An I/O operation failed. If it was a write or a sync, the log is now
    /// poisoned (see [`Error::Poisoned`]).
    #[error("I/O error while {op} `{}`: {source}; check the disk and permissions, then reopen the log", path.display())]
    Io {
        /// What the log was doing.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// The disk is full. The append (or roll) that hit it was not applied: the
    /// next offset did not move and no partial record is readable. The log
    /// keeps working once space is freed.
    #[error("disk full while {op} `{}`: nothing was appended and the log is unchanged; free space (delete old segments with retention, or grow the volume) and retry", path.display())]
    DiskFull {
        /// What the log was doing.
        op: &'static str,
        /// The file involved.
        path: PathBuf,
    },

    /// The disk filled up while `flush` or `sync` was writing records that
    /// earlier calls had accepted. Nothing changed: those records (offsets
    /// `durable..next`) are still accepted, readable and not durable, and
    /// nothing was dropped or appended. Free space and call `sync` again;
    /// appending them again would duplicate them.
    #[error("disk full while {op} `{}`: the records at offsets {durable}..{next} are still accepted but not durable, and nothing was dropped or appended; free space (delete old segments with retention, or grow the volume) and sync again, without appending them again", path.display())]
    DiskFullNotDurable {
        /// What the log was doing.
        op: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The durable offset (unchanged).
        durable: u64,
        /// The next offset (unchanged).
        next: u64,
    },

    /// The disk filled up while `close` was making the accepted records
    /// durable. The log is closed; everything before `durable` is durable;
    /// the records at offsets `durable..next` never became durable and may
    /// or may not be in the log when it is reopened (never acknowledged).
    #[error("disk full while closing `{}`: the log is closed and offsets below {durable} are durable, but the records at offsets {durable}..{next} were never made durable and may be missing when the log is reopened; free space, reopen, and check where the log ends before appending them again", path.display())]
    DiskFullAtClose {
        /// The file involved.
        path: PathBuf,
        /// Everything below this offset is durable.
        durable: u64,
        /// The next offset the closed log had accepted.
        next: u64,
    },

    /// An earlier write or sync failed, so the log refuses further writes:
    /// after a failed fsync the kernel may have dropped the data, and retrying
    /// could report lost data as durable.
    #[error(
        "the log is poisoned by an earlier failure ({cause}) and refuses writes; records after the last successful sync may be lost; close and reopen the log to recover"
    )]
    Poisoned {
        /// The failure that poisoned the log.
        cause: String,
    },

    /// Durable data does not verify. The log never truncates durable data
    /// silently; an operator decides what to do.
    #[error("corruption in `{}` at byte {pos}: {detail}; this data was durable, so the log will not drop it silently: restore the file from a replica or backup, or salvage the valid records with an operator tool", path.display())]
    Corruption {
        /// The damaged file.
        path: PathBuf,
        /// Byte position of the first bad byte range found.
        pos: u64,
        /// What failed to verify.
        detail: String,
    },

    /// A file was written by a newer (or unknown) format version.
    #[error("`{}` has format version {found}, but this build reads versions up to {supported}; open it with a build that supports version {found}", path.display())]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found in the file.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },

    /// The directory holds files, but none of them is a log segment: it is
    /// probably the wrong directory.
    #[error("`{}` is not a log directory (it holds `{example}` and no segment files); point the log at an empty directory or an existing log", path.display())]
    NotALogDirectory {
        /// The directory.
        path: PathBuf,
        /// One of the unexpected entries.
        example: String,
    },

    /// Another writer holds the log directory's lock: another read-write
    /// `Log` (or `SharedLog`, or raft-log store) in this process, or another
    /// process. Nothing was read or changed.
    #[error("the log at `{}` is locked by another writer (a read-write `Log` in this process or another process, e.g. the application or `seglog`); close that writer first, or open the log read-only (`Log::open_read_only`, `seglog info`/`dump`/`verify`), which takes no lock", path.display())]
    Locked {
        /// The log directory.
        path: PathBuf,
    },

    /// A read-only open found no log.
    #[error("no log at `{}`; a read-only open never creates one: open it read-write first", path.display())]
    NoLog {
        /// The directory.
        path: PathBuf,
    },

    /// The offset is not in the log.
    #[error("offset {offset} is outside the log, which holds offsets {first}..{next}")]
    OffsetOutOfRange {
        /// The requested offset.
        offset: u64,
        /// The first offset in the log.
        first: u64,
        /// One past the last offset in the log.
        next: u64,
    },

    /// The offset lies below the log's first offset: retention or a prefix
    /// truncation deleted the records `offset..first`. Consumer reads
    /// ([`SharedLog::read_range`](crate::SharedLog::read_range),
    /// [`SharedLog::tail`](crate::SharedLog::tail),
    /// [`Log::iter_from`](crate::Log::iter_from)) report this instead of
    /// silently starting at the first offset, so a consumer that fell behind
    /// knows what it missed.
    #[error(
        "offset {offset} is below the log's first offset {first}: the records at offsets {offset}..{first} were deleted by retention or a prefix truncation; resume from offset {first} (and account for the missed records), or keep consumers within the retention limits"
    )]
    Truncated {
        /// The requested offset.
        offset: u64,
        /// The log's first offset when the read was made.
        first: u64,
    },

    /// The offset is inside the log, but holds no record: key compaction
    /// removed it (a later record has the same key, or it was a tombstone
    /// past its retention), or it is a hole that `seglog salvage
    /// --keep-offsets` left where damage destroyed the record. Offsets are
    /// never reused: iterate from it to get the next record that exists.
    #[error(
        "offset {offset} holds no record: key compaction removed it (a later record has the same key, or it was an expired tombstone), or salvage --keep-offsets left a hole there; iterate from it to read the next record"
    )]
    Compacted {
        /// The requested offset.
        offset: u64,
    },

    /// A record is larger than `Config::record_bytes_max`.
    #[error("record of {size} bytes exceeds record_bytes_max ({max}); split it or raise the limit")]
    RecordTooLarge {
        /// Key plus value bytes.
        size: u64,
        /// The configured limit.
        max: u32,
    },

    /// The shared handle was shut down (or its committer stopped) before this
    /// operation completed. An append that fails with `Closed` may or may
    /// not be in the log (it was not acknowledged): reopen the log and read
    /// to find out.
    #[error("the log was shut down ({why}); this operation was not completed: reopen the log to continue")]
    Closed {
        /// What stopped it.
        why: &'static str,
    },

    /// A write was attempted on a log opened read-only.
    #[error("the log was opened read-only; open it read-write to {op}")]
    ReadOnly {
        /// The refused operation.
        op: &'static str,
    },
}

/// Result alias for log operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether this is a disk-full error (the log is unchanged and usable).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Error::DiskFull { .. } | Error::DiskFullNotDurable { .. } | Error::DiskFullAtClose { .. })
    }

    /// Whether this error reports corrupt durable data.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }

    /// A copy of this error, for reporting one failure to every append of a
    /// group commit (an I/O error's source is copied by kind and message).
    pub fn duplicate(&self) -> Self {
        match self {
            Error::Config(c) => Error::Config(c.clone()),
            Error::Io { op, path, source } => {
                Error::Io { op, path: path.clone(), source: io::Error::new(source.kind(), source.to_string()) }
            }
            Error::DiskFull { op, path } => Error::DiskFull { op, path: path.clone() },
            Error::DiskFullNotDurable { op, path, durable, next } => {
                Error::DiskFullNotDurable { op, path: path.clone(), durable: *durable, next: *next }
            }
            Error::DiskFullAtClose { path, durable, next } => {
                Error::DiskFullAtClose { path: path.clone(), durable: *durable, next: *next }
            }
            Error::Poisoned { cause } => Error::Poisoned { cause: cause.clone() },
            Error::Corruption { path, pos, detail } => {
                Error::Corruption { path: path.clone(), pos: *pos, detail: detail.clone() }
            }
            Error::UnsupportedVersion { path, found, supported } => {
                Error::UnsupportedVersion { path: path.clone(), found: *found, supported: *supported }
            }
            Error::NotALogDirectory { path, example } => {
                Error::NotALogDirectory { path: path.clone(), example: example.clone() }
            }
            Error::NoLog { path } => Error::NoLog { path: path.clone() },
            Error::Locked { path } => Error::Locked { path: path.clone() },
            Error::OffsetOutOfRange { offset, first, next } => {
                Error::OffsetOutOfRange { offset: *offset, first: *first, next: *next }
            }
            Error::RecordTooLarge { size, max } => Error::RecordTooLarge { size: *size, max: *max },
            Error::Compacted { offset } => Error::Compacted { offset: *offset },
            Error::Truncated { offset, first } => Error::Truncated { offset: *offset, first: *first },
            Error::Closed { why } => Error::Closed { why },
            Error::ReadOnly { op } => Error::ReadOnly { op },
        }
    }

    /// A failure after a multi-step operation's intent was made durable:
    /// the log has changed (a reopen finishes the operation), so a full disk
    /// is reported as an I/O error, not as [`Error::DiskFull`] (whose
    /// promise is "the log is unchanged").
    pub(crate) fn into_midway(self) -> Self {
        match self {
            Error::DiskFull { op, path } => Error::Io { op, path, source: io::Error::from(io::ErrorKind::StorageFull) },
            other => other,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    pub(crate) fn corruption(path: impl Into<PathBuf>, pos: u64, detail: impl Into<String>) -> Self {
        Error::Corruption { path: path.into(), pos, detail: detail.into() }
    }
}
