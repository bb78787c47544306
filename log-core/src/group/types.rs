//! The group-commit front's public types: limits, visibility, owned
//! entries, statistics.

use std::time::Duration;

use crate::error::ConfigError;
use crate::error::Result;
use crate::log::Entry;

/// Limits of the group-commit front. Every limit bounds memory: the queue
/// holds at most `queue_*` of appends waiting for the committer, and a batch
/// (one write, one fsync) takes at most `batch_*` of them.
///
/// With the `serde` feature it reads from a configuration file like
/// [`Config`](crate::Config): defaults for fields left out, unknown fields
/// an error, `"4 MiB"` for byte sizes and `"2ms"` for `linger`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(default, deny_unknown_fields))]
pub struct GroupConfig {
    /// Most records in one batch.
    pub batch_records_max: usize,
    /// Most record bytes (key + value + framing) in one batch.
    #[cfg_attr(feature = "serde", serde(with = "crate::units::bytes"))]
    pub batch_bytes_max: u64,
    /// Most records waiting in the queue; producers wait for room beyond it.
    pub queue_records_max: usize,
    /// Most record bytes waiting in the queue.
    #[cfg_attr(feature = "serde", serde(with = "crate::units::bytes"))]
    pub queue_bytes_max: u64,
    /// How long [`Committer::run_blocking`](crate::Committer::run_blocking) may hold a batch open for the
    /// producers it just acknowledged to come back (zero: never). After
    /// acknowledging `k` records, if fewer than `queued + k` records are
    /// queued, it waits up to `linger` for them before writing. With many
    /// producers that each keep one append in flight, this merges the two
    /// cohorts that otherwise alternate between "in the fsync" and "queued"
    /// into one batch per fsync (up to twice the records per fsync), at the
    /// price of up to `linger` more latency per batch when they don't come.
    #[cfg_attr(feature = "serde", serde(with = "crate::units::duration"))]
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
    /// Its flags ([`RecordFlags`](crate::format::RecordFlags)).
    pub flags: crate::format::RecordFlags,
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
        self.flags = self.flags.with(crate::format::RecordFlags::TOMBSTONE);
        self
    }

    /// The borrowed form [`Log::append`](crate::Log::append) takes.
    pub fn as_entry(&self) -> Entry<'_> {
        Entry { key: self.key.as_deref(), value: &self.value, timestamp_ms: self.timestamp_ms, flags: self.flags }
    }

    pub(super) fn payload_len(&self) -> u64 {
        self.as_entry().payload_len()
    }
}

impl From<Entry<'_>> for OwnedEntry {
    fn from(e: Entry<'_>) -> Self {
        Self { key: e.key.map(<[u8]>::to_vec), value: e.value.to_vec(), timestamp_ms: e.timestamp_ms, flags: e.flags }
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

/// Where a commit stands, for [`Committer::run_with`](crate::Committer::run_with)'s pause hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitPhase {
    /// The batch is written (with its commit marker); its fsync is next.
    Written,
    /// The fsync returned; acknowledging is next.
    Synced,
}
