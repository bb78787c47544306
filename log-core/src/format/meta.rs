//! The metadata file `log.meta`: where the log starts, pending intents,
//! and the epoch table.

use super::{DecodeError, u32_at, u64_at};

/// Metadata file magic.
pub const META_MAGIC: [u8; 8] = *b"SGLOGMET";
/// Size of a version-1 metadata file (a log that never began an epoch).
pub const META_LEN: usize = 36;
/// Version of a metadata file without an epoch table.
pub const META_VERSION_PLAIN: u32 = 1;
/// Version of a metadata file with an epoch table (written once the log's
/// first suffix truncation or restart began epoch 1).
pub const META_VERSION_EPOCHS: u32 = 2;
/// Version of a metadata file that names the last segment (and has an
/// epoch table, possibly empty): the version this build writes.
pub const META_VERSION: u32 = 3;
/// Most entries an epoch table may hold (16 MiB of `log.meta`); a decoder
/// refuses more, so a damaged count cannot make it allocate without bound.
pub const EPOCH_ENTRIES_MAX: usize = 1 << 20;
/// Name of the metadata file.
pub const META_FILE_NAME: &str = "log.meta";

const META_PENDING_SUFFIX: u32 = 1;
const META_PENDING_RESTART: u32 = 2;
const META_HAS_LAST_SEGMENT: u32 = 4;

/// The log's epochs: which epoch every offset's record must have been
/// written in. Kafka's leader-epoch file is the shape.
///
/// A suffix truncation `truncate_from(x)` (and a restart at `x`) begins a
/// new epoch at `x`: records from `x` on are written with it, so a frame
/// left over from before the truncation (a write that was lost, e.g.
/// misdirected, leaves it in place with a valid checksum and the right
/// offset) carries an older epoch and is refused as stale instead of being
/// returned. Frames store the epoch's low 16 bits ([`RecordRef::epoch`](super::RecordRef::epoch)).
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
    /// `EPOCH_ENTRIES_MAX` (2²⁰).
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
    /// The base of the log's last segment when this file was written
    /// (`None` in a file of an older build). A roll writes it after the new
    /// segment is durable and before the old one is sealed, so outside a
    /// pending intent the directory must hold this segment or a later one:
    /// otherwise the last segment was lost, whatever the segments left say
    /// (docs/FORMAT.md, "Lost files").
    pub last_segment: Option<u64>,
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

    /// Encodes the metadata file (version 3): magic, version, flags, first
    /// offset, pending truncation offset, last segment, epoch count and
    /// entries, CRC32 (`docs/FORMAT.md`, "log.meta").
    pub fn encode(&self) -> Vec<u8> {
        let entries = self.epochs.entries();
        let mut b = Vec::with_capacity(48 + 16 * entries.len());
        b.extend_from_slice(&META_MAGIC);
        b.extend_from_slice(&META_VERSION.to_le_bytes());
        let mut flags = if self.truncate_from.is_some() { META_PENDING_SUFFIX } else { 0 };
        if self.restart {
            flags |= META_PENDING_RESTART;
        }
        if self.last_segment.is_some() {
            flags |= META_HAS_LAST_SEGMENT;
        }
        b.extend_from_slice(&flags.to_le_bytes());
        b.extend_from_slice(&self.first_offset.to_le_bytes());
        b.extend_from_slice(&self.truncate_from.unwrap_or(0).to_le_bytes());
        b.extend_from_slice(&self.last_segment.unwrap_or(0).to_le_bytes());
        b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for (start, epoch) in entries {
            b.extend_from_slice(&start.to_le_bytes());
            b.extend_from_slice(&epoch.to_le_bytes());
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
        // Where the epoch table's count is (version 1 has none).
        let table_at = match version {
            META_VERSION_PLAIN if b.len() == META_LEN => None,
            META_VERSION_EPOCHS => Some(32),
            META_VERSION => Some(40),
            META_VERSION_PLAIN => return Err(SHORT),
            v => return Err(DecodeError::UnknownVersion(v)),
        };
        let epochs = match table_at {
            None => Epochs::default(),
            Some(at) => {
                let n = u32_at(b, at).ok_or(SHORT)? as usize;
                // Version 2 is written only with a non-empty table.
                let empty_ok = version == META_VERSION;
                if (n == 0 && !empty_ok) || n > EPOCH_ENTRIES_MAX || b.len() != at + 8 + 16 * n {
                    return Err(SHORT);
                }
                let entries = (0..n)
                    .map(|i| Some((u64_at(b, at + 4 + 16 * i)?, u64_at(b, at + 12 + 16 * i)?)))
                    .collect::<Option<Vec<_>>>()
                    .ok_or(SHORT)?;
                Epochs::from_entries(entries)
                    .ok_or(DecodeError::Invalid("metadata file's epoch table is not strictly increasing"))?
            }
        };
        let flags = u32_at(b, 12).ok_or(SHORT)?;
        let known = if version == META_VERSION { META_HAS_LAST_SEGMENT } else { 0 };
        if flags & !(META_PENDING_SUFFIX | META_PENDING_RESTART | known) != 0 {
            return Err(DecodeError::Invalid("unknown metadata flags"));
        }
        let first_offset = u64_at(b, 16).ok_or(SHORT)?;
        let from = u64_at(b, 24).ok_or(SHORT)?;
        Ok(Meta {
            first_offset,
            truncate_from: (flags & META_PENDING_SUFFIX != 0).then_some(from),
            restart: flags & META_PENDING_RESTART != 0,
            epochs,
            last_segment: if flags & META_HAS_LAST_SEGMENT != 0 { u64_at(b, 32) } else { None },
        })
    }
}
