//! `salvage::write_sparse_log` (`seglog salvage --keep-offsets`): records
//! keep their offsets, and a power cut at any filesystem step of the write
//! leaves a directory that refuses to open or opens complete — never a
//! shorter log that looks whole.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "a test fails loudly")]

use std::path::Path;
use std::sync::Arc;

use seglog_core::salvage::write_sparse_log;
use seglog_core::{Config, Error, FixedClock, Log, Options, Record, RecordFlags};
use sim_fs::{FaultConfig, SimFs};

/// 60 records at offsets 100.. with every seventh missing, some keyed.
fn records() -> Vec<Record> {
    (100..200u64)
        .filter(|o| o % 7 != 0)
        .take(60)
        .map(|o| Record {
            offset: o,
            timestamp_ms: 1_000 + o,
            key: (o % 3 == 0).then(|| format!("k{o}").into_bytes()),
            value: vec![u8::try_from(o % 251).unwrap(); 200],
            flags: RecordFlags::default(),
        })
        .collect()
}

fn config() -> Config {
    Config { segment_bytes_max: 4096, ..Config::default() }
}

fn open(fs: &SimFs, read_only: bool) -> seglog_core::Result<Log> {
    let options = Options { fs: fs.shared(), clock: Arc::new(FixedClock(5_000)), config: config(), read_only };
    Log::open_with(Path::new("/out"), options)
}

#[test]
fn every_record_keeps_its_offset_and_the_gaps_are_holes() {
    let fs = SimFs::new(1, FaultConfig::default());
    let recs = records();
    let mut input = recs.clone();
    input.insert(10, recs[3].clone()); // a duplicate: skipped and listed
    let report = write_sparse_log(&fs.shared(), Path::new("/out"), &input, &config(), 5_000).unwrap();
    assert_eq!(report.records, 60);
    assert_eq!(report.skipped, vec![recs[3].offset]);
    assert!(report.segments > 1, "4 KiB segments: several");
    let holes: Vec<u64> = report.holes.iter().flat_map(Clone::clone).collect();
    let want_holes: Vec<u64> = (recs[0].offset..recs[59].offset).filter(|o| o % 7 == 0).collect();
    assert_eq!(holes, want_holes);

    let mut log = open(&fs, false).unwrap();
    assert_eq!((log.first_offset(), log.next_offset()), (recs[0].offset, recs[59].offset + 1));
    let read: Vec<Record> = log.iter(..).collect::<Result<_, _>>().unwrap();
    assert_eq!(read, recs, "every record, byte for byte, at its offset");
    assert!(matches!(log.read(105), Err(Error::Compacted { offset: 105 })));
    assert!(log.verify().problems.is_empty());
    assert_eq!(log.offset_for_timestamp(1_000 + 140).unwrap(), Some(141), "140 is a hole: the next record");
    let next = log.append(seglog_core::Entry::new(b"after")).unwrap();
    assert_eq!(next, recs[59].offset + 1);
}

#[test]
fn a_non_empty_directory_is_refused() {
    let fs = SimFs::new(2, FaultConfig::default());
    drop(open(&fs, false).unwrap()); // an empty log: log.lock and a segment
    let err = write_sparse_log(&fs.shared(), Path::new("/out"), &records(), &config(), 5_000).unwrap_err();
    assert!(err.to_string().contains("salvage into an empty directory"), "{err}");
}

#[test]
fn a_power_cut_at_any_step_leaves_a_refusal_or_the_whole_log() {
    let recs = records();
    let (mut refused, mut whole, mut steps) = (0, 0, 0);
    for n in 0.. {
        let mut finished = false;
        for seed in 0..8 {
            let fs = SimFs::new(seed, FaultConfig::crashes_only());
            fs.power_off_after(n);
            let res = write_sparse_log(&fs.shared(), Path::new("/out"), &recs, &config(), 5_000);
            let done = res.is_ok() && !fs.is_powered_off();
            finished |= done;
            if done {
                // A salvage that returned is durable, its directory's own
                // entry included: a power failure right after it keeps
                // every record (found by the simulator's operator salvage:
                // the new directory's entry was never fsynced).
                let policy = fs.crash();
                let log = open(&fs, true)
                    .unwrap_or_else(|e| panic!("seed {seed}: a finished salvage lost to a crash ({policy:?}): {e}"));
                let read: Vec<Record> = log.iter(..).collect::<Result<_, _>>().unwrap();
                assert!(
                    read == recs,
                    "seed {seed}: {} of {} records after a crash ({policy:?})",
                    read.len(),
                    recs.len()
                );
                continue;
            }
            fs.power_on();
            match open(&fs, true) {
                Err(_) => refused += 1,
                Ok(log) => {
                    let read: Vec<Record> = log.iter(..).collect::<Result<_, _>>().unwrap();
                    assert!(
                        read.is_empty() || read == recs,
                        "power cut at step {n} (seed {seed}): the log opened with {} of {} records",
                        read.len(),
                        recs.len()
                    );
                    whole += usize::from(!read.is_empty());
                }
            }
        }
        if finished {
            break;
        }
        steps += 1;
    }
    assert!(steps > 10 && refused > 0 && whole > 0, "steps {steps}, refused {refused}, whole {whole}");
}

/// Found while adding the simulator's operator salvage: one unreadable sector (EIO)
/// made `salvage_dir` fail for the whole directory. The rest of the file
/// is salvaged now, the sector reported as damage.
#[test]
fn an_unreadable_sector_costs_only_its_own_records() {
    use seglog_core::salvage::{Found, salvage_dir};
    use seglog_core::{Entry, FileSystem};
    let fs = SimFs::new(3, FaultConfig { sector_bytes: 512, ..FaultConfig::default() });
    let options = Options { fs: fs.shared(), clock: Arc::new(FixedClock(5_000)), config: config(), read_only: false };
    let mut log = Log::open_with(Path::new("/log"), options).unwrap();
    for i in 0..10u8 {
        log.append(Entry::new(&[i; 300])).unwrap();
    }
    log.close().unwrap();
    let seg = Path::new("/log").join(seglog_core::inspect::segment_file_name(0));
    assert!(fs.break_sector(&seg, 1024));
    let mut buf = [0u8; 16];
    assert!(fs.open(&seg, seglog_core::OpenMode::Read).unwrap().read_at(&mut buf, 1024).is_err());
    let found = salvage_dir(&fs, Path::new("/log")).unwrap();
    let offsets: Vec<u64> = found
        .iter()
        .filter_map(|f| match f {
            Found::Record(r) => Some(r.offset),
            Found::Damaged { .. } => None,
        })
        .collect();
    // Frames of 300 + overhead bytes from byte 64: the sector 1024..1536
    // holds parts of records 2..=4 at most; the others are salvaged.
    assert!(offsets.len() >= 7 && offsets.len() < 10, "{offsets:?}");
    assert!(offsets.contains(&0) && offsets.contains(&9), "{offsets:?}");
    assert!(found.iter().any(|f| matches!(f, Found::Damaged { from, to, .. } if *from <= 1024 && *to >= 1536)));
}
