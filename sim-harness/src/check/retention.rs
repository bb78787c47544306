//! Retention checker: what retention (run inside any append or roll that
//! seals a segment) may delete and what it must keep.
//!
//! Verifies, after an append or roll that raised the first offset: the new
//! first offset is the base of the first segment left (whole segments go);
//! retention ran to completion — the first segment left, unless it is the
//! last one or unsealed, is neither over the byte budget (the total of the
//! segments left, the active one counted at its header only, above
//! `retention_bytes`) nor past the age limit (its
//! newest record, by the model's timestamps, older than
//! `retention_age_ms`); and it deleted nothing it had to keep — the last
//! segment it deleted, if it was sealed before the op (its size known),
//! was over the budget or past the age limit when it went.
//!
//! Does not verify: the byte sizes themselves (taken from `segments()`;
//! the records in them are checked by `content.rs`); the last deleted
//! segment when it was the one the op sealed (its final size is not known
//! before the op); an age judgement where compaction may have removed the
//! newest record of a segment.

use seglog_core::{Clock, SegmentInfo};

use crate::marks::Mark;
use crate::run::SimClock;
use crate::world::World;

impl World {
    /// The segments before an op that may run retention, if retention is
    /// configured (else nothing to compare).
    pub(crate) fn retention_snapshot(&self) -> Option<(u64, Vec<SegmentInfo>)> {
        let c = &self.params.config;
        if c.retention_bytes.is_none() && c.retention_age_ms.is_none() {
            return None;
        }
        self.log.as_ref().map(|l| (l.first_offset(), l.segments()))
    }

    /// Checks the retention an op ran, from the segments before it.
    pub(crate) fn check_retention(&mut self, first_before: u64, before: &[SegmentInfo]) {
        let Some(log) = self.log.as_ref() else { return };
        if self.model.poisoned || log.is_poisoned() || log.first_offset() <= first_before {
            return;
        }
        let first = log.first_offset();
        let after = log.segments();
        let now = SimClock.now_ms();
        let (budget, age) = (self.params.config.retention_bytes, self.params.config.retention_age_ms);
        let total: u64 = after.iter().map(|s| s.bytes).sum();
        let too_old = |w: &World, s: &SegmentInfo| match (age, w.newest_ts(s.base_offset, s.next_offset)) {
            (Some(a), Some(Some(ts))) => Some(ts.saturating_add(a) < now),
            (Some(_), Some(None)) | (None, _) => Some(false),
            (Some(_), None) => None,
        };
        let Some(head) = after.first() else { return };
        if head.base_offset != first {
            self.fail(format!(
                "retention left the first offset at {first}, inside the segment based at {}",
                head.base_offset
            ));
            return;
        }
        // Retention ran at the roll; the op may have appended to the new
        // segment after it. So the total it saw is at least the sealed
        // segments left plus the active segment's header, and at most
        // today's total.
        let total_min: u64 =
            after.iter().map(|s| if s.sealed { s.bytes } else { seglog_core::inspect::HEADER_LEN }).sum();
        if after.len() > 1 && head.sealed {
            let over = budget.is_some_and(|b| total_min > b);
            if over || too_old(self, head) == Some(true) {
                self.fail(format!(
                    "retention stopped at segment {} although it is {} (segments left: at least {total_min} bytes, budget {budget:?}, age limit {age:?})",
                    head.base_offset,
                    if over { "over the byte budget" } else { "past the age limit" }
                ));
                return;
            }
        }
        // The last segment deleted, if its size was known before the op.
        if let Some(last) = before.iter().find(|s| s.next_offset == first && s.sealed && s.base_offset >= first_before)
        {
            let over = budget.is_some_and(|b| total + last.bytes > b);
            if !over && too_old(self, last) == Some(false) {
                self.fail(format!(
                    "retention deleted segment {}..{} although it was within the byte budget ({} + {} bytes, budget {budget:?}) and the age limit ({age:?})",
                    last.base_offset, last.next_offset, total, last.bytes
                ));
                return;
            }
        }
        self.mark(Mark::RetentionCheckedAgainstItsRule);
    }

    /// The newest timestamp of the model's records in `base..next`:
    /// `Some(None)` for none, `None` if compaction may have removed one.
    fn newest_ts(&self, base: u64, next: u64) -> Option<Option<u64>> {
        let mut newest = None;
        for r in self.model.accepted.get(base as usize..next as usize).unwrap_or_default() {
            if self.model.maybe_gone.contains(&r.offset) {
                return None;
            }
            if self.model.gone.contains(&r.offset) {
                continue;
            }
            newest = newest.max(Some(r.timestamp_ms));
        }
        Some(newest)
    }
}
