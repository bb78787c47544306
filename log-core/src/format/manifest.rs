//! The compaction manifest `log.compaction`.

use super::{DecodeError, FORMAT_VERSION, u32_at, u64_at};

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
