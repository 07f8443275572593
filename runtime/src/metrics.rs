//! Per-worker counters, HAProxy's `show activity` in small.
//!
//! Each counter is written only by its own worker (a relaxed load and store, no read-modify-write
//! and no shared cache line on the hot path) and may be read at any time from any thread.
//!
//! Every figure is declared once, in the table given to `metrics!` below: its field of
//! [`WorkerMetrics`] with its docs, its column in the `Display` table and the group it is shown
//! in, and whether the worker keeps it as a counter of its own (`counter`: an `AtomicU64` of the
//! same name in `WorkerCounters`, read by the snapshot) or the snapshot works it out
//! (`derived`). Adding a counter is one entry there, and its writes.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::task::{ByClass, Class};

/// Builds `WorkerCounters` from the `counter` entries of the table (a muncher: a struct's
/// fields cannot come from a macro call).
macro_rules! counters_struct {
    (@acc [$($acc:tt)*]) => {
        /// The counters one worker keeps about itself (the `counter` entries of the table),
        /// and the per-class figures the snapshot derives some of the others from.
        #[derive(Default)]
        pub(crate) struct WorkerCounters {
            $($acc)*
            /// Gauges: the length of each class's pinned queue (as of the worker's last look).
            pub(crate) pinned_depth: ByClass<AtomicU64>,
            /// Polls of Urgent, Bulk and Heavy tasks (Normal's is not counted: it is the rest
            /// of `tasks_polled`).
            pub(crate) class_polls: ByClass<AtomicU64>,
        }
    };
    (@acc [$($acc:tt)*] counter $field:ident $($rest:tt)*) => {
        counters_struct!(@acc [$($acc)* pub(crate) $field: AtomicU64,] $($rest)*);
    };
    (@acc [$($acc:tt)*] derived $field:ident $($rest:tt)*) => {
        counters_struct!(@acc [$($acc)*] $($rest)*);
    };
}

/// A `counter` entry's value in the snapshot: its atomic's; a `derived` one starts at 0.
macro_rules! snapshot_value {
    (counter $counters:ident . $field:ident) => {
        $counters.$field.load(Relaxed)
    };
    (derived $counters:ident . $field:ident) => {
        0
    };
}

/// The table of figures: groups (as the `Display` table shows them), each figure with its docs,
/// kind, field and column.
macro_rules! metrics {
    ($(
        $group:literal {
            $( $(#[doc = $doc:literal])* $kind:ident $field:ident : $column:literal; )*
        }
    )*) => {
        counters_struct!(@acc [] $($($kind $field)*)*);

        /// What one worker thread has done since the runtime started (counters), and what it
        /// holds now (gauges: `run_queue_depth`, `local_tasks`, `live_sessions`, the queued
        /// figures of the classes). HAProxy's `show activity`, one thread's column.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct WorkerMetrics {
            $($( $(#[doc = $doc])* pub $field: u64, )*)*
        }

        impl WorkerCounters {
            /// The `counter` figures; the caller fills in the `derived` ones.
            fn load(&self) -> WorkerMetrics {
                let counters = self;
                WorkerMetrics {
                    $($( $field: snapshot_value!($kind counters.$field), )*)*
                }
            }
        }

        impl WorkerMetrics {
            /// The `Display` table's groups: each one's title and its columns, in field order.
            const GROUPS: &'static [(&'static str, &'static [&'static str])] =
                &[$( ($group, &[$($column),*]) ),*];

            /// Every figure, in the order of [`GROUPS`](Self::GROUPS)' columns.
            fn values(&self) -> Vec<u64> {
                vec![$($( self.$field, )*)*]
            }

            /// Adds `other`'s figures to these.
            fn add(&mut self, other: &WorkerMetrics) {
                $($( self.$field += other.$field; )*)*
            }
        }
    };
}

metrics! {
    "scheduling" {
        /// Turns of the worker loop (each: timers, maybe I/O, up to 64 task polls, or a park).
        counter loop_turns: "turns";
        /// Task polls run on this worker (a cancellation counts as one).
        counter tasks_polled: "polled";
        /// Tasks this worker's thread queued in its own queues: spawns and wakes made while it ran (one it hands to another worker's inbox counts there, in `remote_wakes`).
        counter local_wakes: "local_wk";
        /// Tasks this worker received from other threads: its inbox and the global injector ("remote": from another thread, as tokio's `remote_schedule_count`).
        counter remote_wakes: "remote_wk";
        /// Successful steal operations from other workers' queues.
        counter steal_operations: "steal_ops";
        /// Tasks taken from other workers by those steal operations.
        counter steals: "stolen";
        /// Loop turns that used the whole budget of 64 polls with work still queued.
        counter budget_exhaustions: "budget_ex";
    }
    "queues and work lists" {
        /// Tasks queued for this worker now: its deque, LIFO slot, pinned queue and inbox.
        derived run_queue_depth: "runq";
        /// Live `spawn_local` tasks on this worker now (sessions of `net::serve` among them).
        counter local_tasks: "local_tk";
        /// Live `net::serve` sessions on this worker now.
        counter live_sessions: "sessions";
        /// Live tasks bound to this worker by their sockets (I/O affinity, see `net`): spawned
        /// stealable, they run here from their first socket on. Counted up when a task binds,
        /// down when it completes (on whichever thread: the one counter not written by its
        /// worker alone).
        counter bound_tasks: "bound";
        /// Items handled by [`WorkList`](crate::WorkList) handlers on this worker.
        counter mailbox_items: "mbox";
        /// Times a work-list handler on this worker found items after having gone idle: the
        /// wake-ups of its mailboxes, one per burst of pushes rather than one per item.
        counter mailbox_wakeups: "mbox_wk";
        /// Items whose work-list handler panicked on this worker (each such item is lost; the
        /// handler goes on with the next).
        counter mailbox_handler_panics: "mbox_pan";
    }
    "timers and I/O" {
        /// Timers put in this worker's wheel (as of its last loop turn).
        counter timers_armed: "tm_armed";
        /// Timers of this worker's wheel that came due and woke their task.
        counter timers_fired: "tm_fired";
        /// Timers removed from this worker's wheel before they came due (as of its last loop
        /// turn).
        counter timers_cancelled: "tm_cancel";
        /// I/O readiness events this worker's poller delivered.
        counter io_events: "io_ev";
        /// Sources registered with this worker's poller now: sockets, listeners, signal
        /// pipes. An accepted socket is registered only once a call on it would block (the
        /// late registration rule, see [`net`](crate::net)).
        derived io_sources: "io_src";
    }
    "classes" {
        /// Polls of [`Class::Urgent`](crate::task::Class::Urgent) tasks (see
        /// [`class_polls`](Self::class_polls)).
        derived urgent_polls: "urg_poll";
        /// Polls of [`Class::Bulk`](crate::task::Class::Bulk) tasks.
        derived bulk_polls: "bulk_poll";
        /// Polls of [`Class::Heavy`](crate::task::Class::Heavy) tasks.
        derived heavy_polls: "hvy_poll";
        /// Urgent tasks queued for this worker now (in their own lane; see
        /// [`class_queued`](Self::class_queued)).
        derived urgent_queued: "urg_q";
        /// Bulk tasks queued for this worker now.
        derived bulk_queued: "bulk_q";
        /// Heavy tasks queued for this worker now.
        derived heavy_queued: "hvy_q";
    }
    "health" {
        /// Times the worker ran out of work and went to sleep (counted as it registers as a
        /// sleeper, so a last-moment find of work still counts).
        counter parks: "parks";
        /// Yield-and-repoll rounds made before sleeping, after serving I/O
        /// ([`Builder::spin_before_park`](crate::Builder::spin_before_park)).
        counter park_spins: "spins";
        /// Those rounds that found work, so the worker did not sleep.
        counter park_spin_finds: "spin_hit";
        /// Task polls on this worker that ran longer than the long-poll threshold (seen by the
        /// watchdog; see [`Builder::long_poll_threshold`](crate::Builder::long_poll_threshold)).
        counter long_polls: "long_poll";
        /// Times this worker made no loop turn for a second while tasks waited for it.
        counter stalls: "stalls";
        /// The worker's average loop turn, in nanoseconds, over about its last 1024 turns (time
        /// asleep not included): HAProxy's `avg_loop_us`. In [`RuntimeMetrics::total`], the mean
        /// over the workers.
        derived avg_loop_nanos: "loop_us";
        /// Time the OS took from this worker while it had work, in nanoseconds: wall time minus
        /// the thread's CPU time over each millisecond of work, counted when at least 0.5 ms
        /// (HAProxy's `cpust`). See [`profile`](crate::profile) for how it is measured.
        derived stolen_nanos: "stolen_ms";
    }
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
        let mut m = self.load();
        m.run_queue_depth = self
            .pinned_depth
            .iter()
            .map(|(_, d)| d.load(Relaxed))
            .sum::<u64>()
            + queued_elsewhere;
        m.urgent_polls = self.class_polls[Class::Urgent].load(Relaxed);
        m.bulk_polls = self.class_polls[Class::Bulk].load(Relaxed);
        m.heavy_polls = self.class_polls[Class::Heavy].load(Relaxed);
        // The caller adds what waits in the lanes' stealable deques.
        m.urgent_queued = self.pinned_depth[Class::Urgent].load(Relaxed);
        m.bulk_queued = self.pinned_depth[Class::Bulk].load(Relaxed);
        m.heavy_queued = self.pinned_depth[Class::Heavy].load(Relaxed);
        m
    }
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
            t.add(w);
        }
        // The one figure that is an average, not a sum.
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
}

/// Tables like HAProxy's `show activity` turned on its side, one per group of figures (so each
/// fits in 80 columns): a row per worker thread and a total; then the count of live tasks. Two
/// columns are shown in their units: `loop_us` (the average loop turn, µs) and `stolen_ms`.
impl fmt::Display for RuntimeMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total();
        let rows: Vec<(String, Vec<u64>)> = self
            .workers
            .iter()
            .enumerate()
            .map(|(i, w)| (i.to_string(), w.values()))
            .chain(std::iter::once(("total".to_owned(), total.values())))
            .collect();
        let mut first = 0;
        for (g, (group, columns)) in WorkerMetrics::GROUPS.iter().enumerate() {
            if g > 0 {
                writeln!(f)?;
            }
            writeln!(f, "{group}:")?;
            write!(f, "{:>6}", "thread")?;
            for name in *columns {
                write!(f, " {name:>9}")?;
            }
            writeln!(f)?;
            for (label, values) in &rows {
                write!(f, "{label:>6}")?;
                for (name, v) in columns.iter().zip(&values[first..]) {
                    match *name {
                        "loop_us" => write!(f, " {:>9.1}", *v as f64 / 1e3)?,
                        "stolen_ms" => write!(f, " {:>9.1}", *v as f64 / 1e6)?,
                        _ => write!(f, " {v:>9}")?,
                    }
                }
                writeln!(f)?;
            }
            first += columns.len();
        }
        writeln!(
            f,
            "live tasks: {}; blocking pool: {} threads, {} queued",
            self.live_tasks, self.blocking.0, self.blocking.1
        )
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn every_figure_is_in_one_group_and_the_table_fits_80_columns() {
        let columns: usize = WorkerMetrics::GROUPS.iter().map(|(_, c)| c.len()).sum();
        let w = WorkerMetrics {
            loop_turns: 123_456_789,
            ..Default::default()
        };
        assert_eq!(columns, w.values().len());
        let m = RuntimeMetrics::new(vec![w, w], 3, (1, 0));
        let text = m.to_string();
        for (group, names) in WorkerMetrics::GROUPS {
            assert!(text.contains(&format!("{group}:")), "{text}");
            for name in *names {
                let n = text.split_whitespace().filter(|w| w == name).count();
                assert_eq!(n, 1, "{name} in\n{text}");
            }
        }
        assert!(
            text.contains("246913578"),
            "the total sums the workers:\n{text}"
        );
        assert!(text.lines().all(|l| l.len() <= 80), "{text}");
    }
}
