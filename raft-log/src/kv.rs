//! A small key-value state machine and type configuration, used by the
//! openraft test suite, the crash tests, the three-node example and the
//! cluster simulation (`sim-harness cluster`). It is the application side of
//! a Raft node, not part of the log storage.
//!
//! The state lives in memory; snapshots are kept in memory and, when the
//! machine is opened on a directory, also written to `snapshot.bin` there
//! (temporary, fsync, rename, directory fsync; framed with a CRC, see
//! `docs/FORMAT.md`) through the store's [`FileSystem`], and loaded at open.
//! After a restart the machine starts from its last snapshot and openraft
//! re-applies the committed entries after it from the node's own log (the
//! store keeps the committed log id). A snapshot file that does not verify
//! is refused at open ([`SnapshotCorrupt`]): the node must not start with a
//! state it lost.
//!
//! [`KvStateMachine`] works with any type configuration whose data and
//! response are [`KvRequest`] / [`KvResponse`] ([`KvTypes`]): [`KvConfig`]
//! runs on tokio; the simulator declares its own on madsim.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, EntryPayload, LogId, RaftSnapshotBuilder, RaftTypeConfig, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use seglog_core::{FileSystem, OpenMode, StdFs, read_exact_at, write_all_at};
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
    /// Sets `key` to `value` if its value is `expected` (`None`: absent);
    /// otherwise changes nothing. The response's `previous` tells which:
    /// the swap happened exactly when `previous == expected`.
    CompareAndSet {
        /// The key.
        key: String,
        /// The value the key must have.
        expected: Option<String>,
        /// The new value.
        value: String,
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

/// The type configurations [`KvStateMachine`] works with: key-value
/// requests and responses, `u64` node ids, [`BasicNode`], openraft's
/// `Entry` and in-memory snapshot data; any async runtime.
pub trait KvTypes:
    RaftTypeConfig<
        D = KvRequest,
        R = KvResponse,
        NodeId = u64,
        Node = BasicNode,
        Entry = openraft::Entry<Self>,
        SnapshotData = Cursor<Vec<u8>>,
    >
{
}

impl<C> KvTypes for C where
    C: RaftTypeConfig<
            D = KvRequest,
            R = KvResponse,
            NodeId = u64,
            Node = BasicNode,
            Entry = openraft::Entry<C>,
            SnapshotData = Cursor<Vec<u8>>,
        >
{
}

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
type Meta = SnapshotMeta<NodeId, BasicNode>;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct SmData {
    last_applied: Option<LogId<NodeId>>,
    last_membership: StoredMembership<NodeId, BasicNode>,
    kv: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct Inner {
    data: SmData,
    snapshot: Option<(Meta, Vec<u8>)>,
    snapshots_built: u64,
    /// How far the durable snapshot reaches (see [`crate::floor`]).
    floor: crate::SnapshotFloor,
}

/// The key-value state machine. Clones share the same state.
pub struct KvStateMachine<C: KvTypes = KvConfig> {
    inner: Arc<Mutex<Inner>>,
    disk: Option<(Arc<dyn FileSystem>, PathBuf)>,
    _c: PhantomData<fn() -> C>,
}

impl<C: KvTypes> Clone for KvStateMachine<C> {
    fn clone(&self) -> Self {
        KvStateMachine { inner: Arc::clone(&self.inner), disk: self.disk.clone(), _c: PhantomData }
    }
}

impl<C: KvTypes> std::fmt::Debug for KvStateMachine<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStateMachine").field("dir", &self.disk.as_ref().map(|d| &d.1)).finish()
    }
}

/// The snapshot file's name in a state machine's directory.
pub const SNAPSHOT_FILE: &str = "snapshot.bin";
const SNAPSHOT_MAGIC: [u8; 8] = *b"SGKVSNP1";
const SNAPSHOT_HEADER: usize = 20;

/// The snapshot file does not verify (a media fault, a torn copy, another
/// program's file): the node must not start from it.
#[derive(Debug, thiserror::Error)]
#[error(
    "the snapshot `{}` does not verify ({detail}); the state it held is lost on this node: rebuild the node from its peers (remove its directory and add it back to the cluster), or restore the directory from a backup",
    path.display()
)]
pub struct SnapshotCorrupt {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub detail: String,
}

fn sm_err(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(AnyError::error(e)).into()
}

fn snap_err(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::write_snapshot(None, AnyError::error(e)).into()
}

fn invalid(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

impl<C: KvTypes> KvStateMachine<C> {
    /// A machine whose snapshots live only in memory.
    pub fn in_memory() -> Self {
        KvStateMachine { inner: Arc::default(), disk: None, _c: PhantomData }
    }

    /// A machine whose snapshots are also kept in `dir/snapshot.bin` on the
    /// real filesystem; the last one is loaded now.
    pub fn open(dir: impl AsRef<Path>) -> std::io::Result<Self> {
        Self::open_on(StdFs::shared(), dir)
    }

    /// A machine whose snapshots are also kept in `dir/snapshot.bin` on
    /// `fs`; the last one is loaded now. A snapshot file that does not
    /// verify is an error of kind `InvalidData` wrapping [`SnapshotCorrupt`].
    pub fn open_on(fs: Arc<dyn FileSystem>, dir: impl AsRef<Path>) -> std::io::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        fs.create_dir_all(&dir)?;
        // The directory's entry in its parent (and theirs) must be durable
        // before a snapshot in it is: openraft purges the log once a
        // snapshot is built, and a crash that took the directory away would
        // take the snapshot with it (found by the cluster simulation: a
        // restarted node asked for purged entries). Synced at every open,
        // since an earlier process may have crashed before it did.
        let chain: Vec<&Path> = dir.ancestors().filter(|p| !p.as_os_str().is_empty()).collect();
        for p in chain.iter().rev() {
            fs.sync_dir(p)?;
        }
        let sm = KvStateMachine { inner: Arc::default(), disk: Some((Arc::clone(&fs), dir.clone())), _c: PhantomData };
        let path = dir.join(SNAPSHOT_FILE);
        if !fs.exists(&path)? {
            return Ok(sm);
        }
        let corrupt = |detail: String| invalid(SnapshotCorrupt { path: path.clone(), detail });
        let f = fs.open(&path, OpenMode::Read)?;
        let len = f.len()?;
        let mut bytes = vec![0u8; usize::try_from(len).map_err(invalid)?];
        read_exact_at(&*f, &mut bytes, 0)?;
        let (header, payload) = bytes
            .split_at_checked(SNAPSHOT_HEADER)
            .ok_or_else(|| corrupt(format!("{len} bytes, shorter than its header")))?;
        let field = |r: std::ops::Range<usize>| header.get(r).unwrap_or_default();
        if field(0..8) != SNAPSHOT_MAGIC {
            return Err(corrupt("not a seglog-raft snapshot file (bad magic)".into()));
        }
        let want_len = u64::from_le_bytes(field(8..16).try_into().map_err(invalid)?);
        let want_crc = u32::from_le_bytes(field(16..20).try_into().map_err(invalid)?);
        if want_len != payload.len() as u64 {
            return Err(corrupt(format!("its header says {want_len} bytes of data, the file holds {}", payload.len())));
        }
        if crc32fast::hash(payload) != want_crc {
            return Err(corrupt("its CRC does not match".into()));
        }
        let cfg = bincode::config::standard();
        let ((meta, data), _): ((Meta, Vec<u8>), usize) =
            bincode::serde::decode_from_slice(payload, cfg).map_err(|e| corrupt(e.to_string()))?;
        let (state, _): (SmData, usize) =
            bincode::serde::decode_from_slice(&data, cfg).map_err(|e| corrupt(e.to_string()))?;
        {
            let mut inner = sm.lock();
            if let Some(last) = meta.last_log_id {
                inner.floor.advance(last.index);
            }
            inner.data = state;
            inner.snapshot = Some((meta, data));
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

    /// How far this machine's durable snapshot reaches: give it to the
    /// store ([`crate::StoreOptions::snapshot_floor`]) so that a purge
    /// never removes entries that no durable snapshot covers.
    pub fn snapshot_floor(&self) -> crate::SnapshotFloor {
        self.lock().floor.clone()
    }

    /// The last log id of the newest snapshot (built or installed).
    pub fn snapshot_last_log_id(&self) -> Option<LogId<NodeId>> {
        self.lock().snapshot.as_ref().and_then(|(m, _)| m.last_log_id)
    }

    /// Makes the snapshot durable, then moves the floor; a failure is
    /// reported to the floor too (a purge waiting for it fails).
    fn persist_and_advance(&self, meta: &Meta, data: &[u8]) -> std::io::Result<()> {
        let floor = self.snapshot_floor();
        match self.persist(meta, data) {
            Ok(()) => {
                if let Some(last) = meta.last_log_id {
                    floor.advance(last.index);
                }
                Ok(())
            }
            Err(e) => {
                if let Some(last) = meta.last_log_id {
                    floor.fail(last.index, format!("writing the snapshot: {e}"));
                }
                Err(e)
            }
        }
    }

    fn persist(&self, meta: &Meta, data: &[u8]) -> std::io::Result<()> {
        let Some((fs, dir)) = &self.disk else { return Ok(()) };
        let payload = bincode::serde::encode_to_vec((meta, data), bincode::config::standard())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut bytes = Vec::with_capacity(SNAPSHOT_HEADER + payload.len());
        bytes.extend_from_slice(&SNAPSHOT_MAGIC);
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        let tmp = dir.join(format!("{SNAPSHOT_FILE}.tmp"));
        if fs.exists(&tmp)? {
            fs.remove_file(&tmp)?;
        }
        let f = fs.open(&tmp, OpenMode::CreateNew)?;
        write_all_at(&*f, &bytes, 0)?;
        f.sync()?;
        drop(f);
        fs.rename(&tmp, &dir.join(SNAPSHOT_FILE))?;
        fs.sync_dir(dir)
    }
}

impl<C: KvTypes> RaftSnapshotBuilder<C> for KvStateMachine<C> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<C>, StorageError<NodeId>> {
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
        self.persist_and_advance(&meta, &data).map_err(snap_err)?;
        self.lock().snapshot = Some((meta.clone(), data.clone()));
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}

impl<C: KvTypes> RaftStateMachine<C> for KvStateMachine<C> {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>> {
        let inner = self.lock();
        Ok((inner.data.last_applied, inner.data.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<KvResponse>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = openraft::Entry<C>> + openraft::OptionalSend,
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
                EntryPayload::Normal(KvRequest::CompareAndSet { key, expected, value }) => {
                    let previous = inner.data.kv.get(&key).cloned();
                    if previous == expected {
                        inner.data.kv.insert(key, value);
                    }
                    previous
                }
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
        self.persist_and_advance(meta, &bytes).map_err(snap_err)?;
        let mut inner = self.lock();
        inner.data =
            SmData { last_applied: meta.last_log_id, last_membership: meta.last_membership.clone(), kv: data.kv };
        inner.snapshot = Some((meta.clone(), bytes));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<C>>, StorageError<NodeId>> {
        Ok(self.lock().snapshot.clone().map(|(meta, data)| Snapshot { meta, snapshot: Box::new(Cursor::new(data)) }))
    }
}
