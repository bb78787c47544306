//! The simulator's command line: campaigns, replays, canaries, exhaustive
//! crash checks. Run `sim-harness --help`.

use std::io::IsTerminal;
use std::ops::Range;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sim_fs::Canary;
use sim_harness::campaign::{campaign, group_failures, replay_command};
use sim_harness::exhaustive::run_exhaustive;
use sim_harness::marks::Mark;
use sim_harness::run::run;
use sim_harness::scenario::Scenario;

const DEFAULT_OPS: u32 = 1000;

// The simulator allocates and frees a record's bytes many times over (the
// model, the disk, every read back); mimalloc does that for less than the
// system allocator (measured: the README's simulator numbers). Allocation
// order and addresses never reach a seed's trajectory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sim-harness",
    version,
    about = "Deterministic simulation of the segmented log on a faulty simulated disk"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a campaign of seeds; print failing seeds with their replay
    /// command, a marks summary and `sim: P passed, F failed`.
    Run {
        /// Seeds to run, as `A..B` (B excluded).
        #[arg(long, value_parser = parse_range)]
        seeds: Range<u64>,
        /// Worker threads (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Operations per seed.
        #[arg(long, default_value_t = DEFAULT_OPS)]
        ops: u32,
        /// Run with a planted filesystem lie (sync-noop, dir-sync-noop,
        /// silent-bitflip, enospc-lies).
        #[arg(long)]
        canary: Option<String>,
        /// Save each failing seed as a scenario file in this directory.
        #[arg(long)]
        save_failures: Option<PathBuf>,
    },
    /// Replay one seed: print its timeline and trace hash.
    Replay {
        #[command(flatten)]
        which: Which,
        /// Also show log-core's tracing events, each in the timeline before
        /// the op it happened in (RUST_LOG filters them).
        #[arg(long)]
        tracing: bool,
        /// Also write the timeline as one self-contained HTML page (lanes
        /// per task and the disk, faults and crashes, accepted and durable
        /// records, the failing check highlighted).
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// The cluster simulation: 3 openraft nodes on seglog-raft, each on its
    /// own faulty disk, over a faulty network; clients' history checked for
    /// linearizability, Raft's safety on the persisted logs, liveness.
    /// `--seeds A..B` runs a campaign; `--replay SEED` prints one seed's
    /// timeline and trace hash; `--canaries` runs each planted bug over the
    /// seeds and reports the first seed that caught it.
    #[cfg(feature = "cluster")]
    Cluster {
        #[arg(long, value_parser = parse_range, required_unless_present = "replay")]
        seeds: Option<Range<u64>>,
        /// Replay this seed.
        #[arg(long, conflicts_with = "seeds")]
        replay: Option<u64>,
        #[arg(long)]
        jobs: Option<usize>,
        /// Client operations per seed.
        #[arg(long, default_value_t = sim_harness::cluster::DEFAULT_CLUSTER_OPS)]
        ops: u32,
        /// A planted bug: flush-before-fsync, forget-vote, dup-acks.
        #[arg(long)]
        canary: Option<String>,
        /// Run every cluster canary over the seeds instead.
        #[arg(long, conflicts_with_all = ["canary", "replay"])]
        canaries: bool,
        /// Save each failing seed as a scenario file in this directory.
        #[arg(long)]
        save_failures: Option<PathBuf>,
    },
    /// Run each canary over the seeds; report the first seed that caught it
    /// and the median number of seeds to a detection.
    Canaries {
        #[arg(long, value_parser = parse_range)]
        seeds: Range<u64>,
        #[arg(long)]
        jobs: Option<usize>,
        #[arg(long, default_value_t = DEFAULT_OPS)]
        ops: u32,
        /// Stop a canary after this many detections (enough for a median).
        #[arg(long, default_value_t = 101)]
        max_catches: u64,
    },
    /// Check recovery on every legal crash image after every operation of
    /// short workloads.
    Exhaustive {
        #[arg(long, value_parser = parse_range)]
        seeds: Range<u64>,
        #[arg(long, default_value_t = 40)]
        ops: u32,
        /// Skip points with more crash images than this.
        #[arg(long, default_value_t = 512)]
        limit: usize,
    },
    /// Run a schedule file (a `schedule` fuzz target input, e.g. a crash
    /// found by `cargo fuzz`, or one minimized by `cargo fuzz tmin`): print
    /// its steps, timeline and result.
    Schedule {
        /// The file (raw fuzzer bytes).
        file: PathBuf,
    },
    /// Shrink a failing seed or scenario: remove client ops while it fails
    /// the same way, and write the smallest scenario found (JSON, one op
    /// per line).
    Shrink {
        #[command(flatten)]
        which: Which,
        /// Where to write the shrunk scenario.
        #[arg(long)]
        out: PathBuf,
    },
    /// Save a seed as a scenario file with the script of client ops its run
    /// executed (JSON, one op per line; for `replay --scenario`, and as
    /// seed corpus for the `scenario` fuzz target).
    SaveScenario {
        #[arg(long)]
        seed: u64,
        #[arg(long, default_value_t = DEFAULT_OPS)]
        ops: u32,
        #[arg(long)]
        out: PathBuf,
    },
}

/// The run a `replay` or `shrink` is about: a seed (with the ops and
/// canary of the run), or a scenario file.
#[derive(clap::Args)]
struct Which {
    /// The seed.
    #[arg(long, required_unless_present = "scenario")]
    seed: Option<u64>,
    /// Operations (must match the run).
    #[arg(long, default_value_t = DEFAULT_OPS)]
    ops: u32,
    /// The canary of the run.
    #[arg(long)]
    canary: Option<String>,
    /// A scenario file (`run --save-failures`, `save-scenario`, `shrink`)
    /// instead of a seed.
    #[arg(long, conflicts_with = "seed")]
    scenario: Option<PathBuf>,
}

fn parse_range(s: &str) -> Result<Range<u64>, String> {
    let (a, b) = s.split_once("..").ok_or_else(|| format!("`{s}` is not a range like 0..1000"))?;
    let a: u64 = a.trim().parse().map_err(|_| format!("`{a}` is not a number"))?;
    let b: u64 = b.trim().parse().map_err(|_| format!("`{b}` is not a number"))?;
    if b < a {
        return Err(format!("the range {a}..{b} is backwards"));
    }
    Ok(a..b)
}

/// A `--canary` (or a scenario's) must name a planted bug: a usage error
/// (exit code 2) otherwise, the same for every subcommand.
fn known_canary(canary: Option<&str>) -> Result<(), ExitCode> {
    match canary {
        Some(c) if Canary::from_name(c).is_none() => {
            eprintln!("error: unknown canary `{c}`; known: sync-noop, dir-sync-noop, silent-bitflip, enospc-lies");
            Err(ExitCode::from(2))
        }
        _ => Ok(()),
    }
}

/// The scenario a `replay` or `shrink` names: a scenario file, or a seed
/// with its ops and canary; a usage error (exit code 2) if the file does not
/// load or the canary is unknown.
fn scenario_of(which: Which) -> Result<Scenario, ExitCode> {
    let Which { seed, ops, canary, scenario } = which;
    let scn = match scenario {
        Some(path) => Scenario::load(&path).map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(2)
        })?,
        None => Scenario { seed: seed.unwrap_or(0), ops, canary, script: None },
    };
    known_canary(scn.canary.as_deref())?;
    Ok(scn)
}

fn jobs(j: Option<usize>) -> usize {
    j.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn progress_bar(total: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() || total < 200 {
        return None;
    }
    let pb = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} seeds, {msg} failed, eta {eta}") {
        pb.set_style(style);
    }
    Some(pb)
}

/// Groups shown in a campaign's output; the rest are counted (every seed
/// is in `--save-failures`'s `failures.txt`).
const GROUPS_SHOWN: usize = 20;

/// The failures of a campaign, grouped by signature (the check and its
/// kind, without the numbers): each group's count, smallest seed, its
/// message and replay command. Short however many seeds failed.
fn print_failures(failed: &[sim_harness::run::Outcome], replay: &dyn Fn(&Scenario) -> String) {
    if failed.is_empty() {
        return;
    }
    let groups = group_failures(failed);
    println!(
        "failures: {} seed{} in {} group{} (by the check that failed, numbers left out)",
        failed.len(),
        if failed.len() == 1 { "" } else { "s" },
        groups.len(),
        if groups.len() == 1 { "" } else { "s" }
    );
    for g in groups.iter().take(GROUPS_SHOWN) {
        println!("  {} × {}", g.count, g.signature);
        let first_line = g.example.lines().next().unwrap_or_default();
        let shown: String = first_line.chars().take(240).collect();
        let cut = if shown.len() < first_line.len() { "…" } else { "" };
        println!("    smallest seed {}: {shown}{cut}", g.smallest.seed);
        println!("    replay: {}", replay(&g.smallest));
    }
    if groups.len() > GROUPS_SHOWN {
        let rest: u64 = groups.iter().skip(GROUPS_SHOWN).map(|g| g.count).sum();
        println!(
            "  … and {} more groups ({rest} seeds): every failing seed is listed by `--save-failures DIR` in DIR/failures.txt",
            groups.len() - GROUPS_SHOWN
        );
    }
}

/// `--save-failures DIR`: each failing seed's scenario file, and
/// `failures.txt` with one line per seed (seed, signature, message).
fn save_failures_in(dir: &std::path::Path, failed: &[sim_harness::run::Outcome]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let mut list = String::new();
    for out in failed {
        let msg = out.failure.as_deref().unwrap_or("?");
        let path = dir.join(format!("seed-{}.scenario", out.scenario.seed));
        out.scenario.save(&path)?;
        list.push_str(&format!(
            "{}\t{}\t{}\n",
            out.scenario.seed,
            sim_harness::campaign::signature(msg),
            msg.replace('\n', " ")
        ));
    }
    std::fs::write(dir.join("failures.txt"), list).map_err(|e| e.to_string())
}

/// A replay's timeline, marks, result and trace hash.
fn print_replay(out: &sim_harness::run::Outcome, unit: &str) {
    for line in &out.timeline {
        println!("{line}");
    }
    println!("marks: {:?}", out.marks);
    match &out.failure {
        Some(f) => println!("result: FAILED: {f}"),
        None => println!("result: passed ({} {unit})", out.ops_done),
    }
    println!("trace-hash: {:016x}", out.trace_hash);
}

/// `sim-harness cluster`.
#[cfg(feature = "cluster")]
fn cluster_cmd(
    seeds: Option<Range<u64>>,
    replay: Option<u64>,
    jobs: usize,
    ops: u32,
    canary: Option<String>,
    canaries: bool,
    save_failures: Option<PathBuf>,
) -> ExitCode {
    use sim_harness::cluster::{ClusterCanary, ClusterMark, run_cluster};
    if let Some(c) = &canary
        && ClusterCanary::from_name(c).is_none()
    {
        let names: Vec<&str> = ClusterCanary::ALL.iter().map(|c| c.name()).collect();
        eprintln!("error: unknown cluster canary {c:?}; one of {}", names.join(", "));
        return ExitCode::from(2);
    }
    quiet_panics();
    if let Some(seed) = replay {
        let out = run_cluster(&Scenario { seed, ops, canary, script: None }, true);
        print_replay(&out, "client ops");
        return if out.failure.is_some() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
    }
    let Some(seeds) = seeds else {
        eprintln!("error: give --seeds A..B or --replay SEED");
        return ExitCode::from(2);
    };
    if canaries {
        let mut all_caught = true;
        for c in ClusterCanary::ALL {
            let report = sim_harness::campaign::campaign_with(
                seeds.clone(),
                ops,
                Some(c.name().into()),
                jobs,
                1,
                &|scn| run_cluster(scn, false),
                &|_, _, _| {},
            );
            match report.failed.first() {
                Some(o) => println!(
                    "cluster canary {}: caught at seed {} ({} seeds run): {}",
                    c.name(),
                    o.scenario.seed,
                    report.passed + report.failed.len() as u64,
                    o.failure.as_deref().unwrap_or("?").lines().next().unwrap_or_default()
                ),
                None => {
                    all_caught = false;
                    println!("cluster canary {}: NOT caught in seeds {seeds:?}", c.name());
                }
            }
        }
        return if all_caught { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    let total = seeds.end - seeds.start;
    let pb = progress_bar(total);
    let report = sim_harness::campaign::campaign_with(
        seeds,
        ops,
        canary,
        jobs,
        u64::MAX,
        &|scn| run_cluster(scn, false),
        &|done, _, failed| {
            if let Some(pb) = &pb {
                pb.set_position(done);
                pb.set_message(failed.to_string());
            }
        },
    );
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    print_failures(&report.failed, &|scn| {
        let canary = scn.canary.as_ref().map(|c| format!(" --canary {c}")).unwrap_or_default();
        format!("cargo run --release -p sim-harness -- cluster --replay {} --ops {}{canary}", scn.seed, scn.ops)
    });
    if let Some(dir) = &save_failures
        && let Err(e) = save_failures_in(dir, &report.failed)
    {
        eprintln!("error: saving the failures in {}: {e}", dir.display());
    }
    let hits = |m: &ClusterMark| report.marks.get(m.name()).copied().unwrap_or(0);
    println!(
        "marks: {}",
        ClusterMark::ALL.iter().map(|m| format!("{}={}", m.name(), hits(m))).collect::<Vec<_>>().join(", ")
    );
    let blind: Vec<&str> = ClusterMark::ALL.iter().filter(|m| hits(m) == 0).map(|m| m.name()).collect();
    if blind.is_empty() {
        println!("blind spots: none (every cluster mark was hit)");
    } else {
        println!("blind spots (cluster marks never hit): {}", blind.join(", "));
    }
    let secs = report.elapsed.as_secs_f64();
    println!(
        "speed: {total} seeds, {} client ops in {secs:.1} s: {:.1} seeds/s",
        report.ops,
        total as f64 / secs.max(1e-9)
    );
    println!("cluster: {} passed, {} failed", report.passed, report.failed.len());
    if report.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn quiet_panics() {
    // Panics inside a seed are caught and reported as that seed's failure,
    // with their location.
    sim_harness::run::install_panic_hook();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run { seeds, jobs: j, ops, canary, save_failures } => {
            if let Err(code) = known_canary(canary.as_deref()) {
                return code;
            }
            quiet_panics();
            let total = seeds.end - seeds.start;
            let pb = progress_bar(total);
            let report = campaign(seeds, ops, canary, jobs(j), &|done, _, failed| {
                if let Some(pb) = &pb {
                    pb.set_position(done);
                    pb.set_message(failed.to_string());
                }
            });
            if let Some(pb) = pb {
                pb.finish_and_clear();
            }
            print_failures(&report.failed, &|scn| replay_command(scn, DEFAULT_OPS));
            if let Some(dir) = &save_failures
                && let Err(e) = save_failures_in(dir, &report.failed)
            {
                eprintln!("error: saving the failures in {}: {e}", dir.display());
            }
            let secs = report.elapsed.as_secs_f64();
            let hits = |m: &Mark| report.marks.get(m.name()).copied().unwrap_or(0);
            println!("marks: {}", Mark::ALL.iter().map(|m| format!("{m}={}", hits(m))).collect::<Vec<_>>().join(", "));
            let seeds_run = (report.passed + report.failed.len() as u64).max(1);
            let share = |m: &Mark| {
                let n = report.mark_seeds.get(m.name()).copied().unwrap_or(0);
                format!("{m}={n} ({:.1}%)", 100.0 * n as f64 / seeds_run as f64)
            };
            println!("fault follow-ups (seeds): {}", Mark::FOLLOW_UPS.iter().map(share).collect::<Vec<_>>().join(", "));
            let blind: Vec<&str> = Mark::ALL.iter().filter(|m| hits(m) == 0).map(|m| m.name()).collect();
            if blind.is_empty() {
                println!("blind spots: none (every mark was hit)");
            } else {
                println!("blind spots (marks never hit): {}", blind.join(", "));
            }
            println!(
                "speed: {} seeds, {} ops in {secs:.1} s: {:.0} seeds/s, {:.0} ops/s",
                total,
                report.ops,
                total as f64 / secs.max(1e-9),
                report.ops as f64 / secs.max(1e-9)
            );
            println!("sim: {} passed, {} failed", report.passed, report.failed.len());
            if report.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Cmd::Replay { which, tracing, html } => {
            let scn = match scenario_of(which) {
                Ok(s) => s,
                Err(code) => return code,
            };
            if tracing {
                let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("seglog_core=debug"));
                sim_harness::record::capture_tracing(filter);
            }
            quiet_panics();
            let out = run(&scn, true);
            print_replay(&out, "ops");
            if let Some(path) = html {
                let title = match &scn.script {
                    Some(_) => format!("sim-harness replay: seed {} (scripted)", scn.seed),
                    None => replay_command(&scn, DEFAULT_OPS),
                };
                if let Err(e) = std::fs::write(&path, sim_harness::html::render(&out, &title)) {
                    eprintln!("error: writing {}: {e}", path.display());
                    return ExitCode::from(2);
                }
                println!("html: {}", path.display());
            }
            if out.failure.is_some() { ExitCode::FAILURE } else { ExitCode::SUCCESS }
        }
        #[cfg(feature = "cluster")]
        Cmd::Cluster { seeds, replay, jobs: j, ops, canary, canaries, save_failures } => {
            cluster_cmd(seeds, replay, jobs(j), ops, canary, canaries, save_failures)
        }
        Cmd::Canaries { seeds, jobs: j, ops, max_catches } => {
            quiet_panics();
            let mut all_caught = true;
            for c in Canary::ALL {
                let report = sim_harness::campaign::campaign_until(
                    seeds.clone(),
                    ops,
                    Some(c.name().to_string()),
                    jobs(j),
                    max_catches,
                    &|_, _, _| {},
                );
                let caught: Vec<u64> = report.failed.iter().map(|o| o.scenario.seed).collect();
                let n_run = report.passed + caught.len() as u64;
                match caught.first() {
                    Some(first) => {
                        // Seeds from the start (or the previous detection) to each detection.
                        let mut gaps: Vec<u64> = Vec::new();
                        let mut prev = seeds.start;
                        for &s in &caught {
                            gaps.push(s - prev + 1);
                            prev = s + 1;
                        }
                        gaps.sort_unstable();
                        let median = gaps.get(gaps.len() / 2).copied().unwrap_or(0);
                        println!(
                            "canary {:<15} caught: first at seed {first} ({} seeds), {} of {n_run} seeds run caught it, median seeds to detection {median}",
                            c.name(),
                            first - seeds.start + 1,
                            caught.len(),
                        );
                    }
                    None => {
                        all_caught = false;
                        println!("canary {:<15} NOT CAUGHT in {} seeds", c.name(), seeds.end - seeds.start);
                    }
                }
            }
            if all_caught { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Cmd::Schedule { file } => {
            let bytes = match std::fs::read(&file) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("error: reading {}: {e}", file.display());
                    return ExitCode::from(2);
                }
            };
            let sched = sim_harness::schedule::Schedule::from_bytes(&bytes);
            println!("schedule: seed {}, {} steps", sched.seed, sched.steps.len());
            quiet_panics();
            let out = sim_harness::run::run_schedule(&sched, true);
            for line in &out.timeline {
                println!("{line}");
            }
            match &out.failure {
                Some(f) => println!("result: FAILED: {f}"),
                None => println!("result: passed ({} steps)", out.ops_done),
            }
            println!("trace-hash: {:016x}", out.trace_hash);
            if out.failure.is_some() { ExitCode::FAILURE } else { ExitCode::SUCCESS }
        }
        Cmd::SaveScenario { seed, ops, out } => {
            quiet_panics();
            let scn = Scenario::new(seed, ops);
            let ran = run(&scn, false);
            let script = (!ran.script.is_empty()).then_some(ran.script);
            match (Scenario { script, ..scn }).save(&out) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Cmd::Shrink { which, out } => {
            let scn = match scenario_of(which) {
                Ok(s) => s,
                Err(code) => return code,
            };
            quiet_panics();
            let shrunk = match sim_harness::shrink::shrink(&scn, &|runs, len| {
                if runs % 50 == 0 {
                    eprintln!("shrink: {runs} runs, script at {len} ops");
                }
            }) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Err(e) = shrunk.scenario.save(&out) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            let turns = shrunk.scenario.script.as_ref().map_or(0, Vec::len);
            println!(
                "shrunk seed {} from {} to {} client ops ({} turns of `pass` keep crashes in place) in {} runs; it still fails with: {}",
                scn.seed,
                shrunk.original_ops,
                shrunk.kept_ops,
                turns - shrunk.kept_ops,
                shrunk.runs,
                shrunk.outcome.failure.as_deref().unwrap_or("?")
            );
            println!("signature: {}", shrunk.signature);
            println!("written to {}", out.display());
            println!("replay: cargo run --release -p sim-harness -- replay --scenario {}", out.display());
            ExitCode::SUCCESS
        }
        Cmd::Exhaustive { seeds, ops, limit } => {
            let mut failed = 0u64;
            let mut total = sim_harness::exhaustive::ExhaustiveReport::default();
            for seed in seeds.clone() {
                match run_exhaustive(seed, ops, limit) {
                    Ok(r) => {
                        total.points += r.points;
                        total.points_skipped += r.points_skipped;
                        total.images += r.images;
                    }
                    Err(e) => {
                        failed += 1;
                        println!("seed {seed} FAILED: {e}");
                    }
                }
            }
            println!(
                "exhaustive: {} crash points, {} images checked, {} points over the limit",
                total.points, total.images, total.points_skipped
            );
            println!("sim: {} passed, {failed} failed", seeds.end - seeds.start - failed);
            if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
    }
}
