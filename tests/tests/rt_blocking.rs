//! The blocking pool (`spawn_blocking`), thread hooks and worker placement on CPUs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use pinwheel::{Builder, ThreadMask};

const BOUND: Duration = Duration::from_secs(20);

#[track_caller]
fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    pinwheel_tests::wait_until(BOUND, what, cond);
}

#[test]
fn spawn_blocking_runs_off_the_workers() {
    let rt = Builder::new()
        .worker_threads(2)
        .thread_name("bl")
        .build()
        .unwrap();
    let (worker, name, v) = rt
        .block_on(async {
            pinwheel::spawn_blocking(|| {
                (
                    pinwheel::current_worker(),
                    std::thread::current().name().map(str::to_owned),
                    6 * 7,
                )
            })
            .await
        })
        .unwrap();
    assert_eq!(worker, None, "a blocking closure does not run on a worker");
    assert_eq!(name.as_deref(), Some("bl-blocking"));
    assert_eq!(v, 42);
    // From a task too, and through the handle.
    let from_task = rt
        .block_on(rt.spawn(async { pinwheel::spawn_blocking(|| 1).await.unwrap() }))
        .unwrap();
    assert_eq!(from_task, 1);
    assert_eq!(rt.block_on(rt.handle().spawn_blocking(|| 2)).unwrap(), 2);
}

#[test]
fn a_panicking_closure_becomes_a_join_error() {
    let rt = Builder::new().worker_threads(1).build().unwrap();
    let err = rt
        .block_on(
            rt.handle()
                .spawn_blocking(|| -> u32 { panic!("blocking boom") }),
        )
        .unwrap_err();
    assert!(err.is_panic());
    // The pool goes on.
    assert_eq!(rt.block_on(rt.handle().spawn_blocking(|| 3)).unwrap(), 3);
}

#[test]
fn the_pool_is_bounded_and_queues_the_rest() {
    let rt = Builder::new()
        .worker_threads(1)
        .max_blocking_threads(2)
        .build()
        .unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let gate = Arc::new(std::sync::Mutex::new(gate));
    let running = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (gate, running) = (gate.clone(), running.clone());
            rt.handle().spawn_blocking(move || {
                running.fetch_add(1, Ordering::SeqCst);
                gate.lock().unwrap().recv().unwrap();
            })
        })
        .collect();
    wait_until("two closures running", || {
        running.load(Ordering::SeqCst) == 2
    });
    let m = rt.metrics();
    assert_eq!(m.blocking_threads(), 2);
    assert_eq!(m.blocking_queue_depth(), 2);
    for _ in 0..4 {
        release.send(()).unwrap();
    }
    rt.block_on(async {
        for h in handles {
            h.await.unwrap();
        }
    });
    assert_eq!(running.load(Ordering::SeqCst), 4);
}

#[test]
fn idle_pool_threads_exit_after_the_keep_alive() {
    let rt = Builder::new()
        .worker_threads(1)
        .thread_keep_alive(Duration::from_millis(20))
        .build()
        .unwrap();
    rt.block_on(rt.handle().spawn_blocking(|| ())).unwrap();
    wait_until("the idle pool thread to exit", || {
        rt.metrics().blocking_threads() == 0
    });
}

#[test]
fn shutdown_timeout_does_not_hang_on_a_running_blocking_closure() {
    let rt = Builder::new()
        .worker_threads(1)
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let (_never, stuck) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel::<()>();
    let running = rt.handle().spawn_blocking(move || {
        started_tx.send(()).unwrap();
        let _ = stuck.recv(); // blocks until the test ends
    });
    let queued = rt.handle().spawn_blocking(|| ());
    started.recv().unwrap();
    let start = Instant::now();
    let report = rt.shutdown_timeout(Duration::from_millis(50));
    assert!(
        start.elapsed() < BOUND,
        "shutdown_timeout hung on a blocking closure"
    );
    // The report names the closure still running, and counts the queued one it cancelled.
    assert!(!report.is_clean());
    assert!(report.stuck_workers.is_empty(), "{report}");
    assert_eq!(report.blocking_running.len(), 1, "{report}");
    assert!(
        report.blocking_running[0]
            .location
            .file()
            .ends_with("rt_blocking.rs"),
        "{report}"
    );
    assert_eq!(report.blocking_cancelled, 1, "{report}");
    assert!(
        report.to_string().contains("blocking closure spawned at"),
        "{report}"
    );
    // The queued closure never started: it is cancelled. The running one is left alone.
    let other = Builder::new().worker_threads(1).build().unwrap();
    let q = other.block_on(queued);
    assert!(q.unwrap_err().is_cancelled());
    drop(running);
}

#[test]
fn thread_hooks_run_on_workers_and_pool_threads() {
    let started = Arc::new(AtomicUsize::new(0));
    let stopped = Arc::new(AtomicUsize::new(0));
    let (s, t) = (started.clone(), stopped.clone());
    let rt = Builder::new()
        .worker_threads(2)
        .on_thread_start(move || {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .on_thread_stop(move || {
            t.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    wait_until("both workers started", || {
        started.load(Ordering::SeqCst) >= 2
    });
    rt.block_on(rt.handle().spawn_blocking(|| ())).unwrap();
    assert_eq!(started.load(Ordering::SeqCst), 3);
    rt.shutdown_timeout(BOUND);
    assert_eq!(stopped.load(Ordering::SeqCst), 3);
}

#[cfg(target_os = "linux")]
fn cpus_allowed_here() -> String {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_owned()
}

#[cfg(target_os = "linux")]
#[test]
fn workers_are_bound_to_their_cpus() {
    let rt = Builder::new()
        .worker_threads(2)
        .worker_cpus([0])
        .build()
        .unwrap();
    for k in 0..2 {
        let cpus = rt
            .block_on(
                rt.handle()
                    .spawn_on(ThreadMask::one(k), async { cpus_allowed_here() }),
            )
            .unwrap();
        assert_eq!(cpus, "0", "worker {k}");
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_cpu_that_does_not_exist_is_a_clear_error() {
    let err = Builder::new().worker_cpus([4000]).build().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let msg = err.to_string();
    assert!(
        msg.contains("CPU 4000") && msg.contains("available"),
        "{msg}"
    );
    let err = Builder::new()
        .worker_cpus(Vec::<usize>::new())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    let err = Builder::new().max_blocking_threads(0).build().unwrap_err();
    assert!(err.to_string().contains("max_blocking_threads"), "{err}");
}

#[test]
#[should_panic(expected = "pinwheel::spawn_blocking must be called from inside a pinwheel runtime")]
fn spawn_blocking_outside_a_runtime_panics() {
    drop(pinwheel::spawn_blocking(|| ()));
}

#[test]
fn a_panicking_thread_hook_does_not_take_the_runtime_down() {
    let rt = Builder::new()
        .worker_threads(2)
        .on_thread_start(|| panic!("hook boom"))
        .build()
        .unwrap();
    // Both workers run tasks despite the hook's panic.
    for k in 0..2 {
        let on = rt
            .block_on(
                rt.handle()
                    .spawn_on(ThreadMask::one(k), async { pinwheel::current_worker() }),
            )
            .unwrap();
        assert_eq!(on, Some(k));
    }
    assert_eq!(rt.block_on(rt.handle().spawn_blocking(|| 5)).unwrap(), 5);
}

#[test]
fn a_blocking_closure_runs_inside_the_runtime_context() {
    let rt = Builder::new().worker_threads(2).build().unwrap();
    let out = rt
        .block_on(async {
            pinwheel::spawn_blocking(|| {
                // Handle::current works, and is this runtime.
                let handle = pinwheel::Handle::current();
                assert_eq!(handle.worker_threads(), 2);
                // spawn: the task runs on a worker.
                let spawned = pinwheel::spawn(async { pinwheel::current_worker().is_some() });
                // spawn_blocking from a blocking closure.
                let nested = pinwheel::spawn_blocking(|| 40);
                // Timers and sockets, driven by the runtime's workers.
                let slept = pinwheel::time::sleep(Duration::from_millis(1));
                handle.block_on(async move {
                    slept.await;
                    let listener = pinwheel::net::TcpListener::bind("127.0.0.1:0").await?;
                    let addr = listener.local_addr()?;
                    let client = pinwheel::net::TcpStream::connect(addr).await?;
                    let (server, _) = listener.accept().await?;
                    client.write_all(b"k").await?;
                    let mut b = [0u8; 1];
                    server.read_exact(&mut b).await?;
                    assert_eq!(&b, b"k");
                    let on_worker = spawned.await.unwrap();
                    Ok::<_, std::io::Error>((on_worker, nested.await.unwrap() + 2))
                })
            })
            .await
        })
        .unwrap()
        .unwrap();
    assert_eq!(out, (true, 42));
}

#[test]
fn a_blocking_closure_leaves_the_context_when_it_ends() {
    // The pool thread runs the next closure of another runtime with that runtime's context,
    // and nothing is left entered between closures.
    let a = Builder::new().worker_threads(1).build().unwrap();
    let b = Builder::new().worker_threads(3).build().unwrap();
    let in_a = a
        .block_on(
            a.handle()
                .spawn_blocking(|| pinwheel::Handle::current().worker_threads()),
        )
        .unwrap();
    let in_b = b
        .block_on(
            b.handle()
                .spawn_blocking(|| pinwheel::Handle::current().worker_threads()),
        )
        .unwrap();
    assert_eq!((in_a, in_b), (1, 3));
    let outside = std::thread::spawn(|| pinwheel::Handle::try_current().is_err())
        .join()
        .unwrap();
    assert!(outside);
}
