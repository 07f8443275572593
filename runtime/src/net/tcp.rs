use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::task::coop::budgeted;
use mio::Interest;
use pinwheel_io_driver::{Direction, Registration, Waiter};

use super::addr::{ToSocketAddrs, resolve};
use super::stream::Stream;

/// A TCP listening socket.
pub struct TcpListener {
    mio: mio::net::TcpListener,
    pub(super) reg: Registration,
    /// The listener has `TCP_NODELAY`, so the sockets it accepts have it (the *inherited
    /// nodelay rule*: Linux copies the option into each accepted socket; elsewhere this stays
    /// `false`).
    nodelay: AtomicBool,
}

/// A TCP connection.
///
/// Reads and writes take `&self`, so one task can read while another writes on a shared
/// reference; [`futures_io::AsyncRead`] and [`futures_io::AsyncWrite`] are implemented for
/// `TcpStream` and `&TcpStream`.
pub struct TcpStream {
    pub(crate) io: Stream<mio::net::TcpStream>,
    /// `TCP_NODELAY` is known to be on (inherited from the listener, by the inherited nodelay
    /// rule, or set here): `set_nodelay(true)` and `nodelay()` need no system call.
    nodelay: AtomicBool,
}

/// Whether accepted sockets inherit their listener's `TCP_NODELAY` here (the inherited
/// nodelay rule): Linux copies the listening socket into each connection it accepts, options
/// and all. Elsewhere nothing is assumed, and every call asks the socket.
const fn inherits_nodelay() -> bool {
    cfg!(target_os = "linux")
}

impl TcpListener {
    /// Binds a listener (SO_REUSEADDR on, backlog 1024) to the first address that works.
    ///
    /// # Errors
    ///
    /// `AddrInUse` (naming the address) when the port is taken; other OS errors as they come.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let mut last = None;
        for a in resolve(addr).await? {
            match bind_one(a) {
                Ok(l) => return TcpListener::from_std(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no address to bind")))
    }

    /// Wraps a bound std listener (made non-blocking here) and registers it with the current
    /// worker's poller.
    ///
    /// # Errors
    ///
    /// When called outside a runtime, or when the registration fails.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        let nodelay = inherits_nodelay() && socket2::SockRef::from(&listener).nodelay()?;
        let mut mio = mio::net::TcpListener::from_std(listener);
        let reg = super::register_here(&mut mio, Interest::READABLE)?;
        Ok(TcpListener {
            mio,
            reg,
            nodelay: AtomicBool::new(nodelay),
        })
    }

    /// Accepts a connection; the new stream registers at its first I/O call, with the poller
    /// of the worker making it (see [`crate::net`]: I/O affinity).
    /// Transient errors (`ECONNABORTED`, `EINTR`) are retried.
    ///
    /// # Errors
    ///
    /// Other accept errors, e.g. `EMFILE` when the process is out of file descriptors.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let mut waiter = self.reg.waiter(Direction::Read);
        let (stream, addr) = poll_fn(|cx| self.poll_accept_raw(cx, &mut waiter)).await?;
        Ok((
            TcpStream::from_accepted(stream, self.accepts_nodelay()),
            addr,
        ))
    }

    /// Polls an accept (tokio's `poll_accept`): the waker is kept in the listener's one read
    /// slot, so one task polls this way (any number may `accept().await` at once).
    ///
    /// # Errors
    ///
    /// As [`accept`](Self::accept).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        budgeted(cx, |cx| {
            self.reg.poll_io(cx, Direction::Read, || self.accept_now())
        })
        .map(|r| r.map(|(s, addr)| (TcpStream::from_accepted(s, self.accepts_nodelay()), addr)))
    }

    /// Accepts without waiting, retrying the transient errors (`ECONNABORTED`, `EINTR`): the
    /// one accept call of both `poll_accept` and the waiters' `poll_accept_raw`.
    pub(crate) fn accept_now(&self) -> io::Result<(mio::net::TcpStream, SocketAddr)> {
        loop {
            match self.mio.accept() {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                    ) => {}
                other => return other,
            }
        }
    }

    /// Accepts as `waiter` (one of this listener's, for `Direction::Read`): any number of
    /// tasks may accept at once, each with its own waiter.
    pub(crate) fn poll_accept_raw(
        &self,
        cx: &mut Context<'_>,
        waiter: &mut Waiter<'_>,
    ) -> Poll<io::Result<(mio::net::TcpStream, SocketAddr)>> {
        budgeted(cx, |cx| waiter.poll_io(cx, || self.accept_now()))
    }

    /// The std listener of this socket, taken out of its worker's poller (in non-blocking
    /// mode, as tokio's `into_std` leaves it).
    ///
    /// # Errors
    ///
    /// The OS error of the deregistration.
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        let TcpListener { mut mio, reg, .. } = self;
        reg.deregister(&mut mio)?;
        Ok(std::net::TcpListener::from(mio))
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.mio.local_addr()
    }

    /// Sets `TCP_NODELAY` on the listening socket, which the sockets it accepts then have from
    /// the start: on Linux, a stream accepted from such a listener answers
    /// [`TcpStream::set_nodelay`]`(true)` and [`TcpStream::nodelay`] without a system call (a
    /// server that sets it on every connection, as most do, saves one `setsockopt` per
    /// connection; HAProxy makes that call for each). [`TcpSocket::set_nodelay`] before
    /// `listen` does the same.
    ///
    /// ```
    /// # let rt = pinwheel::Runtime::new()?;
    /// # rt.block_on(async {
    /// let listener = pinwheel::net::TcpListener::bind("127.0.0.1:0").await?;
    /// listener.set_nodelay(true)?;
    /// assert!(listener.nodelay()?);
    /// # std::io::Result::Ok(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        socket2::SockRef::from(&self.mio).set_nodelay(on)?;
        self.nodelay
            .store(on && inherits_nodelay(), Ordering::Relaxed);
        Ok(())
    }

    /// Sets `TCP_DEFER_ACCEPT` (Linux): the kernel hands over a new connection only once its
    /// first bytes have arrived, so the accept is followed by a read that finds them rather
    /// than by a wait (a client that stays silent is handed over after about `timeout`, whole
    /// seconds, rounded up). For protocols where the client speaks first (HTTP, TLS) it saves
    /// the server a wake-up per connection and, with pinwheel's speculative reads, the
    /// registration of most short connections with the poller. `None` turns it off. HAProxy's
    /// `option defer-accept`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # let rt = pinwheel::Runtime::new()?;
    /// # rt.block_on(async {
    /// let listener = pinwheel::net::TcpListener::bind("127.0.0.1:0").await?;
    /// listener.set_defer_accept(Some(Duration::from_secs(1)))?;
    /// assert!(listener.defer_accept()?.is_some());
    /// # std::io::Result::Ok(())
    /// # })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The OS error; `Unsupported` on systems other than Linux and Android.
    pub fn set_defer_accept(&self, timeout: Option<Duration>) -> io::Result<()> {
        let secs = timeout.map_or(0, |t| {
            let whole = t.as_secs() + u64::from(t.subsec_nanos() > 0);
            whole.clamp(1, i32::MAX as u64) as i32
        });
        defer_accept::set(&self.mio, secs)
    }

    /// The listener's `TCP_DEFER_ACCEPT` wait (see [`set_defer_accept`](Self::set_defer_accept)),
    /// as the kernel keeps it (it counts the retransmissions of its answer to the connection, so
    /// it may read back longer than it was set); `None` when off.
    ///
    /// # Errors
    ///
    /// The OS error; `Unsupported` on systems other than Linux and Android.
    pub fn defer_accept(&self) -> io::Result<Option<Duration>> {
        let secs = defer_accept::get(&self.mio)?;
        Ok((secs > 0).then(|| Duration::from_secs(secs.unsigned_abs().into())))
    }

    /// Whether the listening socket has `TCP_NODELAY` (see [`set_nodelay`](Self::set_nodelay)).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn nodelay(&self) -> io::Result<bool> {
        socket2::SockRef::from(&self.mio).nodelay()
    }

    /// Whether the sockets this listener accepts are known to have `TCP_NODELAY` (the
    /// inherited nodelay rule).
    pub(crate) fn accepts_nodelay(&self) -> bool {
        self.nodelay.load(Ordering::Relaxed)
    }

    /// `true` when the socket has `SO_REUSEPORT` (see [`TcpSocket::set_reuseport`]).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn reuseport(&self) -> io::Result<bool> {
        socket2::SockRef::from(&self.mio).reuse_port()
    }
}

/// A TCP socket not yet listening or connected: the options users set before `listen` or
/// `connect` (a thin layer over `socket2`).
///
/// ```
/// let rt = pinwheel::Runtime::new()?;
/// rt.block_on(async {
///     let socket = pinwheel::net::TcpSocket::new_v4()?;
///     socket.set_reuseaddr(true)?;
///     socket.set_reuseport(true)?;
///     socket.bind("127.0.0.1:0".parse().unwrap())?;
///     let listener = socket.listen(1024)?;
///     assert!(listener.reuseport()?);
///     std::io::Result::Ok(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct TcpSocket {
    inner: socket2::Socket,
}

impl TcpSocket {
    /// An IPv4 TCP socket.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn new_v4() -> io::Result<TcpSocket> {
        Ok(TcpSocket {
            inner: socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?,
        })
    }

    /// An IPv6 TCP socket.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn new_v6() -> io::Result<TcpSocket> {
        Ok(TcpSocket {
            inner: socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None)?,
        })
    }

    /// A socket of the family of `addr`.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn for_addr(addr: SocketAddr) -> io::Result<TcpSocket> {
        if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
    }

    /// `SO_REUSEADDR`.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn set_reuseaddr(&self, on: bool) -> io::Result<()> {
        self.inner.set_reuse_address(on)
    }

    /// `SO_REUSEPORT`: several sockets may bind the same address, and the kernel spreads
    /// connections over them (see `Balance::Shards`).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn set_reuseport(&self, on: bool) -> io::Result<()> {
        self.inner.set_reuse_port(on)
    }

    /// `TCP_NODELAY` (kept by connected streams).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.set_nodelay(on)
    }

    /// `SO_KEEPALIVE`.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        self.inner.set_keepalive(on)
    }

    /// `SO_SNDBUF`.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn set_send_buffer_size(&self, bytes: usize) -> io::Result<()> {
        self.inner.set_send_buffer_size(bytes)
    }

    /// `SO_RCVBUF`.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn set_recv_buffer_size(&self, bytes: usize) -> io::Result<()> {
        self.inner.set_recv_buffer_size(bytes)
    }

    /// `SO_LINGER` (`Some(0)` resets connections on close).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn set_linger(&self, linger: Option<std::time::Duration>) -> io::Result<()> {
        self.inner.set_linger(linger)
    }

    /// Binds to `addr`.
    ///
    /// # Errors
    ///
    /// `AddrInUse` naming the address when it is taken; other OS errors as they come.
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        self.inner
            .bind(&addr.into())
            .map_err(|e| bind_error(addr, e))
    }

    /// Starts listening, registered with the current worker's poller.
    ///
    /// # Errors
    ///
    /// The OS error; outside a runtime, an error saying so.
    pub fn listen(self, backlog: u32) -> io::Result<TcpListener> {
        TcpListener::from_std(self.listen_unregistered(backlog)?)
    }

    /// Starts listening, registered with no poller yet (a `Balance::Shards` listener, bound
    /// before it reaches its worker).
    pub(crate) fn listen_unregistered(self, backlog: u32) -> io::Result<std::net::TcpListener> {
        self.inner
            .listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
        Ok(self.inner.into())
    }

    /// Connects to `addr`.
    ///
    /// # Errors
    ///
    /// `ConnectionRefused` when nothing listens there; other OS errors as they come.
    pub async fn connect(self, addr: SocketAddr) -> io::Result<TcpStream> {
        self.inner.set_nonblocking(true)?;
        match self.inner.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(115) || e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        let std: std::net::TcpStream = self.inner.into();
        TcpStream::finish_connect(TcpStream::from_mio(mio::net::TcpStream::from_std(std))?).await
    }
}

fn bind_error(addr: SocketAddr, e: io::Error) -> io::Error {
    match e.kind() {
        io::ErrorKind::AddrInUse => io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "cannot bind {addr}: the address is already in use (another listener holds the port)"
            ),
        ),
        _ => io::Error::new(e.kind(), format!("cannot bind {addr}: {e}")),
    }
}

fn bind_one(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into()).map_err(|e| bind_error(addr, e))?;
    socket.listen(1024)?;
    Ok(socket.into())
}

impl TcpStream {
    /// Connects to the first address that accepts.
    ///
    /// # Errors
    ///
    /// `ConnectionRefused` when nothing listens there; other OS errors as they come.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last = None;
        for a in resolve(addr).await? {
            match TcpStream::connect_one(a).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no address to connect to")))
    }

    async fn connect_one(addr: SocketAddr) -> io::Result<TcpStream> {
        TcpStream::finish_connect(TcpStream::from_mio(mio::net::TcpStream::connect(addr)?)?).await
    }

    /// Waits for a non-blocking connect to finish.
    async fn finish_connect(stream: TcpStream) -> io::Result<TcpStream> {
        stream.io.ready(Direction::Write).await?;
        if let Some(e) = stream.io.mio.take_error()? {
            return Err(e);
        }
        match stream.io.mio.peer_addr() {
            Ok(_) => Ok(stream),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                // The connect failed; the socket's error says why.
                Err(stream
                    .io
                    .mio
                    .take_error()?
                    .unwrap_or_else(|| io::ErrorKind::ConnectionRefused.into()))
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) fn from_mio(mut mio: mio::net::TcpStream) -> io::Result<TcpStream> {
        let reg = super::register_here(&mut mio, Interest::READABLE | Interest::WRITABLE)?;
        Ok(TcpStream {
            io: Stream::registered(mio, reg),
            nodelay: AtomicBool::new(false),
        })
    }

    /// An accepted socket, registered at its first I/O call with the poller of the worker
    /// that makes it (see `Stream`): the task that uses it, wherever it runs, gets its events.
    /// `nodelay`: the listener had `TCP_NODELAY` (the inherited nodelay rule).
    pub(crate) fn from_accepted(mio: mio::net::TcpStream, nodelay: bool) -> TcpStream {
        TcpStream {
            io: Stream::unregistered(mio),
            nodelay: AtomicBool::new(nodelay),
        }
    }

    /// Wraps a connected std stream (made non-blocking here), registered with the current
    /// worker's poller.
    ///
    /// # Errors
    ///
    /// When called outside a runtime, or when the registration fails.
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        TcpStream::from_mio(mio::net::TcpStream::from_std(stream))
    }

    /// The remote address.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.mio.peer_addr()
    }

    /// The std stream of this socket, taken out of its worker's poller (in non-blocking mode,
    /// as tokio's `into_std` leaves it).
    ///
    /// # Errors
    ///
    /// The OS error of the deregistration.
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        let mio = self.io.deregister()?;
        Ok(std::net::TcpStream::from(mio))
    }

    /// The `SO_LINGER` setting: how long a close waits for unsent data (`None`: it does not).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn linger(&self) -> io::Result<Option<std::time::Duration>> {
        socket2::SockRef::from(&self.io.mio).linger()
    }

    /// Sets `SO_LINGER`. `Some(Duration::ZERO)` makes a close reset the connection (see
    /// [`set_zero_linger`](Self::set_zero_linger)).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn set_linger(&self, linger: Option<std::time::Duration>) -> io::Result<()> {
        socket2::SockRef::from(&self.io.mio).set_linger(linger)
    }

    /// Makes a close reset the connection at once (`SO_LINGER` with a zero timeout), dropping
    /// unsent data.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn set_zero_linger(&self) -> io::Result<()> {
        self.set_linger(Some(std::time::Duration::ZERO))
    }

    /// The IPv4 time-to-live of outgoing packets.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.mio.ttl()
    }

    /// Sets the IPv4 time-to-live of outgoing packets.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.mio.set_ttl(ttl)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn nodelay(&self) -> io::Result<bool> {
        if self.nodelay.load(Ordering::Relaxed) {
            return Ok(true);
        }
        self.io.mio.nodelay()
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any.
    ///
    /// # Errors
    ///
    /// The OS error of reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.mio.take_error()
    }

    /// Reads what the next read would, without taking it from the socket.
    ///
    /// # Errors
    ///
    /// The read's error.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .waiter_op(Direction::Read, None, || self.io.mio.peek(buf))
            .await
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.mio.local_addr()
    }

    /// Sets TCP_NODELAY. Turning it on where it is known to be on already (accepted from a
    /// listener that has it, see [`TcpListener::set_nodelay`], or set before) makes no system
    /// call.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        if nodelay && self.nodelay.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.io.mio.set_nodelay(nodelay)?;
        self.nodelay.store(nodelay, Ordering::Relaxed);
        Ok(())
    }
}

stream_methods!(TcpStream);
impl_hyper_io!(TcpStream);
define_halves!(TcpStream);

impl ReadHalf<'_> {
    /// Reads what the next read would, without taking it (see [`TcpStream::peek`]).
    ///
    /// # Errors
    ///
    /// The read's error.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.peek(buf).await
    }
}

impl OwnedReadHalf {
    /// Reads what the next read would, without taking it (see [`TcpStream::peek`]).
    ///
    /// # Errors
    ///
    /// The read's error.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.peek(buf).await
    }
}

impl_async_read!(TcpStream, TcpStream, |s| s);
impl_async_read!(&TcpStream, TcpStream, |s| *s);
impl_async_write!(TcpStream, TcpStream, |s| s);
impl_async_write!(&TcpStream, TcpStream, |s| *s);

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .finish()
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("local", &self.local_addr().ok())
            .finish()
    }
}

/// `TCP_DEFER_ACCEPT`, which neither mio nor socket2 offers.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod defer_accept {
    use std::io;
    use std::os::fd::AsRawFd;

    // The setsockopt/getsockopt rule: the fd is a live socket borrowed for the call, and the
    // option's value is a c_int whose address and length are passed together.

    pub(super) fn set(socket: &impl AsRawFd, secs: libc::c_int) -> io::Result<()> {
        // SAFETY: the setsockopt/getsockopt rule above.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_DEFER_ACCEPT,
                (&raw const secs).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub(super) fn get(socket: &impl AsRawFd) -> io::Result<libc::c_int> {
        let mut secs: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: the setsockopt/getsockopt rule above; `len` says how much `secs` holds.
        let rc = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_DEFER_ACCEPT,
                (&raw mut secs).cast(),
                &raw mut len,
            )
        };
        if rc == 0 {
            Ok(secs)
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod defer_accept {
    use std::io;

    fn unsupported() -> io::Error {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "TCP_DEFER_ACCEPT is a Linux option: leave it off on this system",
        )
    }

    pub(super) fn set(_socket: &impl std::os::fd::AsRawFd, _secs: i32) -> io::Result<()> {
        Err(unsupported())
    }

    pub(super) fn get(_socket: &impl std::os::fd::AsRawFd) -> io::Result<i32> {
        Err(unsupported())
    }
}
