//! The write path: append, flush, sync, roll, seal and close.
//!
//! Accepted records are encoded into an in-memory buffer (readable from
//! there) and written to the active segment when the buffer fills or on sync.
//! A sync appends a commit marker, writes, and fsyncs. The **commit-ordering
//! rule** holds throughout: nothing is written after a marker until the fsync
//! that covers it has returned, so any valid frame after a marker proves that
//! marker's batch was durable (recovery relies on this to tell rot from a
//! torn tail).

pub(crate) mod truncate;

use std::io;
use std::ops::Range;
use std::sync::Arc;

use tracing::{debug, debug_span, info_span, warn};

use crate::config::SyncPolicy;
use crate::dir::failure::Snapshot;
use crate::error::{Error, Result};
use crate::format::{self, META_FILE_NAME, MarkerKind, Meta, RecordRef};
use crate::fs::write_all_at;
use crate::log::{Entry, Log};
use crate::segment::marker;

/// What a sync in flight covers: the file to fsync and the offset that is
/// durable once it returns.
#[derive(Debug)]
pub(crate) struct SyncPlan {
    pub(crate) file: Arc<dyn crate::fs::FileHandle>,
    pub(crate) path: std::path::PathBuf,
    pub(crate) upto: u64,
    /// When the fsync was about to start (for the latency statistics).
    pub(crate) started: std::time::Instant,
}

impl Log {
    /// Appends one record and returns its offset. The record is *accepted*:
    /// readable at once, durable only after a [`sync`](Self::sync) (or as the
    /// [`SyncPolicy`] says). On `Err` nothing was appended.
    pub fn append(&mut self, entry: Entry<'_>) -> Result<u64> {
        self.append_batch(std::slice::from_ref(&entry)).map(|r| r.start)
    }

    /// Appends records atomically with respect to acceptance: either all get
    /// consecutive offsets (returned) or, on `Err`, none is appended. A batch
    /// never spans segments. Durability is per sync, so a crash may keep a
    /// prefix of an unsynced batch.
    pub fn append_batch(&mut self, entries: &[Entry<'_>]) -> Result<Range<u64>> {
        self.check_writable("append")?;
        let start = self.next_offset;
        if entries.is_empty() {
            return Ok(start..start);
        }
        let mut batch_bytes = 0u64;
        for e in entries {
            let size = e.payload_len();
            if size > u64::from(self.config.record_bytes_max) {
                return Err(Error::RecordTooLarge { size, max: self.config.record_bytes_max });
            }
            batch_bytes += size + format::RECORD_OVERHEAD as u64;
        }
        // Debug level: an append is the hot path, and a disabled span costs
        // one cached check.
        let _span = debug_span!("append", first_offset = start, records = entries.len(), bytes = batch_bytes).entered();
        self.clear_truncation_intent()?;
        let now = self.clock.now_ms();
        self.ensure_active(now)?;
        self.ensure_meta_on_disk(false)?;
        if self.should_roll(batch_bytes, entries.len() as u64, now) {
            self.roll_at(now)?;
        }
        // Only an append that writes (a full buffer, or a sync by policy) can
        // fail and need undoing: take the snapshot for those alone.
        let will_sync = match self.config.sync {
            SyncPolicy::Manual => false,
            SyncPolicy::Always => true,
            SyncPolicy::EveryRecords(n) => self.next_offset + entries.len() as u64 - self.durable_next >= n,
            SyncPolicy::EveryMillis(ms) => now.saturating_sub(self.last_sync_ms) >= ms,
        };
        let buffered = self.active.as_ref().map_or(0, |a| a.buf.len() as u64);
        let will_write = will_sync || buffered + batch_bytes >= u64::from(self.config.write_buffer_bytes);
        let snap = will_write.then(|| self.snapshot());
        let interval = self.config.index_interval_bytes;
        // Every record from `next_offset` on belongs to the current epoch.
        debug_assert_eq!(self.meta.epochs.expected(self.next_offset), self.meta.epochs.current());
        let epoch = format::Epochs::tag(self.meta.epochs.current());
        let (Some(active), Some(seg)) = (self.active.as_mut(), self.segments.values_mut().next_back()) else {
            return Err(self.invariant("no active segment after ensure_active"));
        };
        let index = seg.index.get_mut().ok_or_else(|| Error::corruption(&seg.path, 0, "active index missing"))?;
        for e in entries {
            let rec = RecordRef {
                offset: seg.tail.next_offset,
                timestamp_ms: e.timestamp_ms.unwrap_or(now),
                flags: e.flags,
                key: e.key,
                value: e.value,
                epoch,
            };
            let before = active.buf.len();
            format::encode_record(&mut active.buf, &rec);
            let frame_len = (active.buf.len() - before) as u64;
            index.observe(rec.offset, seg.tail.end_pos, rec.timestamp_ms, interval);
            seg.tail.add_record(rec.timestamp_ms, frame_len);
            active.records_since_marker += 1;
        }
        let end = seg.tail.next_offset;
        debug_assert_eq!(will_write, will_sync || active.buf.len() >= self.config.write_buffer_bytes as usize);
        self.next_offset = end;
        debug_assert_eq!(end - start, entries.len() as u64);

        self.write_by_policy(will_sync, will_write, snap)?;
        let payload = batch_bytes - entries.len() as u64 * format::RECORD_OVERHEAD as u64;
        self.stats.appended(end - start, payload);
        Ok(start..end)
    }

    /// The write an append owes its sync policy: a sync, a flush of a full
    /// buffer, or nothing. On a full disk the append is undone (`snap`, the
    /// state before it): `DiskFull` promises an unchanged log.
    fn write_by_policy(&mut self, will_sync: bool, will_write: bool, snap: Option<Snapshot>) -> Result<()> {
        let res = if will_sync {
            self.sync_inner()
        } else if will_write {
            self.flush_buffer()
        } else {
            Ok(())
        };
        if let Err(e) = res {
            if e.is_disk_full() {
                match snap {
                    Some(snap) => self.rollback(snap)?,
                    None => return Err(self.invariant("an append that was not expected to write failed")),
                }
            }
            return Err(e);
        }
        Ok(())
    }

    /// Hands every accepted record to the operating system (one write, no
    /// fsync), like `BufWriter::flush`: they then survive a crash of this
    /// process, but not a power failure. Nothing becomes durable.
    ///
    /// On a full disk it returns [`Error::DiskFullNotDurable`] and changes
    /// nothing: the records stay accepted.
    pub fn flush(&mut self) -> Result<()> {
        self.check_writable("flush")?;
        self.flush_buffer().map_err(|e| self.not_durable(e))
    }

    /// Makes every accepted record durable: writes a commit marker, writes
    /// the buffer and fsyncs the active segment. After `Ok`,
    /// [`durable_offset`](Self::durable_offset) equals
    /// [`next_offset`](Self::next_offset). After an fsync error the log is
    /// poisoned; it never retries one. On a full disk it returns
    /// [`Error::DiskFullNotDurable`] and changes nothing: the records stay
    /// accepted (sync again once space is freed; do not append them again).
    pub fn sync(&mut self) -> Result<()> {
        self.check_writable("sync")?;
        self.sync_inner().map_err(|e| self.not_durable(e))
    }

    /// A full disk met while writing records earlier calls accepted: they
    /// stay accepted, and the error says so (`DiskFull` would claim nothing
    /// was appended, which a caller could take as "append them again").
    /// With [`SyncPolicy::EveryMillis`]`(ms)`: syncs if records are waiting
    /// and the last sync (or the open) was `ms` or more ago, and says
    /// whether it did. Call it from a timer to bound how long an idle log
    /// keeps records unsynced; with any other policy it never syncs.
    pub fn sync_if_due(&mut self) -> Result<bool> {
        let SyncPolicy::EveryMillis(ms) = self.config.sync else { return Ok(false) };
        if self.durable_next == self.next_offset || self.clock.now_ms().saturating_sub(self.last_sync_ms) < ms {
            return Ok(false);
        }
        self.sync().map(|()| true)
    }

    fn not_durable(&self, e: Error) -> Error {
        match e {
            Error::DiskFull { op, path } => {
                Error::DiskFullNotDurable { op, path, durable: self.durable_next, next: self.next_offset }
            }
            other => other,
        }
    }

    /// Seals the active segment (if it holds records) and starts a new one.
    pub fn roll(&mut self) -> Result<()> {
        self.check_writable("roll")?;
        let now = self.clock.now_ms();
        self.roll_at(now)
    }

    fn roll_at(&mut self, now_ms: u64) -> Result<()> {
        let has_records = self.segments.values().next_back().is_some_and(|s| !s.sealed && s.tail.n_records > 0);
        if !has_records {
            return Ok(());
        }
        self.seal_and_create(now_ms)?;
        if self.config.retention_bytes.is_some() || self.config.retention_age_ms.is_some() {
            let r = self.apply_retention()?;
            if !r.deleted.is_empty() {
                debug!(n_deleted = r.deleted.len(), first_offset = r.first_offset, "retention after roll");
            }
        }
        Ok(())
    }

    /// Seals the active segment and starts a new one at the next offset.
    ///
    /// Successor first: the new segment is durable before the footer is
    /// written, so a sealed segment always has a successor on disk, and a
    /// sealed *last* segment proves that a file was lost (`docs/FORMAT.md`,
    /// "Roll"). A crash in between leaves the old segment unsealed and the
    /// new one empty; recovery seals the old one.
    pub(crate) fn seal_and_create(&mut self, now_ms: u64) -> Result<()> {
        let sealed_bytes = self.segments.values().next_back().map_or(0, |s| s.tail.end_pos);
        let _span = info_span!("roll", next_offset = self.next_offset, sealed_bytes).entered();
        self.sync_inner()?;
        let base = self.next_offset;
        let (path, file) = self.create_segment_file(base, now_ms)?;
        // `log.meta` names the new segment before the old one is sealed, so
        // that from here on losing the new segment is detected even if the
        // old one's footer is damaged too (seed 239556).
        let old_meta = self.meta.clone();
        let sealed = match self.store_meta(Meta { last_segment: Some(base), ..old_meta.clone() }) {
            Ok(()) => self.write_trailer(MarkerKind::Seal),
            Err((e, false)) => Err(e),
            // In place, maybe durable: the new segment must stay.
            Err((e, true)) => {
                self.poison_first(|| format!("naming the new segment in `log.meta` failed: {e}"));
                return Err(e.into_midway());
            }
        };
        if let Err(e) = sealed {
            // A poisoned log stays as it is (recovery seals the old segment
            // or finds it sealed). A full disk changed nothing else: the new
            // segment goes again, durably, `log.meta` first, before anything
            // more is appended to the old one (recovery would expect the old
            // one to end where the new one begins). If that undo fails, the
            // log is poisoned and the error says so, not `DiskFull`, which
            // promises an unchanged, usable log (seeds 25039, 44963,
            // 103892, 216916).
            if self.poison_cause().is_none()
                && let Err(e2) = self.undo_new_segment(&path, old_meta)
            {
                self.poison(format!("removing the new segment `{}` after a failed seal failed: {e2}", path.display()));
                return Err(Error::io("removing the new segment after a seal that hit a full disk", path, e2));
            }
            return Err(e);
        }
        if let Some(seg) = self.segments.values().next_back() {
            // Best effort: a missing index is rebuilt on first read.
            self.write_index_files(seg, seg.tail.end_pos + format::MARKER_FRAME_LEN as u64);
        }
        self.install_segment(base, path, file, now_ms);
        self.stats.rolled();
        Ok(())
    }

    /// Undoes a roll's first steps after its seal hit a full disk:
    /// `log.meta` as before (if it changed), the new segment removed, the
    /// directory fsynced.
    fn undo_new_segment(&mut self, path: &std::path::Path, old_meta: Meta) -> io::Result<()> {
        if self.meta != old_meta {
            self.replace_file(META_FILE_NAME, &old_meta.encode()).map_err(|(e, _)| e)?;
            self.meta = old_meta;
        }
        self.fs.remove_file(path)?;
        self.fs.sync_dir(&self.dir)
    }

    /// Closes the log cleanly: makes everything durable and writes a
    /// clean-close trailer and the active segment's index, so the next open
    /// reads no record.
    pub fn close(mut self) -> Result<()> {
        self.closed = true;
        if self.read_only {
            return Ok(());
        }
        self.check_writable("close")?;
        let _span = info_span!("close", dir = %self.dir.display()).entered();
        if let Err(e) = self.sync_inner() {
            return Err(match e {
                Error::DiskFull { path, .. } => {
                    Error::DiskFullAtClose { path, durable: self.durable_next, next: self.next_offset }
                }
                other => other,
            });
        }
        // Everything is durable now. The trailer only spares the next open
        // a scan: a full disk here loses nothing, so the close succeeds.
        // (No trailer before `log.meta` exists: a segment of this build holds
        // no byte past its header until then, which is how a lost
        // `log.meta` is recognised. The trailer only spares a scan.)
        if self.active.is_some() && self.meta_on_disk {
            match self.write_trailer(MarkerKind::Close) {
                Err(e) if e.is_disk_full() => {
                    warn!(dir = %self.dir.display(), "disk full writing the clean-close trailer; the data is durable, the next open scans the active segment");
                }
                Err(e) => return Err(e),
                Ok(()) => {
                    if let Some(seg) = self.segments.values().next_back() {
                        self.write_index_files(seg, seg.tail.end_pos);
                    }
                }
            }
        }
        for seg in self.segments.values().filter(|s| s.sealed) {
            if seg.index_dirty.load(std::sync::atomic::Ordering::Relaxed) {
                self.write_index_files(seg, seg.tail.end_pos + format::MARKER_FRAME_LEN as u64);
            }
        }
        self.fs.sync_dir(&self.dir).map_err(|e| Error::io("syncing the directory", self.dir.clone(), e))
    }

    // ------------------------------------------------------------------

    /// Undoes the appends made since `snap` (after ENOSPC).
    fn rollback(&mut self, snap: Snapshot) -> Result<()> {
        let (Some(active), Some(seg)) = (self.active.as_mut(), self.segments.values_mut().next_back()) else {
            return Err(self.invariant("rollback without an active segment"));
        };
        if active.flushed_pos > snap.flushed_pos {
            // Part of the batch reached the file: cut it off again.
            if let Err(e) = seg.file.set_len(snap.flushed_pos) {
                let path = seg.path.clone();
                return Err(self.write_failed("truncating", path, e));
            }
            active.buf.clear();
            active.flushed_pos = snap.flushed_pos;
            debug_assert!(false, "a flush succeeded within a batch that then hit ENOSPC");
        } else {
            active.buf.truncate(snap.buf_len);
        }
        active.records_since_marker = snap.records_since_marker;
        seg.tail = snap.tail;
        if let Some(ix) = seg.index.get_mut() {
            ix.rollback(snap.index);
        }
        self.next_offset = snap.next_offset;
        Ok(())
    }

    fn should_roll(&self, add_bytes: u64, add_records: u64, now_ms: u64) -> bool {
        let Some(seg) = self.segments.values().next_back().filter(|s| !s.sealed) else {
            return false;
        };
        if seg.tail.n_records == 0 {
            return false;
        }
        let c = &self.config;
        seg.tail.end_pos + add_bytes + format::MARKER_FRAME_LEN as u64 * 2 > c.segment_bytes_max
            || seg.tail.n_records + add_records > c.segment_records_max
            || c.segment_age_ms_max.is_some_and(|age| now_ms.saturating_sub(seg.created_ms) >= age)
    }

    /// Creates the active segment if the log has none (empty log, or the last
    /// segment is sealed).
    fn ensure_active(&mut self, now_ms: u64) -> Result<()> {
        if self.active.is_some() {
            return Ok(());
        }
        self.create_segment(self.next_offset, now_ms)
    }

    /// Writes the buffer to the active segment (no fsync). On ENOSPC the
    /// partial write is cut off and the buffer kept: nothing changes.
    pub(crate) fn flush_buffer(&mut self) -> Result<()> {
        let (Some(active), Some(seg)) = (self.active.as_mut(), self.segments.values().next_back()) else {
            return Ok(());
        };
        if active.buf.is_empty() {
            return Ok(());
        }
        match write_all_at(&*seg.file, &active.buf, active.flushed_pos) {
            Ok(()) => {
                active.flushed_pos += active.buf.len() as u64;
                active.buf.clear();
                Ok(())
            }
            Err(e) => {
                let (file, path, pos) = (Arc::clone(&seg.file), seg.path.clone(), active.flushed_pos);
                if e.kind() == io::ErrorKind::StorageFull {
                    self.undo_partial_write(&*file, path.clone(), pos)?;
                }
                Err(self.write_failed("writing", path, e))
            }
        }
    }

    pub(crate) fn sync_inner(&mut self) -> Result<()> {
        // What this sync makes durable: records `from..upto`, `bytes` of
        // the active segment (frames and the commit marker to come).
        let unsynced = match (self.active.as_ref(), self.segments.values().next_back()) {
            (Some(a), Some(seg)) => seg.tail.end_pos.saturating_sub(a.batch_start_pos),
            _ => 0,
        };
        let _span = info_span!("sync", from = self.durable_next, upto = self.next_offset, bytes = unsynced).entered();
        match self.sync_prepare()? {
            None => Ok(()),
            Some(plan) => {
                let res = plan.file.sync();
                self.sync_complete(plan, res)
            }
        }
    }

    /// The first half of a sync: appends the commit marker and writes the
    /// buffer. Returns what to fsync, or `None` when everything accepted is
    /// already durable. Until [`sync_complete`](Self::sync_complete) the
    /// caller must not write to the log (the commit-ordering rule); reading
    /// is fine, so the group-commit front fsyncs without holding its lock.
    pub(crate) fn sync_prepare(&mut self) -> Result<Option<SyncPlan>> {
        if let Some(cause) = self.poison_cause() {
            return Err(Error::Poisoned { cause: cause.to_string() });
        }
        let needs = self.active.as_ref().is_some_and(|a| a.records_since_marker > 0 || !a.buf.is_empty());
        if !needs {
            self.durable_next = self.next_offset;
            return Ok(None);
        }
        let now = self.clock.now_ms();
        let (Some(active), Some(seg)) = (self.active.as_mut(), self.segments.values_mut().next_back()) else {
            return Err(self.invariant("sync without an active segment"));
        };
        let buf_len = active.buf.len();
        let had_marker = active.records_since_marker > 0;
        if had_marker {
            let m = marker(MarkerKind::Commit, seg, active.batch_start_pos, now);
            format::encode_marker(&mut active.buf, &m);
            seg.tail.end_pos += format::MARKER_FRAME_LEN as u64;
        }
        if let Err(e) = self.flush_buffer() {
            // On ENOSPC nothing changed but the marker we added: take it back.
            // (Any other failure already reverted to the last durable state.)
            if had_marker
                && e.is_disk_full()
                && let (Some(active), Some(seg)) = (self.active.as_mut(), self.segments.values_mut().next_back())
            {
                active.buf.truncate(buf_len);
                seg.tail.end_pos -= format::MARKER_FRAME_LEN as u64;
            }
            return Err(e);
        }
        let Some(seg) = self.segments.values().next_back() else {
            return Err(self.invariant("active segment vanished during sync"));
        };
        Ok(Some(SyncPlan {
            file: Arc::clone(&seg.file),
            path: seg.path.clone(),
            upto: self.next_offset,
            started: std::time::Instant::now(),
        }))
    }

    /// The second half of a sync, given the result of `plan.file.sync()`.
    pub(crate) fn sync_complete(&mut self, plan: SyncPlan, res: io::Result<()>) -> Result<()> {
        let _span = info_span!("sync_complete", durable_offset = plan.upto).entered();
        self.stats.synced(plan.started.elapsed(), res.is_ok());
        if let Err(e) = res {
            return Err(self.sync_failed(plan.path, e));
        }
        if self.next_offset != plan.upto {
            return Err(self.invariant("the log was written to while an fsync was in flight"));
        }
        let Some(active) = self.active.as_mut() else {
            return Err(self.invariant("active segment vanished during sync"));
        };
        active.records_since_marker = 0;
        if let Some(seg) = self.segments.values().next_back() {
            active.batch_start_pos = seg.tail.end_pos;
        }
        self.durable_next = self.next_offset;
        self.durable_snap = Some(self.snapshot());
        self.last_sync_ms = self.clock.now_ms();
        debug!(durable_offset = self.durable_next, "synced");
        Ok(())
    }

    /// Forgets every record accepted after the last durable point, in memory
    /// and in the file (the cut is fsynced, so none of them can come back
    /// after a crash). The group-commit front uses it after ENOSPC, so that
    /// an append reported as failed never reappears.
    pub(crate) fn discard_unsynced(&mut self) -> Result<()> {
        self.check_writable("discard unsynced records")?;
        let Some(snap) = self.durable_snap else { return Ok(()) };
        if self.next_offset == snap.next_offset && self.active.as_ref().is_none_or(|a| a.buf.is_empty()) {
            return Ok(());
        }
        if let Some((file, path, true)) = self.restore_active(snap) {
            self.undo_partial_write(&*file, path, snap.flushed_pos)?;
        }
        Ok(())
    }

    /// Writes a trailer marker (seal footer or clean-close) after the data is
    /// already durable, and fsyncs it: a valid trailer therefore proves that
    /// everything before it was durable.
    fn write_trailer(&mut self, kind: MarkerKind) -> Result<()> {
        let now = self.clock.now_ms();
        let (Some(active), Some(seg)) = (self.active.as_mut(), self.segments.values_mut().next_back()) else {
            return Err(self.invariant("trailer without an active segment"));
        };
        debug_assert!(active.buf.is_empty() && active.records_since_marker == 0);
        let m = marker(kind, seg, seg.tail.end_pos, now);
        let mut frame = Vec::with_capacity(format::MARKER_FRAME_LEN);
        format::encode_marker(&mut frame, &m);
        let (file, path, pos) = (Arc::clone(&seg.file), seg.path.clone(), active.flushed_pos);
        debug_assert_eq!(pos, seg.tail.end_pos);
        if let Err(e) = write_all_at(&*file, &frame, pos) {
            if e.kind() == io::ErrorKind::StorageFull {
                self.undo_partial_write(&*file, path.clone(), pos)?;
            }
            return Err(self.write_failed("writing a trailer to", path, e));
        }
        if let Err(e) = file.sync() {
            return Err(self.sync_failed(path, e));
        }
        let (Some(active), Some(seg)) = (self.active.as_mut(), self.segments.values_mut().next_back()) else {
            return Err(self.invariant("active segment vanished while writing a trailer"));
        };
        active.flushed_pos += frame.len() as u64;
        match kind {
            MarkerKind::Seal => {
                // A sealed segment's `end_pos` is the position of its footer.
                seg.sealed = true;
                self.active = None;
            }
            MarkerKind::Close | MarkerKind::Commit => {
                seg.tail.end_pos += frame.len() as u64;
                active.batch_start_pos = seg.tail.end_pos;
            }
        }
        Ok(())
    }
}
