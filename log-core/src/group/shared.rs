//! `SharedLog`: the producers' and readers' handle.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};

use event_listener::Event;
use futures_channel::oneshot;

use crate::error::{Error, Result};
use crate::log::{Log, Record};
use crate::write::truncate::RetentionReport;

use super::*;

/// A group-commit handle on a [`Log`]: `Clone + Send + Sync`, for any number
/// of producer and reader tasks. Created with its [`Committer`] by
/// [`SharedLog::new`]; see the [module docs](crate::group) for how to run that.
pub struct SharedLog {
    pub(super) inner: Arc<Inner>,
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
    pub(super) rx: oneshot::Receiver<Result<Range<u64>>>,
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
        let log_stats = Arc::clone(&log.stats);
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
            log_stats,
        });
        Ok((SharedLog { inner: Arc::clone(&inner) }, Committer { inner, finished: false }))
    }

    pub(super) fn check_sizes(&self, entries: &[OwnedEntry]) -> Result<()> {
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
    pub(super) async fn admin<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Log) -> Result<T> + Send + 'static,
    ) -> Result<T> {
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
        self.inner.end(vis)
    }

    /// Whether an fsync of a batch is running right now.
    pub fn sync_in_flight(&self) -> bool {
        self.inner.in_flight.load(Ordering::Acquire)
    }

    /// The committer's counters so far (batches, fsyncs per batch).
    pub fn group_stats(&self) -> GroupStats {
        *self.inner.stats()
    }

    /// The wrapped log's counters ([`Log::stats`]): appends, reads, fsyncs
    /// and their latency, rolls, truncations, compactions, recovery,
    /// poisoning. Still readable after [`shutdown`](Self::shutdown).
    pub fn stats(&self) -> crate::LogStats {
        if let Ok(guard) = self.inner.read_log()
            && let Some(log) = guard.as_ref()
        {
            return log.stats();
        }
        self.inner.log_stats.snapshot()
    }

    /// Whether the log refuses writes after a failed write or fsync (see
    /// [`Error::Poisoned`]); `true` once it is shut down.
    pub fn is_poisoned(&self) -> bool {
        self.inner.read_log().map_or(true, |g| g.as_ref().is_none_or(Log::is_poisoned))
    }

    /// Reads the record at `offset` if it is visible at `vis`; an offset past
    /// the visible end is [`Error::OffsetOutOfRange`].
    ///
    /// Never waits for new records. It does block the calling thread
    /// briefly: it takes the log's shared lock (held exclusively by the
    /// committer while it appends a batch and writes it, one `write` call)
    /// and reads the segment file on this thread (from the page cache, or the
    /// disk on a miss). In async code that is like a `std::fs` read.
    pub fn read(&self, offset: u64, vis: Visibility) -> Result<Record> {
        let guard = self.inner.read_log()?;
        let log = guard.as_ref().ok_or(Error::Closed { why: "shut down" })?;
        let end = visible_end(log, vis);
        if offset >= end {
            return Err(Error::OffsetOutOfRange { offset, first: log.first_offset(), next: end });
        }
        log.read(offset)
    }

    /// Reads records from `from` (inclusive) up to `to` (exclusive) or the
    /// visible end, whichever is first, stopping after `max_bytes` of values
    /// (at least one record is returned if any is visible). The records are
    /// in offset order; offsets removed by key compaction are skipped.
    /// `from` below the first offset is [`Error::Truncated`] (retention or a
    /// prefix truncation deleted records the caller has not read), never a
    /// silent start at the first offset. Blocks like [`read`](Self::read)
    /// (the lock, file reads), never waits for new records: for that, use
    /// [`tail`](Self::tail) or [`wait_for`](Self::wait_for).
    pub fn read_range(&self, from: u64, to: u64, vis: Visibility, max_bytes: usize) -> Result<Vec<Record>> {
        self.inner.read_range(from, to, vis, max_bytes)
    }

    /// A consumer of the records from `from` on, visible at `vis`: a
    /// [`Stream`](futures_core::Stream) that waits at the end for new
    /// records and ends when the log is shut down, or an iterator that
    /// blocks its thread ([`Tail::blocking`]). See [`Tail`].
    pub fn tail(&self, from: u64, vis: Visibility) -> Tail {
        Tail::new(Arc::clone(&self.inner), from, vis)
    }

    /// Waits until `offset` is visible at `vis` and returns the visible end.
    /// Fails with [`Error::Closed`] if the committer stops first. Waits
    /// without blocking the thread (it is a future); for a ready-made
    /// consumer, see [`tail`](Self::tail).
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
