//! The compaction manifest `log.compaction`.

use super::{DecodeError, u32_at, u64_at};

/// Name of the compaction swap manifest.
pub const MANIFEST_FILE_NAME: &str = "log.compaction";
/// Compaction manifest magic.
pub const MANIFEST_MAGIC: [u8; 8] = *b"SGLOGCMP";
/// Most segments one compaction pass may replace.
pub const MANIFEST_ENTRIES_MAX: usize = 1 << 16;
/// Manifest version whose entries are `(base, next_offset)` only (older
/// builds; still read).
pub const MANIFEST_VERSION_PLAIN: u32 = 1;
/// Manifest version whose entries also identify the compacted file (its
/// length and CRC32), written by this build.
pub const MANIFEST_VERSION: u32 = 2;

/// A file's identity as the manifest records it: its length and the CRC32
/// of all its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    /// Length in bytes.
    pub len: u64,
    /// CRC32 (the IEEE polynomial, as in frames) of the whole file.
    pub crc: u32,
}

/// One compacted segment of a swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestEntry {
    /// The compacted segment's base (it replaces the segment there).
    pub base: u64,
    /// It covers offsets `base..next_offset`; every segment with a base in
    /// that range is replaced.
    pub next_offset: u64,
    /// The compacted file `<base>.log.compacted` as written (absent in a
    /// version-1 manifest). Recovery uses it to tell "already renamed into
    /// place" from "lost".
    pub output: Option<FileIdentity>,
}

/// A compaction swap: each entry is a compacted segment, which replaces
/// every segment with a base in its range. Once this file is durable, the
/// swap is decided and recovery finishes it; before, the `.compacted` files
/// are leftovers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// The compacted segments, in offset order.
    pub entries: Vec<ManifestEntry>,
}

impl Manifest {
    /// Encodes the manifest (version 2): magic, version, count, entries
    /// `(base, next_offset, length, crc)`, CRC32. An entry without an
    /// identity is written as version 1 instead (all entries must agree).
    pub fn encode(&self) -> Vec<u8> {
        let plain = self.entries.iter().any(|e| e.output.is_none());
        let (version, size) = if plain { (MANIFEST_VERSION_PLAIN, 16) } else { (MANIFEST_VERSION, 28) };
        let mut b = Vec::with_capacity(20 + size * self.entries.len() + 4);
        b.extend_from_slice(&MANIFEST_MAGIC);
        b.extend_from_slice(&version.to_le_bytes());
        b.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for e in &self.entries {
            b.extend_from_slice(&e.base.to_le_bytes());
            b.extend_from_slice(&e.next_offset.to_le_bytes());
            if let (false, Some(id)) = (plain, e.output) {
                b.extend_from_slice(&id.len.to_le_bytes());
                b.extend_from_slice(&id.crc.to_le_bytes());
            }
        }
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a manifest (version 1 or 2); any damage or inconsistency is
    /// an error.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        const BAD: DecodeError = DecodeError::Invalid("compaction manifest is damaged");
        if b.len() < 24 || b.get(0..8) != Some(&MANIFEST_MAGIC[..]) {
            return Err(DecodeError::Invalid("not a compaction manifest"));
        }
        let body = b.get(..b.len() - 4).ok_or(BAD)?;
        if u32_at(b, b.len() - 4) != Some(crc32fast::hash(body)) {
            return Err(DecodeError::Invalid("compaction manifest checksum mismatch"));
        }
        let size = match u32_at(b, 8) {
            Some(MANIFEST_VERSION_PLAIN) => 16,
            Some(MANIFEST_VERSION) => 28,
            Some(v) => return Err(DecodeError::UnknownVersion(v)),
            None => return Err(BAD),
        };
        let n = usize::try_from(u64_at(b, 12).ok_or(BAD)?).map_err(|_| BAD)?;
        if n > MANIFEST_ENTRIES_MAX || b.len() != 20 + size * n + 4 {
            return Err(BAD);
        }
        let mut entries = Vec::with_capacity(n);
        let mut prev_next = 0u64;
        for i in 0..n {
            let at = 20 + size * i;
            let base = u64_at(b, at).ok_or(BAD)?;
            let next_offset = u64_at(b, at + 8).ok_or(BAD)?;
            if next_offset <= base || base < prev_next {
                return Err(DecodeError::Invalid("compaction manifest entries overlap or are out of order"));
            }
            prev_next = next_offset;
            let output = if size == 28 {
                Some(FileIdentity { len: u64_at(b, at + 16).ok_or(BAD)?, crc: u32_at(b, at + 24).ok_or(BAD)? })
            } else {
                None
            };
            entries.push(ManifestEntry { base, next_offset, output });
        }
        Ok(Manifest { entries })
    }
}
