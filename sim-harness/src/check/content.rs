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

use std::collections::BTreeSet;

use seglog_core::{Error, Log, Record, RecordFlags, RecordRef};

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
                } else if let Err(msg) = self.model.check_view(&View::from(&rec)) {
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
        let mut scan = Scan { what, expect: from, end };
        for item in &items {
            if let Some(go_on) = self.scan_item(&mut scan, item.as_ref().map(View::from)) {
                return go_on;
            }
        }
        self.scan_end(&scan)
    }

    /// [`check_records`](Self::check_records) over the lending
    /// `log.reader(from..)`, record by record, nothing copied. Returns
    /// whether the run may go on, and the offsets read if every item was a
    /// record.
    pub(crate) fn check_lent(&mut self, what: &str, log: &Log, from: u64, end: u64) -> (bool, Option<BTreeSet<u64>>) {
        let mut scan = Scan { what, expect: from, end };
        let mut present = Some(BTreeSet::new());
        let mut reader = log.reader(from..);
        while let Some(item) = reader.next() {
            match &item {
                Ok(r) => {
                    if let Some(p) = &mut present {
                        p.insert(r.offset);
                    }
                }
                Err(_) => present = None,
            }
            if let Some(go_on) = self.scan_item(&mut scan, item.as_ref().map(|r| View::from(*r))) {
                return (go_on, if go_on { present } else { None });
            }
        }
        (self.scan_end(&scan), present)
    }

    /// One item of a scan; `Some(go_on)` ends it.
    fn scan_item(&mut self, scan: &mut Scan<'_>, item: Result<View<'_>, &Error>) -> Option<bool> {
        let what = scan.what;
        // Offsets compaction removed are skipped.
        while scan.expect < scan.end
            && self.model.may_skip(scan.expect)
            && item.as_ref().is_ok_and(|r| r.offset > scan.expect)
        {
            scan.expect += 1;
        }
        match item {
            Ok(r) if r.offset != scan.expect => {
                self.fail(format!("{what} yielded offset {} where {} was due", r.offset, scan.expect));
                Some(false)
            }
            Ok(r) => {
                if self.model.gone.contains(&r.offset) {
                    self.fail(format!("{what} yielded offset {}, which compaction had removed", r.offset));
                    return Some(false);
                }
                if let Err(m) = self.model.check_view(&r) {
                    self.fail(format!("{what}: {m}"));
                    return Some(false);
                }
                scan.expect += 1;
                None
            }
            Err(e) => {
                self.check_read_error(e);
                Some(!self.stopped())
            }
        }
    }

    /// The end of a scan that yielded everything: nothing due is missing.
    fn scan_end(&mut self, scan: &Scan<'_>) -> bool {
        let mut expect = scan.expect;
        while expect < scan.end && self.model.may_skip(expect) {
            expect += 1;
        }
        if expect != scan.end {
            self.fail(format!("{} ended at {expect}, {} was due", scan.what, scan.end));
            return false;
        }
        true
    }

    /// Every record of a recovered log `first..n`, byte for byte (through
    /// the lending reader); what an interrupted compaction did is settled
    /// once all of them read.
    pub(crate) fn check_recovered_records(&mut self, log: &Log, first: u64, n: usize) -> bool {
        self.model.forget_from(n as u64);
        let (go_on, present) = self.check_lent("the recovered log", log, first, n as u64);
        if !go_on {
            return false;
        }
        if log.recovery_report().finished_compaction {
            self.mark(Mark::CompactionFinishedAtRecovery);
        }
        // What an interrupted compaction did is now settled.
        if let Some(present) = present {
            let maybe = std::mem::take(&mut self.model.maybe_gone);
            self.model.gone.extend(maybe.into_iter().filter(|o| *o >= first && !present.contains(o)));
        }
        true
    }
}

/// A record read back, owned (`read`, `iter`) or lent (`reader`), as the
/// checker compares it with the model.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'r> {
    pub(crate) offset: u64,
    pub(crate) timestamp_ms: u64,
    pub(crate) flags: RecordFlags,
    pub(crate) key: Option<&'r [u8]>,
    pub(crate) value: &'r [u8],
}

impl<'r> From<&'r Record> for View<'r> {
    fn from(r: &'r Record) -> Self {
        View { offset: r.offset, timestamp_ms: r.timestamp_ms, flags: r.flags, key: r.key.as_deref(), value: &r.value }
    }
}

impl<'r> From<RecordRef<'r>> for View<'r> {
    fn from(r: RecordRef<'r>) -> Self {
        View { offset: r.offset, timestamp_ms: r.timestamp_ms, flags: r.flags, key: r.key, value: r.value }
    }
}

/// A scan being checked: items in offset order, `expect` due next, `end`
/// due last.
struct Scan<'w> {
    what: &'w str,
    expect: u64,
    end: u64,
}
