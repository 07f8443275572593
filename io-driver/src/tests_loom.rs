//! Loom models of a registration's readiness protocol: an event racing a task that registers
//! its waker, and an event racing a task that clears the readiness it saw.
//! `RUSTFLAGS="--cfg loom" cargo test -p pinwheel-io-driver --release --lib loom`

use std::task::{Context, Wake, Waker};

use loom::sync::Notify;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use std::sync::Arc;

use crate::Mutex;
use crate::readiness::*;

fn io() -> Arc<ScheduledIo> {
    Arc::new(ScheduledIo {
        readiness: AtomicUsize::new(0),
        wakers: Mutex::new(Wakers::default()),
    })
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
        while io.poll_ready(&mut cx, Direction::Read).is_pending() {
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
