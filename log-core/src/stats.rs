//! Always-on counters of what a log handle did: cheap relaxed atomics,
//! read as a [`LogStats`] snapshot by [`Log::stats`](crate::Log::stats) and
//! [`SharedLog::stats`](crate::SharedLog::stats). With the `metrics`
//! feature, every counter is also exported through the `metrics` facade as
//! it changes.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (inclusive, microseconds) of the fsync latency histogram's
/// buckets; the last bucket holds everything slower.
pub const FSYNC_LATENCY_BOUNDS_US: [u64; 11] =
    [50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 1_000_000];

/// Fsync latencies: count, sum, maximum and a small histogram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// Fsyncs timed.
    pub count: u64,
    /// Their total time, in microseconds.
    pub sum_us: u64,
    /// The slowest, in microseconds.
    pub max_us: u64,
    /// `buckets[i]` counts the fsyncs that took at most
    /// [`FSYNC_LATENCY_BOUNDS_US`]`[i]` µs (and more than the bound before);
    /// the last bucket counts the slower ones.
    pub buckets: [u64; FSYNC_LATENCY_BOUNDS_US.len() + 1],
}

impl LatencyHistogram {
    /// The mean latency, if any fsync was timed.
    pub fn mean(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::from_micros(self.sum_us / self.count))
    }

    /// An upper bound of the `q` quantile (0.0..=1.0) read off the buckets:
    /// the bound of the bucket that holds it (the maximum for the last).
    pub fn quantile_upper_bound(&self, q: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "a rank"
        )]
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let bound = FSYNC_LATENCY_BOUNDS_US.get(i).copied().unwrap_or(self.max_us).min(self.max_us);
                return Some(Duration::from_micros(bound));
            }
        }
        Some(Duration::from_micros(self.max_us))
    }
}

/// What a log handle did since it was opened ([`Log::stats`](crate::Log::stats)).
/// Counts are of successful operations unless the name says otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogStats {
    /// Records accepted by appends.
    pub records_appended: u64,
    /// Key and value bytes of those records (framing not included).
    pub bytes_appended: u64,
    /// Records returned by reads (`read`, `iter`, `reader`, and the group
    /// front's reads and tails).
    pub records_read: u64,
    /// Key and value bytes of those records.
    pub bytes_read: u64,
    /// Fsyncs of the active segment that made records durable (by `sync`,
    /// a sync policy, or group commit), failed ones included.
    pub syncs: u64,
    /// Of those, the fsyncs that failed (each poisons the log).
    pub sync_errors: u64,
    /// Latency of those fsyncs.
    pub fsync_latency: LatencyHistogram,
    /// Segments sealed and replaced by a new one.
    pub rolls: u64,
    /// Suffix truncations (`truncate_from`) that removed records.
    pub suffix_truncations: u64,
    /// Prefix truncations (`truncate_before`, retention included) that
    /// moved the first offset.
    pub prefix_truncations: u64,
    /// Restarts (`restart_at` past the end).
    pub restarts: u64,
    /// Records removed by those three.
    pub records_truncated: u64,
    /// Segments deleted by retention.
    pub segments_deleted_by_retention: u64,
    /// Compaction passes installed.
    pub compactions: u64,
    /// Records those passes dropped (superseded, expired tombstones, below
    /// the first offset).
    pub records_compacted_away: u64,
    /// Whether the open that made this handle had to recover: scan the
    /// active segment after an unclean stop, or finish an interrupted
    /// operation.
    pub recovered_unclean: bool,
    /// Bytes of torn tail that open cut off.
    pub recovery_bytes_cut: u64,
    /// Whether the log is poisoned (a write or fsync failed; it refuses
    /// writes until reopened). A handle is poisoned at most once.
    pub poisoned: bool,
}

/// The handle's counters (shared by `Log` and its `SharedLog`, so that a
/// shared log's stats survive its shutdown).
#[derive(Debug, Default)]
pub(crate) struct StatsCell {
    records_appended: AtomicU64,
    bytes_appended: AtomicU64,
    records_read: AtomicU64,
    bytes_read: AtomicU64,
    syncs: AtomicU64,
    sync_errors: AtomicU64,
    fsync_count: AtomicU64,
    fsync_sum_us: AtomicU64,
    fsync_max_us: AtomicU64,
    fsync_buckets: [AtomicU64; FSYNC_LATENCY_BOUNDS_US.len() + 1],
    rolls: AtomicU64,
    suffix_truncations: AtomicU64,
    prefix_truncations: AtomicU64,
    restarts: AtomicU64,
    records_truncated: AtomicU64,
    segments_deleted_by_retention: AtomicU64,
    compactions: AtomicU64,
    records_compacted_away: AtomicU64,
    poisoned: AtomicU64,
    recovered_unclean: AtomicU64,
    recovery_bytes_cut: AtomicU64,
    #[cfg(feature = "metrics")]
    metrics: Option<export::Metrics>,
}

/// A reader's count of what it returned, added to the log's counters when
/// the reader is dropped (one atomic add per reader, not per record). It
/// owns its `Arc` and borrows nothing, so its `Drop` does not make the
/// reader's borrow of the log outlive the reader's last use.
#[derive(Debug)]
pub(crate) struct ReadCount {
    cell: std::sync::Arc<StatsCell>,
    records: u64,
    bytes: u64,
}

impl ReadCount {
    pub(crate) fn add(&mut self, bytes: u64) {
        self.records += 1;
        self.bytes += bytes;
    }
}

impl Drop for ReadCount {
    fn drop(&mut self) {
        self.cell.read(self.records, self.bytes);
    }
}

/// A truncation kind, for [`StatsCell::truncated`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cut {
    Suffix,
    Prefix,
    Restart,
}

impl StatsCell {
    /// Counters for the log in `dir` (the `log` label of exported metrics).
    pub(crate) fn new(dir: &std::path::Path) -> Self {
        #[cfg(feature = "metrics")]
        {
            Self { metrics: Some(export::Metrics::new(dir)), ..Self::default() }
        }
        #[cfg(not(feature = "metrics"))]
        {
            let _ = dir;
            Self::default()
        }
    }

    /// A counter for one reader of the log whose counters these are.
    pub(crate) fn read_count(self: &std::sync::Arc<Self>) -> ReadCount {
        ReadCount { cell: std::sync::Arc::clone(self), records: 0, bytes: 0 }
    }

    pub(crate) fn appended(&self, records: u64, bytes: u64) {
        self.records_appended.fetch_add(records, Relaxed);
        self.bytes_appended.fetch_add(bytes, Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.metrics {
            m.records_appended.increment(records);
            m.bytes_appended.increment(bytes);
        }
    }

    pub(crate) fn read(&self, records: u64, bytes: u64) {
        if records == 0 {
            return;
        }
        self.records_read.fetch_add(records, Relaxed);
        self.bytes_read.fetch_add(bytes, Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.metrics {
            m.records_read.increment(records);
            m.bytes_read.increment(bytes);
        }
    }

    pub(crate) fn synced(&self, took: Duration, ok: bool) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.syncs.fetch_add(1, Relaxed);
        if !ok {
            self.sync_errors.fetch_add(1, Relaxed);
        }
        self.fsync_count.fetch_add(1, Relaxed);
        self.fsync_sum_us.fetch_add(us, Relaxed);
        self.fsync_max_us.fetch_max(us, Relaxed);
        let bucket = FSYNC_LATENCY_BOUNDS_US.iter().position(|&b| us <= b).unwrap_or(FSYNC_LATENCY_BOUNDS_US.len());
        if let Some(b) = self.fsync_buckets.get(bucket) {
            b.fetch_add(1, Relaxed);
        }
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.metrics {
            m.syncs.increment(1);
            if !ok {
                m.sync_errors.increment(1);
            }
            m.fsync_seconds.record(took.as_secs_f64());
        }
    }

    pub(crate) fn rolled(&self) {
        self.rolls.fetch_add(1, Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.metrics {
            m.rolls.increment(1);
        }
    }

    pub(crate) fn truncated(&self, kind: Cut, records: u64) {
        let c = match kind {
            Cut::Suffix => &self.suffix_truncations,
            Cut::Prefix => &self.prefix_truncations,
            Cut::Restart => &self.restarts,
        };
        c.fetch_add(1, Relaxed);
        self.records_truncated.fetch_add(records, Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.metrics {
            match kind {
                Cut::Suffix => m.suffix_truncations.increment(1),
                Cut::Prefix => m.prefix_truncations.increment(1),
                Cut::Restart => m.restarts.increment(1),
            }
            m.records_truncated.increment(records);
        }
    }

    pub(crate) fn retention_deleted(&self, segments: u64) {
        self.segments_deleted_by_retention.fetch_add(segments, Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.metrics {
            m.segments_deleted_by_retention.increment(segments);
        }
    }

    pub(crate) fn compacted(&self, passes: u64, records_dropped: u64) {
        self.compactions.fetch_add(passes, Relaxed);
        self.records_compacted_away.fetch_add(records_dropped, Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.metrics {
            m.compactions.increment(passes);
            m.records_compacted_away.increment(records_dropped);
        }
    }

    pub(crate) fn poisoned(&self) {
        if self.poisoned.swap(1, Relaxed) == 0 {
            #[cfg(feature = "metrics")]
            if let Some(m) = &self.metrics {
                m.poisonings.increment(1);
            }
        }
    }

    pub(crate) fn recovered(&self, unclean: bool, bytes_cut: u64) {
        self.recovered_unclean.store(u64::from(unclean), Relaxed);
        self.recovery_bytes_cut.store(bytes_cut, Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(m) = &self.metrics {
            if unclean {
                m.unclean_recoveries.increment(1);
            }
            m.recovery_bytes_cut.increment(bytes_cut);
        }
    }

    pub(crate) fn snapshot(&self) -> LogStats {
        let get = |a: &AtomicU64| a.load(Relaxed);
        LogStats {
            records_appended: get(&self.records_appended),
            bytes_appended: get(&self.bytes_appended),
            records_read: get(&self.records_read),
            bytes_read: get(&self.bytes_read),
            syncs: get(&self.syncs),
            sync_errors: get(&self.sync_errors),
            fsync_latency: LatencyHistogram {
                count: get(&self.fsync_count),
                sum_us: get(&self.fsync_sum_us),
                max_us: get(&self.fsync_max_us),
                buckets: std::array::from_fn(|i| self.fsync_buckets.get(i).map_or(0, get)),
            },
            rolls: get(&self.rolls),
            suffix_truncations: get(&self.suffix_truncations),
            prefix_truncations: get(&self.prefix_truncations),
            restarts: get(&self.restarts),
            records_truncated: get(&self.records_truncated),
            segments_deleted_by_retention: get(&self.segments_deleted_by_retention),
            compactions: get(&self.compactions),
            records_compacted_away: get(&self.records_compacted_away),
            recovered_unclean: get(&self.recovered_unclean) != 0,
            recovery_bytes_cut: get(&self.recovery_bytes_cut),
            poisoned: get(&self.poisoned) != 0,
        }
    }
}

#[cfg(feature = "metrics")]
mod export {
    //! The `metrics` facade's handles, made once per log (labelled with its
    //! directory) so that each update is one atomic add in the recorder.

    use metrics::{Counter, Histogram, counter, describe_counter, describe_histogram, histogram};

    #[derive(Debug)]
    pub(super) struct Metrics {
        pub(super) records_appended: Counter,
        pub(super) bytes_appended: Counter,
        pub(super) records_read: Counter,
        pub(super) bytes_read: Counter,
        pub(super) syncs: Counter,
        pub(super) sync_errors: Counter,
        pub(super) fsync_seconds: Histogram,
        pub(super) rolls: Counter,
        pub(super) suffix_truncations: Counter,
        pub(super) prefix_truncations: Counter,
        pub(super) restarts: Counter,
        pub(super) records_truncated: Counter,
        pub(super) segments_deleted_by_retention: Counter,
        pub(super) compactions: Counter,
        pub(super) records_compacted_away: Counter,
        pub(super) poisonings: Counter,
        pub(super) unclean_recoveries: Counter,
        pub(super) recovery_bytes_cut: Counter,
    }

    impl Metrics {
        pub(super) fn new(dir: &std::path::Path) -> Self {
            describe();
            let log = dir.display().to_string();
            let c = |name: &'static str| counter!(name, "log" => log.clone());
            Self {
                records_appended: c("seglog_records_appended_total"),
                bytes_appended: c("seglog_bytes_appended_total"),
                records_read: c("seglog_records_read_total"),
                bytes_read: c("seglog_bytes_read_total"),
                syncs: c("seglog_syncs_total"),
                sync_errors: c("seglog_sync_errors_total"),
                fsync_seconds: histogram!("seglog_fsync_seconds", "log" => log.clone()),
                rolls: c("seglog_rolls_total"),
                suffix_truncations: c("seglog_suffix_truncations_total"),
                prefix_truncations: c("seglog_prefix_truncations_total"),
                restarts: c("seglog_restarts_total"),
                records_truncated: c("seglog_records_truncated_total"),
                segments_deleted_by_retention: c("seglog_segments_deleted_by_retention_total"),
                compactions: c("seglog_compactions_total"),
                records_compacted_away: c("seglog_records_compacted_away_total"),
                poisonings: c("seglog_poisonings_total"),
                unclean_recoveries: c("seglog_unclean_recoveries_total"),
                recovery_bytes_cut: c("seglog_recovery_bytes_cut_total"),
            }
        }
    }

    fn describe() {
        describe_counter!("seglog_records_appended_total", "Records accepted by appends");
        describe_counter!("seglog_bytes_appended_total", "Key and value bytes accepted by appends");
        describe_counter!("seglog_records_read_total", "Records returned by reads");
        describe_counter!("seglog_bytes_read_total", "Key and value bytes returned by reads");
        describe_counter!("seglog_syncs_total", "Fsyncs that made records durable, failed ones included");
        describe_counter!("seglog_sync_errors_total", "Fsyncs that failed (each poisons the log)");
        describe_histogram!("seglog_fsync_seconds", metrics::Unit::Seconds, "Latency of those fsyncs");
        describe_counter!("seglog_rolls_total", "Segments sealed and replaced");
        describe_counter!("seglog_suffix_truncations_total", "Suffix truncations");
        describe_counter!("seglog_prefix_truncations_total", "Prefix truncations, retention included");
        describe_counter!("seglog_restarts_total", "Restarts past the end");
        describe_counter!("seglog_records_truncated_total", "Records removed by truncations and restarts");
        describe_counter!("seglog_segments_deleted_by_retention_total", "Segments deleted by retention");
        describe_counter!("seglog_compactions_total", "Compaction passes installed");
        describe_counter!("seglog_records_compacted_away_total", "Records dropped by compaction");
        describe_counter!("seglog_poisonings_total", "Logs poisoned by a failed write or fsync");
        describe_counter!("seglog_unclean_recoveries_total", "Opens that recovered from an unclean stop");
        describe_counter!("seglog_recovery_bytes_cut_total", "Torn-tail bytes cut off at open");
    }
}
