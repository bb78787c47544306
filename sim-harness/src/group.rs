//! The group-commit world: one seed drives log-core's [`SharedLog`] with
//! many producer tasks (each keeping a few appends in flight), reader tasks
//! at both visibilities and occasional truncations, all interleaved by
//! madsim's seeded scheduler; the committer spends a random simulated fsync
//! latency between writing a batch and fsyncing it, so crashes land with
//! batches in flight. Faults: crashes under every policy, fsync/write/dir
//! EIO, short I/O, a full disk.
//!
//! Every record's value starts with its id (submission order is recorded as
//! a sequence number when its submit returns), so any record read back
//! names itself, and the checker holds the log to these rules:
//! - an acknowledged append is durable when acknowledged
//!   (`durable_offset` covers it) and survives every later crash, at its
//!   offset, byte for byte; so does every record a `Durable` reader saw;
//! - the log holds records in submission order (the queue is FIFO), each at
//!   most once, and never one whose append failed with `DiskFull`;
//! - readers never see a record that was not submitted, or a torn one;
//! - a truncation cuts what was queued before it, and cut records never
//!   come back;
//! - a clean shutdown resolves every queued append, and loses nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seglog_core::{CommitPhase, Error, GroupConfig, Options, OwnedEntry, Record, SharedLog, Visibility};
use sim_fs::plugin::SimFsPlugin;
use sim_fs::{FaultConfig, SimFs};

use crate::marks::Mark;
use crate::node::fs_listing;
use crate::record::Recorder;
use crate::run::{Outcome, SimClock, sim_time_limit};
use crate::scenario::{GroupParams, Params, Scenario, value_bytes};
use crate::trace::Event;

/// What the checker knows of one submitted record.
#[derive(Debug, Clone)]
struct Sub {
    key: Option<Vec<u8>>,
    /// The value submitted (kept, so a check compares bytes instead of
    /// generating them again).
    value: Vec<u8>,
    tombstone: bool,
    /// Position in the queue (set when its submit returned).
    seq: Option<u64>,
}

struct GWorld {
    seed: u64,
    ops: u32,
    params: Params,
    gp: GroupParams,
    fs: SimFs,
    shared: Option<SharedLog>,
    rng: ChaCha8Rng,
    next_id: u64,
    next_seq: u64,
    subs: BTreeMap<u64, Sub>,
    /// Offset → id of every record known durable (acknowledged, or seen by
    /// a durable reader, or recovered).
    facts: BTreeMap<u64, u64>,
    /// Ids whose append failed with `DiskFull`: never in the log.
    full_failed: BTreeSet<u64>,
    /// Suffix truncations that returned `Ok` this boot: (queue sequence
    /// number at their submission, offset).
    cuts: Vec<(u64, u64)>,
    /// Suffix truncations that failed with an I/O error this boot: they may
    /// have cut (the poisoned handle shows the cut; recovery finishes it).
    failed_cuts: Vec<(u64, u64)>,
    /// Truncations in flight: facts at or after them are not checked.
    cutting: Vec<u64>,
    first: u64,
    maybe_first: Option<u64>,
    maybe_cut: Option<u64>,
    poisoned: bool,
    closing: bool,
    boot: u64,
    ops_done: u32,
    phase_end: u32,
    rec: Recorder,
}

type Shared = Arc<Mutex<GWorld>>;

fn lock(w: &Shared) -> MutexGuard<'_, GWorld> {
    w.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn value_of(seed: u64, id: u64, len: usize) -> Vec<u8> {
    let mut v = id.to_le_bytes().to_vec();
    v.extend(value_bytes(seed, id, len));
    v
}

fn ts_of(id: u64) -> u64 {
    1_000_000 + id
}

impl GWorld {
    fn note(&mut self, line: impl FnOnce() -> String, event: Event, data: &[u64]) {
        self.rec.note(line, event, data);
    }

    fn comment(&mut self, line: impl FnOnce() -> String) {
        self.rec.comment(line);
    }

    fn mark(&mut self, m: Mark) {
        self.rec.mark(m);
    }

    fn fail(&mut self, msg: String) {
        self.rec.fail(msg);
    }

    fn stopped(&self) -> bool {
        self.rec.failure.is_some()
    }

    fn absorb_faults(&mut self) {
        self.rec.take_faults(&self.fs);
    }

    /// A new record to submit: (id, entry).
    fn new_entry(&mut self) -> (u64, OwnedEntry) {
        let id = self.next_id;
        self.next_id += 1;
        let len = match self.rng.random_range(0..100u32) {
            0..5 => 0,
            5 => self.rng.random_range(0..=20_000),
            _ => self.rng.random_range(0..=self.params.value_max),
        };
        let key = (self.params.key_space > 0)
            .then(|| format!("k{}", self.rng.random_range(0..self.params.key_space)).into_bytes());
        let tombstone = key.is_some() && self.rng.random_bool(0.05);
        let value = value_of(self.seed, id, len);
        let mut e = OwnedEntry::new(value.clone()).with_timestamp(ts_of(id));
        e.key.clone_from(&key);
        if tombstone {
            e = e.tombstone();
        }
        self.subs.insert(id, Sub { key, value, tombstone, seq: None });
        (id, e)
    }

    /// Checks a record read back; returns its id.
    fn check_record(&mut self, what: &str, rec: &Record) -> Option<u64> {
        let id = rec.value.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
        let verdict = match id.and_then(|id| self.subs.get(&id).map(|s| (id, s))) {
            None => Err(format!("{what}: offset {} holds a record that was never submitted", rec.offset)),
            Some((id, sub)) => {
                if rec.value != sub.value
                    || rec.key != sub.key
                    || rec.flags.tombstone() != sub.tombstone
                    || rec.timestamp_ms != ts_of(id)
                {
                    Err(format!("{what}: wrong bytes for record {id} at offset {}", rec.offset))
                } else if sub.seq.is_none() {
                    Err(format!("{what}: record {id} at offset {} was never queued", rec.offset))
                } else if self.full_failed.contains(&id) {
                    Err(format!("{what}: record {id} at offset {} failed with DiskFull, yet is in the log", rec.offset))
                } else {
                    Ok(id)
                }
            }
        };
        let id = match verdict {
            Ok(id) => id,
            Err(m) => {
                self.fail(m);
                return None;
            }
        };
        Some(id)
    }

    /// Checks records read in offset order: consecutive, valid, in queue
    /// order. Returns (offset, id) pairs.
    fn check_run(&mut self, what: &str, recs: &[Record]) -> Option<Vec<(u64, u64)>> {
        let mut out = Vec::with_capacity(recs.len());
        let mut last: Option<(u64, u64)> = None;
        for rec in recs {
            let id = self.check_record(what, rec)?;
            let seq = self.subs.get(&id).and_then(|s| s.seq).unwrap_or(0);
            if let Some((lo, lseq)) = last {
                if rec.offset != lo + 1 {
                    self.fail(format!("{what}: offset {} follows {lo}", rec.offset));
                    return None;
                }
                if seq <= lseq {
                    self.fail(format!(
                        "{what}: offset {} holds queue position {seq}, after {lseq} at {lo}: not in queue order",
                        rec.offset
                    ));
                    return None;
                }
            }
            last = Some((rec.offset, seq));
            out.push((rec.offset, id));
        }
        Some(out)
    }

    /// Records that `id` is durable at `offset`.
    fn fact(&mut self, what: &str, offset: u64, id: u64) {
        if self.cutting.iter().any(|&at| offset >= at) {
            return;
        }
        let seq = self.subs.get(&id).and_then(|s| s.seq).unwrap_or(0);
        // Acknowledged before a truncation that cut it: no longer a fact.
        if self.cuts.iter().any(|&(boundary, at)| seq < boundary && offset >= at) {
            self.mark(Mark::GroupAckOfTruncatedRecord);
            return;
        }
        match self.facts.insert(offset, id) {
            Some(old) if old != id => {
                self.fail(format!("{what}: offset {offset} holds record {id}, but record {old} was durable there"))
            }
            _ => {}
        }
    }

    fn on_submitted(&mut self, ids: &[u64]) {
        for id in ids {
            let seq = self.next_seq;
            self.next_seq += 1;
            if let Some(s) = self.subs.get_mut(id) {
                s.seq = Some(seq);
            }
        }
    }

    fn on_resolved(&mut self, p: u32, ids: &[u64], res: Result<std::ops::Range<u64>, Error>) {
        self.note(|| format!("p{p} {ids:?} -> {res:?}"), Event::GroupResolved, &[ids.len() as u64, res.is_ok() as u64]);
        match res {
            Ok(range) => {
                if range.end - range.start != ids.len() as u64 {
                    self.fail(format!("{} records acknowledged as {range:?}", ids.len()));
                    return;
                }
                let durable = self.shared.as_ref().map_or(0, SharedLog::durable_offset);
                // A truncation queued after it may have run since (and moved
                // the durable offset back below it).
                let seq = ids.first().and_then(|id| self.subs.get(id)).and_then(|s| s.seq).unwrap_or(0);
                let cut_since = self.cutting.iter().any(|&at| at < range.end)
                    || self
                        .cuts
                        .iter()
                        .chain(&self.failed_cuts)
                        .any(|&(boundary, at)| seq < boundary && at < range.end);
                if durable < range.end && !cut_since {
                    let (cuts, cutting) = (self.cuts.clone(), self.cutting.clone());
                    self.comment(|| format!("seq {seq} cuts {cuts:?} cutting {cutting:?}"));
                    self.fail(format!("{range:?} acknowledged while the durable offset is {durable}"));
                    return;
                }
                self.mark(Mark::GroupAppendAcknowledged);
                for (o, &id) in range.zip(ids) {
                    self.fact("acknowledgement", o, id);
                }
            }
            Err(Error::DiskFull { .. }) => {
                self.mark(Mark::GroupEnospcFailedBatch);
                self.full_failed.extend(ids);
            }
            Err(Error::Io { .. }) => {
                self.mark(Mark::GroupEioFailedBatch);
                self.poisoned = true;
            }
            Err(Error::Poisoned { .. }) => self.poisoned = true,
            Err(Error::Closed { .. }) if self.closing => {}
            Err(e) => self.fail(format!("an append failed unexpectedly: {e}")),
        }
    }

    /// A reader's `read_range(from.., vis)`; `end_now` is the end of what
    /// `vis` shows, looked at right after the read: no record at or past it
    /// may have been returned (for `Durable`, the durable offset: a durable
    /// read is checked when it happens, not only after a later crash).
    fn on_read(&mut self, vis: Visibility, from: u64, res: Result<Vec<Record>, Error>, end_now: u64) {
        self.note(
            || format!("read {vis:?} from {from} -> {:?}", res.as_ref().map(Vec::len)),
            Event::GroupRead,
            &[from, res.as_ref().map_or(u64::MAX, |r| r.len() as u64)],
        );
        match res {
            Ok(recs) => {
                if let Some(first) = recs.first()
                    && first.offset < from
                {
                    self.fail(format!("read_range({from}) started at {}", first.offset));
                    return;
                }
                if let Some(last) = recs.last()
                    && last.offset >= end_now
                {
                    self.fail(format!(
                        "a {vis:?} read returned offset {}, but the {vis:?} end was {end_now}",
                        last.offset
                    ));
                    return;
                }
                let Some(pairs) = self.check_run("a reader", &recs) else { return };
                if vis == Visibility::Durable {
                    for (o, id) in pairs {
                        self.fact("a durable reader", o, id);
                    }
                    if !recs.is_empty() {
                        self.mark(Mark::GroupDurableReaderSawRecords);
                    }
                }
            }
            Err(Error::Closed { .. }) if self.closing => {}
            Err(e) => self.fail(format!("a read failed: {e}")),
        }
    }

    /// One item of a tail that was at `pos`: a record past `pos` and below
    /// the visible end, that the model allows there (and, at `Durable`, a
    /// durable fact); or the gap error of a tail that a prefix truncation
    /// overtook, naming exactly its position and a first offset the log had
    /// reached. Returns whether the tail goes on.
    fn on_tail(
        &mut self,
        vis: Visibility,
        pos: u64,
        item: Result<Record, Error>,
        end_now: u64,
        first_now: u64,
        waited: bool,
    ) -> bool {
        let off = item.as_ref().map_or(u64::MAX, |r| r.offset);
        self.note(
            || format!("tail {vis:?} at {pos} -> {:?}", item.as_ref().map(|r| r.offset)),
            Event::GroupTail,
            &[pos, off, u64::from(waited)],
        );
        match item {
            Ok(rec) => {
                if rec.offset < pos || rec.offset >= end_now {
                    self.fail(format!(
                        "a {vis:?} tail at {pos} yielded offset {}, but the {vis:?} end was {end_now}",
                        rec.offset
                    ));
                    return false;
                }
                let Some(pairs) = self.check_run("a tail", std::slice::from_ref(&rec)) else { return false };
                if vis == Visibility::Durable {
                    for (o, id) in pairs {
                        self.fact("a durable tail", o, id);
                    }
                }
                if waited {
                    self.mark(Mark::GroupTailWaitedForRecords);
                }
                true
            }
            Err(Error::Truncated { offset, first }) => {
                if offset != pos || first <= offset || first > first_now {
                    self.fail(format!(
                        "a tail at {pos} reported the gap {offset}..{first}, but the log starts at {first_now}"
                    ));
                    return false;
                }
                self.mark(Mark::GroupTailReportedGap);
                true
            }
            // A tail ends (`None`) on shutdown: it never yields `Closed`.
            Err(e) => {
                self.fail(format!("a tail failed: {e}"));
                false
            }
        }
    }

    fn options(&self) -> Options {
        Options {
            fs: self.fs.shared(),
            clock: Arc::new(SimClock),
            config: self.params.config.clone(),
            read_only: false,
        }
    }

    /// Checks a freshly opened log (by `what`: recovery, or a read-only
    /// open) against the model: its first offset, every record readable and
    /// one the model allows there in queue order, no record a suffix
    /// truncation cut, every durable fact in place. Returns the records'
    /// ids by offset.
    fn check_opened(&mut self, log: &seglog_core::Log, what: &str) -> Option<BTreeMap<u64, u64>> {
        let (first, n) = (log.first_offset(), log.next_offset());
        if first != self.first && Some(first) != self.maybe_first {
            self.fail(format!("{what}: first offset {first}, the model says {}", self.first));
            return None;
        }
        let recs: Result<Vec<Record>, Error> = log.iter(..).collect();
        let recs = match recs {
            Ok(r) => r,
            Err(e) => {
                self.fail(format!("{what}: reading the log failed: {e}"));
                return None;
            }
        };
        if recs.len() as u64 != n - first || recs.first().is_some_and(|r| r.offset != first) {
            self.fail(format!("{what}: the log yields {} records for {first}..{n}", recs.len()));
            return None;
        }
        let pairs = self.check_run(what, &recs)?;
        for &(o, id) in &pairs {
            let seq = self.subs.get(&id).and_then(|s| s.seq).unwrap_or(0);
            if let Some(&(boundary, at)) = self.cuts.iter().find(|&&(b, at)| o >= at && seq < b) {
                self.fail(format!(
                    "{what}: record {id} (queue position {seq}) is at offset {o}, but truncate_from({at}) cut everything \
                     queued before position {boundary} from there"
                ));
                return None;
            }
        }
        let got: BTreeMap<u64, u64> = pairs.into_iter().collect();
        for (&o, &id) in self.facts.range(first..) {
            // A truncation that failed, or one still in flight when the
            // power failed (seed 1179603: its intent was durable, and
            // recovery finished it), may have cut the log to exactly there.
            if (self.maybe_cut == Some(n) || self.cutting.contains(&n)) && o >= n {
                continue;
            }
            match got.get(&o) {
                Some(&g) if g == id => {}
                Some(&g) => {
                    self.fail(format!("{what}: durable record {id} at offset {o} came back as record {g}"));
                    return None;
                }
                None => {
                    self.fail(format!("{what}: durable record {id} at offset {o} was lost ({n} records recovered)"));
                    return None;
                }
            }
        }
        Some(got)
    }

    /// After a crash, before recovery: a read-only open (what an operator's
    /// `seglog info` would do) shows what recovery will keep — every durable
    /// record, nothing cut, nothing foreign — and makes no mutating call.
    fn check_read_only_before_recovery(&mut self) {
        if self.stopped() {
            return;
        }
        let before = self.fs.mutating_ops();
        let options = Options { read_only: true, ..self.options() };
        let log = match seglog_core::Log::open_with(std::path::Path::new(crate::run::LOG_DIR), options) {
            Ok(log) => log,
            Err(e) => {
                self.fail(format!("after a crash, before recovery: a read-only open failed: {e}"));
                return;
            }
        };
        let checked = self.check_opened(&log, "a read-only open after a crash, before recovery");
        drop(log);
        let tried = self.fs.mutating_ops() - before;
        if tried != 0 {
            self.fail(format!("a read-only open after a crash made mutating calls to the filesystem ({tried})"));
        } else if checked.is_some() {
            self.mark(Mark::GroupReadOnlyOpenBeforeRecovery);
        }
    }

    /// Opens the log after a (re)start, checks it and wraps it in a fresh
    /// shared handle (whose committer the caller spawns).
    fn recover(&mut self) -> Option<seglog_core::Committer> {
        let res = crate::node::open_retrying(self);
        self.absorb_faults();
        let log = match res {
            Ok(log) => log,
            Err(e) => {
                self.fail(format!("the log refused to open where only recoverable faults were injected: {e}"));
                return None;
            }
        };
        let (first, n) = (log.first_offset(), log.next_offset());
        self.note(|| format!("open -> {first}..{n}"), Event::GroupOpen, &[first, n]);
        let got = self.check_opened(&log, "recovery")?;
        if got.keys().next_back().is_some_and(|&o| self.facts.keys().next_back().is_none_or(|&f| o > f)) {
            self.mark(Mark::GroupUnackedSurvivedCrash);
        }
        self.facts = got;
        self.cuts.clear();
        self.failed_cuts.clear();
        self.cutting.clear();
        self.first = first;
        self.maybe_first = None;
        self.maybe_cut = None;
        self.poisoned = false;
        self.closing = false;
        self.boot += 1;
        let cfg = GroupConfig {
            batch_records_max: self.gp.batch_records_max,
            queue_records_max: self.gp.queue_records_max,
            ..GroupConfig::default()
        };
        match SharedLog::new(log, cfg) {
            Ok((shared, committer)) => {
                self.shared = Some(shared);
                // The shared log holds the lock: a second writer (another
                // process opening the same directory) is refused.
                match crate::check::fs_effects::second_writer_refused(
                    &self.fs,
                    std::path::Path::new(crate::run::LOG_DIR),
                    self.options(),
                ) {
                    Ok(()) => self.mark(Mark::GroupSecondWriterRefused),
                    Err(m) => self.fail(m),
                }
                Some(committer)
            }
            Err(e) => {
                self.fail(format!("SharedLog::new failed: {e}"));
                None
            }
        }
    }
}

impl crate::node::Node for GWorld {
    const OPEN_EVENT: Event = Event::GroupOpen;
    fn disk(&self) -> &SimFs {
        &self.fs
    }
    fn recorder(&mut self) -> &mut Recorder {
        &mut self.rec
    }
    fn open_options(&self) -> Options {
        self.options()
    }
    fn log_dir(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(crate::run::LOG_DIR)
    }
    fn take_in_faults(&mut self) {
        self.absorb_faults();
    }
}

/// Runs one group-commit scenario.
pub(crate) fn run_group(scn: &Scenario, params: Params, gp: GroupParams, trace: bool) -> Outcome {
    let mut rt = madsim::runtime::Runtime::with_seed_and_config(scn.seed, madsim::Config::default());
    rt.set_time_limit(sim_time_limit(&params, scn.ops));
    rt.add_simulator::<SimFsPlugin>();
    let world: Shared = Arc::new(Mutex::new(GWorld {
        seed: scn.seed,
        ops: scn.ops,
        fs: SimFs::new(scn.seed ^ 0xD15C, params.faults.clone()),
        params,
        gp,
        shared: None,
        rng: ChaCha8Rng::seed_from_u64(scn.seed ^ 0x6E0F_0001),
        next_id: 0,
        next_seq: 0,
        subs: BTreeMap::new(),
        facts: BTreeMap::new(),
        full_failed: BTreeSet::new(),
        cuts: Vec::new(),
        failed_cuts: Vec::new(),
        cutting: Vec::new(),
        first: 0,
        maybe_first: None,
        maybe_cut: None,
        poisoned: false,
        closing: false,
        boot: 0,
        ops_done: 0,
        phase_end: 0,
        rec: Recorder::new(trace),
    }));
    {
        let mut w = lock(&world);
        let gp = w.gp.clone();
        w.comment(|| format!("group-commit world: {gp:?}"));
    }
    let w2 = Arc::clone(&world);
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(supervise(w2))));
    // As in `run::run`: no task may outlive the seed's runtime.
    let holders = Arc::strong_count(&world) - 1;
    let mut w = lock(&world);
    let w = &mut *w;
    if res.is_ok() && holders > 0 {
        w.fail(format!("{holders} tasks still hold the world after the seed's runtime ended (a leak per seed)"));
    }
    let out = w.rec.outcome(scn.clone(), &w.fs, w.ops_done, res.err());
    // madsim does not free tasks still pending when a runtime ends, and they
    // hold the world: empty it (see `run::run`).
    w.shared = None;
    w.subs = BTreeMap::new();
    w.facts = BTreeMap::new();
    w.fs = SimFs::new(0, FaultConfig::default());
    out
}

/// Spawns the committer and the boot's producer and reader tasks.
fn spawn_boot(world: &Shared, node: &madsim::runtime::NodeHandle, committer: seglog_core::Committer) {
    let (gp, think_ms, boot, seed) = {
        let w = lock(world);
        (w.gp.clone(), w.params.think_ms, w.boot, w.seed)
    };
    let mut lat = ChaCha8Rng::seed_from_u64(seed ^ boot.wrapping_mul(0x1F5C));
    let fsync_us = gp.fsync_us;
    node.spawn(async move {
        let _ = committer
            .run_with(move |phase| {
                let us = if phase == CommitPhase::Written { lat.random_range(0..=fsync_us) } else { 0 };
                madsim::time::sleep(Duration::from_micros(us))
            })
            .await;
    });
    for p in 0..gp.producers {
        let w = Arc::clone(world);
        let depth = gp.depth as usize;
        node.spawn(async move {
            let mut inflight: Vec<(Vec<u64>, seglog_core::Pending)> = Vec::new();
            loop {
                enum Next {
                    Append(Vec<u64>, Vec<OwnedEntry>),
                    Truncate(u64),
                    Stop,
                }
                let (next, shared) = {
                    let mut g = lock(&w);
                    let Some(shared) = g.shared.clone() else { break };
                    if g.stopped() || g.ops_done >= g.phase_end || g.closing {
                        (Next::Stop, shared)
                    } else {
                        g.ops_done += 1;
                        let (pt, pb) = (g.gp.p_truncate, g.gp.p_batch);
                        if g.rng.random_bool(pt) {
                            let end = shared.next_offset();
                            let at = end.saturating_sub(g.rng.random_range(0..=6)).max(shared.first_offset());
                            (Next::Truncate(at), shared)
                        } else {
                            let n = if g.rng.random_bool(pb) { g.rng.random_range(2..=4) } else { 1 };
                            let (ids, es): (Vec<u64>, Vec<OwnedEntry>) = (0..n).map(|_| g.new_entry()).unzip();
                            (Next::Append(ids, es), shared)
                        }
                    }
                };
                match next {
                    Next::Stop => break,
                    Next::Append(ids, es) => {
                        let res = shared.submit_batch(es).await;
                        let mut g = lock(&w);
                        match res {
                            Ok(pending) => {
                                g.on_submitted(&ids);
                                inflight.push((ids, pending));
                            }
                            Err(e) => g.on_resolved(p, &ids, Err(e)),
                        }
                    }
                    Next::Truncate(at) => truncate(&w, &shared, at, p).await,
                }
                while inflight.len() >= depth {
                    let (ids, pending) = inflight.remove(0);
                    let res = pending.await;
                    lock(&w).on_resolved(p, &ids, res);
                }
                let pause = lock(&w).rng.random_range(0..=think_ms);
                madsim::time::sleep(Duration::from_millis(pause)).await;
            }
            // The phase is over: wait for what is still in flight.
            for (ids, pending) in inflight {
                let res = pending.await;
                lock(&w).on_resolved(p, &ids, res);
            }
        });
    }
    if gp.compactor && lock(world).params.key_space == 0 {
        let w = Arc::clone(world);
        node.spawn(async move {
            loop {
                let pause = lock(&w).rng.random_range(1..=20 * think_ms.max(1));
                madsim::time::sleep(Duration::from_millis(pause)).await;
                let shared = {
                    let g = lock(&w);
                    let Some(shared) = g.shared.clone() else { break };
                    if g.stopped() || g.ops_done >= g.phase_end || g.closing {
                        break;
                    }
                    shared
                };
                let res = shared.compact().await;
                let poisoned = shared.is_poisoned();
                let mut g = lock(&w);
                g.note(|| format!("compactor -> {res:?}"), Event::GroupCompactor, &[res.is_ok() as u64]);
                match res {
                    Ok(r) => {
                        if r.segments_written > 0 {
                            g.mark(Mark::GroupCompactionBesideAppends);
                        }
                    }
                    // A failed swap (after its manifest) poisons the log; a
                    // failure before it leaves the log as it was.
                    Err(Error::Io { .. }) => g.poisoned |= poisoned,
                    Err(Error::Poisoned { .. } | Error::DiskFull { .. }) => {}
                    Err(Error::Closed { .. }) if g.closing => {}
                    Err(e) => g.fail(format!("compaction failed unexpectedly: {e}")),
                }
            }
        });
    }
    for _ in 0..gp.readers {
        let w = Arc::clone(world);
        node.spawn(async move {
            loop {
                let (shared, vis, from) = {
                    let mut g = lock(&w);
                    let Some(shared) = g.shared.clone() else { break };
                    if g.stopped() || g.ops_done >= g.phase_end || g.closing {
                        break;
                    }
                    let vis = if g.rng.random_bool(0.5) { Visibility::Durable } else { Visibility::Accepted };
                    let (first, end) = (shared.first_offset(), shared.end(vis));
                    let from = if end > first { g.rng.random_range(first..end) } else { first };
                    (shared, vis, from)
                };
                let res = shared.read_range(from, from + 16, vis, 64 << 10);
                // No task runs between the read and this look (no await).
                let end_now = shared.end(vis);
                lock(&w).on_read(vis, from, res, end_now);
                // Sometimes tail the log: a consumer from near the end
                // that waits there for the next records.
                let tail = lock(&w).rng.random_bool(0.2);
                if tail {
                    let (vis, back, items) = {
                        let mut g = lock(&w);
                        let vis = if g.rng.random_bool(0.5) { Visibility::Durable } else { Visibility::Accepted };
                        (vis, g.rng.random_range(0..4u64), g.rng.random_range(1..=8usize))
                    };
                    let from = shared.end(vis).saturating_sub(back).max(shared.first_offset());
                    consume_tail(&w, &shared, from, vis, items).await;
                } else {
                    let pause = lock(&w).rng.random_range(0..=think_ms);
                    madsim::time::sleep(Duration::from_millis(pause)).await;
                }
            }
        });
    }
}

/// Follows the log with a [`seglog_core::Tail`] for up to `items` items,
/// checking each as it comes (see [`GroupWorld::on_tail`]).
async fn consume_tail(w: &Shared, shared: &SharedLog, from: u64, vis: Visibility, items: usize) {
    use futures_core::Stream;
    let mut tail = shared.tail(from, vis);
    for _ in 0..items {
        let pos = tail.next_offset();
        let waits = pos >= shared.end(vis);
        let item = std::future::poll_fn(|cx| std::pin::Pin::new(&mut tail).poll_next(cx)).await;
        // No task runs between the item and this look (no await).
        let (end_now, first_now) = (shared.end(vis), shared.first_offset());
        let Some(item) = item else { break };
        let mut g = lock(w);
        if !g.on_tail(vis, pos, item, end_now, first_now, waits) {
            break;
        }
    }
}

async fn truncate(w: &Shared, shared: &SharedLog, at: u64, p: u32) {
    let before = lock(w).rng.random_bool(0.3);
    if before {
        let res = shared.truncate_before(at).await;
        let mut g = lock(w);
        g.note(
            || format!("p{p} truncate_before {at} -> {res:?}"),
            Event::GroupTruncateBefore,
            &[at, res.is_ok() as u64],
        );
        match res {
            Ok(()) => {
                if at > g.first {
                    g.mark(Mark::PrefixTruncated);
                    g.first = at;
                }
            }
            Err(Error::Io { .. }) => {
                g.maybe_first = Some(at);
                g.poisoned = true;
            }
            // The log moved between choosing `at` and the truncation's turn.
            Err(Error::Poisoned { .. } | Error::DiskFull { .. } | Error::OffsetOutOfRange { .. }) => {}
            Err(Error::Closed { .. }) if g.closing => {}
            Err(e) => g.fail(format!("truncate_before({at}) failed unexpectedly: {e}")),
        }
        return;
    }
    let boundary = {
        let mut g = lock(w);
        g.cutting.push(at);
        let b = g.next_seq;
        g.note(|| format!("p{p} truncate_from {at} queued at position {b}"), Event::GroupTruncateFromQueued, &[at, b]);
        b
    };
    let res = shared.truncate_from(at).await;
    let mut g = lock(w);
    if let Some(i) = g.cutting.iter().position(|&c| c == at) {
        g.cutting.swap_remove(i);
    }
    g.note(|| format!("p{p} truncate_from {at} -> {res:?}"), Event::GroupTruncateFrom, &[at, res.is_ok() as u64]);
    match res {
        Ok(()) => {
            g.mark(Mark::SuffixTruncated);
            g.cuts.push((boundary, at));
            let cut: Vec<u64> = g.facts.range(at..).map(|(&o, _)| o).collect();
            for o in cut {
                g.facts.remove(&o);
            }
        }
        Err(Error::Io { .. }) => {
            g.maybe_cut = Some(at);
            g.failed_cuts.push((boundary, at));
            g.poisoned = true;
        }
        Err(Error::Poisoned { .. } | Error::DiskFull { .. } | Error::OffsetOutOfRange { .. }) => {}
        Err(Error::Closed { .. }) if g.closing => {}
        Err(e) => g.fail(format!("truncate_from({at}) failed unexpectedly: {e}")),
    }
}

async fn supervise(world: Shared) {
    let handle = madsim::runtime::Handle::current();
    let mut node = handle.create_node().name("log").build();
    let (fs, crash_at, total_ops, think_ms) = {
        let w = lock(&world);
        (w.fs.clone(), w.params.crash_at.clone(), w.ops, w.params.think_ms)
    };
    SimFsPlugin::current().attach(node.id(), fs.clone());
    let Some(committer) = lock(&world).recover() else { return };
    let mut committer = Some(committer);
    let mut ends = crash_at;
    ends.push(total_ops);
    for (phase, &end) in ends.iter().enumerate() {
        if lock(&world).stopped() {
            break;
        }
        lock(&world).phase_end = end;
        if let Some(h) = handle.get_node(node.id()) {
            node = h;
        }
        if let Some(c) = committer.take() {
            spawn_boot(&world, &node, c);
        }
        loop {
            madsim::time::sleep(Duration::from_millis(think_ms.max(1))).await;
            let g = lock(&world);
            if g.stopped() || g.ops_done >= g.phase_end {
                break;
            }
        }
        if lock(&world).stopped() {
            break;
        }
        let last = phase + 1 == ends.len();
        let graceful = last || lock(&world).rng.random_bool(0.25);
        if graceful {
            // Drain: every queued append resolves, then the log closes.
            let shared = {
                let mut g = lock(&world);
                g.closing = true;
                g.shared.clone()
            };
            let res = match &shared {
                Some(s) => s.shutdown().await,
                None => Ok(()),
            };
            // Let the producers take in their last acknowledgements.
            madsim::time::sleep(Duration::from_millis(think_ms + 1)).await;
            let mut g = lock(&world);
            g.note(|| format!("SHUTDOWN -> {res:?}"), Event::GroupShutdown, &[res.is_ok() as u64]);
            match res {
                Ok(()) if g.poisoned => g.fail("shutdown closed a poisoned log cleanly".into()),
                Ok(()) => g.mark(Mark::GroupCleanShutdownDrained),
                Err(
                    Error::Poisoned { .. } | Error::Io { .. } | Error::DiskFull { .. } | Error::DiskFullAtClose { .. },
                ) => {}
                Err(e) => g.fail(format!("shutdown failed unexpectedly: {e}")),
            }
        }
        let in_flight = lock(&world).shared.as_ref().is_some_and(SharedLog::sync_in_flight);
        crate::node::power_cycle_node(&handle, node.id(), || drop(lock(&world).shared.take()));
        let mut g = lock(&world);
        if in_flight {
            g.mark(Mark::GroupCrashWithBatchInFlight);
        }
        let files = fs_listing(&fs, std::path::Path::new(crate::run::LOG_DIR));
        g.note(|| format!("CRASH (graceful: {graceful}); files {files:?}"), Event::GroupCrash, &[files.len() as u64]);
        g.absorb_faults();
        g.check_read_only_before_recovery();
        if last {
            // Liveness: faults off, the log must take and keep appends.
            fs.set_config(FaultConfig::default());
        }
        committer = g.recover();
        if committer.is_none() {
            break;
        }
    }
    liveness(&world, &handle, &node, committer).await;
    // Wind everything down, so that no task is left waiting (a pending task
    // registered with the log's events would keep the world alive in a
    // reference cycle after the runtime is gone).
    let last = lock(&world).shared.take();
    if let Some(shared) = last {
        let _ = shared.shutdown().await;
    }
    handle.kill(node.id());
}

async fn liveness(
    world: &Shared,
    handle: &madsim::runtime::Handle,
    node: &madsim::runtime::NodeHandle,
    committer: Option<seglog_core::Committer>,
) {
    let Some(committer) = committer else { return };
    if lock(world).stopped() {
        return;
    }
    let node = handle.get_node(node.id()).unwrap_or_else(|| node.clone());
    node.spawn(async move {
        let _ = committer.run().await;
    });
    let Some(shared) = lock(world).shared.clone() else { return };
    let mut got = Vec::new();
    for _ in 0..10 {
        let (id, e) = lock(world).new_entry();
        lock(world).on_submitted(&[id]);
        let res = shared.append(e).await;
        got.push((id, res));
    }
    let mut g = lock(world);
    for (id, res) in got {
        match res {
            Ok(o) => {
                g.fact("liveness", o, id);
                match shared.read(o, Visibility::Durable) {
                    Ok(rec) => {
                        let _ = g.check_record("liveness", &rec);
                    }
                    Err(e) => g.fail(format!("liveness: reading back offset {o} failed: {e}")),
                }
            }
            Err(e) => g.fail(format!("no progress once faults stopped: {e}")),
        }
    }
    if !g.stopped() {
        g.mark(Mark::LivenessAfterFaults);
    }
}
