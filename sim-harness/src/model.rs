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
    /// Since the last recovery, a misdirected write hid a synced batch: its
    /// sector kept stale bytes, so the window reached back to this batch
    /// start. A later batch that synced moves the window forward again —
    /// its commit marker, after the damage, makes the damage detectable —
    /// unless another media fault follows (`faults_after_hidden`), which
    /// may destroy that evidence too (seed 968721: a misdirect hid records
    /// 145..147, a later bit flip hit the commit marker of 147, and
    /// recovery rightly saw a torn tail at 145).
    pub hidden_floor: Option<usize>,
    /// A media fault on durable data came after `hidden_floor` was set.
    pub faults_after_hidden: bool,
    /// An open since the last checked recovery failed and was retried
    /// (see `check_loss_reported`).
    pub open_retried: bool,
    /// A misdirected or lost write struck durable data in this run: a
    /// batch's commit marker may have gone with it (its sector landed
    /// elsewhere, or older bytes came back), and damage it left may surface
    /// only at a later recovery (see `check_loss_reported`).
    pub marker_may_be_gone: bool,
    /// Media faults on durable data since the last checked recovery: with
    /// two, one may have struck a batch's records and the other its commit
    /// marker (see `check_loss_reported`).
    pub media_faults_since_check: u32,
    /// Records that were at an offset before a cut took them out of
    /// `accepted` (a suffix truncation, a recovery's cut), and the old
    /// frames an aimed lost write put back: a salvage, which reads every
    /// frame that verifies, may find them.
    pub replaced: BTreeMap<u64, Vec<Record>>,
}

impl Model {
    /// Records that a sync covering everything accepted succeeded.
    pub fn synced(&mut self) {
        if self.accepted.len() > self.durable {
            self.new_batch(self.durable);
            self.durable = self.accepted.len();
        }
    }

    /// Records from `len` on leave `accepted` (a truncation, a recovery's
    /// cut); they are kept in `replaced`.
    pub fn cut_to(&mut self, len: usize) {
        if len < self.accepted.len() {
            for r in self.accepted.drain(len..) {
                self.replaced.entry(r.offset).or_default().push(r);
            }
        }
    }

    /// Whether `r` is a record some write put at its offset: the one there
    /// now, or one a cut replaced.
    pub fn ever_written(&self, r: &Record) -> bool {
        self.accepted.get(r.offset as usize) == Some(r)
            || self.replaced.get(&r.offset).is_some_and(|old| old.contains(r))
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
        self.hidden_floor = Some(self.hidden_floor.map_or(prev, |f| f.min(prev)));
    }

    /// A misdirected write landed on durable bytes holding record `at` and
    /// later ones: every batch from the one holding `at` on may be lost
    /// without a trace (nothing after the damage verifies).
    pub fn widen_window_to(&mut self, at: u64) {
        let at = at as usize;
        if at >= self.last_batch_start {
            return;
        }
        let start = self.batch_starts.iter().rev().copied().find(|&b| b <= at).unwrap_or(0);
        self.last_batch_start = start;
        self.hidden_floor = Some(self.hidden_floor.map_or(start, |f| f.min(start)));
    }

    /// A media fault struck durable data: if a misdirected write hid a
    /// batch before it, the two together may leave no evidence after the
    /// hidden batch (see `hidden_floor`).
    pub fn media_fault(&mut self) {
        self.media_faults_since_check += 1;
        if self.hidden_floor.is_some() {
            self.faults_after_hidden = true;
        }
    }

    /// A recovery was checked: the recovered records verified, so no
    /// earlier damage can hide them any more.
    pub fn recovery_checked(&mut self) {
        self.open_retried = false;
        self.media_faults_since_check = 0;
        self.hidden_floor = None;
        self.faults_after_hidden = false;
    }

    /// The smallest length a recovery may come back with once a media
    /// fault struck durable data: the last synced batch may be lost (it
    /// looks like a torn tail), or everything from a batch a misdirected
    /// write hid, if another media fault followed it.
    fn detect_floor(&self) -> usize {
        match self.hidden_floor {
            Some(f) if self.faults_after_hidden => f.min(self.last_batch_start),
            _ => self.last_batch_start,
        }
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

    /// A recovery that lost durable (acknowledged) records — only after a
    /// media fault, in the last synced batch (`check_recovered_len`) —
    /// must say so: its report's `possibly_acknowledged` starts where the
    /// log now ends and reaches at least to what was durable (a replica
    /// relies on it not to vote with a log it lost). Not required after a
    /// misdirected or lost write (`marker_may_be_gone`; a hidden batch is
    /// one): it may have taken the batch's commit marker too (seed 254 of
    /// the test campaign); nor after a second media fault since the last
    /// checked recovery (it may have struck the marker: seed 2448); nor
    /// after an open that failed and was retried (it may have cut the tail
    /// durably before failing: the report is the cutting open's, which is
    /// why seglog-raft looks read-only first). `Ok(true)`: a loss was
    /// reported.
    pub fn check_loss_reported(&self, n: usize, reported: Option<&std::ops::Range<u64>>) -> Result<bool, String> {
        if n >= self.durable
            || self.maybe_truncated_to == Some(n)
            || self.marker_may_be_gone
            || self.media_faults_since_check > 1
            || self.open_retried
        {
            return Ok(false);
        }
        match reported {
            Some(r) if r.start == n as u64 && r.end >= self.durable as u64 => Ok(true),
            other => Err(format!(
                "durable records {n}..{} were lost (media damage in the last synced batch) and the recovery report says {other:?}: a replica would not know it lost acknowledged records",
                self.durable
            )),
        }
    }

    /// Checks a recovered log's length; returns the smallest length allowed.
    pub fn check_recovered_len(&self, n: usize) -> Result<(), String> {
        if self.maybe_truncated_to == Some(n) {
            return Ok(());
        }
        let floor = if self.detect_mode { self.detect_floor() } else { self.durable };
        if n < floor {
            return Err(format!(
                "durable records lost: recovered {n} records, {} were durable{}",
                self.durable,
                if self.detect_mode {
                    format!(
                        " (media faults allow losing only the last synced batch, or a batch a misdirected write hid and all after it, from {floor})"
                    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(offset: u64) -> Record {
        Record { offset, timestamp_ms: 0, key: None, value: vec![1], flags: seglog_core::RecordFlags::NONE }
    }

    /// Seed 968721 (found by the million-seed run on `410d0c0`): batches
    /// 144, 145..147 and 147 synced; the write of the middle one was
    /// misdirected (its sector kept stale bytes), then a bit flip hit the
    /// last batch's commit marker. No evidence of 145..148 is left, and a
    /// recovery at 145 is what the format allows. Without the second fault
    /// the last batch's marker proves the damage: only 147 may go.
    fn after_the_misdirect() -> Model {
        let mut m = Model { detect_mode: true, ..Model::default() };
        for (batch, end) in [(0u64, 144u64), (144, 145), (145, 147)] {
            m.accepted.extend((batch..end).map(rec));
            m.synced();
        }
        m.media_fault();
        m.widen_window();
        m.accepted.push(rec(147));
        m.synced();
        m
    }

    #[test]
    fn a_misdirect_landing_on_an_earlier_batch_widens_to_that_batch() {
        let mut m = Model { detect_mode: true, ..Model::default() };
        for (batch, end) in [(0u64, 20u64), (20, 28), (28, 30), (30, 33), (33, 34)] {
            m.accepted.extend((batch..end).map(rec));
            m.synced();
        }
        m.widen_window();
        assert!(m.check_recovered_len(28).is_err(), "the misdirect alone: only from the batch before it (30)");
        m.widen_window_to(29);
        assert!(m.check_recovered_len(28).is_ok(), "seed 1166949");
        assert!(m.check_recovered_len(27).is_err(), "never below the batch holding the landing position");
        m.widen_window_to(33);
        assert!(m.check_recovered_len(27).is_err(), "a landing past the window changes nothing");
    }

    #[test]
    fn a_misdirect_and_a_later_media_fault_may_hide_every_batch_from_the_hidden_one() {
        let mut m = after_the_misdirect();
        assert!(m.check_recovered_len(145).is_err(), "one misdirect alone: only the last batch may go");
        assert!(m.check_recovered_len(147).is_ok());
        m.media_fault();
        assert!(m.check_recovered_len(145).is_ok(), "seed 968721's recovery");
        assert!(m.check_recovered_len(144).is_ok());
        assert!(m.check_recovered_len(143).is_err(), "never below the batch before the hidden one");
        m.recovery_checked();
        assert!(m.check_recovered_len(145).is_err(), "a checked recovery clears the hidden window");
    }
}
