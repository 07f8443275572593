//! The [`Sleep`] future and its tokio-console resource; its registration in a worker's wheel
//! is a [`TimerEntry`] (the scheduler's timer room owns every wheel operation).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::Instant;

use super::{deadline_after, require_runtime};
use crate::scheduler::timers::TimerEntry;

/// Waits until `duration` has elapsed. `Duration::MAX` never elapses.
///
/// # Panics
///
/// Panics outside a runtime (a task, or `Runtime::block_on`).
#[track_caller]
pub fn sleep(duration: Duration) -> Sleep {
    require_runtime("sleep");
    Sleep::new(deadline_after(duration))
}

/// Waits until `deadline`. A deadline in the past completes at the first poll.
///
/// # Panics
///
/// Panics outside a runtime (a task, or `Runtime::block_on`).
#[track_caller]
pub fn sleep_until(deadline: impl Into<Instant>) -> Sleep {
    require_runtime("sleep_until");
    Sleep::new(deadline.into())
}

/// The future of [`sleep`] and [`sleep_until`]: `Send + Sync + Unpin`, cheap to reset.
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    entry: TimerEntry,
    /// Its tokio-console resource (feature `console`; nothing without it).
    resource: Resource,
}

/// A sleep's tokio-console resource: with feature `console`, a `runtime.resource` span of kind
/// `timer`, made only when a subscriber wanted it when the sleep was made (otherwise a null
/// pointer, and a branch where the sleep would report to it), closed when the sleep is
/// dropped. Without the feature, nothing: a sleep is made and dropped millions of times a
/// second in a busy proxy, and even a disabled span's check and the pointer's room in every
/// `Sleep` and `Timeout` cost 10% of `timeout_cancel` (BENCHMARKS.md, issue 16).
struct Resource {
    #[cfg(feature = "console")]
    span: Option<Box<tracing::Span>>,
}

impl Resource {
    /// The resource of a sleep made at the caller's location.
    #[track_caller]
    #[inline]
    fn new() -> Resource {
        Resource {
            #[cfg(feature = "console")]
            span: resource_span(),
        }
    }

    /// The sleep's deadline is now `deadline` (armed or reset at `now()`, read only when a
    /// subscriber listens).
    #[inline]
    fn report(&self, deadline: Instant, now: impl FnOnce() -> Instant) {
        #[cfg(feature = "console")]
        if let Some(span) = &self.span {
            report_duration(span, deadline, now());
        }
        #[cfg(not(feature = "console"))]
        let _ = (deadline, now);
    }
}

#[cfg(feature = "console")]
/// The console resource span of a sleep made at the caller's location, if a subscriber wants
/// it: the shape console-subscriber reads (tokio's `Sleep` resource), a root span as tokio's
/// is, so the resource outlives nothing but the sleep.
#[track_caller]
fn resource_span() -> Option<Box<tracing::Span>> {
    let location = std::panic::Location::caller();
    let span = tracing::trace_span!(
        target: "pinwheel::time",
        parent: None,
        "runtime.resource",
        concrete_type = "Sleep",
        kind = "timer",
        loc.file = location.file(),
        loc.line = location.line(),
        loc.col = location.column(),
    );
    (!span.is_disabled()).then(|| Box::new(span))
}

#[cfg(feature = "console")]
/// Tells the console how long the sleep has left (the resource's `duration` attribute, in
/// milliseconds), from inside its span, as tokio's `Sleep` does when it arms or resets.
#[cold]
fn report_duration(span: &tracing::Span, deadline: Instant, now: Instant) {
    let _entered = span.enter();
    tracing::trace!(
        target: "runtime::resource::state_update",
        duration = deadline.saturating_duration_since(now).as_millis() as u64,
        duration.unit = "ms",
        duration.op = "override",
    );
}

impl Sleep {
    #[track_caller]
    pub(crate) fn new(deadline: Instant) -> Sleep {
        Sleep {
            deadline,
            entry: TimerEntry::new(),
            resource: Resource::new(),
        }
    }

    /// The instant this sleep completes at.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// `true` once the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Moves the deadline. Pushing it later costs nothing now (the timer registered for the
    /// old deadline fires, and the sleep registers again then); pulling it earlier moves the
    /// timer in its wheel, in O(1).
    pub fn reset(&mut self, deadline: impl Into<Instant>) {
        let deadline = deadline.into();
        self.deadline = deadline;
        self.resource.report(deadline, Instant::now);
        self.entry.reset(deadline.into_std());
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A resource of the cooperative budget (the budget rule, on `task::coop`): a loop of
        // timers already due yields now and then.
        let this = self.get_mut();
        crate::task::coop::budgeted(cx, |cx| this.poll_deadline(cx))
    }
}

impl Sleep {
    /// Ready once the deadline passed; otherwise registers `cx`'s waker for it. Outside the
    /// cooperative budget (`Timeout` polls its delay this way).
    pub(crate) fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let (deadline, resource) = (self.deadline, &self.resource);
        // Armed now: the console learns its duration, measured on the clock now (the worker's
        // turn reading is older, and would report more than was asked).
        self.entry
            .poll_elapsed(deadline.into_std(), cx.waker(), || {
                resource.report(deadline, Instant::now)
            })
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("registered", &self.entry.describe())
            .finish()
    }
}
