//! Explicit schedules: a list of operations and faults, decoded from
//! arbitrary bytes (the `schedule` fuzz target), executed against the same
//! checker as a seed ([`crate::run::run_schedule`]). Where a seed's workload
//! comes from its RNG, a schedule says which operation comes next and when
//! a fault starts or stops, so a fuzzer can steer it and `cargo fuzz tmin`
//! can shrink a failing one to the few steps that matter.
//!
//! The seed still decides the log's configuration and the details of each
//! step (value sizes, which offset a read or truncation picks).

use arbitrary::{Arbitrary, Unstructured};

/// Most steps a schedule may have (longer inputs are cut).
pub const MAX_STEPS: usize = 400;

/// A fault plan change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
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
}

/// One step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum Step {
    /// Append one record.
    Append,
    /// Append `n % 8 + 2` records atomically.
    Batch {
        /// Size selector.
        n: u8,
    },
    /// Make everything durable.
    Sync,
    /// Read a random offset.
    Read,
    /// Iterate a random range.
    Iter,
    /// Look up a random timestamp.
    TimeLookup,
    /// Seal the active segment.
    Roll,
    /// Cut a short suffix.
    TruncateFrom,
    /// Drop a prefix.
    TruncateBefore,
    /// Power failure (policy chosen by `policy % 4`), then recovery.
    Crash {
        /// Crash policy selector.
        policy: u8,
    },
    /// Clean close, machine restart, recovery.
    CleanReopen,
    /// Change the fault plan.
    Fault(FaultStep),
    /// Key compaction of the sealed segments; with `power_fail_at > 0` the
    /// power fails right before its filesystem step `power_fail_at - 1`
    /// (if it gets that far), and the node reboots from the disk.
    Compact {
        /// 0: no power failure; else the step (plus one) it strikes at.
        power_fail_at: u8,
    },
}

/// A schedule: the seed (configuration and details) and the steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Seeds the log's configuration and each step's details.
    pub seed: u64,
    /// What happens, in order.
    pub steps: Vec<Step>,
}

impl<'a> Arbitrary<'a> for Schedule {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let seed = u64::from(u.arbitrary::<u16>()?);
        let mut steps = Vec::new();
        while steps.len() < MAX_STEPS && !u.is_empty() {
            steps.push(u.arbitrary()?);
        }
        Ok(Schedule { seed, steps })
    }
}

impl Schedule {
    /// Decodes fuzzer bytes (never fails: missing bytes end the schedule).
    pub fn from_bytes(data: &[u8]) -> Self {
        let mut u = Unstructured::new(data);
        Schedule::arbitrary(&mut u).unwrap_or(Schedule { seed: 0, steps: Vec::new() })
    }
}
