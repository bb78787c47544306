//! The cluster simulation from outside: seeds pass, a seed replays bit for
//! bit, and every cluster canary is caught.

#![cfg(feature = "cluster")]
#![allow(clippy::unwrap_used, reason = "a test fails loudly")]

use sim_harness::campaign::campaign_with;
use sim_harness::cluster::{ClusterCanary, ClusterMark, run_cluster};
use sim_harness::scenario::Scenario;

fn scn(seed: u64, ops: u32, canary: Option<&str>) -> Scenario {
    Scenario { seed, ops, canary: canary.map(String::from), script: None }
}

#[test]
fn cluster_seeds_pass_and_replay_bit_for_bit() {
    sim_harness::run::install_panic_hook();
    let report = campaign_with(0..12, 100, None, 2, u64::MAX, &|s| run_cluster(s, false), &|_, _, _| {});
    let failures: Vec<_> = report.failed.iter().map(|o| (o.scenario.seed, o.failure.clone())).collect();
    assert!(failures.is_empty(), "{failures:?}");
    assert!(report.marks.get(ClusterMark::NewLeader.name()).copied().unwrap_or(0) >= 12);
    assert!(report.marks.get(ClusterMark::NodeRebooted.name()).copied().unwrap_or(0) > 0);
    let a = run_cluster(&scn(5, 100, None), true);
    let b = run_cluster(&scn(5, 100, None), true);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.timeline, b.timeline);
    assert!(a.timeline.iter().any(|l| l.contains("is linearizable")), "the final checks did not run");
}

#[test]
fn every_cluster_canary_is_caught() {
    sim_harness::run::install_panic_hook();
    for c in ClusterCanary::ALL {
        let report = campaign_with(0..60, 100, Some(c.name().into()), 2, 1, &|s| run_cluster(s, false), &|_, _, _| {});
        assert!(!report.failed.is_empty(), "cluster canary {} was not caught in seeds 0..60", c.name());
    }
}

#[test]
fn an_unknown_cluster_canary_is_refused() {
    let out = run_cluster(&scn(1, 10, Some("nope")), false);
    assert!(out.failure.unwrap().contains("unknown cluster canary"));
}
