//! The queue between producers and the committer, and the state they
//! share.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use event_listener::Event;
use futures_channel::oneshot;

use crate::error::{Error, Result};
use crate::format;
use crate::log::{Log, Record};

use super::*;

pub(super) type AppendAck = oneshot::Sender<Result<Range<u64>>>;
/// An admin op: runs on the log and returns the reply to send once the
/// log's new state is published.
pub(super) type AdminFn = Box<dyn FnOnce(&mut Log) -> Box<dyn FnOnce() + Send> + Send>;

pub(super) enum Op {
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
    pub(super) fn size(&self) -> (usize, u64) {
        match self {
            Op::Append { entries, .. } => {
                (entries.len(), entries.iter().map(|e| e.payload_len() + format::RECORD_OVERHEAD as u64).sum())
            }
            Op::Barrier { .. } | Op::Admin(_) => (0, 0),
        }
    }

    pub(super) fn fail(self, err: impl Fn() -> Error) {
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
pub(super) struct Queue {
    pub(super) ops: VecDeque<Op>,
    pub(super) records: usize,
    pub(super) bytes: u64,
    /// Set by `shutdown` (or the last handle's drop): no new work.
    pub(super) closing: Option<&'static str>,
    /// The committer ended; everything left was failed.
    pub(super) stopped: bool,
    /// The result of the final close, for `shutdown`.
    pub(super) close_result: Option<Result<()>>,
    /// While the committer lingers: wake it when this many records are
    /// queued (0: on every enqueue).
    pub(super) wake_at: usize,
}

pub(super) struct Inner {
    pub(super) log: RwLock<Option<Log>>,
    pub(super) queue: Mutex<Queue>,
    pub(super) cfg: GroupConfig,
    pub(super) record_bytes_max: u32,
    /// The committer has work (or should stop).
    pub(super) work: Event,
    /// The queue has room again.
    pub(super) space: Event,
    /// The accepted or durable end moved, or the committer stopped.
    pub(super) progress: Event,
    pub(super) first: AtomicU64,
    pub(super) next: AtomicU64,
    pub(super) durable: AtomicU64,
    pub(super) in_flight: AtomicBool,
    pub(super) handles: AtomicUsize,
    pub(super) stats: Mutex<GroupStats>,
    /// The wrapped log's counters, readable after it is closed.
    pub(super) log_stats: Arc<crate::stats::StatsCell>,
}

impl Inner {
    pub(super) fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn read_log(&self) -> Result<RwLockReadGuard<'_, Option<Log>>> {
        self.log.read().map_err(|_| lock_poisoned())
    }

    pub(super) fn write_log(&self) -> Result<RwLockWriteGuard<'_, Option<Log>>> {
        self.log.write().map_err(|_| lock_poisoned())
    }

    pub(super) fn publish(&self, log: &Log) {
        self.first.store(log.first_offset(), Ordering::Release);
        self.next.store(log.next_offset(), Ordering::Release);
        self.durable.store(log.durable_offset(), Ordering::Release);
        self.progress.notify(usize::MAX);
    }

    /// One past the last record visible at `vis`.
    pub(super) fn end(&self, vis: Visibility) -> u64 {
        match vis {
            Visibility::Accepted => self.next.load(Ordering::Acquire),
            Visibility::Durable => self.durable.load(Ordering::Acquire),
        }
    }

    /// [`SharedLog::read_range`](super::SharedLog::read_range).
    pub(super) fn read_range(&self, from: u64, to: u64, vis: Visibility, max_bytes: usize) -> Result<Vec<Record>> {
        let guard = self.read_log()?;
        let log = guard.as_ref().ok_or(Error::Closed { why: "shut down" })?;
        let end = visible_end(log, vis);
        if from < log.first_offset() {
            return Err(Error::Truncated { offset: from, first: log.first_offset() });
        }
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

    pub(super) fn stats(&self) -> MutexGuard<'_, GroupStats> {
        self.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `op`, waiting for room; fails once the log is shutting down.
    pub(super) async fn enqueue(&self, op: Op) -> Result<()> {
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

/// One past the last record of `log` visible at `vis` (under the log's lock).
pub(super) fn visible_end(log: &Log, vis: Visibility) -> u64 {
    match vis {
        Visibility::Accepted => log.next_offset(),
        Visibility::Durable => log.durable_offset(),
    }
}

pub(super) fn lock_poisoned() -> Error {
    Error::Poisoned { cause: "a thread panicked while it held the log's lock".into() }
}

pub(super) fn committer_gone() -> Error {
    Error::Closed { why: "the committer stopped before this operation was done" }
}
