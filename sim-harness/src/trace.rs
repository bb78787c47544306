//! Trace events: what each timeline line records. The trace hash of a run
//! covers, for every event, its code and then its data (the numbers each
//! call of `note` passes), so two runs with the same hash took the same
//! steps with the same results. One closed enum, so a new kind of line is a
//! variant here with a code; codes are fixed (changing one changes every
//! trace hash), and two variants of different worlds may share one.

/// A kind of timeline line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// A client's append: records, bytes, success.
    Append,
    /// A client's sync: success.
    Sync,
    /// A read by offset: offset, success.
    Read,
    /// An iteration: range start and end, items.
    Iter,
    /// A time lookup: the timestamp.
    OffsetForTimestamp,
    /// A roll (the background roller's or a schedule's): success.
    BackgroundRoll,
    /// An open: 0 failed, 1 recovered (and how many records), 2 retried
    /// after an injected fault.
    Open,
    /// The idempotency check's second open failed.
    SecondOpenFailed,
    /// A crash (what follows depends on the call site: nothing, 0 for a
    /// crash during compaction, or the number of files left).
    Crash,
    /// Faults switched off for the liveness phase.
    LivenessPhase,
    /// A clean close: success.
    CleanClose,
    /// A suffix truncation: offset, success.
    TruncateFrom,
    /// A prefix truncation: offset, success.
    TruncateBefore,
    /// A restart past the end: offset, success.
    RestartAt,
    /// A compaction: sealed end, success, whether a crash struck.
    Compact,
    /// Every file of the log is gone: a new log from here.
    EveryFileGone,
    /// One step of a fuzz schedule: its index.
    ScheduleStep,
    /// A schedule changed the disk's fault plan.
    FaultPlan,
    /// The process restarted without a close or a crash.
    ProcessRestart,
    /// A full read-back through every read API: first, end.
    FullReadback,
    /// A read-only open beside the writer between two ops: the writer's
    /// first offset and end.
    ReadOnlyLook,
    /// The first failed check.
    CheckFailed,
    /// An injected fault: whether it hit durable data, position, length.
    Fault,
    /// `verify`: segments, records, problems.
    Verify,
    /// An operator's salvage: records, first, end, holes.
    Salvage,
    /// Group world: a producer's appends resolved: ids, success.
    GroupResolved,
    /// Group world: a read at a visibility: start, records (or u64::MAX).
    GroupRead,
    /// Group world: a tail consumer's item: its position, the record's
    /// offset (or u64::MAX for an error), whether it waited first.
    GroupTail,
    /// Group world: an open: 2 retried, or first and next offset.
    GroupOpen,
    /// Group world: a prefix truncation: offset, success.
    GroupTruncateBefore,
    /// Group world: a suffix truncation: offset, success.
    GroupTruncateFrom,
    /// Group world: a suffix truncation queued: offset, queue position.
    GroupTruncateFromQueued,
    /// Group world: the shutdown: success.
    GroupShutdown,
    /// Group world: a crash: files left.
    GroupCrash,
    /// Group world: the compactor task: success.
    GroupCompactor,
    /// Cluster world: a client operation: client, result kind, term, index.
    #[cfg(feature = "cluster")]
    ClusterOp,
    /// Cluster world: a node booted, failed to boot, lost power, led a term.
    #[cfg(feature = "cluster")]
    ClusterNode,
    /// Cluster world: a network or disk fault, or the faults stopping.
    #[cfg(feature = "cluster")]
    ClusterNet,
    /// Cluster world: a final check passed.
    #[cfg(feature = "cluster")]
    ClusterCheck,
    /// Cluster world: a disk's hash at the end.
    #[cfg(feature = "cluster")]
    ClusterDisk,
}

impl Event {
    /// The code the trace hash covers.
    pub(crate) fn code(self) -> u64 {
        match self {
            Event::Append => 1,
            Event::Sync => 2,
            Event::Read => 3,
            Event::Iter => 4,
            Event::OffsetForTimestamp => 5,
            Event::BackgroundRoll => 6,
            Event::Open => 7,
            Event::SecondOpenFailed => 8,
            Event::Crash => 9,
            Event::LivenessPhase => 10,
            Event::CleanClose => 11,
            Event::TruncateFrom => 12,
            Event::TruncateBefore => 13,
            Event::GroupResolved => 20,
            Event::GroupRead => 21,
            Event::GroupTail => 29,
            Event::GroupOpen => 22,
            Event::GroupTruncateBefore => 23,
            Event::RestartAt | Event::GroupTruncateFrom => 24,
            Event::Compact | Event::GroupShutdown => 25,
            Event::GroupCrash => 26,
            Event::GroupTruncateFromQueued => 27,
            Event::GroupCompactor => 28,
            #[cfg(feature = "cluster")]
            Event::ClusterOp => 0xC1,
            #[cfg(feature = "cluster")]
            Event::ClusterNode => 0xC2,
            #[cfg(feature = "cluster")]
            Event::ClusterNet => 0xC3,
            #[cfg(feature = "cluster")]
            Event::ClusterCheck => 0xC4,
            #[cfg(feature = "cluster")]
            Event::ClusterDisk => 0xC5,
            Event::ScheduleStep => 0x5C,
            Event::FaultPlan => 0x5D,
            Event::ProcessRestart => 14,
            Event::FullReadback => 15,
            Event::ReadOnlyLook => 16,
            Event::Verify => 17,
            Event::Salvage => 18,
            Event::Fault => 0xFA,
            Event::EveryFileGone => 0xA11,
            Event::CheckFailed => 0xFA11,
        }
    }
}
