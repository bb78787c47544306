//! One test per fault kind, pinning sim-fs's exact semantics.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "a test fails loudly")]

use std::collections::BTreeSet;
use std::io;
use std::path::Path;

use seglog_core::{FileSystem, OpenMode, read_full_at, write_all_at};
use sim_fs::{Canary, CrashPolicy, FaultConfig, FaultKind, Hit, SimFs};

fn fs(config: FaultConfig) -> SimFs {
    SimFs::new(7, config)
}

fn create(fs: &SimFs, path: &str, data: &[u8]) -> std::sync::Arc<dyn seglog_core::FileHandle> {
    let f = fs.open(Path::new(path), OpenMode::CreateNew).unwrap();
    write_all_at(&*f, data, 0).unwrap();
    f
}

fn read_all(fs: &SimFs, path: &str) -> io::Result<Vec<u8>> {
    let f = fs.open(Path::new(path), OpenMode::Read)?;
    let mut buf = vec![0u8; f.len()? as usize];
    let n = read_full_at(&*f, &mut buf, 0)?;
    buf.truncate(n);
    Ok(buf)
}

#[test]
fn unsynced_data_is_lost_and_synced_data_survives() {
    let fs = fs(FaultConfig::default());
    fs.create_dir_all(Path::new("/d")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    let f = create(&fs, "/d/a", b"durable");
    f.sync().unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    write_all_at(&*f, b" and not", 7).unwrap();
    assert_eq!(read_all(&fs, "/d/a").unwrap(), b"durable and not");
    fs.crash_with(CrashPolicy::LoseAll);
    assert_eq!(read_all(&fs, "/d/a").unwrap(), b"durable");
    // The old handle died with the machine.
    assert!(f.len().is_err());
}

#[test]
fn directory_entries_need_a_directory_sync() {
    let fs = fs(FaultConfig::default());
    let f = create(&fs, "/a", b"data");
    f.sync().unwrap();
    fs.crash_with(CrashPolicy::LoseAll);
    assert!(!fs.exists(Path::new("/a")).unwrap(), "a synced file whose entry was never synced vanishes");

    let f = create(&fs, "/b", b"data");
    f.sync().unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    fs.remove_file(Path::new("/b")).unwrap();
    fs.crash_with(CrashPolicy::LoseAll);
    assert_eq!(read_all(&fs, "/b").unwrap(), b"data", "an unsynced removal is undone");

    fs.rename(Path::new("/b"), Path::new("/c")).unwrap();
    fs.crash_with(CrashPolicy::LoseAll);
    assert!(fs.exists(Path::new("/b")).unwrap() && !fs.exists(Path::new("/c")).unwrap());
    fs.rename(Path::new("/b"), Path::new("/c")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    fs.crash_with(CrashPolicy::LoseAll);
    assert_eq!(read_all(&fs, "/c").unwrap(), b"data");
}

#[test]
fn a_directory_that_was_never_synced_vanishes_with_its_files() {
    let fs = fs(FaultConfig::default());
    fs.create_dir_all(Path::new("/x/y")).unwrap();
    let f = create(&fs, "/x/y/f", b"1");
    f.sync().unwrap();
    fs.sync_dir(Path::new("/x/y")).unwrap();
    fs.crash_with(CrashPolicy::LoseAll);
    assert!(!fs.exists(Path::new("/x")).unwrap());
}

#[test]
fn enospc_writes_what_fits_then_fails_and_space_comes_back() {
    let fs = fs(FaultConfig { capacity_bytes: Some(4096), ..FaultConfig::default() });
    let f = fs.open(Path::new("/a"), OpenMode::CreateNew).unwrap();
    assert_eq!(f.write_at(&[1u8; 5000], 0).unwrap(), 4096, "a crossing write writes what fits");
    let err = f.write_at(&[1u8; 10], 4096).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    assert_eq!(write_all_at(&*f, &[2u8; 10], 4096).unwrap_err().kind(), io::ErrorKind::StorageFull);
    assert_eq!(f.set_len(5000).unwrap_err().kind(), io::ErrorKind::StorageFull);
    assert_eq!(
        fs.open(Path::new("/b"), OpenMode::CreateNew).map(|_| ()).unwrap_err().kind(),
        io::ErrorKind::StorageFull
    );
    assert!(fs.faults().iter().any(|r| r.kind == FaultKind::Enospc));
    // Shrinking returns space.
    f.set_len(1024).unwrap();
    assert_eq!(f.write_at(&[3u8; 512], 1024).unwrap(), 512);
    fs.remove_file(Path::new("/a")).unwrap();
    let g = fs.open(Path::new("/b"), OpenMode::CreateNew).unwrap();
    write_all_at(&*g, &[4u8; 4096], 0).unwrap();
}

#[test]
fn fsync_eio_drops_the_data_and_the_next_fsync_lies() {
    let fs = fs(FaultConfig { p_sync_eio: 1.0, ..FaultConfig::default() });
    let f = create(&fs, "/a", b"");
    fs.sync_dir(Path::new("/")).unwrap();
    write_all_at(&*f, b"lost", 0).unwrap();
    assert!(f.sync().is_err());
    let rec = fs.faults().into_iter().find(|r| r.kind == FaultKind::SyncEio).unwrap();
    assert_eq!(rec.hit, Hit::Pending);
    fs.set_config(FaultConfig::default());
    // The page cache still shows the data, and a retried fsync "succeeds"...
    assert_eq!(read_all(&fs, "/a").unwrap(), b"lost");
    f.sync().unwrap();
    // ...but the disk never got it.
    fs.crash_with(CrashPolicy::KeepPrefix);
    assert_eq!(read_all(&fs, "/a").unwrap(), b"");
}

#[test]
fn dir_sync_eio_leaves_the_entries_pending() {
    let fs = fs(FaultConfig { p_dir_sync_eio: 1.0, ..FaultConfig::default() });
    let f = create(&fs, "/a", b"x");
    f.sync().unwrap();
    assert!(fs.sync_dir(Path::new("/")).is_err());
    assert!(fs.faults().iter().any(|r| r.kind == FaultKind::DirSyncEio));
    fs.crash_with(CrashPolicy::LoseAll);
    assert!(!fs.exists(Path::new("/a")).unwrap(), "not durable after a failed directory sync");

    let f = create(&fs, "/b", b"y");
    f.sync().unwrap();
    assert!(fs.sync_dir(Path::new("/")).is_err());
    fs.set_config(FaultConfig::default());
    fs.sync_dir(Path::new("/")).unwrap();
    fs.crash_with(CrashPolicy::LoseAll);
    assert_eq!(read_all(&fs, "/b").unwrap(), b"y", "a later successful sync makes them durable");
}

#[test]
fn write_eio_writes_nothing() {
    let fs = fs(FaultConfig { p_write_eio: 1.0, ..FaultConfig::default() });
    let f = fs.open(Path::new("/a"), OpenMode::CreateNew).unwrap();
    assert!(f.write_at(b"abc", 0).is_err());
    assert_eq!(f.len().unwrap(), 0);
}

/// Every image for: durable "aaaa" (sector = 4 bytes), then pending
/// `Write(2, "XY")` and `Write(4, "ZZZZZ")`, with the entry durable.
#[test]
fn enumeration_yields_every_legal_image_and_no_other() {
    let fs = fs(FaultConfig { sector_bytes: 4, ..FaultConfig::default() });
    let f = create(&fs, "/a", b"aaaa");
    f.sync().unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    write_all_at(&*f, b"XY", 2).unwrap();
    write_all_at(&*f, b"ZZZZZ", 4).unwrap();
    let images: BTreeSet<Vec<u8>> =
        fs.crash_image_list(1000).unwrap().iter().map(|img| img.file(Path::new("/a")).unwrap().to_vec()).collect();
    let mut want = BTreeSet::new();
    // Size of the first 0 or 1 changes: 4 bytes; sector 0 old or new.
    for s0 in [&b"aaaa"[..], b"aaXY"] {
        want.insert(s0.to_vec());
        // Size of both changes: 9 bytes; each sector old (zeros) or new.
        for s1 in [&b"ZZZZ"[..], b"\0\0\0\0"] {
            for s2 in [&b"Z"[..], b"\0"] {
                want.insert([s0, s1, s2].concat());
            }
        }
    }
    assert_eq!(images, want);
    // Every random crash lands inside the enumerated set.
    for seed in 0..200 {
        let fs2 = SimFs::new(
            seed,
            FaultConfig {
                sector_bytes: 4,
                crash_policies: vec![CrashPolicy::LoseAll, CrashPolicy::KeepPrefix, CrashPolicy::Reorder],
                ..FaultConfig::default()
            },
        );
        let f = create(&fs2, "/a", b"aaaa");
        f.sync().unwrap();
        fs2.sync_dir(Path::new("/")).unwrap();
        write_all_at(&*f, b"XY", 2).unwrap();
        write_all_at(&*f, b"ZZZZZ", 4).unwrap();
        fs2.crash();
        assert!(want.contains(&read_all(&fs2, "/a").unwrap()), "seed {seed}");
    }
    // Enumeration refuses when there are too many images.
    assert!(fs.crash_image_list(3).is_none());
}

#[test]
fn enumeration_covers_directory_prefixes() {
    let fs = fs(FaultConfig::default());
    let f = create(&fs, "/a.tmp", b"new");
    f.sync().unwrap();
    fs.rename(Path::new("/a.tmp"), Path::new("/a")).unwrap();
    let images = fs.crash_image_list(100).unwrap();
    let states: BTreeSet<(bool, bool)> =
        images.iter().map(|i| (i.file(Path::new("/a.tmp")).is_some(), i.file(Path::new("/a")).is_some())).collect();
    // Nothing, the temporary, or the renamed file: never both.
    assert_eq!(states, BTreeSet::from([(false, false), (true, false), (false, true)]));
    let disks = fs.crash_images(100, 1).unwrap();
    assert_eq!(disks.len(), images.len());
}

#[test]
fn torn_writes_keep_a_byte_prefix_and_garble_only_that_sector() {
    for seed in 0..300 {
        let fs = SimFs::new(seed, FaultConfig { sector_bytes: 8, ..FaultConfig::default() });
        let f = create(&fs, "/a", &[b'o'; 32]);
        f.sync().unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        write_all_at(&*f, &[b'n'; 20], 4).unwrap();
        fs.crash_with(CrashPolicy::TornWrite);
        let got = read_all(&fs, "/a").unwrap();
        assert_eq!(got.len(), 32);
        let t = got[4..].iter().position(|&b| b != b'n').map_or(20, |p| p.min(20)) + 4;
        let sector_end = (t / 8 + 1) * 8;
        assert!(got[..4].iter().all(|&b| b == b'o'), "seed {seed}: {got:?}");
        assert!(
            got[sector_end.min(32)..].iter().all(|&b| b == b'o'),
            "seed {seed}: bytes after the torn sector changed: {got:?}"
        );
    }
}

#[test]
fn media_faults_are_recorded_as_durable_hits() {
    let fs = fs(FaultConfig { p_bitflip_at_crash: 1.0, p_bad_sector_at_crash: 1.0, ..FaultConfig::default() });
    let f = create(&fs, "/a", &[0u8; 2048]);
    f.sync().unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    fs.crash_with(CrashPolicy::LoseAll);
    let faults = fs.faults();
    let flip = faults.iter().find(|r| r.kind == FaultKind::BitFlip).unwrap();
    assert_eq!(flip.hit, Hit::Durable);
    let bad = faults.iter().find(|r| r.kind == FaultKind::BadSector).unwrap();
    let data = fs.durable_contents(Path::new("/a")).unwrap();
    assert_eq!(data.iter().map(|b| b.count_ones()).sum::<u32>(), 1, "exactly one bit flipped");
    let f = fs.open(Path::new("/a"), OpenMode::ReadWrite).unwrap();
    let mut buf = [0u8; 16];
    assert!(f.read_at(&mut buf, bad.pos).is_err(), "bad sector reads fail");
    // Rewriting the sector remaps it.
    write_all_at(&*f, &[9u8; 512], bad.pos).unwrap();
    assert_eq!(f.read_at(&mut buf, bad.pos).unwrap(), 16);
}

#[test]
fn a_lost_file_disappears_whole_and_is_recorded_as_a_durable_hit() {
    let fs = fs(FaultConfig { p_file_lost_at_crash: 1.0, ..FaultConfig::default() });
    for name in ["/a", "/b"] {
        let f = create(&fs, name, &[7u8; 100]);
        f.sync().unwrap();
    }
    fs.sync_dir(Path::new("/")).unwrap();
    fs.crash_with(CrashPolicy::LoseAll);
    let faults = fs.faults();
    assert_eq!(faults.len(), 1, "{faults:?}");
    let lost = &faults[0];
    assert_eq!((lost.kind, lost.hit, lost.len), (FaultKind::FileLost, Hit::Durable, 100));
    assert!(!fs.exists(&lost.path).unwrap(), "{} is gone", lost.path.display());
    assert!(fs.durable_contents(&lost.path).is_none());
    let other = if lost.path == Path::new("/a") { "/b" } else { "/a" };
    assert_eq!(fs.durable_contents(Path::new(other)).unwrap(), vec![7u8; 100], "the other file is untouched");
    // Only durable files can be lost: an empty disk loses nothing.
    let empty = self::fs(FaultConfig { p_file_lost_at_crash: 1.0, ..FaultConfig::default() });
    empty.crash_with(CrashPolicy::LoseAll);
    assert!(empty.faults().is_empty());
}

#[test]
fn misdirected_writes_land_elsewhere_and_are_recorded() {
    let fs = fs(FaultConfig::default());
    let f = create(&fs, "/a", &[b'o'; 4096]);
    f.sync().unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    fs.set_config(FaultConfig { p_misdirected_write: 1.0, ..FaultConfig::default() });
    write_all_at(&*f, &[b'n'; 512], 1024).unwrap();
    f.sync().unwrap();
    let rec = fs.faults().into_iter().find(|r| matches!(r.kind, FaultKind::Misdirected { .. })).unwrap();
    assert_eq!((rec.pos, rec.hit), (1024, Hit::Durable));
    let FaultKind::Misdirected { to } = rec.kind else { unreachable!() };
    let d = fs.durable_contents(Path::new("/a")).unwrap();
    if to != 1024 {
        assert!(d[1024..1536].iter().all(|&b| b == b'o'), "the intended place keeps the old bytes");
        assert!(d[to as usize..to as usize + 512].iter().all(|&b| b == b'n'), "the data landed at {to}");
    }
}

#[test]
fn short_io_transfers_less_but_loops_complete() {
    let fs = fs(FaultConfig { p_short_io: 1.0, ..FaultConfig::default() });
    let f = fs.open(Path::new("/a"), OpenMode::CreateNew).unwrap();
    assert!(f.write_at(&[5u8; 100], 0).unwrap() < 100);
    write_all_at(&*f, &[6u8; 1000], 0).unwrap();
    let mut buf = [0u8; 1000];
    assert!(f.read_at(&mut buf, 0).unwrap() < 1000);
    assert_eq!(read_full_at(&*f, &mut buf, 0).unwrap(), 1000);
    assert!(buf.iter().all(|&b| b == 6));
}

#[test]
fn canaries_lie() {
    let fs = fs(FaultConfig { canary: Some(Canary::SyncNoop), ..FaultConfig::default() });
    let f = create(&fs, "/a", b"x");
    fs.sync_dir(Path::new("/")).unwrap();
    f.sync().unwrap();
    fs.crash_with(CrashPolicy::LoseAll);
    assert_eq!(read_all(&fs, "/a").unwrap(), b"");

    let fs = SimFs::new(
        1,
        FaultConfig { canary: Some(Canary::EnospcLies), capacity_bytes: Some(1024), ..FaultConfig::default() },
    );
    let f = fs.open(Path::new("/a"), OpenMode::CreateNew).unwrap();
    assert_eq!(f.write_at(&[1u8; 4096], 0).unwrap(), 4096);
    assert_eq!(f.len().unwrap(), 0);
}

#[test]
fn same_seed_same_history() {
    let run = || {
        let fs = SimFs::new(99, FaultConfig { p_short_io: 0.3, ..FaultConfig::crashes_only() });
        fs.set_trace(true);
        for round in 0..20u8 {
            let name = format!("/f{}", round % 3);
            let f = match fs.open(Path::new(&name), OpenMode::ReadWrite) {
                Ok(f) => f,
                Err(_) => fs.open(Path::new(&name), OpenMode::CreateNew).unwrap(),
            };
            write_all_at(&*f, &[round; 700], u64::from(round) * 100).unwrap();
            if round % 4 == 0 {
                f.sync().unwrap();
                fs.sync_dir(Path::new("/")).unwrap();
            }
            if round % 7 == 6 {
                fs.crash();
            }
        }
        let events: Vec<String> = fs.take_events().iter().map(ToString::to_string).collect();
        (fs.disk_hash(), events)
    };
    let (h1, e1) = run();
    let (h2, e2) = run();
    assert_eq!(h1, h2);
    assert_eq!(e1, e2);
    assert!(e1.iter().any(|e| e.starts_with("crash")));
}

#[test]
fn every_mutating_call_is_counted_and_no_reading_call_is() {
    let fs = fs(FaultConfig::default());
    let mut last = fs.mutating_ops();
    let mut step = |what: &str, mutating: bool, fs: &SimFs| {
        let now = fs.mutating_ops();
        assert_eq!(now > last, mutating, "{what}: counted {} → {now}", last);
        last = now;
    };
    fs.create_dir_all(Path::new("/d")).unwrap();
    step("create_dir_all", true, &fs);
    let f = fs.open(Path::new("/d/a"), OpenMode::CreateNew).unwrap();
    step("open CreateNew", true, &fs);
    write_all_at(&*f, b"bytes", 0).unwrap();
    step("write_at", true, &fs);
    f.set_len(3).unwrap();
    step("set_len", true, &fs);
    f.sync().unwrap();
    step("sync", true, &fs);
    fs.sync_dir(Path::new("/d")).unwrap();
    step("sync_dir", true, &fs);
    fs.rename(Path::new("/d/a"), Path::new("/d/b")).unwrap();
    step("rename", true, &fs);
    // Reading calls: none counted.
    let r = fs.open(Path::new("/d/b"), OpenMode::Read).unwrap();
    let mut buf = [0u8; 3];
    read_full_at(&*r, &mut buf, 0).unwrap();
    r.len().unwrap();
    fs.read_dir(Path::new("/d")).unwrap();
    fs.exists(Path::new("/d/b")).unwrap();
    let lock = fs.try_lock(Path::new("/d/LOCK")).unwrap();
    drop(lock);
    let _ = fs.open(Path::new("/d/b"), OpenMode::ReadWrite).unwrap();
    step("reads, a lock and an open for writing", false, &fs);
    // A failing mutating call is counted too (it was attempted).
    assert!(fs.remove_file(Path::new("/d/missing")).is_err());
    step("a failed remove_file", true, &fs);
    fs.remove_file(Path::new("/d/b")).unwrap();
    step("remove_file", true, &fs);
}

#[test]
fn a_lost_write_puts_older_bytes_back_durably_and_is_recorded() {
    let fs = fs(FaultConfig::default());
    fs.create_dir_all(Path::new("/d")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    let f = create(&fs, "/d/a", b"new bytes here");
    f.sync().unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    assert!(fs.lose_write(Path::new("/d/a"), 4, b"OLD!!"));
    assert_eq!(read_all(&fs, "/d/a").unwrap(), b"new OLD!! here");
    fs.crash_with(CrashPolicy::LoseAll);
    assert_eq!(read_all(&fs, "/d/a").unwrap(), b"new OLD!! here", "the old bytes are the durable ones");
    let rec = fs.faults().into_iter().find(|r| r.kind == FaultKind::LostWrite).unwrap();
    assert_eq!((rec.pos, rec.len, rec.hit), (4, 5, Hit::Durable));
    // Past the durable end, or a missing file: nothing happens.
    assert!(!fs.lose_write(Path::new("/d/a"), 12, b"xyz"));
    assert!(!fs.lose_write(Path::new("/d/missing"), 0, b"x"));
    assert_eq!(fs.faults().iter().filter(|r| r.kind == FaultKind::LostWrite).count(), 1);
}
