//! `task::LocalSet`: `!Send` tasks driven by `run_until` (or by awaiting the set) on the thread
//! that polls it, even off the workers (inside `block_on` on a multi-thread runtime);
//! `pinwheel::spawn_local` inside it spawns onto the set; tasks woken from other threads run;
//! dropping the set drops its tasks in place, on its thread.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use pinwheel::task::LocalSet;
use pinwheel_tests::pin_check::PinProbe;

#[test]
fn run_until_drives_local_tasks_on_the_block_on_thread() {
    let rt = pinwheel::Builder::new().worker_threads(2).build().unwrap();
    let me = std::thread::current().id();
    let local = LocalSet::new();
    let count = Rc::new(Cell::new(0));
    let c = count.clone();
    let total = rt.block_on(local.run_until(async move {
        let mut handles = Vec::new();
        for i in 0..10 {
            let c = c.clone();
            handles.push(pinwheel::spawn_local(async move {
                assert_eq!(std::thread::current().id(), me);
                pinwheel::yield_now().await;
                c.set(c.get() + 1);
                i
            }));
        }
        // A task woken from another thread (a worker's timer) runs too.
        let timed = pinwheel::spawn_local(async {
            pinwheel::time::sleep(std::time::Duration::from_millis(2)).await;
            100
        });
        let mut total = timed.await.unwrap();
        for h in handles {
            total += h.await.unwrap();
        }
        total
    }));
    assert_eq!(total, 145);
    assert_eq!(count.get(), 10);
}

#[test]
fn spawned_before_and_awaiting_the_set_runs_them_all() {
    let rt = pinwheel::Builder::new_current_thread().build().unwrap();
    let local = LocalSet::new();
    let ran = Rc::new(Cell::new(0));
    for _ in 0..3 {
        let r = ran.clone();
        drop(local.spawn_local(async move {
            pinwheel::yield_now().await;
            r.set(r.get() + 1);
        }));
    }
    rt.block_on(local);
    assert_eq!(ran.get(), 3);
}

#[test]
fn dropping_the_set_drops_its_tasks_in_place() {
    let probe = PinProbe::new();
    let dropped = Arc::new(AtomicUsize::new(0));
    struct Count(Arc<AtomicUsize>);
    impl Drop for Count {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    let rt = pinwheel::Builder::new().worker_threads(1).build().unwrap();
    let local = LocalSet::new();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let guard = Count(dropped.clone());
            local.spawn_local(probe.wrap(async move {
                let _g = guard;
                std::future::pending::<()>().await;
            }))
        })
        .collect();
    rt.block_on(local.run_until(pinwheel::yield_now()));
    drop(local);
    assert_eq!(dropped.load(SeqCst), 4);
    probe.assert_dropped_in_place(4);
    for h in handles {
        assert!(rt.block_on(h).unwrap_err().is_cancelled());
    }
}
