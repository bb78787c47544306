//! The `sim-harness` binary's conventions: `--version`, and exit codes (0
//! passed, 1 a check failed, 2 a usage error).
#![allow(clippy::unwrap_used, reason = "a test fails loudly")]

use std::process::Command;

fn sim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sim-harness")).args(args).output().unwrap()
}

#[test]
fn version_and_exit_codes() {
    let v = sim(&["--version"]);
    assert!(v.status.success());
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), format!("sim-harness {}", env!("CARGO_PKG_VERSION")));
    // Usage errors: an unknown flag, a bad seed range, an unknown canary.
    assert_eq!(sim(&["run", "--no-such-flag"]).status.code(), Some(2));
    assert_eq!(sim(&["run", "--seeds", "5..2"]).status.code(), Some(2));
    assert_eq!(sim(&["replay", "--seed", "1", "--canary", "no-such-canary"]).status.code(), Some(2));
    assert_eq!(sim(&["run", "--seeds", "0..1", "--canary", "no-such-canary"]).status.code(), Some(2));
    // A passing seed, and a planted bug the checker catches.
    assert_eq!(sim(&["replay", "--seed", "3", "--ops", "50"]).status.code(), Some(0));
    assert_eq!(sim(&["replay", "--seed", "0", "--canary", "sync-noop"]).status.code(), Some(1));
}

/// A planted failure over many seeds prints one entry per kind of failure
/// (count, smallest seed, replay command), not one line per seed; every
/// seed is in `--save-failures`'s `failures.txt`, and each saved scenario
/// replays to the same failure.
#[test]
fn campaign_failures_are_grouped_and_saved() {
    let dir = tempfile::tempdir().unwrap();
    let out = sim(&[
        "run",
        "--seeds",
        "0..120",
        "--ops",
        "300",
        "--canary",
        "sync-noop",
        "--save-failures",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let header = text.lines().find(|l| l.starts_with("failures: ")).unwrap();
    // "failures: F seeds in G groups (...)"
    let words: Vec<&str> = header.split_whitespace().collect();
    let (failed, groups): (usize, usize) = (words[1].parse().unwrap(), words[4].parse().unwrap());
    assert!(failed > 50 && groups < failed / 3, "{header}");
    let entries: Vec<&str> = text.lines().filter(|l| l.starts_with("  ") && l.contains(" × ")).collect();
    assert_eq!(entries.len(), groups.min(20));
    let counted: usize = entries.iter().map(|l| l.trim().split(' ').next().unwrap().parse::<usize>().unwrap()).sum();
    assert!(counted <= failed && (groups > 20 || counted == failed), "{counted} of {failed}");
    // Signatures carry no numbers; each group names a replay command.
    for e in &entries {
        let sig = e.split_once(" × ").unwrap().1;
        assert!(!sig.chars().any(|c| c.is_ascii_digit()), "{sig}");
    }
    assert_eq!(text.matches("    replay: ").count(), entries.len());
    assert!(!text.lines().any(|l| l.contains(" FAILED: ")), "per-seed lines are gone");
    // failures.txt lists every failing seed; their scenario files replay.
    let list = std::fs::read_to_string(dir.path().join("failures.txt")).unwrap();
    assert_eq!(list.lines().count(), failed);
    let seed: u64 = list.lines().next().unwrap().split('\t').next().unwrap().parse().unwrap();
    let file = dir.path().join(format!("seed-{seed}.scenario"));
    let replay = sim(&["replay", "--scenario", file.to_str().unwrap()]);
    assert_eq!(replay.status.code(), Some(1));
}

/// `replay --tracing`: log-core's events are in the timeline, each before
/// the line of the op it happened in, without colour codes when the output
/// is not a terminal (here, a pipe), and they change no trace hash.
#[test]
fn tracing_is_interleaved_with_the_timeline() {
    let plain = sim(&["replay", "--seed", "7", "--ops", "200"]);
    let traced = sim(&["replay", "--seed", "7", "--ops", "200", "--tracing"]);
    let (plain, traced) = (String::from_utf8_lossy(&plain.stdout), String::from_utf8_lossy(&traced.stdout));
    assert!(!traced.contains('\u{1b}'), "colour codes in piped output");
    let hash = |t: &str| t.lines().find(|l| l.starts_with("trace-hash:")).map(str::to_owned);
    assert_eq!(hash(&plain), hash(&traced));
    let lines: Vec<&str> = traced.lines().collect();
    // Each synced append's events come right before its timeline line.
    let synced = lines.iter().position(|l| l.contains("· DEBUG append{") && l.contains("synced")).unwrap();
    let op = lines[synced..].iter().find(|l| !l.contains("   · ")).unwrap();
    assert!(op.contains(" append n="), "{op}");
    // The timeline without the tracing lines is the plain one.
    let untraced: Vec<&str> = lines.iter().copied().filter(|l| !l.contains("ms   · ")).collect();
    assert_eq!(untraced, plain.lines().collect::<Vec<_>>());
}
