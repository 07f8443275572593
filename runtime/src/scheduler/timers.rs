//! A worker's wait queue (HAProxy's `wq`): its timer wheel, the clock reading of the current
//! loop turn, and the operations other threads sent. The worker holds one [`TimerContext`] and
//! calls [`TimerContext::turn`] once per loop turn; `time/sleep.rs`, above the scheduler,
//! registers in it directly when it runs on the owning worker, and sends a [`TimerOp`] to the
//! owner otherwise. [`Clock`] is the runtime's time base (ticks since its start).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::task::Waker;
use std::time::{Duration, Instant};

use pinwheel_timer::{Key, Wheel};

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

/// One worker's timers. Only its worker thread touches it.
pub(crate) struct TimerContext {
    /// The wakers of the timers registered on this worker, by tick.
    pub(crate) wheel: RefCell<Wheel<Waker>>,
    /// The clock, read once per loop turn.
    pub(crate) now: Cell<Instant>,
    /// The same reading in milliseconds since the runtime's start (stamped on tasks as they
    /// are polled).
    pub(crate) now_ms: Cell<u32>,
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

    /// Reads the clock, applies the operations `receive` hands over (those other threads sent
    /// to this worker), and wakes the tasks whose timers are due: once per loop turn.
    pub(crate) fn turn(
        &self,
        clock: &Clock,
        receive: impl FnOnce(&mut VecDeque<TimerOp>),
    ) -> TurnReport {
        let now = Instant::now();
        self.now.set(now);
        self.now_ms.set(clock.millis(now));
        let tick = clock.tick_floor(now);
        let mut ops = self.ops.borrow_mut();
        receive(&mut ops);
        let mut fired = self.fired.borrow_mut();
        let (armed, cancelled) = {
            let mut wheel = self.wheel.borrow_mut();
            let mut keys = self.remote_keys.borrow_mut();
            for op in ops.drain(..) {
                apply(op, &mut wheel, &mut keys);
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

    /// How long the worker may sleep before a timer is due; `None` when no timer is pending.
    pub(crate) fn timeout(&self, clock: &Clock) -> Option<Duration> {
        let next = self.wheel.borrow().next_deadline()?;
        Some(
            clock
                .instant_of(next)
                .saturating_duration_since(Instant::now()),
        )
    }
}

/// What another thread asks of a worker's wheel.
pub(crate) enum TimerOp {
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

/// Applies a timer operation on the worker that owns `wheel`.
fn apply(op: TimerOp, wheel: &mut Wheel<Waker>, remote: &mut HashMap<u64, Key>) {
    match op {
        TimerOp::Cancel(key) => drop(wheel.cancel(key)),
        TimerOp::Reset(key, tick) => {
            wheel.reset(key, tick);
        }
        TimerOp::Insert { token, tick, waker } => {
            remote.insert(token, wheel.insert(tick, waker));
        }
        TimerOp::CancelRemote(token) => {
            if let Some(key) = remote.remove(&token) {
                drop(wheel.cancel(key));
            }
        }
        TimerOp::ResetRemote(token, tick) => {
            if let Some(key) = remote.get(&token) {
                wheel.reset(*key, tick);
            }
        }
    }
}
