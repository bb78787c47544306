//! A queue partition: 8 producers append through group commit, a consumer
//! follows the durable records with a `Tail`, retention keeps the log
//! small, and a slow second consumer learns exactly which records
//! retention took from it.
//!
//! `cargo run -p seglog-core --example queue_partition [DIR]` (a temporary
//! directory by default).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use seglog_core::{Config, Error, GroupConfig, Log, OwnedEntry, SharedLog, Visibility};

const PRODUCERS: u64 = 8;
const PER_PRODUCER: u64 = 2_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let dir = std::env::args().nth(1).map_or_else(|| tmp.path().to_path_buf(), Into::into);
    let config = Config {
        segment_bytes_max: 64 << 10,
        retention_bytes: Some(256 << 10), // keep about 256 KiB: old segments go as new ones roll
        ..Config::default()
    };
    let (shared, committer) = SharedLog::new(Log::open(&dir, config)?, GroupConfig::default())?;
    let commit = tokio::task::spawn_blocking(move || committer.run_blocking());

    // The consumer: every durable record, in offset order, waiting at the end.
    let start = shared.next_offset();
    let mut tail = shared.tail(start, Visibility::Durable);
    let position = Arc::new(AtomicU64::new(start));
    let consumer = tokio::spawn({
        let position = Arc::clone(&position);
        async move {
            let (mut records, mut gaps) = (0u64, 0u64);
            while let Some(item) = tail.next().await {
                position.store(tail.next_offset(), Ordering::Release);
                match item {
                    Ok(_record) => records += 1,
                    // Retention overtook it: the offsets it missed, never a silent skip.
                    Err(Error::Truncated { offset, first }) => gaps += first - offset,
                    Err(e) => return Err(e),
                }
            }
            Ok((records, gaps, tail.next_offset()))
        }
    });

    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let shared = shared.clone();
        producers.push(tokio::spawn(async move {
            for i in 0..PER_PRODUCER {
                let event = format!("producer {p} event {i} {}", "x".repeat(64));
                shared.append(OwnedEntry::new(event).with_key(format!("p{p}"))).await?;
            }
            Ok::<_, Error>(())
        }));
    }
    for p in producers {
        p.await??;
    }
    let end = shared.next_offset();

    // A consumer that starts late, from where the first one started.
    let late = shared.tail(start, Visibility::Durable).next().await;
    let late_gap = match late {
        Some(Err(Error::Truncated { offset, first })) => first - offset,
        Some(Ok(_)) => 0,
        other => return Err(format!("the late consumer got {other:?}").into()),
    };

    // Let the live consumer reach the end, then shut down: its stream ends.
    while position.load(Ordering::Acquire) < end && !consumer.is_finished() {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let stats = shared.stats();
    shared.shutdown().await?;
    commit.await??;
    let (records, gaps, next) = consumer.await??;

    println!("appended {} records in {} fsyncs ({} batches)", end - start, stats.syncs, shared.group_stats().batches);
    println!(
        "fsync latency: mean {:?}, p99 <= {:?}, max {} us",
        stats.fsync_latency.mean().unwrap_or_default(),
        stats.fsync_latency.quantile_upper_bound(0.99).unwrap_or_default(),
        stats.fsync_latency.max_us
    );
    println!(
        "retention deleted {} segments; the log now starts at {}",
        stats.segments_deleted_by_retention,
        shared.first_offset()
    );
    println!("live consumer: {records} records, {gaps} missed to retention, stopped at {next}");
    println!("late consumer: told that {late_gap} records were deleted before it started");
    assert_eq!(records + gaps, end - start, "every offset was either read or reported missed");
    assert_eq!(next, end);
    assert!(late_gap > 0, "retention deleted the oldest records");
    Ok(())
}
