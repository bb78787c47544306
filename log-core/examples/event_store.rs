//! An event store: events of many accounts appended in batches (one
//! atomic batch per command), made durable, replayed into state after a
//! reopen, and found by time with the time index.
//!
//! `cargo run -p seglog-core --example event_store [DIR]`.

use std::collections::BTreeMap;

use seglog_core::{Config, Entry, Log, SyncPolicy};

#[derive(Debug, PartialEq)]
enum Event {
    Deposited(u64),
    Withdrew(u64),
}

impl Event {
    fn encode(&self) -> Vec<u8> {
        match self {
            Event::Deposited(n) => format!("deposit {n}").into_bytes(),
            Event::Withdrew(n) => format!("withdraw {n}").into_bytes(),
        }
    }

    fn decode(bytes: &[u8]) -> Option<Event> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (kind, n) = text.split_once(' ')?;
        let n = n.parse().ok()?;
        match kind {
            "deposit" => Some(Event::Deposited(n)),
            "withdraw" => Some(Event::Withdrew(n)),
            _ => None,
        }
    }
}

/// Replays every event into balances per account.
fn balances(log: &Log) -> Result<BTreeMap<String, i64>, Box<dyn std::error::Error>> {
    let mut out = BTreeMap::new();
    let mut reader = log.reader(..);
    while let Some(rec) = reader.next() {
        let rec = rec?; // checksummed: corrupt bytes are an error, never a wrong balance
        let account = String::from_utf8(rec.key.unwrap_or_default().to_vec())?;
        let event = Event::decode(rec.value).ok_or("an event that does not decode")?;
        let delta = match event {
            Event::Deposited(n) => i64::try_from(n)?,
            Event::Withdrew(n) => -i64::try_from(n)?,
        };
        *out.entry(account).or_default() += delta;
    }
    Ok(out)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let dir = std::env::args().nth(1).map_or_else(|| tmp.path().to_path_buf(), Into::into);
    let config = Config { sync: SyncPolicy::Always, segment_bytes_max: 16 << 10, ..Config::default() };

    let mut log = Log::open(&dir, config.clone())?;
    let first = log.next_offset();
    // One command, one atomic batch: a transfer is two events or none.
    for i in 0..500u64 {
        let (from, to) = (format!("acct-{}", i % 7), format!("acct-{}", (i + 3) % 7));
        let t = 1_700_000_000_000 + i * 1000; // event time, one second apart
        log.append_batch(&[
            Entry::new(&Event::Withdrew(i % 50).encode()).with_key(from.as_bytes()).with_timestamp(t),
            Entry::new(&Event::Deposited(i % 50).encode()).with_key(to.as_bytes()).with_timestamp(t),
        ])?;
    }
    // SyncPolicy::Always: every batch was durable when append_batch returned.
    assert_eq!(log.durable_offset(), log.next_offset());
    let before = balances(&log)?;
    log.close()?;

    // A restart: replay the log into the same state.
    let log = Log::open(&dir, config)?;
    let after = balances(&log)?;
    assert_eq!(before, after, "the replayed state is the state before the restart");
    assert_eq!(after.values().sum::<i64>(), 0, "transfers move money, never make it");

    // Events from a point in time on: the time index finds the first one.
    let t = 1_700_000_000_000 + 250 * 1000;
    let from = log.offset_for_timestamp(t)?.ok_or("no event at or after that time")?;
    assert_eq!(from, first + 500);
    let since: Vec<_> = log.iter(from..).collect::<Result<_, _>>()?;
    println!("{} events in {} segments", log.next_offset() - first, log.segments().len());
    println!("balances after replay: {after:?}");
    println!("{} events since t={t} (from offset {from})", since.len());
    assert_eq!(since.len(), 500);
    Ok(())
}
