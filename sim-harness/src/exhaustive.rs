//! Exhaustive crash checking for short workloads: right before every file
//! and directory sync (when the most is pending), every disk image a crash
//! could legally leave (sim-fs's enumeration) is recovered and checked
//! against the model, not just a random sample.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seglog_core::{Config, FileHandle, FileSystem, FixedClock, Log, OpenMode, Options, SyncPolicy};
use sim_fs::{FaultConfig, SimFs};

use crate::model::Model;
use crate::op::Op;
use crate::run::LOG_DIR;
use crate::scenario::{Params, Scenario};
use crate::world::World;

/// What an exhaustive run covered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExhaustiveReport {
    /// Points (after an operation) at which images were enumerated.
    pub points: u64,
    /// Points skipped because they had more than `limit` images.
    pub points_skipped: u64,
    /// Crash images recovered and checked.
    pub images: u64,
}

/// Crash images captured at one point, with the model's bounds then.
#[derive(Debug)]
struct Capture {
    images: Vec<sim_fs::Image>,
    durable: usize,
    accepted: usize,
    what: &'static str,
}

#[derive(Debug, Default)]
struct HookState {
    /// The model's (durable, accepted) bounds for the operation in progress.
    bounds: (usize, usize),
    captures: Vec<Capture>,
    skipped: u64,
    limit: usize,
}

/// A [`SimFs`] that, right before every file or directory sync (the
/// moments when the most is pending), records every disk image a crash
/// could leave.
#[derive(Debug, Clone)]
struct Hooked {
    fs: SimFs,
    state: Arc<Mutex<HookState>>,
}

impl Hooked {
    fn capture(&self, what: &'static str) {
        let mut st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match self.fs.crash_image_list(st.limit) {
            Some(images) => {
                let (durable, accepted) = st.bounds;
                st.captures.push(Capture { images, durable, accepted, what });
            }
            None => st.skipped += 1,
        }
    }
}

#[derive(Debug)]
struct HookedFile {
    inner: Arc<dyn FileHandle>,
    fs: Hooked,
}

impl FileHandle for HookedFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.inner.read_at(buf, pos)
    }
    fn write_at(&self, buf: &[u8], pos: u64) -> io::Result<usize> {
        self.inner.write_at(buf, pos)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync(&self) -> io::Result<()> {
        self.fs.capture("file sync");
        self.inner.sync()
    }
}

impl FileSystem for Hooked {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>> {
        Ok(Arc::new(HookedFile { inner: self.fs.open(path, mode)?, fs: self.clone() }))
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.fs.create_dir_all(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.fs.read_dir(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.fs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.fs.remove_file(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.capture("directory sync");
        self.fs.sync_dir(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.fs.exists(path)
    }
    fn try_lock(&self, path: &Path) -> io::Result<Box<dyn seglog_core::FileLock>> {
        self.fs.try_lock(path)
    }
    fn boot_id(&self) -> Option<String> {
        self.fs.boot_id()
    }
}

fn options(fs: Arc<dyn FileSystem>, config: &Config) -> Options {
    Options { fs, clock: Arc::new(FixedClock(1)), config: config.clone(), read_only: false }
}

/// Checks one crash image against the model's bounds.
fn check_image(fs: SimFs, config: &Config, model: &Model) -> Result<(), String> {
    let log = Log::open_with(Path::new(LOG_DIR), options(fs.shared(), config))
        .map_err(|e| format!("a legal crash image does not open: {e}"))?;
    let n = log.next_offset() as usize;
    model.check_recovered_len(n)?;
    for (i, rec) in log.iter(..).enumerate() {
        let rec = rec.map_err(|e| format!("a legal crash image has an unreadable record: {e}"))?;
        if rec.offset != i as u64 {
            return Err(format!("offset {} where {i} was due", rec.offset));
        }
        model.check_record(&rec)?;
    }
    // Recovering the recovered image again finds the same log.
    drop(log);
    let again =
        Log::open_with(Path::new(LOG_DIR), options(fs.shared(), config)).map_err(|e| format!("second open: {e}"))?;
    if again.next_offset() as usize != n {
        return Err(format!("recovery not idempotent: {n} then {}", again.next_offset()));
    }
    Ok(())
}

/// Runs `ops` operations from `seed` through the simulator's executor
/// (appends, syncs, rolls and process restarts, every result checked as in
/// a seed); right before every sync, enumerates every crash image (up to
/// `limit` per point) and checks recovery on each.
pub fn run_exhaustive(seed: u64, ops: u32, limit: usize) -> Result<ExhaustiveReport, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xE4A0_5717);
    let config = Config {
        segment_bytes_max: 4096,
        index_interval_bytes: 256,
        write_buffer_bytes: 4096,
        sync: SyncPolicy::Manual,
        ..Config::default()
    };
    let scn = Scenario::new(seed, ops);
    let mut params = Params::derive(&scn)?;
    params.config = config.clone();
    params.value_max = 300;
    params.key_space = 0;
    params.compaction = None;
    let mut w = World::new(scn, params, FaultConfig { sector_bytes: 512, ..FaultConfig::default() }, false);
    w.phase_end = u32::MAX;
    let state = Arc::new(Mutex::new(HookState { limit, ..HookState::default() }));
    w.fs_view = Some(Arc::new(Hooked { fs: w.fs.clone(), state: Arc::clone(&state) }));
    let set_bounds = |durable: usize, accepted: usize| {
        state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).bounds = (durable, accepted);
    };
    w.recover(false);
    for step in 0..ops {
        let op = match rng.random_range(0..10u8) {
            0..=5 => Op::Append { n: 1 },
            6..=7 => Op::Sync,
            8 => Op::Roll,
            // The process exits without a sync (its buffer reaches the page
            // cache unsynced) and restarts; recovery syncs.
            _ => Op::ProcessRestart,
        };
        set_bounds(w.model.durable, w.model.accepted.len() + op.appends());
        w.ops_done += 1;
        w.exec(0, op);
        if let Some(f) = &w.rec.failure {
            return Err(format!("seed {seed}, step {step} ({op:?}): {f}"));
        }
    }
    let model = std::mem::take(&mut w.model);
    let st = std::mem::take(&mut *state.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    let mut report = ExhaustiveReport { points_skipped: st.skipped, ..ExhaustiveReport::default() };
    for (pi, cap) in st.captures.into_iter().enumerate() {
        report.points += 1;
        let bounds = Model {
            accepted: model.accepted.get(..cap.accepted).unwrap_or_default().to_vec(),
            durable: cap.durable,
            last_batch_start: cap.durable,
            ..Model::default()
        };
        for (i, img) in cap.images.iter().enumerate() {
            let fs = SimFs::from_image(img, seed ^ i as u64, FaultConfig::default());
            check_image(fs, &config, &bounds)
                .map_err(|e| format!("seed {seed}, crash point {pi} (before a {}), image {i}: {e}", cap.what))?;
            report.images += 1;
        }
    }
    Ok(report)
}
