//! A task that wakes itself forever cannot starve other tasks on its thread, its inbox,
//! or tasks spawned from outside. Each test would hang (and be bounded by its deadline) if the
//! budget did not hold; none depends on timing to pass.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pinwheel::{Builder, ThreadMask};

/// Spins by waking itself until `stop`, never returning Ready before.
async fn spinner(stop: Arc<AtomicBool>, deadline: Instant) -> u64 {
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "the spinner was never stopped: another task starved"
        );
        pinwheel::yield_now().await;
        n += 1;
    }
    n
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

#[test]
fn rt_self_waking_task_does_not_starve_local_tasks() {
    let rt = Builder::new().worker_threads(1).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let out = rt.block_on(rt.spawn(async move {
        let spin = pinwheel::spawn(spinner(s2.clone(), deadline()));
        let other = pinwheel::spawn(async move { s2.store(true, Ordering::SeqCst) });
        other.await.unwrap();
        spin.await.unwrap()
    }));
    assert!(out.is_ok());
}

#[test]
fn rt_self_waking_task_does_not_starve_injected_tasks() {
    let rt = Builder::new().worker_threads(1).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let spin = rt.spawn(spinner(stop.clone(), deadline()));
    // From outside the runtime: goes through the global injector.
    let s2 = stop.clone();
    rt.block_on(rt.spawn(async move { s2.store(true, Ordering::SeqCst) }))
        .unwrap();
    rt.block_on(spin).unwrap();
}

#[test]
fn rt_self_waking_pinned_task_does_not_starve_remote_queue() {
    let rt = Builder::new().worker_threads(2).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let spin = rt
        .handle()
        .spawn_on(ThreadMask::one(1), spinner(stop.clone(), deadline()));
    // A pinned task on the same worker, spawned from outside: through worker 1's inbox.
    let s2 = stop.clone();
    let setter = rt.handle().spawn_on(ThreadMask::one(1), async move {
        s2.store(true, Ordering::SeqCst);
        pinwheel::current_worker()
    });
    assert_eq!(rt.block_on(setter).unwrap(), Some(1));
    rt.block_on(spin).unwrap();
}

#[test]
fn rt_two_spinners_share_one_worker() {
    // Both must make progress: each stops the other after a few rounds of its own.
    let rt = Builder::new().worker_threads(1).build().unwrap();
    let a_stop = Arc::new(AtomicBool::new(false));
    let b_stop = Arc::new(AtomicBool::new(false));
    let (a1, b1) = (a_stop.clone(), b_stop.clone());
    let (a2, b2) = (a_stop.clone(), b_stop.clone());
    let d = deadline();
    let a = rt.spawn(async move {
        for _ in 0..1000 {
            pinwheel::yield_now().await;
        }
        b1.store(true, Ordering::SeqCst);
        spinner(a1, d).await
    });
    let b = rt.spawn(async move {
        for _ in 0..1000 {
            pinwheel::yield_now().await;
        }
        a2.store(true, Ordering::SeqCst);
        spinner(b2, d).await
    });
    rt.block_on(a).unwrap();
    rt.block_on(b).unwrap();
}
