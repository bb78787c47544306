//! Key compaction: rewrites sealed segments keeping, for each key, only its
//! latest record, dropping tombstones once `Config::tombstone_retention_ms`
//! has passed since their own timestamp, and keeping every unkeyed record.
//! Offsets are preserved: compacted segments (header version 2) skip the
//! offsets that were dropped, and still cover their whole offset range, so
//! segments stay contiguous.
//!
//! A pass has three steps, so that the expensive one runs without any lock
//! (a [`SharedLog`](crate::SharedLog) keeps taking appends meanwhile):
//! [`Log::compaction_job`] snapshots the sealed segments (never the active
//! one); [`CompactionJob::run`] builds the key map within the memory budget
//! and writes the compacted segments as `<base>.log.compacted` files,
//! fsynced; [`Log::install_compaction`] swaps them in crash-atomically
//! through the manifest `log.compaction` (`docs/FORMAT.md`, "Compaction").
//! When the keys do not fit the budget, a pass's map covers a prefix of the
//! sealed records and the next pass continues from there.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use tracing::{info, info_span, warn};

use crate::error::{Error, Result};
use crate::format::{
    MANIFEST_FILE_NAME, MARKER_FRAME_LEN, Manifest, ManifestEntry, RecordRef, compacted_file_name, segment_file_name,
};
use crate::fs::{FileHandle, FileSystem};
use crate::index::SparseIndex;
use crate::log::Log;
use crate::segment::{Segment, Tail};

/// Bytes a key map entry costs besides the key itself (the table slot with
/// its `Vec` header and offset, load-factor slack, the key's allocation).
/// The map is only ever probed, never iterated, so its hashing order cannot
/// leak into results.
const MAP_ENTRY_OVERHEAD: u64 = 64;

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Passes run (more than one when the keys did not fit the map budget).
    pub passes: u32,
    /// Passes abandoned because the log changed underneath them (a
    /// truncation or retention between planning and installing; only with
    /// a `SharedLog`). Nothing was changed by those.
    pub passes_abandoned: u32,
    /// Segments replaced.
    pub segments_replaced: u64,
    /// Compacted segments written in their place.
    pub segments_written: u64,
    /// Records read from the replaced segments.
    pub records_read: u64,
    /// Records dropped because a later record has the same key.
    pub records_superseded: u64,
    /// Tombstones dropped because their retention had passed.
    pub tombstones_dropped: u64,
    /// Records dropped because they lay below the log's first offset.
    pub records_below_first: u64,
    /// Bytes of segments read and rewritten, summed over the passes (a
    /// later pass rewrites what an earlier one already compacted).
    pub bytes_rewritten: u64,
    /// Size of the sealed segments compaction started from.
    pub bytes_before: u64,
    /// Size of the segments covering the same offsets afterwards.
    pub bytes_after: u64,
}

impl CompactionReport {
    /// Adds another pass's counts to this one.
    pub fn merge(&mut self, o: &CompactionReport) {
        self.add(o);
    }

    fn add(&mut self, o: &CompactionReport) {
        self.passes += o.passes;
        self.passes_abandoned += o.passes_abandoned;
        self.segments_replaced += o.segments_replaced;
        self.segments_written += o.segments_written;
        self.records_read += o.records_read;
        self.records_superseded += o.records_superseded;
        self.tombstones_dropped += o.tombstones_dropped;
        self.records_below_first += o.records_below_first;
        self.bytes_rewritten += o.bytes_rewritten;
        self.bytes_before += o.bytes_before;
        self.bytes_after += o.bytes_after;
    }
}

/// One compaction pass, planned; [`run`](Self::run) it without holding the
/// log, then hand the output to [`Log::install_compaction`].
#[derive(Debug)]
pub struct CompactionJob {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    sources: Vec<Source>,
    map_from: u64,
    first_offset: u64,
    now_ms: u64,
    tombstone_retention_ms: u64,
    map_bytes: u64,
    segment_bytes_max: u64,
    segment_records_max: u64,
    index_interval: u32,
}

/// A compacted segment written by a job, not yet part of the log.
#[derive(Debug)]
struct Output {
    base: u64,
    next_offset: u64,
    sources: Vec<(u64, Tail)>,
    file: Arc<dyn FileHandle>,
    path: PathBuf,
    tail: Tail,
    index: SparseIndex,
    created_ms: u64,
    /// The compacted file's length and checksum, for the manifest.
    identity: crate::format::FileIdentity,
}

/// The result of [`CompactionJob::run`]: compacted files on disk, waiting
/// for [`Log::install_compaction`]. Dropping it without installing leaves
/// `.compacted` files that the next open removes.
#[derive(Debug)]
pub struct CompactionOutput {
    fs: Arc<dyn FileSystem>,
    outputs: Vec<Output>,
    /// Where the next pass's key map starts.
    pub map_end: u64,
    /// The end of the sealed segments the job saw.
    pub sealed_end: u64,
    report: CompactionReport,
}

impl CompactionOutput {
    /// The swap's manifest: each output's range and file identity.
    fn manifest(&self) -> Manifest {
        let entry = |o: &Output| ManifestEntry { base: o.base, next_offset: o.next_offset, output: Some(o.identity) };
        Manifest { entries: self.outputs.iter().map(entry).collect() }
    }

    /// Whether the sealed records were all covered by the key maps so far.
    pub fn is_last_pass(&self) -> bool {
        self.map_end >= self.sealed_end
    }

    fn discard(&mut self) {
        for o in self.outputs.drain(..) {
            let _ = self.fs.remove_file(&o.path);
        }
    }
}

impl Log {
    /// Compacts every sealed segment (see the module docs): one or more
    /// passes, each installed crash-atomically. Returns what was dropped.
    /// The active segment is never touched.
    pub fn compact(&mut self) -> Result<CompactionReport> {
        self.check_writable("compact")?;
        let span = info_span!(
            "compact",
            dir = %self.dir.display(),
            passes = tracing::field::Empty,
            records_read = tracing::field::Empty,
            bytes_before = tracing::field::Empty,
            bytes_after = tracing::field::Empty,
        )
        .entered();
        let mut total = CompactionReport::default();
        let mut map_from = 0;
        let end = self.sealed_end();
        let before = self.sealed_bytes_below(end);
        while let Some(job) = self.compaction_job(map_from)? {
            let out = job.run()?;
            map_from = out.map_end;
            let last = out.is_last_pass();
            let pass = self.install_compaction(out)?;
            total.add(&pass);
            if last {
                break;
            }
        }
        total.bytes_before = before;
        total.bytes_after = self.sealed_bytes_below(end);
        span.record("passes", total.passes);
        span.record("records_read", total.records_read);
        span.record("bytes_before", total.bytes_before);
        span.record("bytes_after", total.bytes_after);
        info!(
            passes = total.passes,
            superseded = total.records_superseded,
            tombstones = total.tombstones_dropped,
            bytes_before = total.bytes_before,
            bytes_after = total.bytes_after,
            bytes_rewritten = total.bytes_rewritten,
            "compacted"
        );
        Ok(total)
    }

    /// The segments compaction may rewrite: the sealed ones, never the last
    /// one. (A compacted output is sealed and promises a successor; as the
    /// last segment it would read as a lost file. The last segment is only
    /// ever sealed in a log an older build wrote, when a full disk kept the
    /// open from creating its successor.)
    fn compactable(&self) -> impl Iterator<Item = &crate::segment::Segment> {
        let last = self.segments.keys().next_back().copied();
        self.segments.values().filter(move |s| s.sealed && Some(s.base) != last)
    }

    /// One past the last offset of the segments compaction may rewrite (0 if
    /// none).
    pub(crate) fn sealed_end(&self) -> u64 {
        self.compactable().map(|s| s.tail.next_offset).max().unwrap_or(0)
    }

    /// Bytes of the segments compaction may rewrite that end at or before
    /// `end`.
    pub(crate) fn sealed_bytes_below(&self, end: u64) -> u64 {
        self.compactable().filter(|s| s.tail.next_offset <= end).map(|s| s.info().bytes).sum()
    }

    /// Plans a pass whose key map starts at offset `map_from` (0 for the
    /// first pass; then the previous output's `map_end`). `None` when there
    /// is nothing sealed at or after `map_from`.
    pub fn compaction_job(&self, map_from: u64) -> Result<Option<CompactionJob>> {
        self.check_writable("compact")?;
        let sources: Vec<Source> = self
            .compactable()
            .map(|s| Source {
                base: s.base,
                path: s.path.clone(),
                file: Arc::clone(&s.file),
                tail: s.tail,
                sparse: s.sparse,
                created_ms: s.created_ms,
                meta: self.meta.clone(),
            })
            .collect();
        let sealed_end = sources.last().map_or(0, |s| s.tail.next_offset);
        if sources.is_empty() || map_from >= sealed_end {
            return Ok(None);
        }
        Ok(Some(CompactionJob {
            fs: Arc::clone(&self.fs),
            dir: self.dir.clone(),
            sources,
            map_from,
            first_offset: self.first_offset,
            now_ms: self.clock.now_ms(),
            tombstone_retention_ms: self.config.tombstone_retention_ms,
            map_bytes: self.config.compaction_map_bytes,
            segment_bytes_max: self.config.segment_bytes_max,
            segment_records_max: self.config.segment_records_max,
            index_interval: self.config.index_interval_bytes,
        }))
    }

    /// After a swap: the compacted outputs replace their sources in the
    /// segment table, with their index files written (best effort: a
    /// missing index is rebuilt on first read).
    fn adopt_outputs(&mut self, outputs: Vec<Output>) {
        for o in outputs {
            for (b, _) in &o.sources {
                self.segments.remove(b);
            }
            let index = OnceLock::new();
            let _ = index.set(o.index);
            let seg = Segment {
                base: o.base,
                path: self.path_of(&segment_file_name(o.base)),
                file: o.file,
                created_ms: o.created_ms,
                tail: o.tail,
                sealed: true,
                sparse: true,
                index,
                index_dirty: Default::default(),
            };
            self.write_index_files(&seg, seg.tail.end_pos + MARKER_FRAME_LEN as u64);
            self.segments.insert(o.base, seg);
        }
    }

    /// Installs a pass's output: writes the manifest (the decision), then
    /// replaces the segments, renames the compacted files into place and
    /// removes the manifest. If the segments it read changed meanwhile, the
    /// pass is abandoned (its files removed) and reported as such. A failure
    /// after the manifest is durable poisons the log: a reopen finishes the
    /// swap.
    pub fn install_compaction(&mut self, mut out: CompactionOutput) -> Result<CompactionReport> {
        let mut report = std::mem::take(&mut out.report);
        if let Err(e) = self.check_writable("compact") {
            out.discard();
            return Err(e);
        }
        let unchanged = out
            .outputs
            .iter()
            .flat_map(|o| o.sources.iter())
            .all(|(base, tail)| self.segments.get(base).is_some_and(|s| s.sealed && s.tail == *tail));
        if !unchanged {
            out.discard();
            warn!("the log changed during a compaction pass; the pass is abandoned");
            return Ok(CompactionReport { passes_abandoned: 1, ..CompactionReport::default() });
        }
        if out.outputs.is_empty() {
            return Ok(report);
        }
        // Its outputs are segments of this build: `log.meta` first (a log an
        // older build wrote may not have it yet).
        if let Err(e) = self.ensure_meta_on_disk(false) {
            out.discard();
            return Err(e);
        }
        let _span = info_span!("compaction_swap", segments = out.outputs.len()).entered();
        // The compacted files' directory entries are durable before the
        // manifest can be: recovery relies on finding them.
        if let Err(e) = self.fs.sync_dir(&self.dir) {
            out.discard();
            let dir = self.dir.clone();
            return Err(self.write_failed("syncing the log directory", dir, e));
        }
        match self.write_manifest(&out.manifest()) {
            Ok(()) => {}
            // Not in place: nothing was decided.
            Err((e, false)) => {
                out.discard();
                return Err(e);
            }
            // Renamed into place, but its directory fsync failed: it may be
            // durable, so the swap counts as decided (a reopen finishes it,
            // and finds the compacted files it needs).
            Err((e, true)) => {
                self.poison_first(|| {
                    format!("the compaction manifest may or may not be durable ({e}); reopen the log to settle it")
                });
                return Err(e.into_midway());
            }
        }
        // Decided: from here on a reopen finishes the swap.
        let outputs = std::mem::take(&mut out.outputs);
        if let Err(e) = self.apply_swap(&outputs) {
            self.poison_first(|| format!("a compaction swap failed half-way ({e}); reopen the log to finish it"));
            return Err(e.into_midway());
        }
        self.adopt_outputs(outputs);
        let path = self.path_of(MANIFEST_FILE_NAME);
        let removed = self.fs.remove_file(&path).and_then(|()| self.fs.sync_dir(&self.dir));
        if let Err(e) = removed {
            // A manifest left behind would be replayed at the next open,
            // after later changes: refuse further writes until a reopen
            // settles it.
            self.poison_first(|| format!("removing the finished compaction manifest failed: {e}"));
            return Err(Error::io("removing", path, e));
        }
        report.passes = 1;
        self.stats.compacted(1, report.records_superseded + report.tombstones_dropped + report.records_below_first);
        info!(
            superseded = report.records_superseded,
            tombstones = report.tombstones_dropped,
            below_first = report.records_below_first,
            bytes_before = report.bytes_before,
            bytes_after = report.bytes_after,
            "compaction pass installed"
        );
        Ok(report)
    }

    /// Writes the manifest (temporary, fsync, rename, directory fsync). On
    /// failure, says whether the rename had happened (the manifest is in
    /// place and may be durable).
    fn write_manifest(&mut self, m: &Manifest) -> std::result::Result<(), (Error, bool)> {
        self.replace_file(MANIFEST_FILE_NAME, &m.encode()).map_err(|(e, renamed)| {
            let path = self.path_of(MANIFEST_FILE_NAME);
            (self.write_failed("writing the compaction manifest", path, e), renamed)
        })
    }

    /// The swap's file steps, in the order recovery also follows.
    fn apply_swap(&mut self, outputs: &[Output]) -> Result<()> {
        for o in outputs {
            for (b, _) in o.sources.iter().filter(|(b, _)| *b != o.base) {
                self.remove_segment_files(*b)?;
            }
            self.remove_index_files(o.base).map_err(|(p, e)| Error::io("removing", p, e))?;
            let to = self.path_of(&segment_file_name(o.base));
            self.fs.rename(&o.path, &to).map_err(|e| Error::io("renaming a compacted segment to", to, e))?;
        }
        self.fs.sync_dir(&self.dir).map_err(|e| Error::io("syncing the log directory", self.dir.clone(), e))
    }
}

/// A record's fate in a pass.
enum Fate {
    Keep,
    Superseded,
    ExpiredTombstone,
    BelowFirst,
}

impl CompactionJob {
    /// Builds the key map and writes the compacted segments (fsynced). Reads
    /// only sealed, immutable segments and writes only new files, so it
    /// needs no access to the log. On error every file it wrote is removed.
    pub fn run(self) -> Result<CompactionOutput> {
        let _span = info_span!("compaction_job", map_from = self.map_from, sources = self.sources.len()).entered();
        let sealed_end = self.sources.last().map_or(0, |s| s.tail.next_offset);
        let (map, map_end) = self.build_map(sealed_end)?;
        let mut out = CompactionOutput {
            fs: Arc::clone(&self.fs),
            outputs: Vec::new(),
            map_end,
            sealed_end,
            report: CompactionReport::default(),
        };
        if let Err(e) = self.write_outputs(&map, map_end, &mut out) {
            out.discard();
            return Err(e);
        }
        Ok(out)
    }

    /// Latest offset of each key among the records from `map_from`, until
    /// the budget is used up: `(map, map_end)`, the map covering offsets
    /// `map_from..map_end`.
    fn build_map(&self, sealed_end: u64) -> Result<(HashMap<Vec<u8>, u64>, u64)> {
        let mut map: HashMap<Vec<u8>, u64> = HashMap::new();
        let mut used = 0u64;
        for src in self.sources.iter().filter(|s| s.tail.next_offset > self.map_from) {
            let mut stop = None;
            walk(src, |r| {
                if r.offset < self.map_from {
                    return true;
                }
                if let Some(k) = r.key {
                    if let Some(o) = map.get_mut(k) {
                        *o = r.offset;
                    } else {
                        let cost = k.len() as u64 + MAP_ENTRY_OVERHEAD;
                        if used + cost > self.map_bytes && !map.is_empty() {
                            stop = Some(r.offset);
                            return false;
                        }
                        used += cost;
                        map.insert(k.to_vec(), r.offset);
                    }
                }
                true
            })?;
            if let Some(end) = stop {
                return Ok((map, end));
            }
        }
        Ok((map, sealed_end))
    }

    fn fate(&self, r: &RecordRef<'_>, map: &HashMap<Vec<u8>, u64>) -> Fate {
        if r.offset < self.first_offset {
            return Fate::BelowFirst;
        }
        let Some(k) = r.key else { return Fate::Keep };
        match map.get(k) {
            Some(&latest) if latest > r.offset => Fate::Superseded,
            Some(&latest)
                if latest == r.offset
                    && r.flags.tombstone()
                    && r.timestamp_ms.saturating_add(self.tombstone_retention_ms) < self.now_ms =>
            {
                Fate::ExpiredTombstone
            }
            _ => Fate::Keep,
        }
    }

    /// Writes the sources below `map_end` as compacted segments, merging
    /// adjacent ones while the result fits the segment limits.
    fn write_outputs(&self, map: &HashMap<Vec<u8>, u64>, map_end: u64, out: &mut CompactionOutput) -> Result<()> {
        let cleaned: Vec<&Source> = self.sources.iter().filter(|s| s.base < map_end).collect();
        let mut i = 0;
        while let Some(first) = cleaned.get(i) {
            let path = self.dir.join(compacted_file_name(first.base));
            let mut w = Writer::create(&self.fs, path, first.base, first.created_ms, self.index_interval)?;
            let mut group_report = CompactionReport::default();
            let mut n = 0;
            while let Some(src) = cleaned.get(i + n) {
                let mark = w.mark();
                let mut r = CompactionReport::default();
                w.add_source(src, src.tail.next_offset, |rec| {
                    r.records_read += 1;
                    match self.fate(rec, map) {
                        Fate::Keep => return true,
                        Fate::Superseded => r.records_superseded += 1,
                        Fate::ExpiredTombstone => r.tombstones_dropped += 1,
                        Fate::BelowFirst => r.records_below_first += 1,
                    }
                    false
                })?;
                let fits = w.tail.end_pos + MARKER_FRAME_LEN as u64 <= self.segment_bytes_max
                    && w.tail.n_records <= self.segment_records_max;
                if n > 0 && !fits {
                    w.rollback(mark)?;
                    break;
                }
                group_report.add(&r);
                n += 1;
            }
            let n = n.max(1);
            let group = cleaned.get(i..i + n).unwrap_or_default();
            let dropped =
                group_report.records_superseded + group_report.tombstones_dropped + group_report.records_below_first;
            if group.len() == 1 && dropped == 0 {
                // Nothing to gain: leave the segment as it is.
                w.abandon();
            } else {
                let base = first.base;
                let output::Written { file, path, tail, index, identity } = w.finish(base, self.now_ms)?;
                group_report.segments_replaced = group.len() as u64;
                group_report.segments_written = 1;
                group_report.bytes_before = group.iter().map(|s| s.bytes()).sum();
                group_report.bytes_rewritten = group_report.bytes_before;
                group_report.bytes_after = tail.end_pos + MARKER_FRAME_LEN as u64;
                out.outputs.push(Output {
                    base,
                    next_offset: tail.next_offset,
                    sources: group.iter().map(|s| (s.base, s.tail)).collect(),
                    file,
                    path,
                    tail,
                    index,
                    created_ms: first.created_ms,
                    identity,
                });
                out.report.add(&group_report);
            }
            i += n;
        }
        Ok(())
    }
}

use crate::dir::compacted::{self as output, Source, Writer, walk};
