//! The per-worker timer state (a worker's wait queue): its wheel, the clock reading of the
//! current loop turn, and the operations other threads sent. The worker holds one
//! [`TimerContext`] and calls [`TimerContext::turn`] once per loop turn; `sleep.rs` registers
//! in it directly when it runs on the owning worker.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::task::Waker;
use std::time::{Duration, Instant};

use pinwheel_timer::{Key, Wheel};

use super::Clock;

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
