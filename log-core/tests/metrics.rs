//! The `metrics` feature: `Log::stats` exported through the `metrics`
//! facade, labelled with the log's directory (`cargo test -p seglog-core
//! --features metrics --test metrics`; the workspace test run turns the
//! feature on through the `tests` package).
#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used, reason = "a test fails loudly")]

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use seglog_core::{Entry, Log};

#[test]
fn counters_and_the_fsync_histogram_reach_the_recorder() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let dir = tempfile::tempdir().unwrap();
    let stats = metrics::with_local_recorder(&recorder, || {
        let mut log = Log::open(dir.path(), Default::default()).unwrap();
        log.append(Entry::new(b"hello")).unwrap();
        log.append(Entry::new(b"world")).unwrap();
        log.sync().unwrap();
        log.read(1).unwrap();
        log.stats()
    });
    let label = dir.path().display().to_string();
    let mut seen = 0;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        assert!(key.labels().any(|l| l.key() == "log" && l.value() == label), "{key:?} is not labelled");
        match (key.name(), value) {
            ("seglog_records_appended_total", DebugValue::Counter(n)) => assert_eq!(n, stats.records_appended),
            ("seglog_bytes_appended_total", DebugValue::Counter(n)) => assert_eq!(n, 10),
            ("seglog_records_read_total", DebugValue::Counter(n)) => assert_eq!(n, 1),
            ("seglog_syncs_total", DebugValue::Counter(n)) => assert_eq!(n, 1),
            ("seglog_fsync_seconds", DebugValue::Histogram(v)) => assert_eq!(v.len(), 1),
            _ => continue,
        }
        seen += 1;
    }
    assert_eq!(seen, 5, "every expected metric was exported");
}
