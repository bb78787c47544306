//! The segment header (64 bytes at position 0) and its versions.

use super::{u32_at, u64_at};

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

/// Size of the segment header.
pub const HEADER_LEN: u64 = 64;

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
