//! What sim-fs may do wrong, and how often. Every knob defaults to "never".

/// How a crash resolves the pending (unsynced) changes of each file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrashPolicy {
    /// Every pending change is lost.
    LoseAll,
    /// A random prefix of each file's pending changes survives, in order.
    KeepPrefix,
    /// The file size of a random prefix survives; each pending write survives
    /// or not independently per sector (reordering); unwritten bytes inside
    /// the size read as zeros.
    Reorder,
    /// A random prefix survives, and the next write is torn inside a sector:
    /// a byte prefix of it survives and the rest of that sector holds zeros,
    /// garbage or its old bytes.
    TornWrite,
}

impl CrashPolicy {
    /// All policies, for drawing one at random.
    pub const ALL: [CrashPolicy; 4] =
        [CrashPolicy::LoseAll, CrashPolicy::KeepPrefix, CrashPolicy::Reorder, CrashPolicy::TornWrite];
}

/// A planted lie, for proving that a checker can catch a filesystem that
/// breaks its contract. Never set outside canary runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Canary {
    /// File `sync` returns `Ok` and makes nothing durable.
    SyncNoop,
    /// `sync_dir` returns `Ok` and makes nothing durable.
    DirSyncNoop,
    /// Reads occasionally return one flipped bit (the disk is fine).
    SilentBitflip,
    /// A write that does not fit reports success and stores nothing.
    EnospcLies,
}

impl Canary {
    /// All canaries.
    pub const ALL: [Canary; 4] = [Canary::SyncNoop, Canary::DirSyncNoop, Canary::SilentBitflip, Canary::EnospcLies];

    /// The canary's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Canary::SyncNoop => "sync-noop",
            Canary::DirSyncNoop => "dir-sync-noop",
            Canary::SilentBitflip => "silent-bitflip",
            Canary::EnospcLies => "enospc-lies",
        }
    }

    /// Parses a command-line name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// Fault probabilities and limits. `FaultConfig::default()` injects nothing:
/// a plain, perfectly reliable in-memory disk (that still loses unsynced
/// data on [`crash`](crate::SimFs::crash)).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// Granularity of reordering, tearing and media faults.
    pub sector_bytes: u64,
    /// Disk capacity in bytes; `None` is unlimited.
    pub capacity_bytes: Option<u64>,
    /// Crash policies to draw from (uniformly); empty means `LoseAll`.
    pub crash_policies: Vec<CrashPolicy>,
    /// Probability that a read or write transfers fewer bytes than asked
    /// (between 1 and all but one).
    pub p_short_io: f64,
    /// Probability that a file `sync` fails with EIO, dropping the pending
    /// data it covered (the next sync then succeeds: fsyncgate).
    pub p_sync_eio: f64,
    /// Probability that a `sync_dir` fails with EIO; its changes stay
    /// pending (a crash may lose them).
    pub p_dir_sync_eio: f64,
    /// Probability that a write fails with EIO (nothing written).
    pub p_write_eio: f64,
    /// Probability that a successful file sync misdirects one sector: its
    /// data lands at another sector of the file, and its own place keeps the
    /// old bytes.
    pub p_misdirected_write: f64,
    /// Probability, at each crash, of one silent bit flip in durable data.
    pub p_bitflip_at_crash: f64,
    /// Probability, at each crash, that one durable sector becomes
    /// unreadable (reads touching it fail with EIO until it is rewritten).
    pub p_bad_sector_at_crash: f64,
    /// Probability, at each crash, that one durable file disappears (its
    /// directory entry and its data): an operator's mistake, a broken
    /// backup restore, a filesystem repair that dropped an inode.
    pub p_file_lost_at_crash: f64,
    /// A planted lie (canary runs only).
    pub canary: Option<Canary>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            sector_bytes: 512,
            capacity_bytes: None,
            crash_policies: vec![CrashPolicy::LoseAll],
            p_short_io: 0.0,
            p_sync_eio: 0.0,
            p_dir_sync_eio: 0.0,
            p_write_eio: 0.0,
            p_misdirected_write: 0.0,
            p_bitflip_at_crash: 0.0,
            p_bad_sector_at_crash: 0.0,
            p_file_lost_at_crash: 0.0,
            canary: None,
        }
    }
}

impl FaultConfig {
    /// No faults at all, but every crash policy possible at a crash.
    pub fn crashes_only() -> Self {
        Self { crash_policies: CrashPolicy::ALL.to_vec(), ..Self::default() }
    }
}
