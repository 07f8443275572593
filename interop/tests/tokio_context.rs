//! A tokio context on every worker (`Builder::tokio_context(true)`): tokio's spawn, timers,
//! sockets and `Handle::current()` from pinwheel tasks, run on the calling worker's thread,
//! with no `compat` anywhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::thread::ThreadId;
use std::time::Duration;

use pinwheel_interop::rt_with_tokio;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Spawns `f` pinned to worker 1 of `rt`.
fn on_worker_1<F>(rt: &pinwheel::Runtime, f: F) -> pinwheel::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let _entered = rt.enter();
    pinwheel::spawn_on(pinwheel::ThreadMask::one(1), f)
}

fn me() -> ThreadId {
    std::thread::current().id()
}

/// tokio's spawn, spawn_blocking, timers and handle work from a pinwheel task, and what
/// tokio spawns runs on that task's worker thread.
#[test]
fn tokio_calls_work_in_a_task_and_run_on_its_worker() {
    let rt = rt_with_tokio(2);
    let (task_thread, spawned_thread, slept, current) = rt
        .block_on(rt.spawn(async {
            let spawned = tokio::spawn(async { me() }).await.unwrap();
            let before = tokio::time::Instant::now();
            tokio::time::sleep(Duration::from_millis(5)).await;
            let slept = before.elapsed();
            let current = tokio::runtime::Handle::current().spawn(async { 7 }).await;
            let blocking = tokio::task::spawn_blocking(|| 6 * 7).await.unwrap();
            assert_eq!(blocking, 42);
            (me(), spawned, slept, current.unwrap())
        }))
        .unwrap();
    assert_eq!(
        task_thread, spawned_thread,
        "tokio::spawn from a pinwheel task runs on the task's worker thread"
    );
    assert!(slept >= Duration::from_millis(5), "slept {slept:?}");
    assert_eq!(current, 7);
}

/// A pinwheel task that opens and uses tokio sockets keeps them on its worker: their events
/// wake it on that thread, with no task queued from another thread meanwhile.
#[test]
fn a_session_on_tokio_sockets_has_no_cross_thread_wakes() {
    let rt = rt_with_tokio(2);
    let (remote_wakes, same_thread) = rt
        .block_on(on_worker_1(&rt, async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server_thread = Arc::new(std::sync::Mutex::new(None));
            let st = server_thread.clone();
            let server = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                *st.lock().unwrap() = Some(me());
                let mut buf = [0u8; 64];
                loop {
                    match s.read(&mut buf).await.unwrap() {
                        0 => return,
                        n => s.write_all(&buf[..n]).await.unwrap(),
                    }
                }
            });
            let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
            // Warm up, then count the remote wakes of this worker over 200 round trips.
            c.write_all(b"warm").await.unwrap();
            let mut back = [0u8; 4];
            c.read_exact(&mut back).await.unwrap();
            let before = pinwheel::Handle::current().metrics().worker(1).remote_wakes;
            for i in 0..200u8 {
                c.write_all(&[i; 16]).await.unwrap();
                let mut back = [0u8; 16];
                c.read_exact(&mut back).await.unwrap();
                assert_eq!(back, [i; 16]);
                assert_eq!(pinwheel::current_worker(), Some(1));
            }
            let after = pinwheel::Handle::current().metrics().worker(1).remote_wakes;
            drop(c);
            server.await.unwrap();
            let same = *server_thread.lock().unwrap() == Some(me());
            (after - before, same)
        }))
        .unwrap();
    assert_eq!(
        remote_wakes, 0,
        "a task using tokio sockets on its worker was queued from another thread"
    );
    assert!(
        same_thread,
        "the tokio task served on the same worker thread"
    );
}

/// `compat` still works with the switch on, and polls on the calling worker's own tokio
/// context: what it spawns runs on that worker's thread.
#[test]
fn compat_runs_on_the_calling_worker() {
    let rt = rt_with_tokio(2);
    let (task, spawned) = rt
        .block_on(rt.spawn(async {
            let spawned = pinwheel::compat::compat(async { tokio::spawn(async { me() }).await })
                .await
                .unwrap();
            (me(), spawned)
        }))
        .unwrap();
    assert_eq!(task, spawned);
}

/// `Runtime::block_on`'s future (off the workers) reaches tokio too.
#[test]
fn block_on_has_a_tokio_context() {
    let rt = rt_with_tokio(2);
    let n = rt.block_on(async {
        tokio::time::sleep(Duration::from_millis(1)).await;
        tokio::spawn(async { 5 }).await.unwrap()
    });
    assert_eq!(n, 5);
}

/// Neither side starves the other: a pinwheel task that only yields does not hold off a tokio
/// timer on its worker, and a tokio task that only yields does not hold off a pinwheel timer.
#[test]
fn tokio_and_pinwheel_take_turns() {
    let rt = rt_with_tokio(1);
    rt.block_on(rt.spawn(async {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let spinner = pinwheel::spawn(async move {
            while !s.load(SeqCst) {
                pinwheel::yield_now().await;
            }
        });
        tokio::time::sleep(Duration::from_millis(2)).await;
        stop.store(true, SeqCst);
        spinner.await.unwrap();

        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let spinner = tokio::spawn(async move {
            while !s.load(SeqCst) {
                tokio::task::yield_now().await;
            }
        });
        pinwheel::time::sleep(Duration::from_millis(2)).await;
        stop.store(true, SeqCst);
        spinner.await.unwrap();
    }))
    .unwrap();
}

/// A runtime with tokio tasks still pending (a tokio sleep of an hour, a tokio socket waiting)
/// shuts down at once; the tokio tasks are dropped with their worker's tokio runtime.
#[test]
fn shutdown_with_tokio_work_pending() {
    struct Dropped(Arc<AtomicBool>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, SeqCst);
        }
    }
    let dropped = Arc::new(AtomicBool::new(false));
    let rt = rt_with_tokio(2);
    let d = dropped.clone();
    rt.block_on(rt.spawn(async move {
        let guard = Dropped(d);
        tokio::spawn(async move {
            let _guard = guard;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        tokio::spawn(async move {
            let _ = listener.accept().await;
        });
    }))
    .unwrap();
    drop(rt);
    assert!(dropped.load(SeqCst), "the pending tokio task was dropped");
}

/// The switch needs worker threads: on a current-thread runtime it is a clear error.
#[test]
fn the_switch_on_a_current_thread_runtime_is_an_error() {
    let err = pinwheel::Builder::new_current_thread()
        .tokio_context(true)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("new_multi_thread"), "{err}");
}

/// The macros take the switch: a test with `tokio_context = true` is multi-thread, and its
/// body and its tasks reach tokio.
#[pinwheel::test(tokio_context = true)]
async fn the_test_macro_takes_the_switch() {
    assert_eq!(pinwheel::Handle::current().worker_threads(), 2);
    tokio::time::sleep(Duration::from_millis(1)).await;
    let on_worker = pinwheel::spawn(async {
        let (a, b) = (me(), tokio::spawn(async { me() }).await.unwrap());
        a == b
    })
    .await
    .unwrap();
    assert!(on_worker);
}

/// A plain accept loop on tokio's sockets that `pinwheel::spawn`s each session: a session is
/// woken by the tokio context of the worker its socket was registered with, which binds it
/// there; it then runs on that worker only, though the other worker steals what it can.
#[test]
fn sessions_on_tokio_sockets_stay_on_the_worker_of_their_events() {
    use std::collections::BTreeSet;
    use std::io::{Read, Write};
    const CONNS: usize = 8;
    const ROUNDS: usize = 200;
    let rt = rt_with_tokio(2);
    let seen: Arc<std::sync::Mutex<Vec<BTreeSet<usize>>>> = Arc::default();
    let seen2 = seen.clone();
    let addr = rt
        .block_on(rt.spawn(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            drop(pinwheel::spawn(async move {
                for _ in 0..CONNS {
                    let (mut s, _) = listener.accept().await.unwrap();
                    let seen = seen2.clone();
                    drop(pinwheel::spawn(async move {
                        let mut workers = BTreeSet::new();
                        let mut buf = [0u8; 64];
                        // The session binds at its first wake by tokio, which may come a few
                        // reads in (a read finding data waits for no wake): only the second
                        // half of its reads is recorded.
                        let mut reads = 0;
                        loop {
                            match s.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    reads += 1;
                                    if reads > ROUNDS / 2 {
                                        workers.insert(pinwheel::current_worker().unwrap());
                                    }
                                    s.write_all(&buf[..n]).await.unwrap();
                                }
                            }
                        }
                        seen.lock().unwrap().push(workers);
                    }));
                }
            }));
            addr
        }))
        .unwrap();
    let clients: Vec<_> = (0..CONNS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                c.set_nodelay(true).unwrap();
                let mut back = [0u8; 16];
                for i in 0..ROUNDS {
                    c.write_all(&[i as u8; 16]).unwrap();
                    c.read_exact(&mut back).unwrap();
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    pinwheel_tests::wait_until(Duration::from_secs(30), "every session to end", || {
        seen.lock().unwrap().len() == CONNS
    });
    for (i, workers) in seen.lock().unwrap().iter().enumerate() {
        assert_eq!(
            workers.len(),
            1,
            "session {i} ran on workers {workers:?}: its tokio socket's events arrive on one worker"
        );
    }
}

/// A tiny HTTP/1.1 server on std threads (keep-alive, `hello` to every request), so the
/// client under test is the only async code.
fn http_hello_server() -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                loop {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    buf.drain(..end);
                    let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
                    if conn.write_all(reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// reqwest, a tokio-based client that opens its own sockets, used from pinwheel tasks with
/// no `compat`: requests, a refused connection (reqwest's error, no hang), and a timeout.
#[test]
fn reqwest_runs_natively_on_the_workers_tokio_contexts() {
    let addr = http_hello_server();
    let rt = rt_with_tokio(2);
    rt.block_on(rt.spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        for _ in 0..20 {
            let body = client
                .get(format!("http://{addr}/"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert_eq!(body, "hello");
        }
        let refused = client.get("http://127.0.0.1:1/").send().await;
        assert!(refused.unwrap_err().is_connect());
        // A request to a server that never answers ends at reqwest's timeout (tokio's timer on
        // this worker), with reqwest's error.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let silent_addr = silent.local_addr().unwrap();
        let err = client
            .get(format!("http://{silent_addr}/"))
            .timeout(Duration::from_millis(50))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
        drop(silent);
    }))
    .unwrap();
}

/// pinwheel's timers fire on a worker that sleeps in tokio's driver with nothing else to do
/// (its next timer is a timerfd in its own poller): a chain of sleeps, each armed on an idle
/// worker, all end.
#[test]
fn pinwheel_timers_wake_a_worker_sleeping_in_tokio() {
    let rt = rt_with_tokio(2);
    let (tx, rx) = std::sync::mpsc::channel();
    let _task = rt.spawn(async move {
        for i in 1..=20u64 {
            pinwheel::time::sleep(Duration::from_micros(200 * i)).await;
        }
        let start = pinwheel::time::Instant::now();
        pinwheel::time::sleep(Duration::from_millis(5)).await;
        tx.send(start.elapsed()).unwrap();
    });
    let slept = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the sleeps ended: the worker's sleep in tokio's driver woke for its timers");
    assert!(slept >= Duration::from_millis(5), "{slept:?}");
}

/// Inside a tokio task on a worker: not a pinwheel task (no current worker), but
/// `pinwheel::spawn` works (the task is queued on that worker; stealable, it may be stolen).
#[test]
fn pinwheel_spawn_from_a_tokio_task_works() {
    let rt = rt_with_tokio(2);
    let (outside, spawned_on) = rt
        .block_on(rt.spawn(async {
            tokio::spawn(async {
                let outside = pinwheel::current_worker();
                let spawned = pinwheel::spawn(async { pinwheel::current_worker() })
                    .await
                    .unwrap();
                (outside, spawned)
            })
            .await
            .unwrap()
        }))
        .unwrap();
    assert_eq!(outside, None);
    assert!(matches!(spawned_on, Some(0 | 1)), "{spawned_on:?}");
}
