//! The current-thread flavor (`Builder::new_current_thread`): the thread in `block_on` is the
//! one worker. Everything runs on it (spawn, spawn_local, timers, sockets, work lists, serve,
//! blocking closures' results), in the order tasks were queued, nothing runs between
//! `block_on`s, and misuse is a clear panic or error.

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use pinwheel::Builder;
use pinwheel::net::{TcpListener, TcpStream};
use pinwheel_tests::pin_check::PinProbe;

fn current() -> pinwheel::Runtime {
    Builder::new_current_thread().build().unwrap()
}

#[test]
fn tasks_run_on_the_block_on_thread_in_the_order_they_were_spawned() {
    let rt = current();
    assert_eq!(rt.worker_threads(), 1);
    let me = thread::current().id();
    let order = Arc::new(Mutex::new(Vec::new()));
    rt.block_on(async {
        let handles: Vec<_> = (0..5)
            .map(|i| {
                let order = order.clone();
                pinwheel::spawn(async move {
                    assert_eq!(thread::current().id(), me);
                    order.lock().unwrap().push(i);
                    pinwheel::yield_now().await;
                    order.lock().unwrap().push(10 + i);
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    });
    assert_eq!(
        *order.lock().unwrap(),
        [0, 1, 2, 3, 4, 10, 11, 12, 13, 14],
        "first polls in spawn order, then the yielded halves in the same order"
    );
    assert_eq!(pinwheel::current_worker(), None, "block_on left the worker");
}

#[test]
fn nothing_runs_between_block_ons_and_tasks_wait_for_the_next() {
    let rt = current();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    // Spawned from another thread while nobody drives the runtime.
    let handle = rt.handle().clone();
    let h = thread::spawn(move || {
        handle.spawn(async move {
            r.fetch_add(1, SeqCst);
        })
    })
    .join()
    .unwrap();
    thread::sleep(Duration::from_millis(20));
    assert_eq!(ran.load(SeqCst), 0, "no block_on, no worker");
    rt.block_on(h).unwrap();
    assert_eq!(ran.load(SeqCst), 1);
}

#[test]
fn timers_spawn_local_work_lists_and_blocking_closures_work() {
    let rt = current();
    rt.block_on(async {
        let start = std::time::Instant::now();
        pinwheel::time::sleep(Duration::from_millis(5)).await;
        assert!(start.elapsed() >= Duration::from_millis(5));
        let slow = pinwheel::time::timeout(Duration::from_millis(2), std::future::pending::<()>());
        assert!(slow.await.is_err());
        let mut iv = pinwheel::time::interval(Duration::from_millis(1));
        for _ in 0..3 {
            iv.tick().await;
        }
        let not_send = Rc::new(3);
        let local = pinwheel::spawn_local(async move { *not_send + 1 });
        assert_eq!(local.await.unwrap(), 4);
        let got = Arc::new(AtomicUsize::new(0));
        let g = got.clone();
        let list = pinwheel::WorkList::new(move |n: usize| {
            g.fetch_add(n, SeqCst);
        });
        list.push(0, 5).unwrap();
        list.push_local(6).unwrap();
        while got.load(SeqCst) != 11 {
            pinwheel::yield_now().await;
        }
        let blocking = pinwheel::spawn_blocking(|| thread::current().id());
        assert_ne!(blocking.await.unwrap(), thread::current().id());
    });
    let m = rt.metrics();
    assert_eq!(m.worker_threads(), 1);
    assert!(m.total().tasks_polled >= 3, "{m}");
    assert!(m.total().timers_fired >= 1, "{m}");
}

#[test]
fn sockets_and_serve_run_on_the_one_worker() {
    let rt = current();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = pinwheel::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
        });
        let c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        server.await.unwrap();

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = pinwheel::spawn(pinwheel::net::serve(
            listener,
            |s: TcpStream, _| async move {
                let mut b = [0u8; 1];
                while s.read(&mut b).await.unwrap_or(0) == 1 {
                    s.write_all(&b).await.unwrap();
                }
            },
        ));
        for round in 0..3u8 {
            let c = TcpStream::connect(addr).await.unwrap();
            c.write_all(&[round]).await.unwrap();
            let mut b = [0u8; 1];
            c.read_exact(&mut b).await.unwrap();
            assert_eq!(b[0], round);
        }
        served.abort();
    });
}

#[test]
fn dropping_the_runtime_on_its_thread_drops_every_task_in_place() {
    let probe = PinProbe::new();
    let rt = current();
    rt.block_on(async {
        for _ in 0..4 {
            drop(pinwheel::spawn(probe.wrap(std::future::pending::<()>())));
            drop(pinwheel::spawn_local(
                probe.self_ref(std::future::pending::<()>()),
            ));
        }
        pinwheel::yield_now().await;
    });
    drop(rt);
    probe.assert_dropped_in_place(8);
}

#[test]
fn block_on_on_another_thread_is_a_clear_panic() {
    let rt = Arc::new(current());
    let rt2 = rt.clone();
    let res = thread::spawn(move || rt2.block_on(async { 1 })).join();
    let payload = res.expect_err("block_on from another thread");
    let msg = pinwheel_tests::panic_text(&*payload);
    assert!(
        msg.contains("current-thread runtime") && msg.contains("thread that built it"),
        "{msg}"
    );
    // The runtime still works on its own thread.
    assert_eq!(rt.block_on(async { 2 }), 2);
}

/// Run by the test below in a child process: the leak is the point (and would fail the
/// LeakSanitizer run), so the child runs with leak detection off.
#[test]
#[ignore = "run by dropped_on_another_thread_its_tasks_are_leaked_not_dropped_there"]
fn leak_child() {
    let dropped_on = Arc::new(Mutex::new(None));
    struct Mark(Arc<Mutex<Option<thread::ThreadId>>>);
    impl Drop for Mark {
        fn drop(&mut self) {
            *self.0.lock().unwrap() = Some(thread::current().id());
        }
    }
    let rt = current();
    let mark = Mark(dropped_on.clone());
    rt.block_on(async move {
        drop(pinwheel::spawn_local(async move {
            let _mark = mark;
            std::future::pending::<()>().await;
        }));
        pinwheel::yield_now().await;
    });
    thread::spawn(move || drop(rt)).join().unwrap();
    assert_eq!(
        *dropped_on.lock().unwrap(),
        None,
        "a !Send future was dropped on another thread"
    );
}

/// A runtime dropped on another thread than the one that built it leaks its tasks rather than
/// drop a `!Send` future there (the current-thread rule).
#[test]
fn dropped_on_another_thread_its_tasks_are_leaked_not_dropped_there() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "leak_child",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("ASAN_OPTIONS", "detect_leaks=0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn more_than_one_worker_is_an_error_and_nesting_panics() {
    let err = Builder::new_current_thread()
        .worker_threads(2)
        .build()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("current-thread runtime"), "{err}");
    assert!(
        Builder::new_current_thread()
            .worker_threads(1)
            .build()
            .is_ok()
    );
    let rt = current();
    let inner = current();
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async { inner.block_on(async {}) })
    }));
    assert!(res.is_err(), "block_on inside block_on");
    // The outer runtime survives the panic.
    assert_eq!(rt.block_on(async { 3 }), 3);
}
