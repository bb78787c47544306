//! Liveness checker: once faults stop, the log makes progress.
//!
//! Verifies: with faults off (after a crash if the log was poisoned or
//! closed) ten appends and a sync succeed, everything accepted is durable,
//! and the last records read back equal the model.
//!
//! Does not verify: progress while faults are on (a poisoned log refuses
//! writes by design).

use seglog_core::Log;
use sim_fs::FaultConfig;

use crate::marks::Mark;
use crate::trace::Event;
use crate::world::World;

impl World {
    /// Faults stop; the log must make progress: reopen (after a crash, if
    /// it was poisoned or closed), append, sync, read back.
    pub(crate) fn liveness(&mut self) {
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
