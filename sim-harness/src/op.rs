//! The operation vocabulary of the single-handle world: one closed [`Op`]
//! type, produced by the seeded generator ([`Op::draw`], swarm weights
//! from the seed's [`Params`]) and by the schedule decoder (fuzz input,
//! [`crate::schedule::Schedule`]) alike, and run by one executor
//! (`World::exec` in `world.rs`), which the exhaustive mode reuses.
//!
//! A new operation is one variant here (with its draw weight or its
//! schedule encoding), one arm in `World::exec` and its rule in the model
//! (`model.rs`). What an op picks at run time (a value's size, the offset
//! a read or truncation aims at) is drawn by the executor from the world's
//! RNG, so a schedule stays meaningful whatever the log's state is.

use arbitrary::{Arbitrary, Unstructured};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use sim_fs::CrashPolicy;

use crate::scenario::Params;

/// Most records one append op carries (`append_batch`).
pub const MAX_BATCH: usize = 9;

/// A change of the disk's fault plan (schedules only: a seed's plan is
/// fixed by its swarm draw).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultStep {
    /// No faults from here on.
    Off,
    /// One fsync in five fails with EIO.
    SyncEio,
    /// One write in five fails with EIO.
    WriteEio,
    /// One directory fsync in five fails with EIO.
    DirSyncEio,
    /// Reads and writes transfer fewer bytes than asked, half of the time.
    ShortIo,
    /// The disk has this many KiB left.
    DiskFull {
        /// KiB of room left.
        room_kib: u8,
    },
    /// One write in ten lands at the wrong place (a media fault).
    Misdirected,
    /// Every crash flips bits in data that was durable (a media fault).
    BitflipAtCrash,
    /// Every crash makes a durable sector unreadable (a media fault).
    BadSectorAtCrash,
    /// A crash loses a file half of the time (a media fault).
    FileLostAtCrash,
}

/// One operation on the single-handle world's node. In a scenario file
/// (JSON) an op is `{"op": "append", "n": 3}`, `{"op": "sync"}`, ….
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Append `n` records: one through `append`, more through one atomic
    /// `append_batch`.
    Append {
        /// Records (1..=[`MAX_BATCH`]).
        n: usize,
    },
    /// Make everything accepted durable (`sync`).
    Sync,
    /// Read one offset between the first and the end.
    Read,
    /// Scan a range with `iter` or the lending `reader`.
    Iter,
    /// `offset_for_timestamp`, mostly at and around stored timestamps.
    TimeLookup,
    /// `verify`: every frame of every segment read and checked against the
    /// segment summaries, as an operator's `seglog verify` does.
    Verify,
    /// Seal the active segment (`roll`; the seeded world's background
    /// roller).
    Roll,
    /// Cut a short suffix (`truncate_from`).
    TruncateFrom,
    /// Drop a prefix (`truncate_before`).
    TruncateBefore,
    /// Empty the log and go on past its end (`restart_at`).
    RestartAt,
    /// Key compaction of the sealed segments; with `power_fail_at` the
    /// power fails right before that filesystem step of it (if it gets
    /// that far), and the node reboots from the disk.
    Compact {
        /// The filesystem step the power fails at.
        power_fail_at: Option<u64>,
    },
    /// Power failure (under `policy`, else one the disk's fault plan
    /// draws), recovery checked against the model, a second crash right
    /// after recovery if `twice`, then a second open that must find the
    /// same log (recovery is idempotent).
    Crash {
        /// The crash policy; `None`: drawn from the disk's plan.
        policy: Option<CrashPolicy>,
        /// Crash again right after the first recovery.
        twice: bool,
    },
    /// Clean close, machine restart, recovery: a close that succeeded
    /// keeps everything, and the open trusts its footers.
    CleanRestart,
    /// The process exits without closing the log and starts again, the
    /// machine staying up: its buffered records reach the page cache (the
    /// log's `Drop`), so unless a fault struck on the way everything
    /// accepted comes back, synced by the recovery.
    ProcessRestart,
    /// Change the fault plan (schedules only).
    /// A client's turn in which it does nothing. A scenario's script puts
    /// it where the shrinker removed an op, so that what the seed places
    /// by op count (crashes and restarts) stays where it was.
    Pass,
    /// (Not in scenario files: a seed's fault plan is its own.)
    #[serde(skip)]
    Fault(FaultStep),
    /// The power fails right before filesystem step `at` of the next op
    /// (if it gets that far): during its calls, or during the close of a
    /// clean restart, or during the recovery after a crash. Seeded runs
    /// draw such cuts with the seed's rate (`Params::power_cut`).
    PowerCut {
        /// The filesystem step (0 = the op's first).
        at: u8,
    },
}

impl Op {
    /// The next client op of a seed, drawn with the seed's swarm weights
    /// (node-level ops, crashes and restarts, are the supervisor's).
    pub fn draw(rng: &mut ChaCha8Rng, params: &Params) -> Op {
        let w = params.weights;
        let mut pick = rng.random_range(0..w.total().max(1));
        let mut take = |weight: u32| {
            let hit = pick < weight;
            pick = pick.saturating_sub(weight);
            hit
        };
        if take(w.append) {
            Op::Append { n: 1 }
        } else if take(w.batch) {
            Op::Append { n: rng.random_range(2..8) }
        } else if take(w.sync) {
            Op::Sync
        } else if take(w.read) {
            Op::Read
        } else if take(w.iter) {
            Op::Iter
        } else if take(w.time_lookup) {
            Op::TimeLookup
        } else if take(w.verify) {
            Op::Verify
        } else if take(w.truncate_from) {
            Op::TruncateFrom
        } else if take(w.compact) {
            let p_crash = params.compaction.map_or(0.0, |c| c.p_crash);
            Op::Compact { power_fail_at: rng.random_bool(p_crash).then(|| rng.random_range(0..40u64)) }
        } else if rng.random_bool(0.25) {
            Op::RestartAt
        } else {
            Op::TruncateBefore
        }
    }

    /// Records this op appends (0 for all but [`Op::Append`]).
    pub fn appends(&self) -> usize {
        match self {
            Op::Append { n } => *n,
            _ => 0,
        }
    }
}

/// The schedule encoding: a variant byte, then the variant's fields; every
/// byte string decodes to valid ops (what a fuzzer needs).
impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0..=16u8)? {
            0 => Op::Append { n: 1 },
            1 => Op::Append { n: 2 + usize::from(u.arbitrary::<u8>()?) % (MAX_BATCH - 1) },
            2 => Op::Sync,
            3 => Op::Read,
            4 => Op::Iter,
            5 => Op::TimeLookup,
            6 => Op::Roll,
            7 => Op::TruncateFrom,
            8 => Op::TruncateBefore,
            9 => Op::Crash {
                policy: CrashPolicy::ALL.get(usize::from(u.arbitrary::<u8>()?) % CrashPolicy::ALL.len()).copied(),
                twice: u.ratio(1, 8)?,
            },
            10 => Op::CleanRestart,
            11 => Op::Fault(u.arbitrary()?),
            12 => {
                let at = u.arbitrary::<u8>()?;
                Op::Compact { power_fail_at: at.checked_sub(1).map(u64::from) }
            }
            13 => Op::RestartAt,
            14 => Op::ProcessRestart,
            15 => Op::Verify,
            _ => Op::PowerCut { at: u.arbitrary::<u8>()? % 32 },
        })
    }
}
