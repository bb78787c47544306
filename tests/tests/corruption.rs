//! Corruption corpus: a small log of several segments, then every single
//! byte of every file flipped, and every file cut at every length. Opening
//! and reading must never panic and never return a byte that differs from
//! what was written: the answer is a typed error or a valid prefix.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "a test fails loudly")]

use std::path::Path;
use std::sync::Arc;

use seglog_core::inspect::{self, FileKind, parse_file_name};
use seglog_core::{Config, Entry, Error, FixedClock, Log, Options, Record, StdFs};
use tests::{dir_files, value_for};

const SEED: u64 = 0x5EED;

fn options() -> Options {
    Options {
        fs: StdFs::shared(),
        clock: Arc::new(FixedClock(7)),
        config: Config { segment_records_max: 6, index_interval_bytes: 64, ..Config::default() },
        read_only: false,
    }
}

/// Writes the corpus log; returns its files and records. With `clean`, it
/// is closed cleanly; otherwise its last segment ends in an unsynced batch.
fn build(dir: &Path, clean: bool) -> (Vec<(String, Vec<u8>)>, Vec<Record>) {
    let mut log = Log::open_with(dir, options()).unwrap();
    let mut model = Vec::new();
    for i in 0..16u64 {
        let v = value_for(SEED, i, 40);
        let key = (i % 3 == 0).then(|| vec![b'k', i as u8]);
        let mut e = Entry::new(&v).with_timestamp(100 + i);
        e.key = key.as_deref();
        log.append(e).unwrap();
        model.push(Record { offset: i, timestamp_ms: 100 + i, key, value: v, flags: seglog_core::RecordFlags::NONE });
        if i % 4 == 3 {
            log.sync().unwrap();
        }
    }
    if clean {
        log.close().unwrap();
    } else {
        drop(log);
    }
    (dir_files(dir), model)
}

fn lay_out(dir: &Path, files: &[(String, Vec<u8>)]) {
    for e in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

#[derive(Debug, Default)]
struct Tally {
    cases: u64,
    open_errors: u64,
    read_errors: u64,
    shortened: u64,
}

/// Opens and reads everything; panics on any wrong byte. Returns whether
/// the open succeeded, how many records it had, and whether any read failed.
fn check(dir: &Path, model: &[Record], read_only: bool, tally: &mut Tally) -> Option<(u64, bool)> {
    tally.cases += 1;
    let log = match Log::open_with(dir, Options { read_only, ..options() }) {
        Ok(log) => log,
        Err(e) => {
            assert!(
                matches!(e, Error::Corruption { .. } | Error::UnsupportedVersion { .. }),
                "unexpected error kind: {e}"
            );
            tally.open_errors += 1;
            return None;
        }
    };
    let next = log.next_offset();
    assert!(next <= model.len() as u64, "phantom records: next offset {next}");
    assert_eq!(log.first_offset(), 0);
    if next < model.len() as u64 {
        tally.shortened += 1;
    }
    let mut any_err = false;
    for rec in log.iter(..) {
        match rec {
            Ok(r) => assert_eq!(&r, &model[r.offset as usize], "wrong record returned"),
            Err(e) => {
                assert!(e.is_corruption(), "unexpected error kind: {e}");
                any_err = true;
            }
        }
    }
    for off in 0..next {
        match log.read(off) {
            Ok(r) => assert_eq!(&r, &model[off as usize], "wrong record returned"),
            Err(e) => {
                assert!(e.is_corruption(), "unexpected error kind: {e}");
                any_err = true;
            }
        }
    }
    if any_err {
        tally.read_errors += 1;
    }
    Some((next, any_err))
}

fn corpus(clean: bool) {
    let src = tempfile::tempdir().unwrap();
    let (files, model) = build(src.path(), clean);
    assert!(files.iter().filter(|(n, _)| n.ends_with(".log")).count() >= 3, "{files:?}");
    let work = tempfile::tempdir().unwrap();
    let mut tally = Tally::default();
    for (fi, (name, bytes)) in files.iter().enumerate() {
        let is_index = matches!(parse_file_name(name), Some(FileKind::OffsetIndex(_) | FileKind::TimeIndex(_)));
        for pos in 0..bytes.len() {
            for read_only in [false, true] {
                let mut damaged = files.clone();
                damaged[fi].1[pos] ^= 0x01 << (pos % 8);
                lay_out(work.path(), &damaged);
                let res = check(work.path(), &model, read_only, &mut tally);
                if is_index {
                    // Indexes are derived data: damage is repaired, never visible.
                    assert_eq!(res, Some((model.len() as u64, false)), "{name} byte {pos}");
                } else if clean {
                    // Everything was durable: a successful open may not lose a record.
                    if let Some((next, _)) = res {
                        assert_eq!(next, model.len() as u64, "{name} byte {pos}: durable records dropped");
                    }
                }
            }
        }
        for len in 0..bytes.len() {
            let mut cut = files.clone();
            cut[fi].1.truncate(len);
            lay_out(work.path(), &cut);
            let res = check(work.path(), &model, false, &mut tally);
            if is_index {
                assert_eq!(res, Some((model.len() as u64, false)), "{name} cut at {len}");
            }
        }
    }
    eprintln!("corpus clean={clean}: {tally:?}");
    assert!(tally.open_errors > 0 && tally.read_errors > 0, "the corpus must exercise both error paths: {tally:?}");
}

#[test]
fn every_flip_and_cut_of_a_cleanly_closed_log() {
    corpus(true);
}

#[test]
fn every_flip_and_cut_of_a_crashed_log() {
    corpus(false);
}

/// Regression (simulator seeds 42744, 46469, 58335, 71910, 88752, 252147 and
/// 278969 of issue "Sixteen failing seeds beyond the tested range"): after
/// `truncate_from(x)`, the disk lost the write of the cut's commit marker (a
/// misdirected write), so the frame of the record that used to be at `x`
/// stayed where the marker should be, with a valid checksum and the right
/// offset. Reads returned its bytes instead of the record appended at `x`
/// afterwards, and a scan counted it as a record (a phantom). Now every
/// suffix truncation begins a new epoch at `x`, new records carry it, and a
/// frame of an older epoch is refused as stale.
#[test]
fn a_lost_write_after_a_suffix_truncation_never_revives_the_old_record() {
    let dir = tempfile::tempdir().unwrap();
    let opts = |read_only| Options {
        fs: StdFs::shared(),
        clock: Arc::new(FixedClock(7)),
        // One index entry per segment: every read walks from the start.
        config: Config { index_interval_bytes: 1 << 20, ..Config::default() },
        read_only,
    };
    let seg = dir.path().join(inspect::segment_file_name(0));
    let mut log = Log::open_with(dir.path(), opts(false)).unwrap();
    for i in 0..10u64 {
        log.append(Entry::new(format!("old {i}").as_bytes()).with_key(b"k")).unwrap();
    }
    log.sync().unwrap();
    let before = std::fs::read(&seg).unwrap();
    log.truncate_from(5).unwrap();
    // The cut left the file ending in the truncation's commit marker.
    let marker = std::fs::read(&seg).unwrap().len() - inspect::MARKER_FRAME_LEN;
    let mut model: Vec<Vec<u8>> = (0..5).map(|i| format!("old {i}").into_bytes()).collect();
    for i in 5..10u64 {
        let v = format!("new {i}").into_bytes();
        log.append(Entry::new(&v).with_key(b"k")).unwrap();
        model.push(v);
    }
    log.close().unwrap();
    // The marker's write never reached the disk: what was durable there
    // before (the old records 5 and 6, whole frames) is still there.
    let mut after = std::fs::read(&seg).unwrap();
    let span = marker..marker + inspect::MARKER_FRAME_LEN;
    after[span.clone()].copy_from_slice(&before[span]);
    std::fs::write(&seg, &after).unwrap();
    for read_only in [true, false] {
        let log = match Log::open_with(dir.path(), opts(read_only)) {
            Ok(log) => log,
            Err(Error::Corruption { .. }) => continue,
            Err(e) => panic!("unexpected open error: {e}"),
        };
        for offset in 5..10 {
            match log.read(offset) {
                Err(Error::Corruption { detail, .. }) => assert!(detail.contains("stale"), "{detail}"),
                Ok(r) => assert_eq!(r.value, model[offset as usize], "offset {offset}: wrong bytes"),
                Err(e) => panic!("offset {offset}: unexpected error {e}"),
            }
        }
        assert!(matches!(log.read(5), Err(Error::Corruption { .. })), "the stale frame of offset 5 was read back");
        let mut n_ok = 0;
        for item in log.iter(..) {
            match item {
                Ok(r) => {
                    assert_eq!(r.value, model[r.offset as usize], "iter: wrong bytes at {}", r.offset);
                    n_ok += 1;
                }
                Err(e) => assert!(matches!(e, Error::Corruption { .. }), "{e}"),
            }
        }
        assert_eq!(n_ok, 5, "only the records before the damage are readable");
        assert!(!log.verify().problems.is_empty(), "verify found nothing");
    }
}
