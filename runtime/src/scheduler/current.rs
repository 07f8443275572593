//! The worker of a current-thread runtime (`Builder::new_current_thread`): no thread of its
//! own; the thread in `block_on`, the one that built the runtime, runs its loop between polls
//! of the future it blocks on.
//!
//! The current-thread rule: the worker's context is made on the thread that built the runtime,
//! and is used and dropped only on that thread: [`CurrentWorker::block_on`] refuses any other
//! thread, and [`CurrentWorker::stop`] called elsewhere leaks the context (with its tasks,
//! which may not be `Send`) rather than drop it there.

use std::future::Future;
use std::thread::{self, ThreadId};

use super::WorkerContext;
use crate::loom::{Mutex, lock};

/// The worker context of a current-thread runtime, waiting between `block_on`s.
pub(crate) struct CurrentWorker {
    owner: ThreadId,
    ctx: Mutex<Option<Resting>>,
}

/// The context while no `block_on` runs it.
struct Resting(Box<WorkerContext>);

// SAFETY: the current-thread rule (module docs): the context moves between threads only as a
// part of `CurrentWorker` (inside the runtime's shared state), and only its owner thread takes
// it out of the mutex, uses it and drops it; other threads never touch it.
unsafe impl Send for Resting {}

/// Puts the context back when `block_on` returns or unwinds.
struct PutBack<'a> {
    slot: &'a Mutex<Option<Resting>>,
    ctx: Option<Box<WorkerContext>>,
}

impl Drop for PutBack<'_> {
    fn drop(&mut self) {
        if let Some(ctx) = self.ctx.take() {
            *lock(self.slot) = Some(Resting(ctx));
        }
    }
}

impl CurrentWorker {
    /// Holds `ctx`, made on the calling thread, which becomes its owner.
    pub(crate) fn new(ctx: WorkerContext) -> CurrentWorker {
        CurrentWorker {
            owner: thread::current().id(),
            ctx: Mutex::new(Some(Resting(Box::new(ctx)))),
        }
    }

    /// Runs `future` to completion, running the runtime's tasks meanwhile.
    ///
    /// # Panics
    ///
    /// On another thread than the one that built the runtime, and after the runtime shut down.
    #[track_caller]
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        if thread::current().id() != self.owner {
            panic!(
                "pinwheel::Runtime::block_on: a current-thread runtime runs its tasks on the thread that built it, and this is another thread; call block_on on that thread, or build a multi-thread runtime (Builder::new_multi_thread) to block on it from anywhere"
            );
        }
        let Some(Resting(ctx)) = lock(&self.ctx).take() else {
            panic!(
                "pinwheel::Runtime::block_on: this current-thread runtime has shut down; build a new runtime"
            );
        };
        let guard = PutBack {
            slot: &self.ctx,
            ctx: Some(ctx),
        };
        let ctx = guard.ctx.as_deref().expect("the context was just put here");
        ctx.run_until(future)
    }

    /// Stops the worker: on the owner thread, drops every task it is responsible for and the
    /// context itself; `false` on another thread, where the context is leaked instead (the
    /// current-thread rule), tasks and all.
    pub(crate) fn stop(&self) -> bool {
        let Some(Resting(ctx)) = lock(&self.ctx).take() else {
            return true;
        };
        if thread::current().id() != self.owner {
            std::mem::forget(ctx);
            return false;
        }
        {
            let _worker = super::context::enter_worker(&ctx);
            ctx.stop();
        }
        drop(ctx);
        true
    }
}
