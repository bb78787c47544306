//! Sparse per-segment indexes: offset → byte position, and time → offset.
//!
//! An entry is added every `index_interval_bytes` of records. Both indexes are
//! derived data: they are rebuilt from the segment whenever their file is
//! missing, damaged, or describes a different segment length, and they store
//! absolute `u64` offsets and positions, so nothing in them can overflow.

use crate::format::{IndexFile, IndexKind};

/// The in-memory sparse indexes of one segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SparseIndex {
    /// `(offset, byte position)` of indexed records, ascending.
    pub offsets: Vec<(u64, u64)>,
    /// `(largest timestamp among records up to and including offset, offset)`.
    pub times: Vec<(u64, u64)>,
    /// Byte position of the last indexed record (the header end if none).
    pub last_indexed_pos: u64,
    /// Largest timestamp seen so far.
    pub max_ts: u64,
}

/// Enough of a [`SparseIndex`]'s state to undo appends after a failed write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexMark {
    n_offsets: usize,
    n_times: usize,
    last_indexed_pos: u64,
    max_ts: u64,
}

impl SparseIndex {
    pub fn new(header_end: u64) -> Self {
        Self { last_indexed_pos: header_end, ..Self::default() }
    }

    /// Records that the record `offset` with timestamp `ts` starts at `pos`.
    /// Records must be observed in order.
    pub fn observe(&mut self, offset: u64, pos: u64, ts: u64, interval: u32) {
        self.max_ts = self.max_ts.max(ts);
        if pos.saturating_sub(self.last_indexed_pos) >= u64::from(interval) {
            debug_assert!(self.offsets.last().is_none_or(|&(o, p)| o < offset && p < pos));
            self.offsets.push((offset, pos));
            self.times.push((self.max_ts, offset));
            self.last_indexed_pos = pos;
        }
    }

    /// The indexed record at or before `offset`: `(offset, pos)`, or `None` if
    /// the search must start at the first record of the segment.
    pub fn floor(&self, offset: u64) -> Option<(u64, u64)> {
        let idx = self.offsets.partition_point(|&(o, _)| o <= offset);
        idx.checked_sub(1).and_then(|i| self.offsets.get(i).copied())
    }

    /// Where to start scanning for the first record with timestamp ≥ `ts`:
    /// the last indexed offset all of whose predecessors (and itself) are
    /// older, so the answer is after it. `None` means scan from the start.
    pub fn time_floor(&self, ts: u64) -> Option<u64> {
        let idx = self.times.partition_point(|&(t, _)| t < ts);
        idx.checked_sub(1).and_then(|i| self.times.get(i)).map(|&(_, o)| o)
    }

    pub fn mark(&self) -> IndexMark {
        IndexMark {
            n_offsets: self.offsets.len(),
            n_times: self.times.len(),
            last_indexed_pos: self.last_indexed_pos,
            max_ts: self.max_ts,
        }
    }

    pub fn rollback(&mut self, m: IndexMark) {
        self.offsets.truncate(m.n_offsets);
        self.times.truncate(m.n_times);
        self.last_indexed_pos = m.last_indexed_pos;
        self.max_ts = m.max_ts;
    }

    pub fn to_files(&self, base_offset: u64, end_pos: u64) -> [(IndexKind, IndexFile); 2] {
        [
            (IndexKind::Offset, IndexFile { base_offset, end_pos, entries: self.offsets.clone() }),
            (IndexKind::Time, IndexFile { base_offset, end_pos, entries: self.times.clone() }),
        ]
    }

    /// Rebuilds from two decoded index files that describe the same segment.
    /// Returns `None` if they disagree with each other.
    pub fn from_files(offsets: IndexFile, times: IndexFile, max_ts: u64, header_end: u64) -> Option<Self> {
        if offsets.entries.len() != times.entries.len()
            || offsets.base_offset != times.base_offset
            || offsets.end_pos != times.end_pos
            || offsets.entries.iter().zip(&times.entries).any(|(&(o, _), &(_, to))| o != to)
        {
            return None;
        }
        if offsets.entries.first().is_some_and(|&(o, p)| o < offsets.base_offset || p < header_end) {
            return None;
        }
        let last_indexed_pos = offsets.entries.last().map_or(header_end, |&(_, p)| p);
        Some(Self { offsets: offsets.entries, times: times.entries, last_indexed_pos, max_ts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_and_time_floor() {
        let mut ix = SparseIndex::new(64);
        // Records of 100 bytes each, interval 250: every third record indexed.
        for i in 0..10u64 {
            ix.observe(i, 64 + i * 100, [5, 3, 9, 1, 9, 12, 2, 20, 4, 30][i as usize], 250);
        }
        assert_eq!(ix.offsets, vec![(3, 364), (6, 664), (9, 964)]);
        assert_eq!(ix.times, vec![(9, 3), (12, 6), (30, 9)]);
        assert_eq!(ix.floor(0), None);
        assert_eq!(ix.floor(3), Some((3, 364)));
        assert_eq!(ix.floor(8), Some((6, 664)));
        assert_eq!(ix.floor(100), Some((9, 964)));
        assert_eq!(ix.time_floor(9), None);
        assert_eq!(ix.time_floor(10), Some(3));
        assert_eq!(ix.time_floor(31), Some(9));
        let m = ix.mark();
        ix.observe(10, 1300, 99, 250);
        assert_eq!(ix.offsets.len(), 4);
        ix.rollback(m);
        assert_eq!(ix.offsets.len(), 3);
        assert_eq!(ix.max_ts, 30);
    }
}
