//! A worker's wait queue (HAProxy's `wq`): its timer wheel, the clock reading of the current
//! loop turn, and the operations other threads sent; and [`TimerEntry`], the one owner of a
//! timer's registration in a wheel. The worker holds one [`TimerContext`] and calls
//! [`TimerContext::turn`] once per loop turn; a [`TimerEntry`] (inside each `Sleep`) arms,
//! resets and cancels its registration in place when it runs on the owning worker and sends a
//! [`TimerOp`] to the owner otherwise, the one choice made in [`apply_or_send`]. Nothing else
//! touches a wheel. [`Clock`] is the runtime's time base (ticks since its start).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::mem;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use pinwheel_timer::{Key, Wheel};

use super::{WorkerContext, WorkerShared, context};

/// A runtime's time base: the instant tick 0 stands for, the length of a tick, and the
/// paused clock of tests (shared by every worker of the runtime, so all wheels see one time).
#[derive(Clone, Debug)]
pub(crate) struct Clock {
    start: Instant,
    tick_nanos: u64,
    paused: Arc<PausedClock>,
}

/// Whether any runtime's clock was ever paused in this process: until then `time::Instant::now`
/// is the system clock's, after one relaxed load of this flag (no thread-local, no runtime).
pub(crate) static ANY_PAUSED: AtomicBool = AtomicBool::new(false);

/// The paused clock (`time::pause`, `advance`, `resume`), tokio's `test-util` clock: while
/// frozen, time is `base`; running again, `base` plus the time since `unfrozen`.
#[derive(Debug, Default)]
struct PausedClock {
    /// Whether the clock was ever paused: until then the time is the system's, after one
    /// relaxed load.
    engaged: AtomicBool,
    time: std::sync::Mutex<Frozen>,
}

#[derive(Debug, Default)]
struct Frozen {
    base: Option<Instant>,
    /// `None` while frozen.
    unfrozen: Option<Instant>,
}

impl Frozen {
    fn now(&self) -> Instant {
        let base = self.base.unwrap_or_else(Instant::now);
        match self.unfrozen {
            Some(since) => base + since.elapsed(),
            None => base,
        }
    }
}

impl Clock {
    pub(crate) fn new(tick: Duration) -> Clock {
        Clock {
            start: Instant::now(),
            tick_nanos: (tick.as_nanos() as u64).max(1),
            paused: Arc::default(),
        }
    }

    /// The time now, as the runtime sees it: every clock reading of the timer room goes
    /// through here (the turn's, a worker's sleep deadline, a timer polled off the workers),
    /// and `time::Instant::now`: the system's clock, or the paused clock once a test paused it.
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        if !self.paused.engaged.load(Ordering::Relaxed) {
            return Instant::now();
        }
        self.frozen_now()
    }

    #[cold]
    fn frozen_now(&self) -> Instant {
        crate::loom::lock(&self.paused.time).now()
    }

    /// Whether the clock is paused now.
    pub(crate) fn is_paused(&self) -> bool {
        self.paused.engaged.load(Ordering::Relaxed)
            && crate::loom::lock(&self.paused.time).unfrozen.is_none()
    }

    /// Freezes the clock at the time now; `Err` when it already is.
    pub(crate) fn pause(&self) -> Result<(), ()> {
        ANY_PAUSED.store(true, Ordering::Relaxed);
        let mut t = crate::loom::lock(&self.paused.time);
        let first = !self.paused.engaged.load(Ordering::Relaxed);
        if !first && t.unfrozen.is_none() {
            return Err(());
        }
        let now = if first { Instant::now() } else { t.now() };
        *t = Frozen {
            base: Some(now),
            unfrozen: None,
        };
        self.paused.engaged.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Lets the clock run again from the time it shows; `Err` when it is not paused.
    pub(crate) fn resume(&self) -> Result<(), ()> {
        let mut t = crate::loom::lock(&self.paused.time);
        if !self.paused.engaged.load(Ordering::Relaxed) || t.unfrozen.is_some() {
            return Err(());
        }
        t.unfrozen = Some(Instant::now());
        Ok(())
    }

    /// Moves the paused clock forward by `d`; `Err` when it is not paused.
    pub(crate) fn advance(&self, d: Duration) -> Result<(), ()> {
        let mut t = crate::loom::lock(&self.paused.time);
        if !self.paused.engaged.load(Ordering::Relaxed) || t.unfrozen.is_some() {
            return Err(());
        }
        let base = t.base.expect("a paused clock has a base");
        t.base = Some(base.checked_add(d).unwrap_or_else(|| far_future(base)));
        Ok(())
    }

    /// Moves the paused clock forward to `to`, if it is paused and `to` is ahead (the
    /// auto-advance of an idle runtime to its next timer); `true` when it moved.
    pub(crate) fn advance_to(&self, to: Instant) -> bool {
        let mut t = crate::loom::lock(&self.paused.time);
        match (t.base, t.unfrozen) {
            (Some(base), None) if to > base => {
                t.base = Some(to);
                true
            }
            _ => false,
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

/// One worker's timers. Only its worker thread touches it.
pub(crate) struct TimerContext {
    /// The wakers of the timers registered on this worker, by tick. Touched only here: by
    /// the turn, and by a [`TimerEntry`] on this worker's thread.
    wheel: RefCell<Wheel<Waker>>,
    /// The clock, read once per loop turn.
    pub(super) now: Cell<Instant>,
    /// The same reading in milliseconds since the runtime's start (stamped on tasks as they
    /// are polled).
    pub(super) now_ms: Cell<u32>,
    /// Wheel keys of timers registered from off the workers, by their token.
    remote_keys: RefCell<HashMap<u64, Key>>,
    /// Scratch space for the wakers of fired timers and for timer operations.
    fired: RefCell<Vec<Waker>>,
    ops: RefCell<VecDeque<TimerOp>>,
}

/// What one [`TimerContext::turn`] did, for the worker's counters.
pub(crate) struct TurnReport {
    pub(crate) fired: usize,
    pub(crate) armed: u64,
    pub(crate) cancelled: u64,
}

impl TimerContext {
    pub(crate) fn new() -> TimerContext {
        TimerContext {
            wheel: RefCell::new(Wheel::new()),
            now: Cell::new(Instant::now()),
            now_ms: Cell::new(0),
            remote_keys: RefCell::new(HashMap::new()),
            fired: RefCell::new(Vec::new()),
            ops: RefCell::new(VecDeque::new()),
        }
    }

    /// Reads the clock into the turn's reading (`now`, `now_ms`); the reading.
    pub(super) fn read_clock(&self, clock: &Clock) -> Instant {
        let now = clock.now();
        self.now.set(now);
        self.now_ms.set(clock.millis(now));
        now
    }

    /// Reads the clock, applies the operations `receive` hands over (those other threads sent
    /// to this worker), and wakes the tasks whose timers are due: once per loop turn.
    pub(super) fn turn(
        &self,
        clock: &Clock,
        receive: impl FnOnce(&mut VecDeque<TimerOp>),
    ) -> TurnReport {
        let now = self.read_clock(clock);
        let tick = clock.tick_floor(now);
        let mut ops = self.ops.borrow_mut();
        receive(&mut ops);
        let mut fired = self.fired.borrow_mut();
        let (armed, cancelled) = {
            let mut wheel = self.wheel.borrow_mut();
            for op in ops.drain(..) {
                apply(op, &mut wheel, &self.remote_keys);
            }
            wheel.advance(tick, |_, waker| fired.push(waker));
            (wheel.inserted(), wheel.cancelled())
        };
        drop(ops);
        let report = TurnReport {
            fired: fired.len(),
            armed,
            cancelled,
        };
        // Wake with no borrow of the wheel held: a wake may run code that registers or drops
        // timers.
        for waker in fired.drain(..) {
            waker.wake();
        }
        report
    }

    /// When the next timer is due; `None` when no timer is pending.
    pub(super) fn next_deadline(&self, clock: &Clock) -> Option<Instant> {
        let next = self.wheel.borrow().next_deadline()?;
        Some(clock.instant_of(next))
    }

    /// How long the worker may sleep before a timer is due; `None` when no timer is pending.
    pub(crate) fn timeout(&self, clock: &Clock) -> Option<Duration> {
        let next = self.wheel.borrow().next_deadline()?;
        Some(
            clock
                .instant_of(next)
                .saturating_duration_since(clock.now()),
        )
    }
}

/// What another thread asks of a worker's wheel.
pub(super) enum TimerOp {
    /// Cancel the entry (its timer was dropped or moved elsewhere).
    Cancel(Key),
    /// Move the entry to an earlier tick.
    Reset(Key, u64),
    /// Register a timer polled off the workers; `token` names it in later operations.
    Insert { token: u64, tick: u64, waker: Waker },
    /// Cancel a timer registered by `Insert`.
    CancelRemote(u64),
    /// Move a timer registered by `Insert` to an earlier tick.
    ResetRemote(u64, u64),
}

/// Applies a timer operation on the worker that owns `wheel` (`remote`: the keys of the timers
/// registered by `Insert`, borrowed only by the operations that name one). Inlined, so that a
/// caller naming one operation keeps only its branch.
#[inline(always)]
fn apply(op: TimerOp, wheel: &mut Wheel<Waker>, remote: &RefCell<HashMap<u64, Key>>) {
    match op {
        TimerOp::Cancel(key) => drop(wheel.cancel(key)),
        TimerOp::Reset(key, tick) => {
            wheel.reset(key, tick);
        }
        TimerOp::Insert { token, tick, waker } => {
            let key = wheel.insert(tick, waker);
            remote.borrow_mut().insert(token, key);
        }
        TimerOp::CancelRemote(token) => {
            if let Some(key) = remote.borrow_mut().remove(&token) {
                drop(wheel.cancel(key));
            }
        }
        TimerOp::ResetRemote(token, tick) => {
            if let Some(key) = remote.borrow().get(&token) {
                wheel.reset(*key, tick);
            }
        }
    }
}

/// Does `op` on `worker`'s wheel: in place when this thread is that worker (`here`) and its
/// wheel is free, else through the worker's timer inbox. The one place that chooses.
#[inline(always)]
fn apply_or_send(worker: &Arc<WorkerShared>, here: Option<&WorkerContext>, op: TimerOp) {
    if let Some(w) = here.filter(|w| Arc::ptr_eq(worker, w.worker_shared())) {
        // Busy only if a timer is touched from inside the wheel's own processing.
        if let Ok(mut wheel) = w.timers.wheel.try_borrow_mut() {
            apply(op, &mut wheel, &w.timers.remote_keys);
            return;
        }
    }
    worker.push_timer_op(op);
}

/// Where a timer entry is registered.
enum Reg {
    None,
    /// In the wheel of `worker`, due at `tick`, registered from that worker's thread.
    Local {
        worker: Arc<WorkerShared>,
        key: Key,
        tick: u64,
    },
    /// Sent to `worker` from another thread, named by `token`, due at `tick`.
    Remote {
        worker: Arc<WorkerShared>,
        token: u64,
        tick: u64,
    },
}

/// Names the timers registered from off the workers (and picks the worker that holds them).
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// The one owner of a timer's registration in a worker's wheel: armed at the first poll that
/// is not yet due, in the wheel of the worker that polls it (or, off the workers, sent to one
/// worker of the current runtime), moved earlier by [`reset`](Self::reset), removed when due or
/// dropped. Every operation is done in place on the owning worker, or sent to it from any
/// other thread ([`apply_or_send`]).
pub(crate) struct TimerEntry {
    reg: Reg,
}

impl TimerEntry {
    /// An entry registered nowhere yet.
    pub(crate) const fn new() -> TimerEntry {
        TimerEntry { reg: Reg::None }
    }

    /// Whether it is registered in a wheel.
    pub(crate) fn is_armed(&self) -> bool {
        !matches!(self.reg, Reg::None)
    }

    /// Where it is registered, in words (for `Debug`).
    pub(crate) fn describe(&self) -> &'static str {
        match self.reg {
            Reg::None => "no",
            Reg::Local { .. } => "in a worker's wheel",
            Reg::Remote { .. } => "through a worker's mailbox",
        }
    }

    /// Ready once `deadline` passed (the registration removed); otherwise registers `waker`
    /// for it, calling `armed` when the entry was not registered yet.
    ///
    /// On a worker the clock is the reading of its loop turn: an older instant than the real
    /// one, so it can only make a timer end later, never earlier.
    ///
    /// # Panics
    ///
    /// Off the runtime's threads (neither a worker nor inside `block_on`), naming `Sleep`.
    pub(crate) fn poll_elapsed(
        &mut self,
        deadline: Instant,
        waker: &Waker,
        armed: impl FnOnce(),
    ) -> Poll<()> {
        context::with_current_at(|shared, here| match here {
            Some(w) => {
                let now = w.timers.now.get();
                if now >= deadline {
                    self.cancel(here);
                    return Poll::Ready(());
                }
                if !self.is_armed() {
                    armed();
                }
                self.register_local(w, deadline, waker);
                Poll::Pending
            }
            None => self.poll_off_workers(shared, deadline, waker, armed),
        })
    }

    /// [`poll_elapsed`](Self::poll_elapsed) off the runtime's workers (inside `block_on`).
    #[cold]
    #[inline(never)]
    fn poll_off_workers(
        &mut self,
        shared: Option<&Arc<super::Shared>>,
        deadline: Instant,
        waker: &Waker,
        armed: impl FnOnce(),
    ) -> Poll<()> {
        let now = shared.map_or_else(Instant::now, |s| s.clock.now());
        if now >= deadline {
            self.cancel(None);
            return Poll::Ready(());
        }
        let Some(shared) = shared else {
            panic!(
                "pinwheel::time::Sleep was polled outside a pinwheel runtime (not in a task, nor inside Runtime::block_on): timers need a runtime to run them"
            );
        };
        if !self.is_armed() {
            armed();
        }
        let i = (NEXT_TOKEN.load(Ordering::Relaxed) as usize) % shared.workers.len();
        // Off the workers, each poll registers anew: it cancels the registration it had (one
        // op to that worker) and sends a new one (a second op) to the worker chosen here.
        self.register_remote(shared.workers[i].clone(), deadline, waker);
        Poll::Pending
    }

    /// Moves the registration to `deadline` when that is earlier than where it is; a later
    /// deadline changes nothing now (the entry fires for the old one, and its owner registers
    /// again then).
    pub(crate) fn reset(&mut self, deadline: Instant) {
        match &mut self.reg {
            Reg::None => {}
            Reg::Local { worker, key, tick } => {
                let want = worker.clock.tick_ceil(deadline);
                if want < *tick {
                    *tick = want;
                    let op = TimerOp::Reset(*key, want);
                    context::with_worker(|here| apply_or_send(worker, here, op));
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

    /// Registers in the wheel of worker `w` (this thread's), or refreshes the registration
    /// there: the waker kept unless it changed, the tick moved only when earlier.
    fn register_local(&mut self, w: &WorkerContext, deadline: Instant, waker: &Waker) {
        let want = w.worker_shared().clock.tick_ceil(deadline);
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
                            // It fired for an earlier deadline (the deadline was pushed back).
                            *key = wheel.insert(want, waker.clone());
                            *tick = want;
                        }
                    }
                    return;
                }
            }
        }
        self.cancel(Some(w));
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
            Err(_) => self.register_remote(w.worker_shared().clone(), deadline, waker),
        }
    }

    /// Registers through a worker's timer inbox, from a thread that is not that worker.
    fn register_remote(&mut self, worker: Arc<WorkerShared>, deadline: Instant, waker: &Waker) {
        self.cancel(None);
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        let tick = worker.clock.tick_ceil(deadline);
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

    /// Removes the registration (`here`: this thread's worker, if any).
    fn cancel(&mut self, here: Option<&WorkerContext>) {
        match mem::replace(&mut self.reg, Reg::None) {
            Reg::None => {}
            Reg::Local { worker, key, .. } => apply_or_send(&worker, here, TimerOp::Cancel(key)),
            Reg::Remote { worker, token, .. } => worker.push_timer_op(TimerOp::CancelRemote(token)),
        }
    }
}

impl Drop for TimerEntry {
    fn drop(&mut self) {
        if self.is_armed() {
            context::with_worker(|here| self.cancel(here));
        }
    }
}
