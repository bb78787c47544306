//! Many seeds: run them on worker threads (each seed in its own madsim
//! runtime), collect failures and marks.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::Marks;
use crate::run::{Outcome, run};
use crate::scenario::Scenario;

/// What a campaign found.
#[derive(Debug, Default)]
pub struct CampaignReport {
    /// Seeds that passed.
    pub passed: u64,
    /// Outcomes of the seeds that failed, by seed.
    pub failed: Vec<Outcome>,
    /// Rare paths hit, summed over all seeds.
    pub marks: Marks,
    /// Seeds that hit each rare path at least once.
    pub mark_seeds: Marks,
    /// Operations executed, summed.
    pub ops: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Runs `seeds` with `ops` operations each on `jobs` threads. `progress`
/// is called after each seed with (done, total, failed so far).
pub fn campaign(
    seeds: Range<u64>,
    ops: u32,
    canary: Option<String>,
    jobs: usize,
    progress: &(dyn Fn(u64, u64, u64) + Sync),
) -> CampaignReport {
    campaign_until(seeds, ops, canary, jobs, u64::MAX, progress)
}

/// Like [`campaign`], but stops taking new seeds once `max_failures` seeds
/// failed (canary runs need a handful of detections, not thousands). Seeds
/// are taken in order, so the seeds run are a prefix of the range (give or
/// take the ones in flight).
pub fn campaign_until(
    seeds: Range<u64>,
    ops: u32,
    canary: Option<String>,
    jobs: usize,
    max_failures: u64,
    progress: &(dyn Fn(u64, u64, u64) + Sync),
) -> CampaignReport {
    campaign_with(seeds, ops, canary, jobs, max_failures, &|scn| run(scn, false), progress)
}

/// Like [`campaign_until`], with the runner of one seed given (the
/// cluster campaign runs `cluster::run_cluster`).
pub fn campaign_with(
    seeds: Range<u64>,
    ops: u32,
    canary: Option<String>,
    jobs: usize,
    max_failures: u64,
    runner: &(dyn Fn(&Scenario) -> Outcome + Sync),
    progress: &(dyn Fn(u64, u64, u64) + Sync),
) -> CampaignReport {
    let start = Instant::now();
    let next = AtomicU64::new(seeds.start);
    let done = AtomicU64::new(0);
    let n_failed = AtomicU64::new(0);
    let total = seeds.end.saturating_sub(seeds.start);
    let report = Arc::new(Mutex::new(CampaignReport::default()));
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    if n_failed.load(Ordering::SeqCst) >= max_failures {
                        break;
                    }
                    let seed = next.fetch_add(1, Ordering::SeqCst);
                    if seed >= seeds.end {
                        break;
                    }
                    let out = runner(&Scenario { seed, ops, canary: canary.clone(), script: None });
                    let failed = out.failure.is_some();
                    {
                        let mut r = report.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        for (k, v) in &out.marks {
                            *r.marks.entry(k).or_insert(0) += v;
                            *r.mark_seeds.entry(k).or_insert(0) += 1;
                        }
                        r.ops += u64::from(out.ops_done);
                        if failed {
                            r.failed.push(out);
                        } else {
                            r.passed += 1;
                        }
                    }
                    if failed {
                        n_failed.fetch_add(1, Ordering::SeqCst);
                    }
                    let d = done.fetch_add(1, Ordering::SeqCst) + 1;
                    progress(d, total, n_failed.load(Ordering::SeqCst));
                }
            });
        }
    });
    let mut r = std::mem::take(&mut *report.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    r.failed.sort_by_key(|o| o.scenario.seed);
    r.elapsed = start.elapsed();
    r
}

/// The command that replays `scn`.
pub fn replay_command(scn: &Scenario, default_ops: u32) -> String {
    let mut cmd = format!("cargo run --release -p sim-harness -- replay --seed {}", scn.seed);
    if scn.ops != default_ops {
        cmd.push_str(&format!(" --ops {}", scn.ops));
    }
    if let Some(c) = &scn.canary {
        cmd.push_str(&format!(" --canary {c}"));
    }
    cmd
}

/// A failure's signature: which check failed and how, without the numbers
/// that differ from seed to seed (offsets, counts, file names, sizes), so
/// that the seeds one bug fails group together. The first line of the
/// message, every run of digits (and `0x` hex) replaced by `N`, at most
/// 160 characters.
pub fn signature(failure: &str) -> String {
    let line = failure.lines().next().unwrap_or_default();
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            if c == '0' && chars.peek() == Some(&'x') {
                chars.next();
                while chars.peek().is_some_and(char::is_ascii_hexdigit) {
                    chars.next();
                }
            }
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('N');
        } else {
            out.push(c);
        }
    }
    if out.chars().count() > 160 {
        out = out.chars().take(159).collect();
        out.push('…');
    }
    out
}

/// The seeds that failed one way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureGroup {
    /// Their common [`signature`].
    pub signature: String,
    /// How many seeds failed this way.
    pub count: u64,
    /// The smallest of them (the one to replay first).
    pub smallest: Scenario,
    /// Its full failure message.
    pub example: String,
}

/// Failed outcomes grouped by [`signature`]: the largest group first (ties
/// by smallest seed).
pub fn group_failures(failed: &[Outcome]) -> Vec<FailureGroup> {
    let mut groups: std::collections::BTreeMap<String, FailureGroup> = std::collections::BTreeMap::new();
    for out in failed {
        let msg = out.failure.as_deref().unwrap_or("?");
        let sig = signature(msg);
        let g = groups.entry(sig.clone()).or_insert_with(|| FailureGroup {
            signature: sig,
            count: 0,
            smallest: out.scenario.clone(),
            example: msg.to_string(),
        });
        g.count += 1;
        if out.scenario.seed < g.smallest.seed {
            g.smallest = out.scenario.clone();
            g.example = msg.to_string();
        }
    }
    let mut v: Vec<FailureGroup> = groups.into_values().collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then(a.smallest.seed.cmp(&b.smallest.seed)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_leave_out_the_numbers() {
        assert_eq!(
            signature("durable records lost: recovered 10 records, 12 were durable\nmore"),
            "durable records lost: recovered N records, N were durable"
        );
        assert_eq!(
            signature("corruption in `/data/log-salvaged-2/00000000000000000160.log` at byte 0x3f: bad"),
            "corruption in `/data/log-salvaged-N/N.log` at byte N: bad"
        );
        assert_eq!(signature(&"x".repeat(500)).chars().count(), 160);
    }
}
