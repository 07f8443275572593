//! What tokio code passes as addresses compiles and works on pinwheel's sockets:
//! `connect(&addr)` (`ToSocketAddrs` for references), `send_to(buf, &addr)` and
//! `send_to(buf, "host:port")` (any `ToSocketAddrs`, as tokio's), `time::Duration`.

use pinwheel::net::{TcpListener, TcpStream, UdpSocket};
use pinwheel::time::Duration;

#[pinwheel::test]
async fn references_to_addresses_are_addresses() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let accept = pinwheel::spawn(async move { listener.accept().await.map(|_| ()) });
    let _c = TcpStream::connect(&addr).await?;
    accept.await.unwrap()?;
    let name = format!("127.0.0.1:{}", addr.port());
    let listener = TcpListener::bind(&name).await?;
    let addr = listener.local_addr()?;
    let accept = pinwheel::spawn(async move { listener.accept().await.map(|_| ()) });
    let _c = TcpStream::connect(&("127.0.0.1", addr.port())).await?;
    accept.await.unwrap()?;
    Ok(())
}

#[pinwheel::test]
async fn send_to_takes_any_address() -> std::io::Result<()> {
    let rx = UdpSocket::bind("127.0.0.1:0").await?;
    let to = rx.local_addr()?;
    let tx = UdpSocket::bind("127.0.0.1:0").await?;
    tx.send_to(b"a", to).await?;
    tx.send_to(b"b", &to).await?;
    tx.send_to(b"c", format!("127.0.0.1:{}", to.port())).await?;
    tx.send_to(b"d", ("127.0.0.1", to.port())).await?;
    let mut got = Vec::new();
    let mut buf = [0u8; 8];
    for _ in 0..4 {
        let (n, from) = pinwheel::time::timeout(Duration::from_secs(10), rx.recv_from(&mut buf))
            .await
            .expect("a datagram within 10 s")?;
        assert_eq!(from, tx.local_addr()?);
        got.push(buf[..n].to_vec());
    }
    got.sort();
    assert_eq!(got, [b"a", b"b", b"c", b"d"]);
    // Not `host:port`: an error, without any lookup.
    let bad = tx.send_to(b"x", "not an address").await;
    assert!(bad.is_err());
    Ok(())
}
