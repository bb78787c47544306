//! The read path: reads by offset through the sparse index, iteration over
//! offset ranges, and full verification. Every frame read is checked (CRC,
//! expected offset) before its bytes are returned.

use std::ops::{Bound, RangeBounds};

use crate::error::{Error, Result};
use crate::format::{HEADER_LEN, RecordRef};
use crate::log::{Log, Record, SegSource};
use crate::segment::{FrameCursor, SCAN_CHUNK, Segment, SegmentInfo};

impl Log {
    /// Reads the record at `offset`.
    pub fn read(&self, offset: u64) -> Result<Record> {
        let seg = self.segment_for(offset)?;
        let rec = self.locate(seg, offset).map(|(_, rec)| rec)?;
        self.stats.read(1, (rec.value.len() + rec.key.as_ref().map_or(0, Vec::len)) as u64);
        Ok(rec)
    }

    /// Iterates over the records with offsets in `range` (clamped to the
    /// log), in offset order. Items are `Err` where data does not verify.
    pub fn iter(&self, range: impl RangeBounds<u64>) -> Iter<'_> {
        Iter(Reader::new(self, range))
    }

    /// A consumer's read: the records from `offset` to the end of the log,
    /// in offset order (offsets removed by key compaction are skipped).
    /// Unlike [`iter`](Self::iter), which clamps its range to the log, an
    /// `offset` below the first offset is [`Error::Truncated`] (retention or
    /// a prefix truncation deleted what the consumer had not read yet) and
    /// one past the next offset is [`Error::OffsetOutOfRange`]; `offset ==
    /// next_offset()` is an empty iterator (the consumer is caught up).
    ///
    /// A `Log` has one owner, so nothing is appended while the iterator
    /// borrows it: to follow a log that others append to, share it
    /// ([`SharedLog`](crate::SharedLog)) and use
    /// [`SharedLog::tail`](crate::SharedLog::tail) (async) or
    /// [`Tail::blocking`](crate::group::Tail::blocking) (a thread).
    pub fn iter_from(&self, offset: u64) -> Result<Iter<'_>> {
        if offset < self.first_offset {
            return Err(Error::Truncated { offset, first: self.first_offset });
        }
        if offset > self.next_offset {
            return Err(Error::OffsetOutOfRange { offset, first: self.first_offset, next: self.next_offset });
        }
        Ok(self.iter(offset..))
    }

    /// Like [`iter`](Self::iter), but lends each record instead of copying
    /// it: the fastest way to scan.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let mut log = seglog_core::Log::open(dir.path(), Default::default())?;
    /// # log.append(seglog_core::Entry::new(b"abc"))?;
    /// let mut reader = log.reader(..);
    /// let mut bytes = 0;
    /// while let Some(rec) = reader.next() {
    ///     bytes += rec?.value.len();
    /// }
    /// assert_eq!(bytes, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reader(&self, range: impl RangeBounds<u64>) -> Reader<'_> {
        Reader::new(self, range)
    }

    /// The first offset whose record has a timestamp ≥ `timestamp_ms`, or
    /// `None` if there is none. Segments are skipped by their summary and the
    /// segment holding the answer is entered through its time index, so only
    /// one index interval of records is read.
    pub fn offset_for_timestamp(&self, timestamp_ms: u64) -> Result<Option<u64>> {
        let candidates = self.segments.values().filter(|s| {
            s.tail.n_records > 0 && s.tail.max_ts >= timestamp_ms && s.tail.next_offset > self.first_offset
        });
        for seg in candidates {
            let index = self.index_of(seg)?;
            let from = index.time_floor(timestamp_ms).map_or(seg.base, |o| o + 1).max(self.first_offset);
            for rec in self.iter(from..seg.tail.next_offset) {
                let rec = rec?;
                if rec.timestamp_ms >= timestamp_ms {
                    return Ok(Some(rec.offset));
                }
            }
            // The record with the segment's largest timestamp may lie below
            // the first offset (prefix truncation); otherwise it must exist.
            if seg.base >= self.first_offset {
                return Err(Error::corruption(
                    &seg.path,
                    seg.tail.end_pos,
                    format!("the segment summary says a record has timestamp {} but none was found", seg.tail.max_ts),
                ));
            }
        }
        Ok(None)
    }

    /// Reads every frame of every segment, sealed ones included, and checks
    /// checksums, offsets and footers against the segment summaries.
    ///
    /// A poisoned log is not scanned: its only problem is
    /// [`Error::Poisoned`]. Its view of its files is not the disk's (a
    /// truncation that failed half-way shows its offsets as decided and its
    /// segments as the failure left them; a failed fsync may have dropped
    /// pages), so a scan would report damage that is not there. Reopen the
    /// log — recovery finishes or undoes what failed — and verify that.
    pub fn verify(&self) -> VerifyReport {
        self.verify_with(|_| {})
    }

    /// [`verify`](Self::verify), calling `on_segment` before each segment
    /// (for progress reporting).
    pub fn verify_with(&self, mut on_segment: impl FnMut(&SegmentInfo)) -> VerifyReport {
        let mut report = VerifyReport::default();
        if let Some(cause) = self.poison_cause() {
            report.problems.push(Error::Poisoned { cause: cause.to_string() });
            return report;
        }
        for seg in self.segments.values() {
            on_segment(&seg.info());
            report.n_segments += 1;
            report.bytes += seg.info().bytes;
            match self.scan_segment(seg) {
                Ok(_) => report.n_records += seg.tail.n_records,
                Err(e) => report.problems.push(e),
            }
        }
        report
    }

    pub(crate) fn segment_for(&self, offset: u64) -> Result<&Segment> {
        let out_of_range = || Error::OffsetOutOfRange { offset, first: self.first_offset, next: self.next_offset };
        if offset < self.first_offset || offset >= self.next_offset {
            return Err(out_of_range());
        }
        let (_, seg) = self.segments.range(..=offset).next_back().ok_or_else(out_of_range)?;
        if offset >= seg.tail.next_offset {
            return Err(out_of_range());
        }
        Ok(seg)
    }
}

/// The result of [`Log::verify`].
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Segments checked.
    pub n_segments: u64,
    /// Records in segments that verified.
    pub n_records: u64,
    /// Bytes of all segments.
    pub bytes: u64,
    /// Every problem found, each naming the file and byte position.
    pub problems: Vec<Error>,
}

/// A cursor over a range of records that lends each record without copying
/// it; see [`Log::reader`]. The fastest way to scan.
#[derive(Debug)]
pub struct Reader<'a> {
    log: &'a Log,
    next: u64,
    end: u64,
    /// The segment being walked, the cursor in it, and the offset the
    /// cursor's next record must have.
    cursor: Option<Walk<'a>>,
    failed: bool,
    /// Records and key and value bytes returned, added to the log's
    /// statistics when the reader is dropped.
    read: crate::stats::ReadCount,
}

#[derive(Debug)]
struct Walk<'a> {
    seg: &'a Segment,
    src: SegSource<'a>,
    /// Enforces the offset rule (`FrameCursor::expecting`).
    frames: FrameCursor,
}

impl<'a> Reader<'a> {
    fn new(log: &'a Log, range: impl RangeBounds<u64>) -> Self {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e.saturating_add(1),
            Bound::Excluded(&e) => e,
            Bound::Unbounded => u64::MAX,
        };
        Reader {
            log,
            next: start.max(log.first_offset),
            end: end.min(log.next_offset),
            cursor: None,
            failed: false,
            read: log.stats.read_count(),
        }
    }

    /// The next record, borrowed from the reader's buffer until the next
    /// call; `None` at the end of the range or after an error.
    #[expect(clippy::should_implement_trait, reason = "a lending cursor cannot implement Iterator")]
    pub fn next(&mut self) -> Option<Result<RecordRef<'_>>> {
        match self.advance() {
            Ok(true) => {
                let rec = self.cursor.as_ref().and_then(|w| w.frames.last_record())?;
                self.read.add((rec.value.len() + rec.key.map_or(0, <[u8]>::len)) as u64);
                Some(Ok(rec))
            }
            Ok(false) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }

    /// Moves the cursor onto the record `self.next`; `Ok(false)` at the end.
    fn advance(&mut self) -> Result<bool> {
        if self.failed || self.next >= self.end {
            return Ok(false);
        }
        let log = self.log;
        loop {
            if self.cursor.is_none() {
                let seg = log.segment_for(self.next)?;
                // From the segment's first record the index has nothing to
                // skip (its first entry is past the first record): a scan
                // from the start, the usual path of a consumer crossing
                // into the next segment, neither loads nor rebuilds it.
                let (expect, pos) = if self.next <= seg.base {
                    (seg.base, HEADER_LEN)
                } else {
                    log.index_of(seg)?.floor(self.next).unwrap_or((seg.base, HEADER_LEN))
                };
                self.cursor = Some(Walk {
                    seg,
                    src: log.source(seg),
                    frames: FrameCursor::growing(pos, seg.tail.end_pos, 16 << 10, SCAN_CHUNK, &log.meta)
                        .expecting(expect, seg.sparse),
                });
            }
            let Some(w) = self.cursor.as_mut() else {
                return Ok(false);
            };
            match w.frames.next_record(&w.src) {
                Ok(Some(offset)) => {
                    // In a compacted segment the records skip the offsets
                    // compaction dropped: the next one at or after
                    // `self.next` is the one to return.
                    if offset >= self.next {
                        if offset >= self.end {
                            self.next = self.end;
                            return Ok(false);
                        }
                        self.next = offset + 1;
                        return Ok(true);
                    }
                }
                Ok(None) if w.seg.sparse => {
                    // The rest of the segment's range was compacted away.
                    self.next = self.next.max(w.seg.tail.next_offset);
                    self.cursor = None;
                    if self.next >= self.end {
                        return Ok(false);
                    }
                }
                Ok(None) => {
                    if self.next < w.seg.tail.next_offset {
                        return Err(Error::corruption(
                            &w.seg.path,
                            w.seg.tail.end_pos,
                            format!("segment ends before offset {}, which its summary says it holds", self.next),
                        ));
                    }
                    self.cursor = None;
                }
                Err(stop) => return Err(log.stop_error(w.seg, stop)),
            }
        }
    }
}

/// Iterator over a range of records as owned [`Record`]s; see [`Log::iter`].
#[derive(Debug)]
pub struct Iter<'a>(Reader<'a>);

impl Iterator for Iter<'_> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|r| r.map(|r| Record::from_ref(&r)))
    }
}
