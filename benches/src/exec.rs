//! [`Exec`]: what a workload needs from a runtime, and its adapters: [`Pinwheel`] and
//! [`Tokio`], and either with a `tracing` subscriber installed ([`Subscribed`]).

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

/// Set by a row that needs the tokio context on pinwheel's workers (`tokio_net_echo`), for the
/// runtimes it builds; `PINWHEEL_BENCH_TOKIO_CONTEXT=1` turns it on for every row.
pub static TOKIO_CONTEXT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the pinwheel runtimes built now get `Builder::tokio_context(true)`.
pub fn tokio_context() -> bool {
    TOKIO_CONTEXT.load(std::sync::atomic::Ordering::Relaxed)
        || std::env::var("PINWHEEL_BENCH_TOKIO_CONTEXT").is_ok_and(|v| v == "1")
}

impl Pinwheel {
    /// The builder of the benchmarks' pinwheel runtime: `workers` workers, and the settings the
    /// environment asks for.
    pub fn builder(workers: usize) -> pinwheel::Builder {
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
        if tokio_context() {
            b.tokio_context(true);
        }
        b
    }
}

impl Exec for Pinwheel {
    const NAME: &'static str = "pinwheel";
    const THREADS: &'static [&'static str] = &["pinwheel-worker", "pinwheel-compat"];

    fn build(workers: usize) -> Self {
        Pinwheel(
            Pinwheel::builder(workers)
                .build()
                .expect("pinwheel runtime"),
        )
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

/// A runtime that can run a hook on each of its threads as it starts.
pub trait Hooked: Exec {
    /// The names of [`Subscribed`]`<Self, KIND>` by `KIND`.
    const SUBSCRIBED_NAMES: [&'static str; 3];

    /// Starts the runtime with `hook` run first on each of its threads.
    fn build_hooked(workers: usize, hook: impl Fn() + Send + Sync + 'static) -> Self;
}

impl Hooked for Pinwheel {
    const SUBSCRIBED_NAMES: [&'static str; 3] =
        ["pinwheel+subscriber", "pinwheel+spans", "pinwheel+console"];

    fn build_hooked(workers: usize, hook: impl Fn() + Send + Sync + 'static) -> Self {
        let rt = Pinwheel::builder(workers)
            .on_thread_start(hook)
            .build()
            .expect("pinwheel runtime");
        Pinwheel(rt)
    }
}

impl Hooked for Tokio {
    const SUBSCRIBED_NAMES: [&'static str; 3] =
        ["tokio+subscriber", "tokio+spans", "tokio+console"];

    fn build_hooked(workers: usize, hook: impl Fn() + Send + Sync + 'static) -> Self {
        let pinned_too = pinned();
        let rt = Tokio::builder(workers)
            .on_thread_start(move || {
                if pinned_too {
                    bind_current_thread(0..workers);
                }
                hook();
            })
            .build()
            .expect("tokio runtime");
        Tokio(rt)
    }
}

/// What [`Subscribed`] installs: `tracing-subscriber`'s fmt layer writing to a sink that logs
/// at `info` and filters the runtime out, as a service that logs would.
pub const SUBSCRIBER: u8 = 0;
/// The same, but wanting pinwheel's task spans and events (`pinwheel::task` at `trace`), as
/// `RUST_LOG=trace` would: every task gets its span, entered on every poll.
pub const SPANS: u8 = 1;
/// console-subscriber's layer (tokio-console's instrumentation), its server on a free
/// loopback port, keeping completed tasks for 100 ms.
pub const CONSOLE: u8 = 2;

/// A runtime `E` whose threads (and `block_on` callers) have a `tracing` subscriber installed,
/// chosen by `KIND` ([`SUBSCRIBER`], [`SPANS`], [`CONSOLE`]). Compared with `E` alone it
/// measures what the runtime's instrumentation costs a service with that subscriber.
#[derive(Debug)]
pub struct Subscribed<E, const KIND: u8> {
    rt: E,
    dispatch: tracing::Dispatch,
}

/// pinwheel with a subscriber that filters it out.
pub type PinwheelTraced = Subscribed<Pinwheel, SUBSCRIBER>;
/// pinwheel with a subscriber that wants every task's span.
pub type PinwheelSpans = Subscribed<Pinwheel, SPANS>;
/// pinwheel with tokio-console's layer.
pub type PinwheelConsole = Subscribed<Pinwheel, CONSOLE>;
/// tokio with tokio-console's layer (tokio emits task spans only when built with
/// `--cfg tokio_unstable`).
pub type TokioConsole = Subscribed<Tokio, CONSOLE>;

fn dispatch_of(kind: u8) -> tracing::Dispatch {
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::layer::SubscriberExt;
    if kind == CONSOLE {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let layer = console_subscriber::ConsoleLayer::builder()
            .server_addr(([127, 0, 0, 1], port))
            .retention(Duration::from_millis(100))
            .spawn();
        return tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    }
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(tracing::Level::INFO)
        .with_target("pinwheel", LevelFilter::OFF)
        .with_target(
            "pinwheel::task",
            if kind == SPANS {
                LevelFilter::TRACE
            } else {
                LevelFilter::OFF
            },
        );
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink))
        .with(filter);
    tracing::Dispatch::new(subscriber)
}

impl<E: Hooked, const KIND: u8> Exec for Subscribed<E, KIND> {
    const NAME: &'static str = E::SUBSCRIBED_NAMES[KIND as usize];
    const THREADS: &'static [&'static str] = E::THREADS;

    fn build(workers: usize) -> Self {
        let dispatch = dispatch_of(KIND);
        let d = dispatch.clone();
        let rt = E::build_hooked(workers, move || {
            // For the life of the thread.
            std::mem::forget(tracing::dispatcher::set_default(&d));
        });
        Subscribed { rt, dispatch }
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
        E::spawn(f)
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        E::yield_now()
    }

    type Sleep = E::Sleep;

    fn sleep(d: Duration) -> Self::Sleep {
        E::sleep(d)
    }

    fn reset(sleep: Pin<&mut Self::Sleep>, deadline: Instant) {
        E::reset(sleep, deadline);
    }

    fn timeout<F>(d: Duration, f: F) -> impl Future<Output = Result<F::Output, ()>> + Send
    where
        F: Future + Send,
    {
        E::timeout(d, f)
    }
}

/// A tokio multi-thread runtime, configured as a network service would (`enable_all`), unless
/// the environment variable `PINWHEEL_BENCH_TOKIO_PLAIN` is set.
#[derive(Debug)]
pub struct Tokio(pub tokio::runtime::Runtime);

impl Tokio {
    /// The builder of the benchmarks' tokio runtime (`workers` workers, `enable_all`).
    pub fn builder(workers: usize) -> tokio::runtime::Builder {
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
        b
    }
}

impl Exec for Tokio {
    const NAME: &'static str = "tokio";
    const THREADS: &'static [&'static str] = &["tokio-rt-worker", "tokio-runtime-w"];

    fn build(workers: usize) -> Self {
        Tokio(Tokio::builder(workers).build().expect("tokio runtime"))
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
