//! Index files: a segment's sparse offset and time indexes (derived data).

use super::{DecodeError, FORMAT_VERSION, u32_at, u64_at};

/// Offset index file magic.
pub const OFFSET_INDEX_MAGIC: [u8; 8] = *b"SGLOGOIX";
/// Time index file magic.
pub const TIME_INDEX_MAGIC: [u8; 8] = *b"SGLOGTIX";
/// Size of an index file header.
pub const INDEX_HEADER_LEN: usize = 40;
/// Size of an index entry.
pub const INDEX_ENTRY_LEN: usize = 16;

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
