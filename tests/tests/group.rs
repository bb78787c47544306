//! The group-commit front ([`SharedLog`]) on real tokio: many producers,
//! acknowledgement only after fsync, batching, backpressure, readers at both
//! visibilities, shutdown, and failures (fsync EIO, ENOSPC) on sim-fs.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "a test fails loudly")]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use seglog_core::{
    CommitPhase, Config, Error, FixedClock, GroupConfig, Log, Options, OwnedEntry, SharedLog, Visibility,
};
use sim_fs::{FaultConfig, SimFs};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap()
}

fn value(producer: usize, i: usize) -> Vec<u8> {
    format!("p{producer}-r{i}-{}", "x".repeat(i % 50)).into_bytes()
}

fn sim_log(fs: &SimFs) -> Log {
    let options = Options {
        fs: fs.shared(),
        clock: Arc::new(FixedClock(1_000)),
        config: Config { segment_bytes_max: 64 << 10, ..Config::default() },
        read_only: false,
    };
    Log::open_with(Path::new("/log"), options).unwrap()
}

#[test]
fn many_producers_are_acknowledged_durable_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { segment_bytes_max: 256 << 10, ..Config::default() };
    let log = Log::open(dir.path(), config.clone()).unwrap();
    let (shared, committer) = SharedLog::new(log, GroupConfig::default()).unwrap();
    let (producers, per) = (16, 150);
    rt().block_on(async move {
        let commit = tokio::task::spawn_blocking(move || committer.run_blocking());
        let mut tasks = Vec::new();
        for p in 0..producers {
            let h = shared.clone();
            tasks.push(tokio::spawn(async move {
                let mut offsets = Vec::new();
                for i in 0..per {
                    let off = h.append(OwnedEntry::new(value(p, i))).await.unwrap();
                    // Acknowledged means durable, and visible to durable readers.
                    assert!(h.durable_offset() > off);
                    assert_eq!(h.read(off, Visibility::Durable).unwrap().value, value(p, i));
                    offsets.push(off);
                }
                offsets
            }));
        }
        let mut all = Vec::new();
        for (p, t) in tasks.into_iter().enumerate() {
            let offsets = t.await.unwrap();
            assert!(offsets.windows(2).all(|w| w[0] < w[1]), "producer {p}'s offsets not increasing");
            all.extend(offsets.into_iter().enumerate().map(|(i, o)| (o, p, i)));
        }
        all.sort_unstable();
        assert_eq!(all.len(), producers * per);
        assert!(all.iter().enumerate().all(|(i, &(o, _, _))| o == i as u64), "offsets not dense");
        let stats = shared.group_stats();
        assert_eq!(stats.records_acked, (producers * per) as u64);
        assert_eq!(stats.records_failed, 0);
        assert!(stats.fsyncs <= stats.records_acked);
        shared.shutdown().await.unwrap();
        commit.await.unwrap().unwrap();
        // Reads after shutdown say so.
        assert!(matches!(shared.read(0, Visibility::Accepted), Err(Error::Closed { .. })));
        assert!(matches!(shared.append(OwnedEntry::new("late")).await, Err(Error::Closed { .. })));
        let reopened = Log::open(dir.path(), config).unwrap();
        assert!(reopened.recovery_report().clean, "shutdown closes the log cleanly");
        for (o, p, i) in all {
            assert_eq!(reopened.read(o).unwrap().value, value(p, i));
        }
    });
}

#[test]
fn queued_appends_share_one_fsync_within_the_batch_limits() {
    let fs = SimFs::new(1, FaultConfig::default());
    let (shared, committer) =
        SharedLog::new(sim_log(&fs), GroupConfig { batch_records_max: 10, ..GroupConfig::default() }).unwrap();
    let disk = fs.clone();
    rt().block_on(async move {
        // Queue 95 appends before the committer runs: they go in 10 batches.
        let mut pending = Vec::new();
        for i in 0..95 {
            pending.push(shared.submit(OwnedEntry::new(value(0, i))).await.unwrap());
        }
        assert_eq!(shared.next_offset(), 0, "nothing is appended before the committer runs");
        let commit = tokio::task::spawn_blocking(move || committer.run_blocking());
        for (i, p) in pending.into_iter().enumerate() {
            assert_eq!(p.await.unwrap(), i as u64..i as u64 + 1);
        }
        let stats = shared.group_stats();
        assert_eq!((stats.batches, stats.fsyncs, stats.largest_batch), (10, 10, 10));
        drop(shared);
        // The last handle's drop shuts the committer down cleanly.
        commit.await.unwrap().unwrap();
    });
    disk.crash();
    assert_eq!(sim_log(&disk).next_offset(), 95);
}

#[test]
fn a_full_queue_makes_producers_wait() {
    let fs = SimFs::new(2, FaultConfig::default());
    let cfg = GroupConfig { queue_records_max: 4, ..GroupConfig::default() };
    let (shared, committer) = SharedLog::new(sim_log(&fs), cfg).unwrap();
    rt().block_on(async move {
        let mut pending = Vec::new();
        for i in 0..4 {
            pending.push(shared.submit(OwnedEntry::new(value(0, i))).await.unwrap());
        }
        // The fifth cannot enter until the committer takes some: it is still
        // waiting when the timeout fires (no committer is running).
        let fifth = tokio::time::timeout(Duration::from_millis(50), shared.submit(OwnedEntry::new("5"))).await;
        assert!(fifth.is_err(), "a submit past the queue limit must wait");
        let commit = tokio::task::spawn_blocking(move || committer.run_blocking());
        let fifth = shared.submit(OwnedEntry::new("5")).await.unwrap();
        for p in pending {
            p.await.unwrap();
        }
        assert_eq!(fifth.await.unwrap().start, 4);
        shared.shutdown().await.unwrap();
        commit.await.unwrap().unwrap();
    });
}

#[test]
fn readers_see_accepted_before_durable_and_never_unacknowledged_as_durable() {
    let fs = SimFs::new(3, FaultConfig::default());
    let (shared, committer) = SharedLog::new(sim_log(&fs), GroupConfig::default()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let (hold_tx, hold_rx) = tokio::sync::watch::channel(false);
        let (at_tx, mut at_rx) = tokio::sync::mpsc::unbounded_channel();
        // The committer stops after writing each batch until released.
        let commit = tokio::spawn(committer.run_with(move |phase| {
            let mut hold = hold_rx.clone();
            let at = at_tx.clone();
            async move {
                if phase == CommitPhase::Written {
                    at.send(()).unwrap();
                    hold.wait_for(|&go| go).await.unwrap();
                }
            }
        }));
        let pending = shared.submit(OwnedEntry::new("hello")).await.unwrap();
        at_rx.recv().await.unwrap();
        // Written, not yet fsynced: accepted readers see it, durable ones don't.
        assert!(shared.sync_in_flight());
        assert_eq!(shared.read(0, Visibility::Accepted).unwrap().value, b"hello");
        assert!(matches!(shared.read(0, Visibility::Durable), Err(Error::OffsetOutOfRange { next: 0, .. })));
        assert!(shared.read_range(0, 10, Visibility::Durable, usize::MAX).unwrap().is_empty());
        assert_eq!(shared.read_range(0, 10, Visibility::Accepted, usize::MAX).unwrap().len(), 1);
        let waiter = {
            let s = shared.clone();
            tokio::spawn(async move { s.wait_for(0, Visibility::Durable).await })
        };
        hold_tx.send(true).unwrap();
        assert_eq!(pending.await.unwrap(), 0..1);
        assert_eq!(waiter.await.unwrap().unwrap(), 1);
        assert_eq!(shared.read(0, Visibility::Durable).unwrap().value, b"hello");
        shared.shutdown().await.unwrap();
        commit.await.unwrap().unwrap();
    });
}

#[test]
fn an_fsync_error_fails_the_whole_batch_and_poisons() {
    let fs = SimFs::new(4, FaultConfig::default());
    let (shared, committer) = SharedLog::new(sim_log(&fs), GroupConfig::default()).unwrap();
    let disk = fs.clone();
    rt().block_on(async move {
        // Commit some, then make every fsync fail.
        let commit = tokio::task::spawn_blocking(move || committer.run_blocking());
        let before = shared.append_batch((0..5).map(|i| OwnedEntry::new(value(0, i))).collect()).await.unwrap();
        assert_eq!(before, 0..5);
        fs.set_config(FaultConfig { p_sync_eio: 1.0, ..FaultConfig::default() });
        let mut tasks = Vec::new();
        for p in 0..8 {
            let h = shared.clone();
            tasks.push(tokio::spawn(async move { h.append(OwnedEntry::new(value(p, 99))).await }));
        }
        for t in tasks {
            let res = t.await.unwrap();
            assert!(
                matches!(res, Err(Error::Io { .. } | Error::Poisoned { .. })),
                "an append covered by a failed fsync was acknowledged: {res:?}"
            );
        }
        assert_eq!(shared.durable_offset(), 5);
        assert_eq!(shared.next_offset(), 5, "the poisoned log shows only what is durable");
        // Everything after fails too: the log is poisoned.
        fs.set_config(FaultConfig::default());
        assert!(matches!(shared.append(OwnedEntry::new("after")).await, Err(Error::Poisoned { .. })));
        assert!(shared.group_stats().records_failed >= 9);
        assert!(shared.shutdown().await.is_err(), "closing a poisoned log reports the poison");
        assert!(commit.await.unwrap().is_err());
    });
    disk.crash();
    let log = sim_log(&disk);
    assert_eq!(log.next_offset(), 5);
}

#[test]
fn a_full_disk_fails_the_batch_takes_it_back_and_recovers() {
    let fs = SimFs::new(5, FaultConfig::default());
    let log = sim_log(&fs);
    let (shared, committer) = SharedLog::new(log, GroupConfig::default()).unwrap();
    let disk = fs.clone();
    rt().block_on(async move {
        let commit = tokio::task::spawn_blocking(move || committer.run_blocking());
        shared.append(OwnedEntry::new(vec![1u8; 100])).await.unwrap();
        // Leave too little room for the next batch.
        let used = fs.used_bytes();
        fs.set_config(FaultConfig { capacity_bytes: Some(used + 300), ..FaultConfig::default() });
        let big = (0..8).map(|_| OwnedEntry::new(vec![2u8; 200])).collect();
        let res = shared.append_batch(big).await;
        assert!(matches!(res, Err(Error::DiskFull { .. })), "{res:?}");
        assert_eq!(shared.next_offset(), 1, "a batch that hit ENOSPC is taken back");
        // Space freed: appends work again, at the offsets the failed ones would have had.
        fs.set_config(FaultConfig::default());
        assert_eq!(shared.append(OwnedEntry::new(vec![3u8; 10])).await.unwrap(), 1);
        shared.shutdown().await.unwrap();
        commit.await.unwrap().unwrap();
    });
    disk.crash();
    let log = sim_log(&disk);
    assert_eq!(log.next_offset(), 2);
    assert_eq!(log.read(1).unwrap().value, vec![3u8; 10], "no byte of the refused batch came back");
}

#[test]
fn a_dropped_committer_fails_what_is_queued() {
    let fs = SimFs::new(6, FaultConfig::default());
    let (shared, committer) = SharedLog::new(sim_log(&fs), GroupConfig::default()).unwrap();
    rt().block_on(async move {
        let pending = shared.submit(OwnedEntry::new("never")).await.unwrap();
        drop(committer);
        assert!(matches!(pending.await, Err(Error::Closed { .. })));
        assert!(matches!(shared.append(OwnedEntry::new("later")).await, Err(Error::Closed { .. })));
        assert!(matches!(shared.wait_for(0, Visibility::Accepted).await, Err(Error::Closed { .. })));
    });
}

#[test]
fn admin_operations_run_in_queue_order() {
    let fs = SimFs::new(7, FaultConfig::default());
    let (shared, committer) = SharedLog::new(sim_log(&fs), GroupConfig::default()).unwrap();
    let disk = fs.clone();
    rt().block_on(async move {
        let mut pending = Vec::new();
        for i in 0..10 {
            pending.push(shared.submit(OwnedEntry::new(value(0, i))).await.unwrap());
        }
        // Queued after the ten appends: it cuts them, whatever the timing.
        let h = shared.clone();
        let cut = tokio::spawn(async move { h.truncate_from(4).await });
        tokio::task::yield_now().await;
        let commit = tokio::task::spawn_blocking(move || committer.run_blocking());
        for p in pending {
            p.await.unwrap();
        }
        cut.await.unwrap().unwrap();
        assert_eq!(shared.next_offset(), 4);
        assert_eq!(shared.append(OwnedEntry::new("new")).await.unwrap(), 4);
        shared.truncate_before(2).await.unwrap();
        assert_eq!(shared.first_offset(), 2);
        assert_eq!(shared.sync().await.unwrap(), 5);
        shared.shutdown().await.unwrap();
        commit.await.unwrap().unwrap();
    });
    disk.crash();
    let log = sim_log(&disk);
    assert_eq!((log.first_offset(), log.next_offset()), (2, 5));
    assert_eq!(log.read(4).unwrap().value, b"new");
}

#[test]
fn oversized_records_are_refused_before_they_join_a_batch() {
    let fs = SimFs::new(8, FaultConfig::default());
    let (shared, committer) = SharedLog::new(sim_log(&fs), GroupConfig::default()).unwrap();
    rt().block_on(async move {
        let commit = tokio::task::spawn_blocking(move || committer.run_blocking());
        let too_big = OwnedEntry::new(vec![0u8; (Config::default().record_bytes_max as usize) + 1]);
        assert!(matches!(shared.append(too_big).await, Err(Error::RecordTooLarge { .. })));
        assert_eq!(shared.append(OwnedEntry::new("fine")).await.unwrap(), 0);
        shared.shutdown().await.unwrap();
        commit.await.unwrap().unwrap();
    });
    assert!(GroupConfig { batch_records_max: 0, ..GroupConfig::default() }.validate().is_err());
}

#[test]
fn lingering_merges_batches_and_never_holds_back_a_barrier_or_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Config::default()).unwrap();
    let cfg = GroupConfig { linger: Duration::from_millis(20), ..GroupConfig::default() };
    let (shared, committer) = SharedLog::new(log, cfg).unwrap();
    rt().block_on(async move {
        let commit = tokio::task::spawn_blocking(move || committer.run_blocking());
        let mut tasks = Vec::new();
        for p in 0..8 {
            let h = shared.clone();
            tasks.push(tokio::spawn(async move {
                let mut last = None;
                for i in 0..40 {
                    let off = h.append(OwnedEntry::new(value(p, i))).await.unwrap();
                    assert!(h.durable_offset() > off);
                    assert!(last.is_none_or(|l| l < off));
                    last = Some(off);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let stats = shared.group_stats();
        assert_eq!(stats.records_acked, 320);
        // A lone producer is not held back forever: the committer stops
        // waiting for the others at the deadline.
        shared.append(OwnedEntry::new("alone")).await.unwrap();
        // A barrier ends the linger at once, and so does shutdown.
        assert_eq!(shared.sync().await.unwrap(), 321);
        shared.shutdown().await.unwrap();
        commit.await.unwrap().unwrap();
    });
    let log = Log::open(dir.path(), Config::default()).unwrap();
    assert_eq!(log.next_offset(), 321);
}

/// An append larger than the whole queue waits until the queue is empty. If
/// the queue held only an admin op (a roll, a truncation, a compaction's
/// install), taking that op must wake it: it used to wait forever (found by
/// the simulator once a compactor task queued admin ops beside producers).
#[test]
fn an_oversized_append_behind_an_admin_op_is_not_forgotten() {
    let fs = SimFs::new(9, FaultConfig::default());
    let cfg = GroupConfig { queue_records_max: 2, ..GroupConfig::default() };
    let (shared, committer) = SharedLog::new(sim_log(&fs), cfg).unwrap();
    rt().block_on(async move {
        // Only an admin op in the queue (no committer yet).
        let roll = {
            let s = shared.clone();
            tokio::spawn(async move { s.roll().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Three records, more than the queue holds: it waits for an empty queue.
        let s = shared.clone();
        let big = tokio::spawn(async move {
            s.append_batch(vec![OwnedEntry::new("a"), OwnedEntry::new("b"), OwnedEntry::new("c")]).await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let commit = tokio::task::spawn_blocking(move || committer.run_blocking());
        roll.await.unwrap().unwrap();
        let r = tokio::time::timeout(Duration::from_secs(10), big).await;
        let r = r.expect("the oversized append was never woken after the admin op left the queue");
        assert_eq!(r.unwrap().unwrap(), 0..3);
        shared.shutdown().await.unwrap();
        commit.await.unwrap().unwrap();
    });
}
