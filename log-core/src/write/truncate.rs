//! Suffix truncation, prefix truncation and retention, each crash-atomic
//! through the metadata file (`log.meta`): the intent is made durable first,
//! and recovery finishes an interrupted operation, so a reopen sees either
//! the state before or the state after, never a mix. Step orders are in
//! `docs/FORMAT.md`. The cuts themselves are the directory layer's
//! (`dir/cut.rs`), which recovery also calls to finish an interrupted one.

use tracing::{info, info_span, warn};

use crate::error::{Error, Result};
use crate::format::Meta;
use crate::log::Log;
use crate::segment::SegmentInfo;

/// What [`Log::apply_retention`] deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// The segments deleted, oldest first.
    pub deleted: Vec<SegmentInfo>,
    /// The log's first offset afterwards.
    pub first_offset: u64,
}

impl Log {
    /// Drops every record from `offset` on (suffix truncation, e.g. for Raft
    /// log conflicts): the next append gets `offset`. Durable when it
    /// returns; a crash during it leaves the log as before or as after.
    pub fn truncate_from(&mut self, offset: u64) -> Result<()> {
        self.check_writable("truncate")?;
        if offset < self.first_offset || offset > self.next_offset {
            return Err(Error::OffsetOutOfRange { offset, first: self.first_offset, next: self.next_offset });
        }
        if offset == self.next_offset {
            return Ok(());
        }
        let _span = info_span!("truncate_from", offset).entered();
        let removed = self.next_offset - offset;
        self.sync_inner()?;
        // The intent also begins a new epoch at `offset`: a frame the cut
        // leaves behind (its rewrite lost by the disk) is then stale, never
        // read back as the record appended there next.
        self.write_meta(Meta {
            first_offset: self.first_offset,
            truncate_from: Some(offset),
            restart: false,
            epochs: self.meta.epochs.begin(offset),
            last_segment: None,
        })?;
        // From here on the truncation is decided (recovery finishes it), so
        // even if a step fails, this handle shows the log as truncated.
        if let Err(e) = self.cut_suffix(offset) {
            self.clamp_to(offset);
            self.poison_first(|| format!("a truncation at offset {offset} failed half-way ({e}); reopen to finish it"));
            return Err(e);
        }
        // The cut is durable. Clearing the intent can still hit a full disk:
        // the truncation stands anyway (recovery would redo the same cut, a
        // no-op while the log ends at `offset`), so it is not reported as
        // failed; the next append clears the intent before it writes a
        // record (`clear_truncation_intent`), so a stale intent can never
        // cut an appended record.
        if let Err(e) = self.write_meta(self.settled_meta(self.first_offset)) {
            if !e.is_disk_full() {
                return Err(e);
            }
            warn!(offset, "disk full while clearing the truncation intent; the next append clears it");
        }
        self.stats.truncated(crate::stats::Cut::Suffix, removed);
        info!(offset, "truncated the log's suffix");
        Ok(())
    }

    /// Drops every record before `offset` (prefix truncation, e.g. after a
    /// snapshot): whole segments below it are deleted, and `first_offset`
    /// becomes exactly `offset` across restarts even if the first remaining
    /// segment holds older records. Durable when it returns.
    pub fn truncate_before(&mut self, offset: u64) -> Result<()> {
        self.check_writable("truncate")?;
        if offset > self.next_offset {
            return Err(Error::OffsetOutOfRange { offset, first: self.first_offset, next: self.next_offset });
        }
        if offset <= self.first_offset {
            return Ok(());
        }
        let _span = info_span!("truncate_before", offset).entered();
        self.sync_inner()?;
        // The last segment always survives, so that the directory keeps
        // saying where the log ends: if every record goes, start a new one.
        let last_is_below =
            self.segments.values().next_back().is_some_and(|s| s.tail.next_offset <= offset && s.tail.n_records > 0);
        if last_is_below {
            let now = self.clock.now_ms();
            if self.active.is_some() {
                self.seal_and_create(now)?;
            } else {
                self.create_segment(self.next_offset, now)?;
            }
        }
        self.write_meta(self.settled_meta(offset))?;
        let removed = offset - self.first_offset;
        self.first_offset = offset;
        self.stats.truncated(crate::stats::Cut::Prefix, removed);
        self.remove_hidden_segments()?;
        info!(offset, "truncated the log's prefix");
        Ok(())
    }

    /// Drops every record and restarts the log, empty, at `offset`, which may
    /// lie past the end of the log: the next append gets `offset`, and
    /// `first_offset() == next_offset() == offset` from now on, across
    /// restarts. This is Kafka's "truncate fully and start at"; a Raft
    /// follower needs it when it installs a snapshot that is ahead of its
    /// whole log and then purges up to the snapshot. `offset` must be at
    /// least `next_offset()` (use [`truncate_before`](Self::truncate_before)
    /// or [`truncate_from`](Self::truncate_from) inside the log). Durable
    /// when it returns; a crash during it leaves the log as before or as
    /// after (`docs/FORMAT.md`, "Restart").
    pub fn restart_at(&mut self, offset: u64) -> Result<()> {
        self.check_writable("restart")?;
        if offset < self.next_offset {
            return Err(Error::OffsetOutOfRange { offset, first: self.first_offset, next: self.next_offset });
        }
        if offset == self.next_offset {
            return self.truncate_before(offset);
        }
        let _span = info_span!("restart_at", offset).entered();
        let removed = self.next_offset - self.first_offset;
        // The decision: once this is durable, recovery finishes the restart.
        // Nothing needs syncing first: every record goes.
        // Every record goes: the new epoch is the only one left.
        self.write_meta(Meta {
            first_offset: offset,
            truncate_from: None,
            restart: true,
            epochs: self.meta.epochs.begin(offset).from_offset(offset),
            last_segment: None,
        })?;
        if let Err(e) = self.finish_restart(offset) {
            self.poison_first(|| {
                format!("restarting the log at offset {offset} failed half-way ({e}); reopen to finish it")
            });
            return Err(e.into_midway());
        }
        // As for a suffix truncation, a full disk may keep the finished
        // intent in `log.meta`; the next append clears it.
        if let Err(e) = self.write_meta(self.settled_meta(offset)) {
            if !e.is_disk_full() {
                return Err(e);
            }
            warn!(offset, "disk full while clearing the restart intent; the next append clears it");
        }
        self.stats.truncated(crate::stats::Cut::Restart, removed);
        info!(offset, "restarted the log empty");
        Ok(())
    }

    /// Deletes the oldest sealed segments while the log is larger than
    /// `Config::retention_bytes` or their newest record is older than
    /// `Config::retention_age_ms` (by record timestamps, which are durable,
    /// so age survives restarts). Never deletes the active segment. Also
    /// applied after every roll.
    pub fn apply_retention(&mut self) -> Result<RetentionReport> {
        self.check_writable("apply retention")?;
        let now = self.clock.now_ms();
        let mut total: u64 = self.segments.values().map(|s| s.info().bytes).sum();
        let mut cut_to = None;
        let mut deleted = Vec::new();
        let n = self.segments.len();
        for seg in self.segments.values().take(n.saturating_sub(1)) {
            let too_big = self.config.retention_bytes.is_some_and(|b| total > b);
            let too_old = self
                .config
                .retention_age_ms
                .is_some_and(|a| seg.tail.n_records > 0 && seg.tail.max_ts.saturating_add(a) < now);
            if !(too_big || too_old) || !seg.sealed {
                break;
            }
            total -= seg.info().bytes;
            cut_to = Some(seg.tail.next_offset);
            deleted.push(seg.info());
        }
        if let Some(offset) = cut_to
            && offset > self.first_offset
        {
            self.truncate_before(offset)?;
            self.stats.retention_deleted(deleted.len() as u64);
        }
        Ok(RetentionReport { deleted, first_offset: self.first_offset })
    }
}
