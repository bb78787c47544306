//! How far the state machine's durable snapshot reaches, so that a purge
//! never removes entries no durable snapshot covers.
//!
//! openraft 0.9 purges a follower's log right after it *starts*
//! installing a snapshot (the `PurgeLog` command has no condition on the
//! state machine's install finishing): if the install then fails (a full
//! disk) or the node loses power before the snapshot is durable, the node
//! has neither the entries nor a snapshot of them, and it cannot start
//! again. Found by the cluster simulation (`sim-harness cluster --replay
//! 225`: a full disk failed the snapshot's write, the purge went ahead).
//!
//! A store opened with a [`SnapshotFloor`] ([`crate::StoreOptions::snapshot_floor`])
//! makes each `purge(id)` wait until the state machine reports a durable
//! snapshot reaching `id` ([`SnapshotFloor::advance`]); if the state
//! machine reports that making it durable failed ([`SnapshotFloor::fail`]),
//! the purge fails, openraft stops the node, and its log is still whole.
//! [`crate::kv::KvStateMachine::snapshot_floor`] is one.

use std::sync::Arc;

/// A shared watermark: the last log index covered by a durable snapshot,
/// or why the last attempt to make one durable failed. Clones share it.
#[derive(Debug, Clone)]
pub struct SnapshotFloor {
    tx: Arc<tokio::sync::watch::Sender<FloorState>>,
}

/// What a [`SnapshotFloor`] says now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FloorState {
    /// The last index a durable snapshot covers (`None`: no snapshot).
    pub covered: Option<u64>,
    /// Why making a snapshot durable failed, since the last success.
    pub failed: Option<String>,
    /// Failures so far (a wait ends on a failure that happens during it).
    pub failures: u64,
}

impl Default for SnapshotFloor {
    fn default() -> Self {
        Self::new(None)
    }
}

impl SnapshotFloor {
    /// A floor at `covered` (the last index of the snapshot loaded at open).
    pub fn new(covered: Option<u64>) -> Self {
        let (tx, _rx) = tokio::sync::watch::channel(FloorState { covered, failed: None, failures: 0 });
        SnapshotFloor { tx: Arc::new(tx) }
    }

    /// A snapshot covering up to `index` is durable.
    pub fn advance(&self, index: u64) {
        self.tx.send_modify(|s| {
            s.covered = s.covered.max(Some(index));
            s.failed = None;
        });
    }

    /// Making a snapshot durable failed: purges waiting for it fail.
    pub fn fail(&self, why: impl Into<String>) {
        let why = why.into();
        self.tx.send_modify(|s| {
            s.failed = Some(why);
            s.failures += 1;
        });
    }

    /// What the floor says now.
    pub fn state(&self) -> FloorState {
        self.tx.borrow().clone()
    }

    /// Waits until a durable snapshot covers `index`; `Err` if making one
    /// durable failed meanwhile.
    pub async fn wait_covers(&self, index: u64) -> Result<(), String> {
        let mut rx = self.tx.subscribe();
        // A failure recorded before this wait began belongs to an earlier
        // snapshot: only a failure from now on ends the wait.
        let failures_before = rx.borrow_and_update().failures;
        let res = rx.wait_for(|s| s.covered.is_some_and(|c| c >= index) || s.failures > failures_before).await;
        match res {
            Ok(s) if s.covered.is_some_and(|c| c >= index) => Ok(()),
            Ok(s) => Err(s.failed.clone().unwrap_or_default()),
            Err(_) => Err("the state machine's snapshot floor was dropped".into()),
        }
    }
}
