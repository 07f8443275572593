//! The watchdog: a task that blocks its worker in one long poll is reported (one `tracing`
//! warning naming the task and the thread, and the `long_polls` metric), and a worker that
//! makes no loop turn while work waits for it is reported as stalled.

use std::time::{Duration, Instant};

use pinwheel::ThreadMask;
use pinwheel_tests::capture;

const BOUND: Duration = Duration::from_secs(20);

#[test]
fn a_long_poll_is_reported_with_the_task_and_the_thread() {
    let log = capture::log();
    let rt = pinwheel::Builder::new()
        .worker_threads(2)
        .thread_name("wd-long")
        .long_poll_threshold(Duration::from_millis(20))
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    let blocker = rt.block_on(async {
        let h = pinwheel::task::Builder::new()
            .name("sleeps on its worker")
            .mask(ThreadMask::one(1))
            .spawn(async move {
                // Blocks its worker in one poll until the watchdog has seen it (bounded).
                let start = Instant::now();
                while handle.metrics().worker(1).long_polls == 0 {
                    assert!(
                        start.elapsed() < BOUND,
                        "the watchdog never reported the poll"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
                start.elapsed()
            });
        Some(h)
    });
    let blocker = blocker.unwrap();
    let blocked_for = rt.block_on(blocker).unwrap();
    assert!(
        blocked_for >= Duration::from_millis(20),
        "reported after {blocked_for:?}"
    );
    assert_eq!(
        rt.metrics().worker(1).long_polls,
        1,
        "one report per long poll"
    );
    let log = log.lock().unwrap();
    let line = log
        .events
        .iter()
        .map(|(e, _)| e)
        .find(|l| l.contains("sleeps on its worker"))
        .unwrap_or_else(|| panic!("no warning names the task: {log:?}"));
    assert!(line.contains("thread=wd-long-1"), "{line}");
    assert!(
        line.contains("rt_watchdog.rs"),
        "the spawn location: {line}"
    );
    assert!(line.contains("task_id="), "{line}");
}

#[test]
fn a_stalled_worker_with_queued_work_is_reported() {
    let _log = capture::log();
    let rt = pinwheel::Builder::new()
        .worker_threads(2)
        .thread_name("wd-stall")
        .long_poll_threshold(Duration::from_millis(20))
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    let (queued_tx, queued_rx) = std::sync::mpsc::channel::<()>();
    let blocker = rt.handle().spawn_on(ThreadMask::one(0), async move {
        // Wait until a task is queued behind us, then block until the stall is reported.
        queued_rx.recv().unwrap();
        let start = Instant::now();
        while handle.metrics().worker(0).stalls == 0 {
            assert!(start.elapsed() < BOUND, "the stall was never reported");
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let waiting = rt.handle().spawn_on(ThreadMask::one(0), async {});
    queued_tx.send(()).unwrap();
    rt.block_on(async {
        blocker.await.unwrap();
        waiting.await.unwrap();
    });
    assert_eq!(rt.metrics().worker(0).stalls, 1);
}

#[test]
fn a_disabled_watchdog_reports_nothing() {
    let rt = pinwheel::Builder::new()
        .worker_threads(1)
        .watchdog(false)
        .long_poll_threshold(Duration::from_millis(1))
        .build()
        .unwrap();
    rt.block_on(rt.spawn(async { std::thread::sleep(Duration::from_millis(20)) }))
        .unwrap();
    assert_eq!(rt.metrics().worker(0).long_polls, 0);
}

#[test]
fn a_threshold_out_of_range_is_refused() {
    for bad in [
        Duration::ZERO,
        Duration::from_micros(999),
        Duration::from_secs(3601),
    ] {
        let err = pinwheel::Builder::new()
            .long_poll_threshold(bad)
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("long_poll_threshold"), "{err}");
    }
}
