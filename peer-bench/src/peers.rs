//! Each system through its natural API: open, append `n` records
//! (`batch` per call), make them durable the way the system offers, and
//! read them back with its checksums verified.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::Workload;
use crate::loops::{self, payload};

/// Read workloads: a system, and for seglog the read API.
pub const READERS: [&str; 4] = ["seglog reader", "seglog iter", "commitlog", "raft-engine"];

pub fn write(system: &str, dir: &Path, w: Workload) -> Duration {
    match system {
        "seglog" => seglog_write(dir, w),
        "commitlog" => commitlog_write(dir, w),
        "okaywal" => okaywal_write(dir, w),
        "raft-engine" => raft_engine_write(dir, w),
        other => panic!("unknown system {other}"),
    }
}

pub fn read(reader: &str, dir: &Path, n: u64) -> Duration {
    let (d, got) = match reader {
        "seglog reader" => loops::seglog_scan(dir, false),
        "seglog iter" => loops::seglog_scan(dir, true),
        "commitlog" => commitlog_read(dir),
        "raft-engine" => raft_engine_read(dir, n),
        other => panic!("unknown reader {other}"),
    };
    assert_eq!(got, n, "{reader} read back {got} of {n} records");
    d
}

pub fn print_durability() {
    println!(
        "\nWhat \"one sync at the end\" is for each system:
- seglog: `Log::sync` — a commit marker, write, fdatasync of the active segment; a roll
  fsyncs the sealed segment, its successor and the directory (default 64 MiB segments).
- commitlog 0.2: `CommitLog::flush` writes its BufWriter and msyncs the index; it never
  fsyncs segment data, so nothing is durable after a power failure (segments 64 MiB here).
- okaywal 0.3: the records are the chunks of one entry; `EntryWriter::commit` fsyncs
  the segment file (okaywal's durability unit is an entry).
- raft-engine 0.4: `Engine::write(batch, sync: true)` for the last batch (fdatasync);
  `Engine::sync()` writes an empty batch, which returns early and syncs nothing."
    );
}

fn seglog_write(dir: &Path, w: Workload) -> Duration {
    use seglog_core::{Config, Entry, Log};
    let v = payload(w.len, 0);
    let entries: Vec<Entry<'_>> = (0..w.batch).map(|_| Entry::new(&v)).collect();
    let t = Instant::now();
    let mut log = Log::open(dir, Config::default()).unwrap();
    let mut done = 0;
    while done < w.n {
        if w.batch == 1 {
            log.append(entries[0]).unwrap();
        } else {
            log.append_batch(&entries).unwrap();
        }
        done += w.batch as u64;
    }
    log.sync().unwrap();
    let d = t.elapsed();
    log.close().unwrap();
    d
}

fn commitlog_options(dir: &Path) -> commitlog::LogOptions {
    let mut opts = commitlog::LogOptions::new(dir);
    opts.segment_max_bytes(seglog_core::Config::default().segment_bytes_max as usize);
    opts
}

fn commitlog_write(dir: &Path, w: Workload) -> Duration {
    use commitlog::CommitLog;
    use commitlog::message::MessageBuf;
    let v = payload(w.len, 0);
    let t = Instant::now();
    let mut log = CommitLog::new(commitlog_options(dir)).unwrap();
    let mut done = 0;
    while done < w.n {
        if w.batch == 1 {
            log.append_msg(&v).unwrap();
        } else {
            let mut buf = MessageBuf::default();
            for _ in 0..w.batch {
                buf.push(&v).unwrap();
            }
            log.append(&mut buf).unwrap();
        }
        done += w.batch as u64;
    }
    log.flush().unwrap();
    t.elapsed()
}

fn commitlog_read(dir: &Path) -> (Duration, u64) {
    use commitlog::message::MessageSet;
    use commitlog::{CommitLog, ReadLimit};
    let log = CommitLog::new(commitlog_options(dir)).unwrap();
    let t = Instant::now();
    let (mut n, mut sum, mut next) = (0u64, 0u64, 0u64);
    loop {
        // `read` checks every message's CRC32C (`MessageBuf::from_bytes`).
        let msgs = log.read(next, ReadLimit::max_bytes(256 << 10)).unwrap();
        if msgs.is_empty() {
            break;
        }
        for m in msgs.iter() {
            sum = sum.wrapping_add(m.payload().len() as u64);
            next = m.offset() + 1;
            n += 1;
        }
    }
    std::hint::black_box(sum);
    (t.elapsed(), n)
}

#[derive(Debug)]
struct NoCheckpoint;

impl okaywal::LogManager for NoCheckpoint {
    fn recover(&mut self, _entry: &mut okaywal::Entry<'_>) -> std::io::Result<()> {
        Ok(())
    }

    fn checkpoint_to(
        &mut self,
        _last: okaywal::EntryId,
        _entries: &mut okaywal::SegmentReader,
        _wal: &okaywal::WriteAheadLog,
    ) -> std::io::Result<()> {
        Ok(())
    }
}

fn okaywal_write(dir: &Path, w: Workload) -> Duration {
    let v = payload(w.len, 0);
    let t = Instant::now();
    let wal = okaywal::WriteAheadLog::recover(dir, NoCheckpoint).unwrap();
    let mut entry = wal.begin_entry().unwrap();
    for _ in 0..w.n {
        entry.write_chunk(&v).unwrap();
    }
    entry.commit().unwrap();
    let d = t.elapsed();
    wal.shutdown().unwrap();
    d
}

#[derive(Clone)]
struct EntryExt;

impl raft_engine::MessageExt for EntryExt {
    type Entry = raft_proto::eraftpb::Entry;

    fn index(e: &Self::Entry) -> u64 {
        e.index
    }
}

fn raft_engine_config(dir: &Path) -> raft_engine::Config {
    raft_engine::Config {
        dir: dir.display().to_string(),
        // No compression: the others store the bytes as given.
        batch_compression_threshold: raft_engine::ReadableSize(0),
        ..Default::default()
    }
}

fn raft_engine_write(dir: &Path, w: Workload) -> Duration {
    let v = payload(w.len, 0);
    let t = Instant::now();
    let engine = raft_engine::Engine::open(raft_engine_config(dir)).unwrap();
    let mut batch = raft_engine::LogBatch::with_capacity(w.batch);
    let mut entries = Vec::with_capacity(w.batch);
    let mut next = 1u64;
    while next <= w.n {
        entries.clear();
        for _ in 0..w.batch {
            entries.push(raft_proto::eraftpb::Entry {
                index: next,
                term: 1,
                data: v.clone().into(),
                ..Default::default()
            });
            next += 1;
        }
        batch.add_entries::<EntryExt>(1, &entries).unwrap();
        let last = next > w.n;
        engine.write(&mut batch, last).unwrap();
    }
    t.elapsed()
}

fn raft_engine_read(dir: &Path, n: u64) -> (Duration, u64) {
    let engine = raft_engine::Engine::open(raft_engine_config(dir)).unwrap();
    let t = Instant::now();
    let (mut got, mut sum, mut next) = (0u64, 0u64, 1u64);
    let mut out = Vec::with_capacity(4096);
    while next <= n {
        out.clear();
        let end = (next + 4096).min(n + 1);
        engine.fetch_entries_to::<EntryExt>(1, next, end, None, &mut out).unwrap();
        for e in &out {
            sum = sum.wrapping_add(e.data.len() as u64);
            got += 1;
        }
        next = end;
    }
    std::hint::black_box(sum);
    (t.elapsed(), got)
}
