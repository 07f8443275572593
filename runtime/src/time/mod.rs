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

mod interval;
mod sleep;
mod timeout;
mod wheel;

use std::time::{Duration, Instant};

pub use interval::{Interval, MissedTickBehavior, interval, interval_at};
pub use sleep::{Sleep, sleep, sleep_until};
pub use timeout::{Elapsed, Timeout, timeout, timeout_at};
pub(crate) use wheel::{TimerContext, TimerOp};

/// A runtime's time base: the instant tick 0 stands for, and the length of a tick.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    start: Instant,
    tick_nanos: u64,
}

impl Clock {
    pub(crate) fn new(tick: Duration) -> Clock {
        Clock {
            start: Instant::now(),
            tick_nanos: (tick.as_nanos() as u64).max(1),
        }
    }

    /// The tick `now` falls in (rounded down).
    pub(crate) fn tick_floor(&self, now: Instant) -> u64 {
        let nanos = now.saturating_duration_since(self.start).as_nanos();
        u64::try_from(nanos / self.tick_nanos as u128).unwrap_or(u64::MAX)
    }

    /// The first tick at or after `deadline` (rounded up): a timer registered there never
    /// fires before `deadline`.
    pub(crate) fn tick_ceil(&self, deadline: Instant) -> u64 {
        let nanos = deadline.saturating_duration_since(self.start).as_nanos();
        u64::try_from(nanos.div_ceil(self.tick_nanos as u128)).unwrap_or(u64::MAX)
    }

    /// Milliseconds from the runtime's start to `now` (wrapping after 49 days).
    pub(crate) fn millis(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.start).as_millis() as u32
    }

    /// The instant `millis` (as from [`millis`](Self::millis)) stands for, taking the wrap
    /// into account relative to `now`.
    pub(crate) fn instant_of_millis(&self, millis: u32, now: Instant) -> Instant {
        let back = self.millis(now).wrapping_sub(millis);
        now.checked_sub(std::time::Duration::from_millis(u64::from(back)))
            .unwrap_or(self.start)
    }

    /// The instant tick `tick` starts at (saturating far in the future).
    pub(crate) fn instant_of(&self, tick: u64) -> Instant {
        let nanos = tick as u128 * self.tick_nanos as u128;
        let d = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        self.start
            .checked_add(d)
            .unwrap_or_else(|| far_future(self.start))
    }
}

/// An instant so far ahead it is never reached, for deadlines that overflow `Instant`.
pub(crate) fn far_future(now: Instant) -> Instant {
    const YEAR: u64 = 86_400 * 365;
    [30 * YEAR, YEAR, 86_400, 3_600]
        .into_iter()
        .find_map(|s| now.checked_add(Duration::from_secs(s)))
        .unwrap_or(now)
}

/// `now + d`, or a never-reached instant when that overflows (`Duration::MAX`).
pub(crate) fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d).unwrap_or_else(|| far_future(now))
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
