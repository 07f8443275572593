//! More of tokio's surface: `UnixDatagram`'s readiness and `try_*` calls, `into_std` of TCP
//! streams and listeners, `net::lookup_host`, `Handle::runtime_flavor`, `LocalSet::block_on`.

use std::io::{ErrorKind, Read, Write};

use pinwheel::net::unix::UnixDatagram;
use pinwheel::net::{TcpListener, TcpStream};
use pinwheel::{Builder, RuntimeFlavor};

#[pinwheel::test]
async fn unix_datagram_try_calls() -> std::io::Result<()> {
    let dir = std::env::temp_dir().join(format!("pinwheel-ud-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (pa, pb) = (dir.join("a"), dir.join("b"));
    let _ = (std::fs::remove_file(&pa), std::fs::remove_file(&pb));
    let a = UnixDatagram::bind(&pa)?;
    let b = UnixDatagram::bind(&pb)?;
    let mut buf = [0u8; 4];
    assert_eq!(
        b.try_recv_from(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    a.writable().await?;
    assert_eq!(a.try_send_to(b"d1", &pb)?, 2);
    assert!(
        b.ready(pinwheel::io::Interest::READABLE)
            .await?
            .is_readable()
    );
    let (n, from) = b.try_recv_from(&mut buf)?;
    assert_eq!((n, from.as_pathname()), (2, Some(pa.as_path())));
    a.connect(&pb)?;
    std::future::poll_fn(|cx| a.poll_send_ready(cx)).await?;
    assert_eq!(a.try_send(b"d2")?, 2);
    std::future::poll_fn(|cx| b.poll_recv_ready(cx)).await?;
    b.readable().await?;
    assert_eq!(b.try_recv(&mut buf)?, 2);
    assert_eq!(&buf[..2], b"d2");
    std::future::poll_fn(|cx| a.poll_send(cx, b"d3")).await?;
    assert_eq!(
        std::future::poll_fn(|cx| b.poll_recv(cx, &mut buf)).await?,
        2
    );
    std::future::poll_fn(|cx| b.poll_send_to(cx, b"d4", &pa)).await?;
    let (n, from) = std::future::poll_fn(|cx| a.poll_recv_from(cx, &mut buf)).await?;
    assert_eq!(
        (n, from.as_pathname(), &buf[..2]),
        (2, Some(pb.as_path()), &b"d4"[..])
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[pinwheel::test]
async fn into_std_and_lookup_host() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let std_listener = listener.into_std()?;
    std_listener.set_nonblocking(false)?;
    let c = TcpStream::connect(addr).await?;
    let (mut server, _) = std_listener.accept()?;
    let mut c = c.into_std()?;
    c.set_nonblocking(false)?;
    c.write_all(b"z")?;
    let mut b = [0u8; 1];
    server.read_exact(&mut b)?;
    assert_eq!(&b, b"z");
    let found: Vec<_> = pinwheel::net::lookup_host(("127.0.0.1", 80))
        .await?
        .collect();
    assert_eq!(found, ["127.0.0.1:80".parse().unwrap()]);
    assert!(pinwheel::net::lookup_host("no port here").await.is_err());
    Ok(())
}

#[test]
fn runtime_flavor_and_local_set_block_on() {
    let multi = Builder::new().worker_threads(1).build().unwrap();
    assert_eq!(multi.handle().runtime_flavor(), RuntimeFlavor::MultiThread);
    let current = Builder::new_current_thread().build().unwrap();
    assert_eq!(
        current.handle().runtime_flavor(),
        RuntimeFlavor::CurrentThread
    );
    let local = pinwheel::task::LocalSet::new();
    let n = local.block_on(&multi, async {
        let rc = std::rc::Rc::new(2);
        pinwheel::spawn_local(async move { *rc * 3 }).await.unwrap()
    });
    assert_eq!(n, 6);
}

#[pinwheel::test]
async fn reads_into_a_bufmut() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let accepted = pinwheel::spawn_local(async move { listener.accept().await.map(|(s, _)| s) });
    let c = TcpStream::connect(addr).await?;
    let s = accepted.await.unwrap()?;
    c.write_all(b"tcp bytes").await?;
    let mut got = Vec::with_capacity(4);
    while got.len() < 9 {
        match s.try_read_buf(&mut got) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => s.readable().await?,
            Err(e) => return Err(e),
        }
    }
    assert_eq!(got, b"tcp bytes");

    let a = pinwheel::net::UdpSocket::bind("127.0.0.1:0").await?;
    let b = pinwheel::net::UdpSocket::bind("127.0.0.1:0").await?;
    let to = b.local_addr()?;
    a.send_to(b"one", to).await?;
    a.send_to(b"two", to).await?;
    a.send_to(b"three", to).await?;
    let mut buf = bytes::BytesMut::with_capacity(64);
    assert_eq!(b.recv_buf(&mut buf).await?, 3);
    let (n, from) = b.recv_buf_from(&mut buf).await?;
    assert_eq!((n, from), (3, a.local_addr()?));
    let n = loop {
        match b.try_recv_buf(&mut buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => b.readable().await?,
            Err(e) => return Err(e),
        }
    };
    assert_eq!(n, 5);
    assert_eq!(&buf[..], b"onetwothree");
    assert_eq!(
        b.try_recv_buf_from(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    Ok(())
}
