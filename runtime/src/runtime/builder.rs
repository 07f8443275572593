//! [`Builder`]: a runtime's configuration, and `build`, which starts its threads.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::hooks::ThreadHooks;
use crate::loom::{Condvar, Mutex};
use crate::scheduler::{CurrentWorker, Shared, WorkerContext};

use super::{ExitSignal, Exits, MAX_WORKERS, Runtime};
use crate::runtime::Handle;

/// The environment variable that sets the worker count when the code does not.
pub(crate) const WORKER_THREADS_ENV: &str = "PINWHEEL_WORKER_THREADS";

/// The worker count `PINWHEEL_WORKER_THREADS` asks for, if it is set.
fn workers_from_env() -> io::Result<Option<usize>> {
    let Some(value) = std::env::var_os(WORKER_THREADS_ENV) else {
        return Ok(None);
    };
    match value.to_str().and_then(|v| v.trim().parse::<usize>().ok()) {
        Some(n) if (1..=MAX_WORKERS).contains(&n) => Ok(Some(n)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "pinwheel: {WORKER_THREADS_ENV}={value:?} is not a worker count: set it to a whole number from 1 to {MAX_WORKERS}, or unset it for one worker per CPU"
            ),
        )),
    }
}

/// How many I/O events a worker reads per poll.
const EVENTS_PER_POLL: usize = 1024;

/// Configures and starts a [`Runtime`].
///
/// ```
/// let rt = pinwheel::Builder::new().worker_threads(2).thread_name("svc").build()?;
/// assert_eq!(rt.worker_threads(), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Builder {
    /// `new_current_thread`: the thread in `block_on` is the only worker.
    current_thread: bool,
    /// `start_paused`: the clock starts paused (current-thread only).
    start_paused: bool,
    worker_threads: Option<usize>,
    /// The count when neither `worker_threads` nor `PINWHEEL_WORKER_THREADS` gives one (the
    /// test macro's 2); `None`: one per CPU.
    fallback_workers: Option<usize>,
    thread_name: String,
    timer_tick: Duration,
    long_poll_threshold: Duration,
    watchdog: bool,
    max_blocking_threads: usize,
    thread_keep_alive: Duration,
    io_events_per_poll: usize,
    spin_before_park: u32,
    #[cfg(feature = "tokio-compat")]
    tokio_context: bool,
    task_profiling: crate::profile::Mode,
    worker_cpus: Option<Vec<usize>>,
    pin_workers: bool,
    hooks: ThreadHooks,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("current_thread", &self.current_thread)
            .field("worker_threads", &self.worker_threads)
            .field("thread_name", &self.thread_name)
            .field("timer_tick", &self.timer_tick)
            .field("long_poll_threshold", &self.long_poll_threshold)
            .field("watchdog", &self.watchdog)
            .field("max_blocking_threads", &self.max_blocking_threads)
            .field("thread_keep_alive", &self.thread_keep_alive)
            .field("io_events_per_poll", &self.io_events_per_poll)
            .field("spin_before_park", &self.spin_before_park)
            .field("task_profiling", &self.task_profiling)
            .field("worker_cpus", &self.worker_cpus)
            .field("pin_workers", &self.pin_workers)
            .finish_non_exhaustive()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// A builder with the defaults: one worker per available CPU (at most 64), or as many as
    /// the environment variable `PINWHEEL_WORKER_THREADS` says (read by [`build`](Self::build)
    /// when [`worker_threads`](Self::worker_threads) was not called, as tokio reads
    /// `TOKIO_WORKER_THREADS`); threads named `pinwheel-worker-N`.
    pub fn new() -> Builder {
        Builder {
            current_thread: false,
            start_paused: false,
            worker_threads: None,
            fallback_workers: None,
            thread_name: "pinwheel-worker".to_owned(),
            timer_tick: Duration::from_millis(1),
            long_poll_threshold: Duration::from_millis(100),
            watchdog: true,
            max_blocking_threads: 512,
            thread_keep_alive: Duration::from_secs(10),
            io_events_per_poll: EVENTS_PER_POLL,
            spin_before_park: 0,
            #[cfg(feature = "tokio-compat")]
            tokio_context: false,
            task_profiling: crate::profile::Mode::Off,
            worker_cpus: None,
            pin_workers: false,
            hooks: ThreadHooks::default(),
        }
    }

    /// A builder of a multi-thread runtime: the same as [`new`](Self::new) (tokio's name).
    pub fn new_multi_thread() -> Builder {
        Builder::new()
    }

    /// A builder of a current-thread runtime: no worker thread; the thread that calls
    /// [`Runtime::block_on`] is the one worker, and runs the spawned tasks, timers, sockets and
    /// work lists between polls of the future it blocks on (tokio's `new_current_thread`).
    /// Nothing runs while no `block_on` does. The order tasks run in follows from the order
    /// they are woken, with no other thread racing them: what tests that expect tokio's
    /// default test runtime rely on.
    ///
    /// How it differs from tokio's: the runtime runs on the thread that built it only (its
    /// one worker's queues, wheel and `spawn_local` tasks live there): `block_on` on another
    /// thread panics, and dropping the runtime on another thread leaks its tasks instead of
    /// dropping them there (with a `tracing` error). No watchdog thread is started (its checks
    /// would fire whenever no `block_on` runs); the worker count is 1 whatever
    /// `PINWHEEL_WORKER_THREADS` says, and [`worker_threads`](Self::worker_threads) other than
    /// 1 makes [`build`](Self::build) fail.
    ///
    /// ```
    /// let rt = pinwheel::Builder::new_current_thread().build()?;
    /// let me = std::thread::current().id();
    /// let ran_on = rt.block_on(async {
    ///     pinwheel::spawn(async { std::thread::current().id() }).await.unwrap()
    /// });
    /// assert_eq!(ran_on, me);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new_current_thread() -> Builder {
        let mut b = Builder::new();
        b.current_thread = true;
        b.watchdog = false;
        b
    }

    /// Whether the runtime's clock starts paused, as after [`time::pause`](crate::time::pause)
    /// (default `false`): tokio's `start_paused`, for tests. Needs a current-thread runtime;
    /// on a multi-thread one [`build`](Self::build) fails with `InvalidInput`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = pinwheel::Builder::new_current_thread().start_paused(true).build()?;
    /// rt.block_on(async {
    ///     let start = pinwheel::time::Instant::now();
    ///     pinwheel::time::sleep(Duration::from_secs(60)).await; // no real minute
    ///     assert!(start.elapsed() >= Duration::from_secs(60));
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn start_paused(&mut self, paused: bool) -> &mut Builder {
        self.start_paused = paused;
        self
    }

    /// The most threads [`spawn_blocking`](crate::spawn_blocking) may run at once (default
    /// 512, at least 1); tasks beyond wait in a queue. Started on demand.
    pub fn max_blocking_threads(&mut self, n: usize) -> &mut Builder {
        self.max_blocking_threads = n;
        self
    }

    /// How a worker goes to sleep when it runs out of work right after serving I/O: it first
    /// gives its CPU away (`sched_yield`) and polls its poller once more without blocking,
    /// `rounds` times, and sleeps only if nothing came. Default 0: it sleeps at once (on the
    /// 2-vCPU machine of BENCHMARKS.md the spin showed no gain beyond run-to-run noise, and
    /// costs a `sched_yield` and an `epoll_wait` each time it fires).
    ///
    /// Why: where the load shares the cores with other threads (a load generator, sidecars,
    /// a CPU quota), a worker that blocks in `epoll_wait` as soon as its queue is empty is
    /// woken again a moment later for the next packet of the very connections it serves,
    /// through a context switch each time; pinned sessions wait while their worker is
    /// switched out. Yielding lets the other threads run (and send) first, and the repoll
    /// often finds their data. The policy only applies under load: after a poll that
    /// delivered several events at once (a lone ping-pong connection delivers one at a time,
    /// and its next request cannot come before its peer read the answer, so its latency is
    /// untouched), and a worker that found nothing after its yields sleeps at once until such
    /// a poll again, so an idle runtime stays at 0 CPU and timers-only work pays nothing.
    ///
    /// ```
    /// let rt = pinwheel::Builder::new().spin_before_park(1).build()?;
    /// # drop(rt);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spin_before_park(&mut self, rounds: u32) -> &mut Builder {
        self.spin_before_park = rounds;
        self
    }

    /// Gives every worker thread a tokio context that the worker itself drives (feature
    /// `tokio-compat`; default off): `tokio::spawn`, `tokio::time`, `tokio::net`,
    /// `tokio::task::spawn_blocking` and `tokio::runtime::Handle::current()` work from any
    /// pinwheel task, and the tokio tasks, sockets and timers they make run on that same
    /// worker thread: a tokio-based client (a database or HTTP client) used from a session
    /// keeps its events on the session's thread, with nothing to wrap. Each worker runs its
    /// loop inside a tokio current-thread runtime of its own and sleeps in tokio's driver,
    /// with its own poller registered there; tokio's tasks and pinwheel's take turns (tokio's
    /// every 256 pinwheel polls, and whenever the worker runs out of work). A pinwheel task
    /// woken by a worker's tokio context (its tokio sockets' events, timers, tasks) is bound
    /// to that worker, as by a pinwheel socket of its own (I/O affinity). `Runtime::block_on`
    /// enters worker 0's tokio context for the future it runs off the workers. Off, nothing of
    /// this is built or paid for: one thread-local read when a task is queued from outside
    /// the workers.
    ///
    /// What tokio allows only on its multi-thread runtime (`tokio::task::block_in_place`)
    /// panics here as on tokio's current-thread runtime; pinwheel's blocking pool threads run
    /// without a tokio context. A runtime of the current-thread flavor refuses the switch
    /// (`build` returns `InvalidInput`): it has no worker thread to drive a tokio context.
    /// Code of a tokio task is not a pinwheel task: there `pinwheel::spawn` works (it queues
    /// the task on the worker whose tokio context runs it), but `current_worker()` is `None`
    /// and `spawn_local` panics as off the workers.
    ///
    /// ```
    /// let rt = pinwheel::Builder::new().worker_threads(2).tokio_context(true).build()?;
    /// let answer = rt.block_on(rt.spawn(async {
    ///     // tokio's spawn and timer, on this worker's thread:
    ///     let t = tokio::spawn(async { 42 });
    ///     tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    ///     t.await.unwrap()
    /// }));
    /// assert_eq!(answer.unwrap(), 42);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(feature = "tokio-compat")]
    pub fn tokio_context(&mut self, on: bool) -> &mut Builder {
        self.tokio_context = on;
        self
    }

    /// Whether the runtime profiles its tasks (default [`Mode::Off`](crate::profile::Mode::Off)):
    /// polls, time per poll and schedule latency per spawn location, read with
    /// [`Handle::profile`](crate::Handle::profile) and changed while running with
    /// [`Handle::set_task_profiling`](crate::Handle::set_task_profiling). See
    /// [`profile`](crate::profile) for what it costs and how it is measured.
    ///
    /// ```
    /// use pinwheel::profile::Mode;
    ///
    /// let rt = pinwheel::Builder::new().task_profiling(Mode::On).build()?;
    /// rt.block_on(async {
    ///     pinwheel::spawn(async { pinwheel::yield_now().await }).await.unwrap();
    /// });
    /// let profile = rt.handle().profile();
    /// assert!(profile.entries().iter().any(|e| e.polls >= 2));
    /// println!("{profile}");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn task_profiling(&mut self, mode: crate::profile::Mode) -> &mut Builder {
        self.task_profiling = mode;
        self
    }

    /// How many readiness events a worker takes from its poller in one call (default 1024, from
    /// 1 to 65,536; tokio's `max_io_events_per_tick`). Wakers are called after each batch.
    /// Other values make [`build`](Self::build) fail with `InvalidInput`.
    pub fn io_events_per_poll(&mut self, n: usize) -> &mut Builder {
        self.io_events_per_poll = n;
        self
    }

    /// How long an idle blocking-pool thread waits for work before it exits (default 10 s).
    pub fn thread_keep_alive(&mut self, idle: Duration) -> &mut Builder {
        self.thread_keep_alive = idle;
        self
    }

    /// Binds worker `i` to CPU `cpus[i % cpus.len()]` (HAProxy's `cpu-map`). A CPU this
    /// process may not run on makes [`build`](Self::build) fail with `InvalidInput` naming it
    /// and the CPUs that are available. Linux only (elsewhere `build` fails with
    /// `Unsupported`).
    pub fn worker_cpus(&mut self, cpus: impl IntoIterator<Item = usize>) -> &mut Builder {
        self.worker_cpus = Some(cpus.into_iter().collect());
        self
    }

    /// Binds worker `i` to the `i`-th CPU this process may run on (wrapping around), unless
    /// [`worker_cpus`](Self::worker_cpus) says otherwise.
    pub fn pin_workers(&mut self, on: bool) -> &mut Builder {
        self.pin_workers = on;
        self
    }

    /// Runs `f` on each worker and blocking-pool thread as it starts, before it runs tasks.
    pub fn on_thread_start(&mut self, f: impl Fn() + Send + Sync + 'static) -> &mut Builder {
        self.hooks.start = Some(Arc::new(f));
        self
    }

    /// Runs `f` on each worker and blocking-pool thread as it stops, after its last task.
    pub fn on_thread_stop(&mut self, f: impl Fn() + Send + Sync + 'static) -> &mut Builder {
        self.hooks.stop = Some(Arc::new(f));
        self
    }

    /// How long a single task poll may run before the watchdog reports it (default 100 ms,
    /// from 1 ms to 1 hour): one `tracing` warning naming the task and the thread, and the
    /// worker's `long_polls` metric counts it. Other values make [`build`](Self::build) fail
    /// with `InvalidInput`.
    pub fn long_poll_threshold(&mut self, threshold: Duration) -> &mut Builder {
        self.long_poll_threshold = threshold;
        self
    }

    /// Whether to run the watchdog thread (default `true`). It samples the workers every
    /// quarter of the [long-poll threshold](Self::long_poll_threshold) while any of them is
    /// awake, and sleeps while they all sleep; see the `long_polls` and `stalls` metrics.
    pub fn watchdog(&mut self, on: bool) -> &mut Builder {
        self.watchdog = on;
        self
    }

    /// The number of worker threads, from 1 to 64. Other values make [`build`](Self::build)
    /// fail with `InvalidInput`. Without it, the count is `PINWHEEL_WORKER_THREADS` if set,
    /// else one worker per CPU.
    pub fn worker_threads(&mut self, n: usize) -> &mut Builder {
        self.worker_threads = Some(n);
        self
    }

    /// The worker count to use when neither [`worker_threads`](Self::worker_threads) nor
    /// `PINWHEEL_WORKER_THREADS` gives one (instead of one per CPU): what
    /// `#[pinwheel::test]` uses for its default of 2. Not checked until `build`.
    #[doc(hidden)]
    pub fn fallback_worker_threads(&mut self, n: usize) -> &mut Builder {
        self.fallback_workers = Some(n);
        self
    }

    /// The name prefix of the worker threads; worker `i` is named `"{name}-{i}"`.
    pub fn thread_name(&mut self, name: impl Into<String>) -> &mut Builder {
        self.thread_name = name.into();
        self
    }

    /// The resolution of timers: each worker's wheel counts in ticks of this length, from
    /// 1 µs to 1 s (default 1 ms). Timers never fire early; they fire at most about one tick
    /// late (plus the wake-up). Other values make [`build`](Self::build) fail with
    /// `InvalidInput`.
    pub fn timer_tick(&mut self, tick: Duration) -> &mut Builder {
        self.timer_tick = tick;
        self
    }

    /// The CPU of each worker, if they are to be bound.
    fn placement(&self, workers: usize) -> io::Result<Option<Vec<usize>>> {
        if self.worker_cpus.is_none() && !self.pin_workers {
            return Ok(None);
        }
        let cpus = match &self.worker_cpus {
            Some(list) => {
                let online = crate::placement::online_cpus()?;
                if list.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "pinwheel::Builder::worker_cpus: the list of CPUs is empty",
                    ));
                }
                if let Some(bad) = list.iter().find(|c| !online.contains(c)) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "pinwheel::Builder::worker_cpus: CPU {bad} does not exist (or is offline); the CPUs available are {}",
                            crate::placement::describe(&online)
                        ),
                    ));
                }
                list.clone()
            }
            // The CPUs the building thread may use (all of them, unless the process was
            // started under `taskset` or the like).
            None => crate::placement::allowed_cpus()?,
        };
        Ok(Some((0..workers).map(|i| cpus[i % cpus.len()]).collect()))
    }

    /// Starts the worker threads.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when the worker count (or `PINWHEEL_WORKER_THREADS`) is not from 1 to 64,
    /// or the timer tick is outside 1 µs ..= 1 s; the OS error when a thread cannot be started.
    pub fn build(&mut self) -> io::Result<Runtime> {
        if !(Duration::from_micros(1)..=Duration::from_secs(1)).contains(&self.timer_tick) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "pinwheel::Builder::timer_tick({:?}): the timer tick must be between 1 µs and 1 s",
                    self.timer_tick
                ),
            ));
        }
        if !(Duration::from_millis(1)..=Duration::from_secs(3600))
            .contains(&self.long_poll_threshold)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "pinwheel::Builder::long_poll_threshold({:?}): the threshold must be between 1 ms and 1 hour",
                    self.long_poll_threshold
                ),
            ));
        }
        if !(1..=65_536).contains(&self.io_events_per_poll) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "pinwheel::Builder::io_events_per_poll({}): the batch must hold 1 to 65536 events",
                    self.io_events_per_poll
                ),
            ));
        }
        if self.max_blocking_threads == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "pinwheel::Builder::max_blocking_threads(0): the blocking pool needs at least one thread",
            ));
        }
        if self.start_paused && !self.current_thread {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "pinwheel::Builder::start_paused(true) on a multi-thread runtime: the paused clock needs a current-thread runtime (Builder::new_current_thread)",
            ));
        }
        #[cfg(feature = "tokio-compat")]
        if self.tokio_context && self.current_thread {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "pinwheel::Builder::tokio_context(true) on a current-thread runtime: the tokio context is driven by worker threads, which a current-thread runtime has none of; use Builder::new_multi_thread (or flavor = \"multi_thread\" in the macros)",
            ));
        }
        let count = match self.worker_threads {
            Some(1) if self.current_thread => Some(1),
            Some(n) if self.current_thread => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "pinwheel::Builder::worker_threads({n}) on a current-thread runtime: it has exactly one worker, the thread in block_on; use Builder::new_multi_thread for {n} workers"
                    ),
                ));
            }
            None if self.current_thread => Some(1),
            Some(n) => Some(n),
            None => workers_from_env()?,
        };
        let n = match count {
            Some(n) if (1..=MAX_WORKERS).contains(&n) => n,
            Some(n) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "pinwheel::Builder::worker_threads({n}): the worker count must be between 1 and {MAX_WORKERS} (one bit each in a ThreadMask)"
                    ),
                ));
            }
            None => match self.fallback_workers {
                Some(n) => n.clamp(1, MAX_WORKERS),
                None => thread::available_parallelism()
                    .map_or(1, |n| n.get())
                    .clamp(1, MAX_WORKERS),
            },
        };
        let deques: Vec<_> = (0..n)
            .map(|_| crate::scheduler::WorkerDeques::new())
            .collect();
        let mut drivers = Vec::with_capacity(n);
        let mut io = Vec::with_capacity(n);
        for i in 0..n {
            let (driver, handle) = pinwheel_io_driver::Driver::new(self.io_events_per_poll)
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("pinwheel: could not create the I/O poller of worker {i}: {e}"),
                    )
                })?;
            drivers.push(driver);
            io.push(handle);
        }
        let cpus = self.placement(n)?;
        let clock = crate::scheduler::timers::Clock::new(self.timer_tick);
        let blocking = crate::blocking::BlockingPool::new(crate::blocking::PoolConfig {
            max_threads: self.max_blocking_threads,
            keep_alive: self.thread_keep_alive,
            thread_name: self.thread_name.clone(),
            hooks: self.hooks.clone(),
        });
        let shared = Arc::new(Shared::new(
            deques.iter().map(|w| w.stealers()).collect(),
            io,
            clock,
            blocking,
            self.spin_before_park,
            self.task_profiling,
        ));
        // Blocking closures run inside the runtime's context (tokio's `spawn_blocking` does):
        // through a weak reference, so the pool (owned by `shared`) keeps no cycle alive.
        let weak = Arc::downgrade(&shared);
        shared
            .blocking
            .set_context(Box::new(move |run| match weak.upgrade() {
                Some(shared) => {
                    let _entered = crate::scheduler::context::enter(shared);
                    run();
                }
                None => run(),
            }));
        let exits = Arc::new(Exits {
            count: Mutex::new(0),
            cond: Condvar::new(),
            exited: (0..n).map(|_| Default::default()).collect(),
        });
        // From here on, a failure drops `rt`, which shuts down what was started.
        let mut rt = Runtime {
            handle: Handle { shared },
            threads: Vec::with_capacity(n),
            exits,
            watchdog: None,
        };
        if self.current_thread {
            // No thread: the context waits on this thread for `block_on` (the current-thread
            // rule, on `CurrentWorker`).
            let (deque, driver) = deques
                .into_iter()
                .zip(drivers)
                .next()
                .expect("a current-thread runtime has one worker");
            let shared = rt.handle.shared.clone();
            let ctx = WorkerContext::new_current(shared.clone(), deque, driver);
            let _ = shared.current.set(CurrentWorker::new(ctx));
            if self.start_paused {
                let _ = shared.clock.pause();
            }
            return Ok(rt);
        }
        #[cfg(feature = "tokio-compat")]
        if self.tokio_context {
            let _ = rt
                .handle
                .shared
                .tokio
                .set(crate::scheduler::TokioContexts::new(n));
        }
        for (index, (deque, driver)) in deques.into_iter().zip(drivers).enumerate() {
            let shared2 = rt.handle.shared.clone();
            let exits2 = rt.exits.clone();
            let hooks = self.hooks.clone();
            let cpu = cpus.as_ref().map(|c| c[index % c.len()]);
            let t = thread::Builder::new()
                .name(format!("{}-{index}", self.thread_name))
                .spawn(move || {
                    let _exit = ExitSignal(exits2, index);
                    if let Some(cpu) = cpu {
                        if let Err(e) = crate::placement::bind_current_thread(cpu) {
                            tracing::error!(target: "pinwheel::placement", worker = index, cpu, error = %e, "pinwheel: could not bind a worker to its CPU; it runs unbound");
                        }
                    }
                    hooks.start();
                    WorkerContext::run_thread(shared2, index, deque, driver);
                    hooks.stop();
                })
                .map_err(|e| not_started(&format!("worker thread {index}"), e))?;
            rt.threads.push(Some(t));
        }
        #[cfg(feature = "tokio-compat")]
        if let Some(contexts) = rt.handle.shared.tokio.get() {
            // Every worker has built its tokio runtime (or said it could not) before anyone
            // may call block_on, which enters one.
            contexts.wait_started();
        }
        if self.watchdog {
            let (shared2, threshold) = (rt.handle.shared.clone(), self.long_poll_threshold);
            let prefix = self.thread_name.clone();
            let t = thread::Builder::new()
                .name(format!("{}-watchdog", self.thread_name))
                .spawn(move || crate::watchdog::run(shared2, threshold, prefix))
                .map_err(|e| not_started("the watchdog thread", e))?;
            rt.watchdog = Some(t);
        }
        Ok(rt)
    }
}

/// The error `build` returns when a thread could not be started.
fn not_started(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("pinwheel: could not start {what}: {e}"))
}
