//! Side-by-side throughput benchmark: each log workload runs next to a raw
//! `std::fs` loop that writes or reads the same bytes in the same process,
//! and the table prints the ratio (log throughput / raw throughput).
//!
//! Run: `cargo bench -p log-core --bench throughput` (full size, ~2.5 GB of
//! disk writes) or `... -- --quick` (a tenth of the sizes, reopen on 256 MB).
//! Baselines: the raw loop writes the log's own frame size per record through
//! a `BufWriter` of the same buffer size as the log (the fastest plain way to
//! write those bytes), fsyncs where the log does, and reads with large
//! sequential `read`s or one `pread` per record at known positions. Write
//! workloads run three times each, alternating log and raw, and report the
//! medians; "no fsync" rows stop the clock once everything was handed to the
//! OS (`Log::flush` / `BufWriter::flush`), so they measure the log's own
//! cost rather than the disk.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "benchmark harness: any failure should abort the run loudly"
)]

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use log_core::inspect::RECORD_OVERHEAD;
use log_core::{Config, Entry, Log};

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

fn payload(len: usize, i: u64) -> Vec<u8> {
    (0..len).map(|j| (i as usize + j) as u8).collect()
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

fn raw_write(path: &Path, n: u64, frame: usize, sync_every: Option<u64>, end: End) -> Duration {
    let buf_bytes = config().write_buffer_bytes as usize;
    let rec = payload(frame, 0);
    let t = Instant::now();
    let f = File::create(path).unwrap();
    let mut w = BufWriter::with_capacity(buf_bytes, f);
    for i in 0..n {
        w.write_all(&rec).unwrap();
        if let Some(k) = sync_every
            && (i + 1) % k == 0
        {
            w.flush().unwrap();
            w.get_ref().sync_data().unwrap();
        }
    }
    w.flush().unwrap();
    if end == End::Sync {
        w.get_ref().sync_data().unwrap();
    }
    t.elapsed()
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
    let v = payload(len, 0);
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

fn raw_seq_read(path: &Path) -> (Duration, u64) {
    let t = Instant::now();
    let mut f = File::open(path).unwrap();
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    let mut sum = 0u64;
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
        sum = sum.wrapping_add(u64::from(buf[n - 1]));
    }
    std::hint::black_box(sum);
    (t.elapsed(), total)
}

/// Scans with the borrowing reader (`owned: false`) or the owning iterator.
fn log_seq_read(dir: &Path, owned: bool) -> (Duration, u64) {
    let log = Log::open_read_only(dir, config()).unwrap();
    let t = Instant::now();
    let mut n = 0u64;
    let mut sum = 0u64;
    if owned {
        for r in log.iter(..) {
            sum = sum.wrapping_add(r.unwrap().value.len() as u64);
            n += 1;
        }
    } else {
        let mut reader = log.reader(..);
        while let Some(r) = reader.next() {
            sum = sum.wrapping_add(r.unwrap().value.len() as u64);
            n += 1;
        }
    }
    std::hint::black_box(sum);
    (t.elapsed(), n)
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

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    let root = tempfile::Builder::new().prefix("seglog-bench").tempdir_in(std::env::temp_dir()).unwrap();
    let mut rows = Vec::new();
    println!(
        "seglog throughput benchmark ({}), {} cores; data in {}",
        if quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        root.path().display()
    );

    // 1. 1,000,000 single-record appends of 100 B (to the page cache).
    let n = 1_000_000 / scale;
    let frame = RECORD_OVERHEAD + 100;
    let dir = root.path().join("append100");
    let raw_path = root.path().join("raw100");
    let (log, raw) = median_pair(
        || {
            let _ = std::fs::remove_dir_all(&dir);
            log_append(&dir, n, 100, 1, None, End::Flush)
        },
        || raw_write(&raw_path, n, frame, None, End::Flush),
    );
    rows.push(Row {
        name: format!("append {n} x 100 B (no fsync; rolls fsync)"),
        log,
        raw,
        units: n as f64,
        unit: "r/s",
    });
    // The same with segments large enough not to roll: a roll seals the
    // segment, which fsyncs it; this row isolates the per-record cost.
    let big = Config { segment_bytes_max: 1 << 30, ..config() };
    let (log, raw) = median_pair(
        || {
            let _ = std::fs::remove_dir_all(&dir);
            log_append_with(&dir, big.clone(), n, 100, 1, None, End::Flush)
        },
        || raw_write(&raw_path, n, frame, None, End::Flush),
    );
    rows.push(Row { name: format!("append {n} x 100 B (no fsync, no roll)"), log, raw, units: n as f64, unit: "r/s" });
    let (log, raw) = median_pair(
        || {
            let _ = std::fs::remove_dir_all(&dir);
            log_append(&dir, n, 100, 1, None, End::Sync)
        },
        || raw_write(&raw_path, n, frame, None, End::Sync),
    );
    rows.push(Row { name: format!("append {n} x 100 B + fsync at end"), log, raw, units: n as f64, unit: "r/s" });

    // 2. Sequential read of everything written in 1, borrowing and owning.
    let (raw_d, bytes) = raw_seq_read(&root.path().join("raw100"));
    assert_eq!(bytes, n * frame as u64);
    for owned in [false, true] {
        let (log_d, got) = log_seq_read(&dir, owned);
        assert_eq!(got, n);
        let how = if owned { "iter(), owned records" } else { "reader(), borrowed" };
        rows.push(Row {
            name: format!("sequential read of {n} x 100 B, {how}"),
            log: log_d,
            raw: raw_d,
            units: n as f64,
            unit: "r/s",
        });
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
    let f = File::open(root.path().join("raw100")).unwrap();
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
    std::fs::remove_file(root.path().join("raw100")).unwrap();

    // 4. 1 KiB records in batches of 64 (to the page cache).
    let n = 262_144 / scale;
    let dir = root.path().join("batch1k");
    let raw_path = root.path().join("raw1k");
    let (log, raw) = median_pair(
        || {
            let _ = std::fs::remove_dir_all(&dir);
            log_append(&dir, n, 1024, 64, None, End::Flush)
        },
        || raw_write(&raw_path, n, RECORD_OVERHEAD + 1024, None, End::Flush),
    );
    rows.push(Row { name: format!("append {n} x 1 KiB in batches of 64"), log, raw, units: n as f64, unit: "r/s" });
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

    // 6. Reopen of a large log, after a clean close and after a kill.
    let total: u64 = if quick { 256 << 20 } else { 1100 << 20 };
    let n = total / (RECORD_OVERHEAD as u64 + 1024);
    let dir = root.path().join("big");
    let t = Instant::now();
    log_append(&dir, n, 1024, 64, None, End::Sync);
    let write_d = t.elapsed();
    let mut opens = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let log = Log::open(&dir, config()).unwrap();
        opens.push(t.elapsed());
        assert!(log.recovery_report().clean);
        log.close().unwrap();
    }
    opens.sort();
    let segs = Log::open_read_only(&dir, config()).unwrap().segments();
    let log_bytes: u64 = segs.iter().map(|s| s.bytes).sum();
    println!(
        "\nreopen after clean close: {} segments, {:.2} GB (written in {:.1} s): median {:.3} ms, min {:.3} ms over {} opens",
        segs.len(),
        log_bytes as f64 / 1e9,
        write_d.as_secs_f64(),
        opens[opens.len() / 2].as_secs_f64() * 1e3,
        opens[0].as_secs_f64() * 1e3,
        opens.len()
    );

    // Kill: fill the active segment almost to its limit, then vanish without
    // close (the write buffer is lost, as in kill -9).
    let mut log = Log::open(&dir, config()).unwrap();
    let v = payload(1024, 1);
    let limit = config().segment_bytes_max - (4 << 20);
    while log.segments().last().is_some_and(|s| s.sealed || s.bytes < limit) {
        log.append(Entry::new(&v)).unwrap();
    }
    log.sync().unwrap();
    std::mem::forget(log);
    // The forgotten handle still holds the directory's lock (a killed
    // process would have released it): the files, as the kill left them,
    // are copied to a directory of their own and reopened there.
    let killed = root.path().join("big-killed");
    std::fs::create_dir_all(&killed).unwrap();
    for e in std::fs::read_dir(&dir).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "log.lock" {
            std::fs::copy(e.path(), killed.join(e.file_name())).unwrap();
            // Durable, as the killed writer's synced files were: the open
            // below must not pay for flushing the copy.
            File::open(killed.join(e.file_name())).unwrap().sync_all().unwrap();
        }
    }
    File::open(&killed).unwrap().sync_all().unwrap();
    let dir = killed;
    let active_path = Log::open_read_only(&dir, config()).unwrap().segments().last().unwrap().path.clone();
    let active_len = std::fs::metadata(&active_path).unwrap().len();
    let t = Instant::now();
    let log = Log::open(&dir, config()).unwrap();
    let kill_open = t.elapsed();
    assert!(!log.recovery_report().clean);
    assert_eq!(log.recovery_report().bytes_scanned, active_len);
    drop(log);
    let (raw_scan, _) = raw_seq_read(&active_path);
    println!(
        "reopen after kill: scanned the active segment only ({:.1} MB of {:.2} GB) in {:.1} ms; raw sequential read of that file: {:.1} ms; ratio {:.2}",
        active_len as f64 / 1e6,
        log_bytes as f64 / 1e9,
        kill_open.as_secs_f64() * 1e3,
        raw_scan.as_secs_f64() * 1e3,
        raw_scan.as_secs_f64() / kill_open.as_secs_f64()
    );
}
