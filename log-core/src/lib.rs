//! # log-core: a segmented, crash-safe, append-only log
//!
//! A log is a sequence of records with dense `u64` offsets, stored as
//! segment files named by their first offset. Appends go to the active
//! (last) segment; sealed segments are immutable and carry a footer. Each
//! segment has a sparse offset index and a time index. Opening a log trusts
//! sealed segments by their footer and scans only the active segment, so
//! recovery time does not grow with the log.
//!
//! Durability has three levels, and the API keeps them apart:
//! 1. *accepted*: [`Log::append`] returned an offset; the record is readable
//!    but may be lost by a crash;
//! 2. *durable*: a [`Log::sync`] that covered the offset returned `Ok`
//!    ([`Log::durable_offset`] tells how far that goes);
//! 3. *failed*: a write or sync returned an error; after an fsync error the
//!    log is poisoned and refuses writes until reopened.
//!
//! All I/O goes through the [`FileSystem`] trait ([`StdFs`] on the real
//! disk), and all time through a [`Clock`], so that the simulator can run the
//! same code on a fault-injecting disk with simulated time.
//!
//! ```
//! use seglog_core::{Config, Entry, Log};
//! let dir = tempfile::tempdir()?;
//! let mut log = Log::open(dir.path(), Config::default())?;
//! let batch = log.append_batch(&[Entry::new(b"a"), Entry::new(b"b")])?;
//! log.sync()?;
//! let values: Vec<Vec<u8>> = log.iter(batch).map(|r| r.map(|r| r.value)).collect::<Result<_, _>>()?;
//! assert_eq!(values, vec![b"a".to_vec(), b"b".to_vec()]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// Guardrails: every public item documented; no library function over 70
// lines (clippy.toml) unless an `#[expect]` says why it is clearer whole.
#![warn(missing_docs, clippy::too_many_lines)]

mod clock;
mod compact;
mod config;
mod dir;
pub(crate) use dir::{index, segment};
mod error;
mod format;
mod fs;
pub mod group;
pub mod inspect;
mod log;
mod read;
mod recovery;
pub mod salvage;
mod stats;
#[cfg(feature = "serde")]
mod units;
mod write;

/// The crate README's snippet, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use clock::{Clock, CoarseClock, FixedClock, ManualClock, SystemClock};
pub use compact::{CompactionJob, CompactionOutput, CompactionReport};
pub use config::{Config, RECORD_BYTES_LIMIT, SEGMENT_BYTES_LIMIT, SyncPolicy};
pub use dir::segment::SegmentInfo;
pub use error::{ConfigError, Error, Result};
pub use format::{RecordFlags, RecordRef};
pub use fs::StdFs;
pub use fs::{FileHandle, FileLock, FileSystem, OpenMode, read_exact_at, read_full_at, write_all_at};
pub use group::{
    BlockingTail, CommitPhase, Committer, GroupConfig, GroupStats, OwnedEntry, Pending, SharedLog, Tail, Visibility,
};
pub use log::{Entry, Log, Options, Record, RecoveryReport};
pub use read::{Iter, Reader, VerifyReport};
pub use stats::{FSYNC_LATENCY_BOUNDS_US, LatencyHistogram, LogStats};
pub use write::truncate::RetentionReport;
