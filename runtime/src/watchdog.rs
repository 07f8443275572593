//! The watchdog: one thread per runtime that samples every worker, as HAProxy's watchdog does,
//! and reports
//!
//! - a task poll that has run longer than the long-poll threshold (the worker's poll counter
//!   and current task did not change across samples spanning the threshold): one `tracing`
//!   warning naming the task (id, name, spawn location) and the thread, and `long_polls` + 1;
//! - a worker that made no loop turn for a second while tasks wait in its queues: one warning
//!   with the queue depth, `stalls` + 1, and an idle worker is woken to steal what it can (the
//!   task in the stuck worker's LIFO slot among it).
//!
//! What the workers pay: three relaxed stores per poll (current task id and spawn location,
//! then zero), which the sampling reads. Sampling every quarter of the threshold means a poll is
//! reported once it has run between the threshold and 1.25 times it; polls that end sooner are
//! not. When every worker sleeps the watchdog sleeps too, until a worker wakes up (the
//! `WatchdogBell` protocol below, modelled with loom), so an idle runtime costs no CPU.

use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crate::loom::{AtomicUsize, Condvar, Mutex, Ordering::SeqCst, lock, wait_until};
use crate::metrics::{WorkerCounters, single_writer_add};
use crate::task::Id;

/// What the watchdog reads of a runtime (implemented by the scheduler's `Shared`): the
/// watchdog sits below the scheduler and reaches it only through this trait.
pub(crate) trait Watched: Send + Sync + 'static {
    /// How many workers there are.
    fn workers(&self) -> usize;
    /// Worker `i`'s counters.
    fn counters(&self, i: usize) -> &WorkerCounters;
    /// What worker `i` is polling.
    fn sign(&self, i: usize) -> &CurrentPoll;
    /// How many tasks wait in worker `i`'s queues.
    fn queue_depth(&self, i: usize) -> u64;
    /// The name of a live task, if it has one.
    fn task_name(&self, id: Id) -> Option<Arc<str>>;
    /// Wakes an idle worker to look for work.
    fn notify_work(&self);
    /// Whether the runtime is shutting down.
    fn shutting_down(&self) -> bool;
    /// The bell the workers ring when they wake.
    fn bell(&self) -> &WatchdogBell;
}

/// How long a worker may go without a loop turn, while work waits for it, before it is
/// reported as stalled.
pub(crate) const STALL_AFTER: Duration = Duration::from_secs(1);

/// Lets the watchdog sleep while every worker sleeps, and a waking worker wake it.
///
/// One word holds the number of sleeping workers and the watchdog's "asleep" bit, so that a
/// worker waking and the watchdog going to sleep are read-modify-writes of the same location:
/// one of them always sees the other.
pub(crate) struct WatchdogBell {
    word: AtomicUsize,
    /// Set (under the lock) to wake the watchdog; cleared by it.
    woken: Mutex<bool>,
    cond: Condvar,
}

/// The watchdog's "asleep until a worker wakes" bit; the bits below count sleeping workers.
const IDLE: usize = 1 << (usize::BITS - 1);

impl WatchdogBell {
    pub(crate) fn new() -> WatchdogBell {
        WatchdogBell {
            word: AtomicUsize::new(0),
            woken: Mutex::new(false),
            cond: Condvar::new(),
        }
    }

    /// A worker is about to sleep in its poller.
    pub(crate) fn worker_sleeps(&self) {
        self.word.fetch_add(1, SeqCst);
    }

    /// A worker woke up: if the watchdog went to sleep because every worker slept, wake it.
    pub(crate) fn worker_wakes(&self) {
        let prev = self.word.fetch_sub(1, SeqCst);
        if prev & IDLE != 0 && self.word.fetch_and(!IDLE, SeqCst) & IDLE != 0 {
            *lock(&self.woken) = true;
            self.cond.notify_one();
        }
    }

    /// Wakes the watchdog whatever it waits for (shutdown).
    pub(crate) fn ring(&self) {
        self.word.fetch_and(!IDLE, SeqCst);
        *lock(&self.woken) = true;
        self.cond.notify_one();
    }

    /// The watchdog's wait: until a worker wakes when all `workers` sleep (and `stop()` is
    /// false), else for `period` at most.
    pub(crate) fn wait(&self, workers: usize, stop: impl Fn() -> bool, period: Duration) {
        let mut woken = lock(&self.woken);
        let prev = self.word.fetch_or(IDLE, SeqCst);
        if prev & !IDLE == workers && !stop() {
            // The waker clears IDLE before it sets `woken`.
            while !*woken {
                woken = wait_until(&self.cond, woken, None).0;
            }
        } else {
            self.word.fetch_and(!IDLE, SeqCst);
            if !*woken {
                woken = wait_until(&self.cond, woken, Some(Instant::now() + period)).0;
            }
        }
        *woken = false;
    }
}

/// What the watchdog remembers of one worker between samples.
struct Seen {
    polls: u64,
    task: u64,
    since: Instant,
    reported: bool,
    turns: u64,
    turn_since: Instant,
    stall_reported: bool,
}

/// What the workers publish for the watchdog, one per worker.
#[derive(Default)]
pub(crate) struct CurrentPoll {
    /// The id of the task being polled, 0 between polls.
    pub(crate) task: AtomicU64,
    /// Its spawn location (a `&'static Location` as an address), valid while `task` is not 0.
    pub(crate) location: std::sync::atomic::AtomicPtr<Location<'static>>,
}

/// The watchdog thread's body; returns when the runtime shuts down.
pub(crate) fn run<W: Watched>(shared: Arc<W>, threshold: Duration, thread_prefix: String) {
    let period = (threshold / 4).max(Duration::from_millis(1));
    let now = Instant::now();
    let mut seen: Vec<Seen> = (0..shared.workers())
        .map(|_| Seen {
            polls: 0,
            task: 0,
            since: now,
            reported: false,
            turns: 0,
            turn_since: now,
            stall_reported: false,
        })
        .collect();
    loop {
        if shared.shutting_down() {
            return;
        }
        let now = Instant::now();
        for (i, s) in seen.iter_mut().enumerate() {
            let (counters, sign) = (shared.counters(i), shared.sign(i));
            let polls = counters.tasks_polled.load(Relaxed);
            let task = sign.task.load(Relaxed);
            if task != 0 && polls == s.polls && task == s.task {
                let ran = now - s.since;
                if ran >= threshold && !s.reported {
                    s.reported = true;
                    let loc = sign.location.load(Relaxed);
                    // SAFETY: the worker stores only `&'static Location`s there (or null).
                    let loc = unsafe { loc.as_ref() };
                    let id = Id::from_u64(task);
                    let name = id.and_then(|id| shared.task_name(id));
                    tracing::warn!(
                        target: "pinwheel::watchdog",
                        task_id = task,
                        task_name = name.as_deref().unwrap_or("-"),
                        spawned_at = %loc.map_or_else(|| "?".to_owned(), |l| l.to_string()),
                        worker = i,
                        thread = %format!("{thread_prefix}-{i}"),
                        ran_ms = ran.as_millis() as u64,
                        threshold_ms = threshold.as_millis() as u64,
                        "a task poll has run longer than the long-poll threshold, blocking its worker thread; move blocking work to spawn_blocking or split it with yield_now"
                    );
                    // Counted once the warning is out: whoever sees the count can find it.
                    single_writer_add(&counters.long_polls, 1);
                }
            } else {
                s.polls = polls;
                s.task = task;
                s.since = now;
                s.reported = false;
            }

            let turns = counters.loop_turns.load(Relaxed);
            let depth = shared.queue_depth(i);
            if turns == s.turns && depth > 0 {
                if now - s.turn_since >= STALL_AFTER && !s.stall_reported {
                    s.stall_reported = true;
                    tracing::warn!(
                        target: "pinwheel::watchdog",
                        worker = i,
                        thread = %format!("{thread_prefix}-{i}"),
                        queued = depth,
                        stalled_ms = (now - s.turn_since).as_millis() as u64,
                        "a worker made no loop turn for a second while tasks wait for it; waking another worker to take what it can"
                    );
                    single_writer_add(&counters.stalls, 1);
                    shared.notify_work();
                }
            } else {
                s.turns = turns;
                s.turn_since = now;
                s.stall_reported = false;
            }
        }
        shared
            .bell()
            .wait(shared.workers(), || shared.shutting_down(), period);
    }
}

#[cfg(all(test, loom))]
#[path = "loom_models/watchdog.rs"]
mod tests_loom;
