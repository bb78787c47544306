//! Recovery scenarios on the real filesystem, one per rare branch: torn
//! tails, rot detected through commit evidence, the documented undetectable
//! window, clean-close trust, damaged footers and indexes, leftovers, wrong
//! directories, unknown versions, read-only opens, poisoning and ENOSPC.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "a test fails loudly")]

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use seglog_core::inspect::{self, HEADER_LEN, MARKER_FRAME_LEN, RECORD_OVERHEAD};
use seglog_core::{Config, Entry, Error, FixedClock, Log, ManualClock, Options, StdFs, SyncPolicy};
use tests::{FailFs, FailOp, dir_files};

const VALUE_LEN: usize = 40;
const FRAME: u64 = (RECORD_OVERHEAD + VALUE_LEN) as u64;
const MARKER: u64 = MARKER_FRAME_LEN as u64;

fn opts(fs: Arc<dyn seglog_core::FileSystem>, read_only: bool) -> Options {
    Options { fs, clock: Arc::new(FixedClock(1000)), config: Config::default(), read_only }
}

fn open(dir: &Path) -> Result<Log, Error> {
    Log::open_with(dir, opts(StdFs::shared(), false))
}

fn val(i: u64) -> Vec<u8> {
    vec![i as u8; VALUE_LEN]
}

fn append_n(log: &mut Log, n: u64) {
    for _ in 0..n {
        let i = log.next_offset();
        log.append(Entry::new(&val(i))).unwrap();
    }
}

fn seg0(dir: &Path) -> PathBuf {
    dir.join(inspect::segment_file_name(0))
}

fn flip(path: &Path, pos: u64) {
    let mut b = std::fs::read(path).unwrap();
    b[pos as usize] ^= 0x40;
    std::fs::write(path, b).unwrap();
}

fn assert_records(log: &Log, n: u64) {
    assert_eq!(log.next_offset(), n);
    for i in 0..n {
        assert_eq!(log.read(i).unwrap().value, val(i), "offset {i}");
    }
}

/// Layout of the test log: 10 records, commit, 10 records, commit, then
/// `tail` unsynced records written to the file by drop.
fn two_batches(dir: &Path, tail: u64) {
    let mut log = open(dir).unwrap();
    append_n(&mut log, 10);
    log.sync().unwrap();
    append_n(&mut log, 10);
    log.sync().unwrap();
    append_n(&mut log, tail);
    drop(log);
}

fn batch2_start() -> u64 {
    HEADER_LEN + 10 * FRAME + MARKER
}

fn tail_start() -> u64 {
    batch2_start() + 10 * FRAME + MARKER
}

#[test]
fn torn_tail_is_cut_durably_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    two_batches(dir.path(), 3);
    let cut = tail_start() + FRAME + 7;
    let f = std::fs::OpenOptions::new().write(true).open(seg0(dir.path())).unwrap();
    f.set_len(cut).unwrap();
    drop(f);
    let mut log = open(dir.path()).unwrap();
    let r = log.recovery_report().clone();
    assert!(!r.clean);
    assert_eq!(r.torn_tail, Some((seg0(dir.path()), tail_start() + FRAME)));
    assert_eq!(r.torn_bytes, 7);
    // No commit marker in the cut bytes: nothing cut was ever acknowledged.
    assert_eq!(r.possibly_acknowledged, None);
    // Cut at the torn frame; the kept, uncommitted record then gets a
    // commit marker of its own (seed 30202).
    assert_eq!(std::fs::metadata(seg0(dir.path())).unwrap().len(), tail_start() + FRAME + MARKER);
    let bytes = std::fs::read(seg0(dir.path())).unwrap();
    match inspect::decode_frame(&bytes[(tail_start() + FRAME) as usize..]) {
        Ok((inspect::Frame::Marker(m), _)) => {
            assert_eq!((m.kind, m.next_offset, m.own_pos), (inspect::MarkerKind::Commit, 21, tail_start() + FRAME));
            assert_eq!(m.batch_start_pos, m.own_pos, "an empty batch: the record before it was synced first");
        }
        other => panic!("no commit marker after the recovered record: {other:?}"),
    }
    assert_records(&log, 21);
    assert_eq!(log.durable_offset(), 21);
    append_n(&mut log, 2);
    log.close().unwrap();
    assert_records(&open(dir.path()).unwrap(), 23);
}

/// Seed 30202: records recovery keeps after the last commit marker are
/// durable from then on; damage to them must be reported, never cut as a
/// torn tail (which loses records the log called durable). Their own commit
/// marker proves them synced.
#[test]
fn damage_to_records_recovery_kept_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    two_batches(dir.path(), 3);
    let f = std::fs::OpenOptions::new().write(true).open(seg0(dir.path())).unwrap();
    f.set_len(tail_start() + FRAME + 7).unwrap();
    drop(f);
    let log = open(dir.path()).unwrap();
    assert_eq!(log.durable_offset(), 21);
    drop(log);
    let mut bytes = std::fs::read(seg0(dir.path())).unwrap();
    bytes[(tail_start() + 30) as usize] ^= 0x10;
    std::fs::write(seg0(dir.path()), &bytes).unwrap();
    match open(dir.path()) {
        Err(Error::Corruption { pos, detail, .. }) => {
            assert_eq!(pos, tail_start(), "{detail}");
            assert!(detail.contains("committed"), "{detail}");
        }
        other => panic!("damage to a durable record was not reported: {:?}", other.map(|l| l.next_offset())),
    }
}

#[test]
fn zero_filled_tail_is_torn_not_records() {
    let dir = tempfile::tempdir().unwrap();
    two_batches(dir.path(), 2);
    let f = std::fs::OpenOptions::new().write(true).open(seg0(dir.path())).unwrap();
    f.set_len(tail_start() + 2 * FRAME + 4096).unwrap();
    drop(f);
    let log = open(dir.path()).unwrap();
    assert_eq!(log.recovery_report().torn_bytes, 4096);
    assert_records(&log, 22);
}

#[test]
fn rot_in_a_batch_followed_by_a_later_commit_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    two_batches(dir.path(), 0);
    let pos = HEADER_LEN + 3 * FRAME + 40;
    flip(&seg0(dir.path()), pos);
    match open(dir.path()) {
        Err(Error::Corruption { path, pos: at, detail }) => {
            assert_eq!(path, seg0(dir.path()));
            assert_eq!(at, HEADER_LEN + 3 * FRAME);
            assert!(detail.contains("had been synced"), "{detail}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    // Read-only opens refuse it too: they never mistake rot for a tear.
    assert!(Log::open_with(dir.path(), opts(StdFs::shared(), true)).unwrap_err().is_corruption());
}

#[test]
fn rot_in_the_last_batch_followed_by_later_writes_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    two_batches(dir.path(), 1);
    flip(&seg0(dir.path()), batch2_start() + 5 * FRAME + 35);
    let err = open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("followed by later writes"), "{err}");
}

#[test]
fn rot_in_the_last_synced_batch_with_nothing_after_is_the_documented_window() {
    // Nothing was written after the last commit marker, so damage in that
    // batch looks exactly like a sync torn by a crash: it is cut. This test
    // pins the window to exactly that batch (see docs/FORMAT.md).
    let dir = tempfile::tempdir().unwrap();
    two_batches(dir.path(), 0);
    flip(&seg0(dir.path()), batch2_start() + 5 * FRAME + 35);
    // Read-only first (as seglog-raft does, to fence its vote before the
    // cut is durable): the same report, nothing written.
    let ro = Log::open_with(dir.path(), opts(StdFs::shared(), true)).unwrap();
    assert_eq!(ro.recovery_report().possibly_acknowledged, Some(15..20));
    drop(ro);
    let log = open(dir.path()).unwrap();
    assert_eq!(log.recovery_report().torn_tail.as_ref().map(|t| t.1), Some(batch2_start() + 5 * FRAME));
    // The batch's own commit marker survived past the damage: records
    // 15..20 may have been acknowledged, and the report says so.
    assert_eq!(log.recovery_report().possibly_acknowledged, Some(15..20));
    assert_records(&log, 15);
    drop(log);
    // Once cut, the next open has nothing left to report.
    assert_eq!(open(dir.path()).unwrap().recovery_report().possibly_acknowledged, None);
}

/// A sync torn by the crash looks the same when its commit marker's sector
/// landed and an earlier one did not: reported as possibly acknowledged
/// too (the log cannot know better); without the marker, not.
#[test]
fn a_torn_sync_is_possibly_acknowledged_only_if_its_marker_landed() {
    let dir = tempfile::tempdir().unwrap();
    two_batches(dir.path(), 0);
    let path = seg0(dir.path());
    // The batch's first sector never landed (zeros), its marker did.
    let mut torn = std::fs::read(&path).unwrap();
    torn[batch2_start() as usize..(batch2_start() + FRAME) as usize].fill(0);
    std::fs::write(&path, &torn).unwrap();
    let log = open(dir.path()).unwrap();
    assert_eq!(log.recovery_report().possibly_acknowledged, Some(10..20));
    assert_records(&log, 10);
    drop(log);
    // The marker never landed: not acknowledged, whatever else is there.
    let dir = tempfile::tempdir().unwrap();
    two_batches(dir.path(), 0);
    let mut torn = std::fs::read(seg0(dir.path())).unwrap();
    let end = torn.len();
    torn[end - MARKER as usize..].fill(0);
    torn[(batch2_start() + 2 * FRAME + 3) as usize] ^= 1;
    std::fs::write(seg0(dir.path()), &torn).unwrap();
    let log = open(dir.path()).unwrap();
    assert!(log.recovery_report().torn_tail.is_some());
    assert_eq!(log.recovery_report().possibly_acknowledged, None);
    assert_records(&log, 12);
}

#[test]
fn clean_close_is_trusted_and_rot_is_caught_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path()).unwrap();
    append_n(&mut log, 20);
    log.close().unwrap();
    flip(&seg0(dir.path()), HEADER_LEN + 4 * FRAME + 50);
    let log = open(dir.path()).unwrap();
    assert!(log.recovery_report().clean);
    assert_eq!(log.recovery_report().bytes_scanned, 0);
    assert_eq!(log.read(3).unwrap().value, val(3));
    let err = log.read(4).unwrap_err();
    assert!(matches!(&err, Error::Corruption { pos, .. } if *pos == HEADER_LEN + 4 * FRAME), "{err}");
    let errs: Vec<_> = log.iter(..).filter_map(Result::err).collect();
    assert_eq!(errs.len(), 1);
    let report = log.verify();
    assert_eq!(report.problems.len(), 1);
    assert!(report.problems[0].to_string().contains(&inspect::segment_file_name(0)));
}

fn sealed_log(dir: &Path, n_segments: u64) -> Config {
    let config = Config { segment_records_max: 10, ..Config::default() };
    let mut log = Log::open_with(dir, Options { config: config.clone(), ..opts(StdFs::shared(), false) }).unwrap();
    append_n(&mut log, 10 * n_segments);
    log.close().unwrap();
    config
}

#[test]
fn damaged_footer_of_a_sealed_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    sealed_log(dir.path(), 3);
    let len = std::fs::metadata(seg0(dir.path())).unwrap().len();
    flip(&seg0(dir.path()), len - 10);
    let err = open(dir.path()).unwrap_err();
    assert!(matches!(&err, Error::Corruption { path, .. } if *path == seg0(dir.path())), "{err}");
    assert!(err.to_string().contains("footer"), "{err}");
}

#[test]
fn missing_middle_segment_is_reported_as_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    sealed_log(dir.path(), 3);
    std::fs::remove_file(dir.path().join(inspect::segment_file_name(10))).unwrap();
    let err = open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("not contiguous"), "{err}");
}

#[test]
fn missing_or_damaged_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { segment_records_max: 50, index_interval_bytes: 128, ..Config::default() };
    let mut log =
        Log::open_with(dir.path(), Options { config: config.clone(), ..opts(StdFs::shared(), false) }).unwrap();
    append_n(&mut log, 120);
    log.close().unwrap();
    std::fs::remove_file(dir.path().join(inspect::index_file_name(inspect::IndexKind::Offset, 0))).unwrap();
    let tix = dir.path().join(inspect::index_file_name(inspect::IndexKind::Time, 50));
    flip(&tix, 45);
    let log = Log::open_with(dir.path(), Options { config: config.clone(), ..opts(StdFs::shared(), false) }).unwrap();
    assert_records(&log, 120);
    log.close().unwrap();
    // close() wrote the rebuilt indexes back.
    assert!(dir.path().join(inspect::index_file_name(inspect::IndexKind::Offset, 0)).exists());
    let fixed = std::fs::read(&tix).unwrap();
    assert!(inspect::decode_index(inspect::IndexKind::Time, &fixed).is_ok());
}

#[test]
fn a_scan_from_a_segments_start_needs_no_index_but_a_seek_rebuilds_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { segment_records_max: 50, index_interval_bytes: 128, ..Config::default() };
    let mut log =
        Log::open_with(dir.path(), Options { config: config.clone(), ..opts(StdFs::shared(), false) }).unwrap();
    append_n(&mut log, 120);
    log.close().unwrap();
    for base in [0, 50] {
        for kind in [inspect::IndexKind::Offset, inspect::IndexKind::Time] {
            std::fs::remove_file(dir.path().join(inspect::index_file_name(kind, base))).unwrap();
        }
    }
    let log = Log::open_with(dir.path(), Options { config, ..opts(StdFs::shared(), true) }).unwrap();
    // Every record, from the first, across both sealed segments: no index
    // is loaded, so none is rebuilt.
    let all: Vec<_> = log.iter(0..120).map(|r| r.unwrap().offset).collect();
    assert_eq!(all, (0..120).collect::<Vec<_>>());
    assert_eq!(log.indexes_rebuilt(), 0);
    // A read in the middle of a segment seeks through its index: rebuilt.
    assert_eq!(log.read(75).unwrap().offset, 75);
    assert_eq!(log.indexes_rebuilt(), 1);
}

#[test]
fn temporaries_and_orphan_indexes_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    sealed_log(dir.path(), 2);
    std::fs::write(dir.path().join("00000000000000000020.log.tmp"), b"half a header").unwrap();
    std::fs::write(dir.path().join("00000000000000000099.index"), b"stale").unwrap();
    let log = open(dir.path()).unwrap();
    assert_eq!(log.recovery_report().temporaries_removed, vec!["00000000000000000020.log.tmp".to_string()]);
    assert_eq!(log.recovery_report().orphans_removed, vec!["00000000000000000099.index".to_string()]);
    assert!(!dir.path().join("00000000000000000020.log.tmp").exists());
    assert_records(&log, 20);
}

#[test]
fn wrong_directory_and_missing_log_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"not a log").unwrap();
    let err = open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::NotALogDirectory { .. }), "{err}");
    assert!(err.to_string().contains("notes.txt"));

    let missing = dir.path().join("nope");
    let err = Log::open_with(&missing, opts(StdFs::shared(), true)).unwrap_err();
    assert!(matches!(err, Error::NoLog { .. }), "{err}");
    assert!(!missing.exists(), "a read-only open must not create anything");

    let file = dir.path().join("notes.txt");
    let err = open(&file).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn unknown_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    sealed_log(dir.path(), 1);
    let p = seg0(dir.path());
    let mut b = std::fs::read(&p).unwrap();
    // 1 and 2 are an older build's plain and compacted segments, 3 this
    // build's; 4 is unknown.
    b[8..12].copy_from_slice(&4u32.to_le_bytes());
    let crc = crc(&b[..60]);
    b[60..64].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&p, b).unwrap();
    let err = open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::UnsupportedVersion { found: 4, supported: 3, .. }), "{err}");
}

fn crc(b: &[u8]) -> u32 {
    // CRC-32 (IEEE), bitwise, so the test does not share code with the log.
    let mut c = !0u32;
    for &x in b {
        c ^= u32::from(x);
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
    }
    !c
}

#[test]
fn read_only_open_never_writes() {
    let dir = tempfile::tempdir().unwrap();
    two_batches(dir.path(), 3);
    let f = std::fs::OpenOptions::new().write(true).open(seg0(dir.path())).unwrap();
    f.set_len(tail_start() + FRAME + 7).unwrap();
    drop(f);
    std::fs::write(dir.path().join("00000000000000000099.log.tmp"), b"x").unwrap();
    let before = dir_files(dir.path());
    let mut log = Log::open_with(dir.path(), opts(StdFs::shared(), true)).unwrap();
    assert_records(&log, 21);
    assert!(matches!(log.append(Entry::new(b"x")), Err(Error::ReadOnly { .. })));
    assert!(matches!(log.sync(), Err(Error::ReadOnly { .. })));
    log.close().unwrap();
    assert_eq!(dir_files(dir.path()), before);
}

#[test]
fn failed_fsync_poisons_until_reopen() {
    let dir = tempfile::tempdir().unwrap();
    // File fsyncs: the new segment's header (0), the new log's `log.meta`
    // (1), the first sync (2), the second (3).
    let fs = FailFs::new(&[FailOp::Sync], 3, io::ErrorKind::Other, false);
    let mut log = Log::open_with(dir.path(), opts(Arc::new(fs.clone()), false)).unwrap();
    append_n(&mut log, 5);
    log.sync().unwrap();
    append_n(&mut log, 5);
    let err = log.sync().unwrap_err();
    assert!(fs.tripped());
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(log.is_poisoned());
    assert_eq!(log.durable_offset(), 5, "nothing after the failed fsync is durable");
    // The log forgot everything after the last durable point, in memory and
    // in the file, so no reopen can read those bytes back as durable.
    assert_eq!(log.next_offset(), 5);
    assert!(matches!(log.read(7), Err(Error::OffsetOutOfRange { .. })));
    // Never retry an fsync: the next sync refuses instead of "succeeding".
    assert!(matches!(log.sync(), Err(Error::Poisoned { .. })));
    assert!(matches!(log.append(Entry::new(b"x")), Err(Error::Poisoned { .. })));
    assert!(log.close().is_err());
    let log = open(dir.path()).unwrap();
    assert_eq!(log.next_offset(), 5);
    for i in 0..5 {
        assert_eq!(log.read(i).unwrap().value, val(i));
    }
}

#[test]
fn failed_write_poisons() {
    let dir = tempfile::tempdir().unwrap();
    // File writes: the new segment's header (0), the new log's `log.meta`
    // (1), the first sync (2), the second (3).
    let fs = FailFs::new(&[FailOp::Write], 3, io::ErrorKind::PermissionDenied, false);
    let mut log = Log::open_with(dir.path(), opts(Arc::new(fs), false)).unwrap();
    append_n(&mut log, 5);
    log.sync().unwrap();
    let durable_segments = log.segments();
    append_n(&mut log, 5);
    assert!(matches!(log.sync(), Err(Error::Io { .. })));
    assert!(matches!(log.append(Entry::new(b"x")), Err(Error::Poisoned { .. })));
    // Back to exactly the last durable state, summaries included.
    assert_eq!(log.segments(), durable_segments);
    assert_eq!(log.next_offset(), 5);
}

/// Regression (found by the sim-harness campaign test, seeds 0..400, in a
/// debug build whose overflow checks caught it): a write
/// error while a sync flushed the first batch of a fresh segment reverted the
/// segment and then also took back the commit marker, underflowing its size.
#[test]
fn failed_write_in_the_first_sync_of_a_segment_reverts_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    // File writes: the new segment's header (0), the new log's `log.meta`
    // (1), then the first sync's (2).
    let fs = FailFs::new(&[FailOp::Write], 2, io::ErrorKind::Other, false);
    let mut log = Log::open_with(dir.path(), opts(Arc::new(fs), false)).unwrap();
    append_n(&mut log, 3);
    assert!(matches!(log.sync(), Err(Error::Io { .. })));
    assert_eq!(log.next_offset(), 0);
    let segs = log.segments();
    assert_eq!((segs.len(), segs[0].bytes, segs[0].n_records), (1, HEADER_LEN, 0));
    drop(log);
    assert_eq!(open(dir.path()).unwrap().next_offset(), 0);
}

#[test]
fn enospc_leaves_the_log_unchanged_and_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    // The fourth file write hits a full disk (header, `log.meta`, first
    // sync, then this).
    let fs = FailFs::new(&[FailOp::Write], 3, io::ErrorKind::StorageFull, false);
    let config = Config { sync: SyncPolicy::Always, ..Config::default() };
    let mut log = Log::open_with(dir.path(), Options { config, ..opts(Arc::new(fs.clone()), false) }).unwrap();
    log.append(Entry::new(&val(0))).unwrap();
    let err = log.append(Entry::new(&val(1))).unwrap_err();
    assert!(fs.tripped());
    assert!(err.is_disk_full(), "{err}");
    assert!(!log.is_poisoned());
    assert_eq!(log.next_offset(), 1, "a failed append must not move the end");
    assert!(log.read(1).is_err());
    // Space is back: appends work and land at the same offset.
    assert_eq!(log.append(Entry::new(&val(1))).unwrap(), 1);
    log.close().unwrap();
    assert_records(&open(dir.path()).unwrap(), 2);
}

#[test]
fn enospc_while_creating_a_segment_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { segment_records_max: 3, ..Config::default() };
    // CreateNew of: segment 0, its two index files at roll, then segment 3.
    let fs = FailFs::new(&[FailOp::Namespace], 0, io::ErrorKind::StorageFull, false);
    let mut log = Log::open_with(dir.path(), Options { config: config.clone(), ..opts(Arc::new(fs), false) }).unwrap();
    assert!(log.append(Entry::new(&val(0))).unwrap_err().is_disk_full());
    assert_eq!(log.next_offset(), 0);
    append_n(&mut log, 7);
    log.close().unwrap();
    assert_records(&open(dir.path()).unwrap(), 7);
}

#[test]
fn age_and_size_limits_roll_segments() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(10_000);
    let config = Config { segment_age_ms_max: Some(1000), ..Config::default() };
    let mut log = Log::open_with(
        dir.path(),
        Options { clock: Arc::new(clock.clone()), config: config.clone(), ..opts(StdFs::shared(), false) },
    )
    .unwrap();
    append_n(&mut log, 3);
    clock.advance(999);
    append_n(&mut log, 1);
    assert_eq!(log.segments().len(), 1);
    clock.advance(1);
    append_n(&mut log, 1);
    assert_eq!(log.segments().len(), 2);
    log.close().unwrap();
    // The age survives a restart: it is stored in the segment header.
    clock.advance(1000);
    let mut log =
        Log::open_with(dir.path(), Options { clock: Arc::new(clock), config, ..opts(StdFs::shared(), false) }).unwrap();
    append_n(&mut log, 1);
    let segs = log.segments();
    assert_eq!(segs.iter().map(|s| s.base_offset).collect::<Vec<_>>(), vec![0, 4, 5]);
    assert!(segs[0].sealed && segs[1].sealed && !segs[2].sealed);
    assert_eq!(segs[0].min_timestamp_ms, Some(10_000));
    assert_eq!(segs[0].max_timestamp_ms, Some(10_999));

    let dir = tempfile::tempdir().unwrap();
    let config = Config { segment_bytes_max: 4096, record_bytes_max: 1024, ..Config::default() };
    let mut log = Log::open_with(dir.path(), Options { config, ..opts(StdFs::shared(), false) }).unwrap();
    append_n(&mut log, 200);
    for s in log.segments() {
        assert!(s.bytes <= 4096, "{s:?}");
    }
    assert!(log.segments().len() > 2);
}

#[test]
fn bad_config_and_oversized_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { index_interval_bytes: 0, ..Config::default() };
    let err = Log::open_with(dir.path(), Options { config, ..opts(StdFs::shared(), false) }).unwrap_err();
    assert!(matches!(err, Error::Config(_)));
    assert!(err.to_string().contains("index_interval_bytes"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing touched");

    let config = Config { record_bytes_max: 100, ..Config::default() };
    let mut log = Log::open_with(dir.path(), Options { config, ..opts(StdFs::shared(), false) }).unwrap();
    let err = log.append(Entry::new(&[0; 90]).with_key(&[1; 11])).unwrap_err();
    assert!(matches!(err, Error::RecordTooLarge { size: 101, max: 100 }), "{err}");
    assert_eq!(log.next_offset(), 0);
}

#[test]
fn rot_in_a_commit_marker_is_proven_durable_by_the_next_batch() {
    let dir = tempfile::tempdir().unwrap();
    two_batches(dir.path(), 0);
    flip(&seg0(dir.path()), batch2_start() - MARKER + 20);
    let err = open(dir.path()).unwrap_err();
    assert!(matches!(&err, Error::Corruption { pos, .. } if *pos == batch2_start() - MARKER), "{err}");
    assert!(err.to_string().contains("a later batch was committed"), "{err}");
}

/// Regression (found by the group-commit simulator, seed 6944): a full disk
/// while clearing a finished truncation's intent made `truncate_from` report
/// `DiskFull` ("nothing changed") although the cut was done. Now, at every
/// possible failing write: the call fails with `DiskFull` and the log is
/// unchanged, or fails with an I/O error after its intent was durable (the
/// log is poisoned and a reopen finishes the cut), or succeeds, and then a
/// record appended afterwards survives a reopen (a stale intent left in
/// `log.meta` must never cut it).
#[test]
fn enospc_at_every_write_of_a_suffix_truncation() {
    let mut outcomes = (0, 0);
    for n in 0..40 {
        let dir = tempfile::tempdir().unwrap();
        let fs = FailFs::new(&[FailOp::Write, FailOp::Namespace], n, io::ErrorKind::StorageFull, false);
        let Some(mut log) = ten_synced_before_the_failure(dir.path(), &fs) else { continue };
        match log.truncate_from(5) {
            Ok(()) => {
                assert_eq!(log.next_offset(), 5);
                if !fs.tripped() {
                    continue; // the failure would come later, outside the truncation
                }
                outcomes.0 += 1;
                // The disk has room again (the failure was one-shot).
                assert_eq!(log.append(Entry::new(&val(42))).unwrap(), 5);
                log.sync().unwrap();
                drop(log);
                let log = open(dir.path()).unwrap();
                assert_eq!(log.next_offset(), 6, "n={n}: the record appended after the truncation was lost");
                assert_eq!(log.read(5).unwrap().value, val(42));
            }
            Err(e) if e.is_disk_full() => {
                outcomes.1 += 1;
                assert!(!log.is_poisoned());
                assert_eq!(log.next_offset(), 10, "n={n}: a truncation that failed with DiskFull changed the log");
                drop(log);
                assert_records(&open(dir.path()).unwrap(), 10);
            }
            // Failed after its intent was durable: poisoned, and a reopen
            // finishes it.
            Err(e @ Error::Io { .. }) => {
                outcomes.1 += 1;
                assert!(log.is_poisoned(), "n={n}: {e}");
                drop(log);
                assert_records(&open(dir.path()).unwrap(), 5);
            }
            Err(e) => panic!("n={n}: {e}"),
        }
    }
    assert!(outcomes.0 > 0 && outcomes.1 > 0, "{outcomes:?}");
}

/// A log on `fs` holding 10 synced records, if `fs`'s one failure did not
/// strike while building it (the failure is meant for what comes next).
fn ten_synced_before_the_failure(dir: &Path, fs: &FailFs) -> Option<Log> {
    let mut log = Log::open_with(dir, opts(Arc::new(fs.clone()), false)).ok()?;
    for i in 0..10 {
        log.append(Entry::new(&val(i))).ok()?;
    }
    log.sync().ok()?;
    (!fs.tripped()).then_some(log)
}

/// `restart_at` past the end: the log restarts empty at the new offset, the
/// old segments are gone, appends continue there, and all of it survives a
/// reopen (read-write and read-only). A restart inside the log is refused.
#[test]
fn restart_past_the_end_starts_an_empty_log_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path()).unwrap();
    append_n(&mut log, 12);
    log.roll().unwrap();
    append_n(&mut log, 3);
    assert!(matches!(log.restart_at(14), Err(Error::OffsetOutOfRange { offset: 14, .. })));
    log.restart_at(100).unwrap();
    assert_eq!((log.first_offset(), log.next_offset(), log.durable_offset()), (100, 100, 100));
    assert!(matches!(log.read(5), Err(Error::OffsetOutOfRange { .. })));
    assert_eq!(log.segments().len(), 1);
    drop(log);
    let names = dir_files(dir.path());
    assert!(
        !names.iter().any(|n| n.0.starts_with("00000000000000000000")),
        "{:?}",
        names.iter().map(|n| &n.0).collect::<Vec<_>>()
    );

    let ro = Log::open_with(dir.path(), opts(StdFs::shared(), true)).unwrap();
    assert_eq!((ro.first_offset(), ro.next_offset()), (100, 100));
    drop(ro);
    let mut log = open(dir.path()).unwrap();
    assert_eq!((log.first_offset(), log.next_offset()), (100, 100));
    assert_eq!(log.recovery_report().finished_restart, None);
    assert_eq!(log.append(Entry::new(&val(100))).unwrap(), 100);
    log.sync().unwrap();
    drop(log);
    let log = open(dir.path()).unwrap();
    assert_eq!((log.first_offset(), log.next_offset()), (100, 101));
    assert_eq!(log.read(100).unwrap().value, val(100));
}

/// A crash right after a restart's intent became durable (simulated by
/// writing `log.meta` with the restart flag by hand): the open finishes the
/// restart; a read-only open shows the restarted (empty) log without
/// writing. Without the flag, the same first offset past the end is
/// corruption.
#[test]
fn interrupted_restart_is_finished_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path()).unwrap();
    append_n(&mut log, 7);
    log.sync().unwrap();
    drop(log);
    let meta = dir.path().join(inspect::META_FILE_NAME);
    std::fs::write(
        &meta,
        inspect::Meta { first_offset: 50, truncate_from: None, restart: false, ..Default::default() }.encode(),
    )
    .unwrap();
    assert!(matches!(open(dir.path()), Err(Error::Corruption { .. })));
    std::fs::write(
        &meta,
        inspect::Meta { first_offset: 50, truncate_from: None, restart: true, ..Default::default() }.encode(),
    )
    .unwrap();
    let before = dir_files(dir.path());
    let ro = Log::open_with(dir.path(), opts(StdFs::shared(), true)).unwrap();
    assert_eq!((ro.first_offset(), ro.next_offset()), (50, 50));
    assert!(ro.iter(..).next().is_none());
    drop(ro);
    assert_eq!(dir_files(dir.path()), before, "a read-only open wrote");
    let log = open(dir.path()).unwrap();
    assert_eq!(log.recovery_report().finished_restart, Some(50));
    assert_eq!((log.first_offset(), log.next_offset()), (50, 50));
    drop(log);
    let b = std::fs::read(&meta).unwrap();
    assert_eq!(
        inspect::Meta::decode(&b).unwrap(),
        inspect::Meta {
            first_offset: 50,
            truncate_from: None,
            restart: false,
            last_segment: Some(50),
            ..Default::default()
        }
    );
    assert!(dir_files(dir.path()).iter().any(|n| n.0 == inspect::segment_file_name(50)));
}

/// ENOSPC at every write of a restart: `DiskFull` with the log unchanged,
/// or an I/O error after the intent was durable (poisoned; a reopen
/// finishes the restart), or success; a record appended after a successful
/// restart survives a reopen (a stale intent must not hide it).
#[test]
fn enospc_at_every_write_of_a_restart() {
    let mut outcomes = (0, 0, 0);
    for n in 0..40 {
        let dir = tempfile::tempdir().unwrap();
        let fs = FailFs::new(&[FailOp::Write, FailOp::Namespace], n, io::ErrorKind::StorageFull, false);
        let Some(mut log) = ten_synced_before_the_failure(dir.path(), &fs) else { continue };
        match log.restart_at(30) {
            Ok(()) => {
                assert_eq!((log.first_offset(), log.next_offset()), (30, 30));
                if !fs.tripped() {
                    continue;
                }
                outcomes.0 += 1;
                assert_eq!(log.append(Entry::new(&val(42))).unwrap(), 30);
                log.sync().unwrap();
                drop(log);
                let log = open(dir.path()).unwrap();
                assert_eq!((log.first_offset(), log.next_offset()), (30, 31), "n={n}");
                assert_eq!(log.read(30).unwrap().value, val(42));
            }
            Err(e) if e.is_disk_full() => {
                outcomes.1 += 1;
                assert!(!log.is_poisoned());
                assert_eq!(log.next_offset(), 10, "n={n}: a restart that failed with DiskFull changed the log");
                drop(log);
                assert_records(&open(dir.path()).unwrap(), 10);
            }
            Err(e @ Error::Io { .. }) => {
                outcomes.2 += 1;
                assert!(log.is_poisoned(), "n={n}: {e}");
                drop(log);
                let log = open(dir.path()).unwrap();
                assert_eq!((log.first_offset(), log.next_offset()), (30, 30), "n={n}");
            }
            Err(e) => panic!("n={n}: {e}"),
        }
    }
    assert!(outcomes.0 > 0 && outcomes.1 > 0 && outcomes.2 > 0, "{outcomes:?}");
}

/// Issue "One writer per log directory": a second read-write open of a
/// directory that a `Log` (or a `SharedLog`) holds is refused at once with
/// `Locked`, whose message says what to do, and changes nothing; a
/// read-only open works beside the writer; closing or dropping the writer
/// releases the directory.
#[test]
fn a_second_writer_is_refused_until_the_first_one_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path()).unwrap();
    append_n(&mut log, 5);
    log.sync().unwrap();
    let before = dir_files(dir.path());
    match open(dir.path()) {
        Err(e @ Error::Locked { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("locked by another writer") && msg.contains("read-only"), "{msg}");
        }
        other => panic!("a second writer was not refused: {:?}", other.map(|l| l.next_offset())),
    }
    assert_eq!(dir_files(dir.path()), before, "the refused open changed the directory");
    let ro = Log::open_with(dir.path(), opts(StdFs::shared(), true)).unwrap();
    assert_eq!(ro.next_offset(), 5);
    drop(ro);
    log.close().unwrap();
    let log = open(dir.path()).unwrap();
    drop(log);
    // A group-commit front holds the lock until it shut down.
    let log = open(dir.path()).unwrap();
    let (shared, committer) = seglog_core::SharedLog::new(log, seglog_core::GroupConfig::default()).unwrap();
    assert!(matches!(open(dir.path()), Err(Error::Locked { .. })));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let commit = tokio::task::spawn_blocking(move || committer.run_blocking());
        shared.append(seglog_core::OwnedEntry::new("six")).await.unwrap();
        shared.shutdown().await.unwrap();
        commit.await.unwrap().unwrap();
    });
    let log = open(dir.path()).unwrap();
    assert_eq!(log.next_offset(), 6);
}

/// Issue "One writer per log directory" (item 5): a `log.meta` written by a
/// newer format version is refused as `UnsupportedVersion` (use a newer
/// build), never as corruption with advice to delete or restore it; and a
/// log whose `log.meta` carries epochs reopens with them.
#[test]
fn a_newer_log_meta_is_unsupported_not_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path()).unwrap();
    append_n(&mut log, 8);
    log.truncate_from(5).unwrap();
    append_n(&mut log, 2);
    log.close().unwrap();
    let path = dir.path().join(inspect::META_FILE_NAME);
    let mut b = std::fs::read(&path).unwrap();
    assert_eq!(b.len(), 48 + 16, "one epoch entry");
    assert_eq!(&b[8..12], &3u32.to_le_bytes());
    assert_eq!(open(dir.path()).unwrap().next_offset(), 7);
    b[8..12].copy_from_slice(&4u32.to_le_bytes());
    let n = b.len() - 4;
    let crc = crc32fast::hash(&b[..n]);
    b[n..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &b).unwrap();
    for read_only in [false, true] {
        match Log::open_with(dir.path(), opts(StdFs::shared(), read_only)) {
            Err(Error::UnsupportedVersion { found: 4, path: p, .. }) => assert_eq!(p, path),
            other => panic!("read_only {read_only}: {:?}", other.map(|l| l.next_offset())),
        }
    }
}

/// Issue "One writer per log directory" (item 4): a segment file the
/// on-disk state proves existed is reported as `Corruption` naming it when
/// it disappears, never accepted as a log that silently starts later: the
/// first segment (via `log.meta`'s first offset, or offset 0 without it),
/// every segment (`log.meta` present, no segment), a middle one
/// (contiguity), and `log.meta` itself after a prefix truncation.
#[test]
fn a_lost_segment_file_is_reported_never_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { segment_records_max: 4, ..Config::default() };
    let o = |read_only| Options { config: config.clone(), ..opts(StdFs::shared(), read_only) };
    let mut log = Log::open_with(dir.path(), o(false)).unwrap();
    append_n(&mut log, 20);
    log.close().unwrap();
    let plain = dir_files(dir.path());
    let seg = |b: u64| inspect::segment_file_name(b);
    let lay_out = |files: &[(String, Vec<u8>)], without: &[String]| {
        for e in std::fs::read_dir(dir.path()).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
        for (name, bytes) in files.iter().filter(|(n, _)| !without.contains(n)) {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
    };
    let refused = |missing: &str, what: &str| {
        for read_only in [true, false] {
            match Log::open_with(dir.path(), o(read_only)) {
                Err(Error::Corruption { detail, path, .. }) => {
                    assert!(detail.contains("missing"), "{what}: {detail}");
                    assert!(
                        path.ends_with(missing) || detail.contains(missing),
                        "{what}: {} / {detail}",
                        path.display()
                    );
                }
                other => {
                    panic!("{what} (read_only {read_only}): {:?}", other.map(|l| (l.first_offset(), l.next_offset())))
                }
            }
        }
    };
    // No prefix truncation: the log starts at 0. Every segment file is
    // missed when lost: the first (the log starts at 0), a middle one (a
    // gap), the last one (its predecessor is sealed, which happens only once
    // its successor is durable), the last two.
    let bases = [0, 4, 8, 12, 16];
    assert_eq!(plain.iter().filter(|(n, _)| n.ends_with(".log")).count(), bases.len());
    for b in bases {
        lay_out(&plain, &[seg(b)]);
        refused(&seg(b), &format!("segment {b} of a plain log"));
    }
    lay_out(&plain, &[seg(12), seg(16)]);
    refused(&seg(16), "the last two segments");
    // The last segment lost and its predecessor's footer and last record
    // destroyed (seed 239556): the predecessor no longer proves it was
    // sealed, but `log.meta` names the last segment.
    let mut damaged = plain.clone();
    let (_, bytes) = damaged.iter_mut().find(|(n, _)| *n == seg(12)).unwrap();
    let n = bytes.len();
    bytes[n - inspect::MARKER_FRAME_LEN - 8..].fill(0);
    lay_out(&damaged, &[seg(16)]);
    refused(&seg(16), "the last segment, with its predecessor's end damaged");
    // `log.meta` is written before a log's first record: without it, a
    // segment holding records proves it was lost.
    assert!(plain.iter().any(|(n, _)| n == inspect::META_FILE_NAME), "a new log has log.meta");
    lay_out(&plain, &[inspect::META_FILE_NAME.to_string()]);
    refused(inspect::META_FILE_NAME, "log.meta of a log never truncated");
    // Lost index files lose nothing: they are rebuilt.
    let derived: Vec<String> =
        plain.iter().map(|(n, _)| n.clone()).filter(|n| n.ends_with(".index") || n.ends_with(".timeindex")).collect();
    assert!(derived.len() >= 8, "{derived:?}");
    for name in &derived {
        lay_out(&plain, std::slice::from_ref(name));
        for read_only in [true, false] {
            let log = Log::open_with(dir.path(), o(read_only)).unwrap_or_else(|e| panic!("without {name}: {e}"));
            assert_records(&log, 20);
        }
    }
    // After a prefix truncation to 6, the segment holding 6 (base 4) must exist.
    lay_out(&plain, &[]);
    let mut log = Log::open_with(dir.path(), o(false)).unwrap();
    log.truncate_before(6).unwrap();
    log.close().unwrap();
    let truncated = dir_files(dir.path());
    assert!(!truncated.iter().any(|(n, _)| *n == seg(0)), "segment 0 was removed by the prefix truncation");
    lay_out(&truncated, &[seg(4)]);
    refused(&seg(6), "the segment holding the first offset");
    let all_segments: Vec<String> = truncated.iter().map(|(n, _)| n.clone()).filter(|n| n.ends_with(".log")).collect();
    lay_out(&truncated, &all_segments);
    refused(inspect::META_FILE_NAME, "every segment");
    lay_out(&truncated, &[inspect::META_FILE_NAME.to_string()]);
    refused(inspect::META_FILE_NAME, "log.meta after a prefix truncation");
    // The intact directory still opens, at 6.
    lay_out(&truncated, &[]);
    let log = Log::open_with(dir.path(), o(true)).unwrap();
    assert_eq!((log.first_offset(), log.next_offset()), (6, 20));
}

/// Issue "One writer per log directory" (item 2): `DiskFull` promises "the
/// log is unchanged, nothing was appended", yet `sync` and `close` returned
/// it while their records stayed accepted (a caller who appended them again
/// got duplicates), and a close whose data was durable reported a failure.
/// Now, with ENOSPC at every write of a `sync` and of a `close` in turn:
/// a sync says `DiskFullNotDurable` and changes nothing (sync again: no
/// loss, no duplicate); a close says `DiskFullAtClose` with the durable
/// offset, or succeeds when only its trailer or index writes failed.
#[test]
fn enospc_at_every_write_of_sync_and_close_tells_the_truth() {
    let base = tempfile::tempdir().unwrap();
    let mut log = open(base.path()).unwrap();
    append_n(&mut log, 5);
    log.close().unwrap();
    let files = dir_files(base.path());
    let lay_out = |dir: &Path| {
        for (name, bytes) in &files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    };
    let (mut sync_failures, mut close_failures) = (0, 0);
    for closing in [false, true] {
        for n in 0.. {
            let dir = tempfile::tempdir().unwrap();
            lay_out(dir.path());
            let fs = FailFs::new(&[FailOp::Write], n, io::ErrorKind::StorageFull, false);
            let mut log = Log::open_with(dir.path(), opts(Arc::new(fs.clone()), false)).unwrap();
            append_n(&mut log, 3);
            if closing {
                match log.close() {
                    Ok(()) => {}
                    Err(Error::DiskFullAtClose { durable, next, .. }) => {
                        assert_eq!((durable, next), (5, 8), "n={n}");
                        close_failures += 1;
                        let log = open(dir.path()).unwrap();
                        assert!((5..=8).contains(&log.next_offset()), "n={n}: {}", log.next_offset());
                        assert_records(&log, log.next_offset());
                        continue;
                    }
                    Err(e) => panic!("n={n}: close failed otherwise: {e}"),
                }
            } else {
                match log.sync() {
                    Ok(()) => {}
                    Err(e @ Error::DiskFullNotDurable { durable, next, .. }) => {
                        assert_eq!((durable, next), (5, 8), "n={n}");
                        assert!(e.to_string().contains("without appending them again"), "{e}");
                        assert!(!log.is_poisoned());
                        assert_eq!(
                            (log.durable_offset(), log.next_offset()),
                            (5, 8),
                            "n={n}: the sync changed the log"
                        );
                        assert_records(&log, 8);
                        sync_failures += 1;
                        log.sync().unwrap();
                    }
                    Err(e) => panic!("n={n}: sync failed otherwise: {e}"),
                }
                log.close().unwrap();
            }
            let tripped = fs.tripped();
            assert_records(&open(dir.path()).unwrap(), 8);
            if !tripped {
                break;
            }
        }
    }
    assert!(sync_failures > 0 && close_failures > 0, "{sync_failures} {close_failures}");
}

/// Successor first (issue "One writer per log directory", item 4): a roll
/// makes the new segment durable before it seals the old one. A crash in
/// between leaves the old segment unsealed and the new one empty: the open
/// seals the old one, keeping every record. Since every record of the old
/// segment was synced before the new one was created, a scan that ends
/// short of the new segment's base is damage, never a torn tail.
#[test]
fn an_interrupted_roll_is_finished_and_a_short_old_segment_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path()).unwrap();
    append_n(&mut log, 10);
    log.roll().unwrap();
    drop(log);
    let new_seg = dir.path().join(inspect::segment_file_name(10));
    assert_eq!(std::fs::metadata(&new_seg).unwrap().len(), HEADER_LEN);
    let old = std::fs::read(seg0(dir.path())).unwrap();
    let unsealed = old.len() - inspect::MARKER_FRAME_LEN;
    // The footer never reached the disk.
    std::fs::write(seg0(dir.path()), &old[..unsealed]).unwrap();
    let ro = Log::open_with(dir.path(), opts(StdFs::shared(), true)).unwrap();
    assert_records(&ro, 10);
    drop(ro);
    let log = open(dir.path()).unwrap();
    assert_eq!(log.recovery_report().finished_roll, Some(0));
    assert_records(&log, 10);
    assert!(log.segments()[0].sealed);
    drop(log);
    assert_eq!(std::fs::read(seg0(dir.path())).unwrap().len(), old.len(), "the open wrote the footer");
    // The footer and the last record's frame gone: the records were synced
    // before segment 10 existed, so this is damage.
    std::fs::write(seg0(dir.path()), &old[..unsealed - inspect::MARKER_FRAME_LEN - 40]).unwrap();
    for read_only in [true, false] {
        match Log::open_with(dir.path(), opts(StdFs::shared(), read_only)) {
            Err(Error::Corruption { detail, .. }) => assert!(detail.contains("damaged"), "{detail}"),
            other => panic!("read_only {read_only}: {:?}", other.map(|l| l.next_offset())),
        }
    }
}

/// The directory fsyncs of an open (`fs/checked.rs`, "The directory fsync
/// an open owes"): a new log syncs its parents and itself at open; a clean
/// reopen changes nothing and fsyncs nothing; the first mutation after it
/// — here the first append's write — is preceded by a fsync of the log
/// directory; a reopen after a crash fsyncs the directory before recovery
/// writes anything.
#[test]
fn a_clean_open_fsyncs_nothing_and_the_first_write_pays_the_directory_fsync() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("a/log");
    let fs = FailFs::passthrough();
    let syncs_of = |ms: &[tests::Mutation], p: &Path| ms.iter().filter(|m| m.op == "sync_dir" && m.path == p).count();

    let mut log = Log::open_with(&dir, opts(Arc::new(fs.clone()), false)).unwrap();
    let at_create = fs.take_mutations();
    assert_eq!(syncs_of(&at_create, &dir), 1, "{at_create:?}");
    assert_eq!(syncs_of(&at_create, &root.path().join("a")), 1, "a new log syncs its parents: {at_create:?}");
    append_n(&mut log, 10);
    log.sync().unwrap();
    log.close().unwrap();
    fs.take_mutations();

    let mut log = Log::open_with(&dir, opts(Arc::new(fs.clone()), false)).unwrap();
    assert!(log.recovery_report().clean);
    assert_eq!(fs.take_mutations(), vec![], "a clean open changes nothing and fsyncs nothing");
    assert_records(&log, 10);
    append_n(&mut log, 1);
    log.sync().unwrap();
    let first_write = fs.take_mutations();
    assert_eq!(first_write.first().map(|m| (m.op, m.path.clone())), Some(("sync_dir", dir.clone())), "{first_write:?}");
    assert_eq!(syncs_of(&first_write, &dir), 1, "paid once: {first_write:?}");
    assert_eq!(syncs_of(&first_write, &root.path().join("a")), 0, "an existing log's parents are not synced again");
    // A crash: the handle vanishes without a clean close (its lock with it).
    drop(log);
    fs.take_mutations();

    let log = Log::open_with(&dir, opts(Arc::new(fs.clone()), false)).unwrap();
    assert!(!log.recovery_report().clean);
    let at_recovery = fs.take_mutations();
    assert_eq!(
        at_recovery.first().map(|m| (m.op, m.path.clone())),
        Some(("sync_dir", dir.clone())),
        "recovery writes only after the owed directory fsync: {at_recovery:?}"
    );
    assert_records(&log, 11);
}

/// Found by the simulator's schedules (a process restart after a failed
/// fsync, same boot): a `truncate_from` whose fsync failed left the page
/// cache showing the cut while the disk kept the old bytes; a reopen in the
/// same boot trusted the cache, wrote after the cut, and a later crash
/// left a durable segment that no longer verified. Now the failed fsync
/// leaves `log.resync`, the reopen rewrites the file from what it reads,
/// and every crash after that finds what the reopen found.
#[test]
fn a_reopen_in_the_same_boot_after_a_failed_fsync_rewrites_what_it_trusts() {
    use sim_fs::{CrashPolicy, FaultConfig, SimFs};
    let dir = Path::new("/data/log");
    let config = Config { sync: SyncPolicy::Manual, ..Config::default() };
    let mut segments_rewritten = 0;
    for seed in 0..40 {
        for policy in CrashPolicy::ALL {
            let plan = |p_sync_eio| FaultConfig { p_sync_eio, crash_policies: vec![policy], ..FaultConfig::default() };
            let fs = SimFs::new(seed, plan(0.0));
            let o = || Options { config: config.clone(), ..opts(fs.shared(), false) };
            let mut log = Log::open_with(dir, o()).unwrap();
            for i in 0..8u8 {
                log.append(Entry::new(&[i; 40])).unwrap();
            }
            log.close().unwrap();
            let mut log = Log::open_with(dir, o()).unwrap();
            // Half the fsyncs fail, dropping what they would have written.
            fs.set_config(plan(0.5));
            match log.truncate_from(5) {
                Ok(()) => continue,
                Err(Error::Io { .. }) => assert!(log.is_poisoned()),
                Err(e) => panic!("{e}"),
            }
            drop(log);
            assert!(fs.contents(&dir.join("log.resync")).is_some(), "seed {seed}: the failed fsync left no marker");
            fs.set_config(plan(0.0));
            // The same boot: the page cache still shows what the disk never
            // got, and hides what it still has.
            let mut log = Log::open_with(dir, o()).unwrap();
            assert!(fs.contents(&dir.join("log.resync")).is_none(), "the marker outlived the resync");
            if log.recovery_report().resynced.iter().any(|f| f.ends_with(".log")) {
                segments_rewritten += 1;
            }
            let n = log.next_offset();
            assert!(n == 5 || n == 8, "{n} records");
            log.append(Entry::new(b"after")).unwrap();
            log.sync().unwrap();
            drop(log);
            fs.crash_with(policy);
            let log = Log::open_with(dir, o()).unwrap();
            assert_eq!(log.next_offset(), n + 1, "seed {seed}, {policy:?}");
            let recs: Vec<_> = log.iter(..).collect::<Result<_, _>>().unwrap();
            assert_eq!(recs.len() as u64, n + 1);
            assert_eq!(recs.last().unwrap().value, b"after");
        }
    }
    assert!(segments_rewritten > 10, "only {segments_rewritten} cases failed the segment's fsync");
}

/// A resync marker names the boot it was written in: one an earlier boot
/// left (its page cache is gone with it) is removed without rewriting
/// anything, and one of this boot rewrites what it names. Before, a marker
/// that survived a reboot made every open rewrite the whole log again, and
/// a disk failing one fsync in twenty never let a large log open (seed
/// 798457 of the simulator).
#[test]
fn a_resync_marker_of_an_earlier_boot_is_only_removed() {
    use seglog_core::FileSystem;
    use sim_fs::{FaultConfig, SimFs};
    let dir = Path::new("/data/log");
    let fs = SimFs::new(3, FaultConfig::default());
    let o = || opts(fs.shared(), false);
    let mut log = Log::open_with(dir, o()).unwrap();
    for i in 0..5u8 {
        log.append(Entry::new(&[i; 10])).unwrap();
    }
    log.close().unwrap();
    let marker = dir.join(seglog_core::inspect::RESYNC_FILE_NAME);
    let write_marker = |text: &str| {
        let f = fs.open(&marker, seglog_core::OpenMode::CreateNew).unwrap();
        seglog_core::write_all_at(&*f, text.as_bytes(), 0).unwrap();
    };
    let this_boot = fs.boot_id().unwrap();
    write_marker("boot some-earlier-boot\n00000000000000000000.log\n");
    let log = Log::open_with(dir, o()).unwrap();
    assert!(log.recovery_report().resynced.is_empty(), "{:?}", log.recovery_report());
    assert!(fs.contents(&marker).is_none(), "the stale marker stayed");
    assert_eq!(log.next_offset(), 5);
    drop(log);
    write_marker(&format!("boot {this_boot}\n00000000000000000000.log\n"));
    let log = Log::open_with(dir, o()).unwrap();
    assert_eq!(log.recovery_report().resynced, vec!["00000000000000000000.log".to_string()]);
    assert!(fs.contents(&marker).is_none());
    assert_eq!(log.next_offset(), 5);
}

/// Found by `run --seeds 800000..825000` (seed 823057): a segment this
/// process created is written as `<name>.tmp` and renamed into place, and
/// its handle kept the temporary's name, so a failed fsync of it put the
/// temporary's name in `log.resync`; the reopen in the same boot rewrote
/// nothing, trusted a cache that showed a cut the disk never got, and after
/// a crash a frame that write had let through came back as a stale record.
/// The marker now names the file by its final name, and a name the
/// directory does not hold rewrites every file.
#[test]
fn a_failed_fsync_of_a_segment_created_in_this_process_names_the_segment() {
    use seglog_core::FileSystem;
    use sim_fs::{FaultConfig, SimFs};
    let dir = Path::new("/data/log");
    let marker = dir.join(seglog_core::inspect::RESYNC_FILE_NAME);
    let config = Config { sync: SyncPolicy::Manual, ..Config::default() };
    let fs = SimFs::new(5, FaultConfig::default());
    let o = || Options { config: config.clone(), ..opts(fs.shared(), false) };
    // A new log: its first segment is created (through a temporary) by
    // this process, and its handle is the one that appends.
    let mut log = Log::open_with(dir, o()).unwrap();
    log.append(Entry::new(b"first")).unwrap();
    fs.set_config(FaultConfig { p_sync_eio: 1.0, ..FaultConfig::default() });
    assert!(matches!(log.sync(), Err(Error::Io { .. })));
    drop(log);
    fs.set_config(FaultConfig::default());
    let text = String::from_utf8(fs.contents(&marker).expect("the failed fsync left no marker")).unwrap();
    assert!(text.lines().any(|l| l == "00000000000000000000.log"), "the marker names {text:?}");
    assert!(!text.contains(".tmp"), "the marker names a temporary: {text:?}");
    let log = Log::open_with(dir, o()).unwrap();
    assert!(
        log.recovery_report().resynced.contains(&"00000000000000000000.log".to_string()),
        "{:?}",
        log.recovery_report()
    );
    drop(log);
    // A marker naming a file the directory does not hold cannot say which
    // file it meant: everything the log relies on is rewritten.
    let f = fs.open(&marker, seglog_core::OpenMode::CreateNew).unwrap();
    let boot = fs.boot_id().unwrap();
    seglog_core::write_all_at(&*f, format!("boot {boot}\n00000000000000000099.log\n").as_bytes(), 0).unwrap();
    drop(f);
    let log = Log::open_with(dir, o()).unwrap();
    let resynced = &log.recovery_report().resynced;
    assert!(resynced.contains(&"00000000000000000000.log".to_string()) && resynced.contains(&"log.meta".to_string()));
    assert!(fs.contents(&marker).is_none());
}

/// Found by `run --seeds 875000..900000` (seed 881374): an fsync failed on
/// a full disk, writing the resync marker hit ENOSPC too, the reopen in the
/// same boot trusted a cache that hid a cut the disk never got, and after a
/// crash the cut records came back. Room for the marker is now reserved
/// (`log.spare`) and renamed into place when an fsync fails, so a full disk
/// cannot stop it.
#[test]
fn a_failed_fsync_on_a_full_disk_still_leaves_its_marker() {
    use sim_fs::{FaultConfig, SimFs};
    let dir = Path::new("/data/log");
    let marker = dir.join(seglog_core::inspect::RESYNC_FILE_NAME);
    let spare = dir.join(seglog_core::inspect::RESYNC_SPARE_FILE_NAME);
    let config = Config { sync: SyncPolicy::Manual, ..Config::default() };
    let fs = SimFs::new(9, FaultConfig::default());
    let o = || Options { config: config.clone(), ..opts(fs.shared(), false) };
    let mut log = Log::open_with(dir, o()).unwrap();
    assert!(fs.contents(&spare).is_some_and(|c| c.len() == 4096), "the open reserved no room for the marker");
    log.append(Entry::new(&[7; 300])).unwrap();
    // The disk is full from here on, and the fsync fails.
    fs.set_config(FaultConfig { capacity_bytes: Some(fs.used_bytes()), p_sync_eio: 1.0, ..FaultConfig::default() });
    assert!(log.sync().is_err());
    drop(log);
    let text = String::from_utf8(fs.contents(&marker).expect("no marker on a full disk")).unwrap();
    assert!(text.lines().any(|l| l == "00000000000000000000.log"), "the marker says {text:?}");
    assert!(fs.contents(&spare).is_none(), "the spare should have become the marker");
    // Room for the resync's rewrite of the segment, none for a new spare.
    fs.set_config(FaultConfig { capacity_bytes: Some(fs.used_bytes() + 1024), ..FaultConfig::default() });
    let mut log = Log::open_with(dir, o()).unwrap();
    assert!(log.recovery_report().resynced.contains(&"00000000000000000000.log".to_string()));
    assert!(fs.contents(&marker).is_none(), "the marker outlived the resync");
    assert!(fs.contents(&spare).is_some(), "the room was not reserved again");
    // The resync gave the marker's room back (seed 898067): a disk still
    // full does not stop the next marker either.
    log.append(Entry::new(&[8; 300])).unwrap();
    fs.set_config(FaultConfig { capacity_bytes: Some(fs.used_bytes()), p_sync_eio: 1.0, ..FaultConfig::default() });
    assert!(log.sync().is_err());
    drop(log);
    let text = String::from_utf8(fs.contents(&marker).expect("no marker the second time")).unwrap();
    assert!(text.lines().any(|l| l == "00000000000000000000.log"), "the marker says {text:?}");
}
