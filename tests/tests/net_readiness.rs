//! tokio's readiness API on pinwheel's sockets: `ready(Interest)`, `readable`/`writable`,
//! `try_read`/`try_write` (and vectored), `try_io`, `poll_read_ready`/`poll_write_ready`,
//! listeners' `poll_accept`, and UDP's `try_*` and `poll_*` calls.

use std::future::poll_fn;
use std::io::{ErrorKind, IoSlice, IoSliceMut};

use pinwheel::io::{Interest, Ready};
use pinwheel::net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};

async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted =
        pinwheel::spawn_local(async move { poll_fn(|cx| listener.poll_accept(cx)).await });
    let client = TcpStream::connect(addr).await.unwrap();
    (client, accepted.await.unwrap().unwrap().0)
}

#[pinwheel::test]
async fn ready_then_try_read_and_write() {
    let (a, b) = tcp_pair().await;
    let r = a.ready(Interest::WRITABLE).await.unwrap();
    assert!(r.is_writable());
    assert_eq!(a.try_write(b"hello").unwrap(), 5);
    let r = b
        .ready(Interest::READABLE | Interest::WRITABLE)
        .await
        .unwrap();
    assert!(r.is_readable() || r.is_writable());
    b.readable().await.unwrap();
    let mut buf = [0u8; 16];
    let n = loop {
        match b.try_read(&mut buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => b.readable().await.unwrap(),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(&buf[..n], b"hello");
    assert_eq!(
        b.try_read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    // Vectored, both ways.
    let n = a
        .try_write_vectored(&[IoSlice::new(b"ab"), IoSlice::new(b"cd")])
        .unwrap();
    assert_eq!(n, 4);
    b.readable().await.unwrap();
    let (mut x, mut y) = ([0u8; 1], [0u8; 8]);
    let n = loop {
        match b.try_read_vectored(&mut [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)]) {
            Ok(n) => break n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => b.readable().await.unwrap(),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!((n, x[0], &y[..3]), (4, b'a', &b"bcd"[..]));
    // The peer closes its side: readable, read-closed, reads 0.
    a.shutdown().await.unwrap();
    let r = b.ready(Interest::READABLE).await.unwrap();
    assert!(r.is_readable());
    let got = loop {
        match b.try_read(&mut buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => b.readable().await.unwrap(),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(got, 0);
    assert_ne!(Ready::READ_CLOSED, Ready::EMPTY);
}

#[pinwheel::test]
async fn try_io_clears_readiness_and_poll_ready_waits() {
    let (a, b) = tcp_pair().await;
    poll_fn(|cx| a.poll_write_ready(cx)).await.unwrap();
    a.try_write(b"x").unwrap();
    poll_fn(|cx| b.poll_read_ready(cx)).await.unwrap();
    let mut buf = [0u8; 4];
    let n = loop {
        match b.try_io(Interest::READABLE, || b.try_read(&mut buf)) {
            Ok(n) => break n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => b.readable().await.unwrap(),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(n, 1);
    let e = b.try_io(Interest::READABLE, || -> std::io::Result<()> {
        Err(ErrorKind::WouldBlock.into())
    });
    assert_eq!(e.unwrap_err().kind(), ErrorKind::WouldBlock);
    // Cleared: `readable` waits for the next write.
    let writer = pinwheel::spawn_local(async move {
        pinwheel::yield_now().await;
        a.try_write(b"y").unwrap();
        a
    });
    b.readable().await.unwrap();
    drop(writer.await.unwrap());
}

#[pinwheel::test]
async fn unix_listener_poll_accept() {
    let dir = std::env::temp_dir().join(format!("pinwheel-ready-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let c = UnixStream::connect(&path).await.unwrap();
    let (s, _) = poll_fn(|cx| listener.poll_accept(cx)).await.unwrap();
    c.write_all(b"u").await.unwrap();
    let r = s.ready(Interest::READABLE).await.unwrap();
    assert!(r.is_readable());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[pinwheel::test]
async fn udp_try_and_poll_calls() {
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let mut buf = [0u8; 8];
    assert_eq!(
        b.try_recv_from(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    a.writable().await.unwrap();
    assert_eq!(a.try_send_to(b"1", ba).unwrap(), 1);
    b.readable().await.unwrap();
    let (n, from) = poll_fn(|cx| b.poll_peek_from(cx, &mut buf)).await.unwrap();
    assert_eq!((n, from, buf[0]), (1, aa, b'1'));
    let (n, from) = poll_fn(|cx| b.poll_recv_from(cx, &mut buf)).await.unwrap();
    assert_eq!((n, from, buf[0]), (1, aa, b'1'));
    poll_fn(|cx| a.poll_send_ready(cx)).await.unwrap();
    poll_fn(|cx| a.poll_send_to(cx, b"2", ba)).await.unwrap();
    poll_fn(|cx| b.poll_recv_ready(cx)).await.unwrap();
    let (n, _) = loop {
        match b.try_recv_from(&mut buf) {
            Ok(x) => break x,
            Err(e) if e.kind() == ErrorKind::WouldBlock => b.readable().await.unwrap(),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!((n, buf[0]), (1, b'2'));
    // Connected: try_send / try_recv / poll_send / poll_recv.
    a.connect(ba).await.unwrap();
    b.connect(aa).await.unwrap();
    assert_eq!(a.try_send(b"3").unwrap(), 1);
    let r = b.ready(Interest::READABLE).await.unwrap();
    assert!(r.is_readable());
    let n = loop {
        match b.try_recv(&mut buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => b.readable().await.unwrap(),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!((n, buf[0]), (1, b'3'));
    poll_fn(|cx| b.poll_send(cx, b"4")).await.unwrap();
    let n = poll_fn(|cx| a.poll_recv(cx, &mut buf)).await.unwrap();
    assert_eq!((n, buf[0]), (1, b'4'));
}

/// `poll_read_into` reads into a vector's spare room (no zeroing, no growth while it has
/// room) and advances it; after a read that filled less than the room the socket is known
/// drained: the next poll is `Pending` without a system call, and the next bytes wake it.
#[pinwheel::test]
async fn poll_read_into_fills_spare_room_and_waits_after_a_short_read() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    let (a, b) = tcp_pair().await;
    a.write_all(b"hello").await.unwrap();
    let mut got: Vec<u8> = Vec::with_capacity(64);
    let n = poll_fn(|cx| b.poll_read_into(cx, &mut got)).await.unwrap();
    assert_eq!((n, &got[..]), (5, &b"hello"[..]));
    assert_eq!(
        got.capacity(),
        64,
        "a read with room does not grow the vector"
    );

    // Drained: pending, and the waker is kept for the next bytes.
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(count.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(b.poll_read_into(&mut cx, &mut got).is_pending());
    a.write_all(b" world").await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while count.0.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the next bytes did not wake the reader"
        );
        pinwheel::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    match b.poll_read_into(&mut cx, &mut got) {
        Poll::Ready(Ok(6)) => assert_eq!(&got[..], b"hello world"),
        other => panic!("expected 6 more bytes, got {other:?}"),
    }

    // The peer's end of the stream: `Ok(0)`.
    a.shutdown().await.unwrap();
    let n = poll_fn(|cx| b.poll_read_into(cx, &mut got)).await.unwrap();
    assert_eq!(n, 0);
}

/// Reads `s` to its end (`$s` a TCP or Unix stream).
macro_rules! read_to_end {
    ($s:expr) => {{
        let mut all = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            match $s.read(&mut buf).await.unwrap() {
                0 => break all,
                n => all.extend_from_slice(&buf[..n]),
            }
        }
    }};
}

/// `poll_write_more` (`MSG_MORE`): the bytes go with what follows (a write, or the close);
/// bytes that nothing follows still go, after the kernel's wait.
#[pinwheel::test]
async fn poll_write_more_goes_with_what_follows() {
    let (a, b) = tcp_pair().await;
    let n = poll_fn(|cx| a.poll_write_more(cx, b"head ")).await.unwrap();
    assert_eq!(n, 5);
    a.write_all(b"tail").await.unwrap();
    let n = poll_fn(|cx| a.poll_write_more(cx, b", last"))
        .await
        .unwrap();
    assert_eq!(n, 6);
    drop(a);
    assert_eq!(read_to_end!(b), b"head tail, last");

    // Nothing follows: the bytes are sent all the same.
    let (c, d) = tcp_pair().await;
    poll_fn(|cx| c.poll_write_more(cx, b"late")).await.unwrap();
    let mut buf = [0u8; 8];
    let n = pinwheel::time::timeout(std::time::Duration::from_secs(30), d.read(&mut buf))
        .await
        .expect("bytes written with MSG_MORE and nothing after them were never sent")
        .unwrap();
    assert_eq!(&buf[..n], b"late");

    // A Unix stream takes the flag too.
    let (u, v) = UnixStream::pair().unwrap();
    poll_fn(|cx| u.poll_write_more(cx, b"unix")).await.unwrap();
    drop(u);
    assert_eq!(read_to_end!(v), b"unix");
}
