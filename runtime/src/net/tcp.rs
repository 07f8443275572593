use std::fmt;
use std::future::poll_fn;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};

use super::addr::{ToSocketAddrs, resolve};
use std::task::{Context, Poll};

use mio::Interest;
use pinwheel_io_driver::{Direction, Registration};

use super::current_driver;

/// A TCP listening socket.
pub struct TcpListener {
    mio: mio::net::TcpListener,
    reg: Registration,
}

/// A TCP connection.
///
/// Reads and writes take `&self`, so one task can read while another writes on a shared
/// reference; [`futures_io::AsyncRead`] and [`futures_io::AsyncWrite`] are implemented for
/// `TcpStream` and `&TcpStream`.
pub struct TcpStream {
    mio: mio::net::TcpStream,
    reg: Registration,
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
        let mut mio = mio::net::TcpListener::from_std(listener);
        let reg = current_driver()?.register(&mut mio, Interest::READABLE)?;
        Ok(TcpListener { mio, reg })
    }

    /// Accepts a connection; the new stream registers with the calling worker's poller.
    /// Transient errors (`ECONNABORTED`, `EINTR`) are retried.
    ///
    /// # Errors
    ///
    /// Other accept errors, e.g. `EMFILE` when the process is out of file descriptors.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, addr) = poll_fn(|cx| self.poll_accept_raw(cx)).await?;
        Ok((TcpStream::from_mio(stream)?, addr))
    }

    pub(crate) fn poll_accept_raw(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(mio::net::TcpStream, SocketAddr)>> {
        loop {
            match self.reg.poll_io(cx, Direction::Read, || self.mio.accept()) {
                Poll::Ready(Err(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                other => return other,
            }
        }
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.mio.local_addr()
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
        self.inner
            .listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
        TcpListener::from_std(self.inner.into())
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
        poll_fn(|cx| stream.reg.poll_ready(cx, Direction::Write)).await?;
        if let Some(e) = stream.mio.take_error()? {
            return Err(e);
        }
        match stream.mio.peer_addr() {
            Ok(_) => Ok(stream),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                // The connect failed; the socket's error says why.
                Err(stream
                    .mio
                    .take_error()?
                    .unwrap_or_else(|| io::ErrorKind::ConnectionRefused.into()))
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) fn from_mio(mut mio: mio::net::TcpStream) -> io::Result<TcpStream> {
        let reg = current_driver()?.register(&mut mio, Interest::READABLE | Interest::WRITABLE)?;
        Ok(TcpStream { mio, reg })
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
        self.mio.peer_addr()
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.mio.local_addr()
    }

    /// Sets TCP_NODELAY.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.mio.set_nodelay(nodelay)
    }

    /// Shuts down the read half, the write half, or both.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.mio.shutdown(how)
    }

    /// Waits until the stream may be readable (or closed, or errored).
    ///
    /// # Errors
    ///
    /// When the runtime owning the socket's poller shut down.
    pub async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.reg.poll_ready(cx, Direction::Read))
            .await
            .map(drop)
    }

    /// Waits until the stream may be writable (or closed, or errored).
    ///
    /// # Errors
    ///
    /// When the runtime owning the socket's poller shut down.
    pub async fn writable(&self) -> io::Result<()> {
        poll_fn(|cx| self.reg.poll_ready(cx, Direction::Write))
            .await
            .map(drop)
    }

    /// Reads what is there without waiting; `WouldBlock` when nothing is.
    ///
    /// # Errors
    ///
    /// `WouldBlock`, or the read's error.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.reg.try_io(Direction::Read, || (&self.mio).read(buf))
    }

    /// Writes what fits without waiting; `WouldBlock` when nothing does.
    ///
    /// # Errors
    ///
    /// `WouldBlock`, or the write's error.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.reg.try_io(Direction::Write, || (&self.mio).write(buf))
    }

    /// Polls a read into `buf`.
    pub fn poll_read_buf(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let len = buf.len();
        self.reg
            .poll_io_len(cx, Direction::Read, len, || (&self.mio).read(buf))
    }

    /// Polls a read into memory that need not be initialised (it is never read, only written
    /// by `recv`); returns how many bytes are now initialised at the front.
    #[cfg(feature = "hyper")]
    pub(crate) fn poll_read_uninit(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>> {
        let len = buf.len();
        let sock = socket2::SockRef::from(&self.mio);
        self.reg
            .poll_io_len(cx, Direction::Read, len, || sock.recv(&mut *buf))
    }

    /// Polls a write of `buf`.
    pub fn poll_write_buf(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.reg
            .poll_io_len(cx, Direction::Write, buf.len(), || (&self.mio).write(buf))
    }

    /// Polls a vectored write.
    pub fn poll_write_vectored_buf(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.reg
            .poll_io(cx, Direction::Write, || (&self.mio).write_vectored(bufs))
    }

    /// Reads into `buf`; 0 means the peer closed its side.
    ///
    /// # Errors
    ///
    /// The read's error (`ConnectionReset` when the peer reset the connection).
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read_buf(cx, buf)).await
    }

    /// Writes some of `buf`; returns how much.
    ///
    /// # Errors
    ///
    /// The write's error (`BrokenPipe` or `ConnectionReset` when the peer is gone; never a
    /// `SIGPIPE`).
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_write_buf(cx, buf)).await
    }

    /// Reads exactly `buf.len()` bytes.
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` when the peer closes first, or the read's error.
    pub async fn read_exact(&self, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read(buf).await? {
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection before the whole buffer was read",
                    ));
                }
                n => buf = &mut buf[n..],
            }
        }
        Ok(())
    }

    /// Writes all of `buf`.
    ///
    /// # Errors
    ///
    /// The write's error.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write(buf).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }
}

impl_async_read!(TcpStream, |s| s);
impl_async_read!(&TcpStream, |s| *s);
impl_async_write!(TcpStream, |s| s);
impl_async_write!(&TcpStream, |s| *s);

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
