//! The spawn API: [`spawn`], [`spawn_on`], [`spawn_local`], [`spawn_blocking`], [`yield_now`] and
//! the task [`Builder`] (re-exported as `pinwheel::task::Builder`). This is the layer above
//! `task/` (which knows nothing of runtimes) and `scheduler/`: it finds the current runtime or
//! worker through `scheduler::context` and hands the future to it.

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::runtime::mask_fits;
use crate::scheduler::context::{with_current, with_current_at};
use crate::scheduler::with_worker;
use crate::task::JoinHandle;
use crate::task::TaskMeta;
use crate::task::mask::ThreadMask;

#[track_caller]
pub(crate) fn no_runtime(api: &str) -> ! {
    panic!(
        "pinwheel::{api} must be called from inside a pinwheel runtime (a task, or Runtime::block_on); from other threads, use the method of the same name on a Handle (Runtime::handle)"
    )
}

/// Spawns a task that any worker may poll; the returned [`JoinHandle`] awaits its output.
///
/// Called on a worker the task goes on that worker's queue, from which idle workers steal;
/// called inside `block_on` it goes on the global queue.
///
/// # Panics
///
/// Panics outside a runtime; use [`Handle::spawn`](crate::Handle::spawn) there.
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let meta = TaskMeta::caller();
    // Each misuse panics out here, not in the closure: `#[track_caller]` does not reach into a
    // closure, and the panic must name the user's line.
    match with_current_at(|s, here| {
        s.map(|s| s.spawn_at(here, future, ThreadMask::all(), false, meta))
    }) {
        Some(handle) => handle,
        None => no_runtime("spawn"),
    }
}

/// Spawns a task that only the workers in `mask` may poll.
///
/// # Panics
///
/// Panics outside a runtime, and when `mask` names no worker of the current runtime.
#[track_caller]
pub fn spawn_on<F>(mask: ThreadMask, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let meta = TaskMeta::caller();
    let spawned = with_current_at(|s, here| {
        s.map(|s| mask_fits(mask, s).map(|()| s.spawn_at(here, future, mask, false, meta)))
    });
    match spawned {
        Some(Ok(handle)) => handle,
        Some(Err(misfit)) => misfit.panic("spawn_on"),
        None => no_runtime("spawn_on"),
    }
}

/// Spawns a future that need not be `Send`, pinned to the calling worker thread: it is polled
/// and dropped only there, even at shutdown.
///
/// # Panics
///
/// Panics when not called on a pinwheel worker thread (from a task); a thread inside
/// `block_on` is not a worker.
#[track_caller]
#[inline(always)]
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    spawn_local_with(future, TaskMeta::caller())
}

#[track_caller]
#[inline(always)]
pub(crate) fn spawn_local_with<F>(future: F, meta: TaskMeta) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    // Inside a `LocalSet` being driven on this thread, onto that set (as tokio's).
    if let Some(set) = crate::local_set::current() {
        return crate::local_set::spawn_on(&set, future, meta);
    }
    let spawned = with_worker(|w| {
        w.map(|w| {
            w.shared
                .spawn_at(Some(w), future, ThreadMask::one(w.index), true, meta)
        })
    });
    match spawned {
        Some(handle) => handle,
        None => panic!(
            "pinwheel::spawn_local must be called on a pinwheel worker thread (from inside a task): it pins the future to the calling worker. Use pinwheel::spawn or spawn_on elsewhere"
        ),
    }
}

/// Runs the blocking closure `f` here, on the calling thread, and lets the runtime go on
/// meanwhile (tokio's `block_in_place`): on a worker of a multi-thread runtime, the task it was
/// to run next and its stealable queue are taken over by the other workers (one is woken to
/// steal) while `f` runs. Off the workers (in `block_on`, on a thread of your own), it just
/// runs `f`.
///
/// How it differs from tokio's: tokio hands the whole worker (its queue and its I/O driver) to
/// a new thread; a pinwheel worker's pinned tasks (`spawn_local`, `spawn_on`, `net::serve`
/// sessions), its timers and its sockets' events belong to that worker, and wait until `f`
/// returns. Prefer [`spawn_blocking`] where that matters.
///
/// ```
/// let rt = pinwheel::Builder::new().worker_threads(2).build()?;
/// let n = rt.block_on(rt.spawn(async {
///     pinwheel::task::block_in_place(|| std::thread::sleep(std::time::Duration::from_millis(1)));
///     3
/// }));
/// assert_eq!(n.unwrap(), 3);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Panics
///
/// On a current-thread runtime's worker (the thread in its `block_on`): there is no other
/// worker to go on, as tokio's panics there.
#[track_caller]
pub fn block_in_place<F: FnOnce() -> R, R>(f: F) -> R {
    let current_thread = with_worker(|w| {
        w.map(|w| {
            if w.shared.current.get().is_some() {
                true
            } else {
                w.lend_work();
                false
            }
        })
    });
    if current_thread == Some(true) {
        panic!(
            "pinwheel::task::block_in_place called on a current-thread runtime: it has no other worker to run the tasks meanwhile; use spawn_blocking, or a multi-thread runtime"
        );
    }
    f()
}

/// Runs the blocking closure `f` on the runtime's blocking pool, a set of threads apart from
/// the workers (at most [`Builder::max_blocking_threads`](crate::Builder::max_blocking_threads), started on demand, idle ones
/// exiting after 10 s), so that file I/O, name resolution or heavy computation never stall a
/// worker. The [`JoinHandle`] resolves to its result (a panic in `f` becomes a [`JoinError`](crate::JoinError)).
///
/// ```
/// #[pinwheel::main(worker_threads = 1)]
/// async fn main() {
///     let len = pinwheel::spawn_blocking(|| std::fs::read_dir(".").map(|d| d.count()))
///         .await
///         .unwrap();
///     assert!(len.is_ok());
/// }
/// ```
///
/// A closure cannot be interrupted once it runs; aborting its `JoinHandle` only cancels it
/// if it has not started. At shutdown, queued closures are cancelled and running ones are not
/// waited for beyond [`Runtime::shutdown_timeout`](crate::Runtime::shutdown_timeout).
///
/// # Panics
///
/// Panics outside a runtime; use [`Handle::spawn_blocking`](crate::Handle::spawn_blocking) there.
#[track_caller]
pub fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let location = std::panic::Location::caller();
    match with_current(|s| s.map(|s| s.blocking.spawn(f, location))) {
        Some(handle) => handle,
        None => no_runtime("spawn_blocking"),
    }
}

/// Yields to the scheduler once: the task goes to the back of its worker's queue, once the
/// worker has looked at its poller (at the start of its next loop turn), so a task that yields
/// while it waits for an I/O event or a timer sees it rather than being polled again and
/// again before the poller is read (tokio defers a yielded task the same way). Off the
/// workers (inside `block_on`), the task is woken at once.
///
/// ```
/// let rt = pinwheel::Runtime::new().unwrap();
/// rt.block_on(rt.spawn(async { pinwheel::yield_now().await })).unwrap();
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        // Woken during its own poll, and deferred: the worker queues it again only after its
        // next look at the poller (`scheduler::route::queue`).
        crate::scheduler::request_defer();
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Spawns a task with a name (shown by [`Handle::dump_tasks`](crate::Handle::dump_tasks), the
/// watchdog's warnings and `tracing` spans) and, optionally, a thread mask.
///
/// ```
/// use pinwheel::task::Builder;
///
/// let rt = pinwheel::Builder::new().worker_threads(2).build()?;
/// let out = rt.block_on(async {
///     Builder::new()
///         .name("answer")
///         .mask(pinwheel::ThreadMask::one(1))
///         .spawn(async { pinwheel::current_worker() })
///         .await
/// });
/// assert_eq!(out.unwrap(), Some(1));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a task::Builder does nothing until spawn is called"]
pub struct Builder {
    name: Option<Arc<str>>,
    mask: Option<ThreadMask>,
    class: crate::task::Class,
}

impl Builder {
    /// A builder for an unnamed task that may run on any worker.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// The task's name.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// The workers that may poll the task (default: all of them).
    pub fn mask(mut self, mask: ThreadMask) -> Builder {
        self.mask = Some(mask);
        self
    }

    /// The task's scheduling class (default [`Class::Normal`](crate::task::Class::Normal));
    /// see [`Class`](crate::task::Class) for what each one gets of a worker's turn.
    ///
    /// ```
    /// use pinwheel::task::{Builder, Class};
    ///
    /// let rt = pinwheel::Builder::new().worker_threads(2).build()?;
    /// let class = rt.block_on(async {
    ///     Builder::new()
    ///         .class(Class::Heavy)
    ///         .spawn(async { pinwheel::task::current_class() })
    ///         .await
    /// });
    /// assert_eq!(class.unwrap(), Class::Heavy);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn class(mut self, class: crate::task::Class) -> Builder {
        self.class = class;
        self
    }

    /// Spawns the task on the current runtime.
    ///
    /// # Panics
    ///
    /// Panics outside a runtime, and when the mask names no worker of the current runtime.
    #[track_caller]
    pub fn spawn<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let meta = TaskMeta {
            location: Location::caller(),
            name: self.name,
            class: self.class,
        };
        let mask = self.mask.unwrap_or(ThreadMask::all());
        let spawned = with_current_at(|s, here| {
            s.map(|s| mask_fits(mask, s).map(|()| s.spawn_at(here, future, mask, false, meta)))
        });
        match spawned {
            Some(Ok(handle)) => handle,
            Some(Err(misfit)) => misfit.panic("task::Builder::spawn"),
            None => no_runtime("task::Builder::spawn"),
        }
    }

    /// Spawns a future that need not be `Send`, pinned to the calling worker (see
    /// [`spawn_local`](crate::spawn_local)); a mask set on the builder is ignored.
    ///
    /// # Panics
    ///
    /// Panics when not called on a worker thread.
    #[track_caller]
    pub fn spawn_local<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let meta = TaskMeta {
            location: Location::caller(),
            name: self.name,
            class: self.class,
        };
        spawn_local_with(future, meta)
    }
}

/// Sets the class of the task being polled, for its next polls (this poll goes on as it is).
///
/// ```
/// use pinwheel::task::{self, Class};
///
/// let rt = pinwheel::Builder::new().worker_threads(2).build()?;
/// rt.block_on(rt.spawn(async {
///     task::set_class(Class::Heavy); // say, a TLS handshake
///     pinwheel::yield_now().await;
///     assert_eq!(task::current_class(), Class::Heavy);
///     task::set_class(Class::Normal); // the session proper
/// }))
/// .unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Panics
///
/// Panics when not called from inside a pinwheel task's poll (in `block_on`'s own future, on a
/// thread that is not a worker, or in a blocking closure): there is no task to change.
#[track_caller]
pub fn set_class(class: crate::task::Class) {
    match crate::scheduler::with_polled_task(|h| h.set_class(class)) {
        Some(()) => {}
        None => panic!(
            "task::set_class was called outside a pinwheel task's poll: call it from inside a \
             spawned task (block_on's own future is not a task)"
        ),
    }
}

/// The class of the task being polled.
///
/// # Panics
///
/// Panics when not called from inside a pinwheel task's poll (see [`set_class`]).
#[track_caller]
pub fn current_class() -> crate::task::Class {
    match crate::scheduler::with_polled_task(|h| h.class()) {
        Some(c) => c,
        None => panic!(
            "task::current_class was called outside a pinwheel task's poll: call it from \
             inside a spawned task (block_on's own future is not a task)"
        ),
    }
}
