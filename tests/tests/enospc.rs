//! A real full disk: a 1 MiB tmpfs (mounting needs root, which CI and the
//! development machines have). The log must report a typed disk-full error,
//! keep its state, open and read on the full disk, and resume appending once
//! space is freed.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "a test fails loudly")]

use std::path::{Path, PathBuf};
use std::process::Command;

use seglog_core::{Config, Entry, Log, SyncPolicy};
use tests::value_for;

const SEED: u64 = 0xD15C;

struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "this test mounts a tmpfs to get a real ENOSPC and needs root (CI runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn config() -> Config {
    Config {
        segment_bytes_max: 128 << 10,
        write_buffer_bytes: 8 << 10,
        sync: SyncPolicy::EveryRecords(8),
        ..Config::default()
    }
}

fn check_all(log: &Log, n: u64) {
    assert_eq!(log.next_offset(), n);
    for rec in log.iter(..) {
        let rec = rec.unwrap();
        assert_eq!(rec.value, value_for(SEED, rec.offset, 1500), "offset {}", rec.offset);
    }
    assert_eq!(log.iter(..).count() as u64, n);
}

#[test]
fn real_enospc_on_tmpfs() {
    let fs = Tmpfs::mount("1m");
    let dir: PathBuf = fs.path().join("log");
    let filler = fs.path().join("filler");
    std::fs::write(&filler, vec![0u8; 256 << 10]).unwrap();

    let mut log = Log::open(&dir, config()).unwrap();
    let mut n_full = 0;
    let mut last_full = None;
    for _ in 0..10_000 {
        let before = log.next_offset();
        let v = value_for(SEED, before, 1500);
        match log.append(Entry::new(&v)) {
            Ok(off) => assert_eq!(off, before),
            Err(e) => {
                assert!(e.is_disk_full(), "expected a disk-full error, got: {e}");
                assert!(e.to_string().contains("free space"), "the message says what to do: {e}");
                assert!(!log.is_poisoned(), "ENOSPC must not poison the log");
                assert_eq!(log.next_offset(), before, "a failed append must not move the end");
                assert!(log.read(before).is_err(), "no partial record may be readable");
                n_full += 1;
                last_full = Some(before);
                if n_full == 5 {
                    break;
                }
            }
        }
    }
    let n = last_full.expect("the tmpfs never filled up");
    assert!(n > 100, "only {n} records fit");
    check_all(&log, n);
    let durable = log.durable_offset();
    drop(log);

    // Opening and reading on a full disk works, read-write and read-only.
    let log = Log::open_read_only(&dir, config()).unwrap();
    assert!(log.next_offset() >= durable);
    let recovered = log.next_offset();
    check_all(&log, recovered);
    drop(log);
    let mut log = Log::open(&dir, config()).unwrap();
    check_all(&log, recovered);

    // Free space: appends resume at the next offset.
    std::fs::remove_file(&filler).unwrap();
    for _ in 0..20 {
        let off = log.next_offset();
        assert_eq!(log.append(Entry::new(&value_for(SEED, off, 1500))).unwrap(), off);
    }
    log.sync().unwrap();
    log.close().unwrap();
    let log = Log::open(&dir, config()).unwrap();
    check_all(&log, recovered + 20);
    eprintln!(
        "tmpfs: {recovered} records filled 768 KiB; {n_full} appends refused with ENOSPC; 20 more after freeing space"
    );
}

/// A sync and a close that hit a real full disk (issue "One writer per log
/// directory", item 2): the sync changes nothing and says the records are
/// still accepted (syncing again after freeing space keeps each exactly
/// once); the close reports how far the log is durable, and a reopen finds
/// that prefix intact.
#[test]
fn real_enospc_at_sync_and_close() {
    let fs = Tmpfs::mount("1m");
    let dir: PathBuf = fs.path().join("log");
    let filler = fs.path().join("filler");
    let config =
        Config { write_buffer_bytes: 4 << 20, segment_bytes_max: 4 << 20, sync: SyncPolicy::Manual, ..config() };
    let mut log = Log::open(&dir, config.clone()).unwrap();
    for _ in 0..10 {
        let off = log.next_offset();
        log.append(Entry::new(&value_for(SEED, off, 1500))).unwrap();
    }
    log.sync().unwrap();
    fill(&filler, 64 << 10);
    // About 150 KiB accepted in memory: more than the disk has left.
    for _ in 0..100 {
        let off = log.next_offset();
        log.append(Entry::new(&value_for(SEED, off, 1500))).unwrap();
    }
    let err = log.sync().unwrap_err();
    match &err {
        seglog_core::Error::DiskFullNotDurable { durable: 10, next: 110, .. } => {}
        other => panic!("expected DiskFullNotDurable 10..110, got {other}"),
    }
    assert!(!log.is_poisoned());
    assert_eq!((log.durable_offset(), log.next_offset()), (10, 110));
    check_all(&log, 110);
    std::fs::remove_file(&filler).unwrap();
    log.sync().unwrap();
    log.close().unwrap();
    check_all(&Log::open(&dir, config.clone()).unwrap(), 110);

    // A close on a full disk: the durable prefix survives, nothing else is claimed.
    let mut log = Log::open(&dir, config.clone()).unwrap();
    fill(&filler, 64 << 10);
    for _ in 0..100 {
        let off = log.next_offset();
        log.append(Entry::new(&value_for(SEED, off, 1500))).unwrap();
    }
    match log.close() {
        Err(seglog_core::Error::DiskFullAtClose { durable: 110, next: 210, .. }) => {}
        other => panic!("expected DiskFullAtClose 110..210, got {other:?}"),
    }
    std::fs::remove_file(&filler).unwrap();
    let log = Log::open(&dir, config).unwrap();
    assert!((110..=210).contains(&log.next_offset()), "{}", log.next_offset());
    check_all(&log, log.next_offset());
}

/// Fills the disk holding `filler` up, then frees `leave` bytes.
fn fill(filler: &Path, leave: u64) {
    use std::io::Write as _;
    let mut f = std::fs::File::create(filler).unwrap();
    let chunk = vec![0u8; 64 << 10];
    while f.write_all(&chunk).is_ok() {}
    let len = f.metadata().unwrap().len();
    f.set_len(len.saturating_sub(leave)).unwrap();
}
