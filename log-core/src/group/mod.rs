//! Group commit: a shareable handle ([`SharedLog`]) for many producers and
//! readers, and the [`Committer`] loop that turns many producers' appends
//! into one write and one fsync.
//!
//! Producers put appends in a bounded queue and wait. The committer takes
//! what is queued (up to a batch limit), appends it to the log under a write
//! lock, writes it with one commit marker, *releases the lock*, fsyncs, takes
//! the lock again to record the new durable offset, and only then
//! acknowledges each append, in offset order. While the fsync runs,
//! producers keep queueing (the next batch) and readers keep reading.
//!
//! Rules this module keeps:
//! - an append is acknowledged (`Ok(offset)`) only after an fsync covering it
//!   returned `Ok`; `Log::durable_offset` never moves before that;
//! - an fsync or write error fails every append of its batch that was not
//!   already durable and poisons the log (every later append fails too);
//! - a full disk fails the batch and takes its records back out of the log
//!   (the cut is fsynced), so an append reported as failed with
//!   [`Error::DiskFull`](crate::Error::DiskFull) never reappears; the log keeps working after space
//!   is freed;
//! - readers never see part of a record: they read under a shared lock that
//!   the committer holds exclusively only while it changes the log's state.
//!
//! ```
//! use seglog_core::{Config, GroupConfig, Log, OwnedEntry, SharedLog, Visibility};
//! # let rt = tokio::runtime::Runtime::new()?;
//! # rt.block_on(async {
//! let dir = tempfile::tempdir()?;
//! let log = Log::open(dir.path(), Config::default())?;
//! let (shared, committer) = SharedLog::new(log, GroupConfig::default())?;
//! // The committer does the writes and fsyncs: a thread of its own.
//! let commit = tokio::task::spawn_blocking(move || committer.run_blocking());
//!
//! let offset = shared.append(OwnedEntry::new("hello")).await?; // durable when it resolves
//! let pending = shared.submit(OwnedEntry::new("world")).await?; // queued
//! assert_eq!(shared.read(offset, Visibility::Durable)?.value, b"hello");
//! assert_eq!(pending.await?, 1..2);
//! shared.shutdown().await?; // commits what is queued, closes the log
//! commit.await??;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Executors
//! Nothing here spawns a thread or names a runtime. The committer is driven
//! by whoever owns it:
//! - [`Committer::run_blocking`] on a thread of its own (with tokio:
//!   `tokio::task::spawn_blocking(move || committer.run_blocking())`). This
//!   is the production choice: the committer's file I/O and fsyncs never
//!   block an executor thread.
//! - [`Committer::run`] / [`Committer::run_with`] as an async task. **Its
//!   writes and fsyncs run inline and block the executor thread that polls
//!   it** for as long as the disk takes. That is what a simulation wants (the
//!   simulator's disk is in memory, and `run_with` lets it spend simulated
//!   time between the phases of a commit); on tokio, give it a runtime of
//!   its own or use `run_blocking`.
//!
//! Producers' and readers' calls are safe on any executor. They never wait
//! for the disk, with one exception: they take the log's lock, which the
//! committer holds while it appends a batch into the log's buffer and
//! writes it (one `write` call; rarely a segment roll, whose seal fsyncs).

mod committer;
mod queue;
mod shared;
mod tail;
mod types;

pub use committer::*;
use queue::*;
pub use shared::*;
pub use tail::*;
pub use types::*;
