//! Durability checker: nothing acknowledged as durable is lost.
//!
//! Verifies: after a failed write (ENOSPC, EIO, a poisoned log) the log's
//! end, durable offset and poison state are what the error allows; what the
//! log reports durable is taken into the model (`absorb_durable`), so every
//! later crash is held to it; retention only raises the first offset;
//! recovery is idempotent (a second open finds the same log).
//!
//! Does not verify: the bytes of records (`content.rs`), what retention
//! may delete by size and age (only that the first offset never falls).

use seglog_core::{Error, Log};

use crate::marks::Mark;
use crate::trace::Event;
use crate::world::World;

impl World {
    /// Checks an error from a write path against the model. Returns whether
    /// the log is now poisoned.
    pub(crate) fn check_write_error(&mut self, what: &str, e: &Error, next_before: u64) {
        self.absorb_durable();
        let Some(log) = self.log.as_ref() else { return };
        let (next, poisoned, readable) = (log.next_offset(), log.is_poisoned(), log.read(next_before).is_ok());
        match e {
            Error::DiskFull { .. } => {
                if next != next_before {
                    self.fail(format!("{what} hit ENOSPC but the end moved from {next_before} to {next}"));
                } else if readable {
                    self.fail(format!("{what} hit ENOSPC but offset {next_before} is readable"));
                }
            }
            // A sync or flush on a full disk changes nothing: what was
            // accepted stays accepted and readable, nothing became durable.
            Error::DiskFullNotDurable { durable, next: reported, .. } => {
                let last_readable = next_before == log.first_offset()
                    || match log.read(next_before - 1) {
                        Ok(_) => true,
                        Err(Error::Corruption { .. } | Error::Io { .. }) => self.model.detect_mode,
                        Err(_) => false,
                    };
                if next != next_before || *reported != next_before {
                    self.fail(format!("{what} hit ENOSPC but the end moved from {next_before} to {next}"));
                } else if *durable != log.durable_offset() || *durable as usize != self.model.durable {
                    let want = self.model.durable;
                    self.fail(format!("{what} hit ENOSPC and reports {durable} durable; the model says {want}"));
                } else if !last_readable {
                    self.fail(format!("{what} hit ENOSPC and the accepted record {} is no longer readable", next - 1));
                }
            }
            Error::Io { .. } => {
                if !poisoned {
                    self.fail(format!("{what} failed with an I/O error but the log is not poisoned: {e}"));
                }
                self.model.poisoned = true;
                self.model.poisoned_since_recovery = true;
                if next as usize != self.model.durable {
                    let durable = self.model.durable;
                    self.fail(format!(
                        "after a failed {what} the log shows {next} records, but only {durable} are durable"
                    ));
                }
            }
            Error::Poisoned { .. } if self.model.poisoned => {}
            // Operations that read (a truncation finds its cut point) may
            // meet damage that a media fault caused.
            Error::Corruption { .. } if self.model.detect_mode => {
                self.mark_detected(e, Mark::CorruptionDetectedOnRead);
            }
            other => self.fail(format!("{what} failed unexpectedly: {other}")),
        }
    }

    /// The log may make records durable inside a call that then fails (a
    /// roll's seal before a failed segment creation): what it reports durable
    /// is what the checker holds it to.
    pub(crate) fn absorb_durable(&mut self) {
        if let Some(log) = self.log.as_ref() {
            let d = log.durable_offset() as usize;
            if d > self.model.durable && d <= self.model.accepted.len() {
                let start = self.model.durable;
                self.model.new_batch(start);
                self.model.durable = d;
            }
            // Retention runs inside any append that rolls a segment.
            let first = log.first_offset();
            if first > self.model.first {
                self.model.first = first;
                self.mark(Mark::RetentionDeletedSegments);
            }
        }
    }

    /// Recovery must be idempotent: a second open, with no crash between,
    /// finds exactly what the first did.
    pub(crate) fn check_idempotent(&mut self) {
        let Some(log) = self.log.take() else { return };
        let n = log.next_offset();
        drop(log);
        // Injected faults may fail this open too (its directory fsync, its
        // writes): retried as in `recover`.
        let res = self.open_retrying();
        self.absorb_faults();
        if self.stopped() {
            return;
        }
        match res {
            Ok(log) => {
                if log.next_offset() != n {
                    self.fail(format!("recovery is not idempotent: {n} records, then {}", log.next_offset()));
                }
                self.log = Some(log);
                self.mark(Mark::RecoveryIdempotent);
            }
            Err(e) if self.model.detect_mode => {
                self.note(|| format!("second open -> {e}"), Event::SecondOpenFailed, &[]);
                self.ended = true;
            }
            Err(e) => self.fail(format!("the second open after recovery failed: {e}")),
        }
    }

    /// Holds a recovered log to the model: its length between what was
    /// durable and what was accepted, its first offset, every record
    /// (`content.rs`), its segments (`read_api.rs`), a durable offset at
    /// its end; then the model takes the recovered state as the new truth.
    /// Returns whether every check passed.
    pub(crate) fn check_recovered(&mut self, log: &Log) -> bool {
        let n = log.next_offset() as usize;
        if self.model.maybe_restart.is_some_and(|at| at == log.first_offset() && at as usize == n) {
            self.mark(Mark::RestartedPastEnd);
            self.model.restart(n as u64);
        }
        if let Err(m) = self.model.check_recovered_len(n) {
            self.fail(m);
            return false;
        }
        match self.model.check_loss_reported(n, log.recovery_report().possibly_acknowledged.as_ref()) {
            Ok(true) => self.mark(Mark::AcknowledgedLossReported),
            Ok(false) => {}
            Err(m) => {
                self.fail(m);
                return false;
            }
        }
        let first = log.first_offset();
        // A failed write (poisoned) may have left a prefix truncation (its
        // own, or retention's inside a roll) durable or not.
        let first_ok = first == self.model.first
            || Some(first) == self.model.maybe_first
            || (self.model.poisoned_since_recovery && first > self.model.first && first as usize <= n);
        if !first_ok {
            self.fail(format!("first offset is {first} after recovery, the model says {}", self.model.first));
            return false;
        }
        if !self.check_recovered_records(log, first, n) || !self.check_segments(log, first, n) {
            return false;
        }
        self.model.first = first;
        self.model.maybe_first = None;
        self.model.poisoned_since_recovery = false;
        self.model.maybe_truncated_to = None;
        self.model.maybe_restart = None;
        self.model.cut_to(n);
        self.model.durable = n;
        self.model.truncated_to(n);
        self.model.recovery_checked();
        self.model.poisoned = false;
        if log.durable_offset() as usize != n {
            self.fail(format!("durable offset {} after recovering {n} records", log.durable_offset()));
        }
        // A missing index is rebuilt when a read first seeks inside its
        // segment (the active segment's at the open).
        if log.indexes_rebuilt() > 0 {
            self.mark(Mark::IndexRebuilt);
        }
        true
    }
}
