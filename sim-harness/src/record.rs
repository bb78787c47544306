//! What every kind of run records: the timeline, the trace hash, the marks
//! of rare paths and the first failed check; and how it becomes an
//! [`Outcome`]. Shared by the single-handle world, the group-commit world
//! and schedules.

use std::time::Duration;

use sim_fs::{FaultKind, FaultRecord, Fnv, Hit, SimFs};

use crate::marks::Mark;
use crate::model::Marks;
use crate::run::{Outcome, panic_message};
use crate::scenario::Scenario;
use crate::trace::Event;

/// The record of one run.
#[derive(Debug)]
pub(crate) struct Recorder {
    pub(crate) failure: Option<String>,
    pub(crate) marks: Marks,
    hash: Fnv,
    timeline: Option<Vec<String>>,
    /// One per timeline line: its simulated time and the model's offsets.
    points: Vec<TimelinePoint>,
    /// The model's (accepted, durable) record counts, as the world last
    /// reported them, for the timeline's points.
    pub(crate) offsets: Option<(u64, u64)>,
    /// Faults of the disk already taken in.
    faults_seen: usize,
}

/// Where a timeline line happened: simulated time, and the model's
/// accepted and durable record counts at that moment (single-handle world).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimelinePoint {
    /// Simulated milliseconds since the seed began.
    pub ms: f64,
    /// (records accepted, records durable), when the world reports them.
    pub offsets: Option<(u64, u64)>,
}

impl Recorder {
    /// A recorder; `trace` keeps the timeline.
    pub(crate) fn new(trace: bool) -> Self {
        Self {
            failure: None,
            marks: Marks::new(),
            hash: Fnv::new(),
            timeline: trace.then(Vec::new),
            points: Vec::new(),
            offsets: None,
            faults_seen: 0,
        }
    }

    /// Hashes `code` and, when tracing, adds `line` at the simulated time.
    pub(crate) fn note(&mut self, line: impl FnOnce() -> String, event: Event, data: &[u64]) {
        for c in std::iter::once(event.code()).chain(data.iter().copied()) {
            self.hash.write(&c.to_le_bytes());
        }
        self.comment(line);
    }

    /// A timeline line that the trace hash does not cover (a description of
    /// what the seed chose, already fixed by the seed).
    pub(crate) fn comment(&mut self, line: impl FnOnce() -> String) {
        if let Some(t) = &mut self.timeline {
            let now = madsim::time::TimeHandle::try_current().map_or(Duration::ZERO, |t| t.elapsed());
            let ms = now.as_secs_f64() * 1e3;
            // log-core's tracing events of the op this line describes come
            // first: they happened during it, at this simulated instant.
            let point = TimelinePoint { ms, offsets: self.offsets };
            for event in take_tracing() {
                t.push(format!("{ms:>10.3}ms   · {event}"));
                self.points.push(point);
            }
            t.push(format!("{ms:>10.3}ms {}", line()));
            self.points.push(point);
        }
    }

    /// Counts a rare path.
    pub(crate) fn mark(&mut self, m: Mark) {
        *self.marks.entry(m.name()).or_insert(0) += 1;
    }

    /// Records the first failed check (later ones are ignored).
    pub(crate) fn fail(&mut self, msg: String) {
        if self.failure.is_none() {
            self.note(|| format!("CHECK FAILED: {msg}"), Event::CheckFailed, &[]);
            self.failure = Some(msg);
        }
    }

    /// Takes in the faults `fs` injected since the last look: notes them,
    /// marks the EIO kinds, and returns them for the caller's own rules.
    pub(crate) fn take_faults(&mut self, fs: &SimFs) -> Vec<FaultRecord> {
        let new = fs.faults_since(self.faults_seen);
        self.faults_seen += new.len();
        for f in &new {
            let durable = f.hit == Hit::Durable;
            self.note(|| format!("fault {f}"), Event::Fault, &[u64::from(durable), f.pos, f.len]);
            match f.kind {
                FaultKind::SyncEio => self.mark(Mark::FsyncEio),
                FaultKind::WriteEio => self.mark(Mark::WriteEio),
                FaultKind::DirSyncEio => self.mark(Mark::DirSyncEio),
                _ => {}
            }
        }
        new
    }

    /// How many faults have been taken in (for a look at only the next ones).
    pub(crate) fn faults_seen(&self) -> usize {
        self.faults_seen
    }

    /// The run's outcome; a panic caught around the run fails it. The trace
    /// hash covers the final disk too.
    pub(crate) fn outcome(
        &mut self,
        scenario: Scenario,
        fs: &SimFs,
        ops_done: u32,
        panicked: Option<Box<dyn std::any::Any + Send>>,
    ) -> Outcome {
        if let Some(p) = panicked {
            self.fail(format!("panic: {}", panic_message(&*p)));
        }
        let mut h = self.hash;
        h.write(&fs.disk_hash().to_le_bytes());
        Outcome {
            scenario,
            failure: self.failure.clone(),
            marks: self.marks.clone(),
            trace_hash: h.finish(),
            timeline: self.timeline.take().unwrap_or_default(),
            points: std::mem::take(&mut self.points),
            ops_done,
            script: Vec::new(),
        }
    }
}

/// Whether an injected fault makes a filesystem call fail (EIO of a write,
/// an fsync or a directory fsync, or a full disk): an open that fails after
/// one is retried, as an operator would; both worlds ask this.
pub(crate) fn fails_calls(kind: &FaultKind) -> bool {
    matches!(kind, FaultKind::SyncEio | FaultKind::DirSyncEio | FaultKind::WriteEio | FaultKind::Enospc)
}

thread_local! {
    /// log-core's tracing output on this thread, waiting for the next
    /// timeline line (`None`: not captured).
    static TRACING: std::cell::RefCell<Option<Vec<u8>>> = const { std::cell::RefCell::new(None) };
}

/// The lines of tracing output captured since the last call.
fn take_tracing() -> Vec<String> {
    TRACING.with(|t| {
        let mut t = t.borrow_mut();
        let Some(buf) = t.as_mut() else { return Vec::new() };
        let text = String::from_utf8_lossy(buf).into_owned();
        buf.clear();
        text.lines().map(str::to_owned).collect()
    })
}

/// Where the captured tracing subscriber writes: this thread's buffer.
struct TracingSink;

impl std::io::Write for TracingSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        TRACING.with(|t| {
            if let Some(buf) = t.borrow_mut().as_mut() {
                buf.extend_from_slice(b);
            }
        });
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends the `tracing` events `filter` selects (log-core's spans and
/// events) into the timeline of the runs on this thread, each line placed
/// before the timeline line of the op it happened in, at that op's
/// simulated time, without colour codes and without wall-clock times
/// (`replay --tracing`). Installs the process's global subscriber; `false`
/// if one was installed already.
pub fn capture_tracing(filter: tracing_subscriber::EnvFilter) -> bool {
    TRACING.with(|t| *t.borrow_mut() = Some(Vec::new()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| TracingSink)
        .with_ansi(false)
        .without_time()
        .try_init()
        .is_ok()
}
