//! [`StdFs`]: the real filesystem. The only module of log-core that names
//! `std::fs`.
//!
//! **Write-behind.** Once `WRITE_BEHIND_BYTES` have been written to a file
//! since its last fsync, a background thread (one per process,
//! `seglog-write-behind`) fdatasyncs it, so the disk writes while the log
//! keeps appending and a later `sync` — a roll's fsync of a 64 MiB segment,
//! or the user's — finds little left to write. It only adds fsyncs: what
//! is durable when is unchanged ([`FileHandle::sync`] still fsyncs). A
//! failed background fsync may have dropped the data (Linux reports the
//! error once, to whichever call on the file asks first), so it is kept and
//! every later [`FileHandle::sync`] of the file fails with it; the two
//! paths take the same lock, so no fsync error can slip between them.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::fs::{FileHandle, FileLock, FileSystem, OpenMode};

/// The operating system's filesystem (Unix: positional I/O, `fdatasync`,
/// directory `fsync`).
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

impl StdFs {
    /// A handle to the real filesystem, ready to share.
    pub fn shared() -> Arc<dyn FileSystem> {
        Arc::new(StdFs)
    }
}

/// Bytes written to a file since its last fsync after which the
/// write-behind thread fsyncs it (module docs).
const WRITE_BEHIND_BYTES: u64 = 2 << 20;

#[derive(Debug)]
struct StdFile {
    file: Arc<File>,
    /// `None` for a file opened read-only.
    behind: Option<Arc<WriteBehind>>,
}

/// A writable file's write-behind state (module docs).
#[derive(Debug, Default)]
struct WriteBehind {
    /// Bytes written since the last fsync was started.
    unsynced: AtomicU64,
    /// A background fsync is queued or running.
    queued: AtomicBool,
    /// Background fsyncs that ran.
    background_syncs: AtomicU64,
    /// Held across every fsync of the file; holds the first error of a
    /// background fsync, which every later `sync` returns.
    sync: Mutex<Option<(io::ErrorKind, String)>>,
}

/// A background fsync to run: the file and its write-behind state.
type Job = (Arc<File>, Arc<WriteBehind>);

/// The write-behind thread's queue (module docs).
fn write_behind_queue() -> &'static Mutex<Sender<Job>> {
    static QUEUE: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        let spawned = std::thread::Builder::new().name("seglog-write-behind".into()).spawn(move || {
            for (file, behind) in rx {
                let mut kept = behind.sync.lock().unwrap_or_else(PoisonError::into_inner);
                if kept.is_none()
                    && let Err(e) = file.sync_data()
                {
                    *kept = Some((e.kind(), format!("a background fdatasync failed: {e}")));
                }
                drop(kept);
                behind.background_syncs.fetch_add(1, Ordering::SeqCst);
                behind.queued.store(false, Ordering::SeqCst);
            }
        });
        if spawned.is_err() {
            // No thread: the receiver is gone, sends fail, and every fsync
            // stays in the foreground.
            tracing::warn!("could not start the write-behind thread; fsyncs stay in the foreground");
        }
        Mutex::new(tx)
    })
}

/// An advisory whole-file lock (`flock`), released on drop and by the death
/// of the process.
#[derive(Debug)]
struct StdLock(File);

impl FileLock for StdLock {}

impl Drop for StdLock {
    fn drop(&mut self) {
        // Unlock explicitly rather than rely on closing the file: a child
        // process forked by another thread holds a reference to the open
        // file description until its `exec` closes it, and the lock would
        // outlive this guard until then.
        let _ = self.0.unlock();
    }
}

impl FileHandle for StdFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.file.read_at(buf, pos)
    }

    fn write_at(&self, buf: &[u8], pos: u64) -> io::Result<usize> {
        let n = self.file.write_at(buf, pos)?;
        if let Some(behind) = &self.behind
            && behind.unsynced.fetch_add(n as u64, Ordering::Relaxed) + n as u64 >= WRITE_BEHIND_BYTES
            && !behind.queued.swap(true, Ordering::SeqCst)
        {
            behind.unsynced.store(0, Ordering::Relaxed);
            let queue = write_behind_queue().lock().unwrap_or_else(PoisonError::into_inner);
            if queue.send((Arc::clone(&self.file), Arc::clone(behind))).is_err() {
                behind.queued.store(false, Ordering::SeqCst);
            }
        }
        Ok(n)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn sync(&self) -> io::Result<()> {
        let Some(behind) = &self.behind else {
            return self.file.sync_data();
        };
        // Waits for a background fsync in flight (module docs).
        let kept = behind.sync.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((kind, msg)) = kept.as_ref() {
            return Err(io::Error::new(*kind, msg.clone()));
        }
        behind.unsynced.store(0, Ordering::Relaxed);
        // fdatasync persists the data and the metadata needed to read it back,
        // which includes the file size.
        self.file.sync_data()
    }
}

impl FileSystem for StdFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>> {
        let mut opts = OpenOptions::new();
        match mode {
            OpenMode::Read => opts.read(true),
            OpenMode::ReadWrite => opts.read(true).write(true),
            OpenMode::CreateNew => opts.read(true).write(true).create_new(true),
        };
        let file = Arc::new(opts.open(path)?);
        let behind = (mode != OpenMode::Read).then(Arc::default);
        Ok(Arc::new(StdFile { file, behind }))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn try_lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(StdLock(file))),
            Err(TryLockError::WouldBlock) => Err(io::Error::from(io::ErrorKind::WouldBlock)),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    fn boot_id(&self) -> Option<String> {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|s| s.trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A background fsync that failed is returned by every later `sync` of
    /// the file, even though the kernel would report it only once (to the
    /// background call) and the foreground fdatasync itself succeeds.
    #[test]
    fn a_failed_background_fsync_fails_every_later_sync() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = StdFs.open(&dir.path().join("f"), OpenMode::CreateNew)?;
        file.write_at(b"abc", 0)?;
        file.sync()?;
        let std_file = StdFile { file: Arc::new(File::open(dir.path().join("f"))?), behind: Some(Arc::default()) };
        if let Some(behind) = &std_file.behind {
            *behind.sync.lock().unwrap_or_else(PoisonError::into_inner) =
                Some((io::ErrorKind::Other, "a background fdatasync failed: EIO".into()));
        }
        for _ in 0..2 {
            let err = std_file.sync().err().map(|e| e.to_string());
            assert_eq!(err.as_deref(), Some("a background fdatasync failed: EIO"));
        }
        Ok(())
    }

    /// Writing up to the threshold runs exactly one background fsync; a
    /// later `sync` works.
    #[test]
    fn write_behind_runs_after_the_threshold() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f");
        let file = StdFile {
            file: Arc::new(OpenOptions::new().read(true).write(true).create_new(true).open(&path)?),
            behind: Some(Arc::default()),
        };
        let chunk = vec![7u8; 1 << 20];
        for i in 0..(WRITE_BEHIND_BYTES / chunk.len() as u64) {
            file.write_at(&chunk, i * chunk.len() as u64)?;
        }
        let behind = file.behind.as_ref().map(Arc::clone).ok_or_else(|| io::Error::other("no state"))?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while behind.background_syncs.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(behind.background_syncs.load(Ordering::SeqCst), 1, "one background fsync after the threshold");
        assert!(behind.unsynced.load(Ordering::SeqCst) < WRITE_BEHIND_BYTES);
        file.sync()?;
        assert_eq!(file.len()?, WRITE_BEHIND_BYTES);
        Ok(())
    }
}
