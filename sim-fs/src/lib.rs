//! # sim-fs: an in-memory filesystem that fails the way real disks do
//!
//! [`SimFs`] implements log-core's [`FileSystem`] in memory. Every decision
//! it makes comes from a seeded RNG (ChaCha8), so a run replays exactly.
//!
//! ## Durability model
//!
//! Each file has two copies of its contents: the **cached** contents (what
//! reads return: the page cache) and the **durable** contents (what is on
//! the platter). Between them is the file's list of **pending** changes —
//! every `write_at` and `set_len` since its last successful `sync`, in
//! order. Each directory likewise has cached and durable entries and a list
//! of pending changes (create, remove, rename).
//!
//! | operation | cached state | durable state |
//! |---|---|---|
//! | `write_at`, `set_len` | changed at once | unchanged; change appended to the file's pending list |
//! | `open(CreateNew)`, `rename`, `remove_file`, `create_dir_all` | changed at once | unchanged; change appended to the directory's pending list |
//! | `sync` (file) | unchanged | all its pending changes applied, list cleared |
//! | `sync` failing with EIO | unchanged | a prefix of its pending changes applied, **the rest dropped for ever**, list cleared: a later `sync` returns `Ok` without them (Linux fsyncgate) |
//! | `sync_dir` | unchanged | the directory's pending changes applied |
//! | `sync_dir` failing with EIO | unchanged | unchanged: the changes stay pending (journaled metadata is not "marked clean") |
//!
//! A **crash** ([`SimFs::crash`]) replaces the cached state by a durable
//! image built as follows, and invalidates every open handle:
//!
//! 1. each directory keeps a random prefix of its pending changes (metadata
//!    is journaled in order); with `LoseAll`, none;
//! 2. directories and files that are no longer reachable through durable
//!    entries are gone — a synced file whose directory entry was never
//!    synced vanishes, and a removed file whose removal was never synced
//!    comes back;
//! 3. each surviving file's pending changes are resolved by the crash's
//!    [`CrashPolicy`]: `LoseAll` (none survive), `KeepPrefix` (a random
//!    prefix survives), `Reorder` (the size of a random prefix survives and
//!    each pending write survives or not per sector; bytes inside the size
//!    that no surviving write covered are zeros), or `TornWrite` (a random
//!    prefix survives and the next write survives up to a random byte, the
//!    rest of that sector being zeros, garbage or the old bytes);
//! 4. media faults may strike durable data (a bit flip, an unreadable
//!    sector, a whole file that disappears), each recorded as a
//!    [`FaultRecord`] with `Hit::Durable`.
//!
//! So, for any sequence of operations, the possible images after a crash are
//! exactly: per directory, its durable entries plus a prefix of its pending
//! changes; per reachable file, its durable contents with the changes chosen
//! by the policy. [`SimFs::crash_images`] enumerates all of them for the
//! sector-atomic policies (`Reorder`'s space, which contains `LoseAll` and
//! `KeepPrefix`).
//!
//! Other faults, each off by default in [`FaultConfig`]: short reads and
//! writes, write EIO, a disk capacity (a write that does not fit writes what
//! fits, then fails with `StorageFull`; creating a file needs one free
//! sector; `set_len` beyond the capacity fails), misdirected writes at sync,
//! and planted lies ([`Canary`]) for testing checkers.
//!
//! Locks (`FileSystem::try_lock`) are kept in memory, no lock file is
//! created: a lock is held until its guard is dropped or the machine
//! crashes (the process holding it died).

mod config;
mod crash;
#[cfg(all(madsim, feature = "madsim"))]
pub mod plugin;
mod state;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seglog_core::{FileHandle, FileSystem, OpenMode};

pub use config::{Canary, CrashPolicy, FaultConfig};
pub use crash::Image;
pub use state::{Event, Fnv};

use state::{Dir, DirOp, Inode, Node, Pending, State, normalize, split};

/// What kind of fault was injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// A file sync failed; pending data was dropped.
    SyncEio,
    /// A directory sync failed; pending entries were dropped.
    DirSyncEio,
    /// A write failed with EIO.
    WriteEio,
    /// A write or create hit the capacity.
    Enospc,
    /// A write transferred fewer bytes than asked (recorded at the bytes
    /// not written; short reads are not recorded).
    ShortIo,
    /// A synced sector landed at the wrong position (`to`).
    Misdirected {
        /// Where the data landed instead.
        to: u64,
    },
    /// A bit of durable data flipped.
    BitFlip,
    /// A durable sector became unreadable.
    BadSector,
    /// A read touched an unreadable sector.
    ReadEio,
    /// A durable file disappeared: its directory entry and its data.
    FileLost,
    /// A synced write was lost and the range kept bytes an earlier write
    /// left there ([`SimFs::lose_write`], aimed by a checker that knows
    /// what those bytes were).
    LostWrite,
    /// A canary lied.
    Lie(Canary),
}

/// Whether a fault struck data that was durable (the application may have
/// been promised it) or only pending data (nothing was promised yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hit {
    /// Durable bytes: a checker must expect the application to detect it.
    Durable,
    /// Only unsynced bytes or metadata: recovery must cope silently.
    Pending,
    /// No data (e.g. a short transfer).
    None,
}

/// One injected fault.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FaultRecord {
    /// What happened.
    pub kind: FaultKind,
    /// The file (or directory) it struck.
    pub path: PathBuf,
    /// Byte position in the file.
    pub pos: u64,
    /// Bytes affected.
    pub len: u64,
    /// What kind of data it struck.
    pub hit: Hit,
}

impl fmt::Display for FaultRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {} @{}+{} hit={:?}", self.kind, self.path.display(), self.pos, self.len, self.hit)
    }
}

/// The simulated filesystem. Clones share one disk.
#[derive(Clone)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for SimFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFs").finish_non_exhaustive()
    }
}

fn eio(what: &str) -> io::Error {
    io::Error::other(format!("simulated EIO: {what}"))
}

fn powered_off() -> io::Error {
    io::Error::other("simulated EIO: the machine lost power")
}

impl State {
    fn pick_policy(&mut self) -> CrashPolicy {
        if self.config.crash_policies.is_empty() {
            return CrashPolicy::LoseAll;
        }
        let n = self.config.crash_policies.len();
        let i = self.rng.random_range(0..n);
        self.config.crash_policies.get(i).copied().unwrap_or(CrashPolicy::LoseAll)
    }

    /// Counts a mutating operation toward `power_off_after`; fails it (and
    /// crashes the disk) when the power goes, or while it is off.
    fn power_step(&mut self) -> io::Result<()> {
        self.mutating_ops += 1;
        if self.powered_off {
            return Err(powered_off());
        }
        match self.power_off_in {
            Some(0) => {
                let policy = self.pick_policy();
                self.crash(policy);
                self.powered_off = true;
                self.power_off_in = None;
                Err(powered_off())
            }
            Some(n) => {
                self.power_off_in = Some(n - 1);
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn power_check(&self) -> io::Result<()> {
        if self.powered_off { Err(powered_off()) } else { Ok(()) }
    }
}

fn enospc() -> io::Error {
    io::Error::new(io::ErrorKind::StorageFull, "simulated ENOSPC: no space left on device")
}

impl SimFs {
    /// An empty disk whose every decision derives from `seed`.
    pub fn new(seed: u64, config: FaultConfig) -> Self {
        let mut dirs = std::collections::BTreeMap::new();
        dirs.insert("/".to_owned(), Dir::default());
        Self {
            state: Arc::new(Mutex::new(State {
                rng: ChaCha8Rng::seed_from_u64(seed),
                config,
                inodes: Default::default(),
                next_ino: 1,
                dirs,
                boot: 0,
                events: Vec::new(),
                faults: Vec::new(),
                trace_ops: false,
                links: Default::default(),
                used: 0,
                power_off_in: None,
                mutating_ops: 0,
                powered_off: false,
                locks: Default::default(),
                next_lock: 1,
            })),
        }
    }

    /// This filesystem as log-core's trait object.
    pub fn shared(&self) -> Arc<dyn FileSystem> {
        Arc::new(self.clone())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent-enough state for
        // a simulator that is about to report the panic anyway.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Power failure with a crash policy drawn from the configuration.
    /// Returns the policy used.
    pub fn crash(&self) -> CrashPolicy {
        let mut s = self.lock();
        let policy = s.pick_policy();
        s.crash(policy);
        policy
    }

    /// The power fails right before the `n`-th (0-based) mutating operation
    /// from now (write, set_len, sync, create, rename, remove, mkdir,
    /// directory sync): that operation and every later one fails with EIO
    /// and has no effect, as if the process died there, and the disk
    /// crashes under a policy drawn from the configuration. Reads fail too
    /// while the power is off. [`power_on`](Self::power_on) boots again.
    /// Lets a test stop a multi-step operation at any filesystem step.
    pub fn power_off_after(&self, n: u64) {
        self.lock().power_off_in = Some(n);
    }

    /// Boots after [`power_off_after`](Self::power_off_after) struck (or
    /// cancels a countdown that has not).
    pub fn power_on(&self) {
        let mut s = self.lock();
        s.power_off_in = None;
        s.powered_off = false;
    }

    /// Whether a [`power_off_after`](Self::power_off_after) countdown struck.
    pub fn is_powered_off(&self) -> bool {
        self.lock().powered_off
    }

    /// The file at `path` disappears, entry and data, in the cached and
    /// the durable view (recorded as a `FileLost` fault on durable data).
    /// Returns whether it existed.
    pub fn lose_file(&self, path: &Path) -> bool {
        let path = normalize(path);
        let Some((dir, name)) = path.to_str().and_then(state::split_str) else {
            return false;
        };
        self.lock().lose_file(dir, name)
    }

    /// Power failure under an explicit policy.
    pub fn crash_with(&self, policy: CrashPolicy) {
        self.lock().crash(policy);
    }

    /// Every disk image a crash could leave right now (sector-atomic
    /// policies), each as a fresh `SimFs` with the same configuration and a
    /// seed derived from `seed` and the image's index. `None` if there are
    /// more than `limit`.
    pub fn crash_images(&self, limit: usize, seed: u64) -> Option<Vec<SimFs>> {
        let (images, config) = {
            let s = self.lock();
            (s.crash_images(limit)?, s.config.clone())
        };
        Some(
            images
                .into_iter()
                .enumerate()
                .map(|(i, img)| SimFs::from_image(&img, seed ^ (i as u64), config.clone()))
                .collect(),
        )
    }

    /// The raw images behind [`crash_images`](Self::crash_images).
    pub fn crash_image_list(&self, limit: usize) -> Option<Vec<Image>> {
        self.lock().crash_images(limit)
    }

    /// A fresh disk holding `image` (everything durable, nothing pending).
    pub fn from_image(image: &Image, seed: u64, config: FaultConfig) -> Self {
        let fs = SimFs::new(seed, config);
        {
            let mut s = fs.lock();
            s.dirs.clear();
            for (path, entries) in &image.dirs {
                s.dirs.insert(
                    path.clone(),
                    Dir { cached: entries.clone(), durable: entries.clone(), pending: Vec::new() },
                );
            }
            s.dirs.entry("/".to_owned()).or_default();
            for (ino, content) in &image.files {
                s.inodes.insert(*ino, Inode { cached: content.clone(), durable: content.clone(), ..Inode::default() });
                s.next_ino = s.next_ino.max(ino + 1);
            }
            s.recount();
        }
        fs
    }

    /// Replaces the fault configuration (e.g. to turn faults off for a
    /// liveness phase).
    pub fn set_config(&self, config: FaultConfig) {
        let mut s = self.lock();
        s.config = config;
        // Space is counted in sectors, whose size may have changed.
        s.recount();
    }

    /// The fault configuration in force.
    pub fn config(&self) -> FaultConfig {
        self.lock().config.clone()
    }

    /// Whether to record every operation as an [`Event`] (off by default;
    /// faults and crashes are always recorded).
    pub fn set_trace(&self, on: bool) {
        self.lock().trace_ops = on;
    }

    /// Every fault injected so far.
    pub fn faults(&self) -> Vec<FaultRecord> {
        self.lock().faults.clone()
    }

    /// The faults injected after the first `start`.
    pub fn faults_since(&self, start: usize) -> Vec<FaultRecord> {
        self.lock().faults.get(start..).unwrap_or_default().to_vec()
    }

    /// Removes and returns the events recorded so far.
    pub fn take_events(&self) -> Vec<Event> {
        std::mem::take(&mut self.lock().events)
    }

    /// A hash of the durable image.
    pub fn disk_hash(&self) -> u64 {
        self.lock().disk_hash()
    }

    /// How many mutating calls were made through this filesystem so far:
    /// every call that can change the disk or the cache (a write,
    /// `set_len`, a file or directory fsync, a create, `create_dir_all`,
    /// a rename, a removal), counted when made, whether it succeeded or
    /// not. These are the calls a power cut can interrupt (`power_off_after`
    /// counts the same steps). Unchanged across a call means that call
    /// tried to change nothing: a stricter and much cheaper look than
    /// comparing `state_hash`es.
    pub fn mutating_ops(&self) -> u64 {
        self.lock().mutating_ops
    }

    /// A hash of the whole state a process could observe or a crash could
    /// keep: the durable image and the cached view with its pending
    /// changes. Equal before and after an operation iff it changed nothing.
    pub fn state_hash(&self) -> u64 {
        let s = self.lock();
        s.hash_view(false) ^ s.hash_view(true).rotate_left(1)
    }

    /// Bytes in use (cached view, rounded up to sectors).
    pub fn used_bytes(&self) -> u64 {
        self.lock().used_bytes()
    }

    /// The durable contents of the file at `path`.
    pub fn durable_contents(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.lock();
        let path = normalize(path);
        let (parent, name) = split(&path)?;
        match s.dirs.get(&parent)?.durable.get(&name)? {
            Node::File(ino) => s.inodes.get(ino).map(|i| i.durable.clone()),
            Node::Dir => None,
        }
    }

    /// The cached contents of the file at `path`.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.lock();
        match s.lookup(&normalize(path))? {
            Node::File(ino) => s.inodes.get(&ino).map(|i| i.cached.clone()),
            Node::Dir => None,
        }
    }

    /// Flips bit `bit` of byte `pos` of the file at `path`, in both the
    /// cached and durable contents, and records it as a fault.
    pub fn flip_bit(&self, path: &Path, pos: u64, bit: u8) -> bool {
        let mut s = self.lock();
        let path = normalize(path);
        let Some(Node::File(ino)) = s.lookup(&path) else {
            return false;
        };
        let Some(i) = s.inodes.get_mut(&ino) else {
            return false;
        };
        let mut hit_durable = false;
        if let Some(b) = i.durable.get_mut(pos as usize) {
            *b ^= 1 << (bit % 8);
            hit_durable = true;
        }
        if let Some(b) = i.cached.get_mut(pos as usize) {
            *b ^= 1 << (bit % 8);
        }
        let hit = if hit_durable { Hit::Durable } else { Hit::Pending };
        s.record(FaultRecord { kind: FaultKind::BitFlip, path: path.into_owned(), pos, len: 1, hit });
        true
    }

    /// A lost write: the durable (and cached) bytes of `path` at `pos`
    /// become `old`, what an earlier write left there before the write
    /// that was lost (the caller supplies them: sim-fs keeps no history).
    /// Recorded as a `LostWrite` fault on durable data; `false` if the file
    /// does not exist or the range is not durable.
    pub fn lose_write(&self, path: &Path, pos: u64, old: &[u8]) -> bool {
        let mut s = self.lock();
        let path = normalize(path);
        let Some(Node::File(ino)) = s.lookup(&path) else {
            return false;
        };
        let Some(i) = s.inodes.get_mut(&ino) else {
            return false;
        };
        let range = pos as usize..pos as usize + old.len();
        let Some(durable) = i.durable.get_mut(range.clone()) else {
            return false;
        };
        durable.copy_from_slice(old);
        if let Some(cached) = i.cached.get_mut(range) {
            cached.copy_from_slice(old);
        }
        s.record(FaultRecord {
            kind: FaultKind::LostWrite,
            path: path.into_owned(),
            pos,
            len: old.len() as u64,
            hit: Hit::Durable,
        });
        true
    }

    /// Makes the sector holding byte `pos` of `path` unreadable.
    pub fn break_sector(&self, path: &Path, pos: u64) -> bool {
        let mut s = self.lock();
        let path = normalize(path);
        let sector = s.config.sector_bytes.max(1);
        let Some(Node::File(ino)) = s.lookup(&path) else {
            return false;
        };
        let Some(i) = s.inodes.get_mut(&ino) else {
            return false;
        };
        i.bad_sectors.insert(pos / sector);
        s.record(FaultRecord {
            kind: FaultKind::BadSector,
            path: path.into_owned(),
            pos: pos / sector * sector,
            len: sector,
            hit: Hit::Durable,
        });
        true
    }

    fn chance(s: &mut State, p: f64) -> bool {
        p > 0.0 && s.rng.random_bool(p.min(1.0))
    }
}

/// A lock taken by [`SimFs`]'s `try_lock`; dropping it releases the lock
/// (unless the machine crashed since, which released it already).
#[derive(Debug)]
pub struct SimLock {
    fs: SimFs,
    path: PathBuf,
    id: u64,
}

impl seglog_core::FileLock for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut s = self.fs.lock();
        if s.locks.get(&self.path).is_some_and(|&(id, _)| id == self.id) {
            s.locks.remove(&self.path);
        }
    }
}

/// An open file of a [`SimFs`].
#[derive(Debug)]
pub struct SimFile {
    fs: SimFs,
    ino: u64,
    boot: u64,
    writable: bool,
}

impl SimFile {
    fn live<'a>(&'a self) -> io::Result<MutexGuard<'a, State>> {
        let s = self.fs.lock();
        if s.powered_off {
            return Err(powered_off());
        }
        if s.boot != self.boot {
            return Err(io::Error::other("stale file handle: the simulated machine crashed since it was opened"));
        }
        Ok(s)
    }
}

impl FileHandle for SimFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        let mut s = self.live()?;
        let sector = s.config.sector_bytes.max(1);
        let Some(inode) = s.inodes.get(&self.ino) else {
            return Err(eio("inode vanished"));
        };
        let len = inode.cached.len() as u64;
        if pos >= len || buf.is_empty() {
            return Ok(0);
        }
        let mut n = (len - pos).min(buf.len() as u64) as usize;
        let first = pos / sector;
        let last = (pos + n as u64 - 1) / sector;
        if let Some(bad) = inode.bad_sectors.range(first..=last).next().copied() {
            s.record_ino(FaultKind::ReadEio, self.ino, bad * sector, sector, Hit::Durable);
            return Err(eio("unreadable sector"));
        }
        let p_short = s.config.p_short_io;
        if n > 1 && SimFs::chance(&mut s, p_short) {
            n = s.rng.random_range(1..n);
        }
        let inode = s.inodes.get(&self.ino).ok_or_else(|| eio("inode vanished"))?;
        let src = inode.cached.get(pos as usize..pos as usize + n).unwrap_or_default();
        buf.get_mut(..n).unwrap_or_default().copy_from_slice(src);
        if s.config.canary == Some(Canary::SilentBitflip) && SimFs::chance(&mut s, 0.02) {
            let i = s.rng.random_range(0..n);
            let bit = s.rng.random_range(0..8u8);
            if let Some(b) = buf.get_mut(i) {
                *b ^= 1 << bit;
            }
            s.record_ino(FaultKind::Lie(Canary::SilentBitflip), self.ino, pos + i as u64, 1, Hit::None);
        }
        s.log_ino("read", self.ino, || format!("@{pos}+{}", buf.len()), &n.to_string());
        Ok(n)
    }

    fn write_at(&self, buf: &[u8], pos: u64) -> io::Result<usize> {
        if !self.writable {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "file opened read-only"));
        }
        let mut s = self.live()?;
        s.power_step()?;
        if buf.is_empty() {
            return Ok(0);
        }
        let p_eio = s.config.p_write_eio;
        if SimFs::chance(&mut s, p_eio) {
            s.record_ino(FaultKind::WriteEio, self.ino, pos, buf.len() as u64, Hit::Pending);
            return Err(eio("write failed"));
        }
        let sector = s.config.sector_bytes.max(1);
        let cur_len = s.inodes.get(&self.ino).map_or(0, |i| i.cached.len() as u64);
        let mut n = buf.len();
        let end = pos + n as u64;
        if end > cur_len {
            // Growth needs whole sectors beyond what the file already holds.
            let free = s.free_bytes();
            let have = cur_len.div_ceil(sector) * sector;
            let limit = have.saturating_add(free / sector * sector);
            if end > limit {
                if s.config.canary == Some(Canary::EnospcLies) {
                    s.record_ino(FaultKind::Lie(Canary::EnospcLies), self.ino, pos, n as u64, Hit::Pending);
                    return Ok(n);
                }
                let fits = limit.saturating_sub(pos) as usize;
                s.record_ino(FaultKind::Enospc, self.ino, pos, n as u64, Hit::Pending);
                if fits == 0 {
                    s.log_ino("write", self.ino, || format!("@{pos}+{}", buf.len()), "ENOSPC");
                    return Err(enospc());
                }
                n = fits.min(n);
            }
        }
        let p_short = s.config.p_short_io;
        if n > 1 && SimFs::chance(&mut s, p_short) {
            let asked = n;
            n = s.rng.random_range(1..n);
            s.record_ino(FaultKind::ShortIo, self.ino, pos + n as u64, (asked - n) as u64, Hit::None);
        }
        let data = buf.get(..n).unwrap_or_default().to_vec();
        let Some(inode) = s.inodes.get_mut(&self.ino) else {
            return Err(eio("inode vanished"));
        };
        let old_len = inode.cached.len() as u64;
        state::write_into(&mut inode.cached, pos, &data);
        let new_len = inode.cached.len() as u64;
        // A rewritten sector is remapped: it reads fine again.
        let first = pos / sector;
        let last = (pos + n as u64 - 1) / sector;
        let bad: Vec<u64> = inode.bad_sectors.range(first..=last).copied().collect();
        for b in bad {
            inode.bad_sectors.remove(&b);
        }
        inode.pending.push(Pending::Write { pos, data });
        s.resized(self.ino, old_len, new_len);
        s.log_ino("write", self.ino, || format!("@{pos}+{}", buf.len()), &n.to_string());
        Ok(n)
    }

    fn len(&self) -> io::Result<u64> {
        let s = self.live()?;
        Ok(s.inodes.get(&self.ino).map_or(0, |i| i.cached.len() as u64))
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "file opened read-only"));
        }
        let mut s = self.live()?;
        s.power_step()?;
        let cur = s.inodes.get(&self.ino).map_or(0, |i| i.cached.len() as u64);
        if len > cur {
            let sector = s.config.sector_bytes.max(1);
            let grow = len.div_ceil(sector) * sector - cur.div_ceil(sector) * sector;
            if grow > s.free_bytes() {
                s.record_ino(FaultKind::Enospc, self.ino, cur, len - cur, Hit::Pending);
                return Err(enospc());
            }
        }
        let Some(inode) = s.inodes.get_mut(&self.ino) else {
            return Err(eio("inode vanished"));
        };
        let old_len = inode.cached.len() as u64;
        inode.cached.resize(len as usize, 0);
        inode.pending.push(Pending::SetLen(len));
        s.resized(self.ino, old_len, len);
        s.log_ino("set_len", self.ino, || len.to_string(), "ok");
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut s = self.live()?;
        s.power_step()?;
        if s.config.canary == Some(Canary::SyncNoop) {
            let n = s.inodes.get(&self.ino).map_or(0, |i| i.pending.len());
            if n > 0 {
                s.record_ino(FaultKind::Lie(Canary::SyncNoop), self.ino, 0, n as u64, Hit::Pending);
            }
            return Ok(());
        }
        let p_eio = s.config.p_sync_eio;
        let n_pending = s.inodes.get(&self.ino).map_or(0, |i| i.pending.len());
        if n_pending > 0 && SimFs::chance(&mut s, p_eio) {
            // Writeback failed part-way: a prefix reached the disk, the rest
            // is dropped and its pages are marked clean.
            let k = s.rng.random_range(0..n_pending);
            let Some(inode) = s.inodes.get_mut(&self.ino) else {
                return Err(eio("inode vanished"));
            };
            let ops: Vec<Pending> = inode.pending.drain(..).collect();
            for op in ops.iter().take(k) {
                state::apply(&mut inode.durable, op);
            }
            let (lo, hi) = span(ops.get(k..).unwrap_or_default());
            s.record_ino(FaultKind::SyncEio, self.ino, lo, hi - lo, Hit::Pending);
            s.log_ino("sync", self.ino, String::new, "EIO");
            return Err(eio("fsync failed; dirty pages dropped"));
        }
        let sector = s.config.sector_bytes.max(1);
        let p_mis = s.config.p_misdirected_write;
        let misdirect = n_pending > 0 && SimFs::chance(&mut s, p_mis);
        let pick = if misdirect {
            let ps: Vec<(u64, usize)> = s
                .inodes
                .get(&self.ino)
                .map(|i| {
                    i.pending
                        .iter()
                        .filter_map(|op| match op {
                            Pending::Write { pos, data } if !data.is_empty() => Some((*pos, data.len())),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            if ps.is_empty() { None } else { Some(ps.get(s.rng.random_range(0..ps.len())).map_or(0, |p| p.0)) }
        } else {
            None
        };
        let Some(inode) = s.inodes.get_mut(&self.ino) else {
            return Err(eio("inode vanished"));
        };
        // Only a misdirected write needs to know what was durable before.
        let before = if pick.is_some() { inode.durable.clone() } else { Vec::new() };
        for op in inode.pending.drain(..) {
            state::apply(&mut inode.durable, &op);
        }
        if let Some(wpos) = pick {
            // The sector holding the write's first byte lands elsewhere.
            let sec = wpos / sector;
            let from = (sec * sector) as usize;
            let to_len = inode.durable.len();
            let n_sectors = (to_len as u64).div_ceil(sector).max(1);
            let data: Vec<u8> =
                inode.durable.get(from..(from + sector as usize).min(to_len)).unwrap_or_default().to_vec();
            // Its own place keeps what was durable there before.
            let old: Vec<u8> = (from..from + data.len()).map(|i| before.get(i).copied().unwrap_or(0)).collect();
            state::write_into(&mut inode.durable, from as u64, &old);
            let target = s.rng.random_range(0..n_sectors) * sector;
            let Some(inode) = s.inodes.get_mut(&self.ino) else {
                return Err(eio("inode vanished"));
            };
            let room = to_len.saturating_sub(target as usize).min(data.len());
            state::write_into(&mut inode.durable, target, data.get(..room).unwrap_or_default());
            s.record_ino(FaultKind::Misdirected { to: target }, self.ino, from as u64, data.len() as u64, Hit::Durable);
        }
        s.log_ino("sync", self.ino, String::new, "ok");
        Ok(())
    }
}

/// The byte range covered by some pending changes.
fn span(ops: &[Pending]) -> (u64, u64) {
    let mut lo = u64::MAX;
    let mut hi = 0;
    for op in ops {
        let (a, b) = match op {
            Pending::Write { pos, data } => (*pos, pos + data.len() as u64),
            Pending::SetLen(l) => (*l, *l),
        };
        lo = lo.min(a);
        hi = hi.max(b);
    }
    if lo > hi { (0, 0) } else { (lo, hi) }
}

impl FileSystem for SimFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>> {
        let path = normalize(path);
        let mut s = self.lock();
        if mode == OpenMode::CreateNew {
            s.power_step()?;
        } else {
            s.power_check()?;
        }
        let boot = s.boot;
        let writable = mode != OpenMode::Read;
        match (s.lookup(&path), mode) {
            (Some(Node::Dir), _) => Err(io::Error::new(io::ErrorKind::IsADirectory, "is a directory")),
            (Some(Node::File(_)), OpenMode::CreateNew) => Err(io::Error::from(io::ErrorKind::AlreadyExists)),
            (Some(Node::File(ino)), _) => {
                s.log("open", &path, || format!("{mode:?}"), "ok");
                Ok(Arc::new(SimFile { fs: self.clone(), ino, boot, writable }))
            }
            (None, OpenMode::CreateNew) => {
                let (parent, name) = split(&path).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
                if s.lookup(Path::new(&parent)) != Some(Node::Dir) {
                    return Err(io::Error::from(io::ErrorKind::NotFound));
                }
                if s.free_bytes() < s.config.sector_bytes.max(1) {
                    s.record(FaultRecord {
                        kind: FaultKind::Enospc,
                        path: path.to_path_buf(),
                        pos: 0,
                        len: 0,
                        hit: Hit::Pending,
                    });
                    return Err(enospc());
                }
                let ino = s.next_ino;
                s.next_ino += 1;
                s.inodes.insert(ino, Inode::default());
                if let Some(d) = s.dirs.get_mut(&parent) {
                    d.cached.insert(name.clone(), Node::File(ino));
                    d.pending.push(DirOp::Link(name, Node::File(ino)));
                }
                s.link(ino);
                s.log("create", &path, String::new, "ok");
                Ok(Arc::new(SimFile { fs: self.clone(), ino, boot, writable }))
            }
            (None, _) => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let path = normalize(path);
        let mut s = self.lock();
        s.power_step()?;
        let mut cur = "/".to_owned();
        for c in path.components().skip(1) {
            let name = c.as_os_str().to_string_lossy().into_owned();
            let next = state::join(&cur, &name);
            match s.lookup(Path::new(&next)) {
                Some(Node::Dir) => {}
                Some(Node::File(_)) => {
                    return Err(io::Error::new(io::ErrorKind::NotADirectory, "a file is in the way"));
                }
                None => {
                    if let Some(d) = s.dirs.get_mut(&cur) {
                        d.cached.insert(name.clone(), Node::Dir);
                        d.pending.push(DirOp::Link(name, Node::Dir));
                    }
                    s.dirs.insert(next.clone(), Dir::default());
                }
            }
            cur = next;
        }
        s.log("mkdir", &path, String::new, "ok");
        Ok(())
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let path = normalize(path);
        let s = self.lock();
        s.power_check()?;
        match s.lookup(&path) {
            Some(Node::Dir) => {
                Ok(s.dirs.get(&*path.to_string_lossy()).map(|d| d.cached.keys().cloned().collect()).unwrap_or_default())
            }
            Some(Node::File(_)) => Err(io::Error::new(io::ErrorKind::NotADirectory, "not a directory")),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from, to) = (normalize(from), normalize(to));
        let mut s = self.lock();
        s.power_step()?;
        let (pf, nf) = split(&from).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let (pt, nt) = split(&to).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        if pf != pt {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "rename across directories is not simulated"));
        }
        let Some(d) = s.dirs.get_mut(&pf) else {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        };
        let Some(node) = d.cached.remove(&nf) else {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        };
        let replaced = d.cached.insert(nt.clone(), node);
        d.pending.push(DirOp::Rename(nf, nt));
        if let Some(Node::File(old)) = replaced {
            s.unlink(old);
        }
        s.log("rename", &from, || to.display().to_string(), "ok");
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let path = normalize(path);
        let mut s = self.lock();
        s.power_step()?;
        let (parent, name) = split(&path).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let Some(d) = s.dirs.get_mut(&parent) else {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        };
        match d.cached.get(&name) {
            Some(&Node::File(ino)) => {
                d.cached.remove(&name);
                d.pending.push(DirOp::Unlink(name));
                s.unlink(ino);
            }
            Some(Node::Dir) => {
                return Err(io::Error::new(io::ErrorKind::IsADirectory, "is a directory"));
            }
            None => return Err(io::Error::from(io::ErrorKind::NotFound)),
        }
        s.log("remove", &path, String::new, "ok");
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let path = normalize(path);
        let mut s = self.lock();
        s.power_step()?;
        if s.lookup(&path) != Some(Node::Dir) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        let key = path.to_string_lossy().into_owned();
        let n = s.dirs.get(&key).map_or(0, |d| d.pending.len());
        if n == 0 {
            return Ok(());
        }
        if s.config.canary == Some(Canary::DirSyncNoop) {
            s.record(FaultRecord {
                kind: FaultKind::Lie(Canary::DirSyncNoop),
                path: path.into_owned(),
                pos: 0,
                len: n as u64,
                hit: Hit::Pending,
            });
            return Ok(());
        }
        let p = s.config.p_dir_sync_eio;
        if SimFs::chance(&mut s, p) {
            // Directory changes are journaled metadata: a failed commit
            // leaves them pending (a crash may still lose them; a later
            // successful sync makes them durable). Unlike file data, no
            // filesystem marks them clean and then reports success.
            s.record(FaultRecord {
                kind: FaultKind::DirSyncEio,
                path: path.to_path_buf(),
                pos: 0,
                len: n as u64,
                hit: Hit::Pending,
            });
            return Err(eio("directory fsync failed"));
        }
        if let Some(d) = s.dirs.get_mut(&key) {
            for op in d.pending.drain(..) {
                state::apply_dir_op(&mut d.durable, &op);
            }
        }
        s.log("sync_dir", &path, String::new, "ok");
        Ok(())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let s = self.lock();
        s.power_check()?;
        Ok(s.lookup(&normalize(path)).is_some())
    }

    /// Locks are kept in memory (no lock file is created): held until the
    /// guard is dropped or the machine crashes.
    fn try_lock(&self, path: &Path) -> io::Result<Box<dyn seglog_core::FileLock>> {
        let path = normalize(path);
        let mut s = self.lock();
        s.power_check()?;
        let (parent, _) = split(&path).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        if s.lookup(Path::new(&parent)) != Some(Node::Dir) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        let boot = s.boot;
        if s.locks.get(&*path).is_some_and(|&(_, b)| b == boot) {
            s.log("lock", &path, String::new, "WouldBlock");
            return Err(io::Error::from(io::ErrorKind::WouldBlock));
        }
        let id = s.next_lock;
        s.next_lock += 1;
        s.locks.insert(path.to_path_buf(), (id, boot));
        s.log("lock", &path, String::new, "ok");
        Ok(Box::new(SimLock { fs: self.clone(), path: path.into_owned(), id }))
    }

    fn boot_id(&self) -> Option<String> {
        Some(format!("sim-{}", self.lock().boot))
    }
}
