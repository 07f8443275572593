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

#[test]
fn a_yielded_task_sees_an_io_event_at_its_next_poll() {
    // The data is on the socket before the task starts: its first `try_read` finds no
    // readiness yet (the poller has not been read since the socket was registered); it yields,
    // and the worker looks at its poller before polling it again, so the second try succeeds.
    // Before, a yielded task was polled again at once, ~64 times before the poller was read.
    use std::io::Write;
    let rt = Builder::new().worker_threads(1).build().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    client.write_all(b"x").unwrap();
    let yields = rt
        .block_on(rt.spawn(async move {
            let stream = pinwheel::net::TcpStream::from_std(server).unwrap();
            let mut buf = [0u8; 8];
            let mut yields = 0u32;
            loop {
                match stream.try_read(&mut buf) {
                    Ok(n) => {
                        assert_eq!(&buf[..n], b"x");
                        return yields;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        assert!(yields < 10_000, "the event never reached the yielding task");
                        yields += 1;
                        pinwheel::yield_now().await;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }))
        .unwrap();
    assert!(
        yields <= 2,
        "the task was polled {yields} times before its worker looked at the poller"
    );
}

#[test]
fn yielding_tasks_take_turns_with_each_other_and_with_others() {
    // Two tasks that yield in a loop and a third that waits for both: all finish, and the
    // yielders alternate (each yield goes to the back, behind the other).
    // Spawned from a task on the worker, so both are in its own queues.
    let rt = Builder::new().worker_threads(1).build().unwrap();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let o = order.clone();
    rt.block_on(rt.spawn(async move {
        let tasks: Vec<_> = (0..2u8)
            .map(|id| {
                let order = o.clone();
                pinwheel::spawn(async move {
                    for _ in 0..5 {
                        order.lock().unwrap().push(id);
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
    let order = order.lock().unwrap().clone();
    assert_eq!(order.len(), 10);
    let switches = order.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(switches >= 8, "the yielders did not take turns: {order:?}");
}
