//! A small key-value state machine and type configuration, used by the
//! openraft test suite, the crash tests and the three-node example. It is
//! the application side of a Raft node, not part of the log storage.
//!
//! The state lives in memory; snapshots are kept in memory and, when the
//! machine is opened on a directory, also written to `snapshot.bin` there
//! (temporary, fsync, rename, directory fsync) and loaded at open. After a
//! restart the machine starts from its last snapshot and openraft
//! re-applies the committed entries after it from the node's own log
//! (the store keeps the committed log id).

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};

/// A client request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvRequest {
    /// Sets `key` to `value`.
    Set {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: String,
    },
}

/// The reply to a request: the key's previous value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvResponse {
    /// The value the key had before.
    pub previous: Option<String>,
}

openraft::declare_raft_types!(
    /// The type configuration of the key-value example.
    pub KvConfig:
        D = KvRequest,
        R = KvResponse,
);

/// The entry the crash tests and `raft-log-writer` write at `index` in
/// `term`: `Set { key: "k{index}", value: "v{index}-t{term}" }`, so any entry
/// read back can be checked against its log id.
pub fn demo_entry(term: u64, index: u64) -> openraft::Entry<KvConfig> {
    openraft::Entry {
        log_id: LogId::new(openraft::CommittedLeaderId::new(term, 0), index),
        payload: EntryPayload::Normal(KvRequest::Set { key: format!("k{index}"), value: format!("v{index}-t{term}") }),
    }
}

type NodeId = u64;
type Node = openraft::BasicNode;
type Meta = SnapshotMeta<NodeId, Node>;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct SmData {
    last_applied: Option<LogId<NodeId>>,
    last_membership: StoredMembership<NodeId, Node>,
    kv: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct Inner {
    data: SmData,
    snapshot: Option<(Meta, Vec<u8>)>,
    snapshots_built: u64,
}

/// The key-value state machine. Clones share the same state.
#[derive(Debug, Clone, Default)]
pub struct KvStateMachine {
    inner: Arc<Mutex<Inner>>,
    dir: Option<PathBuf>,
}

const SNAPSHOT_FILE: &str = "snapshot.bin";

fn sm_err(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(AnyError::error(e)).into()
}

fn snap_err(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::write_snapshot(None, AnyError::error(e)).into()
}

impl KvStateMachine {
    /// A machine whose snapshots live only in memory.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// A machine whose snapshots are also kept in `dir/snapshot.bin`; the
    /// last one is loaded now.
    pub fn open(dir: impl AsRef<Path>) -> std::io::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let sm = KvStateMachine { inner: Arc::default(), dir: Some(dir.clone()) };
        match std::fs::read(dir.join(SNAPSHOT_FILE)) {
            Ok(bytes) => {
                let cfg = bincode::config::standard();
                let ((meta, data), _): ((Meta, Vec<u8>), usize) = bincode::serde::decode_from_slice(&bytes, cfg)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
                let (state, _): (SmData, usize) = bincode::serde::decode_from_slice(&data, cfg)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
                let mut inner = sm.lock();
                inner.data = state;
                inner.snapshot = Some((meta, data));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(sm)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<String> {
        self.lock().data.kv.get(key).cloned()
    }

    /// Every key and value.
    pub fn dump(&self) -> BTreeMap<String, String> {
        self.lock().data.kv.clone()
    }

    /// The last log id applied.
    pub fn last_applied(&self) -> Option<LogId<NodeId>> {
        self.lock().data.last_applied
    }

    fn persist(&self, meta: &Meta, data: &[u8]) -> std::io::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let bytes = bincode::serde::encode_to_vec((meta, data), bincode::config::standard())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let tmp = dir.join(format!("{SNAPSHOT_FILE}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(SNAPSHOT_FILE))?;
        std::fs::File::open(dir)?.sync_all()
    }
}

impl RaftSnapshotBuilder<KvConfig> for KvStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<KvConfig>, StorageError<NodeId>> {
        let (meta, data) = {
            let mut inner = self.lock();
            let data = bincode::serde::encode_to_vec(&inner.data, bincode::config::standard()).map_err(snap_err)?;
            inner.snapshots_built += 1;
            let last = inner.data.last_applied;
            let meta = Meta {
                last_log_id: last,
                last_membership: inner.data.last_membership.clone(),
                snapshot_id: format!("{}-{}", last.map_or(0, |l| l.index), inner.snapshots_built),
            };
            (meta, data)
        };
        self.persist(&meta, &data).map_err(snap_err)?;
        self.lock().snapshot = Some((meta.clone(), data.clone()));
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}

impl RaftStateMachine<KvConfig> for KvStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Node>), StorageError<NodeId>> {
        let inner = self.lock();
        Ok((inner.data.last_applied, inner.data.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<KvResponse>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = openraft::Entry<KvConfig>> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut inner = self.lock();
        let mut out = Vec::new();
        for entry in entries {
            inner.data.last_applied = Some(entry.log_id);
            let previous = match entry.payload {
                EntryPayload::Blank => None,
                EntryPayload::Normal(KvRequest::Set { key, value }) => inner.data.kv.insert(key, value),
                EntryPayload::Normal(KvRequest::Delete { key }) => inner.data.kv.remove(&key),
                EntryPayload::Membership(m) => {
                    inner.data.last_membership = StoredMembership::new(Some(entry.log_id), m);
                    None
                }
            };
            out.push(KvResponse { previous });
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = snapshot.into_inner();
        let (data, _): (SmData, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).map_err(sm_err)?;
        self.persist(meta, &bytes).map_err(snap_err)?;
        let mut inner = self.lock();
        inner.data =
            SmData { last_applied: meta.last_log_id, last_membership: meta.last_membership.clone(), kv: data.kv };
        inner.snapshot = Some((meta.clone(), bytes));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<KvConfig>>, StorageError<NodeId>> {
        Ok(self.lock().snapshot.clone().map(|(meta, data)| Snapshot { meta, snapshot: Box::new(Cursor::new(data)) }))
    }
}
