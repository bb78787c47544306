//! One seed, run on madsim: the log lives on a simulated node whose disk is
//! a [`SimFs`]; client tasks append, sync, read and iterate concurrently; a
//! background task rolls segments on simulated time; the supervisor kills
//! the node (sim-fs's madsim plugin turns that into a power failure), restarts
//! it, recovers the log and checks it against the [`Model`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use log_core::{Clock, Entry, Error, Log, Options, Record};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim_fs::plugin::SimFsPlugin;
use sim_fs::{CrashPolicy, FaultConfig, FaultKind, Hit, SimFs};

use crate::marks::Mark;
use crate::model::{Marks, Model};
use crate::op::{FaultStep, Op};
use crate::record::{Recorder, fails_calls};
use crate::scenario::{Params, Scenario, value_bytes};
use crate::trace::Event;

/// The log's directory on the simulated disk.
pub const LOG_DIR: &str = "/data/log";

/// Upper bound on simulated time per seed, so that a livelock fails the
/// seed instead of hanging the campaign: every op takes at most `think_ms`.
pub(crate) fn sim_time_limit(params: &Params, ops: u32) -> Duration {
    Duration::from_millis((u64::from(ops) + 100) * (params.think_ms + 1) * 4 + 10_000)
}

thread_local! {
    pub(crate) static LAST_PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Replaces the panic hook with one that keeps the message and location of
/// a panic for the seed's failure report instead of printing it (a campaign
/// catches panics per seed).
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| (*s).to_string()))
            .unwrap_or_else(|| "non-string panic".into());
        let mut at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        if std::env::var_os("SIM_BACKTRACE").is_some() {
            at.push_str(&format!("\n{}", std::backtrace::Backtrace::force_capture()));
        }
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{msg}{at}")));
    }));
}

/// The message of a panic caught around a run: what the panic hook kept
/// (message and location), else the payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    LAST_PANIC.with(|l| l.borrow_mut().take()).unwrap_or_else(|| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_string()))
            .unwrap_or_else(|| "non-string panic".into())
    })
}

/// What one seed did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The scenario run.
    pub scenario: Scenario,
    /// Why the seed failed, if it did.
    pub failure: Option<String>,
    /// Rare paths hit.
    pub marks: Marks,
    /// Hash of everything that happened; identical on every replay.
    pub trace_hash: u64,
    /// One line per op, fault, crash and check (only when traced).
    pub timeline: Vec<String>,
    /// Operations executed.
    pub ops_done: u32,
}

/// The log's clock: simulated wall time.
#[derive(Debug)]
pub(crate) struct SimClock;

impl Clock for SimClock {
    fn now_ms(&self) -> u64 {
        madsim::time::TimeHandle::try_current()
            .and_then(|t| t.now_time().duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// Everything the supervisor and the node's tasks share.
struct World {
    scn: Scenario,
    params: Params,
    fs: SimFs,
    log: Option<Log>,
    model: Model,
    rng: ChaCha8Rng,
    ops_done: u32,
    /// Clients stop when `ops_done` reaches this.
    phase_end: u32,
    /// Corruption was detected where a fault allowed it: the run ends early.
    ended: bool,
    rec: Recorder,
    /// The madsim node the log runs on (its kill is the power failure);
    /// `None` for a schedule, whose disk crashes directly.
    node: Option<(madsim::runtime::Handle, madsim::task::NodeId)>,
}

type Shared = Arc<Mutex<World>>;

fn lock(w: &Shared) -> MutexGuard<'_, World> {
    w.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl World {
    fn note(&mut self, line: impl FnOnce() -> String, event: Event, data: &[u64]) {
        self.rec.note(line, event, data);
    }

    fn mark(&mut self, m: Mark) {
        self.rec.mark(m);
    }

    fn fail(&mut self, msg: String) {
        self.rec.fail(msg);
    }

    fn stopped(&self) -> bool {
        self.rec.failure.is_some() || self.ended
    }

    fn options(&self) -> Options {
        Options {
            fs: self.fs.shared(),
            clock: Arc::new(SimClock),
            config: self.params.config.clone(),
            read_only: false,
        }
    }

    /// Takes in the faults sim-fs injected since the last look.
    fn absorb_faults(&mut self) {
        for f in self.rec.take_faults(&self.fs) {
            // A lost index or temporary file is derived data or a leftover:
            // recovery must cope silently, losing nothing.
            if f.kind == FaultKind::FileLost && derived_or_temporary(&f.path) {
                self.mark(Mark::LostIndexFileRebuilt);
                continue;
            }
            if f.hit == Hit::Durable {
                self.model.detect_mode = true;
                self.mark(Mark::MediaFaultOnDurableData);
                if f.kind == FaultKind::FileLost {
                    self.mark(Mark::DurableFileLost);
                    // The documented limit (docs/FORMAT.md, "Lost files"):
                    // with every file the log owns gone, the directory is a
                    // new log. Nothing is left to check.
                    let left = fs_listing(&self.fs);
                    if !left.iter().any(|n| n.ends_with(".log") || n == log_core::inspect::META_FILE_NAME) {
                        self.mark(Mark::EveryFileLost);
                        self.note(
                            || "every file of the log is gone: a new log from here on".to_string(),
                            Event::EveryFileGone,
                            &[],
                        );
                        self.ended = true;
                    }
                }
                // The misdirected write never reached its place: the batch
                // it belonged to left no evidence on disk, so the batch
                // before it is the last one as far as the disk can tell
                // (the documented undetectable window moves back by one).
                if matches!(f.kind, FaultKind::Misdirected { .. }) {
                    self.model.widen_window();
                }
            }
        }
    }

    /// Checks an error from a write path against the model. Returns whether
    /// the log is now poisoned.
    fn check_write_error(&mut self, what: &str, e: &Error, next_before: u64) {
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

    fn check_read(&mut self, res: Result<Record, Error>, offset: u64) {
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

    fn check_read_error(&mut self, e: &Error) {
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
    fn mark_detected(&mut self, e: &Error, what: Mark) {
        self.mark(what);
        if matches!(e, Error::Corruption { detail, .. } if detail.contains("stale record frame")) {
            self.mark(Mark::StaleFrameDetected);
        }
    }

    /// One client operation of a seed: drawn from the seed's swarm mix and
    /// run by the executor.
    fn step(&mut self, client: u32) {
        if self.stopped() || self.ops_done >= self.phase_end || self.log.is_none() {
            return;
        }
        self.ops_done += 1;
        let op = Op::draw(&mut self.rng, &self.params);
        self.exec(client, op);
    }

    /// The executor: runs `op` as task `client`, checks what it returned
    /// against the model, and takes in the faults it met.
    pub(crate) fn exec(&mut self, client: u32, op: Op) {
        match op {
            Op::Append { n } => self.op_append(client, n),
            Op::Sync => self.op_sync(client),
            Op::Read => self.op_read(client),
            Op::Iter => self.op_iter(client),
            Op::TimeLookup => self.op_time_lookup(client),
            Op::Roll => self.op_roll(client),
            Op::TruncateFrom => self.op_truncate_from(client),
            Op::TruncateBefore => self.op_truncate_before(client),
            Op::RestartAt => self.op_restart(client),
            Op::Compact { power_fail_at } => self.op_compact_at(client, power_fail_at),
            Op::Crash { policy, twice } => self.crash_op(policy, twice),
            Op::CleanRestart => self.clean_restart(),
            Op::Fault(f) => self.set_fault_plan(f),
        }
        self.absorb_faults();
        self.absorb_durable();
    }

    /// The log may make records durable inside a call that then fails (a
    /// roll's seal before a failed segment creation): what it reports durable
    /// is what the checker holds it to.
    fn absorb_durable(&mut self) {
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

    fn new_entry(&mut self, offset: u64) -> (Record, bool) {
        // Mostly up to the seed's `value_max`; sometimes empty; rarely up to
        // 60 KB (larger than any sector, buffer or small segment).
        let len = if self.params.value_max == 0 || self.rng.random_bool(0.05) {
            0
        } else if self.rng.random_bool(0.002) {
            self.rng.random_range(0..=60_000)
        } else {
            self.rng.random_range(0..=self.params.value_max)
        };
        let key = (self.params.key_space > 0)
            .then(|| format!("k{}", self.rng.random_range(0..self.params.key_space)).into_bytes());
        let tombstone = key.is_some() && self.rng.random_bool(0.05);
        let explicit_ts = self.rng.random_bool(0.2);
        let ts = if explicit_ts { self.rng.random_range(0..2_000_000_000_000u64) } else { SimClock.now_ms() };
        let rec = Record {
            offset,
            timestamp_ms: ts,
            key,
            value: value_bytes(self.scn.seed, offset, len),
            flags: if tombstone { log_core::RecordFlags::TOMBSTONE } else { log_core::RecordFlags::NONE },
        };
        (rec, explicit_ts)
    }

    fn op_append(&mut self, client: u32, n: usize) {
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
        let res = match entries.as_slice() {
            [one] => log.append(*one).map(|o| o..o + 1),
            many => log.append_batch(many),
        };
        let durable_now = log.durable_offset() as usize;
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
                // Clock-stamped records got `SimClock.now_ms()` of this very
                // instant (no simulated time passes inside a step).
                self.model.accepted.extend(recs);
                if durable_now >= self.model.accepted.len() {
                    self.model.synced();
                }
            }
            Err(e) => {
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

    fn op_sync(&mut self, client: u32) {
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

    fn op_read(&mut self, client: u32) {
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

    fn op_iter(&mut self, client: u32) {
        let Some(log) = self.log.as_ref() else { return };
        let (first, next) = (log.first_offset(), log.next_offset());
        let a = self.rng.random_range(first..=next);
        let b = self.rng.random_range(a..=next.min(a + 64));
        // Half the scans through the lending `reader()` (by the parity of
        // `a`, so the seed's draws are unchanged): its records are copied
        // out field by field, and must match the model as `iter`'s do.
        let lending = a % 2 == 1;
        let got: Vec<Result<Record, Error>> = if lending {
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
        } else {
            log.iter(a..b).collect()
        };
        self.note(|| format!("c{client} iter {a}..{b} -> {} items", got.len()), Event::Iter, &[a, b, got.len() as u64]);
        let api = if lending { "reader" } else { "iter" };
        self.check_records(&format!("{api}({a}..{b})"), got, a, b);
    }

    /// Checks items read in offset order from `from`: dense, equal to the
    /// model, ending at `end` unless an error (judged by `check_read_error`)
    /// cut them short. Returns whether the run may go on.
    fn check_records(&mut self, what: &str, items: Vec<Result<Record, Error>>, from: u64, end: u64) -> bool {
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

    fn op_time_lookup(&mut self, client: u32) {
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
        // The first record at or after `ts` that compaction did not remove;
        // one it may have removed may be skipped.
        let mut allowed = Vec::new();
        for r in self.model.accepted.get(first..n).unwrap_or_default() {
            if r.timestamp_ms < ts || self.model.gone.contains(&r.offset) {
                continue;
            }
            allowed.push(Some(r.offset));
            if !self.model.maybe_gone.contains(&r.offset) {
                break;
            }
        }
        if allowed.last().is_none_or(|o| o.is_some_and(|o| self.model.maybe_gone.contains(&o))) {
            allowed.push(None);
        }
        let want = allowed.first().copied().flatten();
        let exact = want.is_some_and(|o| self.model.accepted.get(o as usize).is_some_and(|r| r.timestamp_ms == ts));
        match res {
            Ok(got) if allowed.contains(&got) => {
                if exact {
                    self.mark(Mark::TimeLookupAtStoredTimestamp);
                }
            }
            Ok(got) => self.fail(format!("offset_for_timestamp({ts}) = {got:?}, model says {want:?}")),
            Err(e) => self.check_read_error(&e),
        }
    }

    fn op_truncate_from(&mut self, client: u32) {
        let Some(log) = self.log.as_mut() else { return };
        let (first, next) = (log.first_offset(), log.next_offset());
        // Mostly a short suffix, as Raft conflicts are.
        let at = next.saturating_sub(self.rng.random_range(0..=8)).max(first);
        let res = log.truncate_from(at);
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
                // Truncating at the end is a no-op: it makes nothing durable.
                if at < next {
                    self.mark(Mark::SuffixTruncated);
                    self.model.accepted.truncate(at as usize);
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

    fn op_truncate_before(&mut self, client: u32) {
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
                // gone now (records below the first offset are invisible).
                let mut dropped = 0;
                for r in self.model.accepted.get(first as usize..sealed_end as usize).unwrap_or_default() {
                    let o = r.offset;
                    let must_go = may.contains(&o);
                    match log.read(o) {
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

    fn op_restart(&mut self, client: u32) {
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

    fn op_roll(&mut self, client: u32) {
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

    fn free_space_if_full(&mut self, faults: &[sim_fs::FaultRecord]) {
        free_space_if_full(&self.fs, faults, &mut self.rec.marks);
    }

    /// Opens the log read-write. An open that fails because sim-fs injected
    /// an I/O error (or a full disk) is retried, as an operator would; one
    /// that fails without such a fault is returned, for the caller to judge
    /// (a bug, unless it expects detected corruption).
    fn open_retrying(&mut self) -> Result<Log, Error> {
        let mut res = Log::open_with(Path::new(LOG_DIR), self.options());
        for _ in 0..20 {
            let before = self.rec.faults_seen();
            self.absorb_faults();
            let new_faults = self.fs.faults_since(before);
            let injected_eio = new_faults.iter().any(|f| fails_calls(&f.kind));
            // After a failed fsync the page cache holds data the disk will
            // never get: retrying in the same boot would read it back. The
            // operator's retry is a reboot (the cache is dropped).
            let fsync_failed = new_faults.iter().any(|f| f.kind == FaultKind::SyncEio);
            match &res {
                Err(Error::Io { .. } | Error::DiskFull { .. }) if injected_eio => {
                    self.note(
                        || format!("open failed on an injected fault, retrying: {:?}", res.as_ref().err()),
                        Event::Open,
                        &[2],
                    );
                    if fsync_failed {
                        self.fs.crash();
                        self.mark(Mark::RebootAfterFsyncEioAtOpen);
                    }
                    self.free_space_if_full(&new_faults);
                    res = Log::open_with(Path::new(LOG_DIR), self.options());
                }
                _ => break,
            }
        }
        res
    }

    /// Opens the log after a (re)start and checks what it recovered.
    fn recover(&mut self, after_crash: bool) {
        if self.stopped() {
            return;
        }
        let res = self.open_retrying();
        self.absorb_faults();
        if self.stopped() {
            return;
        }
        let log = match res {
            Ok(log) => log,
            Err(e) => {
                self.note(|| format!("open -> {e}"), Event::Open, &[0]);
                match &e {
                    Error::Corruption { .. } | Error::Io { .. } if self.model.detect_mode => {
                        self.mark_detected(&e, Mark::CorruptionDetectedAtOpen);
                        self.ended = true;
                    }
                    _ => self.fail(format!("the log refused to open where only recoverable faults were injected: {e}")),
                }
                return;
            }
        };
        let n = log.next_offset() as usize;
        let r = log.recovery_report().clone();
        let (durable, accepted) = (self.model.durable, self.model.accepted.len());
        self.note(
            || format!("open -> recovered {n} records (durable {durable}, accepted {accepted}), report {r:?}"),
            Event::Open,
            &[1, n as u64],
        );
        if r.torn_tail.is_some() {
            self.mark(Mark::TornTailTruncated);
        }
        if r.finished_restart.is_some() {
            self.mark(Mark::InterruptedRestartFinished);
        }
        if r.finished_roll.is_some() {
            self.mark(Mark::InterruptedRollFinished);
        }
        if !r.temporaries_removed.is_empty() {
            self.mark(Mark::TemporariesRemoved);
        }
        if after_crash {
            if n < self.model.accepted.len() {
                self.mark(Mark::UnsyncedLostInCrash);
            }
            if n > self.model.durable {
                self.mark(Mark::UnsyncedSurvivedCrash);
            }
        }
        if self.model.maybe_restart.is_some_and(|at| at == log.first_offset() && at as usize == n) {
            self.mark(Mark::RestartedPastEnd);
            self.model.restart(n as u64);
        }
        if let Err(m) = self.model.check_recovered_len(n) {
            self.fail(m);
            return;
        }
        let first = log.first_offset();
        // A failed write (poisoned) may have left a prefix truncation (its
        // own, or retention's inside a roll) durable or not.
        let first_ok = first == self.model.first
            || Some(first) == self.model.maybe_first
            || (self.model.poisoned_since_recovery && first > self.model.first && first as usize <= n);
        if !first_ok {
            self.fail(format!("first offset is {first} after recovery, the model says {}", self.model.first));
            return;
        }
        // Every recovered record, byte for byte.
        self.model.forget_from(n as u64);
        let records: Vec<Result<Record, Error>> = log.iter(..).collect();
        let present: std::collections::BTreeSet<u64> =
            records.iter().filter_map(|r| r.as_ref().ok().map(|r| r.offset)).collect();
        let complete = records.iter().all(Result::is_ok);
        if !self.check_records("the recovered log", records, first, n as u64) {
            return;
        }
        if log.recovery_report().finished_compaction {
            self.mark(Mark::CompactionFinishedAtRecovery);
        }
        // What an interrupted compaction did is now settled.
        if complete {
            let maybe = std::mem::take(&mut self.model.maybe_gone);
            self.model.gone.extend(maybe.into_iter().filter(|o| *o >= first && !present.contains(o)));
        }
        // Segments contiguous, only the last one active.
        let segs = log.segments();
        let mut next = segs.first().map_or(first, |s| s.base_offset);
        for (i, s) in segs.iter().enumerate() {
            if s.base_offset != next {
                self.fail(format!(
                    "segments not contiguous: {} starts at {}, expected {next}",
                    s.path.display(),
                    s.base_offset
                ));
                return;
            }
            if !s.sealed && i + 1 != segs.len() {
                self.fail(format!("unsealed segment {} is not the last", s.path.display()));
                return;
            }
            next = s.next_offset;
        }
        if next as usize != n {
            self.fail(format!("segments end at {next}, log says {n}"));
            return;
        }
        self.model.first = first;
        self.model.maybe_first = None;
        self.model.poisoned_since_recovery = false;
        self.model.maybe_truncated_to = None;
        self.model.maybe_restart = None;
        self.model.accepted.truncate(n);
        self.model.durable = n;
        self.model.truncated_to(n);
        self.model.poisoned = false;
        if log.durable_offset() as usize != n {
            self.fail(format!("durable offset {} after recovering {n} records", log.durable_offset()));
        }
        // The full read above loaded every segment's index.
        if log.indexes_rebuilt() > 0 {
            self.mark(Mark::IndexRebuilt);
        }
        self.check_second_writer();
        self.log = Some(log);
    }

    /// One writer per directory: while the log is open, a second read-write
    /// open is refused at once with `Locked` and changes nothing (neither
    /// the disk nor the cache), and a read-only open beside it works. Takes
    /// no randomness, so it leaves every seed's trajectory as it was.
    fn check_second_writer(&mut self) {
        match second_writer_refused(&self.fs, self.options()) {
            Ok(()) => self.mark(Mark::SecondWriterRefused),
            Err(m) => self.fail(m),
        }
    }

    /// Recovery must be idempotent: a second open, with no crash between,
    /// finds exactly what the first did.
    fn check_idempotent(&mut self) {
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
}

impl World {
    /// The machine loses power (under `policy`, else one the disk's plan
    /// draws) and boots again: on madsim the node is killed (the sim-fs
    /// plugin crashes its disk) and restarted; without madsim the disk
    /// crashes directly. The dead process's log handle is dropped after the
    /// crash, so its buffered bytes hit stale handles and are lost.
    fn power_cycle(&mut self, policy: Option<CrashPolicy>) -> Option<CrashPolicy> {
        match self.node.clone() {
            Some((handle, id)) => {
                handle.kill(id);
                drop(self.log.take());
                handle.restart(id);
                SimFsPlugin::current().crashes().last().map(|c| c.1)
            }
            None => {
                let policy = match policy {
                    Some(p) => {
                        self.fs.crash_with(p);
                        p
                    }
                    None => self.fs.crash(),
                };
                drop(self.log.take());
                Some(policy)
            }
        }
    }

    /// A crash and the recovery checked against the model; with `twice`
    /// the power fails again right after the first recovery; then a second
    /// open must find the same log.
    fn crash_op(&mut self, policy: Option<CrashPolicy>, twice: bool) {
        self.crash_and_recover(policy);
        if twice && !self.stopped() {
            self.mark(Mark::CrashDuringRecovery);
            self.crash_and_recover(policy);
        }
        if !self.stopped() {
            self.check_idempotent();
        }
    }

    fn crash_and_recover(&mut self, policy: Option<CrashPolicy>) {
        let files_before = fs_listing(&self.fs);
        let policy = self.power_cycle(policy);
        let files_after = fs_listing(&self.fs);
        self.note(
            || format!("CRASH ({policy:?}); files before {files_before:?} after {files_after:?}"),
            Event::Crash,
            &[files_after.len() as u64],
        );
        if files_before.iter().any(|f| !files_after.contains(f)) {
            self.mark(Mark::LostDirectoryEntry);
        }
        self.absorb_faults();
        self.recover(true);
    }

    /// A clean shutdown (close) and a machine restart: a close that
    /// succeeded keeps everything accepted, and the open trusts the
    /// clean-close footers instead of scanning.
    fn clean_restart(&mut self) {
        let Some(log) = self.log.take() else { return };
        let next = log.next_offset();
        let res = log.close();
        self.note(|| format!("CLEAN CLOSE -> {res:?}"), Event::CleanClose, &[res.is_ok() as u64]);
        match &res {
            Ok(()) if self.model.poisoned => self.fail("close succeeded on a poisoned log".into()),
            Ok(()) => self.model.synced(),
            Err(Error::Poisoned { .. }) if self.model.poisoned => {}
            Err(Error::Io { .. } | Error::DiskFull { .. }) => {}
            // The log is closed; records past the durable offset may be
            // lost (the model already allows that for every unsynced one).
            Err(Error::DiskFullAtClose { durable, .. }) => {
                if *durable as usize != self.model.durable {
                    let want = self.model.durable;
                    self.fail(format!("a close that hit a full disk reports {durable} durable, the model {want}"));
                }
            }
            Err(e) => self.fail(format!("close failed unexpectedly: {e}")),
        }
        let closed_clean = res.is_ok();
        self.absorb_faults();
        // The process exits and the machine restarts: the crash of its
        // disk must lose nothing after a successful close.
        self.power_cycle(None);
        self.recover(true);
        if closed_clean && !self.stopped() && !self.model.detect_mode {
            let n = self.log.as_ref().map_or(0, Log::next_offset);
            if n != next {
                self.fail(format!("a clean close kept {n} of {next} records"));
            } else if let Some(log) = self.log.as_ref()
                && log.recovery_report().clean
            {
                self.mark(Mark::CleanReopenTrustedFooter);
            }
        }
    }

    /// A schedule's change of the fault plan (crash policies stay).
    fn set_fault_plan(&mut self, f: FaultStep) {
        let base = FaultConfig {
            crash_policies: self.fs.config().crash_policies,
            canary: self.fs.config().canary,
            ..FaultConfig::default()
        };
        let c = match f {
            FaultStep::Off => base,
            FaultStep::SyncEio => FaultConfig { p_sync_eio: 0.2, ..base },
            FaultStep::WriteEio => FaultConfig { p_write_eio: 0.2, ..base },
            FaultStep::DirSyncEio => FaultConfig { p_dir_sync_eio: 0.2, ..base },
            FaultStep::ShortIo => FaultConfig { p_short_io: 0.5, ..base },
            FaultStep::DiskFull { room_kib } => {
                FaultConfig { capacity_bytes: Some(self.fs.used_bytes() + u64::from(room_kib) * 1024), ..base }
            }
            FaultStep::Misdirected => FaultConfig { p_misdirected_write: 0.1, ..base },
            FaultStep::BitflipAtCrash => FaultConfig { p_bitflip_at_crash: 1.0, ..base },
            FaultStep::BadSectorAtCrash => FaultConfig { p_bad_sector_at_crash: 1.0, ..base },
            FaultStep::FileLostAtCrash => FaultConfig { p_file_lost_at_crash: 0.5, ..base },
        };
        self.note(|| format!("fault plan: {f:?}"), Event::FaultPlan, &[]);
        self.fs.set_config(c);
    }

    /// Faults stop; the log must make progress: reopen (after a crash, if
    /// it was poisoned or closed), append, sync, read back.
    fn liveness(&mut self) {
        if self.stopped() {
            return;
        }
        self.fs.set_config(FaultConfig { canary: self.fs.config().canary, ..FaultConfig::default() });
        // A poisoned log must be reopened; a crash first makes that
        // realistic.
        if self.model.poisoned || self.log.is_none() {
            self.crash_and_recover(None);
            if self.stopped() {
                return;
            }
        }
        self.note(|| "liveness phase: faults off".into(), Event::LivenessPhase, &[]);
        for _ in 0..10 {
            self.op_append(0, 1);
        }
        self.op_sync(0);
        if self.stopped() {
            return;
        }
        let (n, durable) = match self.log.as_ref() {
            Some(log) => (log.next_offset() as usize, log.durable_offset() as usize),
            None => return,
        };
        if n != self.model.accepted.len() || durable != n {
            let msg = format!(
                "no progress once faults stopped: {n} records, {durable} durable, model {}",
                self.model.accepted.len()
            );
            self.fail(msg);
            return;
        }
        self.absorb_durable();
        let first = self.log.as_ref().map_or(0, Log::first_offset);
        let from = (n.saturating_sub(10) as u64).max(first);
        for off in from..n as u64 {
            let res = self.log.as_ref().map(|l| l.read(off));
            if let Some(res) = res {
                self.check_read(res, off);
            }
        }
        if !self.stopped() {
            self.mark(Mark::LivenessAfterFaults);
        }
    }
}

/// A second read-write open while a writer holds the log: refused at once
/// with `Locked`, and the filesystem (disk and cache) unchanged.
pub(crate) fn second_writer_refused(fs: &SimFs, options: Options) -> Result<(), String> {
    let before = fs.state_hash();
    match Log::open_with(Path::new(LOG_DIR), options) {
        Err(Error::Locked { .. }) => {}
        Ok(_) => return Err("a second writer opened the log while the first one had it open".into()),
        Err(e) => return Err(format!("a second writer got another error than Locked: {e}")),
    }
    if fs.state_hash() != before {
        return Err("a refused second writer changed the filesystem".into());
    }
    Ok(())
}

/// Whether a lost file only held derived data (an index) or a leftover (a
/// temporary): its loss must go unnoticed and lose nothing.
fn derived_or_temporary(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name.ends_with(".index") || name.ends_with(".timeindex") || name.ends_with(".tmp")
}

/// Runs one scenario. `trace` keeps the timeline.
pub fn run(scn: &Scenario, trace: bool) -> Outcome {
    let params = match Params::derive(scn) {
        Ok(p) => p,
        Err(e) => {
            return Outcome {
                scenario: scn.clone(),
                failure: Some(e),
                marks: Marks::new(),
                trace_hash: 0,
                timeline: Vec::new(),
                ops_done: 0,
            };
        }
    };
    if let Some(gp) = params.group.clone() {
        return crate::group::run_group(scn, params, gp, trace);
    }
    let mut rt = madsim::runtime::Runtime::with_seed_and_config(scn.seed, madsim::Config::default());
    rt.set_time_limit(sim_time_limit(&params, scn.ops));
    rt.add_simulator::<SimFsPlugin>();
    let world: Shared = Arc::new(Mutex::new(World {
        scn: scn.clone(),
        fs: SimFs::new(scn.seed ^ 0xD15C, params.faults.clone()),
        params,
        log: None,
        model: Model::default(),
        rng: ChaCha8Rng::seed_from_u64(scn.seed ^ 0xC11E_4700),
        ops_done: 0,
        phase_end: 0,
        ended: false,
        rec: Recorder::new(trace),
        node: None,
    }));
    let w2 = Arc::clone(&world);
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(supervise(w2))));
    let mut w = lock(&world);
    let w = &mut *w;
    let out = w.rec.outcome(scn.clone(), &w.fs, w.ops_done, res.err());
    // madsim does not free the tasks still pending when a runtime ends, and
    // they hold the world: empty it, so a process running many seeds (a
    // fuzzer) does not keep every seed's disk.
    w.log = None;
    w.model = Model::default();
    w.fs = SimFs::new(0, FaultConfig::default());
    out
}

/// Runs an explicit [`Schedule`](crate::schedule::Schedule) against the
/// same checker as a seed: sequentially, on one simulated disk, without
/// madsim tasks (a crash is a direct power failure of the disk). The
/// configuration comes from the schedule's seed; faults only from its
/// steps. Ends with the liveness check.
pub fn run_schedule(sched: &crate::schedule::Schedule, trace: bool) -> Outcome {
    let scn = Scenario::new(sched.seed, sched.steps.len() as u32);
    let params = match Params::derive(&scn) {
        Ok(p) => p,
        Err(e) => {
            return Outcome {
                scenario: scn,
                failure: Some(e),
                marks: Marks::new(),
                trace_hash: 0,
                timeline: Vec::new(),
                ops_done: 0,
            };
        }
    };
    let base_faults = FaultConfig { crash_policies: CrashPolicy::ALL.to_vec(), ..FaultConfig::default() };
    let mut w = World {
        scn: scn.clone(),
        fs: SimFs::new(sched.seed ^ 0xD15C, base_faults),
        params,
        log: None,
        model: Model::default(),
        rng: ChaCha8Rng::seed_from_u64(sched.seed ^ 0xC11E_4700),
        ops_done: 0,
        phase_end: u32::MAX,
        ended: false,
        rec: Recorder::new(trace),
        node: None,
    };
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        w.recover(false);
        for (i, &op) in sched.steps.iter().enumerate() {
            if w.stopped() {
                break;
            }
            if w.log.is_none() {
                // A failed open (on an injected fault) is retried after the
                // next step, as an operator would.
                w.recover(true);
                if w.log.is_none() {
                    continue;
                }
            }
            w.note(|| format!("step {i}: {op:?}"), Event::ScheduleStep, &[i as u64]);
            w.ops_done += 1;
            w.exec(0, op);
        }
        w.liveness();
    }));
    w.rec.outcome(scn, &w.fs, w.ops_done, res.err())
}

async fn supervise(world: Shared) {
    let handle = madsim::runtime::Handle::current();
    let mut node = handle.create_node().name("log").build();
    let (fs, crash_at, p_crash_in_recovery, n_clients, think_ms, roll_every, total_ops) = {
        let w = lock(&world);
        (
            w.fs.clone(),
            w.params.crash_at.clone(),
            w.params.p_crash_in_recovery,
            w.params.n_clients,
            w.params.think_ms,
            w.params.roll_every_ms,
            w.scn.ops,
        )
    };
    SimFsPlugin::current().attach(node.id(), fs);
    {
        let mut w = lock(&world);
        w.node = Some((handle.clone(), node.id()));
        w.recover(false);
    }

    let mut ends: Vec<u32> = crash_at.clone();
    ends.push(total_ops);
    for (phase, &end) in ends.iter().enumerate() {
        if lock(&world).stopped() {
            break;
        }
        lock(&world).phase_end = end;
        // A restarted node needs a fresh handle: the old one spawns onto the
        // killed incarnation.
        if let Some(h) = handle.get_node(node.id()) {
            node = h;
        }
        // The node's tasks: clients and a background roller.
        for c in 0..n_clients {
            let w = Arc::clone(&world);
            node.spawn(async move {
                loop {
                    let pause = {
                        let mut g = lock(&w);
                        if g.stopped() || g.ops_done >= g.phase_end || g.log.is_none() {
                            break;
                        }
                        g.step(c);
                        g.rng.random_range(0..=think_ms)
                    };
                    madsim::time::sleep(Duration::from_millis(pause)).await;
                }
            });
        }
        if let Some(every) = roll_every {
            let w = Arc::clone(&world);
            node.spawn(async move {
                loop {
                    madsim::time::sleep(Duration::from_millis(every)).await;
                    let mut g = lock(&w);
                    if g.stopped() || g.ops_done >= g.phase_end {
                        break;
                    }
                    if g.log.is_some() && !g.model.poisoned {
                        g.exec(n_clients, Op::Roll);
                    }
                }
            });
        }
        // Wait for the phase's ops, on simulated time.
        loop {
            madsim::time::sleep(Duration::from_millis(think_ms.max(1))).await;
            let g = lock(&world);
            if g.stopped() || g.ops_done >= g.phase_end || g.log.is_none() {
                break;
            }
        }
        if phase + 1 == ends.len() || lock(&world).stopped() {
            break;
        }
        // The phase ends with a restart of the node: a clean one, or a
        // power failure (sometimes a second one right after recovery).
        let mut g = lock(&world);
        let op = if g.rng.random_bool(0.25) {
            Op::CleanRestart
        } else {
            Op::Crash { policy: None, twice: g.rng.random_bool(p_crash_in_recovery) }
        };
        g.exec(0, op);
    }
    lock(&world).liveness();
}

/// An open refused by a full disk (it must write to finish recovering): the
/// operator frees space, as the error message asks, before retrying.
pub(crate) fn free_space_if_full(fs: &SimFs, faults: &[sim_fs::FaultRecord], marks: &mut Marks) {
    let config = fs.config();
    if config.capacity_bytes.is_some() && faults.iter().any(|f| f.kind == FaultKind::Enospc) {
        fs.set_config(FaultConfig { capacity_bytes: None, ..config });
        *marks.entry("space freed so that recovery could finish").or_insert(0) += 1;
    }
}

pub(crate) fn fs_listing(fs: &SimFs) -> Vec<String> {
    use log_core::FileSystem;
    fs.read_dir(&PathBuf::from(LOG_DIR)).unwrap_or_default()
}
