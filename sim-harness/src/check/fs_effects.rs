//! Filesystem-effects checker: what the log does to the disk beyond its
//! records.
//!
//! Verifies: a second writer is refused with `Locked` and changes no byte
//! and no directory entry (disk and cache): it makes no mutating call to
//! the filesystem at all (`SimFs::mutating_ops`); a lost index or temporary file
//! loses nothing; a media fault on durable data switches the model to
//! detection (corruption may be reported, never wrong bytes returned);
//! with every file gone the directory is a new log (the model starts over).
//!
//! Read-only opens: after every recovery, beside the writer, and after
//! every crash, before recovery, a read-only open must change no byte and
//! no directory entry (disk and cache) — it makes no mutating call —, hold a length the model allows
//! (between what was durable and what was accepted) and yield the model's
//! records, byte for byte, from its first offset.
//!
//! Between two ops of a phase (1 in 100 ops, a stream of its own), a
//! read-only open beside the running writer: the writer's first offset, at
//! most its length (it may still buffer its last records), at least what
//! was durable, every record byte for byte, no mutating call.
//!
//! Does not verify: a read-only open while an op of the writer is half
//! done (ops run whole between two looks).

use std::path::Path;

use seglog_core::{Error, Log, Options};
use sim_fs::{FaultKind, Hit, SimFs};

use crate::marks::Mark;
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
                    let left = seglog_core::FileSystem::read_dir(&self.fs, &self.dir);
                    if left.is_ok_and(|l| {
                        !l.iter().any(|n| n.ends_with(".log") || n == seglog_core::inspect::META_FILE_NAME)
                    }) {
                        self.mark(Mark::EveryFileLost);
                        self.note(
                            || "every file of the log is gone: a new log from here on".to_string(),
                            Event::EveryFileGone,
                            &[],
                        );
                        // What the open finds is an empty directory: the
                        // model starts over with it (nothing damaged is
                        // left, so detection is no longer expected).
                        self.model = crate::model::Model::default();
                        continue;
                    }
                    // The other documented limit: `log.meta` lost while no
                    // segment holds a byte past its header (a new log's state
                    // before its metadata is written, legal after a full
                    // disk) may open as a new log at offset 0 — or be
                    // refused, where the segments prove the loss (a first
                    // segment past offset 0). No durable record can be lost
                    // that way (it would lie past a header).
                    if f.path.file_name().is_some_and(|n| n == seglog_core::inspect::META_FILE_NAME)
                        && self.no_segment_holds_a_record()
                    {
                        self.note(
                            || "log.meta is gone and no segment holds a record: a new log from here on".to_string(),
                            Event::EveryFileGone,
                            &[],
                        );
                        self.model = crate::model::Model { detect_mode: true, ..crate::model::Model::default() };
                        continue;
                    }
                }
                // The misdirected write never reached its place: the batch
                // it belonged to left no evidence on disk, so the batch
                // before it is the last one as far as the disk can tell
                // (the documented undetectable window moves back by one).
                self.model.media_fault();
                if matches!(f.kind, FaultKind::Misdirected { .. } | FaultKind::LostWrite) {
                    self.model.marker_may_be_gone = true;
                }
                if let FaultKind::Misdirected { to } = f.kind {
                    self.model.widen_window();
                    // Where the data landed it destroyed what was there: if
                    // that was an earlier batch of the same segment, no
                    // evidence after it is left either (seed 1166949: a
                    // sync's sector landed on records 28 and 29 of an
                    // earlier batch while its own place kept stale bytes).
                    if let Some(o) = first_record_reaching(&self.fs, &f.path, to) {
                        self.model.widen_window_to(o);
                    }
                }
            }
        }
    }

    /// Whether every segment file on the disk (durable contents) is no
    /// longer than its header.
    fn no_segment_holds_a_record(&self) -> bool {
        let dir = self.dir.clone();
        let Ok(names) = seglog_core::FileSystem::read_dir(&self.fs, &dir) else { return false };
        names.iter().filter(|n| n.ends_with(".log")).all(|n| {
            self.fs.durable_contents(&dir.join(n)).is_some_and(|c| c.len() as u64 <= seglog_core::inspect::HEADER_LEN)
        })
    }

    /// A read-only open (`what` says when, `beside` whether a writer has
    /// the log open): changes nothing on the disk, and shows a length and
    /// records the model allows. Takes no randomness from the world.
    pub(crate) fn check_read_only_open(&mut self, what: &str, beside: Beside) {
        if self.stopped() {
            return;
        }
        let before = self.fs.mutating_ops();
        let res = Log::open_with(&self.dir, Options { read_only: true, ..self.options() });
        let seen = self.rec.faults_seen();
        self.absorb_faults();
        let ro = match res {
            Ok(ro) => ro,
            Err(e @ (Error::Corruption { .. } | Error::Io { .. })) if self.model.detect_mode => {
                self.mark_detected(&e, Mark::CorruptionDetectedAtOpen);
                return;
            }
            // An empty directory (every file lost, or nothing written yet).
            Err(Error::NoLog { .. } | Error::NotALogDirectory { .. }) if self.model.accepted.is_empty() => return,
            Err(e) => {
                self.fail(format!("{what}: a read-only open failed: {e}"));
                return;
            }
        };
        let (first, n) = (ro.first_offset(), ro.next_offset());
        // A restart whose intent became durable before the crash shows an
        // empty log at its offset (recovery takes it in).
        if self.model.maybe_restart.is_some_and(|at| at == first && at == n) {
            return;
        }
        match beside {
            Beside::Recovered { len } if n != len => {
                self.fail(format!("{what}: a read-only open shows {n} records, the writer {len}"));
                return;
            }
            Beside::Running { first: wfirst, len } if n > len || first != wfirst => {
                self.fail(format!(
                    "{what}: a read-only open shows records {first}..{n}, the writer {wfirst}..{len} (of which it \
                     may not have written the last ones yet)"
                ));
                return;
            }
            _ => {}
        }
        if let Err(m) = self.model.check_recovered_len(n as usize) {
            self.fail(format!("{what}: a read-only open shows {n} records: {m}"));
            return;
        }
        let from = if let Beside::Recovered { .. } = beside { n.saturating_sub(16).max(first) } else { first };
        let (go_on, _) = self.check_lent(&format!("{what}: a read-only open"), &ro, from, n);
        drop(ro);
        if !go_on {
            return;
        }
        let tried = self.fs.mutating_ops() - before;
        if tried != 0 {
            self.fail(format!("{what}: a read-only open made mutating calls to the filesystem ({tried})"));
            return;
        }
        // A read may meet a media fault; a clean look is the mark.
        if self.fs.faults_since(seen).is_empty() {
            self.mark(Mark::ReadOnlyOpenChangedNothing);
            if let Beside::Running { .. } = beside {
                self.mark(Mark::ReadOnlyOpenBesideRunningWriter);
            }
        }
    }

    /// One writer per directory: while the log is open, a second read-write
    /// open is refused at once with `Locked` and changes nothing (neither
    /// the disk nor the cache), and a read-only open beside it works. Takes
    /// no randomness, so it leaves every seed's trajectory as it was.
    pub(crate) fn check_second_writer(&mut self) {
        match second_writer_refused(&self.fs, &self.dir, self.options()) {
            Ok(()) => self.mark(Mark::SecondWriterRefused),
            Err(m) => self.fail(m),
        }
    }
}

/// Who else has the log open during a read-only open.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Beside {
    /// Nobody: the machine crashed and nothing recovered yet. The read-only
    /// open shows a length between what was durable and what was accepted,
    /// and every record from its first.
    Nobody,
    /// A writer that just recovered to `len` records (and read every one):
    /// exactly that length, and its last 16 records.
    Recovered { len: u64 },
    /// A writer in the middle of a phase, holding `first..len`: the same
    /// first offset, at most that length (the writer may still buffer its
    /// last records), at least what was durable, every record.
    Running { first: u64, len: u64 },
}

/// A second read-write open while a writer holds the log: refused at once
/// with `Locked`, and the filesystem (disk and cache) unchanged.
pub(crate) fn second_writer_refused(fs: &SimFs, dir: &Path, options: Options) -> Result<(), String> {
    let before = fs.mutating_ops();
    match Log::open_with(dir, options) {
        Err(Error::Locked { .. }) => {}
        Ok(_) => return Err("a second writer opened the log while the first one had it open".into()),
        Err(e) => return Err(format!("a second writer got another error than Locked: {e}")),
    }
    let tried = fs.mutating_ops() - before;
    if tried != 0 {
        return Err(format!("a refused second writer made mutating calls to the filesystem ({tried})"));
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
        || name == seglog_core::inspect::RESYNC_FILE_NAME
        || name == seglog_core::inspect::RESYNC_SPARE_FILE_NAME
}

/// The offset of the first record of segment file `path` whose frame
/// reaches byte `pos` or beyond (its durable contents, decoded from the
/// header); `None` if `path` is not a segment file.
fn first_record_reaching(fs: &SimFs, path: &Path, pos: u64) -> Option<u64> {
    use seglog_core::inspect::{FileKind, Frame, HEADER_LEN, decode_frame, parse_file_name};
    let name = path.file_name()?.to_str()?;
    let Some(FileKind::Segment(base)) = parse_file_name(name) else { return None };
    let bytes = fs.durable_contents(path)?;
    let mut at = HEADER_LEN as usize;
    let mut next = base;
    while let Some(rest) = bytes.get(at..) {
        let Ok((frame, len)) = decode_frame(rest) else { break };
        if (at + len) as u64 > pos {
            break;
        }
        if let Frame::Record(r) = frame {
            next = r.offset + 1;
        }
        at += len;
    }
    Some(next)
}
