//! Read-API checker: `read`, `iter`, the lending `reader`,
//! `offset_for_timestamp` and `verify`, each compared with the model.
//!
//! Verifies: a read at a random offset between the first and the end;
//! scans of random ranges (half through `reader`, its lent records copied
//! out); time lookups at, one before and one after stored timestamps, and
//! anywhere, against a brute-force search of the model (records compaction
//! may have removed may be skipped); `verify` (no mutating call, no
//! poisoning, every segment checked, every live record counted, problems
//! only after a media fault struck durable data; a poisoned log reports its
//! poisoning and nothing else).
//!
//! Does not verify: reads at the `Durable` visibility (the group world
//! does), or read-only opens.

use rand::RngExt;
use seglog_core::{Error, Log, Record};

use crate::marks::Mark;
use crate::trace::Event;
use crate::world::World;

impl World {
    pub(crate) fn op_read(&mut self, client: u32) {
        let Some(log) = self.log.as_ref() else { return };
        let (first, next) = (log.first_offset(), log.next_offset());
        if next == first {
            return;
        }
        let off = self.rng.random_range(first..next);
        let res = log.read(off);
        self.note(
            || {
                format!(
                    "c{client} read {off} -> {}",
                    res.as_ref().map_or_else(|e| e.to_string(), |r| format!("{} bytes", r.value.len()))
                )
            },
            Event::Read,
            &[off, res.is_ok() as u64],
        );
        self.check_read(res, off);
    }

    pub(crate) fn op_iter(&mut self, client: u32) {
        let Some(log) = self.log.as_ref() else { return };
        let (first, next) = (log.first_offset(), log.next_offset());
        let a = self.rng.random_range(first..=next);
        let b = self.rng.random_range(a..=next.min(a + 64));
        // Half the scans through the lending `reader()` (by the parity of
        // `a`, so the seed's draws are unchanged): its records are copied
        // out field by field, and must match the model as `iter`'s do.
        let lending = a % 2 == 1;
        let got: Vec<Result<Record, Error>> = if lending { lend_all(log, a, b) } else { log.iter(a..b).collect() };
        self.note(|| format!("c{client} iter {a}..{b} -> {} items", got.len()), Event::Iter, &[a, b, got.len() as u64]);
        let api = if lending { "reader" } else { "iter" };
        self.check_records(&format!("{api}({a}..{b})"), got, a, b);
    }

    /// `verify`, the operator's integrity check: it reads every frame of
    /// every segment, so it must change nothing on disk, count at least
    /// every live record the model holds, and find no problem unless a
    /// media fault struck durable data (then problems are the right answer,
    /// and the log must go on as before: verify never poisons it).
    pub(crate) fn op_verify(&mut self, client: u32) {
        let Some(log) = self.log.as_ref() else { return };
        let (first, next) = (log.first_offset(), log.next_offset());
        let segments = log.segments().len() as u64;
        let was_poisoned = log.is_poisoned();
        let before = self.fs.mutating_ops();
        let report = log.verify();
        let tried = self.fs.mutating_ops() - before;
        let poisoned = log.is_poisoned();
        self.note(
            || {
                format!(
                    "c{client} verify -> {} segments, {} records, {} problems{}",
                    report.n_segments,
                    report.n_records,
                    report.problems.len(),
                    report.problems.first().map(|e| format!(": {e}")).unwrap_or_default()
                )
            },
            Event::Verify,
            &[report.n_segments, report.n_records, report.problems.len() as u64],
        );
        if tried != 0 {
            return self.fail(format!("verify made {tried} mutating filesystem calls"));
        }
        if poisoned != was_poisoned {
            return self.fail("verify poisoned the log".into());
        }
        if was_poisoned {
            // Not scanned: its view is not the disk's (see `Log::verify`).
            if report.n_segments != 0 || !matches!(report.problems.as_slice(), [Error::Poisoned { .. }]) {
                self.fail(format!("verify of a poisoned log: {report:?}"));
            }
            return;
        }
        if report.n_segments != segments {
            return self.fail(format!("verify checked {} segments of {segments}", report.n_segments));
        }
        if !report.problems.is_empty() {
            if self.model.detect_mode {
                self.mark(Mark::VerifyReportedDamage);
                return;
            }
            let shown: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
            return self.fail(format!("verify reported problems no fault explains: {shown:?}"));
        }
        // Every live record sits in a segment that verified (records below
        // the first offset may share its first segment, so more is fine).
        let live = (first..next).filter(|&o| !self.model.may_skip(o)).count() as u64;
        if report.n_records < live {
            return self.fail(format!(
                "verify counted {} records, the log holds at least {live} at {first}..{next}",
                report.n_records
            ));
        }
        self.mark(Mark::VerifyClean);
    }

    pub(crate) fn op_time_lookup(&mut self, client: u32) {
        let Some(log) = self.log.as_ref() else { return };
        let (first, n) = (log.first_offset() as usize, log.next_offset() as usize);
        // Mostly at and around a stored timestamp (equal, one before, one
        // after), where an off-by-one in the time index or the scan would
        // show; else anywhere (before the first, between, after the last).
        let stored = self.model.accepted.get(first..n).unwrap_or_default();
        let ts = match (self.rng.random_range(0..4u32), stored.is_empty()) {
            (k @ 0..=2, false) => {
                let at = stored.get(self.rng.random_range(0..stored.len())).map_or(0, |r| r.timestamp_ms);
                match k {
                    0 => at,
                    1 => at.saturating_sub(1),
                    _ => at.saturating_add(1),
                }
            }
            _ => self.rng.random_range(0..2_100_000_000_000u64),
        };
        let res = log.offset_for_timestamp(ts);
        self.note(|| format!("c{client} offset_for_timestamp {ts} -> {res:?}"), Event::OffsetForTimestamp, &[ts]);
        self.check_time_lookup(ts, res, first, n);
    }

    /// Checks `offset_for_timestamp(ts)` on a log holding `first..n`
    /// against a brute-force search of the model: the first record at or
    /// after `ts` that compaction did not remove (one it may have removed
    /// may be skipped), or none.
    fn check_time_lookup(&mut self, ts: u64, res: Result<Option<u64>, Error>, first: usize, n: usize) {
        let records = self.model.accepted.get(first..n).unwrap_or_default();
        let candidates =
            records.iter().filter(|r| r.timestamp_ms >= ts && !self.model.gone.contains(&r.offset)).map(|r| {
                TimeCandidate {
                    offset: r.offset,
                    timestamp_ms: r.timestamp_ms,
                    maybe_gone: self.model.maybe_gone.contains(&r.offset),
                }
            });
        let verdict = time_lookup_verdict(ts, &res, candidates);
        self.time_lookup_checked(ts, res, verdict);
    }

    fn time_lookup_checked(&mut self, ts: u64, res: Result<Option<u64>, Error>, verdict: TimeVerdict) {
        match res {
            Ok(_) if verdict.allowed => {
                if verdict.exact {
                    self.mark(Mark::TimeLookupAtStoredTimestamp);
                }
            }
            Ok(got) => self.fail(format!("offset_for_timestamp({ts}) = {got:?}, model says {:?}", verdict.want)),
            Err(e) => self.check_read_error(&e),
        }
    }

    /// Reads the whole log back through every read API and checks each
    /// answer against the model: `read` of every offset, one `iter` and one
    /// `reader` scan of everything, and `offset_for_timestamp` at every
    /// stored timestamp and one past the last. (A follow-up of injected
    /// faults: see `World::follow_up`.)
    pub(crate) fn full_readback(&mut self) {
        let Some(log) = self.log.as_ref() else { return };
        let (first, next) = (log.first_offset(), log.next_offset());
        self.note(|| format!("full read-back of {first}..{next}"), Event::FullReadback, &[first, next]);
        for o in first..next {
            let Some(res) = self.log.as_ref().map(|l| l.read(o)) else { return };
            self.check_read(res, o);
            if self.stopped() {
                return;
            }
        }
        let Some(items) = self.log.as_ref().map(|l| l.iter(first..next).collect::<Vec<_>>()) else { return };
        if !self.check_records("full read-back through iter", items, first, next) {
            return;
        }
        let Some(items) = self.log.as_ref().map(|l| lend_all(l, first, next)) else { return };
        if !self.check_records("full read-back through reader", items, first, next) {
            return;
        }
        let records = self.model.accepted.get(first as usize..next as usize).unwrap_or_default();
        let stamps: Vec<u64> = records.iter().map(|r| r.timestamp_ms).chain(std::iter::once(u64::MAX)).collect();
        // The same brute-force search as `check_time_lookup`, over the
        // records compaction did not surely remove, listed once; each
        // search starts at the first candidate whose running maximum
        // timestamp reaches `ts` (every one before it is older), so the
        // read-back is not one scan of the whole log per record.
        let candidates: Vec<TimeCandidate> = records
            .iter()
            .filter(|r| !self.model.gone.contains(&r.offset))
            .map(|r| TimeCandidate {
                offset: r.offset,
                timestamp_ms: r.timestamp_ms,
                maybe_gone: self.model.maybe_gone.contains(&r.offset),
            })
            .collect();
        let running_max: Vec<u64> = candidates
            .iter()
            .scan(0u64, |m, c| {
                *m = (*m).max(c.timestamp_ms);
                Some(*m)
            })
            .collect();
        for ts in stamps {
            let Some(res) = self.log.as_ref().map(|l| l.offset_for_timestamp(ts)) else { return };
            let from = running_max.partition_point(|&m| m < ts);
            let verdict = time_lookup_verdict(ts, &res, candidates.get(from..).unwrap_or_default().iter().copied());
            self.time_lookup_checked(ts, res, verdict);
            if self.stopped() {
                return;
            }
        }
    }

    /// `segments()` of an open log: the first segment holds the log's
    /// first offset (or the log is empty at its base), contiguous from
    /// there, only the last one active, ending at the log's end `n`.
    pub(crate) fn check_segments(&mut self, log: &Log, first: u64, n: usize) -> bool {
        // Segments contiguous, only the last one active.
        let segs = log.segments();
        if let Some(s) = segs.first()
            && s.base_offset > first
        {
            self.fail(format!(
                "segments(): the first segment {} starts at {}, after the log's first offset {first}",
                s.path.display(),
                s.base_offset
            ));
            return false;
        }
        let mut next = segs.first().map_or(first, |s| s.base_offset);
        for (i, s) in segs.iter().enumerate() {
            if s.base_offset != next {
                self.fail(format!(
                    "segments not contiguous: {} starts at {}, expected {next}",
                    s.path.display(),
                    s.base_offset
                ));
                return false;
            }
            if !s.sealed && i + 1 != segs.len() {
                self.fail(format!("unsealed segment {} is not the last", s.path.display()));
                return false;
            }
            next = s.next_offset;
        }
        if next as usize != n {
            self.fail(format!("segments end at {next}, log says {n}"));
            return false;
        }
        true
    }
}

/// A record compaction did not surely remove, as a time lookup sees it.
#[derive(Debug, Clone, Copy)]
struct TimeCandidate {
    offset: u64,
    timestamp_ms: u64,
    maybe_gone: bool,
}

/// What the model says of a time lookup's answer.
#[derive(Debug)]
struct TimeVerdict {
    /// The answer is one the model allows.
    allowed: bool,
    /// The answer the model expects if compaction removed nothing it may
    /// have.
    want: Option<u64>,
    /// `want` has exactly the timestamp looked up.
    exact: bool,
}

/// The brute-force search: over `candidates` in offset order (records not
/// surely removed, from where the search may start), the first at or after
/// `ts`; each that compaction may have removed may be skipped, and if all
/// of them may have been removed, so may the answer be none.
fn time_lookup_verdict(
    ts: u64,
    res: &Result<Option<u64>, Error>,
    candidates: impl Iterator<Item = TimeCandidate>,
) -> TimeVerdict {
    let got = res.as_ref().ok().copied().flatten();
    let mut want = None;
    let mut allowed = false;
    let mut none_allowed = true;
    for c in candidates.filter(|c| c.timestamp_ms >= ts) {
        if want.is_none() {
            want = Some(c);
        }
        allowed |= got == Some(c.offset);
        if !c.maybe_gone {
            none_allowed = false;
            break;
        }
    }
    if res.as_ref().is_ok_and(Option::is_none) {
        allowed = none_allowed;
    }
    TimeVerdict { allowed, want: want.map(|c| c.offset), exact: want.is_some_and(|c| c.timestamp_ms == ts) }
}

/// Every item of the lending `reader(a..b)`, each record copied out field
/// by field.
fn lend_all(log: &Log, a: u64, b: u64) -> Vec<Result<Record, Error>> {
    let mut out = Vec::new();
    let mut reader = log.reader(a..b);
    while let Some(item) = reader.next() {
        out.push(item.map(|r| Record {
            offset: r.offset,
            timestamp_ms: r.timestamp_ms,
            key: r.key.map(<[u8]>::to_vec),
            value: r.value.to_vec(),
            flags: r.flags,
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(offset: u64, timestamp_ms: u64, maybe_gone: bool) -> TimeCandidate {
        TimeCandidate { offset, timestamp_ms, maybe_gone }
    }

    fn allowed(ts: u64, got: Option<u64>, cands: &[TimeCandidate]) -> bool {
        time_lookup_verdict(ts, &Ok(got), cands.iter().copied()).allowed
    }

    #[test]
    fn the_time_lookup_oracle_allows_exactly_the_first_record_at_or_after() {
        let cands = [c(0, 10, false), c(1, 20, false), c(2, 15, false)];
        assert!(allowed(15, Some(1), &cands));
        assert!(!allowed(15, Some(2), &cands) && !allowed(15, Some(0), &cands) && !allowed(15, None, &cands));
        assert!(allowed(21, None, &cands) && !allowed(21, Some(1), &cands));
        let v = time_lookup_verdict(20, &Ok(Some(1)), cands.iter().copied());
        assert!(v.allowed && v.exact && v.want == Some(1));
        let v = time_lookup_verdict(19, &Ok(Some(1)), cands.iter().copied());
        assert!(v.allowed && !v.exact);
    }

    #[test]
    fn the_time_lookup_oracle_lets_records_compaction_may_have_removed_be_skipped() {
        let cands = [c(0, 10, true), c(1, 20, false), c(2, 30, false)];
        assert!(allowed(5, Some(0), &cands) && allowed(5, Some(1), &cands));
        assert!(!allowed(5, Some(2), &cands) && !allowed(5, None, &cands));
        let all_maybe = [c(0, 10, true), c(1, 20, true)];
        assert!(allowed(5, Some(0), &all_maybe) && allowed(5, Some(1), &all_maybe) && allowed(5, None, &all_maybe));
        assert!(!allowed(5, Some(7), &all_maybe));
    }
}
