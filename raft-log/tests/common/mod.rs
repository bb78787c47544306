//! Shared by the crash tests: what a node acknowledged, and the check of a
//! recovered store against it.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, dead_code, reason = "test helpers")]

use openraft::storage::RaftLogStorage;
use openraft::{CommittedLeaderId, Entry, LogId, RaftLogReader};
use seglog_raft::RaftLogStore;
use seglog_raft::kv::{KvConfig, demo_entry};

pub type Store = RaftLogStore<KvConfig>;

pub fn id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 0), index)
}

pub async fn all(store: &mut Store) -> Vec<Entry<KvConfig>> {
    store.try_get_log_entries(..).await.unwrap()
}

/// What a run acknowledged, for the crash checks.
#[derive(Debug, Default, Clone)]
pub struct Acked {
    /// Entry index -> term, for entries whose flush callback was called and
    /// that no later truncation removed.
    pub entries: std::collections::BTreeMap<u64, u64>,
    pub vote_term: u64,
    pub purged: Option<u64>,
    /// A truncation that was called but had not returned when the node
    /// died: acknowledged entries from here on may be gone (Raft truncates
    /// flushed, uncommitted entries on a conflict).
    pub cutting: Option<u64>,
}

/// Checks the recovered store against what was acknowledged, then settles
/// the model on what recovery decided (an interrupted truncation happened
/// or not).
pub async fn check_recovered(store: &mut Store, acked: &mut Acked, ctx: &str) {
    let vote = store.read_vote().await.unwrap().map_or(0, |v| v.leader_id().term);
    assert!(vote >= acked.vote_term, "{ctx}: vote term {vote} is older than the acknowledged {}", acked.vote_term);
    let st = store.get_log_state().await.unwrap();
    let purged = st.last_purged_log_id.map(|p| p.index);
    assert!(purged >= acked.purged, "{ctx}: purged {purged:?}, acknowledged {:?}", acked.purged);
    let got = all(store).await;
    for w in got.windows(2) {
        assert_eq!(w[0].log_id.index + 1, w[1].log_id.index, "{ctx}: a hole in the log");
    }
    if let Some(first) = got.first() {
        assert_eq!(first.log_id.index, purged.map_or(0, |p| p + 1), "{ctx}: the log does not start after the purge");
    }
    assert_eq!(st.last_log_id.map(|l| l.index), got.last().map(|e| e.log_id.index).or(purged), "{ctx}");
    for e in &got {
        let want = demo_entry(e.log_id.leader_id.term, e.log_id.index);
        assert_eq!(e, &want, "{ctx}: entry {} does not hold what was written", e.log_id.index);
    }
    let first_kept = purged.map_or(0, |p| p + 1);
    for (&index, &term) in acked.entries.range(first_kept..) {
        let found = got.iter().find(|e| e.log_id.index == index);
        if found.is_none() && acked.cutting.is_some_and(|c| index >= c) {
            continue;
        }
        assert_eq!(
            found.map(|e| e.log_id.leader_id.term),
            Some(term),
            "{ctx}: acknowledged entry {index} (term {term}) lost or replaced; the log holds {:?}..={:?}, purged {purged:?}, acknowledged purge {:?}",
            got.first().map(|e| e.log_id),
            got.last().map(|e| e.log_id),
            acked.purged
        );
    }
    if let Some(c) = acked.cutting.take() {
        let present: std::collections::BTreeSet<u64> = got.iter().map(|e| e.log_id.index).collect();
        acked.entries.retain(|i, _| *i < c || present.contains(i));
    }
}
