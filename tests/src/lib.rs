//! Helpers shared by the integration tests: deterministic record contents
//! and a filesystem wrapper that fails on command.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use log_core::{FileHandle, FileSystem, OpenMode, StdFs};

/// A cheap, deterministic 64-bit mix (splitmix64).
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The value a test writes at `offset` under `seed`: its length and bytes
/// both derive from the two, so a reader can check any record it finds.
pub fn value_for(seed: u64, offset: u64, max_len: usize) -> Vec<u8> {
    let h = mix(seed ^ mix(offset));
    let len = (h % (max_len as u64 + 1)) as usize;
    (0..len).map(|i| (mix(h.wrapping_add(i as u64)) & 0xff) as u8).collect()
}

/// Every file of `dir` (not recursive) with its contents, sorted by name;
/// the lock file (`log.lock`, empty, created by the first read-write open
/// and left in place) is not part of the log's state and is left out.
pub fn dir_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("listing the directory")
        .filter(|e| e.as_ref().map_or(true, |e| e.file_name() != log_core::format::LOCK_FILE_NAME))
        .map(|e| {
            let e = e.expect("reading a directory entry");
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).expect("reading a file"))
        })
        .collect();
    v.sort();
    v
}

/// Which operations [`FailFs`] counts and can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOp {
    /// `write_at`, `set_len`.
    Write,
    /// File `sync`.
    Sync,
    /// `sync_dir`.
    SyncDir,
    /// `rename`, `remove_file`, `open(CreateNew)`.
    Namespace,
}

/// Wraps [`StdFs`]; fails the `n`-th matching mutating operation (and, if
/// `sticky`, every one after it) with the given error kind.
#[derive(Debug, Clone)]
pub struct FailFs {
    state: Arc<FailState>,
}

#[derive(Debug)]
struct FailState {
    ops: Vec<FailOp>,
    countdown: AtomicU64,
    kind: io::ErrorKind,
    sticky: bool,
    tripped: AtomicBool,
    /// Mutating operations seen so far (of any kind).
    seen: AtomicU64,
}

impl FailFs {
    /// Fails the `n`-th (0-based) operation among `ops` with `kind`.
    pub fn new(ops: &[FailOp], n: u64, kind: io::ErrorKind, sticky: bool) -> Self {
        Self {
            state: Arc::new(FailState {
                ops: ops.to_vec(),
                countdown: AtomicU64::new(n),
                kind,
                sticky,
                tripped: AtomicBool::new(false),
                seen: AtomicU64::new(0),
            }),
        }
    }

    /// A wrapper that never fails; counts operations.
    pub fn passthrough() -> Self {
        Self::new(&[], u64::MAX, io::ErrorKind::Other, false)
    }

    /// Whether the failure has been injected.
    pub fn tripped(&self) -> bool {
        self.state.tripped.load(Ordering::SeqCst)
    }

    /// How many mutating operations were seen.
    pub fn seen(&self) -> u64 {
        self.state.seen.load(Ordering::SeqCst)
    }

    fn check(&self, op: FailOp) -> io::Result<()> {
        self.state.seen.fetch_add(1, Ordering::SeqCst);
        if !self.state.ops.contains(&op) {
            return Ok(());
        }
        if self.state.sticky && self.tripped() {
            return Err(io::Error::from(self.state.kind));
        }
        let left = self.state.countdown.load(Ordering::SeqCst);
        if left == 0 && !self.tripped() {
            self.state.tripped.store(true, Ordering::SeqCst);
            return Err(io::Error::from(self.state.kind));
        }
        if left > 0 {
            self.state.countdown.store(left - 1, Ordering::SeqCst);
        }
        Ok(())
    }
}

#[derive(Debug)]
struct FailFile {
    inner: Arc<dyn FileHandle>,
    fs: FailFs,
}

impl FileHandle for FailFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.inner.read_at(buf, pos)
    }
    fn write_at(&self, buf: &[u8], pos: u64) -> io::Result<usize> {
        self.fs.check(FailOp::Write)?;
        self.inner.write_at(buf, pos)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.fs.check(FailOp::Write)?;
        self.inner.set_len(len)
    }
    fn sync(&self) -> io::Result<()> {
        self.fs.check(FailOp::Sync)?;
        self.inner.sync()
    }
}

impl FileSystem for FailFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>> {
        if mode == OpenMode::CreateNew {
            self.check(FailOp::Namespace)?;
        }
        Ok(Arc::new(FailFile { inner: StdFs.open(path, mode)?, fs: self.clone() }))
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFs.create_dir_all(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        StdFs.read_dir(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(FailOp::Namespace)?;
        StdFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.check(FailOp::Namespace)?;
        StdFs.remove_file(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.check(FailOp::SyncDir)?;
        StdFs.sync_dir(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        StdFs.exists(path)
    }
    fn try_lock(&self, path: &Path) -> io::Result<Box<dyn log_core::FileLock>> {
        StdFs.try_lock(path)
    }
}
