//! Key compaction on the real filesystem: latest record per key, unkeyed
//! records kept, offsets preserved with gaps that reads name and iteration
//! skips, tombstones kept until their own retention (the KAFKA-4529 bug
//! class), bounded key maps working in passes, suffix truncation into
//! compacted data, and compaction while a `SharedLog` takes appends.
//! Crash atomicity of the swap (the KAFKA-6264 bug class) is in
//! `crash_points.rs`.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "a test fails loudly")]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use seglog_core::{Config, Entry, Error, FixedClock, Log, ManualClock, Options, Record, StdFs};
use tests::{FailFs, FailOp, dir_files};

fn config() -> Config {
    Config { segment_records_max: 10, index_interval_bytes: 64, tombstone_retention_ms: 1_000, ..Config::default() }
}

fn open_with(dir: &Path, config: Config, clock: Arc<dyn seglog_core::Clock>) -> Log {
    Log::open_with(dir, Options { fs: StdFs::shared(), clock, config, read_only: false }).unwrap()
}

fn open(dir: &Path) -> Log {
    open_with(dir, config(), Arc::new(FixedClock(1_000_000)))
}

fn all(log: &Log) -> Vec<Record> {
    log.iter(..).collect::<Result<Vec<_>, _>>().unwrap()
}

/// What compaction must leave of `records` (all sealed, `now` for the
/// tombstone horizon): the latest record of each key unless it is an
/// expired tombstone, and every unkeyed record.
fn expected(records: &[Record], retention: u64, now: u64) -> Vec<Record> {
    let mut latest: BTreeMap<&[u8], u64> = BTreeMap::new();
    for r in records {
        if let Some(k) = &r.key {
            latest.insert(k, r.offset);
        }
    }
    records
        .iter()
        .filter(|r| match &r.key {
            None => true,
            Some(k) => latest[k.as_slice()] == r.offset && !(r.flags.tombstone() && r.timestamp_ms + retention < now),
        })
        .cloned()
        .collect()
}

/// 100 records: keys `k0..k9` overwritten again and again, every 7th one
/// unkeyed, a few tombstones; then rolled so that all of them are sealed.
fn build(log: &mut Log) -> Vec<Record> {
    for i in 0..100u64 {
        let key = format!("k{}", i % 10);
        let value = format!("v{i}");
        let mut e = Entry::new(value.as_bytes()).with_timestamp(1_000 + i);
        if i % 7 != 0 {
            e = e.with_key(key.as_bytes());
        }
        if i % 10 == 3 && i > 50 {
            e = e.tombstone();
        }
        log.append(e).unwrap();
    }
    log.roll().unwrap();
    log.sync().unwrap();
    all(log)
}

#[test]
fn compaction_keeps_the_latest_record_per_key_and_every_unkeyed_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    let before = build(&mut log);
    let bytes_before: u64 = log.segments().iter().map(|s| s.bytes).sum();
    let report = log.compact().unwrap();
    // FixedClock(1_000_000): every tombstone is past its 1 s retention.
    let want = expected(&before, 1_000, 1_000_000);
    assert_eq!(all(&log), want);
    assert_eq!(report.records_read, 100);
    assert_eq!(report.records_superseded + report.tombstones_dropped, 100 - want.len() as u64);
    assert!(report.tombstones_dropped > 0, "{report:?}");
    let bytes_after: u64 = log.segments().iter().map(|s| s.bytes).sum();
    assert!(bytes_after < bytes_before / 2, "{bytes_after} of {bytes_before}");
    // Small compacted segments were merged (10 sealed segments became as
    // few as the 10-record limit allows), still contiguous.
    let segs = log.segments();
    let compacted: Vec<_> = segs.iter().filter(|s| s.compacted).collect();
    assert_eq!(compacted.len(), want.len().div_ceil(10), "{segs:?}");
    assert!(compacted.iter().all(|s| s.n_records <= 10 && s.sealed));
    for w in segs.windows(2) {
        assert_eq!(w[0].next_offset, w[1].base_offset, "{segs:?}");
    }
    // Offsets are preserved; a dropped one says so; the log's ends stay.
    assert_eq!((log.first_offset(), log.next_offset()), (0, 100));
    let kept: Vec<u64> = want.iter().map(|r| r.offset).collect();
    for o in 0..100 {
        match log.read(o) {
            Ok(r) => assert!(kept.contains(&o) && r == want[kept.iter().position(|&k| k == o).unwrap()]),
            Err(Error::Compacted { offset }) => assert!(!kept.contains(&o) && offset == o),
            Err(e) => panic!("offset {o}: {e}"),
        }
    }
    // Ranges skip the gaps; time lookups still work; verify is clean.
    let mid: Vec<u64> = log.iter(40..60).map(|r| r.unwrap().offset).collect();
    assert_eq!(mid, kept.iter().copied().filter(|o| (40..60).contains(o)).collect::<Vec<_>>());
    let t = log.offset_for_timestamp(1_050).unwrap().unwrap();
    assert_eq!(t, *kept.iter().find(|&&o| o >= 50).unwrap());
    let v = log.verify();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    // Appends continue at the same next offset; everything survives a
    // reopen, clean or not.
    assert_eq!(log.append(Entry::new(b"after").with_key(b"k1")).unwrap(), 100);
    log.sync().unwrap();
    drop(log);
    let log = open(dir.path());
    let mut want2 = want.clone();
    want2.push(log.read(100).unwrap());
    assert_eq!(all(&log), want2);
    // A second compaction has nothing left to drop in what it already
    // compacted (the sealed range did not change).
    let mut log = log;
    let again = log.compact().unwrap();
    assert_eq!(again.records_superseded + again.tombstones_dropped, 0, "{again:?}");
    log.close().unwrap();
    let log = open(dir.path());
    assert_eq!(all(&log), want2);
}

/// KAFKA-4529 class: a tombstone must stay until its own timestamp plus the
/// retention, however often its segment is rewritten and across restarts;
/// then it goes, together with every older value of its key (none may
/// come back).
#[test]
fn tombstones_stay_until_their_own_retention_across_rewrites_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(10_000);
    let shared: Arc<dyn seglog_core::Clock> = Arc::new(clock.clone());
    let mut log = open_with(dir.path(), config(), Arc::clone(&shared));
    log.append(Entry::new(b"v1").with_key(b"a").with_timestamp(10_000)).unwrap();
    log.append(Entry::new(b"keep").with_key(b"b").with_timestamp(10_000)).unwrap();
    log.append(Entry::new(b"").with_key(b"a").tombstone().with_timestamp(10_500)).unwrap();
    log.roll().unwrap();
    // Rewrites before the horizon (10_500 + 1_000): the old value goes at
    // once, the tombstone stays; each rewrite is a new file.
    for now in [10_600, 11_000, 11_499] {
        clock.set(now);
        log.compact().unwrap();
        let got: Vec<(u64, bool)> = all(&log).iter().map(|r| (r.offset, r.flags.tombstone())).collect();
        assert_eq!(got, vec![(1, false), (2, true)], "at {now}");
        drop(log);
        log = open_with(dir.path(), config(), Arc::clone(&shared));
    }
    clock.set(11_501);
    let r = log.compact().unwrap();
    assert_eq!(r.tombstones_dropped, 1);
    let got: Vec<u64> = all(&log).iter().map(|r| r.offset).collect();
    assert_eq!(got, vec![1]);
    assert!(matches!(log.read(0), Err(Error::Compacted { offset: 0 })));
    drop(log);
    let log = open_with(dir.path(), config(), shared);
    assert_eq!(all(&log).iter().map(|r| r.offset).collect::<Vec<_>>(), vec![1]);
}

/// A tombstone in the active segment is never dropped, and the older value
/// it supersedes in a sealed segment is (the active segment is not
/// compacted, but the map sees only sealed records, so the older value
/// stays until the tombstone's segment is sealed too).
#[test]
fn the_active_segment_is_never_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    for i in 0..10u64 {
        log.append(Entry::new(format!("v{i}").as_bytes()).with_key(b"k").with_timestamp(1)).unwrap();
    }
    // 10 records filled the first segment; these go to the active one.
    log.append(Entry::new(b"x").with_key(b"k").with_timestamp(1)).unwrap();
    log.append(Entry::new(b"").with_key(b"k").tombstone().with_timestamp(1)).unwrap();
    log.sync().unwrap();
    log.compact().unwrap();
    let got: Vec<u64> = all(&log).iter().map(|r| r.offset).collect();
    assert_eq!(got, vec![9, 10, 11], "only the sealed older values may go");
    log.roll().unwrap();
    log.compact().unwrap();
    assert!(all(&log).is_empty(), "expired tombstone and everything older are gone once sealed");
    assert_eq!(log.next_offset(), 12);
}

#[test]
fn a_small_key_map_compacts_in_several_passes_to_the_same_result() {
    let run = |map_bytes: u64| {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config { compaction_map_bytes: map_bytes, segment_records_max: 50, ..config() };
        let mut log = open_with(dir.path(), cfg, Arc::new(FixedClock(1_000_000)));
        for i in 0..1_500u64 {
            let key = format!("key-{:06}", (i * 7919) % 400);
            log.append(Entry::new(format!("v{i}").as_bytes()).with_key(key.as_bytes()).with_timestamp(i)).unwrap();
        }
        log.roll().unwrap();
        let report = log.compact().unwrap();
        (all(&log), report)
    };
    let (big, r1) = run(64 << 20);
    let (small, r2) = run(4096);
    assert_eq!(r1.passes, 1);
    assert!(r2.passes > 3, "{r2:?}");
    assert_eq!(big, small);
    assert_eq!(big.len(), 400);
}

#[test]
fn suffix_truncation_into_compacted_data_and_appends_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    let before = build(&mut log);
    log.compact().unwrap();
    let kept = expected(&before, 1_000, 1_000_000);
    // Cut at a dropped offset and at a kept one.
    let dropped = (0..100).find(|o| !kept.iter().any(|r| r.offset == *o) && *o > 60).unwrap();
    log.truncate_from(dropped).unwrap();
    assert_eq!(log.next_offset(), dropped);
    let want: Vec<Record> = kept.iter().filter(|r| r.offset < dropped).cloned().collect();
    assert_eq!(all(&log), want);
    assert_eq!(log.append(Entry::new(b"new").with_key(b"z")).unwrap(), dropped);
    log.sync().unwrap();
    drop(log);
    let mut log = open(dir.path());
    assert_eq!(all(&log).len(), want.len() + 1);
    let at = want.last().unwrap().offset;
    log.truncate_from(at).unwrap();
    assert_eq!(all(&log), want[..want.len() - 1].to_vec());
    drop(log);
    let log = open(dir.path());
    assert_eq!(all(&log), want[..want.len() - 1].to_vec());
    assert_eq!(log.next_offset(), at);
    let names: Vec<String> = dir_files(dir.path()).into_iter().map(|f| f.0).collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp") || n.ends_with(".compacted")), "{names:?}");
}

#[test]
fn compaction_runs_while_a_shared_log_takes_appends() {
    use seglog_core::{GroupConfig, OwnedEntry, SharedLog, Visibility};
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let (shared, committer) = SharedLog::new(log, GroupConfig::default()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let commit = tokio::task::spawn_blocking(move || committer.run_blocking());
        let producer = {
            let shared = shared.clone();
            tokio::spawn(async move {
                for i in 0..600u64 {
                    let key = format!("k{}", i % 25);
                    shared.append(OwnedEntry::new(format!("v{i}")).with_key(key).with_timestamp(1)).await.unwrap();
                }
            })
        };
        let mut compactions = 0;
        while !producer.is_finished() {
            let s = shared.clone();
            let r = tokio::task::spawn_blocking(move || {
                tokio::runtime::Handle::current().block_on(async move { s.compact().await })
            })
            .await
            .unwrap()
            .unwrap();
            compactions += r.passes;
        }
        producer.await.unwrap();
        shared.roll().await.unwrap();
        shared.compact().await.unwrap();
        assert!(compactions > 0, "compaction never ran while appends went on");
        // The latest value of every key is there; nothing else is.
        let recs = shared.read_range(0, u64::MAX, Visibility::Durable, usize::MAX).unwrap();
        let mut want: Vec<u64> = (575..600).collect();
        want.sort_unstable();
        assert_eq!(recs.iter().map(|r| r.offset).collect::<Vec<_>>(), want);
        for r in &recs {
            assert_eq!(r.value, format!("v{}", r.offset).into_bytes());
        }
        shared.shutdown().await.unwrap();
        commit.await.unwrap().unwrap();
    });
}

/// One failed filesystem operation (EIO or ENOSPC, not a crash: the process
/// goes on) at every step of a compaction, then a reopen in the same boot:
/// the log is the one before or the one after, never a mix. Found by the
/// `schedule` fuzz harness: a manifest whose rename succeeded but whose
/// directory fsync failed was treated as not written, its compacted files
/// were deleted, and the next open finished the swap without them.
#[test]
fn a_failed_step_of_a_compaction_leaves_the_old_or_the_new_log() {
    let build_at = |dir: &Path| {
        let mut log = open(dir);
        let recs = build(&mut log);
        log.close().unwrap();
        recs
    };
    let before = build_at(tempfile::tempdir().unwrap().path());
    let after = expected(&before, 1_000, 1_000_000);
    let mut outcomes = (0, 0, 0);
    for op in [FailOp::Write, FailOp::Sync, FailOp::SyncDir, FailOp::Namespace] {
        for kind in [std::io::ErrorKind::Other, std::io::ErrorKind::StorageFull] {
            for n in 0..30 {
                let dir = tempfile::tempdir().unwrap();
                build_at(dir.path());
                let fs = FailFs::new(&[op], n, kind, false);
                let options = Options {
                    fs: Arc::new(fs.clone()),
                    clock: Arc::new(FixedClock(1_000_000)),
                    config: config(),
                    read_only: false,
                };
                // The failure must fall inside the compaction, not the open.
                let Ok(mut log) = Log::open_with(dir.path(), options) else { continue };
                if fs.tripped() {
                    continue;
                }
                let res = log.compact();
                if !fs.tripped() {
                    continue;
                }
                match &res {
                    Ok(_) => outcomes.0 += 1,
                    Err(e) if e.is_disk_full() => {
                        outcomes.1 += 1;
                        assert!(!log.is_poisoned(), "{op:?} {n}: DiskFull must leave the log usable");
                        assert_eq!(all(&log), before, "{op:?} {n}: DiskFull changed the log");
                    }
                    Err(_) => outcomes.2 += 1,
                }
                drop(log);
                let log = open(dir.path());
                let got = all(&log);
                assert!(got == before || got == after, "{op:?} {kind:?} {n}: neither before nor after: {res:?}");
                let names: Vec<String> = dir_files(dir.path()).into_iter().map(|f| f.0).collect();
                assert!(
                    !names.iter().any(|n| n.ends_with(".tmp") || n.ends_with(".compacted") || n == "log.compaction"),
                    "{op:?} {n}: leftovers: {names:?}"
                );
            }
        }
    }
    assert!(outcomes.0 > 0 && outcomes.1 > 0 && outcomes.2 > 0, "{outcomes:?}");
}

/// Seed 350616: a compaction swap's manifest was durable, the compacted
/// file it names was lost, and the segment in place was an older compacted
/// segment with the same base. Recovery took it for the renamed output and
/// finished the swap, keeping a record the pass had dropped. The manifest
/// now records each output's length and CRC32: a segment in place that is
/// not the output is `Corruption` naming the missing file; the output
/// itself in place (the rename had happened) finishes the swap.
#[test]
fn a_lost_compacted_file_is_not_mistaken_for_an_older_compacted_segment() {
    use seglog_core::inspect::{FileIdentity, MANIFEST_FILE_NAME, Manifest, ManifestEntry, compacted_file_name};
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path());
    let before = build(&mut log);
    log.compact().unwrap();
    let want = all(&log);
    assert!(want.len() < before.len());
    log.close().unwrap();
    let seg0 = dir.path().join(seglog_core::inspect::segment_file_name(0));
    let bytes = std::fs::read(&seg0).unwrap();
    let next_offset =
        Log::open_with(dir.path(), Options { read_only: true, ..options() }).unwrap().segments()[0].next_offset;
    let identity = FileIdentity { len: bytes.len() as u64, crc: crc32fast::hash(&bytes) };
    let manifest_with =
        |output| Manifest { entries: vec![ManifestEntry { base: 0, next_offset, output: Some(output) }] };
    let files = dir_files(dir.path());
    // The rename had happened: the segment in place is the output.
    std::fs::write(dir.path().join(MANIFEST_FILE_NAME), manifest_with(identity).encode()).unwrap();
    let log = open(dir.path());
    assert!(log.recovery_report().finished_compaction);
    assert_eq!(all(&log), want);
    drop(log);
    assert_eq!(dir_files(dir.path()), files, "finishing the swap changed nothing else");
    // The output was lost: the segment in place is another file.
    for other in
        [FileIdentity { crc: identity.crc ^ 1, ..identity }, FileIdentity { len: identity.len + 1, ..identity }]
    {
        std::fs::write(dir.path().join(MANIFEST_FILE_NAME), manifest_with(other).encode()).unwrap();
        for read_only in [true, false] {
            match Log::open_with(dir.path(), Options { read_only, ..options() }) {
                Err(Error::Corruption { detail, .. }) => {
                    assert!(detail.contains(&compacted_file_name(0)) && detail.contains("missing"), "{detail}");
                }
                other => panic!("read_only {read_only}: {:?}", other.map(|l| l.next_offset())),
            }
        }
    }
}

fn options() -> Options {
    Options { fs: StdFs::shared(), clock: Arc::new(FixedClock(1_000_000)), config: config(), read_only: false }
}
