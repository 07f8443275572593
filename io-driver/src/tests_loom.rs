//! Loom models of a registration's readiness protocol: an event racing a task that registers
//! its waker, an event racing a task that clears the readiness it saw, two waiters of one
//! direction both woken by one event, and a waiter dropped while an event takes the waiters.
//! `RUSTFLAGS="--cfg loom" cargo test -p pinwheel-io-driver --release --lib loom`

use std::task::{Context, Wake, Waker};

use loom::sync::Notify;
use loom::sync::atomic::Ordering;
use loom::thread;

use std::sync::Arc;

use crate::readiness::*;
use crate::registration::Waiter;

fn io() -> Arc<ScheduledIo> {
    Arc::new(ScheduledIo::new())
}

/// Fires `bits` and wakes what the event took, as the driver does.
fn fire(io: &ScheduledIo, bits: usize) {
    let mut wakers = Vec::new();
    io.set_readiness(bits, &mut wakers);
    for w in wakers {
        w.wake();
    }
}

/// Waits as a waiter of its own until readable; loom reports a deadlock if a wake is lost.
fn wait_readable(io: &ScheduledIo) {
    let nw = std::sync::Arc::new(NotifyWaker(Notify::new()));
    let waker = Waker::from(nw.clone());
    let mut cx = Context::from_waker(&waker);
    let mut waiter = Waiter {
        io,
        direction: Direction::Read,
        key: None,
    };
    while waiter.poll_ready(&mut cx).is_pending() {
        nw.0.wait();
    }
}

struct NotifyWaker(Notify);

impl Wake for NotifyWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.notify();
    }
    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.notify();
    }
}

#[test]
fn loom_event_vs_waker_registration_is_not_lost() {
    loom::model(|| {
        let io = io();
        let driver = {
            let io = io.clone();
            thread::spawn(move || {
                let mut wakers = Vec::new();
                io.set_readiness(READABLE, &mut wakers);
                for w in wakers {
                    w.wake();
                }
            })
        };
        let nw = std::sync::Arc::new(NotifyWaker(Notify::new()));
        let waker = Waker::from(nw.clone());
        let mut cx = Context::from_waker(&waker);
        // Loom reports a deadlock if the event's wake-up is lost.
        while io
            .poll_ready(&mut cx, Direction::Read, Who::PollSlot)
            .is_pending()
        {
            nw.0.wait();
        }
        driver.join().unwrap();
    });
}

#[test]
fn loom_clear_never_erases_a_newer_event() {
    loom::model(|| {
        let io = io();
        let mut w = Vec::new();
        io.set_readiness(READABLE, &mut w);
        let driver = {
            let io = io.clone();
            thread::spawn(move || {
                let mut w = Vec::new();
                io.set_readiness(READABLE, &mut w);
            })
        };
        let seen = io.ready(Direction::Read).unwrap().unwrap();
        // The read returned WouldBlock: clear what was seen.
        io.clear_readiness(seen);
        driver.join().unwrap();
        let end = io.readiness.load(Ordering::Acquire);
        // Either the readiness is still there, or the clear saw the latest event.
        assert!(
            end & READABLE != 0 || end >> TICK_SHIFT == seen.tick,
            "a newer event was erased"
        );
    });
}

#[test]
fn loom_two_waiters_of_one_direction_are_both_woken() {
    loom::model(|| {
        let io = io();
        let other = {
            let io = io.clone();
            thread::spawn(move || wait_readable(&io))
        };
        let driver = {
            let io = io.clone();
            thread::spawn(move || fire(&io, READABLE))
        };
        wait_readable(&io);
        other.join().unwrap();
        driver.join().unwrap();
    });
}

#[test]
fn loom_a_stale_waiter_dropped_while_another_waits_takes_nothing_of_its() {
    loom::model(|| {
        let io = io();
        // A waits (registered, pending), and an event takes every waiter (A's key is stale).
        let mut a = Waiter {
            io: &*io,
            direction: Direction::Read,
            key: None,
        };
        assert!(
            a.poll_ready(&mut Context::from_waker(Waker::noop()))
                .is_pending()
        );
        fire(&io, READABLE);
        let ev = io.ready(Direction::Read).unwrap().unwrap();
        io.clear_readiness(ev);
        // A is dropped on another thread (what its Drop does, with its key) while B registers
        // and waits here, and a later event comes from a third thread: B must be woken, so A's
        // drop must not take B's entry (which may sit at A's old index).
        let key = a.key.take().expect("A registered");
        drop(a);
        let dropper = {
            let io = io.clone();
            thread::spawn(move || io.remove_waiter(Direction::Read, key))
        };
        let later = {
            let io = io.clone();
            thread::spawn(move || fire(&io, READABLE))
        };
        wait_readable(&io);
        dropper.join().unwrap();
        later.join().unwrap();
    });
}
