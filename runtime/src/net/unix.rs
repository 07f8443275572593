//! Unix domain sockets: [`UnixListener`], [`UnixStream`], [`UnixDatagram`], registered with the
//! poller of the worker that makes them, like TCP. This module holds what goes with them: the
//! peer address type, peer credentials and the stream's split halves.
//!
//! On Linux a path whose first byte is NUL (`"\0name"`) names a socket in the abstract
//! namespace: no file is made, and it goes away with the last socket.
//!
//! ```
//! use pinwheel::net::{UnixListener, UnixStream};
//!
//! let rt = pinwheel::Runtime::new()?;
//! rt.block_on(async {
//!     let dir = std::env::temp_dir().join(format!("pinwheel-doc-{}", std::process::id()));
//!     std::fs::create_dir_all(&dir)?;
//!     let path = dir.join("echo.sock");
//!     let _ = std::fs::remove_file(&path);
//!     let listener = UnixListener::bind(&path)?;
//!     let server = pinwheel::spawn(async move {
//!         let (stream, _peer) = listener.accept().await?;
//!         let mut buf = [0u8; 5];
//!         stream.read_exact(&mut buf).await?;
//!         stream.write_all(&buf).await
//!     });
//!     let client = UnixStream::connect(&path).await?;
//!     client.write_all(b"hello").await?;
//!     let mut back = [0u8; 5];
//!     client.read_exact(&mut back).await?;
//!     assert_eq!(&back, b"hello");
//!     server.await.unwrap()?;
//!     std::fs::remove_dir_all(&dir)
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::task::{Context, Poll};

use crate::task::coop::budgeted;
use mio::Interest;
use pinwheel_io_driver::{Direction, Registration, Waiter};

use super::stream::Stream;

/// The address of a Unix socket: a path, an abstract name (Linux), or unnamed (a client that
/// did not bind, or one end of a pair). This is std's type.
pub use std::os::unix::net::SocketAddr;

/// The most bytes a socket path may have: `sun_path` holds 108 bytes on Linux (104 on macOS),
/// one of them the terminating NUL.
#[cfg(target_os = "linux")]
pub const MAX_PATH_LEN: usize = 107;
/// The most bytes a socket path may have: `sun_path` holds 108 bytes on Linux (104 on macOS),
/// one of them the terminating NUL.
#[cfg(not(target_os = "linux"))]
pub const MAX_PATH_LEN: usize = 103;

/// The address for `path`, with a clear error for a path that is too long; a leading NUL
/// makes an abstract name on Linux.
fn socket_addr(path: &Path) -> io::Result<SocketAddr> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() > MAX_PATH_LEN + usize::from(bytes.first() == Some(&0)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the Unix socket path {path:?} has {} bytes, over the limit of {MAX_PATH_LEN} (sun_path); use a shorter path, e.g. in /run or /tmp",
                bytes.len()
            ),
        ));
    }
    #[cfg(target_os = "linux")]
    if let Some(name) = bytes.strip_prefix(&[0]) {
        use std::os::linux::net::SocketAddrExt;
        return SocketAddr::from_abstract_name(name);
    }
    SocketAddr::from_pathname(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("{path:?} cannot be a Unix socket path: {e}"),
        )
    })
}

/// `socket_addr`'s checks, as the `socket2` address the datagram calls take.
fn sock_addr(path: &Path) -> io::Result<socket2::SockAddr> {
    socket_addr(path)?;
    socket2::SockAddr::unix(path)
}

fn bind_error(path: &Path, e: io::Error) -> io::Error {
    match e.kind() {
        io::ErrorKind::AddrInUse => io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "cannot bind the Unix socket {path:?}: the address is already in use (a socket file is there: remove it if no server owns it)"
            ),
        ),
        _ => io::Error::new(
            e.kind(),
            format!("cannot bind the Unix socket {path:?}: {e}"),
        ),
    }
}

/// A Unix stream listening socket.
pub struct UnixListener {
    mio: mio::net::UnixListener,
    pub(super) reg: Registration,
}

impl UnixListener {
    /// Binds a listener to `path` (not async: binding a Unix socket never waits), registered
    /// with the current worker's poller. The socket file is left in place when the listener is
    /// dropped, as with std and tokio.
    ///
    /// # Errors
    ///
    /// `AddrInUse` naming the path when a socket file is already there; `InvalidInput` when
    /// the path is longer than [`MAX_PATH_LEN`]; outside a runtime, an error saying so.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let path = path.as_ref();
        let addr = socket_addr(path)?;
        let std =
            std::os::unix::net::UnixListener::bind_addr(&addr).map_err(|e| bind_error(path, e))?;
        UnixListener::from_std(std)
    }

    /// Wraps a bound std listener (made non-blocking here), registered with the current
    /// worker's poller.
    ///
    /// # Errors
    ///
    /// When called outside a runtime, or when the registration fails.
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        let mut mio = mio::net::UnixListener::from_std(listener);
        let reg = super::register_here(&mut mio, Interest::READABLE)?;
        Ok(UnixListener { mio, reg })
    }

    /// Binds to `addr` (a path or, on Linux, an abstract name), as std's `bind_addr`.
    ///
    /// # Errors
    ///
    /// The OS error (`AddrInUse` when taken); outside a runtime, an error saying so.
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        let std = std::os::unix::net::UnixListener::bind_addr(addr)?;
        std.set_nonblocking(true)?;
        UnixListener::from_std(std)
    }

    /// Accepts a connection; the new stream registers at its first I/O call, with the poller
    /// of the worker making it (see [`crate::net`]: I/O affinity).
    ///
    /// # Errors
    ///
    /// Accept errors, e.g. `EMFILE` when the process is out of file descriptors.
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let mut waiter = self.reg.waiter(Direction::Read);
        let (stream, addr) = poll_fn(|cx| self.poll_accept_raw(cx, &mut waiter)).await?;
        Ok((UnixStream::from_accepted(stream), addr))
    }

    /// Polls an accept (tokio's `poll_accept`): the waker is kept in the listener's one read
    /// slot, so one task polls this way.
    ///
    /// # Errors
    ///
    /// As [`accept`](Self::accept).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(UnixStream, SocketAddr)>> {
        budgeted(cx, |cx| {
            self.reg.poll_io(cx, Direction::Read, || self.accept_now())
        })
        .map(|r| r.map(|(s, addr)| (UnixStream::from_accepted(s), addr)))
    }

    /// Accepts without waiting, retrying `EINTR`: the one accept call of both `poll_accept` and
    /// the waiters' `poll_accept_raw`.
    pub(crate) fn accept_now(&self) -> io::Result<(mio::net::UnixStream, SocketAddr)> {
        loop {
            match self.mio.accept() {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    /// Accepts as `waiter` (one of this listener's, for `Direction::Read`).
    pub(crate) fn poll_accept_raw(
        &self,
        cx: &mut Context<'_>,
        waiter: &mut Waiter<'_>,
    ) -> Poll<io::Result<(mio::net::UnixStream, SocketAddr)>> {
        budgeted(cx, |cx| waiter.poll_io(cx, || self.accept_now()))
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.mio.local_addr()
    }
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener")
            .field("local", &self.local_addr().ok())
            .finish()
    }
}

/// A connected Unix stream socket.
///
/// Reads and writes take `&self`; the futures-io traits (and tokio's with feature `tokio-io`,
/// hyper's with feature `hyper`) are implemented for `UnixStream` and `&UnixStream`.
pub struct UnixStream {
    pub(crate) io: Stream<mio::net::UnixStream>,
}

impl UnixStream {
    /// Connects to the socket at `addr` (a path or, on Linux, an abstract name), as std's
    /// `connect_addr`; the connect runs on the blocking pool (a Unix connect waits only while
    /// the listener's backlog is full).
    ///
    /// # Errors
    ///
    /// The OS error (`ConnectionRefused`, `NotFound`); outside a runtime, an error saying so.
    pub async fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        let addr = addr.clone();
        let std =
            crate::spawn_blocking(move || std::os::unix::net::UnixStream::connect_addr(&addr))
                .await
                .map_err(io::Error::other)??;
        std.set_nonblocking(true)?;
        UnixStream::from_std(std)
    }

    /// The std stream of this socket, taken out of its worker's poller (in non-blocking mode,
    /// as tokio's `into_std` leaves it).
    ///
    /// # Errors
    ///
    /// The OS error of the deregistration.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        let mio = self.io.deregister()?;
        Ok(std::os::unix::net::UnixStream::from(mio))
    }

    /// Connects to the socket at `path`.
    ///
    /// # Errors
    ///
    /// `NotFound` when nothing is at the path, `ConnectionRefused` when no one listens there;
    /// `InvalidInput` for a path longer than [`MAX_PATH_LEN`].
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let path = path.as_ref();
        let addr = socket_addr(path)?;
        let stream = mio::net::UnixStream::connect_addr(&addr)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot connect to {path:?}: {e}")))?;
        let stream = UnixStream::from_mio(stream)?;
        stream.io.ready(Direction::Write).await?;
        if let Some(e) = stream.io.mio.take_error()? {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot connect to {path:?}: {e}"),
            ));
        }
        Ok(stream)
    }

    /// A pair of connected streams (`socketpair`), both registered with the current worker's
    /// poller.
    ///
    /// # Errors
    ///
    /// The OS error; outside a runtime, an error saying so.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = mio::net::UnixStream::pair()?;
        Ok((UnixStream::from_mio(a)?, UnixStream::from_mio(b)?))
    }

    pub(crate) fn from_mio(mut mio: mio::net::UnixStream) -> io::Result<UnixStream> {
        let reg = super::register_here(&mut mio, Interest::READABLE | Interest::WRITABLE)?;
        Ok(UnixStream {
            io: Stream::registered(mio, reg),
        })
    }

    /// An accepted socket, registered at its first I/O call with the poller of the worker
    /// that makes it (see `Stream`): the task that uses it, wherever it runs, gets its events.
    pub(crate) fn from_accepted(mio: mio::net::UnixStream) -> UnixStream {
        UnixStream {
            io: Stream::unregistered(mio),
        }
    }

    /// Wraps a connected std stream (made non-blocking here), registered with the current
    /// worker's poller.
    ///
    /// # Errors
    ///
    /// When called outside a runtime, or when the registration fails.
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        UnixStream::from_mio(mio::net::UnixStream::from_std(stream))
    }

    /// This end's address.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.mio.local_addr()
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.mio.peer_addr()
    }

    /// The credentials of the process at the other end, as the kernel recorded them at
    /// `connect` (or `socketpair`).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn peer_cred(&self) -> io::Result<UCred> {
        peer_cred(self.io.mio.as_raw_fd())
    }
}

stream_methods!(UnixStream);
impl_hyper_io!(UnixStream);
define_halves!(UnixStream);
impl_async_read!(UnixStream, UnixStream, |s| s);
impl_async_read!(&UnixStream, UnixStream, |s| *s);
impl_async_write!(UnixStream, UnixStream, |s| s);
impl_async_write!(&UnixStream, UnixStream, |s| *s);

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixStream")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .finish()
    }
}

/// The credentials of a Unix socket's peer process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UCred {
    pid: Option<i32>,
    uid: u32,
    gid: u32,
}

impl UCred {
    /// The peer's process id, where the OS tells it (Linux).
    pub fn pid(&self) -> Option<i32> {
        self.pid
    }

    /// The peer's effective user id.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The peer's effective group id.
    pub fn gid(&self) -> u32 {
        self.gid
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn peer_cred(fd: std::os::fd::RawFd) -> io::Result<UCred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given, and `fd` is a socket
    // this call only reads an option of.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(UCred {
        pid: Some(cred.pid),
        uid: cred.uid,
        gid: cred.gid,
    })
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn peer_cred(fd: std::os::fd::RawFd) -> io::Result<UCred> {
    let (mut uid, mut gid) = (0, 0);
    // SAFETY: `uid` and `gid` are valid for writes; `fd` is a socket.
    if unsafe { libc::getpeereid(fd, &mut uid, &mut gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(UCred {
        pid: None,
        uid,
        gid,
    })
}

/// A Unix datagram socket.
pub struct UnixDatagram {
    mio: mio::net::UnixDatagram,
    reg: Registration,
}

impl UnixDatagram {
    /// A socket bound to `path`.
    ///
    /// # Errors
    ///
    /// As [`UnixListener::bind`].
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        let path = path.as_ref();
        let addr = socket_addr(path)?;
        let std =
            std::os::unix::net::UnixDatagram::bind_addr(&addr).map_err(|e| bind_error(path, e))?;
        UnixDatagram::from_std(std)
    }

    /// A socket bound to no address (it can send, and receive once connected).
    ///
    /// # Errors
    ///
    /// The OS error; outside a runtime, an error saying so.
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(std::os::unix::net::UnixDatagram::unbound()?)
    }

    /// A pair of connected sockets.
    ///
    /// # Errors
    ///
    /// The OS error; outside a runtime, an error saying so.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_std(a)?, UnixDatagram::from_std(b)?))
    }

    /// Wraps a std socket (made non-blocking here), registered with the current worker's
    /// poller.
    ///
    /// # Errors
    ///
    /// When called outside a runtime, or when the registration fails.
    pub fn from_std(socket: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        socket.set_nonblocking(true)?;
        let mut mio = mio::net::UnixDatagram::from_std(socket);
        let reg = super::register_here(&mut mio, Interest::READABLE | Interest::WRITABLE)?;
        Ok(UnixDatagram { mio, reg })
    }

    /// Connects the socket to `path`: `send` and `recv` then talk to it only.
    ///
    /// # Errors
    ///
    /// `NotFound` / `ConnectionRefused` when no socket is bound there.
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let path = path.as_ref();
        socket2::SockRef::from(&self.mio)
            .connect(&sock_addr(path)?)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot connect to {path:?}: {e}")))
    }

    /// Sends `buf` to the connected peer.
    ///
    /// # Errors
    ///
    /// The send's error (`NotConnected` when the socket is not connected).
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let mut waiter = self.reg.waiter(Direction::Write);
        poll_fn(|cx| budgeted(cx, |cx| waiter.poll_io(cx, || self.mio.send(buf)))).await
    }

    /// Receives one datagram from the connected peer.
    ///
    /// # Errors
    ///
    /// The receive's error.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut waiter = self.reg.waiter(Direction::Read);
        poll_fn(|cx| budgeted(cx, |cx| waiter.poll_io(cx, || self.mio.recv(buf)))).await
    }

    /// Sends `buf` to the socket at `path`.
    ///
    /// # Errors
    ///
    /// The send's error; `InvalidInput` for a path longer than [`MAX_PATH_LEN`].
    pub async fn send_to(&self, buf: &[u8], path: impl AsRef<Path>) -> io::Result<usize> {
        let addr = sock_addr(path.as_ref())?;
        let sock = socket2::SockRef::from(&self.mio);
        let mut waiter = self.reg.waiter(Direction::Write);
        poll_fn(|cx| budgeted(cx, |cx| waiter.poll_io(cx, || sock.send_to(buf, &addr)))).await
    }

    /// Polls a send to the socket at `path`.
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        path: impl AsRef<Path>,
    ) -> Poll<io::Result<usize>> {
        let to = match sock_addr(path.as_ref()) {
            Ok(to) => to,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let sock = socket2::SockRef::from(&self.mio);
        budgeted(cx, |cx| {
            self.reg
                .poll_io(cx, Direction::Write, || sock.send_to(buf, &to))
        })
    }

    /// Sends to the socket at `path` without waiting; `WouldBlock` when it cannot.
    ///
    /// # Errors
    ///
    /// `WouldBlock`, or the OS error.
    pub fn try_send_to(&self, buf: &[u8], path: impl AsRef<Path>) -> io::Result<usize> {
        let to = sock_addr(path.as_ref())?;
        let sock = socket2::SockRef::from(&self.mio);
        self.reg.try_io(Direction::Write, || sock.send_to(buf, &to))
    }

    /// Receives one datagram and the address it came from.
    ///
    /// # Errors
    ///
    /// The receive's error.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let mut waiter = self.reg.waiter(Direction::Read);
        poll_fn(|cx| budgeted(cx, |cx| waiter.poll_io(cx, || self.mio.recv_from(buf)))).await
    }

    /// This socket's address.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.mio.local_addr()
    }

    /// The connected peer's address.
    ///
    /// # Errors
    ///
    /// `NotConnected` when the socket is not connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.mio.peer_addr()
    }
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixDatagram")
            .field("local", &self.local_addr().ok())
            .finish()
    }
}

datagram_methods!(UnixDatagram);
