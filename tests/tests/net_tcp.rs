//! TCP over loopback: echo, many connections, errors (refused, in use, reset, closed peer),
//! sockets made off the workers, and locality of a pinned connection's events.

use std::io;
use std::net::Shutdown;
use std::time::Duration;

use pinwheel::ThreadMask;
use pinwheel::net::{TcpListener, TcpStream};
use pinwheel_tests::rt;

async fn echo_server(listener: TcpListener, conns: usize) -> io::Result<()> {
    let mut hs = Vec::new();
    for _ in 0..conns {
        let (s, _) = listener.accept().await?;
        hs.push(pinwheel::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    return io::Result::Ok(());
                }
                s.write_all(&buf[..n]).await?;
            }
        }));
    }
    for h in hs {
        h.await.unwrap()?;
    }
    Ok(())
}

#[test]
fn net_echo_many_connections() {
    let rt = rt(2);
    rt.block_on(rt.spawn(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = pinwheel::spawn(echo_server(listener, 50));
        let clients: Vec<_> = (0..50u32)
            .map(|i| {
                pinwheel::spawn(async move {
                    let c = TcpStream::connect(addr).await.unwrap();
                    c.set_nodelay(true).unwrap();
                    for round in 0..20u32 {
                        let msg = format!("client {i} round {round}");
                        c.write_all(msg.as_bytes()).await.unwrap();
                        let mut back = vec![0u8; msg.len()];
                        c.read_exact(&mut back).await.unwrap();
                        assert_eq!(back, msg.as_bytes());
                    }
                    c.shutdown().await.unwrap();
                    let mut rest = [0u8; 1];
                    assert_eq!(c.read(&mut rest).await.unwrap(), 0);
                })
            })
            .collect();
        for c in clients {
            c.await.unwrap();
        }
        server.await.unwrap().unwrap();
    }))
    .unwrap();
    assert!(rt.metrics().total().io_events > 0);
}

#[test]
fn net_large_transfer_both_ways() {
    let rt = rt(2);
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = pinwheel::spawn(echo_server(listener, 1));
        let c = TcpStream::connect(addr).await.unwrap();
        let data: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
        let (writer, reader) = (&c, &c);
        let send = async {
            writer.write_all(&data).await.unwrap();
            writer.shutdown_std(Shutdown::Write).unwrap();
        };
        let recv = async {
            let mut got = Vec::with_capacity(data.len());
            let mut buf = vec![0u8; 65536];
            loop {
                let n = reader.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            got
        };
        let got = join(send, recv).await.1;
        assert_eq!(got.len(), data.len());
        assert!(got == data);
        server.await.unwrap().unwrap();
    });
}

/// Polls two futures together (a minimal join, to keep this test free of helper crates).
async fn join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none() {
            if let std::task::Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let std::task::Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    (ra.unwrap(), rb.unwrap())
}

#[test]
fn net_connect_refused_and_bind_in_use() {
    let rt = rt(1);
    rt.block_on(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let err = TcpListener::bind(addr).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
        drop(l);
        let err = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    });
}

#[test]
fn net_peer_reset_is_an_error_and_closed_peer_never_sigpipes() {
    let rt = rt(2);
    rt.block_on(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        // Reset: the client closes with SO_LINGER 0, which sends RST.
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (server, _) = l.accept().await.unwrap();
        let raw = socket2::Socket::from(client);
        raw.set_linger(Some(Duration::ZERO)).unwrap();
        drop(raw);
        let mut buf = [0u8; 16];
        let r = server.read(&mut buf).await;
        assert!(
            matches!(&r, Err(e) if e.kind() == io::ErrorKind::ConnectionReset),
            "{r:?}"
        );

        // Closed peer: keep writing until the error shows; the process must not get SIGPIPE.
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (server, _) = l.accept().await.unwrap();
        drop(client);
        let mut failed = None;
        for _ in 0..1000 {
            if let Err(e) = server.write_all(&[0u8; 65536]).await {
                failed = Some(e);
                break;
            }
        }
        let e = failed.expect("writes to a closed peer never failed");
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ),
            "{e}"
        );
    });
}

#[test]
fn net_sockets_need_a_runtime() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = TcpListener::from_std(l).unwrap_err();
    assert!(
        err.to_string().contains("inside a pinwheel runtime"),
        "{err}"
    );
}

#[test]
fn net_try_read_write_and_readiness() {
    let rt = rt(1);
    rt.block_on(rt.spawn(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, peer) = l.accept().await.unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        let mut buf = [0u8; 8];
        assert_eq!(
            s.try_read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        c.writable().await.unwrap();
        assert_eq!(c.try_write(b"abc").unwrap(), 3);
        s.readable().await.unwrap();
        let mut got = 0;
        while got < 3 {
            match s.try_read(&mut buf[got..]) {
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => s.readable().await.unwrap(),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(&buf[..3], b"abc");
    }))
    .unwrap();
}

#[test]
fn net_pinned_connection_events_stay_on_its_worker() {
    // A listener and its connections made inside a task pinned to worker 1: their readiness
    // events are delivered by worker 1's poller and their tasks run there.
    let rt = rt(2);
    let before = rt.metrics();
    let on = rt
        .block_on(rt.handle().spawn_on(ThreadMask::one(1), async {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            let server = pinwheel::spawn_local(async move {
                let (s, _) = l.accept().await.unwrap();
                let mut buf = [0u8; 64];
                let mut seen = Vec::new();
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    seen.push(pinwheel::current_worker());
                    if n == 0 {
                        return seen;
                    }
                    s.write_all(&buf[..n]).await.unwrap();
                }
            });
            // The client from a plain thread, so only the server side lives in the runtime.
            let client = std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                for _ in 0..100 {
                    c.write_all(b"ping").unwrap();
                    let mut b = [0u8; 4];
                    c.read_exact(&mut b).unwrap();
                }
            });
            let seen = server.await.unwrap();
            client.join().unwrap();
            seen
        }))
        .unwrap();
    assert!(on.iter().all(|w| *w == Some(1)), "{on:?}");
    let after = rt.metrics();
    assert!(after.worker(1).io_events > before.worker(1).io_events);
    assert_eq!(
        after.worker(0).io_events,
        before.worker(0).io_events,
        "worker 0 saw events of worker 1's sockets"
    );
}

#[test]
fn net_split_halves_in_two_tasks() {
    let rt = rt(2);
    rt.block_on(rt.spawn(async {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = pinwheel::spawn(echo_server(l, 1));
        let c = TcpStream::connect(addr).await.unwrap();
        {
            let (r, w) = c.split();
            w.write_all(b"borrowed").await.unwrap();
            let mut b = [0u8; 8];
            r.read_exact(&mut b).await.unwrap();
            assert_eq!(&b, b"borrowed");
        }
        let (r, w) = c.into_split();
        let writer = pinwheel::spawn(async move {
            for i in 0..100u32 {
                w.write_all(&i.to_be_bytes()).await.unwrap();
            }
            // Dropping the owned write half shuts the write side: the echo server ends.
        });
        let mut got = Vec::new();
        let mut b = [0u8; 4];
        for _ in 0..100 {
            r.read_exact(&mut b).await.unwrap();
            got.push(u32::from_be_bytes(b));
        }
        writer.await.unwrap();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert_eq!(r.read(&mut b).await.unwrap(), 0);
        server.await.unwrap().unwrap();
    }))
    .unwrap();
}

#[test]
fn names_are_resolved_on_the_blocking_pool() {
    let rt = pinwheel::Builder::new().worker_threads(1).build().unwrap();
    rt.block_on(async {
        let listener = pinwheel::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let accept = pinwheel::spawn(async move { listener.accept().await.map(drop) });
        // "localhost" is a name: looked up (from /etc/hosts) on a blocking-pool thread.
        let stream =
            pinwheel::spawn(
                async move { pinwheel::net::TcpStream::connect(("localhost", port)).await },
            )
            .await
            .unwrap();
        let stream = match stream {
            Ok(s) => s,
            // A host without an IPv4 localhost entry may give ::1 first; the listener is v4.
            Err(_) => pinwheel::net::TcpStream::connect(format!("127.0.0.1:{port}"))
                .await
                .unwrap(),
        };
        accept.await.unwrap().unwrap();
        drop(stream);
        let m = pinwheel::Handle::current().metrics();
        assert!(
            m.blocking_threads() >= 1,
            "the lookup did not go through the blocking pool"
        );
        // Not an address and not HOST:PORT: a clear error, from the pool too.
        let err = pinwheel::net::TcpStream::connect("no-port-here")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no-port-here"), "{err}");
    });
}

#[test]
fn a_small_io_event_batch_still_serves_every_connection() {
    // One event per poll: many ready sockets are taken one batch at a time, none lost.
    let rt = pinwheel::Builder::new()
        .worker_threads(1)
        .io_events_per_poll(1)
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = pinwheel::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let server = pinwheel::spawn(async move {
            let mut done = Vec::new();
            for _ in 0..8 {
                let (s, _) = listener.accept().await.unwrap();
                done.push(pinwheel::spawn(async move {
                    let mut b = [0u8; 1];
                    s.read_exact(&mut b).await.unwrap();
                    s.write_all(&b).await.unwrap();
                }));
            }
            for d in done {
                d.await.unwrap();
            }
        });
        let mut clients = Vec::new();
        for i in 0..8u8 {
            let c = pinwheel::net::TcpStream::connect(addr).await.unwrap();
            c.write_all(&[i]).await.unwrap();
            clients.push((i, c));
        }
        for (i, c) in clients {
            let mut b = [0u8; 1];
            c.read_exact(&mut b).await.unwrap();
            assert_eq!(b[0], i);
        }
        server.await.unwrap();
    });
    for bad in [0, 65_537] {
        let err = pinwheel::Builder::new()
            .io_events_per_poll(bad)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("io_events_per_poll"), "{err}");
    }
}
