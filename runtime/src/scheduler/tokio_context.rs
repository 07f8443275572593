//! A tokio context on every worker (feature `tokio-compat`, `Builder::tokio_context(true)`):
//! each worker thread runs its loop inside a tokio current-thread runtime of its own, so
//! `tokio::spawn`, `tokio::time`, `tokio::net` and `Handle::current()` work from any pinwheel
//! task, and what they make (tokio tasks, sockets, timers) runs on that same worker thread.
//!
//! How: the worker's loop is a tokio task on that runtime (polled unconstrained by tokio's
//! cooperative budget: pinwheel's own applies to its tasks). A busy worker lets tokio run its
//! tasks and look at its driver every `TOKIO_INTERVAL` task polls (`tokio::task::yield_now`:
//! tokio polls its driver without blocking before it polls the loop again). An idle worker
//! sleeps in tokio's driver instead of its own poller: its poller's descriptor is registered
//! there (an epoll descriptor is readable while events wait in it, and the worker's unpark
//! rings a waker registered in it), with its next timer as a timerfd in its own poller.
//! Whatever tokio runs meanwhile on this thread (its I/O and timer wakes of pinwheel tasks, its own tasks spawning
//! pinwheel tasks) finds `WORKER` null, so its wakes take the remote path, where
//! `route::queue_remote` finds the worker through `context::TOKIO_PARKED`, queues the task
//! there (binding a woken stealable task to it: its tokio resources live there) and ends the
//! sleep with a waker of the loop's tokio task, which on its own thread is a push to tokio's
//! local queue, no system call.
//!
//! The loop's future borrows the worker's context, which lives on the thread's stack:
//! [`WorkerContext::run_in_tokio`] waits for the loop's task to end, and drops the tokio
//! runtime (and with it any task still in it) before it returns (the loop rule).

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::Ordering::Acquire;
use std::task::{Context, Poll, Waker};

use tokio::io::unix::AsyncFd;

use super::WorkerContext;

/// A busy worker gives its tokio context a turn (its ready tasks, a look at its driver without
/// blocking) once every this many task polls, as each turn costs tokio's scheduler tick and a
/// system call (with a turn every 64 polls, yield_many read 6.5% more instructions with the
/// switch on). Four of its own looks at its poller when those were every 64 polls; kept at 256
/// when they became every 16.
const TOKIO_INTERVAL: usize = 256;

/// The tokio handles of a runtime's workers (filled as each worker starts its runtime): what
/// `Runtime::block_on` enters, so the future it runs off the workers reaches tokio too.
pub(crate) struct TokioContexts {
    /// Set by each worker as it starts: its handle, or `None` when its runtime could not be
    /// built.
    handles: Box<[OnceLock<Option<tokio::runtime::Handle>>]>,
}

impl TokioContexts {
    /// Room for `n` workers' handles.
    pub(crate) fn new(n: usize) -> TokioContexts {
        TokioContexts {
            handles: (0..n).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Worker `i`'s tokio handle, once its thread has built its runtime.
    pub(crate) fn handle(&self, i: usize) -> Option<&tokio::runtime::Handle> {
        self.handles
            .get(i)
            .and_then(OnceLock::get)
            .and_then(Option::as_ref)
    }

    /// Waits until every worker has started (and set its handle, or said it has none).
    pub(crate) fn wait_started(&self) {
        while self.handles.iter().any(|h| h.get().is_none()) {
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }
}

/// How a worker's sleep in tokio's driver is ended from its own thread: the waker of its
/// loop's tokio task, kept while it sleeps, and whether something asked it to wake.
#[derive(Default)]
pub(crate) struct ParkSignal {
    waker: RefCell<Option<Waker>>,
    woken: Cell<bool>,
}

/// The worker's poller descriptor, as tokio's `AsyncFd` wants it (not owned: the driver
/// closes it).
struct PollerFd(RawFd);

impl AsRawFd for PollerFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// The worker's next timer while it sleeps in tokio's driver: a timerfd registered with the
/// worker's own poller, so its expiry makes the poller's descriptor readable and wakes the
/// worker at the nanosecond (a tokio `Sleep` would wake it on tokio's millisecond ticks, up to
/// 2 ms late: sleep_fire read 5 - 15% slower above its floor with one).
struct TimerFd {
    fd: std::os::fd::OwnedFd,
    /// Its registration with the worker's poller (nobody waits on it: the expiry only makes
    /// the poller readable). Dropped after `fd`, which leaves the poller as it closes.
    _reg: pinwheel_io_driver::Registration,
    /// Whether it is armed (so an idle sleep disarms it once).
    armed: Cell<bool>,
}

impl TimerFd {
    fn new(io: &pinwheel_io_driver::Handle) -> std::io::Result<TimerFd> {
        use std::os::fd::FromRawFd;
        // SAFETY: a system call with constant arguments; it touches no memory of ours.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by timerfd_create: open, and owned by nobody else.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        let reg = io.register(
            &mut mio::unix::SourceFd(&fd.as_raw_fd()),
            mio::Interest::READABLE,
        )?;
        Ok(TimerFd {
            fd,
            _reg: reg,
            armed: Cell::new(false),
        })
    }

    /// Arms it to expire after `after` (`None`: disarms it, if armed). Re-arming resets its
    /// expiry count, so the edge-triggered poller reports the next expiry anew.
    fn set(&self, after: Option<std::time::Duration>) {
        let value = match after {
            // A zero value would disarm it: at least a nanosecond.
            Some(t) => libc::timespec {
                tv_sec: t.as_secs() as libc::time_t,
                tv_nsec: libc::c_long::from(t.subsec_nanos().max(u32::from(t.as_secs() == 0))),
            },
            None if !self.armed.get() => return,
            None => libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
        };
        self.armed.set(after.is_some());
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: value,
        };
        // SAFETY: `spec` is a valid itimerspec on this stack, read during the call only; the
        // old value is not asked for (null).
        let r =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        debug_assert_eq!(r, 0, "timerfd_settime: {}", std::io::Error::last_os_error());
    }
}

/// The loop's future, made `Send` for `tokio::runtime::Runtime::spawn`: the runtime is a
/// current-thread one that only this worker's thread drives, so the future is polled and
/// dropped on this thread only (the loop rule, in the module docs).
struct OnThisThread<F>(F);

// SAFETY: the loop rule: the future never leaves the worker thread that made it.
unsafe impl<F> Send for OnThisThread<F> {}

impl<F: Future> Future for OnThisThread<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: structural pinning of the one field; it is never moved out.
        unsafe { self.map_unchecked_mut(|s| &mut s.0) }.poll(cx)
    }
}

impl WorkerContext {
    /// The worker thread's body with a tokio context: builds this worker's tokio runtime, runs
    /// the loop as its task until the runtime shuts down, then drops the worker's tasks inside
    /// the tokio context (their drops may call tokio) and the tokio runtime with what is left
    /// in it, on this thread.
    pub(crate) fn run_in_tokio(&self, contexts: &TokioContexts) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = contexts.handles[self.index].set(None);
                // Without its tokio runtime the worker still serves pinwheel's tasks; tokio
                // calls made on it fail as they would without the switch.
                eprintln!(
                    "pinwheel: worker {}: could not build its tokio context ({e}); running without it",
                    self.index
                );
                self.run();
                self.stop();
                return;
            }
        };
        let _ = contexts.handles[self.index].set(Some(rt.handle().clone()));
        let this: &'static WorkerContext =
            // SAFETY: the loop rule (module docs): the task borrowing `self` ends, or is
            // dropped with `rt`, before this function returns, and `self` outlives the call.
            unsafe { &*std::ptr::from_ref(self) };
        let main = rt.spawn(tokio::task::unconstrained(OnThisThread(this.drive())));
        let ended = rt.block_on(main);
        {
            let _tokio = rt.enter();
            self.stop();
        }
        drop(rt);
        if let Err(e) = ended
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
    }

    /// The worker loop as a future (`run`'s, with tokio's turns and sleep folded in).
    async fn drive(&self) {
        let fd = PollerFd(self.driver.borrow().as_raw_fd());
        // SAFETY: the poller's descriptor stays open while the `AsyncFd` lives: the driver that
        // owns it is this worker's, which outlives this future (the loop rule), and the
        // `AsyncFd` is dropped at its end.
        let registered =
            unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) };
        let poller = match registered {
            Ok(p) => p,
            Err(e) => {
                eprintln!(
                    "pinwheel: worker {}: could not register its poller with tokio ({e}); running without the tokio context's sleep",
                    self.index
                );
                self.run();
                return;
            }
        };
        // The next timer: a timerfd in the worker's poller, or (if one cannot be made) a tokio
        // sleep, coarser.
        let timerfd = TimerFd::new(self.worker_shared().io()).ok();
        let mut sleep = std::pin::pin!(tokio::time::sleep(std::time::Duration::ZERO));
        let mut polls_since_tokio = 0usize;
        loop {
            if self.shared.shutdown.load(Acquire) {
                return;
            }
            let ran = self.turn();
            if ran > 0 {
                polls_since_tokio += ran;
                if polls_since_tokio >= TOKIO_INTERVAL {
                    polls_since_tokio = 0;
                    self.tokio_turn().await;
                }
                continue;
            }
            polls_since_tokio = 0;
            if self.spin_before_park() {
                continue;
            }
            self.prof.before_park(&self.worker_shared().profile);
            let plan = self.plan_park();
            if let Some(timeout) = plan.sleep {
                self.shared.watchdog.worker_sleeps();
                self.sleep_in_tokio(&poller, timerfd.as_ref(), sleep.as_mut(), timeout)
                    .await;
                self.shared.watchdog.worker_wakes();
            } else {
                self.tokio_turn().await;
            }
            self.end_park(plan);
        }
    }

    /// tokio's turn: its ready tasks, and a look at its driver without blocking (a yield of the
    /// loop's task, which tokio polls again after those). Meanwhile the worker is reached
    /// through `TOKIO_PARKED`, so what tokio wakes binds to it as in a sleep.
    async fn tokio_turn(&self) {
        let _waiting = crate::scheduler::context::TokioParkGuard::new(self);
        tokio::task::yield_now().await;
    }

    /// Sleeps in tokio's driver until this worker's poller has events (or its unpark rang),
    /// `timeout` passes, or code on this thread queued work for it; then collects its poller's
    /// events without blocking. The parker's protocol is the same as a sleep in the poller.
    async fn sleep_in_tokio(
        &self,
        poller: &AsyncFd<PollerFd>,
        timerfd: Option<&TimerFd>,
        mut sleep: Pin<&mut tokio::time::Sleep>,
        timeout: Option<std::time::Duration>,
    ) {
        self.since_io.set(0);
        let parker = &self.worker_shared().parker;
        // Collect the poller's events after the sleep unless the sleep ended only for work
        // that code on this thread queued (the poller then has nothing new: its descriptor
        // would have been readable).
        let mut look = true;
        if !parker.begin_park() {
            let tokio_sleep = match timerfd {
                Some(fd) => {
                    fd.set(timeout);
                    None
                }
                None => timeout.inspect(|t| sleep.as_mut().reset(tokio::time::Instant::now() + *t)),
            };
            let _parked = crate::scheduler::context::TokioParkGuard::new(self);
            self.tokio_park.woken.set(false);
            look = poll_fn(|cx| {
                if self.tokio_park.woken.replace(false) {
                    return Poll::Ready(false);
                }
                let mut waker = self.tokio_park.waker.borrow_mut();
                if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *waker = Some(cx.waker().clone());
                }
                if let Poll::Ready(Ok(mut ready)) = poller.poll_read_ready(cx) {
                    // The events are collected below; a newer one sets the readiness again.
                    ready.clear_ready();
                    return Poll::Ready(true);
                }
                if tokio_sleep.is_some() && sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(true);
                }
                Poll::Pending
            })
            .await;
            self.tokio_park.waker.borrow_mut().take();
        }
        parker.end_park();
        if !look {
            return;
        }
        let n = match self.driver.try_borrow_mut() {
            Ok(mut driver) => driver.poll(Some(std::time::Duration::ZERO)),
            Err(_) => return,
        };
        self.count_io(n);
    }

    /// Ends this worker's sleep in tokio's driver (called on its thread, by code tokio runs
    /// while it waits: see `route::queue_remote`).
    pub(crate) fn wake_tokio_park(&self) {
        self.tokio_park.woken.set(true);
        if let Ok(waker) = self.tokio_park.waker.try_borrow()
            && let Some(w) = waker.as_ref()
        {
            w.wake_by_ref();
        }
    }
}
