//! log-core's model test on SimFs: random appends, batches, syncs, reads,
//! rolls, clean reopens and power failures under every crash policy, with
//! no other faults. After every crash the recovered log must be a
//! byte-identical prefix of what was accepted that holds everything durable.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "a test fails loudly")]

use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use seglog_core::{Config, Entry, FixedClock, Log, Options, Record};
use sim_fs::{CrashPolicy, FaultConfig, SimFs};

#[derive(Debug, Clone)]
enum Op {
    Append(usize),
    Batch(usize, usize),
    Sync,
    Read(usize),
    Roll,
    CleanReopen,
    Crash(CrashPolicy),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0..300usize).prop_map(Op::Append),
        2 => (1..6usize, 0..200usize).prop_map(|(n, l)| Op::Batch(n, l)),
        4 => Just(Op::Sync),
        3 => any::<usize>().prop_map(Op::Read),
        1 => Just(Op::Roll),
        1 => Just(Op::CleanReopen),
        2 => proptest::sample::select(CrashPolicy::ALL.to_vec()).prop_map(Op::Crash),
    ]
}

fn value(offset: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (offset * 13 + i) as u8).collect()
}

fn open(fs: &SimFs, config: &Config) -> Log {
    Log::open_with(
        Path::new("/data/log"),
        Options { fs: fs.shared(), clock: Arc::new(FixedClock(5)), config: config.clone(), read_only: false },
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn recovered_log_is_a_durable_prefix(seed in any::<u64>(), ops in proptest::collection::vec(op(), 1..80)) {
        let fs = SimFs::new(seed, FaultConfig { sector_bytes: 64, ..FaultConfig::default() });
        let config = Config {
            segment_bytes_max: 4096,
            index_interval_bytes: 256,
            write_buffer_bytes: 4096,
            ..Config::default()
        };
        let mut log = open(&fs, &config);
        let mut accepted: Vec<Record> = Vec::new();
        let mut durable = 0usize;
        for op in ops {
            match op {
                Op::Append(len) => {
                    let v = value(accepted.len(), len);
                    let off = log.append(Entry::new(&v)).unwrap();
                    prop_assert_eq!(off as usize, accepted.len());
                    accepted.push(Record { offset: off, timestamp_ms: 5, key: None, value: v, flags: seglog_core::RecordFlags::NONE });
                }
                Op::Batch(n, len) => {
                    let vals: Vec<Vec<u8>> = (0..n).map(|i| value(accepted.len() + i, len)).collect();
                    let entries: Vec<Entry<'_>> = vals.iter().map(|v| Entry::new(v)).collect();
                    log.append_batch(&entries).unwrap();
                    for v in vals {
                        let offset = accepted.len() as u64;
                        accepted.push(Record { offset, timestamp_ms: 5, key: None, value: v, flags: seglog_core::RecordFlags::NONE });
                    }
                }
                Op::Sync => {
                    log.sync().unwrap();
                    durable = accepted.len();
                }
                Op::Read(i) => {
                    if !accepted.is_empty() {
                        let i = i % accepted.len();
                        prop_assert_eq!(&log.read(i as u64).unwrap(), &accepted[i]);
                    }
                }
                Op::Roll => {
                    log.roll().unwrap();
                    durable = accepted.len();
                }
                Op::CleanReopen => {
                    log.close().unwrap();
                    durable = accepted.len();
                    log = open(&fs, &config);
                    prop_assert_eq!(log.next_offset() as usize, accepted.len());
                }
                Op::Crash(policy) => {
                    drop(log);
                    fs.crash_with(policy);
                    log = open(&fs, &config);
                    let recovered = log.next_offset() as usize;
                    prop_assert!(durable <= recovered && recovered <= accepted.len(),
                        "durable {} <= recovered {} <= accepted {} violated", durable, recovered, accepted.len());
                    let got: Vec<Record> = log.iter(..).collect::<Result<_, _>>().unwrap();
                    prop_assert_eq!(&got[..], &accepted[..recovered]);
                    accepted.truncate(recovered);
                    // Recovery made everything it kept durable.
                    durable = recovered;
                    prop_assert_eq!(log.durable_offset() as usize, recovered);
                }
            }
        }
    }
}
