//! The segment header (64 bytes at position 0) and its versions.

use super::{u32_at, u64_at};

/// The segment header version this build writes ([`SegmentVersion::CURRENT`]).
pub const SEGMENT_VERSION: u32 = SegmentVersion::CURRENT.0;
/// Segment kind field (version 3): a plain segment.
const KIND_FIELD_PLAIN: u32 = 1;
/// Segment kind field (version 3): a compacted segment.
const KIND_FIELD_COMPACTED: u32 = 2;

/// Segment file header magic.
pub const SEGMENT_MAGIC: [u8; 8] = *b"SGLOGSEG";

/// Size of the segment header.
pub const HEADER_LEN: u64 = 64;

/// What a segment holds, apart from the format version it is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    /// Records at every offset from its base on (dense).
    Plain,
    /// The output of key compaction: the same frames, but the records'
    /// offsets are only strictly increasing (compaction left gaps); always
    /// sealed.
    Compacted,
}

/// A segment header version, and what a header of that version can say.
/// Code asks for a capability, never compares version numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SegmentVersion(u32);

impl SegmentVersion {
    /// The version this build writes: the kind in a field of its own, and
    /// the successor-first rule.
    pub const CURRENT: Self = Self(3);
    /// A plain segment of a build before the successor-first rule (read,
    /// never written; the version doubled as the kind).
    pub const LEGACY_PLAIN: Self = Self(1);
    /// A compacted segment of a build before the successor-first rule
    /// (read, never written).
    pub const LEGACY_COMPACTED: Self = Self(2);

    /// The version numbered `n`, if this build reads it.
    pub fn known(n: u32) -> Option<Self> {
        [Self::LEGACY_PLAIN, Self::LEGACY_COMPACTED, Self::CURRENT].into_iter().find(|v| v.0 == n)
    }

    /// Its number, as stored at byte 8.
    pub fn number(self) -> u32 {
        self.0
    }

    /// Whether a segment of this version is sealed only once the segment
    /// after it is durable (so a sealed *last* segment proves a lost file),
    /// and holds no byte past its header before `log.meta` exists.
    pub fn successor_first(self) -> bool {
        self >= Self::CURRENT
    }

    /// Whether the kind is a field of its own (bytes 32..36); before, the
    /// version said it.
    pub fn has_kind_field(self) -> bool {
        self >= Self::CURRENT
    }

    /// The kind a version without a kind field implied.
    fn implied_kind(self) -> SegmentKind {
        if self == Self::LEGACY_COMPACTED { SegmentKind::Compacted } else { SegmentKind::Plain }
    }

    /// The version an older build wrote for `kind`.
    fn legacy_for(kind: SegmentKind) -> Self {
        match kind {
            SegmentKind::Plain => Self::LEGACY_PLAIN,
            SegmentKind::Compacted => Self::LEGACY_COMPACTED,
        }
    }
}

/// The fixed header at the start of every segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Offset of the first record this segment may hold.
    pub base_offset: u64,
    /// Clock time at creation, for age-based rolling across restarts.
    pub created_ms: u64,
    /// What the segment holds.
    pub kind: SegmentKind,
    /// The version it is written in (this build writes
    /// [`SegmentVersion::CURRENT`]; the older ones only in tests).
    pub version: SegmentVersion,
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
    /// A header of the version this build writes.
    pub fn new(base_offset: u64, created_ms: u64, kind: SegmentKind) -> Self {
        SegmentHeader { base_offset, created_ms, kind, version: SegmentVersion::CURRENT }
    }

    /// Whether the segment is a compacted one.
    pub fn is_compacted(&self) -> bool {
        self.kind == SegmentKind::Compacted
    }

    /// Encodes the header into exactly `HEADER_LEN` bytes. A version
    /// without a kind field is written as the legacy version of the kind.
    pub fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut b = [0u8; HEADER_LEN as usize];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        let version = if self.version.has_kind_field() {
            let kind = if self.is_compacted() { KIND_FIELD_COMPACTED } else { KIND_FIELD_PLAIN };
            b[32..36].copy_from_slice(&kind.to_le_bytes());
            self.version
        } else {
            SegmentVersion::legacy_for(self.kind)
        };
        b[8..12].copy_from_slice(&version.number().to_le_bytes());
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
        let number = u32_at(b, 8).ok_or(HeaderError::Short)?;
        let version = SegmentVersion::known(number);
        let Some(version) = version.filter(|_| crc_ok) else {
            return Err(if crc_ok {
                HeaderError::Version(number)
            } else {
                HeaderError::Invalid("segment header checksum mismatch")
            });
        };
        if u32_at(b, 12) != Some(HEADER_LEN as u32) {
            return Err(HeaderError::Invalid("segment header length field is wrong"));
        }
        let reserved_from = if version.has_kind_field() { 36 } else { 32 };
        if b.get(reserved_from..60).is_some_and(|r| r.iter().any(|&x| x != 0)) {
            return Err(HeaderError::Invalid("segment header reserved bytes are not zero"));
        }
        let kind = if version.has_kind_field() {
            match u32_at(b, 32) {
                Some(KIND_FIELD_PLAIN) => SegmentKind::Plain,
                Some(KIND_FIELD_COMPACTED) => SegmentKind::Compacted,
                _ => return Err(HeaderError::Invalid("segment header kind is neither plain nor compacted")),
            }
        } else {
            version.implied_kind()
        };
        Ok(SegmentHeader {
            base_offset: u64_at(b, 16).ok_or(HeaderError::Short)?,
            created_ms: u64_at(b, 24).ok_or(HeaderError::Short)?,
            kind,
            version,
        })
    }
}
