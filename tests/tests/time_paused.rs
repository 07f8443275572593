//! The paused clock (`time::pause`, `advance`, `resume`, `start_paused`): time stands still,
//! jumps to the next timer when the runtime is idle (sleeps, timeouts and intervals resolve at
//! once and in deadline order), `Instant::now` follows it, and misuse is a clear panic. Every
//! check here is on the runtime's (virtual) time: nothing depends on how fast the machine is.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pinwheel::Builder;
use pinwheel::time::{self, Instant};
use pinwheel_tests::panic_message;

const HOUR: Duration = Duration::from_secs(3600);

fn paused() -> pinwheel::Runtime {
    Builder::new_current_thread()
        .start_paused(true)
        .build()
        .unwrap()
}

#[test]
fn an_hour_long_sleep_ends_at_once_on_the_virtual_hour() {
    let rt = paused();
    rt.block_on(async {
        let start = Instant::now();
        let real = std::time::Instant::now();
        time::sleep(HOUR).await;
        let waited = start.elapsed();
        // Deadlines round up to the 1 ms tick: never early, at most a tick late.
        assert!(
            waited >= HOUR && waited <= HOUR + Duration::from_millis(1),
            "{waited:?}"
        );
        // The time stands still while nothing sleeps.
        let now = Instant::now();
        pinwheel::yield_now().await;
        assert_eq!(Instant::now(), now);
        assert!(
            real.elapsed() < HOUR,
            "the system clock did not wait an hour"
        );
    });
}

#[test]
fn sleeps_resolve_in_deadline_order() {
    let rt = paused();
    let order = Arc::new(Mutex::new(Vec::new()));
    rt.block_on(async {
        let start = Instant::now();
        let mut handles = Vec::new();
        for secs in [30u64, 10, 20, 5, 40] {
            let order = order.clone();
            handles.push(pinwheel::spawn(async move {
                time::sleep(Duration::from_secs(secs)).await;
                order
                    .lock()
                    .unwrap()
                    .push((secs, start.elapsed().as_secs()));
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
    });
    assert_eq!(
        *order.lock().unwrap(),
        [(5, 5), (10, 10), (20, 20), (30, 30), (40, 40)]
    );
}

#[test]
fn timeouts_and_intervals_follow_the_paused_clock() {
    let rt = paused();
    rt.block_on(async {
        let start = Instant::now();
        let slow = time::timeout(Duration::from_secs(90), std::future::pending::<()>()).await;
        assert!(slow.is_err());
        assert_eq!(start.elapsed().as_secs(), 90);
        let fast =
            time::timeout_at(Instant::now() + HOUR, time::sleep(Duration::from_secs(1))).await;
        assert!(fast.is_ok());
        let mut iv = time::interval_at(Instant::now(), Duration::from_secs(15));
        let first = iv.tick().await;
        for k in 1..=4u32 {
            let t = iv.tick().await;
            assert_eq!(t - first, Duration::from_secs(15) * k);
        }
    });
}

#[test]
fn advance_moves_time_and_fires_what_is_due() {
    let rt = Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        time::pause();
        let fired = Arc::new(Mutex::new(false));
        let f = fired.clone();
        // A task sleeps; the test then advances by hand. With a task that is never idle,
        // auto-advance never runs, so only `advance` moves the clock.
        let sleeper = pinwheel::spawn(async move {
            time::sleep(Duration::from_millis(10)).await;
            *f.lock().unwrap() = true;
        });
        pinwheel::yield_now().await;
        let start = Instant::now();
        time::advance(Duration::from_millis(5)).await;
        assert!(!*fired.lock().unwrap(), "not due yet");
        assert_eq!(start.elapsed(), Duration::from_millis(5));
        time::advance(Duration::from_millis(6)).await;
        sleeper.await.unwrap();
        assert!(*fired.lock().unwrap());
        assert_eq!(start.elapsed(), Duration::from_millis(11));
        time::resume();
        // Running again: it moves with the system clock (without jumping back).
        let t = Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(Instant::now() > t);
    });
}

#[test]
fn a_running_blocking_closure_holds_the_clock() {
    let rt = paused();
    rt.block_on(async {
        let start = Instant::now();
        let far = pinwheel::spawn(time::sleep(HOUR));
        let out = pinwheel::spawn_blocking(|| {
            std::thread::sleep(Duration::from_millis(20));
            7
        })
        .await
        .unwrap();
        assert_eq!(out, 7);
        assert!(
            start.elapsed() < HOUR,
            "the clock jumped while a blocking closure ran"
        );
        far.await.unwrap();
        assert!(start.elapsed() >= HOUR);
    });
}

#[pinwheel::test(start_paused = true)]
async fn the_test_macro_starts_paused() {
    let start = Instant::now();
    time::sleep(Duration::from_secs(24 * 3600)).await;
    assert!(start.elapsed() >= Duration::from_secs(24 * 3600));
}

#[test]
fn misuse_is_a_clear_panic_or_error() {
    let msg = panic_message(time::pause);
    assert!(msg.contains("inside a pinwheel runtime"), "{msg}");
    let multi = Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let msg = panic_message(|| multi.block_on(async { time::pause() }));
    assert!(msg.contains("needs a current-thread runtime"), "{msg}");
    let err = Builder::new_multi_thread()
        .start_paused(true)
        .build()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("current-thread runtime"), "{err}");
    let rt = Builder::new_current_thread().build().unwrap();
    let msg = panic_message(|| rt.block_on(async { time::resume() }));
    assert!(msg.contains("not paused"), "{msg}");
    let msg = panic_message(|| {
        rt.block_on(async {
            drop(time::advance(Duration::from_secs(1)));
        })
    });
    assert!(msg.contains("not paused"), "{msg}");
    let msg = panic_message(|| {
        rt.block_on(async {
            time::pause();
            time::pause();
        })
    });
    assert!(msg.contains("already paused"), "{msg}");
}

/// `Instant::recent` follows the paused clock as `Instant::now` does: a virtual hour later
/// after a virtual hour's sleep.
#[test]
fn recent_follows_the_paused_clock() {
    let rt = paused();
    rt.block_on(async {
        pinwheel::spawn(async {
            let a = Instant::recent();
            assert!(a <= Instant::now());
            time::sleep(HOUR).await;
            let b = Instant::recent();
            assert!(b - a >= HOUR, "{:?}", b - a);
            assert!(b <= Instant::now());
        })
        .await
        .unwrap();
    });
}
