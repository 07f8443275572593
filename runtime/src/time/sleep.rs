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

impl Sleep {
    pub(crate) fn new(deadline: Instant) -> Sleep {
        Sleep {
            deadline,
            reg: Reg::None,
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
        let this = self.get_mut();
        with_worker(|w| {
            // On a worker, the clock read at the start of this loop turn: an older instant
            // than the real one, so it can only make the sleep end later, never earlier.
            let now = w.map_or_else(Instant::now, |w| w.timers.now.get());
            if now >= this.deadline {
                this.deregister(w);
                return Poll::Ready(());
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
                    // Keep an existing registration on the same worker if the waker is the same.
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
