//! The disk and page-cache state behind [`SimFs`](crate::SimFs).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Component, Path, PathBuf};

use rand_chacha::ChaCha8Rng;

use crate::config::FaultConfig;

/// An unsynced change to a file, in the order it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pending {
    Write { pos: u64, data: Vec<u8> },
    SetLen(u64),
}

/// A file's contents: what the running system sees (`cached`), what is on
/// the platter (`durable`), and the changes between them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Inode {
    pub cached: Vec<u8>,
    pub durable: Vec<u8>,
    /// Changes not yet durable, oldest first. Applying all of them to
    /// `durable` gives `cached`, unless a failed sync dropped some (then
    /// `cached` shows data the disk will never get).
    pub pending: Vec<Pending>,
    /// Durable sectors that fail to read.
    pub bad_sectors: BTreeSet<u64>,
}

/// What a directory entry points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Node {
    File(u64),
    Dir,
}

/// An unsynced change to a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DirOp {
    Link(String, Node),
    Unlink(String),
    Rename(String, String),
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Dir {
    pub cached: BTreeMap<String, Node>,
    pub durable: BTreeMap<String, Node>,
    pub pending: Vec<DirOp>,
}

pub(crate) fn apply_dir_op(map: &mut BTreeMap<String, Node>, op: &DirOp) {
    match op {
        DirOp::Link(name, node) => {
            map.insert(name.clone(), *node);
        }
        DirOp::Unlink(name) => {
            map.remove(name);
        }
        DirOp::Rename(from, to) => {
            if let Some(node) = map.remove(from) {
                map.insert(to.clone(), node);
            }
        }
    }
}

/// Applies a pending change to file contents.
pub(crate) fn apply(content: &mut Vec<u8>, op: &Pending) {
    match op {
        Pending::Write { pos, data } => write_into(content, *pos, data),
        Pending::SetLen(len) => content.resize(*len as usize, 0),
    }
}

pub(crate) fn write_into(content: &mut Vec<u8>, pos: u64, data: &[u8]) {
    let pos = pos as usize;
    let end = pos + data.len();
    if content.len() < end {
        content.resize(end, 0);
    }
    if let Some(dst) = content.get_mut(pos..end) {
        dst.copy_from_slice(data);
    }
}

/// One thing that happened, for traces and determinism checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A filesystem operation and its outcome.
    Op {
        /// What was called.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// Position, length or other detail.
        detail: String,
        /// `ok`, or the error.
        outcome: String,
    },
    /// An injected fault.
    Fault(crate::FaultRecord),
    /// A crash and how it was resolved.
    Crash {
        /// The policy drawn.
        policy: crate::CrashPolicy,
        /// Pending file changes lost (wholly or partly).
        n_lost: u64,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Op { op, path, detail, outcome } => write!(f, "fs {op} {} {detail} -> {outcome}", path.display()),
            Event::Fault(r) => write!(f, "fault {r}"),
            Event::Crash { policy, n_lost } => {
                write!(f, "crash policy={policy:?} lost_changes={n_lost}")
            }
        }
    }
}

/// Everything behind one `SimFs`.
#[derive(Debug)]
pub(crate) struct State {
    pub rng: ChaCha8Rng,
    pub config: FaultConfig,
    pub inodes: BTreeMap<u64, Inode>,
    pub next_ino: u64,
    /// Directories that exist in the cached view, by normalized path (as
    /// a string: compared byte-wise, not component by component).
    pub dirs: BTreeMap<String, Dir>,
    /// Bumped by every crash; handles from an older boot are dead.
    pub boot: u64,
    pub events: Vec<Event>,
    pub faults: Vec<crate::FaultRecord>,
    /// Whether to keep `Event::Op`s (faults and crashes are always kept).
    pub trace_ops: bool,
    /// Cached directory entries per linked inode.
    pub links: BTreeMap<u64, u32>,
    /// Bytes used by linked inodes (see `used_bytes`).
    pub used: u64,
    /// Mutating operations left before the power fails (`power_off_after`).
    pub power_off_in: Option<u64>,
    /// Mutating operations attempted so far (`SimFs::mutating_ops`).
    pub mutating_ops: u64,
    /// The power failed: every operation fails until `power_on`.
    pub powered_off: bool,
    /// Held locks (`try_lock`): path → (lock id, boot it was taken in). A
    /// lock of an older boot is released: the process holding it died.
    pub locks: BTreeMap<PathBuf, (u64, u64)>,
    /// The id of the next lock.
    pub next_lock: u64,
}

/// `/a/b/../c` → `/a/c`; relative paths are taken from `/`. A path that is
/// already normal (absolute, only plain components, no doubled or trailing
/// separator) is returned as it is, without a copy.
pub(crate) fn normalize(path: &Path) -> Cow<'_, Path> {
    // Already normalized (checked on the bytes: parsing components is the
    // slow part of every call).
    let plain = path.to_str().is_some_and(|s| {
        s.starts_with('/')
            && (s.len() == 1 || !s.ends_with('/'))
            && !s.contains("//")
            && !s.split('/').any(|c| c == "." || c == "..")
    });
    if plain {
        return Cow::Borrowed(path);
    }
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Cow::Owned(out)
}

/// Splits a normalized path into its parent directory and file name.
pub(crate) fn split(path: &Path) -> Option<(String, String)> {
    let (parent, name) = split_str(path.to_str()?)?;
    Some((parent.to_owned(), name.to_owned()))
}

/// Splits a normalized path string into its parent directory and file
/// name, without allocating; `None` for the root.
pub(crate) fn split_str(path: &str) -> Option<(&str, &str)> {
    let i = path.rfind('/')?;
    let name = path.get(i + 1..).filter(|n| !n.is_empty())?;
    Some((if i == 0 { "/" } else { path.get(..i)? }, name))
}

/// The path of entry `name` in directory `dir` (both normalized).
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir == "/" { format!("/{name}") } else { format!("{dir}/{name}") }
}

impl State {
    pub fn log(&mut self, op: &'static str, path: &Path, detail: impl FnOnce() -> String, outcome: &str) {
        if self.trace_ops {
            self.events.push(Event::Op {
                op,
                path: path.to_path_buf(),
                detail: detail(),
                outcome: outcome.to_string(),
            });
        }
    }

    /// Like [`log`](Self::log) for a file handle, resolving the inode's path
    /// and formatting the detail only when tracing.
    pub fn log_ino(&mut self, op: &'static str, ino: u64, detail: impl FnOnce() -> String, outcome: &str) {
        if self.trace_ops {
            let path = self.path_of(ino);
            self.events.push(Event::Op { op, path, detail: detail(), outcome: outcome.to_string() });
        }
    }

    /// Records a fault on inode `ino` (its path resolved now).
    pub fn record_ino(&mut self, kind: crate::FaultKind, ino: u64, pos: u64, len: u64, hit: crate::Hit) {
        let path = self.path_of(ino);
        self.record(crate::FaultRecord { kind, path, pos, len, hit });
    }

    pub fn record(&mut self, r: crate::FaultRecord) {
        self.events.push(Event::Fault(r.clone()));
        self.faults.push(r);
    }

    /// The cached entry at `path`.
    pub fn lookup(&self, path: &Path) -> Option<Node> {
        let path = path.to_str()?;
        if path == "/" {
            return Some(Node::Dir);
        }
        let (parent, name) = split_str(path)?;
        self.dirs.get(parent)?.cached.get(name).copied()
    }

    /// A path (in the cached view) that names inode `ino`, for fault records.
    pub fn path_of(&self, ino: u64) -> PathBuf {
        for (dir, d) in &self.dirs {
            for (name, node) in &d.cached {
                if *node == Node::File(ino) {
                    return PathBuf::from(join(dir, name));
                }
            }
        }
        PathBuf::from(format!("<unlinked inode {ino}>"))
    }

    fn round(&self, len: u64) -> u64 {
        let s = self.config.sector_bytes.max(1);
        len.div_ceil(s) * s
    }

    /// Bytes in use: cached sizes of linked files, rounded up to sectors
    /// (kept up to date incrementally).
    pub fn used_bytes(&self) -> u64 {
        debug_assert_eq!(self.used, self.count_used().1, "incremental space accounting drifted");
        self.used
    }

    /// Recomputes `(links per inode, used bytes)` from the namespace.
    fn count_used(&self) -> (BTreeMap<u64, u32>, u64) {
        let mut links: BTreeMap<u64, u32> = BTreeMap::new();
        for d in self.dirs.values() {
            for node in d.cached.values() {
                if let Node::File(ino) = node {
                    *links.entry(*ino).or_insert(0) += 1;
                }
            }
        }
        let used = links.keys().filter_map(|ino| self.inodes.get(ino)).map(|i| self.round(i.cached.len() as u64)).sum();
        (links, used)
    }

    /// Rebuilds the space accounting (after a crash or a restore).
    pub fn recount(&mut self) {
        let (links, used) = self.count_used();
        self.links = links;
        self.used = used;
    }

    /// A cached directory entry now points at `ino`.
    pub fn link(&mut self, ino: u64) {
        let n = self.links.entry(ino).or_insert(0);
        *n += 1;
        if *n == 1 {
            let len = self.inodes.get(&ino).map_or(0, |i| i.cached.len() as u64);
            self.used += self.round(len);
        }
    }

    /// A cached directory entry pointing at `ino` is gone.
    pub fn unlink(&mut self, ino: u64) {
        if let Some(n) = self.links.get_mut(&ino) {
            *n -= 1;
            if *n == 0 {
                self.links.remove(&ino);
                let len = self.inodes.get(&ino).map_or(0, |i| i.cached.len() as u64);
                self.used -= self.round(len);
            }
        }
    }

    /// The cached size of `ino` changed from `old` to `new` bytes.
    pub fn resized(&mut self, ino: u64, old: u64, new: u64) {
        if self.links.contains_key(&ino) {
            self.used = self.used + self.round(new) - self.round(old);
        }
        debug_assert_eq!(self.used, self.count_used().1, "incremental space accounting drifted");
    }

    /// Bytes still free, `u64::MAX` on an unlimited disk.
    pub fn free_bytes(&self) -> u64 {
        match self.config.capacity_bytes {
            Some(cap) => cap.saturating_sub(self.used_bytes()),
            None => u64::MAX,
        }
    }

    /// A hash of the durable image (what a crash right now could at best
    /// keep), for determinism checks.
    pub fn disk_hash(&self) -> u64 {
        self.hash_view(false)
    }

    /// A hash of the durable image (`cached == false`) or of the cached
    /// view, pending changes included (`cached == true`).
    pub fn hash_view(&self, cached: bool) -> u64 {
        let mut h = Fnv::new();
        for (path, d) in &self.dirs {
            h.write(path.as_bytes());
            for (name, node) in if cached { &d.cached } else { &d.durable } {
                h.write(name.as_bytes());
                match node {
                    Node::Dir => h.write(b"/"),
                    Node::File(ino) => {
                        if let Some(i) = self.inodes.get(ino) {
                            let bytes = if cached { &i.cached } else { &i.durable };
                            h.write(&(bytes.len() as u64).to_le_bytes());
                            h.write(&crc32fast::hash(bytes).to_le_bytes());
                        }
                    }
                }
            }
            if cached {
                h.write(&(d.pending.len() as u64).to_le_bytes());
            }
        }
        h.finish()
    }
}

/// FNV-1a, 64 bit: a stable hash with no per-process seed.
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Fnv {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    /// Adds bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize_split_and_join() {
        for (raw, want) in [
            ("/a/b", "/a/b"),
            ("/", "/"),
            ("/a/./b/../c//d/", "/a/c/d"),
            ("a/b", "/a/b"),
            ("/a/..", "/"),
            ("/a/.", "/a"),
        ] {
            assert_eq!(normalize(Path::new(raw)), Path::new(want), "{raw}");
        }
        assert!(matches!(normalize(Path::new("/a/b")), Cow::Borrowed(_)));
        assert_eq!(split_str("/a"), Some(("/", "a")));
        assert_eq!(split_str("/a/b"), Some(("/a", "b")));
        assert_eq!(split_str("/"), None);
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }
}
