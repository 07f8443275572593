//! Which workers sleep, which search for work, and whom to wake when work appears.
//!
//! Waking every worker on every spawn would burn the CPU a network service needs, so only one
//! idle worker is woken, and only when no worker is already searching (a searcher will find the
//! work). A worker that finds work while searching wakes the next one if it was the last
//! searcher, so a burst of spawns fans out one worker at a time.
//!
//! No wake is lost: a worker going to sleep first registers as a sleeper, then looks at the
//! queues once more; a producer first pushes, then looks at the sleeper count. With both sides
//! `SeqCst`, one of them sees the other.

use crate::loom::{AtomicUsize, Mutex, Ordering::SeqCst, lock};

pub(crate) struct Idle {
    searching: AtomicUsize,
    sleeping: AtomicUsize,
    sleepers: Mutex<Vec<usize>>,
}

impl Idle {
    pub(crate) fn new(workers: usize) -> Idle {
        Idle {
            searching: AtomicUsize::new(0),
            sleeping: AtomicUsize::new(0),
            sleepers: Mutex::new(Vec::with_capacity(workers)),
        }
    }

    /// Called after work was made stealable. Returns the worker to unpark, already counted as
    /// searching, if one should be woken.
    pub(crate) fn worker_to_notify(&self) -> Option<usize> {
        crate::loom::fence(SeqCst);
        if self.searching.load(SeqCst) != 0 || self.sleeping.load(SeqCst) == 0 {
            return None;
        }
        let mut sleepers = lock(&self.sleepers);
        if self.searching.load(SeqCst) != 0 {
            return None;
        }
        let index = sleepers.pop()?;
        self.sleeping.fetch_sub(1, SeqCst);
        self.searching.fetch_add(1, SeqCst);
        Some(index)
    }

    /// A worker starts searching other queues. Returns `false` when enough are searching
    /// already (at most half the workers search, as in tokio, to limit contention).
    pub(crate) fn try_start_searching(&self, workers: usize) -> bool {
        let n = self.searching.load(SeqCst);
        if 2 * n >= workers {
            return false;
        }
        self.searching.fetch_add(1, SeqCst);
        true
    }

    /// A worker starts searching whatever the number of searchers.
    pub(crate) fn force_searching(&self) {
        self.searching.fetch_add(1, SeqCst);
    }

    /// A searching worker found work or gives up. Returns `true` when it was the last searcher
    /// and found work: then another worker should be notified to keep looking.
    pub(crate) fn stop_searching(&self) -> bool {
        self.searching.fetch_sub(1, SeqCst) == 1
    }

    /// The worker registers as a sleeper. It must look at the queues again afterwards.
    pub(crate) fn sleep(&self, index: usize) {
        let mut sleepers = lock(&self.sleepers);
        sleepers.push(index);
        self.sleeping.fetch_add(1, SeqCst);
        drop(sleepers);
        crate::loom::fence(SeqCst);
    }

    /// The worker is awake again (it found work on its last look, or was unparked). Returns
    /// `true` when it was still registered as a sleeper, `false` when a notifier took it off
    /// the list and counted it as searching.
    pub(crate) fn wake(&self, index: usize) -> bool {
        let mut sleepers = lock(&self.sleepers);
        if let Some(pos) = sleepers.iter().position(|&i| i == index) {
            sleepers.swap_remove(pos);
            self.sleeping.fetch_sub(1, SeqCst);
            true
        } else {
            false
        }
    }

    /// How many workers are registered as sleepers.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn num_sleeping(&self) -> usize {
        self.sleeping.load(SeqCst)
    }
}
