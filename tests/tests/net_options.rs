//! tokio's socket options and odds and ends on pinwheel's sockets: UDP broadcast, TTL, TOS,
//! multicast settings, `peek_sender`; TCP linger, TTL, `peek` (on the stream and its read
//! halves), `reunite`, `TCP_DEFER_ACCEPT` on a listener; Unix `bind_addr`, `connect_addr`, `into_std`.

use std::time::Duration;

use pinwheel::net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};

#[pinwheel::test]
async fn udp_options_round_trip_and_peek_sender() -> std::io::Result<()> {
    let a = UdpSocket::bind("127.0.0.1:0").await?;
    a.set_broadcast(true)?;
    assert!(a.broadcast()?);
    a.set_ttl(17)?;
    assert_eq!(a.ttl()?, 17);
    a.set_tos_v4(0x10)?;
    assert_eq!(a.tos_v4()?, 0x10);
    a.set_multicast_loop_v4(false)?;
    assert!(!a.multicast_loop_v4()?);
    a.set_multicast_ttl_v4(3)?;
    assert_eq!(a.multicast_ttl_v4()?, 3);
    assert!(a.take_error()?.is_none());
    let b = UdpSocket::bind("127.0.0.1:0").await?;
    a.send_to(b"hi", b.local_addr()?).await?;
    assert_eq!(b.peek_sender().await?, a.local_addr()?);
    // Still queued: a receive takes it.
    let mut buf = [0u8; 4];
    let (n, from) = b.recv_from(&mut buf).await?;
    assert_eq!((n, from), (2, a.local_addr()?));
    Ok(())
}

#[pinwheel::test]
async fn tcp_defer_accept_hands_over_a_connection_with_its_first_bytes() -> std::io::Result<()> {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    assert_eq!(listener.defer_accept()?, None);
    // Whole seconds, rounded up; the kernel keeps a count of retransmissions, so it reads back
    // at least what was asked.
    listener.set_defer_accept(Some(Duration::from_millis(1500)))?;
    let kept = listener.defer_accept()?.expect("TCP_DEFER_ACCEPT is on");
    assert!(kept >= Duration::from_secs(2), "read back {kept:?}");
    let addr = listener.local_addr()?;
    let client = std::thread::spawn(move || -> std::io::Result<Vec<u8>> {
        let mut c = std::net::TcpStream::connect(addr)?;
        c.write_all(b"first")?;
        let mut answer = Vec::new();
        c.read_to_end(&mut answer)?;
        Ok(answer)
    });
    let (s, _) = listener.accept().await?;
    // Handed over with its first bytes: a read that does not wait finds them.
    let mut buf = [0u8; 5];
    assert_eq!(s.try_read(&mut buf)?, 5);
    assert_eq!(&buf, b"first");
    s.write_all(b"ok").await?;
    drop(s);
    assert_eq!(client.join().unwrap()?, b"ok");
    listener.set_defer_accept(None)?;
    assert_eq!(listener.defer_accept()?, None);
    Ok(())
}

#[pinwheel::test]
async fn tcp_linger_ttl_peek_and_reunite() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let accepted = pinwheel::spawn(async move { listener.accept().await.map(|(s, _)| s) });
    let c = TcpStream::connect(addr).await?;
    let s = accepted.await.unwrap()?;
    c.set_linger(Some(Duration::from_secs(2)))?;
    assert_eq!(c.linger()?, Some(Duration::from_secs(2)));
    c.set_zero_linger()?;
    assert_eq!(c.linger()?, Some(Duration::ZERO));
    c.set_linger(None)?;
    c.set_ttl(33)?;
    assert_eq!(c.ttl()?, 33);
    c.set_nodelay(true)?;
    assert!(c.nodelay()?);
    c.write_all(b"peek").await?;
    let mut buf = [0u8; 4];
    assert_eq!(s.peek(&mut buf).await?, 4);
    let (r, _w) = s.split();
    assert_eq!(r.peek(&mut buf).await?, 4);
    let (r, w) = s.into_split();
    assert_eq!(r.peek(&mut buf).await?, 4);
    // Halves of one stream reunite; of two, they come back in the error.
    let s = r.reunite(w).expect("the same stream");
    let mut got = [0u8; 4];
    s.read_exact(&mut got).await?;
    assert_eq!(&got, b"peek");
    let (r1, w1) = s.into_split();
    let (r2, w2) = c.into_split();
    let err = r1.reunite(w2).unwrap_err();
    assert!(err.to_string().contains("not from the same socket"));
    let pinwheel::net::ReuniteError(r1, w2) = err;
    let _s = w1.reunite(r1).expect("back together");
    let _c = r2.reunite(w2).expect("back together");
    Ok(())
}

#[pinwheel::test]
async fn unix_addresses_and_into_std() -> std::io::Result<()> {
    let dir = std::env::temp_dir().join(format!("pinwheel-opts-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("s");
    let _ = std::fs::remove_file(&path);
    let addr = std::os::unix::net::SocketAddr::from_pathname(&path)?;
    let listener = UnixListener::bind_addr(&addr)?;
    let accepted = pinwheel::spawn(async move { listener.accept().await.map(|(s, _)| s) });
    let c = UnixStream::connect_addr(&addr).await?;
    let s = accepted.await.unwrap()?;
    c.write_all(b"x").await?;
    let mut std_s = s.into_std()?;
    std_s.set_nonblocking(false)?;
    let mut b = [0u8; 1];
    std::io::Read::read_exact(&mut std_s, &mut b)?;
    assert_eq!(&b, b"x");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// A listener's `TCP_NODELAY` is what the sockets it accepts start with (Linux copies it):
/// `accept`, `poll_accept` and `net::serve` streams report it, and the socket really has it;
/// turning it off on one stream reaches the socket. A listener without it gives streams
/// without it.
#[pinwheel::test]
async fn tcp_nodelay_of_the_listener_is_the_accepted_streams() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    assert!(!listener.nodelay()?);
    listener.set_nodelay(true)?;
    assert!(listener.nodelay()?);
    let addr = listener.local_addr()?;
    let _c1 = TcpStream::connect(addr).await?;
    let (s, _) = listener.accept().await?;
    assert!(s.nodelay()?);
    s.set_nodelay(true)?;
    assert!(s.nodelay()?);
    // The socket itself, not a cached answer.
    assert!(s.into_std()?.nodelay()?);
    let _c2 = TcpStream::connect(addr).await?;
    let (s, _) = std::future::poll_fn(|cx| listener.poll_accept(cx)).await?;
    assert!(s.nodelay()?);
    s.set_nodelay(false)?;
    assert!(!s.nodelay()?);
    assert!(!s.into_std()?.nodelay()?);

    let plain = TcpListener::bind("127.0.0.1:0").await?;
    let _c3 = TcpStream::connect(plain.local_addr()?).await?;
    let (s, _) = plain.accept().await?;
    assert!(!s.nodelay()?);
    s.set_nodelay(true)?;
    assert!(s.nodelay()?);
    assert!(s.into_std()?.nodelay()?);
    Ok(())
}

/// The same through `net::serve`: sessions' streams have the listener's `TCP_NODELAY`.
#[test]
fn tcp_nodelay_reaches_served_sessions() {
    let rt = pinwheel_tests::rt(2);
    rt.block_on(async {
        for on in [true, false] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.set_nodelay(on).unwrap();
            let addr = listener.local_addr().unwrap();
            let server = pinwheel::net::Server::new();
            let (tx, rx) = std::sync::mpsc::channel();
            let tx = std::sync::Mutex::new(tx);
            let s = server.clone();
            let serving = pinwheel::spawn(async move {
                s.serve(listener, move |stream: TcpStream, _| {
                    let reported = stream.nodelay().unwrap();
                    let real = stream.into_std().unwrap().nodelay().unwrap();
                    tx.lock().unwrap().send((reported, real)).unwrap();
                    async {}
                })
                .await
            });
            let _c = TcpStream::connect(addr).await.unwrap();
            let got = pinwheel::spawn_blocking(move || rx.recv().unwrap())
                .await
                .unwrap();
            assert_eq!(got, (on, on));
            server.stop();
            serving.await.unwrap().unwrap();
        }
    });
}
