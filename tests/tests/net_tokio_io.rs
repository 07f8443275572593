//! Feature `tokio-io`: tokio's `AsyncRead` / `AsyncWrite` on pinwheel's stream sockets, with no
//! tokio runtime anywhere (this package takes tokio's `io-util` extension traits only).

use std::mem::MaybeUninit;
use std::pin::Pin;

use pinwheel::net::{TcpListener, TcpStream, UnixStream};
use pinwheel_tests::rt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};

async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) = futures_join(TcpStream::connect(addr), listener.accept()).await;
    (client.unwrap(), accepted.unwrap().0)
}

/// Runs two futures on two tasks and waits for both.
async fn futures_join<A, B>(a: A, b: B) -> (A::Output, B::Output)
where
    A: std::future::Future + Send + 'static,
    A::Output: Send + 'static,
    B: std::future::Future,
{
    let a = pinwheel::spawn(a);
    let b = b.await;
    (a.await.unwrap(), b)
}

#[test]
fn tcp_stream_reads_and_writes_through_tokio_traits() {
    rt(2).block_on(async {
        let (mut a, mut b) = tcp_pair().await;
        a.write_all(b"hello tokio traits").await.unwrap();
        // The inherent `shutdown(how)` shadows the trait's: name the trait.
        AsyncWriteExt::shutdown(&mut a).await.unwrap();
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello tokio traits");

        // &TcpStream, vectored writes, and the owned halves with tokio::io::copy.
        let mut shared = &b;
        AsyncWriteExt::write_all(&mut shared, b"x").await.unwrap();
        let n = AsyncWriteExt::write_vectored(&mut shared, &[std::io::IoSlice::new(b"yz")])
            .await
            .unwrap();
        assert!(n > 0);
        let mut buf = [0u8; 3];
        a.read_exact(&mut buf[..1 + n]).await.unwrap();
        assert_eq!(&buf[..1 + n], &b"xyz"[..1 + n]);

        // A fresh connection for the echo through the owned halves.
        let (a, mut b) = tcp_pair().await;
        let (mut rh, mut wh) = a.into_split();
        let echo = pinwheel::spawn(async move {
            let copied = tokio::io::copy(&mut rh, &mut wh).await.unwrap();
            wh.shutdown().await.unwrap();
            copied
        });
        b.write_all(&[7u8; 100_000]).await.unwrap();
        AsyncWriteExt::shutdown(&mut b).await.unwrap();
        let mut back = Vec::new();
        b.read_to_end(&mut back).await.unwrap();
        assert_eq!(back.len(), 100_000);
        assert!(back.iter().all(|&x| x == 7));
        assert_eq!(echo.await.unwrap(), 100_000);
    });
}

#[test]
fn reads_fill_the_uninitialised_buffer_without_zeroing_it() {
    rt(2).block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        a.write_all(b"abc").await.unwrap();
        let mut storage = [MaybeUninit::<u8>::uninit(); 4096];
        let mut buf = ReadBuf::uninit(&mut storage);
        let mut b = b;
        std::future::poll_fn(|cx| Pin::new(&mut b).poll_read(cx, &mut buf))
            .await
            .unwrap();
        assert_eq!(buf.filled(), b"abc");
        // A reader that zero-filled first would have marked all 4096 bytes initialised.
        assert_eq!(buf.initialized().len(), 3);

        // read_buf into spare capacity: the same path, through the extension trait.
        a.write_all(b"defgh").await.unwrap();
        let mut v = Vec::with_capacity(64);
        let n = b.read_buf(&mut v).await.unwrap();
        assert_eq!(&v[..n], &b"defgh"[..n]);
    });
}

#[test]
fn unix_stream_halves_through_tokio_traits() {
    rt(2).block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        let (ra, mut wa) = a.into_split();
        let (rb, wb) = b.split();
        wa.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        rb.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        wb.write_all(b"pong").await.unwrap();
        ra.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
        wa.shutdown().await.unwrap();
        assert_eq!(
            rb.read(&mut buf).await.unwrap(),
            0,
            "end of stream after shutdown"
        );
    });
}
