//! Scenario files (what `sim-harness run --save-failures` and
//! `save-scenario` write) as input: any that decodes is run, capped at 300
//! operations, and must pass the checker. The seed corpus is scenario files.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "a fuzz target or tool fails loudly: a panic is the finding"
)]
#![no_main]

use libfuzzer_sys::fuzz_target;
use sim_harness::scenario::Scenario;

fuzz_target!(|data: &[u8]| {
    let Ok(mut scn) = Scenario::decode(data) else { return };
    scn.ops = scn.ops.min(300);
    // A canary scenario is meant to fail: run its seed honestly instead.
    scn.canary = None;
    let out = sim_harness::run::run(&scn, false);
    if let Some(f) = out.failure {
        panic!("scenario seed {} failed: {f}", scn.seed);
    }
});
