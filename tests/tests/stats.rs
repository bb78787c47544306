//! `Log::stats` and `SharedLog::stats`: every counter moves exactly with the
//! operation it counts, on the real disk and on sim-fs (a failed fsync, a
//! torn tail cut at open).

#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "a test fails loudly")]

use std::path::Path;
use std::sync::Arc;

use seglog_core::{Config, Entry, FixedClock, GroupConfig, Log, Options, OwnedEntry, SharedLog};
use sim_fs::{FaultConfig, SimFs};

#[test]
fn each_operation_moves_its_counters() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { segment_bytes_max: 4096, ..Config::default() };
    let mut log = Log::open(dir.path(), config).unwrap();
    let fresh = log.stats();
    assert_eq!(fresh, seglog_core::LogStats::default(), "a new log has done nothing");

    for i in 0..10u8 {
        log.append(Entry::new(&[i; 100]).with_key(b"k")).unwrap();
    }
    log.sync().unwrap();
    let s = log.stats();
    assert_eq!((s.records_appended, s.bytes_appended), (10, 10 * 101));
    assert_eq!((s.syncs, s.sync_errors, s.fsync_latency.count), (1, 0, 1));
    assert_eq!(s.fsync_latency.buckets.iter().sum::<u64>(), 1);
    assert!(s.fsync_latency.max_us >= s.fsync_latency.sum_us / s.fsync_latency.count);
    log.sync().unwrap();
    assert_eq!(log.stats().syncs, 1, "a sync with nothing to make durable does not fsync");

    log.read(3).unwrap();
    assert_eq!(log.iter(..).count(), 10);
    let mut reader = log.reader(5..7);
    while reader.next().is_some() {}
    drop(reader);
    let s = log.stats();
    assert_eq!((s.records_read, s.bytes_read), (1 + 10 + 2, 13 * 101));

    log.roll().unwrap();
    assert_eq!(log.stats().rolls, 1);
    for i in 0..5u8 {
        log.append(Entry::new(&[i; 10])).unwrap();
    }
    log.truncate_from(12).unwrap(); // removes 12..15
    log.truncate_before(4).unwrap(); // removes 0..4
    log.restart_at(100).unwrap(); // removes 4..12
    let s = log.stats();
    assert_eq!((s.suffix_truncations, s.prefix_truncations, s.restarts), (1, 1, 1));
    assert_eq!(s.records_truncated, 3 + 4 + 8);
    assert!(!s.poisoned && !s.recovered_unclean);
}

#[test]
fn retention_and_compaction_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { segment_records_max: 4, retention_bytes: Some(1), ..Config::default() };
    let mut log = Log::open(dir.path(), config).unwrap();
    for i in 0..12u8 {
        log.append(Entry::new(&[i])).unwrap();
    }
    let s = log.stats();
    assert_eq!(s.rolls, 2);
    assert_eq!(s.segments_deleted_by_retention, 2, "every sealed segment is over a 1-byte limit");
    assert_eq!(s.prefix_truncations, 2);

    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), Config { segment_records_max: 4, ..Config::default() }).unwrap();
    for i in 0..12u8 {
        log.append(Entry::new(&[i]).with_key(b"same")).unwrap();
    }
    let report = log.compact().unwrap();
    let s = log.stats();
    assert_eq!(s.compactions, u64::from(report.passes));
    assert_eq!(s.records_compacted_away, report.records_superseded);
    assert!(s.records_compacted_away > 0);
}

fn sim_log(fs: &SimFs) -> Log {
    let options = Options { fs: fs.shared(), clock: Arc::new(FixedClock(1_000)), ..Options::default() };
    Log::open_with(Path::new("/log"), options).unwrap()
}

#[test]
fn a_failed_fsync_poisons_and_is_counted() {
    let fs = SimFs::new(1, FaultConfig::default());
    let mut log = sim_log(&fs);
    log.append(Entry::new(b"a")).unwrap();
    fs.set_config(FaultConfig { p_sync_eio: 1.0, ..FaultConfig::default() });
    assert!(log.sync().is_err());
    let s = log.stats();
    assert_eq!((s.syncs, s.sync_errors), (1, 1));
    assert!(s.poisoned);
}

#[test]
fn a_torn_tail_cut_at_open_is_counted() {
    let fs = SimFs::new(2, FaultConfig::default());
    let mut log = sim_log(&fs);
    for i in 0..20u8 {
        log.append(Entry::new(&[i; 64])).unwrap();
    }
    log.sync().unwrap();
    for i in 0..20u8 {
        log.append(Entry::new(&[i; 64])).unwrap();
    }
    log.flush().unwrap();
    drop(log);
    fs.crash_with(sim_fs::CrashPolicy::KeepPrefix);
    // Whatever prefix the crash kept, the open cut the rest or kept it whole.
    let log = sim_log(&fs);
    let s = log.stats();
    assert!(s.recovered_unclean, "a log dropped without close recovers by a scan");
    assert_eq!(s.recovery_bytes_cut, log.recovery_report().torn_bytes);
}

#[test]
fn shared_log_stats_outlive_its_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Config::default()).unwrap();
    let (shared, committer) = SharedLog::new(log, GroupConfig::default()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let commit = tokio::task::spawn_blocking(move || committer.run_blocking());
        for i in 0..5 {
            shared.append(OwnedEntry::new(format!("v{i}"))).await.unwrap();
        }
        shared.read(2, seglog_core::Visibility::Durable).unwrap();
        shared.shutdown().await.unwrap();
        commit.await.unwrap().unwrap();
    });
    let s = shared.stats();
    assert_eq!((s.records_appended, s.bytes_appended, s.records_read), (5, 10, 1));
    assert!(s.syncs >= 1 && s.syncs <= 5, "one fsync per batch: {}", s.syncs);
    assert_eq!(shared.group_stats().fsyncs, s.syncs);
}
