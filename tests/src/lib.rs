//! Helpers shared by the integration tests: deterministic record contents
//! and a filesystem wrapper that fails on command. Also the home of the
//! README's doctests: every Rust snippet of the README compiles and runs.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use seglog_core::{FileHandle, FileSystem, OpenMode, StdFs};

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
/// and left in place) and the room reserved for the resync marker
/// (`log.spare`, newlines) are not part of the log's state and are left out.
pub fn dir_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("listing the directory")
        .filter(|e| {
            e.as_ref().map_or(true, |e| {
                e.file_name() != seglog_core::inspect::LOCK_FILE_NAME
                    && e.file_name() != seglog_core::inspect::RESYNC_SPARE_FILE_NAME
            })
        })
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
    /// The file the injected failure hit.
    failed_path: Mutex<Option<PathBuf>>,
    /// Every mutating operation that reached the disk after the injected
    /// failure.
    after: Mutex<Vec<Mutation>>,
    /// Every mutating operation that reached the disk.
    all: Mutex<Vec<Mutation>>,
}

/// A mutating operation that reached the disk (see [`FailFs::after_failure`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutation {
    /// `write_at`, `set_len`, `sync`, `sync_dir`, `rename`, `remove_file`
    /// or `create`.
    pub op: &'static str,
    /// The file (for a rename, its target; for `sync_dir`, the directory).
    pub path: PathBuf,
    /// For `set_len`: whether it made the file shorter.
    pub shrinks: bool,
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
                failed_path: Mutex::new(None),
                after: Mutex::new(Vec::new()),
                all: Mutex::new(Vec::new()),
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

    /// The file the injected failure hit, once it has.
    pub fn failed_path(&self) -> Option<PathBuf> {
        self.state.failed_path.lock().expect("lock").clone()
    }

    /// Every mutating operation that reached the disk after the injected
    /// failure (and was not failed itself).
    pub fn after_failure(&self) -> Vec<Mutation> {
        self.state.after.lock().expect("lock").clone()
    }

    /// Every mutating operation that reached the disk, in order, and
    /// forgets them.
    pub fn take_mutations(&self) -> Vec<Mutation> {
        std::mem::take(&mut *self.state.all.lock().expect("lock"))
    }

    fn check(&self, op: FailOp, name: &'static str, path: &Path, shrinks: bool) -> io::Result<()> {
        // The room reserved for the resync marker (`log.spare`) is best
        // effort — the log ignores its failure by design, and
        // `a_failed_fsync_on_a_full_disk_still_leaves_its_marker` covers
        // it — so it is neither counted nor failed: the n-th operation is
        // one of the log's own.
        if path.file_name().is_some_and(|n| n == seglog_core::inspect::RESYNC_SPARE_FILE_NAME) {
            return Ok(());
        }
        self.state.seen.fetch_add(1, Ordering::SeqCst);
        let matching = self.state.ops.contains(&op);
        if matching && self.state.sticky && self.tripped() {
            return Err(io::Error::from(self.state.kind));
        }
        let left = self.state.countdown.load(Ordering::SeqCst);
        if matching && left == 0 && !self.tripped() {
            self.state.tripped.store(true, Ordering::SeqCst);
            *self.state.failed_path.lock().expect("lock") = Some(path.to_path_buf());
            return Err(io::Error::from(self.state.kind));
        }
        if matching && left > 0 {
            self.state.countdown.store(left - 1, Ordering::SeqCst);
        }
        let m = Mutation { op: name, path: path.to_path_buf(), shrinks };
        if self.tripped() {
            self.state.after.lock().expect("lock").push(m.clone());
        }
        self.state.all.lock().expect("lock").push(m);
        Ok(())
    }
}

#[derive(Debug)]
struct FailFile {
    inner: Arc<dyn FileHandle>,
    path: PathBuf,
    fs: FailFs,
}

impl FileHandle for FailFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.inner.read_at(buf, pos)
    }
    fn write_at(&self, buf: &[u8], pos: u64) -> io::Result<usize> {
        self.fs.check(FailOp::Write, "write_at", &self.path, false)?;
        self.inner.write_at(buf, pos)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let shrinks = self.inner.len()? > len;
        self.fs.check(FailOp::Write, "set_len", &self.path, shrinks)?;
        self.inner.set_len(len)
    }
    fn sync(&self) -> io::Result<()> {
        self.fs.check(FailOp::Sync, "sync", &self.path, false)?;
        self.inner.sync()
    }
}

impl FileSystem for FailFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>> {
        if mode == OpenMode::CreateNew {
            self.check(FailOp::Namespace, "create", path, false)?;
        }
        Ok(Arc::new(FailFile { inner: StdFs.open(path, mode)?, path: path.to_path_buf(), fs: self.clone() }))
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFs.create_dir_all(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        StdFs.read_dir(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(FailOp::Namespace, "rename", to, false)?;
        StdFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.check(FailOp::Namespace, "remove_file", path, false)?;
        StdFs.remove_file(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.check(FailOp::SyncDir, "sync_dir", path, false)?;
        StdFs.sync_dir(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        StdFs.exists(path)
    }
    fn try_lock(&self, path: &Path) -> io::Result<Box<dyn seglog_core::FileLock>> {
        StdFs.try_lock(path)
    }
}

/// The README's Rust snippets, compiled and run as doctests (`cargo test
/// --workspace`, or `cargo test -p tests --doc`): the README cannot show
/// code that does not build.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
