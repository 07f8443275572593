//! The socket write rule: a write to a peer that has gone fails with an error; it never raises
//! `SIGPIPE`. This test process puts `SIGPIPE` back to its default action (death), as a C host
//! embedding the runtime may have it (Rust's own `main` ignores it): a write made with
//! `write(2)` or `writev(2)` would kill the process here instead of returning `EPIPE`.

use std::io::{ErrorKind, IoSlice};
use std::net::SocketAddr;

use pinwheel::net::{TcpStream, UnixStream};
use pinwheel_tests::rt;

fn default_sigpipe() {
    // SAFETY: setting a signal's disposition to SIG_DFL installs no handler; no other code of
    // this test process handles SIGPIPE.
    let previous = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    assert_ne!(previous, libc::SIG_ERR);
}

/// The writes each test makes once the peer is gone: a plain one, a small vectored one (sent
/// gathered into one buffer) and a large one (sent as it is).
async fn writes_to_a_gone_peer(
    write: impl AsyncFn(&[u8]) -> std::io::Result<usize>,
    write_vectored: impl AsyncFn(&[IoSlice<'_>]) -> std::io::Result<usize>,
) {
    let e = write(b"x").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BrokenPipe, "{e}");
    let e = write_vectored(&[IoSlice::new(b"head"), IoSlice::new(b"body")])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BrokenPipe, "{e}");
    let big = vec![7u8; 64 * 1024];
    let e = write_vectored(&[IoSlice::new(b"head"), IoSlice::new(&big)])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BrokenPipe, "{e}");
}

#[test]
fn writes_to_a_reset_tcp_peer_fail_with_broken_pipe_not_sigpipe() {
    default_sigpipe();
    let rt = rt(1);
    rt.block_on(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let stream = TcpStream::connect(addr).await.unwrap();
        let (peer, _) = listener.accept().unwrap();
        // An abortive close: the peer answers with a reset.
        socket2::SockRef::from(&peer)
            .set_linger(Some(std::time::Duration::ZERO))
            .unwrap();
        drop(peer);
        // The reset is reported once (to this read); writes after it fail with EPIPE.
        let mut buf = [0u8; 16];
        let e = stream.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
        writes_to_a_gone_peer(
            async |b| stream.write(b).await,
            async |bufs| std::future::poll_fn(|cx| stream.poll_write_vectored_buf(cx, bufs)).await,
        )
        .await;
    });
}

#[test]
fn writes_to_a_closed_unix_peer_fail_with_broken_pipe_not_sigpipe() {
    default_sigpipe();
    let rt = rt(1);
    rt.block_on(async {
        let (stream, peer) = UnixStream::pair().unwrap();
        drop(peer);
        writes_to_a_gone_peer(
            async |b| stream.write(b).await,
            async |bufs| std::future::poll_fn(|cx| stream.poll_write_vectored_buf(cx, bufs)).await,
        )
        .await;
    });
}
