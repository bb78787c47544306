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

mod compaction;
mod segments;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use tracing::{info, info_span, warn};

use crate::error::{Error, Result};
use crate::format::{self, FileKind, META_FILE_NAME, Meta, parse_file_name, segment_file_name};
use crate::fs::{CheckedFs, Failure, FileLock, FileSystem, OpenMode, read_full_at};
use crate::log::{Active, Log, Options, RecoveryReport};

use compaction::settle_compaction;
use segments::open_segment;

/// Opens the log in `dir`, in phases, each a function below: list the
/// directory (and take the lock), settle interrupted work (a compaction
/// swap, leftovers), read the metadata, open the segments (trusting sealed
/// ones by their footer, scanning the active one, finishing an interrupted
/// roll), place the log's ends, finish pending intents (restart, suffix
/// truncation), and, read-write, keep the tail promises (`settle_tail`).
pub(crate) fn open(dir: &Path, mut opts: Options) -> Result<Log> {
    opts.config.validate()?;
    // Every file operation from here on goes through the sticky-failure
    // wrapper (`fs/checked.rs`).
    let (fs_failure, dir_debt);
    (opts.fs, fs_failure, dir_debt) = CheckedFs::wrap(opts.fs, dir);
    let span = open_span(dir, opts.read_only).entered();
    let mut report = RecoveryReport::default();
    let (lock, mut names) = list_and_lock(&*opts.fs, dir, opts.read_only, &mut report)?;
    if !opts.read_only && names.iter().any(|n| n == format::RESYNC_FILE_NAME) {
        // The directory's own fsync comes first (owed, paid by the first
        // rewrite), then the files; the listing is taken again after.
        dir_debt.owe();
        resync(&*opts.fs, dir, &names, &mut report)?;
        names = opts.fs.read_dir(dir).map_err(|e| Error::io("listing the log directory", dir, e))?;
    }
    let spare_missing = !names.iter().any(|n| n == format::RESYNC_SPARE_FILE_NAME);
    let mut listing = Listing::classify(names, &mut report);
    let new_log = report.created || listing.holds_nothing();
    if !opts.read_only && !new_log {
        // An existing log: its directory fsync is paid by the first
        // mutation, not here (`fs/checked.rs`, "The directory fsync an open
        // owes"); an open that writes nothing fsyncs nothing.
        dir_debt.owe();
    }
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
        if spare_missing {
            dir_debt.reserve_spare();
        }
        remove_leftovers(&*opts.fs, dir, &listing, &mut report)?;
        if new_log {
            // The entries leading to a new log: an earlier process may have
            // created them and crashed before they were durable.
            sync_directories(&*opts.fs, dir)?;
        } else if !report.temporaries_removed.is_empty() || !report.orphans_removed.is_empty() {
            opts.fs.sync_dir(dir).map_err(|e| Error::io("syncing the log directory", dir, e))?;
        }
    }
    let has_meta = listing.has_meta;
    let mut log = empty_log(dir, opts, lock, has_meta, fs_failure);
    if has_meta {
        log.meta = read_meta(&log)?;
    }
    drop_restart_leftovers(&mut log, &mut listing.bases)?;
    check_last_segment(&log, &listing.bases)?;
    info_span!("open_segments", segments = listing.bases.len())
        .in_scope(|| open_segments(&mut log, &listing.bases, &overrides, &mut report))?;
    place_ends(&mut log, has_meta, &mut report)?;
    finish_truncation(&mut log, &mut report)?;
    finish_restart_intent(&mut log, &mut report)?;
    if !log.read_only && !log.segments.is_empty() {
        settle_tail(&mut log)?;
    }
    report.clean = report.clean || log.segments.values().next_back().is_none_or(|s| s.sealed);
    opened(&span, &log, &report);
    let unclean = (!report.clean && !report.created)
        || report.finished_truncation.is_some()
        || report.finished_restart.is_some()
        || report.finished_compaction
        || report.finished_roll.is_some();
    log.stats.recovered(unclean, report.torn_bytes);
    log.report = report;
    Ok(log)
}

/// The span of an open; what it found is recorded on it at the end.
fn open_span(dir: &Path, read_only: bool) -> tracing::Span {
    info_span!(
        "open",
        dir = %dir.display(),
        read_only,
        first_offset = tracing::field::Empty,
        next_offset = tracing::field::Empty,
        segments = tracing::field::Empty,
        bytes_scanned = tracing::field::Empty,
        torn_bytes = tracing::field::Empty,
    )
}

/// Records what an open found, on its span and as an event.
fn opened(span: &tracing::Span, log: &Log, report: &RecoveryReport) {
    span.record("first_offset", log.first_offset);
    span.record("next_offset", log.next_offset);
    span.record("segments", log.segments.len());
    span.record("bytes_scanned", report.bytes_scanned);
    span.record("torn_bytes", report.torn_bytes);
    info!(
        first_offset = log.first_offset,
        next_offset = log.next_offset,
        n_segments = log.segments.len(),
        clean = report.clean,
        torn_bytes = report.torn_bytes,
        "opened log"
    );
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

/// Phase 1b, after an fsync failed in an earlier process (`log.resync`,
/// `fs/checked.rs`): in this boot the page cache may show data the disk
/// never got, and hide data it still has (a dropped cut, a dropped
/// directory entry), so nothing read may be built on as it stands. The
/// files whose fsync failed — every file the log relies on (segments,
/// `log.meta`, a compaction's manifest and outputs) if the directory's
/// fsync failed — are rewritten from what this open reads: a temporary,
/// fsynced, renamed over the file; then the directory is fsynced and the
/// marker removed (and the directory fsynced again). From then on the
/// disk holds what recovery reads. Temporaries named in the marker are
/// leftovers (removed later as usual); index files are checked against
/// their segment and rebuilt when they do not match. A failure here fails
/// the open (the marker stays, so the next open starts over). A marker
/// whose first line names another boot than this one (`boot <id>`,
/// `FileSystem::boot_id`) is only removed: a reboot dropped the cache.
fn resync(fs: &dyn FileSystem, dir: &Path, names: &[String], report: &mut RecoveryReport) -> Result<()> {
    let _span = info_span!("resync").entered();
    let marker = dir.join(format::RESYNC_FILE_NAME);
    let lines = read_marker(fs, &marker)?;
    let (boot, listed) = match lines.split_first() {
        Some((first, rest)) if first.starts_with("boot ") => (first.strip_prefix("boot ").filter(|b| *b != "?"), rest),
        _ => (None, lines.as_slice()),
    };
    if let (Some(then), Some(now)) = (boot, fs.boot_id())
        && then != now
    {
        // Written in an earlier boot: the page cache it warned about is
        // gone, so the files read are what the disk holds.
        recycle_marker(fs, dir, &marker)?;
        fs.sync_dir(dir).map_err(|e| Error::io("syncing the log directory", dir, e))?;
        info!("retired a resync marker of an earlier boot: nothing to rewrite");
        return Ok(());
    }
    // A name the marker lists but the directory does not hold (renamed or
    // removed since; a torn line) cannot say which file it meant: rewrite
    // everything, the safe side.
    let whole_dir = listed.iter().any(|n| parse_file_name(n).is_none() || !names.contains(n));
    for name in names {
        let relied_on = matches!(
            parse_file_name(name),
            Some(FileKind::Segment(_) | FileKind::Meta | FileKind::CompactionManifest | FileKind::Compacted(_))
        );
        if relied_on && (whole_dir || listed.contains(name)) {
            rewrite_file(fs, dir, name)?;
            report.resynced.push(name.clone());
        }
    }
    fs.sync_dir(dir).map_err(|e| Error::io("syncing the log directory", dir, e))?;
    recycle_marker(fs, dir, &marker)?;
    fs.sync_dir(dir).map_err(|e| Error::io("syncing the log directory", dir, e))?;
    warn!(
        files = report.resynced.len(),
        whole_dir, "rewrote the log's files after an fsync that failed in an earlier process"
    );
    Ok(())
}

/// Retires a resync marker: its bytes become newlines (fsynced) and it is
/// renamed back to `log.spare`, so the room stays reserved for the next
/// failed fsync even if the disk is full by then (seed 898067: the room
/// was used, the disk was full when it had to be reserved again, and the
/// next marker could not be written). If that fails, it is removed.
fn recycle_marker(fs: &dyn FileSystem, dir: &Path, marker: &Path) -> Result<()> {
    let spare = dir.join(format::RESYNC_SPARE_FILE_NAME);
    let recycled = (|| -> io::Result<()> {
        let f = fs.open(marker, OpenMode::ReadWrite)?;
        let len = usize::try_from(f.len()?).unwrap_or(0).min(1 << 20);
        crate::fs::write_all_at(&*f, &vec![b'\n'; len], 0)?;
        f.sync()?;
        fs.rename(marker, &spare)
    })();
    if recycled.is_err() {
        fs.remove_file(marker).map_err(|e| Error::io("removing", marker, e))?;
    }
    Ok(())
}

/// The names a resync marker lists (a torn last line is kept: a name it
/// does not match rewrites the whole directory, the safe side).
fn read_marker(fs: &dyn FileSystem, marker: &Path) -> Result<Vec<String>> {
    let file = fs.open(marker, OpenMode::Read).map_err(io_err("opening", marker))?;
    let len = file.len().map_err(io_err("reading", marker))?;
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0).min(1 << 20)];
    read_full_at(&*file, &mut buf, 0).map_err(io_err("reading", marker))?;
    Ok(String::from_utf8_lossy(&buf).lines().filter(|l| !l.is_empty()).map(str::to_string).collect())
}

/// An error of `op` on `path`, for `map_err`.
fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |e| Error::io(op, path, e)
}

/// Rewrites `dir/name` from what this process reads of it: copied to
/// `name.tmp` (an earlier one removed), fsynced, renamed over it.
fn rewrite_file(fs: &dyn FileSystem, dir: &Path, name: &str) -> Result<()> {
    const CHUNK: usize = 1 << 20;
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let src = fs.open(&path, OpenMode::Read).map_err(io_err("opening", &path))?;
    let len = src.len().map_err(io_err("reading", &path))?;
    if fs.exists(&tmp).map_err(io_err("checking", &tmp))? {
        fs.remove_file(&tmp).map_err(io_err("removing", &tmp))?;
    }
    let dst = fs.open(&tmp, OpenMode::CreateNew).map_err(io_err("creating", &tmp))?;
    let mut buf = vec![0u8; CHUNK.min(usize::try_from(len).unwrap_or(CHUNK))];
    let mut pos = 0;
    while pos < len {
        let n = buf.len().min(usize::try_from(len - pos).unwrap_or(CHUNK));
        let chunk = buf.get_mut(..n).unwrap_or_default();
        read_full_at(&*src, chunk, pos).map_err(io_err("reading", &path))?;
        crate::fs::write_all_at(&*dst, chunk, pos).map_err(io_err("writing", &tmp))?;
        pos += n as u64;
    }
    dst.sync().map_err(io_err("fsyncing", &tmp))?;
    fs.rename(&tmp, &path).map_err(io_err("renaming to", &path))
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
                Some(FileKind::Lock | FileKind::ResyncMarker | FileKind::ResyncSpare) => {}
                None => report.unknown_files.push(name),
            }
        }
        l.bases.sort_unstable();
        l.compacted.sort_unstable();
        l
    }

    /// Whether the directory holds no file of a log (a new log: created by
    /// this open, or empty, or holding only the lock file).
    fn holds_nothing(&self) -> bool {
        self.bases.is_empty()
            && self.index_bases.is_empty()
            && self.temporaries.is_empty()
            && self.compacted.is_empty()
            && !self.has_meta
            && !self.has_manifest
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

/// The directory entries leading to a new log, and the log's own entries,
/// must be durable before anything is called durable: an earlier process
/// may have created them and crashed (or failed a directory sync) before
/// they were. An existing log's parents were synced when it was new (this
/// runs before its first file is written); its own directory is synced by
/// the first mutation of each open (`fs/checked.rs`).
pub(crate) fn sync_directories(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
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
fn empty_log(dir: &Path, opts: Options, lock: Option<Box<dyn FileLock>>, has_meta: bool, fs_failure: Failure) -> Log {
    let now_ms = opts.clock.now_ms();
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
        last_sync_ms: now_ms,
        poisoned: None,
        fs_failure,
        durable_snap: None,
        closed: false,
        report: RecoveryReport::default(),
        meta: Meta::default(),
        meta_on_disk: has_meta,
        indexes_rebuilt: Default::default(),
        stats: std::sync::Arc::new(crate::stats::StatsCell::new(dir)),
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
    // Recovery kept fewer records than a later epoch's start (a media
    // fault in the documented window cut records below a truncation's
    // offset; seed 88752): a new epoch begins at the log's end, durably,
    // before anything is appended there, so that new records carry the
    // epoch the table gives their offsets.
    if log.meta.epochs.expected(log.next_offset) != log.meta.epochs.current() {
        let meta = Meta { epochs: log.meta.epochs.begin(log.next_offset), ..log.meta.clone() };
        log.write_meta(meta)?;
    }
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
    let last = log.segments.keys().next_back().copied();
    if !log.meta_on_disk || log.meta.last_segment == last {
        return log.ensure_meta_on_disk(true);
    }
    // A roll interrupted before `log.meta` named its new segment, or a file
    // of an older build: name the last segment now.
    match log.write_meta(log.meta.clone()) {
        Err(e) if e.is_disk_full() => {
            warn!("disk full: `log.meta` names the last segment at the next roll");
            Ok(())
        }
        other => other,
    }
}

/// `log.meta` names the last segment as it was when written (a roll names
/// the new segment before it seals the old one). Outside a pending intent
/// (which may remove segments), the directory must hold that segment or a
/// later one: otherwise the last segment was lost, and its records (or the
/// proof that its predecessor was complete) with it.
fn check_last_segment(log: &Log, bases: &[u64]) -> Result<()> {
    let Some(named) = log.meta.last_segment else { return Ok(()) };
    let Some(&newest) = bases.last() else { return Ok(()) };
    if newest >= named || log.meta.truncate_from.is_some() || log.meta.restart {
        return Ok(());
    }
    let missing = segment_file_name(named);
    Err(Error::corruption(
        log.path_of(&missing),
        0,
        format!(
            "`log.meta` says the log's last segment is `{missing}` (offsets from {named} on), but it is missing and the newest segment left is `{}`: the file was lost after records may have been acknowledged in it; restore it from a backup or a replica, or salvage what is left",
            segment_file_name(newest)
        ),
    ))
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
