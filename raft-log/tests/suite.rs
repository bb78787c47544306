//! openraft's own storage test suite (`openraft::testing::Suite::test_all`)
//! against `RaftLogStore`: the acceptance test of the log store's contract.
//! The suite builds its own tokio runtimes (one per case), so this is a
//! plain `#[test]`, outside madsim.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "a test fails loudly")]

use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};
use seglog_raft::RaftLogStore;
use seglog_raft::kv::{KvConfig, KvStateMachine};
use tempfile::TempDir;

struct Builder;

impl StoreBuilder<KvConfig, RaftLogStore<KvConfig>, KvStateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, RaftLogStore<KvConfig>, KvStateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().map_err(|e| openraft::StorageIOError::write(openraft::AnyError::new(&e)))?;
        let store = RaftLogStore::open(dir.path().join("raft"))
            .map_err(|e| openraft::StorageIOError::write(openraft::AnyError::new(&e)))?;
        Ok((dir, store, KvStateMachine::in_memory()))
    }
}

#[test]
fn openraft_storage_suite_passes() {
    if let Err(e) = Suite::test_all(Builder) {
        panic!("openraft's storage suite failed: {e}");
    }
}
