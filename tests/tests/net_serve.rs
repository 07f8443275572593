//! `net::serve`: sessions pinned to their worker (may hold `Rc`), every balance mode, locality
//! measured through metrics, stop and drain.

use std::cell::RefCell;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pinwheel::net::{Balance, Server, TcpListener, TcpSocket, TcpStream};
use pinwheel::{Runtime, ThreadMask};
use pinwheel_tests::rt;

type Seen = Arc<Mutex<Vec<HashSet<Option<usize>>>>>;

/// An echo session that records every worker it was polled on, holding `Rc` state.
fn echo_factory(
    seen: Seen,
) -> impl Fn(TcpStream, SocketAddr) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>
+ Send
+ Sync
+ 'static {
    move |stream: TcpStream, _peer| {
        let seen = seen.clone();
        Box::pin(async move {
            let threads = Rc::new(RefCell::new(HashSet::new()));
            let mut buf = [0u8; 256];
            loop {
                threads.borrow_mut().insert(pinwheel::current_worker());
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if stream.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
            seen.lock().unwrap().push(threads.borrow().clone());
        })
    }
}

/// Clients on plain threads: connect all, exchange `rounds` messages each as a warm-up (the
/// server finishes its own set-up meanwhile: shard listeners, work-list handlers), call
/// `between`, then exchange `rounds` more: the measured phase.
fn clients(addr: SocketAddr, n: usize, rounds: usize, between: impl FnOnce()) {
    let conns: Vec<std::net::TcpStream> = (0..n)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    let exchange = |conns: Vec<std::net::TcpStream>| -> Vec<std::net::TcpStream> {
        let hs: Vec<_> = conns
            .into_iter()
            .map(|mut c| {
                std::thread::spawn(move || {
                    for i in 0..rounds {
                        let msg = format!("round {i}");
                        c.write_all(msg.as_bytes()).unwrap();
                        let mut b = vec![0u8; msg.len()];
                        c.read_exact(&mut b).unwrap();
                        assert_eq!(b, msg.as_bytes());
                    }
                    c
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    };
    let conns = exchange(conns);
    between();
    drop(exchange(conns));
}

/// Lets the last wakes of the server's set-up land before the measured phase: an empty task
/// on each worker, twice over. The first round cannot run on a worker until that worker has
/// finished whatever poll it was in (so every set-up wake has been sent: a shard's "I am
/// registered", `mark_ready` waking the accept loops); the second cannot run until each
/// worker has taken in its inbox (so each such wake is counted). Without it a worker kept off
/// the CPU through the warm-up (CI's parallel tests on two cores) delivers one of them during
/// the exchange, and the exchange looks as if it caused a remote wake.
fn quiesce(rt: &Runtime) {
    for _ in 0..2 {
        for i in 0..rt.worker_threads() {
            rt.block_on(rt.handle().spawn_on(ThreadMask::one(i), async {}))
                .unwrap();
        }
    }
}

fn run_mode(
    balance: Balance,
    listener: impl FnOnce(&Runtime) -> TcpListener,
) -> (Vec<HashSet<Option<usize>>>, u64) {
    let rt = rt(2);
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let listener = listener(&rt);
    let addr = listener.local_addr().unwrap();
    let server = Server::new();
    let s2 = server.clone();
    let f = echo_factory(seen.clone());
    let running = rt.spawn(async move { s2.serve_with(listener, balance, f).await });
    let mut remote_during_exchange = 0;
    let rt_ref = &rt;
    clients(addr, 8, 50, || {
        // From here on, the exchange: count the remote wakes it causes.
        quiesce(rt_ref);
        remote_during_exchange = rt_ref.metrics().total().remote_wakes;
    });
    remote_during_exchange = rt.metrics().total().remote_wakes - remote_during_exchange;
    server.stop();
    rt.block_on(rt.spawn(async move { assert!(server.drain(Duration::from_secs(30)).await) }))
        .unwrap();
    rt.block_on(running).unwrap().unwrap();
    let seen = seen.lock().unwrap().clone();
    (seen, remote_during_exchange)
}

fn plain_listener(rt: &Runtime) -> TcpListener {
    rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap()
}

#[test]
fn net_serve_round_robin_pins_sessions_and_spreads_them() {
    let (seen, remote) = run_mode(Balance::RoundRobin, plain_listener);
    assert_eq!(seen.len(), 8);
    assert!(
        seen.iter().all(|s| s.len() == 1),
        "a session ran on two threads: {seen:?}"
    );
    let used: HashSet<_> = seen.iter().flat_map(|s| s.iter().copied()).collect();
    assert_eq!(used.len(), 2, "round robin used {used:?}");
    assert_eq!(remote, 0, "the echo exchange caused {remote} remote wakes");
}

#[test]
fn net_serve_least_loaded_and_local() {
    for balance in [Balance::LeastLoaded, Balance::Local] {
        let (seen, remote) = run_mode(balance, plain_listener);
        assert_eq!(seen.len(), 8);
        assert!(seen.iter().all(|s| s.len() == 1), "{balance:?}: {seen:?}");
        assert_eq!(
            remote, 0,
            "{balance:?}: {remote} remote wakes during the exchange"
        );
        if balance == Balance::LeastLoaded {
            let used: HashSet<_> = seen.iter().flat_map(|s| s.iter().copied()).collect();
            assert_eq!(used.len(), 2, "least loaded used {used:?}");
        }
    }
}

#[test]
fn net_serve_shards() {
    let (seen, remote) = run_mode(Balance::Shards, |rt| {
        rt.block_on(async {
            let s = TcpSocket::new_v4().unwrap();
            s.set_reuseaddr(true).unwrap();
            s.set_reuseport(true).unwrap();
            s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            s.listen(1024).unwrap()
        })
    });
    assert_eq!(seen.len(), 8);
    assert!(seen.iter().all(|s| s.len() == 1), "{seen:?}");
    assert_eq!(remote, 0);
}

#[test]
fn net_serve_shards_needs_reuseport() {
    let rt = rt(2);
    let err = rt
        .block_on(rt.spawn(async {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            pinwheel::net::serve_with(l, Balance::Shards, |_s, _a| async {}).await
        }))
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("set_reuseport"), "{err}");
}

#[test]
fn net_serve_stop_and_drain_with_deadline() {
    let rt = rt(2);
    let server = Server::new();
    let (addr, running) = {
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let s2 = server.clone();
        // Sessions that wait for the client to close.
        let running = rt.spawn(async move {
            s2.serve(listener, |s: TcpStream, _| async move {
                let mut b = [0u8; 1];
                let _ = s.read(&mut b).await;
            })
            .await
        });
        (addr, running)
    };
    let c = std::net::TcpStream::connect(addr).unwrap();
    // Wait (bounded) for the session to be live.
    pinwheel_tests::wait_until(Duration::from_secs(30), "the session live", || {
        server.live_sessions() > 0
    });
    server.stop();
    rt.block_on(running).unwrap().unwrap();
    let s2 = server.clone();
    // The session is still live: a short drain gives up.
    assert!(
        !rt.block_on(rt.spawn(async move { s2.drain(Duration::from_millis(20)).await }))
            .unwrap()
    );
    drop(c);
    let s3 = server.clone();
    assert!(
        rt.block_on(rt.spawn(async move { s3.drain(Duration::from_secs(30)).await }))
            .unwrap()
    );
    assert_eq!(server.live_sessions(), 0);
}

#[test]
fn an_idle_server_does_not_wake_its_workers() {
    let rt = pinwheel::Builder::new().worker_threads(2).build().unwrap();
    let server = pinwheel::net::Server::new();
    let s = server.clone();
    let serving = rt.block_on(async move {
        let l = pinwheel::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap();
        let h = pinwheel::spawn(async move { s.serve(l, |_s, _| async {}).await });
        Some(h)
    });
    let serving = serving.unwrap();
    // Wait (boundedly) for the accept loop to start and the workers to go to sleep: two
    // looks 20 ms apart that see no loop turn.
    let start = std::time::Instant::now();
    let mut before = rt.metrics().total().loop_turns;
    loop {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let now = rt.metrics().total().loop_turns;
        if now == before {
            break;
        }
        before = now;
        assert!(
            start.elapsed().as_secs() < 20,
            "the workers never went idle"
        );
    }
    // A parked accept loop has no timer: however long we wait, no worker turns.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let turns = rt.metrics().total().loop_turns - before;
    assert!(turns <= 2, "an idle server woke its workers {turns} times");
    // stop() wakes the accept loop at once.
    server.stop();
    rt.block_on(serving).unwrap().unwrap();
}

/// A listener on a free loopback port with `SO_REUSEPORT`, as `Balance::Shards` needs.
fn reuseport_listener(rt: &pinwheel::Runtime) -> pinwheel::net::TcpListener {
    rt.block_on(async {
        let s = TcpSocket::new_v4().unwrap();
        s.set_reuseaddr(true).unwrap();
        s.set_reuseport(true).unwrap();
        s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        s.listen(1024).unwrap()
    })
}

/// `Balance::Shards` binds every worker's listener before anything accepts, and says so
/// through `Server::ready`: 64 connections made right after it are spread over both workers.
#[test]
fn net_serve_shards_is_ready_before_it_accepts() {
    for on_worker in [true, false] {
        let rt = rt(2);
        let listener = reuseport_listener(&rt);
        let addr = listener.local_addr().unwrap();
        let server = Server::new();
        let s2 = server.clone();
        let serve = async move {
            s2.serve_with(
                listener,
                Balance::Shards,
                |stream: TcpStream, _| async move {
                    let me = pinwheel::current_worker().unwrap() as u8;
                    let _ = stream.write_all(&[me]).await;
                },
            )
            .await
        };
        // Started on a worker, or off the workers (inside block_on on another thread).
        let running = if on_worker {
            rt.spawn(serve)
        } else {
            let h = rt.handle().clone();
            let t = std::thread::spawn(move || h.block_on(serve));
            rt.spawn(async move {
                pinwheel::spawn_blocking(move || t.join().unwrap())
                    .await
                    .unwrap()
            })
        };
        rt.block_on(async { server.ready().await });
        let mut per_worker = [0usize; 2];
        let conns: Vec<_> = (0..64)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        for mut c in conns {
            let mut b = [0u8; 1];
            c.read_exact(&mut b).unwrap();
            per_worker[b[0] as usize] += 1;
        }
        assert!(
            per_worker[0] > 0 && per_worker[1] > 0,
            "on_worker={on_worker}: connections per worker {per_worker:?}"
        );
        server.stop();
        rt.block_on(running).unwrap().unwrap();
    }
}

/// Connections that reach the listener before `Balance::Shards` has bound its shards (here:
/// before `serve_with` is even called; they wait in its backlog) are spread over the workers
/// too, not all started on the worker that owns the listener.
#[test]
fn net_serve_shards_spreads_the_backlog_it_finds() {
    let rt = rt(2);
    let listener = reuseport_listener(&rt);
    let addr = listener.local_addr().unwrap();
    // Connected (queued in the listener's backlog) before anything serves.
    let conns: Vec<_> = (0..64)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    let server = Server::new();
    let s2 = server.clone();
    let running = rt.spawn(async move {
        s2.serve_with(
            listener,
            Balance::Shards,
            |stream: TcpStream, _| async move {
                let me = pinwheel::current_worker().unwrap() as u8;
                let _ = stream.write_all(&[me]).await;
            },
        )
        .await
    });
    let mut per_worker = [0usize; 2];
    for mut c in conns {
        let mut b = [0u8; 1];
        c.read_exact(&mut b).unwrap();
        per_worker[b[0] as usize] += 1;
    }
    assert_eq!(
        per_worker,
        [32, 32],
        "the backlog goes round-robin over the workers"
    );
    server.stop();
    rt.block_on(running).unwrap().unwrap();
}

/// A session that reads a request already there and answers at once never registers its
/// socket (speculative I/O: no `epoll_ctl`); its first read that would block registers it with
/// its worker's poller, and the reply to that read still arrives.
#[test]
fn a_session_whose_calls_never_block_registers_nothing() {
    let rt = rt(2);
    let listener = plain_listener(&rt);
    let addr = listener.local_addr().unwrap();
    let sources = |rt: &Runtime| rt.metrics().total().io_sources;
    // Connected and the request sent before the server starts: it is in the socket when the
    // session first reads.
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(b"ping").unwrap();
    let (answered_tx, answered_rx) = std::sync::mpsc::channel::<()>();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let go_rx = Arc::new(Mutex::new(Some(go_rx)));
    let (got_tx, got_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let server = Server::new();
    let s2 = server.clone();
    let running = rt.spawn(async move {
        s2.serve(listener, move |stream: TcpStream, _| {
            let (answered_tx, got_tx) = (answered_tx.clone(), got_tx.clone());
            let go_rx = go_rx.lock().unwrap().take();
            async move {
                let Some(go_rx) = go_rx else { return };
                let go = async { go_rx.await.unwrap() };
                let got = pinwheel_tests::pong_then_read_after_go(&stream, answered_tx, go).await;
                got_tx.send(got).unwrap();
            }
        })
        .await
    });
    answered_rx.recv().unwrap();
    let mut back = [0u8; 4];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"pong");
    let after_answer = sources(&rt);
    assert!(
        after_answer <= 1,
        "{after_answer} sources registered: the listener, and a session socket whose calls never blocked"
    );
    go_tx.send(()).unwrap();
    pinwheel_tests::wait_until(
        Duration::from_secs(30),
        "the session's second read to wait and register its socket",
        || sources(&rt) == after_answer + 1,
    );
    c.write_all(b"bye").unwrap();
    assert_eq!(got_rx.recv().unwrap(), b"bye");
    server.stop();
    rt.block_on(rt.spawn(async move { assert!(server.drain(Duration::from_secs(30)).await) }))
        .unwrap();
    rt.block_on(running).unwrap().unwrap();
}
