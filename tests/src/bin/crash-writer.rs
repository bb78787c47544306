//! Child process for the kill -9 test: opens (recovering) the log in the
//! directory given, then appends records forever, syncing every few records
//! and printing `durable N` after each sync returns. The parent kills it with
//! SIGKILL at random moments and checks what survived.
//!
//! Usage: crash-writer DIR SEED SYNC_EVERY MAX_RECORDS

use std::io::Write;

use seglog_core::{Config, Entry, Log};
use tests::value_for;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, seed, sync_every, max_records] = &args[..] else {
        eprintln!("usage: crash-writer DIR SEED SYNC_EVERY MAX_RECORDS");
        std::process::exit(2);
    };
    let seed: u64 = seed.parse().expect("SEED is a number");
    let sync_every: u64 = sync_every.parse().expect("SYNC_EVERY is a number");
    let max_records: u64 = max_records.parse().expect("MAX_RECORDS is a number");
    let config = Config {
        segment_bytes_max: 64 << 10,
        write_buffer_bytes: 8 << 10,
        index_interval_bytes: 512,
        ..Config::default()
    };
    let mut log = Log::open(dir, config).expect("open");
    let mut out = std::io::stdout().lock();
    writeln!(out, "start {}", log.next_offset()).expect("stdout");
    out.flush().expect("stdout");
    let end = log.next_offset() + max_records;
    while log.next_offset() < end {
        let off = log.next_offset();
        let v = value_for(seed, off, 300);
        let key = off.to_le_bytes();
        let got = log.append(Entry::new(&v).with_key(&key)).expect("append");
        assert_eq!(got, off);
        if (off + 1).is_multiple_of(sync_every) {
            log.sync().expect("sync");
            writeln!(out, "durable {}", log.durable_offset()).expect("stdout");
            out.flush().expect("stdout");
        }
    }
    log.close().expect("close");
    writeln!(out, "done").expect("stdout");
}
