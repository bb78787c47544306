//! Appends to a raft-log store until it is killed, printing every step that
//! returned (the child process of `tests/crash.rs`; also a quick load
//! generator). Usage: `raft-log-writer DIR [MAX_BATCHES]`.
//!
//! Lines printed, each only after the step is durable:
//! `acked TERM FIRST LAST`, `vote TERM`, `truncating INDEX` (before) and
//! `truncated INDEX` (after), `purged INDEX`. Entry `i` written in term `t`
//! is `Set { key: "k{i}", value: "v{i}-t{t}" }`, so any entry read back can
//! be checked.

use std::io::Write;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{LogId, RaftLogReader, Vote};
use seglog_raft::RaftLogStore;
use seglog_raft::kv::{KvConfig, demo_entry as entry};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: raft-log-writer DIR [MAX_BATCHES]")?;
    let max: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(u64::MAX);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let mut store = RaftLogStore::<KvConfig>::open(&dir)?;
        let state = store.get_log_state().await?;
        let mut next = state.last_log_id.map_or(0, |l| l.index + 1);
        let mut term = store.read_vote().await?.map_or(1, |v| v.leader_id().term);
        let out = std::io::stdout();
        let mut out = out.lock();
        for i in 0..max {
            if i % 40 == 39 {
                term += 1;
                store.save_vote(&Vote::new_committed(term, 0)).await?;
                writeln!(out, "vote {term}")?;
            }
            if i % 97 == 50 && next > 3 {
                // A conflict: the last three entries are replaced in a new
                // term.
                let at = next - 3;
                writeln!(out, "truncating {at}")?;
                out.flush()?;
                let got = store.try_get_log_entries(at - 1..at).await?;
                let prev = got.first().ok_or("the entry before the truncation point is missing")?.log_id;
                store.truncate(LogId::new(prev.leader_id, at)).await?;
                next = at;
                writeln!(out, "truncated {at}")?;
            }
            if i % 101 == 100 && next > 60 {
                let upto = next - 50;
                let got = store.try_get_log_entries(upto..upto + 1).await?;
                let id = got.first().ok_or("the entry to purge up to is missing")?.log_id;
                store.purge(id).await?;
                writeln!(out, "purged {upto}")?;
            }
            let n = 1 + i % 5;
            store.blocking_append((next..next + n).map(|ix| entry(term, ix))).await?;
            writeln!(out, "acked {term} {next} {}", next + n - 1)?;
            out.flush()?;
            next += n;
        }
        store.shutdown().await?;
        Ok(())
    })
}
