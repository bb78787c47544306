//! Side-by-side throughput benchmark: each log workload runs next to a raw
//! `std::fs` loop that writes or reads the same bytes in the same process,
//! and the table prints the ratio (log throughput / raw throughput), then
//! the targets of the hot-path issue next to the figures, misses marked.
//!
//! Run: `cargo bench -p seglog-core --bench throughput` (full size, ~12 GB of
//! disk writes; reopen at 256 MB, 1 GB and 4 GB) or `... -- --quick` (a
//! tenth of the sizes, reopen at 256 MB). Baselines: the raw loop writes the
//! log's own frame size per record through a `BufWriter` of the same buffer
//! size as the log, fsyncs where the log does, and reads each frame by its
//! length prefix through a 256 KiB `BufReader` (no checks), or one `pread`
//! per record at known positions. Write workloads run three times each,
//! alternating log and raw, and report the medians; "no fsync" rows stop the
//! clock once everything was handed to the OS (`Log::flush` /
//! `BufWriter::flush`), so they measure the log's own cost rather than the
//! disk. `peer-bench/` runs the same workloads against commitlog, okaywal
//! and raft-engine.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "benchmark harness: any failure should abort the run loudly"
)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use seglog_core::inspect::RECORD_OVERHEAD;
use seglog_core::{Config, Entry, Log};

#[path = "common/loops.rs"]
mod loops;

struct Row {
    name: String,
    log: Duration,
    raw: Duration,
    units: f64,
    unit: &'static str,
}

fn rate(units: f64, d: Duration) -> f64 {
    units / d.as_secs_f64()
}

fn print_rows(rows: &[Row]) {
    println!("{:<44} {:>16} {:>16} {:>8}", "workload", "log", "raw std::fs", "log/raw");
    for r in rows {
        let (l, w) = (rate(r.units, r.log), rate(r.units, r.raw));
        println!("{:<44} {:>12.0} {:<3} {:>12.0} {:<3} {:>8.2}", r.name, l, r.unit, w, r.unit, l / w);
    }
}

fn config() -> Config {
    Config::default()
}

/// How a write workload ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// Hand everything to the OS (one last write), no fsync: measures the
    /// cost of accepting records, not the disk.
    Flush,
    /// fsync at the end (and every `sync_every` records).
    Sync,
}

/// The raw write loop ([`loops::raw_write`]) ending as `end` says.
fn raw_write(path: &Path, n: u64, frame: usize, sync_every: Option<u64>, end: End) -> Duration {
    loops::raw_write(path, n, frame, sync_every, end == End::Sync)
}

fn log_append(dir: &Path, n: u64, len: usize, batch: usize, sync_every: Option<u64>, end: End) -> Duration {
    log_append_with(dir, config(), n, len, batch, sync_every, end)
}

fn log_append_with(
    dir: &Path,
    config: Config,
    n: u64,
    len: usize,
    batch: usize,
    sync_every: Option<u64>,
    end: End,
) -> Duration {
    let v = loops::payload(len, 0);
    let t = Instant::now();
    let mut log = Log::open(dir, config).unwrap();
    let entries: Vec<Entry<'_>> = (0..batch).map(|_| Entry::new(&v)).collect();
    let mut done = 0u64;
    while done < n {
        if batch == 1 {
            log.append(entries[0]).unwrap();
        } else {
            log.append_batch(&entries).unwrap();
        }
        done += batch as u64;
        if let Some(k) = sync_every
            && done.is_multiple_of(k)
        {
            log.sync().unwrap();
        }
    }
    match end {
        End::Flush => log.flush().unwrap(),
        End::Sync => log.sync().unwrap(),
    }
    let d = t.elapsed();
    log.close().unwrap();
    d
}

/// Runs `log` and `raw` three times each, alternating (so neither always
/// goes first into a warm or a busy page cache), and returns the medians.
fn median_pair(mut log: impl FnMut() -> Duration, mut raw: impl FnMut() -> Duration) -> (Duration, Duration) {
    let (mut l, mut r) = (Vec::new(), Vec::new());
    for i in 0..3 {
        if i % 2 == 0 {
            l.push(log());
            r.push(raw());
        } else {
            r.push(raw());
            l.push(log());
        }
    }
    l.sort();
    r.sort();
    (l[1], r[1])
}

fn random_offsets(n: u64, count: u64) -> Vec<u64> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        })
        .collect()
}

/// A target of the hot-path issue and the figure measured for it.
struct Target {
    what: String,
    figure: f64,
    /// `(bound, at_least)`: met when `figure >= bound` (or `<=`).
    bound: f64,
    at_least: bool,
    unit: &'static str,
}

fn print_targets(targets: &[Target]) {
    println!("\n{:<58} {:>10} {:>10}", "target (hot-path issue)", "measured", "target");
    for t in targets {
        let met = if t.at_least { t.figure >= t.bound } else { t.figure <= t.bound };
        let cmp = if t.at_least { "≥" } else { "≤" };
        println!(
            "{:<58} {:>8.2}{:<2} {:>2}{:>6.2}{:<2}  {}",
            t.what,
            t.figure,
            t.unit,
            cmp,
            t.bound,
            t.unit,
            if met { "met" } else { "MISSED" }
        );
    }
}

/// The child of a kill -9 run (`--kill-child DIR`): appends 1 KiB records
/// to the log in DIR, a sync every 1,000, says `ready` once the active
/// segment is nearly full, and goes on appending until it is killed.
fn kill_child(dir: &Path) -> ! {
    let mut log = Log::open(dir, config()).unwrap();
    let v = loops::payload(1024, 1);
    let limit = config().segment_bytes_max - (4 << 20);
    let mut said = false;
    let mut i = 0u64;
    loop {
        log.append(Entry::new(&v)).unwrap();
        i += 1;
        if i.is_multiple_of(1000) {
            log.sync().unwrap();
            if !said && log.segments().last().is_some_and(|s| !s.sealed && s.bytes >= limit) {
                println!("ready");
                std::io::stdout().flush().unwrap();
                said = true;
            }
        }
    }
}

/// Median open time (ms) of the log in `dir` over `times` opens, each
/// closed again (a clean reopen).
fn reopen_clean(dir: &Path, times: usize) -> f64 {
    let mut opens = Vec::new();
    for _ in 0..times {
        let t = Instant::now();
        let log = Log::open(dir, config()).unwrap();
        opens.push(t.elapsed());
        assert!(log.recovery_report().clean);
        log.close().unwrap();
    }
    opens.sort();
    opens[opens.len() / 2].as_secs_f64() * 1e3
}

/// Kills (SIGKILL) a child process appending to `dir` once its active
/// segment is nearly full, then times the recovering open: returns (ms,
/// bytes scanned, ms of a raw sequential read of the active segment).
fn reopen_after_kill(dir: &Path) -> (f64, u64, f64) {
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe)
        .arg("--kill-child")
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    child.kill().unwrap();
    child.wait().unwrap();
    let active_path = Log::open_read_only(dir, config()).unwrap().segments().last().unwrap().path.clone();
    let t = Instant::now();
    let log = Log::open(dir, config()).unwrap();
    let open = t.elapsed();
    assert!(!log.recovery_report().clean);
    let scanned = log.recovery_report().bytes_scanned;
    log.close().unwrap();
    let (raw, _) = raw_seq_read_bytes(&active_path);
    (open.as_secs_f64() * 1e3, scanned, raw.as_secs_f64() * 1e3)
}

fn raw_seq_read_bytes(path: &Path) -> (Duration, u64) {
    let t = Instant::now();
    let mut f = File::open(path).unwrap();
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    (t.elapsed(), total)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--kill-child") {
        kill_child(Path::new(&args[i + 1]));
    }
    let quick = args.iter().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    let root = tempfile::Builder::new().prefix("seglog-bench").tempdir_in(std::env::temp_dir()).unwrap();
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    println!(
        "seglog throughput benchmark ({}), {} cores; data in {}",
        if quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        root.path().display()
    );

    // 1. 1,000,000 appends of 100 B: one call each or in batches of 100,
    //    one sync at the end; and without the sync (the log's own cost).
    let n = 1_000_000 / scale;
    let frame = RECORD_OVERHEAD + 100;
    let dir = root.path().join("append100");
    let raw_path = root.path().join("raw100");
    for (batch, target) in [(1, 0.80), (100, 0.90)] {
        let (log, raw) = median_pair(
            || {
                let _ = std::fs::remove_dir_all(&dir);
                log_append(&dir, n, 100, batch, None, End::Sync)
            },
            || raw_write(&raw_path, n, frame, None, End::Sync),
        );
        let how = if batch == 1 { "one call each".to_string() } else { format!("batches of {batch}") };
        let name = format!("append {n} x 100 B, {how}, one sync at the end");
        targets.push(Target {
            what: name.clone(),
            figure: raw.as_secs_f64() / log.as_secs_f64(),
            bound: target,
            at_least: true,
            unit: "",
        });
        rows.push(Row { name, log, raw, units: n as f64, unit: "r/s" });
    }
    let (log, raw) = median_pair(
        || {
            let _ = std::fs::remove_dir_all(&dir);
            log_append(&dir, n, 100, 1, None, End::Flush)
        },
        || raw_write(&raw_path, n, frame, None, End::Flush),
    );
    rows.push(Row {
        name: format!("append {n} x 100 B, no fsync (rolls fsync)"),
        log,
        raw,
        units: n as f64,
        unit: "r/s",
    });

    // 2. Sequential read of everything written in 1, borrowing and owning,
    //    against a raw loop over frames of the same size.
    loops::raw_frames(&raw_path, n, 100);
    for (owned, target) in [(false, 0.80), (true, 0.75)] {
        let (log_d, raw_d) = median_pair(
            || {
                let (d, got) = loops::seglog_scan(&dir, owned);
                assert_eq!(got, n);
                d
            },
            || {
                let (d, got) = loops::raw_read(&raw_path, false);
                assert_eq!(got, n);
                d
            },
        );
        let how = if owned { "iter(), owned records" } else { "reader(), borrowed" };
        let name = format!("read all {n} x 100 B, every CRC checked, {how}");
        targets.push(Target {
            what: name.clone(),
            figure: raw_d.as_secs_f64() / log_d.as_secs_f64(),
            bound: target,
            at_least: true,
            unit: "",
        });
        rows.push(Row { name, log: log_d, raw: raw_d, units: n as f64, unit: "r/s" });
    }

    // 3. Random reads by offset.
    let count = 200_000 / scale;
    let offs = random_offsets(n, count);
    let log_r = Log::open_read_only(&dir, config()).unwrap();
    let t = Instant::now();
    for &o in &offs {
        std::hint::black_box(log_r.read(o).unwrap());
    }
    let log_d = t.elapsed();
    drop(log_r);
    let f = File::open(&raw_path).unwrap();
    let mut buf = vec![0u8; frame];
    let t = Instant::now();
    for &o in &offs {
        f.read_exact_at(&mut buf, o * frame as u64).unwrap();
        std::hint::black_box(buf.to_vec());
    }
    let raw_d = t.elapsed();
    rows.push(Row {
        name: format!("random reads by offset ({count})"),
        log: log_d,
        raw: raw_d,
        units: count as f64,
        unit: "r/s",
    });
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_file(&raw_path).unwrap();

    // 4. 1,000,000 appends of 1 KiB, one call each, one sync at the end
    //    (1 GB: sixteen 64 MiB rolls, each fsyncing its segment).
    let n = 1_000_000 / scale;
    let dir = root.path().join("append1k");
    let raw_path = root.path().join("raw1k");
    let (log, raw) = median_pair(
        || {
            let _ = std::fs::remove_dir_all(&dir);
            log_append(&dir, n, 1024, 1, None, End::Sync)
        },
        || raw_write(&raw_path, n, RECORD_OVERHEAD + 1024, None, End::Sync),
    );
    let name = format!("append {n} x 1 KiB, one call each, one sync at the end");
    targets.push(Target {
        what: name.clone(),
        figure: raw.as_secs_f64() / log.as_secs_f64(),
        bound: 0.95,
        at_least: true,
        unit: "",
    });
    rows.push(Row { name, log, raw, units: n as f64, unit: "r/s" });
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_file(&raw_path).unwrap();

    // 5. Durable appends: a sync every 100 records.
    let n = 100_000 / scale;
    let dir = root.path().join("durable");
    let raw_path = root.path().join("rawdurable");
    let (log, raw) = median_pair(
        || {
            let _ = std::fs::remove_dir_all(&dir);
            log_append(&dir, n, 100, 1, Some(100), End::Sync)
        },
        || raw_write(&raw_path, n, frame, Some(100), End::Sync),
    );
    rows.push(Row { name: format!("append {n} x 100 B, fsync every 100"), log, raw, units: n as f64, unit: "r/s" });
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_file(&raw_path).unwrap();

    print_rows(&rows);

    // 6. Reopen of a large log, after a clean close and after kill -9 of a
    //    process appending to it, at 256 MB, 1 GB and 4 GB.
    let sizes: &[u64] = if quick { &[256 << 20] } else { &[256 << 20, 1 << 30, 4 << 30] };
    let dir = root.path().join("big");
    let mut written = 0u64;
    println!(
        "\n{:>9} {:>9} {:>16} {:>16} {:>12} {:>14}",
        "log", "segments", "clean open (ms)", "after kill (ms)", "scanned MB", "raw read (ms)"
    );
    for &size in sizes {
        let more = size.saturating_sub(written) / (RECORD_OVERHEAD as u64 + 1024);
        log_append(&dir, more, 1024, 64, None, End::Sync);
        let clean = reopen_clean(&dir, 5);
        let (killed, scanned, raw) = reopen_after_kill(&dir);
        let segs = Log::open_read_only(&dir, config()).unwrap().segments();
        let bytes: u64 = segs.iter().map(|s| s.bytes).sum();
        println!(
            "{:>6.2} GB {:>9} {:>16.3} {:>16.1} {:>12.1} {:>14.1}",
            bytes as f64 / 1e9,
            segs.len(),
            clean,
            killed,
            scanned as f64 / 1e6,
            raw
        );
        targets.push(Target {
            what: format!("reopen after a clean close, {:.2} GB", bytes as f64 / 1e9),
            figure: clean,
            bound: 2.0,
            at_least: false,
            unit: "ms",
        });
        // The kill grew the log by about one segment: count it.
        written = bytes;
    }
    print_targets(&targets);
    println!("(group-commit targets: `cargo bench -p seglog-core --bench group_commit`)");
}
