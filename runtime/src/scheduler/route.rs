//! Where a task is queued: the one routing function, for every spawn and every wake, on a
//! worker of the task's runtime or on any other thread.
//!
//! A task goes where its thread mask lets it run (the mask rule: a task is only polled on a
//! thread in its mask):
//! - on a worker of its runtime, a stealable task (full mask) goes to that worker's LIFO slot
//!   or the deque of its class, where idle workers may steal it; a pinned task whose mask names
//!   this worker goes to its pinned queue of its class; any other task is handed to its home
//!   worker's inbox;
//! - off the workers, a stealable task goes to the global injector, any other to its home
//!   worker's inbox;
//! - a stealable task bound to a worker by its sockets (I/O affinity: its `io_home`, set when
//!   it registered a socket with that worker's poller, see `net::register_here`) is queued as
//!   if pinned there: its events and its code stay on the one thread, as a `net::serve`
//!   session's. Tasks that never register a socket keep work stealing, and bound ones are
//!   stolen too when their worker is overloaded (`SPILL_BACKLOG` pinned tasks queued).
//!
//! Callers name the worker they run on once, with [`with_worker_of`], and pass it down: a spawn
//! reads the worker thread-local once.

use std::ptr;
use std::sync::Arc;

use super::{Shared, WorkerContext, context};
use crate::task::{FLAG_STEALABLE, Notified};

/// Runs `f` with the worker of `shared` running on this thread, if this thread is one (not a
/// worker of another runtime): the one answer to "is this thread a worker of this runtime?".
#[inline]
pub(crate) fn with_worker_of<R>(shared: &Shared, f: impl FnOnce(Option<&WorkerContext>) -> R) -> R {
    context::with_worker(|w| f(w.filter(|w| ptr::eq(Arc::as_ptr(&w.shared), shared))))
}

/// Queues `task`, spawned or woken, where its mask lets it run. `here` is this thread's worker
/// of `shared`, as [`with_worker_of`] gives it. `yielded`: the task woke itself during its
/// poll, so it goes to the back of its queue, past the LIFO slot (and, after `yield_now`, waits
/// for its worker's next look at the poller).
///
/// `shared` need only live until the task is queued: off the workers, this holds its own
/// reference from then on (a waker's scheduler reference is inside the task, which another
/// thread may run to completion and free as soon as it is queued).
#[inline(always)]
pub(crate) fn queue(
    shared: &Arc<Shared>,
    here: Option<&WorkerContext>,
    task: Notified,
    yielded: bool,
) {
    match here {
        Some(w) if yielded && context::take_defer_request() => w.defer(task),
        Some(w) => {
            if place(w, task, yielded) {
                w.shared.notify_work();
            }
        }
        None => queue_remote(shared.clone(), task),
    }
}

/// Puts `task` in worker `w`'s own queues now (its thread is `w`'s), or hands it to its home
/// worker when `w` may not run it. Returns `true` when the task went where other workers may
/// steal it: the caller then wakes a sleeping worker to look (once for a batch).
#[inline(always)]
#[must_use = "a task put where others may steal it needs `Shared::notify_work`"]
pub(super) fn place(w: &WorkerContext, task: Notified, yielded: bool) -> bool {
    let h = task.header();
    if h.flags & FLAG_STEALABLE != 0 {
        w.push_stealable(task, yielded)
    } else if h.mask.contains(w.index) {
        w.push_pinned(task);
        false
    } else {
        let home = h.home as usize;
        w.shared.push_remote(home, task);
        false
    }
}

/// Queues a task from a thread that is not one of `shared`'s workers.
#[inline(never)]
fn queue_remote(shared: Arc<Shared>, task: Notified) {
    // Or from code a worker's tokio context runs while the worker waits for it (its sockets'
    // events, timers, tasks): the task goes to that worker, a stealable one bound to it (its
    // tokio resources live there), and the worker's wait ends.
    #[cfg(feature = "tokio-compat")]
    let Some(task) = context::give_to_tokio_parked(&shared, task) else {
        return;
    };
    queue_remote_off_workers(shared, task);
}

/// [`queue_remote`] for a thread that is no worker at all.
fn queue_remote_off_workers(shared: Arc<Shared>, task: Notified) {
    let h = task.header();
    if h.flags & FLAG_STEALABLE != 0 {
        match h.bound_home() {
            None => shared.push_inject(task),
            Some(home) => shared.push_remote(home, task),
        }
    } else {
        let home = h.home as usize;
        shared.push_remote(home, task);
    }
}
