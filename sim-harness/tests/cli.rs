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
