//! The one queue type through which work crosses to a given thread.
//!
//! A locked FIFO with a `closed` flag, as HAProxy's work lists: a push holds the lock for a
//! `VecDeque::push_back`, the consumer takes everything queued in one swap, and once the
//! consumer has shut down a push gives the item back instead of losing it. Two kinds of consumer
//! use it: a worker (woken through its parker) for tasks woken on other threads, and a
//! [`WorkList`](crate::WorkList) handler task (woken through the waker it registers here).
//!
//! Wakes are coalesced: the consumer is woken only on the empty -> non-empty edge, and a task
//! consumer registers its waker in the same critical section in which it finds the queue empty,
//! so the last item is never left behind unseen.
//!
//! The wake itself is made after the lock is released (the *wake-after-unlock rule*): a wake
//! is a system call (an eventfd write), and a consumer that came to drain while a producer
//! held the lock through one blocked on the lock's futex (2 workers handing sockets to each
//! other made 0.8 futex calls per proxied request). Under the lock, a producer only takes what
//! it needs to wake the consumer afterwards: the consumer's waker, or a reference that keeps
//! the consumer alive, since once the lock is released the consumer may drain the item, run
//! it, and drop the last reference to its runtime (a task's wake by value hands over the
//! reference that kept it alive).

use std::collections::VecDeque;
use std::mem;
use std::task::Waker;

use crate::loom::{AtomicUsize, Mutex, Ordering, lock};

pub(crate) struct Inbox<T> {
    inner: Mutex<Inner<T>>,
    len: AtomicUsize,
}

struct Inner<T> {
    items: VecDeque<T>,
    closed: bool,
    /// The waker of a task consumer that found the queue empty.
    waker: Option<Waker>,
}

/// What a task consumer found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Drained {
    /// This many items were moved to the consumer's batch.
    Items(usize),
    /// Nothing queued: the consumer's waker is registered.
    Empty,
    /// Nothing queued, and nothing will be: the queue is closed.
    Closed,
}

impl<T> Inbox<T> {
    pub(crate) fn new() -> Inbox<T> {
        Inbox {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                closed: false,
                waker: None,
            }),
            len: AtomicUsize::new(0),
        }
    }

    /// Appends `item`. On the empty -> non-empty edge, calls `on_first` under the lock with the
    /// registered consumer waker, if any, and returns what it returns (`None` otherwise): what
    /// the caller needs to wake the consumer once the lock is released (the wake-after-unlock
    /// rule). Gives the item back when the queue is closed.
    pub(crate) fn push<R>(
        &self,
        item: T,
        on_first: impl FnOnce(Option<Waker>) -> R,
    ) -> Result<Option<R>, T> {
        let mut inner = lock(&self.inner);
        if inner.closed {
            return Err(item);
        }
        inner.items.push_back(item);
        let n = inner.items.len();
        self.len.store(n, Ordering::Release);
        Ok((n == 1).then(|| on_first(inner.waker.take())))
    }

    /// Moves every queued item to `out`, in push order (by swapping buffers when `out` is
    /// empty, so no item is copied under the lock). Returns how many.
    pub(crate) fn drain_into(&self, out: &mut VecDeque<T>) -> usize {
        if self.len.load(Ordering::Acquire) == 0 {
            return 0;
        }
        let mut inner = lock(&self.inner);
        take_all(&mut inner.items, out, &self.len)
    }

    /// For a task consumer: moves every queued item to `out`, or, finding none, registers
    /// `waker` to be woken by the next push (or reports the queue closed).
    pub(crate) fn drain_or_register(&self, out: &mut VecDeque<T>, waker: &Waker) -> Drained {
        let mut inner = lock(&self.inner);
        if !inner.items.is_empty() {
            return Drained::Items(take_all(&mut inner.items, out, &self.len));
        }
        if inner.closed {
            return Drained::Closed;
        }
        if !inner.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            inner.waker = Some(waker.clone());
        }
        Drained::Empty
    }

    /// `true` when nothing is queued (a hint: may be stale by the time it is read).
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many items are queued (a hint).
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Refuses further pushes and returns what was queued.
    pub(crate) fn close(&self) -> VecDeque<T> {
        let mut inner = lock(&self.inner);
        inner.closed = true;
        inner.waker = None;
        self.len.store(0, Ordering::Release);
        mem::take(&mut inner.items)
    }

    /// Refuses further pushes but leaves what is queued for the consumer, and wakes it so it
    /// can drain the rest and see the queue closed.
    pub(crate) fn close_and_wake(&self) {
        let waker = {
            let mut inner = lock(&self.inner);
            inner.closed = true;
            inner.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// `true` once the queue refuses pushes.
    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.inner).closed
    }
}

fn take_all<T>(items: &mut VecDeque<T>, out: &mut VecDeque<T>, len: &AtomicUsize) -> usize {
    let n = items.len();
    if out.is_empty() {
        mem::swap(items, out);
    } else {
        out.extend(items.drain(..));
    }
    len.store(0, Ordering::Release);
    n
}
