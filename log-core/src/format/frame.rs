//! Frames: records and markers, each with a CRC-checked prefix.

use super::{DecodeError, HEADER_LEN, crc32, u32_at, u64_at};

/// Size of the frame prefix: CRC32 (u32) over everything after it, then the
/// body length (u32).
pub const FRAME_PREFIX_LEN: usize = 8;
/// Size of a record body before the key.
pub const RECORD_BODY_FIXED: usize = 24;
/// Bytes of framing per record (prefix plus fixed body).
pub const RECORD_OVERHEAD: usize = FRAME_PREFIX_LEN + RECORD_BODY_FIXED;
/// Size of a marker body.
pub const MARKER_BODY_LEN: usize = 68;
/// Size of a whole marker frame.
pub const MARKER_FRAME_LEN: usize = FRAME_PREFIX_LEN + MARKER_BODY_LEN;
/// Largest body any version-1 frame may have (a record of the maximum size).
pub const BODY_LEN_LIMIT: u64 = RECORD_BODY_FIXED as u64 + crate::config::RECORD_BYTES_LIMIT as u64;

const _: () = assert!(MARKER_FRAME_LEN == 76);
const _: () = assert!(RECORD_OVERHEAD == 32);
const _: () = assert!(HEADER_LEN == 64);

const KIND_RECORD: u8 = 1;
const KIND_COMMIT: u8 = 2;
const KIND_SEAL: u8 = 3;
const KIND_CLOSE: u8 = 4;

const FLAG_TOMBSTONE: u8 = 1;
const FLAG_HAS_KEY: u8 = 2;

/// A record's flags: what it says beyond its offset, timestamp, key and
/// value. One type carried whole by [`Entry`](crate::Entry),
/// [`OwnedEntry`](crate::OwnedEntry), [`RecordRef`] and
/// [`Record`](crate::Record), so that a new flag is defined here (a bit,
/// a constant, an accessor), in `docs/FORMAT.md` and in a fixture, and
/// every path that copies records carries it without change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct RecordFlags(u8);

impl RecordFlags {
    /// No flag.
    pub const NONE: Self = Self(0);
    /// The record deletes its key (compaction keeps it until
    /// `Config::tombstone_retention_ms` after its timestamp).
    pub const TOMBSTONE: Self = Self(FLAG_TOMBSTONE);
    /// Every flag this build knows; a frame with any other bit is refused.
    const KNOWN: u8 = FLAG_TOMBSTONE;

    /// Whether the record is a tombstone.
    pub fn tombstone(self) -> bool {
        self.0 & FLAG_TOMBSTONE != 0
    }

    /// These flags and `other`'s.
    #[must_use]
    pub fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// A record as stored in a frame, borrowing its key and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Absolute offset.
    pub offset: u64,
    /// Timestamp in milliseconds since the epoch.
    pub timestamp_ms: u64,
    /// Its flags (tombstone, ...).
    pub flags: RecordFlags,
    /// The key, if any.
    pub key: Option<&'a [u8]>,
    /// The value.
    pub value: &'a [u8],
    /// The low 16 bits of the epoch the record was written in (body bytes
    /// 2..4; see [`Epochs`](super::Epochs)). 0 in every log that never had a suffix
    /// truncation or restart.
    pub epoch: u16,
}

/// What a marker frame says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerKind {
    /// Written at every sync: the records before it were synced together.
    Commit,
    /// The segment's footer: it is sealed and nothing follows.
    Seal,
    /// Written on clean close at the end of the active segment: everything
    /// before it was durable before it was written; appends may follow.
    Close,
}

/// A marker frame: a commit point, a footer or a clean-close trailer. Every
/// marker carries the segment's running summary so a trailing marker
/// describes the whole segment without a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// Which marker.
    pub kind: MarkerKind,
    /// The offset the next record would get (last record's offset + 1).
    pub next_offset: u64,
    /// Clock time when the marker was written.
    pub timestamp_ms: u64,
    /// Records in the segment before this marker.
    pub n_records: u64,
    /// Smallest record timestamp in the segment (`u64::MAX` if none).
    pub min_ts: u64,
    /// Largest record timestamp in the segment (0 if none).
    pub max_ts: u64,
    /// Byte position where the batch this marker commits began.
    pub batch_start_pos: u64,
    /// Byte position of this marker in its segment file.
    pub own_pos: u64,
    /// The segment's base offset.
    pub base_offset: u64,
}

/// A decoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A record.
    Record(RecordRef<'a>),
    /// A marker.
    Marker(Marker),
}

/// Frame length of a record with this key and value.
#[cfg(test)]
pub fn record_frame_len(key: Option<&[u8]>, value: &[u8]) -> u64 {
    (RECORD_OVERHEAD + key.map_or(0, <[u8]>::len) + value.len()) as u64
}

/// Fills in the CRC and length of the frame that starts at `start`.
fn finish_frame(buf: &mut [u8], start: usize) {
    let body_len = (buf.len() - start - FRAME_PREFIX_LEN) as u32;
    if let Some(l) = buf.get_mut(start + 4..start + FRAME_PREFIX_LEN) {
        l.copy_from_slice(&body_len.to_le_bytes());
    }
    let crc = crc32(buf.get(start + 4..).unwrap_or_default());
    if let Some(c) = buf.get_mut(start..start + 4) {
        c.copy_from_slice(&crc.to_le_bytes());
    }
}

/// Appends a record frame to `buf`. The caller has checked the size limit.
pub fn encode_record(buf: &mut Vec<u8>, rec: &RecordRef<'_>) {
    let start = buf.len();
    let key_len = rec.key.map_or(0, <[u8]>::len);
    buf.reserve(RECORD_OVERHEAD + key_len + rec.value.len());
    buf.extend_from_slice(&[0u8; FRAME_PREFIX_LEN]);
    let mut flags = 0u8;
    flags |= rec.flags.0;
    if rec.key.is_some() {
        flags |= FLAG_HAS_KEY;
    }
    buf.extend_from_slice(&[KIND_RECORD, flags]);
    buf.extend_from_slice(&rec.epoch.to_le_bytes());
    buf.extend_from_slice(&rec.offset.to_le_bytes());
    buf.extend_from_slice(&rec.timestamp_ms.to_le_bytes());
    buf.extend_from_slice(&(key_len as u32).to_le_bytes());
    if let Some(k) = rec.key {
        buf.extend_from_slice(k);
    }
    buf.extend_from_slice(rec.value);
    finish_frame(buf, start);
}

/// Appends a marker frame to `buf`.
pub fn encode_marker(buf: &mut Vec<u8>, m: &Marker) {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; FRAME_PREFIX_LEN]);
    let kind = match m.kind {
        MarkerKind::Commit => KIND_COMMIT,
        MarkerKind::Seal => KIND_SEAL,
        MarkerKind::Close => KIND_CLOSE,
    };
    buf.extend_from_slice(&[kind, 0, 0, 0]);
    for v in
        [m.next_offset, m.timestamp_ms, m.n_records, m.min_ts, m.max_ts, m.batch_start_pos, m.own_pos, m.base_offset]
    {
        buf.extend_from_slice(&v.to_le_bytes());
    }
    finish_frame(buf, start);
    debug_assert_eq!(buf.len() - start, MARKER_FRAME_LEN);
}

/// Decodes the frame at the start of `b`; returns it and its total length.
///
/// `Err(Incomplete(n))` means `b` is shorter than the frame claims to be; if
/// `b` already reaches the end of the file, the frame is torn or corrupt.
pub fn decode_frame(b: &[u8]) -> Result<(Frame<'_>, usize), DecodeError> {
    let body_len = u64::from(u32_at(b, 4).ok_or(DecodeError::Incomplete(FRAME_PREFIX_LEN as u64))?);
    if body_len < 4 {
        return Err(DecodeError::Invalid("frame length too small"));
    }
    if body_len > BODY_LEN_LIMIT {
        return Err(DecodeError::Invalid("frame length beyond the format's limit"));
    }
    let total = FRAME_PREFIX_LEN as u64 + body_len;
    let frame = b.get(..total as usize).ok_or(DecodeError::Incomplete(total))?;
    Ok((decode_sized_frame(frame)?, total as usize))
}

/// Decodes `b`, which is exactly one frame long by its length field (the
/// caller checked the field against the format's limits): verifies the CRC
/// and decodes the body. The walk's fast path ([`decode_frame`] does the
/// length checks first).
pub(crate) fn decode_sized_frame(b: &[u8]) -> Result<Frame<'_>, DecodeError> {
    const SHORT: DecodeError = DecodeError::Invalid("frame shorter than its prefix");
    let covered = b.get(4..).ok_or(SHORT)?;
    let body = covered.get(4..).ok_or(SHORT)?;
    let stored_crc = u32_at(b, 0).ok_or(SHORT)?;
    if crc32(covered) != stored_crc {
        return Err(DecodeError::Invalid("frame checksum mismatch"));
    }
    decode_body(body)
}

fn decode_body(body: &[u8]) -> Result<Frame<'_>, DecodeError> {
    const BAD: DecodeError = DecodeError::Invalid("frame body too short for its kind");
    let kind = *body.first().ok_or(BAD)?;
    let flags = *body.get(1).ok_or(BAD)?;
    let epoch = u16::from_le_bytes(body.get(2..4).and_then(|b| b.try_into().ok()).ok_or(BAD)?);
    match kind {
        KIND_RECORD => {
            if flags & !(RecordFlags::KNOWN | FLAG_HAS_KEY) != 0 {
                return Err(DecodeError::Invalid("unknown record flags"));
            }
            let offset = u64_at(body, 4).ok_or(BAD)?;
            let timestamp_ms = u64_at(body, 12).ok_or(BAD)?;
            let key_len = u32_at(body, 20).ok_or(BAD)? as usize;
            let has_key = flags & FLAG_HAS_KEY != 0;
            if !has_key && key_len != 0 {
                return Err(DecodeError::Invalid("key length set on a record without key"));
            }
            let rest = body.get(RECORD_BODY_FIXED..).ok_or(BAD)?;
            if key_len > rest.len() {
                return Err(DecodeError::Invalid("key length exceeds the frame"));
            }
            let (key, value) = rest.split_at(key_len);
            Ok(Frame::Record(RecordRef {
                offset,
                timestamp_ms,
                flags: RecordFlags(flags & RecordFlags::KNOWN),
                key: has_key.then_some(key),
                value,
                epoch,
            }))
        }
        KIND_COMMIT | KIND_SEAL | KIND_CLOSE => {
            if body.len() != MARKER_BODY_LEN {
                return Err(DecodeError::Invalid("marker frame has the wrong length"));
            }
            if flags != 0 {
                return Err(DecodeError::Invalid("unknown marker flags"));
            }
            if epoch != 0 {
                return Err(DecodeError::Invalid("marker reserved bytes are not zero"));
            }
            let f = |i: usize| u64_at(body, 4 + 8 * i).ok_or(BAD);
            Ok(Frame::Marker(Marker {
                kind: match kind {
                    KIND_COMMIT => MarkerKind::Commit,
                    KIND_SEAL => MarkerKind::Seal,
                    _ => MarkerKind::Close,
                },
                next_offset: f(0)?,
                timestamp_ms: f(1)?,
                n_records: f(2)?,
                min_ts: f(3)?,
                max_ts: f(4)?,
                batch_start_pos: f(5)?,
                own_pos: f(6)?,
                base_offset: f(7)?,
            }))
        }
        _ => Err(DecodeError::Invalid("unknown frame kind")),
    }
}
