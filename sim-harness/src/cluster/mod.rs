//! The cluster world: 3 openraft nodes on madsim, each on its own sim-fs
//! disk running `seglog-raft` (group commit, task committer) with the
//! key-value state machine, connected by a simulated network
//! ([`net`]). Clients put, get and compare-and-set through whichever node
//! they believe leads; a fault task kills and restarts nodes (power
//! failures under every crash policy), cuts links (symmetric, one-way,
//! the leader's), loses and delays messages, fills and frees disks, turns
//! on fsync and write EIO, and strikes one node's disk with media faults.
//! Then faults stop and the cluster must converge.
//!
//! Checks: the client history is linearizable ([`linear`]); at most one
//! leader per term; every acknowledged write is in every node's log with
//! its log id and payload (or covered by its snapshot); logs agree where
//! their terms agree; state machines agree after convergence; a node whose
//! disk reports corruption refuses to start (only after a media fault on
//! that disk) and never comes back; liveness once faults stop.

#![allow(clippy::indexing_slicing, reason = "per-node vectors hold NODES entries, and every node id is below NODES")]

pub mod linear;
mod net;
pub mod runtime;

use std::collections::BTreeMap;
use std::io::{Cursor, ErrorKind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::rand::Rng;
use openraft::error::{ClientWriteError, RaftError};
use openraft::storage::RaftLogStorage;
use openraft::{BasicNode, RaftLogReader, ServerState};
use seglog_core::{Config, GroupConfig, SharedLog};
use seglog_raft::kv::{KvRequest, KvResponse, KvStateMachine};
use seglog_raft::{CommitterMode, LogReader, RaftLogStore, StoreCanary, StoreOptions};
use sim_fs::plugin::SimFsPlugin;
use sim_fs::{CrashPolicy, FaultConfig, FaultKind, Hit, SimFs};

use crate::record::Recorder;
use crate::run::{Outcome, SimClock};
use crate::scenario::Scenario;
use crate::trace::Event;
use net::{Factory, Net, NetState};

openraft::declare_raft_types!(
    /// The key-value configuration on madsim.
    pub SimKv:
        D = KvRequest,
        R = KvResponse,
        AsyncRuntime = runtime::MadsimRuntime,
);

/// A node's Raft handle in the simulation.
pub type SimRaft = openraft::Raft<SimKv>;

/// Client operations per cluster seed, by default.
pub const DEFAULT_CLUSTER_OPS: u32 = 150;

/// Nodes in the cluster.
pub const NODES: u64 = 3;
/// Clients writing and reading concurrently.
const CLIENTS: u64 = 3;
/// Keys the clients share (few, so that operations contend).
const KEYS: u64 = 3;

/// A planted bug the cluster checks must catch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterCanary {
    /// The store calls the flush callback before the fsync.
    FlushBeforeFsync,
    /// The store forgets the vote (never writes it).
    ForgetVote,
    /// The network acknowledges appends it never delivered.
    DupAcks,
}

impl ClusterCanary {
    /// Every cluster canary.
    pub const ALL: [ClusterCanary; 3] =
        [ClusterCanary::FlushBeforeFsync, ClusterCanary::ForgetVote, ClusterCanary::DupAcks];

    /// Its command-line name.
    pub fn name(self) -> &'static str {
        match self {
            ClusterCanary::FlushBeforeFsync => "flush-before-fsync",
            ClusterCanary::ForgetVote => "forget-vote",
            ClusterCanary::DupAcks => "dup-acks",
        }
    }

    /// Parses a command-line name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// Rare paths of the cluster world (counted in `Outcome::marks` like the
/// single-node marks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterMark {
    /// A term got a (new) leader.
    NewLeader,
    /// A node lost power and booted again from its disk.
    NodeRebooted,
    /// A node's boot failed after an injected I/O error or full disk and
    /// was retried.
    BootRetried,
    /// A node's disk reported corruption at boot: it refused to start.
    RefusedCorrupt,
    /// A storage error stopped a node's Raft (then it was rebooted).
    StorageErrorStoppedNode,
    /// A client write whose outcome the client never learned.
    UnknownOutcome,
    /// A compare-and-set that swapped.
    CasSwapped,
    /// A compare-and-set that found another value.
    CasRefused,
    /// A linearizable read served.
    ReadServed,
    /// Some node's log was purged after a snapshot.
    Purged,
    /// A one-way link cut.
    OneWayCut,
    /// The leader was isolated.
    LeaderIsolated,
    /// A disk filled up.
    DiskFilled,
    /// A message was lost or dropped on a cut link.
    MessageLost,
    /// A second leader in one term (openraft's default leader id allows it).
    TwoLeadersOneTerm,
    /// The final check's read of a log met media damage the log detected.
    DamageDetectedOnRead,
    /// A node booted with a vote fence: its log's recovery cut entries it
    /// may have acknowledged.
    VoteFenceSet,
    /// A fenced node refused a vote to a candidate behind its fence.
    VoteRefusedByFence,
}

impl ClusterMark {
    /// Every mark, in report order.
    pub const ALL: [ClusterMark; 18] = [
        ClusterMark::NewLeader,
        ClusterMark::NodeRebooted,
        ClusterMark::BootRetried,
        ClusterMark::RefusedCorrupt,
        ClusterMark::StorageErrorStoppedNode,
        ClusterMark::UnknownOutcome,
        ClusterMark::CasSwapped,
        ClusterMark::CasRefused,
        ClusterMark::ReadServed,
        ClusterMark::Purged,
        ClusterMark::OneWayCut,
        ClusterMark::LeaderIsolated,
        ClusterMark::DiskFilled,
        ClusterMark::MessageLost,
        ClusterMark::TwoLeadersOneTerm,
        ClusterMark::DamageDetectedOnRead,
        ClusterMark::VoteFenceSet,
        ClusterMark::VoteRefusedByFence,
    ];

    /// The mark's name.
    pub fn name(self) -> &'static str {
        match self {
            ClusterMark::NewLeader => "cluster: a term got a leader",
            ClusterMark::NodeRebooted => "cluster: node lost power and rejoined from its disk",
            ClusterMark::BootRetried => "cluster: boot retried after an injected I/O error or full disk",
            ClusterMark::RefusedCorrupt => "cluster: node refused to start on a corrupt disk",
            ClusterMark::StorageErrorStoppedNode => "cluster: storage error stopped a node",
            ClusterMark::UnknownOutcome => "cluster: client op with unknown outcome",
            ClusterMark::CasSwapped => "cluster: compare-and-set swapped",
            ClusterMark::CasRefused => "cluster: compare-and-set refused",
            ClusterMark::ReadServed => "cluster: linearizable read served",
            ClusterMark::Purged => "cluster: log purged after a snapshot",
            ClusterMark::OneWayCut => "cluster: one-way link cut",
            ClusterMark::LeaderIsolated => "cluster: leader isolated",
            ClusterMark::DiskFilled => "cluster: a disk filled up",
            ClusterMark::MessageLost => "cluster: message lost",
            ClusterMark::DamageDetectedOnRead => "cluster: media damage detected by a log read",
            ClusterMark::TwoLeadersOneTerm => "cluster: two leaders in one term (openraft's (term, node) leader ids)",
            ClusterMark::VoteFenceSet => "cluster: node booted with a vote fence (possibly acknowledged entries cut)",
            ClusterMark::VoteRefusedByFence => "cluster: a fenced node refused a vote",
        }
    }
}

/// A node's state as the world sees it.
enum NodeState {
    /// Booting or waiting to boot.
    Down,
    /// Running.
    Up { raft: SimRaft, sm: KvStateMachine<SimKv>, shared: SharedLog, reader: LogReader<SimKv> },
    /// Refused to start: its disk reported corruption.
    Refused,
}

struct World {
    rec: Recorder,
    canary: Option<ClusterCanary>,
    disks: Vec<SimFs>,
    sim_ids: Vec<madsim::task::NodeId>,
    nodes: Vec<NodeState>,
    /// Boots so far, per node.
    boots: Vec<u32>,
    /// Nodes being power-cycled or booted (one lifecycle at a time).
    cycling: Vec<bool>,
    /// Times a storage error stopped each node.
    stops: Vec<u32>,
    /// The one node whose disk takes media faults.
    media_node: u64,
    /// Fault records of each disk already taken in.
    faults_seen: Vec<usize>,
    /// Whether each disk ever had a media fault on durable data.
    media_hit: Vec<bool>,
    history: Vec<linear::Operation>,
    stamp: u64,
    /// Acknowledged writes: index -> (term, request).
    acked: BTreeMap<u64, (u64, KvRequest)>,
    /// Leaders seen, by (term, node).
    leaders: BTreeMap<(u64, u64), u64>,
    ops_left: u32,
    ops_done: u32,
    values: u64,
    initialized: bool,
}

type Shared = Arc<Mutex<World>>;

fn lock(w: &Shared) -> std::sync::MutexGuard<'_, World> {
    w.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl World {
    fn mark(&mut self, m: ClusterMark) {
        *self.rec.marks.entry(m.name()).or_insert(0) += 1;
    }

    /// A client operation reached an outcome (known or not).
    fn count_op(&mut self) {
        self.ops_left = self.ops_left.saturating_sub(1);
        self.ops_done += 1;
    }

    fn next_stamp(&mut self) -> u64 {
        self.stamp += 1;
        self.stamp
    }

    fn up(&self, id: u64) -> Option<&SimRaft> {
        match self.nodes.get(id as usize) {
            Some(NodeState::Up { raft, .. }) => Some(raft),
            _ => None,
        }
    }

    /// Takes in the faults each disk injected since the last look.
    fn absorb_faults(&mut self) {
        for (i, fs) in self.disks.iter().enumerate() {
            let seen = self.faults_seen.get(i).copied().unwrap_or(0);
            let new = fs.faults_since(seen);
            if let Some(s) = self.faults_seen.get_mut(i) {
                *s += new.len();
            }
            for f in &new {
                let media = matches!(
                    f.kind,
                    FaultKind::BitFlip
                        | FaultKind::BadSector
                        | FaultKind::FileLost
                        | FaultKind::Misdirected { .. }
                        | FaultKind::LostWrite
                ) || f.hit == Hit::Durable;
                if media && let Some(m) = self.media_hit.get_mut(i) {
                    *m = true;
                }
                self.rec.note(|| format!("n{i} disk fault {f}"), Event::Fault, &[i as u64, f.pos, f.len]);
            }
        }
    }
}

fn raft_config() -> Arc<openraft::Config> {
    let c = openraft::Config {
        cluster_name: "sim".into(),
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        install_snapshot_timeout: 400,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(24),
        max_in_snapshot_log_to_keep: 4,
        purge_batch_size: 1,
        ..Default::default()
    };
    #[allow(clippy::expect_used, reason = "a fixed configuration that validates")]
    Arc::new(c.validate().expect("the cluster's Raft configuration is valid"))
}

/// Runs one cluster seed: `ops` client operations in all.
pub fn run_cluster(scn: &Scenario, trace: bool) -> Outcome {
    let canary = match scn.canary.as_deref().map(|c| (c, ClusterCanary::from_name(c))) {
        None => None,
        Some((_, Some(c))) => Some(c),
        Some((name, None)) => {
            let names: Vec<&str> = ClusterCanary::ALL.iter().map(|c| c.name()).collect();
            return Outcome::refused(scn, format!("unknown cluster canary {name:?}; one of {}", names.join(", ")));
        }
    };
    let seed = scn.seed;
    let scn2 = scn.clone();
    // A fresh thread per seed: madsim seeds std's hash maps per thread
    // (openraft keeps some), and tokio's select! RNG is per thread too.
    let joined = std::thread::Builder::new()
        .name(format!("cluster-seed-{seed}"))
        .stack_size(16 << 20)
        .spawn(move || runtime::block_on(seed, move || run_in_madsim(&scn2, canary, trace)))
        .map_err(|e| format!("cannot start the seed's thread: {e}"))
        .and_then(|h| h.join().map_err(|p| format!("panic: {}", crate::run::panic_message(&*p))));
    match joined {
        Ok(Ok(out)) => out,
        Ok(Err(why)) | Err(why) => Outcome::refused(scn, why),
    }
}

fn run_in_madsim(scn: &Scenario, canary: Option<ClusterCanary>, trace: bool) -> Outcome {
    let mut rt = madsim::runtime::Runtime::with_seed_and_config(scn.seed, madsim::Config::default());
    rt.set_time_limit(Duration::from_secs(300));
    rt.add_simulator::<SimFsPlugin>();
    let mut seeder = rand_chacha::ChaCha8Rng::seed_from_u64(scn.seed ^ 0xC1u64 << 56);
    use rand::{RngExt, SeedableRng};
    let media_node = seeder.random_range(0..NODES);
    let disks: Vec<SimFs> = (0..NODES)
        .map(|i| {
            let mut cfg = FaultConfig::crashes_only();
            if i == media_node {
                cfg.p_bitflip_at_crash = 0.2;
                cfg.p_bad_sector_at_crash = 0.1;
                cfg.p_file_lost_at_crash = 0.05;
            }
            SimFs::new(seeder.random(), cfg)
        })
        .collect();
    let world: Shared = Arc::new(Mutex::new(World {
        rec: Recorder::new(trace),
        canary,
        disks: disks.clone(),
        sim_ids: Vec::new(),
        nodes: (0..NODES).map(|_| NodeState::Down).collect(),
        boots: vec![0; NODES as usize],
        cycling: vec![true; NODES as usize],
        stops: vec![0; NODES as usize],
        media_node,
        faults_seen: vec![0; NODES as usize],
        media_hit: vec![false; NODES as usize],
        history: Vec::new(),
        stamp: 0,
        acked: BTreeMap::new(),
        leaders: BTreeMap::new(),
        ops_left: scn.ops,
        ops_done: 0,
        values: 0,
        initialized: false,
    }));
    let net: Net = Arc::new(Mutex::new(NetState {
        max_delay_ms: 20,
        dup_acks: canary == Some(ClusterCanary::DupAcks),
        ..NetState::default()
    }));
    let w2 = Arc::clone(&world);
    let n2 = Arc::clone(&net);
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(supervise(w2, n2))));
    let mut w = lock(&world);
    let ops_done = w.ops_done;
    // The trace hash covers every disk; the recorder adds the first one.
    for d in disks.iter().skip(1) {
        let h = d.disk_hash();
        w.rec.note(|| format!("disk hash {h:016x}"), Event::ClusterDisk, &[h]);
    }
    let first = disks.first().cloned().unwrap_or_else(|| SimFs::new(0, FaultConfig::default()));
    let out = w.rec.outcome(scn.clone(), &first, ops_done, res.err());
    // madsim does not free the tasks still pending when a runtime ends, and
    // they hold the world: empty it, so that a campaign does not keep every
    // seed's disks and history.
    w.nodes.clear();
    w.disks.clear();
    w.history = Vec::new();
    w.acked.clear();
    {
        let mut n = net::lock(&net);
        n.up.clear();
        n.gates.clear();
    }
    out
}

fn store_options(fs: &SimFs, canary: Option<ClusterCanary>) -> StoreOptions {
    StoreOptions {
        fs: fs.shared(),
        clock: Arc::new(SimClock),
        config: Config { segment_records_max: 32, ..Config::default() },
        group: GroupConfig::default(),
        committer: CommitterMode::Task { fsync_yields: 2 },
        canary: match canary {
            Some(ClusterCanary::FlushBeforeFsync) => Some(StoreCanary::FlushBeforeFsync),
            Some(ClusterCanary::ForgetVote) => Some(StoreCanary::ForgetVote),
            _ => None,
        },
        snapshot_floor: None,
    }
}

/// Why a boot failed, as the world judges it.
enum BootFailure {
    /// An injected I/O error or full disk: retry later.
    Retry(String),
    /// The disk reports corruption: the node refuses to start.
    Corrupt(String),
    /// Anything else: a bug.
    Bug(String),
}

fn classify_store_error(e: &seglog_raft::Error) -> BootFailure {
    use seglog_core::Error as L;
    match e {
        seglog_raft::Error::Log(L::Io { .. } | L::DiskFull { .. } | L::DiskFullNotDurable { .. })
        | seglog_raft::Error::Io { .. } => BootFailure::Retry(e.to_string()),
        seglog_raft::Error::Corruption { .. }
        | seglog_raft::Error::Log(L::Corruption { .. } | L::NotALogDirectory { .. } | L::NoLog { .. }) => {
            BootFailure::Corrupt(e.to_string())
        }
        _ => BootFailure::Bug(e.to_string()),
    }
}

/// Opens node `id`'s store and state machine on its disk and starts Raft.
async fn boot(world: &Shared, net: &Net, id: u64) -> Result<(), BootFailure> {
    let (fs, canary) = {
        let w = lock(world);
        (w.disks[id as usize].clone(), w.canary)
    };
    let faults_at_start = fs.faults().len();
    let sm = KvStateMachine::<SimKv>::open_on(fs.shared(), "/node/sm").map_err(|e| match e.kind() {
        ErrorKind::InvalidData => BootFailure::Corrupt(e.to_string()),
        _ => BootFailure::Retry(e.to_string()),
    })?;
    let mut opts = store_options(&fs, canary);
    opts.snapshot_floor = Some(sm.snapshot_floor());
    let mut store = RaftLogStore::<SimKv>::open_with("/node/raft", opts).map_err(|e| classify_store_error(&e))?;
    let shared = store.shared_log().clone();
    let reader = store.get_log_reader().await;
    let gate = store.vote_gate();
    // A vote this node granted was sent only after it was durable: the
    // store must give it back (or a later one).
    let persisted = store.read_vote().await.map_err(|e| BootFailure::Bug(format!("read_vote: {e}")))?;
    let granted = net::lock(net).granted.get(&id).copied();
    if let Some(g) = granted
        && !persisted.is_some_and(|p| p >= g)
    {
        return Err(BootFailure::Bug(format!(
            "node {id} booted with vote {persisted:?} after it had granted vote {g}: a granted vote was lost"
        )));
    }
    let raft = SimRaft::new(id, raft_config(), Factory { from: id, net: Arc::clone(net) }, store, sm.clone())
        .await
        .map_err(|e| {
            let msg = format!("Raft::new: {e}");
            // Raft::new writes too (it may finish a purge): an injected
            // I/O error or a full disk is retried like an open's.
            if fs.faults_since(faults_at_start).iter().any(|f| crate::record::fails_calls(&f.kind)) {
                return BootFailure::Retry(msg);
            }
            // Raft::new reads the log back: a frame that does not verify
            // is the disk's corruption, reported as such.
            if msg.contains("corruption in") { BootFailure::Corrupt(msg) } else { BootFailure::Bug(msg) }
        })?;
    gate.hold_elections(&raft);
    let mut w = lock(world);
    if let Some(bound) = gate.fence() {
        w.mark(ClusterMark::VoteFenceSet);
        w.rec.note(|| format!("n{id} boots fenced: no vote for a log behind {bound}"), Event::ClusterNode, &[id, 8]);
    }
    if let Some(slot) = w.nodes.get_mut(id as usize) {
        *slot = NodeState::Up { raft: raft.clone(), sm, shared, reader };
    }
    let mut n = net::lock(net);
    n.up.insert(id, raft);
    n.gates.insert(id, gate);
    Ok(())
}

/// Boots node `id` (on its madsim node), retrying injected I/O failures;
/// a corrupt disk makes it refuse for good.
async fn boot_retrying(world: Shared, net: Net, id: u64) {
    for attempt in 0..50u32 {
        let res = boot(&world, &net, id).await;
        if !judge_boot(&world, id, attempt, res) {
            lock(&world).cycling[id as usize] = false;
            return;
        }
        madsim::time::sleep(Duration::from_millis(50)).await;
    }
    lock(&world).cycling[id as usize] = false;
    lock(&world).rec.fail(format!("node {id} could not boot in 50 attempts"));
}

/// Takes in a boot's result; `true`: retry it.
fn judge_boot(world: &Shared, id: u64, attempt: u32, res: Result<(), BootFailure>) -> bool {
    let mut w = lock(world);
    w.absorb_faults();
    let boots = w.boots[id as usize];
    let media = w.media_hit[id as usize];
    let res = match res {
        // An unreadable sector stays unreadable: after a few tries the
        // operator takes the node out (it refuses to start).
        Err(BootFailure::Retry(e)) if media && attempt >= 3 => Err(BootFailure::Corrupt(e)),
        // Raft::new found the log and the state machine do not fit (a lost
        // snapshot file: purged entries no snapshot covers): the node
        // cannot start with the state it has.
        Err(BootFailure::Bug(e)) if media && e.starts_with("Raft::new") => Err(BootFailure::Corrupt(e)),
        other => other,
    };
    match res {
        Ok(()) => {
            w.boots[id as usize] += 1;
            if boots > 0 {
                w.mark(ClusterMark::NodeRebooted);
            }
            w.rec.note(|| format!("n{id} booted (boot {boots}, attempt {attempt})"), Event::ClusterNode, &[id, 1]);
            false
        }
        Err(BootFailure::Retry(e)) => {
            w.mark(ClusterMark::BootRetried);
            w.rec.note(|| format!("n{id} boot failed, retrying: {e}"), Event::ClusterNode, &[id, 2]);
            // The operator frees space and reboots.
            let fs = w.disks[id as usize].clone();
            let mut cfg = fs.config();
            cfg.capacity_bytes = None;
            fs.set_config(cfg);
            fs.crash_with(CrashPolicy::LoseAll);
            true
        }
        Err(BootFailure::Corrupt(e)) => {
            let hit = w.media_hit[id as usize];
            w.rec.note(|| format!("n{id} refuses to start: {e}"), Event::ClusterNode, &[id, 3]);
            if !hit {
                w.rec.fail(format!("node {id} reported corruption without a media fault on its disk: {e}"));
            }
            w.mark(ClusterMark::RefusedCorrupt);
            w.nodes[id as usize] = NodeState::Refused;
            false
        }
        Err(BootFailure::Bug(e)) => {
            w.rec.fail(format!("node {id} failed to boot: {e}"));
            w.nodes[id as usize] = NodeState::Refused;
            false
        }
    }
}

/// Kills node `id` (power failure of its disk) and boots it again later.
async fn power_cycle(world: &Shared, net: &Net, id: u64, down_ms: u64) {
    let handle = madsim::runtime::Handle::current();
    let sim_id = lock(world).sim_ids[id as usize];
    {
        let mut w = lock(world);
        if matches!(w.nodes[id as usize], NodeState::Refused) || w.cycling[id as usize] {
            return;
        }
        w.cycling[id as usize] = true;
        w.nodes[id as usize] = NodeState::Down;
    }
    {
        let mut n = net::lock(net);
        n.up.remove(&id);
        n.gates.remove(&id);
    }
    handle.kill(sim_id);
    {
        let mut w = lock(world);
        w.rec.note(|| format!("n{id} POWER FAILURE (down {down_ms} ms)"), Event::ClusterNode, &[id, 0, down_ms]);
        w.absorb_faults();
    }
    madsim::time::sleep(Duration::from_millis(down_ms)).await;
    handle.restart(sim_id);
    if let Some(node) = handle.get_node(sim_id) {
        let (w2, n2) = (Arc::clone(world), Arc::clone(net));
        node.spawn(boot_retrying(w2, n2, id));
    }
}

async fn supervise(world: Shared, net: Net) {
    let handle = madsim::runtime::Handle::current();
    let disks = lock(&world).disks.clone();
    let mut sim_ids = Vec::new();
    for (i, fs) in disks.iter().enumerate() {
        let node = handle.create_node().name(format!("n{i}")).build();
        SimFsPlugin::current().attach(node.id(), fs.clone());
        sim_ids.push(node.id());
    }
    {
        let mut w = lock(&world);
        w.sim_ids = sim_ids.clone();
        let m = w.media_node;
        w.rec.note(|| format!("{NODES} nodes; n{m}'s disk takes media faults"), Event::ClusterNode, &[m, 6]);
    }
    for (i, sid) in sim_ids.iter().enumerate() {
        if let Some(node) = handle.get_node(*sid) {
            node.spawn(boot_retrying(Arc::clone(&world), Arc::clone(&net), i as u64));
        }
    }
    // Node 0 initializes the cluster once all three are up.
    for _ in 0..100 {
        madsim::time::sleep(Duration::from_millis(10)).await;
        if lock(&world).nodes.iter().all(|n| matches!(n, NodeState::Up { .. })) {
            break;
        }
    }
    let first = lock(&world).up(0).cloned();
    let Some(first) = first else {
        lock(&world).rec.fail("the cluster's nodes did not all boot".into());
        return;
    };
    let members: BTreeMap<u64, BasicNode> = (0..NODES).map(|i| (i, BasicNode::default())).collect();
    if let Err(e) = first.initialize(members).await {
        lock(&world).rec.fail(format!("initialize failed: {e}"));
        return;
    }
    lock(&world).initialized = true;
    let client_node = handle.create_node().name("clients").build();
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        clients.push(client_node.spawn(client(Arc::clone(&world), c)));
    }
    let observer = client_node.spawn(observe(Arc::clone(&world), Arc::clone(&net)));
    let faults = client_node.spawn(fault_loop(Arc::clone(&world), Arc::clone(&net)));
    for c in clients {
        let _ = c.await;
    }
    faults.abort();
    let _ = faults.await;
    quiesce(&world, &net).await;
    observer.abort();
    final_checks(&world).await;
    // Wind down.
    let rafts: Vec<SimRaft> = lock(&world)
        .nodes
        .iter()
        .filter_map(|n| match n {
            NodeState::Up { raft, .. } => Some(raft.clone()),
            _ => None,
        })
        .collect();
    for r in rafts {
        let _ = r.shutdown().await;
    }
    {
        let mut n = net::lock(&net);
        n.up.clear();
        n.gates.clear();
    }
    for sid in sim_ids {
        SimFsPlugin::current().detach(sid);
        handle.kill(sid);
    }
}

fn rand_range(lo: u64, hi: u64) -> u64 {
    madsim::rand::thread_rng().gen_range(lo..hi)
}

/// A client: `ops` operations shared with the other clients, each on a
/// random key through the node it believes leads, with a 2 s deadline.
async fn client(world: Shared, c: u64) {
    let mut target = c % NODES;
    loop {
        // A cluster that cannot serve (no majority can boot) is judged by
        // the liveness check; the clients stop after 120 simulated seconds.
        if lock(&world).ops_left == 0 || madsim::time::TimeHandle::current().elapsed() > Duration::from_secs(120) {
            return;
        }
        let raft = lock(&world).up(target).cloned();
        let Some(raft) = raft else {
            target = rand_range(0, NODES);
            madsim::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let key = format!("k{}", rand_range(0, KEYS));
        let kind = rand_range(0, 10);
        if kind < 4 {
            target = read(&world, &raft, c, target, key).await;
            continue;
        }
        let value = {
            let mut w = lock(&world);
            w.values += 1;
            format!("v{}", w.values)
        };
        let (req, input) = if kind < 8 {
            (KvRequest::Set { key: key.clone(), value: value.clone() }, linear::Input::Put(value))
        } else {
            let expected = {
                let w = lock(&world);
                // Mostly a value the key may well hold: the last one written.
                w.history.iter().rev().find_map(|o| match (o.key == key, &o.input) {
                    (true, linear::Input::Put(v)) => Some(v.clone()),
                    _ => None,
                })
            };
            (
                KvRequest::CompareAndSet { key: key.clone(), expected: expected.clone(), value: value.clone() },
                linear::Input::Cas { expected, new: value },
            )
        };
        let call = lock(&world).next_stamp();
        let res = madsim::time::timeout(Duration::from_secs(2), raft.client_write(req.clone())).await;
        let pause = {
            let mut pause = false;
            let mut w = lock(&world);
            let stamp = w.next_stamp();
            match res {
                Ok(Ok(resp)) => {
                    w.count_op();
                    let previous = resp.data.previous.clone();
                    if let linear::Input::Cas { expected, .. } = &input {
                        w.mark(if &previous == expected { ClusterMark::CasSwapped } else { ClusterMark::CasRefused });
                    }
                    let (term, index) = (resp.log_id.leader_id.term, resp.log_id.index);
                    w.rec.note(
                        || format!("c{c} n{target} {req:?} -> ok at {term}-{index}, previous {previous:?}"),
                        Event::ClusterOp,
                        &[c, 1, term, index],
                    );
                    if let Some((t, r)) = w.acked.insert(index, (term, req.clone()))
                        && (t != term || r != req)
                    {
                        w.rec.fail(format!(
                            "two writes acknowledged at index {index}: {r:?} in term {t}, then {req:?} in term {term}"
                        ));
                    }
                    w.history.push(linear::Operation { key, input, call, ret: Some((stamp, previous)) });
                }
                Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                    w.rec.note(
                        || format!("c{c} n{target} {req:?} -> not leader ({:?})", f.leader_id),
                        Event::ClusterOp,
                        &[c, 2],
                    );
                    target = f.leader_id.unwrap_or_else(|| rand_range(0, NODES));
                    pause = true;
                }
                Ok(Err(e)) => {
                    w.count_op();
                    w.mark(ClusterMark::UnknownOutcome);
                    w.rec.note(|| format!("c{c} n{target} {req:?} -> unknown: {e}"), Event::ClusterOp, &[c, 3]);
                    w.history.push(linear::Operation { key, input, call, ret: None });
                    target = rand_range(0, NODES);
                }
                Err(_) => {
                    w.count_op();
                    w.mark(ClusterMark::UnknownOutcome);
                    w.rec.note(|| format!("c{c} n{target} {req:?} -> timed out"), Event::ClusterOp, &[c, 4]);
                    w.history.push(linear::Operation { key, input, call, ret: None });
                    target = rand_range(0, NODES);
                }
            }
            pause
        };
        if pause {
            // No leader known yet: an election is under way.
            madsim::time::sleep(Duration::from_millis(rand_range(10, 60))).await;
        }
    }
}

/// A linearizable read: `ensure_linearizable` on the node, then its state
/// machine. A failed read changes nothing and is left out of the history.
async fn read(world: &Shared, raft: &SimRaft, c: u64, target: u64, key: String) -> u64 {
    let call = lock(world).next_stamp();
    let res = madsim::time::timeout(Duration::from_secs(2), raft.ensure_linearizable()).await;
    let (next, pause) = {
        let mut w = lock(world);
        match res {
            Ok(Ok(_)) => {
                let value = match w.nodes.get(target as usize) {
                    Some(NodeState::Up { sm, .. }) => Some(sm.get(&key)),
                    _ => None,
                };
                match value {
                    Some(value) => {
                        let stamp = w.next_stamp();
                        w.mark(ClusterMark::ReadServed);
                        w.count_op();
                        w.rec.note(|| format!("c{c} n{target} get {key} -> {value:?}"), Event::ClusterOp, &[c, 5]);
                        w.history.push(linear::Operation {
                            key,
                            input: linear::Input::Get,
                            call,
                            ret: Some((stamp, value)),
                        });
                        (target, false)
                    }
                    None => (rand_range(0, NODES), false),
                }
            }
            Ok(Err(e)) => {
                w.rec.note(|| format!("c{c} n{target} get {key} -> {e}"), Event::ClusterOp, &[c, 6]);
                (e.forward_to_leader().and_then(|f| f.leader_id).unwrap_or_else(|| rand_range(0, NODES)), true)
            }
            Err(_) => {
                w.count_op();
                w.rec.note(|| format!("c{c} n{target} get {key} -> timed out"), Event::ClusterOp, &[c, 7]);
                (rand_range(0, NODES), false)
            }
        }
    };
    if pause {
        madsim::time::sleep(Duration::from_millis(rand_range(10, 60))).await;
    }
    next
}

/// Watches every node's metrics: one leader per term; a node whose Raft
/// stopped on a storage error is rebooted; purges are counted.
async fn observe(world: Shared, net: Net) {
    let mut purged: BTreeMap<u64, u64> = BTreeMap::new();
    loop {
        madsim::time::sleep(Duration::from_millis(5)).await;
        let rafts: Vec<(u64, SimRaft)> =
            (0..NODES).filter_map(|i| lock(&world).up(i).cloned().map(|r| (i, r))).collect();
        for (id, raft) in rafts {
            let m = raft.metrics().borrow().clone();
            let mut w = lock(&world);
            // openraft's default leader id is (term, node): a term may have
            // several leaders, the later one valid (its vote is greater);
            // what must hold is that votes are durable (checked at boot)
            // and the history and logs (checked at the end).
            if m.state == ServerState::Leader && !w.leaders.contains_key(&(m.current_term, id)) {
                if w.leaders.range((m.current_term, 0)..(m.current_term + 1, 0)).next().is_some() {
                    w.mark(ClusterMark::TwoLeadersOneTerm);
                }
                w.leaders.insert((m.current_term, id), id);
                w.mark(ClusterMark::NewLeader);
                w.rec.note(
                    || format!("n{id} leads term {}", m.current_term),
                    Event::ClusterNode,
                    &[id, 4, m.current_term],
                );
            }
            let p = m.purged.map_or(0, |p| p.index + 1);
            if p > purged.get(&id).copied().unwrap_or(0) {
                purged.insert(id, p);
                w.mark(ClusterMark::Purged);
            }
            if let Err(e) = &m.running_state {
                w.mark(ClusterMark::StorageErrorStoppedNode);
                w.rec.note(|| format!("n{id} stopped: {e}; rebooting it"), Event::ClusterNode, &[id, 5]);
                w.absorb_faults();
                w.stops[id as usize] += 1;
                if w.media_hit[id as usize] && w.stops[id as usize] >= 8 {
                    // A disk with media damage that keeps stopping the node
                    // (an unreadable sector that reads hit again after every
                    // reboot): the operator takes the node out.
                    let n = w.stops[id as usize];
                    w.rec.note(
                        || format!("n{id} taken out: its damaged disk stopped it {n} times"),
                        Event::ClusterNode,
                        &[id, 7],
                    );
                    w.mark(ClusterMark::RefusedCorrupt);
                    w.nodes[id as usize] = NodeState::Refused;
                    let sim_id = w.sim_ids[id as usize];
                    drop(w);
                    net::lock(&net).up.remove(&id);
                    madsim::runtime::Handle::current().kill(sim_id);
                    continue;
                }
                drop(w);
                let (w2, n2) = (Arc::clone(&world), Arc::clone(&net));
                madsim::task::spawn(async move { power_cycle(&w2, &n2, id, 10).await });
            }
        }
    }
}

/// The faults: power failures, partitions, loss and delay, full disks,
/// EIO, snapshots.
async fn fault_loop(world: Shared, net: Net) {
    loop {
        madsim::time::sleep(Duration::from_millis(rand_range(30, 300))).await;
        let action = rand_range(0, 100);
        let id = rand_range(0, NODES);
        let leader = lock(&world).leaders.iter().next_back().map(|(_, &l)| l);
        if action < 22 {
            let down = rand_range(0, 400);
            let (w2, n2) = (Arc::clone(&world), Arc::clone(&net));
            madsim::task::spawn(async move { power_cycle(&w2, &n2, id, down).await });
        } else if action < 40 {
            let victim = if action < 30 { leader.unwrap_or(id) } else { id };
            let links: Vec<(u64, u64)> = if action.is_multiple_of(3) {
                let other = (victim + 1 + rand_range(0, NODES - 1)) % NODES;
                lock(&world).mark(ClusterMark::OneWayCut);
                vec![if action.is_multiple_of(2) { (victim, other) } else { (other, victim) }]
            } else {
                if Some(victim) == leader {
                    lock(&world).mark(ClusterMark::LeaderIsolated);
                }
                (0..NODES).filter(|&o| o != victim).flat_map(|o| [(victim, o), (o, victim)]).collect()
            };
            let heal = rand_range(100, 1500);
            lock(&world).rec.note(|| format!("cut {links:?} for {heal} ms"), Event::ClusterNet, &[1, victim, heal]);
            net::lock(&net).cut.extend(links.iter().copied());
            let n2 = Arc::clone(&net);
            madsim::task::spawn(async move {
                madsim::time::sleep(Duration::from_millis(heal)).await;
                let mut n = net::lock(&n2);
                for l in &links {
                    n.cut.remove(l);
                }
            });
        } else if action < 50 {
            let loss = [0.0, 0.02, 0.1, 0.3][rand_range(0, 4) as usize];
            net::lock(&net).loss = loss;
            lock(&world).rec.note(|| format!("message loss {loss}"), Event::ClusterNet, &[2, (loss * 100.0) as u64]);
        } else if action < 58 {
            let d = [2, 20, 80][rand_range(0, 3) as usize];
            net::lock(&net).max_delay_ms = d;
            lock(&world).rec.note(|| format!("max delay {d} ms"), Event::ClusterNet, &[3, d]);
        } else if action < 68 {
            let fs = lock(&world).disks[id as usize].clone();
            let mut cfg = fs.config();
            let room = rand_range(0, 16384);
            cfg.capacity_bytes = Some(fs.used_bytes() + room);
            fs.set_config(cfg);
            let free = rand_range(100, 1500);
            {
                let mut w = lock(&world);
                w.mark(ClusterMark::DiskFilled);
                w.rec.note(
                    || format!("n{id} disk full in {room} bytes, for {free} ms"),
                    Event::ClusterNet,
                    &[4, id, room, free],
                );
            }
            madsim::task::spawn(async move {
                madsim::time::sleep(Duration::from_millis(free)).await;
                let mut cfg = fs.config();
                cfg.capacity_bytes = None;
                fs.set_config(cfg);
            });
        } else if action < 76 {
            let fs = lock(&world).disks[id as usize].clone();
            let mut cfg = fs.config();
            cfg.p_sync_eio = 0.05;
            cfg.p_write_eio = 0.02;
            fs.set_config(cfg);
            let off = rand_range(50, 800);
            lock(&world).rec.note(|| format!("n{id} disk EIO for {off} ms"), Event::ClusterNet, &[5, id, off]);
            madsim::task::spawn(async move {
                madsim::time::sleep(Duration::from_millis(off)).await;
                let mut cfg = fs.config();
                cfg.p_sync_eio = 0.0;
                cfg.p_write_eio = 0.0;
                fs.set_config(cfg);
            });
        } else if action < 84 {
            let raft = lock(&world).up(id).cloned();
            if let Some(r) = raft {
                let _ = r.trigger().snapshot().await;
                lock(&world).rec.note(|| format!("n{id} snapshot triggered"), Event::ClusterNet, &[6, id]);
            }
        }
    }
}

/// Faults stop: links heal, disks become reliable with room, stopped
/// nodes reboot; the cluster must take a write and converge.
async fn quiesce(world: &Shared, net: &Net) {
    {
        let mut n = net::lock(net);
        n.cut.clear();
        n.loss = 0.0;
        n.max_delay_ms = 5;
        let (sent, lost, refused) = (n.sent, n.lost, n.fence_refusals);
        drop(n);
        let mut w = lock(world);
        if lost > 0 {
            w.mark(ClusterMark::MessageLost);
        }
        if refused > 0 {
            w.mark(ClusterMark::VoteRefusedByFence);
        }
        for fs in &w.disks {
            fs.set_config(FaultConfig::default());
        }
        w.rec.note(|| format!("FAULTS STOP ({sent} messages sent, {lost} lost)"), Event::ClusterNet, &[7]);
    }
    let deadline = madsim::time::Instant::now() + Duration::from_secs(30);
    // A write must commit.
    let mut wrote = None;
    while madsim::time::Instant::now() < deadline {
        madsim::time::sleep(Duration::from_millis(100)).await;
        let rafts: Vec<SimRaft> = (0..NODES).filter_map(|i| lock(world).up(i).cloned()).collect();
        let Some(leader) = rafts.iter().find(|r| r.metrics().borrow().state == ServerState::Leader).cloned() else {
            continue;
        };
        let req = KvRequest::Set { key: "liveness".into(), value: "done".into() };
        if let Ok(Ok(resp)) = madsim::time::timeout(Duration::from_secs(1), leader.client_write(req)).await {
            wrote = Some(resp.log_id);
            break;
        }
    }
    let Some(wrote) = wrote else {
        lock(world).rec.fail("liveness: no write committed within 30 s after the faults stopped".into());
        return;
    };
    // Every node that can run applies it.
    while madsim::time::Instant::now() < deadline + Duration::from_secs(30) {
        madsim::time::sleep(Duration::from_millis(100)).await;
        let w = lock(world);
        let all = w.nodes.iter().all(|n| match n {
            NodeState::Up { sm, .. } => sm.last_applied().is_some_and(|a| a.index >= wrote.index),
            NodeState::Refused => true,
            NodeState::Down => false,
        });
        if all {
            drop(w);
            lock(world).rec.note(|| format!("converged at {wrote}"), Event::ClusterCheck, &[wrote.index]);
            return;
        }
    }
    let w = lock(world);
    let states: Vec<String> = w
        .nodes
        .iter()
        .map(|n| match n {
            NodeState::Up { sm, .. } => format!("up, applied {:?}", sm.last_applied()),
            NodeState::Refused => "refused".into(),
            NodeState::Down => "down".into(),
        })
        .collect();
    drop(w);
    lock(world).rec.fail(format!("liveness: nodes did not converge on {wrote} within 60 s: {states:?}"));
}

async fn final_checks(world: &Shared) {
    if lock(world).rec.failure.is_some() {
        return;
    }
    // The final state of every key, read from each node, is one more
    // operation after everything else.
    let ups: Vec<(u64, KvStateMachine<SimKv>, SharedLog, LogReader<SimKv>)> = lock(world)
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match n {
            NodeState::Up { sm, shared, reader, .. } => Some((i as u64, sm.clone(), shared.clone(), reader.clone())),
            _ => None,
        })
        .collect();
    let Some(acked) = check_history_and_states(world, &ups) else { return };

    // Every acknowledged write is in every log (or under its snapshot),
    // and logs agree where their terms agree.
    let mut logs: Vec<(u64, BTreeMap<u64, openraft::Entry<SimKv>>)> = Vec::new();
    for (id, _, shared, reader) in &ups {
        let (first, next) = (shared.first_offset(), shared.next_offset());
        let mut r = reader.clone();
        let entries = match r.try_get_log_entries(first..next).await {
            Ok(e) => e,
            Err(e) => {
                let mut w = lock(world);
                let msg = e.to_string();
                // A media fault on this node's disk the log detects on
                // read (a damaged frame or an unreadable sector): the node
                // would stop on that read; its log is not compared.
                if w.media_hit[*id as usize] && (msg.contains("corruption in") || msg.contains("unreadable sector")) {
                    w.mark(ClusterMark::DamageDetectedOnRead);
                    w.rec.note(|| format!("n{id}: its log reports media damage: {msg}"), Event::ClusterCheck, &[*id]);
                    continue;
                }
                w.rec.fail(format!("node {id}: reading its log {first}..{next} failed: {msg}"));
                return;
            }
        };
        let mut w = lock(world);
        for (&index, (term, req)) in acked.range(first..) {
            let found = entries.iter().find(|e| e.log_id.index == index);
            let ok = found.is_some_and(|e| {
                e.log_id.leader_id.term == *term && e.payload == openraft::EntryPayload::Normal(req.clone())
            });
            if !ok {
                w.rec.fail(format!(
                    "node {id}: the write acknowledged at index {index} (term {term}, {req:?}) is {}; its log holds {first}..{next}",
                    match found {
                        Some(e) => format!("replaced by {} {:?}", e.log_id, e.payload),
                        None => "missing".into(),
                    }
                ));
                return;
            }
        }
        logs.push((*id, entries.into_iter().map(|e| (e.log_id.index, e)).collect()));
    }
    let mut w = lock(world);
    for (i, (a_id, a)) in logs.iter().enumerate() {
        for (b_id, b) in logs.iter().skip(i + 1) {
            for (index, ea) in a {
                if let Some(eb) = b.get(index)
                    && ea.log_id == eb.log_id
                    && ea.payload != eb.payload
                {
                    w.rec.fail(format!(
                        "log matching: index {index} in term {} differs between node {a_id} and node {b_id}",
                        ea.log_id.leader_id.term
                    ));
                    return;
                }
            }
        }
    }
    w.rec.note(
        || format!("{} acknowledged writes found in {} logs", acked.len(), logs.len()),
        Event::ClusterCheck,
        &[acked.len() as u64],
    );
}

/// The history (with every node's final value of each key) is
/// linearizable and the state machines agree; `Some(acknowledged writes)`
/// if so (else the failure is recorded).
fn check_history_and_states(
    world: &Shared,
    ups: &[(u64, KvStateMachine<SimKv>, SharedLog, LogReader<SimKv>)],
) -> Option<BTreeMap<u64, (u64, KvRequest)>> {
    let mut w = lock(world);
    let mut history = w.history.clone();
    for (id, sm, _, _) in ups {
        for k in 0..KEYS {
            let key = format!("k{k}");
            let call = w.next_stamp();
            let ret = w.next_stamp();
            let value = sm.get(&key);
            let _ = id;
            history.push(linear::Operation { key, input: linear::Input::Get, call, ret: Some((ret, value)) });
        }
    }
    if let Err(e) = linear::check(&history) {
        w.rec.fail(format!("the client history is not linearizable: {e}"));
        return None;
    }
    w.rec.note(
        || format!("history of {} operations is linearizable", history.len()),
        Event::ClusterCheck,
        &[history.len() as u64],
    );
    // State machines agree.
    if let Some((first_id, first_sm, _, _)) = ups.first() {
        for (id, sm, _, _) in ups.iter().skip(1) {
            if sm.dump() != first_sm.dump() {
                w.rec.fail(format!(
                    "state machines differ after convergence: node {first_id} {:?}, node {id} {:?}",
                    first_sm.dump(),
                    sm.dump()
                ));
                return None;
            }
        }
    }
    Some(w.acked.clone())
}
