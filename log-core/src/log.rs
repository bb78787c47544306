//! The [`Log`] handle: what a user holds, and the state shared by the writer,
//! reader and recovery modules.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::clock::{Clock, CoarseClock};
use crate::config::Config;
use crate::error::Result;
use crate::format::{RecordFlags, RecordRef};
use crate::fs::StdFs;
use crate::fs::{FileHandle, FileSystem, read_full_at};
use crate::segment::{ByteSource, Segment, SegmentInfo};

/// A record to append. Build one with [`Entry::new`] and the `with_*`
/// methods.
///
/// ```
/// use seglog_core::Entry;
/// let e = Entry::new(b"v").with_key(b"k").with_timestamp(1_700_000_000_000);
/// assert_eq!(e.key, Some(&b"k"[..]));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Optional key (used by compaction; `Some(b"")` differs from `None`).
    pub key: Option<&'a [u8]>,
    /// The value.
    pub value: &'a [u8],
    /// Timestamp in ms since the epoch; `None` takes the log's clock.
    pub timestamp_ms: Option<u64>,
    /// Its flags ([`RecordFlags`]); [`tombstone`](Self::tombstone) sets one.
    pub flags: RecordFlags,
}

impl<'a> Entry<'a> {
    /// An unkeyed record with this value, stamped by the log's clock.
    pub fn new(value: &'a [u8]) -> Self {
        Self { key: None, value, timestamp_ms: None, flags: RecordFlags::NONE }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: &'a [u8]) -> Self {
        self.key = Some(key);
        self
    }

    /// Sets an explicit timestamp.
    pub fn with_timestamp(mut self, timestamp_ms: u64) -> Self {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }

    /// Marks the record as a tombstone.
    pub fn tombstone(mut self) -> Self {
        self.flags = self.flags.with(RecordFlags::TOMBSTONE);
        self
    }

    pub(crate) fn payload_len(&self) -> u64 {
        (self.key.map_or(0, <[u8]>::len) + self.value.len()) as u64
    }
}

/// A record read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its offset.
    pub offset: u64,
    /// Its timestamp in ms since the epoch.
    pub timestamp_ms: u64,
    /// Its key, if it has one.
    pub key: Option<Vec<u8>>,
    /// Its value.
    pub value: Vec<u8>,
    /// Its flags (`flags.tombstone()`, ...).
    pub flags: RecordFlags,
}

impl Record {
    /// An owned copy of a record as stored.
    pub(crate) fn from_ref(r: &RecordRef<'_>) -> Self {
        Record {
            offset: r.offset,
            timestamp_ms: r.timestamp_ms,
            key: r.key.map(<[u8]>::to_vec),
            value: r.value.to_vec(),
            flags: r.flags,
        }
    }
}

/// What recovery found and did when the log was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The directory held no log; an empty one was created.
    pub created: bool,
    /// The last segment ended with a clean-close trailer or a footer, so it
    /// was trusted without a scan.
    pub clean: bool,
    /// Sealed segments trusted by their footer.
    pub n_segments_trusted: u64,
    /// Bytes of the active segment scanned (0 after a clean close).
    pub bytes_scanned: u64,
    /// Where a torn tail was cut off (file, byte position), if any.
    pub torn_tail: Option<(PathBuf, u64)>,
    /// Bytes of torn tail dropped.
    pub torn_bytes: u64,
    /// Offsets the cut removed that may have been acknowledged as durable.
    /// The cut bytes hold the damaged batch's own commit marker, intact:
    /// either the batch was synced (a `sync` or `flush` returned for it)
    /// and damage struck it afterwards, or the crash tore its sync after
    /// the marker's sector landed. The two look the same (docs/FORMAT.md,
    /// "What stays undetectable"). A single log can do nothing about it; a
    /// replica must not vote until it holds these offsets again (seglog-raft's
    /// vote fence does that).
    pub possibly_acknowledged: Option<std::ops::Range<u64>>,
    /// Leftover temporary files removed.
    pub temporaries_removed: Vec<String>,
    /// Index files of segments that no longer exist, removed.
    pub orphans_removed: Vec<String>,
    /// Files in the directory that the log does not own (left alone).
    pub unknown_files: Vec<String>,
    /// Whether the active segment's index was rebuilt by a scan.
    pub active_index_rebuilt: bool,
    /// A suffix truncation interrupted by a crash, finished at open.
    pub finished_truncation: Option<u64>,
    /// A restart ([`Log::restart_at`]) interrupted by a crash (or whose
    /// intent a full disk kept in `log.meta`), finished at open: the offset
    /// the log restarted at.
    pub finished_restart: Option<u64>,
    /// A compaction swap interrupted by a crash was finished at open.
    pub finished_compaction: bool,
    /// A roll interrupted by a crash (its new segment durable, the old one
    /// not yet sealed), finished at open: the base of the segment sealed.
    pub finished_roll: Option<u64>,
    /// Files rewritten from what the open read because an fsync of the log
    /// had failed in an earlier process (`log.resync`): until then, this
    /// boot's page cache could differ from the disk.
    pub resynced: Vec<String>,
}

/// How to open a log. `Options::default()` is the real filesystem, the
/// coarse system clock ([`CoarseClock`]), the default [`Config`], read-write.
#[derive(Debug, Clone)]
pub struct Options {
    /// The filesystem to use.
    pub fs: Arc<dyn FileSystem>,
    /// The clock for timestamps and age-based rolls.
    pub clock: Arc<dyn Clock>,
    /// The configuration.
    pub config: Config,
    /// Open without ever writing: no recovery writes, appends refused.
    pub read_only: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { fs: StdFs::shared(), clock: Arc::new(CoarseClock), config: Config::default(), read_only: false }
    }
}

/// State of the active (last, unsealed) segment's write path.
#[derive(Debug)]
pub(crate) struct Active {
    /// Encoded frames accepted but not yet written; they start at `flushed_pos`.
    pub buf: Vec<u8>,
    /// File length written so far.
    pub flushed_pos: u64,
    /// Where the frames since the last marker begin.
    pub batch_start_pos: u64,
    /// Records since the last marker.
    pub records_since_marker: u64,
}

/// A segmented, crash-safe, append-only log. One writer (`&mut self`), any
/// number of readers (`&self`).
///
/// ```
/// use seglog_core::{Config, Entry, Log};
/// let dir = tempfile::tempdir()?;
/// let mut log = Log::open(dir.path(), Config::default())?;
/// let a = log.append(Entry::new(b"hello"))?;
/// let b = log.append(Entry::new(b"world").with_key(b"greeting"))?;
/// log.sync()?; // both records are now durable
/// assert_eq!(log.read(a)?.value, b"hello");
/// assert_eq!(log.iter(..).count(), 2);
/// assert_eq!(log.durable_offset(), b + 1);
/// log.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Log {
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) dir: PathBuf,
    pub(crate) config: Config,
    pub(crate) read_only: bool,
    /// Every segment by base offset; the last one is active unless sealed.
    pub(crate) segments: BTreeMap<u64, Segment>,
    /// Present when the last segment is active (unsealed).
    pub(crate) active: Option<Active>,
    pub(crate) first_offset: u64,
    pub(crate) next_offset: u64,
    pub(crate) durable_next: u64,
    /// When the last sync completed (or the log was opened), by its clock:
    /// [`SyncPolicy::EveryMillis`](crate::SyncPolicy::EveryMillis) counts from it.
    pub(crate) last_sync_ms: u64,
    /// Why the log refuses writes, as its call sites put it (see
    /// [`poison_cause`](Self::poison_cause)).
    pub(crate) poisoned: Option<String>,
    /// The first failure its filesystem saw (`fs::CheckedFs`): set even
    /// where no call site poisons, so that no mutation follows a failure.
    pub(crate) fs_failure: crate::fs::Failure,
    /// The active segment's state at the last point everything was durable.
    pub(crate) durable_snap: Option<crate::dir::failure::Snapshot>,
    pub(crate) closed: bool,
    pub(crate) report: RecoveryReport,
    /// The contents of `log.meta`.
    pub(crate) meta: crate::format::Meta,
    /// Whether `log.meta` exists on disk (a log whose directory has a
    /// segment always gets one, written after the segment).
    pub(crate) meta_on_disk: bool,
    /// Sealed segments whose index had to be rebuilt by a scan since open.
    pub(crate) indexes_rebuilt: std::sync::atomic::AtomicU64,
    /// What this handle did ([`stats`](Self::stats)); shared with a
    /// `SharedLog` wrapping it.
    pub(crate) stats: Arc<crate::stats::StatsCell>,
    /// The directory's lock (read-write opens): released when the log is
    /// dropped, after `Drop` flushed the last accepted bytes.
    pub(crate) _lock: Option<Box<dyn crate::fs::FileLock>>,
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.dir)
            .field("first_offset", &self.first_offset)
            .field("next_offset", &self.next_offset)
            .field("durable_offset", &self.durable_next)
            .field("n_segments", &self.segments.len())
            .field("read_only", &self.read_only)
            .field("poisoned", &self.poison_cause())
            .finish_non_exhaustive()
    }
}

impl Log {
    /// Opens (creating if missing) the log in `dir` on the real filesystem
    /// with the system clock, recovering from any earlier crash.
    pub fn open(dir: impl AsRef<Path>, config: Config) -> Result<Self> {
        Self::open_with(dir, Options { config, ..Options::default() })
    }

    /// Opens the log in `dir` without writing anything, ever: recovery is
    /// done in memory only and appends are refused.
    pub fn open_read_only(dir: impl AsRef<Path>, config: Config) -> Result<Self> {
        Self::open_with(dir, Options { config, read_only: true, ..Options::default() })
    }

    /// Opens the log in `dir` with explicit options (filesystem, clock,
    /// configuration, mode).
    pub fn open_with(dir: impl AsRef<Path>, options: Options) -> Result<Self> {
        crate::recovery::open(dir.as_ref(), options)
    }

    /// The first offset in the log.
    pub fn first_offset(&self) -> u64 {
        self.first_offset
    }

    /// The offset the next appended record will get (one past the last).
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// One past the last durable offset: every record below it survives any
    /// crash the fault model allows. After open, everything recovered is
    /// durable.
    pub fn durable_offset(&self) -> u64 {
        self.durable_next
    }

    /// Whether an earlier write or sync failed; a poisoned log refuses writes
    /// until reopened.
    pub fn is_poisoned(&self) -> bool {
        self.poison_cause().is_some()
    }

    /// Why the log refuses writes: the call site's account of a failure,
    /// else the first failure its filesystem saw.
    pub(crate) fn poison_cause(&self) -> Option<&str> {
        let cause = self.poisoned.as_deref().or_else(|| self.fs_failure.get().map(String::as_str));
        if cause.is_some() {
            // A failure the filesystem layer saw poisons without a call site.
            self.stats.poisoned();
        }
        cause
    }

    /// What this handle did since it was opened: records and bytes
    /// appended and read, fsyncs and their latency, rolls, truncations,
    /// retention, compaction, what recovery at open cut, and whether the log
    /// is poisoned. Always on: relaxed atomic counters, a few per
    /// operation (readers add theirs once, when they are dropped).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let mut log = seglog_core::Log::open(dir.path(), Default::default())?;
    /// log.append(seglog_core::Entry::new(b"abc"))?;
    /// log.sync()?;
    /// let stats = log.stats();
    /// assert_eq!((stats.records_appended, stats.bytes_appended, stats.syncs), (1, 3, 1));
    /// assert_eq!(stats.fsync_latency.count, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> crate::LogStats {
        let _ = self.poison_cause();
        self.stats.snapshot()
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How many segment indexes were rebuilt from their segment since the
    /// log was opened (missing, damaged or stale index files), including the
    /// active segment's at open.
    pub fn indexes_rebuilt(&self) -> u64 {
        self.indexes_rebuilt.load(std::sync::atomic::Ordering::Relaxed) + u64::from(self.report.active_index_rebuilt)
    }

    /// What recovery found when this log was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// Metadata of every segment, oldest first: contiguous, only the last
    /// one active (unsealed), from the segment holding
    /// [`first_offset`](Self::first_offset) to
    /// [`next_offset`](Self::next_offset). A poisoned log whose truncation
    /// or restart failed half-way shows its offsets as decided (recovery
    /// finishes the cut) and its segments as the failure left them, so the
    /// two may disagree until it is reopened.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        self.segments.values().map(Segment::info).collect()
    }

    /// Reads bytes of `seg`, from its file or (active segment) the buffer.
    pub(crate) fn source<'a>(&'a self, seg: &'a Segment) -> SegSource<'a> {
        match (&self.active, seg.sealed) {
            (Some(a), false) => SegSource { file: &*seg.file, flushed: a.flushed_pos, buf: &a.buf },
            _ => SegSource { file: &*seg.file, flushed: u64::MAX, buf: &[] },
        }
    }

    pub(crate) fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Bytes of a segment: the file below `flushed`, the write buffer above.
#[derive(Debug)]
pub(crate) struct SegSource<'a> {
    file: &'a dyn FileHandle,
    flushed: u64,
    buf: &'a [u8],
}

impl ByteSource for SegSource<'_> {
    fn read_at(&self, out: &mut [u8], pos: u64) -> std::io::Result<usize> {
        let mut done = 0usize;
        if pos < self.flushed {
            let from_file = (self.flushed - pos).min(out.len() as u64) as usize;
            let n = read_full_at(self.file, out.get_mut(..from_file).unwrap_or_default(), pos)?;
            if n < from_file {
                return Ok(n);
            }
            done = n;
        }
        let at = pos + done as u64;
        if at >= self.flushed {
            let skip = (at - self.flushed) as usize;
            let src = self.buf.get(skip..).unwrap_or_default();
            let dst = out.get_mut(done..).unwrap_or_default();
            let n = src.len().min(dst.len());
            dst.get_mut(..n).unwrap_or_default().copy_from_slice(src.get(..n).unwrap_or_default());
            done += n;
        }
        Ok(done)
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        // Like a `BufWriter`: hand accepted bytes to the OS so they survive a
        // process exit (not a power failure: only `sync` promises that).
        if !self.closed && !self.read_only && self.poison_cause().is_none() {
            let _ = self.flush_buffer();
        }
    }
}
