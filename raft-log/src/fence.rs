//! The vote fence: a node that may have lost log entries it acknowledged
//! must not help elect a leader that lacks them.
//!
//! Damage to the *last synced batch* of the log's active segment cannot be
//! told from a sync torn by a crash (docs/FORMAT.md, "What stays
//! undetectable"): recovery cuts it like a torn tail. For a single log
//! that loses one batch after a media fault; for a Raft node it is worse:
//! the node may have acknowledged those entries, the leader counted the
//! acknowledgement towards a commit, and now the node's log looks shorter
//! than it was. Voting with that log could elect a leader without a
//! committed entry (found by the cluster simulation: `sim-harness cluster
//! --replay 10757` lost an acknowledged write, 1601 and 2794 panicked
//! openraft's leader, whose record of the follower's log went backwards).
//!
//! When recovery reports such a cut
//! ([`seglog_core::RecoveryReport::possibly_acknowledged`]: the cut bytes
//! hold the damaged batch's own commit marker, intact), the store sets a
//! fence, durably in `raft.state`, *before* the log's cut is made durable:
//! its bound is the log id the lost entries could have reached (the leader
//! id of the node's vote, which no entry it accepted exceeds, and the last
//! index the batch's commit marker covers). While the fence stands:
//!
//! - the node must not campaign (the gate turns openraft's elections off:
//!   [`VoteGate::hold_elections`]);
//! - it grants a vote only to a candidate whose last log id is at or past
//!   the bound ([`VoteGate::may_grant`]): that candidate's log is at least
//!   as up to date as any log this node may have had, which is what
//!   Raft's election rule needs of a voter's log. The node's RPC server
//!   must ask before passing a vote request to `Raft::vote`, and answer a
//!   refused one with an error (as if unreachable);
//! - it still follows a leader: appends, acknowledges, applies.
//!
//! The fence lifts when the log again reaches the bound's index with
//! entries a leader sent after the cut (or a purge covers it), or when an
//! entry of a later term than the bound's is committed in it (its leader
//! was elected without this node's vote, so it holds every committed
//! entry, and the node's log now matches it). openraft's leader must
//! accept a follower whose log went back (`loosen-follower-log-revert`,
//! enabled by this crate): with the fence that is safe.
//!
//! A torn sync whose commit marker landed looks the same, so a crash can
//! fence a node that lost nothing; the cost is that the node waits to
//! vote until it caught up. If a majority of a cluster is fenced at once
//! and no node can win an election, the cluster waits for an operator:
//! [`lift_vote_fence`](crate::lift_vote_fence) on a stopped node accepts
//! that its lost entries (if any were acknowledged) may be lost for good.

use openraft::{LogId, NodeId, Raft, RaftTypeConfig};
use tokio::sync::watch;

/// Whether a node may vote (see the [module docs](self)). Cheap to clone;
/// every clone sees the fence lift.
#[derive(Debug, Clone)]
pub struct VoteGate<NID: NodeId> {
    rx: watch::Receiver<Option<LogId<NID>>>,
}

impl<NID: NodeId> VoteGate<NID> {
    pub(crate) fn new(rx: watch::Receiver<Option<LogId<NID>>>) -> Self {
        VoteGate { rx }
    }

    /// The fence's bound while one stands: the log id the entries this
    /// node may have lost could reach.
    pub fn fence(&self) -> Option<LogId<NID>> {
        self.rx.borrow().clone()
    }

    /// Whether a fence stands.
    pub fn is_fenced(&self) -> bool {
        self.rx.borrow().is_some()
    }

    /// Whether this node may grant its vote to a candidate whose last log
    /// id is `candidate_last` (openraft's own rules still apply after).
    pub fn may_grant(&self, candidate_last: Option<&LogId<NID>>) -> bool {
        match &*self.rx.borrow() {
            None => true,
            Some(bound) => candidate_last.is_some_and(|c| c >= bound),
        }
    }

    /// Resolves once no fence stands (`true`), or when the store is gone
    /// with the fence still standing (`false`: nothing will lift it, and
    /// nothing votes with that store any more).
    pub async fn lifted(&self) -> bool {
        let mut rx = self.rx.clone();
        rx.wait_for(Option::is_none).await.is_ok()
    }

    /// Keeps `raft` from campaigning while the fence stands: turns its
    /// elections off now if fenced, and back on when the fence lifts (a
    /// task on the Raft's runtime). Call it right after `Raft::new`.
    pub fn hold_elections<C>(&self, raft: &Raft<C>)
    where
        C: RaftTypeConfig<NodeId = NID>,
    {
        if !self.is_fenced() {
            return;
        }
        raft.runtime_config().elect(false);
        let (gate, raft) = (self.clone(), raft.clone());
        // Detached: it ends when the fence lifts or the store is gone.
        let _detached = <C::AsyncRuntime as openraft::AsyncRuntime>::spawn(async move {
            if gate.lifted().await {
                raft.runtime_config().elect(true);
            }
        });
    }
}
