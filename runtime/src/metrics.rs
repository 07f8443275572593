//! Per-worker counters, HAProxy's `show activity` in small.
//!
//! Each counter is written only by its own worker (a relaxed load and store, no read-modify-write
//! and no shared cache line on the hot path) and may be read at any time from any thread.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The counters one worker keeps about itself.
#[derive(Default)]
pub(crate) struct WorkerCounters {
    pub(crate) tasks_polled: AtomicU64,
    pub(crate) local_wakes: AtomicU64,
    pub(crate) remote_wakes: AtomicU64,
    pub(crate) steal_operations: AtomicU64,
    pub(crate) steals: AtomicU64,
    pub(crate) parks: AtomicU64,
    pub(crate) mailbox_items: AtomicU64,
    pub(crate) mailbox_wakeups: AtomicU64,
    pub(crate) mailbox_handler_panics: AtomicU64,
    pub(crate) timers_fired: AtomicU64,
    pub(crate) io_events: AtomicU64,
}

/// Adds `n` to a counter that only the calling worker writes.
#[inline]
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
}

impl WorkerCounters {
    fn snapshot(&self) -> WorkerMetrics {
        WorkerMetrics {
            tasks_polled: self.tasks_polled.load(Relaxed),
            local_wakes: self.local_wakes.load(Relaxed),
            remote_wakes: self.remote_wakes.load(Relaxed),
            steal_operations: self.steal_operations.load(Relaxed),
            steals: self.steals.load(Relaxed),
            parks: self.parks.load(Relaxed),
            mailbox_items: self.mailbox_items.load(Relaxed),
            mailbox_wakeups: self.mailbox_wakeups.load(Relaxed),
            mailbox_handler_panics: self.mailbox_handler_panics.load(Relaxed),
            timers_fired: self.timers_fired.load(Relaxed),
            io_events: self.io_events.load(Relaxed),
        }
    }
}

/// What one worker thread has done since the runtime started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerMetrics {
    /// Task polls run on this worker (a cancellation counts as one).
    pub tasks_polled: u64,
    /// Tasks queued by this worker's own thread: spawns and wakes made while it ran.
    pub local_wakes: u64,
    /// Tasks this worker received from other threads: its remote queue and the global injector.
    pub remote_wakes: u64,
    /// Successful steal operations from other workers' queues.
    pub steal_operations: u64,
    /// Tasks taken from other workers by those steal operations.
    pub steals: u64,
    /// Times the worker ran out of work and went to sleep (counted as it registers as a
    /// sleeper, so a last-moment find of work still counts).
    pub parks: u64,
    /// Items handled by [`WorkList`](crate::WorkList) handlers on this worker.
    pub mailbox_items: u64,
    /// Times a work-list handler on this worker found items after having gone idle: the
    /// wake-ups of its mailboxes, one per burst of pushes rather than one per item.
    pub mailbox_wakeups: u64,
    /// Items whose work-list handler panicked on this worker (each such item is lost; the
    /// handler goes on with the next).
    pub mailbox_handler_panics: u64,
    /// Timers of this worker's wheel that came due and woke their task.
    pub timers_fired: u64,
    /// I/O readiness events this worker's poller delivered.
    pub io_events: u64,
}

/// A snapshot of every worker's counters, from [`Runtime::metrics`](crate::Runtime::metrics).
///
/// ```
/// let rt = pinwheel::Builder::new().worker_threads(2).build().unwrap();
/// rt.block_on(rt.spawn(async {})).unwrap();
/// let m = rt.metrics();
/// assert_eq!(m.num_workers(), 2);
/// assert!(m.total().tasks_polled >= 1);
/// ```
#[derive(Clone, Debug)]
pub struct RuntimeMetrics {
    workers: Vec<WorkerMetrics>,
}

impl RuntimeMetrics {
    pub(crate) fn collect<'a>(
        counters: impl Iterator<Item = &'a WorkerCounters>,
    ) -> RuntimeMetrics {
        RuntimeMetrics {
            workers: counters.map(WorkerCounters::snapshot).collect(),
        }
    }

    /// How many workers the runtime has.
    pub fn num_workers(&self) -> usize {
        self.workers.len()
    }

    /// Worker `i`'s counters.
    ///
    /// # Panics
    ///
    /// Panics when `i` is not below [`num_workers`](Self::num_workers).
    #[track_caller]
    pub fn worker(&self, i: usize) -> &WorkerMetrics {
        match self.workers.get(i) {
            Some(w) => w,
            None => panic!(
                "RuntimeMetrics::worker: index {i} is out of range for a runtime with {} workers",
                self.workers.len()
            ),
        }
    }

    /// Every worker's counters, by worker index.
    pub fn workers(&self) -> &[WorkerMetrics] {
        &self.workers
    }

    /// The counters summed over all workers.
    pub fn total(&self) -> WorkerMetrics {
        self.workers
            .iter()
            .fold(WorkerMetrics::default(), |a, w| WorkerMetrics {
                tasks_polled: a.tasks_polled + w.tasks_polled,
                local_wakes: a.local_wakes + w.local_wakes,
                remote_wakes: a.remote_wakes + w.remote_wakes,
                steal_operations: a.steal_operations + w.steal_operations,
                steals: a.steals + w.steals,
                parks: a.parks + w.parks,
                mailbox_items: a.mailbox_items + w.mailbox_items,
                mailbox_wakeups: a.mailbox_wakeups + w.mailbox_wakeups,
                mailbox_handler_panics: a.mailbox_handler_panics + w.mailbox_handler_panics,
                timers_fired: a.timers_fired + w.timers_fired,
                io_events: a.io_events + w.io_events,
            })
    }
}

impl fmt::Display for RuntimeMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:>6} {:>12} {:>12} {:>12} {:>10} {:>10} {:>10} {:>12} {:>10}",
            "thread",
            "polled",
            "local_wakes",
            "remote_wakes",
            "steal_ops",
            "stolen",
            "parks",
            "mbox_items",
            "mbox_wakes"
        )?;
        for (i, w) in self.workers.iter().enumerate() {
            writeln!(
                f,
                "{:>6} {:>12} {:>12} {:>12} {:>10} {:>10} {:>10} {:>12} {:>10}",
                i,
                w.tasks_polled,
                w.local_wakes,
                w.remote_wakes,
                w.steal_operations,
                w.steals,
                w.parks,
                w.mailbox_items,
                w.mailbox_wakeups
            )?;
        }
        Ok(())
    }
}
