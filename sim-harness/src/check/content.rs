//! Content and order checker: every record read back is the one the model
//! holds at its offset, byte for byte, densely and in order.
//!
//! Verifies: a record's offset, key, value, timestamp and flags; that
//! scans yield consecutive offsets except those compaction removed (or may
//! have removed); that a detected corruption is reported only where a
//! media fault was injected (`detect_mode`).
//!
//! Does not verify: which read API produced the records (`read_api.rs`
//! draws the calls), or durability bounds (`durability.rs`).

use log_core::{Error, Log, Record};

use crate::marks::Mark;
use crate::world::World;

impl World {
    pub(crate) fn check_read(&mut self, res: Result<Record, Error>, offset: u64) {
        match res {
            Ok(rec) => {
                if rec.offset != offset {
                    self.fail(format!("read({offset}) returned offset {}", rec.offset));
                } else if self.model.gone.contains(&offset) {
                    self.fail(format!("read({offset}) returned a record that compaction had removed"));
                } else if let Err(msg) = self.model.check_record(&rec) {
                    self.fail(msg);
                }
            }
            Err(Error::Compacted { offset: o }) if o == offset && self.model.may_skip(offset) => {}
            Err(Error::Compacted { offset: o }) => {
                self.fail(format!("read({offset}) says offset {o} was compacted away, but the model holds its record"))
            }
            Err(e) => self.check_read_error(&e),
        }
    }

    pub(crate) fn check_read_error(&mut self, e: &Error) {
        match e {
            Error::Corruption { .. } | Error::Io { .. } if self.model.detect_mode => {
                self.mark_detected(e, Mark::CorruptionDetectedOnRead);
            }
            other => self.fail(format!("read failed where the model has the data: {other}")),
        }
    }

    /// Marks a detected media fault; a stale frame (a record of an older
    /// epoch than its offset's, left by a lost write after a suffix
    /// truncation) has a mark of its own.
    pub(crate) fn mark_detected(&mut self, e: &Error, what: Mark) {
        self.mark(what);
        if matches!(e, Error::Corruption { detail, .. } if detail.contains("stale record frame")) {
            self.mark(Mark::StaleFrameDetected);
        }
    }

    /// Checks items read in offset order from `from`: dense, equal to the
    /// model, ending at `end` unless an error (judged by `check_read_error`)
    /// cut them short. Returns whether the run may go on.
    pub(crate) fn check_records(&mut self, what: &str, items: Vec<Result<Record, Error>>, from: u64, end: u64) -> bool {
        let mut expect = from;
        for item in items {
            // Offsets compaction removed are skipped.
            while expect < end && self.model.may_skip(expect) && item.as_ref().is_ok_and(|r| r.offset > expect) {
                expect += 1;
            }
            match item {
                Ok(r) if r.offset != expect => {
                    self.fail(format!("{what} yielded offset {} where {expect} was due", r.offset));
                    return false;
                }
                Ok(r) => {
                    if self.model.gone.contains(&r.offset) {
                        self.fail(format!("{what} yielded offset {}, which compaction had removed", r.offset));
                        return false;
                    }
                    if let Err(m) = self.model.check_record(&r) {
                        self.fail(format!("{what}: {m}"));
                        return false;
                    }
                    expect += 1;
                }
                Err(e) => {
                    self.check_read_error(&e);
                    return !self.stopped();
                }
            }
        }
        while expect < end && self.model.may_skip(expect) {
            expect += 1;
        }
        if expect != end {
            self.fail(format!("{what} ended at {expect}, {end} was due"));
            return false;
        }
        true
    }

    /// Every record of a recovered log `first..n`, byte for byte; what an
    /// interrupted compaction did is settled once all of them read.
    pub(crate) fn check_recovered_records(&mut self, log: &Log, first: u64, n: usize) -> bool {
        // Every recovered record, byte for byte.
        self.model.forget_from(n as u64);
        let records: Vec<Result<Record, Error>> = log.iter(..).collect();
        let present: std::collections::BTreeSet<u64> =
            records.iter().filter_map(|r| r.as_ref().ok().map(|r| r.offset)).collect();
        let complete = records.iter().all(Result::is_ok);
        if !self.check_records("the recovered log", records, first, n as u64) {
            return false;
        }
        if log.recovery_report().finished_compaction {
            self.mark(Mark::CompactionFinishedAtRecovery);
        }
        // What an interrupted compaction did is now settled.
        if complete {
            let maybe = std::mem::take(&mut self.model.maybe_gone);
            self.model.gone.extend(maybe.into_iter().filter(|o| *o >= first && !present.contains(o)));
        }
        true
    }
}
