//! The on-disk format, version 1: every byte the log writes is encoded and
//! decoded here, and nowhere else. `docs/FORMAT.md` has the byte tables; the
//! fixture test in `tests/` fails if this module's output changes.
//!
//! All integers are little-endian and explicitly sized. Decoders take
//! arbitrary bytes and return `Err` (never panic) on anything malformed.

use std::fmt;

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Format version of a compacted segment's header: the same frames, but the
/// records' offsets are only strictly increasing (compaction left gaps), and
/// the segment is always sealed.
pub const SPARSE_SEGMENT_VERSION: u32 = 2;

/// Segment file header magic.
pub const SEGMENT_MAGIC: [u8; 8] = *b"SGLOGSEG";
/// Offset index file magic.
pub const OFFSET_INDEX_MAGIC: [u8; 8] = *b"SGLOGOIX";
/// Time index file magic.
pub const TIME_INDEX_MAGIC: [u8; 8] = *b"SGLOGTIX";

/// Size of the segment header.
pub const HEADER_LEN: u64 = 64;
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
/// Size of an index file header.
pub const INDEX_HEADER_LEN: usize = 40;
/// Size of an index entry.
pub const INDEX_ENTRY_LEN: usize = 16;

const _: () = assert!(MARKER_FRAME_LEN == 76);
const _: () = assert!(RECORD_OVERHEAD == 32);
const _: () = assert!(HEADER_LEN == 64);

const KIND_RECORD: u8 = 1;
const KIND_COMMIT: u8 = 2;
const KIND_SEAL: u8 = 3;
const KIND_CLOSE: u8 = 4;

const FLAG_TOMBSTONE: u8 = 1;
const FLAG_HAS_KEY: u8 = 2;

/// Why bytes failed to decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// More bytes are needed than the buffer holds (at least this many in
    /// total, counted from the start of the frame).
    Incomplete(u64),
    /// The bytes are not a valid frame/header/index.
    Invalid(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Incomplete(n) => write!(f, "truncated: needs {n} bytes"),
            DecodeError::Invalid(why) => f.write_str(why),
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(s))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let s: [u8; 8] = b.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(s))
}

// ---------------------------------------------------------------------------
// Segment header

/// The fixed header at the start of every segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Offset of the first record this segment may hold.
    pub base_offset: u64,
    /// Clock time at creation, for age-based rolling across restarts.
    pub created_ms: u64,
    /// A compacted segment: offsets may skip (header version 2).
    pub sparse: bool,
}

/// Why a segment header failed to decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer than `HEADER_LEN` bytes.
    Short,
    /// Wrong magic: not a segment file.
    Magic,
    /// A format version this build does not read.
    Version(u32),
    /// Checksum or layout mismatch.
    Invalid(&'static str),
}

impl SegmentHeader {
    /// Encodes the header into exactly `HEADER_LEN` bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut b = [0u8; HEADER_LEN as usize];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        let version = if self.sparse { SPARSE_SEGMENT_VERSION } else { FORMAT_VERSION };
        b[8..12].copy_from_slice(&version.to_le_bytes());
        b[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        b[16..24].copy_from_slice(&self.base_offset.to_le_bytes());
        b[24..32].copy_from_slice(&self.created_ms.to_le_bytes());
        let crc = crc32fast::hash(&b[0..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a header from the first `HEADER_LEN` bytes of `b`.
    pub fn decode(b: &[u8]) -> Result<Self, HeaderError> {
        let b = b.get(..HEADER_LEN as usize).ok_or(HeaderError::Short)?;
        if b.get(0..8) != Some(&SEGMENT_MAGIC[..]) {
            return Err(HeaderError::Magic);
        }
        let stored_crc = u32_at(b, 60).ok_or(HeaderError::Short)?;
        let crc_ok = b.get(0..60).map(crc32fast::hash) == Some(stored_crc);
        let version = u32_at(b, 8).ok_or(HeaderError::Short)?;
        if crc_ok && version != FORMAT_VERSION && version != SPARSE_SEGMENT_VERSION {
            return Err(HeaderError::Version(version));
        }
        if !crc_ok {
            return Err(HeaderError::Invalid("segment header checksum mismatch"));
        }
        if u32_at(b, 12) != Some(HEADER_LEN as u32) {
            return Err(HeaderError::Invalid("segment header length field is wrong"));
        }
        if b.get(32..60).is_some_and(|r| r.iter().any(|&x| x != 0)) {
            return Err(HeaderError::Invalid("segment header reserved bytes are not zero"));
        }
        Ok(SegmentHeader {
            base_offset: u64_at(b, 16).ok_or(HeaderError::Short)?,
            created_ms: u64_at(b, 24).ok_or(HeaderError::Short)?,
            sparse: version == SPARSE_SEGMENT_VERSION,
        })
    }
}

// ---------------------------------------------------------------------------
// Frames

/// A record as stored in a frame, borrowing its key and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Absolute offset.
    pub offset: u64,
    /// Timestamp in milliseconds since the epoch.
    pub timestamp_ms: u64,
    /// Whether the record is a tombstone (a deletion of its key).
    pub tombstone: bool,
    /// The key, if any.
    pub key: Option<&'a [u8]>,
    /// The value.
    pub value: &'a [u8],
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
pub fn record_frame_len(key: Option<&[u8]>, value: &[u8]) -> u64 {
    (RECORD_OVERHEAD + key.map_or(0, <[u8]>::len) + value.len()) as u64
}

/// Fills in the CRC and length of the frame that starts at `start`.
fn finish_frame(buf: &mut [u8], start: usize) {
    let body_len = (buf.len() - start - FRAME_PREFIX_LEN) as u32;
    if let Some(l) = buf.get_mut(start + 4..start + FRAME_PREFIX_LEN) {
        l.copy_from_slice(&body_len.to_le_bytes());
    }
    let crc = crc32fast::hash(buf.get(start + 4..).unwrap_or_default());
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
    if rec.tombstone {
        flags |= FLAG_TOMBSTONE;
    }
    if rec.key.is_some() {
        flags |= FLAG_HAS_KEY;
    }
    buf.extend_from_slice(&[KIND_RECORD, flags, 0, 0]);
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
    let covered = b.get(4..total as usize).ok_or(DecodeError::Incomplete(total))?;
    let body = covered.get(4..).ok_or(DecodeError::Incomplete(total))?;
    let stored_crc = u32_at(b, 0).ok_or(DecodeError::Incomplete(total))?;
    if crc32fast::hash(covered) != stored_crc {
        return Err(DecodeError::Invalid("frame checksum mismatch"));
    }
    let frame = decode_body(body)?;
    Ok((frame, total as usize))
}

/// Decodes a frame whose checksum was already verified by [`decode_frame`]
/// (for re-reading a frame without hashing it twice).
pub(crate) fn decode_verified_frame(b: &[u8]) -> Option<Frame<'_>> {
    decode_body(b.get(FRAME_PREFIX_LEN..)?).ok()
}

fn decode_body(body: &[u8]) -> Result<Frame<'_>, DecodeError> {
    const BAD: DecodeError = DecodeError::Invalid("frame body too short for its kind");
    let kind = *body.first().ok_or(BAD)?;
    let flags = *body.get(1).ok_or(BAD)?;
    if body.get(2..4) != Some(&[0, 0][..]) {
        return Err(DecodeError::Invalid("frame reserved bytes are not zero"));
    }
    match kind {
        KIND_RECORD => {
            if flags & !(FLAG_TOMBSTONE | FLAG_HAS_KEY) != 0 {
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
                tombstone: flags & FLAG_TOMBSTONE != 0,
                key: has_key.then_some(key),
                value,
            }))
        }
        KIND_COMMIT | KIND_SEAL | KIND_CLOSE => {
            if body.len() != MARKER_BODY_LEN {
                return Err(DecodeError::Invalid("marker frame has the wrong length"));
            }
            if flags != 0 {
                return Err(DecodeError::Invalid("unknown marker flags"));
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

// ---------------------------------------------------------------------------
// Index files

/// Which index a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// Entries `(offset, byte position)`.
    Offset,
    /// Entries `(largest timestamp so far, offset)`.
    Time,
}

impl IndexKind {
    fn magic(self) -> [u8; 8] {
        match self {
            IndexKind::Offset => OFFSET_INDEX_MAGIC,
            IndexKind::Time => TIME_INDEX_MAGIC,
        }
    }
}

/// A decoded index file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// Base offset of the segment it indexes.
    pub base_offset: u64,
    /// Length of the segment file it describes; an index is valid only for
    /// a segment of exactly this length.
    pub end_pos: u64,
    /// The entries, in ascending order of both columns.
    pub entries: Vec<(u64, u64)>,
}

/// Encodes an index file.
pub fn encode_index(kind: IndexKind, idx: &IndexFile) -> Vec<u8> {
    let mut b = Vec::with_capacity(INDEX_HEADER_LEN + INDEX_ENTRY_LEN * idx.entries.len() + 4);
    b.extend_from_slice(&kind.magic());
    b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    b.extend_from_slice(&(INDEX_ENTRY_LEN as u32).to_le_bytes());
    b.extend_from_slice(&idx.base_offset.to_le_bytes());
    b.extend_from_slice(&idx.end_pos.to_le_bytes());
    b.extend_from_slice(&(idx.entries.len() as u64).to_le_bytes());
    for &(a, c) in &idx.entries {
        b.extend_from_slice(&a.to_le_bytes());
        b.extend_from_slice(&c.to_le_bytes());
    }
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// Decodes an index file; any damage is `Err` (indexes are rebuilt, never
/// trusted when they do not verify).
pub fn decode_index(kind: IndexKind, b: &[u8]) -> Result<IndexFile, DecodeError> {
    const SHORT: DecodeError = DecodeError::Invalid("index file too short");
    if b.get(0..8) != Some(&kind.magic()[..]) {
        return Err(DecodeError::Invalid("index file magic mismatch"));
    }
    if u32_at(b, 8).ok_or(SHORT)? != FORMAT_VERSION {
        return Err(DecodeError::Invalid("index file version unknown"));
    }
    if u32_at(b, 12).ok_or(SHORT)? != INDEX_ENTRY_LEN as u32 {
        return Err(DecodeError::Invalid("index entry length unknown"));
    }
    let n = u64_at(b, 32).ok_or(SHORT)?;
    let expected_len = (n as u128) * INDEX_ENTRY_LEN as u128 + INDEX_HEADER_LEN as u128 + 4;
    if expected_len != b.len() as u128 {
        return Err(DecodeError::Invalid("index file length does not match its entry count"));
    }
    let body_len = b.len() - 4;
    let stored = u32_at(b, body_len).ok_or(SHORT)?;
    if crc32fast::hash(b.get(..body_len).ok_or(SHORT)?) != stored {
        return Err(DecodeError::Invalid("index file checksum mismatch"));
    }
    let mut entries = Vec::with_capacity(n as usize);
    let mut prev: Option<(u64, u64)> = None;
    for i in 0..n as usize {
        let at = INDEX_HEADER_LEN + i * INDEX_ENTRY_LEN;
        let e = (u64_at(b, at).ok_or(SHORT)?, u64_at(b, at + 8).ok_or(SHORT)?);
        if let Some(p) = prev
            && (e.0 < p.0 || e.1 < p.1)
        {
            return Err(DecodeError::Invalid("index entries are not ascending"));
        }
        prev = Some(e);
        entries.push(e);
    }
    Ok(IndexFile { base_offset: u64_at(b, 16).ok_or(SHORT)?, end_pos: u64_at(b, 24).ok_or(SHORT)?, entries })
}

// ---------------------------------------------------------------------------
// Log metadata file

/// Metadata file magic.
pub const META_MAGIC: [u8; 8] = *b"SGLOGMET";
/// Size of the metadata file.
pub const META_LEN: usize = 36;
/// Name of the metadata file.
pub const META_FILE_NAME: &str = "log.meta";

const META_PENDING_SUFFIX: u32 = 1;
const META_PENDING_RESTART: u32 = 2;

/// The log's own durable metadata: what segment files alone cannot say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meta {
    /// The logical first offset (prefix truncation may leave older records
    /// in the first segment).
    pub first_offset: u64,
    /// A suffix truncation that was started: recovery finishes it.
    pub truncate_from: Option<u64>,
    /// A restart ([`Log::restart_at`](crate::Log::restart_at)) that was
    /// started: every record is gone and the log restarts empty at
    /// `first_offset`, which may lie past the end of the segments still on
    /// disk; recovery finishes it. Without this flag, a first offset past
    /// the end of the log is corruption.
    pub restart: bool,
}

impl Meta {
    /// Encodes the metadata file.
    pub fn encode(&self) -> [u8; META_LEN] {
        let mut b = [0u8; META_LEN];
        b[0..8].copy_from_slice(&META_MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        let mut flags = if self.truncate_from.is_some() { META_PENDING_SUFFIX } else { 0 };
        if self.restart {
            flags |= META_PENDING_RESTART;
        }
        b[12..16].copy_from_slice(&flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.first_offset.to_le_bytes());
        b[24..32].copy_from_slice(&self.truncate_from.unwrap_or(0).to_le_bytes());
        let crc = crc32fast::hash(&b[0..32]);
        b[32..36].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes the metadata file.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        if b.len() != META_LEN {
            return Err(DecodeError::Invalid("metadata file has the wrong length"));
        }
        if b.get(0..8) != Some(&META_MAGIC[..]) {
            return Err(DecodeError::Invalid("metadata file magic mismatch"));
        }
        let body = b.get(0..32).ok_or(DecodeError::Invalid("short"))?;
        if u32_at(b, 32) != Some(crc32fast::hash(body)) {
            return Err(DecodeError::Invalid("metadata file checksum mismatch"));
        }
        if u32_at(b, 8) != Some(FORMAT_VERSION) {
            return Err(DecodeError::Invalid("metadata file version unknown"));
        }
        let flags = u32_at(b, 12).ok_or(DecodeError::Invalid("short"))?;
        if flags & !(META_PENDING_SUFFIX | META_PENDING_RESTART) != 0 {
            return Err(DecodeError::Invalid("unknown metadata flags"));
        }
        let first_offset = u64_at(b, 16).ok_or(DecodeError::Invalid("short"))?;
        let from = u64_at(b, 24).ok_or(DecodeError::Invalid("short"))?;
        Ok(Meta {
            first_offset,
            truncate_from: (flags & META_PENDING_SUFFIX != 0).then_some(from),
            restart: flags & META_PENDING_RESTART != 0,
        })
    }
}

/// Name of the compaction swap manifest.
pub const MANIFEST_FILE_NAME: &str = "log.compaction";
/// Compaction manifest magic.
pub const MANIFEST_MAGIC: [u8; 8] = *b"SGLOGCMP";
/// Most segments one compaction pass may replace.
pub const MANIFEST_ENTRIES_MAX: usize = 1 << 16;

/// A compaction swap: each entry is a compacted segment `base` covering
/// offsets `base..next_offset`, which replaces every segment with a base in
/// that range. Once this file is durable, the swap is decided and recovery
/// finishes it; before, the `.compacted` files are leftovers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// `(base, next_offset)` of each compacted segment, in offset order.
    pub entries: Vec<(u64, u64)>,
}

impl Manifest {
    /// Encodes the manifest: magic, version, count, entries, CRC32.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(20 + 16 * self.entries.len() + 4);
        b.extend_from_slice(&MANIFEST_MAGIC);
        b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        b.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for (base, next) in &self.entries {
            b.extend_from_slice(&base.to_le_bytes());
            b.extend_from_slice(&next.to_le_bytes());
        }
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a manifest; any damage or inconsistency is an error.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        const BAD: DecodeError = DecodeError::Invalid("compaction manifest is damaged");
        if b.len() < 24 || b.get(0..8) != Some(&MANIFEST_MAGIC[..]) {
            return Err(DecodeError::Invalid("not a compaction manifest"));
        }
        let body = b.get(..b.len() - 4).ok_or(BAD)?;
        if u32_at(b, b.len() - 4) != Some(crc32fast::hash(body)) {
            return Err(DecodeError::Invalid("compaction manifest checksum mismatch"));
        }
        if u32_at(b, 8) != Some(FORMAT_VERSION) {
            return Err(DecodeError::Invalid("compaction manifest version unknown"));
        }
        let n = usize::try_from(u64_at(b, 12).ok_or(BAD)?).map_err(|_| BAD)?;
        if n > MANIFEST_ENTRIES_MAX || b.len() != 20 + 16 * n + 4 {
            return Err(BAD);
        }
        let mut entries = Vec::with_capacity(n);
        let mut prev_next = 0u64;
        for i in 0..n {
            let base = u64_at(b, 20 + 16 * i).ok_or(BAD)?;
            let next = u64_at(b, 28 + 16 * i).ok_or(BAD)?;
            if next <= base || base < prev_next {
                return Err(DecodeError::Invalid("compaction manifest entries overlap or are out of order"));
            }
            prev_next = next;
            entries.push((base, next));
        }
        Ok(Manifest { entries })
    }
}

// ---------------------------------------------------------------------------
// File names

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `<base>.log`
    Segment(u64),
    /// `<base>.index`
    OffsetIndex(u64),
    /// `<base>.timeindex`
    TimeIndex(u64),
    /// `*.tmp`: a leftover of an interrupted operation.
    Temporary,
    /// `log.meta`
    Meta,
    /// `<base>.log.compacted`: a compacted segment written by a compaction
    /// pass; part of the log only once `log.compaction` names it.
    Compacted(u64),
    /// `log.compaction`: the manifest of a compaction swap in progress.
    CompactionManifest,
}

/// Segment file name for a base offset.
pub fn segment_file_name(base: u64) -> String {
    format!("{base:020}.log")
}

/// Name of a compacted segment before the swap makes it live.
pub fn compacted_file_name(base: u64) -> String {
    format!("{base:020}.log.compacted")
}

/// Index file name for a base offset.
pub fn index_file_name(kind: IndexKind, base: u64) -> String {
    match kind {
        IndexKind::Offset => format!("{base:020}.index"),
        IndexKind::Time => format!("{base:020}.timeindex"),
    }
}

/// Classifies a directory entry; `None` for names the log does not own.
pub fn parse_file_name(name: &str) -> Option<FileKind> {
    if name.ends_with(".tmp") && name.len() > 4 {
        return Some(FileKind::Temporary);
    }
    if name == META_FILE_NAME {
        return Some(FileKind::Meta);
    }
    if name == MANIFEST_FILE_NAME {
        return Some(FileKind::CompactionManifest);
    }
    let (stem, ext) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let base: u64 = stem.parse().ok()?;
    match ext {
        "log" => Some(FileKind::Segment(base)),
        "index" => Some(FileKind::OffsetIndex(base)),
        "timeindex" => Some(FileKind::TimeIndex(base)),
        "log.compacted" => Some(FileKind::Compacted(base)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_every_bit_flip_is_caught() {
        let rec = RecordRef {
            offset: 42,
            timestamp_ms: 1_700_000_000_000,
            tombstone: true,
            key: Some(b"key"),
            value: b"value bytes",
        };
        let mut buf = Vec::new();
        encode_record(&mut buf, &rec);
        assert_eq!(buf.len() as u64, record_frame_len(rec.key, rec.value));
        let (f, n) = decode_frame(&buf).unwrap();
        assert_eq!(n, buf.len());
        assert_eq!(f, Frame::Record(rec));
        for i in 0..buf.len() * 8 {
            let mut b = buf.clone();
            b[i / 8] ^= 1 << (i % 8);
            assert!(decode_frame(&b).is_err() || decode_frame(&b).unwrap().1 != buf.len(), "bit {i}");
        }
    }

    #[test]
    fn empty_key_differs_from_no_key() {
        let mut a = Vec::new();
        encode_record(&mut a, &RecordRef { offset: 0, timestamp_ms: 0, tombstone: false, key: Some(b""), value: b"" });
        let mut b = Vec::new();
        encode_record(&mut b, &RecordRef { offset: 0, timestamp_ms: 0, tombstone: false, key: None, value: b"" });
        assert_ne!(a, b);
        match decode_frame(&a).unwrap().0 {
            Frame::Record(r) => assert_eq!(r.key, Some(&b""[..])),
            Frame::Marker(_) => panic!("decoded a marker"),
        }
    }

    #[test]
    fn marker_round_trips() {
        let m = Marker {
            kind: MarkerKind::Seal,
            next_offset: 9,
            timestamp_ms: 5,
            n_records: 3,
            min_ts: 1,
            max_ts: 4,
            batch_start_pos: 64,
            own_pos: 300,
            base_offset: 6,
        };
        let mut buf = Vec::new();
        encode_marker(&mut buf, &m);
        assert_eq!(buf.len(), MARKER_FRAME_LEN);
        assert_eq!(decode_frame(&buf).unwrap(), (Frame::Marker(m), MARKER_FRAME_LEN));
    }

    #[test]
    fn truncated_frames_are_incomplete_not_panics() {
        let mut buf = Vec::new();
        encode_record(
            &mut buf,
            &RecordRef { offset: 1, timestamp_ms: 2, tombstone: false, key: None, value: &[7; 50] },
        );
        for len in 0..buf.len() {
            assert!(matches!(decode_frame(&buf[..len]), Err(DecodeError::Incomplete(_))), "len {len}");
        }
    }

    #[test]
    fn header_and_index_round_trip() {
        let h = SegmentHeader { base_offset: 77, created_ms: 99, sparse: false };
        assert_eq!(SegmentHeader::decode(&h.encode()), Ok(h));
        let sparse = SegmentHeader { sparse: true, ..h };
        assert_eq!(SegmentHeader::decode(&sparse.encode()), Ok(sparse));
        let mut bad = h.encode();
        bad[20] ^= 1;
        assert!(SegmentHeader::decode(&bad).is_err());
        let idx = IndexFile { base_offset: 5, end_pos: 1000, entries: vec![(5, 64), (9, 500)] };
        let b = encode_index(IndexKind::Offset, &idx);
        assert_eq!(decode_index(IndexKind::Offset, &b), Ok(idx));
        assert!(decode_index(IndexKind::Time, &b).is_err());
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x10;
            assert!(decode_index(IndexKind::Offset, &c).is_err(), "byte {i}");
        }
    }

    #[test]
    fn manifest_round_trips_and_rejects_damage() {
        let m = Manifest { entries: vec![(0, 10), (10, 25), (40, 41)] };
        let b = m.encode();
        assert_eq!(Manifest::decode(&b), Ok(m));
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x04;
            assert!(Manifest::decode(&c).is_err(), "byte {i}");
        }
        for len in 0..b.len() {
            assert!(Manifest::decode(&b[..len]).is_err(), "len {len}");
        }
        assert_eq!(parse_file_name("00000000000000000010.log.compacted"), Some(FileKind::Compacted(10)));
        assert_eq!(parse_file_name("log.compaction"), Some(FileKind::CompactionManifest));
    }

    #[test]
    fn meta_round_trips() {
        for m in [
            Meta::default(),
            Meta { first_offset: 7, truncate_from: Some(9), restart: false },
            Meta { first_offset: 70, truncate_from: None, restart: true },
        ] {
            assert_eq!(Meta::decode(&m.encode()), Ok(m));
            for i in 0..META_LEN {
                let mut b = m.encode();
                b[i] ^= 4;
                assert!(Meta::decode(&b).is_err(), "byte {i}");
            }
        }
    }

    #[test]
    fn file_names() {
        assert_eq!(segment_file_name(5), "00000000000000000005.log");
        assert_eq!(parse_file_name("00000000000000000005.log"), Some(FileKind::Segment(5)));
        assert_eq!(parse_file_name("00000000000000000005.index"), Some(FileKind::OffsetIndex(5)));
        assert_eq!(parse_file_name("00000000000000000005.timeindex"), Some(FileKind::TimeIndex(5)));
        assert_eq!(parse_file_name("00000000000000000005.log.tmp"), Some(FileKind::Temporary));
        assert_eq!(parse_file_name("5.log"), None);
        assert_eq!(parse_file_name("notes.txt"), None);
        assert_eq!(parse_file_name("99999999999999999999.log"), None);
    }
}
