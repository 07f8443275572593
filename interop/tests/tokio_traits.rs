//! Code written against tokio's I/O extension traits, on pinwheel's streams (feature
//! `tokio-io`): the calls a ported service makes (`shutdown().await`, `read_exact`,
//! `write_all`, `split`, `read_to_end`) compile and behave as on tokio's streams, on TCP and Unix
//! sockets. No inherent method of a pinwheel stream shadows one of those traits' with another
//! signature (`TcpStream::shutdown(how)` did: the std-style call is now `shutdown_std`).

use pinwheel::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The server side, written as tokio code is (trait methods only, generic over the stream).
async fn serve_one<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) -> Vec<u8> {
    let mut head = [0u8; 5];
    let n = s.read_exact(&mut head).await.unwrap();
    assert_eq!(n, 5);
    s.write_all(&head).await.unwrap();
    s.write_u32(7).await.unwrap();
    s.flush().await.unwrap();
    s.shutdown().await.unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).await.unwrap();
    rest
}

/// The client side, calling methods on the concrete stream as a port from tokio does (inherent
/// ones where pinwheel has them, with tokio's signatures), then on its split halves.
macro_rules! client_exchange {
    ($c:expr) => {{
        let mut c = $c;
        c.write_all(b"hello").await.unwrap();
        let mut echo = [0u8; 5];
        let n: usize = c.read_exact(&mut echo).await.unwrap();
        assert_eq!((n, &echo), (5, b"hello"));
        let (mut r, mut w) = c.split();
        assert_eq!(r.read_u32().await.unwrap(), 7);
        w.write_all(b"by").await.unwrap();
        w.flush().await.unwrap();
        c.write_u8(b'e').await.unwrap();
        // The inherent `shutdown` is tokio's call: awaited, no argument.
        c.shutdown().await.unwrap();
        let mut end = Vec::new();
        assert_eq!(
            c.read_to_end(&mut end).await.unwrap(),
            0,
            "the server shut its side"
        );
    }};
}

#[pinwheel::test]
async fn tokio_traits_on_tcp_streams() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = pinwheel::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        serve_one(s).await
    });
    client_exchange!(TcpStream::connect(addr).await.unwrap());
    assert_eq!(server.await.unwrap(), b"bye");
}

#[pinwheel::test]
async fn tokio_traits_on_unix_streams() {
    let dir = std::env::temp_dir().join(format!("pinwheel-tokio-traits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let server = pinwheel::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        serve_one(s).await
    });
    client_exchange!(UnixStream::connect(&path).await.unwrap());
    assert_eq!(server.await.unwrap(), b"bye");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[pinwheel::test]
async fn shutdown_std_still_closes_one_side() {
    let (a, b) = UnixStream::pair().unwrap();
    a.shutdown_std(std::net::Shutdown::Write).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(b.read(&mut buf).await.unwrap(), 0);
    // The other direction still works.
    b.write_all(b"x").await.unwrap();
    assert_eq!(a.read(&mut buf).await.unwrap(), 1);
}
