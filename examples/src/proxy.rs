//! A small HAProxy-style HTTP load balancer on pinwheel: the code of `examples/proxy.rs`, kept
//! in the library so that an integration test can run it end to end.
//!
//! - Client sessions are served with [`pinwheel::net::serve`]: each connection, its hyper
//!   HTTP/1.1 state and its per-thread counters live on one worker thread (they hold
//!   `Rc`/`RefCell`, which the compiler would refuse elsewhere).
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
use http_body_util::{BodyExt, Either, Empty, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response, StatusCode};
use pinwheel::net::{Balance, Server, TcpListener, TcpStream};
use pinwheel::profile::Mode as ProfilingMode;
use pinwheel::time::{Sleep, sleep, timeout};
use pinwheel::{Handle, WorkList};

/// The body of every response the proxy sends: the backend's, streamed, or its own.
pub type Body = Either<Incoming, Full<Bytes>>;

mod config;
pub use config::{ArgsError, Config, Policy, USAGE};

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

/// A backend connection in a thread's idle pool. Its driver is a task pinned to the thread;
/// dropping the sender ends it (the connection closes once a response in flight is read).
struct Pooled {
    sender: SendRequest<Incoming>,
    /// Seen idle by a purge round (see [`purge_idle`]).
    seen: bool,
}

/// At most this many connections per backend wait in a thread's pool (past it, the one
/// idle longest is closed).
const POOL_MAX: usize = 256;

/// A connection to backend `i` from this thread's pool that can take a request now. Closed
/// ones are dropped; busy ones (a response body still on its way) stay for later.
fn take_idle(proxy: u64, i: usize) -> Option<SendRequest<Incoming>> {
    IDLE.with(|p| {
        let mut p = p.borrow_mut();
        let list = p.get_mut(proxy)?.get_mut(i)?;
        let mut k = list.len();
        while k > 0 {
            k -= 1;
            if list[k].sender.is_closed() {
                list.remove(k);
            } else if list[k].sender.is_ready() {
                return Some(list.remove(k).sender);
            }
        }
        None
    })
}

/// Puts a connection to backend `i` (of `backends`) back in this thread's pool.
fn put_idle(proxy: u64, i: usize, backends: usize, sender: SendRequest<Incoming>) {
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
        list.push(Pooled {
            sender,
            seen: false,
        });
    });
}

/// A purge round of this thread's pool for `proxy` (HAProxy's `pool-purge-delay`, in rounds
/// of the health checks' timer): closes the connections a previous round already saw idle
/// (so unused for one to two rounds), and marks the others; with `all`, closes them all.
fn purge_idle(proxy: u64, all: bool) {
    // Taken out of the pool first and dropped after: a driver may run its drop code.
    let purged: Vec<Pooled> = IDLE.with(|p| {
        let mut p = p.borrow_mut();
        let Some(lists) = p.get_mut(proxy) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for list in lists.iter_mut() {
            let (old, mut keep): (Vec<Pooled>, Vec<Pooled>) = list
                .drain(..)
                .partition(|c| all || c.seen || c.sender.is_closed());
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

/// One client connection, pinned to the worker that owns its socket.
async fn client_session(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    // Inherited from the listener (see `Proxy::start`): answered without a system call.
    let _ = stream.set_nodelay(true);
    let id = shared.id;
    count(id, |c| {
        c.sessions += 1;
        c.live_sessions += 1;
    });
    let idle = shared.config.idle_timeout;
    let io = IdleTimeout::new(stream, idle);
    let s = shared.clone();
    // The client's address as the `X-Forwarded-For` value, made once for all its requests.
    let xff = hyper::header::HeaderValue::try_from(peer.ip().to_string()).ok();
    let service = hyper::service::service_fn(move |req| forward(s.clone(), xff.clone(), req));
    // `half_close`: the client is not read while its request is served (HAProxy's default,
    // without `option abortonclose`), and one that shuts its write side down to wait for the
    // answer still gets it. Otherwise hyper reads the client again to notice an abort, and
    // that read, which would block, adds the socket to the poller: one `epoll_ctl` and one
    // more `recvfrom` per connection with `Connection: close`.
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(pinwheel::hyper::Timer)
        .header_read_timeout(idle)
        .keep_alive(true)
        .half_close(true)
        .serve_connection(io, service);
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
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    let served = std::future::poll_fn(|cx| {
        if soft.asked.get() && !closing {
            closing = true;
            // hyper closes an idle connection now, a busy one after its response.
            conn.as_mut().graceful_shutdown();
        }
        if !closing {
            let mut w = soft.waker.borrow_mut();
            if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *w = Some(cx.waker().clone());
            }
        }
        conn.as_mut().poll(cx)
    })
    .await;
    drop(listed);
    drop(soft);
    if let Err(e) = served {
        if !e.is_incomplete_message() {
            log(format_args!("client {peer}: {e}"));
        }
    }
    count(id, |c| c.live_sessions -= 1);
}

fn reply(status: StatusCode, text: String) -> Response<Body> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from(text + "\n"))));
    *r.status_mut() = status;
    r
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

/// Hop-by-hop headers (RFC 9110, 7.6.1) describe one connection, so a proxy does not pass
/// them on: the client's `Connection: close` must not close the pooled backend connection,
/// nor the backend's `Keep-Alive` reach the client. (`Transfer-Encoding` is left to hyper,
/// which frames each side's body itself.)
fn strip_hop_by_hop(headers: &mut hyper::HeaderMap) {
    use hyper::header::{CONNECTION, HeaderName, TE, UPGRADE};
    // Named once (a `&str` name would be parsed again on every call).
    const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
    const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
    const N: usize = 5;
    const HOP_BY_HOP: [HeaderName; N] = [CONNECTION, TE, UPGRADE, KEEP_ALIVE, PROXY_CONNECTION];
    // Most messages carry none: one look at the names they have, instead of a hashed lookup
    // for each hop-by-hop name (those were 4% of the proxy's instructions per request).
    let mut present = [false; N];
    for name in headers.keys() {
        if let Some(k) = HOP_BY_HOP.iter().position(|h| h == name) {
            present[k] = true;
        }
    }
    if present == [false; N] {
        return;
    }
    if let Some(named) = headers.get(CONNECTION).and_then(|v| v.to_str().ok()) {
        // Headers the Connection header names are hop-by-hop too; its `close` option names
        // none, and the names of the list above go with the list.
        let named: Vec<HeaderName> = named
            .split(',')
            .map(str::trim)
            .filter(|t| {
                !t.eq_ignore_ascii_case("close")
                    && !HOP_BY_HOP
                        .iter()
                        .any(|h| t.eq_ignore_ascii_case(h.as_str()))
            })
            .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
            .collect();
        for n in named {
            headers.remove(n);
        }
    }
    for (n, here) in HOP_BY_HOP.into_iter().zip(present) {
        if here {
            headers.remove(n);
        }
    }
}

/// Sends one request to a backend; its response (or the proxy's own error page).
///
/// An `async` block rather than an `async fn`: a fn's future keeps its arguments twice (as
/// arguments, and as the locals they move into), and this future is moved several times per
/// request on its way into hyper: every byte of it is copied each time.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn's future would keep the arguments twice (above)"
)]
fn forward(
    shared: Arc<Shared>,
    xff: Option<hyper::header::HeaderValue>,
    mut req: Request<Incoming>,
) -> impl Future<Output = Result<Response<Body>, Infallible>> {
    async move {
        let shared = &*shared;
        count(shared.id, |c| c.requests += 1);
        strip_hop_by_hop(req.headers_mut());
        if let Some(v) = xff {
            // A constant name: a `&str` one is parsed, and allocated, on every request.
            const XFF: hyper::header::HeaderName =
                hyper::header::HeaderName::from_static("x-forwarded-for");
            req.headers_mut().append(XFF, v);
        }
        'backends: for i in candidates(shared) {
            let backend = &shared.backends[i];
            // A pooled connection first; a new one when none is ready, or when the pooled one
            // was closed by the backend before it took the request (hyper gives it back then).
            let mut pooled = take_idle(shared.id, i);
            loop {
                let reused = pooled.is_some();
                let mut sender = match pooled.take() {
                    Some(s) => s,
                    // Boxed: the connect path's state is most of this future's size, and the
                    // future is moved (copied) several times per request on its way into hyper.
                    None => match Box::pin(connect_backend(shared, i)).await {
                        Ok(s) => s,
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
                let answer =
                    timeout(shared.config.server_timeout, sender.try_send_request(req)).await;
                backend.in_flight.fetch_sub(1, Ordering::Relaxed);
                return Ok(match answer {
                    Ok(Ok(mut resp)) => {
                        if !shared.stopped.load(Ordering::SeqCst) {
                            put_idle(shared.id, i, shared.backends.len(), sender);
                        }
                        strip_hop_by_hop(resp.headers_mut());
                        resp.map(Either::Left)
                    }
                    Ok(Err(mut e)) => {
                        if let Some(back) = e.take_message().filter(|_| reused) {
                            // The pooled connection closed under it, unsent: a new one.
                            req = back;
                            continue;
                        }
                        backend.failures.fetch_add(1, Ordering::Relaxed);
                        count(shared.id, |c| c.errors += 1);
                        reply(
                            StatusCode::BAD_GATEWAY,
                            format!("502 bad gateway: backend {}: {}", backend.addr, e.error()),
                        )
                    }
                    Err(_) => {
                        backend.failures.fetch_add(1, Ordering::Relaxed);
                        count(shared.id, |c| c.errors += 1);
                        reply(
                            StatusCode::GATEWAY_TIMEOUT,
                            format!(
                                "504 gateway timeout: backend {} sent no response within {:?}",
                                backend.addr, shared.config.server_timeout
                            ),
                        )
                    }
                });
            }
        }
        count(shared.id, |c| c.errors += 1);
        Ok(reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "503 service unavailable: no backend is up".into(),
        ))
    }
}

/// A new connection to backend `i` (connected within the connect timeout, its driver pinned
/// to this thread).
async fn connect_backend(shared: &Shared, i: usize) -> Result<SendRequest<Incoming>, String> {
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
    let (sender, conn) = hyper::client::conn::http1::handshake(stream)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    drop(pinwheel::spawn_local(conn));
    Ok(sender)
}

/// A client connection that fails with `TimedOut` when no byte went either way for `idle`.
/// One timer per connection, moved forward on each read and write.
struct IdleTimeout {
    stream: TcpStream,
    idle: Duration,
    timer: Sleep,
}

impl IdleTimeout {
    fn new(stream: TcpStream, idle: Duration) -> IdleTimeout {
        IdleTimeout {
            stream,
            idle,
            timer: sleep(idle),
        }
    }

    /// Pushes the deadline back from the worker's turn reading of the clock (a field read, not
    /// a clock read: this runs on every read and write; at most a turn early).
    fn active(&mut self) {
        self.timer
            .reset(pinwheel::time::Instant::recent() + self.idle);
    }

    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        match Pin::new(&mut self.timer).poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client sent and received nothing for {:?}", self.idle),
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl hyper::rt::Read for IdleTimeout {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(r) => {
                self.active();
                Poll::Ready(r)
            }
            Poll::Pending => self.poll_idle(cx).map(Err),
        }
    }
}

impl hyper::rt::Write for IdleTimeout {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.stream).poll_write(cx, buf) {
            Poll::Ready(r) => {
                self.active();
                Poll::Ready(r)
            }
            Poll::Pending => self.poll_idle(cx).map(Err),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.stream).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                self.active();
                Poll::Ready(r)
            }
            Poll::Pending => self.poll_idle(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
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

#[cfg(test)]
mod tests {
    use super::strip_hop_by_hop;
    use hyper::HeaderMap;

    fn headers(list: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in list {
            h.append(*n, v.parse().unwrap());
        }
        h
    }

    fn names(h: &HeaderMap) -> Vec<&str> {
        let mut n: Vec<&str> = h.keys().map(|n| n.as_str()).collect();
        n.sort_unstable();
        n
    }

    #[test]
    fn hop_by_hop_headers_go_even_without_a_connection_header() {
        let mut h = headers(&[
            ("host", "x"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["host"]);
    }

    #[test]
    fn headers_the_connection_header_names_go_too() {
        let mut h = headers(&[
            ("host", "x"),
            ("connection", "close, x-hop"),
            ("x-hop", "1"),
            ("x-kept", "1"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["host", "x-kept"]);
    }

    #[test]
    fn connection_options_and_listed_hop_by_hop_names_go_with_their_headers() {
        let mut h = headers(&[
            ("host", "x"),
            ("connection", "Keep-Alive, Upgrade, close"),
            ("upgrade", "h2c"),
            ("keep-alive", "timeout=5"),
            ("x-a", "1"),
        ]);
        strip_hop_by_hop(&mut h);
        assert_eq!(names(&h), ["host", "x-a"]);
    }

    #[test]
    fn a_message_without_hop_by_hop_headers_is_left_alone() {
        let mut h = headers(&[("host", "x"), ("content-length", "2"), ("x-a", "1")]);
        let before = h.clone();
        strip_hop_by_hop(&mut h);
        assert_eq!(h, before);
    }
}
