//! Workers, run queues, stealing, parking and thread masks.
//!
//! Each worker has:
//! - its lanes (`lanes.rs`), one per scheduling class: a work-stealing deque
//!   (`crossbeam_deque::Worker`, FIFO) for tasks whose mask names every worker, from which idle
//!   workers steal, and a pinned queue only it pops, for tasks whose mask leaves other workers
//!   out (`spawn_local`, `spawn_on`); Normal's lane has the LIFO slot in front;
//! - an inbox ([`inbox::Inbox`]) through which other threads hand it pinned tasks;
//! - a parker.
//!
//! A global injector takes full-mask tasks spawned or woken off the workers. Routing
//! (`route.rs`, one function for every spawn and wake) decides which of these queues a task
//! goes to, and that is what guarantees that a task is only polled on a thread in its mask.

pub(crate) mod context;
mod current;
mod idle;
pub(crate) mod inbox;
mod lanes;
mod lifo;
mod park;
pub(crate) mod route;
pub(crate) mod timers;
mod worker;

#[cfg(all(test, loom))]
#[path = "../loom_models/scheduler.rs"]
mod tests_loom;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};

use crossbeam_deque::{Injector, Stealer};

use crate::task::mask::ThreadMask;
pub use context::current_worker;
pub(crate) use context::{request_defer, with_polled_task, with_worker};
pub(crate) use current::CurrentWorker;
pub(crate) use lanes::WorkerDeques;
pub(crate) use worker::WorkerContext;
#[cfg(feature = "tokio-compat")]
pub(crate) use worker::tokio_context::TokioContexts;

use crate::loom::{Mutex, lock};
use crate::metrics::WorkerCounters;
use crate::task::LocalOwnedTasks;
pub(crate) use crate::task::OwnedTasks;
use crate::task::{
    ByClass, Class, FLAG_LOCAL, FLAG_NAMED, FLAG_STEALABLE, Id, JoinHandle, NewTask, Notified,
    RawTask, Schedule, TaskMeta, new_task,
};
use idle::Idle;
use inbox::Inbox;
use lifo::LifoSlot;
use park::IoParker;

/// How many tasks a worker polls from its own queues before it looks at its inbox and
/// the global injector again. A task that wakes itself goes to the back of its queue, so within
/// one such turn every other queued task runs; the inbox and the injector are looked at
/// every 64 polls, so a busy worker cannot starve them either. 64 is close to tokio's
/// `global_queue_interval` (61) and small enough that a remote wake waits at most 64 polls.
pub(crate) const BUDGET: usize = 64;

/// What all threads of one runtime share.
pub(crate) struct Shared {
    pub(crate) workers: Box<[Arc<WorkerShared>]>,
    injector: Injector<Notified>,
    inject_inflight: AtomicUsize,
    inject_closed: AtomicBool,
    pub(crate) shutdown: AtomicBool,
    /// Tasks cancelled by the shutdown (for its report).
    pub(crate) shutdown_cancelled: std::sync::atomic::AtomicU64,
    pub(crate) idle: Idle,
    pub(crate) owned: OwnedTasks,
    pub(crate) all: ThreadMask,
    next_home: AtomicUsize,
    pub(crate) clock: timers::Clock,
    /// The names of live named tasks (only those: an unnamed spawn never touches this).
    names: Mutex<std::collections::HashMap<Id, Arc<str>>>,
    /// Wakes the watchdog when a worker wakes up after all of them slept.
    pub(crate) watchdog: crate::watchdog::WatchdogBell,
    /// The threads of `spawn_blocking`.
    pub(crate) blocking: crate::blocking::BlockingPool,
    /// How many times a worker out of work after a poll that delivered several events yields
    /// its CPU and polls its driver again before it sleeps (`Builder::spin_before_park`).
    pub(crate) park_spins: u32,
    /// Task profiling: its mode, the slot registry, and whether wakes are stamped.
    pub(crate) profiler: crate::profile::Profiler,
    /// The worker of a current-thread runtime (set once by the builder); empty for a
    /// multi-thread runtime, whose workers have threads of their own.
    pub(crate) current: std::sync::OnceLock<current::CurrentWorker>,
    /// With `Builder::tokio_context(true)`: the workers' tokio contexts (set before the
    /// workers start; unset, every worker runs without one).
    #[cfg(feature = "tokio-compat")]
    pub(crate) tokio: std::sync::OnceLock<TokioContexts>,
}

/// What one worker shares with the other threads.
/// How many more live bound tasks than the least bound worker a worker may have and still
/// bind a task registering its first socket there (see [`Shared::least_bound`]).
const BIND_SLACK: u64 = 1;

pub(crate) struct WorkerShared {
    lifo: LifoSlot,
    inbox: Inbox<Notified>,
    parker: IoParker,
    /// The stealing ends of its lanes' deques.
    stealers: ByClass<Stealer<Notified>>,
    pub(crate) counters: WorkerCounters,
    /// The worker's `spawn_local` tasks (changed by the worker only).
    owned_local: LocalOwnedTasks,
    /// What the worker is polling, and whether it sleeps, for the watchdog.
    pub(crate) sign: crate::watchdog::CurrentPoll,
    /// Timer operations other threads ask of this worker's wheel (its wait queue).
    timer_inbox: Inbox<timers::TimerOp>,
    /// The runtime's time base, to turn deadlines into ticks of this worker's wheel.
    pub(crate) clock: timers::Clock,
    /// The worker's profile table and loop health, written by the worker.
    pub(crate) profile: crate::profile::WorkerProfile,
}

impl WorkerShared {
    /// The I/O driver of this worker, to register sockets with.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn io(&self) -> &pinwheel_io_driver::Handle {
        self.parker.bell()
    }

    /// Wakes this worker if it sleeps (or makes its next sleep return at once).
    pub(crate) fn unpark(&self) {
        self.parker.unpark();
    }

    /// Asks this worker to do `op` on its wheel; wakes it if it sleeps. A worker that has shut
    /// down refuses it: its wheel is gone, so there is nothing left to do.
    fn push_timer_op(&self, op: timers::TimerOp) {
        // The caller's reference keeps this worker alive past the push (the wake-after-unlock
        // rule, on `Inbox`).
        if let Ok(Some(())) = self.timer_inbox.push(op, |_| ()) {
            self.parker.unpark();
        }
    }
}

impl Shared {
    pub(crate) fn new(
        stealers: Vec<ByClass<Stealer<Notified>>>,
        io: Vec<pinwheel_io_driver::Handle>,
        clock: timers::Clock,
        blocking: crate::blocking::BlockingPool,
        park_spins: u32,
        profiling: crate::profile::Mode,
    ) -> Shared {
        let n = stealers.len();
        Shared {
            workers: stealers
                .into_iter()
                .zip(io)
                .map(|(stealers, io)| {
                    Arc::new(WorkerShared {
                        lifo: LifoSlot::new(),
                        inbox: Inbox::new(),
                        parker: IoParker::new(io),
                        stealers,
                        counters: WorkerCounters::default(),
                        owned_local: LocalOwnedTasks::default(),
                        sign: Default::default(),
                        timer_inbox: Inbox::new(),
                        clock: clock.clone(),
                        profile: Default::default(),
                    })
                })
                .collect(),
            injector: Injector::new(),
            inject_inflight: AtomicUsize::new(0),
            inject_closed: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            shutdown_cancelled: std::sync::atomic::AtomicU64::new(0),
            idle: Idle::new(n),
            owned: OwnedTasks::new(n),
            all: ThreadMask::first(n),
            next_home: AtomicUsize::new(0),
            clock,
            names: Mutex::new(std::collections::HashMap::new()),
            watchdog: crate::watchdog::WatchdogBell::new(),
            blocking,
            park_spins,
            profiler: crate::profile::Profiler::new(profiling),
            current: std::sync::OnceLock::new(),
            #[cfg(feature = "tokio-compat")]
            tokio: std::sync::OnceLock::new(),
        }
    }

    /// Tasks queued for worker `i` now, but those in its pinned queues (which only it sees).
    fn queued_elsewhere(&self, i: usize) -> u64 {
        let w = &self.workers[i];
        let deques: usize = w.stealers.iter().map(|(_, s)| s.len()).sum();
        (deques + w.inbox.len() + usize::from(w.lifo.is_occupied())) as u64
    }

    /// Tasks queued for worker `i` now: its deque, LIFO slot, remote and pinned queues.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn queue_depth(&self, i: usize) -> u64 {
        let c = &self.workers[i].counters;
        let pinned: u64 = c.pinned_depth.iter().map(|(_, d)| d.load(Relaxed)).sum();
        self.queued_elsewhere(i) + pinned
    }

    /// Every worker's counters, the queue depths measured now, and the live task count.
    pub(crate) fn metrics(&self) -> crate::metrics::RuntimeMetrics {
        let workers: Vec<_> = (0..self.workers.len())
            .map(|i| {
                let w = &self.workers[i];
                let mut m = w.counters.snapshot(self.queued_elsewhere(i));
                m.avg_loop_nanos = w.profile.avg_loop_nanos.load(Relaxed);
                m.urgent_queued += w.stealers[Class::Urgent].len() as u64;
                m.bulk_queued += w.stealers[Class::Bulk].len() as u64;
                m.heavy_queued += w.stealers[Class::Heavy].len() as u64;
                m.stolen_nanos = w.profile.stolen_nanos.load(Relaxed);
                m.io_sources = w.io().sources() as u64;
                m
            })
            .collect();
        let local: u64 = workers.iter().map(|w| w.local_tasks).sum();
        crate::metrics::RuntimeMetrics::new(
            workers,
            self.owned.len() as u64 + local,
            self.blocking.load(),
        )
    }

    /// The task profile: every worker's table, summed.
    pub(crate) fn profile(&self) -> crate::profile::Profile {
        self.profiler
            .profile(self.workers.iter().map(|w| &w.profile))
    }

    /// The name of a live task, if it has one.
    pub(crate) fn task_name(&self, id: Id) -> Option<Arc<str>> {
        lock(&self.names).get(&id).cloned()
    }

    /// Every live task: HAProxy's `show tasks`.
    pub(crate) fn dump_tasks(&self) -> crate::task::TaskDump {
        let now = std::time::Instant::now();
        let mut raw = Vec::new();
        self.owned.for_each(|t| raw.push(info_of(self, t, now)));
        for w in self.workers.iter() {
            w.owned_local.for_each(|t| raw.push(info_of(self, t, now)));
        }
        raw.sort_by_key(|t| t.id.as_u64());
        crate::task::TaskDump {
            tasks: raw,
            taken_at: now,
        }
    }

    pub(crate) fn worker_threads(&self) -> usize {
        self.workers.len()
    }

    /// The worker a stealable task registering its first socket on worker `here` is bound to
    /// (I/O affinity): `here`, unless it has more than `BIND_SLACK` live bound tasks over the
    /// least bound worker, which is chosen then. So sessions spawned by a plain accept loop
    /// spread over the workers as `net::serve`'s do, wherever their tasks were first polled.
    pub(crate) fn least_bound(&self, here: usize) -> usize {
        let bound = |i: usize| self.workers[i].counters.bound_tasks.load(Relaxed);
        let mine = bound(here);
        let (least, fewest) = (0..self.workers.len())
            .map(|i| (i, bound(i)))
            .min_by_key(|&(_, n)| n)
            .expect("a runtime has a worker");
        if mine <= fewest + BIND_SLACK {
            here
        } else {
            least
        }
    }

    /// Spawns a task with `mask` (already checked to name a worker), from any thread.
    pub(crate) fn spawn<F>(
        self: &Arc<Self>,
        future: F,
        mask: ThreadMask,
        meta: TaskMeta,
    ) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
    {
        route::with_worker_of(self, |here| self.spawn_at(here, future, mask, false, meta))
    }

    /// Spawns a task with `mask` (already checked to name a worker) from a thread whose worker
    /// of this runtime is `here` (as [`route::with_worker_of`] gives it). `local` marks a
    /// `spawn_local` future, which that worker owns (so `here` must be a worker).
    #[inline(always)]
    pub(crate) fn spawn_at<F>(
        self: &Arc<Self>,
        here: Option<&WorkerContext>,
        future: F,
        mask: ThreadMask,
        local: bool,
        meta: TaskMeta,
    ) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
    {
        let mask = mask & self.all;
        debug_assert!(!mask.is_empty());
        let local = if local { here } else { None };
        let (home, flags) = if let Some(w) = local {
            (w.index, FLAG_LOCAL)
        } else if mask == self.all {
            (here.map_or(0, |w| w.index), FLAG_STEALABLE)
        } else {
            match here {
                Some(w) if mask.contains(w.index) => (w.index, 0),
                _ => {
                    let k = self.next_home.fetch_add(1, Relaxed) % mask.count() as usize;
                    (mask.nth(k as u32), 0)
                }
            }
        };
        let flags = if meta.name.is_some() {
            flags | FLAG_NAMED
        } else {
            flags
        };
        let id = Id::next();
        let NewTask {
            owned,
            notified,
            join,
        } = new_task(future, self.clone(), id, (mask, home as u32, flags), &meta);
        if let Some(name) = meta.name {
            // Before the task can run (and so complete and be released).
            lock(&self.names).insert(id, name);
        }
        let inserted = match local {
            Some(w) => w.insert_local(owned),
            None => self.owned.insert(owned),
        };
        if inserted {
            self.profiler.on_spawn(notified.header());
            route::queue(self, here, notified, false);
        } else {
            // The runtime is shutting down: the future is dropped here, and the JoinHandle
            // resolves to a cancellation.
            drop(notified);
            self.count_cancelled(1);
            // SAFETY: the owned-list reference was not taken by a list; it is ours to give up.
            unsafe { owned.shutdown() };
        }
        join
    }

    /// Hands a task to worker `index` through its inbox, waking it if needed.
    pub(crate) fn push_remote(&self, index: usize, task: Notified) {
        let worker = &self.workers[index];
        // A refused push means that worker has shut down; the task was cancelled (or will be)
        // by the shutdown, so dropping this reference loses nothing.
        // On the first item, a reference to the worker taken under the lock: once it is
        // released the worker may run the task, and the task's end may drop the last
        // reference to this runtime (the wake-after-unlock rule, on `Inbox`).
        if let Ok(Some(worker)) = worker.inbox.push(task, |_| worker.clone()) {
            worker.parker.unpark();
        }
    }

    /// Queues a stealable task in the global injector, waking a worker to take it.
    fn push_inject(&self, task: Notified) {
        self.inject_inflight.fetch_add(1, SeqCst);
        if self.inject_closed.load(SeqCst) {
            self.inject_inflight.fetch_sub(1, SeqCst);
            drop(task);
            return;
        }
        self.injector.push(task);
        self.notify_work();
        self.inject_inflight.fetch_sub(1, SeqCst);
    }

    /// Wakes one sleeping worker to look for stealable work, unless one is already searching.
    pub(crate) fn notify_work(&self) {
        if let Some(i) = self.idle.worker_to_notify() {
            self.workers[i].parker.unpark();
        }
    }

    /// Tells every worker to stop.
    pub(crate) fn begin_shutdown(&self) {
        self.shutdown.store(true, SeqCst);
        for w in self.workers.iter() {
            w.parker.unpark();
        }
        self.watchdog.ring();
    }

    /// Cancels what the workers left: every live `Send` task, and what sits in the injector.
    /// Called once the workers have stopped (or the shutdown timeout passed).
    pub(crate) fn finish_shutdown(&self) {
        for task in self.owned.close() {
            self.count_cancelled(1);
            // SAFETY: `close` handed us the list's reference to each task.
            unsafe { task.shutdown() };
        }
        self.inject_closed.store(true, SeqCst);
        while self.inject_inflight.load(SeqCst) != 0 {
            std::thread::yield_now();
        }
        loop {
            match self.injector.steal() {
                crossbeam_deque::Steal::Success(task) => drop(task),
                crossbeam_deque::Steal::Retry => continue,
                crossbeam_deque::Steal::Empty => break,
            }
        }
    }

    /// Cancels the restricted `Send` tasks homed on worker `index`, on that worker's thread.
    pub(crate) fn shutdown_homed(&self, index: usize) {
        for task in self.owned.take_where(|t| {
            t.header().flags & FLAG_STEALABLE == 0 && t.header().home as usize == index
        }) {
            self.count_cancelled(1);
            // SAFETY: `take_where` handed us the list's reference.
            unsafe { task.shutdown() };
        }
    }

    /// Counts tasks cancelled by the shutdown, for its report.
    pub(crate) fn count_cancelled(&self, n: u64) {
        self.shutdown_cancelled.fetch_add(n, Relaxed);
    }
}

/// What the task dump shows of `task`.
fn info_of(shared: &Shared, task: RawTask, now: std::time::Instant) -> crate::task::TaskInfo {
    let h = task.header();
    let name = if h.flags & FLAG_NAMED != 0 {
        shared.task_name(h.id)
    } else {
        None
    };
    crate::task::TaskInfo::of(task, name, |millis| {
        now.saturating_duration_since(shared.clock.instant_of_millis(millis, now))
    })
}

impl crate::watchdog::Watched for Shared {
    fn workers(&self) -> usize {
        self.workers.len()
    }

    fn counters(&self, i: usize) -> &WorkerCounters {
        &self.workers[i].counters
    }

    fn sign(&self, i: usize) -> &crate::watchdog::CurrentPoll {
        &self.workers[i].sign
    }

    fn queue_depth(&self, i: usize) -> u64 {
        Shared::queue_depth(self, i)
    }

    fn task_name(&self, id: Id) -> Option<Arc<str>> {
        Shared::task_name(self, id)
    }

    fn notify_work(&self) {
        Shared::notify_work(self);
    }

    fn shutting_down(&self) -> bool {
        self.shutdown.load(SeqCst)
    }

    fn bell(&self) -> &crate::watchdog::WatchdogBell {
        &self.watchdog
    }
}

impl Schedule for Arc<Shared> {
    unsafe fn schedule(this: *const Self, task: Notified, yielded: bool) {
        // SAFETY: per the trait, `this` is alive until `task` is queued, and `route::queue`
        // reads it no longer (it holds its own reference where it needs one after).
        let shared = unsafe { &*this };
        crate::profile::on_wake(task.header());
        route::with_worker_of(shared, |here| route::queue(shared, here, task, yielded));
    }

    fn release(&self, task: RawTask) -> bool {
        if let Some(home) = task.header().bound_home() {
            self.workers[home]
                .counters
                .bound_tasks
                .fetch_sub(1, Relaxed);
        }
        if task.header().flags & FLAG_NAMED != 0 {
            lock(&self.names).remove(&task.header().id);
        }
        if task.header().flags & FLAG_LOCAL != 0 {
            // A local task completes on its own worker thread, whose list holds it.
            with_worker(|w| w.is_some_and(|w| w.remove_local(task)))
        } else {
            self.owned.remove(task)
        }
    }

    fn unpublish(task: std::ptr::NonNull<crate::task::Header>) {
        with_worker(|w| {
            if let Some(w) = w {
                w.unpublish(task.as_ptr());
            }
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    #[test]
    fn idle_notifies_one_sleeper_and_none_while_it_searches() {
        let idle = super::Idle::new(4);
        for i in 0..4 {
            idle.sleep(i);
        }
        let first = idle.worker_to_notify();
        assert!(first.is_some());
        // The notified worker counts as searching: further work wakes nobody else yet.
        assert_eq!(idle.worker_to_notify(), None);
        assert_eq!(idle.num_sleeping(), 3);
        // It finds work as the last searcher: now one more may be woken.
        assert!(idle.stop_searching());
        assert!(idle.worker_to_notify().is_some());
        assert_eq!(idle.num_sleeping(), 2);
    }
}
