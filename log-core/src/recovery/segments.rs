//! One segment at open: its header, trusted by its footer, or scanned (the
//! active one, with the rot-versus-torn-tail decision), or sealed (an
//! interrupted roll).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use tracing::{info, info_span, warn};

use crate::dir::scan::{durable_evidence, scan_frames};
use crate::error::{Error, Result};
use crate::format::{
    self, Frame, HEADER_LEN, HeaderError, MARKER_FRAME_LEN, META_FILE_NAME, Marker, MarkerKind, SegmentHeader,
    decode_frame, segment_file_name,
};
use crate::fs::{FileHandle, OpenMode, read_full_at, write_all_at};
use crate::log::{Log, RecoveryReport};
use crate::segment::{STALE_FRAME, Segment, Tail};

/// Opens segment `base`. `is_last`: it is the last segment; `next`: the
/// base of the last segment when this one is the one before it (it may be
/// a roll's unsealed old segment, whose new one is durable and empty).
pub(super) fn open_segment(
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
    // A segment of this build gets no byte past its header before
    // `log.meta` exists (it is written before the first record, and nothing
    // else writes to a segment earlier): bytes there without `log.meta`
    // prove it lost, even when those bytes no longer verify.
    if !log.meta_on_disk && header.version.successor_first() && len > HEADER_LEN {
        return Err(missing_meta(log, &path));
    }
    let trailer = read_trailer(&*file, len, base).map_err(|e| Error::io("reading the footer of", &path, e))?;
    let mk = |tail: Tail, sealed: bool| Segment {
        base,
        path: path.clone(),
        file: Arc::clone(&file),
        created_ms: header.created_ms,
        tail,
        sealed,
        sparse: header.is_compacted(),
        index: OnceLock::new(),
        index_dirty: Default::default(),
    };
    match trailer {
        Some(m) if m.kind == MarkerKind::Seal => {
            report.n_segments_trusted += 1;
            let tail = tail_of(&m, m.own_pos);
            check_summary(&path, &m, header.is_compacted())?;
            // Successor first: this build seals a segment only once the next
            // one is durable, and a truncation that leaves a sealed segment
            // last creates the next one before its intent is cleared.
            if is_last && header.version.successor_first() && log.meta.truncate_from.is_none() && !log.meta.restart {
                return Err(lost_successor(log, &path, m.next_offset));
            }
            Ok(mk(tail, true))
        }
        // A compacted segment is written whole and sealed before it becomes
        // part of the log: without a valid footer it is damaged.
        _ if header.is_compacted() => Err(Error::corruption(
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
pub(super) fn missing_meta(log: &Log, segment: &Path) -> Error {
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
        let m = crate::segment::marker(MarkerKind::Seal, &seg, seg.tail.end_pos, log.clock.now_ms());
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
    // Without `log.meta`, a record tagged with an epoch is impossible (only
    // truncations and restarts, recorded there, begin one): the file was
    // lost. This also covers segments of older builds, which the header
    // check in `open_segment` does not. Refuse before cutting anything.
    if !log.meta_on_disk && stop_at.is_some_and(|(_, why)| why == STALE_FRAME) {
        return Err(missing_meta(log, &seg.path));
    }
    if let Some((pos, why)) = stop_at {
        debug_assert_eq!(pos, tail.end_pos);
        let evidence =
            durable_evidence(&*seg.file, pos, len, seg.base).map_err(|e| Error::io("reading", seg.path.clone(), e))?;
        if let Some(proof) = evidence.durable {
            return Err(Error::corruption(
                &seg.path,
                pos,
                format!("{why}, and {proof}, so the damaged bytes had been synced"),
            ));
        }
        warn!(pos, dropped = len - pos, why, "cutting off a torn tail");
        report.torn_tail = Some((seg.path.clone(), pos));
        report.torn_bytes = len - pos;
        report.possibly_acknowledged =
            evidence.marker_next_offset.filter(|&end| end > tail.next_offset).map(|end| tail.next_offset..end);
        if !log.read_only {
            seg.file.set_len(pos).map_err(|e| Error::io("truncating the torn tail of", seg.path.clone(), e))?;
        }
    }
    let mut tail = tail;
    if !log.read_only {
        // Whatever was recovered becomes durable before anything is appended
        // after it (this also persists the cut above).
        seg.file.sync().map_err(|e| Error::io("fsyncing", seg.path.clone(), e))?;
        close_recovered_batch(log, &seg, &mut tail)?;
    }
    seg.tail = tail;
    let _ = seg.index.set(ix);
    Ok(seg)
}

/// Records recovered after the last commit marker (they were written but
/// not yet committed when the log stopped, and recovery kept them, synced,
/// and now calls them durable) get a commit marker of their own, fsynced,
/// as a suffix cut does: damage to them is then provably damage to synced
/// data (`durable_evidence`: a later batch was committed), instead of
/// looking like a torn tail together with the next batch (seed 30202).
/// The marker's batch is empty (it starts at the marker), as the records
/// before it were synced before it was written. A full disk leaves the
/// records without it (cut back durably): the log stays usable.
fn close_recovered_batch(log: &Log, seg: &Segment, tail: &mut Tail) -> Result<()> {
    let pos = tail.end_pos;
    if pos <= HEADER_LEN
        || read_trailer(&*seg.file, pos, seg.base).map_err(|e| Error::io("reading", seg.path.clone(), e))?.is_some()
    {
        return Ok(());
    }
    let m = Marker {
        kind: MarkerKind::Commit,
        next_offset: tail.next_offset,
        timestamp_ms: log.clock.now_ms(),
        n_records: tail.n_records,
        min_ts: tail.min_ts,
        max_ts: tail.max_ts,
        batch_start_pos: pos,
        own_pos: pos,
        base_offset: seg.base,
    };
    let mut frame = Vec::with_capacity(MARKER_FRAME_LEN);
    format::encode_marker(&mut frame, &m);
    let written = write_all_at(&*seg.file, &frame, pos).and_then(|()| seg.file.sync());
    match written {
        Ok(()) => {
            tail.end_pos = pos + frame.len() as u64;
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::StorageFull => {
            warn!(segment = %seg.path.display(), "disk full: the recovered records get their commit marker with the next sync");
            seg.file
                .set_len(pos)
                .and_then(|()| seg.file.sync())
                .map_err(|e| Error::io("cutting back a partial commit marker in", seg.path.clone(), e))
        }
        Err(e) => Err(Error::io("writing a commit marker after the recovered records to", seg.path.clone(), e)),
    }
}
