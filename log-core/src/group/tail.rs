//! `Tail`: a consumer that follows the log, as an async stream or a blocking
//! iterator.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use event_listener::{EventListener, Listener};

use crate::error::{Error, Result};
use crate::log::Record;

use super::*;

/// Follows a [`SharedLog`] from an offset: yields every record visible at
/// its [`Visibility`] in offset order, then waits for more. Made by
/// [`SharedLog::tail`].
///
/// - As a [`Stream`](futures_core::Stream) (`futures::StreamExt::next`,
///   `tokio_stream`, …) it waits without blocking a thread; as an
///   [`Iterator`] ([`blocking`](Self::blocking)) it blocks its thread.
/// - It ends (`None`) when the log is shut down ([`SharedLog::shutdown`],
///   the last handle dropped, or the committer stopped). A tail is not a
///   handle: it does not keep the log open.
/// - If it falls behind retention or a prefix truncation, it yields one
///   [`Error::Truncated`] naming the missed offsets and then goes on from
///   the first offset: a gap is never skipped silently. After any other
///   error (an I/O error, corruption) it yields that error and ends; make a
///   new tail from [`next_offset`](Self::next_offset) to retry.
/// - At [`Visibility::Durable`] it yields only records an fsync covered. At
///   `Accepted` it may yield a record that a crash, a failed fsync or a full
///   disk later takes away, and so may yield another record at that offset
///   later; a suffix truncation ([`SharedLog::truncate_from`]) can do the
///   same at either visibility.
///
/// ```
/// use futures::StreamExt;
/// use seglog_core::{Config, GroupConfig, Log, OwnedEntry, SharedLog, Visibility};
/// # let rt = tokio::runtime::Runtime::new()?;
/// # rt.block_on(async {
/// let dir = tempfile::tempdir()?;
/// let (shared, committer) = SharedLog::new(Log::open(dir.path(), Config::default())?, GroupConfig::default())?;
/// let commit = tokio::task::spawn_blocking(move || committer.run_blocking());
/// let mut tail = shared.tail(0, Visibility::Durable);
/// shared.append(OwnedEntry::new("hello")).await?;
/// assert_eq!(tail.next().await.transpose()?.map(|r| r.value), Some(b"hello".to_vec()));
/// shared.shutdown().await?;
/// assert!(tail.next().await.is_none()); // ends on shutdown
/// commit.await??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Tail {
    inner: Arc<Inner>,
    vis: Visibility,
    /// The offset after the last record yielded (or the start).
    next: u64,
    /// Records read but not yet yielded.
    buf: VecDeque<Record>,
    /// Value bytes to read per lock hold.
    batch_bytes: usize,
    listener: Option<EventListener>,
    done: bool,
}

impl std::fmt::Debug for Tail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tail")
            .field("vis", &self.vis)
            .field("next_offset", &self.next)
            .field("buffered", &self.buf.len())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// What the tail can do right now.
enum Step {
    Yield(Result<Record>),
    End,
    /// Nothing is visible past `next`: wait for progress.
    Wait,
}

impl Tail {
    pub(super) fn new(inner: Arc<Inner>, from: u64, vis: Visibility) -> Self {
        Self { inner, vis, next: from, buf: VecDeque::new(), batch_bytes: 256 << 10, listener: None, done: false }
    }

    /// Reads up to about this many bytes of keys and values per visit to the
    /// log (one lock hold); default 256 KiB. At least one record is read
    /// per visit whatever the limit.
    #[must_use]
    pub fn with_batch_bytes(mut self, bytes: usize) -> Self {
        self.batch_bytes = bytes.max(1);
        self
    }

    /// The offset after the last record yielded (the start offset before
    /// the first): where a new tail would resume.
    pub fn next_offset(&self) -> u64 {
        self.next
    }

    /// This tail as an [`Iterator`] that blocks the calling thread while it
    /// waits for records (no async runtime needed); same items and end.
    pub fn blocking(self) -> BlockingTail {
        BlockingTail(self)
    }

    fn step(&mut self) -> Step {
        loop {
            if let Some(rec) = self.buf.pop_front() {
                self.next = rec.offset + 1;
                return Step::Yield(Ok(rec));
            }
            if self.done {
                return Step::End;
            }
            let end = self.inner.end(self.vis);
            let behind = self.next < self.inner.first.load(std::sync::atomic::Ordering::Acquire);
            if self.next < end || behind {
                match self.inner.read_range(self.next, end, self.vis, self.batch_bytes) {
                    Ok(recs) if recs.is_empty() => self.next = self.next.max(end),
                    Ok(recs) => self.buf.extend(recs),
                    Err(Error::Truncated { offset, first }) => {
                        self.next = first;
                        return Step::Yield(Err(Error::Truncated { offset, first }));
                    }
                    Err(Error::Closed { .. }) => self.done = true,
                    Err(e) => {
                        self.done = true;
                        return Step::Yield(Err(e));
                    }
                }
                continue;
            }
            if self.inner.queue().stopped {
                self.done = true;
                continue;
            }
            return Step::Wait;
        }
    }
}

impl futures_core::Stream for Tail {
    type Item = Result<Record>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.step() {
                Step::Yield(item) => return Poll::Ready(Some(item)),
                Step::End => return Poll::Ready(None),
                Step::Wait => match this.listener.as_mut() {
                    // Listen first, then look again: progress made between
                    // the look and the listen is not missed.
                    None => this.listener = Some(this.inner.progress.listen()),
                    Some(listener) => match Pin::new(listener).poll(cx) {
                        Poll::Ready(()) => this.listener = None,
                        Poll::Pending => return Poll::Pending,
                    },
                },
            }
        }
    }
}

/// [`Tail`] as a blocking [`Iterator`]: made by [`Tail::blocking`].
#[derive(Debug)]
pub struct BlockingTail(Tail);

impl BlockingTail {
    /// [`Tail::next_offset`].
    pub fn next_offset(&self) -> u64 {
        self.0.next
    }
}

impl Iterator for BlockingTail {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.0.step() {
                Step::Yield(item) => return Some(item),
                Step::End => return None,
                Step::Wait => match self.0.listener.take() {
                    None => self.0.listener = Some(self.0.inner.progress.listen()),
                    Some(listener) => listener.wait(),
                },
            }
        }
    }
}
