//! Thread masks are obeyed: pinned and partially-masked tasks are only polled on their threads,
//! across many wakeups from other threads, while idle workers steal.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use pinwheel::{Runtime, ThreadMask};
use pinwheel_tests::rt;

/// A future that records the worker of every poll and hands its waker out, so that another
/// thread wakes it each time.
struct Recorder {
    seen: Arc<Mutex<Vec<Option<usize>>>>,
    slot: Arc<Mutex<Option<Waker>>>,
    polls: usize,
    target: usize,
}

impl Future for Recorder {
    type Output = usize;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        self.seen.lock().unwrap().push(pinwheel::current_worker());
        self.polls += 1;
        if self.polls == self.target {
            return Poll::Ready(self.polls);
        }
        *self.slot.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Wakes whatever waker shows up in `slot` from a plain OS thread until `stop`.
fn waker_thread(
    slot: Arc<Mutex<Option<Waker>>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut wakes = 0;
        while !stop.load(Ordering::SeqCst) {
            if let Some(w) = slot.lock().unwrap().take() {
                w.wake();
                wakes += 1;
            } else {
                std::thread::yield_now();
            }
        }
        wakes
    })
}

fn run_recorder(rt: &Runtime, mask: Option<ThreadMask>, target: usize) -> Vec<Option<usize>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let slot = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let waker = waker_thread(slot.clone(), stop.clone());
    let fut = Recorder {
        seen: seen.clone(),
        slot,
        polls: 0,
        target,
    };
    let h = match mask {
        Some(m) => rt.handle().spawn_on(m, fut),
        None => rt.spawn(fut),
    };
    // Keep the other workers busy-ish with stealable noise so they look for work to steal.
    let noise: Vec<_> = (0..50)
        .map(|_| {
            rt.spawn(async {
                for _ in 0..20 {
                    pinwheel::yield_now().await;
                }
            })
        })
        .collect();
    assert_eq!(rt.block_on(h).unwrap(), target);
    for n in noise {
        rt.block_on(n).unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    waker.join().unwrap();
    seen.lock().unwrap().clone()
}

#[test]
fn rt_one_thread_mask_polls_only_on_that_worker() {
    let rt = rt(4);
    for k in 0..4 {
        let seen = run_recorder(&rt, Some(ThreadMask::one(k)), 200);
        assert_eq!(seen.len(), 200);
        assert!(seen.iter().all(|w| *w == Some(k)), "worker {k}: {seen:?}");
    }
}

#[test]
fn rt_partial_mask_polls_only_inside_the_mask() {
    let rt = rt(4);
    let mask = ThreadMask::one(1) | ThreadMask::one(3);
    let seen = run_recorder(&rt, Some(mask), 300);
    assert!(seen.iter().all(|w| matches!(w, Some(1 | 3))), "{seen:?}");
}

#[test]
fn rt_mask_beyond_worker_count_is_trimmed() {
    // Bits naming workers that do not exist are ignored, the rest is obeyed.
    let rt = rt(2);
    let seen = run_recorder(&rt, Some(ThreadMask::from_bits(0b1110)), 100);
    assert!(seen.iter().all(|w| *w == Some(1)), "{seen:?}");
}

#[test]
fn rt_spawn_on_inside_a_task_from_another_worker() {
    let rt = rt(3);
    let out = rt.block_on(rt.spawn(async {
        let mut v = Vec::new();
        for k in [2usize, 0, 1, 2] {
            v.push(
                pinwheel::spawn_on(ThreadMask::one(k), async { pinwheel::current_worker() })
                    .await
                    .unwrap(),
            );
        }
        v
    }));
    assert_eq!(out.unwrap(), vec![Some(2), Some(0), Some(1), Some(2)]);
}

/// A `!Send` future: holds an `Rc` across awaits.
async fn local_work(rounds: usize, wake_from: Arc<Mutex<Option<Waker>>>) -> Vec<Option<usize>> {
    let rc = Rc::new(());
    let mut seen = Vec::new();
    for _ in 0..rounds {
        seen.push(pinwheel::current_worker());
        let mut first = true;
        std::future::poll_fn(|cx| {
            if first {
                first = false;
                *wake_from.lock().unwrap() = Some(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
    }
    drop(rc);
    seen
}

#[test]
fn rt_spawn_local_stays_on_its_thread_across_remote_wakes() {
    let rt = rt(3);
    let slot = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let waker = waker_thread(slot.clone(), stop.clone());
    let slot2 = slot.clone();
    let (home, seen) = rt
        .block_on(rt.handle().spawn_on(ThreadMask::one(1), async move {
            let home = pinwheel::current_worker();
            let seen = pinwheel::spawn_local(local_work(300, slot2)).await.unwrap();
            (home, seen)
        }))
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    assert!(waker.join().unwrap() >= 299);
    assert_eq!(home, Some(1));
    assert_eq!(seen.len(), 300);
    assert!(seen.iter().all(|w| *w == Some(1)), "{seen:?}");
}

#[test]
fn rt_full_mask_tasks_are_stolen_by_idle_workers() {
    // A task spawns stealable tasks onto its own worker's queue, then blocks that worker's
    // thread until they are all done: they can only complete if the other worker steals them.
    // (The wait is bounded so that a broken scheduler fails instead of hanging.)
    let rt = rt(2);
    let done = Arc::new((Mutex::new(0usize), std::sync::Condvar::new()));
    let d2 = done.clone();
    let (owner, ran_on) = rt
        .block_on(rt.spawn(async move {
            let owner = pinwheel::current_worker().unwrap();
            let hs: Vec<_> = (0..100)
                .map(|_| {
                    let d = d2.clone();
                    pinwheel::spawn(async move {
                        let w = pinwheel::current_worker().unwrap();
                        *d.0.lock().unwrap() += 1;
                        d.1.notify_all();
                        w
                    })
                })
                .collect();
            {
                let mut n = d2.0.lock().unwrap();
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                while *n < 100 {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    assert!(
                        !left.is_zero(),
                        "stealable tasks were not stolen while their worker was blocked"
                    );
                    n = d2.1.wait_timeout(n, left).unwrap().0;
                }
            }
            let mut ran_on = Vec::new();
            for h in hs {
                ran_on.push(h.await.unwrap());
            }
            (owner, ran_on)
        }))
        .unwrap();
    assert!(ran_on.iter().all(|&w| w != owner), "{ran_on:?}");
    let m = rt.metrics();
    assert!(m.worker(1 - owner).steals >= 100, "{m}");
}
