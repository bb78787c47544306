//! The model log and the checker's rules.
//!
//! The model knows what was accepted (every record an append returned an
//! offset for, since the last recovery), what was acknowledged durable, and
//! where the last synced batch began (the format's documented window: damage
//! to that batch, when nothing was written after it, looks like a torn tail).

use std::collections::{BTreeMap, BTreeSet};

use seglog_core::Record;

/// Counters of rare paths ([`Mark`](crate::marks::Mark)), by name: a mark
/// never hit is a blind spot.
pub type Marks = BTreeMap<&'static str, u64>;

/// What the checker tracks.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// Records accepted since the last recovery, by offset (the log's
    /// possible contents after a crash).
    pub accepted: Vec<Record>,
    /// How many leading records are durable.
    pub durable: usize,
    /// Where the last synced batch began (see the module docs).
    pub last_batch_start: usize,
    /// The log refused writes after a failed write or fsync.
    pub poisoned: bool,
    /// A fault struck durable data: errors are now legitimate answers, and
    /// the last synced batch of the active segment may be lost.
    pub detect_mode: bool,
    /// The log's first offset (prefix truncation).
    pub first: u64,
    /// A prefix truncation whose call failed: after recovery the log may
    /// start here instead of at `first`.
    pub maybe_first: Option<u64>,
    /// A write failed since the last recovery: a retention inside it may
    /// have moved the first offset durably.
    pub poisoned_since_recovery: bool,
    /// A suffix truncation whose call failed: recovery may finish it, so the
    /// log may come back exactly this long.
    pub maybe_truncated_to: Option<usize>,
    /// A restart past the end whose call failed: recovery may finish it, so
    /// the log may come back empty, starting here.
    pub maybe_restart: Option<u64>,
    /// Where every synced batch since the last recovery began, ascending.
    pub batch_starts: Vec<usize>,
    /// Offsets key compaction removed: they must never be readable again.
    pub gone: BTreeSet<u64>,
    /// Offsets a failed or interrupted compaction may have removed.
    pub maybe_gone: BTreeSet<u64>,
}

impl Model {
    /// Records that a sync covering everything accepted succeeded.
    pub fn synced(&mut self) {
        if self.accepted.len() > self.durable {
            self.new_batch(self.durable);
            self.durable = self.accepted.len();
        }
    }

    /// A synced batch began at `start`.
    pub fn new_batch(&mut self, start: usize) {
        self.last_batch_start = start;
        self.batch_starts.push(start);
    }

    /// The last synced batch's write may be lost without a trace (it was
    /// misdirected): the batch before it is the last one the disk shows.
    pub fn widen_window(&mut self) {
        let prev = self.batch_starts.iter().rev().copied().find(|&b| b < self.last_batch_start).unwrap_or(0);
        self.last_batch_start = prev;
    }

    /// A suffix truncation cut the log at `at`: the batch holding record
    /// `at - 1` is the last synced batch again (the truncation's own commit
    /// marker is the only later write, and a misdirected write can lose it,
    /// which puts that batch back in the documented undetectable window).
    pub fn truncated_to(&mut self, at: usize) {
        self.batch_starts.retain(|&b| b < at);
        self.last_batch_start = self.batch_starts.last().copied().unwrap_or(0).min(self.last_batch_start);
    }

    /// Every record is gone and the log restarts, empty, at `at` (past its
    /// end): the model keeps placeholders below `at`, which no read reaches.
    pub fn restart(&mut self, at: u64) {
        let at = at as usize;
        self.accepted.truncate(at);
        let len = self.accepted.len();
        self.accepted.extend((len..at).map(|i| Record {
            offset: i as u64,
            timestamp_ms: 0,
            key: None,
            value: Vec::new(),
            flags: seglog_core::RecordFlags::NONE,
        }));
        self.durable = at;
        self.last_batch_start = at;
        self.batch_starts.clear();
        self.first = at as u64;
        self.gone.clear();
        self.maybe_gone.clear();
    }

    /// Whether a read may find no record at `offset` (compaction).
    pub fn may_skip(&self, offset: u64) -> bool {
        self.gone.contains(&offset) || self.maybe_gone.contains(&offset)
    }

    /// Records from `len` on are gone (truncation, recovery): forget what
    /// compaction did there.
    pub fn forget_from(&mut self, len: u64) {
        self.gone.retain(|&o| o < len);
        self.maybe_gone.retain(|&o| o < len);
    }

    /// Offsets at or past `first` that compacting the sealed records below
    /// `sealed_end` at time `now_ms` may drop (and, when it succeeds,
    /// must): keyed records with a later record of their key below
    /// `sealed_end`, and tombstones that are the latest of their key there
    /// and past `retention_ms`. (Compaction also drops the records below
    /// `first`, which no read can see: they are not listed.)
    pub fn compactable(&self, first: u64, sealed_end: u64, now_ms: u64, retention_ms: u64) -> BTreeSet<u64> {
        let end = (sealed_end as usize).min(self.accepted.len());
        let recs = self.accepted.get((first as usize).min(end)..end).unwrap_or_default();
        let mut latest: BTreeMap<&[u8], u64> = BTreeMap::new();
        for r in recs {
            if let Some(k) = &r.key {
                latest.insert(k, r.offset);
            }
        }
        recs.iter()
            .filter(|r| {
                r.key.as_deref().is_some_and(|k| {
                    let l = latest.get(k).copied().unwrap_or(r.offset);
                    l > r.offset || (r.flags.tombstone() && r.timestamp_ms.saturating_add(retention_ms) < now_ms)
                })
            })
            .map(|r| r.offset)
            .collect()
    }

    /// Checks a recovered log's length; returns the smallest length allowed.
    pub fn check_recovered_len(&self, n: usize) -> Result<(), String> {
        if self.maybe_truncated_to == Some(n) {
            return Ok(());
        }
        let floor = if self.detect_mode { self.last_batch_start } else { self.durable };
        if n < floor {
            return Err(format!(
                "durable records lost: recovered {n} records, {} were durable{}",
                self.durable,
                if self.detect_mode {
                    format!(" (a media fault allows losing only the last synced batch, from {floor})")
                } else {
                    String::new()
                }
            ));
        }
        if n > self.accepted.len() {
            return Err(format!(
                "phantom records: recovered {n} records, only {} were ever accepted",
                self.accepted.len()
            ));
        }
        Ok(())
    }

    /// Checks one record read back.
    pub fn check_record(&self, rec: &Record) -> Result<(), String> {
        self.check_view(&crate::check::View::from(rec))
    }

    /// Checks one record read back, owned or lent.
    pub(crate) fn check_view(&self, rec: &crate::check::View<'_>) -> Result<(), String> {
        match self.accepted.get(rec.offset as usize) {
            Some(want)
                if want.offset == rec.offset
                    && want.timestamp_ms == rec.timestamp_ms
                    && want.flags == rec.flags
                    && want.key.as_deref() == rec.key
                    && want.value == rec.value =>
            {
                Ok(())
            }
            Some(want) => Err(format!(
                "wrong bytes at offset {}: read {} value bytes (key {:?}, ts {}), wrote {} (key {:?}, ts {})",
                rec.offset,
                rec.value.len(),
                rec.key.map(<[u8]>::len),
                rec.timestamp_ms,
                want.value.len(),
                want.key.as_ref().map(Vec::len),
                want.timestamp_ms
            )),
            None => Err(format!("phantom record at offset {}", rec.offset)),
        }
    }
}
