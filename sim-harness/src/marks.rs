//! Marks: counters of rare paths the simulator reached. A mark never hit
//! in a campaign is a blind spot of the workload or the fault plan, so the
//! campaign summary lists every mark, and the unhit ones as blind spots.
//! One closed enum: a new mark is a variant here (its name in [`Mark::name`]
//! and its place in [`Mark::ALL`]), so no mark in use can be missing from
//! the list the summary and the tests check.

/// A rare path the simulator counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mark {
    /// "torn tail truncated"
    TornTailTruncated,
    /// "acknowledged loss reported by recovery"
    AcknowledgedLossReported,
    /// "unsynced records lost in crash"
    UnsyncedLostInCrash,
    /// "unsynced records survived crash"
    UnsyncedSurvivedCrash,
    /// "durable corruption detected at open"
    CorruptionDetectedAtOpen,
    /// "durable corruption detected on read"
    CorruptionDetectedOnRead,
    /// "stale frame detected"
    StaleFrameDetected,
    /// "media fault on durable data"
    MediaFaultOnDurableData,
    /// "lost directory entry"
    LostDirectoryEntry,
    /// "temporaries removed at recovery"
    TemporariesRemoved,
    /// "index rebuilt"
    IndexRebuilt,
    /// "clean reopen trusted footer"
    CleanReopenTrustedFooter,
    /// "enospc mid-append"
    EnospcMidAppend,
    /// "enospc on sync"
    EnospcOnSync,
    /// "fsync eio"
    FsyncEio,
    /// "write eio"
    WriteEio,
    /// "dir sync eio"
    DirSyncEio,
    /// "reboot after fsync eio at open"
    RebootAfterFsyncEioAtOpen,
    /// "crash during recovery"
    CrashDuringRecovery,
    /// "recovery idempotent"
    RecoveryIdempotent,
    /// "second writer refused"
    SecondWriterRefused,
    /// "segment rolled"
    SegmentRolled,
    /// "suffix truncated"
    SuffixTruncated,
    /// "prefix truncated"
    PrefixTruncated,
    /// "log restarted past its end"
    RestartedPastEnd,
    /// "interrupted restart finished at recovery"
    InterruptedRestartFinished,
    /// "interrupted roll finished at recovery"
    InterruptedRollFinished,
    /// "durable file lost"
    DurableFileLost,
    /// "every file of the log lost"
    EveryFileLost,
    /// "lost index file rebuilt"
    LostIndexFileRebuilt,
    /// "compaction dropped records"
    CompactionDroppedRecords,
    /// "compaction dropped a tombstone"
    CompactionDroppedTombstone,
    /// "compaction in several passes"
    CompactionInPasses,
    /// "crash during compaction"
    CrashDuringCompaction,
    /// "compaction finished at recovery"
    CompactionFinishedAtRecovery,
    /// "retention deleted segments"
    RetentionDeletedSegments,
    /// "time lookup at a stored timestamp"
    TimeLookupAtStoredTimestamp,
    /// "space freed so that recovery could finish"
    SpaceFreedForRecovery,
    /// "operator salvaged a damaged log and went on"
    OperatorSalvaged,
    /// "verify found a log clean"
    VerifyClean,
    /// "verify reported damage a media fault made"
    VerifyReportedDamage,
    /// "liveness after faults"
    LivenessAfterFaults,
    /// "media fault aimed at a segment header"
    AimedAtHeader,
    /// "media fault aimed at a frame length"
    AimedAtFrameLength,
    /// "media fault aimed at a commit marker"
    AimedAtCommitMarker,
    /// "media fault aimed at a footer or trailer"
    AimedAtFooterOrTrailer,
    /// "media fault aimed: a lost write left a stale frame"
    AimedStaleFrame,
    /// "retention checked against its rule"
    RetentionCheckedAgainstItsRule,
    /// "read-only open checked and changed nothing"
    ReadOnlyOpenChangedNothing,
    /// "read-only open beside a running writer"
    ReadOnlyOpenBesideRunningWriter,
    /// "poisoned log reopened in the same boot"
    ReopenedPoisonedLogSameBoot,
    /// "files rewritten at open after a failed fsync"
    ResyncedAfterFailedFsync,
    /// "power cut mid-write (append/sync/roll)"
    PowerCutMidWrite,
    /// "power cut mid-truncation (truncate_from/truncate_before/restart_at)"
    PowerCutMidTruncation,
    /// "power cut during a clean close"
    PowerCutDuringClose,
    /// "power cut during recovery"
    PowerCutDuringRecovery,
    /// "enospc followed by a crash"
    EnospcThenCrash,
    /// "enospc followed by a full read-back"
    EnospcThenReadback,
    /// "eio followed by a crash"
    EioThenCrash,
    /// "eio followed by a full read-back"
    EioThenReadback,
    /// "short write followed by a crash"
    ShortIoThenCrash,
    /// "short write followed by a full read-back"
    ShortIoThenReadback,
    /// "media fault followed by a crash"
    MediaFaultThenCrash,
    /// "media fault followed by a full read-back"
    MediaFaultThenReadback,
    /// "group: append acknowledged"
    GroupAppendAcknowledged,
    /// "group: durable reader saw records"
    GroupDurableReaderSawRecords,
    /// "group: a tail consumer waited at the end and then yielded records"
    GroupTailWaitedForRecords,
    /// "group: a tail behind a prefix truncation reported the gap"
    GroupTailReportedGap,
    /// "group: crash with a batch in flight"
    GroupCrashWithBatchInFlight,
    /// "group: eio failed a batch"
    GroupEioFailedBatch,
    /// "group: enospc failed a batch"
    GroupEnospcFailedBatch,
    /// "group: unacknowledged appends survived crash"
    GroupUnackedSurvivedCrash,
    /// "group: acknowledgement of a record since truncated"
    GroupAckOfTruncatedRecord,
    /// "group: clean shutdown drained"
    GroupCleanShutdownDrained,
    /// "group: compaction beside appends"
    GroupCompactionBesideAppends,
    /// "group: read-only open after a crash checked and changed nothing"
    GroupReadOnlyOpenBeforeRecovery,
    /// "group: second writer refused"
    GroupSecondWriterRefused,
}

impl Mark {
    /// Every mark, in the order the summary prints them.
    pub const ALL: &[Mark] = &[
        Mark::TornTailTruncated,
        Mark::AcknowledgedLossReported,
        Mark::UnsyncedLostInCrash,
        Mark::UnsyncedSurvivedCrash,
        Mark::CorruptionDetectedAtOpen,
        Mark::CorruptionDetectedOnRead,
        Mark::StaleFrameDetected,
        Mark::MediaFaultOnDurableData,
        Mark::LostDirectoryEntry,
        Mark::TemporariesRemoved,
        Mark::IndexRebuilt,
        Mark::CleanReopenTrustedFooter,
        Mark::EnospcMidAppend,
        Mark::EnospcOnSync,
        Mark::FsyncEio,
        Mark::WriteEio,
        Mark::DirSyncEio,
        Mark::RebootAfterFsyncEioAtOpen,
        Mark::CrashDuringRecovery,
        Mark::RecoveryIdempotent,
        Mark::SecondWriterRefused,
        Mark::SegmentRolled,
        Mark::SuffixTruncated,
        Mark::PrefixTruncated,
        Mark::RestartedPastEnd,
        Mark::InterruptedRestartFinished,
        Mark::InterruptedRollFinished,
        Mark::DurableFileLost,
        Mark::EveryFileLost,
        Mark::LostIndexFileRebuilt,
        Mark::CompactionDroppedRecords,
        Mark::CompactionDroppedTombstone,
        Mark::CompactionInPasses,
        Mark::CrashDuringCompaction,
        Mark::CompactionFinishedAtRecovery,
        Mark::RetentionDeletedSegments,
        Mark::TimeLookupAtStoredTimestamp,
        Mark::SpaceFreedForRecovery,
        Mark::OperatorSalvaged,
        Mark::VerifyClean,
        Mark::VerifyReportedDamage,
        Mark::LivenessAfterFaults,
        Mark::AimedAtHeader,
        Mark::AimedAtFrameLength,
        Mark::AimedAtCommitMarker,
        Mark::AimedAtFooterOrTrailer,
        Mark::AimedStaleFrame,
        Mark::RetentionCheckedAgainstItsRule,
        Mark::ReadOnlyOpenChangedNothing,
        Mark::ReadOnlyOpenBesideRunningWriter,
        Mark::ReopenedPoisonedLogSameBoot,
        Mark::ResyncedAfterFailedFsync,
        Mark::PowerCutMidWrite,
        Mark::PowerCutMidTruncation,
        Mark::PowerCutDuringClose,
        Mark::PowerCutDuringRecovery,
        Mark::EnospcThenCrash,
        Mark::EnospcThenReadback,
        Mark::EioThenCrash,
        Mark::EioThenReadback,
        Mark::ShortIoThenCrash,
        Mark::ShortIoThenReadback,
        Mark::MediaFaultThenCrash,
        Mark::MediaFaultThenReadback,
        Mark::GroupAppendAcknowledged,
        Mark::GroupDurableReaderSawRecords,
        Mark::GroupTailWaitedForRecords,
        Mark::GroupTailReportedGap,
        Mark::GroupCrashWithBatchInFlight,
        Mark::GroupEioFailedBatch,
        Mark::GroupEnospcFailedBatch,
        Mark::GroupUnackedSurvivedCrash,
        Mark::GroupAckOfTruncatedRecord,
        Mark::GroupCleanShutdownDrained,
        Mark::GroupCompactionBesideAppends,
        Mark::GroupSecondWriterRefused,
        Mark::GroupReadOnlyOpenBeforeRecovery,
    ];

    /// The mark's name as campaigns print it (and `Outcome::marks` keys it).
    pub fn name(self) -> &'static str {
        match self {
            Mark::TornTailTruncated => "torn tail truncated",
            Mark::AcknowledgedLossReported => "acknowledged loss reported by recovery",
            Mark::UnsyncedLostInCrash => "unsynced records lost in crash",
            Mark::UnsyncedSurvivedCrash => "unsynced records survived crash",
            Mark::CorruptionDetectedAtOpen => "durable corruption detected at open",
            Mark::CorruptionDetectedOnRead => "durable corruption detected on read",
            Mark::StaleFrameDetected => "stale frame detected",
            Mark::MediaFaultOnDurableData => "media fault on durable data",
            Mark::LostDirectoryEntry => "lost directory entry",
            Mark::TemporariesRemoved => "temporaries removed at recovery",
            Mark::IndexRebuilt => "index rebuilt",
            Mark::CleanReopenTrustedFooter => "clean reopen trusted footer",
            Mark::EnospcMidAppend => "enospc mid-append",
            Mark::EnospcOnSync => "enospc on sync",
            Mark::FsyncEio => "fsync eio",
            Mark::WriteEio => "write eio",
            Mark::DirSyncEio => "dir sync eio",
            Mark::RebootAfterFsyncEioAtOpen => "reboot after fsync eio at open",
            Mark::CrashDuringRecovery => "crash during recovery",
            Mark::RecoveryIdempotent => "recovery idempotent",
            Mark::SecondWriterRefused => "second writer refused",
            Mark::SegmentRolled => "segment rolled",
            Mark::SuffixTruncated => "suffix truncated",
            Mark::PrefixTruncated => "prefix truncated",
            Mark::RestartedPastEnd => "log restarted past its end",
            Mark::InterruptedRestartFinished => "interrupted restart finished at recovery",
            Mark::InterruptedRollFinished => "interrupted roll finished at recovery",
            Mark::DurableFileLost => "durable file lost",
            Mark::EveryFileLost => "every file of the log lost",
            Mark::LostIndexFileRebuilt => "lost index file rebuilt",
            Mark::CompactionDroppedRecords => "compaction dropped records",
            Mark::CompactionDroppedTombstone => "compaction dropped a tombstone",
            Mark::CompactionInPasses => "compaction in several passes",
            Mark::CrashDuringCompaction => "crash during compaction",
            Mark::CompactionFinishedAtRecovery => "compaction finished at recovery",
            Mark::RetentionDeletedSegments => "retention deleted segments",
            Mark::TimeLookupAtStoredTimestamp => "time lookup at a stored timestamp",
            Mark::SpaceFreedForRecovery => "space freed so that recovery could finish",
            Mark::OperatorSalvaged => "operator salvaged a damaged log and went on",
            Mark::VerifyClean => "verify found a log clean",
            Mark::VerifyReportedDamage => "verify reported damage a media fault made",
            Mark::LivenessAfterFaults => "liveness after faults",
            Mark::AimedAtHeader => "media fault aimed at a segment header",
            Mark::AimedAtFrameLength => "media fault aimed at a frame length",
            Mark::AimedStaleFrame => "media fault aimed: a lost write left a stale frame",
            Mark::AimedAtCommitMarker => "media fault aimed at a commit marker",
            Mark::AimedAtFooterOrTrailer => "media fault aimed at a footer or trailer",
            Mark::RetentionCheckedAgainstItsRule => "retention checked against its rule",
            Mark::ReadOnlyOpenChangedNothing => "read-only open checked and changed nothing",
            Mark::ReadOnlyOpenBesideRunningWriter => "read-only open beside a running writer",
            Mark::ReopenedPoisonedLogSameBoot => "poisoned log reopened in the same boot",
            Mark::ResyncedAfterFailedFsync => "files rewritten at open after a failed fsync",
            Mark::PowerCutMidWrite => "power cut mid-write (append/sync/roll)",
            Mark::PowerCutMidTruncation => "power cut mid-truncation (truncate_from/truncate_before/restart_at)",
            Mark::PowerCutDuringClose => "power cut during a clean close",
            Mark::PowerCutDuringRecovery => "power cut during recovery",
            Mark::EnospcThenCrash => "enospc followed by a crash",
            Mark::EnospcThenReadback => "enospc followed by a full read-back",
            Mark::EioThenCrash => "eio followed by a crash",
            Mark::EioThenReadback => "eio followed by a full read-back",
            Mark::ShortIoThenCrash => "short write followed by a crash",
            Mark::ShortIoThenReadback => "short write followed by a full read-back",
            Mark::MediaFaultThenCrash => "media fault followed by a crash",
            Mark::MediaFaultThenReadback => "media fault followed by a full read-back",
            Mark::GroupAppendAcknowledged => "group: append acknowledged",
            Mark::GroupDurableReaderSawRecords => "group: durable reader saw records",
            Mark::GroupTailWaitedForRecords => "group: a tail consumer waited at the end and then yielded records",
            Mark::GroupTailReportedGap => "group: a tail behind a prefix truncation reported the gap",
            Mark::GroupCrashWithBatchInFlight => "group: crash with a batch in flight",
            Mark::GroupEioFailedBatch => "group: eio failed a batch",
            Mark::GroupEnospcFailedBatch => "group: enospc failed a batch",
            Mark::GroupUnackedSurvivedCrash => "group: unacknowledged appends survived crash",
            Mark::GroupAckOfTruncatedRecord => "group: acknowledgement of a record since truncated",
            Mark::GroupCleanShutdownDrained => "group: clean shutdown drained",
            Mark::GroupCompactionBesideAppends => "group: compaction beside appends",
            Mark::GroupReadOnlyOpenBeforeRecovery => "group: read-only open after a crash checked and changed nothing",
            Mark::GroupSecondWriterRefused => "group: second writer refused",
        }
    }
}

impl Mark {
    /// The fault follow-up marks: for each kind of injected fault, one for
    /// a crash within a few ops after it and one for a full read-back right
    /// after it (campaigns print the share of seeds that hit each).
    pub const FOLLOW_UPS: &[Mark] = &[
        Mark::EnospcThenCrash,
        Mark::EnospcThenReadback,
        Mark::EioThenCrash,
        Mark::EioThenReadback,
        Mark::ShortIoThenCrash,
        Mark::ShortIoThenReadback,
        Mark::MediaFaultThenCrash,
        Mark::MediaFaultThenReadback,
    ];
}

impl std::fmt::Display for Mark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Mark;

    #[test]
    fn every_mark_is_listed_once_with_a_distinct_name() {
        let mut names: Vec<&str> = Mark::ALL.iter().map(|m| m.name()).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "two marks share a name");
        let mut all = Mark::ALL.to_vec();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "a mark is listed twice");
    }
}
