//! The task state word: lifecycle bits and a reference count in one `AtomicUsize`.
//!
//! ```text
//!  63 ........................ 6   5          4            3         2         1         0
//! [        reference count      | JOIN_WAKER | JOIN_INTEREST | CANCELLED | COMPLETE | NOTIFIED | RUNNING ]
//! ```
//!
//! `NOTIFIED` is HAProxy's `pending_state`: a wake that arrives while `RUNNING` is set only sets
//! `NOTIFIED`, and the poller re-queues the task when its poll returns. A task is in at most one
//! queue at a time, and only while `NOTIFIED` is set and `RUNNING` is clear, so it is never polled
//! twice at once and never loses a wake.

use crate::loom::{AtomicUsize, Ordering::*};

pub(crate) const RUNNING: usize = 1 << 0;
pub(crate) const NOTIFIED: usize = 1 << 1;
pub(crate) const COMPLETE: usize = 1 << 2;
pub(crate) const CANCELLED: usize = 1 << 3;
pub(crate) const JOIN_INTEREST: usize = 1 << 4;
pub(crate) const JOIN_WAKER: usize = 1 << 5;
const REF_SHIFT: usize = 6;
pub(crate) const REF_ONE: usize = 1 << REF_SHIFT;

/// A copy of the state word at one instant.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot(pub(crate) usize);

impl Snapshot {
    pub(crate) fn has(self, bit: usize) -> bool {
        self.0 & bit != 0
    }
    pub(crate) fn refs(self) -> usize {
        self.0 >> REF_SHIFT
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("running", &self.has(RUNNING))
            .field("notified", &self.has(NOTIFIED))
            .field("complete", &self.has(COMPLETE))
            .field("cancelled", &self.has(CANCELLED))
            .field("join_interest", &self.has(JOIN_INTEREST))
            .field("join_waker", &self.has(JOIN_WAKER))
            .field("refs", &self.refs())
            .finish()
    }
}

/// What a worker that popped a task must do with it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToRunning {
    /// The worker now holds `RUNNING`: poll the future.
    Poll,
    /// The worker now holds `RUNNING` and the task was aborted: drop the future.
    Cancel,
    /// The task is complete or claimed by shutdown: only drop the queue's reference.
    Skip,
}

/// What a poller must do after a poll returned `Pending`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToIdle {
    /// Idle: drop the queue's reference.
    Idle,
    /// Woken during the poll: re-queue the task with the queue's reference.
    Notified,
    /// Aborted during the poll: the poller still holds `RUNNING` and must drop the future.
    Cancelled,
}

/// What a waker must do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToNotified {
    /// Nothing: already queued, running (marked), or complete.
    Nothing,
    /// Push the task on a queue, with a reference the transition has provided.
    Submit,
    /// Nothing to queue, and the caller dropped the last reference: free the task.
    Dealloc,
}

/// The atomic state word of a task.
pub(crate) struct State(AtomicUsize);

impl State {
    /// A new task: queued once, a JoinHandle, and three references (the owned-task list, the
    /// JoinHandle and the queue).
    pub(crate) fn new() -> State {
        State(AtomicUsize::new(NOTIFIED | JOIN_INTEREST | (3 * REF_ONE)))
    }

    pub(crate) fn load(&self) -> Snapshot {
        Snapshot(self.0.load(Acquire))
    }

    fn update<T>(&self, mut f: impl FnMut(usize) -> (Option<usize>, T)) -> T {
        let mut cur = self.0.load(Acquire);
        loop {
            let (next, out) = f(cur);
            let Some(next) = next else { return out };
            match self.0.compare_exchange_weak(cur, next, AcqRel, Acquire) {
                Ok(_) => return out,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Taken by a worker holding the queue's reference.
    pub(crate) fn transition_to_running(&self) -> ToRunning {
        self.update(|cur| {
            debug_assert!(cur & NOTIFIED != 0 || cur & (RUNNING | COMPLETE) != 0);
            if cur & (RUNNING | COMPLETE) != 0 {
                return (None, ToRunning::Skip);
            }
            let next = (cur & !NOTIFIED) | RUNNING;
            let action = if cur & CANCELLED != 0 {
                ToRunning::Cancel
            } else {
                ToRunning::Poll
            };
            (Some(next), action)
        })
    }

    /// Taken by the poller after `Poll::Pending`.
    pub(crate) fn transition_to_idle(&self) -> ToIdle {
        self.update(|cur| {
            debug_assert!(cur & RUNNING != 0);
            if cur & CANCELLED != 0 {
                return (None, ToIdle::Cancelled);
            }
            let next = cur & !RUNNING;
            let action = if cur & NOTIFIED != 0 {
                ToIdle::Notified
            } else {
                ToIdle::Idle
            };
            (Some(next), action)
        })
    }

    /// Taken by the `RUNNING` holder once the output is stored. Returns the state before.
    pub(crate) fn transition_to_complete(&self) -> Snapshot {
        let prev = Snapshot(self.0.fetch_xor(RUNNING | COMPLETE, AcqRel));
        debug_assert!(prev.has(RUNNING) && !prev.has(COMPLETE));
        prev
    }

    /// A waker consumed by value: its reference is either handed to the queue or dropped.
    pub(crate) fn transition_to_notified_by_val(&self) -> ToNotified {
        self.update(|cur| {
            debug_assert!(cur >> REF_SHIFT > 0);
            if cur & RUNNING != 0 {
                // The poller holds a reference, so this one is never the last.
                (Some((cur | NOTIFIED) - REF_ONE), ToNotified::Nothing)
            } else if cur & (NOTIFIED | COMPLETE) != 0 {
                let next = cur - REF_ONE;
                let action = if next >> REF_SHIFT == 0 {
                    ToNotified::Dealloc
                } else {
                    ToNotified::Nothing
                };
                (Some(next), action)
            } else {
                (Some(cur | NOTIFIED), ToNotified::Submit)
            }
        })
    }

    /// A waker used by reference: a new reference is made for the queue when one is needed.
    pub(crate) fn transition_to_notified_by_ref(&self) -> ToNotified {
        self.update(|cur| {
            if cur & (NOTIFIED | COMPLETE) != 0 {
                (None, ToNotified::Nothing)
            } else if cur & RUNNING != 0 {
                (Some(cur | NOTIFIED), ToNotified::Nothing)
            } else {
                (Some((cur | NOTIFIED) + REF_ONE), ToNotified::Submit)
            }
        })
    }

    /// `abort()`: marks the task cancelled and queues it, so its own thread drops the future.
    pub(crate) fn transition_to_notified_and_cancel(&self) -> ToNotified {
        self.update(|cur| {
            if cur & (COMPLETE | CANCELLED) != 0 {
                (None, ToNotified::Nothing)
            } else if cur & (RUNNING | NOTIFIED) != 0 {
                // The poller, or the worker that pops it, sees CANCELLED.
                (Some(cur | CANCELLED | NOTIFIED), ToNotified::Nothing)
            } else {
                (
                    Some((cur | CANCELLED | NOTIFIED) + REF_ONE),
                    ToNotified::Submit,
                )
            }
        })
    }

    /// Runtime shutdown: marks the task cancelled; returns `true` when the caller has claimed
    /// `RUNNING` and must drop the future itself.
    pub(crate) fn transition_to_shutdown(&self) -> bool {
        self.update(|cur| {
            if cur & (RUNNING | COMPLETE) == 0 {
                (Some(cur | RUNNING | CANCELLED), true)
            } else {
                (Some(cur | CANCELLED), false)
            }
        })
    }

    /// Dropping the JoinHandle. Returns `true` when the task is complete, in which case the
    /// JoinHandle owns the output and must drop it.
    pub(crate) fn unset_join_interested(&self) -> bool {
        self.update(|cur| {
            debug_assert!(cur & JOIN_INTEREST != 0);
            (Some(cur & !JOIN_INTEREST), cur & COMPLETE != 0)
        })
    }

    /// Publishes the join waker the JoinHandle has just written. Fails, leaving the bit clear,
    /// when the task completed meanwhile.
    pub(crate) fn set_join_waker(&self) -> Result<(), Snapshot> {
        self.update(|cur| {
            debug_assert!(cur & JOIN_INTEREST != 0 && cur & JOIN_WAKER == 0);
            if cur & COMPLETE != 0 {
                (None, Err(Snapshot(cur)))
            } else {
                (Some(cur | JOIN_WAKER), Ok(()))
            }
        })
    }

    /// Takes the join waker back so the JoinHandle may replace it. Fails when the task
    /// completed meanwhile (the completer may be reading the waker).
    pub(crate) fn unset_join_waker(&self) -> Result<(), Snapshot> {
        self.update(|cur| {
            debug_assert!(cur & JOIN_INTEREST != 0 && cur & JOIN_WAKER != 0);
            if cur & COMPLETE != 0 {
                (None, Err(Snapshot(cur)))
            } else {
                (Some(cur & !JOIN_WAKER), Ok(()))
            }
        })
    }

    pub(crate) fn ref_inc(&self) {
        let prev = self.0.fetch_add(REF_ONE, Relaxed);
        // A task with this many references is a leak; stop before the count wraps into the bits.
        if prev > usize::MAX / 2 {
            std::process::abort();
        }
    }

    /// Drops `n` references; returns `true` when they were the last ones.
    pub(crate) fn ref_dec_n(&self, n: usize) -> bool {
        let prev = self.0.fetch_sub(n * REF_ONE, AcqRel);
        debug_assert!(prev >> REF_SHIFT >= n, "task reference count underflow");
        prev >> REF_SHIFT == n
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn wake_while_running_is_kept_for_after_the_poll() {
        let s = State::new();
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_notified_by_ref(), ToNotified::Nothing);
        assert_eq!(s.transition_to_idle(), ToIdle::Notified);
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_idle(), ToIdle::Idle);
        assert_eq!(s.transition_to_notified_by_ref(), ToNotified::Submit);
        assert_eq!(s.load().refs(), 4);
    }

    #[test]
    fn abort_of_idle_task_queues_it_cancelled() {
        let s = State::new();
        assert_eq!(s.transition_to_running(), ToRunning::Poll);
        assert_eq!(s.transition_to_idle(), ToIdle::Idle);
        assert_eq!(s.transition_to_notified_and_cancel(), ToNotified::Submit);
        assert_eq!(s.transition_to_running(), ToRunning::Cancel);
        let prev = s.transition_to_complete();
        assert!(prev.has(JOIN_INTEREST));
        assert_eq!(s.transition_to_notified_by_ref(), ToNotified::Nothing);
        assert!(!s.transition_to_shutdown());
    }
}
