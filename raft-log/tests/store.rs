//! The store across restarts and crashes: vote, committed and purged log
//! ids and entries come back; a purge interrupted by a crash is finished at
//! open; a purge past the end (snapshot install) restarts the log there;
//! and under power loss on the simulated disk, every entry whose flush
//! callback was called survives, byte for byte.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "a test fails loudly")]

use std::sync::{Arc, Mutex};

use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{LogId, RaftLogReader, Vote};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seglog_core::{Config, FixedClock, GroupConfig};
use seglog_raft::state::{RaftState, StateFile};
use seglog_raft::{CommitterMode, StoreOptions};
use sim_fs::{FaultConfig, SimFs};

mod common;

use common::{Acked, Store, all, check_recovered, id};
use seglog_raft::kv::demo_entry as entry;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn vote_committed_purged_and_entries_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node");
    rt().block_on(async {
        let mut store = Store::open(&path).unwrap();
        store.blocking_append((0..20).map(|i| entry(1, i))).await.unwrap();
        store.save_vote(&Vote::new_committed(3, 2)).await.unwrap();
        store.save_committed(Some(id(1, 15))).await.unwrap();
        store.purge(id(1, 5)).await.unwrap();
        store.truncate(id(1, 18)).await.unwrap();
        store.blocking_append([entry(3, 18)]).await.unwrap();
        // No clean shutdown: dropped as a killed process would leave it. The
        // log's directory lock is free once the committer let go of the log.
        let closed = store.closed_signal();
        drop(store);
        closed.wait().await;

        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new_committed(3, 2)));
        assert_eq!(store.read_committed().await.unwrap(), Some(id(1, 15)));
        let st = store.get_log_state().await.unwrap();
        assert_eq!((st.last_purged_log_id, st.last_log_id), (Some(id(1, 5)), Some(id(3, 18))));
        let got = all(&mut store).await;
        let want: Vec<_> = (6..18).map(|i| entry(1, i)).chain([entry(3, 18)]).collect();
        assert_eq!(got, want);
        // Reads of a purged or missing range are empty, not errors.
        assert!(store.try_get_log_entries(0..6).await.unwrap().is_empty());
        assert!(store.try_get_log_entries(19..40).await.unwrap().is_empty());
        store.shutdown().await.unwrap();
    });
}

#[test]
fn appends_with_a_hole_or_an_overlap_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let mut store = Store::open(dir.path()).unwrap();
        store.blocking_append((0..3).map(|i| entry(1, i))).await.unwrap();
        let hole = store.blocking_append([entry(1, 5)]).await.unwrap_err();
        assert!(hole.to_string().contains("expects index 3"), "{hole}");
        let overlap = store.blocking_append([entry(1, 1)]).await.unwrap_err();
        assert!(overlap.to_string().contains("expects index 3"), "{overlap}");
        assert_eq!(all(&mut store).await.len(), 3);
    });
}

#[test]
fn purge_past_the_end_restarts_the_log_after_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let mut store = Store::open(dir.path()).unwrap();
        store.blocking_append((0..10).map(|i| entry(1, i))).await.unwrap();
        // A follower installed a snapshot up to (4, 30) and purges to it.
        store.purge(id(4, 30)).await.unwrap();
        let st = store.get_log_state().await.unwrap();
        assert_eq!((st.last_purged_log_id, st.last_log_id), (Some(id(4, 30)), Some(id(4, 30))));
        assert!(all(&mut store).await.is_empty());
        store.blocking_append([entry(4, 31), entry(5, 32)]).await.unwrap();
        let closed = store.closed_signal();
        drop(store);
        closed.wait().await;
        let mut store = Store::open(dir.path()).unwrap();
        let st = store.get_log_state().await.unwrap();
        assert_eq!((st.last_purged_log_id, st.last_log_id), (Some(id(4, 30)), Some(id(5, 32))));
        assert_eq!(all(&mut store).await, vec![entry(4, 31), entry(5, 32)]);
    });
}

/// The purge protocol writes the state file first. A crash right after it
/// (simulated by writing the state file alone) is finished at the next
/// open, both inside the log and past its end.
#[test]
fn a_purge_interrupted_after_the_state_write_is_finished_at_open() {
    for (purge_to, want_first) in [(9u64, Some(10u64)), (30, None)] {
        let dir = tempfile::tempdir().unwrap();
        rt().block_on(async {
            let mut store = Store::open(dir.path()).unwrap();
            store.blocking_append((0..20).map(|i| entry(1, i))).await.unwrap();
            store.shutdown().await.unwrap();
        });
        let fs = seglog_core::StdFs::shared();
        let mut state = StateFile::<u64>::open(&fs, dir.path()).unwrap();
        state.set(RaftState { last_purged: Some(id(1, purge_to)), ..RaftState::default() }).unwrap();
        drop(state);
        rt().block_on(async {
            let mut store = Store::open(dir.path()).unwrap();
            let st = store.get_log_state().await.unwrap();
            assert_eq!(st.last_purged_log_id, Some(id(1, purge_to)));
            let got = all(&mut store).await;
            assert_eq!(got.first().map(|e| e.log_id.index), want_first);
            if want_first.is_none() {
                assert_eq!(st.last_log_id, Some(id(1, purge_to)));
                store.blocking_append([entry(2, purge_to + 1)]).await.unwrap();
            } else {
                assert_eq!(st.last_log_id, Some(id(1, 19)));
                assert_eq!(got.len(), 10);
            }
        });
    }
}

/// A torn write of one slot of the state file loses only the update that
/// had not returned; damage to both slots is a typed error, not a default
/// vote (which would let the node vote twice in a term).
#[test]
fn state_file_survives_a_torn_slot_and_refuses_two() {
    let dir = tempfile::tempdir().unwrap();
    let fs = seglog_core::StdFs::shared();
    let mut state = StateFile::<u64>::open(&fs, dir.path()).unwrap();
    let v1 = RaftState { vote: Some(Vote::new(1, 1)), ..RaftState::default() };
    let v2 = RaftState { vote: Some(Vote::new(2, 1)), ..RaftState::default() };
    state.set(v1.clone()).unwrap();
    state.set(v2.clone()).unwrap();
    drop(state);
    let path = dir.path().join(seglog_raft::state::STATE_FILE_NAME);
    let good = std::fs::read(&path).unwrap();
    // A vote is in both slots: tearing either leaves it.
    for slot in 0..2 {
        let mut torn = good.clone();
        torn[slot * seglog_raft::state::SLOT_LEN + 30] ^= 0xff;
        std::fs::write(&path, &torn).unwrap();
        assert_eq!(StateFile::<u64>::open(&fs, dir.path()).unwrap().get(), &v2, "slot {slot} torn");
    }
    // A committed-only update is one write: torn (in flight at a crash),
    // the state before it comes back, with the same vote.
    std::fs::write(&path, &good).unwrap();
    let mut state = StateFile::<u64>::open(&fs, dir.path()).unwrap();
    let v3 = RaftState { committed: Some(LogId::new(openraft::CommittedLeaderId::new(2, 1), 4)), ..v2.clone() };
    state.set(v3.clone()).unwrap();
    drop(state);
    let newest = std::fs::read(&path).unwrap();
    assert_eq!(StateFile::<u64>::open(&fs, dir.path()).unwrap().get(), &v3);
    let changed: Vec<usize> = (0..2)
        .filter(|&i| {
            let r = i * seglog_raft::state::SLOT_LEN..(i + 1) * seglog_raft::state::SLOT_LEN;
            newest[r.clone()] != good[r]
        })
        .collect();
    assert_eq!(changed.len(), 1, "a committed-only update writes one slot");
    let mut torn = newest.clone();
    torn[changed[0] * seglog_raft::state::SLOT_LEN + 30] ^= 0xff;
    std::fs::write(&path, &torn).unwrap();
    assert_eq!(StateFile::<u64>::open(&fs, dir.path()).unwrap().get(), &v2);
    std::fs::write(&path, &good).unwrap();
    assert_eq!(StateFile::<u64>::open(&fs, dir.path()).unwrap().get(), &v2);
    let mut both = good;
    both[30] ^= 0xff;
    both[seglog_raft::state::SLOT_LEN + 30] ^= 0xff;
    std::fs::write(&path, &both).unwrap();
    let e = StateFile::<u64>::open(&fs, dir.path()).unwrap_err();
    assert!(matches!(e, seglog_raft::Error::Corruption { .. }), "{e}");
}

fn sim_opts(fs: &SimFs, fsync_yields: u32) -> StoreOptions {
    StoreOptions {
        fs: fs.shared(),
        clock: Arc::new(FixedClock(1_000)),
        config: Config { segment_records_max: 16, ..Config::default() },
        group: GroupConfig::default(),
        committer: CommitterMode::Task { fsync_yields },
        canary: None,
        snapshot_floor: None,
    }
}

/// Appends, votes, truncations and purges on the simulated disk, then a
/// power failure at a random point (unsynced data lost under the disk's
/// crash policies), then a restart: every acknowledged entry is there with
/// its term, the vote and the purge are not older than acknowledged, the
/// log has no hole, and the node can go on appending. Several
/// crashes each (60 seeds), on a single-threaded runtime so each seed is repeatable.
#[test]
fn power_loss_keeps_every_acknowledged_entry() {
    for seed in 0..60u64 {
        let disk = SimFs::new(seed, FaultConfig::default());
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut acked = Acked::default();
        for round in 0..4 {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let shared_acks = Arc::new(Mutex::new(acked.clone()));
            let steps = rng.random_range(1..120u32);
            let work_seed = rng.random::<u64>();
            let fsync_yields = rng.random_range(1..12u32);
            let acks = Arc::clone(&shared_acks);
            let fs = disk.clone();
            rt.block_on(async move {
                let mut store = Store::open_with("/node", sim_opts(&fs, fsync_yields)).unwrap();
                let mut model = acks.lock().unwrap().clone();
                check_recovered(&mut store, &mut model, &format!("seed {seed} round {round}")).await;
                *acks.lock().unwrap() = model;
                let writer = tokio::spawn(run_writer(store, Arc::clone(&acks), work_seed));
                // Let the writer run for a while, then kill the node: no task
                // runs after this future returns.
                for _ in 0..steps {
                    tokio::task::yield_now().await;
                }
                drop(writer);
            });
            // Dropping the runtime drops the tasks (the log hands its
            // buffered bytes to the disk unsynced); then the power fails.
            drop(rt);
            disk.crash();
            acked = shared_acks.lock().unwrap().clone();
        }
    }
}

/// Appends batches (each acknowledged through the flush callback), and now
/// and then saves a higher vote, truncates the last entries (Raft conflict)
/// or purges a prefix. Records each acknowledgement in `acks`.
async fn run_writer(mut store: Store, acks: Arc<Mutex<Acked>>, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let st = store.get_log_state().await.unwrap();
    let mut next = st.last_log_id.map_or(0, |l| l.index + 1);
    let mut term = store.read_vote().await.unwrap().map_or(1, |v| v.leader_id().term);
    loop {
        match rng.random_range(0..20) {
            0 => {
                term += 1;
                store.save_vote(&Vote::new_committed(term, 0)).await.unwrap();
                acks.lock().unwrap().vote_term = term;
            }
            1 if next > 3 => {
                let at = next - rng.random_range(1..=3);
                let purged = store.get_log_state().await.unwrap().last_purged_log_id.map_or(0, |p| p.index + 1);
                if at > purged {
                    let prev = store.try_get_log_entries(at - 1..at).await.unwrap()[0].log_id;
                    acks.lock().unwrap().cutting = Some(at);
                    store.truncate(LogId::new(prev.leader_id, at)).await.unwrap();
                    let mut a = acks.lock().unwrap();
                    a.cutting = None;
                    let doomed: Vec<u64> = a.entries.range(at..).map(|(i, _)| *i).collect();
                    for i in doomed {
                        a.entries.remove(&i);
                    }
                    next = at;
                }
            }
            2 if next > 10 => {
                // Purge a prefix, or (rarely) jump past the end as a snapshot
                // install does.
                let upto = if rng.random_bool(0.2) { next + rng.random_range(0..20) } else { next - 5 };
                store.purge(id(term, upto)).await.unwrap();
                next = next.max(upto + 1);
                let mut a = acks.lock().unwrap();
                a.purged = a.purged.max(Some(upto));
            }
            _ => {
                let n = rng.random_range(1..6);
                store.blocking_append((next..next + n).map(|i| entry(term, i))).await.unwrap();
                let mut a = acks.lock().unwrap();
                for i in next..next + n {
                    a.entries.insert(i, term);
                }
                next += n;
            }
        }
    }
}

/// Issue "One writer per log directory": while a store has its directory
/// open, a second store on it is refused with the log's `Locked` error
/// (before `raft.state` is touched); after a shutdown it opens.
#[test]
fn a_second_store_on_an_open_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let mut store = Store::open(dir.path()).unwrap();
        store.blocking_append((0..5).map(|i| entry(1, i))).await.unwrap();
        store.save_vote(&Vote::new_committed(2, 1)).await.unwrap();
        let state_before = std::fs::read(dir.path().join("raft.state")).unwrap();
        match Store::open(dir.path()) {
            Err(seglog_raft::Error::Log(seglog_core::Error::Locked { .. })) => {}
            other => panic!("a second store opened or failed otherwise: {:?}", other.map(|_| ())),
        }
        assert_eq!(std::fs::read(dir.path().join("raft.state")).unwrap(), state_before);
        assert_eq!(all(&mut store).await.len(), 5);
        store.shutdown().await.unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(all(&mut store).await, (0..5).map(|i| entry(1, i)).collect::<Vec<_>>());
        assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new_committed(2, 1)));
        store.shutdown().await.unwrap();
    });
}

/// Found by the cluster simulation (`sim-harness cluster --replay 60` before
/// the fix): a crash lost `raft.state` on a node whose log held entries; the
/// store made a fresh one, the node came back without its vote and voted
/// again in a term it had voted in. A log without its state file is now
/// refused.
#[test]
fn a_lost_state_file_next_to_a_log_is_refused_cluster_seed_60() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let mut store = Store::open(dir.path()).unwrap();
        store.blocking_append((0..5).map(|i| entry(1, i))).await.unwrap();
        store.save_vote(&Vote::new(4, 1)).await.unwrap();
        store.shutdown().await.unwrap();
    });
    std::fs::remove_file(dir.path().join("raft.state")).unwrap();
    match Store::open(dir.path()) {
        Err(seglog_raft::Error::Corruption { detail, .. }) => {
            assert!(detail.contains("state file is missing") && detail.contains("vote"), "{detail}");
        }
        other => panic!("a log without raft.state was opened or failed otherwise: {:?}", other.map(|_| ())),
    }
    // A new store (no log yet) still starts without one.
    let fresh = dir.path().join("fresh");
    rt().block_on(async { Store::open(&fresh).unwrap().shutdown().await.unwrap() });
    assert!(fresh.join("raft.state").exists());
}

/// A log that ends below the committed index lost committed entries.
#[test]
fn a_log_ending_below_the_committed_index_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let mut store = Store::open(dir.path()).unwrap();
        store.blocking_append((0..10).map(|i| entry(1, i))).await.unwrap();
        store.save_committed(Some(id(1, 8))).await.unwrap();
        // Not something openraft asks for: it stands in for a log that
        // lost its tail.
        store.truncate(id(1, 5)).await.unwrap();
        store.shutdown().await.unwrap();
    });
    match Store::open(dir.path()) {
        Err(seglog_raft::Error::Corruption { detail, .. }) => assert!(detail.contains("committed"), "{detail}"),
        other => panic!("opened or failed otherwise: {:?}", other.map(|_| ())),
    }
}

/// Found by the cluster simulation (`sim-harness cluster --replay 225` before
/// the fix): openraft 0.9 purges a follower's log while the snapshot it is
/// installing is not yet durable; a full disk failed the snapshot and the
/// node lost entries nothing covered. With a snapshot floor, a purge waits
/// for the durable snapshot, and fails (removing nothing) if it failed.
#[test]
fn a_purge_waits_for_a_durable_snapshot_cluster_seed_225() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let floor = seglog_raft::SnapshotFloor::new(None);
        let opts = StoreOptions { snapshot_floor: Some(floor.clone()), ..StoreOptions::default() };
        let mut store = Store::open_with(dir.path(), opts).unwrap();
        store.blocking_append((0..10).map(|i| entry(1, i))).await.unwrap();
        let purge = tokio::spawn(async move {
            let res = store.purge(id(1, 5)).await;
            (store, res)
        });
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert!(!purge.is_finished(), "the purge ran before any snapshot covered it");
        floor.advance(3);
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert!(!purge.is_finished(), "the purge ran past what the snapshot covers");
        floor.fail(9, "disk full");
        let (mut store, res) = purge.await.unwrap();
        assert!(res.is_err(), "a purge whose snapshot failed must fail");
        assert_eq!(all(&mut store).await.len(), 10, "a failed purge removed entries");
        // An older failure does not hold back a purge the floor covers.
        floor.advance(7);
        store.purge(id(1, 5)).await.unwrap();
        assert_eq!(all(&mut store).await.first().map(|e| e.log_id.index), Some(6));
        store.shutdown().await.unwrap();
    });
}

/// Found by the cluster simulation (`sim-harness cluster --replay 3470`
/// before the fix): a bit flip in the slot holding the newest vote made the
/// store fall back to the other slot, an older vote. A vote is now in both
/// slots: damage to either leaves it.
#[test]
fn a_damaged_slot_does_not_bring_back_an_older_vote_cluster_seed_3470() {
    for damaged in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        rt().block_on(async {
            let mut store = Store::open(dir.path()).unwrap();
            store.save_vote(&Vote::new(2, 1)).await.unwrap();
            store.save_vote(&Vote::new(2, 2)).await.unwrap();
            store.shutdown().await.unwrap();
        });
        let path = dir.path().join("raft.state");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[damaged * seglog_raft::state::SLOT_LEN + 30] ^= 0x10;
        std::fs::write(&path, &bytes).unwrap();
        rt().block_on(async {
            let mut store = Store::open(dir.path()).unwrap();
            assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(2, 2)), "slot {damaged} damaged");
            store.shutdown().await.unwrap();
        });
    }
}
