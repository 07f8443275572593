//! The `show activity` set of per-worker metrics: counters move when their event happens, and
//! the gauges (queue depth, local tasks, live sessions, live tasks) say what is there now.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use pinwheel::{Runtime, ThreadMask, WorkerMetrics};
use pinwheel_tests::rt;

const BOUND: Duration = Duration::from_secs(20);

/// Waits (boundedly) until `cond` holds for the runtime's metrics.
fn wait_for(rt: &Runtime, what: &str, cond: impl Fn(&WorkerMetrics) -> bool) {
    let start = Instant::now();
    loop {
        let m = rt.metrics().total();
        if cond(&m) {
            return;
        }
        assert!(
            start.elapsed() < BOUND,
            "waited {BOUND:?} for {what}: {m:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn loop_turns_and_budget_exhaustions() {
    let rt = rt(1);
    // Spawned by a task on the worker, so all 100 are queued there before any runs (spawned
    // from `block_on`, they reach the worker one by one through its inbox, and a worker that
    // drains it as fast as they come may never hold 64 at once).
    rt.block_on(rt.spawn(async {
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                pinwheel::spawn(async {
                    for _ in 0..10 {
                        pinwheel::yield_now().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    }))
    .unwrap();
    let m = rt.metrics().worker(0).to_owned();
    assert!(m.loop_turns > 0);
    // 100 always-ready tasks queued at once on one worker cannot fit in one budget of 64.
    assert!(m.budget_exhaustions > 0, "{m:?}");
}

#[test]
fn timers_armed_fired_and_cancelled() {
    let rt = rt(1);
    rt.block_on(async {
        pinwheel::spawn(async {
            // Armed then cancelled: the work finishes first.
            let r = pinwheel::time::timeout(Duration::from_secs(60), async {
                pinwheel::yield_now().await;
            })
            .await;
            assert!(r.is_ok());
            // Armed then fired.
            pinwheel::time::sleep(Duration::from_millis(2)).await;
        })
        .await
        .unwrap();
    });
    // The wheel's counts are published at the worker's next loop turn.
    rt.block_on(rt.spawn(async {})).unwrap();
    wait_for(&rt, "the timer counts", |m| {
        m.timers_armed >= 2 && m.timers_cancelled >= 1 && m.timers_fired >= 1
    });
}

#[test]
fn run_queue_depth_counts_tasks_waiting_for_a_busy_worker() {
    let rt = rt(2);
    let (release, blocked) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel::<()>();
    let blocker = rt.handle().spawn_on(ThreadMask::one(0), async move {
        started_tx.send(()).unwrap();
        blocked.recv().unwrap(); // holds the only worker
    });
    started.recv().unwrap();
    let queued: Vec<_> = (0..10)
        .map(|_| rt.handle().spawn_on(ThreadMask::one(0), async {}))
        .collect();
    let depth = rt.metrics().worker(0).run_queue_depth;
    assert_eq!(depth, 10, "ten tasks wait for the blocked worker");
    assert!(rt.metrics().live_tasks() >= 11);
    release.send(()).unwrap();
    rt.block_on(async {
        blocker.await.unwrap();
        for q in queued {
            q.await.unwrap();
        }
    });
    wait_for(&rt, "the queue to drain", |m| m.run_queue_depth == 0);
}

#[test]
fn local_tasks_and_live_sessions_are_gauges() {
    let rt = rt(2);
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let stop_rx = std::sync::Arc::new(std::sync::Mutex::new(stop_rx));
    // Three pending spawn_local tasks on worker 1.
    let (hold_tx, hold_rx) = mpsc::channel::<pinwheel::AbortHandle>();
    rt.block_on(rt.handle().spawn_on(ThreadMask::one(1), async move {
        for _ in 0..3 {
            let h = pinwheel::spawn_local(std::future::pending::<()>());
            hold_tx.send(h.abort_handle()).unwrap();
        }
    }))
    .unwrap();
    assert_eq!(rt.metrics().worker(1).local_tasks, 3);
    for h in hold_rx.try_iter() {
        h.abort();
    }
    wait_for(&rt, "the local tasks to go", |m| m.local_tasks == 0);

    // One live session while a client is connected.
    let addr = rt.block_on(async {
        let l = pinwheel::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap();
        let addr = l.local_addr().unwrap();
        drop(pinwheel::spawn(pinwheel::net::serve(l, move |s, _| {
            let _keep = stop_rx.clone();
            async move {
                let mut b = [0u8; 1];
                let _ = s.read(&mut b).await;
            }
        })));
        addr
    });
    let client = std::net::TcpStream::connect(addr).unwrap();
    wait_for(&rt, "a live session", |m| m.live_sessions == 1);
    drop(client);
    wait_for(&rt, "the session to end", |m| m.live_sessions == 0);
    drop(stop_tx);
}
