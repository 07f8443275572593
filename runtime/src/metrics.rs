//! Per-worker counters, HAProxy's `show activity` in small.
//!
//! Each counter is written only by its own worker (a relaxed load and store, no read-modify-write
//! and no shared cache line on the hot path) and may be read at any time from any thread.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::task::{ByClass, Class};

/// The counters one worker keeps about itself.
#[derive(Default)]
pub(crate) struct WorkerCounters {
    pub(crate) loop_turns: AtomicU64,
    pub(crate) tasks_polled: AtomicU64,
    pub(crate) local_wakes: AtomicU64,
    pub(crate) remote_wakes: AtomicU64,
    pub(crate) steal_operations: AtomicU64,
    pub(crate) steals: AtomicU64,
    pub(crate) parks: AtomicU64,
    pub(crate) park_spins: AtomicU64,
    pub(crate) park_spin_finds: AtomicU64,
    pub(crate) budget_exhaustions: AtomicU64,
    pub(crate) mailbox_items: AtomicU64,
    pub(crate) mailbox_wakeups: AtomicU64,
    pub(crate) mailbox_handler_panics: AtomicU64,
    pub(crate) timers_armed: AtomicU64,
    pub(crate) timers_fired: AtomicU64,
    pub(crate) timers_cancelled: AtomicU64,
    pub(crate) io_events: AtomicU64,
    /// Written by the watchdog thread only.
    pub(crate) long_polls: AtomicU64,
    /// Written by the watchdog thread only.
    pub(crate) stalls: AtomicU64,
    /// Gauges, written by the worker: its `spawn_local` tasks, and its live `net::serve`
    /// sessions.
    pub(crate) local_tasks: AtomicU64,
    pub(crate) live_sessions: AtomicU64,
    /// Gauges: the length of each class's pinned queue (as of the worker's last look).
    pub(crate) pinned_depth: ByClass<AtomicU64>,
    /// Polls of Urgent, Bulk and Heavy tasks (Normal's is not counted: it is the rest of
    /// `tasks_polled`).
    pub(crate) class_polls: ByClass<AtomicU64>,
}

/// Adds `n` to a counter that only the calling worker writes.
#[inline]
pub(crate) fn single_writer_add(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
}

/// Subtracts `n` from a gauge that only the calling worker writes.
#[inline]
pub(crate) fn single_writer_sub(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_sub(n), Relaxed);
}

impl WorkerCounters {
    /// The counters, with the queue depth measured by the caller.
    pub(crate) fn snapshot(&self, queued_elsewhere: u64) -> WorkerMetrics {
        WorkerMetrics {
            loop_turns: self.loop_turns.load(Relaxed),
            tasks_polled: self.tasks_polled.load(Relaxed),
            local_wakes: self.local_wakes.load(Relaxed),
            remote_wakes: self.remote_wakes.load(Relaxed),
            steal_operations: self.steal_operations.load(Relaxed),
            steals: self.steals.load(Relaxed),
            parks: self.parks.load(Relaxed),
            park_spins: self.park_spins.load(Relaxed),
            park_spin_finds: self.park_spin_finds.load(Relaxed),
            budget_exhaustions: self.budget_exhaustions.load(Relaxed),
            mailbox_items: self.mailbox_items.load(Relaxed),
            mailbox_wakeups: self.mailbox_wakeups.load(Relaxed),
            mailbox_handler_panics: self.mailbox_handler_panics.load(Relaxed),
            timers_armed: self.timers_armed.load(Relaxed),
            timers_fired: self.timers_fired.load(Relaxed),
            timers_cancelled: self.timers_cancelled.load(Relaxed),
            io_events: self.io_events.load(Relaxed),
            long_polls: self.long_polls.load(Relaxed),
            stalls: self.stalls.load(Relaxed),
            run_queue_depth: self
                .pinned_depth
                .iter()
                .map(|(_, d)| d.load(Relaxed))
                .sum::<u64>()
                + queued_elsewhere,
            local_tasks: self.local_tasks.load(Relaxed),
            live_sessions: self.live_sessions.load(Relaxed),
            urgent_polls: self.class_polls[Class::Urgent].load(Relaxed),
            bulk_polls: self.class_polls[Class::Bulk].load(Relaxed),
            heavy_polls: self.class_polls[Class::Heavy].load(Relaxed),
            // The caller adds what waits in the lanes' stealable deques.
            urgent_queued: self.pinned_depth[Class::Urgent].load(Relaxed),
            bulk_queued: self.pinned_depth[Class::Bulk].load(Relaxed),
            heavy_queued: self.pinned_depth[Class::Heavy].load(Relaxed),
            avg_loop_nanos: 0,
            stolen_nanos: 0,
        }
    }
}

/// What one worker thread has done since the runtime started (counters), and what it holds
/// now (gauges: `run_queue_depth`, `local_tasks`, `live_sessions`). HAProxy's `show activity`,
/// one thread's column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerMetrics {
    /// Turns of the worker loop (each: timers, maybe I/O, up to 64 task polls, or a park).
    pub loop_turns: u64,
    /// Task polls run on this worker (a cancellation counts as one).
    pub tasks_polled: u64,
    /// Tasks queued by this worker's own thread: spawns and wakes made while it ran.
    pub local_wakes: u64,
    /// Tasks this worker received from other threads: its inbox and the global injector ("remote": from another thread, as tokio's `remote_schedule_count`).
    pub remote_wakes: u64,
    /// Successful steal operations from other workers' queues.
    pub steal_operations: u64,
    /// Tasks taken from other workers by those steal operations.
    pub steals: u64,
    /// Times the worker ran out of work and went to sleep (counted as it registers as a
    /// sleeper, so a last-moment find of work still counts).
    pub parks: u64,
    /// Yield-and-repoll rounds made before sleeping, after serving I/O
    /// ([`Builder::spin_before_park`](crate::Builder::spin_before_park)).
    pub park_spins: u64,
    /// Those rounds that found work, so the worker did not sleep.
    pub park_spin_finds: u64,
    /// Loop turns that used the whole budget of 64 polls with work still queued.
    pub budget_exhaustions: u64,
    /// Items handled by [`WorkList`](crate::WorkList) handlers on this worker.
    pub mailbox_items: u64,
    /// Times a work-list handler on this worker found items after having gone idle: the
    /// wake-ups of its mailboxes, one per burst of pushes rather than one per item.
    pub mailbox_wakeups: u64,
    /// Items whose work-list handler panicked on this worker (each such item is lost; the
    /// handler goes on with the next).
    pub mailbox_handler_panics: u64,
    /// Timers put in this worker's wheel (as of its last loop turn).
    pub timers_armed: u64,
    /// Timers of this worker's wheel that came due and woke their task.
    pub timers_fired: u64,
    /// Timers removed from this worker's wheel before they came due (as of its last loop
    /// turn).
    pub timers_cancelled: u64,
    /// I/O readiness events this worker's poller delivered.
    pub io_events: u64,
    /// Task polls on this worker that ran longer than the long-poll threshold (seen by the
    /// watchdog; see [`Builder::long_poll_threshold`](crate::Builder::long_poll_threshold)).
    pub long_polls: u64,
    /// Times this worker made no loop turn for a second while tasks waited for it.
    pub stalls: u64,
    /// Tasks queued for this worker now: its deque, LIFO slot, pinned queue and inbox.
    pub run_queue_depth: u64,
    /// Live `spawn_local` tasks on this worker now (sessions of `net::serve` among them).
    pub local_tasks: u64,
    /// Live `net::serve` sessions on this worker now.
    pub live_sessions: u64,
    /// Polls of [`Class::Urgent`](crate::task::Class::Urgent) tasks (see
    /// [`class_polls`](Self::class_polls)).
    pub urgent_polls: u64,
    /// Polls of [`Class::Bulk`](crate::task::Class::Bulk) tasks.
    pub bulk_polls: u64,
    /// Polls of [`Class::Heavy`](crate::task::Class::Heavy) tasks.
    pub heavy_polls: u64,
    /// Urgent tasks queued for this worker now (in their own lane; see
    /// [`class_queued`](Self::class_queued)).
    pub urgent_queued: u64,
    /// Bulk tasks queued for this worker now.
    pub bulk_queued: u64,
    /// Heavy tasks queued for this worker now.
    pub heavy_queued: u64,
    /// The worker's average loop turn, in nanoseconds, over about its last 1024 turns (time
    /// asleep not included): HAProxy's `avg_loop_us`. In [`RuntimeMetrics::total`], the mean
    /// over the workers.
    pub avg_loop_nanos: u64,
    /// Time the OS took from this worker while it had work, in nanoseconds: wall time minus
    /// the thread's CPU time over each millisecond of work, counted when at least 0.5 ms
    /// (HAProxy's `cpust`). See [`profile`](crate::profile) for how it is measured.
    pub stolen_nanos: u64,
}

/// A snapshot of every worker's counters, from [`Runtime::metrics`](crate::Runtime::metrics).
///
/// ```
/// let rt = pinwheel::Builder::new().worker_threads(2).build().unwrap();
/// rt.block_on(rt.spawn(async {})).unwrap();
/// let m = rt.metrics();
/// assert_eq!(m.worker_threads(), 2);
/// assert!(m.total().tasks_polled >= 1);
/// ```
#[derive(Clone, Debug)]
pub struct RuntimeMetrics {
    workers: Vec<WorkerMetrics>,
    live_tasks: u64,
    blocking: (usize, usize),
}

impl RuntimeMetrics {
    pub(crate) fn new(
        workers: Vec<WorkerMetrics>,
        live_tasks: u64,
        blocking: (usize, usize),
    ) -> RuntimeMetrics {
        RuntimeMetrics {
            workers,
            live_tasks,
            blocking,
        }
    }

    /// Threads of the blocking pool now (running a closure or idle).
    pub fn blocking_threads(&self) -> usize {
        self.blocking.0
    }

    /// Blocking closures waiting for a pool thread now.
    pub fn blocking_queue_depth(&self) -> usize {
        self.blocking.1
    }

    /// Tasks alive in the runtime now (spawned, not yet completed or dropped), on every
    /// worker and in every queue.
    pub fn live_tasks(&self) -> u64 {
        self.live_tasks
    }

    /// How many workers the runtime has (the one name of that count, as in
    /// [`Builder::worker_threads`](crate::Builder::worker_threads)).
    #[doc(alias = "num_workers")]
    pub fn worker_threads(&self) -> usize {
        self.workers.len()
    }

    /// Worker `i`'s counters.
    ///
    /// # Panics
    ///
    /// Panics when `i` is not below [`worker_threads`](Self::worker_threads).
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

    /// The counters (and gauges) summed over all workers.
    pub fn total(&self) -> WorkerMetrics {
        let mut t = WorkerMetrics::default();
        for w in &self.workers {
            for (sum, v) in t.fields_mut().into_iter().zip(w.fields()) {
                *sum += v;
            }
            t.avg_loop_nanos += w.avg_loop_nanos;
            t.stolen_nanos += w.stolen_nanos;
        }
        t.avg_loop_nanos /= self.workers.len().max(1) as u64;
        t
    }
}

impl WorkerMetrics {
    /// Polls of tasks of `class` (Normal: every poll not counted in another class).
    pub fn class_polls(&self, class: crate::task::Class) -> u64 {
        use crate::task::Class;
        match class {
            Class::Urgent => self.urgent_polls,
            Class::Bulk => self.bulk_polls,
            Class::Heavy => self.heavy_polls,
            Class::Normal => self
                .tasks_polled
                .saturating_sub(self.urgent_polls + self.bulk_polls + self.heavy_polls),
        }
    }

    /// Tasks of `class` queued for this worker now (Normal: the queued tasks not in another
    /// class's lane; a task whose class changed while it was queued counts where it waits).
    pub fn class_queued(&self, class: crate::task::Class) -> u64 {
        use crate::task::Class;
        match class {
            Class::Urgent => self.urgent_queued,
            Class::Bulk => self.bulk_queued,
            Class::Heavy => self.heavy_queued,
            Class::Normal => self
                .run_queue_depth
                .saturating_sub(self.urgent_queued + self.bulk_queued + self.heavy_queued),
        }
    }

    /// The column names of the `Display` table, in field order.
    const NAMES: [&'static str; 28] = [
        "turns",
        "polled",
        "local_wk",
        "remote_wk",
        "steal_ops",
        "stolen",
        "parks",
        "spins",
        "spin_hit",
        "budget_ex",
        "mbox",
        "mbox_wk",
        "mbox_pan",
        "tm_armed",
        "tm_fired",
        "tm_cancel",
        "io_ev",
        "long_poll",
        "stalls",
        "runq",
        "local_tk",
        "sessions",
        "urg_poll",
        "bulk_poll",
        "hvy_poll",
        "urg_q",
        "bulk_q",
        "hvy_q",
    ];

    fn fields(&self) -> [u64; 28] {
        [
            self.loop_turns,
            self.tasks_polled,
            self.local_wakes,
            self.remote_wakes,
            self.steal_operations,
            self.steals,
            self.parks,
            self.park_spins,
            self.park_spin_finds,
            self.budget_exhaustions,
            self.mailbox_items,
            self.mailbox_wakeups,
            self.mailbox_handler_panics,
            self.timers_armed,
            self.timers_fired,
            self.timers_cancelled,
            self.io_events,
            self.long_polls,
            self.stalls,
            self.run_queue_depth,
            self.local_tasks,
            self.live_sessions,
            self.urgent_polls,
            self.bulk_polls,
            self.heavy_polls,
            self.urgent_queued,
            self.bulk_queued,
            self.heavy_queued,
        ]
    }

    fn fields_mut(&mut self) -> [&mut u64; 28] {
        [
            &mut self.loop_turns,
            &mut self.tasks_polled,
            &mut self.local_wakes,
            &mut self.remote_wakes,
            &mut self.steal_operations,
            &mut self.steals,
            &mut self.parks,
            &mut self.park_spins,
            &mut self.park_spin_finds,
            &mut self.budget_exhaustions,
            &mut self.mailbox_items,
            &mut self.mailbox_wakeups,
            &mut self.mailbox_handler_panics,
            &mut self.timers_armed,
            &mut self.timers_fired,
            &mut self.timers_cancelled,
            &mut self.io_events,
            &mut self.long_polls,
            &mut self.stalls,
            &mut self.run_queue_depth,
            &mut self.local_tasks,
            &mut self.live_sessions,
            &mut self.urgent_polls,
            &mut self.bulk_polls,
            &mut self.heavy_polls,
            &mut self.urgent_queued,
            &mut self.bulk_queued,
            &mut self.heavy_queued,
        ]
    }
}

/// A table, one row per worker thread and a total, like HAProxy's `show activity` turned on
/// its side; then the count of live tasks.
impl fmt::Display for RuntimeMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>6}", "thread")?;
        for name in WorkerMetrics::NAMES {
            write!(f, " {name:>9}")?;
        }
        writeln!(f, " {:>9} {:>9}", "loop_us", "stolen_ms")?;
        let total = self.total();
        let rows = self
            .workers
            .iter()
            .enumerate()
            .map(|(i, w)| (i.to_string(), w));
        for (label, w) in rows.chain(std::iter::once(("total".to_owned(), &total))) {
            write!(f, "{label:>6}")?;
            for v in w.fields() {
                write!(f, " {v:>9}")?;
            }
            writeln!(
                f,
                " {:>9.1} {:>9.1}",
                w.avg_loop_nanos as f64 / 1e3,
                w.stolen_nanos as f64 / 1e6
            )?;
        }
        writeln!(
            f,
            "live tasks: {}; blocking pool: {} threads, {} queued",
            self.live_tasks, self.blocking.0, self.blocking.1
        )
    }
}
