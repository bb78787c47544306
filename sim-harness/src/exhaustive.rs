//! Exhaustive crash checking for short workloads: after every operation,
//! every disk image a crash could legally leave (sim-fs's enumeration) is
//! recovered and checked, not just a random sample.

use std::path::Path;
use std::sync::Arc;

use log_core::{Config, Entry, FixedClock, Log, Options, Record, SyncPolicy};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim_fs::{FaultConfig, SimFs};

use crate::model::Model;
use crate::run::LOG_DIR;
use crate::scenario::value_bytes;

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

fn options(fs: &SimFs, config: &Config) -> Options {
    Options { fs: fs.shared(), clock: Arc::new(FixedClock(1)), config: config.clone(), read_only: false }
}

/// Checks one crash image against the model.
fn check_image(fs: SimFs, config: &Config, model: &Model) -> Result<(), String> {
    let log = Log::open_with(Path::new(LOG_DIR), options(&fs, config))
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
    // Recovery of the recovered image is idempotent.
    drop(log);
    let again = Log::open_with(Path::new(LOG_DIR), options(&fs, config)).map_err(|e| format!("second open: {e}"))?;
    if again.next_offset() as usize != n {
        return Err(format!("recovery not idempotent: {n} then {}", again.next_offset()));
    }
    Ok(())
}

/// Runs `ops` operations from `seed` and checks every crash image (up to
/// `limit` per point) after each one.
pub fn run_exhaustive(seed: u64, ops: u32, limit: usize) -> Result<ExhaustiveReport, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xE4A0_5717);
    let fs = SimFs::new(seed, FaultConfig { sector_bytes: 512, ..FaultConfig::default() });
    let config = Config {
        segment_bytes_max: 4096,
        index_interval_bytes: 256,
        write_buffer_bytes: 4096,
        sync: SyncPolicy::Manual,
        ..Config::default()
    };
    let mut log = Log::open_with(Path::new(LOG_DIR), options(&fs, &config)).map_err(|e| e.to_string())?;
    let mut model = Model::default();
    let mut report = ExhaustiveReport::default();
    for step in 0..ops {
        match rng.random_range(0..10u8) {
            0..=5 => {
                let off = log.next_offset();
                let len = rng.random_range(0..300);
                let rec = Record {
                    offset: off,
                    timestamp_ms: 1,
                    key: None,
                    value: value_bytes(seed, off, len),
                    tombstone: false,
                };
                log.append(Entry::new(&rec.value)).map_err(|e| format!("step {step}: append: {e}"))?;
                model.accepted.push(rec);
            }
            6..=7 => {
                log.sync().map_err(|e| format!("step {step}: sync: {e}"))?;
                model.synced();
            }
            8 => {
                log.roll().map_err(|e| format!("step {step}: roll: {e}"))?;
                model.synced();
            }
            _ => {
                // The process exits without a sync: its buffered bytes reach
                // the "kernel" unsynced, so the crash images at this point
                // include partial, unsynced writes. Then it restarts.
                drop(log);
                check_point(&fs, &config, &model, limit, seed, step, &mut report)?;
                log = Log::open_with(Path::new(LOG_DIR), options(&fs, &config)).map_err(|e| e.to_string())?;
                if log.next_offset() as usize != model.accepted.len() {
                    return Err(format!("step {step}: a restart without a crash lost records"));
                }
                model.synced();
            }
        }
        check_point(&fs, &config, &model, limit, seed, step, &mut report)?;
    }
    Ok(report)
}

fn check_point(
    fs: &SimFs,
    config: &Config,
    model: &Model,
    limit: usize,
    seed: u64,
    step: u32,
    report: &mut ExhaustiveReport,
) -> Result<(), String> {
    let Some(images) = fs.crash_images(limit, seed ^ u64::from(step)) else {
        report.points_skipped += 1;
        return Ok(());
    };
    report.points += 1;
    for (i, img) in images.into_iter().enumerate() {
        check_image(img, config, model).map_err(|e| format!("seed {seed} step {step} image {i}: {e}"))?;
        report.images += 1;
    }
    Ok(())
}
