//! Parking a worker thread without spinning, and waking it.
//!
//! The parker holds one token: `unpark` before `park` makes that `park` return at once, so a
//! wake that races with a worker going to sleep is never lost.

use crate::loom::{AtomicUsize, Condvar, Mutex, Ordering::SeqCst, lock};

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;

pub(crate) struct Parker {
    state: AtomicUsize,
    mutex: Mutex<()>,
    condvar: Condvar,
}

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
        #[cfg(not(loom))]
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        #[cfg(loom)]
        let _ = timeout;
        loop {
            #[cfg(loom)]
            {
                guard = self.condvar.wait(guard).unwrap();
            }
            #[cfg(not(loom))]
            {
                match deadline {
                    None => guard = self.condvar.wait(guard).unwrap_or_else(|e| e.into_inner()),
                    Some(d) => {
                        let now = std::time::Instant::now();
                        if now >= d {
                            // Timed out. Leave PARKED; an unpark that raced in is consumed
                            // here too, as this return delivers it.
                            self.state.swap(EMPTY, SeqCst);
                            return;
                        }
                        guard = self
                            .condvar
                            .wait_timeout(guard, d - now)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                }
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
