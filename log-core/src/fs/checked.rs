//! Sticky failure: the [`FileSystem`] a [`Log`](crate::Log) works through.
//!
//! After a write, cut, fsync, rename, removal or directory fsync of one of
//! the log's own files fails, every later mutating call through this
//! filesystem fails too, whatever the call site: the disk's state is then
//! unknown (a failed fsync may have dropped data, Linux "fsyncgate"), and
//! nothing more may be built on it until a reopen recovers from what is
//! durable. redb's `CheckedBackend` is the model.
//!
//! Three exceptions keep what the log already promises:
//! * a full disk (`StorageFull`, from any call) is not a failure of this
//!   kind: each place that can meet it has a designed answer — a partial
//!   write is cut back and the call returns `Error::DiskFull` with the log
//!   usable; a temporary whose fsync failed is never renamed into place; a
//!   failed fsync of a segment poisons the log at its call site (it may
//!   have dropped acknowledged data) — and the simulator's ENOSPC faults
//!   check each of them. A removal of a file already gone, or a create of
//!   one that exists, changed nothing;
//! * derived files — index files and the `.compacted` outputs of a
//!   compaction pass that is not yet decided — fail without poisoning (an
//!   index is rebuilt from its segment; an undecided compaction output is
//!   discarded);
//! * shortening a file stays allowed after a failure: that is how the log
//!   takes back bytes a failed fsync may not have made durable, so that a
//!   reopen in this process cannot read them back as durable.
//!
//! Reads are never refused.
//!
//! **A failed fsync leaves a marker.** After a failed fsync (of a file or
//! the directory) the page cache may show this boot's later opens data the
//! disk never got, and hide data it still has (Linux marks the dropped
//! pages clean; a dropped cut or directory entry stays in the cache). So a
//! failed fsync of one of the log's own files also appends the file's name
//! to `log.resync` in the log directory (written, never fsynced: only this
//! boot's cache needs it), and the next read-write open rewrites the log's
//! files from what it reads before trusting them (`recovery/mod.rs`,
//! `resync`).
//!
//! **The directory fsync an open owes.** An open of an existing log does not
//! fsync its directory up front (on a VM a clean directory fsync still
//! costs a disk cache flush, 1–40 ms): it marks the fsync as owed
//! ([`DirDebt`]), and the first mutation through this filesystem — any
//! write, cut, fsync, create, rename or removal, by recovery or by the first
//! append that reaches the file — pays it before it runs. So every
//! directory entry an earlier process may have left unsynced (a crash
//! between creating a file and fsyncing the directory) is durable before
//! the log builds anything on it, and an open that writes nothing costs no
//! fsync at all.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use super::{FileHandle, FileLock, FileSystem, OpenMode};
use crate::format::{FileKind, parse_file_name};

/// The first failure of a log's filesystem, shared by the [`CheckedFs`]
/// and the log (which reports it as `Error::Poisoned`).
pub(crate) type Failure = Arc<OnceLock<String>>;

/// A [`FileSystem`] with sticky failure (module docs).
#[derive(Debug)]
pub(crate) struct CheckedFs {
    inner: Arc<dyn FileSystem>,
    failure: Failure,
    debt: Arc<DirDebt>,
}

/// A fsync of the log directory owed before the next mutation (module
/// docs).
#[derive(Debug)]
pub(crate) struct DirDebt {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    owed: AtomicBool,
    failure: Failure,
}

impl DirDebt {
    /// Notes a failed fsync of `path` (a file of the log, or its
    /// directory) in the resync marker (module docs). Best effort: if even
    /// that write fails, the error the caller returns already poisons the
    /// log, and a warning says what a reopen in this boot may trust.
    fn failed_fsync(&self, path: &Path) {
        let marker = self.dir.join(crate::format::RESYNC_FILE_NAME);
        let name = path.file_name().map_or_else(|| ".".into(), |n| n.to_string_lossy());
        // A file the log created is written as `<name>.tmp` and renamed into
        // place, and its handle keeps the name it was opened under: the
        // file the cache and the disk disagree on is `<name>` (seed 823057:
        // the marker named the active segment's temporary, the reopen
        // rewrote nothing, and a write the failed fsync let through without
        // its cut came back after a crash as a stale record).
        let name = name.strip_suffix(".tmp").map_or_else(|| name.to_string(), str::to_string);
        if let Err(e) = self.write_marker(&marker, &name) {
            tracing::warn!(
                marker = %marker.display(), error = %e,
                "an fsync failed and the resync marker could not be written: reboot before reopening this log"
            );
        }
    }

    /// Adds `name` to this boot's resync marker, or starts one. The marker
    /// is written in place over room already reserved — the spare renamed
    /// into place (a rename needs no data blocks), or the marker's own
    /// length, padded with newlines — so that a full disk cannot stop it
    /// (seed 881374: the marker hit ENOSPC, the same-boot reopen trusted a
    /// cache that hid a cut the disk never got, and a crash brought the
    /// cut records back). If the names outgrow the room, the marker names
    /// the directory: everything is rewritten.
    fn write_marker(&self, marker: &Path, name: &str) -> io::Result<()> {
        let spare = self.dir.join(crate::format::RESYNC_SPARE_FILE_NAME);
        let file = match self.fs.open(marker, OpenMode::ReadWrite) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if self.fs.exists(&spare)? {
                    self.fs.rename(&spare, marker)?;
                    self.fs.open(marker, OpenMode::ReadWrite)?
                } else {
                    self.fs.open(marker, OpenMode::CreateNew)?
                }
            }
            Err(e) => return Err(e),
        };
        let len = usize::try_from(file.len()?).unwrap_or(0).min(1 << 20);
        let mut old = vec![0u8; len];
        super::read_full_at(&*file, &mut old, 0)?;
        let boot = crate::format::resync_boot_line(self.fs.boot_id().as_deref());
        let old = String::from_utf8_lossy(&old);
        let mut lines = old.lines().filter(|l| !l.is_empty());
        // This boot's marker keeps its names; one of an earlier boot (whose
        // cache is gone), a spare's newlines or nothing starts over.
        let mut text = boot.clone();
        if lines.next() == Some(boot.trim_end()) {
            for l in lines {
                text.push_str(l);
                text.push('\n');
            }
        }
        text.push_str(name);
        text.push('\n');
        let padded = |mut t: String| {
            if t.len() < len {
                t.extend(std::iter::repeat_n('\n', len - t.len()));
            }
            t
        };
        match super::write_all_at(&*file, padded(text).as_bytes(), 0) {
            Err(e) if e.kind() == io::ErrorKind::StorageFull => {
                super::write_all_at(&*file, padded(format!("{boot}.\n")).as_bytes(), 0)
            }
            other => other,
        }
    }

    /// Reserves room for the resync marker (`log.spare`, newlines), if
    /// there is none: best effort, through the raw filesystem (it is not
    /// the log's data, and owes no directory fsync). Fsynced once, so that
    /// its blocks are allocated on the disk and no crash finds it half
    /// written (and a crash-state enumeration does not carry its pending
    /// write forever).
    pub(crate) fn reserve_spare(&self) {
        let spare = self.dir.join(crate::format::RESYNC_SPARE_FILE_NAME);
        let res = (|| -> io::Result<()> {
            let f = self.fs.open(&spare, OpenMode::CreateNew)?;
            super::write_all_at(&*f, &[b'\n'; crate::format::RESYNC_SPARE_BYTES], 0)?;
            f.sync()
        })();
        if let Err(e) = res {
            let _ = self.fs.remove_file(&spare);
            tracing::debug!(error = %e, "could not reserve room for the resync marker");
        }
    }

    /// Owes a fsync of the directory: the next mutation pays it first.
    pub(crate) fn owe(&self) {
        self.owed.store(true, Ordering::SeqCst);
    }

    /// Pays the fsync if it is owed. Its error names the directory (the
    /// caller's error names the file it was about to change).
    fn pay(&self) -> io::Result<()> {
        if self.owed.load(Ordering::SeqCst) {
            checked(&self.failure, "fsyncing the directory", &self.dir, || {
                self.fs.sync_dir(&self.dir).inspect_err(|_| self.failed_fsync(&self.dir))
            })
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "the fsync of the log directory `{}` owed since the open, due before this change, failed: {e}",
                        self.dir.display()
                    ),
                )
            })?;
            self.owed.store(false, Ordering::SeqCst);
        }
        Ok(())
    }
}

impl CheckedFs {
    /// Wraps `inner` for the log in `dir`; the returned [`Failure`] is set
    /// by the first failure, and the [`DirDebt`] owes nothing yet.
    pub(crate) fn wrap(inner: Arc<dyn FileSystem>, dir: &Path) -> (Arc<dyn FileSystem>, Failure, Arc<DirDebt>) {
        let failure = Failure::default();
        let debt = Arc::new(DirDebt {
            fs: Arc::clone(&inner),
            dir: dir.to_path_buf(),
            owed: AtomicBool::new(false),
            failure: Arc::clone(&failure),
        });
        let fs = CheckedFs { inner, failure: Arc::clone(&failure), debt: Arc::clone(&debt) };
        (Arc::new(fs), failure, debt)
    }

    /// Runs the mutation `f` of `path`, after paying the directory's debt.
    fn mutate<T>(&self, op: &str, path: &Path, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        refuse(&self.failure)?;
        self.debt.pay()?;
        checked(&self.failure, op, path, f)
    }
}

/// Whether `path` names a derived file: an index file (or its temporary) or
/// a compaction output.
fn is_derived(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return false };
    let name = name.strip_suffix(".tmp").unwrap_or(name);
    matches!(parse_file_name(name), Some(FileKind::OffsetIndex(_) | FileKind::TimeIndex(_) | FileKind::Compacted(_)))
}

/// Refuses a mutation once a failure was recorded.
fn refuse(failure: &Failure) -> io::Result<()> {
    match failure.get() {
        None => Ok(()),
        Some(first) => Err(io::Error::other(format!(
            "refused: an earlier operation on the log failed ({first}), so nothing more is written until the log is reopened"
        ))),
    }
}

/// Runs the mutation `f` on `path` (unless refused) and records its failure
/// (unless it is one of the exceptions in the module docs).
fn checked<T>(failure: &Failure, op: &str, path: &Path, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    refuse(failure)?;
    f().inspect_err(|e| {
        // A full disk is the caller's to handle (module docs); the others
        // changed nothing.
        let tolerated =
            matches!(e.kind(), io::ErrorKind::StorageFull | io::ErrorKind::NotFound | io::ErrorKind::AlreadyExists);
        if !tolerated && !is_derived(path) {
            let _ = failure.set(format!("{op} `{}` failed: {e}", path.display()));
        }
    })
}

impl FileSystem for CheckedFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>> {
        let file = match mode {
            OpenMode::Read => return self.inner.open(path, mode),
            OpenMode::ReadWrite => self.inner.open(path, mode)?,
            OpenMode::CreateNew => self.mutate("creating", path, || self.inner.open(path, mode))?,
        };
        Ok(Arc::new(CheckedFile {
            inner: file,
            path: path.to_path_buf(),
            failure: Arc::clone(&self.failure),
            debt: Arc::clone(&self.debt),
        }))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        refuse(&self.failure)?;
        self.inner.create_dir_all(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.inner.read_dir(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        // A rename is the log's when its target is (a compacted file renamed
        // over a segment is the swap itself).
        self.mutate("renaming to", to, || self.inner.rename(from, to))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.mutate("removing", path, || self.inner.remove_file(path))
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        if path == self.debt.dir {
            // This fsync is the one owed.
            checked(&self.failure, "fsyncing the directory", path, || {
                self.inner.sync_dir(path).inspect_err(|_| self.debt.failed_fsync(path))
            })?;
            self.debt.owed.store(false, Ordering::SeqCst);
            return Ok(());
        }
        self.mutate("fsyncing the directory", path, || self.inner.sync_dir(path))
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.inner.exists(path)
    }

    fn try_lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        self.inner.try_lock(path)
    }

    fn boot_id(&self) -> Option<String> {
        self.inner.boot_id()
    }
}

/// A file opened for writing through a [`CheckedFs`].
#[derive(Debug)]
struct CheckedFile {
    inner: Arc<dyn FileHandle>,
    path: std::path::PathBuf,
    failure: Failure,
    debt: Arc<DirDebt>,
}

impl CheckedFile {
    /// Runs the mutation `f` of this file, after paying the directory's debt.
    fn mutate<T>(&self, op: &str, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        refuse(&self.failure)?;
        self.debt.pay()?;
        checked(&self.failure, op, &self.path, f)
    }
}

impl FileHandle for CheckedFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.inner.read_at(buf, pos)
    }

    fn write_at(&self, buf: &[u8], pos: u64) -> io::Result<usize> {
        self.mutate("writing", || self.inner.write_at(buf, pos))
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        if self.failure.get().is_some() && self.inner.len()? > len {
            // Taking back bytes a failed fsync may have dropped (module docs).
            return self.inner.set_len(len);
        }
        self.mutate("cutting", || self.inner.set_len(len))
    }

    fn sync(&self) -> io::Result<()> {
        self.mutate("fsyncing", || {
            self.inner.sync().inspect_err(|e| {
                if e.kind() != io::ErrorKind::StorageFull && !is_derived(&self.path) {
                    self.debt.failed_fsync(&self.path);
                }
            })
        })
    }
}
