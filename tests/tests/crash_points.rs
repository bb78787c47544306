//! Crash points of every multi-file operation: each one is stopped after
//! every individual filesystem step (a failing `FileSystem` wrapper makes
//! that step and every later one fail, as if the process died there), and
//! the reopened log must be exactly the state before or the state after —
//! never a mix.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "a test fails loudly")]

use std::io;
use std::path::Path;
use std::sync::Arc;

use seglog_core::{Config, Entry, FixedClock, Log, Options, Record, StdFs};
use tests::{FailFs, FailOp};

const ALL: [FailOp; 4] = [FailOp::Write, FailOp::Sync, FailOp::SyncDir, FailOp::Namespace];

fn config() -> Config {
    Config { segment_records_max: 5, index_interval_bytes: 64, ..Config::default() }
}

fn opts(fs: Arc<dyn seglog_core::FileSystem>) -> Options {
    Options { fs, clock: Arc::new(FixedClock(1000)), config: config(), read_only: false }
}

/// Retention needs a configuration that asks for it.
fn opts_for(op: Op, fs: Arc<dyn seglog_core::FileSystem>) -> Options {
    let config = match op {
        Op::Retention => Config { retention_bytes: Some(700), ..config() },
        _ => config(),
    };
    Options { config, ..opts(fs) }
}

/// 23 records in five segments (the last one active), closed cleanly. For
/// compaction, keyed: five keys overwritten in turn, some unkeyed records,
/// an expired tombstone.
fn build(dir: &Path, op: Op) {
    let mut log = Log::open_with(dir, opts(StdFs::shared())).unwrap();
    for i in 0..23u8 {
        let value = [i; 30];
        let mut e = Entry::new(&value).with_timestamp(u64::from(i));
        let key = [b'k', i % 5];
        if matches!(op, Op::Compact) && i % 6 != 0 {
            e = e.with_key(&key);
            if i == 13 {
                e = e.tombstone();
            }
        }
        log.append(e).unwrap();
    }
    log.close().unwrap();
}

/// What a user can observe: the first offset, every record, and (for a
/// roll, whose whole effect is on the layout) which segments exist sealed.
#[derive(Debug, PartialEq, Eq)]
struct State {
    first: u64,
    records: Vec<Record>,
    layout: Vec<(u64, bool)>,
}

fn state(dir: &Path) -> State {
    let log = Log::open_with(dir, opts(StdFs::shared())).unwrap_or_else(|e| panic!("reopen failed: {e}"));
    let records = log.iter(..).collect::<Result<Vec<_>, _>>().unwrap_or_else(|e| panic!("read failed: {e}"));
    // Dense unless compaction dropped records (then only increasing).
    if log.segments().iter().all(|s| !s.compacted) {
        assert_eq!(log.next_offset(), log.first_offset() + records.len() as u64);
    }
    assert!(records.windows(2).all(|w| w[0].offset < w[1].offset));
    assert!(records.last().is_none_or(|r| r.offset < log.next_offset()));
    let layout = log.segments().iter().map(|s| (s.base_offset, s.sealed)).collect();
    State { first: log.first_offset(), records, layout }
}

/// Equal as far as `op` is concerned: truncations promise the logical
/// content (a crash may leave an extra roll behind); a roll, the layout.
fn same(op: Op, a: &State, b: &State) -> bool {
    a.first == b.first && a.records == b.records && (!matches!(op, Op::Roll) || a.layout == b.layout)
}

#[derive(Debug, Clone, Copy)]
enum Op {
    TruncateFrom(u64),
    TruncateBefore(u64),
    RestartAt(u64),
    Compact,
    Roll,
    Retention,
}

fn apply(log: &mut Log, op: Op) -> seglog_core::Result<()> {
    match op {
        Op::TruncateFrom(o) => log.truncate_from(o),
        Op::TruncateBefore(o) => log.truncate_before(o),
        Op::RestartAt(o) => log.restart_at(o),
        Op::Compact => log.compact().map(|_| ()),
        Op::Roll => log.roll(),
        Op::Retention => log.apply_retention().map(|_| ()),
    }
}

fn check_op(op: Op) -> usize {
    let scratch = tempfile::tempdir().unwrap();
    build(scratch.path(), op);
    let before = state(scratch.path());
    // The after state, and how many filesystem steps the operation takes.
    let counter = FailFs::passthrough();
    let mut log = Log::open_with(scratch.path(), opts_for(op, Arc::new(counter.clone()))).unwrap();
    let at_start = counter.seen();
    apply(&mut log, op).unwrap();
    let steps = (counter.seen() - at_start) as usize;
    drop(log);
    let after = state(scratch.path());
    assert!(!same(op, &before, &after), "{op:?} must change something to be worth testing");

    for k in 0..steps {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path(), op);
        let counter = FailFs::passthrough();
        let probe = Log::open_with(dir.path(), opts_for(op, Arc::new(counter.clone()))).unwrap();
        let open_steps = counter.seen();
        drop(probe);
        // A fresh copy: the probe's open already changed nothing that matters,
        // but start from exactly the built state anyway.
        let dir = tempfile::tempdir().unwrap();
        build(dir.path(), op);
        let fs = FailFs::new(&ALL, open_steps + k as u64, io::ErrorKind::Other, true);
        let mut log = Log::open_with(dir.path(), opts_for(op, Arc::new(fs.clone()))).unwrap();
        let res = apply(&mut log, op);
        assert!(fs.tripped(), "{op:?}: step {k} was never reached");
        drop(log);
        // A read-only open (which may not finish anything) shows the same
        // records as the read-write open that then finishes the operation.
        let ro = Log::open_with(dir.path(), Options { read_only: true, ..opts_for(op, StdFs::shared()) })
            .unwrap_or_else(|e| panic!("{op:?} stopped after step {k}: read-only open failed: {e}"));
        let ro_view: Vec<Record> = ro.iter(..).collect::<Result<_, _>>().unwrap();
        let ro_first = ro.first_offset();
        drop(ro);
        let got = state(dir.path());
        assert_eq!((ro_first, &ro_view), (got.first, &got.records), "{op:?} stopped after step {k}: read-only view");
        // (A roll that stops between creating the next segment and sealing
        // the old one is finished by the reopen: successor first,
        // docs/FORMAT.md "Roll".)
        assert!(
            same(op, &got, &before) || same(op, &got, &after),
            "{op:?} stopped after step {k}: neither the state before nor after: {got:?}"
        );
        // A failure may only go unreported in a step whose loss changes
        // nothing (a roll's best-effort index files): success means done.
        assert!(
            res.is_err() || same(op, &got, &after),
            "{op:?} reported success although step {k} failed, and the reopened log is not the state after: {got:?}"
        );
        // Nothing of the interrupted operation is left behind (KAFKA-6264:
        // half-done swap files after a crash).
        let names: Vec<String> = tests::dir_files(dir.path()).into_iter().map(|f| f.0).collect();
        assert!(
            !names.iter().any(|n| n.ends_with(".tmp") || n.ends_with(".compacted") || n == "log.compaction"),
            "{op:?} stopped after step {k}: leftovers after reopening: {names:?}"
        );
    }
    steps
}

#[test]
fn suffix_truncation_across_segments_is_all_or_nothing() {
    assert!(check_op(Op::TruncateFrom(7)) > 5);
    assert!(check_op(Op::TruncateFrom(10)) > 5); // on a segment boundary
    assert!(check_op(Op::TruncateFrom(0)) > 5); // everything
}

#[test]
fn prefix_truncation_is_all_or_nothing() {
    assert!(check_op(Op::TruncateBefore(12)) > 3);
    assert!(check_op(Op::TruncateBefore(23)) > 3); // everything
}

#[test]
fn restart_past_the_end_is_all_or_nothing() {
    assert!(check_op(Op::RestartAt(40)) > 3);
    assert!(check_op(Op::RestartAt(24)) > 3); // just past the end
}

/// KAFKA-6264 class: a crash at any step of a compaction swap leaves the
/// log exactly as before or as after, with no leftovers once reopened.
#[test]
fn compaction_swap_is_all_or_nothing() {
    assert!(check_op(Op::Compact) > 8);
}

#[test]
fn roll_is_all_or_nothing() {
    assert!(check_op(Op::Roll) > 3);
}

#[test]
fn retention_is_all_or_nothing() {
    assert!(check_op(Op::Retention) > 3);
}
