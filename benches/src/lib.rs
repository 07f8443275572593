//! Workloads for side-by-side benchmarks of pinwheel and tokio.
//!
//! Each workload is written once, generic over [`Exec`], so both runtimes run the very same
//! code; only spawning, blocking and yielding differ. The synchronisation the workloads use
//! (std channels, `tokio::sync::oneshot`) works on any executor.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub mod ecosystem;
pub mod net;
pub mod runner;
pub mod tpc;

/// What `/proc/self/task` says of a group of this process's threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadStats {
    /// How many threads matched.
    pub threads: usize,
    /// User + system CPU time, in clock ticks (10 ms).
    pub cpu_ticks: u64,
    /// Voluntary + involuntary context switches.
    pub ctx_switches: u64,
}

/// The stats of this process's threads whose name starts with one of `prefixes` (Linux; names
/// are cut at 15 bytes by the kernel).
pub fn thread_stats(prefixes: &[&str]) -> ThreadStats {
    let mut out = ThreadStats::default();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for entry in dir.flatten() {
        let p = entry.path();
        let Ok(comm) = std::fs::read_to_string(p.join("comm")) else {
            continue;
        };
        if !prefixes.iter().any(|x| comm.trim_end().starts_with(x)) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(p.join("stat")) else {
            continue;
        };
        let Some(i) = stat.rfind(')') else { continue };
        // After the command name: utime and stime are the 12th and 13th fields.
        let f: Vec<&str> = stat[i + 2..].split_whitespace().collect();
        out.cpu_ticks += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        if let Ok(status) = std::fs::read_to_string(p.join("status")) {
            out.ctx_switches += status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
        out.threads += 1;
    }
    out
}

/// User + system CPU time, in clock ticks (10 ms), of this process's threads whose name starts
/// with `prefix`, and how many such threads there are (Linux, from `/proc/self/task`).
pub fn thread_cpu_ticks(prefix: &str) -> (usize, u64) {
    let s = thread_stats(&[prefix]);
    (s.threads, s.cpu_ticks)
}

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

/// `PINWHEEL_BENCH_PIN=1`: the servers' workers run on CPUs `0..workers` and the load
/// generator (the calling thread) on the CPUs after them, so that on a small machine the
/// client does not compete with the server for a core (use `--workers 1` on 2 cores).
pub fn pinned() -> bool {
    std::env::var_os("PINWHEEL_BENCH_PIN").is_some()
}

/// Binds the calling thread to the CPUs in `cpus` (Linux; elsewhere a no-op).
pub fn bind_current_thread(cpus: std::ops::Range<usize>) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a zeroed cpu_set_t is a valid empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for cpu in cpus {
            // SAFETY: CPU numbers on this machine fit in a cpu_set_t.
            unsafe { libc::CPU_SET(cpu, &mut set) };
        }
        // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
        let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        assert_eq!(
            r,
            0,
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        );
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cpus;
}

/// A pinwheel runtime.
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

/// A benchmark workload: state kept across iterations, and one iteration.
pub trait Workload<E: Exec> {
    /// Runs one iteration.
    fn iter(&mut self, rt: &E);

    /// Time an iteration cannot go below whatever the runtime (a sleep's own length): the
    /// runner compares the time above it.
    fn floor(&self) -> Duration {
        Duration::ZERO
    }
}

/// tokio's `spawn_many_local`: 10,000 spawns from inside `block_on`, the last one signals.
pub struct SpawnManyLocal {
    tx: mpsc::SyncSender<()>,
    rx: mpsc::Receiver<()>,
    rem: Arc<AtomicUsize>,
}

/// Spawns in `spawn_many_*`.
pub const NUM_SPAWN: usize = 10_000;

impl Default for SpawnManyLocal {
    fn default() -> Self {
        let (tx, rx) = mpsc::sync_channel(1000);
        SpawnManyLocal {
            tx,
            rx,
            rem: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl<E: Exec> Workload<E> for SpawnManyLocal {
    fn iter(&mut self, rt: &E) {
        self.rem.store(NUM_SPAWN, Relaxed);
        rt.block_on(async {
            for _ in 0..NUM_SPAWN {
                let tx = self.tx.clone();
                let rem = self.rem.clone();
                drop(E::spawn(async move {
                    if 1 == rem.fetch_sub(1, Relaxed) {
                        tx.send(()).unwrap();
                    }
                }));
            }
            self.rx.recv().unwrap();
        });
    }
}

/// A variant of `spawn_many_local` where the spawns come from a task on a worker (the common
/// case in a server: a task spawning sub-tasks), not from `block_on`.
#[derive(Default)]
pub struct SpawnManyWorker(SpawnManyLocal);

impl<E: Exec> Workload<E> for SpawnManyWorker {
    fn iter(&mut self, rt: &E) {
        let s = &self.0;
        s.rem.store(NUM_SPAWN, Relaxed);
        let tx = s.tx.clone();
        let rem = s.rem.clone();
        drop(rt.spawn_outside(async move {
            for _ in 0..NUM_SPAWN {
                let tx = tx.clone();
                let rem = rem.clone();
                drop(E::spawn(async move {
                    if 1 == rem.fetch_sub(1, Relaxed) {
                        tx.send(()).unwrap();
                    }
                }));
            }
        }));
        s.rx.recv().unwrap();
    }
}

/// tokio's `spawn_many_remote_idle`: 10,000 spawns from outside an idle runtime, then all
/// JoinHandles awaited.
#[derive(Default)]
pub struct SpawnManyRemoteIdle;

impl<E: Exec> Workload<E> for SpawnManyRemoteIdle {
    fn iter(&mut self, rt: &E) {
        let mut handles = Vec::with_capacity(NUM_SPAWN);
        for _ in 0..NUM_SPAWN {
            handles.push(rt.spawn_outside(async {}));
        }
        rt.block_on(async {
            for h in handles {
                h.await;
            }
        });
    }
}

/// tokio's `yield_many`: 200 tasks, each yielding 1,000 times.
pub struct YieldMany {
    tx: mpsc::SyncSender<()>,
    rx: mpsc::Receiver<()>,
}

/// Tasks in `yield_many`.
pub const YIELD_TASKS: usize = 200;
/// Yields per task in `yield_many`.
pub const NUM_YIELD: usize = 1_000;

impl Default for YieldMany {
    fn default() -> Self {
        let (tx, rx) = mpsc::sync_channel(YIELD_TASKS);
        YieldMany { tx, rx }
    }
}

impl<E: Exec> Workload<E> for YieldMany {
    fn iter(&mut self, rt: &E) {
        for _ in 0..YIELD_TASKS {
            let tx = self.tx.clone();
            drop(rt.spawn_outside(async move {
                for _ in 0..NUM_YIELD {
                    E::yield_now().await;
                }
                tx.send(()).unwrap();
            }));
        }
        for _ in 0..YIELD_TASKS {
            self.rx.recv().unwrap();
        }
    }
}

/// tokio's `ping_pong`: 1,000 pairs of tasks exchanging a oneshot message each way.
pub struct PingPong {
    tx: mpsc::SyncSender<()>,
    rx: mpsc::Receiver<()>,
    rem: Arc<AtomicUsize>,
}

/// Pairs in `ping_pong`.
pub const NUM_PINGS: usize = 1_000;

impl Default for PingPong {
    fn default() -> Self {
        let (tx, rx) = mpsc::sync_channel(1000);
        PingPong {
            tx,
            rx,
            rem: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl<E: Exec> Workload<E> for PingPong {
    fn iter(&mut self, rt: &E) {
        let done_tx = self.tx.clone();
        let rem = self.rem.clone();
        rem.store(NUM_PINGS, Relaxed);
        rt.block_on(async {
            drop(E::spawn(async move {
                for _ in 0..NUM_PINGS {
                    let rem = rem.clone();
                    let done_tx = done_tx.clone();
                    drop(E::spawn(async move {
                        let (tx1, rx1) = tokio::sync::oneshot::channel::<()>();
                        let (tx2, rx2) = tokio::sync::oneshot::channel::<()>();
                        drop(E::spawn(async move {
                            rx1.await.unwrap();
                            tx2.send(()).unwrap();
                        }));
                        tx1.send(()).unwrap();
                        rx2.await.unwrap();
                        if 1 == rem.fetch_sub(1, Relaxed) {
                            done_tx.send(()).unwrap();
                        }
                    }));
                }
            }));
            self.rx.recv().unwrap();
        });
    }
}

/// tokio's `chained_spawn`: a chain of 1,000 tasks, each spawning the next.
pub struct ChainedSpawn {
    tx: mpsc::SyncSender<()>,
    rx: mpsc::Receiver<()>,
}

/// Depth of the chain in `chained_spawn`.
pub const CHAIN: usize = 1_000;

impl Default for ChainedSpawn {
    fn default() -> Self {
        let (tx, rx) = mpsc::sync_channel(1000);
        ChainedSpawn { tx, rx }
    }
}

fn chain<E: Exec>(done: mpsc::SyncSender<()>, n: usize) {
    if n == 0 {
        done.send(()).unwrap();
    } else {
        drop(E::spawn(async move { chain::<E>(done, n - 1) }));
    }
}

impl<E: Exec> Workload<E> for ChainedSpawn {
    fn iter(&mut self, rt: &E) {
        let done = self.tx.clone();
        rt.block_on(async {
            drop(E::spawn(async move { chain::<E>(done, CHAIN) }));
            self.rx.recv().unwrap();
        });
    }
}

/// Items each worker sends in `mailbox`.
pub const MAILBOX_ITEMS: usize = 1_000_000;

/// Which worker receives item `k` of producer `p`: round-robin over the other workers.
fn mailbox_target(p: usize, k: usize, workers: usize) -> usize {
    if workers == 1 {
        return 0;
    }
    let j = k % (workers - 1);
    if j >= p { j + 1 } else { j }
}

/// How many items worker `t` receives in one `mailbox` iteration.
fn mailbox_expected(t: usize, workers: usize) -> usize {
    (0..workers)
        .map(|p| {
            (0..MAILBOX_ITEMS)
                .filter(|&k| mailbox_target(p, k, workers) == t)
                .count()
        })
        .sum()
}

/// `mailbox`: every worker sends 1,000,000 items, round-robin to every other worker, each
/// received by a task bound to the target thread. pinwheel uses a [`pinwheel::WorkList`]; tokio
/// the idiom a user would write instead: one unbounded `mpsc` channel per thread, received by a
/// task on a current-thread runtime of that thread (producers run there too). Producers yield
/// every 256 items on both.
#[derive(Default)]
pub struct Mailbox {
    expected: Vec<usize>,
    tokio_threads: Vec<TokioThread>,
}

impl Mailbox {
    fn expected(&mut self, workers: usize) -> Vec<usize> {
        if self.expected.len() != workers {
            self.expected = (0..workers).map(|t| mailbox_expected(t, workers)).collect();
        }
        self.expected.clone()
    }
}

/// A thread running a tokio current-thread runtime until dropped.
struct TokioThread {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokioThread {
    fn start() -> TokioThread {
        let (htx, hrx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            htx.send(rt.handle().clone()).unwrap();
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                let _ = stop_rx.await;
            });
        });
        TokioThread {
            handle: hrx.recv().unwrap(),
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for TokioThread {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Workload<Pinwheel> for Mailbox {
    fn iter(&mut self, rt: &Pinwheel) {
        let workers = rt.0.worker_threads();
        let expected = Arc::new(self.expected(workers));
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let done_tx = std::sync::Mutex::new(done_tx);
        let exp = expected.clone();
        let list = rt.0.handle().work_list_with_state(
            move |t| (0usize, exp[t], done_tx.lock().unwrap().clone()),
            |(count, want, done): &mut (usize, usize, mpsc::Sender<()>), item: u64| {
                std::hint::black_box(item);
                *count += 1;
                if *count == *want {
                    done.send(()).unwrap();
                }
            },
        );
        for p in 0..workers {
            let list = list.clone();
            drop(
                rt.0.handle()
                    .spawn_on(pinwheel::ThreadMask::one(p), async move {
                        for k in 0..MAILBOX_ITEMS {
                            list.push(mailbox_target(p, k, workers), k as u64).unwrap();
                            if k % 256 == 255 {
                                pinwheel::yield_now().await;
                            }
                        }
                    }),
            );
        }
        for _ in 0..workers {
            done_rx.recv().unwrap();
        }
    }
}

impl Workload<Tokio> for Mailbox {
    fn iter(&mut self, rt: &Tokio) {
        let workers = rt.0.metrics().num_workers();
        let expected = self.expected(workers);
        while self.tokio_threads.len() < workers {
            self.tokio_threads.push(TokioThread::start());
        }
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..workers {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
            senders.push(tx);
            receivers.push(rx);
        }
        for (t, mut rx) in receivers.into_iter().enumerate() {
            let want = expected[t];
            let done = done_tx.clone();
            drop(self.tokio_threads[t].handle.spawn(async move {
                let mut count = 0;
                while count < want {
                    let Some(item) = rx.recv().await else { break };
                    std::hint::black_box(item);
                    count += 1;
                }
                done.send(()).unwrap();
            }));
        }
        for p in 0..workers {
            let senders = senders.clone();
            drop(self.tokio_threads[p].handle.spawn(async move {
                for k in 0..MAILBOX_ITEMS {
                    senders[mailbox_target(p, k, workers)]
                        .send(k as u64)
                        .unwrap();
                    if k % 256 == 255 {
                        tokio::task::yield_now().await;
                    }
                }
            }));
        }
        drop(senders);
        for _ in 0..workers {
            done_rx.recv().unwrap();
        }
    }
}

/// Pending at its first poll (waking itself), ready at the second: a future that really makes
/// a timeout arm its timer, then completes.
struct PendingOnce(bool);

impl Future for PendingOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Tasks the timer workloads spread their timers over.
const TIMER_TASKS: usize = 100;

/// `timeout_cancel`: 1,000,000 `timeout(30 s, f)` where `f` is pending once, then completes:
/// each arms its timer, then cancels it (the proxy's common case). Spread over 100 tasks.
#[derive(Default)]
pub struct TimeoutCancel;

/// Timeouts in `timeout_cancel`.
pub const TIMEOUTS: usize = 1_000_000;

impl<E: Exec> Workload<E> for TimeoutCancel {
    fn iter(&mut self, rt: &E) {
        let hs: Vec<_> = (0..TIMER_TASKS)
            .map(|_| {
                rt.spawn_outside(async {
                    for _ in 0..TIMEOUTS / TIMER_TASKS {
                        E::timeout(Duration::from_secs(30), PendingOnce(false))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        rt.block_on(async {
            for h in hs {
                h.await;
            }
        });
    }
}

/// `sleep_fire`: 100,000 tasks each sleeping 1..=100 ms, all awaited. Its floor is the
/// 100 ms itself: the runner compares the time above it.
#[derive(Default)]
pub struct SleepFire;

/// Sleeping tasks in `sleep_fire`.
pub const SLEEPERS: usize = 100_000;

impl<E: Exec> Workload<E> for SleepFire {
    fn iter(&mut self, rt: &E) {
        let hs: Vec<_> = (0..SLEEPERS)
            .map(|i| {
                rt.spawn_outside(async move {
                    E::sleep(Duration::from_millis(1 + (i % 100) as u64)).await
                })
            })
            .collect();
        rt.block_on(async {
            for h in hs {
                h.await;
            }
        });
    }

    fn floor(&self) -> Duration {
        Duration::from_millis(100)
    }
}

/// `timer_reset`: 100,000 armed timeouts, each pushed back 100 times (a keep-alive timeout
/// renewed on every request), then dropped. Spread over 100 tasks.
#[derive(Default)]
pub struct TimerReset;

/// Armed timers in `timer_reset`.
pub const RESET_TIMERS: usize = 100_000;
/// Resets of each timer in `timer_reset`.
pub const RESETS: usize = 100;

impl<E: Exec> Workload<E> for TimerReset {
    fn iter(&mut self, rt: &E) {
        let hs: Vec<_> = (0..TIMER_TASKS)
            .map(|_| {
                rt.spawn_outside(async {
                    let mut sleeps: Vec<Pin<Box<E::Sleep>>> = (0..RESET_TIMERS / TIMER_TASKS)
                        .map(|_| Box::pin(E::sleep(Duration::from_secs(30))))
                        .collect();
                    // Arm each: poll once, from this task.
                    std::future::poll_fn(|cx| {
                        for s in sleeps.iter_mut() {
                            assert!(s.as_mut().poll(cx).is_pending());
                        }
                        Poll::Ready(())
                    })
                    .await;
                    let base = Instant::now() + Duration::from_secs(30);
                    for round in 1..=RESETS {
                        for s in sleeps.iter_mut() {
                            E::reset(s.as_mut(), base + Duration::from_millis(round as u64));
                        }
                    }
                    drop(sleeps);
                })
            })
            .collect();
        rt.block_on(async {
            for h in hs {
                h.await;
            }
        });
    }
}
