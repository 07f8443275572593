//! `on_thread_start` / `on_thread_stop`: the user's callbacks, run on every thread a runtime
//! starts (workers and the blocking pool).

use std::sync::Arc;

/// A callback run on a runtime's threads.
pub(crate) type Hook = Arc<dyn Fn() + Send + Sync + 'static>;

/// `on_thread_start` / `on_thread_stop`, run on every worker and blocking-pool thread.
#[derive(Clone, Default)]
pub(crate) struct ThreadHooks {
    pub(crate) start: Option<Hook>,
    pub(crate) stop: Option<Hook>,
}

impl ThreadHooks {
    pub(crate) fn start(&self) {
        run_hook(self.start.as_ref(), "on_thread_start");
    }

    pub(crate) fn stop(&self) {
        run_hook(self.stop.as_ref(), "on_thread_stop");
    }
}

/// Runs a user hook; a panic in it is reported and does not take the thread down (a worker
/// that died at start would strand the tasks routed to it).
fn run_hook(hook: Option<&Hook>, name: &str) {
    if let Some(f) = hook {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f())).is_err() {
            tracing::error!(
                target: "pinwheel::runtime",
                thread = std::thread::current().name().unwrap_or("?"),
                "pinwheel::Builder::{name}: the hook panicked; the thread goes on without it"
            );
        }
    }
}
