use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use pinwheel_timer::Key;

use super::{TimerOp, deadline_after, require_runtime};
use crate::scheduler::{WorkerContext, WorkerShared, with_worker};

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
pub fn sleep_until(deadline: Instant) -> Sleep {
    require_runtime("sleep_until");
    Sleep::new(deadline)
}

/// The future of [`sleep`] and [`sleep_until`]: `Send + Sync + Unpin`, cheap to reset.
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    reg: Reg,
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

/// Where a sleep's timer is registered.
enum Reg {
    None,
    /// In the wheel of `worker`, due at `tick`.
    Local {
        worker: Arc<WorkerShared>,
        key: Key,
        tick: u64,
    },
    /// Sent to `worker` from off the workers, named by `token`, due at `tick`.
    Remote {
        worker: Arc<WorkerShared>,
        token: u64,
        tick: u64,
    },
}

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

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
            reg: Reg::None,
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
    pub fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.resource.report(deadline, Instant::now);
        match &mut self.reg {
            Reg::None => {}
            Reg::Local { worker, key, tick } => {
                let want = worker.clock.tick_ceil(deadline);
                if want < *tick {
                    *tick = want;
                    let (key, worker) = (*key, worker.clone());
                    let done = with_worker(|w| match w {
                        Some(w) if Arc::ptr_eq(&worker, w.worker_shared()) => w
                            .timers
                            .wheel
                            .try_borrow_mut()
                            .map(|mut wheel| wheel.reset(key, want))
                            .is_ok(),
                        _ => false,
                    });
                    if !done {
                        worker.push_timer_op(TimerOp::Reset(key, want));
                    }
                }
            }
            Reg::Remote {
                worker,
                token,
                tick,
            } => {
                let want = worker.clock.tick_ceil(deadline);
                if want < *tick {
                    *tick = want;
                    worker.push_timer_op(TimerOp::ResetRemote(*token, want));
                }
            }
        }
    }

    /// Registers in the wheel of worker `w`, or refreshes the registration there.
    fn register_local(&mut self, w: &WorkerContext, waker: &Waker) {
        let want = w.worker_shared().clock.tick_ceil(self.deadline);
        if let Reg::Local { worker, key, tick } = &mut self.reg {
            if Arc::ptr_eq(worker, w.worker_shared()) {
                if let Ok(mut wheel) = w.timers.wheel.try_borrow_mut() {
                    match wheel.get_mut(*key) {
                        Some(slot) => {
                            if !slot.will_wake(waker) {
                                *slot = waker.clone();
                            }
                            if want < *tick {
                                wheel.reset(*key, want);
                                *tick = want;
                            }
                        }
                        None => {
                            // It fired for an earlier deadline (the sleep was pushed back).
                            *key = wheel.insert(want, waker.clone());
                            *tick = want;
                        }
                    }
                    return;
                }
            }
        }
        self.deregister(Some(w));
        match w.timers.wheel.try_borrow_mut() {
            Ok(mut wheel) => {
                let key = wheel.insert(want, waker.clone());
                self.reg = Reg::Local {
                    worker: w.worker_shared().clone(),
                    key,
                    tick: want,
                };
            }
            // Only reachable if a timer is polled from inside the wheel's own processing.
            Err(_) => self.register_remote(w.worker_shared().clone(), waker),
        }
    }

    /// Registers through a worker's timer mailbox, from a thread that is not that worker.
    fn register_remote(&mut self, worker: Arc<WorkerShared>, waker: &Waker) {
        self.deregister(None);
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        let tick = worker.clock.tick_ceil(self.deadline);
        worker.push_timer_op(TimerOp::Insert {
            token,
            tick,
            waker: waker.clone(),
        });
        self.reg = Reg::Remote {
            worker,
            token,
            tick,
        };
    }

    /// Removes the registration: in place on the owning worker, else through its mailbox.
    fn deregister(&mut self, here: Option<&WorkerContext>) {
        match mem::replace(&mut self.reg, Reg::None) {
            Reg::None => {}
            Reg::Local { worker, key, .. } => {
                if let Some(w) = here {
                    if Arc::ptr_eq(&worker, w.worker_shared()) {
                        if let Ok(mut wheel) = w.timers.wheel.try_borrow_mut() {
                            drop(wheel.cancel(key));
                            return;
                        }
                    }
                }
                worker.push_timer_op(TimerOp::Cancel(key));
            }
            Reg::Remote { worker, token, .. } => worker.push_timer_op(TimerOp::CancelRemote(token)),
        }
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
        let this = self;
        with_worker(|w| {
            // On a worker, the clock read at the start of this loop turn: an older instant
            // than the real one, so it can only make the sleep end later, never earlier.
            let now = w.map_or_else(Instant::now, |w| w.timers.now.get());
            if now >= this.deadline {
                this.deregister(w);
                return Poll::Ready(());
            }
            if matches!(this.reg, Reg::None) {
                // Armed now: the console learns its duration.
                this.resource.report(this.deadline, || now);
            }
            match w {
                Some(w) => this.register_local(w, cx.waker()),
                None => {
                    let worker = crate::scheduler::context::with_current(|s| {
                        s.map(|s| {
                            let i = (NEXT_TOKEN.load(Ordering::Relaxed) as usize) % s.workers.len();
                            s.workers[i].clone()
                        })
                    });
                    let Some(worker) = worker else {
                        panic!(
                            "pinwheel::time::Sleep was polled outside a pinwheel runtime (not in a task, nor inside Runtime::block_on): timers need a runtime to run them"
                        );
                    };
                    // Off the workers, each poll registers anew: it cancels the registration it
                    // had (one op to that worker) and sends a new one (a second op) to the
                    // worker chosen here.
                    this.register_remote(worker, cx.waker());
                }
            }
            Poll::Pending
        })
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if !matches!(self.reg, Reg::None) {
            with_worker(|w| self.deregister(w));
        }
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let registered = match self.reg {
            Reg::None => "no",
            Reg::Local { .. } => "in a worker's wheel",
            Reg::Remote { .. } => "through a worker's mailbox",
        };
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("registered", &registered)
            .finish()
    }
}
