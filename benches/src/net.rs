//! Network workloads: an echo server on each runtime, driven by one load generator that is the
//! same code for both: a single thread multiplexing many non-blocking `mio` connections, so the
//! client costs little and costs the same whichever server it talks to.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::floor::{Answer, MioFloor};
use crate::tpc::TokioTpc;
use crate::{Pinwheel, Tokio, Workload};

/// Connections in `tcp_echo` and `tcp_echo_1k`.
pub const ECHO_CONNS: usize = 64;
/// Round trips per connection per iteration.
pub const ECHO_ROUNDS: usize = 200;
/// Connections in one `accept_churn` iteration.
pub const CHURN: usize = 20_000;
/// Connections `accept_churn` keeps in flight.
const CHURN_IN_FLIGHT: usize = 64;

struct Conn {
    stream: TcpStream,
    sent: usize,
    got: usize,
    rounds: usize,
    connected: bool,
}

/// Drives `conns` connections to `addr`, each doing `rounds` round trips: send `msg`, receive
/// `resp_len` bytes. With `churn`, each connection does one round trip, closes, and a new one
/// takes its place until `total` connections are done.
fn drive(
    addr: SocketAddr,
    conns: usize,
    rounds: usize,
    (msg, resp_len): (&[u8], usize),
    total: usize,
    existing: &mut Vec<TcpStream>,
) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let size = msg.len();
    let mut buf = vec![0u8; resp_len.max(4096)];
    let mut live: HashMap<usize, Conn> = HashMap::new();
    let mut next_token = 0usize;
    let mut started = 0usize;
    let mut finished = 0usize;
    let churn = existing.is_empty();
    let open = |poll: &mut Poll,
                live: &mut HashMap<usize, Conn>,
                stream: Option<TcpStream>,
                next_token: &mut usize|
     -> io::Result<()> {
        let (mut stream, connected) = match stream {
            Some(s) => (s, true),
            None => (TcpStream::connect(addr)?, false),
        };
        stream.set_nodelay(true)?;
        let t = *next_token;
        *next_token += 1;
        poll.registry().register(
            &mut stream,
            Token(t),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        live.insert(
            t,
            Conn {
                stream,
                sent: 0,
                got: 0,
                rounds: 0,
                connected,
            },
        );
        Ok(())
    };
    if churn {
        while started < conns.min(total) {
            open(&mut poll, &mut live, None, &mut next_token)?;
            started += 1;
        }
    } else {
        for s in existing.drain(..) {
            open(&mut poll, &mut live, Some(s), &mut next_token)?;
            started += 1;
        }
    }
    let mut kept = Vec::new();
    while finished < total {
        poll.poll(&mut events, Some(Duration::from_secs(30)))?;
        if events.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the echo server stopped answering",
            ));
        }
        for ev in events.iter() {
            let t = ev.token().0;
            let mut done = false;
            if let Some(c) = live.get_mut(&t) {
                if !c.connected && ev.is_writable() {
                    if let Some(e) = c.stream.take_error()? {
                        return Err(e);
                    }
                    c.connected = true;
                }
                // Write what is left of the current message, read what came back.
                loop {
                    let mut progressed = false;
                    if c.connected && c.sent < size {
                        match c.stream.write(&msg[c.sent..]) {
                            Ok(n) => {
                                c.sent += n;
                                progressed = true;
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                            Err(e) => return Err(e),
                        }
                    }
                    if c.sent > 0 && c.got < resp_len {
                        match c.stream.read(&mut buf[..resp_len - c.got]) {
                            Ok(0) => {
                                return Err(io::Error::new(
                                    io::ErrorKind::UnexpectedEof,
                                    "the server closed the connection",
                                ));
                            }
                            Ok(n) => {
                                c.got += n;
                                progressed = true;
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                            Err(e) => return Err(e),
                        }
                    }
                    if c.got == resp_len {
                        c.rounds += 1;
                        c.sent = 0;
                        c.got = 0;
                        if c.rounds == rounds {
                            done = true;
                            break;
                        }
                        continue;
                    }
                    if !progressed {
                        break;
                    }
                }
            }
            if done {
                let mut c = live.remove(&t).unwrap();
                poll.registry().deregister(&mut c.stream)?;
                finished += 1;
                if churn {
                    drop(c);
                    if started < total {
                        open(&mut poll, &mut live, None, &mut next_token)?;
                        started += 1;
                    }
                } else {
                    kept.push(c.stream);
                }
            }
        }
    }
    existing.extend(kept);
    Ok(())
}

/// State of an echo workload: the server's address and the client connections, kept across
/// iterations (set up at the first one).
#[derive(Debug, Default)]
pub struct Echo<const SIZE: usize> {
    addr: Option<SocketAddr>,
    conns: Vec<TcpStream>,
}

impl<const SIZE: usize> Echo<SIZE> {
    pub(crate) fn run(&mut self, start: impl FnOnce() -> SocketAddr) {
        let addr = *self.addr.get_or_insert_with(start);
        if self.conns.is_empty() {
            for _ in 0..ECHO_CONNS {
                let s = std::net::TcpStream::connect(addr).expect("connect to the echo server");
                s.set_nonblocking(true).unwrap();
                self.conns.push(TcpStream::from_std(s));
            }
        }
        let msg = [7u8; SIZE];
        drive(
            addr,
            ECHO_CONNS,
            ECHO_ROUNDS,
            (&msg, SIZE),
            ECHO_CONNS,
            &mut self.conns,
        )
        .expect("echo exchange");
    }
}

/// `accept_churn`: 20,000 short connections (connect, one 64-byte exchange, close), 64 in
/// flight.
#[derive(Debug, Default)]
pub struct AcceptChurn {
    addr: Option<SocketAddr>,
}

impl AcceptChurn {
    fn run(&mut self, start: impl FnOnce() -> SocketAddr) {
        let addr = *self.addr.get_or_insert_with(start);
        let msg = [7u8; 64];
        drive(addr, CHURN_IN_FLIGHT, 1, (&msg, 64), CHURN, &mut Vec::new()).expect("churn");
    }
}

/// Starts a pinwheel server on a loopback port: `net::serve`, sessions pinned round-robin,
/// each running `session` on its connection (TCP_NODELAY on).
pub(crate) fn pinwheel_server<Fut>(
    rt: &Pinwheel,
    session: fn(pinwheel::net::TcpStream) -> Fut,
) -> SocketAddr
where
    Fut: std::future::Future<Output = ()> + 'static,
{
    rt.0.block_on(async {
        let listener = pinwheel::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        drop(pinwheel::spawn(pinwheel::net::serve(
            listener,
            move |s: pinwheel::net::TcpStream, _| {
                let _ = s.set_nodelay(true);
                session(s)
            },
        )));
        addr
    })
}

/// Starts a tokio server on a loopback port: a plain accept loop and `tokio::spawn` per
/// connection running `session` (TCP_NODELAY on).
pub(crate) fn tokio_server<Fut>(rt: &Tokio, session: fn(tokio::net::TcpStream) -> Fut) -> SocketAddr
where
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    rt.0.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = listener.accept().await else {
                    continue;
                };
                let _ = s.set_nodelay(true);
                tokio::spawn(session(s));
            }
        });
        addr
    })
}

/// Starts a pinwheel server written as a tokio server ported by changing imports: a plain
/// accept loop that `pinwheel::spawn`s each connection's session (no `net::serve`).
pub(crate) fn pinwheel_spawn_server<Fut>(
    rt: &Pinwheel,
    session: fn(pinwheel::net::TcpStream) -> Fut,
) -> SocketAddr
where
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    rt.0.block_on(async {
        let listener = pinwheel::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        drop(pinwheel::spawn(async move {
            loop {
                let Ok((s, _)) = listener.accept().await else {
                    continue;
                };
                let _ = s.set_nodelay(true);
                drop(pinwheel::spawn(session(s)));
            }
        }));
        addr
    })
}

/// `accept_spawn`: `tcp_echo`'s load (64 connections, 64-byte round trips) against a server
/// whose accept loop spawns each session (`pinwheel::spawn`, `tokio::spawn`): how a ported
/// tokio server keeps (or loses) pinwheel's locality without `net::serve`.
#[derive(Debug, Default)]
pub struct AcceptSpawn(Echo<64>);

impl Workload<Pinwheel> for AcceptSpawn {
    fn iter(&mut self, rt: &Pinwheel) {
        self.0
            .run(|| pinwheel_spawn_server(rt, pinwheel_echo_session));
    }
}

impl Workload<Tokio> for AcceptSpawn {
    fn iter(&mut self, rt: &Tokio) {
        self.0.run(|| tokio_echo(rt));
    }
}

/// `tokio_net_echo`: `tcp_echo`'s load against a server written on tokio's sockets, run on
/// pinwheel with the workers' tokio contexts (`Builder::tokio_context(true)`): a pinwheel
/// task accepts with `tokio::net::TcpListener` and `pinwheel::spawn`s each session on its
/// `tokio::net::TcpStream`. tokio's side is `tcp_echo`'s tokio server (the same code on
/// tokio). `compare` builds this row's pinwheel runtime with the switch on.
#[derive(Debug, Default)]
pub struct TokioNetEcho(Echo<64>);

impl Workload<Pinwheel> for TokioNetEcho {
    fn iter(&mut self, rt: &Pinwheel) {
        self.0.run(|| {
            rt.0.block_on(rt.0.spawn(async {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("tokio_net_echo needs the tokio context: Builder::tokio_context(true)");
                let addr = listener.local_addr().unwrap();
                drop(pinwheel::spawn(async move {
                    loop {
                        let Ok((s, _)) = listener.accept().await else {
                            continue;
                        };
                        let _ = s.set_nodelay(true);
                        drop(pinwheel::spawn(tokio_echo_session(s)));
                    }
                }));
                addr
            }))
            .unwrap()
        });
    }
}

impl Workload<Tokio> for TokioNetEcho {
    fn iter(&mut self, rt: &Tokio) {
        self.0.run(|| tokio_echo(rt));
    }
}

/// pinwheel's echo session.
async fn pinwheel_echo_session(s: pinwheel::net::TcpStream) {
    let mut buf = vec![0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// tokio's echo session.
pub async fn tokio_echo_session(s: tokio::net::TcpStream) {
    echo_with_tokio_traits(s).await
}

/// Echoes what comes until the peer closes, on any stream with tokio's I/O traits (a socket,
/// or a TLS stream over one).
pub async fn echo_with_tokio_traits<S>(mut s: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Starts `tcp_echo`'s pinwheel echo server; returns its address.
pub fn pinwheel_echo(rt: &Pinwheel) -> SocketAddr {
    pinwheel_server(rt, pinwheel_echo_session)
}

/// Starts `tcp_echo`'s tokio echo server; returns its address.
pub fn tokio_echo(rt: &Tokio) -> SocketAddr {
    tokio_server(rt, tokio_echo_session)
}

impl<const SIZE: usize> Workload<Pinwheel> for Echo<SIZE> {
    fn iter(&mut self, rt: &Pinwheel) {
        self.run(|| pinwheel_echo(rt));
    }
}

impl<const SIZE: usize> Workload<Tokio> for Echo<SIZE> {
    fn iter(&mut self, rt: &Tokio) {
        self.run(|| tokio_echo(rt));
    }
}

impl<const SIZE: usize> Workload<TokioTpc> for Echo<SIZE> {
    fn iter(&mut self, rt: &TokioTpc) {
        self.run(|| rt.serve(tokio_echo_session));
    }
}

impl<const SIZE: usize> Workload<MioFloor> for Echo<SIZE> {
    fn iter(&mut self, rt: &MioFloor) {
        self.run(|| rt.serve(Answer::Echo));
    }
}

impl Workload<MioFloor> for AcceptChurn {
    fn iter(&mut self, rt: &MioFloor) {
        self.run(|| rt.serve(Answer::Echo));
    }
}

impl Workload<TokioTpc> for AcceptChurn {
    fn iter(&mut self, rt: &TokioTpc) {
        self.run(|| rt.serve(tokio_echo_session));
    }
}

impl Workload<Pinwheel> for AcceptChurn {
    fn iter(&mut self, rt: &Pinwheel) {
        self.run(|| pinwheel_echo(rt));
    }
}

impl Workload<Tokio> for AcceptChurn {
    fn iter(&mut self, rt: &Tokio) {
        self.run(|| tokio_echo(rt));
    }
}

/// The request of `http_hello`: a keep-alive `GET /`.
const HTTP_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";

/// `http_hello`: hyper's HTTP/1.1 hello world, 64 keep-alive connections, 200 requests each
/// per iteration, one at a time per connection, from the same load generator as the echo
/// workloads.
#[derive(Debug, Default)]
pub struct HttpHello {
    addr: Option<SocketAddr>,
    resp_len: usize,
    conns: Vec<TcpStream>,
}

impl HttpHello {
    pub(crate) fn run(&mut self, start: impl FnOnce() -> SocketAddr) {
        let addr = *self.addr.get_or_insert_with(start);
        if self.conns.is_empty() {
            self.resp_len = response_len(addr).expect("a first request to the HTTP server");
            for _ in 0..ECHO_CONNS {
                let s = std::net::TcpStream::connect(addr).expect("connect to the HTTP server");
                s.set_nonblocking(true).unwrap();
                self.conns.push(TcpStream::from_std(s));
            }
        }
        drive(
            addr,
            ECHO_CONNS,
            ECHO_ROUNDS,
            (HTTP_REQUEST, self.resp_len),
            ECHO_CONNS,
            &mut self.conns,
        )
        .expect("HTTP exchange");
    }
}

/// The length of the server's response to [`HTTP_REQUEST`] (headers and body): the same for
/// every request, hyper's `date` header having a fixed width.
fn response_len(addr: SocketAddr) -> io::Result<usize> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(HTTP_REQUEST)?;
    read_http1_response(&mut s).map(|(_, len)| len)
}

/// Reads one HTTP/1.1 response with a `Content-Length` body (what hyper sends for a full
/// body) from a blocking socket; returns its status and its whole length in bytes.
pub fn read_http1_response(conn: &mut std::net::TcpStream) -> io::Result<(u16, usize)> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before a whole response",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 64 * 1024 {
            return Err(io::Error::other("response head over 64 KiB"));
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("no status line"))?;
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut have = buf.len() - head_end;
    while have < len {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed in the body",
            ));
        }
        have += n;
    }
    Ok((status, head_end + len))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(crate) async fn hello_service(
    _: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, std::convert::Infallible> {
    Ok(hyper::Response::new(http_body_util::Full::new(
        bytes::Bytes::from_static(b"hello, world"),
    )))
}

/// pinwheel: `net::serve` (sessions pinned round-robin), hyper on `TcpStream` directly.
pub fn pinwheel_http(rt: &Pinwheel) -> SocketAddr {
    pinwheel_server(rt, |s| async move {
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(s, hyper::service::service_fn(hello_service))
            .await;
    })
}

/// tokio's HTTP session: hyper through `TokioIo`.
pub async fn tokio_http_session(s: tokio::net::TcpStream) {
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(
            hyper_util::rt::TokioIo::new(s),
            hyper::service::service_fn(hello_service),
        )
        .await;
}

/// tokio: a plain accept loop, `tokio::spawn` per connection, hyper through `TokioIo`.
pub fn tokio_http(rt: &Tokio) -> SocketAddr {
    tokio_server(rt, tokio_http_session)
}

/// The floor's HTTP response: what hyper's hello world sends (status line, `content-length`,
/// `date`, body), fixed.
const FLOOR_HTTP_RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\ndate: Sat, 05 Dec 2026 12:00:00 GMT\r\n\r\nhello, world";

impl Workload<MioFloor> for HttpHello {
    fn iter(&mut self, rt: &MioFloor) {
        self.run(|| rt.serve(Answer::Http(FLOOR_HTTP_RESPONSE)));
    }
}

impl Workload<TokioTpc> for HttpHello {
    fn iter(&mut self, rt: &TokioTpc) {
        self.run(|| rt.serve(tokio_http_session));
    }
}

impl Workload<Pinwheel> for HttpHello {
    fn iter(&mut self, rt: &Pinwheel) {
        self.run(|| pinwheel_http(rt));
    }
}

impl Workload<Tokio> for HttpHello {
    fn iter(&mut self, rt: &Tokio) {
        self.run(|| tokio_http(rt));
    }
}

/// The network rows a server in another process can be driven with ([`drive_external`]).
pub const EXTERNAL_ROWS: [&str; 3] = ["tcp_echo", "tcp_echo_1k", "http_hello"];

/// Drives the server at `addr` (in another process, say) as the `row` workload does, for
/// `iters` iterations (the connections are made at the first); returns the round trips made.
///
/// # Panics
///
/// On a row not in [`EXTERNAL_ROWS`], and when the exchange fails.
pub fn drive_external(addr: SocketAddr, row: &str, iters: usize) -> usize {
    let never = || unreachable!("the server runs elsewhere");
    match row {
        "tcp_echo" => {
            let mut w = Echo::<64> {
                addr: Some(addr),
                conns: Vec::new(),
            };
            (0..iters).for_each(|_| w.run(never));
        }
        "tcp_echo_1k" => {
            let mut w = Echo::<1024> {
                addr: Some(addr),
                conns: Vec::new(),
            };
            (0..iters).for_each(|_| w.run(never));
        }
        "http_hello" => {
            let mut w = HttpHello {
                addr: Some(addr),
                ..HttpHello::default()
            };
            (0..iters).for_each(|_| w.run(never));
        }
        other => panic!("drive_external: no row {other:?}; rows: {EXTERNAL_ROWS:?}"),
    }
    iters * ECHO_CONNS * ECHO_ROUNDS
}
