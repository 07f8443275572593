//! [`Handle`]: the cloneable way into a runtime, from its tasks or from any thread.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;

use crate::metrics::RuntimeMetrics;
use crate::scheduler::Shared;
use crate::scheduler::context::{enter, with_current, with_worker};
use crate::task::JoinHandle;
use crate::task::TaskMeta;
use crate::task::mask::ThreadMask;

use super::check_mask;

/// A handle to a runtime: spawn onto it and block on it from any thread.
///
/// ```
/// let rt = pinwheel::Runtime::new().unwrap();
/// let handle = rt.handle().clone();
/// let out = std::thread::spawn(move || handle.block_on(handle.spawn(async { 7 })).unwrap())
///     .join()
///     .unwrap();
/// assert_eq!(out, 7);
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

/// The error of [`Handle::try_current`]: no runtime is running on this thread.
#[derive(Debug, Clone)]
pub struct TryCurrentError(());

impl fmt::Display for TryCurrentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "no pinwheel runtime is running on this thread: call this from a task, from inside Runtime::block_on, or use a Handle kept from Runtime::handle()",
        )
    }
}

impl std::error::Error for TryCurrentError {}

/// The flavor of a runtime, from [`Handle::runtime_flavor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuntimeFlavor {
    /// [`Builder::new_current_thread`](crate::Builder::new_current_thread): the thread in
    /// `block_on` is the one worker.
    CurrentThread,
    /// [`Builder::new_multi_thread`](crate::Builder::new_multi_thread): worker threads.
    MultiThread,
}

/// The guard of [`Handle::enter`] and [`Runtime::enter`](crate::Runtime::enter): the runtime is
/// the current one on this thread until it is dropped, and the one before it again after.
/// Not `Send`: it belongs to the thread that entered.
#[must_use = "the runtime is the current one only until the guard is dropped"]
pub struct EnterGuard<'a> {
    inner: Option<crate::scheduler::context::EnterGuard>,
    depth: usize,
    _handle: PhantomData<(&'a Handle, *const ())>,
}

impl Drop for EnterGuard<'_> {
    fn drop(&mut self) {
        if let Err(innermost) = crate::scheduler::context::count_exit(self.depth) {
            // Restoring here would bring back the wrong runtime: keep it, and say so (unless
            // this thread is already unwinding).
            std::mem::forget(self.inner.take());
            if !std::thread::panicking() {
                panic!(
                    "pinwheel::EnterGuard dropped out of order: guards of Handle::enter / Runtime::enter must be dropped in the reverse order they were made (this one is number {}, the innermost is number {innermost})",
                    self.depth
                );
            }
        }
    }
}

impl fmt::Debug for EnterGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnterGuard")
            .field("depth", &self.depth)
            .finish()
    }
}

impl Handle {
    /// The runtime running on this thread: a worker, a thread inside `block_on`, a blocking
    /// closure of the runtime's pool (`spawn_blocking`), or a thread holding an
    /// [`EnterGuard`] (`Handle::enter`).
    ///
    /// # Panics
    ///
    /// Panics off a runtime, saying so; [`try_current`](Self::try_current) does not.
    #[track_caller]
    pub fn current() -> Handle {
        match Handle::try_current() {
            Ok(h) => h,
            Err(e) => panic!("pinwheel::Handle::current: {e}"),
        }
    }

    /// The runtime running on this thread, or an error saying there is none.
    pub fn try_current() -> Result<Handle, TryCurrentError> {
        with_current(|s| s.map(|s| Handle { shared: s.clone() })).ok_or(TryCurrentError(()))
    }

    /// Makes this runtime the current one on the calling thread until the guard is dropped
    /// (tokio's `Handle::enter`): `pinwheel::spawn`, `Handle::current`, timers and sockets
    /// work there without `block_on`. Spawned tasks run on the workers (on a current-thread
    /// runtime, at its next `block_on`); the calling thread drives nothing.
    ///
    /// ```
    /// let rt = pinwheel::Runtime::new()?;
    /// let task = {
    ///     let _guard = rt.enter();
    ///     assert!(pinwheel::Handle::try_current().is_ok());
    ///     pinwheel::spawn(async { 7 })
    /// };
    /// assert!(pinwheel::Handle::try_current().is_err());
    /// assert_eq!(rt.block_on(task).unwrap(), 7);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Panics
    ///
    /// Guards must be dropped in the reverse order they were made; dropping one that is not
    /// the innermost panics.
    pub fn enter(&self) -> EnterGuard<'_> {
        let inner = enter(self.shared.clone());
        EnterGuard {
            depth: crate::scheduler::context::count_enter(),
            inner: Some(inner),
            _handle: PhantomData,
        }
    }

    /// Which flavor of runtime this is (tokio's `runtime_flavor`).
    pub fn runtime_flavor(&self) -> RuntimeFlavor {
        if self.shared.current.get().is_some() {
            RuntimeFlavor::CurrentThread
        } else {
            RuntimeFlavor::MultiThread
        }
    }

    /// The index of the calling thread if it is one of this runtime's workers.
    pub(crate) fn worker_here(&self) -> Option<usize> {
        crate::scheduler::route::with_worker_of(&self.shared, |w| w.map(|w| w.index))
    }

    /// Spawns a task that may run on any worker; see [`spawn`](crate::spawn).
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.shared
            .spawn(future, ThreadMask::all(), TaskMeta::caller())
    }

    /// Spawns a task that only the workers in `mask` may poll; see [`spawn_on`](crate::spawn_on).
    ///
    /// # Panics
    ///
    /// Panics when `mask` names no worker of this runtime.
    #[track_caller]
    pub fn spawn_on<F>(&self, mask: ThreadMask, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        check_mask("spawn_on", mask, &self.shared);
        self.shared.spawn(future, mask, TaskMeta::caller())
    }

    /// Runs `future` to completion on the calling thread, with this runtime as the current one
    /// (so `pinwheel::spawn` works inside). On a multi-thread runtime the calling thread drives
    /// nothing else; on a current-thread one it is the worker, and runs the runtime's tasks
    /// meanwhile (see [`Builder::new_current_thread`](crate::Builder::new_current_thread)).
    ///
    /// # Panics
    ///
    /// Panics on a pinwheel worker thread: blocking it would stall the tasks it must run. On a
    /// current-thread runtime, also on another thread than the one that built it.
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        if with_worker(|w| w.is_some()) {
            panic!(
                "pinwheel: block_on was called on a worker thread; blocking a worker stalls the tasks it runs. Use .await inside tasks, or call block_on from a thread of your own"
            );
        }
        if let Some(current) = self.shared.current.get() {
            // A current-thread runtime: this thread runs its worker meanwhile.
            return current.block_on(future);
        }
        let _enter = enter(self.shared.clone());
        // With a tokio context on the workers, the future reaches tokio through worker 0's.
        #[cfg(feature = "tokio-compat")]
        let _tokio = self
            .shared
            .tokio
            .get()
            .and_then(|t| t.handle(0))
            .map(tokio::runtime::Handle::enter);
        let signal = Arc::new(ThreadSignal {
            thread: thread::current(),
            notified: AtomicBool::new(false),
        });
        let waker = Waker::from(signal.clone());
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future);
        loop {
            // With a cooperative budget, as a task's poll (the budget rule, on `task::coop`).
            if let Poll::Ready(out) =
                crate::task::coop::with_budget(|| future.as_mut().poll(&mut cx))
            {
                return out;
            }
            while !signal.notified.swap(false, Ordering::Acquire) {
                thread::park();
            }
        }
    }

    /// Per-worker counters.
    pub fn metrics(&self) -> RuntimeMetrics {
        self.shared.metrics()
    }

    /// How many worker threads the runtime has.
    pub fn worker_threads(&self) -> usize {
        self.shared.worker_threads()
    }

    /// Runs the blocking closure `f` on the runtime's blocking pool; see
    /// [`spawn_blocking`](crate::spawn_blocking).
    #[track_caller]
    pub fn spawn_blocking<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.shared
            .blocking
            .spawn(f, std::panic::Location::caller())
    }

    /// Lists the live tasks (id, name, mask, state, spawn location, time since last poll):
    /// HAProxy's `show tasks`. Reads the task lists under their locks, one shard at a time,
    /// without stopping the workers; the tasks keep running meanwhile.
    pub fn dump_tasks(&self) -> crate::task::TaskDump {
        self.shared.dump_tasks()
    }

    /// The task profile (HAProxy's `show profiling`): per spawn location, the tasks, polls,
    /// time per poll and schedule latency recorded while profiling was on, most time first.
    /// Empty until profiling is turned on ([`Builder::task_profiling`](crate::Builder::task_profiling),
    /// [`set_task_profiling`](Self::set_task_profiling)). Reading it locks each worker's
    /// table for a moment; the workers go on meanwhile.
    pub fn profile(&self) -> crate::profile::Profile {
        self.shared.profile()
    }

    /// Turns task profiling on, off or to auto while the runtime runs; each worker applies it
    /// at its next loop turn. What was recorded is kept (profiling off stops recording).
    pub fn set_task_profiling(&self, mode: crate::profile::Mode) {
        self.shared.profiler.set_mode(mode);
    }

    /// The task profiling mode set now.
    pub fn task_profiling(&self) -> crate::profile::Mode {
        self.shared.profiler.mode()
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("worker_threads", &self.worker_threads())
            .finish()
    }
}

/// Wakes the thread blocked in `block_on`.
struct ThreadSignal {
    thread: thread::Thread,
    notified: AtomicBool,
}

impl Wake for ThreadSignal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.notified.swap(true, Ordering::Release) {
            self.thread.unpark();
        }
    }
}
