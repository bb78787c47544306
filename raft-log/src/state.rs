//! The Raft state that is not log entries — the vote, the committed log
//! id, the last purged log id and the vote fence — in one small file,
//! `raft.state`, updated crash-atomically with one `fdatasync` per update
//! (two when the vote, the purged id or the fence changes).
//!
//! The file is two fixed-size slots. An update writes the state, with a
//! sequence number one higher than the current one, into the slot the
//! current state is *not* in, then fsyncs. Opening reads both slots and takes
//! the valid one (magic, version, CRC) with the higher sequence number. An
//! update that changes the vote, the purged id or the fence then writes the
//! same slot into the other place too and fsyncs again, so that damage to
//! one durable slot cannot bring back an older vote. A slot that does not
//! verify at open may have held a newer committed id ([`StateFile::damaged_at_open`]:
//! the store then keeps openraft from restoring the node as leader). A
//! torn or lost write can only damage the slot being written, whose update
//! had not returned yet, so the state read back is always one that an
//! update returned for (or a later one). The file is created whole (both
//! slots, one of them valid) as a temporary, fsynced, renamed and the
//! directory fsynced, so its existence proves a valid slot was written.
//! Byte layout: `docs/FORMAT.md`, "raft-log: `raft.state`".

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::{LogId, NodeId, Vote};
use seglog_core::{FileHandle, FileSystem, OpenMode, read_exact_at, write_all_at};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Name of the state file in the store's directory.
pub const STATE_FILE_NAME: &str = "raft.state";
/// Size of one slot; the file is two of them.
pub const SLOT_LEN: usize = 512;
const HEADER_LEN: usize = 28;
const MAGIC: [u8; 8] = *b"SGRAFTST";
/// The version written. Version 1 (no vote fence) is still read.
const VERSION: u32 = 2;

/// What the state file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct RaftState<NID: NodeId> {
    /// The last vote saved.
    pub vote: Option<Vote<NID>>,
    /// The last committed log id saved.
    pub committed: Option<LogId<NID>>,
    /// The last purged log id: every entry up to it is gone.
    pub last_purged: Option<LogId<NID>>,
    /// The vote fence's bound while one stands ([`crate::fence`]): the
    /// log id the entries a recovery cut, which may have been
    /// acknowledged, could reach.
    pub vote_fence: Option<LogId<NID>>,
}

impl<NID: NodeId> Default for RaftState<NID> {
    fn default() -> Self {
        RaftState { vote: None, committed: None, last_purged: None, vote_fence: None }
    }
}

/// Version 1's payload: version 2 without the vote fence.
#[derive(Deserialize)]
#[serde(bound = "")]
struct RaftStateV1<NID: NodeId> {
    vote: Option<Vote<NID>>,
    committed: Option<LogId<NID>>,
    last_purged: Option<LogId<NID>>,
}

/// The open state file.
#[derive(Debug)]
pub struct StateFile<NID: NodeId> {
    file: Arc<dyn FileHandle>,
    path: PathBuf,
    seq: u64,
    state: RaftState<NID>,
    damaged_at_open: bool,
}

impl<NID: NodeId> StateFile<NID> {
    /// Opens `dir/raft.state`, creating it (crash-atomically) if missing.
    pub fn open(fs: &Arc<dyn FileSystem>, dir: &Path) -> Result<Self, Error> {
        let path = dir.join(STATE_FILE_NAME);
        let tmp = dir.join(format!("{STATE_FILE_NAME}.tmp"));
        let io = |op: &'static str, p: &Path| {
            let p = p.to_path_buf();
            move |source: io::Error| Error::Io { op, path: p, source }
        };
        if !fs.exists(&path).map_err(io("looking for", &path))? {
            if fs.exists(&tmp).map_err(io("looking for", &tmp))? {
                fs.remove_file(&tmp).map_err(io("removing a leftover temporary", &tmp))?;
            }
            let state = RaftState::<NID>::default();
            let mut bytes = encode_slot(1, &state)?;
            bytes.resize(2 * SLOT_LEN, 0);
            let f = fs.open(&tmp, OpenMode::CreateNew).map_err(io("creating", &tmp))?;
            write_all_at(&*f, &bytes, 0).map_err(io("writing", &tmp))?;
            f.sync().map_err(io("fsyncing", &tmp))?;
            fs.rename(&tmp, &path).map_err(io("renaming into place", &path))?;
            fs.sync_dir(dir).map_err(io("syncing the directory", dir))?;
        }
        let file = fs.open(&path, OpenMode::ReadWrite).map_err(io("opening", &path))?;
        let len = file.len().map_err(io("reading the length of", &path))?;
        if len != 2 * SLOT_LEN as u64 {
            return Err(Error::Corruption {
                path,
                detail: format!("the state file is {len} bytes long, not {}", 2 * SLOT_LEN),
            });
        }
        let mut buf = vec![0u8; 2 * SLOT_LEN];
        read_exact_at(&*file, &mut buf, 0).map_err(io("reading", &path))?;
        let (a, b) = buf.split_at(SLOT_LEN);
        let (da, db) = (decode_slot::<NID>(a), decode_slot::<NID>(b));
        // A slot that does not verify and is not blank (never written): a
        // torn update, or damage. Either way the slot may have held a newer
        // committed id than the state read (committed-only updates write
        // one slot).
        let damaged_at_open =
            (da.is_none() && a.iter().any(|&x| x != 0)) || (db.is_none() && b.iter().any(|&x| x != 0));
        let best = match (da, db) {
            (Some(x), Some(y)) => Some(if y.0 > x.0 { y } else { x }),
            (x, y) => x.or(y),
        };
        let Some((seq, state)) = best else {
            return Err(Error::Corruption {
                path,
                detail: "neither slot of the state file is valid (the vote would be lost); restore the node's directory from a backup or rebuild the node from its peers".into(),
            });
        };
        Ok(StateFile { file, path, seq, state, damaged_at_open })
    }

    /// Whether a slot did not verify at open (and was not blank): the
    /// committed id read may be older than the last one saved (the vote,
    /// the purged id and the fence are in both slots).
    pub fn damaged_at_open(&self) -> bool {
        self.damaged_at_open
    }

    /// The current state.
    pub fn get(&self) -> &RaftState<NID> {
        &self.state
    }

    /// Replaces the state durably: returns after the fsync. On failure the
    /// in-memory state is unchanged (the file holds the old state or,
    /// after a crash, possibly the new one).
    pub fn set(&mut self, state: RaftState<NID>) -> Result<(), Error> {
        let seq = self.seq + 1;
        let bytes = encode_slot(seq, &state)?;
        let pos = (seq % 2) * SLOT_LEN as u64;
        let res = write_all_at(&*self.file, &bytes, pos).and_then(|()| self.file.sync());
        res.map_err(|source| Error::Io { op: "updating", path: self.path.clone(), source })?;
        // A new vote, purge or fence goes into the other slot too (a second
        // fsync): damage to one durable slot (a bit flip) must not bring
        // back an older vote, which a lone surviving slot would (found by
        // the cluster simulation: `sim-harness cluster --replay 3470`
        // before this, a node came back with a vote older than one it had
        // granted). A committed-only update keeps one write: if damage
        // brings back an older committed id, the open says so
        // (`damaged_at_open`) and the store reports its vote not committed,
        // so the node is not restored as a leader reading from it.
        if state.vote != self.state.vote
            || state.last_purged != self.state.last_purged
            || state.vote_fence != self.state.vote_fence
        {
            let other = ((seq + 1) % 2) * SLOT_LEN as u64;
            let res = write_all_at(&*self.file, &bytes, other).and_then(|()| self.file.sync());
            res.map_err(|source| Error::Io { op: "updating (second copy)", path: self.path.clone(), source })?;
        }
        self.seq = seq;
        self.state = state;
        Ok(())
    }
}

fn encode_slot<NID: NodeId>(seq: u64, state: &RaftState<NID>) -> Result<Vec<u8>, Error> {
    let payload = bincode::serde::encode_to_vec(state, bincode::config::standard())
        .map_err(|e| Error::Encode(format!("the raft state: {e}")))?;
    if payload.len() > SLOT_LEN - HEADER_LEN {
        return Err(Error::Encode(format!(
            "the raft state needs {} bytes, a state slot holds {} (is the node id type very large?)",
            payload.len(),
            SLOT_LEN - HEADER_LEN
        )));
    }
    let mut b = Vec::with_capacity(SLOT_LEN);
    b.extend_from_slice(&MAGIC);
    b.extend_from_slice(&VERSION.to_le_bytes());
    b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    b.extend_from_slice(&seq.to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&b);
    crc.update(&payload);
    b.extend_from_slice(&crc.finalize().to_le_bytes());
    b.extend_from_slice(&payload);
    b.resize(SLOT_LEN, 0);
    Ok(b)
}

fn decode_slot<NID: NodeId>(b: &[u8]) -> Option<(u64, RaftState<NID>)> {
    let header = b.get(..HEADER_LEN)?;
    if header.get(0..8)? != MAGIC {
        return None;
    }
    let u32_at = |at: usize| header.get(at..at + 4).and_then(|s| s.try_into().ok()).map(u32::from_le_bytes);
    let version = u32_at(8)?;
    if version != VERSION && version != 1 {
        return None;
    }
    let len = u32_at(12)? as usize;
    let seq = u64::from_le_bytes(header.get(16..24)?.try_into().ok()?);
    let payload = b.get(HEADER_LEN..HEADER_LEN.checked_add(len)?)?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(header.get(0..24)?);
    crc.update(payload);
    if crc.finalize() != u32_at(24)? {
        return None;
    }
    let cfg = bincode::config::standard().with_limit::<{ SLOT_LEN }>();
    let (state, used) = if version == 1 {
        let (v1, used): (RaftStateV1<NID>, usize) = bincode::serde::decode_from_slice(payload, cfg).ok()?;
        let RaftStateV1 { vote, committed, last_purged } = v1;
        (RaftState { vote, committed, last_purged, vote_fence: None }, used)
    } else {
        bincode::serde::decode_from_slice(payload, cfg).ok()?
    };
    (used == len).then_some((seq, state))
}
