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
    /// The last index of a snapshot that failed to become durable, and
    /// why (cleared once a durable snapshot reaches that index).
    pub failed: Option<(u64, String)>,
}

impl Default for SnapshotFloor {
    fn default() -> Self {
        Self::new(None)
    }
}

impl SnapshotFloor {
    /// A floor at `covered` (the last index of the snapshot loaded at open).
    pub fn new(covered: Option<u64>) -> Self {
        let (tx, _rx) = tokio::sync::watch::channel(FloorState { covered, failed: None });
        SnapshotFloor { tx: Arc::new(tx) }
    }

    /// A snapshot covering up to `index` is durable.
    pub fn advance(&self, index: u64) {
        self.tx.send_modify(|s| {
            s.covered = s.covered.max(Some(index));
            if s.failed.as_ref().is_some_and(|(f, _)| *f <= index) {
                s.failed = None;
            }
        });
    }

    /// Making the snapshot up to `index` durable failed: purges up to it
    /// (waiting now or later) fail, until a durable snapshot reaches it.
    pub fn fail(&self, index: u64, why: impl Into<String>) {
        let why = why.into();
        self.tx.send_modify(|s| {
            if s.covered.is_none_or(|c| c < index) {
                s.failed = Some((index, why));
            }
        });
    }

    /// What the floor says now.
    pub fn state(&self) -> FloorState {
        self.tx.borrow().clone()
    }

    /// Waits until a durable snapshot covers `index`; `Err` if the
    /// snapshot meant to cover it (one reaching `index` or beyond) failed
    /// to become durable, before or during the wait.
    pub async fn wait_covers(&self, index: u64) -> Result<(), String> {
        let mut rx = self.tx.subscribe();
        let failed_for = |s: &FloorState| s.failed.as_ref().is_some_and(|(f, _)| *f >= index);
        let res = rx.wait_for(|s| s.covered.is_some_and(|c| c >= index) || failed_for(s)).await;
        match res {
            Ok(s) if s.covered.is_some_and(|c| c >= index) => Ok(()),
            Ok(s) => Err(s.failed.as_ref().map(|(_, why)| why.clone()).unwrap_or_default()),
            Err(_) => Err("the state machine's snapshot floor was dropped".into()),
        }
    }
}
