//! The paused clock of tests (tokio's `test-util`): [`pause`], [`advance`], [`resume`].
//!
//! Paused, the runtime's time stands still: `Instant::now` and every timer read the paused
//! time. `advance` moves it forward, and when the runtime has nothing to do (its worker is out
//! of tasks and I/O events and no blocking closure runs), it jumps to its next timer by itself
//! (auto-advance), so sleeps, timeouts and intervals resolve at once, in deadline order.
//!
//! It needs a current-thread runtime ([`Builder::new_current_thread`], the default of
//! `#[pinwheel::test]`; `#[pinwheel::test(start_paused = true)]` starts paused): with several
//! workers, one idle worker cannot tell that the others have nothing left to do either.
//!
//! [`Builder::new_current_thread`]: crate::Builder::new_current_thread

use std::time::Duration;

use crate::scheduler::context::with_current;
use crate::scheduler::timers::Clock;

/// The clock of the current runtime, if it may be paused; panics naming `api` otherwise.
#[track_caller]
fn clock(api: &str) -> Clock {
    let found = with_current(|s| s.map(|s| (s.current.get().is_some(), s.clock.clone())));
    match found {
        Some((true, clock)) => clock,
        Some((false, _)) => panic!(
            "pinwheel::time::{api}: the paused clock needs a current-thread runtime (Builder::new_current_thread, or #[pinwheel::test] without worker_threads): with several workers, an idle worker cannot tell when time may jump"
        ),
        None => panic!(
            "pinwheel::time::{api} must be called inside a pinwheel runtime (a task, or Runtime::block_on): it acts on that runtime's clock"
        ),
    }
}

/// Pauses the current runtime's clock: time stands still until [`advance`] moves it, or the
/// runtime, idle, jumps to its next timer.
///
/// ```
/// use std::time::Duration;
/// use pinwheel::time::{self, Instant};
///
/// let rt = pinwheel::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {
///     time::pause();
///     let start = Instant::now();
///     time::sleep(Duration::from_secs(3600)).await; // at once: the clock jumps
///     assert!(start.elapsed() >= Duration::from_secs(3600));
/// });
/// ```
///
/// # Panics
///
/// Outside a runtime, on a multi-thread runtime, and when the clock is already paused.
#[track_caller]
pub fn pause() {
    if clock("pause").pause().is_err() {
        panic!("pinwheel::time::pause: the clock is already paused");
    }
}

/// Lets the paused clock run again, from the time it shows.
///
/// # Panics
///
/// Outside a runtime, on a multi-thread runtime, and when the clock is not paused.
#[track_caller]
pub fn resume() {
    if clock("resume").resume().is_err() {
        panic!("pinwheel::time::resume: the clock is not paused; call pause first");
    }
}

/// Moves the paused clock forward by `duration`, then yields, so that the timers now due
/// fire and their tasks run before the caller goes on.
///
/// # Panics
///
/// Outside a runtime, on a multi-thread runtime, and when the clock is not paused.
#[track_caller]
pub fn advance(duration: Duration) -> impl Future<Output = ()> {
    if clock("advance").advance(duration).is_err() {
        panic!("pinwheel::time::advance: the clock is not paused; call pause first");
    }
    crate::spawn::yield_now()
}
