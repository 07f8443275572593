//! A sequential model of the task state protocol, for fuzzing and property tests.
//!
//! Every party that can hold a reference to a task is modelled (run-queue entries, the worker
//! polling it, wakers, the JoinHandle, the owned-task list, shutdown), and each operation is one
//! the real code performs, with the same state transition and the same handling of its
//! answer. A byte string picks which party acts next, so a fuzzer (or the random test below)
//! explores interleavings of whole operations. After every step the model checks the
//! invariants the runtime relies on:
//!
//! - the reference count equals the references the parties hold, and the task is freed
//!   exactly when the last one is given up (never while one is held);
//! - `RUNNING` is set exactly while one worker polls it: never polled twice at once;
//! - a wake during a poll is never lost: a poll that ends `Pending` after a wake re-queues the
//!   task, and a `NOTIFIED` task that is neither running nor complete sits in a queue;
//! - the output is stored once and then either read by the JoinHandle or dropped, once;
//! - once `COMPLETE`, the task is never polled again.
//!
//! loom checks the same transitions under real interleavings of two or three threads
//! (`src/loom_models/task.rs`); this model reaches long sequences loom cannot.

use super::state::{
    CANCELLED, COMPLETE, JOIN_INTEREST, JOIN_WAKER, NOTIFIED, RUNNING, State, ToIdle, ToNotified,
    ToRunning,
};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Output {
    None,
    Stored,
    Read,
    Dropped,
}

struct Model {
    s: State,
    refs: usize,
    queued: usize,
    poller: bool,
    wakers: usize,
    join: bool,
    join_waker: bool,
    owned: bool,
    output: Output,
    cancelled: bool,
    woken_during_poll: bool,
    freed: bool,
}

impl Model {
    fn new() -> Model {
        // As `new_task` makes it: queued once, a JoinHandle, the owned list.
        Model {
            s: State::new(),
            refs: 3,
            queued: 1,
            poller: false,
            wakers: 0,
            join: true,
            join_waker: false,
            owned: true,
            output: Output::None,
            cancelled: false,
            woken_during_poll: false,
            freed: false,
        }
    }

    fn complete(&self) -> bool {
        self.output != Output::None
    }

    fn drop_refs(&mut self, n: usize) {
        assert!(self.refs >= n, "model: more references given up than held");
        let last = self.s.ref_dec_n(n);
        self.refs -= n;
        assert_eq!(
            last,
            self.refs == 0,
            "ref_dec_n's 'last' disagrees with the holders"
        );
        if last {
            self.freed = true;
        }
    }

    /// `finish` in harness.rs: the RUNNING holder stores the output, completes, tells the
    /// JoinHandle, leaves the owned list and gives up `held` references.
    fn finish(&mut self, held: usize) {
        assert!(self.s.load().has(RUNNING), "finish without RUNNING");
        let prev = self.s.transition_to_complete();
        assert!(prev.has(RUNNING) && !prev.has(COMPLETE));
        self.poller = false;
        self.output = Output::Stored;
        if !prev.has(JOIN_INTEREST) {
            assert!(!self.join, "JOIN_INTEREST clear while a JoinHandle lives");
            self.output = Output::Dropped;
        } else if prev.has(JOIN_WAKER) {
            assert!(self.join_waker, "JOIN_WAKER set but no waker was published");
        }
        let released = std::mem::replace(&mut self.owned, false);
        self.drop_refs(held + usize::from(released));
    }

    fn step(&mut self, op: u8) {
        match op % 13 {
            // A worker pops a queue entry.
            0 if self.queued > 0 => {
                self.queued -= 1;
                match self.s.transition_to_running() {
                    ToRunning::Poll => {
                        assert!(!self.poller, "polled twice at once");
                        assert!(!self.complete(), "a complete task was polled");
                        self.poller = true;
                        self.woken_during_poll = false;
                    }
                    ToRunning::Cancel => {
                        assert!(self.cancelled && !self.complete());
                        self.poller = true;
                        self.finish(1);
                    }
                    ToRunning::Skip => {
                        assert!(self.poller || self.complete(), "skipped a runnable task");
                        self.drop_refs(1);
                    }
                }
            }
            // The poll returns Pending.
            1 if self.poller => match self.s.transition_to_idle() {
                ToIdle::Idle => {
                    assert!(!self.woken_during_poll, "a wake during the poll was lost");
                    self.poller = false;
                    self.drop_refs(1);
                }
                ToIdle::Notified => {
                    self.poller = false;
                    self.queued += 1;
                }
                ToIdle::Cancelled => {
                    assert!(self.cancelled);
                    self.finish(1);
                }
            },
            // The poll returns Ready.
            2 if self.poller => self.finish(1),
            // A waker is cloned (from the poller's context or another waker).
            3 if self.poller || self.wakers > 0 => {
                self.s.ref_inc();
                self.refs += 1;
                self.wakers += 1;
            }
            // `wake()`: consumes the waker.
            4 if self.wakers > 0 => {
                self.wakers -= 1;
                if self.poller {
                    self.woken_during_poll = true;
                }
                match self.s.transition_to_notified_by_val() {
                    ToNotified::Submit => self.queued += 1,
                    ToNotified::Nothing => {
                        self.refs -= 1;
                        assert!(self.refs > 0, "the last reference dropped without Dealloc");
                    }
                    ToNotified::Dealloc => {
                        self.refs -= 1;
                        assert_eq!(self.refs, 0, "Dealloc while references are held");
                        self.freed = true;
                    }
                }
            }
            // `wake_by_ref()`.
            5 if self.wakers > 0 || self.poller => {
                if self.poller {
                    self.woken_during_poll = true;
                }
                if self.s.transition_to_notified_by_ref() == ToNotified::Submit {
                    self.refs += 1;
                    self.queued += 1;
                }
            }
            // A waker is dropped.
            6 if self.wakers > 0 => {
                self.wakers -= 1;
                self.drop_refs(1);
            }
            // `abort()`.
            7 if self.join => {
                if !self.complete() {
                    self.cancelled = true;
                    if self.poller {
                        self.woken_during_poll = true;
                    }
                }
                if self.s.transition_to_notified_and_cancel() == ToNotified::Submit {
                    self.refs += 1;
                    self.queued += 1;
                }
            }
            // The JoinHandle is dropped.
            8 if self.join => {
                // JOIN_WAKER stays as it is: with JOIN_INTEREST gone, nobody reads the slot.
                self.join = false;
                if self.s.unset_join_interested() {
                    assert!(self.complete(), "output owned before completion");
                    if self.output == Output::Stored {
                        self.output = Output::Dropped;
                    }
                }
                self.drop_refs(1);
            }
            // The JoinHandle publishes its waker.
            9 if self.join && !self.join_waker => match self.s.set_join_waker() {
                Ok(()) => {
                    assert!(!self.complete());
                    self.join_waker = true;
                }
                Err(snap) => assert!(snap.has(COMPLETE) && self.complete()),
            },
            // The JoinHandle takes its waker back to replace it.
            10 if self.join && self.join_waker => match self.s.unset_join_waker() {
                Ok(()) => self.join_waker = false,
                Err(snap) => assert!(snap.has(COMPLETE) && self.complete()),
            },
            // The JoinHandle reads the output.
            11 if self.join && self.output == Output::Stored => {
                assert!(self.s.load().has(COMPLETE) && self.s.load().has(JOIN_INTEREST));
                self.output = Output::Read;
            }
            // Runtime shutdown takes the owned list's reference.
            12 if self.owned => {
                self.owned = false;
                if !self.complete() {
                    self.cancelled = true;
                }
                if self.s.transition_to_shutdown() {
                    assert!(!self.poller && !self.complete());
                    self.poller = true;
                    self.finish(1);
                } else {
                    self.drop_refs(1);
                }
            }
            _ => {}
        }
    }

    fn check(&self) {
        if self.freed {
            assert!(
                self.queued == 0 && self.wakers == 0 && !self.join && !self.owned && !self.poller,
                "freed while a party holds a reference"
            );
            assert!(
                matches!(self.output, Output::Read | Output::Dropped),
                "freed with its output never read nor dropped"
            );
            return;
        }
        let snap = self.s.load();
        let held = self.queued
            + self.wakers
            + usize::from(self.join)
            + usize::from(self.owned)
            + usize::from(self.poller);
        assert_eq!(self.refs, held, "model bookkeeping");
        assert_eq!(
            snap.refs(),
            held,
            "reference count != references held: {snap:?}"
        );
        assert_eq!(
            snap.has(RUNNING),
            self.poller,
            "RUNNING != a poller: {snap:?}"
        );
        assert_eq!(snap.has(COMPLETE), self.complete(), "{snap:?}");
        assert_eq!(snap.has(JOIN_INTEREST), self.join, "{snap:?}");
        assert_eq!(snap.has(JOIN_WAKER), self.join_waker, "{snap:?}");
        if self.cancelled && !self.complete() {
            assert!(snap.has(CANCELLED), "{snap:?}");
        }
        if snap.has(NOTIFIED) && !self.poller && !self.complete() {
            assert!(
                self.queued > 0,
                "NOTIFIED but in no queue: the wake is lost ({snap:?})"
            );
        }
    }
}

/// Runs the model over `ops` (one party's operation per byte), panicking on a broken
/// invariant. Ends early when the task is freed.
pub(crate) fn run(ops: &[u8]) {
    let mut m = Model::new();
    m.check();
    for &op in ops {
        if m.freed {
            break;
        }
        m.step(op);
        m.check();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    /// Random operation sequences (a fixed-seed xorshift, so a failure reproduces): the
    /// fuzz target `task_state` explores the same model guided by coverage.
    #[test]
    fn state_protocol_model_holds_for_random_sequences() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut ops = [0u8; 96];
        for _ in 0..20_000 {
            for b in ops.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            super::run(&ops);
        }
    }

    /// The model itself catches a lost wake: a protocol that forgot NOTIFIED would fail.
    #[test]
    fn the_model_sees_the_paths_it_checks() {
        // pop + poll, clone a waker, wake it during the poll, Pending -> requeued, pop again,
        // Ready; JoinHandle reads and drops; shutdown finds it complete.
        super::run(&[0, 3, 4, 1, 0, 2, 11, 8, 12]);
    }
}
