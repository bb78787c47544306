//! openraft 0.9 log storage on the segmented log.
//!
//! [`RaftLogStore`] implements openraft's storage-v2 [`RaftLogStorage`] and
//! [`RaftLogReader`] on a [`seglog_core::SharedLog`] (group commit):
//!
//! - Raft log index `i` is log offset `i`; each entry is one record, its
//!   value the entry serialized with serde (bincode 2, standard config).
//! - `append` queues the entries for the committer and returns once they
//!   are written (readable); the flush callback is called, in append order,
//!   only after the fsync that covers them. Appends from many Raft calls
//!   share fsyncs.
//! - `truncate(id)` is [`SharedLog::truncate_from`]; `purge(id)` records the
//!   purged log id in the state file, then is
//!   [`SharedLog::truncate_before`] (or [`SharedLog::restart_at`] when a
//!   snapshot install purges past the end of the log). Both run in queue
//!   order, after every append queued before them, so write I/O is
//!   serialized as openraft requires.
//! - The vote, the committed log id and the last purged log id live in
//!   `raft.state` ([`state`]), updated crash-atomically with one fsync.
//!   `save_vote` first waits for every append queued before it to be
//!   durable, so a vote is never durable ahead of an entry appended before
//!   it.
//!
//! A store directory holds `raft.state`, `raft.lock` (held while open) and
//! `log/` (the segmented log); a new store writes `raft.state` first. If
//! the log's recovery cuts entries that may have been acknowledged, opening
//! sets a vote fence before the cut is durable ([`fence`]: no campaign, no
//! vote for a candidate behind the lost entries, until the node holds them
//! again). Opening it also finishes a purge that a
//! crash interrupted (the state file says what was purged; the log is cut
//! to match) and refuses a directory whose log has a hole below its first
//! entry, whose log has no `raft.state` next to it (the vote was lost), or
//! whose log ends below the committed index. With a [`SnapshotFloor`], a
//! purge waits until the state machine's durable snapshot covers it.
//!
//! The committer runs on a thread of its own (named `raft-log-commit`);
//! the store's other file I/O (opening, the state file's fsync in
//! `save_vote` / `save_committed` / `purge`) is done inline on the calling
//! task: a few small writes, each followed by one fsync.

pub mod fence;
pub mod floor;
pub mod kv;
pub mod state;

pub use fence::VoteGate;
pub use floor::SnapshotFloor;

use std::fmt::Debug;
use std::io;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, AsyncRuntime, LogId, LogState, OptionalSend, RaftLogId, RaftLogReader, RaftTypeConfig, StorageError,
    StorageIOError, Vote,
};
use seglog_core::{
    Clock, CoarseClock, Config, FileLock, FileSystem, GroupConfig, Log, OwnedEntry, Pending, SharedLog, StdFs,
    Visibility,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{debug, info};

use crate::state::{RaftState, StateFile};

/// Name of the segmented log's directory inside a store directory.
pub const LOG_DIR_NAME: &str = "log";
/// Name of the store's lock file: an open store holds an exclusive lock
/// on it, which guards `raft.state` (the log has its own lock).
pub const LOCK_FILE_NAME: &str = "raft.lock";

/// What opening or using a store can fail with (converted to openraft's
/// [`StorageError`] at the trait boundary).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The segmented log failed.
    #[error(transparent)]
    Log(#[from] seglog_core::Error),
    /// A file operation on the state file failed.
    #[error("I/O error while {op} `{}`: {source}; check the disk and permissions, then reopen the store", path.display())]
    Io {
        /// What the store was doing.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Durable data does not verify.
    #[error("corruption in `{}`: {detail}", path.display())]
    Corruption {
        /// The damaged file (or the log directory).
        path: PathBuf,
        /// What is wrong and what to do.
        detail: String,
    },
    /// An entry or the state could not be serialized.
    #[error("cannot serialize {0}")]
    Encode(String),
    /// Raft asked for something that would leave a hole in the log.
    #[error("{0}")]
    Contract(String),
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The filesystem (`StdFs` for real use; `sim_fs::SimFs` in tests).
    pub fs: Arc<dyn FileSystem>,
    /// Where record timestamps come from.
    pub clock: Arc<dyn Clock>,
    /// The segmented log's configuration. Its sync policy does not matter
    /// for entries: group commit fsyncs every batch before acknowledging.
    pub config: Config,
    /// Group-commit batching and queue limits.
    pub group: GroupConfig,
    /// Where the committer runs. `Thread` (the default): a thread of its
    /// own, so fsyncs never block the async runtime. `Task`: a task on the
    /// openraft runtime (`C::AsyncRuntime::spawn`, so `open_with` must be
    /// called inside that runtime), doing its file I/O inline; meant for a
    /// single-threaded runtime over an in-memory filesystem, where it makes
    /// a run deterministic (the crash tests use it).
    pub committer: CommitterMode,
    /// A planted lie, for proving that the cluster simulation catches a
    /// store that breaks openraft's storage contract. Never set it outside
    /// canary runs: `None` (the default) is the only correct store.
    pub canary: Option<StoreCanary>,
    /// How far the state machine's durable snapshot reaches: with one, a
    /// `purge` waits until a durable snapshot covers what it removes (see
    /// [`floor`]; openraft 0.9 purges while a snapshot install is still in
    /// flight). `None`: purges run at once, and the state machine must
    /// make installed snapshots durable before openraft purges.
    pub snapshot_floor: Option<SnapshotFloor>,
}

/// A planted lie in a store (see [`StoreOptions::canary`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreCanary {
    /// `append` calls the flush callback as soon as the entries are queued,
    /// before the fsync that makes them durable.
    FlushBeforeFsync,
    /// `save_vote` returns `Ok` and writes nothing: the vote is forgotten
    /// at the next restart.
    ForgetVote,
}

/// Where a store's group committer runs (see [`StoreOptions::committer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitterMode {
    /// A thread of its own, named `raft-log-commit`.
    #[default]
    Thread,
    /// A task on the openraft runtime. Between a batch's write and its
    /// fsync it yields `fsync_yields` times (at least once) so other tasks
    /// run meanwhile, as they do while a thread is in `fdatasync`; on an
    /// in-memory disk in a single-threaded runtime this stands in for the
    /// fsync's latency, and a crash can fall inside it.
    Task {
        /// How many times to yield between a batch's write and its fsync.
        fsync_yields: u32,
    },
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            fs: StdFs::shared(),
            clock: Arc::new(CoarseClock),
            config: Config::default(),
            group: GroupConfig::default(),
            committer: CommitterMode::Thread,
            canary: None,
            snapshot_floor: None,
        }
    }
}

/// openraft log storage on a segmented log. See the crate docs.
pub struct RaftLogStore<C: RaftTypeConfig> {
    shared: SharedLog,
    state: Arc<Mutex<StateFile<C::NodeId>>>,
    dir: PathBuf,
    /// One past the last entry appended (queued), i.e. the next index.
    next_index: u64,
    /// The log id of the last entry, if the log holds any.
    last_log_id: Option<LogId<C::NodeId>>,
    /// Completes when the previous append's callback was called: callbacks
    /// are called in append order.
    prev_ack: Option<tokio::sync::oneshot::Receiver<()>>,
    /// Becomes true when the committer has closed the log.
    closed: tokio::sync::watch::Receiver<bool>,
    canary: Option<StoreCanary>,
    snapshot_floor: Option<SnapshotFloor>,
    /// The vote fence's bound while one stands (see [`fence`]).
    fence: Arc<tokio::sync::watch::Sender<Option<LogId<C::NodeId>>>>,
    /// A `raft.state` slot did not verify at open: the committed id may be
    /// older than the last one saved (see `read_vote`).
    stale_committed: bool,
    /// The store directory's lock, held while the store is open.
    _lock: Box<dyn FileLock>,
}

/// Resolves once a store's log is closed: every handle (the store and its
/// readers) was dropped or shut down, and the committer committed what was
/// queued and closed the log. Reopen a directory only after this, e.g.
/// after `Raft::shutdown` when restarting a node in the same process.
#[derive(Debug, Clone)]
pub struct ClosedSignal(tokio::sync::watch::Receiver<bool>);

impl ClosedSignal {
    /// Waits for the close.
    pub async fn wait(mut self) {
        // An error means the committer is gone: closed as well.
        let _ = self.0.wait_for(|closed| *closed).await;
    }
}

impl<C: RaftTypeConfig> Debug for RaftLogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftLogStore")
            .field("dir", &self.dir)
            .field("next_index", &self.next_index)
            .field("last_log_id", &self.last_log_id)
            .field("shared", &self.shared)
            .finish()
    }
}

/// A reader of the log (openraft's replication tasks hold these).
pub struct LogReader<C: RaftTypeConfig> {
    shared: SharedLog,
    _c: PhantomData<C>,
}

impl<C: RaftTypeConfig> Clone for LogReader<C> {
    fn clone(&self) -> Self {
        LogReader { shared: self.shared.clone(), _c: PhantomData }
    }
}

impl<C: RaftTypeConfig> Debug for LogReader<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader").field("shared", &self.shared).finish()
    }
}

impl<C> RaftLogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    /// Opens (or creates) the store in `dir` on the real filesystem.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open_with(dir, StoreOptions::default())
    }

    /// Opens (or creates) the store in `dir`.
    pub fn open_with(dir: impl AsRef<Path>, opts: StoreOptions) -> Result<Self, Error> {
        let dir = dir.as_ref().to_path_buf();
        opts.fs.create_dir_all(&dir).map_err(|source| Error::Io {
            op: "creating the store directory",
            path: dir.clone(),
            source,
        })?;
        let _lock = take_store_lock(&opts.fs, &dir)?;
        let log_dir = dir.join(LOG_DIR_NAME);
        let state_path = dir.join(state::STATE_FILE_NAME);
        let exists = |p: &Path| {
            opts.fs.exists(p).map_err(|source| Error::Io { op: "looking for", path: p.to_path_buf(), source })
        };
        // A new store gets its state file before its log, so that a log
        // without a state file next to it proves the state file was lost
        // (with the vote in it: found by the cluster simulation, where a
        // node whose `raft.state` a crash lost came back with no vote and
        // voted again in a term it had voted in).
        let log_existed = exists(&log_dir)?;
        if !log_existed {
            drop(StateFile::<C::NodeId>::open(&opts.fs, &dir)?);
        }
        if !exists(&state_path)? {
            return Err(Error::Corruption {
                path: state_path,
                detail: "the state file is missing next to an existing log: the vote, the committed and the purged log ids are lost, and a node that forgot its vote may vote twice in one term; do not restart this node with this directory: rebuild it from its peers (remove the directory and add the node back to the cluster as a new member), or restore the directory from a backup".into(),
            });
        }
        let mut state = StateFile::<C::NodeId>::open(&opts.fs, &dir)?;
        // Entries the log's recovery will cut that may have been
        // acknowledged: the fence goes into `raft.state` before the cut is
        // durable (a read-only look first, which writes nothing), so a
        // crash in between cannot leave the cut without the fence.
        if log_existed {
            let ro = Log::open_with(
                &log_dir,
                seglog_core::Options {
                    fs: Arc::clone(&opts.fs),
                    clock: Arc::clone(&opts.clock),
                    config: opts.config.clone(),
                    read_only: true,
                },
            );
            // A failing read-only open is left to the read-write one,
            // which reports the same problem or recovers from it.
            if let Ok(ro) = ro
                && let Some(lost) = ro.recovery_report().possibly_acknowledged.clone()
            {
                set_fence(&mut state, &lost)?;
            }
        }
        let mut log = Log::open_with(
            &log_dir,
            seglog_core::Options { fs: Arc::clone(&opts.fs), clock: opts.clock, config: opts.config, read_only: false },
        )?;
        if let Some(lost) = log.recovery_report().possibly_acknowledged.clone() {
            set_fence(&mut state, &lost)?;
        }
        // Finish a purge a crash interrupted: the state file is written
        // first, so it may say more was purged than the log shows.
        let purged = state.get().last_purged.clone();
        let keep_from = purged.as_ref().map_or(0, |p| p.index + 1);
        if log.next_offset() < keep_from {
            log.restart_at(keep_from)?;
        } else if log.first_offset() < keep_from {
            log.truncate_before(keep_from)?;
        }
        // Without a purge, a log may start past 0 (a fresh store's first
        // append may come at any index); after one, nothing may be missing
        // between the purged entries and the first entry.
        if purged.is_some() && log.first_offset() > keep_from {
            return Err(Error::Corruption {
                path: log_dir,
                detail: format!(
                    "the log starts at index {} but entries are purged only up to {:?}: entries are missing; rebuild this node from its peers",
                    log.first_offset(),
                    purged
                ),
            });
        }
        // Every committed entry is in the log (or purged): a log that ends
        // below the committed index lost entries this node had made durable
        // (damage the log could not tell from a torn write).
        if let Some(committed) = state.get().committed.as_ref()
            && log.next_offset() <= committed.index
            && purged.as_ref().is_none_or(|p| p.index < committed.index)
        {
            return Err(Error::Corruption {
                path: log_dir,
                detail: format!(
                    "the log ends before index {} but entries up to {committed} are committed: committed entries are missing; rebuild this node from its peers",
                    log.next_offset()
                ),
            });
        }
        // A fence from an earlier boot lifts if the log (or a purge) got
        // back to its bound since, or a later term's entry was committed.
        let fence = state.get().vote_fence.clone().filter(|bound| {
            let caught_up = log.next_offset() > bound.index || purged.as_ref().is_some_and(|p| p.index >= bound.index);
            let later_term = state.get().committed.as_ref().is_some_and(|c| c.leader_id.term > bound.leader_id.term);
            !caught_up && !later_term
        });
        if fence != state.get().vote_fence {
            let mut st = state.get().clone();
            st.vote_fence = None;
            state.set(st)?;
        }
        if let Some(bound) = &fence {
            tracing::warn!(dir = %dir.display(), %bound, "vote fence: this node may have lost entries it acknowledged; it will not campaign, and will vote only for a candidate whose log reaches the bound, until it holds them again");
        }
        let last_log_id = if log.next_offset() > log.first_offset() {
            let rec = log.read(log.next_offset() - 1)?;
            Some(decode::<C>(&rec)?.get_log_id().clone())
        } else {
            purged
        };
        let next_index = log.next_offset();
        let state_damaged = state.damaged_at_open();
        info!(dir = %dir.display(), first = log.first_offset(), next_index, ?last_log_id, "opened raft log store");
        let (shared, committer) = SharedLog::new(log, opts.group)?;
        let (closed_tx, closed) = tokio::sync::watch::channel(false);
        match opts.committer {
            CommitterMode::Thread => {
                std::thread::Builder::new()
                    .name("raft-log-commit".into())
                    .spawn(move || {
                        if let Err(e) = committer.run_blocking() {
                            tracing::error!(error = %e, "raft log committer stopped");
                        }
                        let _ = closed_tx.send(true);
                    })
                    .map_err(|source| Error::Io {
                        op: "starting the committer thread for",
                        path: dir.clone(),
                        source,
                    })?;
            }
            CommitterMode::Task { fsync_yields } => {
                // Detached: it ends when the last handle is dropped.
                let _detached = C::AsyncRuntime::spawn(async move {
                    let pause = move |phase| {
                        let n = if phase == seglog_core::CommitPhase::Written { fsync_yields.max(1) } else { 1 };
                        Yield(n)
                    };
                    if let Err(e) = committer.run_with(pause).await {
                        tracing::error!(error = %e, "raft log committer stopped");
                    }
                    let _ = closed_tx.send(true);
                });
            }
        }
        Ok(RaftLogStore {
            shared,
            state: Arc::new(Mutex::new(state)),
            dir,
            next_index,
            last_log_id,
            prev_ack: None,
            closed,
            canary: opts.canary,
            snapshot_floor: opts.snapshot_floor,
            stale_committed: state_damaged,
            fence: Arc::new(tokio::sync::watch::channel(fence).0),
            _lock,
        })
    }

    /// The gate the node's elections and vote handling must follow (see
    /// [`fence`]): take it before handing the store to openraft, call
    /// [`VoteGate::hold_elections`] on the Raft, and ask
    /// [`VoteGate::may_grant`] before passing a vote request to
    /// `Raft::vote`.
    pub fn vote_gate(&self) -> VoteGate<C::NodeId> {
        VoteGate::new(self.fence.subscribe())
    }

    /// A signal that resolves once this store's log is closed (see
    /// [`ClosedSignal`]); take it before handing the store to openraft.
    pub fn closed_signal(&self) -> ClosedSignal {
        ClosedSignal(self.closed.clone())
    }

    /// The shared log underneath (for statistics and inspection).
    pub fn shared_log(&self) -> &SharedLog {
        &self.shared
    }

    /// Commits everything queued, closes the log cleanly (the next open
    /// reads no record) and stops the committer.
    pub async fn shutdown(self) -> Result<(), Error> {
        Ok(self.shared.shutdown().await?)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, StateFile<C::NodeId>> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Updates the state file; a fence that lifted since the last update
    /// is cleared in the same write.
    fn update_state(&self, f: impl FnOnce(&mut RaftState<C::NodeId>)) -> Result<(), Error> {
        let mut file = self.state();
        let mut st = file.get().clone();
        f(&mut st);
        if self.fence.borrow().is_none() {
            st.vote_fence = None;
        }
        file.set(st)
    }

    /// Lifts the fence if `pred` holds of its bound.
    fn lift_fence_if(&self, pred: impl FnOnce(&LogId<C::NodeId>) -> bool) {
        lift_fence_if(&self.fence, pred);
    }

    /// The log id of the entry at `index`, read back from the log.
    fn log_id_at(&self, index: u64) -> Result<LogId<C::NodeId>, Error> {
        let rec = self.shared.read(index, Visibility::Accepted)?;
        Ok(decode::<C>(&rec)?.get_log_id().clone())
    }
}

/// A future that is pending the given number of times (waking itself each
/// time), then ready.
struct Yield(u32);

impl std::future::Future for Yield {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.0 == 0 {
            return std::task::Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// Takes the store directory's lock (see [`LOCK_FILE_NAME`]).
fn take_store_lock(fs: &Arc<dyn FileSystem>, dir: &Path) -> Result<Box<dyn FileLock>, Error> {
    let path = dir.join(LOCK_FILE_NAME);
    fs.try_lock(&path).map_err(|source| match source.kind() {
        io::ErrorKind::WouldBlock => Error::Log(seglog_core::Error::Locked { path: dir.to_path_buf() }),
        _ => Error::Io { op: "locking", path, source },
    })
}

/// Sets (or widens) the vote fence for entries `lost` that a recovery
/// cuts and that may have been acknowledged (see [`fence`]): durable
/// before it returns. No fence without a vote (no entry was accepted) or
/// when a purge covers the entries.
fn set_fence<NID: openraft::NodeId>(state: &mut StateFile<NID>, lost: &std::ops::Range<u64>) -> Result<(), Error> {
    let st = state.get();
    let Some(vote) = st.vote.as_ref() else { return Ok(()) };
    let last = lost.end.saturating_sub(1);
    if lost.is_empty() || st.last_purged.as_ref().is_some_and(|p| p.index >= last) {
        return Ok(());
    }
    // No entry this node accepted has a leader id above its vote's.
    let bound = LogId::new(vote.leader_id().clone(), last);
    let wider = st.vote_fence.clone().max(Some(bound));
    if wider == st.vote_fence {
        return Ok(());
    }
    tracing::warn!(?lost, bound = ?wider, "the log's recovery cut entries that may have been acknowledged: vote fence set");
    let mut next = st.clone();
    next.vote_fence = wider;
    state.set(next)
}

/// Lifts the fence in `tx` if one stands and `pred` holds of its bound.
fn lift_fence_if<NID: openraft::NodeId>(
    tx: &tokio::sync::watch::Sender<Option<LogId<NID>>>,
    pred: impl FnOnce(&LogId<NID>) -> bool,
) {
    tx.send_if_modified(|fence| {
        let lift = fence.as_ref().is_some_and(pred);
        if lift {
            info!(bound = ?fence, "vote fence lifted");
            *fence = None;
        }
        lift
    });
}

/// Lifts the vote fence of the (closed) store in `dir`, accepting that
/// entries it may have lost — if any had been acknowledged — may be lost
/// for good. An operator's last resort when a majority of a cluster is
/// fenced and no leader can be elected (see [`fence`]); never needed
/// otherwise, as fences lift by themselves once a node caught up. Returns
/// the bound of the fence lifted (`None`: there was none).
pub fn lift_vote_fence<NID: openraft::NodeId>(
    fs: &Arc<dyn FileSystem>,
    dir: impl AsRef<Path>,
) -> Result<Option<LogId<NID>>, Error> {
    let dir = dir.as_ref();
    let _lock = take_store_lock(fs, dir)?;
    if !fs.exists(&dir.join(state::STATE_FILE_NAME)).map_err(|source| Error::Io {
        op: "looking for",
        path: dir.join(state::STATE_FILE_NAME),
        source,
    })? {
        return Err(Error::Contract(format!("no raft-log store (no `raft.state`) in `{}`", dir.display())));
    }
    let mut state = StateFile::<NID>::open(fs, dir)?;
    let was = state.get().vote_fence.clone();
    if was.is_some() {
        let mut st = state.get().clone();
        st.vote_fence = None;
        state.set(st)?;
        tracing::warn!(dir = %dir.display(), bound = ?was, "vote fence lifted by hand");
    }
    Ok(was)
}

/// Decodes the entry in `rec`, checking that it belongs at its offset.
fn decode<C>(rec: &seglog_core::Record) -> Result<C::Entry, Error>
where
    C: RaftTypeConfig,
    C::Entry: DeserializeOwned,
{
    let cfg = bincode::config::standard();
    let (entry, used): (C::Entry, usize) =
        bincode::serde::decode_from_slice(&rec.value, cfg).map_err(|e| Error::Corruption {
            path: PathBuf::new(),
            detail: format!("the entry at index {} does not decode: {e}", rec.offset),
        })?;
    if used != rec.value.len() || entry.get_log_id().index != rec.offset {
        return Err(Error::Corruption {
            path: PathBuf::new(),
            detail: format!(
                "the record at offset {} holds the entry for index {} ({} of {} bytes used)",
                rec.offset,
                entry.get_log_id().index,
                used,
                rec.value.len()
            ),
        });
    }
    Ok(entry)
}

fn read_entries<C>(shared: &SharedLog, range: impl RangeBounds<u64>) -> Result<Vec<C::Entry>, Error>
where
    C: RaftTypeConfig,
    C::Entry: DeserializeOwned,
{
    let mut from = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let to = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    from = from.max(shared.first_offset());
    let to = to.min(shared.end(Visibility::Accepted));
    let mut out = Vec::new();
    while from < to {
        let recs = shared.read_range(from, to, Visibility::Accepted, 4 << 20)?;
        let Some(last) = recs.last() else { break };
        from = last.offset + 1;
        for rec in &recs {
            out.push(decode::<C>(rec)?);
        }
    }
    Ok(out)
}

fn read_err<NID: openraft::NodeId>(e: Error) -> StorageError<NID> {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

fn write_err<NID: openraft::NodeId>(e: impl Into<Error>) -> StorageError<NID> {
    StorageIOError::write_logs(AnyError::new(&e.into())).into()
}

fn to_io(e: &seglog_core::Error) -> io::Error {
    let kind = if e.is_disk_full() { io::ErrorKind::StorageFull } else { io::ErrorKind::Other };
    io::Error::new(kind, e.to_string())
}

impl<C> RaftLogReader<C> for LogReader<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        read_entries::<C>(&self.shared, range).map_err(read_err)
    }
}

impl<C> RaftLogReader<C> for RaftLogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        read_entries::<C>(&self.shared, range).map_err(read_err)
    }
}

impl<C> RaftLogStorage<C> for RaftLogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Serialize + DeserializeOwned,
{
    type LogReader = LogReader<C>;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        let last_purged_log_id = self.state().get().last_purged.clone();
        let last_log_id = self.last_log_id.clone().or_else(|| last_purged_log_id.clone());
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogReader { shared: self.shared.clone(), _c: PhantomData }
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        if self.canary == Some(StoreCanary::ForgetVote) {
            return Ok(());
        }
        // Write I/O is serialized: everything appended before this vote is
        // durable before the vote is.
        self.shared.sync().await.map_err(|e| StorageIOError::write_vote(AnyError::new(&e)))?;
        let v = vote.clone();
        self.update_state(|s| s.vote = Some(v)).map_err(|e| StorageIOError::write_vote(AnyError::new(&e)))?;
        debug!(%vote, "saved vote");
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        let vote = self.state().get().vote.clone();
        // While fenced, the vote is reported as not committed: openraft
        // restores a node whose committed vote names itself as leader at
        // startup, and a leader that lost entries it had sent would write
        // different entries under log ids it already used (cluster seed
        // 5267). The same after a damaged `raft.state` slot: the committed
        // id may have gone back, and a restored leader serves linearizable
        // reads from its committed id without committing anything first
        // (cluster seed 12937 read a value older than an acknowledged
        // write). Not committed, the node starts as a follower and a leader
        // is elected; its leader id stays (nothing between the two
        // compares differently).
        if self.fence.borrow().is_some() || self.stale_committed {
            return Ok(vote.map(|v| Vote::new(v.leader_id().term, v.leader_id().node_id.clone())));
        }
        Ok(vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<C::NodeId>>) -> Result<(), StorageError<C::NodeId>> {
        // An entry of a later term than the fence's is committed here: its
        // leader was elected without this node's vote and holds every
        // committed entry, and this log matches it up to there.
        if let Some(c) = &committed {
            self.lift_fence_if(|bound| c.leader_id.term > bound.leader_id.term);
        }
        let fence_lifted = self.fence.borrow().is_none() && self.state().get().vote_fence.is_some();
        if self.state().get().committed == committed && !fence_lifted {
            return Ok(());
        }
        self.update_state(|s| s.committed = committed).map_err(|e| StorageIOError::write(AnyError::new(&e)))?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self.state().get().committed.clone())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut records = Vec::new();
        let mut last = None;
        // Entries at or below the last purged index are already covered by
        // the snapshot that replaced them: skip them (openraft's suite
        // appends such entries after a snapshot-driven purge).
        let purged_upto = self.state().get().last_purged.as_ref().map(|p| p.index);
        let mut entries =
            entries.into_iter().filter(|e| purged_upto.is_none_or(|p| e.get_log_id().index > p)).peekable();
        // A fresh store (no entry, nothing purged) may start at any index.
        if let Some(first) = entries.peek()
            && first.get_log_id().index > self.next_index
            && self.last_log_id.is_none()
        {
            let at = first.get_log_id().index;
            self.shared.restart_at(at).await.map_err(write_err)?;
            self.next_index = at;
        }
        for entry in entries {
            let id = entry.get_log_id().clone();
            let want = self.next_index + records.len() as u64;
            if id.index != want {
                let msg =
                    format!("append of index {} where the log expects index {want} (a hole or an overlap)", id.index);
                return Err(write_err(Error::Contract(msg)));
            }
            let bytes = bincode::serde::encode_to_vec(&entry, bincode::config::standard())
                .map_err(|e| write_err(Error::Encode(format!("entry {id}: {e}"))))?;
            records.push(OwnedEntry::new(bytes));
            last = Some(id);
        }
        let prev = self.prev_ack.take();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        self.prev_ack = Some(done_rx);
        let Some(last) = last else {
            // Nothing to write: flushed as soon as everything before it is.
            // Detached: the JoinHandle is dropped (the task runs on).
            let _detached = C::AsyncRuntime::spawn(async move {
                if let Some(prev) = prev {
                    let _ = prev.await;
                }
                callback.log_io_completed(Ok(()));
                let _ = done_tx.send(());
            });
            return Ok(());
        };
        let n = records.len() as u64;
        let mut pending: std::pin::Pin<Box<Pending>> =
            Box::pin(self.shared.submit_batch(records).await.map_err(write_err)?);
        // Readable when this returns: wait until the committer wrote the
        // entries (or the batch failed).
        let early = tokio::select! {
            res = &mut pending => Some(res),
            res = self.shared.wait_for(last.index, Visibility::Accepted) => match res {
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            },
        };
        let failed = match &early {
            Some(Err(e)) => Some(e.duplicate()),
            _ => None,
        };
        let lie = self.canary == Some(StoreCanary::FlushBeforeFsync);
        let fence = Arc::clone(&self.fence);
        let last_index = last.index;
        // Detached: the JoinHandle is dropped (the task runs on).
        let _detached = C::AsyncRuntime::spawn(async move {
            if let Some(prev) = prev {
                let _ = prev.await;
            }
            if lie {
                callback.log_io_completed(Ok(()));
                let _ = done_tx.send(());
                let _ = pending.await;
                return;
            }
            let res = match early {
                Some(res) => res,
                None => pending.await,
            };
            // Durable again up to the fence's bound, with entries a leader
            // sent after the cut: the node holds what it may have lost.
            if res.is_ok() {
                lift_fence_if(&fence, |bound| last_index >= bound.index);
            }
            callback.log_io_completed(res.map(|_| ()).map_err(|e| to_io(&e)));
            let _ = done_tx.send(());
        });
        if let Some(e) = failed {
            return Err(write_err(e));
        }
        self.next_index += n;
        self.last_log_id = Some(last);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let index = log_id.index;
        if index >= self.next_index {
            return Ok(());
        }
        let first = self.shared.first_offset();
        if index < first {
            let msg = format!("truncate at index {index}, below the first entry {first} (purged entries)");
            return Err(write_err(Error::Contract(msg)));
        }
        self.shared.truncate_from(index).await.map_err(write_err)?;
        self.next_index = index;
        self.last_log_id = if index > first {
            Some(self.log_id_at(index - 1).map_err(write_err)?)
        } else {
            self.state().get().last_purged.clone()
        };
        debug!(index, "truncated");
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let keep_from = log_id.index + 1;
        if self.state().get().last_purged.as_ref().is_some_and(|p| p.index >= log_id.index) {
            return Ok(());
        }
        // Nothing is removed that no durable snapshot covers.
        if let Some(floor) = &self.snapshot_floor {
            floor.wait_covers(log_id.index).await.map_err(|why| {
                write_err(Error::Contract(format!(
                    "purge up to index {} refused: the snapshot covering it is not durable ({why}); the log keeps those entries",
                    log_id.index
                )))
            })?;
        }
        // The state file first: a crash before the log is cut is finished
        // at open (see `open_with`); the other order could leave a hole.
        let id = log_id.clone();
        self.update_state(|s| s.last_purged = Some(id)).map_err(write_err)?;
        // A durable snapshot covers the entries the fence is about.
        self.lift_fence_if(|bound| log_id.index >= bound.index);
        if keep_from > self.next_index {
            // A snapshot ahead of the whole log: restart it empty there.
            self.shared.restart_at(keep_from).await.map_err(write_err)?;
            self.next_index = keep_from;
            self.last_log_id = Some(log_id);
        } else {
            self.shared.truncate_before(keep_from).await.map_err(write_err)?;
        }
        debug!(keep_from, "purged");
        Ok(())
    }
}
