//! The per-worker I/O driver of `pinwheel`: one `mio::Poll` per worker thread.
//!
//! This crate knows nothing of the executor: it takes `std::task::Waker`s and plain values.
//!
//! - A [`Driver`] owns one `mio::Poll` and its event buffer; the worker thread that owns it calls
//!   [`Driver::poll`], with a timeout when it has nothing else to do (that is how a worker
//!   parks), or with a zero timeout between batches of tasks.
//! - A [`Handle`] (cloneable, `Send + Sync`) registers sources with that poller from any thread,
//!   and [`Handle::wake`] interrupts a blocked [`Driver::poll`] (a `mio::Waker`).
//! - A [`Registration`] holds a source's readiness (readable, writable, closed halves, error)
//!   and one waker per direction. Readiness is edge-triggered and carries a tick that grows with
//!   every event, so clearing readiness after a `WouldBlock` never erases an event that arrived
//!   meanwhile ([`Registration::clear_readiness`] only clears what it saw).
//! - Tokens carry a generation: an event for a slot that was deregistered and reused is ignored.
//!   Deregistration works from any thread.
//!
//! Events are read in batches ([`Driver::new`] takes the batch size; pinwheel uses 1024), and
//! wakers are called after the driver's lock is released.
//!
//! ```
//! use std::io::Write;
//! use std::task::{Context, Poll, Waker};
//! use pinwheel_io_driver::{Direction, Driver};
//!
//! let (mut driver, handle) = Driver::new(64)?;
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let mut client = std::net::TcpStream::connect(listener.local_addr()?)?;
//! let (server, _) = listener.accept()?;
//! server.set_nonblocking(true)?;
//! let mut server = mio::net::TcpStream::from_std(server);
//! let reg = handle.register(&mut server, mio::Interest::READABLE | mio::Interest::WRITABLE)?;
//!
//! client.write_all(b"ping")?;
//! let mut cx = Context::from_waker(Waker::noop());
//! loop {
//!     driver.poll(Some(std::time::Duration::from_millis(100)))?;
//!     if let Poll::Ready(ev) = reg.poll_ready(&mut cx, Direction::Read) {
//!         assert!(ev?.is_readable());
//!         break;
//!     }
//! }
//! reg.deregister(&mut server)?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

#[cfg(loom)]
use loom::sync::atomic::{AtomicUsize, Ordering};
#[cfg(loom)]
use loom::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicUsize, Ordering};
#[cfg(not(loom))]
use std::sync::{Mutex, MutexGuard};

use mio::event::Source;
use mio::{Events, Interest, Token};
use slab::Slab;

/// The token of the driver's own waker.
const WAKER_TOKEN: Token = Token(usize::MAX);

// Readiness bits, then a tick in the upper bits of the same word.
const READABLE: usize = 1 << 0;
const WRITABLE: usize = 1 << 1;
const READ_CLOSED: usize = 1 << 2;
const WRITE_CLOSED: usize = 1 << 3;
const ERROR: usize = 1 << 4;
const SHUTDOWN: usize = 1 << 5;
const READY_MASK: usize = (1 << 6) - 1;
const TICK_SHIFT: u32 = 16;

/// Index bits of a token; the rest is the slot's generation.
const INDEX_BITS: u32 = 24;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;

/// Which half of a source a task waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Readable, or the read half closed, or an error.
    Read,
    /// Writable, or the write half closed, or an error.
    Write,
}

impl Direction {
    fn mask(self) -> usize {
        match self {
            Direction::Read => READABLE | READ_CLOSED | ERROR,
            Direction::Write => WRITABLE | WRITE_CLOSED | ERROR,
        }
    }
}

/// Readiness seen by [`Registration::poll_ready`], with the tick it was seen at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadyEvent {
    bits: usize,
    tick: usize,
}

impl ReadyEvent {
    /// The source is readable.
    pub fn is_readable(&self) -> bool {
        self.bits & READABLE != 0
    }

    /// The source is writable.
    pub fn is_writable(&self) -> bool {
        self.bits & WRITABLE != 0
    }

    /// The peer closed its write half (reads will return 0).
    pub fn is_read_closed(&self) -> bool {
        self.bits & READ_CLOSED != 0
    }

    /// The write half is closed.
    pub fn is_write_closed(&self) -> bool {
        self.bits & WRITE_CLOSED != 0
    }

    /// The source reported an error (read it with the socket's `take_error`).
    pub fn is_error(&self) -> bool {
        self.bits & ERROR != 0
    }
}

/// Readiness and wakers of one registered source.
struct ScheduledIo {
    readiness: AtomicUsize,
    wakers: Mutex<Wakers>,
}

#[derive(Default)]
struct Wakers {
    reader: Option<Waker>,
    writer: Option<Waker>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    #[cfg(loom)]
    return m.lock().unwrap();
    #[cfg(not(loom))]
    return m.lock().unwrap_or_else(|e| e.into_inner());
}

impl ScheduledIo {
    fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
    ) -> Poll<io::Result<ReadyEvent>> {
        if let Some(ev) = self.ready(direction) {
            return Poll::Ready(ev);
        }
        {
            let mut w = lock(&self.wakers);
            let slot = match direction {
                Direction::Read => &mut w.reader,
                Direction::Write => &mut w.writer,
            };
            if !slot.as_ref().is_some_and(|s| s.will_wake(cx.waker())) {
                *slot = Some(cx.waker().clone());
            }
        }
        // Look again: an event may have come between the first look and the waker's
        // registration (its wake found no waker).
        match self.ready(direction) {
            Some(ev) => Poll::Ready(ev),
            None => Poll::Pending,
        }
    }

    fn ready(&self, direction: Direction) -> Option<io::Result<ReadyEvent>> {
        let cur = self.readiness.load(Ordering::Acquire);
        if cur & SHUTDOWN != 0 {
            return Some(Err(shut_down_error()));
        }
        let bits = cur & direction.mask();
        (bits != 0).then_some(Ok(ReadyEvent {
            bits,
            tick: cur >> TICK_SHIFT,
        }))
    }

    fn clear_readiness(&self, event: ReadyEvent) {
        let clear = event.bits & (READABLE | WRITABLE);
        let _ = self
            .readiness
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                (cur >> TICK_SHIFT == event.tick).then_some(cur & !clear)
            });
    }

    /// Adds `bits` and moves the tick on; returns the wakers to call for them.
    fn set_readiness(&self, bits: usize, out: &mut Vec<Waker>) {
        let _ = self
            .readiness
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                let tick = (cur >> TICK_SHIFT).wrapping_add(1);
                Some((tick << TICK_SHIFT) | (cur & READY_MASK) | bits)
            });
        let mut w = lock(&self.wakers);
        if bits & (Direction::Read.mask() | SHUTDOWN) != 0 {
            out.extend(w.reader.take());
        }
        if bits & (Direction::Write.mask() | SHUTDOWN) != 0 {
            out.extend(w.writer.take());
        }
    }
}

struct Shared {
    registry: mio::Registry,
    waker: mio::Waker,
    ios: Mutex<Ios>,
}

struct Ios {
    slab: Slab<(usize, Arc<ScheduledIo>)>,
    generation: usize,
    shut_down: bool,
}

/// One poller: owned by the thread that polls it.
pub struct Driver {
    poll: mio::Poll,
    events: Events,
    shared: Arc<Shared>,
    wakers: Vec<Waker>,
}

/// Registers sources with a [`Driver`] and wakes it, from any thread.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

/// A source registered with a driver: its readiness and wakers.
pub struct Registration {
    io: Arc<ScheduledIo>,
    token: Token,
    handle: Handle,
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("capacity", &self.events.capacity())
            .finish()
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("token", &self.token.0)
            .finish()
    }
}

impl Driver {
    /// A poller reading up to `events` events per call, and the handle to reach it.
    ///
    /// # Errors
    ///
    /// The OS error when the poller or its waker cannot be created.
    pub fn new(events: usize) -> io::Result<(Driver, Handle)> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = mio::Waker::new(poll.registry(), WAKER_TOKEN)?;
        let shared = Arc::new(Shared {
            registry,
            waker,
            ios: Mutex::new(Ios {
                slab: Slab::new(),
                generation: 0,
                shut_down: false,
            }),
        });
        let driver = Driver {
            poll,
            events: Events::with_capacity(events.max(1)),
            shared: shared.clone(),
            wakers: Vec::new(),
        };
        Ok((driver, Handle { shared }))
    }

    /// Waits for events for at most `timeout` (`None`: until an event or a [`Handle::wake`];
    /// zero: only what is ready now), records them in their registrations and wakes the tasks
    /// waiting on them. Returns how many source events were handled.
    ///
    /// # Errors
    ///
    /// The OS error of the poll, except `EINTR`, which counts as a wake-up.
    pub fn poll(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(0),
            Err(e) => return Err(e),
        }
        let mut n = 0;
        {
            let ios = lock(&self.shared.ios);
            for event in self.events.iter() {
                if event.token() == WAKER_TOKEN {
                    continue;
                }
                let t = event.token().0;
                let Some((generation, io)) = ios.slab.get(t & INDEX_MASK) else {
                    continue;
                };
                if *generation != t >> INDEX_BITS {
                    continue; // a stale event for a reused slot
                }
                let mut bits = 0;
                if event.is_readable() {
                    bits |= READABLE;
                }
                if event.is_writable() {
                    bits |= WRITABLE;
                }
                if event.is_read_closed() {
                    bits |= READ_CLOSED;
                }
                if event.is_write_closed() {
                    bits |= WRITE_CLOSED;
                }
                if event.is_error() {
                    bits |= ERROR;
                }
                io.set_readiness(bits, &mut self.wakers);
                n += 1;
            }
        }
        // Wake with the lock released: a woken task may register or deregister right away.
        for w in self.wakers.drain(..) {
            w.wake();
        }
        Ok(n)
    }

    /// The handle of this driver.
    pub fn handle(&self) -> Handle {
        Handle {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Every registration learns the driver is gone: its waiters wake and get an error.
        let mut wakers = Vec::new();
        {
            let mut ios = lock(&self.shared.ios);
            ios.shut_down = true;
            for (_, (_, io)) in ios.slab.iter() {
                io.set_readiness(SHUTDOWN, &mut wakers);
            }
            ios.slab.clear();
        }
        for w in wakers {
            w.wake();
        }
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
        let io = Arc::new(ScheduledIo {
            readiness: AtomicUsize::new(0),
            wakers: Mutex::new(Wakers::default()),
        });
        let token = {
            let mut ios = lock(&self.shared.ios);
            if ios.shut_down {
                return Err(shut_down_error());
            }
            ios.generation = (ios.generation + 1) & (usize::MAX >> (INDEX_BITS + 1));
            let generation = ios.generation;
            let index = ios.slab.insert((generation, io.clone()));
            if index > INDEX_MASK {
                ios.slab.remove(index);
                return Err(io::Error::other(
                    "pinwheel-io-driver: more than 16 million sources registered on one worker",
                ));
            }
            Token(generation << INDEX_BITS | index)
        };
        if let Err(e) = self.shared.registry.register(source, token, interest) {
            lock(&self.shared.ios).slab.try_remove(token.0 & INDEX_MASK);
            return Err(e);
        }
        Ok(Registration {
            io,
            token,
            handle: self.clone(),
        })
    }

    /// Interrupts a [`Driver::poll`] blocked on another thread (or makes the next one return).
    pub fn wake(&self) {
        // A failed wake (the poller is gone) has nobody left to wake.
        let _ = self.shared.waker.wake();
    }

    /// `true` when both handles reach the same driver.
    pub fn same_driver(&self, other: &Handle) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

fn shut_down_error() -> io::Error {
    io::Error::other(
        "the pinwheel runtime that owns this socket's I/O driver has shut down; create the socket inside a running runtime",
    )
}

impl Registration {
    /// Ready when the source is ready in `direction` (or closed, or errored, or the driver shut
    /// down, which is an error); otherwise keeps `cx`'s waker for that direction.
    pub fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
    ) -> Poll<io::Result<ReadyEvent>> {
        self.io.poll_ready(cx, direction)
    }

    fn ready(&self, direction: Direction) -> Option<io::Result<ReadyEvent>> {
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
        self.poll_io_then(
            cx,
            direction,
            op,
            |r| matches!(r, Ok(n) if *n > 0 && *n < len),
        )
    }

    /// Runs `op` when ready; clears the readiness it saw on `WouldBlock` (and tries again), or
    /// when `drained` says the result shows the source has nothing more for now.
    fn poll_io_then<R>(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        mut op: impl FnMut() -> io::Result<R>,
        drained: impl Fn(&io::Result<R>) -> bool,
    ) -> Poll<io::Result<R>> {
        loop {
            let ev = match self.poll_ready(cx, direction) {
                Poll::Ready(Ok(ev)) => ev,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.clear_readiness(ev),
                r => {
                    if drained(&r) {
                        self.clear_readiness(ev);
                    }
                    return Poll::Ready(r);
                }
            }
        }
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
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // The source was closed (which removes it from epoll) or deregistered; free the slot.
        self.release();
    }
}

#[cfg(all(test, loom))]
mod tests_loom;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    fn pair() -> (TcpStream, mio::net::TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        s.set_nonblocking(true).unwrap();
        (c, mio::net::TcpStream::from_std(s))
    }

    fn wait(driver: &mut Driver, reg: &Registration, dir: Direction) -> ReadyEvent {
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..1000 {
            if let Poll::Ready(ev) = reg.poll_ready(&mut cx, dir) {
                return ev.unwrap();
            }
            driver.poll(Some(Duration::from_millis(50))).unwrap();
        }
        panic!("no readiness after 1000 polls");
    }

    #[test]
    fn readiness_clears_only_what_was_seen() {
        let (mut driver, handle) = Driver::new(16).unwrap();
        let (mut client, mut server) = pair();
        let reg = handle.register(&mut server, Interest::READABLE).unwrap();
        client.write_all(b"a").unwrap();
        let ev = wait(&mut driver, &reg, Direction::Read);
        assert!(ev.is_readable());
        let mut buf = [0u8; 8];
        assert_eq!(server.read(&mut buf).unwrap(), 1);
        // A newer event arrives before the stale clear: it must survive.
        client.write_all(b"b").unwrap();
        driver.poll(Some(Duration::from_millis(500))).unwrap();
        reg.clear_readiness(ev);
        assert!(
            reg.ready(Direction::Read).is_some(),
            "a newer event was erased"
        );
        assert_eq!(server.read(&mut buf).unwrap(), 1);
        let ev2 = reg.ready(Direction::Read).unwrap().unwrap();
        assert!(matches!(server.read(&mut buf), Err(e) if e.kind() == io::ErrorKind::WouldBlock));
        reg.clear_readiness(ev2);
        assert!(reg.ready(Direction::Read).is_none());
    }

    #[test]
    fn wake_interrupts_a_blocked_poll() {
        let (mut driver, handle) = Driver::new(16).unwrap();
        let t = std::thread::spawn(move || handle.wake());
        // Without the wake this would block forever (no timeout).
        driver.poll(None).unwrap();
        t.join().unwrap();
    }

    #[test]
    fn stale_tokens_are_ignored_after_reuse() {
        let (mut driver, handle) = Driver::new(16).unwrap();
        let (mut c1, mut s1) = pair();
        let r1 = handle.register(&mut s1, Interest::READABLE).unwrap();
        let t1 = r1.token;
        c1.write_all(b"x").unwrap();
        r1.deregister(&mut s1).unwrap();
        let (_c2, mut s2) = pair();
        let r2 = handle.register(&mut s2, Interest::READABLE).unwrap();
        assert_eq!(r2.token.0 & INDEX_MASK, t1.0 & INDEX_MASK, "slot reused");
        assert_ne!(r2.token, t1);
        driver.poll(Some(Duration::from_millis(50))).unwrap();
        assert!(
            r2.ready(Direction::Read).is_none(),
            "an event of the old source reached the new one"
        );
    }

    #[test]
    fn driver_drop_errors_waiters() {
        let (driver, handle) = Driver::new(16).unwrap();
        let (_c, mut s) = pair();
        let reg = handle.register(&mut s, Interest::READABLE).unwrap();
        drop(driver);
        let mut cx = Context::from_waker(Waker::noop());
        let err = match reg.poll_ready(&mut cx, Direction::Read) {
            Poll::Ready(Err(e)) => e,
            other => panic!("expected an error, got {other:?}"),
        };
        assert!(err.to_string().contains("shut down"), "{err}");
        let (_c, mut s) = pair();
        assert!(handle.register(&mut s, Interest::READABLE).is_err());
    }
}
