//! The worker thread: its queues, its loop, and how it parks and shuts down.

use std::cell::{Cell, RefCell};
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::Ordering::*;

use crossbeam_deque::{Steal, Worker};

use super::lanes::{Lane, WorkerDeques};
use super::{BUDGET, Shared, WorkerShared, route};
use crate::metrics::single_writer_add;
use crate::task::{ByClass, Class, Notified, RawTask};

/// Everything a worker keeps on its own thread.
pub(crate) struct WorkerContext {
    pub(crate) index: usize,
    pub(crate) shared: Arc<Shared>,
    /// `shared.workers[index]`, held directly: the hot path reaches its counters, LIFO slot
    /// and inbox through one pointer instead of an index checked against the workers' count.
    pub(super) me: Arc<WorkerShared>,
    /// Its run queues, one lane per class (`lanes.rs`).
    pub(super) lanes: ByClass<Lane>,
    searching: Cell<bool>,
    rng: Cell<u32>,
    /// This worker's wait queue: its wheel and the clock reading of the loop turn.
    pub(super) timers: super::timers::TimerContext,
    /// This worker's `mio::Poll`: its sockets' readiness, and how it sleeps.
    driver: RefCell<pinwheel_io_driver::Driver>,
    /// Tasks polled since the driver was last polled.
    pub(super) since_io: Cell<usize>,
    /// Tasks polled from its own queues since the injector was last looked at.
    since_inject: Cell<usize>,
    /// The driver's last poll that found events delivered several at once (sockets of several
    /// connections ready together: a loaded worker), and no spin found nothing since: the
    /// worker may yield and repoll before sleeping (`Shared::park_spins`).
    io_active: Cell<bool>,
    /// This worker's side of task profiling and loop health.
    prof: crate::profile::LocalProfile,
    /// The header of the task this worker is running (null between tasks): what
    /// `task::set_class` and `task::current_class` act on. Set around each `run` by
    /// [`run_task`](Self::run_task), and cleared by the task's `dealloc` if the task is freed
    /// inside that `run` (the polled-task rule, on `Schedule::unpublish`): whenever code that
    /// may read it runs, non-null is a live task.
    polled: Cell<*const crate::task::Header>,
    /// Tasks that yielded with [`yield_now`](crate::yield_now) since the driver was last
    /// polled: queued at the start of the next loop turn, after a look at the poller, so a
    /// task that yields while it waits for an event sees the event before it is polled again
    /// (tokio defers yielded tasks too). Other self-wakes (a work-list handler taking turns, a
    /// spent cooperative budget) go to the back of the queues at once, as before.
    pub(super) deferred: RefCell<Vec<Notified>>,
    /// A current-thread runtime's worker: no LIFO slot, tasks run in the order queued.
    pub(super) fifo: bool,
    /// With a tokio context (feature `tokio-compat`): how the worker's sleep in tokio's driver
    /// is ended from its own thread (`tokio_context.rs`).
    #[cfg(feature = "tokio-compat")]
    tokio_park: tokio_context::ParkSignal,
}

#[cfg(feature = "tokio-compat")]
#[path = "tokio_context.rs"]
pub(crate) mod tokio_context;

/// A busy worker polls its I/O driver without blocking at the start of a turn once this many
/// task polls ran since its last look, so its sockets are not starved by a long run queue; an
/// idle worker polls it when it parks. 16 (tokio's `event_interval` is 61; this was 64): with
/// 64, a proxy worker at 2 threads ran bursts twice as long between sleeps as HAProxy's
/// threads (`perf sched timehist`: 0.16 - 0.19 ms on average, 150 over 1 ms in 2 s; HAProxy
/// 0.09 ms, 55) and the load generator sharing its CPU waited: p99 4.5 ms against HAProxy's
/// 2.3; with 16 the bursts match HAProxy's (0.09 ms, 40) and p99 is 2.5 - 3.6 ms
/// (BENCHMARKS.md, issue 28 continued).
pub(super) const EVENT_INTERVAL: usize = 16;

/// A poll delivering at least this many events turns on the spin before parking.
const SPIN_EVENTS: usize = 2;

/// What a parking worker does after registering as a sleeper ([`WorkerContext::plan_park`]).
pub(super) struct ParkPlan {
    /// `Some(timeout)`: sleep for at most `timeout` (`None`: until woken); `None`: do not
    /// sleep, work is there.
    pub(super) sleep: Option<Option<std::time::Duration>>,
    /// Stealable work waits on another worker.
    elsewhere: bool,
}

impl WorkerContext {
    /// The body of worker thread `index`.
    pub(crate) fn run_thread(
        shared: Arc<Shared>,
        index: usize,
        deques: WorkerDeques,
        driver: pinwheel_io_driver::Driver,
    ) {
        let w = WorkerContext::new(shared, index, deques, driver);
        let _worker = super::context::enter_worker(&w);
        #[cfg(feature = "tokio-compat")]
        if let Some(contexts) = w.shared.tokio.get() {
            w.run_in_tokio(contexts);
            return;
        }
        w.run();
        w.stop();
    }

    /// The context of worker `index`, on the thread that will run it.
    pub(crate) fn new(
        shared: Arc<Shared>,
        index: usize,
        deques: WorkerDeques,
        driver: pinwheel_io_driver::Driver,
    ) -> WorkerContext {
        WorkerContext {
            index,
            me: shared.workers[index].clone(),
            shared,
            lanes: deques.into_lanes(),
            searching: Cell::new(false),
            rng: Cell::new((0x9E37_79B9 ^ (index as u32).wrapping_mul(0x85EB_CA6B)) | 1),
            timers: super::timers::TimerContext::new(),
            driver: RefCell::new(driver),
            since_io: Cell::new(0),
            since_inject: Cell::new(0),
            io_active: Cell::new(false),
            prof: crate::profile::LocalProfile::new(index),
            polled: Cell::new(ptr::null()),
            deferred: RefCell::new(Vec::new()),
            fifo: false,
            #[cfg(feature = "tokio-compat")]
            tokio_park: tokio_context::ParkSignal::default(),
        }
    }

    /// The context of a current-thread runtime's worker (see `CurrentWorker`).
    pub(crate) fn new_current(
        shared: Arc<Shared>,
        deques: WorkerDeques,
        driver: pinwheel_io_driver::Driver,
    ) -> WorkerContext {
        WorkerContext {
            fifo: true,
            ..WorkerContext::new(shared, 0, deques, driver)
        }
    }

    /// The worker leaves its loop for good: it stops profiling and drops every task it is
    /// responsible for, on this thread (inside the worker guard of its thread).
    pub(crate) fn stop(&self) {
        self.prof
            .stop(&self.shared.profiler, &self.worker_shared().profile);
        self.shutdown();
    }

    /// Runs `future` to completion on this thread, running the worker's tasks between its
    /// polls: the loop of a current-thread runtime, whose only worker is the thread in
    /// `block_on`. The future is polled when its waker was woken (which also wakes the worker
    /// if it sleeps), before the worker's next turn.
    pub(crate) fn run_until<F: std::future::Future>(&self, future: F) -> F::Output {
        use std::sync::atomic::AtomicBool;
        use std::task::{Context, Poll, Wake, Waker};

        /// The block_on future's waker: marks it woken and wakes the worker.
        struct FutureWaker {
            woken: AtomicBool,
            worker: Arc<WorkerShared>,
        }
        impl Wake for FutureWaker {
            fn wake(self: Arc<Self>) {
                self.wake_by_ref();
            }
            fn wake_by_ref(self: &Arc<Self>) {
                self.woken.store(true, SeqCst);
                self.worker.unpark();
            }
        }

        let _worker = super::context::enter_worker(self);
        let signal = Arc::new(FutureWaker {
            woken: AtomicBool::new(true),
            worker: self.me.clone(),
        });
        let waker = Waker::from(signal.clone());
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if signal.woken.swap(false, SeqCst) {
                // With a cooperative budget, as a task's poll (the budget rule, on
                // `task::coop`); a `yield_now` in it defers no task.
                let poll = crate::task::coop::with_budget(|| future.as_mut().poll(&mut cx));
                super::context::clear_defer_request();
                if let Poll::Ready(out) = poll {
                    return out;
                }
            }
            if self.turn() > 0 || signal.woken.load(SeqCst) {
                continue;
            }
            if self.spin_before_park() {
                continue;
            }
            self.prof.before_park(&self.worker_shared().profile);
            self.park();
        }
    }

    /// Adds a `spawn_local` task to this worker's list; `false` once it is closed.
    pub(crate) fn insert_local(&self, task: RawTask) -> bool {
        let inserted = self.owned_local().insert(task);
        self.publish_local_tasks();
        inserted
    }

    /// Removes a completed `spawn_local` task; `true` when it was there.
    pub(crate) fn remove_local(&self, task: RawTask) -> bool {
        let removed = self.owned_local().remove(task);
        self.publish_local_tasks();
        removed
    }

    fn publish_local_tasks(&self) {
        let c = self.counters();
        c.local_tasks
            .store(self.owned_local().len() as u64, Relaxed);
    }

    /// This worker's `spawn_local` tasks.
    fn owned_local(&self) -> &crate::task::LocalOwnedTasks {
        &self.worker_shared().owned_local
    }

    pub(crate) fn counters(&self) -> &crate::metrics::WorkerCounters {
        &self.me.counters
    }

    /// What this worker shares with other threads.
    pub(crate) fn worker_shared(&self) -> &Arc<WorkerShared> {
        &self.me
    }

    /// Reads the clock, applies the timer operations other threads sent, and wakes the tasks
    /// whose timers are due: once per loop turn.
    fn process_timers(&self) {
        let inbox = &self.worker_shared().timer_inbox;
        let report = self.timers.turn(&self.shared.clock, |ops| {
            inbox.drain_into(ops);
        });
        let c = self.counters();
        c.timers_armed.store(report.armed, Relaxed);
        c.timers_cancelled.store(report.cancelled, Relaxed);
        if report.fired > 0 {
            single_writer_add(&c.timers_fired, report.fired as u64);
        }
    }

    /// Polls the I/O driver (without blocking for a zero timeout) and wakes what is ready.
    /// A look without waiting is skipped while no source is registered with the driver: it
    /// could find nothing, and it is a system call (a loop of yielding tasks on a worker
    /// without sockets made one per turn, 3,900 per iteration of `yield_many`).
    pub(super) fn poll_io(&self, timeout: Option<std::time::Duration>) {
        self.since_io.set(0);
        let n = match self.driver.try_borrow_mut() {
            Ok(driver) if timeout == Some(std::time::Duration::ZERO) && !driver.has_sources() => {
                return;
            }
            Ok(mut driver) => driver.poll(timeout),
            Err(_) => return,
        };
        self.count_io(n);
    }

    /// Sleeps in the I/O driver through the worker's parker.
    fn park_io(&self, timeout: Option<std::time::Duration>) {
        self.since_io.set(0);
        let n = match self.driver.try_borrow_mut() {
            Ok(mut driver) => self.worker_shared().parker.park(&mut *driver, timeout),
            Err(_) => return,
        };
        self.count_io(n);
    }

    pub(super) fn count_io(&self, n: std::io::Result<usize>) {
        match n {
            Ok(n) if n > 0 => {
                // One event at a time is a lone connection in ping-pong: its next request
                // cannot come before the peer has read this answer, so spinning would only
                // delay the sleep (and the peer's wake-up). Several at once is load.
                self.io_active.set(n >= SPIN_EVENTS);
                single_writer_add(&self.counters().io_events, n as u64);
            }
            Ok(_) => {}
            // A failing poller cannot be recovered here; say so, and go on serving tasks and
            // timers (the next poll may succeed).
            Err(e) => eprintln!(
                "pinwheel: worker {}: polling its I/O driver failed: {e}",
                self.index
            ),
        }
    }

    /// The clock as this worker read it at the start of its current loop turn (see
    /// `time::Instant::recent`).
    #[inline]
    pub(crate) fn turn_now(&self) -> std::time::Instant {
        self.timers.now.get()
    }

    /// How long the worker may sleep before a timer is due; `None` when no timer is pending.
    pub(super) fn timer_timeout(&self) -> Option<std::time::Duration> {
        self.timers.timeout(&self.shared.clock)
    }

    /// This worker is about to block in `task::block_in_place`: its task to run next (the LIFO
    /// slot) goes to the back of its deque, and an idle worker is woken to steal, so the
    /// stealable work it holds moves on while it blocks. Its pinned tasks, timers and sockets
    /// wait for it (only it may run them).
    pub(crate) fn lend_work(&self) {
        if let Some(task) = self.lifo().take() {
            self.lanes[Class::Normal].stealable.push(task);
        }
        self.shared.notify_work();
    }

    /// Holds a task that yielded with `yield_now` for the next turn's look at the poller.
    #[inline]
    pub(super) fn defer(&self, task: Notified) {
        self.deferred.borrow_mut().push(task);
    }

    fn run(&self) {
        loop {
            if self.shared.shutdown.load(Acquire) {
                return;
            }
            if self.turn() > 0 {
                continue;
            }
            if self.spin_before_park() {
                continue;
            }
            self.prof.before_park(&self.worker_shared().profile);
            self.park();
        }
    }

    /// One turn of the loop: timers, I/O when due, the tasks that yielded last turn, then up
    /// to `BUDGET` polls from its own queues, else one task found elsewhere. Returns how many
    /// task polls ran (the turn is then over); 0 when the worker found no work.
    #[inline(always)]
    pub(super) fn turn(&self) -> usize {
        let shared = &*self.shared;
        {
            single_writer_add(&self.counters().loop_turns, 1);
            self.process_timers();
            self.prof.turn_starts(
                self.timers.now.get(),
                &shared.profiler,
                &self.worker_shared().profile,
            );
            let deferred = !self.deferred.borrow().is_empty();
            // A yielded task waits for a look at the poller, one turn at most.
            if self.since_io.get() >= EVENT_INTERVAL || (deferred && self.since_io.get() > 0) {
                self.poll_io(Some(std::time::Duration::ZERO));
            }
            if deferred {
                self.wake_deferred();
            }
            let ran = self.run_batch();
            if ran > 0 {
                return ran;
            }
            if let Some(task) = self.find_work() {
                self.run_task(task);
                return 1;
            }
            0
        }
    }

    /// Queues the tasks that yielded last turn, at the back of their queues.
    fn wake_deferred(&self) {
        // Taken out whole (queueing never defers, so nothing is added meanwhile), then given
        // back empty, to keep its capacity.
        let mut batch = std::mem::take(&mut *self.deferred.borrow_mut());
        let mut stealable = false;
        for task in batch.drain(..) {
            stealable |= route::place(self, task, true);
        }
        if stealable {
            // One notification for the whole batch.
            self.shared.notify_work();
        }
        *self.deferred.borrow_mut() = batch;
    }

    /// Out of work right after serving I/O: yield the CPU and poll the driver again without
    /// blocking, up to `park_spins` times; `true` when that found work. A spin that finds
    /// nothing turns the policy off until the driver delivers events again, so an idle worker
    /// sleeps at once (see `Builder::spin_before_park`).
    pub(super) fn spin_before_park(&self) -> bool {
        if self.shared.park_spins == 0 || !self.io_active.get() {
            return false;
        }
        for _ in 0..self.shared.park_spins {
            single_writer_add(&self.counters().park_spins, 1);
            std::thread::yield_now();
            self.poll_io(Some(std::time::Duration::ZERO));
            if self.has_own_work() {
                single_writer_add(&self.counters().park_spin_finds, 1);
                return true;
            }
        }
        self.io_active.set(false);
        false
    }

    /// Takes what other threads handed over, then polls up to `BUDGET` tasks from its own run
    /// queues, split between the classes that have work (see [`Class`]). Returns how many ran.
    fn run_batch(&self) -> usize {
        let inbox = &self.me.inbox;
        let normal = &self.lanes[Class::Normal].pinned;
        let n = inbox.drain_into(&mut normal.borrow_mut());
        if n > 0 {
            single_writer_add(&self.counters().remote_wakes, n as u64);
        }
        self.counters().pinned_depth[Class::Normal].store(normal.borrow().len() as u64, Relaxed);
        let ran = self.run_lanes();
        if ran >= BUDGET {
            single_writer_add(&self.counters().budget_exhaustions, 1);
        }
        // Still busy for `BUDGET` polls (in one turn, or over several short ones: tasks that
        // yield make a turn of one poll each): give tasks spawned from outside their turn too.
        let since = self.since_inject.get() + ran;
        if since >= BUDGET {
            self.since_inject.set(0);
            if let Some(task) = self.steal_injector() {
                self.run_task(task);
            }
        } else {
            self.since_inject.set(since);
        }
        ran
    }

    /// This worker's LIFO slot: the task most recently spawned or woken here, run next.
    pub(super) fn lifo(&self) -> &super::lifo::LifoSlot {
        &self.me.lifo
    }

    #[inline(always)]
    pub(super) fn run_task(&self, task: Notified) {
        if self.searching.get() {
            self.searching.set(false);
            if self.shared.idle.stop_searching() {
                // The last searcher found work: there may be more, let another worker look.
                self.shared.notify_work();
            }
        }
        debug_assert!(
            task.header().mask.contains(self.index),
            "pinwheel: a task was routed outside its thread mask"
        );
        single_writer_add(&self.counters().tasks_polled, 1);
        self.since_io.set(self.since_io.get() + 1);
        if self.prof.active() && !self.prof.count_poll(task.header()) {
            self.run_recorded(task);
            return;
        }
        let sign = self.publish_poll(task.header());
        // A full cooperative budget for this poll (the budget rule, on `task::coop`).
        crate::task::coop::start_poll();
        task.run();
        self.unpublish_poll(sign);
    }

    /// Runs `f` with the header of the task this worker is running, if any (`task::set_class`).
    pub(crate) fn with_polled<R>(&self, f: impl FnOnce(&crate::task::Header) -> R) -> Option<R> {
        let h = self.polled.get();
        // SAFETY: a published header is a live task's (the polled-task rule, on
        // `Schedule::unpublish`), and the borrow ends with `f`, a call made from inside that
        // task's `run` on this thread, before anything else can free it.
        (!h.is_null()).then(|| f(unsafe { &*h }))
    }

    /// The worker whose poller a socket registered by the task being polled here goes to,
    /// binding that task (a stealable one, not bound yet) to it: I/O affinity (see
    /// `route.rs`). A bound task's sockets go to its worker; an unbound stealable task binds
    /// to this worker unless this one already has more than `BIND_SLACK` bound tasks over the
    /// least bound worker, which it binds to instead (its next wake comes from that worker's
    /// poller, so it moves there without a hop). Any other task, or none (a socket made by a
    /// work-list handler), or a runtime of one worker (where every task runs on it anyway, and
    /// a current-thread runtime keeps tokio's order, every task in the one queue): this one.
    pub(crate) fn io_worker_for_polled(&self) -> usize {
        if self.shared.worker_threads() == 1 {
            return self.index;
        }
        self.with_polled(|h| {
            if let Some(home) = h.bound_home() {
                return home;
            }
            if h.flags & crate::task::FLAG_STEALABLE == 0 {
                return self.index;
            }
            let target = self.shared.least_bound(self.index);
            if h.adopt_io_home(target) {
                self.shared.workers[target]
                    .counters
                    .bound_tasks
                    .fetch_add(1, Relaxed);
            }
            target
        })
        .unwrap_or(self.index)
    }

    /// Takes a task that code of this worker's tokio context woke (or spawned) while the worker
    /// waits for it (feature `tokio-compat`): a woken stealable one not bound yet is bound to
    /// this worker (its tokio resources live here; a spawned one is left free to be stolen), the task is queued here as by the worker's own
    /// wake, and the wait ends. `Some(task)` back when this worker may not take it (a task
    /// restricted to other workers), for the caller to queue as from any other thread.
    #[cfg(feature = "tokio-compat")]
    pub(crate) fn take_tokio_wake(&self, task: Notified) -> Option<Notified> {
        let h = task.header();
        if h.flags & crate::task::FLAG_STEALABLE == 0 && !h.mask.contains(self.index) {
            return Some(task);
        }
        // A task spawned by tokio's code (never polled yet) is not bound: it may do CPU work.
        let woken = h.was_polled();
        if woken && self.shared.worker_threads() > 1 && h.adopt_io_home(self.index) {
            self.me.counters.bound_tasks.fetch_add(1, Relaxed);
        }
        self.wake_tokio_park();
        if route::place(self, task, false) {
            self.shared.notify_work();
        }
        None
    }

    /// The task at `task` is being freed: stop publishing it if it is the one running here
    /// (the polled-task rule).
    pub(crate) fn unpublish(&self, task: *const crate::task::Header) {
        if ptr::eq(self.polled.get(), task) {
            self.polled.set(ptr::null());
        }
    }

    /// Stamps the task's last poll and tells the watchdog what this worker polls; returns the
    /// sign to clear after the poll.
    #[inline]
    fn publish_poll(&self, h: &crate::task::Header) -> &crate::watchdog::CurrentPoll {
        self.polled.set(h);
        h.last_poll.store(self.timers.now_ms.get(), Relaxed);
        let sign = &self.worker_shared().sign;
        sign.location
            .store(ptr::from_ref(h.location).cast_mut(), Relaxed);
        sign.task.store(h.id.as_u64(), Relaxed);
        sign
    }

    /// Undoes [`publish_poll`](Self::publish_poll) once the task's `run` returned: no task is
    /// polled here any more.
    #[inline]
    fn unpublish_poll(&self, sign: &crate::watchdog::CurrentPoll) {
        self.polled.set(ptr::null());
        // A `yield_now` whose task did not return Pending (another branch of a `select!` was
        // ready) defers nothing later.
        super::context::clear_defer_request();
        sign.task.store(0, Relaxed);
    }

    /// Runs a task while profiling, recording more of its poll than the count
    /// [`LocalProfile::count_poll`](crate::profile::LocalProfile::count_poll) makes: its slot,
    /// its wake stamp, and (one poll in `CPU_SAMPLE`) its time.
    #[cold]
    #[inline(never)]
    fn run_recorded(&self, task: Notified) {
        let (sign, record) = {
            let h = task.header();
            let sign = self.publish_poll(h);
            let name = || {
                (h.flags & crate::task::FLAG_NAMED != 0)
                    .then(|| self.shared.task_name(h.id))
                    .flatten()
            };
            let record = self.prof.begin_poll(
                &self.shared.profiler,
                &self.worker_shared().profile,
                h,
                name,
            );
            (sign, record)
        };
        // The header's borrow ended above: `run` gives the queue's reference away (the borrow
        // rule, on `Header`).
        crate::task::coop::start_poll();
        task.run();
        self.prof.end_poll(record);
        self.unpublish_poll(sign);
    }

    fn steal_injector(&self) -> Option<Notified> {
        loop {
            let normal = &self.lanes[Class::Normal].stealable;
            let before = normal.len();
            match self.shared.injector.steal_batch_and_pop(normal) {
                Steal::Success(task) => {
                    let moved = normal.len().saturating_sub(before);
                    single_writer_add(&self.counters().remote_wakes, 1 + moved as u64);
                    return Some(task);
                }
                Steal::Empty => return None,
                Steal::Retry => continue,
            }
        }
    }

    fn next_rand(&self) -> u32 {
        crate::profile::xorshift(&self.rng)
    }

    /// Looks for work beyond its own run queues: the injector, then the other workers' deques.
    fn find_work(&self) -> Option<Notified> {
        if let Some(task) = self.steal_injector() {
            return Some(task);
        }
        let n = self.shared.worker_threads();
        if n == 1 {
            return None;
        }
        if !self.searching.get() {
            if !self.shared.idle.try_start_searching(n) {
                return None;
            }
            self.searching.set(true);
        }
        let start = self.next_rand() as usize % n;
        for attempt in 0..2 {
            let mut retry = false;
            for k in 0..n {
                let victim = (start + k) % n;
                if victim == self.index {
                    continue;
                }
                match self.steal_from(victim) {
                    Steal::Success(task) => return Some(task),
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            if !retry || attempt == 1 {
                break;
            }
        }
        self.steal_injector()
    }

    /// Steals from worker `victim`, class by class: Urgent, then Normal (its deque, then its
    /// LIFO slot), then Bulk, then one Heavy task, so a thief takes live work before heavy
    /// work. A batch goes to this worker's queue of the same class; the task returned runs
    /// now. A stolen task keeps its class (it is in its header).
    fn steal_from(&self, victim: usize) -> Steal<Notified> {
        let v = &self.shared.workers[victim];
        let mut retry = false;
        let mut took = |from: &crossbeam_deque::Stealer<Notified>, into: &Worker<Notified>| {
            let before = into.len();
            match from.steal_batch_and_pop(into) {
                Steal::Success(task) => {
                    let c = self.counters();
                    single_writer_add(&c.steal_operations, 1);
                    single_writer_add(&c.steals, 1 + (into.len() - before) as u64);
                    Some(task)
                }
                Steal::Retry => {
                    retry = true;
                    None
                }
                Steal::Empty => None,
            }
        };
        for class in [Class::Urgent, Class::Normal, Class::Bulk] {
            if let Some(task) = took(&v.stealers[class], &self.lanes[class].stealable) {
                return Steal::Success(task);
            }
        }
        // Its Normal deque is empty: take the task it was going to run next, which it may be
        // too busy (or blocked) to get to.
        if let Some(task) = v.lifo.take() {
            let c = self.counters();
            single_writer_add(&c.steal_operations, 1);
            single_writer_add(&c.steals, 1);
            return Steal::Success(task);
        }
        match v.stealers[Class::Heavy].steal() {
            Steal::Success(task) => {
                let c = self.counters();
                single_writer_add(&c.steal_operations, 1);
                single_writer_add(&c.steals, 1);
                Steal::Success(task)
            }
            Steal::Retry => Steal::Retry,
            Steal::Empty if retry => Steal::Retry,
            Steal::Empty => Steal::Empty,
        }
    }

    /// `true` when work waits in this worker's own queues (or it must stop).
    fn has_own_work(&self) -> bool {
        let shared = &*self.shared;
        shared.shutdown.load(SeqCst)
            || !self.deferred.borrow().is_empty()
            || self.lifo().is_occupied()
            || self.lanes.iter().any(|(_, l)| !l.is_empty())
            || !self.me.inbox.is_empty()
            || !self.me.timer_inbox.is_empty()
            || self.timer_timeout().is_some_and(|t| t.is_zero())
    }

    /// `true` when stealable work waits elsewhere: the injector, or another worker's queues.
    fn has_stealable_work(&self) -> bool {
        let shared = &*self.shared;
        !shared.injector.is_empty()
            || shared
                .workers
                .iter()
                .any(|w| w.lifo.is_occupied() || w.stealers.iter().any(|(_, s)| !s.is_empty()))
    }

    fn park(&self) {
        let plan = self.plan_park();
        if let Some(timeout) = plan.sleep {
            self.shared.watchdog.worker_sleeps();
            self.park_io(timeout);
            self.shared.watchdog.worker_wakes();
        }
        self.end_park(plan);
    }

    /// The first part of a park: registers as a sleeper and looks once more for work; what to
    /// do next ([`ParkPlan`]). Then the worker sleeps if the plan says so (in its driver, or
    /// in tokio's when a tokio context drives it), and calls [`end_park`](Self::end_park).
    pub(super) fn plan_park(&self) -> ParkPlan {
        let idle = &self.shared.idle;
        if self.searching.replace(false) {
            idle.stop_searching();
        }
        single_writer_add(&self.counters().parks, 1);
        idle.sleep(self.index);
        // Look once more after registering as a sleeper: a producer that pushed before it saw
        // us registered did not wake anyone.
        let own = self.has_own_work();
        let elsewhere = !own && self.has_stealable_work();
        let sleep = (!own && !elsewhere && !self.auto_advance()).then(|| {
            // Sleep in the I/O poll until woken, an I/O event, or the next timer.
            match self.shared.clock.is_paused() {
                false => self.timer_timeout(),
                // Paused, and a blocking closure runs: look again soon (its end may not wake
                // anybody), without moving the clock.
                true if self.shared.blocking.is_busy() => Some(std::time::Duration::from_millis(1)),
                // Paused with no timer: until woken.
                true => None,
            }
        });
        ParkPlan { sleep, elsewhere }
    }

    /// The last part of a park: off the sleeper list, searching if a notifier asked it to or
    /// if work waits elsewhere.
    pub(super) fn end_park(&self, plan: ParkPlan) {
        if plan.sleep.is_some() {
            // The turn's reading is as old as the sleep: read again, for what runs before the
            // next turn (a `block_on` future; `time::Instant::recent`).
            self.timers.read_clock(&self.shared.clock);
        }
        let idle = &self.shared.idle;
        if !idle.wake(self.index) {
            // A notifier took us off the sleeper list and counted us as searching.
            self.searching.set(true);
        } else if plan.elsewhere {
            // Work appeared that nobody may have been told about: go and steal it, even past
            // the cap on searchers (which otherwise would send us straight back here).
            idle.force_searching();
            self.searching.set(true);
        }
    }

    /// The paused clock's auto-advance: out of work, with no I/O event ready and no blocking
    /// closure running, the worker moves the paused clock to its next timer instead of
    /// sleeping (`true`: it did, or work arrived; the next turn fires the timer). `false` when
    /// the clock runs, or the worker must sleep: no timer is pending, or a blocking closure runs.
    /// Only a current-thread runtime's clock can be paused, so this worker is the only one.
    fn auto_advance(&self) -> bool {
        let clock = &self.shared.clock;
        if !clock.is_paused() {
            return false;
        }
        self.poll_io(Some(std::time::Duration::ZERO));
        if self.has_own_work() {
            return true;
        }
        // Woken meanwhile (the future in block_on, say, by a blocking closure that just
        // ended), or a blocking closure runs: no jump; the park consumes the token.
        if self.me.parker.is_notified() || self.shared.blocking.is_busy() {
            return false;
        }
        match self.timers.next_deadline(clock) {
            Some(due) => {
                clock.advance_to(due);
                true
            }
            None => false,
        }
    }

    /// Drops every task this worker is responsible for, on this thread: its `spawn_local`
    /// tasks, the restricted tasks homed here, and whatever sits in its queues. Dropping a
    /// future may wake or spawn others, so this repeats until nothing is left.
    fn shutdown(&self) {
        if self.searching.replace(false) {
            self.shared.idle.stop_searching();
        }
        let inbox = &self.me.inbox;
        loop {
            let mut any = false;
            // Yielded tasks: their queue references are dropped like the other queues'.
            let deferred = std::mem::take(&mut *self.deferred.borrow_mut());
            any |= !deferred.is_empty();
            drop(deferred);
            for task in self.owned_local().close() {
                any = true;
                self.shared.count_cancelled(1);
                // SAFETY: `close` handed us the list's reference.
                unsafe { task.shutdown() };
            }
            self.shared.shutdown_homed(self.index);
            let queued = inbox.close();
            any |= !queued.is_empty();
            drop(queued);
            let ops = self.worker_shared().timer_inbox.close();
            any |= !ops.is_empty();
            drop(ops);
            while let Some(task) = self.lifo().take() {
                any = true;
                drop(task);
            }
            for (_, lane) in self.lanes.iter() {
                while let Some(task) = lane.pop(false) {
                    any = true;
                    drop(task);
                }
            }
            if !any {
                break;
            }
        }
        debug_assert_eq!(self.owned_local().len(), 0);
        self.publish_local_tasks();
        for (_, d) in self.counters().pinned_depth.iter() {
            d.store(0, Relaxed);
        }
    }
}
