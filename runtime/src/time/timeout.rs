use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::Instant;

use super::{Sleep, deadline_after, require_runtime};

/// Runs `future` for at most `duration`: `Ok(output)` if it finished first, `Err(Elapsed)`
/// otherwise (the future is then dropped with the `Timeout`). The timer is only armed if the
/// future does not finish at its first poll, and cancelling it is O(1).
///
/// # Panics
///
/// Panics outside a runtime (a task, or `Runtime::block_on`).
#[track_caller]
pub fn timeout<F: IntoFuture>(duration: Duration, future: F) -> Timeout<F::IntoFuture> {
    require_runtime("timeout");
    Timeout {
        value: future.into_future(),
        delay: Sleep::new(deadline_after(duration)),
    }
}

/// Like [`timeout`], with a deadline instead of a duration.
///
/// # Panics
///
/// Panics outside a runtime (a task, or `Runtime::block_on`).
#[track_caller]
pub fn timeout_at<F: IntoFuture>(
    deadline: impl Into<Instant>,
    future: F,
) -> Timeout<F::IntoFuture> {
    let deadline = deadline.into();
    require_runtime("timeout_at");
    Timeout {
        value: future.into_future(),
        delay: Sleep::new(deadline),
    }
}

pin_project_lite::pin_project! {
    /// The future of [`timeout`] and [`timeout_at`].
    #[must_use = "futures do nothing unless awaited"]
    #[derive(Debug)]
    pub struct Timeout<F> {
        #[pin]
        value: F,
        delay: Sleep,
    }
}

impl<F> Timeout<F> {
    /// The wrapped future.
    pub fn get_ref(&self) -> &F {
        &self.value
    }

    /// The wrapped future, mutably.
    pub fn get_mut(&mut self) -> &mut F {
        &mut self.value
    }

    /// The wrapped future, giving up the timeout.
    pub fn into_inner(self) -> F {
        self.value
    }

    /// The instant the timeout elapses at.
    pub fn deadline(&self) -> Instant {
        self.delay.deadline()
    }

    /// Moves the deadline (see [`Sleep::reset`]).
    pub fn reset(&mut self, deadline: impl Into<Instant>) {
        let deadline = deadline.into();
        self.delay.reset(deadline);
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.value.poll(cx) {
            return Poll::Ready(Ok(out));
        }
        // The deadline is looked at whatever is left of the cooperative budget: when the future
        // spent it (an always-ready future does), the timeout must still be able to fire.
        match this.delay.poll_deadline(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The error of a [`Timeout`] whose deadline passed before its future finished.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Debug for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Elapsed")
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed before the future completed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(e: Elapsed) -> Self {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e.to_string())
    }
}
