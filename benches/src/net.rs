//! Network workloads: an echo server on each runtime, driven by one load generator that is the
//! same code for both: a single thread multiplexing many non-blocking `mio` connections, so the
//! client costs little and costs the same whichever server it talks to.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

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

/// Drives `conns` connections to `addr`, each doing `rounds` round trips of `size` bytes.
/// With `churn`, each connection does one round trip, closes, and a new one takes its place
/// until `total` connections are done.
fn drive(
    addr: SocketAddr,
    conns: usize,
    rounds: usize,
    size: usize,
    total: usize,
    existing: &mut Vec<TcpStream>,
) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let msg = vec![7u8; size];
    let mut buf = vec![0u8; size.max(4096)];
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
                    if c.sent > c.got {
                        match c.stream.read(&mut buf[..c.sent - c.got]) {
                            Ok(0) => {
                                return Err(io::Error::new(
                                    io::ErrorKind::UnexpectedEof,
                                    "the echo server closed",
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
                    if c.got == size {
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
#[derive(Default)]
pub struct Echo<const SIZE: usize> {
    addr: Option<SocketAddr>,
    conns: Vec<TcpStream>,
}

impl<const SIZE: usize> Echo<SIZE> {
    fn run(&mut self, start: impl FnOnce() -> SocketAddr) {
        let addr = *self.addr.get_or_insert_with(start);
        if self.conns.is_empty() {
            for _ in 0..ECHO_CONNS {
                let s = std::net::TcpStream::connect(addr).expect("connect to the echo server");
                s.set_nonblocking(true).unwrap();
                self.conns.push(TcpStream::from_std(s));
            }
        }
        drive(
            addr,
            ECHO_CONNS,
            ECHO_ROUNDS,
            SIZE,
            ECHO_CONNS,
            &mut self.conns,
        )
        .expect("echo exchange");
    }
}

/// `accept_churn`: 20,000 short connections (connect, one 64-byte exchange, close), 64 in
/// flight.
#[derive(Default)]
pub struct AcceptChurn {
    addr: Option<SocketAddr>,
}

impl AcceptChurn {
    fn run(&mut self, start: impl FnOnce() -> SocketAddr) {
        let addr = *self.addr.get_or_insert_with(start);
        drive(addr, CHURN_IN_FLIGHT, 1, 64, CHURN, &mut Vec::new()).expect("churn");
    }
}

/// Starts pinwheel's echo server: `net::serve`, sessions pinned round-robin.
fn pinwheel_echo(rt: &Pinwheel) -> SocketAddr {
    rt.0.block_on(async {
        let listener = pinwheel::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        drop(pinwheel::spawn(pinwheel::net::serve(
            listener,
            |s: pinwheel::net::TcpStream, _| async move {
                let _ = s.set_nodelay(true);
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
            },
        )));
        addr
    })
}

/// Starts tokio's echo server: a plain accept loop and `tokio::spawn` per connection.
fn tokio_echo(rt: &Tokio) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    rt.0.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let _ = s.set_nodelay(true);
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
                });
            }
        });
        addr
    })
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
