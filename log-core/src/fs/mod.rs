//! The I/O boundary: a narrow filesystem trait that states what is durable
//! when.
//!
//! log-core performs every byte of I/O through [`FileSystem`] and
//! [`FileHandle`], so that the same code runs on the real disk ([`StdFs`]) and
//! on the simulator's fault-injecting in-memory disk. The contract below is
//! the POSIX/Linux contract a careful storage engine must assume, stated
//! explicitly so that a fake filesystem can implement exactly that much and
//! nothing more:
//!
//! * `write_at` and `set_len` change the file's *cached* contents. They become
//!   durable only when [`FileHandle::sync`] on that file returns `Ok`. A crash
//!   before that may keep any subset of the unsynced changes, in any order,
//!   at sector granularity, including a torn write.
//! * Creating, renaming and removing a directory entry becomes durable only
//!   when [`FileSystem::sync_dir`] on the parent directory returns `Ok`.
//! * A failed `sync` may have dropped the dirty data it was asked to persist;
//!   a later `sync` returning `Ok` says nothing about it (Linux "fsyncgate").
//!   Callers must treat a failed `sync` as permanent.
//! * Reads and writes may transfer fewer bytes than asked (short I/O).
//!
//! [`StdFs`]: crate::StdFs

mod checked;
mod std_fs;

pub(crate) use checked::{CheckedFs, Failure};
pub use std_fs::StdFs;

use std::fmt::Debug;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// How [`FileSystem::open`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Open an existing file for reading only.
    Read,
    /// Open an existing file for reading and writing.
    ReadWrite,
    /// Create a new file for reading and writing; fail with
    /// `io::ErrorKind::AlreadyExists` if it exists.
    CreateNew,
}

/// An open file. All I/O is positional, so one handle can be shared by a
/// writer and concurrent readers.
pub trait FileHandle: Send + Sync + Debug {
    /// Reads up to `buf.len()` bytes at byte position `pos`; returns how many
    /// were read, which may be fewer than asked even before the end of the
    /// file. `Ok(0)` with a non-empty `buf` means `pos` is at or past the end.
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize>;

    /// Writes up to `buf.len()` bytes at byte position `pos`; returns how many
    /// were written, which may be fewer than asked. Writing past the end
    /// extends the file; a gap reads as zeros. The bytes are cached, not
    /// durable, until [`sync`](Self::sync) returns `Ok`. A disk without room
    /// writes what fits and then fails with `io::ErrorKind::StorageFull`.
    fn write_at(&self, buf: &[u8], pos: u64) -> io::Result<usize>;

    /// The current length of the file in bytes (cached state, which includes
    /// unsynced writes).
    fn len(&self) -> io::Result<u64>;

    /// Whether the file is empty (cached state).
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Truncates or extends the file to `len` bytes; new bytes read as zeros.
    /// Cached, not durable, until [`sync`](Self::sync) returns `Ok`.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// Makes every earlier `write_at` and `set_len` on this file durable
    /// (`fdatasync` plus the file size). On `Err`, some or all of that data may
    /// be lost even if a later `sync` returns `Ok`: never retry.
    fn sync(&self) -> io::Result<()>;
}

/// An exclusive lock taken by [`FileSystem::try_lock`]. Dropping it
/// releases the lock.
pub trait FileLock: Send + Sync + Debug {}

/// A filesystem: the only way log-core touches storage.
pub trait FileSystem: Send + Sync + Debug {
    /// Opens `path` in `mode`. A file created by `OpenMode::CreateNew` has a
    /// directory entry that is durable only after `sync_dir` on its parent.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>>;

    /// Creates `path` and any missing parents. New entries are durable only
    /// after `sync_dir` on each parent.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;

    /// The names of the entries of directory `path`, sorted bytewise. Fails
    /// with `io::ErrorKind::NotFound` if it does not exist and
    /// `io::ErrorKind::NotADirectory` if it is a file.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>>;

    /// Atomically renames `from` to `to`, replacing `to` if it exists. Durable
    /// only after `sync_dir` on the parent (both must be in one directory).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes the file `path`. Durable only after `sync_dir` on the parent;
    /// before that a crash may bring it back.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Makes every earlier create, rename and remove in directory `path`
    /// durable. On `Err`, treat those changes as possibly lost.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;

    /// Whether `path` exists (cached state).
    fn exists(&self, path: &Path) -> io::Result<bool>;

    /// Takes an exclusive lock on the file `path` without waiting, creating
    /// the file if it is missing (its contents are never read or written;
    /// its directory entry need not be durable). Fails with
    /// `io::ErrorKind::WouldBlock` while anyone else holds it: another
    /// process, or an earlier lock of the same path taken through any
    /// handle of this filesystem in this process. The lock is held until
    /// the returned guard is dropped or the process dies (a crash releases
    /// it).
    fn try_lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>>;

    /// An identity of the machine's current boot, if the filesystem knows
    /// one (Linux: `/proc/sys/kernel/random/boot_id`). The page cache lives
    /// as long as a boot: after a failed fsync, only an open in the same
    /// boot can be misled by it (`log.resync`, `docs/FORMAT.md`). `None`
    /// (the default) means unknown, and every boot is treated as the same.
    fn boot_id(&self) -> Option<String> {
        None
    }
}

/// Reads exactly `buf.len()` bytes at `pos`, looping over short reads.
/// Fails with `io::ErrorKind::UnexpectedEof` if the file ends first.
pub fn read_exact_at(file: &dyn FileHandle, mut buf: &mut [u8], mut pos: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.read_at(buf, pos) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Ok(n) => {
                let n = n.min(buf.len());
                buf = buf.get_mut(n..).unwrap_or_default();
                pos += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads up to `buf.len()` bytes at `pos`, looping over short reads; returns
/// fewer only at the end of the file.
pub fn read_full_at(file: &dyn FileHandle, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    let mut done = 0usize;
    while done < buf.len() {
        let Some(rest) = buf.get_mut(done..) else {
            break;
        };
        match file.read_at(rest, pos + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n.min(rest.len()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Writes all of `buf` at `pos`, looping over short writes. On error, a
/// prefix of `buf` may have been written.
pub fn write_all_at(file: &dyn FileHandle, mut buf: &[u8], mut pos: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.write_at(buf, pos) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => {
                let n = n.min(buf.len());
                buf = buf.get(n..).unwrap_or_default();
                pos += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// CRC32 of the first `len` bytes of `file`, read in 1 MiB pieces; a file
/// shorter than `len` is `UnexpectedEof`.
pub fn crc_of_prefix(file: &dyn FileHandle, len: u64) -> io::Result<crc32fast::Hasher> {
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; usize::try_from(len.min(1 << 20)).unwrap_or(1 << 20)];
    let mut pos = 0u64;
    while pos < len {
        let want = usize::try_from(len - pos).unwrap_or(usize::MAX).min(buf.len());
        let piece = buf.get_mut(..want).unwrap_or_default();
        read_exact_at(file, piece, pos)?;
        h.update(piece);
        pos += want as u64;
    }
    Ok(h)
}
