//! [`Builder`], [`Runtime`] and [`Handle`]: starting workers, entering the runtime, blocking on
//! a future, and shutting down.
//!
//! - `builder.rs`: [`Builder`] and `build` (threads, pollers, the watchdog);
//! - this file: [`Runtime`], which owns the threads and shuts them down when dropped;
//! - `handle.rs`: [`Handle`], the cloneable way in (spawn, block_on, metrics, dumps).
//!
//! "Which runtime am I in" is answered by `scheduler::context`, the runtime's thread-locals.

mod builder;
mod handle;
mod report;

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use crate::loom::{Condvar, Mutex, lock, wait_until};
use crate::metrics::RuntimeMetrics;
use crate::scheduler::Shared;
use crate::scheduler::route::with_worker_of;
use crate::task::JoinHandle;
use crate::task::mask::ThreadMask;

pub use builder::Builder;
pub use handle::{EnterGuard, Handle, RuntimeFlavor, TryCurrentError};
pub use report::{BlockingRunning, ShutdownReport, StuckWorker};

/// The most worker threads a runtime may have: one bit each in a [`ThreadMask`].
pub const MAX_WORKERS: usize = 64;

pub(super) struct Exits {
    pub(super) count: Mutex<usize>,
    pub(super) cond: Condvar,
    /// Which workers have left their loop (set before `count` moves).
    pub(super) exited: Box<[std::sync::atomic::AtomicBool]>,
}

/// Counts a worker thread out, even when it unwinds.
pub(super) struct ExitSignal(pub(super) Arc<Exits>, pub(super) usize);

impl Drop for ExitSignal {
    fn drop(&mut self) {
        self.0.exited[self.1].store(true, Ordering::SeqCst);
        *lock(&self.0.count) += 1;
        self.0.cond.notify_all();
    }
}

/// A running pinwheel runtime: its worker threads and the handle to reach them.
///
/// Dropping it shuts it down: workers stop, every unfinished task is dropped exactly once (a
/// `spawn_local` task on its own thread), and the threads are joined.
///
/// ```
/// let rt = pinwheel::Runtime::new()?;
/// let answer = rt.block_on(async {
///     let h = pinwheel::spawn(async { 40 + 2 });
///     h.await.unwrap()
/// });
/// assert_eq!(answer, 42);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Runtime {
    pub(super) handle: Handle,
    pub(super) threads: Vec<Option<thread::JoinHandle<()>>>,
    pub(super) exits: Arc<Exits>,
    pub(super) watchdog: Option<thread::JoinHandle<()>>,
}

impl Runtime {
    /// A runtime with the [`Builder`]'s defaults.
    ///
    /// # Errors
    ///
    /// The OS error when a worker thread cannot be started.
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// Runs `future` to completion on the calling thread, which drives nothing else meanwhile
    /// on a multi-thread runtime (spawned tasks run on the workers), and is the worker of a
    /// current-thread runtime. See [`Handle::block_on`].
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.handle.block_on(future)
    }

    /// Spawns a task that may run on any worker. See [`spawn`](crate::spawn).
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }

    /// Makes this runtime the current one on the calling thread until the guard is dropped;
    /// see [`Handle::enter`].
    pub fn enter(&self) -> EnterGuard<'_> {
        self.handle.enter()
    }

    /// Shuts down without waiting: the workers are told to stop, the tasks they do not hold
    /// are dropped, and whatever still runs (a worker in a long poll, a blocking closure) is
    /// left to finish on its detached thread (tokio's `shutdown_background`;
    /// [`shutdown_timeout`](Self::shutdown_timeout) with a zero timeout).
    pub fn shutdown_background(mut self) {
        // No report, no warning: leaving work behind is what was asked.
        drop(self.shutdown(Some(Instant::now())));
    }

    /// The handle: cloneable, `Send + Sync`, to spawn from anywhere.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// How many worker threads run.
    pub fn worker_threads(&self) -> usize {
        self.handle.shared.worker_threads()
    }

    /// Per-worker counters, read without stopping the workers.
    pub fn metrics(&self) -> RuntimeMetrics {
        self.handle.metrics()
    }

    /// Shuts down, waiting at most `timeout` for the workers and the blocking pool to stop, and
    /// reports what it could not stop. A worker stuck in a long poll is left behind (its thread
    /// is detached); the tasks it does not hold are still dropped, and it drops its own when its
    /// poll returns. Likewise a [`spawn_blocking`](crate::spawn_blocking) closure that is still
    /// running after `timeout` is left to finish on its detached thread: shutdown does not hang
    /// on it.
    ///
    /// The [`ShutdownReport`] names each worker that did not stop, with the task it was polling
    /// (id, name, spawn location, for how long), each blocking closure still running (spawn
    /// location, for how long), and how many tasks and queued closures were cancelled. When
    /// something was left behind, a `tracing` warning (target `pinwheel::runtime`) carries the
    /// report too.
    ///
    /// (Dropping the runtime waits for the workers without limit, but never for a running
    /// blocking closure; queued blocking tasks that have not started are cancelled either way.)
    pub fn shutdown_timeout(mut self, timeout: Duration) -> ShutdownReport {
        let report = self.shutdown(Some(Instant::now() + timeout));
        if !report.is_clean() {
            tracing::warn!(
                target: "pinwheel::runtime",
                report = %report,
                "pinwheel: the runtime's shutdown deadline passed with threads still running"
            );
        }
        report
    }

    fn shutdown(&mut self, deadline: Option<Instant>) -> ShutdownReport {
        let start = Instant::now();
        if self.threads.is_empty() && self.handle.shared.shutdown.load(Ordering::SeqCst) {
            return ShutdownReport::default();
        }
        let shared = &self.handle.shared;
        shared.begin_shutdown();
        shared.blocking.begin_shutdown();
        if let Some(current) = shared.current.get() {
            // A current-thread runtime's worker stops here, on its thread (the current-thread
            // rule, on `CurrentWorker`).
            if !current.stop() {
                tracing::error!(
                    target: "pinwheel::runtime",
                    "pinwheel: a current-thread runtime was dropped on another thread than the one that built it; its tasks cannot be dropped here and are leaked (drop the runtime on the thread that built it)"
                );
            }
        }
        // A runtime dropped on one of its own workers cannot wait for that worker.
        let me = with_worker_of(shared, |w| w.map(|w| w.index));
        let expected = self.threads.len() - usize::from(me.is_some());
        let mut count = lock(&self.exits.count);
        while *count < expected {
            let (guard, timed_out) = wait_until(&self.exits.cond, count, deadline);
            count = guard;
            if timed_out {
                break;
            }
        }
        drop(count);
        let mut report = ShutdownReport::default();
        // Who is still in its loop, and what it polls: read before the owned list is closed
        // below, while the stuck task is still listed (its fields are copied under the list's
        // lock, as for a dump).
        let stuck: Vec<usize> = (0..self.threads.len())
            .filter(|&i| Some(i) != me && !self.exits.exited[i].load(Ordering::SeqCst))
            .collect();
        if !stuck.is_empty() {
            let dump = shared.dump_tasks();
            for i in stuck {
                let id = shared.workers[i].sign.task.load(Ordering::Relaxed);
                let task = dump.tasks.iter().find(|t| t.id.as_u64() == id).cloned();
                report.stuck_workers.push(StuckWorker { worker: i, task });
            }
        }
        for (i, t) in self.threads.iter_mut().enumerate() {
            if Some(i) == me {
                continue;
            }
            if let Some(t) = t.take_if(|t| t.is_finished()) {
                let _ = t.join();
            }
        }
        self.threads.clear();
        if let Some(w) = self.watchdog.take() {
            // It returns at its next look at the shutdown flag (begin_shutdown rang it).
            let _ = w.join();
        }
        shared.finish_shutdown();
        if let Some(d) = deadline {
            shared.blocking.wait(d);
        }
        let (running, cancelled) = shared.blocking.report();
        report.blocking_running = running
            .into_iter()
            .map(|(location, running_for)| BlockingRunning {
                location,
                running_for,
            })
            .collect();
        report.blocking_cancelled = cancelled;
        report.tasks_cancelled = shared.shutdown_cancelled.load(Ordering::Relaxed);
        report.elapsed = start.elapsed();
        report
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown(None);
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("worker_threads", &self.worker_threads())
            .finish()
    }
}

/// Panics (at the caller of the API) when `mask` names no worker of `shared`.
#[track_caller]
pub(crate) fn check_mask(api: &str, mask: ThreadMask, shared: &Shared) {
    if let Err(misfit) = mask_fits(mask, shared) {
        misfit.panic(api);
    }
}

/// `Ok` when `mask` names a worker of `shared`; otherwise what [`MaskMisfit::panic`] says, to
/// be raised where `#[track_caller]` still reaches the user's call (outside any closure).
pub(crate) fn mask_fits(mask: ThreadMask, shared: &Shared) -> Result<(), MaskMisfit> {
    if (mask & shared.all).is_empty() {
        Err(MaskMisfit {
            mask,
            workers: shared.worker_threads(),
        })
    } else {
        Ok(())
    }
}

/// A mask that names no worker of the runtime it was given to.
pub(crate) struct MaskMisfit {
    mask: ThreadMask,
    workers: usize,
}

impl MaskMisfit {
    /// Panics, naming `api` and the rule broken, at the caller's location.
    #[track_caller]
    pub(crate) fn panic(self, api: &str) -> ! {
        let MaskMisfit { mask, workers } = self;
        panic!(
            "pinwheel::{api}: {mask:?} names no worker of this runtime, which has {workers} workers (indices 0..{workers}); a task needs at least one thread it may run on"
        );
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::{Duration, Instant};

    use super::Builder;

    /// Waits (bounded) until every worker of `rt` is registered as a sleeper.
    fn wait_all_asleep(rt: &super::Runtime) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while rt.handle().shared.idle.num_sleeping() != rt.worker_threads() {
            assert!(Instant::now() < deadline, "workers never went to sleep");
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_spawn_wakes_one_worker_not_all() {
        let rt = Builder::new().worker_threads(4).build().unwrap();
        wait_all_asleep(&rt);
        let before = rt.metrics().total().parks;
        for _ in 0..10 {
            rt.block_on(rt.spawn(async {})).unwrap();
            wait_all_asleep(&rt);
        }
        let woken = rt.metrics().total().parks - before;
        // One worker is woken per spawn, and finding the task as the last searcher it wakes
        // one more: 20 for 10 spawns. Waking every worker would make 40. (A sleeping worker
        // can also wake spuriously, when an unpark's ring lands just after its poll returned,
        // so the bound leaves room for those.)
        assert!(woken < 30, "{woken} wake-ups for 10 spawns on 4 workers");
    }
}
