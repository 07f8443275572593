//! I/O affinity: a stealable task that registers a socket with a worker's poller is bound to
//! that worker, so a plain accept loop that `spawn`s each session keeps each connection's
//! events and code on one thread (as `net::serve` does), without being rewritten.

use std::collections::BTreeSet;
use std::future::Future;
use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use pinwheel::net::{TcpListener, TcpStream};
use pinwheel_tests::rt;

/// Sessions of a plain accept loop, each recording the worker it runs on after every read
/// that waited for an event: every session sees one worker only, though the other worker is
/// idle and steals what it can (without the binding, a session woken on one worker is often
/// stolen by the other). (A read that finds its data needs no event: an accepted socket's
/// reads are speculative until one would block, and it registers then; see
/// `net::TcpStream`.)
#[test]
fn spawned_sessions_stay_on_the_worker_of_their_events() {
    const CONNS: usize = 8;
    const ROUNDS: usize = 200;
    let rt = rt(2);
    let seen: Arc<Mutex<Vec<BTreeSet<usize>>>> = Arc::default();
    // Sessions that have waited for an event (so are registered and bound).
    let waited_once = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let addr = rt.block_on({
        let seen = seen.clone();
        let waited_once = waited_once.clone();
        async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            drop(pinwheel::spawn(async move {
                for _ in 0..CONNS {
                    let (s, _) = listener.accept().await.unwrap();
                    let (seen, waited_once) = (seen.clone(), waited_once.clone());
                    drop(pinwheel::spawn(async move {
                        let mut workers = BTreeSet::new();
                        let mut buf = [0u8; 64];
                        let mut ever_waited = false;
                        loop {
                            let mut waited = false;
                            let r = {
                                let mut read = std::pin::pin!(s.read(&mut buf));
                                std::future::poll_fn(|cx| {
                                    let p = read.as_mut().poll(cx);
                                    if p.is_pending() {
                                        waited = true;
                                        if !ever_waited {
                                            ever_waited = true;
                                            waited_once.fetch_add(1, Ordering::SeqCst);
                                        }
                                    }
                                    p
                                })
                                .await
                            };
                            match r {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if waited {
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
        }
    });
    // Every client makes its first exchange, then waits until every session has waited for
    // its next request (so is registered and bound, and each records a worker) before any
    // goes on: all the sessions are alive and bound at once.
    let clients: Vec<_> = (0..CONNS)
        .map(|_| {
            let waited_once = waited_once.clone();
            std::thread::spawn(move || {
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                c.set_nodelay(true).unwrap();
                let mut back = [0u8; 16];
                for i in 0..ROUNDS {
                    if i == 1 {
                        pinwheel_tests::wait_until(
                            std::time::Duration::from_secs(30),
                            "every session to wait for its client's next request",
                            || waited_once.load(Ordering::SeqCst) == CONNS,
                        );
                    }
                    c.write_all(&[i as u8; 16]).unwrap();
                    c.read_exact(&mut back).unwrap();
                    assert_eq!(back, [i as u8; 16]);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    pinwheel_tests::wait_until(
        std::time::Duration::from_secs(30),
        "every session to see its client close",
        || seen.lock().unwrap().len() == CONNS,
    );
    let seen = seen.lock().unwrap();
    for (i, workers) in seen.iter().enumerate() {
        assert_eq!(
            workers.len(),
            1,
            "session {i} ran on workers {workers:?}: its events arrive on one worker, and it must run there"
        );
    }
    // The sessions, all alive at once, spread over both workers as net::serve's would.
    let on_0 = seen.iter().filter(|w| w.contains(&0)).count();
    assert!(
        (2..=CONNS - 2).contains(&on_0),
        "{on_0} of {CONNS} sessions on worker 0: bound tasks spread over the workers"
    );
}

/// A task bound to a worker by the socket it connected is woken there from any thread: a
/// wake from outside the workers does not send it to the shared injector, where either worker
/// could take it.
#[test]
fn a_task_bound_by_its_socket_is_woken_on_its_worker_from_any_thread() {
    let rt = rt(2);
    for _ in 0..20 {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (where_tx, where_rx) = std::sync::mpsc::channel();
        let task = rt.spawn(async move {
            let (_listener, conn) = bind_and_connect().await;
            let bound = pinwheel::current_worker().unwrap();
            where_tx.send(bound).unwrap();
            rx.await.unwrap();
            drop(conn);
            (bound, pinwheel::current_worker().unwrap())
        });
        // The task is bound (and waiting) once it says where: wake it from this thread.
        where_rx.recv().unwrap();
        tx.send(()).unwrap();
        let (bound, woken_on) = rt.block_on(task).unwrap();
        assert_eq!(
            bound, woken_on,
            "a task that connected a socket on worker {bound} was woken on worker {woken_on}"
        );
    }
}

/// A wake that sends a bound task to its own worker's inbox is counted once, as a remote wake
/// of the worker that receives it: the waking worker queued nothing of its own, so its
/// `local_wakes` stay where they were (they counted it too, and `local_wakes + remote_wakes`
/// summed over the workers came to more than the tasks queued).
#[test]
fn a_bound_task_woken_from_another_worker_counts_as_that_workers_remote_wake() {
    const ROUNDS: usize = 20;
    let rt = rt(2);
    let mut through_inbox = 0;
    for _ in 0..ROUNDS {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (where_tx, where_rx) = std::sync::mpsc::channel();
        let task = rt.spawn(async move {
            // Bound now; without sockets, `rx` is what wakes it.
            drop(bind_and_connect().await);
            // Says where once it waits for `rx` (its waker is registered).
            let (mut rx, mut told) = (rx, false);
            std::future::poll_fn(|cx| {
                let p = std::pin::Pin::new(&mut rx).poll(cx);
                if p.is_pending() && !told {
                    told = true;
                    where_tx.send(pinwheel::current_worker().unwrap()).unwrap();
                }
                p
            })
            .await
            .unwrap();
        });
        let bound = where_rx.recv().unwrap();
        let other = 1 - bound;
        let before = rt.metrics();
        // Woken by a task on the other worker (queued there from outside: a remote wake).
        rt.block_on(spawn_on(&rt, other, async move { tx.send(()).unwrap() }))
            .unwrap();
        rt.block_on(task).unwrap();
        let after = rt.metrics();
        assert_eq!(
            after.worker(other).local_wakes,
            before.worker(other).local_wakes,
            "worker {other} queued no task of its own: it woke a task bound to worker {bound}, which went to that worker's inbox"
        );
        // (A wake of the task by anything else first, a late event of its dropped sockets,
        // leaves `tx.send` nothing to queue.)
        if after.worker(bound).remote_wakes > before.worker(bound).remote_wakes {
            through_inbox += 1;
        }
    }
    assert!(
        through_inbox > 0,
        "in none of {ROUNDS} rounds did the wake go through the bound worker's inbox: the test tested nothing"
    );
}

/// An accepted stream registers where it is first used: accepted in one task and used in a
/// task on another thread (or in `block_on`), it still reads and writes, and a stream never
/// used is closed without ever being registered.
#[test]
fn an_accepted_stream_registers_where_it_is_first_used() {
    let rt = rt(2);
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            // One connection never used by the server, then one echoed.
            let unused = std::net::TcpStream::connect(addr).unwrap();
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.write_all(b"ping").unwrap();
            let mut back = [0u8; 4];
            c.read_exact(&mut back).unwrap();
            let mut rest = Vec::new();
            let mut unused = unused;
            unused.read_to_end(&mut rest).unwrap();
            (back, rest)
        });
        let (never_used, _) = listener.accept().await.unwrap();
        drop(never_used);
        // Accepted here (inside block_on, off the workers), used in a task.
        let (s, _) = listener.accept().await.unwrap();
        let echoed = pinwheel::spawn(async move {
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
        });
        echoed.await.unwrap();
        let (back, rest) = pinwheel::spawn_blocking(move || client.join().unwrap())
            .await
            .unwrap();
        assert_eq!(&back, b"ping");
        assert!(
            rest.is_empty(),
            "the unused connection was closed with no data"
        );
    });
}

/// Bound tasks are stolen when their worker is overloaded: worker 0 wakes 600 tasks (about
/// half of them bound to it) in one poll and keeps running; past its backlog limit of 256 its
/// own go to its stealable queues, and worker 1 steals some (without the spill no task is
/// stealable then, and the waking task waits for worker 1's first steal).
#[test]
fn bound_tasks_spill_to_an_idle_worker_when_theirs_is_overloaded() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::time::{Duration, Instant};
    const TASKS: usize = 600;
    let rt = rt(2);
    let bound = Arc::new(AtomicUsize::new(0));
    let notify = Arc::new(tokio::sync::Notify::new());
    let (bound2, notify2) = (bound.clone(), notify.clone());
    let joins = rt
        .block_on(spawn_on(&rt, 0, async move {
            (0..TASKS)
                .map(|_| {
                    let (bound, notify) = (bound2.clone(), notify2.clone());
                    pinwheel::spawn(async move {
                        let sock = pinwheel::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                        let woken = notify.notified();
                        let mut woken = std::pin::pin!(woken);
                        woken.as_mut().enable();
                        bound.fetch_add(1, SeqCst);
                        woken.await;
                        drop(sock);
                    })
                })
                .collect::<Vec<_>>()
        }))
        .unwrap();
    pinwheel_tests::wait_until(Duration::from_secs(30), "every task to bind", || {
        bound.load(SeqCst) == TASKS
    });
    let m = rt.metrics();
    let (on_0, on_1) = (m.worker(0).bound_tasks, m.worker(1).bound_tasks);
    assert_eq!(on_0 + on_1, TASKS as u64, "every task is bound to a worker");
    assert!(
        on_0.abs_diff(on_1) <= 4,
        "bound tasks spread over the workers: {on_0} and {on_1}"
    );
    let steals_before = m.worker(1).steals;
    let waker = {
        let rt_metrics = rt.handle().clone();
        spawn_on(&rt, 0, async move {
            notify.notify_waiters();
            // Stay on worker 0 (overloaded with its woken tasks) until worker 1 steals one.
            let limit = Instant::now() + Duration::from_secs(30);
            while rt_metrics.metrics().worker(1).steals == steals_before && Instant::now() < limit {
                std::hint::spin_loop();
            }
        })
    };
    rt.block_on(waker).unwrap();
    assert!(
        rt.metrics().worker(1).steals > steals_before,
        "worker 1 stole none of worker 0's {on_0} woken bound tasks: past 256 queued they spill to its stealable queues"
    );
    for j in joins {
        rt.block_on(j).unwrap();
    }
    // A task is released just after its output is handed over: wait for the last ones.
    pinwheel_tests::wait_until(
        Duration::from_secs(30),
        "every completed bound task to count down",
        || {
            let m = rt.metrics();
            (m.worker(0).bound_tasks, m.worker(1).bound_tasks) == (0, 0)
        },
    );
}

/// A listener on a free loopback port and a stream connected to it, both registered with
/// the poller of the worker this runs on (which binds the calling task there).
async fn bind_and_connect() -> (TcpListener, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let conn = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    (listener, conn)
}

/// Spawns `f` on worker `i` of `rt`.
fn spawn_on<F>(rt: &pinwheel::Runtime, i: usize, f: F) -> pinwheel::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let _entered = rt.enter();
    pinwheel::spawn_on(pinwheel::ThreadMask::one(i), f)
}

/// Speculative I/O: an accepted socket's calls are made at once until one would block, and it
/// registers (binding its task) only then. A session whose request is already there reads
/// it, answers, and is still unbound; its next read waits, registers and binds the task,
/// and the client's next bytes (sent after that) wake it.
#[test]
fn an_accepted_socket_registers_only_when_a_call_would_block() {
    let rt = rt(2);
    let bound = |rt: &pinwheel::Runtime| {
        let m = rt.metrics();
        m.worker(0).bound_tasks + m.worker(1).bound_tasks
    };
    let listener = rt.block_on(async { TcpListener::bind("127.0.0.1:0").await.unwrap() });
    let addr = listener.local_addr().unwrap();
    // The request is sent before the session exists.
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(b"ping").unwrap();
    let (answered_tx, answered_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let session = rt.spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        pinwheel_tests::pong_then_read_after_go(&s, answered_tx, async { go_rx.await.unwrap() })
            .await
    });
    answered_rx.recv().unwrap();
    let mut back = [0u8; 4];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"pong");
    assert_eq!(
        bound(&rt),
        0,
        "a session whose calls never blocked registered its socket (and bound its task)"
    );
    go_tx.send(()).unwrap();
    pinwheel_tests::wait_until(
        std::time::Duration::from_secs(30),
        "the session's second read to wait, register and bind it",
        || bound(&rt) == 1,
    );
    c.write_all(b"more").unwrap();
    assert_eq!(rt.block_on(session).unwrap(), b"more");
}
