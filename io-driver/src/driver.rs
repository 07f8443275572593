//! The poller: [`Driver`] (owned and polled by one worker thread) and [`Handle`] (registers
//! sources with it and wakes it, from any thread). A token is a slab index plus a generation,
//! so an event for a slot deregistered and reused meanwhile is ignored.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use mio::event::Source;
use mio::{Events, Interest, Token};
use slab::Slab;

use crate::readiness::{
    ERROR, READ_CLOSED, READABLE, SHUTDOWN, ScheduledIo, WRITABLE, WRITE_CLOSED, shut_down_error,
};
use crate::{AtomicUsize, Mutex, Ordering, lock};

/// The token of the driver's own waker.
const WAKER_TOKEN: Token = Token(usize::MAX);

/// Index bits of a token; the rest is the slot's generation.
pub(crate) const INDEX_BITS: u32 = 24;
pub(crate) const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;

pub(crate) struct Shared {
    pub(crate) registry: mio::Registry,
    waker: mio::Waker,
    pub(crate) ios: Mutex<Ios>,
    /// How many sources `ios` holds: written under its lock after each change, read without
    /// it by [`Driver::has_sources`] (a hint: see there).
    pub(crate) sources: AtomicUsize,
}

impl Shared {
    /// Publishes the count of sources after a change to `ios` (called with its lock held).
    pub(crate) fn recount(&self, ios: &Ios) {
        self.sources.store(ios.slab.len(), Ordering::Relaxed);
    }
}

pub(crate) struct Ios {
    pub(crate) slab: Slab<(usize, Arc<ScheduledIo>)>,
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
    pub(crate) shared: Arc<Shared>,
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
            sources: AtomicUsize::new(0),
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

    /// `false` when no source is registered with this driver, so a poll without waiting has
    /// nothing to find (a caller may skip it: the poll is a system call). Registrations from
    /// other threads may be seen late; an event for one that is missed here stays in the
    /// poller for the next poll.
    pub fn has_sources(&self) -> bool {
        self.shared.sources.load(Ordering::Relaxed) > 0
    }

    /// The handle of this driver.
    pub fn handle(&self) -> Handle {
        Handle {
            shared: self.shared.clone(),
        }
    }
}

#[cfg(unix)]
impl std::os::fd::AsRawFd for Driver {
    /// The poller's own descriptor (an epoll descriptor is itself pollable: readable while
    /// events wait), for a runtime that sleeps in another poller and wants this one's events
    /// to wake it.
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.poll.as_raw_fd()
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
            self.shared.recount(&ios);
        }
        for w in wakers {
            w.wake();
        }
    }
}

impl Handle {
    /// The driver's side of [`register`](Self::register): gives `io` a token in this driver's
    /// table and registers `source` with the poller under it.
    pub(crate) fn insert(
        &self,
        source: &mut impl Source,
        interest: Interest,
        io: &Arc<ScheduledIo>,
    ) -> io::Result<Token> {
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
            self.shared.recount(&ios);
            Token(generation << INDEX_BITS | index)
        };
        if let Err(e) = self.shared.registry.register(source, token, interest) {
            let mut ios = lock(&self.shared.ios);
            ios.slab.try_remove(token.0 & INDEX_MASK);
            self.shared.recount(&ios);
            return Err(e);
        }
        Ok(token)
    }

    /// Interrupts a [`Driver::poll`] blocked on another thread (or makes the next one return).
    pub fn wake(&self) {
        // A failed wake (the poller is gone) has nobody left to wake.
        let _ = self.shared.waker.wake();
    }

    /// How many sources are registered with the driver now (its own waker not counted).
    pub fn sources(&self) -> usize {
        self.shared.sources.load(Ordering::Relaxed)
    }

    /// `true` when both handles reach the same driver.
    pub fn same_driver(&self, other: &Handle) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}
