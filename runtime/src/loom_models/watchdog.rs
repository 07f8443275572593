//! The loom models of `watchdog.rs` (a child module of it: see `README.md` here).

use std::time::Duration;

use loom::sync::Arc;

use super::WatchdogBell;

/// The only worker wakes while the watchdog goes to sleep for lack of awake workers: the
/// watchdog either sees it awake or is woken by it, never sleeps on (loom reports a
/// deadlock if it does).
#[test]
fn waking_worker_never_missed_by_sleeping_watchdog() {
    crate::loom::model(|| {
        let bell = Arc::new(WatchdogBell::new());
        bell.worker_sleeps();
        let b = bell.clone();
        let worker = loom::thread::spawn(move || b.worker_wakes());
        bell.wait(1, || false, Duration::from_millis(1));
        worker.join().unwrap();
    });
}

/// Two workers wake at once while the watchdog goes to sleep: one of them (and only the
/// one that clears the bit) wakes it.
#[test]
fn two_waking_workers_one_watchdog() {
    crate::loom::model(|| {
        let bell = Arc::new(WatchdogBell::new());
        bell.worker_sleeps();
        bell.worker_sleeps();
        let (b1, b2) = (bell.clone(), bell.clone());
        let w1 = loom::thread::spawn(move || b1.worker_wakes());
        let w2 = loom::thread::spawn(move || b2.worker_wakes());
        bell.wait(2, || false, Duration::from_millis(1));
        w1.join().unwrap();
        w2.join().unwrap();
    });
}

/// Shutdown's ring wakes a watchdog asleep (or going to sleep) with every worker asleep.
#[test]
fn ring_wakes_sleeping_watchdog() {
    crate::loom::model(|| {
        let bell = Arc::new(WatchdogBell::new());
        bell.worker_sleeps();
        let b = bell.clone();
        let stopper = loom::thread::spawn(move || b.ring());
        bell.wait(1, || false, Duration::from_millis(1));
        stopper.join().unwrap();
    });
}
