//! The `seglog` binary on real directories, corrupt ones included. Built and
//! run whenever the `cli` feature is on (the workspace's test run turns it on
//! through the `tests` package).
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "a test fails loudly")]

use std::path::Path;
use std::process::{Command, Output};

use seglog_core::{Config, Entry, Log};

fn seglog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seglog")).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// 18 records of 40 bytes in four segments (three sealed), closed cleanly.
fn build(dir: &Path) {
    let mut log = Log::open(dir, Config { segment_records_max: 5, ..Config::default() }).unwrap();
    for i in 0..18u8 {
        log.append(Entry::new(&[b'a' + i; 40]).with_key(b"k")).unwrap();
    }
    log.close().unwrap();
}

#[test]
fn verify_names_the_damaged_segment_and_salvage_saves_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    build(&dir);
    let d = dir.to_str().unwrap();
    let ok = seglog(&["verify", d]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("18 records ok, 0 problems"), "{}", text(&ok));

    // Flip one byte inside record 7 (second record of sealed segment 5).
    let seg = dir.join("00000000000000000005.log");
    let frame = 32 + 1 + 40; // overhead + key + value
    let pos = 64 + frame + 50;
    let mut b = std::fs::read(&seg).unwrap();
    b[pos] ^= 0x20;
    std::fs::write(&seg, b).unwrap();

    let bad = seglog(&["verify", d]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    let out = text(&bad);
    assert!(out.contains("00000000000000000005.log") && out.contains(&format!("at byte {}", 64 + frame)), "{out}");

    let saved = tmp.path().join("saved");
    let s = seglog(&["salvage", d, "--out", saved.to_str().unwrap()]);
    assert!(s.status.success(), "{}", text(&s));
    assert!(text(&s).contains("salvaged 17 records"), "{}", text(&s));
    assert!(text(&s).contains("offsets 6..7 are missing"), "{}", text(&s));
    let log = Log::open_read_only(&saved, Config::default()).unwrap();
    let values: Vec<u8> = log.iter(..).map(|r| r.unwrap().value[0]).collect();
    let want: Vec<u8> = (0..18u8).filter(|&i| i != 6).map(|i| b'a' + i).collect();
    assert_eq!(values, want, "every record but the damaged one, in order");

    // --keep-offsets: every record at its own offset, the lost one a hole.
    let kept = tmp.path().join("kept");
    let s = seglog(&["salvage", d, "--out", kept.to_str().unwrap(), "--keep-offsets"]);
    assert!(s.status.success(), "{}", text(&s));
    assert!(text(&s).contains("salvaged 17 records at their offsets 0..18"), "{}", text(&s));
    assert!(text(&s).contains("offsets 6..7 hold no record"), "{}", text(&s));
    let log = Log::open_read_only(&kept, Config::default()).unwrap();
    assert_eq!((log.first_offset(), log.next_offset()), (0, 18));
    for i in 0..18u8 {
        match log.read(u64::from(i)) {
            Ok(r) => assert_eq!((i, r.value, r.key), (i, vec![b'a' + i; 40], Some(b"k".to_vec()))),
            Err(seglog_core::Error::Compacted { offset: 6 }) if i == 6 => {}
            other => panic!("offset {i}: {other:?}"),
        }
    }
    assert!(log.verify().problems.is_empty());
    drop(log);
    // The salvaged log is a working log: it appends after the last offset.
    let mut log = Log::open(&kept, Config::default()).unwrap();
    assert_eq!(log.append(seglog_core::Entry::new(b"next")).unwrap(), 18);
    log.close().unwrap();
    // Into a directory that is not empty: refused, nothing written.
    let again = seglog(&["salvage", d, "--out", kept.to_str().unwrap(), "--keep-offsets"]);
    assert!(!again.status.success() && text(&again).contains("is not empty"), "{}", text(&again));
}

#[test]
fn salvage_keep_offsets_after_a_prefix_truncation_starts_where_the_log_did() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    build(&dir);
    let mut log = Log::open(&dir, Config::default()).unwrap();
    log.truncate_before(10).unwrap();
    log.close().unwrap();
    let kept = tmp.path().join("kept");
    let s = seglog(&["salvage", dir.to_str().unwrap(), "--out", kept.to_str().unwrap(), "--keep-offsets"]);
    assert!(s.status.success(), "{}", text(&s));
    let log = Log::open_read_only(&kept, Config::default()).unwrap();
    // Salvage reads every frame that verifies, the truncated prefix's
    // leftovers in the first kept segment included (they are real records).
    let offsets: Vec<u64> = log.iter(..).map(|r| r.unwrap().offset).collect();
    assert_eq!(log.next_offset(), 18);
    assert_eq!(offsets, (log.first_offset()..18).collect::<Vec<_>>());
    assert!(log.first_offset() <= 10, "{}", log.first_offset());
}

#[test]
fn info_dump_append_truncate() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    build(&dir);
    let d = dir.to_str().unwrap();
    let info = seglog(&["info", d]);
    assert!(info.status.success());
    assert!(text(&info).contains("offsets 0..18 (18 records readable)"), "{}", text(&info));
    assert!(text(&info).contains("4 segments"), "{}", text(&info));
    let a = seglog(&["append", d, "--value", "hello", "--key", "k2"]);
    assert!(text(&a).contains("appended 1 record at offsets 18..19"), "{}", text(&a));
    let dump = seglog(&["dump", d, "--from", "18"]);
    assert!(text(&dump).contains("18 ts=") && text(&dump).contains("key=k2 value=hello"), "{}", text(&dump));
    let hex = seglog(&["dump", d, "--from", "18", "--hex"]);
    assert!(text(&hex).contains("value=68656c6c6f"), "{}", text(&hex));
    let t = seglog(&["truncate", d, "--from", "10"]);
    assert!(text(&t).contains("offsets 0..10"), "{}", text(&t));
    let t = seglog(&["truncate", d, "--before", "7"]);
    assert!(text(&t).contains("offsets 7..10"), "{}", text(&t));
    let log = Log::open_read_only(&dir, Config::default()).unwrap();
    assert_eq!((log.first_offset(), log.next_offset()), (7, 10));
}

#[test]
fn errors_are_one_clear_line() {
    let o = seglog(&["info", "/definitely/not/a/log"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("seglog: no log at"), "{err}");
    assert!(!err.contains("panicked"));
}

#[test]
fn compact_keeps_the_latest_record_per_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    build(&dir);
    let d = dir.to_str().unwrap();
    let c = seglog(&["compact", d, "--roll"]);
    assert!(c.status.success(), "{}", text(&c));
    // All 18 records share key `k`: 17 are superseded.
    assert!(text(&c).contains("read 18 records, dropped 17 superseded"), "{}", text(&c));
    let info = seglog(&["info", d]);
    assert!(text(&info).contains("yes (compacted)"), "{}", text(&info));
    let log = Log::open_read_only(&dir, Config::default()).unwrap();
    let recs: Vec<_> = log.iter(..).map(|r| r.unwrap()).collect();
    assert_eq!(recs.len(), 1);
    assert_eq!((recs[0].offset, recs[0].value[0]), (17, b'a' + 17));
    assert_eq!(log.next_offset(), 18);
    let v = seglog(&["verify", d]);
    assert!(v.status.success() && text(&v).contains("1 record ok, 0 problems"), "{}", text(&v));
}

/// Issue "One writer per log directory": a second process that writes
/// (`seglog append`, `truncate`, `compact`) next to a running writer is
/// refused at once, changes nothing, and says what to do; read-only
/// subcommands keep working beside it; once the writer is gone, writes work.
#[test]
fn a_second_process_cannot_write_while_a_writer_holds_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    build(&dir);
    let d = dir.to_str().unwrap();
    let writer = Log::open(&dir, Config::default()).unwrap();
    let files_before = files(&dir);
    for args in [
        vec!["append", d, "--value", "intruder"],
        vec!["truncate", d, "--from", "3"],
        vec!["truncate", d, "--before", "3"],
        vec!["compact", d],
    ] {
        let o = seglog(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("is locked by another writer"), "{args:?}: {}", text(&o));
        assert_eq!(files(&dir), files_before, "{args:?} changed the directory");
    }
    for args in [vec!["info", d], vec!["verify", d], vec!["dump", d, "--count", "2"]] {
        let o = seglog(&args);
        assert!(o.status.success(), "{args:?} beside a writer: {}", text(&o));
    }
    drop(writer);
    let o = seglog(&["append", d, "--value", "after"]);
    assert!(o.status.success(), "{}", text(&o));
    let log = Log::open_read_only(&dir, Config::default()).unwrap();
    assert_eq!(log.next_offset(), 19);
    assert_eq!(log.read(18).unwrap().value, b"after");
}

/// The log directory's files and their contents (the lock file aside).
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "log.lock")
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect();
    v.sort();
    v
}

/// `seglog append` with `input` on standard input.
fn seglog_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_seglog"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Issue "One writer per log directory" (item 3): input with a bad line
/// (invalid UTF-8 after valid lines, or bad hex) used to exit 2 with the
/// valid lines already in the log. Now the input is read and checked whole
/// first: a bad line appends nothing and says which line; binary values go
/// in through `--hex`, `--value-hex` or `--value-file`.
#[test]
fn append_is_all_or_nothing_and_binary_safe() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    build(&dir);
    let d = dir.to_str().unwrap();
    let before = files(&dir);
    let o = seglog_stdin(&["append", d], b"one\ntwo\n\xff\xfe bad\nfour\n");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("line 3: not UTF-8") && text(&o).contains("nothing was appended"), "{}", text(&o));
    assert_eq!(files(&dir), before, "a refused append changed the log");
    let o = seglog_stdin(&["append", d, "--hex"], b"00ff\nzz\n");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("line 2"), "{}", text(&o));
    assert_eq!(files(&dir), before, "a refused hex append changed the log");

    let o = seglog_stdin(&["append", d, "--hex", "--key-hex", "00"], b"00ff\r\n\nfe0a00\n");
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("appended 3 records at offsets 18..21"), "{}", text(&o));
    let bin = tmp.path().join("value.bin");
    std::fs::write(&bin, [0u8, 10, 13, 255, 0]).unwrap();
    let o = seglog(&["append", d, "--value-file", bin.to_str().unwrap(), "--value-hex", "0a0d"]);
    assert_eq!(o.status.code(), Some(2), "mixing sources is refused: {}", text(&o));
    let o = seglog(&["append", d, "--value-file", bin.to_str().unwrap(), "--value-file", bin.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = seglog(&["append", d, "--value-hex", "0a0d", "--value-hex", "DEAD"]);
    assert!(o.status.success(), "{}", text(&o));
    let log = Log::open_read_only(&dir, Config::default()).unwrap();
    let got: Vec<(Option<Vec<u8>>, Vec<u8>)> = log.iter(18..).map(|r| r.unwrap()).map(|r| (r.key, r.value)).collect();
    let want: Vec<(Option<Vec<u8>>, Vec<u8>)> = vec![
        (Some(vec![0]), vec![0x00, 0xff]),
        (Some(vec![0]), vec![]),
        (Some(vec![0]), vec![0xfe, 0x0a, 0x00]),
        (None, vec![0, 10, 13, 255, 0]),
        (None, vec![0, 10, 13, 255, 0]),
        (None, vec![0x0a, 0x0d]),
        (None, vec![0xde, 0xad]),
    ];
    assert_eq!(got, want);
}

/// A real full disk half-way through a multi-batch `seglog append`: the
/// batches already synced are truncated away again, so the command appends
/// all of its input or none of it. Needs a tmpfs (root, as CI has), for a
/// real ENOSPC after the first 16 MiB batch.
#[test]
fn an_append_that_fills_the_disk_after_its_first_batch_appends_nothing() {
    let mnt = tempfile::tempdir().unwrap();
    let out = Command::new("mount").args(["-t", "tmpfs", "-o", "size=20m", "tmpfs"]).arg(mnt.path()).output().unwrap();
    assert!(
        out.status.success(),
        "this test mounts a tmpfs to get a real ENOSPC and needs root (CI runs as root): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(mnt.path());
    let dir = mnt.path().join("log");
    build(&dir);
    let before: Vec<_> = Log::open_read_only(&dir, Config::default()).unwrap().iter(..).map(|r| r.unwrap()).collect();
    // 24 MiB of values, as 64 KiB hex lines: a 16 MiB batch, then one that
    // cannot fit on the 20 MiB disk.
    let line = format!("{}\n", "ab".repeat(64 << 10));
    let input = line.repeat(384);
    let o = seglog_stdin(&["append", dir.to_str().unwrap(), "--hex"], input.as_bytes());
    assert!(!o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("truncated away again: nothing was appended"), "the first batch was taken back: {t}");
    let log = Log::open_read_only(&dir, Config::default()).unwrap();
    assert_eq!(log.next_offset(), 18, "{t}");
    let after: Vec<_> = log.iter(..).map(|r| r.unwrap()).collect();
    assert_eq!(after, before);
    drop(log);
    // Space freed (here: it was never used for good), the same input fits
    // in smaller pieces: the log works on.
    let o = seglog_stdin(&["append", dir.to_str().unwrap(), "--hex"], line.repeat(8).as_bytes());
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("appended 8 records at offsets 18..26"), "{}", text(&o));
}

/// Issue "For embedders and operators", item 5: `--version`; counts in
/// words ("1 record"); values as text when they are text, else `hex:`,
/// never with escapes; `info` counts what a prefix truncation left
/// readable; `dump --from` outside the log says so; writing commands refuse
/// a directory that holds no log unless `append --create`.
#[test]
fn the_command_line_says_exactly_what_is_there() {
    let v = seglog(&["--version"]);
    assert!(v.status.success());
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), format!("seglog {}", env!("CARGO_PKG_VERSION")));

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let d = dir.to_str().unwrap();
    // No log yet: writing commands refuse, and create nothing.
    for args in [vec!["append", d, "--value", "x"], vec!["truncate", d, "--from", "0"], vec!["compact", d]] {
        let o = seglog(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("holds no log") && text(&o).contains("--create"), "{}", text(&o));
        assert!(!dir.exists(), "{args:?} created the directory");
    }
    let a = seglog(&["append", d, "--create", "--value", "plain text"]);
    assert!(a.status.success() && text(&a).contains("appended 1 record at offsets 0..1"), "{}", text(&a));
    let a = seglog(&["append", d, "--value-hex", "00ff", "--value", "two\nlines"]);
    assert!(!a.status.success(), "--value and --value-hex together must be refused: {}", text(&a));
    let a = seglog(&["append", d, "--value-hex", "00ff", "--value-hex", "6869"]);
    assert!(text(&a).contains("appended 2 records at offsets 1..3"), "{}", text(&a));
    let a = seglog(&["append", d, "--value", "hex:looks like hex"]);
    assert!(a.status.success(), "{}", text(&a));
    let dump = String::from_utf8(seglog(&["dump", d]).stdout).unwrap();
    let lines: Vec<&str> = dump.lines().collect();
    assert!(lines[0].ends_with("value=plain text"), "{dump}");
    assert!(lines[1].ends_with("value=hex:00ff"), "{dump}");
    assert!(lines[2].ends_with("value=hi"), "{dump}");
    assert!(lines[3].ends_with("value=hex:6865783a6c6f6f6b73206c696b6520686578"), "{dump}");
    assert!(!dump.contains('\\'), "no escapes: {dump}");

    let o = seglog(&["dump", d, "--from", "9"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("offset 9 is past the end of the log, which holds offsets 0..4"), "{}", text(&o));
    let t = seglog(&["truncate", d, "--before", "2"]);
    assert!(t.status.success(), "{}", text(&t));
    let o = seglog(&["dump", d, "--from", "1"]);
    assert!(text(&o).contains("offset 1 is below the log's first offset 2"), "{}", text(&o));
    let info = seglog(&["info", d]);
    assert!(text(&info).contains("offsets 2..4 (2 records readable), 1 segment"), "{}", text(&info));
}

/// `--json` on info, dump, verify and compact; timestamps as RFC 3339 in
/// UTC (raw milliseconds with `--raw-timestamps`).
#[test]
fn json_output_and_rfc3339_timestamps() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let d = dir.to_str().unwrap();
    let mut log = Log::open(&dir, Config::default()).unwrap();
    log.append(Entry::new(b"text").with_key(b"k").with_timestamp(1_764_000_000_123)).unwrap();
    log.append(Entry::new(&[0, 255]).with_timestamp(1_764_000_000_456)).unwrap();
    log.close().unwrap();

    let dump = String::from_utf8(seglog(&["dump", d]).stdout).unwrap();
    assert!(dump.starts_with("0 ts=2025-11-24T16:00:00.123Z key=k value=text"), "{dump}");
    let raw = String::from_utf8(seglog(&["dump", d, "--raw-timestamps"]).stdout).unwrap();
    assert!(raw.starts_with("0 ts=1764000000123 key=k"), "{raw}");

    let lines: Vec<serde_json::Value> = String::from_utf8(seglog(&["dump", d, "--json"]).stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["offset"], 0);
    assert_eq!(lines[0]["timestamp"], "2025-11-24T16:00:00.123Z");
    assert_eq!((lines[0]["key"].as_str(), lines[0]["value"].as_str()), (Some("k"), Some("text")));
    assert_eq!(lines[1]["key"], serde_json::Value::Null);
    assert_eq!(lines[1]["value_hex"], "00ff");
    assert_eq!(lines[1]["tombstone"], false);

    let info: serde_json::Value = serde_json::from_slice(&seglog(&["info", d, "--json"]).stdout).unwrap();
    assert_eq!((info["first_offset"].as_u64(), info["next_offset"].as_u64()), (Some(0), Some(2)));
    assert_eq!(info["readable_records"], 2);
    assert_eq!(info["segments"][0]["records"], 2);
    assert_eq!(info["segments"][0]["min_timestamp"], "2025-11-24T16:00:00.123Z");
    let info = String::from_utf8(seglog(&["info", d]).stdout).unwrap();
    assert!(info.contains("2025-11-24T16:00:00.456Z"), "{info}");

    let v = seglog(&["verify", d, "--json"]);
    assert!(v.status.success());
    let v: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(v["records_ok"], 2);
    assert_eq!(v["problems"], serde_json::json!([]));

    let other = tmp.path().join("keyed");
    build(&other);
    let c = seglog(&["compact", other.to_str().unwrap(), "--roll", "--json"]);
    assert!(c.status.success(), "{}", text(&c));
    let c: serde_json::Value = serde_json::from_slice(&c.stdout).unwrap();
    assert_eq!(c["records_read"], 18);
    assert_eq!(c["records_superseded"], 17);
}
