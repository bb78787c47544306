//! seglog next to its peers — commitlog 0.2, okaywal 0.3, raft-engine 0.4 —
//! and a raw `std::fs` loop, on the same workloads, in the same rounds.
//!
//! Each round runs the raw loop first, then every system in a shuffled
//! order, then the raw loop again; a system's ratio for the round is its
//! throughput divided by the mean of that round's two raw runs. The table
//! prints, per workload and system, the median ratio over the rounds and
//! its min–max. Run: `cargo run --release -- [--rounds N] [--quick]`
//! (from `peer-bench/`). What each peer does for durability is printed
//! under the table (see also the README's "Peers" section): the ratios
//! compare the calls a user makes, not equal guarantees.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "benchmark harness: any failure aborts the run loudly"
)]

#[path = "../../log-core/benches/common/loops.rs"]
mod loops;
mod peers;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use seglog_core::inspect::RECORD_OVERHEAD;

/// A write workload: `n` records of `len` bytes, `batch` per append call
/// (1: one call each), one sync at the end.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    pub n: u64,
    pub len: usize,
    pub batch: usize,
}

/// The systems, by name; `raw` is the baseline.
pub const SYSTEMS: [&str; 4] = ["seglog", "commitlog", "okaywal", "raft-engine"];

/// The raw write loop for `w`: seglog's frame bytes, one fdatasync at the end.
fn raw_write(path: &Path, w: Workload) -> Duration {
    loops::raw_write(path, w.n, RECORD_OVERHEAD + w.len, None, true)
}

/// Fisher–Yates with a fixed xorshift: a different order every round,
/// the same orders every run.
fn shuffle<T>(v: &mut [T], seed: &mut u64) {
    for i in (1..v.len()).rev() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        v.swap(i, (*seed % (i as u64 + 1)) as usize);
    }
}

/// Ratios per (workload, system), over rounds.
#[derive(Default)]
struct Table {
    rows: BTreeMap<(usize, String), Vec<f64>>,
    names: Vec<String>,
}

impl Table {
    fn add(&mut self, workload: usize, system: &str, ratio: f64) {
        self.rows.entry((workload, system.to_string())).or_default().push(ratio);
    }

    fn print(&self) {
        println!("\n{:<52} {:<12} {:>7} {:>15}", "workload", "system", "median", "min–max");
        for ((w, system), ratios) in &self.rows {
            let mut r = ratios.clone();
            r.sort_by(f64::total_cmp);
            let med = r[r.len() / 2];
            println!("{:<52} {:<12} {:>7.2} {:>7.2}–{:<7.2}", self.names[*w], system, med, r[0], r[r.len() - 1]);
        }
    }
}

fn fresh(root: &Path, name: &str) -> PathBuf {
    let p = root.join(name);
    let _ = std::fs::remove_dir_all(&p);
    let _ = std::fs::remove_file(&p);
    p
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let rounds: usize =
        args.iter().position(|a| a == "--rounds").and_then(|i| args.get(i + 1)).map_or(3, |s| s.parse().unwrap());
    let scale = if quick { 10 } else { 1 };
    let root = tempfile::Builder::new().prefix("peer-bench").tempdir_in(std::env::temp_dir()).unwrap();
    println!(
        "peer bench ({}), {rounds} rounds, {} cores; data in {}",
        if quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        root.path().display()
    );
    let writes = [
        Workload { n: 1_000_000 / scale, len: 100, batch: 1 },
        Workload { n: 1_000_000 / scale, len: 100, batch: 100 },
        Workload { n: 1_000_000 / scale, len: 1024, batch: 1 },
    ];
    let mut table = Table::default();
    for w in &writes {
        table.names.push(format!(
            "{} x {} B, {}, one sync at the end",
            w.n,
            w.len,
            if w.batch == 1 { "one call each".to_string() } else { format!("batches of {}", w.batch) }
        ));
    }
    let read_w = table.names.len();
    table.names.push(format!("read all {} x 100 B, every CRC checked", writes[0].n));
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for round in 0..rounds {
        for (wi, w) in writes.iter().enumerate() {
            let raw_path = fresh(root.path(), "raw");
            let raw_a = raw_write(&raw_path, *w);
            let mut order = SYSTEMS.to_vec();
            shuffle(&mut order, &mut seed);
            let mut times = Vec::new();
            for s in &order {
                let dir = fresh(root.path(), s);
                times.push((*s, peers::write(s, &dir, *w)));
                let _ = std::fs::remove_dir_all(&dir);
            }
            let raw_path = fresh(root.path(), "raw");
            let raw_b = raw_write(&raw_path, *w);
            let raw = (raw_a + raw_b) / 2;
            for (s, d) in times {
                table.add(wi, s, raw.as_secs_f64() / d.as_secs_f64());
            }
            println!("round {round}: {} done", table.names[wi]);
        }
        // Reads: each system's log of 100 B records, written once per round,
        // read back with its natural read API (checksums verified).
        let w = writes[0];
        let raw_path = fresh(root.path(), "raw");
        loops::raw_frames(&raw_path, w.n, w.len);
        let (raw_a, n) = loops::raw_read(&raw_path, false);
        assert_eq!(n, w.n);
        let mut readers: Vec<&str> = peers::READERS.to_vec();
        shuffle(&mut readers, &mut seed);
        let mut times = Vec::new();
        for s in &readers {
            let system = s.split(' ').next().unwrap();
            let dir = root.path().join(format!("read-{system}"));
            if !dir.exists() {
                peers::write(system, &dir, Workload { batch: 100, ..w });
            }
            times.push((*s, peers::read(s, &dir, w.n)));
        }
        let (crc_d, _) = loops::raw_read(&raw_path, true);
        times.push(("raw + crc32", crc_d));
        let (raw_b, _) = loops::raw_read(&raw_path, false);
        let raw = (raw_a + raw_b) / 2;
        for (s, d) in times {
            table.add(read_w, s, raw.as_secs_f64() / d.as_secs_f64());
        }
        for s in peers::READERS {
            let _ = std::fs::remove_dir_all(root.path().join(format!("read-{}", s.split(' ').next().unwrap())));
        }
        println!("round {round}: reads done");
    }
    table.print();
    println!("\nratio = the system's throughput ÷ the raw std::fs loop's, in the same round");
    println!("(raw write: the same bytes as seglog's frames through a BufWriter, one fdatasync;");
    println!(" raw read: a BufReader loop over the same frames, no checks; `raw + crc32` adds the check).");
    peers::print_durability();
}
