//! Format fixtures: a small log committed under `tests/fixtures/v1/`, and the
//! same log after a key compaction (version-2 compacted segments) under
//! `tests/fixtures/v2-compacted/`. This build must read them record for
//! record, and must write exactly the same bytes for the same operations, so
//! that no format change can be silent.
//!
//! An intentional format change bumps `FORMAT_VERSION`, adds a new fixture
//! directory (regenerate with `SEGLOG_BLESS=1 cargo test -p tests --test
//! format_fixture`) and keeps reading (or clearly refusing) the old one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use log_core::{Config, Entry, FixedClock, Log, Options, Record, StdFs};
use tests::dir_files;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/v1")
}

fn compacted_fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/v2-compacted")
}

/// The v1 fixture's operations, then a roll and a key compaction: version-2
/// (compacted) segments.
fn write_compacted(dir: &Path) {
    write(dir);
    let mut log = Log::open_with(dir, options(false)).unwrap();
    log.roll().unwrap();
    log.compact().unwrap();
    log.close().unwrap();
}

/// What compaction leaves of [`expected`]: the three records with the empty
/// key (2, 5, 8) keep only 8; the tombstone (7) is far past its one-day
/// retention; unkeyed and uniquely keyed records stay.
fn expected_compacted() -> Vec<Record> {
    expected().into_iter().filter(|r| ![2, 5, 7].contains(&r.offset)).collect()
}

fn options(read_only: bool) -> Options {
    Options {
        fs: StdFs::shared(),
        clock: Arc::new(FixedClock(1_700_000_000_000)),
        config: Config { segment_records_max: 4, index_interval_bytes: 64, ..Config::default() },
        read_only,
    }
}

/// The records of the fixture, spelled out independently of the log.
fn expected() -> Vec<Record> {
    let mut v = Vec::new();
    for i in 0..10u64 {
        v.push(Record {
            offset: i,
            timestamp_ms: if i % 2 == 0 { 1_700_000_000_000 } else { 1_600_000_000_000 + i },
            key: match i % 3 {
                0 => None,
                1 => Some(format!("key-{i}").into_bytes()),
                _ => Some(Vec::new()),
            },
            value: if i == 4 { Vec::new() } else { format!("value number {i}").repeat(i as usize + 1).into_bytes() },
            tombstone: i == 7,
        });
    }
    v
}

/// The operations that produce the fixture.
fn write(dir: &Path) {
    let mut log = Log::open_with(dir, options(false)).unwrap();
    for (i, r) in expected().iter().enumerate() {
        let mut e = Entry::new(&r.value);
        e.key = r.key.as_deref();
        e.tombstone = r.tombstone;
        if i % 2 == 1 {
            e.timestamp_ms = Some(r.timestamp_ms);
        }
        log.append(e).unwrap();
        if i % 3 == 2 {
            log.sync().unwrap();
        }
    }
    log.close().unwrap();
}

#[test]
fn v1_fixture_reads_and_writes_identically() {
    if std::env::var_os("SEGLOG_BLESS").is_some() {
        let _ = std::fs::remove_dir_all(fixture_dir());
        write(&fixture_dir());
    }
    let fixture = dir_files(&fixture_dir());
    assert!(fixture.len() >= 7, "fixture missing: {fixture:?}");

    // Read: a copy, so the committed files are never touched.
    let copy = tempfile::tempdir().unwrap();
    for (name, bytes) in &fixture {
        std::fs::write(copy.path().join(name), bytes).unwrap();
    }
    let log = Log::open_with(copy.path(), options(true)).unwrap();
    assert!(log.recovery_report().clean);
    let got: Vec<Record> = log.iter(..).collect::<Result<_, _>>().unwrap();
    assert_eq!(got, expected());
    assert_eq!(log.segments().len(), 3);
    assert!(log.verify().problems.is_empty());

    // Write: the same operations give the same bytes.
    let fresh = tempfile::tempdir().unwrap();
    write(fresh.path());
    let written = dir_files(fresh.path());
    assert_eq!(written.iter().map(|f| &f.0).collect::<Vec<_>>(), fixture.iter().map(|f| &f.0).collect::<Vec<_>>());
    for ((name, a), (_, b)) in written.iter().zip(&fixture) {
        assert!(a == b, "{name} differs from the v1 fixture: the on-disk format changed");
    }
}

#[test]
fn v2_compacted_fixture_reads_and_writes_identically() {
    if std::env::var_os("SEGLOG_BLESS").is_some() {
        let _ = std::fs::remove_dir_all(compacted_fixture_dir());
        write_compacted(&compacted_fixture_dir());
    }
    let fixture = dir_files(&compacted_fixture_dir());
    assert!(fixture.len() >= 3, "fixture missing: {fixture:?}");
    let copy = tempfile::tempdir().unwrap();
    for (name, bytes) in &fixture {
        std::fs::write(copy.path().join(name), bytes).unwrap();
    }
    let log = Log::open_with(copy.path(), options(true)).unwrap();
    let got: Vec<Record> = log.iter(..).collect::<Result<_, _>>().unwrap();
    assert_eq!(got, expected_compacted());
    assert_eq!(log.next_offset(), 10);
    assert!(log.segments().iter().any(|s| s.compacted));
    assert!(log.verify().problems.is_empty());
    assert!(matches!(log.read(7), Err(log_core::Error::Compacted { offset: 7 })));

    let fresh = tempfile::tempdir().unwrap();
    write_compacted(fresh.path());
    let written = dir_files(fresh.path());
    assert_eq!(written.iter().map(|f| &f.0).collect::<Vec<_>>(), fixture.iter().map(|f| &f.0).collect::<Vec<_>>());
    for ((name, a), (_, b)) in written.iter().zip(&fixture) {
        assert!(a == b, "{name} differs from the v2 compacted fixture: the on-disk format changed");
    }
}
