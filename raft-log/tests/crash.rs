//! A node's process killed mid-write (SIGKILL) and restarted, on the real
//! filesystem: the child (`raft-log-writer`) appends, votes, truncates and
//! purges through the store and prints each step only after it returned
//! (after the flush callback, for appends); the parent kills it after a
//! random number of lines, reads what it printed before dying, reopens the
//! store and checks the log state against it: every acknowledged entry is
//! there with its term, the vote and the purge are not older than
//! acknowledged, the log has no hole and starts right after the purge.
//! Then the child is started again on the same directory and goes on from
//! the log it finds. (Power loss, where unsynced data is lost too, is
//! `tests/store.rs`.)

#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "a test fails loudly")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{Acked, Store, check_recovered};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Applies one line the child printed to the model.
fn apply(model: &mut Acked, line: &str) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let num = |i: usize| -> u64 { words[i].parse().unwrap_or_else(|e| panic!("bad line {line:?}: {e}")) };
    match words.first().copied() {
        Some("acked") => {
            let (term, first, last) = (num(1), num(2), num(3));
            for i in first..=last {
                model.entries.insert(i, term);
            }
        }
        Some("vote") => model.vote_term = model.vote_term.max(num(1)),
        Some("truncating") => model.cutting = Some(num(1)),
        Some("truncated") => {
            let at = num(1);
            model.entries.retain(|i, _| *i < at);
            model.cutting = None;
        }
        Some("purged") => model.purged = model.purged.max(Some(num(1))),
        _ => panic!("unexpected line from the writer: {line:?}"),
    }
}

#[test]
fn a_killed_writer_restarts_consistent_with_what_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node");
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut model = Acked::default();
    let mut lines_total = 0;
    for round in 0..6 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_raft-log-writer"))
            .arg(&node)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let kill_after = rng.random_range(20..400);
        let mut line = String::new();
        for _ in 0..kill_after {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                break;
            }
            apply(&mut model, &line);
            lines_total += 1;
        }
        // SIGKILL mid-write: the child is appending as fast as it can.
        child.kill().unwrap();
        child.wait().unwrap();
        // Whatever it printed before it died happened, too.
        for l in out.lines() {
            apply(&mut model, &l.unwrap());
            lines_total += 1;
        }
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let mut store = Store::open(&node).unwrap();
            check_recovered(&mut store, &mut model, &format!("round {round}")).await;
            store.shutdown().await.unwrap();
        });
    }
    assert!(model.entries.len() > 100, "the writer acknowledged too little to test: {model:?}");
    assert!(model.vote_term > 1 && model.purged.is_some(), "votes and purges were not exercised: {model:?}");
    assert!(lines_total > 500, "{lines_total} lines");
}
