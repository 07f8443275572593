//! A worker's run queues, one lane per scheduling class (HAProxy's `tasklets[TL_URGENT]` ..
//! `tasklets[TL_HEAVY]`), and how one loop turn shares its polls between them.
//!
//! Every class has a lane: a deque of stealable tasks (its stealing end in
//! [`WorkerShared`](super::WorkerShared)) and a queue of pinned tasks only this worker pops.
//! Normal's lane has the LIFO slot in front of it. A task is queued in the lane of its class as
//! its header says when it is queued; a task whose class changed while it waited is moved to
//! its new lane when it is popped ([`requeue`](WorkerContext::requeue)).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;

use crossbeam_deque::{Stealer, Worker};

use super::{BUDGET, WorkerContext, route};
use crate::metrics::single_writer_add;
use crate::task::{BOUND, ByClass, Class, Notified};

/// A turn's share of polls for each class with work, by weight (HAProxy's 64/60/4 for
/// TL_URGENT/TL_NORMAL/TL_BULK), out of `BUDGET`; Heavy is apart (`HEAVY_BACKLOG`).
fn weight(class: Class) -> usize {
    match class {
        Class::Urgent => 64,
        Class::Normal => 60,
        Class::Bulk => 4,
        Class::Heavy => 0,
    }
}

/// Heavy gets one poll per turn, and once Urgent and Normal have nothing queued, one more per
/// this many Heavy tasks queued (so a backlog drains; HAProxy's fixed one per turn could
/// livelock, its issue #1881).
const HEAVY_BACKLOG: usize = 16;

/// How many tasks in a row a worker takes from its LIFO slot before it looks at its queues
/// (tokio uses 3 too).
const MAX_LIFO_STREAK: usize = 3;

/// A worker's deques, made before its thread starts (their stealing ends go to `Shared`).
pub(crate) struct WorkerDeques(ByClass<Worker<Notified>>);

impl WorkerDeques {
    pub(crate) fn new() -> WorkerDeques {
        WorkerDeques(ByClass::from_fn(|_| Worker::new_fifo()))
    }

    /// The stealing end of each class's deque.
    pub(crate) fn stealers(&self) -> ByClass<Stealer<Notified>> {
        ByClass::from_fn(|c| self.0[c].stealer())
    }

    /// The lanes of the worker these deques belong to.
    pub(super) fn into_lanes(self) -> ByClass<Lane> {
        self.0.map(|stealable| Lane {
            stealable,
            pinned: RefCell::new(VecDeque::new()),
        })
    }
}

/// How many pinned tasks of one class a worker queues before the tasks bound to it by their
/// sockets (I/O affinity) spill to its stealable queues: four turns' budget of polls, a
/// backlog a worker cannot clear at once while another may be idle.
pub(super) const SPILL_BACKLOG: usize = 4 * BUDGET;

/// The queues of one class on one worker: stealable tasks in a deque, pinned ones in a queue
/// only this worker pops.
pub(super) struct Lane {
    pub(super) stealable: Worker<Notified>,
    pub(super) pinned: RefCell<VecDeque<Notified>>,
}

impl Lane {
    pub(super) fn len(&self) -> usize {
        self.stealable.len() + self.pinned.borrow().len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.stealable.is_empty() && self.pinned.borrow().is_empty()
    }

    /// The next task: pinned and stealable alternately (`odd` says which goes first).
    pub(super) fn pop(&self, odd: bool) -> Option<Notified> {
        if odd {
            self.stealable
                .pop()
                .or_else(|| self.pinned.borrow_mut().pop_front())
        } else {
            let task = self.pinned.borrow_mut().pop_front();
            task.or_else(|| self.stealable.pop())
        }
    }
}

impl WorkerContext {
    /// Queues a stealable task of this worker's thread: a Normal one in the LIFO slot unless
    /// it `yielded` or the worker is a current-thread runtime's (the one it displaces, and any
    /// other, at the back of its class's deque); a task bound to a worker by its sockets goes
    /// to that worker ([`push_bound`](Self::push_bound)). `true` when a task went to a deque,
    /// where other workers may steal it.
    #[inline(always)]
    pub(super) fn push_stealable(&self, task: Notified, yielded: bool) -> bool {
        if task.header().queueing() == Class::Normal.index() as u8 {
            self.push_stealable_of(Class::Normal, task, yielded)
        } else {
            self.push_other(task, yielded)
        }
    }

    /// [`push_stealable`](Self::push_stealable) for a task of another class than Normal, or
    /// one bound to a worker: out of line, so the hot path keeps its registers.
    #[inline(never)]
    fn push_other(&self, task: Notified, yielded: bool) -> bool {
        let q = task.header().queueing();
        if q & BOUND == 0 {
            self.push_stealable_of(Class::from_index(q), task, yielded)
        } else {
            self.push_bound(task, yielded)
        }
    }

    /// Puts a stealable task of `class` in this worker's queues (as `push_stealable` says),
    /// bound or not. Here and in [`push_pinned`](Self::push_pinned), the two places a task
    /// is queued on this worker by its own thread, is where `local_wakes` counts it.
    #[inline(always)]
    fn push_stealable_of(&self, class: Class, task: Notified, yielded: bool) -> bool {
        single_writer_add(&self.counters().local_wakes, 1);
        let spilled = if class != Class::Normal {
            Some(task)
        } else if yielded || self.fifo {
            // A current-thread worker has no LIFO slot: tasks run in the order they were
            // queued, as on tokio's current-thread runtime.
            Some(task)
        } else {
            self.lifo().replace(task)
        };
        match spilled {
            Some(task) => {
                self.lanes[class].stealable.push(task);
                true
            }
            None => false,
        }
    }

    /// Queues a stealable task bound to a worker by its sockets (I/O affinity, see
    /// `route.rs`): one bound to another worker goes to that worker's inbox; one bound here
    /// to its class's pinned queue, unless this worker is overloaded (`SPILL_BACKLOG` pinned
    /// tasks of that class queued already), when it goes to the stealable queues so an idle
    /// worker may take it (its events still arrive here, and its wakes come back here). `true`
    /// as [`push_stealable`](Self::push_stealable).
    fn push_bound(&self, task: Notified, yielded: bool) -> bool {
        let h = task.header();
        let class = h.class();
        match h.io_home() {
            // Counted once, by the worker that takes it from its inbox (`remote_wakes`).
            Some(home) if home != self.index => {
                self.shared.push_remote(home, task);
                false
            }
            Some(_) if self.lanes[class].pinned.borrow().len() < SPILL_BACKLOG => {
                self.push_pinned(task);
                false
            }
            _ => self.push_stealable_of(class, task, yielded),
        }
    }

    /// Queues a task pinned to this worker in its class's pinned queue.
    #[inline]
    pub(super) fn push_pinned(&self, task: Notified) {
        single_writer_add(&self.counters().local_wakes, 1);
        let class = task.header().class();
        let mut pinned = self.lanes[class].pinned.borrow_mut();
        pinned.push_back(task);
        self.counters().pinned_depth[class].store(pinned.len() as u64, Relaxed);
    }

    /// Puts a task popped from a lane that is not its class's (its class changed while it was
    /// queued, or it was woken into Normal's queues from another thread) into the right one.
    fn requeue(&self, task: Notified) {
        if route::place(self, task, true) {
            self.shared.notify_work();
        }
    }

    /// Polls up to `BUDGET` tasks from this worker's lanes, split between the classes that
    /// have work (see [`Class`]); returns how many ran.
    pub(super) fn run_lanes(&self) -> usize {
        let l = &self.lanes;
        if l[Class::Urgent].is_empty() && l[Class::Bulk].is_empty() && l[Class::Heavy].is_empty() {
            // Only Normal work: the whole turn is Normal's, as without classes.
            self.run_normal(BUDGET)
        } else {
            self.run_classes()
        }
    }

    /// A turn with work in other classes than Normal: Urgent, Normal and Bulk share `BUDGET`
    /// polls by weight; then one Heavy poll, and more from a Heavy backlog once Urgent and
    /// Normal have nothing queued.
    fn run_classes(&self) -> usize {
        let busy = |class: Class| match class {
            Class::Normal => self.has_normal_work(),
            _ => !self.lanes[class].is_empty(),
        };
        let weights = ByClass::from_fn(|c| if busy(c) { weight(c) } else { 0 });
        let total = [Class::Urgent, Class::Normal, Class::Bulk]
            .map(|c| weights[c])
            .iter()
            .sum::<usize>()
            .max(1);
        let share = |c: Class| match weights[c] {
            0 => 0,
            w => (BUDGET * w / total).max(1),
        };
        let mut ran = self.run_lane(Class::Urgent, share(Class::Urgent));
        ran += self.run_normal(share(Class::Normal));
        ran += self.run_lane(Class::Bulk, share(Class::Bulk));
        let heavy = self.lanes[Class::Heavy].len();
        if heavy > 0 {
            // Tasks of the other classes that yielded this turn are live work too (woken at
            // the next turn's start); what yields from here on is Heavy.
            let live_deferred = !self.deferred.borrow().is_empty();
            ran += self.run_lane(Class::Heavy, 1);
            // The backlog: more Heavy polls while nothing else waits. A Heavy poll is long, so
            // before each one the worker looks at its poller, its inbox and its timers (a
            // zero-timeout poll costs far less than the poll it precedes): live work that
            // arrived meanwhile ends the drain.
            for _ in 0..heavy / HEAVY_BACKLOG {
                self.poll_io(Some(std::time::Duration::ZERO));
                if !self.lanes[Class::Urgent].is_empty()
                    || self.has_normal_work()
                    || live_deferred
                    || !self.me.inbox.is_empty()
                    || self.timer_timeout().is_some_and(|t| t.is_zero())
                {
                    break;
                }
                let more = self.run_lane(Class::Heavy, 1);
                if more == 0 {
                    break;
                }
                ran += more;
            }
        }
        for (class, lane) in self.lanes.others() {
            self.counters().pinned_depth[class].store(lane.pinned.borrow().len() as u64, Relaxed);
        }
        ran
    }

    /// Polls up to `budget` tasks of the lane of `class` (not Normal's: see `run_normal`).
    fn run_lane(&self, class: Class, budget: usize) -> usize {
        let mut ran = 0;
        while ran < budget {
            let Some(task) = self.lanes[class].pop(ran & 1 == 1) else {
                break;
            };
            if task.header().class() != class {
                self.requeue(task);
                continue;
            }
            single_writer_add(&self.counters().class_polls[class], 1);
            self.run_task(task);
            if class == Class::Heavy {
                // A Heavy poll is long: the next turn starts by polling the I/O driver, as if
                // a full batch of polls had run.
                self.since_io.set(super::worker::EVENT_INTERVAL);
            }
            ran += 1;
        }
        ran
    }

    /// `true` when Normal work waits in this worker's own queues.
    pub(super) fn has_normal_work(&self) -> bool {
        self.lifo().is_occupied() || !self.lanes[Class::Normal].is_empty()
    }

    /// Polls up to `budget` Normal tasks from this worker's LIFO slot, pinned queue and deque.
    /// A task found there whose class is not Normal (woken from another thread, taken from
    /// the injector, or changed while queued) moves to its lane instead.
    fn run_normal(&self, budget: usize) -> usize {
        let normal = &self.lanes[Class::Normal];
        let mut ran = 0;
        let mut lifo_streak = 0;
        while ran < budget {
            // The LIFO slot first, but not more than MAX_LIFO_STREAK times in a row, so two
            // tasks passing messages back and forth cannot starve the queues.
            let lifo = if lifo_streak < MAX_LIFO_STREAK {
                self.lifo().take()
            } else {
                None
            };
            let task = match lifo {
                Some(task) => {
                    lifo_streak += 1;
                    Some(task)
                }
                None => {
                    lifo_streak = 0;
                    // Alternate between the pinned queue and the deque so neither starves (one
                    // call of each pop, so that both are inlined).
                    let pinned_first = ran & 1 == 0;
                    let mut task = if pinned_first {
                        self.pop_pinned()
                    } else {
                        None
                    };
                    if task.is_none() {
                        task = normal.stealable.pop();
                    }
                    if task.is_none() && !pinned_first {
                        task = self.pop_pinned();
                    }
                    task.or_else(|| self.lifo().take())
                }
            };
            let Some(task) = task else { break };
            // An unbound Normal task (nearly all) passes with one comparison.
            let h = task.header();
            if h.queueing() != Class::Normal.index() as u8 && !h.is_normal() {
                self.requeue(task);
                continue;
            }
            self.run_task(task);
            ran += 1;
        }
        ran
    }

    /// The next task of Normal's pinned queue.
    pub(super) fn pop_pinned(&self) -> Option<Notified> {
        let mut pinned = self.lanes[Class::Normal].pinned.borrow_mut();
        let task = pinned.pop_front();
        if task.is_some() {
            self.counters().pinned_depth[Class::Normal].store(pinned.len() as u64, Relaxed);
        }
        task
    }
}
