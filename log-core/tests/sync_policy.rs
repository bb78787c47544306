//! `SyncPolicy::EveryMillis` (Kafka's `flush.ms`) and `Log::sync_if_due`,
//! on the log's own clock.

#![allow(clippy::unwrap_used, reason = "a test fails loudly")]

use std::sync::Arc;

use seglog_core::{Config, Entry, Log, ManualClock, Options, SyncPolicy};

#[test]
fn every_millis_syncs_the_first_append_after_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(10_000);
    let options = Options {
        clock: Arc::new(clock.clone()),
        config: Config { sync: SyncPolicy::EveryMillis(1000), ..Config::default() },
        ..Options::default()
    };
    let mut log = Log::open_with(dir.path(), options).unwrap();
    log.append(Entry::new(b"a")).unwrap();
    clock.advance(999);
    log.append(Entry::new(b"b")).unwrap();
    assert_eq!(log.durable_offset(), 0, "less than the interval since the open: no sync");
    assert!(!log.sync_if_due().unwrap());
    clock.advance(1);
    log.append(Entry::new(b"c")).unwrap();
    assert_eq!(log.durable_offset(), 3, "the append at the interval synced everything");
    clock.advance(500);
    log.append(Entry::new(b"d")).unwrap();
    assert_eq!(log.durable_offset(), 3, "the interval counts from the last sync");
    clock.advance(500);
    assert!(log.sync_if_due().unwrap(), "an idle log's timer syncs what waits");
    assert_eq!(log.durable_offset(), 4);
    clock.advance(5000);
    assert!(!log.sync_if_due().unwrap(), "nothing waits: no sync");
    assert_eq!(log.stats().syncs, 2);
}

#[test]
fn sync_if_due_never_syncs_under_other_policies() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), Config::default()).unwrap();
    log.append(Entry::new(b"a")).unwrap();
    assert!(!log.sync_if_due().unwrap());
    assert_eq!(log.durable_offset(), 0);
}
