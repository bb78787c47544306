//! `Committer`: takes batches from the queue, writes and fsyncs them,
//! and acknowledges every op.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use event_listener::Listener;
use futures_channel::oneshot;
use tracing::{debug, info_span, warn};

use crate::error::{Error, Result};
use crate::log::Entry;
use crate::write::SyncPlan;

use super::*;

/// What the committer took off the queue.
pub(super) enum Work {
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
    pub(super) inner: Arc<Inner>,
    pub(super) finished: bool,
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
    pub(super) fn take(&self) -> Option<Work> {
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

    pub(super) fn admin(&self, f: AdminFn) {
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
    pub(super) fn write(&self, ops: Vec<Op>) -> Batch {
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
    pub(super) fn record_fsync(&self, batch: &mut Batch, fsync: Option<std::io::Result<()>>) -> u64 {
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
    pub(super) fn complete(&self, batch: &mut Batch, fsync: Option<std::io::Result<()>>) -> usize {
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
    pub(super) fn finish(&mut self) -> Result<()> {
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

pub(super) enum Reply {
    Append(AppendAck, Result<Range<u64>>),
    Barrier(oneshot::Sender<Result<u64>>, Result<u64>),
}

/// One batch between its write and its acknowledgement.
pub(super) struct Batch {
    pub(super) ops: Vec<Op>,
    /// Per op: the append's result so far (`None`: not appended, or not an
    /// append).
    pub(super) results: Vec<Option<Result<Range<u64>>>>,
    pub(super) plan: Option<SyncPlan>,
    /// What failed the batch.
    pub(super) error: Option<Error>,
}
