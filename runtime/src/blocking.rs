//! The blocking pool: threads apart from the workers for closures that block (file I/O, name
//! resolution, CPU-heavy work), so that no worker thread stalls on them.
//!
//! A blocking task is an ordinary task (one allocation, the same `JoinHandle`) whose future
//! runs the closure at its first poll, and whose scheduler is this pool: a locked queue, threads
//! started on demand up to `max_threads`, idle ones exiting after `keep_alive`.
//!
//! At shutdown, queued tasks that have not started are cancelled (their `JoinHandle`s resolve
//! to a cancellation); a closure already running cannot be interrupted: its thread is left to
//! finish it, and `Runtime::shutdown_timeout` waits for it no longer than its timeout.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::hooks::ThreadHooks;
use crate::task::mask::ThreadMask;
use crate::task::{Id, JoinHandle, NewTask, Notified, OwnedTasks, RawTask, Schedule, new_task};

use crate::loom::{Condvar, Mutex, lock, wait_until};

/// Starts a pool thread (a loom thread in the models).
fn spawn_thread(name: String, f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    #[cfg(not(loom))]
    return std::thread::Builder::new().name(name).spawn(f).map(drop);
    #[cfg(loom)]
    {
        let _ = name;
        loom::thread::spawn(f);
        Ok(())
    }
}

/// The future of a blocking task: runs the closure once.
struct BlockingTask<F>(Option<F>);

impl<F> Unpin for BlockingTask<F> {}

impl<F: FnOnce() -> T, T> Future for BlockingTask<F> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<T> {
        let f = self
            .0
            .take()
            .expect("pinwheel: a blocking task was polled after it completed");
        Poll::Ready(f())
    }
}

/// The pool's settings.
#[derive(Clone)]
pub(crate) struct PoolConfig {
    pub(crate) max_threads: usize,
    pub(crate) keep_alive: Duration,
    pub(crate) thread_name: String,
    pub(crate) hooks: ThreadHooks,
}

pub(crate) struct BlockingPool {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    /// Idle threads wait here for work.
    work: Condvar,
    /// Shutdown waits here for threads to exit.
    exited: Condvar,
    owned: OwnedTasks,
    config: PoolConfig,
    /// Runs a closure with the runtime's context entered (set once by the runtime's builder,
    /// which owns the pool: the pool knows nothing of the runtime above it). Without it, a
    /// closure runs as it is.
    context: std::sync::OnceLock<EnterContext>,
}

/// Runs the given closure inside the runtime's context; see [`BlockingPool::set_context`].
pub(crate) type EnterContext = Box<dyn Fn(&mut dyn FnMut()) + Send + Sync>;

#[derive(Default)]
struct State {
    queue: VecDeque<Notified>,
    /// Threads that count against `max_threads`.
    threads: usize,
    /// Threads not yet finished (their stop hook included).
    alive: usize,
    idle: usize,
    /// Idle threads told to take work and not yet awake.
    notified: usize,
    shutdown: bool,
    /// The closures running now: where each was spawned and when it started (copied out of
    /// the task before it runs: the borrow rule, 4), for the shutdown report.
    running: slab::Slab<(&'static Location<'static>, Instant)>,
    /// Queued closures cancelled by the shutdown.
    cancelled: u64,
}

impl BlockingPool {
    pub(crate) fn new(config: PoolConfig) -> BlockingPool {
        BlockingPool {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                work: Condvar::new(),
                exited: Condvar::new(),
                owned: OwnedTasks::new(1),
                config,
                context: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Makes every closure run inside `enter`, which enters the runtime's context (so that
    /// `spawn`, timers, sockets and `Handle::current` work in a blocking closure, as in
    /// tokio). Set once, by the builder; a second call is ignored.
    pub(crate) fn set_context(&self, enter: EnterContext) {
        let _ = self.inner.context.set(enter);
    }

    /// Runs `f` on a pool thread.
    pub(crate) fn spawn<F, T>(&self, f: F, location: &'static Location<'static>) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let NewTask {
            owned,
            notified,
            join,
        } = new_task(
            BlockingTask(Some(f)),
            self.inner.clone(),
            Id::next(),
            (ThreadMask::all(), 0, 0),
            &crate::task::TaskMeta {
                location,
                name: None,
                class: crate::task::Class::Normal,
            },
        );
        if self.inner.owned.insert(owned) {
            self.inner.push(notified);
        } else {
            // Shut down: cancelled before it started.
            drop(notified);
            // SAFETY: the list refused the reference; it is ours to give up.
            unsafe { owned.shutdown() };
        }
        join
    }

    /// Whether a blocking closure runs or waits now (a paused clock does not jump meanwhile:
    /// the closure may be what the runtime waits for).
    pub(crate) fn is_busy(&self) -> bool {
        let st = lock(&self.inner.state);
        !st.running.is_empty() || !st.queue.is_empty()
    }

    /// Threads running or idle, and tasks waiting for a thread.
    pub(crate) fn load(&self) -> (usize, usize) {
        let st = lock(&self.inner.state);
        (st.threads, st.queue.len())
    }

    /// Refuses new tasks and cancels the queued ones; running closures go on.
    pub(crate) fn begin_shutdown(&self) {
        let queued = {
            let mut st = lock(&self.inner.state);
            st.shutdown = true;
            let queued = std::mem::take(&mut st.queue);
            st.cancelled += queued.len() as u64;
            queued
        };
        self.inner.work.notify_all();
        drop(queued);
        for task in self.inner.owned.close() {
            // SAFETY: `close` handed us the list's reference.
            unsafe { task.shutdown() };
        }
    }

    /// The closures running now (where spawned, for how long) and how many queued ones the
    /// shutdown cancelled.
    pub(crate) fn report(&self) -> (Vec<(&'static Location<'static>, Duration)>, u64) {
        let st = lock(&self.inner.state);
        let now = Instant::now();
        let running = st
            .running
            .iter()
            .map(|(_, &(loc, since))| (loc, now.saturating_duration_since(since)))
            .collect();
        (running, st.cancelled)
    }

    /// Waits until every pool thread has exited, or `deadline`; `true` if they all did.
    pub(crate) fn wait(&self, deadline: Instant) -> bool {
        let mut st = lock(&self.inner.state);
        while st.alive > 0 {
            let (guard, timed_out) = wait_until(&self.inner.exited, st, Some(deadline));
            st = guard;
            if timed_out {
                return false;
            }
        }
        true
    }
}

impl Inner {
    fn push(self: &Arc<Self>, task: Notified) {
        let mut st = lock(&self.state);
        if st.shutdown {
            drop(st);
            // The owned list was closed and cancelled this task; only the queue's reference
            // is left to drop.
            drop(task);
            return;
        }
        st.queue.push_back(task);
        if st.idle > st.notified {
            st.notified += 1;
            drop(st);
            self.work.notify_one();
            return;
        }
        if st.threads >= self.config.max_threads {
            // Every thread is busy: the task waits for one.
            return;
        }
        st.threads += 1;
        st.alive += 1;
        let first = st.threads == 1;
        drop(st);
        let inner = self.clone();
        let spawned = spawn_thread(format!("{}-blocking", self.config.thread_name), move || {
            inner.run_thread()
        });
        if let Err(e) = spawned {
            let mut st = lock(&self.state);
            st.threads -= 1;
            st.alive -= 1;
            let stranded = st.threads == 0;
            drop(st);
            tracing::error!(
                target: "pinwheel::blocking",
                error = %e,
                "pinwheel: could not start a blocking-pool thread"
            );
            if first || stranded {
                panic!(
                    "pinwheel::spawn_blocking: could not start a blocking-pool thread ({e}) and no other pool thread runs; lower Builder::max_blocking_threads or free system resources"
                );
            }
        }
    }

    fn run_thread(self: Arc<Self>) {
        self.config.hooks.start();
        let mut st = lock(&self.state);
        'work: loop {
            while let Some(task) = st.queue.pop_front() {
                let key = st.running.insert((task.header().location, Instant::now()));
                drop(st);
                self.run_in_context(task);
                st = lock(&self.state);
                st.running.remove(key);
            }
            if st.shutdown {
                break;
            }
            st.idle += 1;
            loop {
                let (g, waited) = self
                    .work
                    .wait_timeout(st, self.config.keep_alive)
                    .unwrap_or_else(|e| e.into_inner());
                st = g;
                if st.notified > 0 || !st.queue.is_empty() {
                    // Told to take work (or work is there whoever was told): go and take it.
                    st.notified = st.notified.saturating_sub(1);
                    st.idle -= 1;
                    continue 'work;
                }
                if st.shutdown || (waited.timed_out() && st.queue.is_empty()) {
                    st.idle -= 1;
                    break 'work;
                }
            }
        }
        // Counted out of the pool's capacity together with the decision to leave (a push
        // that sees fewer threads starts a new one); counted out of `alive` only after the
        // stop hook, which is what shutdown waits for.
        st.threads -= 1;
        drop(st);
        self.config.hooks.stop();
        lock(&self.state).alive -= 1;
        self.exited.notify_all();
    }
}

impl Inner {
    /// Runs a queued blocking task inside the runtime's context, when the builder gave one.
    fn run_in_context(&self, task: Notified) {
        match self.context.get() {
            Some(enter) => {
                let mut task = Some(task);
                enter(&mut || {
                    if let Some(t) = task.take() {
                        t.run();
                    }
                });
                // A context that did not call its closure (it cannot fail today) still runs
                // the task: a blocking task is never dropped unrun.
                if let Some(t) = task {
                    t.run();
                }
            }
            None => task.run(),
        }
    }
}

impl Schedule for Arc<Inner> {
    unsafe fn schedule(this: *const Self, task: Notified, _yielded: bool) {
        // SAFETY: per the trait, `this` is alive until `task` is queued; we clone it first.
        let inner = unsafe { (*this).clone() };
        inner.push(task);
    }

    fn release(&self, task: RawTask) -> bool {
        self.owned.remove(task)
    }

    /// Blocking threads publish no polled task (`task::set_class` panics there).
    fn unpublish(_task: std::ptr::NonNull<crate::task::Header>) {}
}

#[cfg(all(test, loom))]
#[path = "loom_models/blocking.rs"]
mod tests_loom;
