//! Time, as the log sees it. The log never reads the real clock directly:
//! record timestamps and age-based rolls come from a [`Clock`] it is given,
//! so the simulator can supply simulated time.

use std::fmt::Debug;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of wall-clock time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + Debug {
    /// Milliseconds since the Unix epoch. Need not be monotonic; the log
    /// copes with time going backwards (it only ever compares against the
    /// largest time it has seen).
    fn now_ms(&self) -> u64;
}

/// The operating system's wall clock, read precisely (`SystemTime::now`):
/// about 20 ns a read on a Linux VM, a fifth of a small append. The log's
/// default is the cheaper [`CoarseClock`].
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        // A clock set before 1970 reads as the epoch rather than failing.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs().saturating_mul(1000).saturating_add(u64::from(d.subsec_millis())))
            .unwrap_or(0)
    }
}

/// The operating system's wall clock, read coarsely: on Linux
/// `CLOCK_REALTIME_COARSE`, the time of the last timer tick, which costs a
/// few nanoseconds (no hardware counter is read) and lags the precise clock
/// by at most one tick — `clock_getres(CLOCK_REALTIME_COARSE)`, 4 ms on a
/// kernel with `HZ=250`, 1 ms with `HZ=1000`. A record stamped by it may
/// therefore carry a time up to one tick earlier than [`SystemClock`] would
/// give it. Elsewhere it reads `SystemTime::now`. The default clock of
/// [`Log::open`](crate::Log::open).
#[derive(Debug, Default, Clone, Copy)]
pub struct CoarseClock;

impl Clock for CoarseClock {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn now_ms(&self) -> u64 {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
        // A clock set before 1970 reads as the epoch, as `SystemClock` does.
        let secs = u64::try_from(t.tv_sec).unwrap_or(0);
        let millis = u64::try_from(t.tv_nsec / 1_000_000).unwrap_or(0);
        secs.saturating_mul(1000).saturating_add(millis)
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn now_ms(&self) -> u64 {
        SystemClock.now_ms()
    }
}

/// A clock that always reads the same instant; for tests and fixtures.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn now_ms(&self) -> u64 {
        self.0
    }
}

/// A clock that reads whatever it was last set to; clones share the time.
/// For tests that move time by hand.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl ManualClock {
    /// A clock reading `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Self(std::sync::Arc::new(std::sync::atomic::AtomicU64::new(now_ms)))
    }

    /// Sets the time.
    pub fn set(&self, now_ms: u64) {
        self.0.store(now_ms, std::sync::atomic::Ordering::SeqCst);
    }

    /// Moves the time forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}
