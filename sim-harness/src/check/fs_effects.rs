//! Filesystem-effects checker: what the log does to the disk beyond its
//! records.
//!
//! Verifies: a second writer is refused with `Locked` and changes no byte
//! and no directory entry (disk and cache); a lost index or temporary file
//! loses nothing; a media fault on durable data switches the model to
//! detection (corruption may be reported, never wrong bytes returned);
//! with every file gone the directory is a new log.
//!
//! Does not verify: read-only opens beside the writer (only that they are
//! not refused, through `second_writer_refused`'s caller).

use std::path::Path;

use log_core::{Error, Log, Options};
use sim_fs::{FaultKind, Hit, SimFs};

use crate::marks::Mark;
use crate::node::fs_listing;
use crate::run::LOG_DIR;
use crate::trace::Event;
use crate::world::World;

impl World {
    /// Takes in the faults sim-fs injected since the last look.
    pub(crate) fn absorb_faults(&mut self) {
        for f in self.rec.take_faults(&self.fs) {
            // A lost index or temporary file is derived data or a leftover:
            // recovery must cope silently, losing nothing.
            if f.kind == FaultKind::FileLost && derived_or_temporary(&f.path) {
                self.mark(Mark::LostIndexFileRebuilt);
                continue;
            }
            if f.hit == Hit::Durable {
                self.model.detect_mode = true;
                self.mark(Mark::MediaFaultOnDurableData);
                if f.kind == FaultKind::FileLost {
                    self.mark(Mark::DurableFileLost);
                    // The documented limit (docs/FORMAT.md, "Lost files"):
                    // with every file the log owns gone, the directory is a
                    // new log. Nothing is left to check.
                    let left = fs_listing(&self.fs);
                    if !left.iter().any(|n| n.ends_with(".log") || n == log_core::inspect::META_FILE_NAME) {
                        self.mark(Mark::EveryFileLost);
                        self.note(
                            || "every file of the log is gone: a new log from here on".to_string(),
                            Event::EveryFileGone,
                            &[],
                        );
                        self.ended = true;
                    }
                }
                // The misdirected write never reached its place: the batch
                // it belonged to left no evidence on disk, so the batch
                // before it is the last one as far as the disk can tell
                // (the documented undetectable window moves back by one).
                if matches!(f.kind, FaultKind::Misdirected { .. }) {
                    self.model.widen_window();
                }
            }
        }
    }

    /// One writer per directory: while the log is open, a second read-write
    /// open is refused at once with `Locked` and changes nothing (neither
    /// the disk nor the cache), and a read-only open beside it works. Takes
    /// no randomness, so it leaves every seed's trajectory as it was.
    pub(crate) fn check_second_writer(&mut self) {
        match second_writer_refused(&self.fs, self.options()) {
            Ok(()) => self.mark(Mark::SecondWriterRefused),
            Err(m) => self.fail(m),
        }
    }
}

/// A second read-write open while a writer holds the log: refused at once
/// with `Locked`, and the filesystem (disk and cache) unchanged.
pub(crate) fn second_writer_refused(fs: &SimFs, options: Options) -> Result<(), String> {
    let before = fs.state_hash();
    match Log::open_with(Path::new(LOG_DIR), options) {
        Err(Error::Locked { .. }) => {}
        Ok(_) => return Err("a second writer opened the log while the first one had it open".into()),
        Err(e) => return Err(format!("a second writer got another error than Locked: {e}")),
    }
    if fs.state_hash() != before {
        return Err("a refused second writer changed the filesystem".into());
    }
    Ok(())
}

/// Whether a lost file only held derived data (an index), a leftover (a
/// temporary) or the resync marker (which only this boot's page cache
/// needs, and a crash is a reboot): its loss must go unnoticed and lose
/// nothing.
fn derived_or_temporary(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name.ends_with(".index")
        || name.ends_with(".timeindex")
        || name.ends_with(".tmp")
        || name == log_core::inspect::RESYNC_FILE_NAME
}
