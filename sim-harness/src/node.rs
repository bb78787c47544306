//! The node's lifecycle, one for seeds and schedules: power failures
//! (killing the madsim node, or crashing the disk directly), clean
//! restarts, opens retried after injected faults as an operator would, and
//! recovery, whose result `check/durability.rs` and `check/content.rs`
//! judge.

use std::path::{Path, PathBuf};

use seglog_core::{Error, Log, Options};
use sim_fs::plugin::SimFsPlugin;
use sim_fs::{CrashPolicy, FaultConfig, FaultKind, SimFs};

use crate::check::fs_effects::Beside;
use crate::marks::Mark;
use crate::op::FaultStep;
use crate::record::{Recorder, fails_calls};
use crate::trace::Event;
use crate::world::World;

impl World {
    /// The machine loses power (under `policy`, else one the disk's plan
    /// draws) and boots again: on madsim the node is killed (the sim-fs
    /// plugin crashes its disk) and restarted; without madsim the disk
    /// crashes directly. The dead process's log handle is dropped after the
    /// crash, so its buffered bytes hit stale handles and are lost.
    pub(crate) fn power_cycle(&mut self, policy: Option<CrashPolicy>) -> Option<CrashPolicy> {
        match self.node.clone() {
            Some((handle, id)) => {
                power_cycle_node(&handle, id, || drop(self.log.take()));
                SimFsPlugin::current().crashes().last().map(|c| c.1)
            }
            None => {
                let policy = match policy {
                    Some(p) => {
                        self.fs.crash_with(p);
                        p
                    }
                    None => self.fs.crash(),
                };
                drop(self.log.take());
                Some(policy)
            }
        }
    }

    /// A crash and the recovery checked against the model; with `twice`
    /// the power fails again right after the first recovery; then a second
    /// open must find the same log.
    pub(crate) fn crash_op(&mut self, policy: Option<CrashPolicy>, twice: bool) {
        self.crash_and_recover(policy);
        if twice && !self.stopped() {
            self.mark(Mark::CrashDuringRecovery);
            self.crash_and_recover(policy);
        }
        if !self.stopped() {
            self.check_idempotent();
        }
    }

    pub(crate) fn crash_and_recover(&mut self, policy: Option<CrashPolicy>) {
        let files_before = fs_listing(&self.fs, &self.dir);
        let policy = self.power_cycle(policy);
        self.crashed();
        let files_after = fs_listing(&self.fs, &self.dir);
        self.note(
            || format!("CRASH ({policy:?}); files before {files_before:?} after {files_after:?}"),
            Event::Crash,
            &[files_after.len() as u64],
        );
        if files_before.iter().any(|f| !files_after.contains(f)) {
            self.mark(Mark::LostDirectoryEntry);
        }
        if self.node.is_some() {
            self.aimed_media_fault();
        }
        self.absorb_faults();
        self.check_read_only_open("after a crash, before recovery", Beside::Nobody);
        self.recover(true);
    }

    /// A clean shutdown (close) and a machine restart: a close that
    /// succeeded keeps everything accepted, and the open trusts the
    /// clean-close footers instead of scanning.
    pub(crate) fn clean_restart(&mut self) {
        let Some(log) = self.log.take() else { return };
        let next = log.next_offset();
        // A power cut drawn for this op strikes during the close.
        if let Some(k) = self.pending_cut.take() {
            self.fs.power_off_after(k);
        }
        let res = log.close();
        let struck = self.fs.is_powered_off();
        self.fs.power_on();
        self.note(|| format!("CLEAN CLOSE -> {res:?}"), Event::CleanClose, &[res.is_ok() as u64]);
        if struck {
            self.mark(Mark::PowerCutDuringClose);
            self.crashed();
        }
        match &res {
            Ok(()) if self.model.poisoned => self.fail("close succeeded on a poisoned log".into()),
            Ok(()) => self.model.synced(),
            Err(Error::Poisoned { .. }) if self.model.poisoned => {}
            Err(Error::Io { .. } | Error::DiskFull { .. }) => {}
            // The log is closed; records past the durable offset may be
            // lost (the model already allows that for every unsynced one).
            Err(Error::DiskFullAtClose { durable, .. }) => {
                if *durable as usize != self.model.durable {
                    let want = self.model.durable;
                    self.fail(format!("a close that hit a full disk reports {durable} durable, the model {want}"));
                }
            }
            Err(e) => self.fail(format!("close failed unexpectedly: {e}")),
        }
        let closed_clean = res.is_ok();
        self.absorb_faults();
        // The process exits and the machine restarts: the crash of its
        // disk must lose nothing after a successful close.
        let salvages = self.salvages;
        self.power_cycle(None);
        self.recover(true);
        // (After an operator's salvage the log is another one.)
        if closed_clean && !self.stopped() && !self.model.detect_mode && self.salvages == salvages {
            let n = self.log.as_ref().map_or(0, Log::next_offset);
            if n != next {
                self.fail(format!("a clean close kept {n} of {next} records"));
            } else if let Some(log) = self.log.as_ref()
                && log.recovery_report().clean
            {
                self.mark(Mark::CleanReopenTrustedFooter);
            }
        }
    }

    /// The power failed at a filesystem step of the op just run (a cut
    /// drawn for it): the disk crashed right there (sim-fs applied a crash
    /// policy at that step), so the machine boots again and recovers. The
    /// op's own error path has already told the model what the failed call
    /// may have left (each is the path of an I/O error).
    pub(crate) fn after_power_cut(&mut self, what: Mark) {
        let struck = self.fs.is_powered_off();
        self.fs.power_on();
        if !struck || self.stopped() {
            return;
        }
        self.mark(what);
        self.crashed();
        drop(self.log.take());
        self.note(|| "CRASH (power cut mid-op)".into(), Event::Crash, &[1]);
        self.absorb_faults();
        self.recover(true);
    }

    /// The process exits without a close (the log's `Drop` hands its
    /// buffer to the page cache) and starts again; the machine stays up,
    /// so unless a fault struck on the way out or during the recovery (an
    /// fsync error there makes the operator reboot, see `open_retrying`;
    /// or the power failed during it),
    /// or the log was poisoned (its `Drop` writes nothing), everything
    /// accepted must come back.
    pub(crate) fn process_restart(&mut self) {
        let Some(log) = self.log.take() else { return };
        let next = log.next_offset();
        let before = self.rec.faults_seen();
        let power_failures = self.power_failures;
        let poisoned = self.model.poisoned;
        let salvages = self.salvages;
        drop(log);
        self.note(|| "PROCESS RESTART (no close, no crash)".into(), Event::ProcessRestart, &[]);
        self.absorb_faults();
        self.recover(false);
        let quiet = self.fs.faults_since(before).is_empty()
            && self.power_failures == power_failures
            && !poisoned
            && self.salvages == salvages;
        if quiet && !self.stopped() && !self.model.detect_mode {
            let n = self.log.as_ref().map_or(0, Log::next_offset);
            if n != next {
                self.fail(format!("a process restart without a crash kept {n} of {next} records"));
            }
        }
    }

    /// A schedule's change of the fault plan (crash policies stay).
    pub(crate) fn set_fault_plan(&mut self, f: FaultStep) {
        let base = FaultConfig {
            crash_policies: self.fs.config().crash_policies,
            canary: self.fs.config().canary,
            ..FaultConfig::default()
        };
        let c = match f {
            FaultStep::Off => base,
            FaultStep::SyncEio => FaultConfig { p_sync_eio: 0.2, ..base },
            FaultStep::WriteEio => FaultConfig { p_write_eio: 0.2, ..base },
            FaultStep::DirSyncEio => FaultConfig { p_dir_sync_eio: 0.2, ..base },
            FaultStep::ShortIo => FaultConfig { p_short_io: 0.5, ..base },
            FaultStep::DiskFull { room_kib } => {
                FaultConfig { capacity_bytes: Some(self.fs.used_bytes() + u64::from(room_kib) * 1024), ..base }
            }
            FaultStep::Misdirected => FaultConfig { p_misdirected_write: 0.1, ..base },
            FaultStep::BitflipAtCrash => FaultConfig { p_bitflip_at_crash: 1.0, ..base },
            FaultStep::BadSectorAtCrash => FaultConfig { p_bad_sector_at_crash: 1.0, ..base },
            FaultStep::FileLostAtCrash => FaultConfig { p_file_lost_at_crash: 0.5, ..base },
        };
        self.note(|| format!("fault plan: {f:?}"), Event::FaultPlan, &[]);
        self.fs.set_config(c);
    }

    /// Opens the log read-write, retrying injected faults ([`open_retrying`]).
    pub(crate) fn open_retrying(&mut self) -> Result<Log, Error> {
        open_retrying(self)
    }

    /// Opens the log after a (re)start and checks what it recovered.
    pub(crate) fn recover(&mut self, after_crash: bool) {
        if self.stopped() {
            return;
        }
        // A power cut drawn for this op strikes during the recovery.
        if let Some(k) = self.pending_cut.take() {
            self.fs.power_off_after(k);
        }
        let res = self.open_retrying();
        // A countdown the open did not reach is cancelled.
        self.fs.power_on();
        self.absorb_faults();
        if self.stopped() {
            return;
        }
        let log = match res {
            Ok(log) => log,
            Err(e) => {
                self.note(|| format!("open -> {e}"), Event::Open, &[0]);
                match &e {
                    Error::Corruption { .. } | Error::Io { .. } if self.model.detect_mode => {
                        self.mark_detected(&e, Mark::CorruptionDetectedAtOpen);
                        if self.params.salvage {
                            self.operator_salvage();
                        } else {
                            self.ended = true;
                        }
                    }
                    _ => self.fail(format!("the log refused to open where only recoverable faults were injected: {e}")),
                }
                return;
            }
        };
        let n = log.next_offset() as usize;
        let r = log.recovery_report().clone();
        let (durable, accepted) = (self.model.durable, self.model.accepted.len());
        self.note(
            || format!("open -> recovered {n} records (durable {durable}, accepted {accepted}), report {r:?}"),
            Event::Open,
            &[1, n as u64],
        );
        if r.torn_tail.is_some() {
            self.mark(Mark::TornTailTruncated);
        }
        if r.finished_restart.is_some() {
            self.mark(Mark::InterruptedRestartFinished);
        }
        if r.finished_roll.is_some() {
            self.mark(Mark::InterruptedRollFinished);
        }
        if !r.temporaries_removed.is_empty() {
            self.mark(Mark::TemporariesRemoved);
        }
        if !r.resynced.is_empty() {
            self.mark(Mark::ResyncedAfterFailedFsync);
        }
        if after_crash {
            if n < self.model.accepted.len() {
                self.mark(Mark::UnsyncedLostInCrash);
            }
            if n > self.model.durable {
                self.mark(Mark::UnsyncedSurvivedCrash);
            }
        }
        if !self.check_recovered(&log) {
            return;
        }
        self.check_second_writer();
        self.log = Some(log);
        if let Some(len) = self.log.as_ref().map(Log::next_offset) {
            self.check_read_only_open("beside the writer, after recovery", Beside::Recovered { len });
        }
    }
}

/// What a world gives the lifecycle both worlds share (the single-handle
/// [`World`] and the group-commit world): its disk, its recorder, its open
/// options and its rules for injected faults.
/// The machine loses power and boots again, in both worlds: the madsim
/// node is killed (the sim-fs plugin crashes its disk), the dead process's
/// log handle is dropped (`drop_process`: its buffered bytes then hit stale
/// handles and are lost), and the node restarts.
pub(crate) fn power_cycle_node(
    handle: &madsim::runtime::Handle,
    id: madsim::task::NodeId,
    drop_process: impl FnOnce(),
) {
    handle.kill(id);
    drop_process();
    handle.restart(id);
}

pub(crate) trait Node {
    /// The trace event of this world's opens.
    const OPEN_EVENT: Event;
    /// The node's disk.
    fn disk(&self) -> &SimFs;
    /// The run's recorder.
    fn recorder(&mut self) -> &mut Recorder;
    /// The options of a read-write open.
    fn open_options(&self) -> Options;
    /// The directory the log lives in.
    fn log_dir(&self) -> PathBuf;
    /// Takes in the faults sim-fs injected since the last look, by the
    /// world's own rules.
    fn take_in_faults(&mut self);
    /// The power failed (and the node booted again).
    fn power_failed(&mut self) {}
    /// An open failed on an injected fault (or a power cut) and is tried
    /// again: the failed attempt may have cut a tail durably, so the open
    /// that succeeds no longer sees what was cut.
    fn open_retried(&mut self) {}
}

impl Node for World {
    const OPEN_EVENT: Event = Event::Open;
    fn disk(&self) -> &SimFs {
        &self.fs
    }
    fn recorder(&mut self) -> &mut Recorder {
        &mut self.rec
    }
    fn open_options(&self) -> Options {
        self.options()
    }
    fn log_dir(&self) -> PathBuf {
        self.dir.clone()
    }
    fn take_in_faults(&mut self) {
        self.absorb_faults();
    }
    fn power_failed(&mut self) {
        self.crashed();
    }
    fn open_retried(&mut self) {
        self.model.open_retried = true;
    }
}

/// Opens the log read-write, as an operator would after a (re)start: an
/// open that fails because sim-fs injected an I/O error or a full disk is
/// retried — after a reboot if an fsync failed (the page cache then holds
/// data the disk will never get; the operator's retry is a reboot), after
/// freeing space if the disk was full; a power cut during the open boots
/// the machine again and starts over. An open that fails without such a
/// fault is returned, for the caller to judge (a bug, unless it expects
/// detected corruption).
pub(crate) fn open_retrying<N: Node>(n: &mut N) -> Result<Log, Error> {
    let mut res = Log::open_with(n.log_dir(), n.open_options());
    for _ in 0..20 {
        // A power cut during the open: the machine boots again before
        // anything looks at the disk (the crash's faults included).
        let cut = n.disk().is_powered_off();
        if cut {
            n.disk().power_on();
        }
        let before = n.recorder().faults_seen();
        n.take_in_faults();
        let new_faults = n.disk().faults_since(before);
        let injected_eio = new_faults.iter().any(|f| fails_calls(&f.kind));
        let fsync_failed = new_faults.iter().any(|f| f.kind == FaultKind::SyncEio);
        if cut {
            n.open_retried();
            n.recorder().mark(Mark::PowerCutDuringRecovery);
            n.power_failed();
            n.recorder().note(|| format!("CRASH during recovery: {:?}", res.as_ref().err()), Event::Crash, &[2]);
            res = Log::open_with(n.log_dir(), n.open_options());
            continue;
        }
        match &res {
            Err(Error::Io { .. } | Error::DiskFull { .. }) if injected_eio => {
                n.open_retried();
                n.recorder().note(
                    || format!("open failed on an injected fault, retrying: {:?}", res.as_ref().err()),
                    N::OPEN_EVENT,
                    &[2],
                );
                if fsync_failed {
                    n.disk().crash();
                    n.recorder().mark(Mark::RebootAfterFsyncEioAtOpen);
                }
                let fs = n.disk().clone();
                free_space_if_full(&fs, &new_faults, n.recorder());
                res = Log::open_with(n.log_dir(), n.open_options());
            }
            _ => break,
        }
    }
    res
}

/// An open refused by a full disk (it must write to finish recovering): the
/// operator frees space, as the error message asks, before retrying.
pub(crate) fn free_space_if_full(fs: &SimFs, faults: &[sim_fs::FaultRecord], rec: &mut Recorder) {
    let config = fs.config();
    if config.capacity_bytes.is_some() && faults.iter().any(|f| f.kind == FaultKind::Enospc) {
        fs.set_config(FaultConfig { capacity_bytes: None, ..config });
        rec.mark(Mark::SpaceFreedForRecovery);
    }
}

pub(crate) fn fs_listing(fs: &SimFs, dir: &Path) -> Vec<String> {
    use seglog_core::FileSystem;
    fs.read_dir(dir).unwrap_or_default()
}
