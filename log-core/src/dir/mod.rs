//! The log directory's files, below the write, truncation and compaction
//! paths: creating a segment (header, fsync, rename, directory fsync),
//! its index files, `log.meta`, replacing a file crash-atomically, and
//! removing segments. The exceptions: compacted files and the compaction
//! swap (`compact/`, finished at open by `recovery/compaction.rs`), and the
//! leftovers an open removes before the log exists (`recovery/mod.rs`).

pub(crate) mod compacted;
pub(crate) mod cut;
pub(crate) mod failure;
pub(crate) mod index;
pub(crate) mod indexes;
pub(crate) mod scan;
pub(crate) mod segment;

use std::io;
use std::sync::{Arc, OnceLock};

use tracing::{debug, warn};

use crate::error::Result;
use crate::format::{
    HEADER_LEN, IndexKind, META_FILE_NAME, Meta, SegmentHeader, SegmentKind, encode_index, index_file_name,
    segment_file_name,
};
use crate::fs::{OpenMode, write_all_at};
use crate::index::SparseIndex;
use crate::log::{Active, Log};
use crate::segment::{Segment, Tail};

impl Log {
    /// Writes a segment's two index files (temporary, rename; no fsync: an
    /// index file is CRC-checked and must describe the segment's exact
    /// length, so one that a crash left empty, torn or stale is rebuilt
    /// from its segment, and nothing is lost). Failures are logged, not
    /// returned: indexes are derived data, rebuilt when missing.
    pub(crate) fn write_index_files(&self, seg: &Segment, end_pos: u64) {
        let Some(index) = seg.index.get() else { return };
        for (kind, file) in index.to_files(seg.base, end_pos) {
            let name = index_file_name(kind, seg.base);
            let tmp = self.path_of(&format!("{name}.tmp"));
            let bytes = encode_index(kind, &file);
            let res = (|| -> io::Result<()> {
                if self.fs.exists(&tmp)? {
                    self.fs.remove_file(&tmp)?;
                }
                let f = self.fs.open(&tmp, OpenMode::CreateNew)?;
                write_all_at(&*f, &bytes, 0)?;
                self.fs.rename(&tmp, &self.path_of(&name))
            })();
            if let Err(e) = res {
                warn!(file = %name, error = %e, "could not write index file; it will be rebuilt when needed");
                let _ = self.fs.remove_file(&tmp);
            } else {
                seg.index_dirty.store(false, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Creates a new, empty active segment with base `base`: header written
    /// to a temporary file, fsynced, renamed into place, directory fsynced.
    pub(crate) fn create_segment(&mut self, base: u64, now_ms: u64) -> Result<()> {
        let (path, file) = self.create_segment_file(base, now_ms)?;
        self.install_segment(base, path, file, now_ms);
        Ok(())
    }

    /// Writes `log.meta` if the directory has none: a new log's, once its
    /// first segment exists and before its first record (every append
    /// calls this), or a log an older build wrote (at open). From then on a
    /// lost `log.meta` is detected (a segment of version 3 holds
    /// records), and so is a lost segment with none left (`log.meta` without
    /// a segment). On a full disk an append fails (`DiskFull`: nothing was
    /// appended); `lenient` (the open) only postpones it.
    pub(crate) fn ensure_meta_on_disk(&mut self, lenient: bool) -> Result<()> {
        if self.meta_on_disk || self.read_only {
            return Ok(());
        }
        match self.write_meta(self.settled_meta(self.first_offset)) {
            Err(e) if lenient && e.is_disk_full() => {
                warn!(dir = %self.dir.display(), "disk full: `log.meta` is written before the first append");
                Ok(())
            }
            other => other,
        }
    }

    /// The durable half of [`create_segment`](Self::create_segment): the
    /// file exists, with its header, and so does its directory entry.
    pub(crate) fn create_segment_file(
        &mut self,
        base: u64,
        now_ms: u64,
    ) -> Result<(std::path::PathBuf, Arc<dyn crate::fs::FileHandle>)> {
        let name = segment_file_name(base);
        let path = self.path_of(&name);
        let tmp = self.path_of(&format!("{name}.tmp"));
        if self.segments.contains_key(&base) {
            return Err(self.invariant("a segment with this base offset already exists"));
        }
        let header = SegmentHeader::new(base, now_ms, SegmentKind::Plain);
        let created = (|| -> io::Result<Arc<dyn crate::fs::FileHandle>> {
            let f = self.fresh_temporary(&tmp)?;
            write_all_at(&*f, &header.encode(), 0)?;
            Ok(f)
        })();
        let file = match created {
            Ok(f) => f,
            Err(e) => {
                let _ = self.fs.remove_file(&tmp);
                return Err(self.write_failed("creating segment", tmp, e));
            }
        };
        if let Err(e) = file.sync() {
            let _ = self.fs.remove_file(&tmp);
            return Err(self.sync_failed(tmp, e));
        }
        match self.install_temporary(&tmp, &path) {
            Ok(()) => {}
            Err((e, false)) => {
                let _ = self.fs.remove_file(&tmp);
                return Err(self.write_failed("renaming a new segment to", path, e));
            }
            Err((e, true)) => {
                let dir = self.dir.clone();
                return Err(self.sync_failed(dir, e));
            }
        }
        debug!(base, "created segment");
        Ok((path, file))
    }

    /// Makes a segment created by [`create_segment_file`](Self::create_segment_file)
    /// the active one.
    pub(crate) fn install_segment(
        &mut self,
        base: u64,
        path: std::path::PathBuf,
        file: Arc<dyn crate::fs::FileHandle>,
        now_ms: u64,
    ) {
        let index = OnceLock::new();
        let _ = index.set(SparseIndex::new(HEADER_LEN));
        self.segments.insert(
            base,
            Segment {
                base,
                path,
                file,
                created_ms: now_ms,
                tail: Tail::empty(base),
                sealed: false,
                sparse: false,
                index,
                index_dirty: Default::default(),
            },
        );
        self.active = Some(Active {
            buf: Vec::with_capacity(self.config.write_buffer_bytes as usize + 4096),
            flushed_pos: HEADER_LEN,
            batch_start_pos: HEADER_LEN,
            records_since_marker: 0,
        });
        self.durable_snap = Some(self.snapshot());
    }

    /// Writes `log.meta` crash-atomically (temporary, fsync, rename,
    /// directory fsync), naming the current last segment.
    pub(crate) fn write_meta(&mut self, meta: Meta) -> Result<()> {
        let last_segment = self.segments.keys().next_back().copied();
        self.store_meta(Meta { last_segment, ..meta }).map_err(|(e, _)| e)
    }

    /// [`write_meta`](Self::write_meta) with `meta` as given; on failure,
    /// also says whether the new file had been renamed into place (it may
    /// then be durable).
    pub(crate) fn store_meta(&mut self, meta: Meta) -> std::result::Result<(), (crate::Error, bool)> {
        match self.replace_file(META_FILE_NAME, &meta.encode()) {
            Ok(()) => {
                self.meta = meta;
                self.meta_on_disk = true;
                Ok(())
            }
            Err((e, renamed)) => {
                let path = self.path_of(META_FILE_NAME);
                Err((self.write_failed("writing the metadata file", path, e), renamed))
            }
        }
    }

    /// Replaces the file `name` in the log directory crash-atomically:
    /// `<name>.tmp` written, fsynced, renamed over it, directory fsynced.
    /// On failure, says whether the rename had happened (the new contents
    /// are then in place and may or may not be durable).
    pub(crate) fn replace_file(&self, name: &str, bytes: &[u8]) -> std::result::Result<(), (io::Error, bool)> {
        let path = self.path_of(name);
        let tmp = self.path_of(&format!("{name}.tmp"));
        let written = (|| -> io::Result<()> {
            let f = self.fresh_temporary(&tmp)?;
            write_all_at(&*f, bytes, 0)?;
            f.sync()
        })();
        written.map_err(|e| (e, false)).and_then(|()| self.install_temporary(&tmp, &path)).map_err(|(e, renamed)| {
            if !renamed {
                let _ = self.fs.remove_file(&tmp);
            }
            (e, renamed)
        })
    }

    /// The first step of installing a file crash-atomically: an empty
    /// temporary `tmp` (a stale one is removed first).
    pub(crate) fn fresh_temporary(&self, tmp: &std::path::Path) -> io::Result<Arc<dyn crate::fs::FileHandle>> {
        if self.fs.exists(tmp)? {
            self.fs.remove_file(tmp)?;
        }
        self.fs.open(tmp, OpenMode::CreateNew)
    }

    /// The last steps of installing a file crash-atomically, once the
    /// temporary `tmp` holds its contents and was fsynced: the rename over
    /// `to`, then the directory fsync. On failure, says whether the rename
    /// had happened (the new file is then in place and may or may not be
    /// durable); a temporary left behind is the caller's to remove. The one
    /// protocol behind `log.meta`, the compaction manifest, new segments
    /// and cut compacted segments (`docs/FORMAT.md`, "Crash protocols").
    pub(crate) fn install_temporary(
        &self,
        tmp: &std::path::Path,
        to: &std::path::Path,
    ) -> std::result::Result<(), (io::Error, bool)> {
        self.fs.rename(tmp, to).map_err(|e| (e, false))?;
        self.fs.sync_dir(&self.dir).map_err(|e| (e, true))
    }

    /// Removes segments whose records all lie below `first_offset` (never
    /// the last one), oldest first, then fsyncs the directory. A crash may
    /// bring some back; recovery hides and removes them again.
    pub(crate) fn remove_hidden_segments(&mut self) -> Result<()> {
        let first = self.first_offset;
        let n = self.segments.len();
        let hidden: Vec<u64> = self
            .segments
            .values()
            .take(n.saturating_sub(1))
            .take_while(|s| s.tail.next_offset <= first)
            .map(|s| s.base)
            .collect();
        if hidden.is_empty() {
            return Ok(());
        }
        for base in &hidden {
            self.segments.remove(base);
            if !self.read_only {
                self.remove_segment_files(*base)?;
            }
        }
        if !self.read_only
            && let Err(e) = self.fs.sync_dir(&self.dir)
        {
            let dir = self.dir.clone();
            return Err(self.sync_failed(dir, e));
        }
        Ok(())
    }

    /// Removes segment `base`'s two index files (missing ones are fine);
    /// on failure, the file that could not be removed.
    pub(crate) fn remove_index_files(&self, base: u64) -> std::result::Result<(), (std::path::PathBuf, io::Error)> {
        for kind in [IndexKind::Offset, IndexKind::Time] {
            let p = self.path_of(&index_file_name(kind, base));
            match self.fs.remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err((p, e)),
            }
        }
        Ok(())
    }

    pub(crate) fn remove_segment_files(&mut self, base: u64) -> Result<()> {
        let names =
            [segment_file_name(base), index_file_name(IndexKind::Offset, base), index_file_name(IndexKind::Time, base)];
        for name in names {
            let path = self.path_of(&name);
            match self.fs.remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.write_failed("removing", path, e)),
            }
        }
        Ok(())
    }
}
