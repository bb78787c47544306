//! Model test: random appends, batches, syncs, reads, iterations, rolls,
//! truncations, retention, key compaction and reopens on the real
//! filesystem, checked after every step against a plain `Vec` of what was
//! appended (`None` where compaction dropped a record).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "a test fails loudly")]

use std::sync::Arc;

use std::collections::BTreeMap;

use proptest::prelude::*;
use seglog_core::{Config, Entry, Error, FixedClock, Log, Options, Record, RecordFlags, StdFs, SyncPolicy};

#[derive(Debug, Clone)]
enum Op {
    Append { key: Option<Vec<u8>>, value_len: usize, ts: Option<u64>, tombstone: bool },
    Batch { n: usize, value_len: usize },
    Sync,
    Flush,
    Read(usize),
    Iter(usize, usize),
    Roll,
    TimeLookup(u64),
    Reopen { clean: bool },
    ReopenReadOnly,
    TruncateFrom(usize),
    TruncateBefore(usize),
    Retention { bytes: u64 },
    Compact,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)), 0..600usize,
               proptest::option::of(0..1000u64), any::<bool>())
            .prop_map(|(key, value_len, ts, tombstone)| Op::Append { key, value_len, ts, tombstone }),
        3 => (1..6usize, 0..300usize).prop_map(|(n, value_len)| Op::Batch { n, value_len }),
        3 => Just(Op::Sync),
        1 => Just(Op::Flush),
        4 => any::<usize>().prop_map(Op::Read),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::Iter(a, b)),
        1 => Just(Op::Roll),
        1 => (0..1100u64).prop_map(Op::TimeLookup),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
        1 => Just(Op::ReopenReadOnly),
        1 => any::<usize>().prop_map(Op::TruncateFrom),
        1 => any::<usize>().prop_map(Op::TruncateBefore),
        1 => (0..20_000u64).prop_map(|bytes| Op::Retention { bytes }),
        2 => Just(Op::Compact),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (
        4096..12_000u64,
        2..40u64,
        64..1024u32,
        prop_oneof![
            Just(SyncPolicy::Manual),
            Just(SyncPolicy::Always),
            (1..10u64).prop_map(SyncPolicy::EveryRecords),
            (1..100u64).prop_map(SyncPolicy::EveryMillis)
        ],
        0..1000u64,
        prop_oneof![Just(4096u64), Just(1 << 20)],
    )
        .prop_map(
            |(
                segment_bytes_max,
                segment_records_max,
                index_interval_bytes,
                sync,
                tombstone_retention_ms,
                map_bytes,
            )| {
                Config {
                    segment_bytes_max,
                    segment_records_max,
                    index_interval_bytes,
                    record_bytes_max: 4096,
                    write_buffer_bytes: 4096,
                    sync,
                    tombstone_retention_ms,
                    compaction_map_bytes: map_bytes,
                    ..Config::default()
                }
            },
        )
}

fn value(offset: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (offset * 31 + i * 7) as u8).collect()
}

fn open(dir: &std::path::Path, config: &Config, read_only: bool) -> Log {
    Log::open_with(
        dir,
        Options { fs: StdFs::shared(), clock: Arc::new(FixedClock(500)), config: config.clone(), read_only },
    )
    .unwrap()
}

/// The records of `model[a..b]` that compaction left.
fn live(model: &[Option<Record>], a: usize, b: usize) -> Vec<Record> {
    model.get(a..b).unwrap_or_default().iter().flatten().cloned().collect()
}

/// What compacting the sealed records below `sealed_end` leaves (the
/// clock is `FixedClock(500)`): drops records below `first`, records with a
/// later record of their key, and latest tombstones past their retention.
fn compact_model(model: &mut [Option<Record>], first: u64, sealed_end: usize, retention: u64) {
    let end = sealed_end.min(model.len());
    let mut latest: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    for r in model[..end].iter().flatten() {
        if let Some(k) = &r.key {
            latest.insert(k.clone(), r.offset);
        }
    }
    for slot in model[..end].iter_mut() {
        let drop = slot.as_ref().is_some_and(|r| {
            r.offset < first
                || r.key
                    .as_ref()
                    .is_some_and(|k| latest[k] > r.offset || (r.flags.tombstone() && r.timestamp_ms + retention < 500))
        });
        if drop {
            *slot = None;
        }
    }
}

/// `model` holds every offset from 0; those below `first` are truncated.
fn check_all(log: &Log, model: &[Option<Record>], first: u64) {
    assert_eq!(log.first_offset(), first);
    assert_eq!(log.next_offset(), model.len() as u64);
    let all: Vec<Record> = log.iter(..).collect::<Result<_, _>>().unwrap();
    assert_eq!(all, live(model, first as usize, model.len()));
    if first > 0 {
        assert!(log.read(first - 1).is_err(), "a truncated offset is readable");
    }
    let segs = log.segments();
    let mut next = segs.first().map_or(first, |s| s.base_offset);
    assert!(next <= first, "the first segment starts after the first offset: {segs:?}");
    for s in &segs {
        assert_eq!(s.base_offset, next, "segments must be contiguous: {segs:?}");
        assert!(s.compacted || s.next_offset - s.base_offset == s.n_records, "{s:?}");
        next = s.next_offset;
        assert!(s.bytes <= 12_000 + 4096 * 6 + 200, "segment too large: {s:?}");
    }
    assert_eq!(next, model.len() as u64);
    assert!(segs.iter().rev().skip(1).all(|s| s.sealed), "only the last segment may be active: {segs:?}");
    let report = log.verify();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(config in config(), ops in proptest::collection::vec(op(), 1..120)) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), &config, false);
        let mut model: Vec<Option<Record>> = Vec::new();
        let mut first = 0u64;
        for op in ops {
            match op {
                Op::Append { key, value_len, ts, tombstone } => {
                    let v = value(model.len(), value_len);
                    let mut e = Entry::new(&v);
                    e.key = key.as_deref();
                    e.timestamp_ms = ts;
                    let flags = if tombstone { RecordFlags::TOMBSTONE } else { RecordFlags::NONE };
                    e.flags = flags;
                    let off = log.append(e).unwrap();
                    prop_assert_eq!(off, model.len() as u64);
                    model.push(Some(Record { offset: off, timestamp_ms: ts.unwrap_or(500), key, value: v, flags }));
                }
                Op::Batch { n, value_len } => {
                    let vals: Vec<Vec<u8>> = (0..n).map(|i| value(model.len() + i, value_len + i)).collect();
                    let entries: Vec<Entry<'_>> = vals.iter().map(|v| Entry::new(v).with_key(b"k")).collect();
                    let r = log.append_batch(&entries).unwrap();
                    prop_assert_eq!(r.start, model.len() as u64);
                    prop_assert_eq!(r.end - r.start, n as u64);
                    for v in vals {
                        let offset = model.len() as u64;
                        model.push(Some(Record { offset, timestamp_ms: 500, key: Some(b"k".to_vec()), value: v, flags: RecordFlags::NONE }));
                    }
                }
                Op::Sync => {
                    log.sync().unwrap();
                    prop_assert_eq!(log.durable_offset(), log.next_offset());
                }
                Op::Flush => {
                    let durable = log.durable_offset();
                    log.flush().unwrap();
                    prop_assert_eq!(log.durable_offset(), durable, "flush makes nothing durable");
                }
                Op::Read(i) => {
                    if model.len() as u64 == first {
                        prop_assert!(log.read(first).is_err());
                    } else {
                        let i = first as usize + i % (model.len() - first as usize);
                        match &model[i] {
                            Some(want) => prop_assert_eq!(&log.read(i as u64).unwrap(), want),
                            None => {
                                let compacted = matches!(log.read(i as u64), Err(Error::Compacted { .. }));
                                prop_assert!(compacted, "offset {} should read as compacted", i);
                            }
                        }
                    }
                    prop_assert!(log.read(model.len() as u64).is_err());
                }
                Op::Iter(a, b) => {
                    let n = model.len() + 1;
                    let (a, b) = (a % n, b % n);
                    let got: Vec<Record> = log.iter(a as u64..b as u64).collect::<Result<_, _>>().unwrap();
                    let a = a.max(first as usize);
                    let want = if a < b { live(&model, a, b) } else { Vec::new() };
                    prop_assert_eq!(got, want);
                }
                Op::Roll => log.roll().unwrap(),
                Op::TimeLookup(t) => {
                    let want = model[first as usize..].iter().flatten().find(|r| r.timestamp_ms >= t).map(|r| r.offset);
                    prop_assert_eq!(log.offset_for_timestamp(t).unwrap(), want);
                }
                Op::Reopen { clean } => {
                    if clean {
                        log.close().unwrap();
                    } else {
                        drop(log);
                    }
                    log = open(dir.path(), &config, false);
                    if clean {
                        // A clean close lets the next open trust the trailer without a scan.
                        prop_assert!(log.recovery_report().clean);
                        prop_assert_eq!(log.recovery_report().bytes_scanned, 0);
                    }
                    prop_assert_eq!(log.durable_offset(), model.len() as u64);
                }
                Op::TruncateFrom(i) => {
                    let span = model.len() - first as usize + 1;
                    let at = first as usize + i % span;
                    let was_noop = at == model.len();
                    log.truncate_from(at as u64).unwrap();
                    model.truncate(at);
                    if !was_noop {
                        prop_assert_eq!(log.durable_offset(), at as u64, "a truncation is durable when it returns");
                    }
                }
                Op::TruncateBefore(i) => {
                    let span = model.len() - first as usize + 1;
                    let at = first + (i % span) as u64;
                    log.truncate_before(at).unwrap();
                    first = at;
                }
                Op::Retention { bytes } => {
                    let mut c = config.clone();
                    c.retention_bytes = Some(bytes);
                    log.close().unwrap();
                    log = open(dir.path(), &c, false);
                    let r = log.apply_retention().unwrap();
                    for d in &r.deleted {
                        prop_assert!(d.sealed, "retention deleted an unsealed segment");
                    }
                    let total: u64 = log.segments().iter().map(|s| s.bytes).sum();
                    prop_assert!(total <= bytes || log.segments().len() == 1 || !log.segments()[0].sealed,
                        "retention left {} bytes in {} segments, limit {}", total, log.segments().len(), bytes);
                    first = r.first_offset;
                    log.close().unwrap();
                    log = open(dir.path(), &config, false);
                }
                Op::Compact => {
                    let sealed_end =
                        log.segments().iter().filter(|s| s.sealed).map(|s| s.next_offset).max().unwrap_or(0);
                    log.compact().unwrap();
                    compact_model(&mut model, first, sealed_end as usize, config.tombstone_retention_ms);
                }
                Op::ReopenReadOnly => {
                    log.close().unwrap();
                    let ro = open(dir.path(), &config, true);
                    check_all(&ro, &model, first);
                    prop_assert!(ro.recovery_report().clean);
                    drop(ro);
                    log = open(dir.path(), &config, false);
                }
            }
            check_all(&log, &model, first);
        }
        log.close().unwrap();
        let log = open(dir.path(), &config, false);
        check_all(&log, &model, first);
    }
}
