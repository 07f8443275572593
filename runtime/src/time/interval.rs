use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::Instant;

use super::{Sleep, require_runtime};

/// What an [`Interval`] does when ticks were missed (the task was late to call `tick`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissedTickBehavior {
    /// Fire the missed ticks at once, one per `tick()` call, to catch up (tokio's default).
    #[default]
    Burst,
    /// Start again from now: the next tick is one period after the late one.
    Delay,
    /// Skip the missed ticks: the next tick is the next multiple of the period from the start.
    Skip,
}

/// A stream of ticks, one per period; the first completes immediately.
///
/// ```
/// use std::time::Duration;
///
/// let rt = pinwheel::Runtime::new()?;
/// rt.block_on(rt.spawn(async {
///     let mut every = pinwheel::time::interval(Duration::from_millis(2));
///     let first = every.tick().await;
///     let second = every.tick().await;
///     assert!(second - first >= Duration::from_millis(2));
/// }))
/// .unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Panics
///
/// Panics when `period` is zero, and outside a runtime.
#[track_caller]
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// Like [`interval`], with the first tick at `start`.
///
/// # Panics
///
/// Panics when `period` is zero, and outside a runtime.
#[track_caller]
pub fn interval_at(start: impl Into<Instant>, period: Duration) -> Interval {
    let start = start.into();
    require_runtime("interval");
    assert!(
        !period.is_zero(),
        "pinwheel::time::interval: the period must be non-zero"
    );
    Interval {
        delay: Sleep::new(start),
        period,
        missed: MissedTickBehavior::default(),
    }
}

/// The stream of [`interval`]: call [`tick`](Self::tick) in a loop.
#[derive(Debug)]
pub struct Interval {
    delay: Sleep,
    period: Duration,
    missed: MissedTickBehavior,
}

/// How late a tick may be before it counts as missed.
const LATE: Duration = Duration::from_millis(5);

impl Interval {
    /// Waits for the next tick and returns the instant it was due.
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        if Pin::new(&mut self.delay).poll(cx).is_pending() {
            return Poll::Pending;
        }
        let due = self.delay.deadline();
        let now = Instant::now();
        let next = if now > due + LATE {
            match self.missed {
                MissedTickBehavior::Burst => due + self.period,
                MissedTickBehavior::Delay => now + self.period,
                MissedTickBehavior::Skip => {
                    let behind = (now - due).as_nanos() % self.period.as_nanos();
                    now + self.period - Duration::from_nanos(behind as u64)
                }
            }
        } else {
            due + self.period
        };
        self.delay.reset(next);
        Poll::Ready(due)
    }

    /// Makes the next tick one period from now.
    pub fn reset(&mut self) {
        self.delay.reset(Instant::now() + self.period);
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// What happens to missed ticks.
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.missed
    }

    /// Sets what happens to missed ticks.
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed = behavior;
    }
}
