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
pub use registration::Registration;

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
