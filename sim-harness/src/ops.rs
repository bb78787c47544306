//! The executor's write operations: append, sync, roll, the truncations,
//! `restart_at` and compaction. Each runs the call, notes it in the
//! timeline and updates the model by the op's rule; what a failure may
//! leave behind is judged by `check/durability.rs`.

use rand::RngExt;
use seglog_core::{Clock, Entry, Error, Log};

use crate::marks::Mark;
use crate::run::SimClock;
use crate::trace::Event;
use crate::world::World;

impl World {
    pub(crate) fn op_append(&mut self, client: u32, n: usize) {
        let Some(next) = self.log.as_ref().map(Log::next_offset) else { return };
        let mut recs = Vec::with_capacity(n);
        let mut explicit = Vec::with_capacity(n);
        for i in 0..n {
            let (r, e) = self.new_entry(next + i as u64);
            recs.push(r);
            explicit.push(e);
        }
        let entries: Vec<Entry<'_>> = recs
            .iter()
            .zip(&explicit)
            .map(|(r, &e)| Entry {
                key: r.key.as_deref(),
                value: &r.value,
                timestamp_ms: if e { Some(r.timestamp_ms) } else { None },
                flags: r.flags,
            })
            .collect();
        let Some(log) = self.log.as_mut() else { return };
        let appended_before = log.stats().records_appended;
        let res = match entries.as_slice() {
            [one] => log.append(*one).map(|o| o..o + 1),
            many => log.append_batch(many),
        };
        let durable_now = log.durable_offset() as usize;
        let counted = log.stats().records_appended - appended_before;
        let bytes: usize = recs.iter().map(|r| r.value.len()).sum();
        self.note(
            || format!("c{client} append n={n} bytes={bytes} -> {res:?}"),
            Event::Append,
            &[n as u64, bytes as u64, res.is_ok() as u64],
        );
        match res {
            Ok(range) => {
                if self.model.poisoned {
                    self.fail("an append was accepted after the log was poisoned".into());
                    return;
                }
                if range.start as usize != self.model.accepted.len() || range.end - range.start != n as u64 {
                    self.fail(format!("append returned {range:?}, model expected {}..", self.model.accepted.len()));
                    return;
                }
                if counted != n as u64 {
                    self.fail(format!("stats: an append of {n} records counted {counted}"));
                    return;
                }
                // Clock-stamped records got `SimClock.now_ms()` of this very
                // instant (no simulated time passes inside a step).
                self.model.accepted.extend(recs);
                if durable_now >= self.model.accepted.len() {
                    self.model.synced();
                }
            }
            Err(e) => {
                if counted != 0 {
                    self.fail(format!("stats: a failed append counted {counted} records appended"));
                    return;
                }
                if e.is_disk_full() {
                    self.mark(Mark::EnospcMidAppend);
                }
                let indeterminate = matches!(e, Error::Io { .. }) && !self.model.poisoned;
                self.check_write_error("append", &e, next);
                // An append that failed with an I/O error has an unknown
                // outcome: its frames may have reached the disk, so a crash
                // may bring them back (never reported durable before). They
                // are possible contents, at the offsets they would have had.
                if indeterminate && self.model.accepted.len() as u64 == next {
                    self.model.accepted.extend(recs);
                }
            }
        }
    }

    pub(crate) fn op_sync(&mut self, client: u32) {
        let Some(log) = self.log.as_mut() else { return };
        let next = log.next_offset();
        let res = log.sync();
        self.note(|| format!("c{client} sync -> {res:?}"), Event::Sync, &[res.is_ok() as u64]);
        match res {
            Ok(()) => {
                if self.model.poisoned {
                    self.fail("a sync succeeded after the log was poisoned".into());
                } else {
                    self.model.synced();
                }
            }
            Err(e) => {
                if e.is_disk_full() {
                    self.mark(Mark::EnospcOnSync);
                }
                self.check_write_error("sync", &e, next);
            }
        }
    }

    pub(crate) fn op_truncate_from(&mut self, client: u32) {
        let Some(log) = self.log.as_mut() else { return };
        let (first, next) = (log.first_offset(), log.next_offset());
        // Mostly a short suffix, as Raft conflicts are.
        let at = next.saturating_sub(self.rng.random_range(0..=8)).max(first);
        let truncated_before = log.stats().records_truncated;
        let res = log.truncate_from(at);
        let counted = log.stats().records_truncated - truncated_before;
        self.note(
            || format!("c{client} truncate_from {at} -> {res:?}"),
            Event::TruncateFrom,
            &[at, res.is_ok() as u64],
        );
        match res {
            Ok(()) => {
                if self.model.poisoned {
                    self.fail("a truncation succeeded on a poisoned log".into());
                    return;
                }
                if counted != next - at {
                    self.fail(format!(
                        "stats: truncate_from({at}) of a log ending at {next} counted {counted} records"
                    ));
                    return;
                }
                // Truncating at the end is a no-op: it makes nothing durable.
                if at < next {
                    self.mark(Mark::SuffixTruncated);
                    self.model.cut_to(at as usize);
                    self.model.forget_from(at);
                    self.model.durable = at as usize;
                    self.model.truncated_to(at as usize);
                }
            }
            Err(Error::Io { .. }) if !self.model.poisoned => {
                // The intent may have become durable: recovery finishes it,
                // and this (poisoned) handle may already show it done.
                self.model.maybe_truncated_to = Some(at as usize);
                self.model.poisoned = true;
                self.model.poisoned_since_recovery = true;
                self.absorb_durable();
                let Some(log) = self.log.as_ref() else { return };
                let shown = log.next_offset();
                if !log.is_poisoned() || (shown as usize != self.model.durable && shown != at) {
                    self.fail(format!(
                        "after a failed truncate_from({at}) the log shows {shown} records (durable {}), poisoned: {}",
                        self.model.durable,
                        log.is_poisoned()
                    ));
                }
            }
            Err(e @ Error::Corruption { .. }) if self.model.detect_mode => {
                // Damage met while finding the cut point: the truncation may
                // be half done (the log poisons itself; a reopen finishes it).
                self.model.maybe_truncated_to = Some(at as usize);
                self.model.poisoned = self.log.as_ref().is_some_and(Log::is_poisoned);
                self.check_write_error("truncate_from", &e, next);
            }
            Err(e) => self.check_write_error("truncate_from", &e, next),
        }
    }

    pub(crate) fn op_truncate_before(&mut self, client: u32) {
        let Some(log) = self.log.as_mut() else { return };
        let (first, next) = (log.first_offset(), log.next_offset());
        let at = self.rng.random_range(first..=next);
        let res = log.truncate_before(at);
        let now_first = log.first_offset();
        self.note(
            || format!("c{client} truncate_before {at} -> {res:?}"),
            Event::TruncateBefore,
            &[at, res.is_ok() as u64],
        );
        match res {
            Ok(()) => {
                if at > first {
                    self.mark(Mark::PrefixTruncated);
                }
                self.model.first = now_first;
                if now_first != at.max(first) {
                    self.fail(format!("truncate_before({at}) left the first offset at {now_first}"));
                }
            }
            Err(e) => {
                if matches!(e, Error::Io { .. }) && !self.model.poisoned {
                    self.model.maybe_first = Some(at);
                }
                self.check_write_error("truncate_before", &e, next);
            }
        }
    }

    /// Compaction with the power failing before filesystem step `crash_at`
    /// of it (if it gets that far).
    pub(crate) fn op_compact_at(&mut self, client: u32, crash_at: Option<u64>) {
        let Some(log) = self.log.as_mut() else { return };
        let now = SimClock.now_ms();
        let first = log.first_offset();
        let sealed_end = log.segments().iter().filter(|s| s.sealed).map(|s| s.next_offset).max().unwrap_or(0);
        let retention = self.params.config.tombstone_retention_ms;
        let may = self.model.compactable(first, sealed_end, now, retention);
        if let Some(k) = crash_at {
            self.fs.power_off_after(k);
        }
        let res = log.compact();
        let struck = self.fs.is_powered_off();
        self.fs.power_on();
        self.note(
            || format!("c{client} compact (sealed below {sealed_end}, crash at step {crash_at:?}) -> {res:?}"),
            Event::Compact,
            &[sealed_end, res.is_ok() as u64, struck as u64],
        );
        if struck {
            // The machine died inside the compaction: reboot from the disk.
            self.mark(Mark::CrashDuringCompaction);
            self.crashed();
            self.model.maybe_gone.extend(may.iter().copied().filter(|o| !self.model.gone.contains(o)));
            let old = self.log.take();
            drop(old);
            self.note(|| "CRASH during compaction".into(), Event::Crash, &[0]);
            self.absorb_faults();
            self.recover(true);
            return;
        }
        match res {
            Ok(report) => {
                if report.passes > 1 {
                    self.mark(Mark::CompactionInPasses);
                }
                if report.tombstones_dropped > 0 {
                    self.mark(Mark::CompactionDroppedTombstone);
                }
                let Some(log) = self.log.as_ref() else { return };
                // Exactly the compactable records below the sealed end are
                // gone now (records below the first offset are invisible):
                // one scan of the range, each model record either yielded
                // (kept) or skipped (compacted away).
                let mut dropped = 0;
                let mut scan = log.iter(first..sealed_end);
                let mut item = scan.next();
                for r in self.model.accepted.get(first as usize..sealed_end as usize).unwrap_or_default() {
                    let o = r.offset;
                    let must_go = may.contains(&o);
                    let res = match item.take() {
                        Some(Ok(got)) if got.offset == o => {
                            item = scan.next();
                            Ok(got)
                        }
                        Some(Ok(got)) if got.offset < o => {
                            self.fail(format!(
                                "a scan after compaction yielded offset {} again or out of order",
                                got.offset
                            ));
                            return;
                        }
                        later @ (Some(Ok(_)) | None) => {
                            item = later;
                            Err(Error::Compacted { offset: o })
                        }
                        Some(Err(e)) => Err(e),
                    };
                    match res {
                        Ok(got) if must_go => {
                            self.fail(format!(
                                "compaction kept offset {o} (key {:?}), which a later record of its key superseded or which was an expired tombstone",
                                got.key
                            ));
                            return;
                        }
                        Ok(got) if got != *r => {
                            self.fail(format!("after compaction, offset {o} holds different bytes"));
                            return;
                        }
                        Ok(_) => {
                            self.model.maybe_gone.remove(&o);
                        }
                        // Dropped earlier (a truncation may since have
                        // removed the record that superseded it: compaction
                        // decisions are final).
                        Err(Error::Compacted { .. }) if self.model.gone.contains(&o) => {}
                        // An earlier compaction that failed or was cut by a
                        // crash may have dropped it (when it was compactable
                        // then): now that is settled.
                        Err(Error::Compacted { .. }) if must_go || self.model.maybe_gone.contains(&o) => {
                            dropped += u64::from(must_go);
                            self.model.gone.insert(o);
                            self.model.maybe_gone.remove(&o);
                        }
                        Err(Error::Compacted { .. }) => {
                            self.fail(format!("compaction dropped offset {o}, the latest record of its key"));
                            return;
                        }
                        Err(e) => {
                            self.check_read_error(&e);
                            return;
                        }
                    }
                }
                if dropped > 0 {
                    self.mark(Mark::CompactionDroppedRecords);
                }
            }
            Err(e) => {
                // A pass may have been installed before another failed; a
                // failure after a swap's manifest poisons the log.
                self.model.maybe_gone.extend(may.iter().copied().filter(|o| !self.model.gone.contains(o)));
                let poisoned = self.log.as_ref().is_some_and(Log::is_poisoned);
                match &e {
                    Error::DiskFull { .. } | Error::Io { .. } => {
                        if poisoned {
                            self.model.poisoned = true;
                            self.model.poisoned_since_recovery = true;
                        }
                    }
                    Error::Poisoned { .. } if self.model.poisoned => {}
                    Error::Corruption { .. } if self.model.detect_mode => {
                        self.mark_detected(&e, Mark::CorruptionDetectedOnRead);
                    }
                    other => self.fail(format!("compact failed unexpectedly: {other}")),
                }
            }
        }
    }

    pub(crate) fn op_restart(&mut self, client: u32) {
        let Some(log) = self.log.as_mut() else { return };
        let next = log.next_offset();
        let at = next + self.rng.random_range(1..=20);
        let res = log.restart_at(at);
        let (now_first, now_next, poisoned) = (log.first_offset(), log.next_offset(), log.is_poisoned());
        self.note(|| format!("c{client} restart_at {at} -> {res:?}"), Event::RestartAt, &[at, res.is_ok() as u64]);
        match res {
            Ok(()) => {
                self.mark(Mark::RestartedPastEnd);
                self.model.restart(at);
                if (now_first, now_next) != (at, at) {
                    self.fail(format!("restart_at({at}) left the log at {now_first}..{now_next}"));
                }
            }
            // Failed once its intent may be durable: poisoned, and a reopen
            // may finish it.
            Err(e @ Error::Io { .. }) => {
                self.absorb_durable();
                if !poisoned {
                    self.fail(format!("restart_at failed with an I/O error but the log is not poisoned: {e}"));
                }
                if !self.model.poisoned {
                    self.model.maybe_restart = Some(at);
                }
                self.model.poisoned = true;
                self.model.poisoned_since_recovery = true;
                if now_next != at && now_next as usize != self.model.durable {
                    self.fail(format!(
                        "after a failed restart_at({at}) the log shows {now_next} records, but {} are durable",
                        self.model.durable
                    ));
                }
            }
            Err(e) => self.check_write_error("restart_at", &e, next),
        }
    }

    pub(crate) fn op_roll(&mut self, client: u32) {
        let Some(log) = self.log.as_mut() else { return };
        if self.model.poisoned {
            return;
        }
        let next = log.next_offset();
        let n_before = log.segments().len();
        let res = log.roll();
        let rolled = log.segments().len() > n_before;
        self.note(|| format!("c{client} roll -> {res:?}"), Event::BackgroundRoll, &[res.is_ok() as u64]);
        match res {
            Ok(()) => {
                self.model.synced();
                if rolled {
                    self.mark(Mark::SegmentRolled);
                }
            }
            Err(e) => self.check_write_error("roll", &e, next),
        }
    }
}
