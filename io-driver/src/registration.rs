//! [`Registration`]: a source registered with a driver, how a task waits for its readiness,
//! and its deregistration (from any thread).

use std::fmt;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};

use mio::Interest;
use mio::Token;
use mio::event::Source;

use crate::driver::{INDEX_BITS, INDEX_MASK};
use crate::readiness::{Direction, ReadyEvent, ScheduledIo, WaiterKey, Who};
use crate::{Handle, lock};

/// A source registered with a driver: its readiness and wakers.
pub struct Registration {
    pub(crate) io: Arc<ScheduledIo>,
    pub(crate) token: Token,
    pub(crate) handle: Handle,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("token", &self.token.0)
            .finish()
    }
}

impl Handle {
    /// Registers `source` for `interest`, edge-triggered.
    ///
    /// # Errors
    ///
    /// The OS error of the registration, or an error when the driver has shut down.
    pub fn register(
        &self,
        source: &mut impl Source,
        interest: Interest,
    ) -> io::Result<Registration> {
        let io = Arc::new(ScheduledIo::new());
        let token = self.insert(source, interest, &io)?;
        Ok(Registration {
            io,
            token,
            handle: self.clone(),
        })
    }
}

impl Registration {
    /// Ready when the source is ready in `direction` (or closed, or errored, or the driver shut
    /// down, which is an error); otherwise keeps `cx`'s waker in the direction's poll slot,
    /// replacing the one there: one task per direction polls this way (a stream's reader and
    /// writer through `AsyncRead`/`AsyncWrite`). Any number of tasks may wait at once through
    /// [`waiter`](Self::waiter)s.
    #[inline]
    pub fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
    ) -> Poll<io::Result<ReadyEvent>> {
        self.io.poll_ready(cx, direction, Who::PollSlot)
    }

    /// A waiter for one operation in `direction`: it has an entry of its own among the tasks
    /// waiting on this source, so every waiting task is woken by an event, and it leaves when
    /// dropped. `&self` operations that several tasks may run at once (`accept`, `read`,
    /// `recv_from`) wait through one.
    pub fn waiter(&self, direction: Direction) -> Waiter<'_> {
        Waiter {
            io: &self.io,
            direction,
            key: None,
        }
    }

    pub(crate) fn ready(&self, direction: Direction) -> Option<io::Result<ReadyEvent>> {
        self.io.ready(direction)
    }

    /// Clears the readiness `event` reported, unless a newer event arrived since (its tick
    /// moved on). Call it after the operation returned `WouldBlock`. Closed and error bits stay.
    pub fn clear_readiness(&self, event: ReadyEvent) {
        self.io.clear_readiness(event);
    }

    /// Runs `op` if the source is ready in `direction`, clearing that readiness when it
    /// returns `WouldBlock`. Returns `WouldBlock` when not ready.
    pub fn try_io<R>(
        &self,
        direction: Direction,
        op: impl FnOnce() -> io::Result<R>,
    ) -> io::Result<R> {
        let Some(ev) = self.ready(direction) else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        let ev = ev?;
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.clear_readiness(ev);
                Err(e)
            }
            r => r,
        }
    }

    /// Waits until ready in `direction`, then runs `op`, until it does not return
    /// `WouldBlock`.
    pub fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        op: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        self.poll_io_then(cx, direction, op, |_| false)
    }

    /// Like [`poll_io`](Self::poll_io) for a read or write of `len` bytes on a stream: when the
    /// operation moved fewer bytes than asked (but some), the socket buffer is drained (or
    /// full), so the readiness is cleared right away, sparing the syscall that would only
    /// return `WouldBlock` (edge-triggered epoll reports the next change).
    pub fn poll_io_len(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        len: usize,
        op: impl FnMut() -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        self.poll_io_then(cx, direction, op, short(len))
    }

    /// Runs `op` when ready; clears the readiness it saw on `WouldBlock` (and tries again), or
    /// when `drained` says the result shows the source has nothing more for now.
    fn poll_io_then<R>(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        op: impl FnMut() -> io::Result<R>,
        drained: impl Fn(&io::Result<R>) -> bool,
    ) -> Poll<io::Result<R>> {
        let mut slot = PollSlot {
            io: &self.io,
            direction,
        };
        poll_io_with(&mut slot, cx, op, drained)
    }

    /// The driver this source is registered with.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Deregisters `source` (from any thread) and frees the registration. Events the driver
    /// already read for it are ignored: the slot's generation no longer matches.
    ///
    /// # Errors
    ///
    /// The OS error of the deregistration.
    pub fn deregister(self, source: &mut impl Source) -> io::Result<()> {
        let r = self.handle.shared.registry.deregister(source);
        self.release();
        r
    }

    fn release(&self) {
        let mut ios = lock(&self.handle.shared.ios);
        let index = self.token.0 & INDEX_MASK;
        if ios
            .slab
            .get(index)
            .is_some_and(|(g, _)| *g == self.token.0 >> INDEX_BITS)
        {
            ios.slab.remove(index);
            self.handle.shared.recount(&ios);
        }
    }
}

/// What waits for readiness in one direction: the direction's poll slot, or a [`Waiter`].
pub(crate) trait PollReady {
    /// The source's readiness and wakers.
    fn io(&self) -> &ScheduledIo;
    /// Ready when the source is ready in the direction; otherwise keeps `cx`'s waker.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<ReadyEvent>>;
}

/// A direction's poll slot, as a [`PollReady`].
pub(crate) struct PollSlot<'a> {
    pub(crate) io: &'a ScheduledIo,
    pub(crate) direction: Direction,
}

impl PollReady for PollSlot<'_> {
    #[inline]
    fn io(&self) -> &ScheduledIo {
        self.io
    }

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<ReadyEvent>> {
        self.io.poll_ready(cx, self.direction, Who::PollSlot)
    }
}

/// The loop of every `poll_io`: waits with `poll_ready`, runs `op`, clears the readiness it saw
/// on `WouldBlock` (and tries again) or when `drained` says the source has nothing more.
#[inline]
pub(crate) fn poll_io_with<R>(
    waiting: &mut impl PollReady,
    cx: &mut Context<'_>,
    mut op: impl FnMut() -> io::Result<R>,
    drained: impl Fn(&io::Result<R>) -> bool,
) -> Poll<io::Result<R>> {
    loop {
        let ev = match waiting.poll_ready(cx) {
            Poll::Ready(Ok(ev)) => ev,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => waiting.io().clear_readiness(ev),
            r => {
                if drained(&r) {
                    waiting.io().clear_readiness(ev);
                }
                return Poll::Ready(r);
            }
        }
    }
}

/// `true` when a stream operation of `len` bytes moved some but fewer: the socket buffer is
/// drained (or full), so the readiness can be cleared right away, sparing the syscall that would
/// only return `WouldBlock` (edge-triggered epoll reports the next change).
pub(crate) fn short(len: usize) -> impl Fn(&io::Result<usize>) -> bool {
    move |r| matches!(r, Ok(n) if *n > 0 && *n < len)
}

impl Drop for Registration {
    fn drop(&mut self) {
        // The source was closed (which removes it from epoll) or deregistered; free the slot.
        self.release();
    }
}

/// One waiting `&self` operation on a registered source (the waiter rule, on `ScheduledIo`):
/// its own entry among the direction's waiters, so that every task waiting at once is woken,
/// and taken out when it is dropped (a cancelled `accept`, a `read` under a timeout).
///
/// Made by [`Registration::waiter`]; used for the length of one
/// operation.
pub struct Waiter<'a> {
    pub(crate) io: &'a ScheduledIo,
    pub(crate) direction: Direction,
    pub(crate) key: Option<WaiterKey>,
}

impl Waiter<'_> {
    /// Ready when the source is ready in this waiter's direction (or closed, or errored, or the
    /// driver shut down, which is an error); otherwise keeps `cx`'s waker in this waiter's
    /// entry.
    #[inline]
    pub fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<ReadyEvent>> {
        self.io
            .poll_ready(cx, self.direction, Who::Waiter(&mut self.key))
    }

    /// Waits until ready, then runs `op`, until it does not return `WouldBlock` (as
    /// [`Registration::poll_io`], as this waiter).
    #[inline]
    pub fn poll_io<R>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        poll_io_with(self, cx, op, |_| false)
    }

    /// [`poll_io`](Self::poll_io) for a stream read or write of `len` bytes (as
    /// [`Registration::poll_io_len`]).
    #[inline]
    pub fn poll_io_len(
        &mut self,
        cx: &mut Context<'_>,
        len: usize,
        op: impl FnMut() -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        poll_io_with(self, cx, op, short(len))
    }
}

impl PollReady for Waiter<'_> {
    #[inline]
    fn io(&self) -> &ScheduledIo {
        self.io
    }

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<ReadyEvent>> {
        self.io
            .poll_ready(cx, self.direction, Who::Waiter(&mut self.key))
    }
}

impl Drop for Waiter<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.io.remove_waiter(self.direction, key);
        }
    }
}

impl std::fmt::Debug for Waiter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter")
            .field("direction", &self.direction)
            .field("key", &self.key)
            .finish()
    }
}
