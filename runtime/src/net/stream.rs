//! What every stream socket (TCP, Unix) shares: a mio socket and its registration with a
//! worker's poller, the read/write calls built on them, and the I/O traits of futures-io,
//! tokio (feature `tokio-io`) and hyper (feature `hyper`), each written once here.

use std::future::poll_fn;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::OnceLock;
use std::task::{Context, Poll};

use crate::task::coop::budgeted;
use pinwheel_io_driver::{Direction, Registration};

/// A connected stream socket and its registration with a worker's poller.
///
/// An accepted socket registers lazily: at its first I/O call that would block, with the
/// poller of the worker making it (and that call's task, if stealable, is bound to that
/// worker: I/O affinity, see `net::register_here`). So a plain accept loop that spawns each
/// connection's task keeps each connection's events on the thread that runs its code,
/// wherever the task was stolen to before its first poll, with no registration moved (no
/// extra system call).
///
/// Until then its calls are *speculative* (HAProxy's speculative I/O): made at once, with no
/// readiness to consult, since a new connection's request is usually there by the time it is
/// accepted and its socket buffer is empty for writing. A short exchange (a request, its
/// response, the close) then costs no `epoll_ctl` and no turn of the poller. The rule that
/// makes registering late sound (the *late registration rule*): a call saw `WouldBlock`
/// before the socket is added to epoll, and the addition (edge-triggered) reports the
/// readiness the socket has at that moment, so what arrived in between is not missed.
pub(crate) struct Stream<S> {
    pub(crate) mio: S,
    reg: OnceLock<Registration>,
}

/// `Poll::Ready(Err(e))` from a registration error, or the registration.
macro_rules! ready_reg {
    ($stream:expr) => {
        match $stream.reg() {
            Ok(r) => r,
            Err(e) => return Poll::Ready(Err(e)),
        }
    };
}

/// Writes `buf` to a connected stream socket with `send(2)` and `MSG_NOSIGNAL` (the *socket
/// write rule*, for every write of a stream socket): a peer that has gone makes the call fail
/// with `BrokenPipe` rather than raise `SIGPIPE`, which kills a process that did not ignore it
/// (a C host embedding the runtime, say); and a socket call skips the file layer that
/// `write(2)`/`writev(2)` go through first (HAProxy writes with `send` too).
#[inline]
pub(crate) fn send<S: AsFd>(socket: &S, buf: &[u8]) -> io::Result<usize> {
    send_with(socket, buf, 0)
}

/// [`send`] with more `flags`.
#[inline]
fn send_with<S: AsFd>(socket: &S, buf: &[u8], flags: libc::c_int) -> io::Result<usize> {
    socket2::SockRef::from(socket).send_with_flags(buf, libc::MSG_NOSIGNAL | flags)
}

/// At most this many bytes of a vectored write are gathered into one buffer for one `send`
/// (see [`send_vectored`]). Measured on loopback TCP (2026-12-05, AMD EPYC VM): `writev` of
/// two buffers costs 100-180 ns more than copying them and sending one, up to 4 KiB; at
/// 16 KiB the copy costs more than it saves.
const GATHER_MAX: usize = 4096;

/// Writes `bufs` by the socket write rule (see [`send`]). A small write of several buffers
/// (hyper's head and body, say) is copied into one and sent with `send(2)`, as one buffer
/// costs the kernel less than several; a large one goes with `sendmsg(2)`. Empty buffers are
/// skipped.
#[inline]
pub(crate) fn send_vectored<S: AsFd>(socket: &S, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    let mut parts = bufs.iter().filter(|b| !b.is_empty());
    let (first, second) = (parts.next(), parts.next());
    match (first, second) {
        (None, _) => send(socket, &[]),
        (Some(one), None) => send(socket, one),
        _ => {
            let total = bufs.iter().fold(0usize, |n, b| n.saturating_add(b.len()));
            if total > GATHER_MAX {
                return socket2::SockRef::from(socket)
                    .send_vectored_with_flags(bufs, libc::MSG_NOSIGNAL);
            }
            let mut gathered = [std::mem::MaybeUninit::<u8>::uninit(); GATHER_MAX];
            let mut n = 0;
            for b in bufs {
                // SAFETY: `n + b.len() <= total <= GATHER_MAX`, so the copy stays inside
                // `gathered`; a borrowed `IoSlice` cannot overlap a local array.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        b.as_ptr(),
                        gathered.as_mut_ptr().add(n).cast::<u8>(),
                        b.len(),
                    );
                }
                n += b.len();
            }
            // SAFETY: the copies above wrote bytes `0..n` (n == total) of `gathered`.
            let gathered = unsafe { std::slice::from_raw_parts(gathered.as_ptr().cast::<u8>(), n) };
            send(socket, gathered)
        }
    }
}

impl<S: AsRawFd> Stream<S> {
    /// A socket registered now, with `reg`.
    pub(crate) fn registered(mio: S, reg: Registration) -> Stream<S> {
        Stream {
            mio,
            reg: OnceLock::from(reg),
        }
    }

    /// A socket that registers at its first I/O call, where that call runs.
    pub(crate) fn unregistered(mio: S) -> Stream<S> {
        Stream {
            mio,
            reg: OnceLock::new(),
        }
    }

    /// The socket's registration, made now (with the calling worker's poller) if it has none
    /// yet.
    ///
    /// # Errors
    ///
    /// Outside a runtime, or when the registration fails.
    #[inline]
    pub(crate) fn reg(&self) -> io::Result<&Registration> {
        match self.reg.get() {
            Some(r) => Ok(r),
            None => self.register_now(),
        }
    }

    #[cold]
    #[inline(never)]
    fn register_now(&self) -> io::Result<&Registration> {
        let fd = self.mio.as_raw_fd();
        let reg = super::register_here(
            &mut mio::unix::SourceFd(&fd),
            mio::Interest::READABLE | mio::Interest::WRITABLE,
        )?;
        if let Err(reg) = self.reg.set(reg) {
            // Another thread registered it first (two tasks shared the new socket): keep
            // theirs, take ours out of our poller.
            let _ = reg.deregister(&mut mio::unix::SourceFd(&fd));
        }
        Ok(self.reg.get().expect("set just above"))
    }

    /// Runs I/O call `op` in `direction`: at once while the socket is unregistered (see the
    /// late registration rule on [`Stream`]), registering it when `op` would block; through
    /// the registration's readiness after. With `len` (the bytes asked for), a shorter result
    /// clears the readiness at once (see `Registration::poll_io_len`).
    #[inline]
    fn poll_op(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        len: Option<usize>,
        mut op: impl FnMut() -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        budgeted(cx, |cx| {
            let reg = match self.reg.get() {
                Some(reg) => reg,
                None => match op() {
                    // Registered after the `WouldBlock`: it waits for the event the addition
                    // reports (the late registration rule).
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => match self.register_now() {
                        Ok(reg) => reg,
                        Err(e) => return Poll::Ready(Err(e)),
                    },
                    r => return Poll::Ready(r),
                },
            };
            match len {
                Some(len) => reg.poll_io_len(cx, direction, len, op),
                None => reg.poll_io(cx, direction, op),
            }
        })
    }

    /// A non-blocking call `op` in `direction`: at once while the socket is unregistered
    /// (registering it when `op` would block, so that a wait for readiness may follow),
    /// through the registration's readiness after.
    pub(crate) fn try_op<R>(
        &self,
        direction: Direction,
        op: impl FnOnce() -> io::Result<R>,
    ) -> io::Result<R> {
        match self.reg.get() {
            Some(reg) => reg.try_io(direction, op),
            None => match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.register_now()?;
                    Err(e)
                }
                r => r,
            },
        }
    }

    /// The socket and its registration (if it has one), taken apart.
    pub(crate) fn into_parts(self) -> (S, Option<Registration>) {
        (self.mio, self.reg.into_inner())
    }

    /// Takes the socket out of its poller (if it was registered); the socket.
    ///
    /// # Errors
    ///
    /// The OS error of the deregistration.
    pub(crate) fn deregister(self) -> io::Result<S> {
        let (mio, reg) = self.into_parts();
        if let Some(reg) = reg {
            reg.deregister(&mut mio::unix::SourceFd(&mio.as_raw_fd()))?;
        }
        Ok(mio)
    }
}

impl<S> Stream<S>
where
    S: AsFd + AsRawFd,
    for<'a> &'a S: Read + Write,
{
    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let len = buf.len();
        self.poll_op(cx, Direction::Read, Some(len), || (&self.mio).read(buf))
    }

    /// Reads into memory that need not be initialised: `recv` only writes it. Returns how many
    /// bytes at the front are now initialised.
    #[cfg(any(feature = "hyper", feature = "tokio-io"))]
    pub(crate) fn poll_read_uninit(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>> {
        let len = buf.len();
        let sock = socket2::SockRef::from(&self.mio);
        self.poll_op(cx, Direction::Read, Some(len), || sock.recv(&mut *buf))
    }

    /// Reads into `buf`'s spare capacity (growing a growable buffer when it has none) and
    /// advances it, with [`Stream::poll_read`]'s short-read rule.
    pub(crate) fn poll_read_into<B: bytes::BufMut + ?Sized>(
        &self,
        cx: &mut Context<'_>,
        buf: &mut B,
    ) -> Poll<io::Result<usize>> {
        let len = buf.chunk_mut().len();
        let sock = socket2::SockRef::from(&self.mio);
        self.poll_op(cx, Direction::Read, Some(len), || {
            crate::net::buf::read_into(buf, |dst| sock.recv(dst).map(|n| (n, ()))).map(|(n, ())| n)
        })
    }

    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_op(cx, Direction::Write, Some(buf.len()), || {
            send(&self.mio, buf)
        })
    }

    pub(crate) fn poll_write_more(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_op(cx, Direction::Write, Some(buf.len()), || {
            send_with(&self.mio, buf, libc::MSG_MORE)
        })
    }

    pub(crate) fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_op(cx, Direction::Write, None, || {
            send_vectored(&self.mio, bufs)
        })
    }

    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.try_op(Direction::Read, || (&self.mio).read(buf))
    }

    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.try_op(Direction::Write, || send(&self.mio, buf))
    }

    /// Waits for readiness as a waiter of its own (any number of tasks may wait at once).
    pub(crate) async fn ready(&self, dir: Direction) -> io::Result<()> {
        let mut waiter = self.reg()?.waiter(dir);
        poll_fn(|cx| budgeted(cx, |cx| waiter.poll_ready(cx)))
            .await
            .map(drop)
    }

    /// Reads as a waiter of its own: `read(&self)` may be awaited by several tasks at once.
    pub(crate) async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        self.waiter_op(Direction::Read, Some(len), || (&self.mio).read(&mut *buf))
            .await
    }

    /// Writes as a waiter of its own.
    pub(crate) async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.waiter_op(Direction::Write, Some(buf.len()), || send(&self.mio, buf))
            .await
    }

    /// Runs I/O call `op` in `direction` as a waiter of its own (see [`Stream::read`]): at
    /// once while the socket is unregistered, as [`Stream::poll_op`] does.
    pub(crate) async fn waiter_op(
        &self,
        direction: Direction,
        len: Option<usize>,
        mut op: impl FnMut() -> io::Result<usize>,
    ) -> io::Result<usize> {
        let mut waiter = None;
        poll_fn(|cx| {
            budgeted(cx, |cx| {
                let w = match &mut waiter {
                    Some(w) => w,
                    None => {
                        let reg = match self.reg.get() {
                            Some(reg) => reg,
                            None => match op() {
                                // The late registration rule (on `Stream`).
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                    match self.register_now() {
                                        Ok(reg) => reg,
                                        Err(e) => return Poll::Ready(Err(e)),
                                    }
                                }
                                r => return Poll::Ready(r),
                            },
                        };
                        waiter.insert(reg.waiter(direction))
                    }
                };
                match len {
                    Some(len) => w.poll_io_len(cx, len, &mut op),
                    None => w.poll_io(cx, &mut op),
                }
            })
        })
        .await
    }

    pub(crate) async fn read_exact(&self, mut buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
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
        Ok(len)
    }

    pub(crate) async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write(buf).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }
}

/// The public calls of a stream socket type `$t` whose field `io` is a [`Stream`]: read and
/// write (async, polled, non-blocking), readiness, exact reads and whole writes.
macro_rules! stream_methods {
    ($t:ty) => {
        impl $t {
            /// Waits until the stream may be readable (or closed, or errored).
            ///
            /// # Errors
            ///
            /// When the runtime owning the socket's poller shut down.
            pub async fn readable(&self) -> std::io::Result<()> {
                self.io.ready(pinwheel_io_driver::Direction::Read).await
            }

            /// Waits until the stream may be writable (or closed, or errored).
            ///
            /// # Errors
            ///
            /// When the runtime owning the socket's poller shut down.
            pub async fn writable(&self) -> std::io::Result<()> {
                self.io.ready(pinwheel_io_driver::Direction::Write).await
            }

            /// Waits until the stream is ready for any of `interest` (tokio's `ready`); the
            /// readiness found. Then `try_read` / `try_write` (or `try_io`) do the I/O.
            ///
            /// # Errors
            ///
            /// When the runtime owning the socket's poller shut down.
            pub async fn ready(
                &self,
                interest: crate::io::Interest,
            ) -> std::io::Result<crate::io::Ready> {
                crate::io::ready(self.io.reg()?, interest).await
            }

            /// Polls for read readiness; the waker is kept in the stream's one read slot (one
            /// task polls this way, as with tokio's `poll_read_ready`).
            pub fn poll_read_ready(
                &self,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                ready_reg!(self.io)
                    .poll_ready(cx, pinwheel_io_driver::Direction::Read)
                    .map(|r| r.map(drop))
            }

            /// Polls for write readiness (one write slot, as `poll_read_ready`).
            pub fn poll_write_ready(
                &self,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                ready_reg!(self.io)
                    .poll_ready(cx, pinwheel_io_driver::Direction::Write)
                    .map(|r| r.map(drop))
            }

            /// Runs `f`, a non-blocking operation on the socket, for `interest` (readable if
            /// it includes it, else writable); a `WouldBlock` clears that readiness so the next
            /// `ready` waits for a new event (tokio's `try_io`).
            ///
            /// # Errors
            ///
            /// `f`'s error.
            pub fn try_io<R>(
                &self,
                interest: crate::io::Interest,
                f: impl FnOnce() -> std::io::Result<R>,
            ) -> std::io::Result<R> {
                let dir = if interest.is_readable() {
                    pinwheel_io_driver::Direction::Read
                } else {
                    pinwheel_io_driver::Direction::Write
                };
                self.io.try_op(dir, f)
            }

            /// Reads into several buffers without waiting; `WouldBlock` when nothing is there.
            ///
            /// # Errors
            ///
            /// `WouldBlock`, or the read's error.
            pub fn try_read_vectored(
                &self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                use std::io::Read as _;
                self.io.try_op(pinwheel_io_driver::Direction::Read, || {
                    (&self.io.mio).read_vectored(bufs)
                })
            }

            /// Reads what is there without waiting into `buf`'s spare capacity (growing a `Vec` or
            /// `BytesMut`), and advances it; `WouldBlock` when nothing is there (tokio's
            /// `try_read_buf`).
            ///
            /// # Errors
            ///
            /// `WouldBlock`, or the read's error.
            pub fn try_read_buf<B: bytes::BufMut>(&self, buf: &mut B) -> std::io::Result<usize> {
                let sock = socket2::SockRef::from(&self.io.mio);
                self.io.try_op(pinwheel_io_driver::Direction::Read, || {
                    crate::net::buf::read_into(buf, |dst| sock.recv(dst).map(|n| (n, ())))
                        .map(|(n, ())| n)
                })
            }

            /// Writes from several buffers without waiting; `WouldBlock` when nothing fits.
            ///
            /// # Errors
            ///
            /// `WouldBlock`, or the write's error.
            pub fn try_write_vectored(
                &self,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::io::Result<usize> {
                self.io.try_op(pinwheel_io_driver::Direction::Write, || {
                    crate::net::stream::send_vectored(&self.io.mio, bufs)
                })
            }

            /// Reads what is there without waiting; `WouldBlock` when nothing is.
            ///
            /// # Errors
            ///
            /// `WouldBlock`, or the read's error.
            pub fn try_read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.io.try_read(buf)
            }

            /// Writes what fits without waiting; `WouldBlock` when nothing does.
            ///
            /// # Errors
            ///
            /// `WouldBlock`, or the write's error.
            pub fn try_write(&self, buf: &[u8]) -> std::io::Result<usize> {
                self.io.try_write(buf)
            }

            /// Polls a read into `buf`.
            pub fn poll_read_buf(
                &self,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.io.poll_read(cx, buf)
            }

            /// Polls a read into `buf`'s spare capacity (a `Vec` or `BytesMut` grows when it
            /// has none), advancing it: [`try_read_buf`](Self::try_read_buf) as a poll, with
            /// no need to zero the memory first (tokio-util's `poll_read_buf`). A read that
            /// fills less than the spare room leaves the socket known drained: the next poll
            /// waits for the poller instead of making a system call that would only say
            /// `WouldBlock`. `Ok(0)`: the peer closed its side (or `buf` has no room left).
            pub fn poll_read_into<B: bytes::BufMut>(
                &self,
                cx: &mut std::task::Context<'_>,
                buf: &mut B,
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.io.poll_read_into(cx, buf)
            }

            /// Polls a write of `buf`.
            pub fn poll_write_buf(
                &self,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.io.poll_write(cx, buf)
            }

            /// Polls a write of `buf` that more bytes, a shutdown or the close follow at once
            /// (`MSG_MORE`): the kernel may hold a short tail to send it with what follows, in
            /// one segment (a response's last bytes with the FIN of a shutdown after it). Bytes
            /// nothing follows go out after the retransmission timeout (200 ms or more), so
            /// follow it without waiting for anything. Before a close, shut the write side
            /// down ([`shutdown_std`](Self::shutdown_std)): a socket closed with bytes left
            /// unread is reset, and what the kernel held is dropped.
            pub fn poll_write_more(
                &self,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.io.poll_write_more(cx, buf)
            }

            /// Polls a vectored write.
            pub fn poll_write_vectored_buf(
                &self,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.io.poll_write_vectored(cx, bufs)
            }

            /// Reads into `buf`; 0 means the peer closed its side.
            ///
            /// # Errors
            ///
            /// The read's error (`ConnectionReset` when the peer reset the connection).
            pub async fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.io.read(buf).await
            }

            /// Writes some of `buf`; returns how much.
            ///
            /// # Errors
            ///
            /// The write's error (`BrokenPipe` or `ConnectionReset` when the peer is gone;
            /// never a `SIGPIPE`).
            pub async fn write(&self, buf: &[u8]) -> std::io::Result<usize> {
                self.io.write(buf).await
            }

            /// Reads exactly `buf.len()` bytes; returns that length (as tokio's
            /// `AsyncReadExt::read_exact`).
            ///
            /// # Errors
            ///
            /// `UnexpectedEof` when the peer closes first, or the read's error.
            pub async fn read_exact(&self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.io.read_exact(buf).await
            }

            /// Writes all of `buf`.
            ///
            /// # Errors
            ///
            /// The write's error.
            pub async fn write_all(&self, buf: &[u8]) -> std::io::Result<()> {
                self.io.write_all(buf).await
            }

            /// Shuts the write side down: the peer reads the end of the stream once it has read
            /// what was written. The same call as tokio's `AsyncWriteExt::shutdown` (there is no
            /// buffer to flush first), so code written against tokio's traits runs unchanged.
            ///
            /// # Errors
            ///
            /// The OS error.
            pub async fn shutdown(&self) -> std::io::Result<()> {
                self.shutdown_std(std::net::Shutdown::Write)
            }

            /// Shuts down the read side, the write side, or both, at once: std's
            /// `shutdown(how)` (named apart from [`shutdown`](Self::shutdown), which is
            /// tokio's).
            ///
            /// # Errors
            ///
            /// The OS error.
            pub fn shutdown_std(&self, how: std::net::Shutdown) -> std::io::Result<()> {
                self.io.mio.shutdown(how)
            }
        }
    };
}

/// The read traits (futures-io's `AsyncRead`; tokio's with `tokio-io`) for a type that reaches
/// a stream socket of type `$s` through `$get`.
macro_rules! impl_async_read {
    ($t:ty, $s:ty, $get:expr) => {
        impl futures_io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let get: fn(&Self) -> &$s = $get;
                get(&self).io.poll_read(cx, buf)
            }
        }

        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let get: fn(&Self) -> &$s = $get;
                // SAFETY: `poll_read_uninit` only writes into the slice (through `recv`), never
                // de-initialises a byte of it, as `unfilled_mut` requires.
                let unfilled = unsafe { buf.unfilled_mut() };
                match get(&self).io.poll_read_uninit(cx, unfilled) {
                    std::task::Poll::Ready(Ok(n)) => {
                        // SAFETY: `recv` initialised the first `n` bytes of the unfilled part.
                        unsafe { buf.assume_init(n) };
                        buf.advance(n);
                        std::task::Poll::Ready(Ok(()))
                    }
                    std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Err(e)),
                    std::task::Poll::Pending => std::task::Poll::Pending,
                }
            }
        }
    };
}

/// The write traits (futures-io's `AsyncWrite`; tokio's with `tokio-io`) for a type that
/// reaches a stream socket of type `$s` through `$get`. Writes are never buffered (flush does
/// nothing); closing / shutting down shuts the write side down.
macro_rules! impl_async_write {
    ($t:ty, $s:ty, $get:expr) => {
        impl futures_io::AsyncWrite for $t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let get: fn(&Self) -> &$s = $get;
                get(&self).io.poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let get: fn(&Self) -> &$s = $get;
                get(&self).io.poll_write_vectored(cx, bufs)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let get: fn(&Self) -> &$s = $get;
                std::task::Poll::Ready(get(&self).shutdown_std(std::net::Shutdown::Write))
            }
        }

        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncWrite for $t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let get: fn(&Self) -> &$s = $get;
                get(&self).io.poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let get: fn(&Self) -> &$s = $get;
                get(&self).io.poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let get: fn(&Self) -> &$s = $get;
                std::task::Poll::Ready(get(&self).shutdown_std(std::net::Shutdown::Write))
            }
        }
    };
}

/// hyper's `rt::Read` / `rt::Write` (feature `hyper`) for a stream socket type `$t`: reads go
/// into hyper's uninitialised buffer without zero-filling it.
macro_rules! impl_hyper_io {
    ($t:ty) => {
        #[cfg(feature = "hyper")]
        impl hyper::rt::Read for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                mut buf: hyper::rt::ReadBufCursor<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                // SAFETY: `poll_read_uninit` only writes into the slice (through `recv`), never
                // de-initialises a byte of it, as `as_mut` requires.
                let n = match self.io.poll_read_uninit(cx, unsafe { buf.as_mut() }) {
                    std::task::Poll::Ready(Ok(n)) => n,
                    std::task::Poll::Ready(Err(e)) => return std::task::Poll::Ready(Err(e)),
                    std::task::Poll::Pending => return std::task::Poll::Pending,
                };
                // SAFETY: `recv` initialised the first `n` bytes of the slice it was given.
                unsafe { buf.advance(n) };
                std::task::Poll::Ready(Ok(()))
            }
        }

        #[cfg(feature = "hyper")]
        impl hyper::rt::Write for $t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.io.poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.io.poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(self.shutdown_std(std::net::Shutdown::Write))
            }
        }
    };
}
