//! Whole op/fault schedules: the input bytes decide every operation and
//! fault (through `arbitrary`), run by the simulator against its model
//! checker on `SimFs`. A crash minimizes (`cargo fuzz tmin schedule FILE`)
//! to a short schedule that `sim-harness schedule FILE` replays.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "a fuzz target or tool fails loudly: a panic is the finding"
)]
#![no_main]

use libfuzzer_sys::fuzz_target;
use sim_harness::schedule::Schedule;

fuzz_target!(|data: &[u8]| {
    let sched = Schedule::from_bytes(data);
    let out = sim_harness::run::run_schedule(&sched, false);
    if let Some(f) = out.failure {
        panic!("schedule failed (replay: sim-harness schedule FILE): {f}");
    }
});
