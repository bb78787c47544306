//! Shrinking a failing scenario: remove client ops from its script while
//! the run still fails the same way (the same failure
//! [`signature`](crate::campaign::signature)), and keep the smallest script
//! found. Delta debugging over the script: remove chunks of half the
//! script, then quarters, and so on down to single ops, keeping every
//! removal after which the failure holds; then cut the tail after the
//! failing op.
//!
//! What is not shrunk: what the seed decides besides the client ops — the
//! configuration, the fault plan, crashes and restarts, background rolls —
//! so a shrunk scenario still names its seed. Group-commit seeds have no
//! script and are refused.

use crate::campaign::signature;
use crate::run::{Outcome, run};
use crate::scenario::Scenario;

/// What a shrink found.
#[derive(Debug)]
pub struct Shrunk {
    /// The smallest failing scenario (with its script).
    pub scenario: Scenario,
    /// Its run.
    pub outcome: Outcome,
    /// The signature that held throughout.
    pub signature: String,
    /// Client ops in the original run (not counting `pass` turns).
    pub original_ops: usize,
    /// Client ops left (not counting `pass` turns).
    pub kept_ops: usize,
    /// Runs tried.
    pub runs: u64,
}

/// Shrinks `scn` (see the module docs); `Err` if it does not fail or has no
/// script to shrink. `progress` is called after each run with (runs, the
/// current script length).
pub fn shrink(scn: &Scenario, progress: &dyn Fn(u64, usize)) -> Result<Shrunk, String> {
    let first = run(scn, false);
    let Some(failure) = first.failure.as_deref() else {
        return Err(format!("seed {} does not fail: nothing to shrink", scn.seed));
    };
    let sig = signature(failure);
    // The script that run executed: the ops it actually ran (a run that
    // failed early ran fewer than its scenario's).
    let mut script = first.script.clone();
    if script.is_empty() {
        return Err(format!(
            "seed {} failed before any client op ran, or runs the group-commit world: no script to shrink ({failure})",
            scn.seed
        ));
    }
    let original_ops = ops_in(&script);
    let mut runs = 1u64;
    let try_script = |steps: &[crate::scenario::ScriptStep], runs: &mut u64| -> Option<Outcome> {
        let candidate = Scenario { script: Some(steps.to_vec()), ..scn.clone() };
        let out = run(&candidate, false);
        *runs += 1;
        progress(*runs, steps.len());
        out.failure.as_deref().is_some_and(|f| signature(f) == sig).then_some(out)
    };
    // The recorded script must reproduce the failure as it is.
    let Some(mut best) = try_script(&script, &mut runs) else {
        return Err(format!("seed {}: its recorded script does not fail the same way", scn.seed));
    };
    let mut chunk = script.len().div_ceil(2);
    let mut changed_at_one = true;
    while chunk >= 1 {
        let before = ops_in(&script);
        let mut at = 0;
        while at < script.len() {
            let end = (at + chunk).min(script.len());
            // Removed ops become turns that do nothing: crashes and
            // restarts, placed by op count, stay where they were.
            let mut candidate = script.clone();
            if candidate.get(at..end).is_some_and(|r| r.iter().all(|s| s.op == crate::op::Op::Pass)) {
                at = end;
                continue;
            }
            for s in candidate.get_mut(at..end).unwrap_or_default() {
                s.op = crate::op::Op::Pass;
            }
            match try_script(&candidate, &mut runs) {
                Some(out) => {
                    // Keep only what the failing run executed: the rest of
                    // the script never ran.
                    candidate.truncate(out.script.len());
                    script = candidate;
                    best = out;
                }
                None => at = end,
            }
        }
        if chunk == 1 {
            // Single ops again until none can go (a removal can make an
            // earlier one possible).
            if !changed_at_one {
                break;
            }
            changed_at_one = ops_in(&script) < before;
            continue;
        }
        chunk = chunk.div_ceil(2);
    }
    Ok(Shrunk {
        kept_ops: ops_in(&script),
        scenario: Scenario { script: Some(script), ..scn.clone() },
        outcome: best,
        signature: sig,
        original_ops,
        runs,
    })
}

/// The ops of a script that do something (not `pass`).
fn ops_in(script: &[crate::scenario::ScriptStep]) -> usize {
    script.iter().filter(|s| s.op != crate::op::Op::Pass).count()
}
