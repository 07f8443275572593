//! `serve`: accept connections and run each session pinned to one worker, HAProxy-style.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::{TcpListener, TcpSocket, TcpStream};
use crate::loom::lock;
use crate::runtime::Handle;
use crate::scheduler::with_worker;
use crate::task::mask::ThreadMask;
use crate::work_list::WorkList;
use pinwheel_io_driver::{Direction, Waiter};

/// How accepted connections are spread over the workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Balance {
    /// Each new connection goes to the next worker in turn.
    #[default]
    RoundRobin,
    /// Each new connection goes to the worker with the fewest live sessions of this server.
    LeastLoaded,
    /// Every connection stays on the worker that accepted it: no hand-off at all.
    Local,
    /// One `SO_REUSEPORT` listener per worker, each accepting on its own thread: the kernel
    /// spreads connections, and nothing is handed off. The listener passed in must have been
    /// made with [`TcpSocket::set_reuseport`]`(true)`.
    Shards,
}

/// A listening socket [`serve`] accepts from: [`TcpListener`], or (on Unix)
/// [`UnixListener`](super::UnixListener). Sealed: accepted sockets are handed between workers
/// before they are registered with a poller, which only pinwheel's own listeners know how to
/// do; the hidden items are that machinery.
pub trait Listener: Send + Sync + Sized + 'static + sealed::Sealed {
    /// The connected stream each session gets.
    type Stream: 'static;
    /// The peer's address each session gets.
    type Addr: fmt::Debug + Send + 'static;

    /// An accepted socket not yet registered with any poller (it may cross threads).
    #[doc(hidden)]
    type Raw: Send + 'static;

    /// A waiter for accepting (each accept loop has its own: several may share a listener).
    #[doc(hidden)]
    fn accept_waiter(&self) -> Waiter<'_>;

    #[doc(hidden)]
    fn poll_accept_raw(
        &self,
        cx: &mut Context<'_>,
        waiter: &mut Waiter<'_>,
    ) -> Poll<io::Result<(Self::Raw, Self::Addr)>>;

    /// Accepts now, whatever the listener's readiness says (`WouldBlock`: nothing waits).
    #[doc(hidden)]
    fn try_accept_raw(&self) -> io::Result<(Self::Raw, Self::Addr)>;

    /// The stream of an accepted socket, registered with the poller of the worker that makes
    /// its first call that would block (the late registration rule, on `net::Stream`): a
    /// session that reads its request and answers at once never registers (HAProxy's
    /// speculative I/O: no `epoll_ctl` for a request-answer-close exchange).
    #[doc(hidden)]
    fn stream(raw: Self::Raw, nodelay: bool) -> Self::Stream;

    /// Whether the sockets it accepts have `TCP_NODELAY` from the start (the inherited nodelay
    /// rule, on `TcpListener`).
    #[doc(hidden)]
    fn accepts_nodelay(&self) -> bool {
        false
    }

    /// For `Balance::Shards`: binds `n` more listeners on this one's address, now, each
    /// registered with a poller when its closure is called (on the worker that will accept on
    /// it); or the error explaining why this listener cannot be sharded.
    #[doc(hidden)]
    fn bind_shards(&self, n: usize) -> io::Result<Vec<Shard<Self>>>;
}

/// A listener bound and listening on a sharded listener's address, registered with the
/// calling worker's poller when called.
#[doc(hidden)]
pub type Shard<L> = Box<dyn FnOnce() -> io::Result<L> + Send>;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::TcpListener {}
    #[cfg(unix)]
    impl Sealed for crate::net::UnixListener {}
}

impl Listener for TcpListener {
    type Stream = TcpStream;
    type Addr = SocketAddr;
    type Raw = mio::net::TcpStream;

    fn accept_waiter(&self) -> Waiter<'_> {
        self.reg.waiter(Direction::Read)
    }

    fn poll_accept_raw(
        &self,
        cx: &mut Context<'_>,
        waiter: &mut Waiter<'_>,
    ) -> Poll<io::Result<(Self::Raw, SocketAddr)>> {
        TcpListener::poll_accept_raw(self, cx, waiter)
    }

    fn try_accept_raw(&self) -> io::Result<(Self::Raw, SocketAddr)> {
        self.accept_now()
    }

    fn stream(raw: Self::Raw, nodelay: bool) -> TcpStream {
        TcpStream::from_accepted(raw, nodelay)
    }

    fn accepts_nodelay(&self) -> bool {
        TcpListener::accepts_nodelay(self)
    }

    fn bind_shards(&self, n: usize) -> io::Result<Vec<Shard<Self>>> {
        if !self.reuseport()? {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "pinwheel::net::serve_with(Balance::Shards) needs a listener made with TcpSocket::set_reuseport(true), so that each worker can bind its own listener to the same address",
            ));
        }
        let addr = self.local_addr()?;
        (0..n)
            .map(|_| {
                let socket = TcpSocket::for_addr(addr)?;
                socket.set_reuseaddr(true)?;
                socket.set_reuseport(true)?;
                // Each shard's connections have what the given listener's would.
                socket.set_nodelay(self.nodelay()?)?;
                socket.bind(addr)?;
                let bound = socket.listen_unregistered(1024)?;
                let shard: Shard<Self> = Box::new(move || TcpListener::from_std(bound));
                Ok(shard)
            })
            .collect()
    }
}

#[cfg(unix)]
impl Listener for super::UnixListener {
    type Stream = super::UnixStream;
    type Addr = super::unix::SocketAddr;
    type Raw = mio::net::UnixStream;

    fn accept_waiter(&self) -> Waiter<'_> {
        self.reg.waiter(Direction::Read)
    }

    fn poll_accept_raw(
        &self,
        cx: &mut Context<'_>,
        waiter: &mut Waiter<'_>,
    ) -> Poll<io::Result<(Self::Raw, Self::Addr)>> {
        super::UnixListener::poll_accept_raw(self, cx, waiter)
    }

    fn try_accept_raw(&self) -> io::Result<(Self::Raw, Self::Addr)> {
        self.accept_now()
    }

    fn stream(raw: Self::Raw, _nodelay: bool) -> super::UnixStream {
        super::UnixStream::from_accepted(raw)
    }

    fn bind_shards(&self, _n: usize) -> io::Result<Vec<Shard<Self>>> {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "pinwheel::net::serve_with(Balance::Shards) needs SO_REUSEPORT, which Unix listeners do not have (a path is bound once); use RoundRobin, LeastLoaded or Local",
        ))
    }
}

/// A handle to a running server: stop accepting, then wait for live sessions to end.
///
/// ```
/// use std::time::Duration;
/// use pinwheel::net::{Server, TcpListener, TcpStream};
///
/// let rt = pinwheel::Runtime::new()?;
/// rt.block_on(rt.spawn(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let addr = listener.local_addr()?;
///     let server = Server::new();
///     let running = pinwheel::spawn({
///         let server = server.clone();
///         async move {
///             server
///                 .serve(listener, |stream: TcpStream, _peer| async move {
///                     // A session: may hold Rc, RefCell, thread-local state.
///                     let mut buf = [0u8; 64];
///                     while let Ok(n) = stream.read(&mut buf).await {
///                         if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
///                             break;
///                         }
///                     }
///                 })
///                 .await
///         }
///     });
///     let client = TcpStream::connect(addr).await?;
///     client.write_all(b"hi").await?;
///     let mut back = [0u8; 2];
///     client.read_exact(&mut back).await?;
///     drop(client);
///     server.stop();
///     assert!(server.drain(Duration::from_secs(5)).await);
///     running.await.unwrap()
/// }))
/// .unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Server {
    inner: Arc<ServerState>,
}

#[derive(Default)]
struct ServerState {
    stopped: AtomicBool,
    pauses: AtomicUsize,
    /// Live sessions per worker (grown to the runtime's worker count when serving starts).
    live: std::sync::Mutex<Arc<[AtomicUsize]>>,
    next: AtomicUsize,
    /// Accept loops, `drain`s and `ready`s waiting for `stop`, for the last session to end or
    /// for serving to start, by id.
    waiters: std::sync::Mutex<HashMap<u64, Waker>>,
    next_waiter: AtomicU64,
    /// Serving has started: every listener it binds accepts (see `Server::ready`).
    ready: AtomicBool,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("stopped", &self.is_stopped())
            .field("live_sessions", &self.live_sessions())
            .finish()
    }
}

/// Accepts connections on `listener` and runs `factory(stream, peer)` for each, as a session
/// pinned to one worker (round-robin). The session future need not be `Send`: the factory is
/// called on the worker that will own the connection, and the session never leaves it.
///
/// Returns when the listener fails with an error that is not transient. Running out of file
/// descriptors (`EMFILE`, `ENFILE`) pauses accepting with a back-off (100 ms doubling to 1 s,
/// one warning per pause) while live sessions go on; aborted connections are skipped.
///
/// # Errors
///
/// The listener's error that ended it.
pub async fn serve<L, F, Fut>(listener: L, factory: F) -> io::Result<()>
where
    L: Listener,
    F: Fn(L::Stream, L::Addr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    Server::new().serve(listener, factory).await
}

/// Like [`serve`], with a choice of [`Balance`].
///
/// # Errors
///
/// The listener's error that ended it; `InvalidInput` for `Balance::Shards` on a listener
/// without `SO_REUSEPORT`.
pub async fn serve_with<L, F, Fut>(listener: L, balance: Balance, factory: F) -> io::Result<()>
where
    L: Listener,
    F: Fn(L::Stream, L::Addr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    Server::new().serve_with(listener, balance, factory).await
}

impl Server {
    /// A handle for a server not yet started.
    pub fn new() -> Server {
        Server::default()
    }

    /// Stops accepting: the serving futures return `Ok(())` at their next accept. Live
    /// sessions go on; see [`drain`](Self::drain).
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.wake_waiters();
    }

    /// Wakes every accept loop and `drain` waiting on this server (they look again).
    fn wake_waiters(&self) {
        let waiters: Vec<Waker> = self.waiters().drain().map(|(_, w)| w).collect();
        for w in waiters {
            w.wake();
        }
    }

    /// The wakers of the accept loops and drains waiting on this server.
    fn waiters(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Waker>> {
        lock(&self.inner.waiters)
    }

    /// A waiter slot, freed when the guard drops.
    fn waiter(&self) -> WaiterSlot {
        WaiterSlot {
            server: self.clone(),
            id: self.inner.next_waiter.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// `true` once [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::SeqCst)
    }

    /// How many times accepting was paused for lack of file descriptors.
    pub fn accept_pauses(&self) -> usize {
        self.inner.pauses.load(Ordering::Relaxed)
    }

    /// How many sessions of this server are running.
    pub fn live_sessions(&self) -> usize {
        self.live().iter().map(|n| n.load(Ordering::SeqCst)).sum()
    }

    /// Waits until no session is live, for at most `deadline`; `true` if they all ended. It
    /// sleeps until the last session ends (which wakes it) or the deadline.
    pub async fn drain(&self, deadline: Duration) -> bool {
        let slot = self.waiter();
        let mut timer = crate::time::sleep(deadline);
        std::future::poll_fn(|cx| {
            // Register before looking, so that a session ending in between wakes us.
            slot.register(cx.waker());
            if self.live_sessions() == 0 {
                return Poll::Ready(true);
            }
            match std::pin::Pin::new(&mut timer).poll(cx) {
                Poll::Ready(()) => Poll::Ready(self.live_sessions() == 0),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    fn live(&self) -> Arc<[AtomicUsize]> {
        lock(&self.inner.live).clone()
    }

    /// Serves with [`Balance::RoundRobin`]; see [`serve`].
    ///
    /// # Errors
    ///
    /// As [`serve`].
    pub async fn serve<L, F, Fut>(&self, listener: L, factory: F) -> io::Result<()>
    where
        L: Listener,
        F: Fn(L::Stream, L::Addr) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.serve_with(listener, Balance::RoundRobin, factory)
            .await
    }

    /// Serves with the given [`Balance`]; see [`serve`].
    ///
    /// # Errors
    ///
    /// As [`serve_with`].
    pub async fn serve_with<L, F, Fut>(
        &self,
        listener: L,
        balance: Balance,
        factory: F,
    ) -> io::Result<()>
    where
        L: Listener,
        F: Fn(L::Stream, L::Addr) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.run(listener, balance, Arc::new(factory)).await
    }

    async fn run<L: Listener, F: SessionFactory<L>>(
        &self,
        listener: L,
        balance: Balance,
        factory: Arc<F>,
    ) -> io::Result<()> {
        let handle = Handle::try_current().map_err(io::Error::other)?;
        let n = handle.worker_threads();
        {
            let mut live = lock(&self.inner.live);
            if live.len() != n {
                *live = (0..n).map(|_| AtomicUsize::new(0)).collect();
            }
        }
        if balance == Balance::Shards {
            return self.serve_shards(&handle, listener, factory).await;
        }
        // The listener is bound and registered: a client connecting now is served.
        self.mark_ready();
        self.accept_loop(&handle, listener, balance, false, factory)
            .await
    }

    /// Says that serving has started, to `ready`.
    fn mark_ready(&self) {
        self.inner.ready.store(true, Ordering::SeqCst);
        self.wake_waiters();
    }

    /// Waits until a `serve` of this handle has started, so that a client connecting from now
    /// on is accepted where the [`Balance`] says: with `Balance::Shards`, once every worker's
    /// listener is bound and accepting (before that, every connection would land on the
    /// listener passed in); with the other balances, as soon as serving starts. Returns at once
    /// if the server was stopped.
    ///
    /// ```
    /// use pinwheel::net::{Balance, Server, TcpSocket};
    ///
    /// let rt = pinwheel::Builder::new().worker_threads(2).build()?;
    /// rt.block_on(async {
    ///     let socket = TcpSocket::new_v4()?;
    ///     socket.set_reuseport(true)?;
    ///     socket.bind("127.0.0.1:0".parse().unwrap())?;
    ///     let listener = socket.listen(1024)?;
    ///     let server = Server::new();
    ///     let s = server.clone();
    ///     let serving = pinwheel::spawn(async move {
    ///         s.serve_with(listener, Balance::Shards, |_stream, _peer| async {}).await
    ///     });
    ///     server.ready().await;
    ///     // ... clients connect here, spread over the workers by the kernel ...
    ///     server.stop();
    ///     serving.await.unwrap()
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub async fn ready(&self) {
        let slot = self.waiter();
        std::future::poll_fn(|cx| {
            slot.register(cx.waker());
            if self.inner.ready.load(Ordering::SeqCst) || self.is_stopped() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// Accepts and starts sessions (any balance but `Shards`). `spread_backlog`: the
    /// connections already waiting when the loop starts (those accepted before the first wait)
    /// go round-robin over the workers, whatever `balance` says.
    async fn accept_loop<L: Listener, F: SessionFactory<L>>(
        &self,
        handle: &Handle,
        listener: L,
        balance: Balance,
        mut spread_backlog: bool,
        factory: Arc<F>,
    ) -> io::Result<()> {
        let n = handle.worker_threads();
        // Hand-off of accepted sockets: registered with the target worker's poller there.
        let sessions = Sessions::<L, F> {
            server: self.clone(),
            factory: factory.clone(),
            nodelay: listener.accepts_nodelay(),
            listener: PhantomData,
        };
        let s2 = sessions.clone();
        let handoff: WorkList<(L::Raw, L::Addr)> =
            handle.work_list(move |(stream, peer): (L::Raw, L::Addr)| s2.start_raw(stream, peer));
        let mut pause = Duration::ZERO;
        let slot = self.waiter();
        loop {
            if self.is_stopped() {
                return Ok(());
            }
            let (accepted, waited) = if spread_backlog {
                // The backlog as the accept call itself sees it: the listener's readiness may
                // not be known yet (its poller has not reported the connections waiting), and
                // waiting for it would end the spreading early. (Budgeted, as any accept.)
                let now = std::future::poll_fn(|cx| {
                    crate::task::coop::budgeted(cx, |_| Poll::Ready(listener.try_accept_raw()))
                })
                .await;
                match now {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        spread_backlog = false;
                        self.accept_raw(&listener, &slot).await
                    }
                    r => (r.map(Some), false),
                }
            } else {
                self.accept_raw(&listener, &slot).await
            };
            spread_backlog &= !waited;
            let (stream, peer) = match accepted {
                Ok(Some(c)) => c,
                Ok(None) => return Ok(()),
                Err(e) if is_out_of_descriptors(&e) => {
                    pause = if pause.is_zero() {
                        Duration::from_millis(100)
                    } else {
                        (pause * 2).min(Duration::from_secs(1))
                    };
                    self.inner.pauses.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        error = %e,
                        pause_ms = pause.as_millis() as u64,
                        "pinwheel::net::serve: out of file descriptors; not accepting for a while, live sessions go on"
                    );
                    crate::time::sleep(pause).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            pause = Duration::ZERO;
            let here = handle.worker_here();
            let target = match balance {
                _ if spread_backlog => Some(self.inner.next.fetch_add(1, Ordering::Relaxed) % n),
                Balance::Local | Balance::Shards => here,
                Balance::RoundRobin => Some(self.inner.next.fetch_add(1, Ordering::Relaxed) % n),
                Balance::LeastLoaded => {
                    let live = self.live();
                    (0..n).min_by_key(|&i| (live[i].load(Ordering::Relaxed), Some(i) != here))
                }
            };
            match (target, here) {
                (Some(t), Some(h)) if t == h => sessions.start_raw(stream, peer),
                (Some(t), _) => {
                    if let Err(e) = handoff.push(t, (stream, peer)) {
                        // The runtime is shutting down: the connection is closed with it.
                        drop(e.into_inner());
                        return Ok(());
                    }
                }
                // Accepting off the workers (inside block_on): hand to the first worker.
                (None, _) => {
                    if let Err(e) = handoff.push(0, (stream, peer)) {
                        drop(e.into_inner());
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Accepts, or returns `None` once the server is stopped (`stop` wakes it); and whether it
    /// had to wait for the connection (`false`: it was in the backlog already).
    async fn accept_raw<L: Listener>(
        &self,
        listener: &L,
        slot: &WaiterSlot,
    ) -> (io::Result<Option<(L::Raw, L::Addr)>>, bool) {
        let mut waiter = listener.accept_waiter();
        let mut waited = false;
        let accepted = std::future::poll_fn(|cx| {
            if let Poll::Ready(r) = listener.poll_accept_raw(cx, &mut waiter) {
                return Poll::Ready(r.map(Some));
            }
            waited = true;
            // Register before looking at the flag: `stop` sets it, then wakes the registered.
            slot.register(cx.waker());
            if self.is_stopped() {
                return Poll::Ready(Ok(None));
            }
            Poll::Pending
        })
        .await;
        (accepted, waited)
    }

    async fn serve_shards<L: Listener, F: SessionFactory<L>>(
        &self,
        handle: &Handle,
        listener: L,
        factory: Arc<F>,
    ) -> io::Result<()> {
        let here = handle.worker_here();
        // The worker that accepts on the listener passed in: this one (the listener is most
        // likely registered with its poller), or the first when serving was started off the
        // workers (inside `block_on`).
        let owner = here.unwrap_or(0);
        let others: Vec<usize> = (0..handle.worker_threads())
            .filter(|&i| i != owner)
            .collect();
        // Every shard's socket is bound and listening before anything accepts, so the kernel
        // spreads connections over all of them from the first one on.
        let binds = listener.bind_shards(others.len())?;
        let pending = Arc::new(AtomicUsize::new(others.len()));
        let mut shards = Vec::new();
        for (i, bind) in others.into_iter().zip(binds) {
            let (server, factory, pending) = (self.clone(), factory.clone(), pending.clone());
            shards.push(handle.spawn_on(ThreadMask::one(i), async move {
                let registered = bind();
                pending.fetch_sub(1, Ordering::SeqCst);
                server.wake_waiters();
                let handle = Handle::current();
                server
                    .accept_loop(&handle, registered?, Balance::Local, false, factory)
                    .await
            }));
        }
        let server = self.clone();
        let mine = async move {
            // Accept on the given listener only once every shard runs on its worker, and then
            // say the server is ready.
            let slot = server.waiter();
            std::future::poll_fn(|cx| {
                slot.register(cx.waker());
                if pending.load(Ordering::SeqCst) == 0 || server.is_stopped() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
            drop(slot);
            server.mark_ready();
            let handle = Handle::current();
            // Connections that reached this listener before the shards were bound wait in
            // its backlog: spread them over the workers (the kernel spreads the later ones).
            server
                .accept_loop(&handle, listener, Balance::Local, true, factory)
                .await
        };
        // Pinned to its worker like the shards: the task calling `serve` may be a stealable
        // one, and an accept loop that moved would start its `Local` sessions elsewhere.
        let mine = handle
            .spawn_on(ThreadMask::one(owner), mine)
            .await
            .map_err(io::Error::from)?;
        for s in shards {
            s.await.map_err(io::Error::from)??;
        }
        mine
    }
}

/// What `serve` calls for each connection, written once for the internals: any
/// `Fn(stream, peer) -> session` shared by the workers (the public functions spell the bound
/// out, for their docs).
trait SessionFactory<L: Listener>:
    Fn(L::Stream, L::Addr) -> Self::Session + Send + Sync + 'static
{
    /// The session future; it need not be `Send` (it never leaves its worker).
    type Session: Future<Output = ()> + 'static;
}

impl<L, F, Fut> SessionFactory<L> for F
where
    L: Listener,
    F: Fn(L::Stream, L::Addr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    type Session = Fut;
}

/// Starts sessions on the calling worker and counts them.
struct Sessions<L, F> {
    server: Server,
    factory: Arc<F>,
    /// The listener's accepted sockets have `TCP_NODELAY` (the inherited nodelay rule).
    nodelay: bool,
    listener: PhantomData<fn() -> L>,
}

impl<L, F> Clone for Sessions<L, F> {
    fn clone(&self) -> Self {
        Sessions {
            server: self.server.clone(),
            factory: self.factory.clone(),
            nodelay: self.nodelay,
            listener: PhantomData,
        }
    }
}

impl<L: Listener, F: SessionFactory<L>> Sessions<L, F> {
    /// Makes the accepted socket's stream (registered with this worker's poller at its first
    /// call that would block) and spawns its session here.
    fn start_raw(&self, stream: L::Raw, peer: L::Addr) {
        let Some(index) = with_worker(|w| w.map(|w| w.index)) else {
            return;
        };
        // A registration that fails later (at the first call that would block) is that
        // call's error, for the session to see.
        let stream = L::stream(stream, self.nodelay);
        let live = self.server.live();
        live[index].fetch_add(1, Ordering::SeqCst);
        session_gauge(1);
        let session = (self.factory)(stream, peer);
        let guard = LiveGuard {
            live,
            index,
            server: self.server.clone(),
        };
        drop(crate::spawn_local(Counted {
            session,
            _guard: guard,
        }));
    }
}

pin_project_lite::pin_project! {
    /// A session and the guard that counts it out when it ends. A future of its own rather
    /// than an `async` block: a block that awaits a future it captured keeps it twice (as the
    /// capture and as the awaited value), and a hyper session's future is a kilobyte, copied
    /// on its way into its task.
    struct Counted<F> {
        #[pin]
        session: F,
        _guard: LiveGuard,
    }
}

impl<F: Future> Future for Counted<F> {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.project().session.poll(cx).map(drop)
    }
}

/// Counts a session out when it ends (or is dropped at shutdown).
struct LiveGuard {
    live: Arc<[AtomicUsize]>,
    index: usize,
    server: Server,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.live[self.index].fetch_sub(1, Ordering::SeqCst);
        session_gauge(-1);
        // The last session out wakes the drains (and, harmlessly, the accept loops).
        if self.live.iter().all(|n| n.load(Ordering::SeqCst) == 0) {
            self.server.wake_waiters();
        }
    }
}

/// One waiter's place in a server's list of wakers.
struct WaiterSlot {
    server: Server,
    id: u64,
}

impl WaiterSlot {
    fn register(&self, waker: &Waker) {
        let mut waiters = self.server.waiters();
        match waiters.get_mut(&self.id) {
            Some(w) if w.will_wake(waker) => {}
            Some(w) => w.clone_from(waker),
            None => {
                waiters.insert(self.id, waker.clone());
            }
        }
    }
}

impl Drop for WaiterSlot {
    fn drop(&mut self) {
        self.server.waiters().remove(&self.id);
    }
}

/// Moves the calling worker's live-session gauge (sessions start and end on their worker, so
/// it has one writer).
fn session_gauge(delta: i64) {
    with_worker(|w| {
        if let Some(w) = w {
            let g = &w.counters().live_sessions;
            if delta > 0 {
                crate::metrics::single_writer_add(g, 1);
            } else {
                crate::metrics::single_writer_sub(g, 1);
            }
        }
    });
}

fn is_out_of_descriptors(e: &io::Error) -> bool {
    // EMFILE (24), ENFILE (23), ENOBUFS (105), ENOMEM (12) on Linux.
    matches!(e.raw_os_error(), Some(24 | 23 | 105 | 12))
}
