//! Consumers: `SharedLog::tail` as a stream and as a blocking iterator,
//! `Log::iter_from`, and the typed error for offsets that retention or a
//! prefix truncation deleted (never a silent skip).

#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "a test fails loudly")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use seglog_core::{Config, Entry, Error, GroupConfig, Log, OwnedEntry, SharedLog, Visibility};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn small_segments() -> Config {
    Config { segment_bytes_max: 4096, ..Config::default() }
}

#[test]
fn a_stream_tail_follows_producers_in_order_and_ends_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_segments()).unwrap();
    let (shared, committer) = SharedLog::new(log, GroupConfig::default()).unwrap();
    rt().block_on(async move {
        let commit = tokio::task::spawn_blocking(move || committer.run_blocking());
        let (producers, per) = (4u64, 100u64);
        let mut tail = shared.tail(0, Visibility::Durable).with_batch_bytes(100);
        let got = Arc::new(AtomicU64::new(0));
        let consumer = tokio::spawn({
            let got = Arc::clone(&got);
            async move {
                let mut seen = Vec::new();
                while let Some(rec) = tail.next().await {
                    seen.push(rec.unwrap());
                    got.fetch_add(1, Ordering::SeqCst);
                }
                (seen, tail.next_offset())
            }
        });
        let mut tasks = Vec::new();
        for p in 0..producers {
            let h = shared.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..per {
                    h.append(OwnedEntry::new(format!("p{p}-{i}"))).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // The consumer has everything and waits at the end; the shutdown ends it.
        while got.load(Ordering::SeqCst) < producers * per {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        shared.shutdown().await.unwrap();
        let (seen, next) = consumer.await.unwrap();
        commit.await.unwrap().unwrap();
        assert_eq!(seen.len() as u64, producers * per, "every durable record once");
        assert!(seen.iter().enumerate().all(|(i, r)| r.offset == i as u64), "in offset order, no gap");
        assert_eq!(next, producers * per);
        // Each producer's records in its own order.
        for p in 0..producers {
            let mine: Vec<_> = seen.iter().filter(|r| r.value.starts_with(format!("p{p}-").as_bytes())).collect();
            for (i, r) in mine.iter().enumerate() {
                assert_eq!(r.value, format!("p{p}-{i}").into_bytes());
            }
        }
    });
}

#[test]
fn a_durable_tail_yields_only_what_an_fsync_covered() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Config::default()).unwrap();
    let (shared, committer) = SharedLog::new(log, GroupConfig::default()).unwrap();
    rt().block_on(async move {
        let commit = tokio::task::spawn_blocking(move || committer.run_blocking());
        let mut tail = shared.tail(0, Visibility::Durable);
        for i in 0..50u64 {
            let pending = shared.submit(OwnedEntry::new(i.to_string())).await.unwrap();
            let rec = tail.next().await.unwrap().unwrap();
            assert!(rec.offset < shared.durable_offset(), "yielded {} past the durable end", rec.offset);
            assert_eq!(pending.await.unwrap(), i..i + 1);
            assert_eq!(rec.value, i.to_string().into_bytes());
        }
        shared.shutdown().await.unwrap();
        commit.await.unwrap().unwrap();
    });
}

#[test]
fn a_tail_behind_a_prefix_truncation_gets_the_gap_as_an_error_then_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_segments()).unwrap();
    let (shared, committer) = SharedLog::new(log, GroupConfig::default()).unwrap();
    rt().block_on(async move {
        let commit = tokio::task::spawn_blocking(move || committer.run_blocking());
        let batch: Vec<_> = (0..20).map(|i| OwnedEntry::new(format!("r{i}"))).collect();
        shared.append_batch(batch).await.unwrap();
        let mut tail = shared.tail(3, Visibility::Durable);
        shared.truncate_before(10).await.unwrap();
        match tail.next().await.unwrap() {
            Err(Error::Truncated { offset: 3, first: 10 }) => {}
            other => panic!("expected Truncated {{ 3, 10 }}, got {other:?}"),
        }
        let rec = tail.next().await.unwrap().unwrap();
        assert_eq!((rec.offset, rec.value), (10, b"r10".to_vec()));
        let err = shared.read_range(3, 20, Visibility::Accepted, usize::MAX).unwrap_err();
        assert!(matches!(err, Error::Truncated { offset: 3, first: 10 }), "{err}");
        assert!(err.to_string().contains("resume from offset 10"), "{err}");
        shared.shutdown().await.unwrap();
        commit.await.unwrap().unwrap();
    });
}

#[test]
fn a_blocking_tail_follows_from_a_thread_and_ends_when_the_last_handle_goes() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_segments()).unwrap();
    let (shared, committer) = SharedLog::new(log, GroupConfig::default()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let consumer = std::thread::spawn({
        let tail = shared.tail(0, Visibility::Accepted).blocking();
        move || {
            for rec in tail {
                tx.send(rec.unwrap().value).unwrap();
            }
        }
    });
    rt().block_on(async move {
        let commit = tokio::task::spawn_blocking(move || committer.run_blocking());
        for i in 0..30 {
            shared.append(OwnedEntry::new(format!("v{i}"))).await.unwrap();
        }
        let values: Vec<Vec<u8>> = rx.iter().take(30).collect();
        assert_eq!(values, (0..30).map(|i| format!("v{i}").into_bytes()).collect::<Vec<_>>());
        drop(shared); // the tail is not a handle: the log closes, the tail ends
        commit.await.unwrap().unwrap();
    });
    consumer.join().unwrap();
}

#[test]
fn iter_from_is_a_typed_error_below_the_first_offset_and_past_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_segments()).unwrap();
    for i in 0..10 {
        log.append(Entry::new(format!("r{i}").as_bytes())).unwrap();
    }
    log.truncate_before(4).unwrap();
    assert!(matches!(log.iter_from(2).err(), Some(Error::Truncated { offset: 2, first: 4 })));
    assert!(matches!(log.iter_from(11).err(), Some(Error::OffsetOutOfRange { offset: 11, .. })));
    assert_eq!(log.iter_from(10).unwrap().count(), 0, "caught up: nothing, no error");
    let offsets: Vec<u64> = log.iter_from(4).unwrap().map(|r| r.unwrap().offset).collect();
    assert_eq!(offsets, (4..10).collect::<Vec<_>>());
    // `iter` keeps its range semantics: clamped to the log.
    assert_eq!(log.iter(0..).count(), 6);
}
