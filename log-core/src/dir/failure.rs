//! Failures, below every operation that writes: whether the log may still
//! be written (`check_writable`), turning a failed write or fsync into an
//! error that poisons the log and reverts it to its last durable state
//! (`write_failed`, `sync_failed`, `revert_to_durable`), cutting back a
//! partial write after ENOSPC (`undo_partial_write`), and the snapshot of
//! the active segment those reverts restore. The filesystem under the log
//! makes failures sticky as well (`fs/checked.rs`).

use std::io;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::index::{IndexMark, SparseIndex};
use crate::log::Log;
use crate::segment::Tail;

/// What `rollback` restores after a batch could not be written, and what
/// `revert_to_durable` restores after a failed write or fsync.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot {
    pub(crate) tail: Tail,
    pub(crate) index: IndexMark,
    pub(crate) buf_len: usize,
    pub(crate) flushed_pos: u64,
    pub(crate) batch_start_pos: u64,
    pub(crate) records_since_marker: u64,
    pub(crate) next_offset: u64,
}

impl Log {
    /// Poisons the log with this cause (replacing an earlier one).
    pub(crate) fn poison(&mut self, cause: String) {
        self.stats.poisoned();
        self.poisoned = Some(cause);
    }

    /// Poisons the log unless it already is.
    pub(crate) fn poison_first(&mut self, cause: impl FnOnce() -> String) {
        self.stats.poisoned();
        self.poisoned.get_or_insert_with(cause);
    }

    pub(crate) fn check_writable(&self, op: &'static str) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly { op });
        }
        if let Some(cause) = self.poison_cause() {
            return Err(Error::Poisoned { cause: cause.to_string() });
        }
        Ok(())
    }

    pub(crate) fn invariant(&mut self, what: &str) -> Error {
        let msg = format!("internal invariant broken: {what}");
        self.poison(msg.clone());
        Error::Poisoned { cause: msg }
    }

    /// Turns a failed write into an error; anything but ENOSPC poisons.
    pub(crate) fn write_failed(&mut self, op: &'static str, path: std::path::PathBuf, e: io::Error) -> Error {
        if e.kind() == io::ErrorKind::StorageFull {
            return Error::DiskFull { op, path };
        }
        self.poison(format!("{op} `{}` failed: {e}", path.display()));
        self.revert_to_durable();
        Error::io(op, path, e)
    }

    /// A failed fsync always poisons: the kernel may have dropped the data.
    pub(crate) fn sync_failed(&mut self, path: std::path::PathBuf, e: io::Error) -> Error {
        self.poison(format!("fsync of `{}` failed: {e}", path.display()));
        self.revert_to_durable();
        Error::io("fsyncing", path, e)
    }

    /// After a failed write or fsync: forget everything after the last
    /// successful sync, in memory and (best effort) in the file. After a
    /// failed fsync the page cache may still show data the disk will never
    /// get; cutting it off keeps a reopen in this process from reading those
    /// bytes back and then calling them durable (fsyncgate).
    pub(crate) fn revert_to_durable(&mut self) {
        let Some(snap) = self.durable_snap else { return };
        if let Some((file, _, _)) = self.restore_active(snap) {
            let _ = file.set_len(snap.flushed_pos);
            self.durable_next = snap.next_offset;
        }
    }

    /// Puts the active segment's in-memory state back to `snap` (the write
    /// buffer is dropped). Returns its file, path, and whether bytes past
    /// `snap` had reached the file; `None` without an unsealed active
    /// segment. The caller decides what to do with the file.
    pub(crate) fn restore_active(
        &mut self,
        snap: Snapshot,
    ) -> Option<(Arc<dyn crate::fs::FileHandle>, std::path::PathBuf, bool)> {
        let (Some(active), Some(seg)) = (self.active.as_mut(), self.segments.values_mut().next_back()) else {
            return None;
        };
        if seg.sealed {
            return None;
        }
        let wrote = active.flushed_pos > snap.flushed_pos;
        active.buf.clear();
        active.flushed_pos = snap.flushed_pos;
        active.batch_start_pos = snap.batch_start_pos;
        active.records_since_marker = snap.records_since_marker;
        seg.tail = snap.tail;
        if let Some(ix) = seg.index.get_mut() {
            ix.rollback(snap.index);
        }
        self.next_offset = snap.next_offset;
        Some((Arc::clone(&seg.file), seg.path.clone(), wrote))
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let seg = self.segments.values().next_back();
        let (buf_len, flushed_pos, batch_start_pos, records_since_marker) = self
            .active
            .as_ref()
            .map_or((0, 0, 0, 0), |a| (a.buf.len(), a.flushed_pos, a.batch_start_pos, a.records_since_marker));
        Snapshot {
            tail: seg.map_or(Tail::empty(0), |s| s.tail),
            index: seg.and_then(|s| s.index.get()).map_or(SparseIndex::default().mark(), SparseIndex::mark),
            buf_len,
            flushed_pos,
            batch_start_pos,
            records_since_marker,
            next_offset: self.next_offset,
        }
    }

    /// After ENOSPC: cuts the part of a write that did fit, and makes the cut
    /// durable, so that no frame of a refused append can surface after a
    /// later crash. (This fsync follows a *write* error, not a failed fsync:
    /// nothing dirty was dropped, so it is not a retried fsync.)
    pub(crate) fn undo_partial_write(
        &mut self,
        file: &dyn crate::fs::FileHandle,
        path: std::path::PathBuf,
        pos: u64,
    ) -> Result<()> {
        if let Err(e) = file.set_len(pos) {
            return Err(self.write_failed("truncating a partial write in", path, e));
        }
        if let Err(e) = file.sync() {
            return Err(self.sync_failed(path, e));
        }
        Ok(())
    }
}
