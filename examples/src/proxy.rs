//! A small HAProxy-style HTTP load balancer on pinwheel: the code of `examples/proxy.rs`, kept
//! in the library so that an integration test can run it end to end.
//!
//! - Client sessions are served with [`pinwheel::net::serve`]: each connection, its HTTP/1.1
//!   state and its per-thread counters live on one worker thread (they hold `Rc`/`RefCell`,
//!   which the compiler would refuse elsewhere).
//! - HTTP/1.1 is forwarded HAProxy's way (the `h1` module): a head is parsed in the
//!   session's buffer and written again without its hop-by-hop fields; a body passes as the
//!   bytes that came, framed by its length or its chunks. A request costs one read and one
//!   write per direction, no allocation, and no task but the session's. (hyper serves the
//!   stats page and the embedded demo backends.) The listener hands a connection over with
//!   its first request ([`TcpListener::set_defer_accept`]), so that first read never waits.
//! - Connections to the backends are kept per thread and shared by that thread's sessions
//!   (HAProxy's per-thread idle connection pools, `http-reuse always`): a client that opens
//!   a connection per request costs no backend connect. Hop-by-hop headers (`Connection`,
//!   `Keep-Alive`, ...) are not passed on, so a client's `Connection: close` closes its own
//!   connection only. Idle pooled connections are closed after one to two health-check
//!   rounds unused, and at a soft stop.
//! - Timeouts come from the workers' timer wheels: connect (to a backend), server (time to the
//!   backend's response headers), idle (no byte from or to the client; the same timer is moved
//!   on every read and write, which costs a field write).
//! - Backends are checked on a timer (a TCP connect); a backend that refuses a connection is
//!   marked down at once. No backend up: `503 Service Unavailable`.
//! - Soft stop (Ctrl-C), as HAProxy does it: stop accepting, then tell every thread through its
//!   mailbox to close its idle keep-alive connections (a request in flight is answered
//!   first), and wait for the sessions to end.
//! - `/stats` on a separate port: the backends, each thread's own counters (collected by asking
//!   every thread through a [`WorkList`]: the counters are plain `Cell`s that only their
//!   thread touches) and [`pinwheel::Handle::metrics`], HAProxy's `show activity`; `/tasks`
//!   lists the live tasks ([`pinwheel::Handle::dump_tasks`], HAProxy's `show tasks`);
//!   `/profiling` shows the task profile ([`pinwheel::Handle::profile`], HAProxy's `show
//!   profiling`), and `/profiling?on` (`?off`, `?auto`) sets the profiling mode first. The
//!   runtime table of `/stats` has each thread's average loop turn and stolen time.

use std::cell::{Cell, RefCell};
use std::convert::Infallible;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use pinwheel::net::{Balance, Server, TcpListener, TcpStream};
use pinwheel::profile::Mode as ProfilingMode;
use pinwheel::time::{Sleep, sleep, timeout};
use pinwheel::{Handle, WorkList};

mod config;
mod h1;
pub use config::{ArgsError, Config, Policy, USAGE};
#[cfg(fuzzing)]
pub use h1::fuzz as fuzz_h1;

/// One backend and what the proxy knows of it.
#[derive(Debug)]
struct Backend {
    addr: SocketAddr,
    up: AtomicBool,
    /// Set by the first check, which reports the state whatever it is.
    checked: AtomicBool,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    failures: AtomicU64,
}

impl Backend {
    fn set_up(&self, up: bool, why: &str) {
        let first = !self.checked.swap(true, Ordering::SeqCst);
        if self.up.swap(up, Ordering::SeqCst) != up || first {
            log(format_args!(
                "backend {} is {} ({why})",
                self.addr,
                if up { "UP" } else { "DOWN" }
            ));
        }
    }
}

/// What every thread shares.
struct Shared {
    id: u64,
    config: Config,
    backends: Vec<Backend>,
    next: AtomicUsize,
    started: Instant,
    stopped: AtomicBool,
}

static NEXT_PROXY: AtomicU64 = AtomicU64::new(1);

/// A thread's own counters: touched only on that thread, by the sessions pinned there.
#[derive(Default, Clone, Copy, Debug)]
struct ThreadCounters {
    sessions: u64,
    live_sessions: u64,
    requests: u64,
    errors: u64,
}

thread_local! {
    /// Per proxy (several may share a runtime in tests), this thread's counters.
    static COUNTERS: RefCell<ByProxy<ThreadCounters>> = const { RefCell::new(ByProxy::new()) };
    /// Per proxy, this thread's live client sessions, so that a soft stop can reach them.
    /// A session removes itself when it ends (its slab key), so nothing of an ended session
    /// stays here (a list of weak handles pruned only on insert kept each ended session's
    /// allocation until the next session: the soak saw the heap grow with bursts).
    static SESSIONS: RefCell<ByProxy<slab::Slab<Rc<SoftStop>>>> =
        const { RefCell::new(ByProxy::new()) };
    /// Per proxy, per backend, this thread's idle connections to the backends, most recently
    /// used last: HAProxy's per-thread idle connection pools (`http-reuse always`). Any
    /// session of this thread takes one for a request and puts it back with the response, so
    /// a client that opens a connection per request costs no backend connect.
    static IDLE: RefCell<ByProxy<Vec<Vec<Pooled>>>> = const { RefCell::new(ByProxy::new()) };
}

/// A thread's values per proxy, found by a look down a short list (a runtime serves one
/// proxy, or a few in tests): no hashing on a request's path (hashing the proxy's id with
/// std's SipHash for the counters, the session list and the pool was 2% of the instructions
/// of a `Connection: close` request).
struct ByProxy<T>(Vec<(u64, T)>);

impl<T: Default> ByProxy<T> {
    const fn new() -> ByProxy<T> {
        ByProxy(Vec::new())
    }

    fn get(&self, proxy: u64) -> Option<&T> {
        self.0.iter().find(|(p, _)| *p == proxy).map(|(_, v)| v)
    }

    fn get_mut(&mut self, proxy: u64) -> Option<&mut T> {
        self.0.iter_mut().find(|(p, _)| *p == proxy).map(|(_, v)| v)
    }

    /// The value of `proxy`, made (the default) if it has none yet.
    fn entry(&mut self, proxy: u64) -> &mut T {
        let k = match self.0.iter().position(|(p, _)| *p == proxy) {
            Some(k) => k,
            None => {
                self.0.push((proxy, T::default()));
                self.0.len() - 1
            }
        };
        &mut self.0[k].1
    }
}

/// A connection to a backend, with the bytes read from it not yet passed on. In a thread's
/// idle pool nothing polls it: one the backend closed meanwhile is seen readable and closed
/// by [`take_idle`], or, closed as it is taken, noticed by its request, which then goes on a
/// new connection (see [`Failure::Closed`]).
struct BackendConn {
    stream: TcpStream,
    buf: h1::Buf,
}

/// A backend connection in a thread's idle pool.
struct Pooled {
    conn: BackendConn,
    /// Seen idle by a purge round (see [`purge_idle`]).
    seen: bool,
}

/// At most this many connections per backend wait in a thread's pool (past it, the one
/// idle longest is closed).
const POOL_MAX: usize = 256;

/// The connection to backend `i` this thread used last, from its pool. Nothing may come from
/// a backend between responses: one that became readable while idle was closed by the
/// backend, or carries something no request asked for (a `408` some servers send before they
/// close): it is closed, not taken. A look at the socket's readiness, no system call (the
/// last read of a response left it clear, by the short-read rule; a read that happened to
/// fill the buffer exactly leaves it set and costs a new connection).
fn take_idle(proxy: u64, i: usize) -> Option<BackendConn> {
    IDLE.with(|p| {
        let mut p = p.borrow_mut();
        let list = p.get_mut(proxy)?.get_mut(i)?;
        let mut cx = Context::from_waker(Waker::noop());
        while let Some(c) = list.pop() {
            if c.conn.stream.poll_read_ready(&mut cx).is_pending() {
                return Some(c.conn);
            }
        }
        None
    })
}

/// Puts a connection to backend `i` (of `backends`) back in this thread's pool.
fn put_idle(proxy: u64, i: usize, backends: usize, conn: BackendConn) {
    IDLE.with(|p| {
        let mut p = p.borrow_mut();
        let lists = p.entry(proxy);
        if lists.is_empty() {
            lists.resize_with(backends, Vec::new);
        }
        let list = &mut lists[i];
        if list.len() >= POOL_MAX {
            list.remove(0);
        }
        list.push(Pooled { conn, seen: false });
    });
}

/// A purge round of this thread's pool for `proxy` (HAProxy's `pool-purge-delay`, in rounds
/// of the health checks' timer): closes the connections a previous round already saw idle
/// (so unused for one to two rounds), and marks the others; with `all`, closes them all.
fn purge_idle(proxy: u64, all: bool) {
    // Taken out of the pool first and dropped after, outside the borrow.
    let purged: Vec<Pooled> = IDLE.with(|p| {
        let mut p = p.borrow_mut();
        let Some(lists) = p.get_mut(proxy) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for list in lists.iter_mut() {
            let (old, mut keep): (Vec<Pooled>, Vec<Pooled>) =
                list.drain(..).partition(|c| all || c.seen);
            for c in &mut keep {
                c.seen = true;
            }
            *list = keep;
            out.extend(old);
        }
        out
    });
    drop(purged);
}

/// What a worker is asked through the proxy's work list.
enum Ask {
    /// Its counters, for `/stats`.
    Counters(Arc<Gather>),
    /// To close its sessions' idle keep-alive connections and its pooled backend
    /// connections (soft stop).
    SoftStop,
    /// A purge round of its pooled backend connections (`true`: close them all).
    PurgeIdle(bool),
}

/// A session's soft-stop flag and the waker to tell it by; only its thread touches it.
#[derive(Default)]
struct SoftStop {
    asked: Cell<bool>,
    waker: RefCell<Option<std::task::Waker>>,
}

impl SoftStop {
    fn ask(&self) {
        self.asked.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

fn count(proxy: u64, f: impl FnOnce(&mut ThreadCounters)) {
    COUNTERS.with(|c| f(c.borrow_mut().entry(proxy)));
}

/// A running proxy: its listeners, backends and tasks.
pub struct Proxy {
    shared: Arc<Shared>,
    front: Server,
    stats: Server,
    /// The embedded backends (when no `--backend` was given).
    embedded: Vec<Server>,
    listen_addr: SocketAddr,
    stats_addr: Option<SocketAddr>,
    collect: WorkList<Ask>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("listen_addr", &self.listen_addr)
            .field("stats_addr", &self.stats_addr)
            .field("backends", &self.shared.backends.len())
            .field("embedded_backends", &self.embedded.len())
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// Starts the proxy on the current runtime: binds the listener (and the stats page),
    /// starts the embedded backends if none are configured, checks every backend once, and
    /// starts serving.
    ///
    /// # Errors
    ///
    /// When an address cannot be bound (the message names it and what to do).
    pub async fn start(mut config: Config) -> io::Result<Proxy> {
        let id = NEXT_PROXY.fetch_add(1, Ordering::Relaxed);
        let mut embedded = Vec::new();
        if config.backends.is_empty() {
            for i in 0..2 {
                let (addr, server) = start_backend(format!("embedded backend {i}")).await?;
                config.backends.push(addr);
                embedded.push(server);
            }
        }
        let front_listener = bind(config.listen, "--listen").await?;
        // Accepted connections have TCP_NODELAY from the listener: no `setsockopt` per
        // connection (HAProxy makes one).
        front_listener.set_nodelay(true)?;
        // Connections come with their request (TCP_DEFER_ACCEPT, HAProxy's `option
        // defer-accept`): the session's first read finds it, so a short connection is never
        // registered with the poller and no worker wakes for a bare handshake. A client that
        // stays silent is handed over after a second or two, then the idle timeout runs. The
        // option is Linux's: elsewhere the proxy goes without.
        match front_listener.set_defer_accept(Some(Duration::from_secs(1))) {
            Err(e) if e.kind() != io::ErrorKind::Unsupported => return Err(e),
            _ => {}
        }
        let listen_addr = front_listener.local_addr()?;
        let stats_listener = match config.stats {
            Some(a) => Some(bind(a, "--stats").await?),
            None => None,
        };
        let stats_addr = stats_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        let shared = Arc::new(Shared {
            id,
            backends: config
                .backends
                .iter()
                .map(|&addr| Backend {
                    addr,
                    up: AtomicBool::new(false),
                    checked: AtomicBool::new(false),
                    in_flight: AtomicUsize::new(0),
                    requests: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                })
                .collect(),
            config,
            next: AtomicUsize::new(0),
            started: Instant::now(),
            stopped: AtomicBool::new(false),
        });
        // A first check, so that the proxy starts with an honest view of its backends.
        check_backends(&shared).await;

        // Each worker answers "what are your counters?" and "stop softly" through its
        // mailbox, looking only at what its own thread holds.
        let collect = WorkList::new(move |ask: Ask| match ask {
            Ask::Counters(gather) => {
                let index = pinwheel::current_worker().unwrap_or(0);
                let mine = COUNTERS.with(|c| c.borrow().get(gather.proxy).copied());
                gather.put(index, mine.unwrap_or_default());
            }
            Ask::SoftStop => {
                SESSIONS.with(|s| {
                    for (_, session) in s.borrow().get(id).into_iter().flatten() {
                        session.ask();
                    }
                });
                purge_idle(id, true);
            }
            Ask::PurgeIdle(all) => purge_idle(id, all),
        });
        drop(pinwheel::spawn(health_checks(
            shared.clone(),
            collect.clone(),
        )));

        let front = Server::new();
        let (s, f) = (shared.clone(), front.clone());
        drop(pinwheel::spawn(async move {
            let result = f
                .serve_with(front_listener, Balance::RoundRobin, move |stream, peer| {
                    client_session(s.clone(), stream, peer)
                })
                .await;
            if let Err(e) = result {
                log(format_args!("the listener failed: {e}"));
            }
        }));
        let stats = Server::new();
        if let Some(listener) = stats_listener {
            let (s, st, list) = (shared.clone(), stats.clone(), collect.clone());
            drop(pinwheel::spawn(async move {
                let _ = st
                    .serve(listener, move |stream, _| {
                        stats_session(s.clone(), list.clone(), stream)
                    })
                    .await;
            }));
        }
        Ok(Proxy {
            shared,
            front,
            stats,
            embedded,
            listen_addr,
            stats_addr,
            collect,
        })
    }

    /// Where clients connect.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    /// Where `/stats` is served, if anywhere.
    pub fn stats_addr(&self) -> Option<SocketAddr> {
        self.stats_addr
    }

    /// The backends' addresses and whether each is up.
    pub fn backends(&self) -> Vec<(SocketAddr, bool)> {
        self.shared
            .backends
            .iter()
            .map(|b| (b.addr, b.up.load(Ordering::SeqCst)))
            .collect()
    }

    /// The `/stats` page, as text.
    pub async fn stats_page(&self) -> String {
        render_stats(&self.shared, &self.collect).await
    }

    /// Stops accepting (clients and stats) and the health checks, and asks every thread to
    /// close its idle keep-alive connections (requests in flight are answered first).
    pub fn stop(&self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.front.stop();
        self.stats.stop();
        for t in 0..self.collect.threads() {
            // A closed list means the runtime is shutting down, sessions and all.
            let _ = self.collect.push(t, Ask::SoftStop);
        }
    }

    /// Closes the idle pooled connections to the backends, on every thread (those in use
    /// close when their response is done): what a soft stop does too. For tests and the
    /// soak, which count connections.
    pub fn close_idle_backend_connections(&self) {
        for t in 0..self.collect.threads() {
            let _ = self.collect.push(t, Ask::PurgeIdle(true));
        }
    }

    /// Waits for the client sessions to end, for at most `deadline`; `true` if they all did.
    /// Then stops the embedded backends.
    pub async fn drain(&self, deadline: Duration) -> bool {
        let drained = self.front.drain(deadline).await;
        for b in &self.embedded {
            b.stop();
        }
        drained
    }
}

async fn bind(addr: SocketAddr, flag: &str) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        let hint = if e.kind() == io::ErrorKind::AddrInUse {
            format!("; choose another with {flag} (port 0 picks a free one)")
        } else {
            String::new()
        };
        io::Error::new(e.kind(), format!("{e}{hint}"))
    })
}

/// One line on stderr, written whole: `eprintln!` of formatted pieces makes a system call per
/// piece on the unbuffered stderr (a dozen per line).
fn log(msg: fmt::Arguments<'_>) {
    use std::io::Write as _;
    let line = format!("[proxy] {msg}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Checks every backend (a TCP connect within the connect timeout) and marks it up or down.
async fn check_backends(shared: &Shared) {
    for b in &shared.backends {
        match timeout(shared.config.connect_timeout, TcpStream::connect(b.addr)).await {
            Ok(Ok(_)) => b.set_up(true, "health check passed"),
            Ok(Err(e)) => b.set_up(false, &format!("health check: {e}")),
            Err(_) => b.set_up(false, "health check: connect timed out"),
        }
    }
}

/// The health checks, on a timer; each round is also a purge round of every thread's pool
/// of idle backend connections.
async fn health_checks(shared: Arc<Shared>, threads: WorkList<Ask>) {
    let mut tick = pinwheel::time::interval(shared.config.check_interval);
    tick.tick().await;
    while !shared.stopped.load(Ordering::SeqCst) {
        tick.tick().await;
        check_backends(&shared).await;
        for t in 0..threads.threads() {
            let _ = threads.push(t, Ask::PurgeIdle(false));
        }
    }
}

/// One client connection, pinned to the worker that owns its socket: its requests one at a
/// time (a pipelined one waits in the buffer), each passed to a backend and its response
/// back, HAProxy's way (see [`h1`]): one read and one write per direction per request, no
/// allocation per request, no other task. The client is not read while its request is
/// served (HAProxy's default, without `option abortonclose`): one that shuts its write side
/// down to wait for the answer still gets it.
async fn client_session(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let id = shared.id;
    count(id, |c| {
        c.sessions += 1;
        c.live_sessions += 1;
    });
    // Reachable by a soft stop from this thread's mailbox handler.
    let soft = Rc::new(SoftStop::default());
    let key = SESSIONS.with(|s| s.borrow_mut().entry(id).insert(soft.clone()));
    /// Takes the session out of its thread's list however the session ends.
    struct Listed(u64, usize);
    impl Drop for Listed {
        fn drop(&mut self) {
            let _ = SESSIONS.try_with(|s| {
                if let Some(list) = s.borrow_mut().get_mut(self.0) {
                    list.try_remove(self.1);
                }
            });
        }
    }
    let listed = Listed(id, key);
    if shared.stopped.load(Ordering::SeqCst) {
        soft.asked.set(true); // accepted just before the stop
    }
    // The client's address as the `X-Forwarded-For` value, written once for all its requests.
    let mut xff = [0u8; 48];
    let xff_len = {
        use std::io::Write as _;
        let mut w = &mut xff[..];
        let _ = write!(w, "{}", peer.ip());
        48 - w.len()
    };
    let config = &shared.config;
    let mut session = Session {
        shared: &shared,
        soft: &soft,
        client: stream,
        peer,
        buf: h1::Buf::new(),
        // Room for the heads of common requests and responses: no growth on the way.
        out: Vec::with_capacity(1024),
        idle: sleep(config.idle_timeout),
        server: sleep(config.server_timeout),
        xff: &xff[..xff_len],
    };
    // The listener hands the connection over with its request (defer-accept): the first
    // read finds it, with no `recv` that would block and no registration with the poller.
    // An error of the client's connection (reset, gone, timed out) ends the session: nothing
    // to say about it.
    let _ = session.run().await;
    drop(session);
    drop(listed);
    drop(soft);
    count(id, |c| c.live_sessions -= 1);
}

/// A client session's state (see [`client_session`]).
struct Session<'a> {
    shared: &'a Shared,
    soft: &'a SoftStop,
    client: TcpStream,
    peer: SocketAddr,
    /// The client's bytes not yet passed on: a request's head, its body, requests pipelined
    /// after it.
    buf: h1::Buf,
    /// What is written next: a request's head (and the body bytes read with it) for the
    /// backend, kept until the answer begins (a request on a pooled connection the backend
    /// had closed goes again on a new one); then the response's head for the client.
    out: Vec<u8>,
    /// The idle timeout: nothing from or to the client for that long ends the session. One
    /// timer, moved on every read and write (a field write: see `Instant::recent`).
    idle: Sleep,
    /// The server timeout: bounds the wait for a backend's response head, then each wait for
    /// more of its body.
    server: Sleep,
    xff: &'a [u8],
}

/// What a wait for the client brought.
enum ClientRead {
    /// Bytes (0: the client closed its side).
    Bytes(usize),
    /// The buffer is full and holds no complete head.
    Full,
    /// The idle timeout fired.
    TimedOut,
    /// A soft stop asked the session to end (it had no request in progress).
    Stopped,
}

/// How an exchange with a backend failed.
enum Failure {
    /// The backend closed (or reset) the connection before any byte of an answer: a pooled
    /// connection it closed while idle; the request may go again on a new one.
    Closed,
    /// No response head within the server timeout.
    Timeout,
    /// The backend failed before the response began: the proxy answers for it.
    Backend(String),
    /// The client's connection failed, or the backend's after the response began: the session
    /// ends.
    Abort(io::Error),
}

/// How passing a body on failed.
enum Passing {
    /// Reading the side it comes from.
    From(io::Error),
    /// Writing the side it goes to.
    To(io::Error),
    /// The body's framing.
    Bad(h1::Bad),
}

impl Session<'_> {
    /// Serves the client's requests until its connection is to close.
    async fn run(&mut self) -> io::Result<()> {
        while let Some(req) = self.read_request().await? {
            count(self.shared.id, |c| c.requests += 1);
            if !self.forward(req).await? {
                break;
            }
        }
        Ok(())
    }

    /// The next request's head, parsed and written for the backend into `out`; `None` when
    /// the session is to end (the client closed, timed out, was refused, or a soft stop came).
    async fn read_request(&mut self) -> io::Result<Option<h1::RequestHead>> {
        loop {
            if !self.buf.is_empty() {
                self.out.clear();
                match h1::request(self.buf.data(), self.xff, &mut self.out) {
                    Ok(Some(req)) => {
                        self.buf.consume(req.len);
                        return Ok(Some(req));
                    }
                    Ok(None) => {}
                    Err(bad) => {
                        self.refuse(400, "Bad Request", bad.0).await;
                        return Ok(None);
                    }
                }
            }
            // The wait for a head's first bytes is the idle timeout from the last exchange;
            // the rest of the head must come within it too (a slow client does not hold a
            // session by sending a byte at a time).
            let started = !self.buf.is_empty();
            match self.read_client(!started).await? {
                ClientRead::Bytes(0) | ClientRead::Stopped => return Ok(None),
                ClientRead::Bytes(_) => {}
                ClientRead::Full => {
                    let what = "a request head over 16 KiB";
                    self.refuse(431, "Request Header Fields Too Large", what)
                        .await;
                    return Ok(None);
                }
                ClientRead::TimedOut => {
                    if started {
                        let what = "the request head did not come within the idle timeout";
                        self.refuse(408, "Request Timeout", what).await;
                    }
                    return Ok(None);
                }
            }
        }
    }

    /// Waits for bytes from the client (or its idle timeout, or a soft stop while it has no
    /// request in progress); `push`: a read moves the idle timeout.
    async fn read_client(&mut self, push: bool) -> io::Result<ClientRead> {
        let between_requests = self.buf.is_empty();
        let every = self.shared.config.idle_timeout;
        let Self {
            client,
            buf,
            idle,
            soft,
            ..
        } = self;
        let Some(room) = buf.room() else {
            return Ok(ClientRead::Full);
        };
        std::future::poll_fn(|cx| match client.poll_read_into(cx, room) {
            Poll::Ready(Ok(n)) => {
                if push {
                    idle.reset(pinwheel::time::Instant::recent() + every);
                }
                Poll::Ready(Ok(ClientRead::Bytes(n)))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if between_requests {
                    if soft.asked.get() {
                        return Poll::Ready(Ok(ClientRead::Stopped));
                    }
                    let mut w = soft.waker.borrow_mut();
                    if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        *w = Some(cx.waker().clone());
                    }
                }
                match Pin::new(&mut *idle).poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Ok(ClientRead::TimedOut)),
                    Poll::Pending => Poll::Pending,
                }
            }
        })
        .await
    }

    /// Passes `req` (its head in `out`) to a backend and the response back; whether the
    /// client's connection stays open for another request.
    async fn forward(&mut self, req: h1::RequestHead) -> io::Result<bool> {
        let shared = self.shared;
        let mut body = req.body.clone();
        // The body bytes read with the head go with it, in one write.
        let (k, body_done) = match body.take(self.buf.data()) {
            Ok(t) => t,
            Err(bad) => {
                self.refuse(400, "Bad Request", bad.0).await;
                return Ok(false);
            }
        };
        self.out.extend_from_slice(&self.buf.data()[..k]);
        self.buf.consume(k);
        if req.expect_continue && !body_done {
            // The backend does not see the `Expect`: the client may send its body now.
            let every = shared.config.idle_timeout;
            send_all(
                &self.client,
                b"HTTP/1.1 100 Continue\r\n\r\n",
                &mut self.idle,
                every,
            )
            .await?;
        }
        // After an error page, the client's connection stays open if its request was read whole.
        let keep = req.keep_alive && body_done;
        'backends: for i in candidates(shared) {
            let backend = &shared.backends[i];
            // The connection this thread used last; a new one when it has none.
            let mut pooled = take_idle(shared.id, i);
            loop {
                let reused = pooled.is_some();
                let mut conn = match pooled.take() {
                    Some(c) => c,
                    // Boxed: the connect path's state would be most of the session's size.
                    None => match Box::pin(connect_backend(shared, i)).await {
                        Ok(c) => c,
                        Err(e) => {
                            // Nothing was sent: the next backend may take the request.
                            backend.failures.fetch_add(1, Ordering::Relaxed);
                            backend.set_up(false, &e);
                            continue 'backends;
                        }
                    },
                };
                backend.requests.fetch_add(1, Ordering::Relaxed);
                backend.in_flight.fetch_add(1, Ordering::Relaxed);
                let done = self.exchange(&mut conn, &req, &mut body, body_done).await;
                backend.in_flight.fetch_sub(1, Ordering::Relaxed);
                let what = match done {
                    Ok((reusable, close)) => {
                        if reusable && !shared.stopped.load(Ordering::SeqCst) {
                            put_idle(shared.id, i, shared.backends.len(), conn);
                        }
                        return Ok(!close);
                    }
                    // The pooled connection closed under the request, which is still whole in
                    // `out`: a new connection.
                    Err(Failure::Closed) if reused && body_done => continue,
                    Err(Failure::Abort(e)) => return Err(e),
                    Err(Failure::Closed) => "closed the connection before answering".to_owned(),
                    Err(Failure::Backend(what)) => what,
                    Err(Failure::Timeout) => {
                        backend.failures.fetch_add(1, Ordering::Relaxed);
                        let text = format!(
                            "504 gateway timeout: backend {} sent no response within {:?}",
                            backend.addr, shared.config.server_timeout
                        );
                        self.answer(504, "Gateway Timeout", &text, !keep).await?;
                        return Ok(keep);
                    }
                };
                backend.failures.fetch_add(1, Ordering::Relaxed);
                let text = format!("502 bad gateway: backend {}: {what}", backend.addr);
                self.answer(502, "Bad Gateway", &text, !keep).await?;
                return Ok(keep);
            }
        }
        let text = "503 service unavailable: no backend is up";
        self.answer(503, "Service Unavailable", text, !keep).await?;
        Ok(keep)
    }

    /// One request (its head, and the body bytes read with it, in `out`; the rest of the body
    /// still to come unless `body_done`) on `conn`, and its response to the client. Whether
    /// `conn` may take another request, and whether the client's connection closes now.
    async fn exchange(
        &mut self,
        conn: &mut BackendConn,
        req: &h1::RequestHead,
        body: &mut h1::Framing,
        body_done: bool,
    ) -> Result<(bool, bool), Failure> {
        let config = &self.shared.config;
        let (idle, server) = (config.idle_timeout, config.server_timeout);
        self.server
            .reset(pinwheel::time::Instant::recent() + server);
        requeue().await;
        if let Err(e) = send_all(&conn.stream, &self.out, &mut self.server, server).await {
            return Err(closed_or(e));
        }
        if !body_done {
            match pass_body(
                body,
                (&self.client, &mut self.buf, &mut self.idle, idle),
                (&conn.stream, &mut self.server, server),
            )
            .await
            {
                Ok(()) => {}
                Err(Passing::From(e)) => return Err(Failure::Abort(e)),
                Err(Passing::To(e)) => return Err(Failure::Backend(e.to_string())),
                Err(Passing::Bad(bad)) => {
                    self.refuse(400, "Bad Request", bad.0).await;
                    return Err(Failure::Abort(io::Error::other(bad.0)));
                }
            }
            // The response's head bounded from the end of the request.
            self.server
                .reset(pinwheel::time::Instant::recent() + server);
        }

        let close =
            !req.keep_alive || self.soft.asked.get() || self.shared.stopped.load(Ordering::SeqCst);
        let answering = h1::Answering {
            head: req.head,
            close,
            http10_keep_alive: req.http10 && req.keep_alive,
        };
        // Any byte of an answer came (an interim 1xx included).
        let mut answered = false;
        let resp = loop {
            if !conn.buf.is_empty() {
                answered = true;
                self.out.clear();
                match h1::response(conn.buf.data(), answering, &mut self.out) {
                    // An interim response (`100 Continue`: the proxy answered it already).
                    Ok(Some(r)) if r.status < 200 => conn.buf.consume(r.len),
                    Ok(Some(r)) => {
                        conn.buf.consume(r.len);
                        break r;
                    }
                    Ok(None) => {}
                    Err(bad) => return Err(Failure::Backend(bad.0.to_owned())),
                }
                if !conn.buf.is_empty() {
                    continue;
                }
            }
            let Some(room) = conn.buf.room() else {
                return Err(Failure::Backend("a response head over 16 KiB".into()));
            };
            match recv(&conn.stream, room, &mut self.server, None).await {
                Ok(0) if !answered => return Err(Failure::Closed),
                Ok(0) => {
                    return Err(Failure::Backend(
                        "closed the connection in the middle of a response head".into(),
                    ));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(Failure::Timeout),
                Err(e) if !answered => return Err(closed_or(e)),
                Err(e) => return Err(Failure::Backend(e.to_string())),
            }
        };

        // The head, and the body bytes read with it, in one write.
        let mut body = resp.body;
        let (k, done) = body
            .take(conn.buf.data())
            .map_err(|bad| Failure::Backend(bad.0.to_owned()))?;
        self.out.extend_from_slice(&conn.buf.data()[..k]);
        conn.buf.consume(k);
        requeue().await;
        // The whole response, and the client's connection closes after it: its last write.
        let last = done && close;
        send_out(&self.client, &self.out, &mut self.idle, idle, last)
            .await
            .map_err(Failure::Abort)?;
        if !done {
            match pass_body(
                &mut body,
                (&conn.stream, &mut conn.buf, &mut self.server, server),
                (&self.client, &mut self.idle, idle),
            )
            .await
            {
                Ok(()) => {}
                Err(Passing::To(e)) => return Err(Failure::Abort(e)),
                // The response began: the client learns of the failure by the close.
                Err(Passing::From(e)) => return Err(Failure::Abort(e)),
                Err(Passing::Bad(bad)) => return Err(Failure::Abort(io::Error::other(bad.0))),
            }
        }
        let until_close = body == h1::Framing::UntilClose;
        Ok((resp.reusable && conn.buf.is_empty(), close || until_close))
    }

    /// Refuses the client's request with an error page and ends the session.
    async fn refuse(&mut self, status: u16, reason: &str, what: &str) {
        log(format_args!(
            "client {}: {status} {reason}: {what}",
            self.peer
        ));
        let _ = self
            .answer(status, reason, &format!("{status} {reason}: {what}"), true)
            .await;
    }

    /// The proxy's own response (an error page of `text`), saying `connection: close` if
    /// `close` (the session then ends: the close follows at once).
    async fn answer(
        &mut self,
        status: u16,
        reason: &str,
        text: &str,
        close: bool,
    ) -> io::Result<()> {
        count(self.shared.id, |c| c.errors += 1);
        self.out.clear();
        let connection = if close { "connection: close\r\n" } else { "" };
        let _ = write!(
            Adapter(&mut self.out),
            "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n{connection}\r\n{text}\n",
            text.len() + 1
        );
        let every = self.shared.config.idle_timeout;
        send_out(&self.client, &self.out, &mut self.idle, every, close).await
    }
}

/// Goes to the back of the worker's queue once, before a write to a peer: the sessions woken
/// in the same turn run first, so their writes reach the backends (and the clients) close
/// together, and each peer wakes once for several. Writing at once, each as its session ran,
/// spread them out: the backends woke 0.55 times per request (0.17 behind the two tasks per
/// request of a hyper client and server) and spent 30% more CPU per request.
async fn requeue() {
    let mut once = false;
    std::future::poll_fn(|cx| {
        if once {
            return Poll::Ready(());
        }
        once = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

/// `fmt::Write` into a byte vector.
struct Adapter<'a>(&'a mut Vec<u8>);

impl fmt::Write for Adapter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// A failed write or read before any byte of an answer: the backend closed or reset the
/// connection ([`Failure::Closed`]), or another error.
fn closed_or(e: io::Error) -> Failure {
    use io::ErrorKind::*;
    match e.kind() {
        BrokenPipe | ConnectionReset | ConnectionAborted => Failure::Closed,
        TimedOut => Failure::Timeout,
        _ => Failure::Backend(e.to_string()),
    }
}

/// Passes a body on, as `framing` delimits it: the bytes already read (in `from`'s buffer),
/// then what comes, through the buffer, until its end. Each side's reads or writes move its
/// timer (`TimedOut` when one fires).
async fn pass_body(
    framing: &mut h1::Framing,
    (from, buf, from_timer, from_every): (&TcpStream, &mut h1::Buf, &mut Sleep, Duration),
    (to, to_timer, to_every): (&TcpStream, &mut Sleep, Duration),
) -> Result<(), Passing> {
    loop {
        let (k, done) = framing.take(buf.data()).map_err(Passing::Bad)?;
        if k > 0 {
            send_all(to, &buf.data()[..k], to_timer, to_every)
                .await
                .map_err(Passing::To)?;
            buf.consume(k);
        }
        if done {
            return Ok(());
        }
        // Not done: all that was there was taken, so the buffer has room.
        let Some(room) = buf.room() else {
            return Err(Passing::Bad(h1::Bad(
                "a body's bytes were left in a full buffer",
            )));
        };
        match recv(from, room, from_timer, Some(from_every)).await {
            Ok(0) if *framing == h1::Framing::UntilClose => return Ok(()),
            Ok(0) => {
                return Err(Passing::From(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection closed in the middle of a body",
                )));
            }
            Ok(_) => {}
            Err(e) => return Err(Passing::From(e)),
        }
    }
}

/// The poll of an I/O call `io`, or, while it waits, `TimedOut` once `timer` has fired.
fn or_timeout<T>(
    io: Poll<io::Result<T>>,
    timer: &mut Sleep,
    cx: &mut Context<'_>,
) -> Poll<io::Result<T>> {
    match io {
        Poll::Pending => match Pin::new(timer).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer sent or took nothing within its timeout",
            ))),
            Poll::Pending => Poll::Pending,
        },
        r => r,
    }
}

/// Writes all of `data` to `stream`, failing with `TimedOut` when `timer` fires first; every
/// write moves `timer` to `every` past the worker's turn reading of the clock.
async fn send_all(
    stream: &TcpStream,
    data: &[u8],
    timer: &mut Sleep,
    every: Duration,
) -> io::Result<()> {
    send_out(stream, data, timer, every, false).await
}

/// [`send_all`]; with `last`, these are the last bytes before the connection closes: they are
/// written for the shutdown of the write side that follows (`MSG_MORE`), so that they and the
/// FIN travel in one segment (one packet fewer per connection for both ends). The shutdown
/// sends them at once: a close alone would, with request bytes left unread (a pipelined
/// request after a `Connection: close`, a refused head), reset the connection and drop them.
async fn send_out(
    stream: &TcpStream,
    mut data: &[u8],
    timer: &mut Sleep,
    every: Duration,
    last: bool,
) -> io::Result<()> {
    while !data.is_empty() {
        let n = std::future::poll_fn(|cx| {
            let write = if last {
                stream.poll_write_more(cx, data)
            } else {
                stream.poll_write_buf(cx, data)
            };
            or_timeout(write, timer, cx)
        })
        .await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        data = &data[n..];
        timer.reset(pinwheel::time::Instant::recent() + every);
    }
    if last {
        // A peer that is gone already makes it fail: the close follows all the same.
        let _ = stream.shutdown_std(std::net::Shutdown::Write);
    }
    Ok(())
}

/// Reads what `stream` has into `room` (a buffer's vector, with room), failing with
/// `TimedOut` when `timer` fires first; with `every`, a read moves `timer` that far past the
/// worker's turn reading of the clock. `Ok(0)`: the peer closed its side.
async fn recv(
    stream: &TcpStream,
    room: &mut Vec<u8>,
    timer: &mut Sleep,
    every: Option<Duration>,
) -> io::Result<usize> {
    let n =
        std::future::poll_fn(|cx| or_timeout(stream.poll_read_into(cx, room), timer, cx)).await?;
    if let Some(every) = every {
        timer.reset(pinwheel::time::Instant::recent() + every);
    }
    Ok(n)
}

/// The backends to try for one request, best first: the policy's choice among those up,
/// then the others that are up, in order after it.
fn candidates(shared: &Shared) -> impl Iterator<Item = usize> + '_ {
    let n = shared.backends.len();
    let is_up = |i: usize| shared.backends[i].up.load(Ordering::SeqCst);
    let up = (0..n).filter(|&i| is_up(i)).count();
    let first = match shared.config.balance {
        // The k-th backend up.
        Policy::RoundRobin if up > 0 => {
            let k = shared.next.fetch_add(1, Ordering::Relaxed) % up;
            (0..n).filter(|&i| is_up(i)).nth(k).unwrap_or(0)
        }
        Policy::LeastConn => (0..n)
            .filter(|&i| is_up(i))
            .min_by_key(|&i| shared.backends[i].in_flight.load(Ordering::Relaxed))
            .unwrap_or(0),
        _ => 0,
    };
    // Each backend once, from the chosen one on (the up check again: one may go down meanwhile,
    // and a backend that is down is not tried).
    (0..n)
        .map(move |k| (first + k) % n)
        .filter(move |&i| up > 0 && is_up(i))
}

/// A new connection to backend `i`, connected within the connect timeout.
async fn connect_backend(shared: &Shared, i: usize) -> Result<BackendConn, String> {
    let addr = shared.backends[i].addr;
    let stream = match timeout(shared.config.connect_timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("connect: {e}")),
        Err(_) => {
            return Err(format!(
                "connect timed out after {:?}",
                shared.config.connect_timeout
            ));
        }
    };
    let _ = stream.set_nodelay(true);
    Ok(BackendConn {
        stream,
        buf: h1::Buf::new(),
    })
}

/// Collects one answer per worker; completes when every worker has answered.
struct Gather {
    proxy: u64,
    state: Mutex<GatherState>,
}

struct GatherState {
    answers: Vec<Option<ThreadCounters>>,
    missing: usize,
    waker: Option<Waker>,
}

impl Gather {
    fn put(&self, index: usize, counters: ThreadCounters) {
        let mut s = self.state.lock().unwrap();
        if let Some(slot @ None) = s.answers.get_mut(index) {
            *slot = Some(counters);
            s.missing -= 1;
            if s.missing == 0 {
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            }
        }
    }

    fn poll_done(&self, cx: &mut Context<'_>) -> Poll<Vec<ThreadCounters>> {
        let mut s = self.state.lock().unwrap();
        if s.missing == 0 {
            return Poll::Ready(s.answers.iter().map(|a| a.unwrap_or_default()).collect());
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Asks every worker for its counters, through its mailbox.
async fn collect_counters(proxy: u64, list: &WorkList<Ask>) -> Vec<ThreadCounters> {
    let n = list.threads();
    let gather = Arc::new(Gather {
        proxy,
        state: Mutex::new(GatherState {
            answers: vec![None; n],
            missing: n,
            waker: None,
        }),
    });
    for t in 0..n {
        if list.push(t, Ask::Counters(gather.clone())).is_err() {
            // The runtime is shutting down: report that thread as zeros.
            gather.put(t, ThreadCounters::default());
        }
    }
    std::future::poll_fn(|cx| gather.poll_done(cx)).await
}

async fn render_stats(shared: &Shared, list: &WorkList<Ask>) -> String {
    let threads = collect_counters(shared.id, list).await;
    let mut out = String::new();
    let c = &shared.config;
    let _ = writeln!(
        out,
        "pinwheel proxy: up {:.1} s, {} thread(s), balance {}, timeouts connect {:?} / server {:?} / idle {:?}\n",
        shared.started.elapsed().as_secs_f64(),
        threads.len(),
        c.balance,
        c.connect_timeout,
        c.server_timeout,
        c.idle_timeout
    );
    let _ = writeln!(out, "backends");
    let _ = writeln!(
        out,
        "{:>3} {:<22} {:<5} {:>9} {:>10} {:>9}",
        "#", "address", "state", "in_flight", "requests", "failures"
    );
    for (i, b) in shared.backends.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:>3} {:<22} {:<5} {:>9} {:>10} {:>9}",
            i,
            b.addr.to_string(),
            if b.up.load(Ordering::SeqCst) {
                "UP"
            } else {
                "DOWN"
            },
            b.in_flight.load(Ordering::Relaxed),
            b.requests.load(Ordering::Relaxed),
            b.failures.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "\nper thread (each thread's own counters, collected through a WorkList)"
    );
    let _ = writeln!(
        out,
        "{:>6} {:>9} {:>10} {:>9} {:>7}",
        "thread", "sessions", "live_sess", "requests", "errors"
    );
    for (i, t) in threads.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:>6} {:>9} {:>10} {:>9} {:>7}",
            i, t.sessions, t.live_sessions, t.requests, t.errors
        );
    }
    let _ = writeln!(out, "\nruntime activity (Runtime::metrics)");
    let _ = write!(out, "{}", Handle::current().metrics());
    out
}

/// One connection to the stats port: `/stats` (or `/`) renders the page.
async fn stats_session(shared: Arc<Shared>, list: WorkList<Ask>, stream: TcpStream) {
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (shared, list) = (shared.clone(), list.clone());
        async move {
            let resp = match req.uri().path() {
                "/" | "/stats" => {
                    let page = render_stats(&shared, &list).await;
                    Response::new(Full::new(Bytes::from(page)))
                }
                // HAProxy's `show tasks`: every live task, where it was spawned, when it ran.
                "/tasks" => Response::new(Full::new(Bytes::from(
                    Handle::current().dump_tasks().to_string(),
                ))),
                // HAProxy's `show profiling` (and `set profiling tasks on|off|auto`).
                "/profiling" => {
                    let handle = Handle::current();
                    match req.uri().query() {
                        Some("on") => handle.set_task_profiling(ProfilingMode::On),
                        Some("off") => handle.set_task_profiling(ProfilingMode::Off),
                        Some("auto") => handle.set_task_profiling(ProfilingMode::Auto),
                        _ => {}
                    }
                    Response::new(Full::new(Bytes::from(handle.profile().to_string())))
                }
                other => {
                    let mut r = Response::new(Full::new(Bytes::from(format!(
                        "404: no page {other:?}; the pages are /stats, /tasks and \
                         /profiling[?on|off|auto]\n"
                    ))));
                    *r.status_mut() = StatusCode::NOT_FOUND;
                    r
                }
            };
            Ok::<_, Infallible>(resp)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(pinwheel::hyper::Timer)
        .header_read_timeout(Duration::from_secs(10))
        .serve_connection(stream, service)
        .await;
}

/// Starts a small HTTP backend on a free loopback port of the current runtime, answering
/// every request with `hello from NAME`; returns its address and its server handle.
///
/// # Errors
///
/// When no loopback port can be bound.
pub async fn start_backend(name: String) -> io::Result<(SocketAddr, Server)> {
    start_backend_at(name, SocketAddr::from(([127, 0, 0, 1], 0))).await
}

/// Like [`start_backend`], on a given address (port 0: a free one); a soak test restarts a
/// killed backend on its old port with it.
///
/// # Errors
///
/// When `addr` cannot be bound.
pub async fn start_backend_at(name: String, addr: SocketAddr) -> io::Result<(SocketAddr, Server)> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let server = Server::new();
    let s = server.clone();
    let name: Arc<str> = name.into();
    drop(pinwheel::spawn(async move {
        let _ = s
            .serve(listener, move |stream, _| {
                let name = name.clone();
                async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let text = format!("hello from {name}: {} {}\n", req.method(), req.uri());
                        async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text)))) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(pinwheel::hyper::Timer)
                        .serve_connection(stream, service)
                        .await;
                }
            })
            .await;
    }));
    Ok((addr, server))
}

/// `GET path` from `addr` on a new connection; the status and the body as text. A tiny client
/// for the demo and the tests.
///
/// # Errors
///
/// The connection's or hyper's error, as text.
pub async fn get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(stream)
        .await
        .map_err(|e| e.to_string())?;
    drop(pinwheel::spawn(conn));
    let req = Request::get(path)
        .header("host", addr.to_string())
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
