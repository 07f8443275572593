//! Time: [`sleep`], [`timeout`] and [`interval`], on a timer wheel per worker.
//!
//! Each worker owns one hierarchical timing wheel (crate `pinwheel-timer`): its wait queue. A
//! timer is registered lazily, at its first poll, in the wheel of the worker that polls it;
//! polling it again from that worker touches nothing (the waker is kept unless it changed).
//! Cancelling (dropping a [`Sleep`] or a [`Timeout`] whose future finished first) is O(1) on the
//! owning worker. Pushing a deadline back ([`Sleep::reset`] to a later instant, the keep-alive
//! case) touches nothing at all: the old entry fires, the task sees its deadline is not reached
//! and registers again, once per old deadline rather than once per reset.
//!
//! A timer dropped, reset or polled on another thread than the worker whose wheel holds it is
//! handled through that worker's timer mailbox (the same queue type as work lists), never by
//! locking its wheel.
//!
//! Each worker reads the clock once per loop turn, advances its wheel, wakes what is due, and
//! when idle sleeps until its next deadline. Timers never fire early; they fire at most about one
//! tick late (1 ms by default, see [`Builder::timer_tick`](crate::Builder::timer_tick)) plus the
//! wake-up.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use pinwheel::time::{sleep, timeout};
//!
//! let rt = pinwheel::Runtime::new()?;
//! rt.block_on(rt.spawn(async {
//!     let start = Instant::now();
//!     sleep(Duration::from_millis(5)).await;
//!     assert!(start.elapsed() >= Duration::from_millis(5));
//!
//!     let slow = timeout(Duration::from_millis(5), std::future::pending::<()>()).await;
//!     assert!(slow.is_err());
//!     let fast = timeout(Duration::from_secs(5), async { 7 }).await;
//!     assert_eq!(fast.unwrap(), 7);
//! }))
//! .unwrap();
//! # Ok::<(), std::io::Error>(())
//! ```

mod instant;
mod interval;
mod pause;
mod sleep;
mod timeout;

pub use std::time::Duration;

pub(crate) use crate::scheduler::timers::far_future;
pub use instant::Instant;
pub use interval::{Interval, MissedTickBehavior, interval, interval_at};
pub use pause::{advance, pause, resume};
pub use sleep::{Sleep, sleep, sleep_until};
pub use timeout::{Elapsed, Timeout, timeout, timeout_at};

/// `now + d` on the runtime's clock, or a never-reached instant when that overflows
/// (`Duration::MAX`).
pub(crate) fn deadline_after(d: Duration) -> Instant {
    let now = instant::now_std();
    Instant::from_std(now.checked_add(d).unwrap_or_else(|| far_future(now)))
}

/// Panics unless the calling thread is inside a runtime.
#[track_caller]
pub(crate) fn require_runtime(api: &str) {
    if !crate::scheduler::context::with_current(|s| s.is_some()) {
        panic!(
            "pinwheel::time::{api} must be called from inside a pinwheel runtime (a task, or Runtime::block_on): timers run on the runtime's workers"
        );
    }
}
