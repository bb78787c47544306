//! The on-disk format: every byte the log writes is encoded and
//! decoded here, and nowhere else. `docs/FORMAT.md` has the byte tables; the
//! fixture test in `tests/` fails if this module's output changes.
//!
//! All integers are little-endian and explicitly sized. Decoders take
//! arbitrary bytes and return `Err` (never panic) on anything malformed.

mod frame;
mod header;
mod index_file;
mod manifest;
mod meta;
mod names;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::OnceLock;

pub use frame::*;
pub use header::*;
pub use index_file::*;
pub use manifest::*;
pub use meta::*;
pub use names::*;

/// The format version of index files and the compaction manifest.
pub const FORMAT_VERSION: u32 = 1;

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

/// CRC32 (IEEE) of `data`, as `crc32fast::hash` computes it, with the CPU
/// feature probe done once per process instead of once per call (a frame
/// of a small record costs about 16 ns to check; the probe added 1–2).
pub(crate) fn crc32(data: &[u8]) -> u32 {
    static PROTO: OnceLock<crc32fast::Hasher> = OnceLock::new();
    let mut h = PROTO.get_or_init(crc32fast::Hasher::new).clone();
    h.update(data);
    h.finalize()
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(s))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let s: [u8; 8] = b.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(s))
}
