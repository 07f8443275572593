//! [`LocalSet`]: tokio's set of `!Send` tasks run by the future that drives it
//! (`run_until`, or awaiting the set), on whatever thread polls that future: a thin adapter
//! for ported code. pinwheel's own `spawn_local` needs no set (it pins a task to the calling
//! worker); a `LocalSet` is for the places a worker is not at hand, such as `block_on` on a
//! multi-thread runtime.
//!
//! Its tasks are ordinary tasks (the same allocation, `JoinHandle` and `JoinError`) whose
//! scheduler is the set: a wake, from any thread, puts the task on the set's queue and wakes
//! the future driving it, which polls the queued tasks before its own future each time it is
//! polled. `pinwheel::spawn_local` called while a set is driven spawns onto that set.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::loom::lock;
use crate::task::mask::ThreadMask;
use crate::task::{
    Id, JoinHandle, LocalOwnedTasks, NewTask, Notified, RawTask, Schedule, TaskMeta,
};

/// How many queued tasks the driving future polls before it polls its own future again (and
/// yields, when more are queued).
const BUDGET: usize = 61;

/// A set of `!Send` tasks that run on the thread of the future driving the set (tokio's
/// `LocalSet`).
///
/// ```
/// use std::rc::Rc;
/// use pinwheel::task::LocalSet;
///
/// let rt = pinwheel::Builder::new().worker_threads(2).build()?;
/// let local = LocalSet::new();
/// let n = rt.block_on(local.run_until(async {
///     let shared = Rc::new(20); // !Send: it stays on this thread
///     let s = shared.clone();
///     let h = pinwheel::spawn_local(async move { *s + 1 });
///     h.await.unwrap() + *shared
/// }));
/// assert_eq!(n, 41);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct LocalSet {
    shared: Arc<LocalShared>,
    /// Not `Send`: its tasks may not be.
    _not_send: PhantomData<*const ()>,
}

/// What the set's tasks (their wakers) reach from any thread.
pub(crate) struct LocalShared {
    queue: Mutex<Queue>,
    /// The set's tasks, owned here until they complete (or the set is dropped).
    owned: LocalOwnedTasks,
}

#[derive(Default)]
struct Queue {
    tasks: VecDeque<Notified>,
    /// The future driving the set, to wake when a task is queued.
    driver: Option<Waker>,
    closed: bool,
}

thread_local! {
    /// The set being driven on this thread, for `pinwheel::spawn_local`.
    static CURRENT: RefCell<Option<Arc<LocalShared>>> = const { RefCell::new(None) };
}

impl Default for LocalSet {
    fn default() -> Self {
        LocalSet::new()
    }
}

impl LocalSet {
    /// An empty set.
    pub fn new() -> LocalSet {
        LocalSet {
            shared: Arc::new(LocalShared {
                queue: Mutex::new(Queue::default()),
                owned: LocalOwnedTasks::default(),
            }),
            _not_send: PhantomData,
        }
    }

    /// Spawns `future` onto the set: it runs when the set is driven ([`run_until`], or
    /// awaiting the set), on the thread driving it.
    ///
    /// [`run_until`]: Self::run_until
    #[track_caller]
    pub fn spawn_local<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        spawn_on(&self.shared, future, TaskMeta::caller())
    }

    /// Runs `future` to completion, running the set's tasks meanwhile on this thread.
    pub fn run_until<F: Future>(&self, future: F) -> RunUntil<'_, F> {
        RunUntil { set: self, future }
    }

    /// Runs `future` on `rt`'s `block_on` with this set's tasks (tokio's `LocalSet::block_on`):
    /// `rt.block_on(self.run_until(future))`.
    #[track_caller]
    pub fn block_on<F: Future>(&self, rt: &crate::Runtime, future: F) -> F::Output {
        rt.block_on(self.run_until(future))
    }

    /// Polls the queued tasks (at most `BUDGET`); `true` when more are queued.
    fn tick(&self, cx: &Context<'_>) -> bool {
        let _current = Current::enter(&self.shared);
        // Left once per tick: a task queued later takes it and wakes the driver, which then
        // ticks again (a push that finds it gone comes after a wake already issued).
        lock(&self.shared.queue).driver = Some(cx.waker().clone());
        for _ in 0..BUDGET {
            let task = lock(&self.shared.queue).tasks.pop_front();
            let Some(task) = task else {
                return false;
            };
            // Each task poll with a budget of its own (the budget rule, on `task::coop`).
            crate::task::coop::with_budget(|| task.run());
        }
        !lock(&self.shared.queue).tasks.is_empty()
    }
}

/// Spawns `future` onto the set `shared`.
pub(crate) fn spawn_on<F>(
    shared: &Arc<LocalShared>,
    future: F,
    meta: TaskMeta,
) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let NewTask {
        owned,
        notified,
        join,
    } = crate::task::new_task(
        future,
        SetScheduler(shared.clone()),
        Id::next(),
        (ThreadMask::all(), 0, 0),
        &meta,
    );
    if shared.owned.insert(owned) {
        SetScheduler::queue(shared, notified);
    } else {
        // The set is gone: the future is dropped here, the handle resolves to a cancellation.
        drop(notified);
        // SAFETY: the owned-list reference was not taken by the list; it is ours to give up.
        unsafe { owned.shutdown() };
    }
    join
}

/// The set driven on this thread, if one is (for `pinwheel::spawn_local`, which then spawns
/// onto it with [`spawn_on`]). Asked before the future is handed over, so a spawn off a set
/// moves the future once less: a session's future is a few KiB, and each move is a `memcpy`.
pub(crate) fn current() -> Option<Arc<LocalShared>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Makes a set the current one on this thread for the length of a poll.
struct Current(Option<Arc<LocalShared>>);

impl Current {
    fn enter(shared: &Arc<LocalShared>) -> Current {
        Current(CURRENT.with(|c| c.replace(Some(shared.clone()))))
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        let prev = self.0.take();
        let _ = CURRENT.try_with(|c| *c.borrow_mut() = prev);
    }
}

/// The scheduler of a set's tasks.
struct SetScheduler(Arc<LocalShared>);

impl SetScheduler {
    fn queue(shared: &LocalShared, task: Notified) {
        let waker = {
            let mut q = lock(&shared.queue);
            if q.closed {
                // The set was dropped: its tasks were cancelled; this reference goes.
                drop(q);
                drop(task);
                return;
            }
            q.tasks.push_back(task);
            q.driver.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl Schedule for SetScheduler {
    unsafe fn schedule(this: *const Self, task: Notified, _yielded: bool) {
        // SAFETY: per the trait, `this` is alive until `task` is queued; the queue is reached
        // through our own reference, taken before.
        let shared = unsafe { (*this).0.clone() };
        SetScheduler::queue(&shared, task);
    }

    fn release(&self, task: RawTask) -> bool {
        self.0.owned.remove(task)
    }

    fn unpublish(_task: std::ptr::NonNull<crate::task::Header>) {}
}

impl Drop for LocalSet {
    /// Cancels the set's tasks on this thread (their futures are dropped in place, here).
    fn drop(&mut self) {
        let _current = Current::enter(&self.shared);
        lock(&self.shared.queue).closed = true;
        loop {
            let tasks = self.shared.owned.close();
            let queued = std::mem::take(&mut lock(&self.shared.queue).tasks);
            if tasks.is_empty() && queued.is_empty() {
                break;
            }
            for task in tasks {
                // SAFETY: `close` handed us the list's reference.
                unsafe { task.shutdown() };
            }
            drop(queued);
        }
    }
}

impl fmt::Debug for LocalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSet")
            .field("tasks", &self.shared.owned.len())
            .finish()
    }
}

/// Runs the set's tasks until none is left (tokio's `impl Future for LocalSet`).
impl Future for LocalSet {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let more = self.tick(cx);
        if self.shared.owned.len() == 0 {
            return Poll::Ready(());
        }
        if more {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

/// The future of [`LocalSet::run_until`].
pub struct RunUntil<'a, F> {
    set: &'a LocalSet,
    future: F,
}

impl<F: Future> Future for RunUntil<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `future` is structurally pinned: never moved out of `self`, dropped in place
        // with it; `set` is a shared reference, not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let more = this.set.tick(cx);
        let out = {
            let _current = Current::enter(&this.set.shared);
            // SAFETY: as above.
            unsafe { Pin::new_unchecked(&mut this.future) }.poll(cx)
        };
        if out.is_pending() && (more || !lock(&this.set.shared.queue).tasks.is_empty()) {
            cx.waker().wake_by_ref();
        }
        out
    }
}

impl<F> fmt::Debug for RunUntil<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("RunUntil { .. }")
    }
}
