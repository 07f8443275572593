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
//!   and, per direction, the wakers of the tasks waiting on it: one poll slot for `poll_*`
//!   callers and a [`Waiter`] entry for each waiting operation, all woken by an event.
//!   Readiness is edge-triggered and carries a tick that grows with
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

mod driver;
mod readiness;
mod registration;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

pub use driver::{Driver, Handle};
pub use readiness::{Direction, ReadyEvent};
pub use registration::{Registration, Waiter};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    #[cfg(loom)]
    return m.lock().unwrap();
    #[cfg(not(loom))]
    return m.lock().unwrap_or_else(|e| e.into_inner());
}

#[cfg(all(test, loom))]
mod tests_loom;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::driver::INDEX_MASK;
    use mio::Interest;
    use std::io;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

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
    fn has_sources_counts_registrations_not_the_waker() {
        let (driver, handle) = Driver::new(16).unwrap();
        assert!(
            !driver.has_sources(),
            "the driver's own waker is not a source"
        );
        let (_c1, mut s1) = pair();
        let (_c2, mut s2) = pair();
        let r1 = handle.register(&mut s1, Interest::READABLE).unwrap();
        assert!(driver.has_sources());
        let r2 = handle.register(&mut s2, Interest::READABLE).unwrap();
        assert_eq!(handle.sources(), 2);
        r1.deregister(&mut s1).unwrap();
        assert!(driver.has_sources(), "one source is left");
        drop(r2);
        assert!(!driver.has_sources());
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

    /// A waker that counts its wakes.
    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn counter() -> (std::sync::Arc<Count>, Waker) {
        let c = std::sync::Arc::new(Count(std::sync::atomic::AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    fn wakes(c: &Count) -> usize {
        c.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Fires a readable event on `io` by hand and wakes what it returns.
    fn fire(io: &readiness::ScheduledIo) {
        let mut out = Vec::new();
        io.set_readiness(readiness::READABLE, &mut out);
        for w in out {
            w.wake();
        }
        let ev = io.ready(Direction::Read).unwrap().unwrap();
        io.clear_readiness(ev);
    }

    #[test]
    fn every_waiter_of_a_direction_is_woken_and_the_poll_slot_too() {
        let io = readiness::ScheduledIo::new();
        let reg_io = &io;
        let counts: Vec<_> = (0..5).map(|_| counter()).collect();
        let mut waiters: Vec<_> = (0..4)
            .map(|_| crate::registration::Waiter {
                io: reg_io,
                direction: Direction::Read,
                key: None,
            })
            .collect();
        for (w, (_, waker)) in waiters.iter_mut().zip(&counts) {
            assert!(w.poll_ready(&mut Context::from_waker(waker)).is_pending());
        }
        // The poll slot keeps one waker, the last one given.
        let (_, other) = &counts[4];
        let mut cx = Context::from_waker(other);
        assert!(
            io.poll_ready(&mut cx, Direction::Read, readiness::Who::PollSlot)
                .is_pending()
        );
        fire(&io);
        for (c, _) in &counts {
            assert_eq!(wakes(c), 1, "every waiting task is woken once");
        }
        // A writable event wakes none of them.
        let mut out = Vec::new();
        io.set_readiness(readiness::WRITABLE, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_dropped_waiter_leaves_and_a_stale_key_removes_nothing() {
        let io = readiness::ScheduledIo::new();
        let (ca, a) = counter();
        let (cb, b) = counter();
        let (cc, c) = counter();
        // A waits, is woken by an event, and is still alive (its key is stale now).
        let mut wa = crate::registration::Waiter {
            io: &io,
            direction: Direction::Read,
            key: None,
        };
        assert!(wa.poll_ready(&mut Context::from_waker(&a)).is_pending());
        fire(&io);
        assert_eq!(wakes(&ca), 1);
        // B registers in the new epoch, likely at A's old index.
        let mut wb = crate::registration::Waiter {
            io: &io,
            direction: Direction::Read,
            key: None,
        };
        assert!(wb.poll_ready(&mut Context::from_waker(&b)).is_pending());
        // Dropping A must not take B's entry out.
        drop(wa);
        // C waits and is dropped before any event: its entry leaves.
        let mut wc = crate::registration::Waiter {
            io: &io,
            direction: Direction::Read,
            key: None,
        };
        assert!(wc.poll_ready(&mut Context::from_waker(&c)).is_pending());
        drop(wc);
        fire(&io);
        assert_eq!(wakes(&cb), 1, "B was woken");
        assert_eq!(wakes(&cc), 0, "C left when it was dropped");
        assert_eq!(wakes(&ca), 1);
        drop(wb);
    }

    #[test]
    fn a_waiter_polled_again_keeps_one_entry() {
        let io = readiness::ScheduledIo::new();
        let (c1, w1) = counter();
        let (c2, w2) = counter();
        let mut w = crate::registration::Waiter {
            io: &io,
            direction: Direction::Read,
            key: None,
        };
        assert!(w.poll_ready(&mut Context::from_waker(&w1)).is_pending());
        let key = w.key;
        // Polled again with another waker (the task moved): the entry is replaced, not added.
        assert!(w.poll_ready(&mut Context::from_waker(&w2)).is_pending());
        assert_eq!(w.key, key);
        fire(&io);
        assert_eq!((wakes(&c1), wakes(&c2)), (0, 1));
    }
}
