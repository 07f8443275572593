//! What the datagram sockets (`UdpSocket`, `UnixDatagram`) share: readiness, and the
//! non-blocking and polled sends and receives on a socket `mio` with its registration `reg`,
//! written once (the address type is the calling module's `SocketAddr`).

/// The readiness, `try_*` and `poll_*` calls of datagram socket type `$t`.
macro_rules! datagram_methods {
    ($t:ident) => {
        impl $t {
            /// Waits until the socket may be readable (a datagram waits, or an error).
            ///
            /// # Errors
            ///
            /// When the runtime owning the socket's poller shut down.
            pub async fn readable(&self) -> std::io::Result<()> {
                self.ready(crate::io::Interest::READABLE).await.map(drop)
            }

            /// Waits until the socket may be writable.
            ///
            /// # Errors
            ///
            /// When the runtime owning the socket's poller shut down.
            pub async fn writable(&self) -> std::io::Result<()> {
                self.ready(crate::io::Interest::WRITABLE).await.map(drop)
            }

            /// Waits until the socket is ready for any of `interest`; the readiness found.
            ///
            /// # Errors
            ///
            /// When the runtime owning the socket's poller shut down.
            pub async fn ready(
                &self,
                interest: crate::io::Interest,
            ) -> std::io::Result<crate::io::Ready> {
                crate::io::ready(&self.reg, interest).await
            }

            /// Polls for read readiness (one read slot: one task polls this way).
            pub fn poll_recv_ready(
                &self,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                self.reg
                    .poll_ready(cx, pinwheel_io_driver::Direction::Read)
                    .map(|r| r.map(drop))
            }

            /// Polls for write readiness (one write slot).
            pub fn poll_send_ready(
                &self,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                self.reg
                    .poll_ready(cx, pinwheel_io_driver::Direction::Write)
                    .map(|r| r.map(drop))
            }

            /// Polls a send on the connected socket.
            pub fn poll_send(
                &self,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                crate::task::coop::budgeted(cx, |cx| {
                    self.reg
                        .poll_io(cx, pinwheel_io_driver::Direction::Write, || {
                            self.mio.send(buf)
                        })
                })
            }

            /// Polls a receive on the connected socket into `buf` (tokio's takes a `ReadBuf`;
            /// this one a byte slice, and returns the length).
            pub fn poll_recv(
                &self,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                crate::task::coop::budgeted(cx, |cx| {
                    self.reg
                        .poll_io(cx, pinwheel_io_driver::Direction::Read, || {
                            self.mio.recv(buf)
                        })
                })
            }

            /// Polls a receive into `buf` with its sender (a byte slice, as `poll_recv`).
            pub fn poll_recv_from(
                &self,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<(usize, SocketAddr)>> {
                crate::task::coop::budgeted(cx, |cx| {
                    self.reg
                        .poll_io(cx, pinwheel_io_driver::Direction::Read, || {
                            self.mio.recv_from(buf)
                        })
                })
            }

            /// Sends on the connected socket without waiting; `WouldBlock` when it cannot.
            ///
            /// # Errors
            ///
            /// `WouldBlock`, or the OS error.
            pub fn try_send(&self, buf: &[u8]) -> std::io::Result<usize> {
                self.reg
                    .try_io(pinwheel_io_driver::Direction::Write, || self.mio.send(buf))
            }

            /// Receives on the connected socket without waiting; `WouldBlock` when nothing
            /// waits.
            ///
            /// # Errors
            ///
            /// `WouldBlock`, or the OS error.
            pub fn try_recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.reg
                    .try_io(pinwheel_io_driver::Direction::Read, || self.mio.recv(buf))
            }

            /// Receives a datagram and its sender without waiting; `WouldBlock` when nothing
            /// waits.
            ///
            /// # Errors
            ///
            /// `WouldBlock`, or the OS error.
            pub fn try_recv_from(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
                self.reg.try_io(pinwheel_io_driver::Direction::Read, || {
                    self.mio.recv_from(buf)
                })
            }
        }
    };
}
