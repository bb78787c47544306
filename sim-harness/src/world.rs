//! The single-handle world: the log on one simulated node, the model it
//! is checked against, and the executor that runs one [`Op`] at a time.
//! The op implementations are in `ops.rs` (writes) and `check/read_api.rs`
//! (reads); the node's lifecycle (crash, clean restart, recovery) in
//! `node.rs`; the rules each result is held to in `check/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seglog_core::{Clock, FileSystem, Log, Options, Record};
use sim_fs::{FaultConfig, FaultKind, SimFs};

use crate::check::fs_effects::Beside;
use crate::marks::Mark;
use crate::model::Model;
use crate::op::Op;
use crate::record::Recorder;
use crate::run::SimClock;
use crate::scenario::{Params, Scenario, ScriptStep, value_bytes};
use crate::trace::Event;

/// Everything the supervisor and the node's tasks share.
pub(crate) struct World {
    pub(crate) scn: Scenario,
    pub(crate) params: Params,
    pub(crate) fs: SimFs,
    /// The log's directory: `LOG_DIR`, until an operator salvages a
    /// damaged log into a new one (`node.rs`).
    pub(crate) dir: PathBuf,
    pub(crate) log: Option<Log>,
    pub(crate) model: Model,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) ops_done: u32,
    /// Clients stop when `ops_done` reaches this.
    pub(crate) phase_end: u32,
    /// Corruption was detected where a fault allowed it: the run ends early.
    pub(crate) ended: bool,
    pub(crate) rec: Recorder,
    /// The madsim node the log runs on (its kill is the power failure);
    /// `None` for a schedule, whose disk crashes directly.
    pub(crate) node: Option<(madsim::runtime::Handle, madsim::task::NodeId)>,
    /// The filesystem the log is opened on, if not the disk itself (the
    /// exhaustive mode's wrapper that captures crash images at syncs).
    pub(crate) fs_view: Option<Arc<dyn FileSystem>>,
    /// Draws the fault follow-ups (a stream of its own, so seeds without
    /// faults run as they did).
    pub(crate) follow_rng: ChaCha8Rng,
    /// A follow-up crash is due once `ops_done` reaches this.
    pub(crate) crash_due_at: Option<u32>,
    /// The kinds of faults the due crash follows.
    pub(crate) crash_after: BTreeSet<FaultClass>,
    /// How many ops that met each kind of fault were considered for a
    /// follow-up since the last crash: at most [`FOLLOW_UPS_PER_BOOT`] per
    /// kind (short writes and a full disk come by the hundred).
    pub(crate) followed: BTreeMap<FaultClass, u32>,
    /// Draws power cuts at a filesystem step of an op (a stream of its
    /// own).
    pub(crate) cut_rng: ChaCha8Rng,
    /// A schedule's `PowerCut`: the step at which the power fails during
    /// the next op.
    pub(crate) cut_next: Option<u64>,
    /// The cut of the op in progress, for the lifecycle ops (close,
    /// recovery) to arm at their step.
    pub(crate) pending_cut: Option<u64>,
    /// Operator salvages so far (each into a directory of its own).
    pub(crate) salvages: u32,
    /// Power failures so far (every kind).
    pub(crate) power_failures: u64,
    /// Draws media faults aimed at structure (`check/aimed.rs`; a stream
    /// of its own).
    pub(crate) aim_rng: ChaCha8Rng,
    /// Draws the looks between two ops (`World::look`; a stream of its
    /// own).
    pub(crate) look_rng: ChaCha8Rng,
    /// The scenario's script, if it has one: the client ops still to run.
    pub(crate) script: Option<std::vec::IntoIter<ScriptStep>>,
    /// The client ops run so far, in order (the script this run records).
    pub(crate) executed: Vec<ScriptStep>,
}

/// Ops meeting one kind of fault that may draw a follow-up, per boot.
pub(crate) const FOLLOW_UPS_PER_BOOT: u32 = 3;

/// A kind of injected fault, as the follow-up shares count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum FaultClass {
    Enospc,
    Eio,
    ShortIo,
    Media,
}

impl FaultClass {
    /// The class of a fault sim-fs injected (`None`: a canary's lie).
    pub(crate) fn of(kind: &FaultKind) -> Option<Self> {
        Some(match kind {
            FaultKind::Enospc => FaultClass::Enospc,
            FaultKind::SyncEio | FaultKind::WriteEio | FaultKind::DirSyncEio | FaultKind::ReadEio => FaultClass::Eio,
            FaultKind::ShortIo => FaultClass::ShortIo,
            FaultKind::BitFlip
            | FaultKind::BadSector
            | FaultKind::Misdirected { .. }
            | FaultKind::FileLost
            | FaultKind::LostWrite => FaultClass::Media,
            FaultKind::Lie(_) => return None,
        })
    }

    /// The marks of a crash and of a full read-back following this class.
    pub(crate) fn marks(self) -> (Mark, Mark) {
        match self {
            FaultClass::Enospc => (Mark::EnospcThenCrash, Mark::EnospcThenReadback),
            FaultClass::Eio => (Mark::EioThenCrash, Mark::EioThenReadback),
            FaultClass::ShortIo => (Mark::ShortIoThenCrash, Mark::ShortIoThenReadback),
            FaultClass::Media => (Mark::MediaFaultThenCrash, Mark::MediaFaultThenReadback),
        }
    }
}

pub(crate) type Shared = Arc<Mutex<World>>;

pub(crate) fn lock(w: &Shared) -> MutexGuard<'_, World> {
    w.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl World {
    /// A world for `scn` whose disk starts with the fault plan `faults`;
    /// the disk and the workload draw from streams of the seed. `trace`
    /// keeps the timeline.
    pub(crate) fn new(scn: Scenario, params: Params, faults: FaultConfig, trace: bool) -> Self {
        let scn_seed = scn.seed;
        let script = scn.script.clone();
        World {
            fs: SimFs::new(scn.seed ^ 0xD15C, faults),
            dir: PathBuf::from(crate::run::LOG_DIR),
            rng: ChaCha8Rng::seed_from_u64(scn.seed ^ 0xC11E_4700),
            scn,
            params,
            log: None,
            model: Model::default(),
            ops_done: 0,
            phase_end: 0,
            ended: false,
            rec: Recorder::new(trace),
            node: None,
            fs_view: None,
            follow_rng: ChaCha8Rng::seed_from_u64(scn_seed ^ 0xF011_0A5F),
            crash_due_at: None,
            crash_after: BTreeSet::new(),
            followed: BTreeMap::new(),
            cut_rng: ChaCha8Rng::seed_from_u64(scn_seed ^ 0x0C07_F00D),
            cut_next: None,
            pending_cut: None,
            power_failures: 0,
            salvages: 0,
            aim_rng: ChaCha8Rng::seed_from_u64(scn_seed ^ 0xA1_3ED0),
            look_rng: ChaCha8Rng::seed_from_u64(scn_seed ^ 0x100C_0B5E),
            script: script.map(|s| crate::scenario::expand(&s).into_iter()),
            executed: Vec::new(),
        }
    }

    pub(crate) fn note(&mut self, line: impl FnOnce() -> String, event: Event, data: &[u64]) {
        self.rec.offsets = Some((self.model.accepted.len() as u64, self.model.durable as u64));
        self.rec.note(line, event, data);
    }

    pub(crate) fn mark(&mut self, m: Mark) {
        self.rec.mark(m);
    }

    pub(crate) fn fail(&mut self, msg: String) {
        self.rec.fail(msg);
    }

    pub(crate) fn stopped(&self) -> bool {
        self.rec.failure.is_some() || self.ended
    }

    pub(crate) fn options(&self) -> Options {
        Options {
            fs: self.fs_view.clone().unwrap_or_else(|| self.fs.shared()),
            clock: Arc::new(SimClock),
            config: self.params.config.clone(),
            read_only: false,
        }
    }

    /// One client operation of a seed: drawn from the seed's swarm mix and
    /// run by the executor.
    pub(crate) fn step(&mut self, client: u32) {
        if self.stopped() || self.ops_done >= self.phase_end || self.log.is_none() {
            return;
        }
        self.ops_done += 1;
        // Drawn even when a script says what to run, so that the seed's
        // stream stays where the recorded run had it.
        let drawn = Op::draw(&mut self.rng, &self.params);
        let op = match self.script.as_mut().map(Iterator::next) {
            None => drawn,
            Some(Some(step)) => step.op,
            Some(None) => {
                // The script is done, and so is the run.
                self.ops_done -= 1;
                self.ended = true;
                return;
            }
        };
        self.executed.push(ScriptStep { client, op, times: 1 });
        if op != Op::Pass {
            self.exec(client, op);
        }
    }

    /// The executor: runs `op` as task `client`, checks what it returned
    /// against the model, and takes in the faults it met.
    pub(crate) fn exec(&mut self, client: u32, op: Op) {
        let faults_before = self.rec.faults_seen();
        // Reads change nothing on disk: no step for a cut to strike.
        let cut = match op {
            Op::Compact { .. }
            | Op::Fault(_)
            | Op::PowerCut { .. }
            | Op::Read
            | Op::Iter
            | Op::TimeLookup
            | Op::Verify
            | Op::Pass => None,
            Op::Crash { .. } | Op::CleanRestart | Op::ProcessRestart => self.draw_cut(true),
            _ => self.draw_cut(false),
        };
        // Ops whose calls the cut strikes directly; the lifecycle ops arm
        // it themselves (the close, the recovery).
        let cut_mark = match op {
            Op::Append { .. } | Op::Sync | Op::Roll => Some(Mark::PowerCutMidWrite),
            Op::TruncateFrom | Op::TruncateBefore | Op::RestartAt => Some(Mark::PowerCutMidTruncation),
            _ => None,
        };
        match (cut, cut_mark) {
            (Some(k), Some(_)) => self.fs.power_off_after(k),
            (Some(k), None) => self.pending_cut = Some(k),
            (None, _) => {}
        }
        let retention = match op {
            Op::Append { .. } | Op::Roll => self.retention_snapshot(),
            _ => None,
        };
        match op {
            Op::Append { n } => self.op_append(client, n),
            Op::Sync => self.op_sync(client),
            Op::Read => self.op_read(client),
            Op::Iter => self.op_iter(client),
            Op::TimeLookup => self.op_time_lookup(client),
            Op::Verify => self.op_verify(client),
            Op::Pass => {}
            Op::Roll => self.op_roll(client),
            Op::TruncateFrom => self.op_truncate_from(client),
            Op::TruncateBefore => self.op_truncate_before(client),
            Op::RestartAt => self.op_restart(client),
            Op::Compact { power_fail_at } => self.op_compact_at(client, power_fail_at),
            Op::Crash { policy, twice } => self.crash_op(policy, twice),
            Op::CleanRestart => self.clean_restart(),
            Op::ProcessRestart => self.process_restart(),
            Op::Fault(f) => self.set_fault_plan(f),
            Op::PowerCut { at } => self.cut_next = Some(u64::from(at)),
        }
        self.pending_cut = None;
        if let Some((first, before)) = retention
            && !self.fs.is_powered_off()
        {
            self.check_retention(first, &before);
        }
        if let (Some(_), Some(mark)) = (cut, cut_mark) {
            self.after_power_cut(mark);
        }
        // The batches this op synced first, then its faults: a misdirected
        // write belongs to the newest batch, and hides it (seed 1033067:
        // the other order registered the batch after widening the window
        // for it, which closed the window again).
        self.absorb_durable();
        self.absorb_faults();
        self.follow_up(faults_before);
        self.look();
    }

    /// What a user may look at between any two ops, checked after every
    /// one: `stats()` (poisoned as the log says, every fsync timed;
    /// appends and truncations check their own counts); `segments()` (contiguous, one active, from the log's first
    /// offset to its end; not on a poisoned log, whose segments may lag its
    /// offsets, as documented); and, 1 in 100 ops, a read-only open beside
    /// the running writer (`check/fs_effects.rs`).
    fn look(&mut self) {
        let Some(log) = self.log.take() else { return };
        let stats = log.stats();
        if stats.poisoned != log.is_poisoned() || stats.fsync_latency.count != stats.syncs {
            self.fail(format!("stats disagree with the log (poisoned: {}): {stats:?}", log.is_poisoned()));
        }
        if !self.stopped() && !log.is_poisoned() {
            let (first, n) = (log.first_offset(), log.next_offset());
            if self.check_segments(&log, first, n as usize)
                && !self.model.poisoned
                && !self.fs.is_powered_off()
                && self.look_rng.random_bool(0.01)
            {
                self.note(
                    || format!("read-only look beside the writer at {first}..{n}"),
                    Event::ReadOnlyLook,
                    &[first, n],
                );
                self.log = Some(log);
                self.check_read_only_open("beside the running writer", Beside::Running { first, len: n });
                return;
            }
        }
        self.log = Some(log);
    }

    /// After an op that met injected faults: sometimes a power failure
    /// within the next few ops (the supervisor runs it once `crash_due`),
    /// sometimes a full read-back through every read API right away, so
    /// that what a rare fault path leaves behind is looked at.
    fn follow_up(&mut self, faults_before: usize) {
        let p = self.params.follow;
        if self.stopped() || (p.p_crash <= 0.0 && p.p_readback <= 0.0 && p.p_reopen <= 0.0) {
            return;
        }
        let classes: BTreeSet<FaultClass> = self
            .fs
            .faults_since(faults_before)
            .iter()
            .filter_map(|f| FaultClass::of(&f.kind))
            .filter(|c| self.followed.get(c).copied().unwrap_or(0) < FOLLOW_UPS_PER_BOOT)
            .collect();
        if classes.is_empty() {
            return;
        }
        for c in &classes {
            *self.followed.entry(*c).or_insert(0) += 1;
        }
        if self.node.is_some() && self.crash_due_at.is_none() && self.follow_rng.random_bool(p.p_crash) {
            self.crash_due_at = Some(self.ops_done + self.follow_rng.random_range(0..3));
            self.crash_after.clone_from(&classes);
        }
        if self.log.is_some() && self.follow_rng.random_bool(p.p_readback) {
            for c in &classes {
                self.mark(c.marks().1);
            }
            self.full_readback();
        }
        if self.model.poisoned && self.log.is_some() && self.follow_rng.random_bool(p.p_reopen) {
            self.mark(Mark::ReopenedPoisonedLogSameBoot);
            self.process_restart();
        }
    }

    /// The power cut for the next op: a schedule's `PowerCut`, else (seeded
    /// runs) one drawn with the seed's rate at a random filesystem step; a
    /// `lifecycle` op (close, recovery), a few per seed, is cut far more
    /// often than the hundreds of appends.
    fn draw_cut(&mut self, lifecycle: bool) -> Option<u64> {
        if let Some(k) = self.cut_next.take() {
            return Some(k);
        }
        let p = if lifecycle && self.params.power_cut > 0.0 { 0.3 } else { self.params.power_cut };
        (self.node.is_some() && p > 0.0 && self.cut_rng.random_bool(p)).then(|| self.cut_rng.random_range(0..24))
    }

    /// Whether a follow-up crash is due: clients stop, the supervisor
    /// crashes the node.
    pub(crate) fn crash_due(&self) -> bool {
        self.crash_due_at.is_some_and(|at| self.ops_done >= at)
    }

    /// A power failure happened: it answers the due follow-up, if any.
    pub(crate) fn crashed(&mut self) {
        self.power_failures += 1;
        self.crash_due_at = None;
        self.followed.clear();
        for c in std::mem::take(&mut self.crash_after) {
            self.mark(c.marks().0);
        }
    }

    pub(crate) fn new_entry(&mut self, offset: u64) -> (Record, bool) {
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
            flags: if tombstone { seglog_core::RecordFlags::TOMBSTONE } else { seglog_core::RecordFlags::NONE },
        };
        (rec, explicit_ts)
    }
}
