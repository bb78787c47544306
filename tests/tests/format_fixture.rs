//! Format fixtures: small logs committed under `tests/fixtures/`, each
//! written by the operations below with a fixed clock.
//!
//! * `v3/` (plain segments, header version 3) and `v3-compacted/` (the same
//!   log after a roll and a key compaction: compacted segments, whose kind
//!   the version-3 header gives apart from its version)
//!   are what this build writes: it must read them record for record and
//!   write exactly the same bytes for the same operations, so that no
//!   format change can be silent.
//! * `v1/` and `v2-compacted/` were written by builds before the
//!   successor-first rule (header versions 1 and 2, no `log.meta`): this
//!   build must read them record for record, and a read-write open must
//!   upgrade them in place (it adds `log.meta`) and go on appending.
//! * `v3-meta1/` is `v3/` as the build before `log.meta` version 3 wrote it
//!   (a version-1 `log.meta`, which names no last segment): read, and
//!   upgraded by a read-write open (`log.meta` rewritten as version 3).
//!
//! An intentional format change bumps the version it changes, adds a new
//! fixture directory (regenerate this build's with `SEGLOG_BLESS=1 cargo
//! test -p tests --test format_fixture`) and keeps reading (or clearly
//! refusing) the old ones.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "a test fails loudly")]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use seglog_core::{Config, Entry, FixedClock, Log, Options, Record, RecordFlags, StdFs};
use tests::dir_files;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

/// The plain fixture's operations, then a roll and a key compaction:
/// compacted segments.
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
            flags: if i == 7 { RecordFlags::TOMBSTONE } else { RecordFlags::NONE },
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
        e.flags = r.flags;
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

/// A copy of fixture `name`, so the committed files are never touched.
fn copy_of(name: &str) -> (tempfile::TempDir, Vec<(String, Vec<u8>)>) {
    let files = dir_files(&fixture(name));
    assert!(files.len() >= 3, "fixture {name} missing: {files:?}");
    let copy = tempfile::tempdir().unwrap();
    for (f, bytes) in &files {
        std::fs::write(copy.path().join(f), bytes).unwrap();
    }
    (copy, files)
}

/// Reads fixture `name` read-only: the expected records, nothing else.
fn check_reads(name: &str, want: &[Record], n_segments: usize) {
    let (copy, _) = copy_of(name);
    let log = Log::open_with(copy.path(), options(true)).unwrap();
    let got: Vec<Record> = log.iter(..).collect::<Result<_, _>>().unwrap();
    assert_eq!(got, want, "{name}");
    assert_eq!(log.next_offset(), 10, "{name}");
    assert_eq!(log.segments().len(), n_segments, "{name}");
    assert!(log.verify().problems.is_empty(), "{name}");
}

/// The same operations give the same bytes as fixture `name`.
fn check_writes(name: &str, write_it: fn(&Path)) {
    if std::env::var_os("SEGLOG_BLESS").is_some() {
        let _ = std::fs::remove_dir_all(fixture(name));
        write_it(&fixture(name));
    }
    let committed = dir_files(&fixture(name));
    let fresh = tempfile::tempdir().unwrap();
    write_it(fresh.path());
    let written = dir_files(fresh.path());
    assert_eq!(written.iter().map(|f| &f.0).collect::<Vec<_>>(), committed.iter().map(|f| &f.0).collect::<Vec<_>>());
    for ((f, a), (_, b)) in written.iter().zip(&committed) {
        assert!(a == b, "{f} differs from the {name} fixture: the on-disk format changed");
    }
}

/// A read-write open of an old fixture upgrades it in place: the records
/// stay, `log.meta` appears (or is rewritten) in the current version,
/// naming the last segment, and appends, a roll and a reopen work.
fn check_upgrades(name: &str, want: &[Record]) {
    let (copy, old) = copy_of(name);
    let old_meta = old.iter().find(|(f, _)| f == "log.meta").map(|(_, b)| b.clone());
    assert!(old_meta.as_ref().is_none_or(|b| b[8..12] != 3u32.to_le_bytes()), "{name} predates log.meta version 3");
    let mut log = Log::open_with(copy.path(), options(false)).unwrap();
    let meta = std::fs::read(copy.path().join("log.meta")).expect("the open writes log.meta");
    let meta = seglog_core::inspect::Meta::decode(&meta).unwrap();
    assert_eq!(meta.last_segment, log.segments().last().map(|s| s.base_offset), "{name}");
    log.append(Entry::new(b"after the upgrade")).unwrap();
    log.roll().unwrap();
    log.close().unwrap();
    let log = Log::open_with(copy.path(), options(false)).unwrap();
    let got: Vec<Record> = log.iter(..).collect::<Result<_, _>>().unwrap();
    assert_eq!(&got[..want.len()], want, "{name}");
    assert_eq!(got.len(), want.len() + 1, "{name}");
    assert_eq!(got.last().map(|r| r.value.as_slice()), Some(&b"after the upgrade"[..]));
    assert!(log.verify().problems.is_empty(), "{name}");
}

#[test]
fn v3_fixture_reads_and_writes_identically() {
    check_writes("v3", write);
    check_reads("v3", &expected(), 3);
}

#[test]
fn v3_compacted_fixture_reads_and_writes_identically() {
    check_writes("v3-compacted", write_compacted);
    check_reads("v3-compacted", &expected_compacted(), 3);
    let (copy, _) = copy_of("v3-compacted");
    let log = Log::open_with(copy.path(), options(true)).unwrap();
    assert!(log.segments().iter().any(|s| s.compacted));
    assert!(matches!(log.read(7), Err(seglog_core::Error::Compacted { offset: 7 })));
}

#[test]
fn v1_fixture_reads_and_upgrades() {
    check_reads("v1", &expected(), 3);
    let (copy, _) = copy_of("v1");
    assert!(Log::open_with(copy.path(), options(true)).unwrap().recovery_report().clean);
    check_upgrades("v1", &expected());
}

#[test]
fn v3_meta1_fixture_reads_and_upgrades() {
    check_reads("v3-meta1", &expected(), 3);
    check_upgrades("v3-meta1", &expected());
}

#[test]
fn v2_compacted_fixture_reads_and_upgrades() {
    check_reads("v2-compacted", &expected_compacted(), 3);
    let (copy, _) = copy_of("v2-compacted");
    let log = Log::open_with(copy.path(), options(true)).unwrap();
    assert!(log.segments().iter().any(|s| s.compacted));
    assert!(matches!(log.read(7), Err(seglog_core::Error::Compacted { offset: 7 })));
    check_upgrades("v2-compacted", &expected_compacted());
}
