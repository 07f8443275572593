use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;

use super::addr::{ToSocketAddrs, resolve};

use crate::task::coop::budgeted;
use mio::Interest;
use pinwheel_io_driver::{Direction, Registration};

/// A UDP socket, registered with the poller of the worker that creates it.
///
/// ```
/// use pinwheel::net::UdpSocket;
///
/// let rt = pinwheel::Runtime::new()?;
/// rt.block_on(rt.spawn(async {
///     let a = UdpSocket::bind("127.0.0.1:0").await?;
///     let b = UdpSocket::bind("127.0.0.1:0").await?;
///     a.send_to(b"ping", b.local_addr()?).await?;
///     let mut buf = [0u8; 16];
///     let (n, from) = b.recv_from(&mut buf).await?;
///     assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr()?));
///     std::io::Result::Ok(())
/// }))
/// .unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UdpSocket {
    mio: mio::net::UdpSocket,
    reg: Registration,
}

impl UdpSocket {
    /// Binds to the first address that works.
    ///
    /// # Errors
    ///
    /// `AddrInUse` when the port is taken; other OS errors as they come; outside a runtime, an
    /// error saying so.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let mut last = None;
        for a in resolve(addr).await? {
            match mio::net::UdpSocket::bind(a) {
                Ok(s) => return UdpSocket::from_mio(s),
                Err(e) => last = Some(io::Error::new(e.kind(), format!("cannot bind {a}: {e}"))),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no address to bind")))
    }

    fn from_mio(mut mio: mio::net::UdpSocket) -> io::Result<UdpSocket> {
        let reg = super::register_here(&mut mio, Interest::READABLE | Interest::WRITABLE)?;
        Ok(UdpSocket { mio, reg })
    }

    /// Wraps a bound std socket (made non-blocking here).
    ///
    /// # Errors
    ///
    /// Outside a runtime, or when the registration fails.
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        UdpSocket::from_mio(mio::net::UdpSocket::from_std(socket))
    }

    /// Sets the default peer for `send` and `recv`, and filters what is received to it.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let mut last = None;
        for a in resolve(addr).await? {
            match self.mio.connect(a) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no address to connect to")))
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.mio.local_addr()
    }

    /// Sends a datagram to the connected peer.
    ///
    /// # Errors
    ///
    /// The OS error (e.g. `ConnectionRefused` after an ICMP port unreachable).
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let mut waiter = self.reg.waiter(Direction::Write);
        poll_fn(|cx| budgeted(cx, |cx| waiter.poll_io(cx, || self.mio.send(buf)))).await
    }

    /// Receives a datagram from the connected peer.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut waiter = self.reg.waiter(Direction::Read);
        poll_fn(|cx| budgeted(cx, |cx| waiter.poll_io(cx, || self.mio.recv(buf)))).await
    }

    /// Sends a datagram to `target` (an address, or a name resolved on the blocking pool: the
    /// first address it resolves to, as tokio's `send_to`).
    ///
    /// # Errors
    ///
    /// The OS error, or the name's resolution error.
    pub async fn send_to(&self, buf: &[u8], target: impl ToSocketAddrs) -> io::Result<usize> {
        let target = crate::net::addr::resolve_first(target).await?;
        let mut waiter = self.reg.waiter(Direction::Write);
        poll_fn(|cx| {
            budgeted(cx, |cx| {
                waiter.poll_io(cx, || self.mio.send_to(buf, target))
            })
        })
        .await
    }

    /// Whether `SO_BROADCAST` is set.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.mio.broadcast()
    }

    /// Sets `SO_BROADCAST` (sending to a broadcast address).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.mio.set_broadcast(on)
    }

    /// The IPv4 time-to-live of outgoing datagrams.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn ttl(&self) -> io::Result<u32> {
        self.mio.ttl()
    }

    /// Sets the IPv4 time-to-live of outgoing datagrams.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.mio.set_ttl(ttl)
    }

    /// The IPv4 type-of-service byte of outgoing datagrams (`IP_TOS`).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn tos_v4(&self) -> io::Result<u32> {
        socket2::SockRef::from(&self.mio).tos()
    }

    /// Sets the IPv4 type-of-service byte (`IP_TOS`).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn set_tos_v4(&self, tos: u32) -> io::Result<()> {
        socket2::SockRef::from(&self.mio).set_tos(tos)
    }

    /// The IPv6 traffic class of outgoing datagrams (`IPV6_TCLASS`).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn tclass_v6(&self) -> io::Result<u32> {
        socket2::SockRef::from(&self.mio).tclass_v6()
    }

    /// Sets the IPv6 traffic class (`IPV6_TCLASS`).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn set_tclass_v6(&self, tclass: u32) -> io::Result<()> {
        socket2::SockRef::from(&self.mio).set_tclass_v6(tclass)
    }

    /// Whether IPv4 multicast sent here loops back to this host.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.mio.multicast_loop_v4()
    }

    /// Sets whether IPv4 multicast loops back.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.mio.set_multicast_loop_v4(on)
    }

    /// The time-to-live of IPv4 multicast datagrams.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.mio.multicast_ttl_v4()
    }

    /// Sets the time-to-live of IPv4 multicast datagrams.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.mio.set_multicast_ttl_v4(ttl)
    }

    /// Whether IPv6 multicast sent here loops back.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.mio.multicast_loop_v6()
    }

    /// Sets whether IPv6 multicast loops back.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.mio.set_multicast_loop_v6(on)
    }

    /// Joins the IPv4 multicast group `group` on the interface of address `interface`.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn join_multicast_v4(
        &self,
        group: std::net::Ipv4Addr,
        interface: std::net::Ipv4Addr,
    ) -> io::Result<()> {
        self.mio.join_multicast_v4(&group, &interface)
    }

    /// Leaves an IPv4 multicast group.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn leave_multicast_v4(
        &self,
        group: std::net::Ipv4Addr,
        interface: std::net::Ipv4Addr,
    ) -> io::Result<()> {
        self.mio.leave_multicast_v4(&group, &interface)
    }

    /// Joins the IPv6 multicast group `group` on interface number `interface` (0: any).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn join_multicast_v6(&self, group: &std::net::Ipv6Addr, interface: u32) -> io::Result<()> {
        self.mio.join_multicast_v6(group, interface)
    }

    /// Leaves an IPv6 multicast group.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn leave_multicast_v6(&self, group: &std::net::Ipv6Addr, interface: u32) -> io::Result<()> {
        self.mio.leave_multicast_v6(group, interface)
    }

    /// The sender of the next datagram, without taking it (it stays queued).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub async fn peek_sender(&self) -> io::Result<SocketAddr> {
        let mut waiter = self.reg.waiter(Direction::Read);
        poll_fn(|cx| {
            budgeted(cx, |cx| {
                waiter.poll_io(cx, || self.mio.peek_from(&mut []).map(|(_, from)| from))
            })
        })
        .await
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any.
    ///
    /// # Errors
    ///
    /// The OS error of reading it.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.mio.take_error()
    }

    /// Polls a send to `target`.
    pub fn poll_send_to(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> std::task::Poll<io::Result<usize>> {
        budgeted(cx, |cx| {
            self.reg
                .poll_io(cx, Direction::Write, || self.mio.send_to(buf, target))
        })
    }

    /// Polls a look at the next datagram without taking it (a byte slice, as `poll_recv`).
    pub fn poll_peek_from(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<io::Result<(usize, SocketAddr)>> {
        budgeted(cx, |cx| {
            self.reg
                .poll_io(cx, Direction::Read, || self.mio.peek_from(buf))
        })
    }

    /// Sends to `target` without waiting; `WouldBlock` when it cannot.
    ///
    /// # Errors
    ///
    /// `WouldBlock`, or the OS error.
    pub fn try_send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        self.reg
            .try_io(Direction::Write, || self.mio.send_to(buf, target))
    }

    /// Receives a datagram into `buf`'s spare capacity without waiting, and advances it;
    /// `WouldBlock` when nothing waits (tokio's `try_recv_buf`).
    ///
    /// # Errors
    ///
    /// `WouldBlock`, or the OS error.
    pub fn try_recv_buf<B: bytes::BufMut>(&self, buf: &mut B) -> io::Result<usize> {
        let sock = socket2::SockRef::from(&self.mio);
        self.reg.try_io(Direction::Read, || {
            super::buf::read_into(buf, |dst| sock.recv(dst).map(|n| (n, ()))).map(|(n, ())| n)
        })
    }

    /// Receives a datagram and its sender into `buf`'s spare capacity without waiting
    /// (tokio's `try_recv_buf_from`).
    ///
    /// # Errors
    ///
    /// `WouldBlock`, or the OS error.
    pub fn try_recv_buf_from<B: bytes::BufMut>(
        &self,
        buf: &mut B,
    ) -> io::Result<(usize, SocketAddr)> {
        let sock = socket2::SockRef::from(&self.mio);
        self.reg.try_io(Direction::Read, || {
            super::buf::read_into(buf, |dst| recv_from_uninit(&sock, dst))
        })
    }

    /// Receives a datagram into `buf`'s spare capacity, waiting for one (tokio's `recv_buf`).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub async fn recv_buf<B: bytes::BufMut>(&self, buf: &mut B) -> io::Result<usize> {
        let sock = socket2::SockRef::from(&self.mio);
        let mut waiter = self.reg.waiter(Direction::Read);
        poll_fn(|cx| {
            budgeted(cx, |cx| {
                waiter.poll_io(cx, || {
                    super::buf::read_into(&mut *buf, |dst| sock.recv(dst).map(|n| (n, ())))
                        .map(|(n, ())| n)
                })
            })
        })
        .await
    }

    /// Receives a datagram and its sender into `buf`'s spare capacity (tokio's
    /// `recv_buf_from`).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub async fn recv_buf_from<B: bytes::BufMut>(
        &self,
        buf: &mut B,
    ) -> io::Result<(usize, SocketAddr)> {
        let sock = socket2::SockRef::from(&self.mio);
        let mut waiter = self.reg.waiter(Direction::Read);
        poll_fn(|cx| {
            budgeted(cx, |cx| {
                waiter.poll_io(cx, || {
                    super::buf::read_into(&mut *buf, |dst| recv_from_uninit(&sock, dst))
                })
            })
        })
        .await
    }

    /// Receives a datagram and its sender.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let mut waiter = self.reg.waiter(Direction::Read);
        poll_fn(|cx| budgeted(cx, |cx| waiter.poll_io(cx, || self.mio.recv_from(buf)))).await
    }

    /// Looks at the next datagram and its sender without taking it.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub async fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let mut waiter = self.reg.waiter(Direction::Read);
        poll_fn(|cx| budgeted(cx, |cx| waiter.poll_io(cx, || self.mio.peek_from(buf)))).await
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local", &self.local_addr().ok())
            .finish()
    }
}

/// `recv_from` into memory that need not be initialised; the sender as a `SocketAddr`.
fn recv_from_uninit(
    sock: &socket2::SockRef<'_>,
    dst: &mut [std::mem::MaybeUninit<u8>],
) -> io::Result<(usize, SocketAddr)> {
    let (n, from) = sock.recv_from(dst)?;
    let from = from
        .as_socket()
        .ok_or_else(|| io::Error::other("a UDP datagram came from a non-IP address"))?;
    Ok((n, from))
}

datagram_methods!(UdpSocket);
