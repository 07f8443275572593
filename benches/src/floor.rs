//! The floor of the network rows: what no runtime can beat on the same load. A bare mio event
//! loop per worker thread (each with its own `SO_REUSEPORT` listener on the same address, its
//! own poller, its connections in a slab), no tasks, no wakers, no timers: accept, read,
//! answer, close, edge-triggered. [`MioFloor`] is the fourth column of the compare runner's
//! network rows and of `echo_cpu`, measured in the same run as pinwheel and tokio, so each
//! runtime's figure stands beside the limit of that machine on that day.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::Tokio;

/// What a floor server answers.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    /// Every byte read, written back (the echo rows).
    Echo,
    /// For every request head read (ended by an empty line), this response (`http_hello`).
    Http(&'static [u8]),
}

/// A group of bare mio servers (started by the workloads, stopped when dropped), beside a
/// multi-thread tokio runtime that the generic `Exec` calls use (as
/// [`TokioTpc`](crate::tpc::TokioTpc) has).
#[derive(Debug)]
pub struct MioFloor {
    rt: Tokio,
    workers: usize,
    servers: Mutex<Vec<Server>>,
}

#[derive(Debug)]
struct Server {
    stop: Arc<AtomicBool>,
    wakers: Vec<Arc<Waker>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for MioFloor {
    fn drop(&mut self) {
        let servers = std::mem::take(&mut *self.servers.lock().unwrap());
        for s in servers {
            s.stop.store(true, Ordering::SeqCst);
            for w in &s.wakers {
                let _ = w.wake();
            }
            for t in s.threads {
                let _ = t.join();
            }
        }
    }
}

const LISTENER: Token = Token(usize::MAX);
const STOP: Token = Token(usize::MAX - 1);

/// One connection: its socket, the bytes read and not answered yet (HTTP), and the bytes of
/// answers not written yet.
struct Conn {
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
}

impl MioFloor {
    /// Starts one server thread per worker, answering as `answer` says; returns the shared
    /// address.
    pub fn serve(&self, answer: Answer) -> SocketAddr {
        let first = crate::tpc::reuseport_listener("127.0.0.1:0".parse().unwrap()).expect("bind");
        let addr = first.local_addr().unwrap();
        let mut listeners = vec![first];
        for _ in 1..self.workers {
            listeners.push(crate::tpc::reuseport_listener(addr).expect("bind a reuseport sibling"));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut wakers = Vec::new();
        let mut threads = Vec::new();
        for (i, l) in listeners.into_iter().enumerate() {
            let poll = Poll::new().expect("a mio poller");
            let waker = Arc::new(Waker::new(poll.registry(), STOP).expect("a mio waker"));
            wakers.push(waker);
            let stop = stop.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("mio-floor-{i}"))
                    .spawn(move || serve_loop(poll, TcpListener::from_std(l), answer, &stop))
                    .unwrap(),
            );
        }
        self.servers.lock().unwrap().push(Server {
            stop,
            wakers,
            threads,
        });
        addr
    }
}

/// One floor thread's event loop, until `stop`.
fn serve_loop(mut poll: Poll, mut listener: TcpListener, answer: Answer, stop: &AtomicBool) {
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .expect("register the listener");
    let mut conns: slab::Slab<Conn> = slab::Slab::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            panic!("mio floor: poll failed: {e}");
        }
        for ev in events.iter() {
            match ev.token() {
                STOP => {}
                LISTENER => loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            let entry = conns.vacant_entry();
                            let token = Token(entry.key());
                            if poll
                                .registry()
                                .register(
                                    &mut stream,
                                    token,
                                    Interest::READABLE | Interest::WRITABLE,
                                )
                                .is_ok()
                            {
                                entry.insert(Conn {
                                    stream,
                                    input: Vec::new(),
                                    output: Vec::new(),
                                });
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => break,
                    }
                },
                Token(k) => {
                    let Some(conn) = conns.get_mut(k) else {
                        continue;
                    };
                    if !service(conn, answer, &mut buf) {
                        let mut conn = conns.remove(k);
                        let _ = poll.registry().deregister(&mut conn.stream);
                    }
                }
            }
        }
    }
}

/// Reads what is there and answers it, then writes what it can; `false` when the connection
/// is done (closed by the peer, or failed).
fn service(conn: &mut Conn, answer: Answer, buf: &mut [u8]) -> bool {
    loop {
        // Flush first: no more is read while answers wait (the peer reads them first).
        while !conn.output.is_empty() {
            match conn.stream.write(&conn.output) {
                Ok(n) => {
                    conn.output.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        let n = match conn.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        };
        let mut owned = Vec::new();
        let out: &[u8] = match answer {
            Answer::Echo => &buf[..n],
            Answer::Http(response) => {
                conn.input.extend_from_slice(&buf[..n]);
                while let Some(end) = conn.input.windows(4).position(|w| w == b"\r\n\r\n") {
                    conn.input.drain(..end + 4);
                    owned.extend_from_slice(response);
                }
                &owned
            }
        };
        // Write the answer at once; what does not fit waits for the next writable event.
        match conn.stream.write(out) {
            Ok(w) => conn.output.extend_from_slice(&out[w..]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => conn.output.extend_from_slice(out),
            Err(_) => return false,
        }
        if n < buf.len() && conn.output.is_empty() {
            // A short read emptied the socket: the next bytes bring a new edge, so the read
            // that would only say `WouldBlock` is spared (as pinwheel and tokio spare it).
            return true;
        }
    }
}

crate::tpc::exec_beside_tokio!(MioFloor, "bare mio loop (floor)", "mio-floor");
