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
//!   [`Error::DiskFull`] never reappears; the log keeps working after space
//!   is freed;
//! - readers never see part of a record: they read under a shared lock that
//!   the committer holds exclusively only while it changes the log's state.
//!
//! ```
//! use log_core::{Config, GroupConfig, Log, OwnedEntry, SharedLog, Visibility};
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

use std::collections::VecDeque;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use event_listener::{Event, Listener};
use futures_channel::oneshot;
use tracing::{debug, info_span, warn};

use crate::error::ConfigError;
use crate::error::{Error, Result};
use crate::format;
use crate::log::{Entry, Log, Record};
use crate::truncate::RetentionReport;
use crate::writer::SyncPlan;

/// Limits of the group-commit front. Every limit bounds memory: the queue
/// holds at most `queue_*` of appends waiting for the committer, and a batch
/// (one write, one fsync) takes at most `batch_*` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// Most records in one batch.
    pub batch_records_max: usize,
    /// Most record bytes (key + value + framing) in one batch.
    pub batch_bytes_max: u64,
    /// Most records waiting in the queue; producers wait for room beyond it.
    pub queue_records_max: usize,
    /// Most record bytes waiting in the queue.
    pub queue_bytes_max: u64,
    /// How long [`Committer::run_blocking`] may hold a batch open for the
    /// producers it just acknowledged to come back (zero: never). After
    /// acknowledging `k` records, if fewer than `queued + k` records are
    /// queued, it waits up to `linger` for them before writing. With many
    /// producers that each keep one append in flight, this merges the two
    /// cohorts that otherwise alternate between "in the fsync" and "queued"
    /// into one batch per fsync (up to twice the records per fsync), at the
    /// price of up to `linger` more latency per batch when they don't come.
    pub linger: Duration,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            batch_records_max: 4096,
            batch_bytes_max: 4 << 20,
            queue_records_max: 64 << 10,
            queue_bytes_max: 64 << 20,
            linger: Duration::ZERO,
        }
    }
}

impl GroupConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &'static str| Err(ConfigError { field, msg: "must be at least 1".into() });
        if self.batch_records_max == 0 {
            return bad("batch_records_max");
        }
        if self.batch_bytes_max == 0 {
            return bad("batch_bytes_max");
        }
        if self.queue_records_max == 0 {
            return bad("queue_records_max");
        }
        if self.queue_bytes_max == 0 {
            return bad("queue_bytes_max");
        }
        Ok(())
    }
}

/// What a reader may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// Every record appended to the log, durable or not. A crash, a full
    /// disk or a failed fsync may still take such a record away.
    Accepted,
    /// Only records an fsync has covered: they survive a crash.
    Durable,
}

/// An owned [`Entry`], for appends that outlive the caller's borrow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnedEntry {
    /// The record's key.
    pub key: Option<Vec<u8>>,
    /// The record's value.
    pub value: Vec<u8>,
    /// Explicit timestamp; `None` takes the log's clock when it is appended.
    pub timestamp_ms: Option<u64>,
    /// Whether the record deletes its key.
    pub tombstone: bool,
}

impl OwnedEntry {
    /// An unkeyed record with this value.
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Self { value: value.into(), ..Self::default() }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets an explicit timestamp.
    pub fn with_timestamp(mut self, timestamp_ms: u64) -> Self {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }

    /// Marks the record as a tombstone for its key.
    pub fn tombstone(mut self) -> Self {
        self.tombstone = true;
        self
    }

    /// The borrowed form [`Log::append`] takes.
    pub fn as_entry(&self) -> Entry<'_> {
        Entry {
            key: self.key.as_deref(),
            value: &self.value,
            timestamp_ms: self.timestamp_ms,
            tombstone: self.tombstone,
        }
    }

    fn payload_len(&self) -> u64 {
        self.as_entry().payload_len()
    }
}

impl From<Entry<'_>> for OwnedEntry {
    fn from(e: Entry<'_>) -> Self {
        Self {
            key: e.key.map(<[u8]>::to_vec),
            value: e.value.to_vec(),
            timestamp_ms: e.timestamp_ms,
            tombstone: e.tombstone,
        }
    }
}

/// Counters of the committer's work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Batches committed (each: one write, one fsync), failed ones included.
    pub batches: u64,
    /// Group-commit fsyncs issued (segment seals fsync too, uncounted).
    pub fsyncs: u64,
    /// Records acknowledged durable.
    pub records_acked: u64,
    /// Records whose append failed.
    pub records_failed: u64,
    /// The most records one batch carried.
    pub largest_batch: u64,
}

/// Where a commit stands, for [`Committer::run_with`]'s pause hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitPhase {
    /// The batch is written (with its commit marker); its fsync is next.
    Written,
    /// The fsync returned; acknowledging is next.
    Synced,
}

type AppendAck = oneshot::Sender<Result<Range<u64>>>;
/// An admin op: runs on the log and returns the reply to send once the
/// log's new state is published.
type AdminFn = Box<dyn FnOnce(&mut Log) -> Box<dyn FnOnce() + Send> + Send>;

enum Op {
    Append {
        entries: Vec<OwnedEntry>,
        ack: AppendAck,
    },
    /// Resolves when everything queued before it is durable.
    Barrier {
        ack: oneshot::Sender<Result<u64>>,
    },
    /// Runs alone, after everything queued before it was committed.
    Admin(AdminFn),
}

impl Op {
    fn size(&self) -> (usize, u64) {
        match self {
            Op::Append { entries, .. } => {
                (entries.len(), entries.iter().map(|e| e.payload_len() + format::RECORD_OVERHEAD as u64).sum())
            }
            Op::Barrier { .. } | Op::Admin(_) => (0, 0),
        }
    }

    fn fail(self, err: impl Fn() -> Error) {
        match self {
            Op::Append { ack, .. } => {
                let _ = ack.send(Err(err()));
            }
            Op::Barrier { ack } => {
                let _ = ack.send(Err(err()));
            }
            // Dropping the closure drops its reply channel: the waiter sees
            // the committer gone.
            Op::Admin(_) => {}
        }
    }
}

#[derive(Default)]
struct Queue {
    ops: VecDeque<Op>,
    records: usize,
    bytes: u64,
    /// Set by `shutdown` (or the last handle's drop): no new work.
    closing: Option<&'static str>,
    /// The committer ended; everything left was failed.
    stopped: bool,
    /// The result of the final close, for `shutdown`.
    close_result: Option<Result<()>>,
    /// While the committer lingers: wake it when this many records are
    /// queued (0: on every enqueue).
    wake_at: usize,
}

struct Inner {
    log: RwLock<Option<Log>>,
    queue: Mutex<Queue>,
    cfg: GroupConfig,
    record_bytes_max: u32,
    /// The committer has work (or should stop).
    work: Event,
    /// The queue has room again.
    space: Event,
    /// The accepted or durable end moved, or the committer stopped.
    progress: Event,
    first: AtomicU64,
    next: AtomicU64,
    durable: AtomicU64,
    in_flight: AtomicBool,
    handles: AtomicUsize,
    stats: Mutex<GroupStats>,
}

impl Inner {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read_log(&self) -> Result<RwLockReadGuard<'_, Option<Log>>> {
        self.log.read().map_err(|_| lock_poisoned())
    }

    fn write_log(&self) -> Result<RwLockWriteGuard<'_, Option<Log>>> {
        self.log.write().map_err(|_| lock_poisoned())
    }

    fn publish(&self, log: &Log) {
        self.first.store(log.first_offset(), Ordering::Release);
        self.next.store(log.next_offset(), Ordering::Release);
        self.durable.store(log.durable_offset(), Ordering::Release);
        self.progress.notify(usize::MAX);
    }

    fn stats(&self) -> MutexGuard<'_, GroupStats> {
        self.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `op`, waiting for room; fails once the log is shutting down.
    async fn enqueue(&self, op: Op) -> Result<()> {
        let (n, bytes) = op.size();
        let mut op = Some(op);
        loop {
            let listener = self.space.listen();
            {
                let mut q = self.queue();
                if let Some(why) = q.closing {
                    return Err(Error::Closed { why });
                }
                let fits = q.records + n <= self.cfg.queue_records_max && q.bytes + bytes <= self.cfg.queue_bytes_max;
                // An append larger than the whole queue still goes in alone;
                // barriers and admin ops take no room and never wait.
                if (fits || n == 0 || q.ops.is_empty())
                    && let Some(op) = op.take()
                {
                    q.records += n;
                    q.bytes += bytes;
                    q.ops.push_back(op);
                    let wake = q.records >= q.wake_at || n == 0;
                    drop(q);
                    if wake {
                        self.work.notify(1);
                    }
                    return Ok(());
                }
            }
            listener.await;
        }
    }
}

fn lock_poisoned() -> Error {
    Error::Poisoned { cause: "a thread panicked while it held the log's lock".into() }
}

fn committer_gone() -> Error {
    Error::Closed { why: "the committer stopped before this operation was done" }
}

/// A group-commit handle on a [`Log`]: `Clone + Send + Sync`, for any number
/// of producer and reader tasks. Created with its [`Committer`] by
/// [`SharedLog::new`]; see the [module docs](self) for how to run that.
pub struct SharedLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SharedLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLog")
            .field("first_offset", &self.first_offset())
            .field("next_offset", &self.next_offset())
            .field("durable_offset", &self.durable_offset())
            .finish_non_exhaustive()
    }
}

impl Clone for SharedLog {
    fn clone(&self) -> Self {
        self.inner.handles.fetch_add(1, Ordering::AcqRel);
        Self { inner: Arc::clone(&self.inner) }
    }
}

impl Drop for SharedLog {
    /// When the last handle goes, the committer drains the queue, closes the
    /// log cleanly and returns.
    fn drop(&mut self) {
        if self.inner.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut q = self.inner.queue();
            q.closing.get_or_insert("every handle was dropped");
            drop(q);
            self.inner.work.notify(usize::MAX);
            self.inner.space.notify(usize::MAX);
        }
    }
}

/// An append in the queue; resolves to its offset once it is durable.
#[must_use = "an append is acknowledged only when its Pending resolves"]
#[derive(Debug)]
pub struct Pending {
    rx: oneshot::Receiver<Result<Range<u64>>>,
}

impl Future for Pending {
    type Output = Result<Range<u64>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(|r| r.unwrap_or_else(|_| Err(committer_gone())))
    }
}

impl SharedLog {
    /// Wraps an open log. The returned [`Committer`] must be run (see the
    /// module docs) for anything to be committed. A log whose
    /// [`SyncPolicy`](crate::SyncPolicy) is not `Manual` still works, but
    /// syncs more often than group commit needs.
    pub fn new(log: Log, cfg: GroupConfig) -> Result<(SharedLog, Committer)> {
        cfg.validate()?;
        let inner = Arc::new(Inner {
            first: AtomicU64::new(log.first_offset()),
            next: AtomicU64::new(log.next_offset()),
            durable: AtomicU64::new(log.durable_offset()),
            record_bytes_max: log.config().record_bytes_max,
            log: RwLock::new(Some(log)),
            queue: Mutex::new(Queue::default()),
            cfg,
            work: Event::new(),
            space: Event::new(),
            progress: Event::new(),
            in_flight: AtomicBool::new(false),
            handles: AtomicUsize::new(1),
            stats: Mutex::new(GroupStats::default()),
        });
        Ok((SharedLog { inner: Arc::clone(&inner) }, Committer { inner, finished: false }))
    }

    fn check_sizes(&self, entries: &[OwnedEntry]) -> Result<()> {
        for e in entries {
            let size = e.payload_len();
            if size > u64::from(self.inner.record_bytes_max) {
                return Err(Error::RecordTooLarge { size, max: self.inner.record_bytes_max });
            }
        }
        Ok(())
    }

    /// Queues one record, waiting only for room in the queue (backpressure),
    /// and returns a [`Pending`] that resolves to its offset once it is
    /// durable. Use it to keep many appends in flight from one task.
    pub async fn submit(&self, entry: OwnedEntry) -> Result<Pending> {
        self.submit_batch(vec![entry]).await
    }

    /// Queues records that are appended atomically (consecutive offsets, all
    /// or none accepted); the [`Pending`] resolves to their offset range.
    pub async fn submit_batch(&self, entries: Vec<OwnedEntry>) -> Result<Pending> {
        self.check_sizes(&entries)?;
        let (tx, rx) = oneshot::channel();
        self.inner.enqueue(Op::Append { entries, ack: tx }).await?;
        Ok(Pending { rx })
    }

    /// Appends one record and resolves to its offset once an fsync covering
    /// it has returned. On `Err` it was not acknowledged: after
    /// [`Error::DiskFull`] it is not in the log; after an I/O error or
    /// [`Error::Closed`] it may survive in the log only if a crash keeps
    /// unsynced data (never reported durable).
    pub async fn append(&self, entry: OwnedEntry) -> Result<u64> {
        self.submit(entry).await?.await.map(|r| r.start)
    }

    /// [`append`](Self::append) for several records at once (atomic, as
    /// [`submit_batch`](Self::submit_batch)).
    pub async fn append_batch(&self, entries: Vec<OwnedEntry>) -> Result<Range<u64>> {
        self.submit_batch(entries).await?.await
    }

    /// Resolves once everything queued before it is durable (or failed);
    /// returns the durable offset.
    pub async fn sync(&self) -> Result<u64> {
        let (tx, rx) = oneshot::channel();
        self.inner.enqueue(Op::Barrier { ack: tx }).await?;
        rx.await.unwrap_or_else(|_| Err(committer_gone()))
    }

    /// Runs `f` on the log in queue order: after every earlier append was
    /// committed, before any later one.
    async fn admin<T: Send + 'static>(&self, f: impl FnOnce(&mut Log) -> Result<T> + Send + 'static) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let op: AdminFn = Box::new(move |log: &mut Log| {
            let res = f(log);
            Box::new(move || {
                let _ = tx.send(res);
            })
        });
        self.inner.enqueue(Op::Admin(op)).await?;
        rx.await.unwrap_or_else(|_| Err(committer_gone()))
    }

    /// [`Log::truncate_from`] in queue order (every append queued before it
    /// is committed first, so it is cut too if it lands at or after `offset`).
    pub async fn truncate_from(&self, offset: u64) -> Result<()> {
        self.admin(move |log| log.truncate_from(offset)).await
    }

    /// [`Log::truncate_before`] in queue order.
    pub async fn truncate_before(&self, offset: u64) -> Result<()> {
        self.admin(move |log| log.truncate_before(offset)).await
    }

    /// [`Log::restart_at`] in queue order.
    pub async fn restart_at(&self, offset: u64) -> Result<()> {
        self.admin(move |log| log.restart_at(offset)).await
    }

    /// Key compaction ([`Log::compact`]) while appends continue: each pass
    /// is planned under a short read lock, run with no lock at all (it
    /// reads only sealed segments and writes new files; its file I/O runs
    /// on the thread polling this future, so on tokio call it from
    /// `spawn_blocking` or a thread of its own), and installed in queue
    /// order by the committer. A pass whose segments changed meanwhile
    /// (truncation, retention) is abandoned and counted in the report.
    pub async fn compact(&self) -> Result<crate::CompactionReport> {
        let mut total = crate::CompactionReport::default();
        let mut map_from = 0;
        let (end, before) = {
            let guard = self.inner.read_log()?;
            let log = guard.as_ref().ok_or(Error::Closed { why: "shut down" })?;
            let end = log.sealed_end();
            (end, log.sealed_bytes_below(end))
        };
        loop {
            let job = {
                let guard = self.inner.read_log()?;
                let log = guard.as_ref().ok_or(Error::Closed { why: "shut down" })?;
                log.compaction_job(map_from)?
            };
            let Some(job) = job else { break };
            let out = job.run()?;
            map_from = out.map_end;
            let last = out.is_last_pass();
            let pass = self.admin(move |log| log.install_compaction(out)).await?;
            let abandoned = pass.passes_abandoned > 0;
            total.merge(&pass);
            if last || abandoned {
                break;
            }
        }
        total.bytes_before = before;
        total.bytes_after = {
            let guard = self.inner.read_log()?;
            guard.as_ref().map_or(0, |log| log.sealed_bytes_below(end))
        };
        Ok(total)
    }

    /// [`Log::apply_retention`] in queue order.
    pub async fn apply_retention(&self) -> Result<RetentionReport> {
        self.admin(Log::apply_retention).await
    }

    /// [`Log::roll`] in queue order.
    pub async fn roll(&self) -> Result<()> {
        self.admin(Log::roll).await
    }

    /// Stops taking appends (new ones fail with [`Error::Closed`]), lets the
    /// committer commit everything already queued (each append resolves as
    /// usual), closes the log cleanly and returns the close's result. Reads
    /// fail with `Closed` afterwards.
    pub async fn shutdown(&self) -> Result<()> {
        loop {
            let listener = self.inner.progress.listen();
            {
                let mut q = self.inner.queue();
                if q.stopped {
                    return match &q.close_result {
                        Some(r) => r.as_ref().map(|_| ()).map_err(Error::duplicate),
                        None => Err(Error::Closed { why: "the committer stopped without closing the log" }),
                    };
                }
                q.closing.get_or_insert("shut down");
            }
            self.inner.work.notify(usize::MAX);
            self.inner.space.notify(usize::MAX);
            listener.await;
        }
    }

    /// The first offset in the log.
    pub fn first_offset(&self) -> u64 {
        self.inner.first.load(Ordering::Acquire)
    }

    /// One past the last accepted record.
    pub fn next_offset(&self) -> u64 {
        self.inner.next.load(Ordering::Acquire)
    }

    /// One past the last durable record.
    pub fn durable_offset(&self) -> u64 {
        self.inner.durable.load(Ordering::Acquire)
    }

    /// One past the last record visible at `vis`.
    pub fn end(&self, vis: Visibility) -> u64 {
        match vis {
            Visibility::Accepted => self.next_offset(),
            Visibility::Durable => self.durable_offset(),
        }
    }

    /// Whether an fsync of a batch is running right now.
    pub fn sync_in_flight(&self) -> bool {
        self.inner.in_flight.load(Ordering::Acquire)
    }

    /// The committer's counters so far.
    pub fn stats(&self) -> GroupStats {
        *self.inner.stats()
    }

    /// Whether the log refuses writes after a failed write or fsync (see
    /// [`Error::Poisoned`]); `true` once it is shut down.
    pub fn is_poisoned(&self) -> bool {
        self.inner.read_log().map_or(true, |g| g.as_ref().is_none_or(Log::is_poisoned))
    }

    /// Reads the record at `offset` if it is visible at `vis`; an offset past
    /// the visible end is [`Error::OffsetOutOfRange`].
    pub fn read(&self, offset: u64, vis: Visibility) -> Result<Record> {
        let guard = self.inner.read_log()?;
        let log = guard.as_ref().ok_or(Error::Closed { why: "shut down" })?;
        let end = match vis {
            Visibility::Accepted => log.next_offset(),
            Visibility::Durable => log.durable_offset(),
        };
        if offset >= end {
            return Err(Error::OffsetOutOfRange { offset, first: log.first_offset(), next: end });
        }
        log.read(offset)
    }

    /// Reads records from `from` (inclusive) up to `to` (exclusive) or the
    /// visible end, whichever is first, stopping after `max_bytes` of values
    /// (at least one record is returned if any is visible). The records are
    /// consecutive; `from` below the first offset starts at the first one.
    pub fn read_range(&self, from: u64, to: u64, vis: Visibility, max_bytes: usize) -> Result<Vec<Record>> {
        let guard = self.inner.read_log()?;
        let log = guard.as_ref().ok_or(Error::Closed { why: "shut down" })?;
        let end = match vis {
            Visibility::Accepted => log.next_offset(),
            Visibility::Durable => log.durable_offset(),
        };
        let from = from.max(log.first_offset());
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for rec in log.iter(from..to.min(end)) {
            let rec = rec?;
            bytes += rec.value.len() + rec.key.as_ref().map_or(0, Vec::len);
            out.push(rec);
            if bytes >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    /// Waits until `offset` is visible at `vis` (for a tailing reader) and
    /// returns the visible end. Fails with [`Error::Closed`] if the committer
    /// stops first.
    pub async fn wait_for(&self, offset: u64, vis: Visibility) -> Result<u64> {
        loop {
            let listener = self.inner.progress.listen();
            let end = self.end(vis);
            if end > offset {
                return Ok(end);
            }
            if self.inner.queue().stopped {
                return Err(Error::Closed { why: "the committer stopped" });
            }
            listener.await;
        }
    }
}

/// What the committer took off the queue.
enum Work {
    Batch(Vec<Op>),
    Admin(AdminFn),
    /// Closing, and nothing is left.
    Finish,
}

/// The commit loop of a [`SharedLog`]. Run it exactly once, with
/// [`run_blocking`](Self::run_blocking) on a thread of its own or
/// [`run`](Self::run) / [`run_with`](Self::run_with) as a task (see the
/// module docs). Dropping it unfinished fails everything queued with
/// [`Error::Closed`].
pub struct Committer {
    inner: Arc<Inner>,
    finished: bool,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer").field("finished", &self.finished).finish_non_exhaustive()
    }
}

impl Committer {
    /// Runs the loop on the calling thread until the log is shut down (or
    /// every handle dropped); returns the final close's result. Blocks.
    pub fn run_blocking(mut self) -> Result<()> {
        let linger = self.inner.cfg.linger;
        // Records acknowledged by the last batch: producers likely to return.
        let mut returning = 0usize;
        loop {
            let deadline = (!linger.is_zero() && returning > 0).then(|| Instant::now() + linger);
            let mut want = None;
            let work = loop {
                let listener = self.inner.work.listen();
                if let Some(deadline) = deadline {
                    let mut q = self.inner.queue();
                    let target = *want.get_or_insert_with(|| {
                        (q.records + returning)
                            .min(self.inner.cfg.batch_records_max)
                            .min(self.inner.cfg.queue_records_max)
                    });
                    let has_admin = q.ops.iter().any(|op| !matches!(op, Op::Append { .. }));
                    if q.records < target && q.closing.is_none() && !has_admin && Instant::now() < deadline {
                        q.wake_at = target;
                        drop(q);
                        let _ = listener.wait_deadline(deadline);
                        continue;
                    }
                    q.wake_at = 0;
                }
                if let Some(w) = self.take() {
                    break w;
                }
                listener.wait();
            };
            returning = 0;
            match work {
                Work::Finish => return self.finish(),
                Work::Admin(f) => self.admin(f),
                Work::Batch(ops) => {
                    let mut batch = self.write(ops);
                    let res = batch.plan.as_ref().map(|p| p.file.sync());
                    returning = self.complete(&mut batch, res);
                }
            }
        }
    }

    /// Runs the loop as an async task (its I/O blocks the polling thread: see
    /// the module docs). Returns the final close's result.
    pub async fn run(self) -> Result<()> {
        self.run_with(|_| std::future::ready(())).await
    }

    /// [`run`](Self::run), awaiting `pause(phase)` between the phases of
    /// each commit: a simulator spends simulated time there (an fsync's
    /// latency) and lets other tasks interleave.
    pub async fn run_with<F, Fut>(mut self, mut pause: F) -> Result<()>
    where
        F: FnMut(CommitPhase) -> Fut,
        Fut: Future<Output = ()>,
    {
        loop {
            let work = loop {
                let listener = self.inner.work.listen();
                if let Some(w) = self.take() {
                    break w;
                }
                listener.await;
            };
            match work {
                Work::Finish => return self.finish(),
                Work::Admin(f) => self.admin(f),
                Work::Batch(ops) => {
                    let mut batch = self.write(ops);
                    let res = match &batch.plan {
                        Some(plan) => {
                            let file = Arc::clone(&plan.file);
                            pause(CommitPhase::Written).await;
                            let r = file.sync();
                            pause(CommitPhase::Synced).await;
                            Some(r)
                        }
                        None => None,
                    };
                    let _ = self.complete(&mut batch, res);
                }
            }
        }
    }

    /// Takes the next batch (up to the batch limits, stopping before an
    /// admin op), the next admin op, or `Finish`; `None` if there is nothing.
    fn take(&self) -> Option<Work> {
        let mut q = self.inner.queue();
        let cfg = &self.inner.cfg;
        if matches!(q.ops.front(), Some(Op::Admin(_))) {
            let Some(Op::Admin(f)) = q.ops.pop_front() else { return None };
            drop(q);
            // An append larger than the whole queue waits for the queue to
            // be empty, which taking an admin op may have just made it.
            self.inner.space.notify(usize::MAX);
            return Some(Work::Admin(f));
        }
        let (mut records, mut bytes, mut ops) = (0usize, 0u64, Vec::new());
        while let Some(op) = q.ops.front() {
            if matches!(op, Op::Admin(_)) {
                break;
            }
            let (n, b) = op.size();
            if !ops.is_empty() && (records + n > cfg.batch_records_max || bytes + b > cfg.batch_bytes_max) {
                break;
            }
            records += n;
            bytes += b;
            if let Some(op) = q.ops.pop_front() {
                ops.push(op);
            }
        }
        q.records -= records;
        q.bytes -= bytes;
        let closing = q.closing.is_some();
        drop(q);
        if !ops.is_empty() {
            self.inner.space.notify(usize::MAX);
            return Some(Work::Batch(ops));
        }
        closing.then_some(Work::Finish)
    }

    fn admin(&self, f: AdminFn) {
        match self.inner.write_log() {
            Ok(mut guard) => {
                if let Some(log) = guard.as_mut() {
                    let reply = f(log);
                    self.inner.publish(log);
                    drop(guard);
                    reply();
                }
            }
            // Dropping `f` fails its waiter.
            Err(_) => drop(f),
        }
    }

    /// Appends the batch under the write lock and prepares its sync.
    fn write(&self, ops: Vec<Op>) -> Batch {
        let _span = info_span!("group_write", ops = ops.len()).entered();
        let mut batch = Batch { results: Vec::with_capacity(ops.len()), ops, plan: None, error: None };
        let mut guard = match self.inner.write_log() {
            Ok(g) => g,
            Err(e) => {
                batch.error = Some(e);
                return batch;
            }
        };
        let Some(log) = guard.as_mut() else {
            batch.error = Some(Error::Closed { why: "shut down" });
            return batch;
        };
        let mut entries: Vec<Entry<'_>> = Vec::new();
        for op in &batch.ops {
            let Op::Append { entries: owned, .. } = op else {
                batch.results.push(None);
                continue;
            };
            if batch.error.is_some() {
                batch.results.push(None);
                continue;
            }
            entries.clear();
            entries.extend(owned.iter().map(OwnedEntry::as_entry));
            match log.append_batch(&entries) {
                Ok(r) => batch.results.push(Some(Ok(r))),
                // The disk or the log failed: the rest of the batch fails.
                Err(e @ (Error::DiskFull { .. } | Error::Io { .. })) => {
                    batch.error = Some(e);
                    batch.results.push(None);
                }
                // This append alone is refused (read-only, poisoned before).
                Err(e) => batch.results.push(Some(Err(e))),
            }
        }
        if batch.error.is_none() {
            match log.sync_prepare() {
                Ok(plan) => batch.plan = plan,
                Err(e) => batch.error = Some(e),
            }
        }
        if batch.error.as_ref().is_some_and(Error::is_disk_full)
            && let Err(e) = log.discard_unsynced()
        {
            batch.error = Some(e);
        }
        if batch.plan.is_some() {
            self.inner.in_flight.store(true, Ordering::Release);
        }
        // Readers at `Accepted` may see the batch from here on.
        self.inner.publish(log);
        batch
    }

    /// Hands the fsync's result to the log (a failure becomes the batch's
    /// error) and publishes the log's state; returns its durable offset.
    fn record_fsync(&self, batch: &mut Batch, fsync: Option<std::io::Result<()>>) -> u64 {
        match self.inner.write_log() {
            Ok(mut guard) => match guard.as_mut() {
                Some(log) => {
                    if let (Some(plan), Some(res)) = (batch.plan.take(), fsync)
                        && let Err(e) = log.sync_complete(plan, res)
                    {
                        warn!(error = %e, "group commit fsync failed");
                        batch.error = Some(e);
                    }
                    self.inner.in_flight.store(false, Ordering::Release);
                    self.inner.publish(log);
                    log.durable_offset()
                }
                None => 0,
            },
            Err(e) => {
                batch.error.get_or_insert(e);
                0
            }
        }
    }

    /// Records the fsync's result and acknowledges or fails every op.
    /// Returns how many records were acknowledged.
    fn complete(&self, batch: &mut Batch, fsync: Option<std::io::Result<()>>) -> usize {
        let fsynced = fsync.is_some();
        let durable = self.record_fsync(batch, fsync);
        let err = || {
            batch.error.as_ref().map_or_else(
                || Error::Poisoned { cause: "internal: a batch was neither durable nor failed".into() },
                Error::duplicate,
            )
        };
        // Decide every outcome and count it before anyone hears of it.
        let (mut acked, mut failed, mut records) = (0u64, 0u64, 0u64);
        let mut replies = Vec::with_capacity(batch.ops.len());
        for (op, res) in batch.ops.drain(..).zip(batch.results.drain(..)) {
            match op {
                Op::Append { ack, entries } => {
                    records += entries.len() as u64;
                    let out = match res {
                        Some(Ok(r)) if r.end <= durable => Ok(r),
                        Some(Err(e)) => Err(e),
                        Some(Ok(_)) | None => Err(err()),
                    };
                    match &out {
                        Ok(_) => acked += entries.len() as u64,
                        Err(_) => failed += entries.len() as u64,
                    }
                    replies.push(Reply::Append(ack, out));
                }
                Op::Barrier { ack } => {
                    replies.push(Reply::Barrier(ack, if batch.error.is_some() { Err(err()) } else { Ok(durable) }));
                }
                Op::Admin(_) => {}
            }
        }
        let mut s = self.inner.stats();
        s.batches += 1;
        s.fsyncs += u64::from(fsynced);
        s.records_acked += acked;
        s.records_failed += failed;
        s.largest_batch = s.largest_batch.max(records);
        drop(s);
        // In offset order.
        for r in replies {
            match r {
                Reply::Append(ack, out) => {
                    let _ = ack.send(out);
                }
                Reply::Barrier(ack, out) => {
                    let _ = ack.send(out);
                }
            }
        }
        if failed > 0 {
            debug!(acked, failed, "group commit batch failed");
        }
        acked as usize
    }

    /// Closes the log and fails anything still queued.
    fn finish(&mut self) -> Result<()> {
        self.finished = true;
        let res = match self.inner.write_log() {
            Ok(mut guard) => match guard.take() {
                Some(log) => {
                    let _span = info_span!("group_close").entered();
                    log.close()
                }
                None => Ok(()),
            },
            Err(e) => Err(e),
        };
        let mut q = self.inner.queue();
        let why = q.closing.unwrap_or("shut down");
        for op in q.ops.drain(..) {
            op.fail(|| Error::Closed { why });
        }
        q.records = 0;
        q.bytes = 0;
        q.stopped = true;
        q.close_result = Some(res.as_ref().map(|_| ()).map_err(Error::duplicate));
        drop(q);
        self.inner.progress.notify(usize::MAX);
        self.inner.space.notify(usize::MAX);
        res
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut q = self.inner.queue();
        q.closing.get_or_insert("the committer was dropped");
        q.stopped = true;
        for op in q.ops.drain(..) {
            op.fail(committer_gone);
        }
        q.records = 0;
        q.bytes = 0;
        drop(q);
        self.inner.in_flight.store(false, Ordering::Release);
        self.inner.progress.notify(usize::MAX);
        self.inner.space.notify(usize::MAX);
    }
}

enum Reply {
    Append(AppendAck, Result<Range<u64>>),
    Barrier(oneshot::Sender<Result<u64>>, Result<u64>),
}

/// One batch between its write and its acknowledgement.
struct Batch {
    ops: Vec<Op>,
    /// Per op: the append's result so far (`None`: not appended, or not an
    /// append).
    results: Vec<Option<Result<Range<u64>>>>,
    plan: Option<SyncPlan>,
    /// What failed the batch.
    error: Option<Error>,
}
