//! The runtime's thread-locals: which runtime this thread is in (a worker, a thread inside
//! `block_on`, or one that called `Handle::enter`), on a worker thread which worker it is,
//! whether the poll running asked `yield_now`'s deferral, and how many enter guards it holds.
//!
//! They live in `scheduler/` because the answers are scheduler types ([`Shared`], the
//! runtime's root, and [`WorkerContext`]) or scheduler decisions, and the scheduler reads the
//! worker pointer once per spawn and once per wake (through `route::with_worker_of` or
//! [`with_current_at`], which pass the worker down); the layers above (`runtime`, `spawn`, `time`, `net`, `work_list`)
//! ask here too, and nothing below `scheduler` reaches up for one. The bottom layer keeps two
//! cells of its own, which need nothing of the scheduler: the cooperative budget
//! (`task/coop.rs`, read by every resource of every layer) and the block of task ids handed
//! to each thread (`task/id.rs`).
//!
//! They are separate cells, not one struct: the worker pointer is read on every wake and
//! spawn, and a `const` thread-local without a destructor is one load from the thread's TLS
//! block; the runtime handle (an `Arc`, so a destructor to register and a liveness check on
//! each access) is read only off the workers.

use std::cell::{Cell, RefCell};
use std::ptr;
use std::sync::Arc;

use super::{Shared, WorkerContext};

thread_local! {
    /// The runtime entered by `block_on` and by a blocking closure (a worker enters its own
    /// too).
    static RUNTIME: RefCell<Option<Arc<Shared>>> = const { RefCell::new(None) };
    /// The worker running on this thread, or null.
    ///
    /// The worker rule: the pointer is set by [`enter_worker`] to a `WorkerContext` on that
    /// thread's stack and cleared by the guard it returns, before the context is dropped; only
    /// this thread reads it. Hence a non-null pointer always points to a live context.
    static WORKER: Cell<*const WorkerContext> = const { Cell::new(ptr::null()) };
    /// Set by `yield_now` during a poll: the polled task's self-wake waits for the worker's
    /// next look at its poller. Read and cleared by the worker (a cell of its own, not a field
    /// of the worker's context: `yield_now` is called on every yield, and this is one store).
    static DEFER: Cell<bool> = const { Cell::new(false) };
    /// How many guards of `Handle::enter` / `Runtime::enter` this thread holds (they must be
    /// dropped in the reverse order they were made).
    static ENTERED: Cell<usize> = const { Cell::new(0) };
    /// The worker of this thread while it sleeps in its tokio context's driver (feature
    /// `tokio-compat`): `WORKER` is null then, so code that tokio runs on this thread meanwhile
    /// (its I/O and timer wakes, its tasks) reaches the worker through here, which also wakes
    /// the worker's sleep. Set and cleared by `TokioParkGuard`, under the worker rule as
    /// `WORKER`.
    #[cfg(feature = "tokio-compat")]
    static TOKIO_PARKED: Cell<*const WorkerContext> = const { Cell::new(ptr::null()) };
}

/// Counts a public enter guard in: returns its depth (1 for the outermost).
pub(crate) fn count_enter() -> usize {
    ENTERED.with(|d| {
        d.set(d.get() + 1);
        d.get()
    })
}

/// Counts the guard of depth `depth` out; `Err(innermost)` when it is not the innermost (it
/// is dropped out of order; nothing is counted out then).
pub(crate) fn count_exit(depth: usize) -> Result<(), usize> {
    ENTERED
        .try_with(|d| {
            if d.get() == depth {
                d.set(depth - 1);
                Ok(())
            } else {
                Err(d.get())
            }
        })
        .unwrap_or(Ok(()))
}

/// The task being polled yields: when it wakes itself, its worker queues it again only after
/// its next look at the poller. Off the workers, nobody reads it (and the next poll on a
/// worker starts with it cleared).
#[inline]
pub(crate) fn request_defer() {
    DEFER.with(|d| d.set(true));
}

/// Clears a request the poll left (its task did not wake itself after all).
#[inline]
pub(crate) fn clear_defer_request() {
    DEFER.with(|d| d.set(false));
}

/// Whether the poll running asked for its self-wake to be deferred; clears the request.
#[inline]
pub(crate) fn take_defer_request() -> bool {
    DEFER.with(|d| d.replace(false))
}

/// Makes `shared` the current runtime of this thread until the guard drops.
pub(crate) fn enter(shared: Arc<Shared>) -> EnterGuard {
    let prev = RUNTIME.with(|r| r.replace(Some(shared)));
    EnterGuard { prev }
}

/// Restores the runtime that was current before [`enter`].
pub(crate) struct EnterGuard {
    prev: Option<Arc<Shared>>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        // `try_with`: a guard dropped during thread-local destruction has nothing to restore.
        let _ = RUNTIME.try_with(|r| *r.borrow_mut() = prev);
    }
}

/// Runs `f` with the current runtime's root, without cloning it.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Arc<Shared>>) -> R) -> R {
    with_current_at(|s, _| f(s))
}

/// Runs `f` with the current runtime's root and, on one of its workers, that worker (one read
/// of the worker thread-local, for a spawn to pass on).
#[inline]
pub(crate) fn with_current_at<R>(
    f: impl FnOnce(Option<&Arc<Shared>>, Option<&WorkerContext>) -> R,
) -> R {
    with_worker(|w| match w {
        Some(w) => f(Some(&w.shared), Some(w)),
        None => RUNTIME.with(|r| f(r.borrow().as_ref(), None)),
    })
}

/// Marks this thread as running worker `w` (and enters its runtime) until the guard drops.
pub(crate) fn enter_worker(w: &WorkerContext) -> WorkerGuard<'_> {
    let enter = enter(w.shared.clone());
    WORKER.with(|c| c.set(w));
    WorkerGuard {
        _worker: w,
        _enter: enter,
    }
}

/// Clears the thread's worker pointer however the thread leaves (the worker rule), so that
/// nothing, a thread-local destructor say, can reach the context after it is gone.
pub(crate) struct WorkerGuard<'a> {
    _worker: &'a WorkerContext,
    _enter: EnterGuard,
}

impl Drop for WorkerGuard<'_> {
    fn drop(&mut self) {
        let _ = WORKER.try_with(|c| c.set(ptr::null()));
    }
}

/// Runs `f` with the calling thread's worker context, if it is a worker thread.
#[inline(always)]
pub(crate) fn with_worker<R>(f: impl FnOnce(Option<&WorkerContext>) -> R) -> R {
    let w = WORKER.with(Cell::get);
    // SAFETY: the worker rule (on `WORKER`): non-null means a live context of this thread,
    // and the borrow ends with `f`, inside the guard's lifetime.
    f(unsafe { w.as_ref() })
}

/// Gives `task` to this thread's worker if it waits for its tokio context (feature
/// `tokio-compat`: the caller is code tokio runs meanwhile, its I/O and timer wakes, its
/// tasks) and is one of `shared`'s (see `WorkerContext::take_tokio_wake`); the task back when
/// there is no such worker or it may not take it. Asked only where `WORKER` is null, by the
/// remote queueing path.
#[cfg(feature = "tokio-compat")]
pub(crate) fn give_to_tokio_parked(
    shared: &Shared,
    task: crate::task::Notified,
) -> Option<crate::task::Notified> {
    let Ok(w) = TOKIO_PARKED.try_with(Cell::get) else {
        return Some(task);
    };
    // SAFETY: the worker rule, as for `WORKER`: set to a live context of this thread by
    // `TokioParkGuard`, cleared before that context can go; the borrow ends in this call.
    match unsafe { w.as_ref() } {
        Some(w) if ptr::eq(Arc::as_ptr(&w.shared), shared) => w.take_tokio_wake(task),
        _ => Some(task),
    }
}

/// While it lives, the thread's worker waits for its tokio context (sleeps in tokio's driver,
/// or lets tokio take its turn): `WORKER` is null and
/// `TOKIO_PARKED` holds the worker (see there); dropping it swaps them back.
#[cfg(feature = "tokio-compat")]
pub(crate) struct TokioParkGuard<'a> {
    worker: &'a WorkerContext,
}

#[cfg(feature = "tokio-compat")]
impl<'a> TokioParkGuard<'a> {
    /// Hands this thread's worker pointer over to `TOKIO_PARKED`; `w` is this thread's worker.
    pub(crate) fn new(w: &'a WorkerContext) -> TokioParkGuard<'a> {
        debug_assert!(ptr::eq(WORKER.with(Cell::get), w));
        WORKER.with(|c| c.set(ptr::null()));
        TOKIO_PARKED.with(|c| c.set(w));
        TokioParkGuard { worker: w }
    }
}

#[cfg(feature = "tokio-compat")]
impl Drop for TokioParkGuard<'_> {
    fn drop(&mut self) {
        let _ = TOKIO_PARKED.try_with(|c| c.set(ptr::null()));
        let _ = WORKER.try_with(|c| c.set(self.worker));
    }
}

/// Runs `f` with the header of the task the calling worker thread is running, if any (what
/// `task::set_class` acts on).
pub(crate) fn with_polled_task<R>(f: impl FnOnce(&crate::task::Header) -> R) -> Option<R> {
    with_worker(|w| w.and_then(|w| w.with_polled(f)))
}

/// The index of the calling worker thread, or `None` off the workers.
///
/// ```
/// let rt = pinwheel::Builder::new().worker_threads(2).build().unwrap();
/// assert_eq!(pinwheel::current_worker(), None);
/// let i = rt.block_on(rt.spawn(async { pinwheel::current_worker() })).unwrap();
/// assert!(matches!(i, Some(0 | 1)));
/// ```
pub fn current_worker() -> Option<usize> {
    with_worker(|w| w.map(|w| w.index))
}
