//! tokio-util's `Framed` with `LinesCodec` over pinwheel's `TcpStream` and `UnixStream`,
//! through the `tokio-io` traits (no tokio runtime).

use futures::{SinkExt, StreamExt};
use pinwheel::net::{TcpListener, TcpStream, UnixStream};
use pinwheel_tests::rt;
use tokio_util::codec::{Framed, LinesCodec};

/// Answers each line with the line upper-cased, until the peer closes.
async fn shout<S>(stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut lines = Framed::new(stream, LinesCodec::new_with_max_length(1024));
    while let Some(Ok(line)) = lines.next().await {
        if lines.send(line.to_uppercase()).await.is_err() {
            break;
        }
    }
}

async fn talk<S>(stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut lines = Framed::new(stream, LinesCodec::new());
    for word in ["pinwheel", "speaks", "lines"] {
        lines.send(word).await.unwrap();
        assert_eq!(lines.next().await.unwrap().unwrap(), word.to_uppercase());
    }
}

#[test]
fn lines_over_tcp() {
    rt(2).block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(pinwheel::spawn(pinwheel::net::serve(
            listener,
            |s: TcpStream, _| shout(s),
        )));
        talk(TcpStream::connect(addr).await.unwrap()).await;
    });
}

#[test]
fn lines_over_unix() {
    rt(2).block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        let server = pinwheel::spawn(shout(a));
        talk(b).await;
        server.abort();
    });
}

#[test]
fn a_line_over_the_limit_is_an_error_not_a_hang() {
    rt(2).block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        let reader = pinwheel::spawn(async move {
            let mut lines = Framed::new(a, LinesCodec::new_with_max_length(16));
            lines.next().await
        });
        // The reader gives up (and drops its end) once 16 bytes came without a newline, so
        // the rest of this write may meet a closed socket: its result does not matter.
        let mut long = vec![b'x'; 64];
        long.push(b'\n');
        let _ = b.write_all(&long).await;
        let got = reader.await.unwrap();
        assert!(matches!(got, Some(Err(_))), "{got:?}");
    });
}
