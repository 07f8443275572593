//! `task::block_in_place`: on a worker of a multi-thread runtime the stealable work it holds
//! moves to another worker while it blocks (with the watchdog off, nothing else would move
//! it); its pinned tasks wait for it; off the workers it just runs; on a current-thread
//! runtime it is a clear panic.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use pinwheel::Builder;
use pinwheel::task::block_in_place;

#[test]
fn the_next_task_is_taken_over_while_the_worker_blocks() {
    // No watchdog: its stall check would also wake a worker to steal, after a second.
    let rt = Builder::new()
        .worker_threads(2)
        .watchdog(false)
        .build()
        .unwrap();
    for _ in 0..5 {
        rt.block_on(rt.spawn(async {
            let (tx, rx) = std::sync::mpsc::channel();
            // Give the other worker time to fall asleep (the test passes either way; asleep,
            // only block_in_place's hand-over can wake it).
            std::thread::sleep(std::time::Duration::from_millis(20));
            // Queued on this worker (its LIFO slot).
            let helper = pinwheel::spawn(async move { tx.send(()).unwrap() });
            // Waits for the helper: it can only run on the other worker meanwhile.
            block_in_place(|| rx.recv().unwrap());
            helper.await.unwrap();
        }))
        .unwrap();
    }
}

#[test]
fn pinned_tasks_wait_for_their_worker() {
    let rt = Builder::new().worker_threads(2).build().unwrap();
    rt.block_on(rt.spawn(async {
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        let pinned = pinwheel::spawn_local(async move { r.store(true, SeqCst) });
        block_in_place(|| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            assert!(
                !ran.load(SeqCst),
                "a pinned task ran while its worker blocked"
            );
        });
        pinned.await.unwrap();
        assert!(ran.load(SeqCst));
    }))
    .unwrap();
}

#[test]
fn off_the_workers_it_just_runs_and_on_a_current_thread_runtime_it_panics() {
    assert_eq!(block_in_place(|| 4), 4);
    let rt = Builder::new().worker_threads(1).build().unwrap();
    assert_eq!(rt.block_on(async { block_in_place(|| 5) }), 5);
    let ct = Builder::new_current_thread().build().unwrap();
    let msg = pinwheel_tests::panic_message(|| ct.block_on(async { block_in_place(|| ()) }));
    assert!(
        msg.contains("current-thread runtime") && msg.contains("spawn_blocking"),
        "{msg}"
    );
}
