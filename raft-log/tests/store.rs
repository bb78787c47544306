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

/// A single-threaded runtime: with the task committer on `SimFs`, a run
/// is repeatable.
fn single_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Drops the store as a killed process would (no clean shutdown) and waits
/// until its log is closed, so that the directory can be opened again.
async fn kill(store: Store) {
    let closed = store.closed_signal();
    drop(store);
    closed.wait().await;
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
        kill(store).await;

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
        kill(store).await;
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
            let rt = single_thread();
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

/// A node that acknowledged entries 0..9 (the last batch 6..9) under vote
/// T2-N1, then lost power; then a bit flip in that last batch, which the
/// log cannot tell from a torn sync. Returns the disk.
fn disk_with_a_damaged_last_batch(seed: u64) -> SimFs {
    let disk = SimFs::new(seed, FaultConfig::default());
    let rt = single_thread();
    let fs = disk.clone();
    let seg = std::path::Path::new("/node/log/00000000000000000000.log");
    let batch_start = rt.block_on(async move {
        let mut store = Store::open_with("/node", sim_opts(&fs, 1)).unwrap();
        store.save_vote(&Vote::new_committed(2, 1)).await.unwrap();
        store.blocking_append((0..6).map(|i| entry(2, i))).await.unwrap();
        let batch_start = fs.durable_contents(seg).unwrap().len() as u64;
        store.blocking_append((6..9).map(|i| entry(2, i))).await.unwrap();
        batch_start
    });
    drop(rt);
    disk.crash();
    assert!(disk.flip_bit(seg, batch_start + 20, 3), "the segment holds the batch");
    disk
}

fn lid(term: u64, node: u64, index: u64) -> LogId<u64> {
    LogId::new(openraft::CommittedLeaderId::new(term, node), index)
}

/// Found by the cluster simulation (`sim-harness cluster --replay 10757`,
/// and 1601, 2794, where openraft's leader panicked): a bit flip in a
/// follower's last synced batch was cut as a torn tail, the follower's log
/// silently lost entries it had acknowledged, and it voted with that log.
/// Now the open sets a vote fence: no vote for a candidate behind the
/// entries it may have lost, until it holds them again.
#[test]
fn damage_to_the_last_acknowledged_batch_fences_the_vote_cluster_seed_10757() {
    let disk = disk_with_a_damaged_last_batch(7);
    let rt = single_thread();
    let fs = disk.clone();
    rt.block_on(async move {
        let mut store = Store::open_with("/node", sim_opts(&fs, 1)).unwrap();
        let gate = store.vote_gate();
        // Entries 6..9 were cut; they were accepted under vote T2-N1.
        assert_eq!(store.get_log_state().await.unwrap().last_log_id.map(|l| l.index), Some(5));
        assert_eq!(gate.fence(), Some(lid(2, 1, 8)));
        assert!(!gate.may_grant(None));
        assert!(!gate.may_grant(Some(&lid(2, 1, 7))), "a candidate that may lack entry 8");
        assert!(!gate.may_grant(Some(&lid(2, 0, 20))), "an older leader's entries");
        assert!(gate.may_grant(Some(&lid(2, 1, 8))));
        assert!(gate.may_grant(Some(&lid(3, 0, 2))), "a later term's entry");
        // Reported not committed: had it been the leader, openraft would not
        // restore it as one at startup (cluster seed 5267).
        assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(2, 1)));
        // Another restart before catching up: the fence is durable.
        kill(store).await;
        let mut store = Store::open_with("/node", sim_opts(&fs, 1)).unwrap();
        let gate = store.vote_gate();
        assert_eq!(gate.fence(), Some(lid(2, 1, 8)));
        // The leader sends 6..9 again: once durable, the fence lifts.
        store.blocking_append((6..8).map(|i| entry(2, i))).await.unwrap();
        assert!(gate.is_fenced(), "index 8 is not back yet");
        store.blocking_append([entry(2, 8)]).await.unwrap();
        assert!(tokio::time::timeout(std::time::Duration::from_secs(5), gate.lifted()).await.unwrap());
        assert!(gate.may_grant(None));
        // The lift is written with the next state update.
        store.save_committed(Some(id(2, 7))).await.unwrap();
        kill(store).await;
        let mut store = Store::open_with("/node", sim_opts(&fs, 1)).unwrap();
        assert!(!store.vote_gate().is_fenced());
        assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new_committed(2, 1)));
        kill(store).await;
        let state = StateFile::<u64>::open(&fs.shared(), std::path::Path::new("/node")).unwrap();
        assert_eq!(state.get().vote_fence, None);
    });
}

/// A fence also lifts when an entry of a later term than its bound is
/// committed in the log (its leader was elected without this node's vote);
/// and an operator can lift it by hand on a closed store.
#[test]
fn a_fence_lifts_on_a_later_terms_commit_or_by_hand() {
    let disk = disk_with_a_damaged_last_batch(8);
    let rt = single_thread();
    let fs = disk.clone();
    rt.block_on(async move {
        let mut store = Store::open_with("/node", sim_opts(&fs, 1)).unwrap();
        let gate = store.vote_gate();
        assert!(gate.is_fenced());
        store.save_committed(Some(lid(2, 1, 4))).await.unwrap();
        assert!(gate.is_fenced(), "a commit in the fence's own term proves nothing");
        store.blocking_append([entry(3, 6)]).await.unwrap();
        store.save_committed(Some(lid(3, 0, 6))).await.unwrap();
        assert!(!gate.is_fenced());
        kill(store).await;
        let state = StateFile::<u64>::open(&fs.shared(), std::path::Path::new("/node")).unwrap();
        assert_eq!(state.get().vote_fence, None, "written with the commit");
    });

    let disk = disk_with_a_damaged_last_batch(9);
    let rt = single_thread();
    let fs = disk.clone();
    rt.block_on(async move {
        let store = Store::open_with("/node", sim_opts(&fs, 1)).unwrap();
        let gate = store.vote_gate();
        assert!(gate.is_fenced());
        // Refused while the store is open (its lock guards raft.state).
        let e = seglog_raft::lift_vote_fence::<u64>(&fs.shared(), "/node").unwrap_err();
        assert!(matches!(e, seglog_raft::Error::Log(seglog_core::Error::Locked { .. })), "{e}");
        kill(store).await;
        assert!(!gate.lifted().await, "the store is gone with the fence standing");
        assert_eq!(seglog_raft::lift_vote_fence::<u64>(&fs.shared(), "/node").unwrap(), Some(lid(2, 1, 8)));
        assert!(!Store::open_with("/node", sim_opts(&fs, 1)).unwrap().vote_gate().is_fenced());
    });
}

/// The fence is durable before the cut is: whatever step of the fencing
/// open the power fails at, the next open comes back fenced (without the
/// read-only look first, a crash after the log's durable cut and before
/// the state write lost the fence, and the node voted with a log it lost).
#[test]
fn a_crash_at_any_step_of_the_fencing_open_keeps_the_fence() {
    let mut struck = 0;
    for step in 0..40u64 {
        let disk = disk_with_a_damaged_last_batch(100 + step);
        let rt = single_thread();
        let fs = disk.clone();
        let struck_here = rt.block_on(async move {
            fs.power_off_after(step);
            let opened = Store::open_with("/node", sim_opts(&fs, 1));
            let cut = fs.is_powered_off();
            fs.power_on();
            if let Ok(store) = opened {
                kill(store).await;
            }
            if cut {
                fs.crash();
            }
            let store = Store::open_with("/node", sim_opts(&fs, 1)).unwrap();
            assert_eq!(store.vote_gate().fence(), Some(lid(2, 1, 8)), "power cut after {step} steps");
            cut
        });
        if struck_here {
            struck += 1;
        }
    }
    assert!(struck > 5, "the power cut struck inside the open only {struck} times");
}

/// A `raft.state` written by version 1 (no fence field) still opens.
#[test]
fn a_version_1_state_file_opens() {
    let dir = tempfile::tempdir().unwrap();
    let vote = Some(Vote::new_committed(4, 2));
    let committed = Some(lid(4, 2, 9));
    let payload =
        bincode::serde::encode_to_vec((&vote, &committed, None::<LogId<u64>>), bincode::config::standard()).unwrap();
    let mut slot = Vec::new();
    slot.extend_from_slice(b"SGRAFTST");
    slot.extend_from_slice(&1u32.to_le_bytes());
    slot.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    slot.extend_from_slice(&7u64.to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&slot);
    crc.update(&payload);
    slot.extend_from_slice(&crc.finalize().to_le_bytes());
    slot.extend_from_slice(&payload);
    slot.resize(2 * seglog_raft::state::SLOT_LEN, 0);
    std::fs::write(dir.path().join(seglog_raft::state::STATE_FILE_NAME), &slot).unwrap();
    let fs = seglog_core::StdFs::shared();
    let mut state = StateFile::<u64>::open(&fs, dir.path()).unwrap();
    let want = RaftState { vote, committed, last_purged: None, vote_fence: None };
    assert_eq!(state.get(), &want);
    // Updates write version 2, which reads back.
    let fenced = RaftState { vote_fence: Some(lid(4, 2, 12)), ..want };
    state.set(fenced.clone()).unwrap();
    drop(state);
    assert_eq!(StateFile::<u64>::open(&fs, dir.path()).unwrap().get(), &fenced);
}

/// Found by the cluster simulation (`sim-harness cluster --replay 12937`
/// before the fix): a bit flip in the `raft.state` slot holding the newest
/// committed id brought back an older one (committed-only updates write one
/// slot); the node had been the leader, openraft restored it as leader at
/// startup, and it served a linearizable read from the old committed id,
/// older than an acknowledged write. A slot that does not verify now makes
/// the store report its vote not committed: the node starts as a follower.
#[test]
fn a_damaged_state_slot_keeps_a_leader_from_resuming_cluster_seed_12937() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let mut store = Store::open(dir.path()).unwrap();
        store.save_vote(&Vote::new_committed(3, 1)).await.unwrap();
        store.blocking_append((0..4).map(|i| entry(3, i))).await.unwrap();
        store.save_committed(Some(lid(3, 1, 2))).await.unwrap();
        store.save_committed(Some(lid(3, 1, 3))).await.unwrap();
        store.shutdown().await.unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new_committed(3, 1)), "intact: resumes");
        store.shutdown().await.unwrap();
    });
    let path = dir.path().join(seglog_raft::state::STATE_FILE_NAME);
    let bytes = std::fs::read(&path).unwrap();
    let fs = seglog_core::StdFs::shared();
    let newest = StateFile::<u64>::open(&fs, dir.path()).unwrap();
    assert!(!newest.damaged_at_open());
    drop(newest);
    // Damage the slot that holds committed 3-3 (the other holds 3-2).
    let slot = (0..2)
        .find(|&i| {
            let mut b = bytes.clone();
            b[i * seglog_raft::state::SLOT_LEN + 18] ^= 0x04;
            std::fs::write(&path, &b).unwrap();
            StateFile::<u64>::open(&fs, dir.path()).unwrap().get().committed == Some(lid(3, 1, 2))
        })
        .expect("one slot holds the newest committed id");
    let state = StateFile::<u64>::open(&fs, dir.path()).unwrap();
    assert!(state.damaged_at_open(), "slot {slot}");
    assert_eq!(state.get().vote, Some(Vote::new_committed(3, 1)), "the vote is in both slots");
    drop(state);
    rt().block_on(async {
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(3, 1)));
        store.shutdown().await.unwrap();
    });
}
