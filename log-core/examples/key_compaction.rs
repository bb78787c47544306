//! Key compaction: a log used as a table of latest values per key, with
//! deletions as tombstones; compaction keeps the latest record of each key
//! and drops tombstones once their retention has passed.
//!
//! `cargo run -p seglog-core --example key_compaction [DIR]`.

use std::collections::BTreeMap;

use std::sync::Arc;

use seglog_core::{Config, Entry, Error, Log, ManualClock, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let dir = std::env::args().nth(1).map_or_else(|| tmp.path().to_path_buf(), Into::into);
    let config = Config {
        segment_records_max: 100,
        tombstone_retention_ms: 60_000, // readers up to a minute behind still see a deletion
        ..Config::default()
    };
    // The log's clock, set by hand here to show tombstone retention at work.
    let clock = ManualClock::new(1_700_000_000_000);
    let mut log = Log::open_with(&dir, Options { clock: Arc::new(clock.clone()), config, ..Options::default() })?;
    let first = log.next_offset();
    let mut table = BTreeMap::new();
    // 50 keys, each updated 20 times; every 10th key deleted at the end.
    for round in 0..20u32 {
        for k in 0..50u32 {
            let (key, value) = (format!("user-{k}"), format!("v{round}"));
            log.append(Entry::new(value.as_bytes()).with_key(key.as_bytes()))?;
            table.insert(key, value);
        }
    }
    for k in (0..50u32).step_by(10) {
        let key = format!("user-{k}");
        log.append(Entry::new(b"").with_key(key.as_bytes()).tombstone())?;
        table.remove(&key);
    }
    log.roll()?; // compaction rewrites sealed segments only
    log.sync()?;

    // Within the tombstones' retention: they stay (and shadow older values).
    let report = log.compact()?;
    assert_eq!((report.records_superseded, report.tombstones_dropped), (955, 0));
    clock.advance(60_001);
    // Past it: each tombstone goes, with every older record of its key.
    let report = log.compact()?;
    assert_eq!(report.tombstones_dropped, 5);
    println!(
        "compaction: {} records read, {} superseded, {} tombstones dropped; {} -> {} bytes",
        report.records_read,
        report.records_superseded,
        report.tombstones_dropped,
        report.bytes_before,
        report.bytes_after
    );

    // What is left, read as a table (a tombstone deletes its key), is
    // exactly the table: the latest value of each live key.
    let (mut left, mut tombstones) = (BTreeMap::new(), 0);
    for rec in log.iter(..) {
        let rec = rec?;
        let key = String::from_utf8(rec.key.unwrap_or_default())?;
        if rec.flags.tombstone() {
            tombstones += 1;
            left.remove(&key);
        } else {
            left.insert(key, String::from_utf8(rec.value)?);
        }
    }
    assert_eq!(left, table);
    assert_eq!((left.len(), tombstones), (45, 0));
    // Offsets never move: a dropped offset says so, and the next offset is unchanged.
    assert!(matches!(log.read(first), Err(Error::Compacted { .. })));
    assert_eq!(log.next_offset(), first + 1005);
    println!("{} live keys and {tombstones} tombstones in {} segments", left.len(), log.segments().len());
    log.close()?;
    Ok(())
}
