//! The on-disk format: every byte the log writes is encoded and
//! decoded here, and nowhere else. `docs/FORMAT.md` has the byte tables; the
//! fixture test in `tests/` fails if this module's output changes.
//!
//! All integers are little-endian and explicitly sized. Decoders take
//! arbitrary bytes and return `Err` (never panic) on anything malformed.

use std::fmt;

/// The format version of index files and the compaction manifest.
pub const FORMAT_VERSION: u32 = 1;
/// The segment header version this build writes: the segment is sealed
/// only after its successor is durable (so a sealed *last* segment proves a
/// lost file), and the header says the segment's kind (plain or compacted)
/// in a field of its own, so a later format change bumps only the version.
pub const SEGMENT_VERSION: u32 = 3;
/// A plain segment from a build before the successor-first rule (read, never
/// written; the version doubled as the kind).
pub const LEGACY_SEGMENT_VERSION: u32 = 1;
/// A compacted segment from a build before the successor-first rule (read,
/// never written).
pub const LEGACY_COMPACTED_SEGMENT_VERSION: u32 = 2;
/// Segment kind field (version 3): a plain segment.
const KIND_FIELD_PLAIN: u32 = 1;
/// Segment kind field (version 3): a compacted segment (the same frames, but
/// the records' offsets are only strictly increasing: compaction left gaps;
/// always sealed).
const KIND_FIELD_COMPACTED: u32 = 2;

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
    /// The bytes verify but carry a format version this build does not know
    /// (a newer build wrote them).
    UnknownVersion(u32),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Incomplete(n) => write!(f, "truncated: needs {n} bytes"),
            DecodeError::Invalid(why) => f.write_str(why),
            DecodeError::UnknownVersion(v) => write!(f, "format version {v} is not known to this build"),
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
    /// A compacted segment: offsets may skip (kind field 2, or version 2).
    pub sparse: bool,
    /// Written under the successor-first rule (version 3): the segment is
    /// sealed only once the segment after it is durable. False only for
    /// segments written by older builds (versions 1 and 2).
    pub successor_first: bool,
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
        let version = match (self.successor_first, self.sparse) {
            (true, _) => SEGMENT_VERSION,
            (false, false) => LEGACY_SEGMENT_VERSION,
            (false, true) => LEGACY_COMPACTED_SEGMENT_VERSION,
        };
        if self.successor_first {
            let kind = if self.sparse { KIND_FIELD_COMPACTED } else { KIND_FIELD_PLAIN };
            b[32..36].copy_from_slice(&kind.to_le_bytes());
        }
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
        let known = [LEGACY_SEGMENT_VERSION, LEGACY_COMPACTED_SEGMENT_VERSION, SEGMENT_VERSION];
        if crc_ok && !known.contains(&version) {
            return Err(HeaderError::Version(version));
        }
        if !crc_ok {
            return Err(HeaderError::Invalid("segment header checksum mismatch"));
        }
        if u32_at(b, 12) != Some(HEADER_LEN as u32) {
            return Err(HeaderError::Invalid("segment header length field is wrong"));
        }
        let successor_first = version >= SEGMENT_VERSION;
        let reserved_from = if successor_first { 36 } else { 32 };
        if b.get(reserved_from..60).is_some_and(|r| r.iter().any(|&x| x != 0)) {
            return Err(HeaderError::Invalid("segment header reserved bytes are not zero"));
        }
        let sparse = if successor_first {
            match u32_at(b, 32) {
                Some(KIND_FIELD_PLAIN) => false,
                Some(KIND_FIELD_COMPACTED) => true,
                _ => return Err(HeaderError::Invalid("segment header kind is neither plain nor compacted")),
            }
        } else {
            version == LEGACY_COMPACTED_SEGMENT_VERSION
        };
        Ok(SegmentHeader {
            base_offset: u64_at(b, 16).ok_or(HeaderError::Short)?,
            created_ms: u64_at(b, 24).ok_or(HeaderError::Short)?,
            sparse,
            successor_first,
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
    /// The low 16 bits of the epoch the record was written in (body bytes
    /// 2..4; see [`Epochs`]). 0 in every log that never had a suffix
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
    let epoch = u16::from_le_bytes(body.get(2..4).and_then(|b| b.try_into().ok()).ok_or(BAD)?);
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
/// Size of a version-1 metadata file (a log that never began an epoch).
pub const META_LEN: usize = 36;
/// Version of a metadata file without an epoch table.
pub const META_VERSION_PLAIN: u32 = 1;
/// Version of a metadata file with an epoch table (written once the log's
/// first suffix truncation or restart began epoch 1).
pub const META_VERSION_EPOCHS: u32 = 2;
/// Most entries an epoch table may hold (16 MiB of `log.meta`); a decoder
/// refuses more, so a damaged count cannot make it allocate without bound.
pub const EPOCH_ENTRIES_MAX: usize = 1 << 20;
/// Name of the metadata file.
pub const META_FILE_NAME: &str = "log.meta";

const META_PENDING_SUFFIX: u32 = 1;
const META_PENDING_RESTART: u32 = 2;

/// The log's epochs: which epoch every offset's record must have been
/// written in. Kafka's leader-epoch file is the shape.
///
/// A suffix truncation `truncate_from(x)` (and a restart at `x`) begins a
/// new epoch at `x`: records from `x` on are written with it, so a frame
/// left over from before the truncation (a write that was lost, e.g.
/// misdirected, leaves it in place with a valid checksum and the right
/// offset) carries an older epoch and is refused as stale instead of being
/// returned. Frames store the epoch's low 16 bits ([`RecordRef::epoch`]).
///
/// The table is a list of `(start offset, epoch)`, both strictly
/// increasing; offsets below the first entry belong to epoch 0, and the
/// last entry's epoch is the current one. It is empty (and `log.meta` stays
/// version 1) until the first truncation or restart.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Epochs {
    starts: std::sync::Arc<[(u64, u64)]>,
}

impl Epochs {
    /// The epoch that new records are written in.
    pub fn current(&self) -> u64 {
        self.starts.last().map_or(0, |e| e.1)
    }

    /// The epoch the record at `offset` must have been written in.
    pub fn expected(&self, offset: u64) -> u64 {
        let i = self.starts.partition_point(|e| e.0 <= offset);
        i.checked_sub(1).and_then(|i| self.starts.get(i)).map_or(0, |e| e.1)
    }

    /// The 16-bit tag a record at `offset` must carry.
    pub fn expected_tag(&self, offset: u64) -> u16 {
        Self::tag(self.expected(offset))
    }

    /// The 16-bit tag of `epoch`, as stored in a frame.
    pub fn tag(epoch: u64) -> u16 {
        epoch as u16
    }

    /// Whether a record frame at `offset` with `tag` belongs to the log (not
    /// a stale frame of an earlier epoch).
    pub fn admits(&self, offset: u64, tag: u16) -> bool {
        self.expected_tag(offset) == tag
    }

    /// The table after a suffix truncation at `at` began a new epoch there:
    /// entries from `at` on are replaced.
    #[must_use]
    pub fn begin(&self, at: u64) -> Self {
        let next = self.current() + 1;
        let starts: Vec<(u64, u64)> =
            self.starts.iter().copied().filter(|e| e.0 < at).chain(std::iter::once((at, next))).collect();
        Self { starts: starts.into() }
    }

    /// The table without the entries that no longer describe any offset
    /// from `from` on (prefix truncation): the entry covering `from` and
    /// every later one are kept.
    #[must_use]
    pub fn from_offset(&self, from: u64) -> Self {
        let keep = self.starts.partition_point(|e| e.0 <= from).saturating_sub(1);
        Self { starts: self.starts.get(keep..).unwrap_or_default().into() }
    }

    /// The entries, ascending.
    pub fn entries(&self) -> &[(u64, u64)] {
        &self.starts
    }

    /// Builds a table from entries; `None` unless both columns strictly
    /// increase, every epoch is positive, and it fits
    /// [`EPOCH_ENTRIES_MAX`].
    pub fn from_entries(entries: Vec<(u64, u64)>) -> Option<Self> {
        let ordered = entries.windows(2).all(|w| matches!(w, [a, b] if a.0 < b.0 && a.1 < b.1));
        let positive = entries.first().is_none_or(|e| e.1 > 0);
        (ordered && positive && entries.len() <= EPOCH_ENTRIES_MAX).then(|| Self { starts: entries.into() })
    }
}

/// The log's own durable metadata: what segment files alone cannot say.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
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
    /// The log's epochs (empty until the first truncation or restart).
    pub epochs: Epochs,
}

impl Meta {
    /// Whether a record frame at `offset` whose epoch tag is `tag` belongs
    /// to the log: it has its offset's epoch ([`Epochs::admits`]), or it
    /// lies at or after a pending suffix truncation, which cuts it anyway
    /// (the truncation's intent already began the new epoch there, so the
    /// records it is about to cut are of an older one).
    pub fn admits(&self, offset: u64, tag: u16) -> bool {
        self.truncate_from.is_some_and(|x| offset >= x) || self.epochs.admits(offset, tag)
    }

    /// Encodes the metadata file: version 1 (36 bytes) while the epoch
    /// table is empty, version 2 (40 + 16 per entry) after.
    pub fn encode(&self) -> Vec<u8> {
        let entries = self.epochs.entries();
        let version = if entries.is_empty() { META_VERSION_PLAIN } else { META_VERSION_EPOCHS };
        let mut b = Vec::with_capacity(40 + 16 * entries.len());
        b.extend_from_slice(&META_MAGIC);
        b.extend_from_slice(&version.to_le_bytes());
        let mut flags = if self.truncate_from.is_some() { META_PENDING_SUFFIX } else { 0 };
        if self.restart {
            flags |= META_PENDING_RESTART;
        }
        b.extend_from_slice(&flags.to_le_bytes());
        b.extend_from_slice(&self.first_offset.to_le_bytes());
        b.extend_from_slice(&self.truncate_from.unwrap_or(0).to_le_bytes());
        if !entries.is_empty() {
            b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
            for (start, epoch) in entries {
                b.extend_from_slice(&start.to_le_bytes());
                b.extend_from_slice(&epoch.to_le_bytes());
            }
        }
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes the metadata file. A version this build does not know is
    /// [`DecodeError::UnknownVersion`].
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        const SHORT: DecodeError = DecodeError::Invalid("metadata file has the wrong length");
        if b.len() < META_LEN {
            return Err(SHORT);
        }
        if b.get(0..8) != Some(&META_MAGIC[..]) {
            return Err(DecodeError::Invalid("metadata file magic mismatch"));
        }
        let body = b.get(..b.len() - 4).ok_or(SHORT)?;
        if u32_at(b, b.len() - 4) != Some(crc32fast::hash(body)) {
            return Err(DecodeError::Invalid("metadata file checksum mismatch"));
        }
        let version = u32_at(b, 8).ok_or(SHORT)?;
        let epochs = match version {
            META_VERSION_PLAIN if b.len() == META_LEN => Epochs::default(),
            META_VERSION_EPOCHS => {
                let n = u32_at(b, 32).ok_or(SHORT)? as usize;
                if n == 0 || n > EPOCH_ENTRIES_MAX || b.len() != 40 + 16 * n {
                    return Err(SHORT);
                }
                let entries = (0..n)
                    .map(|i| Some((u64_at(b, 36 + 16 * i)?, u64_at(b, 44 + 16 * i)?)))
                    .collect::<Option<Vec<_>>>()
                    .ok_or(SHORT)?;
                Epochs::from_entries(entries)
                    .ok_or(DecodeError::Invalid("metadata file's epoch table is not strictly increasing"))?
            }
            META_VERSION_PLAIN => return Err(SHORT),
            v => return Err(DecodeError::UnknownVersion(v)),
        };
        let flags = u32_at(b, 12).ok_or(SHORT)?;
        if flags & !(META_PENDING_SUFFIX | META_PENDING_RESTART) != 0 {
            return Err(DecodeError::Invalid("unknown metadata flags"));
        }
        let first_offset = u64_at(b, 16).ok_or(SHORT)?;
        let from = u64_at(b, 24).ok_or(SHORT)?;
        Ok(Meta {
            first_offset,
            truncate_from: (flags & META_PENDING_SUFFIX != 0).then_some(from),
            restart: flags & META_PENDING_RESTART != 0,
            epochs,
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
    /// `log.lock`: the lock file a read-write open holds (empty).
    Lock,
}

/// Name of the lock file every read-write open holds an exclusive lock on.
pub const LOCK_FILE_NAME: &str = "log.lock";

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
    if name == LOCK_FILE_NAME {
        return Some(FileKind::Lock);
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
            epoch: 0x1234,
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
        encode_record(
            &mut a,
            &RecordRef { offset: 0, timestamp_ms: 0, tombstone: false, key: Some(b""), value: b"", epoch: 0 },
        );
        let mut b = Vec::new();
        encode_record(
            &mut b,
            &RecordRef { offset: 0, timestamp_ms: 0, tombstone: false, key: None, value: b"", epoch: 0 },
        );
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
            &RecordRef { offset: 1, timestamp_ms: 2, tombstone: false, key: None, value: &[7; 50], epoch: 0 },
        );
        for len in 0..buf.len() {
            assert!(matches!(decode_frame(&buf[..len]), Err(DecodeError::Incomplete(_))), "len {len}");
        }
    }

    #[test]
    fn header_and_index_round_trip() {
        let h = SegmentHeader { base_offset: 77, created_ms: 99, sparse: false, successor_first: true };
        for (sparse, successor_first) in [(false, false), (true, false), (false, true), (true, true)] {
            let v = SegmentHeader { sparse, successor_first, ..h };
            assert_eq!(SegmentHeader::decode(&v.encode()), Ok(v));
        }
        // Version 3 keeps the kind apart from the version.
        let e = SegmentHeader { sparse: true, ..h }.encode();
        assert_eq!((u32_at(&e, 8), u32_at(&e, 32)), (Some(3), Some(2)));
        let mut bad_kind = h.encode();
        bad_kind[32] = 7;
        let crc = crc32fast::hash(&bad_kind[..60]);
        bad_kind[60..64].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(SegmentHeader::decode(&bad_kind), Err(HeaderError::Invalid(_))));
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
        assert_eq!(parse_file_name("log.lock"), Some(FileKind::Lock));
    }

    #[test]
    fn meta_round_trips() {
        let epochs = Epochs::default().begin(9).begin(12).begin(10);
        assert_eq!(epochs.entries(), &[(9, 1), (10, 3)]);
        for m in [
            Meta::default(),
            Meta { first_offset: 7, truncate_from: Some(9), restart: false, epochs: Epochs::default() },
            Meta { first_offset: 70, truncate_from: None, restart: true, epochs: Epochs::default() },
            Meta { first_offset: 7, truncate_from: Some(10), restart: false, epochs: epochs.clone() },
        ] {
            let b = m.encode();
            assert_eq!(b.len(), if m.epochs.entries().is_empty() { META_LEN } else { 40 + 16 * 2 });
            assert_eq!(Meta::decode(&b), Ok(m.clone()));
            for i in 0..b.len() {
                let mut b = m.encode();
                b[i] ^= 4;
                assert!(Meta::decode(&b).is_err(), "byte {i}");
            }
            assert!(Meta::decode(&b[..b.len() - 1]).is_err());
        }
    }

    #[test]
    fn epochs_say_which_epoch_each_offset_was_written_in() {
        let e = Epochs::default();
        assert_eq!((e.current(), e.expected(0), e.expected(u64::MAX)), (0, 0, 0));
        // truncate_from(10), then (10, 1); truncate_from(20), then (20, 2);
        // truncate_from(15): epoch 3 from 15 replaces epoch 2 at 20.
        let e = e.begin(10).begin(20).begin(15);
        assert_eq!(e.entries(), &[(10, 1), (15, 3)]);
        assert_eq!([e.expected(9), e.expected(10), e.expected(14), e.expected(15), e.expected(99)], [0, 1, 1, 3, 3]);
        assert!(e.admits(12, 1) && !e.admits(12, 0) && !e.admits(16, 2) && e.admits(16, 3));
        // Prefix truncation keeps the entry covering the new first offset.
        assert_eq!(e.from_offset(12).entries(), &[(10, 1), (15, 3)]);
        assert_eq!(e.from_offset(15).entries(), &[(15, 3)]);
        assert_eq!(e.from_offset(5).entries(), &[(10, 1), (15, 3)]);
        // A newer metadata version is refused as such, not as damage.
        let mut b = Meta { epochs: e, ..Meta::default() }.encode();
        b[8] = 3;
        let n = b.len() - 4;
        let crc = crc32fast::hash(&b[..n]);
        b[n..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(Meta::decode(&b), Err(DecodeError::UnknownVersion(3)));
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
