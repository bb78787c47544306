//! Opening a log: list the directory, finish or remove leftovers, trust
//! sealed segments by their footer, and scan only the active segment.
//!
//! The active segment's fate after an unclean shutdown is decided frame by
//! frame. The scan stops at the first frame that does not verify, at byte
//! `P`. The bytes from `P` on are a *torn tail* (never durable: cut off) unless
//! the file proves that a sync covering `P` had completed, in which case they
//! are *corruption* of durable data (reported, never cut). The proof is a
//! valid marker frame after `P` that either commits a later batch (its batch
//! starts after `P`) or is itself followed by a valid frame: by the
//! commit-ordering rule (see `writer`), bytes after a marker are only ever
//! written once that marker's fsync has returned.
//!
//! What stays undetectable: damage inside the last synced batch of the active
//! segment (or to its commit marker) when nothing was written after that
//! batch before the crash. Such damage is indistinguishable from a sync that
//! was torn by the crash, and is cut off as a torn tail.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use tracing::{info, info_span, warn};

use crate::error::{Error, Result};
use crate::format::{
    self, FileKind, Frame, HEADER_LEN, HeaderError, MARKER_FRAME_LEN, META_FILE_NAME, Marker, MarkerKind, Meta,
    SegmentHeader, decode_frame, parse_file_name, segment_file_name,
};
use crate::fs::{FileHandle, FileLock, FileSystem, OpenMode, read_full_at};
use crate::index::SparseIndex;
use crate::log::{Active, Log, Options, RecoveryReport};
use crate::segment::{FileSource, FrameCursor, SCAN_CHUNK, STALE_FRAME, Segment, Stop, Tail};

/// Opens the log in `dir`, in phases, each a function below: list the
/// directory (and take the lock), settle interrupted work (a compaction
/// swap, leftovers), read the metadata, open the segments (trusting sealed
/// ones by their footer, scanning the active one, finishing an interrupted
/// roll), place the log's ends, finish pending intents (restart, suffix
/// truncation), and, read-write, keep the tail promises (`settle_tail`).
pub(crate) fn open(dir: &Path, opts: Options) -> Result<Log> {
    opts.config.validate()?;
    let _span = info_span!("open", dir = %dir.display(), read_only = opts.read_only).entered();
    let mut report = RecoveryReport::default();
    let (lock, names) = list_and_lock(&*opts.fs, dir, opts.read_only, &mut report)?;
    let mut listing = Listing::classify(names, &mut report);
    let overrides = settle_compaction(
        &*opts.fs,
        dir,
        opts.read_only,
        listing.has_manifest,
        &mut listing.bases,
        &listing.compacted,
        &mut report,
    )?;
    check_is_a_log(dir, opts.read_only, &listing, &report)?;
    if !opts.read_only {
        remove_leftovers(&*opts.fs, dir, &listing, &mut report)?;
        sync_directories(&*opts.fs, dir)?;
    }
    let has_meta = listing.has_meta;
    let mut log = empty_log(dir, opts, lock, has_meta);
    if has_meta {
        log.meta = read_meta(&log)?;
    }
    drop_restart_leftovers(&mut log, &mut listing.bases)?;
    open_segments(&mut log, &listing.bases, &overrides, &mut report)?;
    if !has_meta && let Some(seg) = log.segments.values().find(|s| s.successor_first && s.tail.next_offset > s.base) {
        return Err(missing_meta(&log, &seg.path));
    }
    place_ends(&mut log, has_meta, &mut report)?;
    finish_truncation(&mut log, &mut report)?;
    finish_restart_intent(&mut log, &mut report)?;
    if !log.read_only && !log.segments.is_empty() {
        settle_tail(&mut log)?;
    }
    report.clean = report.clean || log.segments.values().next_back().is_none_or(|s| s.sealed);
    info!(
        first_offset = log.first_offset,
        next_offset = log.next_offset,
        n_segments = log.segments.len(),
        clean = report.clean,
        torn_bytes = report.torn_bytes,
        "opened log"
    );
    log.report = report;
    Ok(log)
}

/// The lock a read-write open holds, and the directory's names.
type Listed = (Option<Box<dyn FileLock>>, Vec<String>);

/// Phase 1: the directory's names, created if missing (read-write). One
/// writer per directory: a read-write open holds the lock until the log is
/// closed or dropped. A directory of foreign files is refused before a lock
/// file is created in it; the listing is taken again under the lock (a
/// writer that just closed may have changed it).
fn list_and_lock(fs: &dyn FileSystem, dir: &Path, read_only: bool, report: &mut RecoveryReport) -> Result<Listed> {
    let names = match fs.read_dir(dir) {
        Ok(names) => names,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if read_only {
                return Err(Error::NoLog { path: dir.to_path_buf() });
            }
            fs.create_dir_all(dir).map_err(|e| Error::io("creating the log directory", dir, e))?;
            report.created = true;
            Vec::new()
        }
        Err(e) => return Err(Error::io("listing the log directory", dir, e)),
    };
    if read_only {
        return Ok((None, names));
    }
    if let Some(example) = only_foreign(&names) {
        return Err(Error::NotALogDirectory { path: dir.to_path_buf(), example });
    }
    let lock_path = dir.join(format::LOCK_FILE_NAME);
    let lock = fs.try_lock(&lock_path).map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock => Error::Locked { path: dir.to_path_buf() },
        _ => Error::io("locking", lock_path.clone(), e),
    })?;
    let names = fs.read_dir(dir).map_err(|e| Error::io("listing the log directory", dir, e))?;
    Ok((Some(lock), names))
}

/// The directory's names, by what the log makes of them.
#[derive(Debug, Default)]
struct Listing {
    bases: Vec<u64>,
    index_bases: Vec<(u64, String)>,
    temporaries: Vec<String>,
    compacted: Vec<u64>,
    has_meta: bool,
    has_manifest: bool,
}

impl Listing {
    fn classify(names: Vec<String>, report: &mut RecoveryReport) -> Self {
        let mut l = Listing::default();
        for name in names {
            match parse_file_name(&name) {
                Some(FileKind::Meta) => l.has_meta = true,
                Some(FileKind::Compacted(b)) => l.compacted.push(b),
                Some(FileKind::CompactionManifest) => l.has_manifest = true,
                Some(FileKind::Segment(b)) => l.bases.push(b),
                Some(FileKind::OffsetIndex(b) | FileKind::TimeIndex(b)) => l.index_bases.push((b, name)),
                Some(FileKind::Temporary) => l.temporaries.push(name),
                Some(FileKind::Lock) => {}
                None => report.unknown_files.push(name),
            }
        }
        l.bases.sort_unstable();
        l.compacted.sort_unstable();
        l
    }
}

/// Refuses a directory that holds no log: only foreign files (the wrong
/// directory), or, read-only, no segment beside foreign files.
fn check_is_a_log(dir: &Path, read_only: bool, l: &Listing, report: &RecoveryReport) -> Result<()> {
    if l.bases.is_empty()
        && l.index_bases.is_empty()
        && l.temporaries.is_empty()
        && !l.has_meta
        && let Some(example) = report.unknown_files.first()
    {
        return Err(Error::NotALogDirectory { path: dir.to_path_buf(), example: example.clone() });
    }
    if l.bases.is_empty() && read_only && !report.unknown_files.is_empty() {
        return Err(Error::NoLog { path: dir.to_path_buf() });
    }
    if !report.unknown_files.is_empty() {
        warn!(files = ?report.unknown_files, "ignoring files the log does not own");
    }
    Ok(())
}

/// Phase 2 (read-write): leftovers of interrupted operations. A temporary
/// is never referenced by the log (it becomes live only by rename), so
/// removing it undoes the operation; an index without its segment belongs
/// to a deleted segment.
fn remove_leftovers(fs: &dyn FileSystem, dir: &Path, l: &Listing, report: &mut RecoveryReport) -> Result<()> {
    for name in &l.temporaries {
        fs.remove_file(&dir.join(name)).map_err(|e| Error::io("removing a temporary file", dir.join(name), e))?;
    }
    report.temporaries_removed = l.temporaries.clone();
    for (b, name) in &l.index_bases {
        if l.bases.binary_search(b).is_err() {
            match fs.remove_file(&dir.join(name)) {
                Ok(()) => report.orphans_removed.push(name.clone()),
                // Already removed by a finished compaction swap.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("removing an orphan index", dir.join(name), e)),
            }
        }
    }
    Ok(())
}

/// The directory entries leading to the log, and the log's own entries,
/// must be durable before anything is called durable: an earlier process
/// may have created them and crashed (or failed a directory sync) before
/// they were. Syncing a clean directory is nearly free.
fn sync_directories(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
    let mut chain: Vec<PathBuf> = dir
        .ancestors()
        .skip(1)
        .take(64)
        .map(|p| if p.as_os_str().is_empty() { PathBuf::from(".") } else { p.to_path_buf() })
        .collect();
    chain.dedup();
    for p in chain.iter().rev() {
        fs.sync_dir(p).map_err(|e| Error::io("syncing a parent directory of the log", p.clone(), e))?;
    }
    fs.sync_dir(dir).map_err(|e| Error::io("syncing the log directory", dir, e))
}

/// A `Log` with no segment yet, holding the lock (if any).
fn empty_log(dir: &Path, opts: Options, lock: Option<Box<dyn FileLock>>, has_meta: bool) -> Log {
    Log {
        fs: opts.fs,
        clock: opts.clock,
        dir: dir.to_path_buf(),
        config: opts.config,
        read_only: opts.read_only,
        segments: BTreeMap::new(),
        active: None,
        first_offset: 0,
        next_offset: 0,
        durable_next: 0,
        poisoned: None,
        durable_snap: None,
        closed: false,
        report: RecoveryReport::default(),
        meta: Meta::default(),
        meta_on_disk: has_meta,
        indexes_rebuilt: Default::default(),
        _lock: lock,
    }
}

/// An interrupted restart: every record below its offset is gone, so the
/// segments below it are not even opened (one of them may be an unsealed
/// former active segment that is no longer last).
fn drop_restart_leftovers(log: &mut Log, bases: &mut Vec<u64>) -> Result<()> {
    if !log.meta.restart {
        return Ok(());
    }
    let first = log.meta.first_offset;
    let doomed: Vec<u64> = bases.iter().copied().filter(|b| *b < first).collect();
    bases.retain(|b| *b >= first);
    if !log.read_only && !doomed.is_empty() {
        for base in doomed {
            log.remove_segment_files(base)?;
        }
        log.fs.sync_dir(&log.dir).map_err(|e| Error::io("syncing the log directory", log.dir.clone(), e))?;
    }
    Ok(())
}

/// Phases 4 and 5: opens every segment, oldest first (see `open_segment`),
/// and checks that they continue each other. Segments wholly below the
/// logical start (a prefix truncation's leftovers, possibly brought back by
/// a crash) are kept aside, hidden.
fn open_segments(
    log: &mut Log,
    bases: &[u64],
    overrides: &BTreeMap<u64, PathBuf>,
    report: &mut RecoveryReport,
) -> Result<()> {
    let n = bases.len();
    for (i, &base) in bases.iter().enumerate() {
        let is_last = i + 1 == n;
        let next = (i + 2 == n).then(|| bases.get(n - 1).copied()).flatten();
        let seg = open_segment(log, base, (is_last, next), overrides.get(&base), report)?;
        if !is_last && seg.tail.next_offset <= log.meta.first_offset {
            log.segments.insert(base, seg);
            continue;
        }
        if let Some(prev) = log.segments.values().next_back().filter(|p| p.tail.next_offset > log.meta.first_offset)
            && prev.tail.next_offset != seg.base
        {
            let expected = segment_file_name(prev.tail.next_offset);
            return Err(Error::corruption(
                log.path_of(&expected),
                0,
                format!(
                    "segments are not contiguous: the previous segment ends before offset {}, the next file is `{}`, starting at {}: the segment file `{expected}` is missing or misplaced",
                    prev.tail.next_offset,
                    seg.path.display(),
                    seg.base
                ),
            ));
        }
        log.segments.insert(base, seg);
    }
    Ok(())
}

/// Places the log's first and next offsets and its active segment, after
/// finishing an interrupted restart (its intent is durable, but the empty
/// segment at the new first offset may not exist yet) and checking that the
/// log starts where `log.meta` says (`check_start`).
fn place_ends(log: &mut Log, has_meta: bool, report: &mut RecoveryReport) -> Result<()> {
    log.first_offset = log.meta.first_offset;
    log.next_offset = log.meta.first_offset;
    if log.meta.restart && log.segments.values().next_back().is_none_or(|l| l.tail.next_offset < log.meta.first_offset)
    {
        let first = log.meta.first_offset;
        report.finished_restart = Some(first);
        log.finish_restart(first)?;
    }
    if let Some(last) = log.segments.values().next_back()
        && last.tail.next_offset < log.meta.first_offset
    {
        return Err(Error::corruption(
            log.path_of(META_FILE_NAME),
            16,
            format!(
                "the metadata file says the log starts at offset {}, but it ends at {}",
                log.meta.first_offset, last.tail.next_offset
            ),
        ));
    }
    check_start(log, has_meta)?;
    log.remove_hidden_segments()?;
    if let Some(first) = log.segments.values().next() {
        log.first_offset = log.meta.first_offset.max(first.base);
    }
    if let Some(last) = log.segments.values().next_back() {
        log.next_offset = last.tail.next_offset;
        if !last.sealed {
            log.active = Some(Active {
                buf: Vec::with_capacity(log.config.write_buffer_bytes as usize + 4096),
                flushed_pos: last.tail.end_pos,
                batch_start_pos: last.tail.end_pos,
                records_since_marker: 0,
            });
        }
    }
    log.durable_next = log.next_offset;
    log.durable_snap = Some(log.snapshot());
    Ok(())
}

/// Phase 6: a suffix truncation that was interrupted is finished (in memory
/// only for a read-only open).
fn finish_truncation(log: &mut Log, report: &mut RecoveryReport) -> Result<()> {
    let Some(offset) = log.meta.truncate_from else { return Ok(()) };
    if offset < log.first_offset || offset > log.next_offset {
        return Err(Error::corruption(
            log.path_of(META_FILE_NAME),
            24,
            format!(
                "a pending truncation at offset {offset} lies outside the log {}..{}",
                log.first_offset, log.next_offset
            ),
        ));
    }
    report.finished_truncation = Some(offset);
    // (With no segment left, or the last one sealed because the cut fell
    // on its end, the cut creates the one at `offset` — before the
    // intent is cleared, or a sealed last segment would read as a lost
    // file; found by the `schedule` fuzz inputs.)
    if offset < log.next_offset || log.segments.values().next_back().is_none_or(|s| s.sealed) {
        log.cut_suffix(offset)?;
    }
    if !log.read_only {
        // The cut is complete. On a full disk the intent may stay: redoing
        // it is a no-op while the log ends at `offset`, and the first
        // append clears it before writing a record.
        let first = log.first_offset;
        match log.write_meta(log.settled_meta(first)) {
            Err(e) if e.is_disk_full() => {
                warn!(offset, "disk full: the finished truncation's intent stays in log.meta until the next append")
            }
            other => other?,
        }
    }
    Ok(())
}

/// Phase 6: a finished restart's intent is cleared (read-write).
fn finish_restart_intent(log: &mut Log, report: &mut RecoveryReport) -> Result<()> {
    if !log.meta.restart || log.read_only {
        return Ok(());
    }
    let first = log.first_offset;
    report.finished_restart.get_or_insert(first);
    match log.write_meta(log.settled_meta(first)) {
        Err(e) if e.is_disk_full() => {
            warn!(first, "disk full: the finished restart's intent stays in log.meta until the next append");
            Ok(())
        }
        other => other,
    }
}

/// A log with segments, opened read-write, keeps two promises from then on
/// (an older build kept neither): its last segment is unsealed, and
/// `log.meta` exists (written after a segment, so `log.meta` without one is
/// a lost file). Both only add detection: on a full disk the open goes on
/// without them (the segment is then created by the first append, the file
/// at the next open).
fn settle_tail(log: &mut Log) -> Result<()> {
    if log.segments.values().next_back().is_some_and(|s| s.sealed) {
        let now = log.clock.now_ms();
        match log.create_segment(log.next_offset, now) {
            Err(e) if e.is_disk_full() => {
                warn!("disk full: the log's next segment is created at the first append");
                return Ok(());
            }
            other => other?,
        }
    }
    log.ensure_meta_on_disk(true)
}

/// Opens segment `base`. `is_last`: it is the last segment; `next`: the
/// base of the last segment when this one is the one before it (it may be
/// a roll's unsealed old segment, whose new one is durable and empty).
fn open_segment(
    log: &Log,
    base: u64,
    (is_last, next): (bool, Option<u64>),
    path_override: Option<&PathBuf>,
    report: &mut RecoveryReport,
) -> Result<Segment> {
    let path = path_override.cloned().unwrap_or_else(|| log.path_of(&segment_file_name(base)));
    let mode = if (is_last || next.is_some()) && !log.read_only { OpenMode::ReadWrite } else { OpenMode::Read };
    let file = log.fs.open(&path, mode).map_err(|e| Error::io("opening segment", &path, e))?;
    let len = file.len().map_err(|e| Error::io("reading the size of", &path, e))?;

    let header = read_header(&*file, &path, base)?;
    let trailer = read_trailer(&*file, len, base).map_err(|e| Error::io("reading the footer of", &path, e))?;
    let mk = |tail: Tail, sealed: bool| Segment {
        base,
        path: path.clone(),
        file: Arc::clone(&file),
        created_ms: header.created_ms,
        tail,
        sealed,
        sparse: header.sparse,
        successor_first: header.successor_first,
        index: OnceLock::new(),
        index_dirty: Default::default(),
    };
    match trailer {
        Some(m) if m.kind == MarkerKind::Seal => {
            report.n_segments_trusted += 1;
            let tail = tail_of(&m, m.own_pos);
            check_summary(&path, &m, header.sparse)?;
            // Successor first: this build seals a segment only once the next
            // one is durable, and a truncation that leaves a sealed segment
            // last creates the next one before its intent is cleared.
            if is_last && header.successor_first && log.meta.truncate_from.is_none() && !log.meta.restart {
                return Err(lost_successor(log, &path, m.next_offset));
            }
            Ok(mk(tail, true))
        }
        // A compacted segment is written whole and sealed before it becomes
        // part of the log: without a valid footer it is damaged.
        _ if header.sparse => Err(Error::corruption(
            &path,
            len.saturating_sub(MARKER_FRAME_LEN as u64),
            "a compacted segment has no valid footer",
        )),
        Some(m) if m.kind == MarkerKind::Close && is_last => {
            check_summary(&path, &m, false)?;
            report.clean = true;
            let seg = mk(tail_of(&m, len), false);
            let ix = match log.load_index_files(&seg, len) {
                Some(ix) => ix,
                None => {
                    report.active_index_rebuilt = true;
                    log.scan_segment(&seg)?
                }
            };
            let _ = seg.index.set(ix);
            Ok(seg)
        }
        _ if !is_last => match next {
            Some(succ) if is_fresh_segment(log, succ)? => {
                finish_roll(log, mk(Tail::empty(base), false), len, succ, report)
            }
            _ => Err(Error::corruption(
                &path,
                len.saturating_sub(MARKER_FRAME_LEN as u64),
                "a sealed segment has no valid footer (only the last segment may be unsealed)",
            )),
        },
        _ => recover_active(log, mk(Tail::empty(base), false), len, report),
    }
}

/// Reads and checks segment `base`'s header.
fn read_header(file: &dyn FileHandle, path: &Path, base: u64) -> Result<SegmentHeader> {
    let mut hbuf = [0u8; HEADER_LEN as usize];
    let got = read_full_at(file, &mut hbuf, 0).map_err(|e| Error::io("reading the header of", path, e))?;
    let header = match SegmentHeader::decode(hbuf.get(..got).unwrap_or_default()) {
        Ok(h) => h,
        Err(HeaderError::Version(v)) => {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                found: v,
                supported: format::SEGMENT_VERSION,
            });
        }
        Err(HeaderError::Short) => return Err(Error::corruption(path, got as u64, "segment header is truncated")),
        Err(HeaderError::Magic) => return Err(Error::corruption(path, 0, "not a segment file (bad magic)")),
        Err(HeaderError::Invalid(why)) => return Err(Error::corruption(path, 0, why)),
    };
    if header.base_offset != base {
        return Err(Error::corruption(
            path,
            16,
            format!("header says base offset {}, but the file name says {base}", header.base_offset),
        ));
    }
    Ok(header)
}

/// The sealed last segment `path` proves its successor, at `next`, lost.
fn lost_successor(log: &Log, path: &Path, next: u64) -> Error {
    let missing = segment_file_name(next);
    Error::corruption(
        log.path_of(&missing),
        0,
        format!(
            "the last segment `{}` is sealed, but a segment is sealed only after the one that follows it is durable: the segment file `{missing}` (offsets from {next} on) is missing; restore it from a backup or a replica, or salvage what is left",
            path.display(),
        ),
    )
}

fn tail_of(m: &Marker, end_pos: u64) -> Tail {
    Tail { next_offset: m.next_offset, n_records: m.n_records, min_ts: m.min_ts, max_ts: m.max_ts, end_pos }
}

fn check_summary(path: &Path, m: &Marker, sparse: bool) -> Result<()> {
    let span = m.next_offset.checked_sub(m.base_offset);
    let counts_ok = if sparse { span.is_some_and(|s| m.n_records <= s) } else { span == Some(m.n_records) };
    if !counts_ok || (m.n_records > 0 && m.min_ts > m.max_ts) {
        return Err(Error::corruption(path, m.own_pos, "footer summary is inconsistent (record count vs offsets)"));
    }
    Ok(())
}

/// The marker that ends the file, if the file ends with a valid one.
fn read_trailer(file: &dyn FileHandle, len: u64, base: u64) -> io::Result<Option<Marker>> {
    let Some(pos) = len.checked_sub(MARKER_FRAME_LEN as u64).filter(|&p| p >= HEADER_LEN) else {
        return Ok(None);
    };
    let mut buf = [0u8; MARKER_FRAME_LEN];
    if read_full_at(file, &mut buf, pos)? != MARKER_FRAME_LEN {
        return Ok(None);
    }
    Ok(match decode_frame(&buf) {
        Ok((Frame::Marker(m), _)) if m.own_pos == pos && m.base_offset == base => Some(m),
        _ => None,
    })
}

/// `log.meta` is missing, and `segment` proves it existed.
fn missing_meta(log: &Log, segment: &Path) -> Error {
    Error::corruption(
        log.path_of(META_FILE_NAME),
        0,
        format!(
            "`{META_FILE_NAME}` is missing, but `{}` holds records that need it (it is written before a log's first record, and records tagged with an epoch exist only after a truncation it recorded): it was lost. It records where the log starts, any unfinished truncation and the records' epochs; restore it from a backup or a replica, or salvage the records",
            segment.display()
        ),
    )
}

/// Whether segment `base` holds nothing but its header: a roll's new
/// segment, created before the old one was sealed.
fn is_fresh_segment(log: &Log, base: u64) -> Result<bool> {
    let path = log.path_of(&segment_file_name(base));
    let file = log.fs.open(&path, OpenMode::Read).map_err(|e| Error::io("opening segment", &path, e))?;
    Ok(file.len().map_err(|e| Error::io("reading the size of", &path, e))? == HEADER_LEN)
}

/// A roll interrupted between its two durable steps: the new segment `succ`
/// exists (empty) and `seg`, the old one, has no footer yet. Every record of
/// `seg` was synced before `succ` was created, so the scan must reach
/// `succ`'s base (else records are damaged); then `seg` is sealed (in
/// memory only for a read-only open).
fn finish_roll(log: &Log, seg: Segment, len: u64, succ: u64, report: &mut RecoveryReport) -> Result<Segment> {
    let mut seg = recover_active(log, seg, len, report)?;
    if seg.tail.next_offset != succ {
        return Err(Error::corruption(
            &seg.path,
            seg.tail.end_pos,
            format!(
                "the segment ends before offset {}, but the next segment `{}` begins at {succ}; that segment was created only after every record before it was synced, so records {}..{succ} are damaged",
                seg.tail.next_offset,
                segment_file_name(succ),
                seg.tail.next_offset
            ),
        ));
    }
    if !log.read_only {
        let m = crate::writer::marker(MarkerKind::Seal, &seg, seg.tail.end_pos, log.clock.now_ms());
        let mut frame = Vec::with_capacity(MARKER_FRAME_LEN);
        format::encode_marker(&mut frame, &m);
        crate::fs::write_all_at(&*seg.file, &frame, seg.tail.end_pos)
            .and_then(|()| seg.file.sync())
            .map_err(|e| Error::io("sealing", seg.path.clone(), e))?;
    }
    info!(segment = %seg.path.display(), next_offset = succ, "sealed the old segment of an interrupted roll");
    seg.sealed = true;
    report.finished_roll = Some(seg.base);
    Ok(seg)
}

/// Scans the active segment after an unclean shutdown, cuts a torn tail
/// (durably) or reports corruption, and rebuilds its index.
fn recover_active(log: &Log, mut seg: Segment, len: u64, report: &mut RecoveryReport) -> Result<Segment> {
    let _span = info_span!("recover_active", segment = %seg.path.display(), len).entered();
    let (tail, ix, stop_at) = scan_frames(&*seg.file, seg.base, len, log.config.index_interval_bytes, &log.meta)
        .map_err(|e| Error::io("reading", seg.path.clone(), e))?;
    report.bytes_scanned = len;
    // Without `log.meta`, records are impossible in a segment this build
    // wrote (the file is written before a log's first record), and so is a
    // record tagged with an epoch (only truncations and restarts, recorded
    // there, begin one): the file was lost. Refuse before cutting anything.
    if !log.meta_on_disk
        && ((seg.successor_first && tail.n_records > 0) || stop_at.is_some_and(|(_, why)| why == STALE_FRAME))
    {
        return Err(missing_meta(log, &seg.path));
    }
    if let Some((pos, why)) = stop_at {
        debug_assert_eq!(pos, tail.end_pos);
        if let Some(evidence) =
            durable_evidence(&*seg.file, pos, len, seg.base).map_err(|e| Error::io("reading", seg.path.clone(), e))?
        {
            return Err(Error::corruption(
                &seg.path,
                pos,
                format!("{why}, and {evidence}, so the damaged bytes had been synced"),
            ));
        }
        warn!(pos, dropped = len - pos, why, "cutting off a torn tail");
        report.torn_tail = Some((seg.path.clone(), pos));
        report.torn_bytes = len - pos;
        if !log.read_only {
            seg.file.set_len(pos).map_err(|e| Error::io("truncating the torn tail of", seg.path.clone(), e))?;
        }
    }
    if !log.read_only {
        // Whatever was recovered becomes durable before anything is appended
        // after it (this also persists the cut above).
        seg.file.sync().map_err(|e| Error::io("fsyncing", seg.path.clone(), e))?;
    }
    seg.tail = tail;
    let _ = seg.index.set(ix);
    Ok(seg)
}

/// Lost files at the start of the log: where the log starts is known
/// (`log.meta`'s first offset; without `log.meta`, 0, since every way to
/// start elsewhere writes it), so the first segment that holds records from
/// there on must begin at or before it, and a log with `log.meta` has at
/// least one segment (the last one always survives). Anything else is a
/// segment file that disappeared, never a log that silently starts later.
fn check_start(log: &Log, has_meta: bool) -> Result<()> {
    if log.meta.restart {
        // A restart drops every segment below its offset by design.
        return Ok(());
    }
    let first = log.meta.first_offset;
    let why = if has_meta {
        "`log.meta` says it starts there"
    } else {
        "there is no `log.meta`, so it starts at 0; if the log had been prefix-truncated, `log.meta` is what is missing"
    };
    let visible =
        log.segments.values().find(|s| s.tail.next_offset > first).or_else(|| log.segments.values().next_back());
    match visible {
        // (A pending suffix truncation may have deleted every segment
        // before its crash; finishing it creates the new one.)
        None if has_meta && log.meta.truncate_from.is_none() => Err(Error::corruption(
            log.path_of(META_FILE_NAME),
            0,
            "the log has `log.meta` but no segment file: every segment file is missing (deleted or lost); restore them from a backup or a replica",
        )),
        Some(seg) if seg.base > first => Err(Error::corruption(
            log.path_of(&segment_file_name(first)),
            0,
            format!(
                "the log starts at offset {first} ({why}), but its first segment file is `{}`, starting at offset {}: the segment file holding offset {first} (this one, or one with an earlier base) is missing; restore it from a backup or a replica, or salvage what is left",
                seg.path.display(),
                seg.base
            ),
        )),
        _ => Ok(()),
    }
}

/// The first entry of a directory listing that holds entries but none the
/// log owns (not even a lock file): the wrong directory.
fn only_foreign(names: &[String]) -> Option<String> {
    if names.iter().any(|n| parse_file_name(n).is_some()) {
        return None;
    }
    names.first().cloned()
}

fn read_meta(log: &Log) -> Result<Meta> {
    let path = log.path_of(META_FILE_NAME);
    let f = log.fs.open(&path, OpenMode::Read).map_err(|e| Error::io("opening", path.clone(), e))?;
    // No valid file is longer than a full epoch table; read one byte more
    // than that at most, so a damaged or foreign file cannot make us
    // allocate without bound.
    let max = 40 + 16 * format::EPOCH_ENTRIES_MAX as u64;
    let len = f.len().map_err(|e| Error::io("reading the size of", path.clone(), e))?.min(max + 1);
    let mut buf = vec![0u8; len as usize];
    let n = read_full_at(&*f, &mut buf, 0).map_err(|e| Error::io("reading", path.clone(), e))?;
    Meta::decode(buf.get(..n).unwrap_or_default()).map_err(|e| match e {
        format::DecodeError::UnknownVersion(found) => Error::UnsupportedVersion {
            path: path.clone(),
            found,
            supported: format::META_VERSION_EPOCHS,
        },
        e => Error::corruption(
            &path,
            0,
            format!("{e}; it records where the log starts, any unfinished truncation and the epochs of its records: restore it from a backup (removing it is safe only if the log never had a suffix truncation or restart)"),
        ),
    })
}

/// A segment walk's summary, index, and where and why it stopped early.
pub(crate) type ScanResult = (Tail, SparseIndex, Option<(u64, &'static str)>);

/// Walks the frames of a segment file from its header to `len`, checking
/// that they continue each other and that each record belongs to the epoch
/// `meta` gives its offset. Returns the summary and index of the valid
/// prefix, and where and why the walk stopped early (if it did).
pub(crate) fn scan_frames(
    file: &dyn FileHandle,
    base: u64,
    len: u64,
    interval: u32,
    meta: &Meta,
) -> io::Result<ScanResult> {
    scan_frames_until(file, base, len, interval, (u64::MAX, false), meta)
}

/// Like [`scan_frames`], but stops (without error) at the first record with
/// offset `until.0` or later; the summary then ends right before it. In a
/// compacted segment (`until.1`) offsets may skip.
pub(crate) fn scan_frames_until(
    file: &dyn FileHandle,
    base: u64,
    len: u64,
    interval: u32,
    (until, sparse): (u64, bool),
    meta: &Meta,
) -> io::Result<ScanResult> {
    let mut ix = SparseIndex::new(HEADER_LEN);
    let mut tail = Tail::empty(base);
    let mut cursor = FrameCursor::new(HEADER_LEN, len, SCAN_CHUNK, meta);
    let stop_at = loop {
        match cursor.next_frame(&FileSource(file)) {
            Ok(Some((_, Frame::Record(r)))) if r.offset >= until => break None,
            Ok(Some((at, Frame::Record(r))))
                if r.offset == tail.next_offset || (sparse && r.offset > tail.next_offset) =>
            {
                let (offset, ts) = (r.offset, r.timestamp_ms);
                ix.observe(offset, at, ts, interval);
                let frame_len = cursor.pos() - at;
                tail.add_record_at(offset, ts, frame_len);
            }
            Ok(Some((at, Frame::Marker(m))))
                if m.kind != MarkerKind::Seal
                    && m.own_pos == at
                    && m.base_offset == base
                    && m.next_offset == tail.next_offset
                    && m.n_records == tail.n_records =>
            {
                tail.end_pos = cursor.pos();
            }
            // A compacted segment's footer ends its records.
            Ok(Some((at, Frame::Marker(m)))) if sparse && m.kind == MarkerKind::Seal && m.own_pos == at => break None,
            Ok(Some((at, _))) => break Some((at, "frame does not continue the records before it")),
            Ok(None) => break None,
            Err(Stop::Invalid { pos, why }) => break Some((pos, why)),
            Err(Stop::Torn { pos }) => break Some((pos, "frame runs past the end of the file")),
            Err(Stop::Io(e)) => return Err(e),
        }
    };
    Ok((tail, ix, stop_at))
}

/// Looks past a bad frame at `bad_pos` for proof that it had been synced.
/// Returns a description of the proof, or `None` if the bytes from `bad_pos`
/// may be an unsynced, torn tail.
fn durable_evidence(file: &dyn FileHandle, bad_pos: u64, len: u64, base: u64) -> io::Result<Option<String>> {
    let rest_len = usize::try_from(len - bad_pos).map_err(|_| io::Error::other("segment too large"))?;
    let mut rest = vec![0u8; rest_len];
    let got = read_full_at(file, &mut rest, bad_pos)?;
    rest.truncate(got);
    let marker_body = (format::MARKER_BODY_LEN as u32).to_le_bytes();
    for i in 1..rest.len() {
        // Cheap filter before the checksum: the marker's length field.
        if rest.get(i + 4..i + 8) != Some(&marker_body[..]) {
            continue;
        }
        let at = bad_pos + i as u64;
        let Some(bytes) = rest.get(i..) else { break };
        let Ok((Frame::Marker(m), n)) = decode_frame(bytes) else {
            continue;
        };
        if m.own_pos != at || m.base_offset != base || m.kind == MarkerKind::Seal {
            continue;
        }
        if m.batch_start_pos > bad_pos {
            return Ok(Some(format!("a later batch was committed by the marker at byte {at}")));
        }
        let after = bytes.get(n..).unwrap_or_default();
        let followed = match decode_frame(after) {
            Ok((Frame::Record(r), _)) => r.offset == m.next_offset,
            Ok((Frame::Marker(m2), _)) => m2.own_pos == at + n as u64 && m2.base_offset == base,
            Err(_) => false,
        };
        if followed {
            return Ok(Some(format!("the batch's commit marker at byte {at} is followed by later writes")));
        }
    }
    Ok(None)
}

/// Finishes or undoes a compaction swap (docs/FORMAT.md, "Compaction").
/// With a durable manifest, every segment it replaces is deleted and each
/// compacted file is renamed into place (read-only: the view is adjusted
/// instead, through the returned path overrides); without one, compacted
/// files are leftovers of a pass that never committed and are deleted.
fn settle_compaction(
    fs: &dyn crate::fs::FileSystem,
    dir: &Path,
    read_only: bool,
    has_manifest: bool,
    bases: &mut Vec<u64>,
    compacted: &[u64],
    report: &mut RecoveryReport,
) -> Result<BTreeMap<u64, PathBuf>> {
    let mut overrides = BTreeMap::new();
    let io = |op: &'static str, p: PathBuf| move |e: io::Error| Error::io(op, p, e);
    let manifest = if has_manifest { Some(read_manifest(fs, dir)?) } else { None };
    let Some(manifest) = manifest else {
        if !read_only {
            for &b in compacted {
                remove_if_present(fs, &dir.join(format::compacted_file_name(b)))?;
                report.temporaries_removed.push(format::compacted_file_name(b));
            }
        }
        return Ok(overrides);
    };
    for &(base, next) in &manifest.entries {
        let has_new = compacted.binary_search(&base).is_ok();
        // Without its compacted file, the rename must have happened: the
        // segment in place must be that compacted segment. Anything else
        // would make finishing the swap delete records.
        let renamed =
            !has_new && bases.binary_search(&base).is_ok() && is_compacted(fs, &dir.join(segment_file_name(base)));
        if !has_new && !renamed {
            return Err(Error::corruption(
                dir.join(format::MANIFEST_FILE_NAME),
                0,
                format!(
                    "the compaction manifest names segment {base}, but its compacted file is missing and {} is not a compacted segment; restore the directory from a backup or salvage it",
                    segment_file_name(base)
                ),
            ));
        }
        let replaced: Vec<u64> = bases.iter().copied().filter(|&b| b > base && b < next).collect();
        bases.retain(|&b| !(b > base && b < next));
        if !bases.contains(&base) {
            bases.push(base);
            bases.sort_unstable();
        }
        if read_only {
            if has_new {
                overrides.insert(base, dir.join(format::compacted_file_name(base)));
            }
            continue;
        }
        swap_in(fs, dir, base, &replaced, has_new)?;
    }
    if read_only {
        return Ok(overrides);
    }
    fs.sync_dir(dir).map_err(io("syncing the log directory", dir.to_path_buf()))?;
    for &b in compacted {
        if !manifest.entries.iter().any(|&(base, _)| base == b) {
            remove_if_present(fs, &dir.join(format::compacted_file_name(b)))?;
        }
    }
    remove_if_present(fs, &dir.join(format::MANIFEST_FILE_NAME))?;
    fs.sync_dir(dir).map_err(io("syncing the log directory", dir.to_path_buf()))?;
    report.finished_compaction = true;
    Ok(overrides)
}

/// Reads and decodes the compaction manifest `log.compaction`.
fn read_manifest(fs: &dyn FileSystem, dir: &Path) -> Result<format::Manifest> {
    let path = dir.join(format::MANIFEST_FILE_NAME);
    let io = |op: &'static str| {
        let path = path.clone();
        move |e: io::Error| Error::io(op, path, e)
    };
    let f = fs.open(&path, OpenMode::Read).map_err(io("opening"))?;
    let len = f.len().map_err(io("reading the size of"))?;
    let mut buf = vec![0u8; usize::try_from(len.min(1 << 24)).unwrap_or(0)];
    let got = read_full_at(&*f, &mut buf, 0).map_err(io("reading"))?;
    buf.truncate(got);
    format::Manifest::decode(&buf)
        .map_err(|e| Error::corruption(&path, 0, format!("{e:?}; the compaction it describes cannot be finished")))
}

/// One manifest entry's swap (idempotent): the segments it `replaced` and
/// their index files go, and its compacted file (if still there) is renamed
/// over segment `base`, whose index files go first.
fn swap_in(fs: &dyn FileSystem, dir: &Path, base: u64, replaced: &[u64], has_new: bool) -> Result<()> {
    use format::IndexKind::{Offset, Time};
    for &b in replaced {
        remove_if_present(fs, &dir.join(segment_file_name(b)))?;
        remove_if_present(fs, &dir.join(format::index_file_name(Offset, b)))?;
        remove_if_present(fs, &dir.join(format::index_file_name(Time, b)))?;
    }
    if has_new {
        remove_if_present(fs, &dir.join(format::index_file_name(Offset, base)))?;
        remove_if_present(fs, &dir.join(format::index_file_name(Time, base)))?;
        let from = dir.join(format::compacted_file_name(base));
        let to = dir.join(segment_file_name(base));
        fs.rename(&from, &to).map_err(|e| Error::io("renaming a compacted segment to", to.clone(), e))?;
    }
    Ok(())
}

/// Removes `path`; a file already gone is fine.
fn remove_if_present(fs: &dyn FileSystem, path: &Path) -> Result<()> {
    match fs.remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("removing", path.to_path_buf(), e)),
    }
}

/// Whether the segment file at `path` has a valid compacted (version 2)
/// header.
fn is_compacted(fs: &dyn crate::fs::FileSystem, path: &Path) -> bool {
    let Ok(f) = fs.open(path, OpenMode::Read) else { return false };
    let mut b = [0u8; HEADER_LEN as usize];
    matches!(read_full_at(&*f, &mut b, 0), Ok(n) if n == b.len()) && SegmentHeader::decode(&b).is_ok_and(|h| h.sparse)
}
