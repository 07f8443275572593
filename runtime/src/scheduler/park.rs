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
    pub(crate) fn park(&self) {
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
        loop {
            #[cfg(loom)]
            {
                guard = self.condvar.wait(guard).unwrap();
            }
            #[cfg(not(loom))]
            {
                guard = self.condvar.wait(guard).unwrap_or_else(|e| e.into_inner());
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
