//! openraft's async runtime on madsim: spawn, sleep, timeouts and the
//! random numbers openraft draws (election timeouts) all come from the
//! seed's simulator, so a seed replays bit for bit.
//!
//! openraft 0.9 routes spawn, sleep, timeouts, oneshots and its RNG through
//! [`openraft::AsyncRuntime`]; its `tokio::select!` loops pick among ready
//! branches with tokio's thread-local RNG, which [`block_on`] seeds from
//! the seed (a current-thread tokio runtime with a fixed `rng_seed` — a
//! `tokio_unstable` API, switched on in `.cargo/config.toml`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use openraft::{AsyncRuntime, OptionalSend, TokioInstant};

/// openraft's runtime on madsim (see the module docs).
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
pub struct MadsimRuntime;

/// `Self::Timeout`: the future, raced against a simulated sleep.
pub struct SimTimeout<T> {
    fut: Pin<Box<T>>,
    sleep: Pin<Box<madsim::time::Sleep>>,
}

impl<T> std::fmt::Debug for SimTimeout<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimTimeout").finish_non_exhaustive()
    }
}

impl<T: Future> Future for SimTimeout<T> {
    type Output = Result<T::Output, madsim::time::error::Elapsed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(v) = self.fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(madsim::time::error::Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRuntime for MadsimRuntime {
    type JoinError = madsim::task::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = madsim::task::JoinHandle<T>;
    type Sleep = madsim::time::Sleep;
    // madsim simulates the clock std's and tokio's `Instant::now` read.
    type Instant = TokioInstant;
    type TimeoutError = madsim::time::error::Elapsed;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = SimTimeout<T>;
    type ThreadLocalRng = madsim::rand::GlobalRng;
    type OneshotSender<T: OptionalSend> = openraft::async_runtime::TokioOneShotSender<T>;
    type OneshotReceiver<T: OptionalSend> = tokio::sync::oneshot::Receiver<T>;
    type OneshotReceiverError = tokio::sync::oneshot::error::RecvError;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        madsim::task::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        madsim::time::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        madsim::time::sleep_until(deadline.into_std())
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(duration: Duration, future: F) -> Self::Timeout<R, F> {
        SimTimeout { fut: Box::pin(future), sleep: Box::pin(madsim::time::sleep(duration)) }
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(deadline: Self::Instant, future: F) -> Self::Timeout<R, F> {
        SimTimeout { fut: Box::pin(future), sleep: Box::pin(madsim::time::sleep_until(deadline.into_std())) }
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        join_error.is_panic()
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        madsim::rand::thread_rng()
    }

    fn oneshot<T>() -> (Self::OneshotSender<T>, Self::OneshotReceiver<T>)
    where
        T: OptionalSend,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (openraft::async_runtime::TokioOneShotSender(tx), rx)
    }
}

/// Runs `f` with tokio's thread-local RNG (what `tokio::select!` draws
/// from) seeded from `seed`, and without tokio's cooperative budget (the
/// whole simulation runs inside one tokio poll, so a budget would run out
/// and never be refilled). Without `--cfg tokio_unstable` the seed cannot
/// be set and `Err` says so.
pub fn block_on<R>(seed: u64, f: impl FnOnce() -> R) -> Result<R, String> {
    #[cfg(tokio_unstable)]
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .rng_seed(tokio::runtime::RngSeed::from_bytes(&seed.to_le_bytes()))
            .build()
            .map_err(|e| format!("cannot build the tokio runtime that seeds select!: {e}"))?;
        Ok(rt.block_on(tokio::task::unconstrained(async move { f() })))
    }
    #[cfg(not(tokio_unstable))]
    {
        let _ = (seed, f);
        Err("sim-harness was built without `--cfg tokio_unstable` (set in .cargo/config.toml; a RUSTFLAGS variable replaces it): tokio::select! inside openraft would not be deterministic".into())
    }
}
