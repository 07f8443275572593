//! [`Exec`]: what a workload needs from a runtime, and its adapters: [`Pinwheel`] (also
//! with a `tracing` subscriber installed: [`PinwheelSubscribed`]) and [`Tokio`].

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use crate::sys::{bind_current_thread, pinned};

/// What a workload needs from a runtime.
pub trait Exec: Send + Sync + 'static {
    /// The runtime's name in reports.
    const NAME: &'static str;

    /// The name prefixes of the runtime's threads (for their context switches).
    const THREADS: &'static [&'static str];

    /// Starts a runtime with `workers` worker threads.
    fn build(workers: usize) -> Self;

    /// Runs `f` to completion on the calling thread.
    fn block_on<F: Future>(&self, f: F) -> F::Output;

    /// Spawns from outside the runtime (through its handle); the future yields the output.
    fn spawn_outside<F>(&self, f: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// Spawns onto the current runtime (from a task or inside `block_on`).
    fn spawn<F>(f: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// Yields once to the scheduler.
    fn yield_now() -> impl Future<Output = ()> + Send;

    /// The runtime's sleep future.
    type Sleep: Future<Output = ()> + Send + 'static;

    /// Sleeps for `d` (inside the runtime).
    fn sleep(d: Duration) -> Self::Sleep;

    /// Moves a sleep's deadline.
    fn reset(sleep: Pin<&mut Self::Sleep>, deadline: Instant);

    /// Runs `f` for at most `d`; `Err(())` when the deadline passed first.
    fn timeout<F>(d: Duration, f: F) -> impl Future<Output = Result<F::Output, ()>> + Send
    where
        F: Future + Send;
}

/// A pinwheel runtime.
#[derive(Debug)]
pub struct Pinwheel(pub pinwheel::Runtime);

impl Exec for Pinwheel {
    const NAME: &'static str = "pinwheel";
    const THREADS: &'static [&'static str] = &["pinwheel-worker", "pinwheel-compat"];

    fn build(workers: usize) -> Self {
        let mut b = pinwheel::Builder::new();
        b.worker_threads(workers);
        if pinned() {
            b.worker_cpus(0..workers);
        }
        // `PINWHEEL_BENCH_SPINS=N`: Builder::spin_before_park(N) (default 0), for A/B runs.
        if let Some(n) = std::env::var("PINWHEEL_BENCH_SPINS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            b.spin_before_park(n);
        }
        // `PINWHEEL_BENCH_PROFILING=on|auto|off`: Builder::task_profiling (default off), for
        // A/B runs of what profiling costs.
        match std::env::var("PINWHEEL_BENCH_PROFILING").as_deref() {
            Ok("on") => b.task_profiling(pinwheel::profile::Mode::On),
            Ok("auto") => b.task_profiling(pinwheel::profile::Mode::Auto),
            _ => b.task_profiling(pinwheel::profile::Mode::Off),
        };
        Pinwheel(b.build().expect("pinwheel runtime"))
    }

    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.0.block_on(f)
    }

    fn spawn_outside<F>(&self, f: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let h = self.0.spawn(f);
        async move { h.await.expect("task failed") }
    }

    fn spawn<F>(f: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let h = pinwheel::spawn(f);
        async move { h.await.expect("task failed") }
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        pinwheel::yield_now()
    }

    type Sleep = pinwheel::time::Sleep;

    fn sleep(d: Duration) -> Self::Sleep {
        pinwheel::time::sleep(d)
    }

    fn reset(sleep: Pin<&mut Self::Sleep>, deadline: Instant) {
        sleep.get_mut().reset(deadline);
    }

    fn timeout<F>(d: Duration, f: F) -> impl Future<Output = Result<F::Output, ()>> + Send
    where
        F: Future + Send,
    {
        let t = pinwheel::time::timeout(d, f);
        async move { t.await.map_err(|_| ()) }
    }
}

/// A pinwheel runtime whose threads (and `block_on` callers) have a `tracing` subscriber
/// installed: `tracing-subscriber`'s fmt layer writing to a sink. With `SPANS = false`
/// ([`PinwheelTraced`]) it logs at `info` and filters pinwheel out (`pinwheel=off`), as a service
/// that logs would; with `SPANS = true` ([`PinwheelSpans`]) it also wants `pinwheel::task` at
/// `trace`, so every task gets its span, entered on every poll, and its events are formatted.
/// Compared with [`Pinwheel`] it measures what pinwheel's instrumentation costs such a service.
#[derive(Debug)]
pub struct PinwheelSubscribed<const SPANS: bool> {
    rt: Pinwheel,
    dispatch: tracing::Dispatch,
}

/// A subscriber that filters pinwheel out (see [`PinwheelSubscribed`]).
pub type PinwheelTraced = PinwheelSubscribed<false>;
/// A subscriber that wants every task's span (see [`PinwheelSubscribed`]).
pub type PinwheelSpans = PinwheelSubscribed<true>;

impl<const SPANS: bool> Exec for PinwheelSubscribed<SPANS> {
    const NAME: &'static str = if SPANS {
        "pinwheel+spans"
    } else {
        "pinwheel+subscriber"
    };
    const THREADS: &'static [&'static str] = Pinwheel::THREADS;

    fn build(workers: usize) -> Self {
        use tracing_subscriber::filter::LevelFilter;
        use tracing_subscriber::layer::SubscriberExt;
        let filter = tracing_subscriber::filter::Targets::new()
            .with_default(tracing::Level::INFO)
            .with_target("pinwheel", LevelFilter::OFF)
            .with_target(
                "pinwheel::task",
                if SPANS {
                    LevelFilter::TRACE
                } else {
                    LevelFilter::OFF
                },
            );
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink))
            .with(filter);
        let dispatch = tracing::Dispatch::new(subscriber);
        let d = dispatch.clone();
        let rt = pinwheel::Builder::new()
            .worker_threads(workers)
            .on_thread_start(move || {
                // For the life of the thread.
                std::mem::forget(tracing::dispatcher::set_default(&d));
            })
            .build()
            .expect("pinwheel runtime");
        PinwheelSubscribed {
            rt: Pinwheel(rt),
            dispatch,
        }
    }

    fn block_on<F: Future>(&self, f: F) -> F::Output {
        tracing::dispatcher::with_default(&self.dispatch, || self.rt.block_on(f))
    }

    fn spawn_outside<F>(&self, f: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.rt.spawn_outside(f)
    }

    fn spawn<F>(f: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Pinwheel::spawn(f)
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        Pinwheel::yield_now()
    }

    type Sleep = pinwheel::time::Sleep;

    fn sleep(d: Duration) -> Self::Sleep {
        Pinwheel::sleep(d)
    }

    fn reset(sleep: Pin<&mut Self::Sleep>, deadline: Instant) {
        Pinwheel::reset(sleep, deadline);
    }

    fn timeout<F>(d: Duration, f: F) -> impl Future<Output = Result<F::Output, ()>> + Send
    where
        F: Future + Send,
    {
        Pinwheel::timeout(d, f)
    }
}

/// A tokio multi-thread runtime, configured as a network service would (`enable_all`), unless
/// the environment variable `PINWHEEL_BENCH_TOKIO_PLAIN` is set.
#[derive(Debug)]
pub struct Tokio(pub tokio::runtime::Runtime);

impl Exec for Tokio {
    const NAME: &'static str = "tokio";
    const THREADS: &'static [&'static str] = &["tokio-rt-worker", "tokio-runtime-w"];

    fn build(workers: usize) -> Self {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        if pinned() {
            // tokio has no CPU placement; its thread-start hook does what worker_cpus does for
            // pinwheel (the same CPUs, though not one per worker).
            b.on_thread_start(move || bind_current_thread(0..workers));
        }
        // `PINWHEEL_BENCH_TOKIO_PLAIN=1` leaves tokio's I/O and time drivers off, to show how much
        // of the gap they account for (pinwheel has no I/O driver yet).
        if std::env::var_os("PINWHEEL_BENCH_TOKIO_PLAIN").is_none() {
            b.enable_all();
        }
        Tokio(b.build().expect("tokio runtime"))
    }

    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.0.block_on(f)
    }

    fn spawn_outside<F>(&self, f: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let h = self.0.spawn(f);
        async move { h.await.expect("task failed") }
    }

    fn spawn<F>(f: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let h = tokio::spawn(f);
        async move { h.await.expect("task failed") }
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        tokio::task::yield_now()
    }

    type Sleep = tokio::time::Sleep;

    fn sleep(d: Duration) -> Self::Sleep {
        tokio::time::sleep(d)
    }

    fn reset(sleep: Pin<&mut Self::Sleep>, deadline: Instant) {
        sleep.reset(tokio::time::Instant::from_std(deadline));
    }

    fn timeout<F>(d: Duration, f: F) -> impl Future<Output = Result<F::Output, ()>> + Send
    where
        F: Future + Send,
    {
        let t = tokio::time::timeout(d, f);
        async move { t.await.map_err(|_| ()) }
    }
}
