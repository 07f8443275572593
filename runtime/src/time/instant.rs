//! [`Instant`]: a point in the runtime's time, which follows the paused clock in tests.

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::time::Duration;

/// A measurement of the runtime's clock, as tokio's `time::Instant`: the same as
/// [`std::time::Instant`] (and convertible to and from it), except that [`now`](Self::now)
/// follows the current runtime's clock, which a test may [`pause`](super::pause) and
/// [`advance`](super::advance). Deadlines of [`sleep_until`](super::sleep_until),
/// [`timeout_at`](super::timeout_at) and [`interval_at`](super::interval_at) are `Instant`s.
///
/// ```
/// use std::time::Duration;
/// use pinwheel::time::Instant;
///
/// let start = Instant::now();
/// let later = start + Duration::from_millis(5);
/// assert_eq!(later - start, Duration::from_millis(5));
/// assert_eq!(Instant::from_std(start.into_std()), start);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(std::time::Instant);

impl Instant {
    /// The current runtime's time: the system's monotonic clock, or, while a test has paused
    /// it, the paused clock. Off the runtimes, the system's.
    pub fn now() -> Instant {
        Instant(now_std())
    }

    /// The clock as the calling worker read it at the start of its current loop turn
    /// (HAProxy's `now_ms`): a thread-local read instead of a clock read, earlier than
    /// [`now`](Self::now) by the time the turn has run so far (a turn polls at most 64 tasks).
    /// For deadlines that are moved very often and may come that much early: an idle timeout
    /// pushed back on every read and write, say. Follows the paused clock as `now` does. Off
    /// the workers (inside `block_on` on a multi-thread runtime, or outside any runtime), the
    /// same as [`now`](Self::now).
    ///
    /// ```
    /// use std::time::Duration;
    /// use pinwheel::time::{Instant, sleep};
    ///
    /// #[pinwheel::main]
    /// async fn main() {
    ///     // An idle deadline moved on every read and write, at the cost of a field read.
    ///     let mut idle = sleep(Duration::from_secs(30));
    ///     idle.reset(Instant::recent() + Duration::from_secs(30));
    ///     assert!(Instant::recent() <= Instant::now());
    /// }
    /// ```
    #[inline]
    pub fn recent() -> Instant {
        crate::scheduler::context::with_worker(|w| match w {
            Some(w) => Instant(w.turn_now()),
            None => Instant::now(),
        })
    }

    /// The `Instant` of a `std::time::Instant`.
    pub fn from_std(std: std::time::Instant) -> Instant {
        Instant(std)
    }

    /// The `std::time::Instant` this is.
    pub fn into_std(self) -> std::time::Instant {
        self.0
    }

    /// The time from `earlier` to this one (zero if `earlier` is later).
    pub fn duration_since(&self, earlier: Instant) -> Duration {
        self.0.saturating_duration_since(earlier.0)
    }

    /// The time from `earlier` to this one, or `None` if `earlier` is later.
    pub fn checked_duration_since(&self, earlier: Instant) -> Option<Duration> {
        self.0.checked_duration_since(earlier.0)
    }

    /// The time from `earlier` to this one, or zero if `earlier` is later.
    pub fn saturating_duration_since(&self, earlier: Instant) -> Duration {
        self.0.saturating_duration_since(earlier.0)
    }

    /// The time since this instant, on the runtime's clock ([`Instant::now`]).
    pub fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(*self)
    }

    /// This instant plus `d`, or `None` when that overflows.
    pub fn checked_add(&self, d: Duration) -> Option<Instant> {
        self.0.checked_add(d).map(Instant)
    }

    /// This instant minus `d`, or `None` when that overflows.
    pub fn checked_sub(&self, d: Duration) -> Option<Instant> {
        self.0.checked_sub(d).map(Instant)
    }
}

/// The current runtime's clock reading, as a `std::time::Instant`.
#[inline]
pub(crate) fn now_std() -> std::time::Instant {
    if !crate::scheduler::timers::ANY_PAUSED.load(std::sync::atomic::Ordering::Relaxed) {
        return std::time::Instant::now();
    }
    now_of_current_runtime()
}

#[cold]
fn now_of_current_runtime() -> std::time::Instant {
    crate::scheduler::context::with_current(|s| match s {
        Some(s) => s.clock.now(),
        None => std::time::Instant::now(),
    })
}

impl From<std::time::Instant> for Instant {
    fn from(std: std::time::Instant) -> Instant {
        Instant(std)
    }
}

impl From<Instant> for std::time::Instant {
    fn from(i: Instant) -> std::time::Instant {
        i.0
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    /// # Panics
    ///
    /// When the result overflows (as `std::time::Instant`'s).
    fn add(self, d: Duration) -> Instant {
        Instant(self.0 + d)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        self.0 += d;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;

    fn sub(self, d: Duration) -> Instant {
        Instant(self.0 - d)
    }
}

impl SubAssign<Duration> for Instant {
    fn sub_assign(&mut self, d: Duration) {
        self.0 -= d;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;

    /// The time from `earlier` to this one (zero if `earlier` is later).
    fn sub(self, earlier: Instant) -> Duration {
        self.0.saturating_duration_since(earlier.0)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
