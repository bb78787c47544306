//! From one seed, a whole scenario: workload, log configuration, fault plan
//! (swarm testing: every seed picks its own mix), and the file format that
//! saves a scenario for replay.

use std::path::Path;

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use seglog_core::{Config, SyncPolicy};
use serde::{Deserialize, Serialize};
use sim_fs::{Canary, CrashPolicy, FaultConfig};

/// What to run: everything else derives from these fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The seed.
    pub seed: u64,
    /// Operations to run (across all client tasks), before the final
    /// liveness phase.
    pub ops: u32,
    /// A planted filesystem lie, by name (see [`Canary::name`]).
    #[serde(default)]
    pub canary: Option<String>,
    /// The client ops to run instead of drawing them: the `n`th op any
    /// client runs is the script's `n`th (its draw from the seed still
    /// happens and is discarded, so the script a run recorded replays it
    /// bit for bit); the run ends when the script does. Everything else —
    /// configuration, fault plan, crashes, restarts, background rolls, the
    /// sizes and offsets an op picks — still comes from the seed. `None`:
    /// every op is drawn. (Single-handle seeds only.)
    #[serde(default)]
    pub script: Option<Vec<ScriptStep>>,
}

/// One client op of a [`Scenario`]'s script: which client ran it when it
/// was recorded (shown for reading; at replay the op goes to whichever
/// client asks next), the op, and how many turns in a row it takes (the
/// writer merges runs of `pass`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptStep {
    /// The client that ran it.
    #[serde(default)]
    pub client: u32,
    /// The op.
    #[serde(flatten)]
    pub op: crate::op::Op,
    /// Turns in a row (1 unless written otherwise).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

#[expect(clippy::trivially_copy_pass_by_ref, reason = "serde's skip_serializing_if passes a reference")]
fn is_one(n: &u32) -> bool {
    *n == 1
}

/// A script with every step's `times` spelled out, one step per turn.
pub fn expand(script: &[ScriptStep]) -> Vec<ScriptStep> {
    script
        .iter()
        .flat_map(|s| std::iter::repeat_n(ScriptStep { times: 1, ..*s }, s.times.min(MAX_OPS) as usize))
        .collect()
}

/// A script with runs of `pass` merged into one step each (client 0).
pub fn compress(script: &[ScriptStep]) -> Vec<ScriptStep> {
    let mut out: Vec<ScriptStep> = Vec::new();
    for s in expand(script) {
        match out.last_mut() {
            Some(last) if last.op == crate::op::Op::Pass && s.op == crate::op::Op::Pass => last.times += 1,
            _ if s.op == crate::op::Op::Pass => out.push(ScriptStep { client: 0, ..s }),
            _ => out.push(s),
        }
    }
    out
}

/// The fields of a version-1 (binary) scenario file.
#[derive(Deserialize)]
struct ScenarioV1 {
    seed: u64,
    ops: u32,
    canary: Option<String>,
}

impl Scenario {
    /// A scenario with the default op count and no canary.
    pub fn new(seed: u64, ops: u32) -> Self {
        Self { seed, ops, canary: None, script: None }
    }

    /// The canary, parsed.
    pub fn canary(&self) -> Result<Option<Canary>, String> {
        match &self.canary {
            None => Ok(None),
            Some(name) => Canary::from_name(name).map(Some).ok_or_else(|| {
                let names: Vec<&str> = Canary::ALL.iter().map(|c| c.name()).collect();
                format!("unknown canary `{name}`; known: {}", names.join(", "))
            }),
        }
    }

    /// The scenario as a JSON document, one script step per line, for
    /// people to read and edit.
    pub fn to_json(&self) -> String {
        let field = |v: &dyn erased::Json| v.json();
        let mut out = String::from("{\n");
        out.push_str(&format!("  \"format\": {},\n", field(&SCENARIO_JSON_FORMAT)));
        out.push_str(&format!("  \"seed\": {},\n  \"ops\": {},\n", self.seed, self.ops));
        out.push_str(&format!("  \"canary\": {}", field(&self.canary)));
        match &self.script {
            None => out.push('\n'),
            Some(steps) => {
                let steps = compress(steps);
                out.push_str(",\n  \"script\": [");
                for (i, step) in steps.iter().enumerate() {
                    out.push_str(if i == 0 { "\n    " } else { ",\n    " });
                    out.push_str(&field(step));
                }
                out.push_str(if steps.is_empty() { "]\n" } else { "\n  ]\n" });
            }
        }
        out.push_str("}\n");
        out
    }

    /// Saves the scenario as JSON ([`to_json`](Self::to_json)) so that
    /// `replay --scenario` can run it.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        std::fs::write(path, self.to_json()).map_err(|e| format!("writing {}: {e}", path.display()))
    }

    /// Loads a scenario file: JSON, or the binary format of earlier
    /// versions.
    pub fn load(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        Self::decode(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Decodes scenario file contents: JSON (`{"format":
    /// "seglog-sim-scenario/2", …}`), or version 1's bincode after
    /// [`SCENARIO_MAGIC`].
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let s = match bytes.strip_prefix(&SCENARIO_MAGIC[..]) {
            Some(body) => {
                // A limit bounds what a corrupt length prefix can make
                // bincode allocate (found by the `scenario` fuzz target).
                let config = bincode::config::standard().with_limit::<SCENARIO_MAX_BYTES>();
                let (v1, _): (ScenarioV1, usize) = bincode::serde::decode_from_slice(body, config)
                    .map_err(|e| format!("not a valid scenario: {e}"))?;
                Scenario { seed: v1.seed, ops: v1.ops, canary: v1.canary, script: None }
            }
            None => {
                if bytes.len() > SCENARIO_JSON_MAX_BYTES {
                    return Err(format!(
                        "scenario file of {} bytes; the limit is {SCENARIO_JSON_MAX_BYTES}",
                        bytes.len()
                    ));
                }
                let text = std::str::from_utf8(bytes).map_err(|_| NOT_A_SCENARIO.to_string())?;
                if !text.trim_start().starts_with('{') {
                    return Err(NOT_A_SCENARIO.into());
                }
                let mut v: serde_json::Value =
                    serde_json::from_str(text).map_err(|e| format!("not a valid scenario: {e}"))?;
                match v.as_object_mut().and_then(|o| o.remove("format")) {
                    Some(serde_json::Value::String(f)) if f == SCENARIO_JSON_FORMAT => {}
                    other => {
                        return Err(format!(
                            "not a scenario of this build: `format` is {other:?}, expected \"{SCENARIO_JSON_FORMAT}\""
                        ));
                    }
                }
                serde_json::from_value(v).map_err(|e| format!("not a valid scenario: {e}"))?
            }
        };
        if s.ops > MAX_OPS {
            return Err(format!("scenario asks for {} ops; the limit is {MAX_OPS}", s.ops));
        }
        let turns: u64 = s.script.iter().flatten().map(|step| u64::from(step.times)).sum();
        if turns > u64::from(MAX_OPS) {
            return Err(format!("the script takes {turns} turns; the limit is {MAX_OPS}"));
        }
        Ok(s)
    }
}

/// JSON of one value (the scenario writer's fields).
mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_else(|e| format!("\"<unencodable: {e}>\""))
        }
    }
}

const NOT_A_SCENARIO: &str = "not a scenario file (neither JSON nor the binary format); save one with `run --save-failures DIR` or `save-scenario`";
/// The `format` field of JSON scenario files.
pub const SCENARIO_JSON_FORMAT: &str = "seglog-sim-scenario/2";
/// Upper bound on a JSON scenario file's size.
pub const SCENARIO_JSON_MAX_BYTES: usize = 64 << 20;

/// Magic prefix of binary scenario files (format version 1, still read).
pub const SCENARIO_MAGIC: [u8; 8] = *b"SGLSCN\x00\x01";
/// Upper bound on a scenario file's encoded size (after the magic).
pub const SCENARIO_MAX_BYTES: usize = 4096;
/// Upper bound on ops per scenario.
pub const MAX_OPS: u32 = 1_000_000;

/// Relative weights of the client operations.
#[derive(Debug, Clone, Copy)]
pub struct OpWeights {
    pub append: u32,
    pub batch: u32,
    pub sync: u32,
    pub read: u32,
    pub iter: u32,
    pub time_lookup: u32,
    /// `verify` (drawn from the seed's own stream after the others, so
    /// every other weight of every seed is as before).
    pub verify: u32,
    pub truncate_from: u32,
    pub truncate_before: u32,
    /// Key compaction (0 unless the seed has `Params::compaction`).
    pub compact: u32,
}

impl OpWeights {
    pub fn total(&self) -> u32 {
        self.append
            + self.batch
            + self.sync
            + self.read
            + self.iter
            + self.time_lookup
            + self.verify
            + self.truncate_from
            + self.truncate_before
            + self.compact
    }
}

/// Everything a seed decides.
#[derive(Debug, Clone)]
pub struct Params {
    pub config: Config,
    pub faults: FaultConfig,
    pub weights: OpWeights,
    /// Largest value; sizes are drawn up to it, sometimes 0.
    pub value_max: usize,
    /// Keys are drawn from this many (0: unkeyed records).
    pub key_space: u32,
    pub n_clients: u32,
    /// Simulated milliseconds between a client's operations (upper bound).
    pub think_ms: u64,
    /// Ops after which the node is killed (ascending).
    pub crash_at: Vec<u32>,
    /// Probability of crashing again right after a recovery.
    pub p_crash_in_recovery: f64,
    /// Milliseconds between background rolls (`None`: never).
    pub roll_every_ms: Option<u64>,
    /// Drive the group-commit front ([`seglog_core::SharedLog`]) with
    /// concurrent producer and reader tasks instead of the single-handle
    /// workload.
    pub group: Option<GroupParams>,
    /// Key compaction in the single-handle workload.
    pub compaction: Option<CompactParams>,
    /// What the single-handle world does right after an injected fault.
    pub follow: FollowParams,
    /// Probability that the power fails at a random filesystem step of an
    /// op (single-handle world, seeded runs).
    pub power_cut: f64,
    /// When an open reports durable corruption that a media fault made,
    /// the operator salvages the log into a new directory (`seglog salvage
    /// --keep-offsets`) and the run goes on there, instead of ending.
    pub salvage: bool,
}

/// Follow-ups of injected faults (single-handle world): rare fault paths
/// are only worth reaching if what comes after them is checked too.
#[derive(Debug, Clone, Copy, Default)]
pub struct FollowParams {
    /// Probability that an op which met a fault is followed, within the
    /// next few ops, by a power failure (seeded runs only).
    pub p_crash: f64,
    /// Probability that an op which met a fault is followed by a full
    /// read-back through every read API.
    pub p_readback: f64,
    /// Probability that an op which left the log poisoned is followed by a
    /// reopen in the same boot (the process restarts, the machine stays
    /// up), as an application would reopen after a failed fsync.
    pub p_reopen: f64,
}

/// Compaction in a seed's op mix.
#[derive(Debug, Clone, Copy)]
pub struct CompactParams {
    /// Weight of the compact op among the client ops.
    pub weight: u32,
    /// Probability that the power fails at a random filesystem step of a
    /// compaction.
    pub p_crash: f64,
}

/// The group-commit world of a seed.
#[derive(Debug, Clone)]
pub struct GroupParams {
    pub producers: u32,
    /// Appends a producer keeps in flight (submitted, not yet resolved).
    pub depth: u32,
    pub readers: u32,
    /// Upper bound of the simulated fsync latency, in microseconds.
    pub fsync_us: u64,
    pub batch_records_max: usize,
    pub queue_records_max: usize,
    /// Probability that a producer's op is a truncation instead.
    pub p_truncate: f64,
    /// Probability that an append carries several records.
    pub p_batch: f64,
    /// Run a compactor task beside the producers (`SharedLog::compact`;
    /// only with unkeyed records, whose compaction drops nothing the
    /// checker tracks: it merges segments and drops records below the
    /// first offset).
    pub compactor: bool,
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, xs: &[T]) -> T {
    let i = rng.random_range(0..xs.len());
    xs.get(i).copied().unwrap_or_else(|| unreachable!("index in range"))
}

impl Params {
    /// Derives the parameters of `scn`.
    pub fn derive(scn: &Scenario) -> Result<Self, String> {
        let canary = scn.canary()?;
        let mut rng = ChaCha8Rng::seed_from_u64(scn.seed ^ 0x5CE7_A210);
        let segment_bytes_max = pick(&mut rng, &[4096, 8192, 32 << 10, 256 << 10]);
        let sync = match rng.random_range(0..4u8) {
            0 => SyncPolicy::Always,
            1 => {
                let n = rng.random_range(1..20);
                // Half of these seeds sync by time instead (`flush.ms`),
                // drawn from a stream of their own so that every other
                // parameter of every seed stays as it was.
                let mut by_time = ChaCha8Rng::seed_from_u64(scn.seed ^ 0xF1A5_0315);
                if by_time.random_bool(0.5) {
                    SyncPolicy::EveryMillis(by_time.random_range(1..400))
                } else {
                    SyncPolicy::EveryRecords(n)
                }
            }
            _ => SyncPolicy::Manual,
        };
        let config = Config {
            segment_bytes_max,
            segment_records_max: pick(&mut rng, &[8, 50, 1 << 20]),
            segment_age_ms_max: if rng.random_bool(0.3) { Some(rng.random_range(50..2000)) } else { None },
            index_interval_bytes: pick(&mut rng, &[64, 256, 4096]),
            record_bytes_max: 64 << 10,
            write_buffer_bytes: pick(&mut rng, &[4096, 16 << 10, 256 << 10]),
            sync,
            retention_bytes: if rng.random_bool(0.2) { Some(rng.random_range(8u64 << 10..256 << 10)) } else { None },
            retention_age_ms: if rng.random_bool(0.2) { Some(rng.random_range(100..5000)) } else { None },
            ..Config::default()
        };
        let value_max = pick(&mut rng, &[0, 16, 200, 2000, 6000]);
        let weights = OpWeights {
            append: rng.random_range(1..10),
            batch: rng.random_range(0..4),
            sync: rng.random_range(0..5),
            read: rng.random_range(0..5),
            iter: rng.random_range(0..3),
            time_lookup: rng.random_range(0..2),
            truncate_from: if rng.random_bool(0.4) { 1 } else { 0 },
            truncate_before: if rng.random_bool(0.4) { 1 } else { 0 },
            compact: 0,
            verify: 0,
        };
        // Swarm: each fault is on for some seeds only, with its own rate.
        let mut on = |p: f64| rng.random_bool(p);
        let capacity = on(0.15);
        let short_io = on(0.3);
        let sync_eio = on(0.15);
        let dir_eio = on(0.1);
        let write_eio = on(0.1);
        let misdirect = on(0.05);
        let flip = on(0.15);
        let bad = on(0.1);
        let mut policies: Vec<CrashPolicy> =
            CrashPolicy::ALL.iter().copied().filter(|_| rng.random_bool(0.6)).collect();
        if policies.is_empty() {
            policies.push(pick(&mut rng, &CrashPolicy::ALL));
        }
        let mut faults = FaultConfig {
            sector_bytes: pick(&mut rng, &[64, 512, 4096]),
            capacity_bytes: capacity.then(|| rng.random_range(16u64 << 10..512 << 10)),
            crash_policies: policies,
            p_short_io: if short_io { rng.random_range(0.05..0.5) } else { 0.0 },
            p_sync_eio: if sync_eio { rng.random_range(0.005..0.05) } else { 0.0 },
            p_dir_sync_eio: if dir_eio { rng.random_range(0.005..0.05) } else { 0.0 },
            p_write_eio: if write_eio { rng.random_range(0.001..0.02) } else { 0.0 },
            p_misdirected_write: if misdirect { rng.random_range(0.005..0.05) } else { 0.0 },
            p_bitflip_at_crash: if flip { rng.random_range(0.1..0.9) } else { 0.0 },
            p_bad_sector_at_crash: if bad { rng.random_range(0.1..0.9) } else { 0.0 },
            p_file_lost_at_crash: 0.0,
            canary,
        };
        let mut n_crashes = rng.random_range(0..5u32);
        let mut config = config;
        if let Some(c) = canary {
            // Canary runs: no other faults, and a workload that exercises
            // the lie.
            faults = FaultConfig {
                crash_policies: vec![CrashPolicy::LoseAll, CrashPolicy::KeepPrefix],
                canary: Some(c),
                ..FaultConfig::default()
            };
            n_crashes = n_crashes.max(2);
            match c {
                Canary::SyncNoop => {}
                Canary::DirSyncNoop => config.segment_bytes_max = 4096,
                Canary::SilentBitflip => {}
                Canary::EnospcLies => faults.capacity_bytes = Some(rng.random_range(8u64 << 10..64 << 10)),
            }
        }
        // The group-commit world, from its own stream (so the fields above
        // stay what they were for every seed). It runs without media faults
        // (the single-handle world covers those) and without retention (its
        // checker pins the first offset).
        let mut g = ChaCha8Rng::seed_from_u64(scn.seed ^ 0x6A0F_C0DE);
        let group = g.random_bool(0.3).then(|| GroupParams {
            producers: g.random_range(1..=12),
            depth: g.random_range(1..=3),
            readers: g.random_range(0..=2),
            fsync_us: pick(&mut g, &[0, 50, 300, 2000]),
            batch_records_max: pick(&mut g, &[1, 4, 64, 4096]),
            queue_records_max: pick(&mut g, &[2, 16, 1024]),
            p_truncate: if g.random_bool(0.5) { g.random_range(0.002..0.02) } else { 0.0 },
            p_batch: if g.random_bool(0.5) { 0.2 } else { 0.0 },
            compactor: g.random_bool(0.5),
        });
        if group.is_some() {
            faults.p_misdirected_write = 0.0;
            faults.p_bitflip_at_crash = 0.0;
            faults.p_bad_sector_at_crash = 0.0;
            config.retention_bytes = None;
            config.retention_age_ms = None;
        }
        // Lost files, from a stream of their own (so every field above stays
        // what it was for every seed); single-handle world only, like the
        // other media faults.
        let mut l = ChaCha8Rng::seed_from_u64(scn.seed ^ 0x1057_F11E);
        if group.is_none() && canary.is_none() && l.random_bool(0.1) {
            faults.p_file_lost_at_crash = l.random_range(0.1..0.6);
        }
        // Compaction, from a stream of its own (single-handle world only).
        let mut c = ChaCha8Rng::seed_from_u64(scn.seed ^ 0xC0A1_E5CE);
        let compaction = (group.is_none() && canary.is_none() && c.random_bool(0.4))
            .then(|| CompactParams { weight: c.random_range(1..=2), p_crash: pick(&mut c, &[0.0, 0.3, 0.7]) });
        let mut weights = weights;
        if let Some(cp) = compaction {
            weights.compact = cp.weight;
            config.tombstone_retention_ms = pick(&mut c, &[0, 200, 5_000]);
            config.compaction_map_bytes = pick(&mut c, &[4096, 8192, 1 << 20]);
        }
        // `verify`, from a stream of its own (single-handle world): most
        // seeds never verify (it reads every segment), some now and then.
        let mut v = ChaCha8Rng::seed_from_u64(scn.seed ^ 0x0E21_F1ED);
        if group.is_none() && v.random_bool(0.3) {
            weights.verify = 1;
        }
        // Fault follow-ups, from a stream of their own (single-handle world).
        let mut f = ChaCha8Rng::seed_from_u64(scn.seed ^ 0xF011_0A5E);
        let follow = if group.is_none() {
            FollowParams {
                p_crash: pick(&mut f, &[0.0, 0.3, 0.7]),
                p_readback: pick(&mut f, &[0.0, 0.3, 0.7]),
                p_reopen: pick(&mut f, &[0.0, 0.3, 0.7]),
            }
        } else {
            FollowParams::default()
        };
        // Power cuts mid-op, from a stream of their own (single-handle
        // world, no canary: a canary seed's crashes are its own).
        let mut pc = ChaCha8Rng::seed_from_u64(scn.seed ^ 0x0C07_F00E);
        let power_cut = if group.is_none() && canary.is_none() { pick(&mut pc, &[0.0, 0.0, 0.01, 0.04]) } else { 0.0 };
        // Operator salvage after detected corruption, from a stream of its
        // own (single-handle world).
        let mut sv = ChaCha8Rng::seed_from_u64(scn.seed ^ 0x5A1_4A6E);
        let salvage = group.is_none() && sv.random_bool(0.75);
        let mut crash_at: Vec<u32> = (0..n_crashes).map(|_| rng.random_range(0..scn.ops.max(1))).collect();
        crash_at.sort_unstable();
        Ok(Params {
            config,
            faults,
            weights,
            value_max,
            key_space: match (pick(&mut rng, &[0, 4, 100]), compaction) {
                // Compaction needs keys to work on.
                (0, Some(_)) => 4,
                (k, _) => k,
            },
            n_clients: rng.random_range(1..5),
            think_ms: pick(&mut rng, &[1, 5, 20]),
            crash_at,
            p_crash_in_recovery: if rng.random_bool(0.3) { 0.5 } else { 0.0 },
            roll_every_ms: if rng.random_bool(0.3) { Some(rng.random_range(10..500)) } else { None },
            group,
            compaction,
            follow,
            power_cut,
            salvage,
        })
    }
}

/// The bytes of the record a scenario writes at `offset` (any length):
/// derived, so the model need not store them twice.
pub fn value_bytes(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    let mut r = ChaCha8Rng::seed_from_u64(seed ^ offset.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut v = vec![0u8; len];
    r.fill_bytes(&mut v);
    v
}
