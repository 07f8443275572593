//! Work lists: per-thread mailboxes, each drained by a handler task bound to its worker.
//!
//! HAProxy's `work_list`: to hand work to a given thread, append an item to that thread's
//! self-locked list and wake the task bound to that thread, which runs a function over the list.
//! A [`WorkList`] has one mailbox and one handler task per worker thread; the task is pinned to
//! its thread, so the handler may keep per-thread state without locks and may call
//! [`spawn_local`](crate::spawn_local), which is how a connection accepted on one thread is
//! handed to another and its session pinned there.
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//!
//! let rt = pinwheel::Builder::new().worker_threads(2).build()?;
//! let seen = Arc::new(AtomicUsize::new(0));
//! let (done_tx, done_rx) = std::sync::mpsc::channel();
//! let s = seen.clone();
//! let list = rt.handle().work_list(move |n: usize| {
//!     // Runs on the worker the item was pushed to.
//!     assert_eq!(pinwheel::current_worker(), Some(n % 2));
//!     if s.fetch_add(1, Ordering::SeqCst) == 9 {
//!         done_tx.send(()).unwrap();
//!     }
//! });
//! for n in 0..10 {
//!     list.push(n % 2, n).unwrap();
//! }
//! done_rx.recv().unwrap();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## Costs
//!
//! A push takes the target mailbox's lock for one `VecDeque::push_back` and allocates nothing
//! beyond the deque's own growth; it wakes the handler only when the mailbox was empty, so a
//! burst of pushes costs one wake-up. The handler takes everything queued in one swap of
//! buffers, then handles at most 64 items (the scheduler's budget) per poll before yielding to
//! the other tasks of its thread. Each thread's mailbox head is one 128-byte, cache-aligned
//! block (the lock, the deque's head, the handler's waker and a length), so pushes to different
//! threads never share a cache line.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use crate::metrics::single_writer_add;
use crate::runtime::Handle;
use crate::scheduler::BUDGET;
use crate::scheduler::inbox::{Drained, Inbox};
use crate::scheduler::route::with_worker_of;
use crate::task::mask::ThreadMask;

/// Per-thread mailboxes, each drained by a handler task pinned to its worker thread.
///
/// Cloning gives another handle to the same lists. Dropping the last handle, or calling
/// [`close`](Self::close), closes the lists: the handlers finish the items already pushed, then
/// end, and later pushes give their item back. See the [module docs](crate::work_list).
pub struct WorkList<T: Send + 'static> {
    inner: Arc<Inner<T>>,
}

struct Inner<T> {
    handle: Handle,
    mailboxes: Box<[Mailbox<T>]>,
    handles: AtomicUsize,
}

/// One thread's mailbox, alone on its cache lines.
#[repr(align(128))]
pub(crate) struct Mailbox<T>(Inbox<T>);

/// Why a push was refused; the item comes back with it.
pub struct PushError<T> {
    item: T,
    kind: PushErrorKind,
}

/// The reason of a [`PushError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushErrorKind {
    /// There is no worker with that index.
    NoSuchThread {
        /// The index asked for.
        thread: usize,
        /// How many workers the runtime has.
        workers: usize,
    },
    /// The work list is closed: `close()` was called, every handle was dropped, or its runtime
    /// shut down.
    Closed,
    /// `push_local` was called off the work list's runtime's worker threads.
    NotOnWorker,
}

impl<T> PushError<T> {
    /// The item that was not pushed.
    pub fn into_inner(self) -> T {
        self.item
    }

    /// Why it was not pushed.
    pub fn kind(&self) -> PushErrorKind {
        self.kind
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            PushErrorKind::NoSuchThread { thread, workers } => write!(
                f,
                "WorkList::push: there is no worker {thread} (the runtime has {workers}, numbered 0 to {}); the item is given back",
                workers - 1
            ),
            PushErrorKind::Closed => f.write_str(
                "WorkList::push: the work list is closed (close() was called, every handle was dropped, or its runtime shut down); the item is given back",
            ),
            PushErrorKind::NotOnWorker => f.write_str(
                "WorkList::push_local: the calling thread is not a worker of this work list's runtime; use push(worker, item) instead; the item is given back",
            ),
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushError")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl<T> std::error::Error for PushError<T> {}

impl<T: Send + 'static> WorkList<T> {
    /// Creates a work list on the current runtime, whose handler runs `handler(item)` on the
    /// worker each item was pushed to.
    ///
    /// # Panics
    ///
    /// Panics outside a runtime; use [`Handle::work_list`] there.
    #[track_caller]
    pub fn new(handler: impl Fn(T) + Send + Sync + 'static) -> WorkList<T> {
        Handle::current().work_list(handler)
    }

    /// Creates a work list on the current runtime with per-thread state: on each worker,
    /// `init(index)` makes a state that lives on that thread only (it need not be `Send`), and
    /// `handler(&mut state, item)` handles each item pushed to that worker.
    ///
    /// # Panics
    ///
    /// Panics outside a runtime; use [`Handle::work_list_with_state`] there.
    #[track_caller]
    pub fn with_state<S: 'static>(
        init: impl Fn(usize) -> S + Send + Sync + 'static,
        handler: impl Fn(&mut S, T) + Send + Sync + 'static,
    ) -> WorkList<T> {
        Handle::current().work_list_with_state(init, handler)
    }

    pub(crate) fn create<S: 'static>(
        handle: Handle,
        init: impl Fn(usize) -> S + Send + Sync + 'static,
        handler: impl Fn(&mut S, T) + Send + Sync + 'static,
    ) -> WorkList<T> {
        let n = handle.worker_threads();
        let inner = Arc::new(Inner {
            handle,
            mailboxes: (0..n).map(|_| Mailbox(Inbox::new())).collect(),
            handles: AtomicUsize::new(1),
        });
        let init = Arc::new(init);
        let handler = Arc::new(handler);
        for index in 0..n {
            let guard = CloseOnDrop {
                inner: inner.clone(),
                index,
            };
            let (init, handler) = (init.clone(), handler.clone());
            // A Send task pinned to the worker creates the handler task there with
            // spawn_local, so the state is made, used and dropped on that thread only.
            let bootstrap = async move {
                let task = Handler {
                    guard,
                    init,
                    handler,
                    state: None,
                    batch: VecDeque::new(),
                    idle: true,
                };
                // Urgent: a mailbox's handler is the runtime's own plumbing (HAProxy runs
                // its tasklets for cross-thread wakes in TL_URGENT).
                drop(
                    crate::task::Builder::new()
                        .class(crate::task::Class::Urgent)
                        .spawn_local(task),
                );
            };
            drop(inner.handle.shared.spawn(
                bootstrap,
                ThreadMask::one(index),
                crate::task::TaskMeta::caller(),
            ));
        }
        WorkList { inner }
    }

    /// Appends `item` to the list of the worker numbered `worker` (0 to
    /// [`threads`](Self::threads) - 1, as [`current_worker`](crate::current_worker) numbers
    /// them) and wakes its handler if it was idle. Never blocks (beyond a lock held for a
    /// `push_back`).
    ///
    /// # Errors
    ///
    /// Gives the item back when there is no such worker or the list is closed.
    pub fn push(&self, worker: usize, item: T) -> Result<(), PushError<T>> {
        let Some(mailbox) = self.inner.mailboxes.get(worker) else {
            let workers = self.inner.mailboxes.len();
            return Err(PushError {
                item,
                kind: PushErrorKind::NoSuchThread {
                    thread: worker,
                    workers,
                },
            });
        };
        // The handler's waker is woken after the lock is released (the wake-after-unlock rule,
        // on `Inbox`).
        match mailbox.0.push(item, |waker| waker) {
            Ok(waker) => {
                if let Some(w) = waker.flatten() {
                    w.wake();
                }
                Ok(())
            }
            Err(item) => Err(PushError {
                item,
                kind: PushErrorKind::Closed,
            }),
        }
    }

    /// Appends `item` to the calling worker's own list.
    ///
    /// # Errors
    ///
    /// Gives the item back off this runtime's workers, or when the list is closed.
    pub fn push_local(&self, item: T) -> Result<(), PushError<T>> {
        let shared = &self.inner.handle.shared;
        let here = with_worker_of(shared, |w| w.map(|w| w.index));
        match here {
            Some(i) => self.push(i, item),
            None => Err(PushError {
                item,
                kind: PushErrorKind::NotOnWorker,
            }),
        }
    }

    /// How many items wait in the list of the worker numbered `worker`, not counting the batch its handler is
    /// working through (a snapshot, for monitoring).
    ///
    /// # Panics
    ///
    /// Panics when there is no worker `worker`.
    #[track_caller]
    pub fn len(&self, worker: usize) -> usize {
        match self.inner.mailboxes.get(worker) {
            Some(m) => m.0.len(),
            None => panic!(
                "WorkList::len: there is no worker {worker} (the runtime has {})",
                self.inner.mailboxes.len()
            ),
        }
    }

    /// `true` when no worker's list has items waiting.
    pub fn is_empty(&self) -> bool {
        self.inner.mailboxes.iter().all(|m| m.0.is_empty())
    }

    /// How many worker threads (and so lists) there are.
    pub fn threads(&self) -> usize {
        self.inner.mailboxes.len()
    }

    /// Closes every list: the handlers handle what was already pushed, then end; later pushes
    /// give their item back.
    pub fn close(&self) {
        for m in self.inner.mailboxes.iter() {
            m.0.close_and_wake();
        }
    }

    /// `true` once the list refuses pushes to every thread.
    pub fn is_closed(&self) -> bool {
        self.inner.mailboxes.iter().all(|m| m.0.is_closed())
    }
}

impl<T: Send + 'static> Clone for WorkList<T> {
    fn clone(&self) -> Self {
        self.inner.handles.fetch_add(1, Ordering::Relaxed);
        WorkList {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Send + 'static> Drop for WorkList<T> {
    fn drop(&mut self) {
        if self.inner.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.close();
        }
    }
}

impl<T: Send + 'static> fmt::Debug for WorkList<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lens: Vec<usize> = self.inner.mailboxes.iter().map(|m| m.0.len()).collect();
        f.debug_struct("WorkList").field("queued", &lens).finish()
    }
}

impl Handle {
    /// Creates a work list on this runtime; see [`WorkList::new`].
    pub fn work_list<T: Send + 'static>(
        &self,
        handler: impl Fn(T) + Send + Sync + 'static,
    ) -> WorkList<T> {
        WorkList::create(self.clone(), |_| (), move |_: &mut (), item| handler(item))
    }

    /// Creates a work list with per-thread state on this runtime; see [`WorkList::with_state`].
    pub fn work_list_with_state<T: Send + 'static, S: 'static>(
        &self,
        init: impl Fn(usize) -> S + Send + Sync + 'static,
        handler: impl Fn(&mut S, T) + Send + Sync + 'static,
    ) -> WorkList<T> {
        WorkList::create(self.clone(), init, handler)
    }
}

/// Closes a thread's mailbox, dropping what is queued, when its handler task goes away for
/// good (or never started): nothing can be pushed to a list no task will drain.
struct CloseOnDrop<T> {
    inner: Arc<Inner<T>>,
    index: usize,
}

impl<T> Drop for CloseOnDrop<T> {
    fn drop(&mut self) {
        drop(self.inner.mailboxes[self.index].0.close());
    }
}

/// The handler task of one thread.
struct Handler<T, S, I, H> {
    guard: CloseOnDrop<T>,
    init: Arc<I>,
    handler: Arc<H>,
    /// Made on the handler's thread at its first poll.
    state: Option<S>,
    /// Items taken from the mailbox and not handled yet.
    batch: VecDeque<T>,
    /// The last look found the mailbox empty (so the next items came with a wake-up).
    idle: bool,
}

impl<T, S, I, H> Unpin for Handler<T, S, I, H> {}

impl<T, S, I, H> Future for Handler<T, S, I, H>
where
    I: Fn(usize) -> S,
    H: Fn(&mut S, T),
{
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let index = this.guard.index;
        let inner = &this.guard.inner;
        let counters = &inner.handle.shared.workers[index].counters;
        let state = this.state.get_or_insert_with(|| (this.init)(index));
        let mailbox = &inner.mailboxes[index].0;
        let mut handled = 0;
        let out = loop {
            while handled < BUDGET {
                let Some(item) = this.batch.pop_front() else {
                    break;
                };
                // A panicking handler loses that item only (the panic hook has reported it);
                // the list keeps being served.
                if catch_unwind(AssertUnwindSafe(|| (this.handler)(state, item))).is_err() {
                    single_writer_add(&counters.mailbox_handler_panics, 1);
                }
                handled += 1;
            }
            if handled == BUDGET && !(this.batch.is_empty() && mailbox.is_empty()) {
                break yield_now(cx.waker());
            }
            match mailbox.drain_or_register(&mut this.batch, cx.waker()) {
                Drained::Items(_) => {
                    if std::mem::take(&mut this.idle) {
                        single_writer_add(&counters.mailbox_wakeups, 1);
                    }
                    if handled == BUDGET {
                        break yield_now(cx.waker());
                    }
                }
                Drained::Empty => {
                    this.idle = true;
                    break Poll::Pending;
                }
                Drained::Closed => break Poll::Ready(()),
            }
        };
        single_writer_add(&counters.mailbox_items, handled as u64);
        out
    }
}

/// Lets the other tasks of the thread run before the handler goes on.
fn yield_now(waker: &Waker) -> Poll<()> {
    waker.wake_by_ref();
    Poll::Pending
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Mailbox;

    #[test]
    fn a_mailbox_head_is_one_aligned_128_byte_block() {
        assert_eq!(std::mem::size_of::<Mailbox<u64>>(), 128);
        assert_eq!(std::mem::align_of::<Mailbox<u64>>(), 128);
        assert_eq!(std::mem::size_of::<Mailbox<[u8; 1024]>>(), 128);
    }
}
