//! The loops both throughput benchmarks run: the raw `std::fs` baselines
//! and seglog's scans. Included by path in `log-core/benches/throughput.rs`
//! and `peer-bench/src/main.rs`, so the two measure the same baselines.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use seglog_core::inspect::RECORD_OVERHEAD;
use seglog_core::{Config, Log};

/// `len` bytes of a value that depends on `i`.
pub fn payload(len: usize, i: u64) -> Vec<u8> {
    (0..len).map(|j| (i as usize).wrapping_add(j) as u8).collect()
}

/// The raw write loop: `n` frames of `frame` bytes through a `BufWriter` of
/// seglog's buffer size, an `fdatasync` every `sync_every` frames, and at
/// the end one (`fsync_at_end`) or none (everything handed to the OS).
pub fn raw_write(path: &Path, n: u64, frame: usize, sync_every: Option<u64>, fsync_at_end: bool) -> Duration {
    let buf_bytes = Config::default().write_buffer_bytes as usize;
    let rec = payload(frame, 0);
    let t = Instant::now();
    let mut w = BufWriter::with_capacity(buf_bytes, File::create(path).unwrap());
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
    if fsync_at_end {
        w.get_ref().sync_data().unwrap();
    }
    t.elapsed()
}

/// The raw file for [`raw_read`]: `n` frames of seglog's size for `len`-byte
/// values, with the body length at bytes 4..8 as in seglog's frames.
pub fn raw_frames(path: &Path, n: u64, len: usize) {
    let mut frame = payload(RECORD_OVERHEAD + len, 0);
    frame[4..8].copy_from_slice(&((RECORD_OVERHEAD - 8 + len) as u32).to_le_bytes());
    let mut out = BufWriter::with_capacity(256 << 10, File::create(path).unwrap());
    for _ in 0..n {
        out.write_all(&frame).unwrap();
    }
    out.flush().unwrap();
}

/// The raw read loop: a 256 KiB `BufReader`, each frame read by its length
/// prefix into a reused buffer; with `crc`, its CRC32 computed too (the
/// floor of a loop that checks what seglog checks). Returns the time and
/// the frames read.
pub fn raw_read(path: &Path, crc: bool) -> (Duration, u64) {
    let t = Instant::now();
    let mut r = BufReader::with_capacity(256 << 10, File::open(path).unwrap());
    let mut prefix = [0u8; 8];
    let mut body = Vec::new();
    let (mut n, mut sum) = (0u64, 0u64);
    while r.read_exact(&mut prefix).is_ok() {
        let len = u32::from_le_bytes(prefix[4..8].try_into().unwrap()) as usize;
        body.resize(len, 0);
        r.read_exact(&mut body).unwrap();
        if crc {
            sum = sum.wrapping_add(u64::from(crc32fast::hash(&body)));
        }
        sum = sum.wrapping_add(body.len() as u64);
        n += 1;
    }
    std::hint::black_box(sum);
    (t.elapsed(), n)
}

/// Reads every record of the log in `dir` (opened read-only, outside the
/// clock) with the lending `reader()` or, `owned`, with `iter()`.
pub fn seglog_scan(dir: &Path, owned: bool) -> (Duration, u64) {
    let log = Log::open_read_only(dir, Config::default()).unwrap();
    let t = Instant::now();
    let (mut n, mut sum) = (0u64, 0u64);
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
