//! One seed, run on madsim: the log lives on a simulated node whose disk is
//! a [`SimFs`]; client tasks append, sync, read and iterate concurrently; a
//! background task rolls segments on simulated time; the supervisor kills
//! the node (sim-fs's madsim plugin turns that into a power failure), restarts
//! it, recovers the log and checks it against the [`Model`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngExt;
use seglog_core::Clock;
use sim_fs::plugin::SimFsPlugin;
use sim_fs::{CrashPolicy, FaultConfig, SimFs};

use crate::model::{Marks, Model};
use crate::op::Op;
use crate::scenario::{Params, Scenario};
use crate::trace::Event;
use crate::world::{Shared, World, lock};

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
    /// One per timeline line: when it happened and the model's offsets.
    pub points: Vec<crate::record::TimelinePoint>,
    /// Operations executed.
    pub ops_done: u32,
    /// The client ops the run executed, in order (single-handle seeds): as
    /// a [`Scenario::script`] they replay it.
    pub script: Vec<crate::scenario::ScriptStep>,
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

impl Outcome {
    /// A scenario that could not run: `why` is its failure.
    pub fn refused(scn: &Scenario, why: String) -> Self {
        Outcome {
            scenario: scn.clone(),
            failure: Some(why),
            marks: Marks::new(),
            trace_hash: 0,
            timeline: Vec::new(),
            points: Vec::new(),
            ops_done: 0,
            script: Vec::new(),
        }
    }
}

/// Runs one scenario. `trace` keeps the timeline.
pub fn run(scn: &Scenario, trace: bool) -> Outcome {
    let params = match Params::derive(scn) {
        Ok(p) => p,
        Err(e) => return Outcome::refused(scn, e),
    };
    if let Some(gp) = params.group.clone() {
        if scn.script.is_some() {
            return Outcome::refused(
                scn,
                format!(
                    "seed {} runs the group-commit world, whose ops come from its producers: a script is for single-handle seeds",
                    scn.seed
                ),
            );
        }
        return crate::group::run_group(scn, params, gp, trace);
    }
    let mut rt = madsim::runtime::Runtime::with_seed_and_config(scn.seed, madsim::Config::default());
    rt.set_time_limit(sim_time_limit(&params, scn.ops));
    rt.add_simulator::<SimFsPlugin>();
    let faults = params.faults.clone();
    let world: Shared = Arc::new(Mutex::new(World::new(scn.clone(), params, faults, trace)));
    let w2 = Arc::clone(&world);
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(supervise(w2))));
    // Every task of the seed ended with it (the node is killed at the end):
    // one left waiting would outlive the runtime, which never frees it, and
    // keep the world and its disk for the rest of the process.
    let holders = Arc::strong_count(&world) - 1;
    let mut w = lock(&world);
    let w = &mut *w;
    if res.is_ok() && holders > 0 {
        w.fail(format!("{holders} tasks still hold the world after the seed's runtime ended (a leak per seed)"));
    }
    let mut out = w.rec.outcome(scn.clone(), &w.fs, w.ops_done, res.err());
    out.script = std::mem::take(&mut w.executed);
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
            return Outcome::refused(&scn, e);
        }
    };
    let base_faults = FaultConfig { crash_policies: CrashPolicy::ALL.to_vec(), ..FaultConfig::default() };
    let mut w = World::new(scn.clone(), params, base_faults, trace);
    w.phase_end = u32::MAX;
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
    let mut phase = 0;
    while let Some(&end) = ends.get(phase) {
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
                        if g.stopped() || g.ops_done >= g.phase_end || g.log.is_none() || g.crash_due() {
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
                    if g.stopped() || g.ops_done >= g.phase_end || g.crash_due() {
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
            if g.stopped() || g.ops_done >= g.phase_end || g.log.is_none() || g.crash_due() {
                break;
            }
        }
        let mut g = lock(&world);
        if g.stopped() {
            break;
        }
        // A fault's follow-up crash: the power fails between ops, and the
        // phase goes on after recovery.
        if g.crash_due() {
            g.exec(0, Op::Crash { policy: None, twice: false });
            continue;
        }
        if phase + 1 == ends.len() {
            break;
        }
        phase += 1;
        // The phase ends with a restart of the node: a clean one, or a
        // power failure (sometimes a second one right after recovery).
        let op = if g.rng.random_bool(0.25) {
            Op::CleanRestart
        } else {
            Op::Crash { policy: None, twice: g.rng.random_bool(p_crash_in_recovery) }
        };
        g.exec(0, op);
    }
    lock(&world).liveness();
    // Wind down: the node's tasks still waiting (clients asleep until their
    // next op) would otherwise outlive the runtime, which never frees them,
    // and with them the world and its disk (half a megabyte a seed). The
    // disk is detached first, so the kill does not crash it.
    SimFsPlugin::current().detach(node.id());
    handle.kill(node.id());
}
