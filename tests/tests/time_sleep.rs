//! Sleep (timeouts: time_timeout.rs, intervals: time_interval.rs): never early, never lost, across threads and bad inputs.
//! Assertions are lower bounds ("not before"), which hold whatever the machine's load; upper
//! bounds are a benchmark's business.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Waker};
use std::time::Duration;

use pinwheel::time::Instant;

use pinwheel::time::{sleep, sleep_until, timeout};
use pinwheel::{Builder, ThreadMask};
use pinwheel_tests::rt;

/// Polls once with a no-op waker: registers the timer where it is polled.
fn poll_once<F: Future + Unpin>(f: &mut F) -> bool {
    Pin::new(f)
        .poll(&mut Context::from_waker(Waker::noop()))
        .is_ready()
}

#[test]
fn time_sleep_is_never_early() {
    let rt = rt(2);
    for ms in [0u64, 1, 2, 5, 13] {
        let d = Duration::from_millis(ms);
        let took = rt
            .block_on(rt.spawn(async move {
                let start = Instant::now();
                sleep(d).await;
                start.elapsed()
            }))
            .unwrap();
        assert!(took >= d, "slept {took:?} for {d:?}");
    }
}

#[test]
fn time_many_sleeps_all_fire_none_early() {
    let rt = rt(2);
    let n = 2000;
    let early = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let early = early.clone();
            rt.spawn(async move {
                let d = Duration::from_micros(100 + (i as u64 * 7919) % 30_000);
                let start = Instant::now();
                sleep(d).await;
                if start.elapsed() < d {
                    early.fetch_add(1, SeqCst);
                }
            })
        })
        .collect();
    for h in hs {
        rt.block_on(h).unwrap();
    }
    assert_eq!(early.load(SeqCst), 0);
    assert!(rt.metrics().total().timers_fired > 0);
}

#[test]
fn time_zero_and_past_deadlines_complete() {
    let rt = rt(1);
    rt.block_on(rt.spawn(async {
        // A zero sleep completes at the next loop turn at the latest (it acts as a yield).
        sleep(Duration::ZERO).await;
        // A deadline in the past is ready at the first poll.
        let mut s = sleep_until(Instant::now() - Duration::from_secs(3600));
        assert!(poll_once(&mut s));
        assert!(s.is_elapsed());
    }))
    .unwrap();
}

#[test]
fn time_duration_max_and_far_instants_never_fire_and_do_not_panic() {
    let rt = rt(2);
    rt.block_on(rt.spawn(async {
        assert!(
            timeout(Duration::from_millis(5), sleep(Duration::MAX))
                .await
                .is_err()
        );
        let far = Instant::now() + Duration::from_secs(86_400 * 365 * 10);
        assert!(
            timeout(Duration::from_millis(5), sleep_until(far))
                .await
                .is_err()
        );
        // A timeout of Duration::MAX around a quick future is just the future.
        assert_eq!(timeout(Duration::MAX, async { 3 }).await.unwrap(), 3);
    }))
    .unwrap();
}

#[test]
#[should_panic(expected = "pinwheel::time::sleep must be called from inside a pinwheel runtime")]
fn time_sleep_outside_runtime_panics() {
    drop(sleep(Duration::from_millis(1)));
}

#[test]
fn time_builder_rejects_bad_ticks() {
    for t in [
        Duration::ZERO,
        Duration::from_nanos(999),
        Duration::from_secs(2),
    ] {
        let err = Builder::new().timer_tick(t).build().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("timer tick"), "{err}");
    }
    let rt = Builder::new()
        .worker_threads(1)
        .timer_tick(Duration::from_micros(100))
        .build()
        .unwrap();
    let took = rt
        .block_on(rt.spawn(async {
            let s = Instant::now();
            sleep(Duration::from_micros(1500)).await;
            s.elapsed()
        }))
        .unwrap();
    assert!(took >= Duration::from_micros(1500));
}

#[test]
fn time_sleep_in_block_on_off_the_workers() {
    let rt = rt(2);
    let start = Instant::now();
    rt.block_on(async {
        sleep(Duration::from_millis(10)).await;
        // Polled again from the same (non-worker) thread: registers through a mailbox again.
        let r = timeout(Duration::from_millis(5), std::future::pending::<()>()).await;
        assert!(r.is_err());
    });
    assert!(start.elapsed() >= Duration::from_millis(15));
}

#[test]
fn time_sleep_moves_between_workers_and_threads() {
    let rt = rt(3);
    let (tx, rx) = std::sync::mpsc::channel();
    // Registered on worker 0 (polled once there), then finished on worker 2.
    let start = Instant::now();
    rt.block_on(rt.handle().spawn_on(ThreadMask::one(0), async move {
        let mut s = sleep(Duration::from_millis(20));
        assert!(!poll_once(&mut s));
        tx.send(s).unwrap();
    }))
    .unwrap();
    let s = rx.recv().unwrap();
    let on = rt
        .block_on(rt.handle().spawn_on(ThreadMask::one(2), async move {
            s.await;
            pinwheel::current_worker()
        }))
        .unwrap();
    assert_eq!(on, Some(2));
    assert!(start.elapsed() >= Duration::from_millis(20));

    // Registered on a worker, dropped on a plain thread: cancelled through the mailbox.
    let (tx, rx) = std::sync::mpsc::channel();
    rt.block_on(rt.handle().spawn_on(ThreadMask::one(1), async move {
        let mut s = sleep(Duration::from_secs(3600));
        assert!(!poll_once(&mut s));
        tx.send(s).unwrap();
    }))
    .unwrap();
    let s = rx.recv().unwrap();
    std::thread::spawn(move || drop(s)).join().unwrap();
    // The worker still works and its wheel took the cancellation.
    rt.block_on(rt.handle().spawn_on(ThreadMask::one(1), async {
        sleep(Duration::from_millis(1)).await
    }))
    .unwrap();
}

#[test]
fn time_sleep_from_one_runtime_polled_on_another() {
    let a = rt(1);
    let b = rt(1);
    // Made inside runtime a (a runtime is needed to create it), never polled there.
    #[allow(clippy::async_yields_async)]
    let s = a.block_on(async { sleep(Duration::from_millis(5)) });
    let start = Instant::now();
    b.block_on(b.spawn(s)).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(5));
}

#[test]
fn time_reset_later_and_earlier() {
    let rt = rt(2);
    rt.block_on(rt.spawn(async {
        // Later: pushed back repeatedly before it fires.
        let start = Instant::now();
        let mut s = sleep(Duration::from_millis(5));
        assert!(!poll_once(&mut s));
        for i in 1..=10u64 {
            s.reset(start + Duration::from_millis(5 + 2 * i));
        }
        (&mut s).await;
        assert!(start.elapsed() >= Duration::from_millis(25));

        // Earlier: an hour-long sleep pulled in to a few milliseconds (bounded by a timeout
        // so a broken reset fails instead of hanging).
        let mut s = sleep(Duration::from_secs(3600));
        assert!(!poll_once(&mut s));
        let at = Instant::now() + Duration::from_millis(5);
        s.reset(at);
        assert_eq!(s.deadline(), at);
        timeout(Duration::from_secs(30), s)
            .await
            .expect("reset to an earlier deadline was not honoured");
        assert!(Instant::now() >= at);
    }))
    .unwrap();
}

#[test]
fn time_runtime_drop_with_pending_sleeps_is_clean() {
    let rt = rt(2);
    let hs: Vec<_> = (0..500)
        .map(|i| rt.spawn(async move { sleep(Duration::from_secs(3600 + i)).await }))
        .collect();
    // Let them register.
    rt.block_on(async { sleep(Duration::from_millis(5)).await });
    drop(rt);
    for h in hs {
        assert!(h.is_finished());
    }
}

#[test]
fn time_futures_are_send_sync_unpin() {
    fn send_sync_unpin<T: Send + Sync + Unpin>() {}
    send_sync_unpin::<pinwheel::time::Sleep>();
    send_sync_unpin::<pinwheel::time::Interval>();
    send_sync_unpin::<pinwheel::time::Timeout<std::future::Ready<u8>>>();
    send_sync_unpin::<pinwheel::time::Elapsed>();
}

/// `Instant::recent` is the worker's turn reading: never after `now`, and read again after
/// the worker slept, so a `block_on` future woken from another thread (polled before the
/// worker's next turn) does not see the time it went to sleep at.
#[test]
fn time_recent_is_never_ahead_and_is_fresh_after_a_sleep() {
    let before = Instant::now();
    // Off the runtimes: the clock itself.
    assert!(Instant::recent() >= before);
    let d = Duration::from_millis(20);
    for rt in [
        Builder::new_current_thread().build().unwrap(),
        Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap(),
    ] {
        rt.block_on(async {
            assert!(Instant::recent() <= Instant::now());
            recent_is_fresh_after_a_wake_from_another_thread(d).await;
            // The same in a task on a worker.
            pinwheel::spawn(recent_is_fresh_after_a_wake_from_another_thread(d))
                .await
                .unwrap();
        });
    }
}

/// Waits for the blocking pool's thread to wake the caller at least `d` after it started;
/// then `Instant::recent` is at least that late, and never ahead of `now`.
async fn recent_is_fresh_after_a_wake_from_another_thread(d: Duration) {
    let start = Instant::now();
    pinwheel::spawn_blocking(move || std::thread::sleep(d))
        .await
        .unwrap();
    let recent = Instant::recent();
    assert!(recent >= start + d, "{:?} after start", recent - start);
    assert!(recent <= Instant::now());
}
