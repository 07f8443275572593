//! Parking a worker thread without spinning, and waking it.
//!
//! The parker holds one token: `unpark` before `park` makes that `park` return at once, so a
//! wake that races with a worker going to sleep is never lost.

use crate::loom::{AtomicUsize, Condvar, Mutex, Ordering::SeqCst, lock, wait_until};

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;

#[cfg_attr(not(loom), allow(dead_code))]
pub(crate) struct Parker {
    state: AtomicUsize,
    mutex: Mutex<()>,
    condvar: Condvar,
}

#[cfg_attr(not(loom), allow(dead_code))]
impl Parker {
    pub(crate) fn new() -> Parker {
        Parker {
            state: AtomicUsize::new(EMPTY),
            mutex: Mutex::new(()),
            condvar: Condvar::new(),
        }
    }

    /// Blocks until `unpark` is called (or returns at once if it was called since the last
    /// `park`).
    #[cfg_attr(not(loom), allow(dead_code))]
    pub(crate) fn park(&self) {
        self.park_timeout(None);
    }

    /// Like `park`, but returns after `timeout` at the latest (a timer is due then).
    pub(crate) fn park_timeout(&self, timeout: Option<std::time::Duration>) {
        if self
            .state
            .compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst)
            .is_ok()
        {
            return;
        }
        let mut guard = lock(&self.mutex);
        match self.state.compare_exchange(EMPTY, PARKED, SeqCst, SeqCst) {
            Ok(_) => {}
            Err(NOTIFIED) => {
                self.state.store(EMPTY, SeqCst);
                return;
            }
            Err(actual) => unreachable!("pinwheel: parker in state {actual} while parking"),
        }
        // Under loom (no timed waits) a park waits for its unpark: a model never times out.
        let deadline = timeout
            .filter(|_| !cfg!(loom))
            .map(|t| std::time::Instant::now() + t);
        loop {
            let (woken, timed_out) = wait_until(&self.condvar, guard, deadline);
            guard = woken;
            if timed_out {
                // Timed out. Leave PARKED; an unpark that raced in is consumed here too, as
                // this return delivers it.
                self.state.swap(EMPTY, SeqCst);
                return;
            }
            if self
                .state
                .compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst)
                .is_ok()
            {
                return;
            }
        }
    }

    /// Wakes the parked thread, or leaves the token for its next `park`.
    pub(crate) fn unpark(&self) {
        match self.state.swap(NOTIFIED, SeqCst) {
            EMPTY | NOTIFIED => {}
            PARKED => {
                // Taking the lock orders this notify after the parker's wait began.
                drop(lock(&self.mutex));
                self.condvar.notify_one();
            }
            actual => unreachable!("pinwheel: parker in state {actual} while unparking"),
        }
    }
}

/// What a worker sleeps in: its I/O driver's poll (or, in loom models, a stand-in).
pub(crate) trait Sleeper {
    /// Blocks until an event, a wake-up through the matching [`Bell`], or `timeout`.
    fn sleep(&mut self, timeout: Option<std::time::Duration>) -> std::io::Result<usize>;
}

/// What interrupts a [`Sleeper`] from another thread. A ring before the sleep makes the
/// sleep return at once (a `mio::Waker` is an eventfd: it stays set until polled).
pub(crate) trait Bell {
    fn ring(&self);
}

impl Sleeper for pinwheel_io_driver::Driver {
    fn sleep(&mut self, timeout: Option<std::time::Duration>) -> std::io::Result<usize> {
        self.poll(timeout)
    }
}

impl Bell for pinwheel_io_driver::Handle {
    fn ring(&self) {
        self.wake();
    }
}

/// A worker's parker: the same one-token protocol as [`Parker`], where sleeping is a poll of
/// the worker's I/O driver (with the timeout of its next timer) and waking rings the driver's
/// `mio::Waker` only when the worker really sleeps.
pub(crate) struct IoParker<B = pinwheel_io_driver::Handle> {
    state: AtomicUsize,
    bell: B,
}

impl<B: Bell> IoParker<B> {
    pub(crate) fn new(bell: B) -> IoParker<B> {
        IoParker {
            state: AtomicUsize::new(EMPTY),
            bell,
        }
    }

    /// What rings this parker (the worker's driver handle, to register sockets with).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn bell(&self) -> &B {
        &self.bell
    }

    /// Sleeps in `sleeper` until an unpark, an event, or `timeout`; returns what the sleeper
    /// returned. Sleeps with a zero timeout (only collecting what is ready) if an unpark came
    /// since the last park.
    pub(crate) fn park(
        &self,
        sleeper: &mut impl Sleeper,
        timeout: Option<std::time::Duration>,
    ) -> std::io::Result<usize> {
        let timeout = if self.begin_park() {
            Some(std::time::Duration::ZERO)
        } else {
            timeout
        };
        let n = sleeper.sleep(timeout);
        self.end_park();
        n
    }

    /// The first half of a park: takes the token if an unpark left one (`true`: do not sleep,
    /// only collect what is ready), else marks the worker parked, so an unpark rings the bell.
    /// The caller then sleeps until the bell (or an event, or its timeout) and calls
    /// [`end_park`](Self::end_park). `park` is the two around a [`Sleeper`]; a worker driven
    /// by a tokio context sleeps between them in tokio's driver instead.
    pub(crate) fn begin_park(&self) -> bool {
        self.state
            .compare_exchange(NOTIFIED, EMPTY, SeqCst, SeqCst)
            .is_ok()
            || match self.state.compare_exchange(EMPTY, PARKED, SeqCst, SeqCst) {
                Ok(_) => false,
                Err(NOTIFIED) => {
                    self.state.store(EMPTY, SeqCst);
                    true
                }
                Err(actual) => unreachable!("pinwheel: parker in state {actual} while parking"),
            }
    }

    /// The second half of a park: back to EMPTY, consuming an unpark that rang the bell during
    /// the sleep (the sleep returned for it, or the caller looks at its work next anyway).
    pub(crate) fn end_park(&self) {
        self.state.swap(EMPTY, SeqCst);
    }

    /// Whether an unpark came since the last park (its token waits).
    pub(crate) fn is_notified(&self) -> bool {
        self.state.load(SeqCst) == NOTIFIED
    }

    /// Wakes the worker if it sleeps, or leaves the token for its next park.
    pub(crate) fn unpark(&self) {
        if self.state.swap(NOTIFIED, SeqCst) == PARKED {
            self.bell.ring();
        }
    }
}
