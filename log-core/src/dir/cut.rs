//! Cutting the log's segments, below the operations that decide to: a
//! suffix cut (`cut_suffix`, used by `Log::truncate_from` and by recovery
//! finishing an interrupted one), a restart's steps (`finish_restart`,
//! likewise), the in-memory view after a failed cut (`clamp_to`), and the
//! `log.meta` a finished operation leaves (`settled_meta`,
//! `clear_truncation_intent`).

use std::io;
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};
use crate::format::{self, MarkerKind, Meta};
use crate::fs::{OpenMode, write_all_at};
use crate::log::{Active, Log};

impl Log {
    /// Clears a finished truncation's or restart's intent from `log.meta` if
    /// a full disk left it there; every append calls it before writing a
    /// record.
    pub(crate) fn clear_truncation_intent(&mut self) -> Result<()> {
        if self.meta.truncate_from.is_none() && !self.meta.restart {
            return Ok(());
        }
        self.write_meta(self.settled_meta(self.first_offset))
    }

    /// `log.meta` with the first offset `first`, no pending operation, and
    /// the epochs still needed from `first` on.
    pub(crate) fn settled_meta(&self, first: u64) -> Meta {
        // Keep the entry covering the oldest segment still known: it may
        // hold records below `first` (a prefix truncation keeps the segment
        // holding `first`, a suffix truncation may leave a segment wholly
        // below it), and compaction reads them.
        let oldest = self.segments.keys().next().map_or(first, |b| (*b).min(first));
        Meta {
            first_offset: first,
            truncate_from: None,
            restart: false,
            epochs: self.meta.epochs.from_offset(oldest),
            last_segment: None,
        }
    }

    /// After a failed `cut_suffix`: show the log as cut at `offset`, in
    /// memory (the log is poisoned; a reopen finishes the cut on disk).
    pub(crate) fn clamp_to(&mut self, offset: u64) {
        let doomed: Vec<u64> = self.segments.range(offset..).map(|(b, _)| *b).collect();
        for b in doomed {
            self.segments.remove(&b);
        }
        self.next_offset = self.next_offset.min(offset).max(self.first_offset);
        self.durable_next = self.durable_next.min(self.next_offset);
        self.active = None;
        let interval = self.config.index_interval_bytes;
        let Some(seg) = self.segments.values_mut().next_back().filter(|s| s.tail.next_offset > offset) else { return };
        // The segment holding `offset` may be half cut: summarise what lies
        // before `offset` so reads and time lookups stay consistent.
        let len = seg.file.len().unwrap_or(0);
        let sparse = seg.sparse;
        // (A compacted segment's scan must also have stopped cleanly: one
        // that ran into damage says nothing about the records after it.)
        if let Ok((mut tail, ix, stop)) =
            crate::dir::scan::scan_frames_until(&*seg.file, seg.base, len, interval, (offset, sparse), &self.meta)
            && (tail.next_offset == offset || (sparse && stop.is_none() && tail.next_offset <= offset))
        {
            // A compacted segment's records may end before `offset`; it
            // still covers everything up to it, and stays sealed.
            tail.next_offset = offset;
            seg.tail = tail;
            seg.index = OnceLock::new();
            let _ = seg.index.set(ix);
            seg.sealed = sparse;
        }
    }

    /// A failure in the middle of a multi-step operation: poison the log
    /// without reverting (the caller decides what this handle shows).
    /// Even ENOSPC poisons here: the operation's intent is already durable,
    /// so the log has changed (a reopen finishes it), which is not what
    /// [`Error::DiskFull`] promises.
    pub(crate) fn fail_midway(&mut self, op: &'static str, path: std::path::PathBuf, e: io::Error) -> Error {
        self.poison_first(|| format!("{op} `{}` failed: {e}", path.display()));
        Error::io(op, path, e)
    }

    /// The steps of a restart after its intent is durable (also run by
    /// recovery): forget every record, create the empty segment at
    /// `offset` (unless it exists), remove every older segment. In a
    /// read-only log it only changes the in-memory view.
    pub(crate) fn finish_restart(&mut self, offset: u64) -> Result<()> {
        self.active = None;
        self.first_offset = offset;
        self.next_offset = offset;
        self.durable_next = offset;
        if self.read_only {
            self.segments.clear();
        } else {
            let has_target = self.segments.values().next_back().is_some_and(|s| s.base == offset);
            if !has_target {
                let now = self.clock.now_ms();
                self.create_segment(offset, now)?;
            }
            self.remove_hidden_segments()?;
        }
        self.durable_snap = Some(self.snapshot());
        Ok(())
    }

    /// Cuts the log at `offset`: deletes every segment from it on (newest
    /// first, fsyncing the directory after each, so a crash never leaves a
    /// hole) and cuts the segment that holds it, which becomes the active
    /// segment, ending in a fresh commit marker. Used by `truncate_from` and
    /// by recovery to finish an interrupted one; in a read-only log it only
    /// changes the in-memory view.
    pub(crate) fn cut_suffix(&mut self, offset: u64) -> Result<()> {
        let doomed: Vec<u64> = self.segments.range(offset..).map(|(b, _)| *b).rev().collect();
        for base in doomed {
            self.segments.remove(&base);
            if !self.read_only {
                self.remove_segment_files(base)?;
                if let Err(e) = self.fs.sync_dir(&self.dir) {
                    let dir = self.dir.clone();
                    return Err(self.fail_midway("syncing the log directory", dir, e));
                }
            }
        }
        self.active = None;
        let holder = self.segments.values().next_back().filter(|s| s.tail.next_offset > offset).map(|s| s.base);
        if let Some(base) = holder {
            if self.segments.get(&base).is_some_and(|s| s.sparse) {
                self.cut_compacted(base, offset).map_err(|e| match e {
                    Error::Io { op, path, source } => self.fail_midway(op, path, source),
                    other => {
                        self.poison_first(|| format!("cutting a compacted segment failed: {other}"));
                        other.into_midway()
                    }
                })?;
            } else {
                self.cut_segment(base, offset)?;
            }
        }
        self.next_offset = offset.max(self.first_offset);
        self.durable_next = self.next_offset;
        // The segment left last may be sealed (the cut fell on its end, or
        // it is compacted), or none is left: the next one is created while
        // the intent still stands, so the directory never ends in a sealed
        // segment once the intent is cleared (successor first, see `roll`).
        if !self.read_only && self.segments.values().next_back().is_none_or(|s| s.sealed) {
            let now = self.clock.now_ms();
            self.create_segment(self.next_offset, now)?;
        }
        self.durable_snap = Some(self.snapshot());
        Ok(())
    }

    /// Cuts segment `base` just before record `offset` and makes it active.
    fn cut_segment(&mut self, base: u64, offset: u64) -> Result<()> {
        let interval = self.config.index_interval_bytes;
        let (path, pos) = {
            let Some(seg) = self.segments.get(&base) else { return Ok(()) };
            (seg.path.clone(), self.locate(seg, offset)?.0)
        };
        let file = if self.read_only {
            self.segments
                .get(&base)
                .map(|s| Arc::clone(&s.file))
                .ok_or_else(|| Error::corruption(&path, 0, "vanished"))?
        } else {
            match self.fs.open(&path, OpenMode::ReadWrite) {
                Ok(f) => f,
                Err(e) => return Err(self.fail_midway("opening segment", path, e)),
            }
        };
        let (mut tail, ix, stop) = crate::dir::scan::scan_frames(&*file, base, pos, interval, &self.meta)
            .map_err(|e| Error::io("reading", path.clone(), e))?;
        if let Some((at, why)) = stop {
            return Err(Error::corruption(&path, at, why));
        }
        if !self.read_only {
            if let Err((p, e)) = self.remove_index_files(base) {
                return Err(self.fail_midway("removing", p, e));
            }
            if let Err(e) = file.set_len(pos) {
                return Err(self.fail_midway("truncating", path, e));
            }
            // The cut is durable before any byte at `pos` changes: the
            // segment may be sealed, and a crash that kept the marker's write
            // but not the cut would leave a footer vouching for bytes that
            // were overwritten (found by seed 393724).
            if let Err(e) = file.sync() {
                return Err(self.fail_midway("fsyncing", path, e));
            }
            // A commit marker right after the cut: any later damage before it
            // is then provably damage to synced data.
            let now = self.clock.now_ms();
            let m = format::Marker {
                kind: MarkerKind::Commit,
                next_offset: tail.next_offset,
                timestamp_ms: now,
                n_records: tail.n_records,
                min_ts: tail.min_ts,
                max_ts: tail.max_ts,
                batch_start_pos: pos,
                own_pos: pos,
                base_offset: base,
            };
            let mut frame = Vec::with_capacity(format::MARKER_FRAME_LEN);
            format::encode_marker(&mut frame, &m);
            if let Err(e) = write_all_at(&*file, &frame, pos) {
                return Err(self.fail_midway("writing a commit marker to", path, e));
            }
            if let Err(e) = file.sync() {
                return Err(self.fail_midway("fsyncing", path, e));
            }
            tail.end_pos = pos + frame.len() as u64;
        } else {
            tail.end_pos = pos;
        }
        debug_assert_eq!(tail.next_offset, offset);
        let Some(seg) = self.segments.get_mut(&base) else { return Ok(()) };
        seg.file = file;
        seg.tail = tail;
        seg.sealed = false;
        seg.index = OnceLock::new();
        let _ = seg.index.set(ix);
        self.active = Some(Active {
            buf: Vec::with_capacity(self.config.write_buffer_bytes as usize + 4096),
            flushed_pos: tail.end_pos,
            batch_start_pos: tail.end_pos,
            records_since_marker: 0,
        });
        Ok(())
    }
}
