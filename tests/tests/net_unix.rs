//! Unix domain sockets: listener, stream, datagram, `serve` over a `UnixListener`, and the
//! errors users meet (path in use, path too long, nobody there).

#![cfg(unix)]

use std::io::ErrorKind;
use std::path::PathBuf;
use std::time::Duration;

use pinwheel::net::{Balance, Server, UnixDatagram, UnixListener, UnixStream};
use pinwheel_tests::rt;

/// A fresh directory for this test's sockets, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("pinwheel-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn stream_echo_addresses_and_peer_credentials() {
    let dir = TempDir::new("unix-echo");
    let path = dir.path("echo.sock");
    rt(2).block_on(async {
        let listener = UnixListener::bind(&path).unwrap();
        assert_eq!(
            listener.local_addr().unwrap().as_pathname(),
            Some(path.as_path())
        );
        let server = pinwheel::spawn(async move {
            let (stream, peer) = listener.accept().await.unwrap();
            assert!(peer.is_unnamed(), "a client that did not bind: {peer:?}");
            let cred = stream.peer_cred().unwrap();
            let mut buf = [0u8; 5];
            stream.read_exact(&mut buf).await.unwrap();
            stream.write_all(&buf).await.unwrap();
            cred
        });
        let client = UnixStream::connect(&path).await.unwrap();
        assert_eq!(
            client.peer_addr().unwrap().as_pathname(),
            Some(path.as_path())
        );
        client.write_all(b"hello").await.unwrap();
        let mut back = [0u8; 5];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello");
        let cred = server.await.unwrap();
        let (uid, gid) = (libc_getuid(), libc_getgid());
        assert_eq!((cred.uid(), cred.gid()), (uid, gid));
        #[cfg(target_os = "linux")]
        assert_eq!(cred.pid(), Some(std::process::id() as i32));
    });
}

unsafe extern "C" {
    #[link_name = "getuid"]
    safe fn libc_getuid() -> u32;
    #[link_name = "getgid"]
    safe fn libc_getgid() -> u32;
}

#[test]
fn pair_split_and_owned_halves() {
    rt(2).block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        let (ra, wa) = a.split();
        wa.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        b.write_all(b"pong").await.unwrap();
        ra.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");

        let (rb, wb) = b.into_split();
        let reader = pinwheel::spawn(async move {
            let mut all = Vec::new();
            let mut buf = [0u8; 16];
            loop {
                match rb.read(&mut buf).await.unwrap() {
                    0 => return all,
                    n => all.extend_from_slice(&buf[..n]),
                }
            }
        });
        a.write_all(b"to the owned half").await.unwrap();
        drop(a);
        assert_eq!(reader.await.unwrap(), b"to the owned half");
        // Dropping the owned write half shuts its side: nothing left to read here.
        drop(wb);
    });
}

#[test]
fn a_path_in_use_names_the_path() {
    let dir = TempDir::new("unix-inuse");
    let path = dir.path("taken.sock");
    rt(1).block_on(async {
        let _first = UnixListener::bind(&path).unwrap();
        let err = UnixListener::bind(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrInUse);
        assert!(err.to_string().contains("taken.sock"), "{err}");
    });
}

#[test]
fn a_path_too_long_says_the_limit() {
    rt(1).block_on(async {
        let long = std::env::temp_dir().join("x".repeat(200));
        let err = UnixListener::bind(&long).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let text = err.to_string();
        assert!(
            text.contains(&pinwheel::net::unix::MAX_PATH_LEN.to_string()),
            "{text}"
        );
        let err = UnixStream::connect(&long).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    });
}

#[test]
fn connecting_where_nobody_listens_is_a_clear_error() {
    let dir = TempDir::new("unix-nobody");
    rt(1).block_on(async {
        let err = UnixStream::connect(dir.path("nobody.sock"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.to_string().contains("nobody.sock"), "{err}");
    });
}

#[cfg(target_os = "linux")]
#[test]
fn abstract_names_work_on_linux() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("\0pinwheel-abstract-{}", std::process::id());
    rt(1).block_on(async {
        let listener = UnixListener::bind(&name).unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(addr.as_abstract_name(), Some(&name.as_bytes()[1..]));
        let accept = pinwheel::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let mut b = [0u8; 2];
            s.read_exact(&mut b).await.unwrap();
            b
        });
        let c = UnixStream::connect(&name).await.unwrap();
        c.write_all(b"ab").await.unwrap();
        assert_eq!(&accept.await.unwrap(), b"ab");
    });
}

#[test]
fn datagrams_bound_unbound_and_paired() {
    let dir = TempDir::new("unix-dgram");
    let (pa, pb) = (dir.path("a.sock"), dir.path("b.sock"));
    rt(2).block_on(async {
        let a = UnixDatagram::bind(&pa).unwrap();
        let b = UnixDatagram::bind(&pb).unwrap();
        a.send_to(b"one", &pb).await.unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = b.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"one");
        assert_eq!(from.as_pathname(), Some(pa.as_path()));

        let c = UnixDatagram::unbound().unwrap();
        c.connect(&pb).unwrap();
        c.send(b"two").await.unwrap();
        let n = b.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"two");

        let (x, y) = UnixDatagram::pair().unwrap();
        x.send(b"three").await.unwrap();
        let n = y.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"three");

        let err = c.connect(dir.path("none.sock")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    });
}

#[test]
fn serve_runs_unix_sessions_pinned_over_the_workers() {
    let dir = TempDir::new("unix-serve");
    let path = dir.path("serve.sock");
    let rt = rt(2);
    rt.block_on(async {
        let listener = UnixListener::bind(&path).unwrap();
        let server = Server::new();
        let running = pinwheel::spawn({
            let server = server.clone();
            async move {
                server
                    .serve(listener, |stream: UnixStream, peer| async move {
                        assert!(peer.is_unnamed());
                        // The session answers with the worker it runs on, twice: it never moves.
                        let me = pinwheel::current_worker().unwrap() as u8;
                        let mut b = [0u8; 1];
                        stream.read_exact(&mut b).await.unwrap();
                        stream.write_all(&[me]).await.unwrap();
                        stream.read_exact(&mut b).await.unwrap();
                        let again = pinwheel::current_worker().unwrap() as u8;
                        stream.write_all(&[again]).await.unwrap();
                    })
                    .await
            }
        });
        let mut seen = [0usize; 2];
        for _ in 0..8 {
            let c = UnixStream::connect(&path).await.unwrap();
            let mut w = [0u8; 2];
            c.write_all(b"x").await.unwrap();
            c.read_exact(&mut w[..1]).await.unwrap();
            c.write_all(b"y").await.unwrap();
            c.read_exact(&mut w[1..]).await.unwrap();
            assert_eq!(w[0], w[1], "a session moved between workers");
            seen[w[0] as usize] += 1;
        }
        // Round robin: both workers ran sessions.
        assert!(seen[0] > 0 && seen[1] > 0, "{seen:?}");
        server.stop();
        assert!(server.drain(Duration::from_secs(10)).await);
        running.await.unwrap().unwrap();
    });
}

#[test]
fn shards_on_a_unix_listener_is_a_clear_error() {
    let dir = TempDir::new("unix-shards");
    rt(2).block_on(async {
        let listener = UnixListener::bind(dir.path("s.sock")).unwrap();
        let err = pinwheel::net::serve_with(listener, Balance::Shards, |_s, _p| async {})
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("RoundRobin"), "{err}");
    });
}
