//! Real process crashes: a child process appends and syncs, reporting each
//! durable offset; the parent kills it with SIGKILL at random moments, then
//! reopens the log and checks that every reported durable record is present
//! and byte-identical, and that nothing else appears.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "a test fails loudly")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use seglog_core::{Config, Log};
use tests::{mix, value_for};

const SEED: u64 = 0xC0FFEE;
const ROUNDS: u64 = 200;

#[test]
fn sigkill_at_random_moments_never_loses_a_durable_record() {
    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_crash-writer");
    let mut verified = 0u64; // records checked present after the last round
    let mut max_durable = 0u64;
    let mut torn_tails = 0u64;
    for round in 0..ROUNDS {
        let h = mix(SEED ^ round);
        let sync_every = 1 + h % 16;
        let mut child = Command::new(exe)
            .args([dir.path().to_str().unwrap(), &SEED.to_string(), &sync_every.to_string(), "100000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let start: u64 = lines.next().unwrap().unwrap().strip_prefix("start ").unwrap().parse().unwrap();
        assert!(start >= verified, "round {round}: child recovered {start} records, {verified} were verified");
        // Let it report a few syncs, then kill it at a random moment.
        let wait_syncs = (h >> 8) % 6;
        for _ in 0..wait_syncs {
            let line = lines.next().unwrap().unwrap();
            let d: u64 = line.strip_prefix("durable ").unwrap().parse().unwrap();
            max_durable = max_durable.max(d);
        }
        std::thread::sleep(Duration::from_micros((h >> 16) % 3000));
        child.kill().unwrap();
        child.wait().unwrap();
        // Lines already printed before the kill count as acknowledged.
        for line in lines {
            let line = line.unwrap();
            if let Some(d) = line.strip_prefix("durable ") {
                max_durable = max_durable.max(d.parse().unwrap());
            }
        }
        // Odd rounds: the parent recovers read-only and the next child does
        // the real recovery; even rounds: the parent recovers read-write.
        let log = if round % 2 == 1 {
            Log::open_read_only(dir.path(), Config::default()).unwrap()
        } else {
            Log::open(dir.path(), Config::default()).unwrap()
        };
        if log.recovery_report().torn_tail.is_some() {
            torn_tails += 1;
        }
        let next = log.next_offset();
        assert!(next >= max_durable, "round {round}: recovered {next} records, {max_durable} were durable");
        let mut expect = 0u64;
        for rec in log.iter(..) {
            let rec = rec.unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert_eq!(rec.offset, expect);
            assert_eq!(rec.value, value_for(SEED, rec.offset, 300), "round {round}: offset {}", rec.offset);
            assert_eq!(rec.key.as_deref(), Some(&rec.offset.to_le_bytes()[..]));
            expect += 1;
        }
        assert_eq!(expect, next);
        verified = if round % 2 == 1 { max_durable } else { next };
        drop(log);
    }
    eprintln!("{ROUNDS} kills: {max_durable} durable records, {torn_tails} recoveries cut a torn tail");
    assert!(max_durable > ROUNDS, "the children made too little progress to test anything");
}
