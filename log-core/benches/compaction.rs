//! Key compaction throughput and space saved, on a log where 90% of the
//! records are overwritten by later records of the same key, side by side
//! with the raw I/O floor of the same work (read every byte of the sealed
//! segments, write and fsync the compacted size) in the same process.
//!
//! `cargo bench -p seglog-core --bench compaction` (`-- --quick` for a smaller
//! log). Real filesystem (a temporary directory), record timestamps fixed so
//! that the numbers repeat.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

use seglog_core::{Config, Entry, FixedClock, Log, Options, StdFs};

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

struct Run {
    records: u64,
    keys: u64,
    bytes_before: u64,
    bytes_after: u64,
    rewritten: u64,
    kept: u64,
    secs: f64,
    raw_secs: f64,
    passes: u32,
}

fn run(records: u64, keys: u64, value_len: usize, map_bytes: u64) -> Result<Run, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let config = Config { segment_bytes_max: 64 << 20, compaction_map_bytes: map_bytes, ..Config::default() };
    let opts = Options { fs: StdFs::shared(), clock: Arc::new(FixedClock(1_000)), config, read_only: false };
    let mut log = Log::open_with(dir.path(), opts.clone())?;
    let value = vec![0x5au8; value_len];
    for i in 0..records {
        // Keys in a scrambled order, each written records/keys times.
        let key = format!("key-{:012}", mix(i) % keys);
        log.append(Entry::new(&value).with_key(key.as_bytes()).with_timestamp(1_000))?;
    }
    log.roll()?;
    log.sync()?;
    let paths: Vec<_> = log.segments().iter().filter(|s| s.sealed).map(|s| s.path.clone()).collect();

    let t = Instant::now();
    let r = log.compact()?;
    let secs = t.elapsed().as_secs_f64();
    let kept = log.segments().iter().map(|s| s.n_records).sum();
    drop(log);

    // The floor: read the bytes compaction read (its input, once per pass)
    // sequentially, write and fsync as many as compaction kept. (The compacted files replaced the
    // originals, so read the compacted ones until the input size is
    // reached, re-reading as needed; everything is in the page cache, as
    // it was for compaction.)
    let t = Instant::now();
    let mut buf = vec![0u8; 1 << 20];
    let mut read = 0u64;
    let live: Vec<_> = std::fs::read_dir(dir.path())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    let sources = if paths.iter().all(|p| p.exists()) { paths } else { live };
    while read < r.bytes_rewritten {
        for p in &sources {
            let mut f = std::fs::File::open(p)?;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 || read >= r.bytes_rewritten {
                    break;
                }
                read += n as u64;
            }
        }
    }
    let out_path = dir.path().join("raw.out");
    let mut out = std::fs::File::create(&out_path)?;
    let mut left = r.bytes_after;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        out.write_all(buf.get(..n).unwrap_or_default())?;
        left -= n as u64;
    }
    out.sync_data()?;
    let raw_secs = t.elapsed().as_secs_f64();
    Ok(Run {
        records,
        keys,
        bytes_before: r.bytes_before,
        bytes_after: r.bytes_after,
        rewritten: r.bytes_rewritten,
        kept,
        secs,
        raw_secs,
        passes: r.passes,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quick = std::env::args().any(|a| a == "--quick");
    let (records, keys) = if quick { (200_000, 20_000) } else { (1_000_000, 100_000) };
    println!("key compaction, {records} records of 100-byte values, {keys} keys (90% of records overwritten)");
    println!(
        "{:>10} {:>8} {:>6} {:>12} {:>12} {:>7} {:>12} {:>9} {:>10} {:>10} {:>8}",
        "records", "keys", "passes", "bytes in", "bytes out", "saved", "rewritten", "kept", "MB/s", "raw MB/s", "ratio"
    );
    println!("(MB/s: bytes in / compaction time; raw: the same reads and writes without compaction's work)");
    for (label, map_bytes) in [("64 MiB map", 64u64 << 20), ("1 MiB map", 1 << 20)] {
        let r = run(records, keys, 100, map_bytes)?;
        let mb = r.bytes_before as f64 / 1e6;
        let raw_mb = r.rewritten as f64 / 1e6;
        println!(
            "{:>10} {:>8} {:>6} {:>12} {:>12} {:>6.1}% {:>12} {:>9} {:>10.0} {:>10.0} {:>7.2}x  ({label})",
            r.records,
            r.keys,
            r.passes,
            r.bytes_before,
            r.bytes_after,
            100.0 * (1.0 - r.bytes_after as f64 / r.bytes_before as f64),
            r.rewritten,
            r.kept,
            mb / r.secs,
            raw_mb / r.raw_secs,
            r.raw_secs / r.secs,
        );
    }
    Ok(())
}
