//! The frame walk of a segment file (recovery's scan of the active
//! segment, a suffix cut), and the search for proof that damaged bytes had
//! been synced.

use std::io;

use crate::format::{self, Frame, HEADER_LEN, MarkerKind, Meta, decode_frame};
use crate::fs::{FileHandle, read_full_at};
use crate::index::SparseIndex;
use crate::segment::{FileSource, FrameCursor, SCAN_CHUNK, Stop, Tail};

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
    let mut cursor = FrameCursor::new(HEADER_LEN, len, SCAN_CHUNK, meta).expecting(base, sparse).until(until);
    let stop_at = loop {
        match cursor.next_frame(&FileSource(file)) {
            Ok(Some((_, Frame::Record(r)))) if r.offset >= until => break None,
            Ok(Some((at, Frame::Record(r)))) => {
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
            Err(Stop::Discontinuous { pos, .. }) => break Some((pos, "frame does not continue the records before it")),
            Err(Stop::Torn { pos }) => break Some((pos, "frame runs past the end of the file")),
            Err(Stop::Io(e)) => return Err(e),
        }
    };
    Ok((tail, ix, stop_at))
}

/// What the bytes past a bad frame say about it (see [`durable_evidence`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct CutEvidence {
    /// Proof that the bad frame had been synced: a description of it.
    pub durable: Option<String>,
    /// No proof, but the damaged batch's own commit marker verifies past
    /// the bad frame: the batch may have been synced (and acknowledged)
    /// before damage, or its sync was torn by the crash after the marker's
    /// sector landed. The offset the marker says the batch ends before.
    pub marker_next_offset: Option<u64>,
}

/// Looks past a bad frame at `bad_pos` for proof that it had been synced.
/// `durable` describes the proof; without one, the bytes from `bad_pos`
/// may be an unsynced, torn tail, and `marker_next_offset` says how far a
/// commit marker of the damaged batch reaches, if one verifies there.
pub(crate) fn durable_evidence(file: &dyn FileHandle, bad_pos: u64, len: u64, base: u64) -> io::Result<CutEvidence> {
    let rest_len = usize::try_from(len - bad_pos).map_err(|_| io::Error::other("segment too large"))?;
    let mut rest = vec![0u8; rest_len];
    let got = read_full_at(file, &mut rest, bad_pos)?;
    rest.truncate(got);
    let marker_body = (format::MARKER_BODY_LEN as u32).to_le_bytes();
    let mut found = CutEvidence::default();
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
            found.durable = Some(format!("a later batch was committed by the marker at byte {at}"));
            return Ok(found);
        }
        let after = bytes.get(n..).unwrap_or_default();
        let followed = match decode_frame(after) {
            Ok((Frame::Record(r), _)) => r.offset == m.next_offset,
            Ok((Frame::Marker(m2), _)) => m2.own_pos == at + n as u64 && m2.base_offset == base,
            Err(_) => false,
        };
        if followed {
            found.durable = Some(format!("the batch's commit marker at byte {at} is followed by later writes"));
            return Ok(found);
        }
        found.marker_next_offset = found.marker_next_offset.max(Some(m.next_offset));
    }
    Ok(found)
}
