//! The queue through which other threads hand tasks to one worker.
//!
//! A locked FIFO with a `closed` flag, as HAProxy's work lists: pushes never block for long,
//! and once the worker has shut down a push gives the item back instead of losing it.

use std::collections::VecDeque;

use crate::loom::{AtomicUsize, Mutex, Ordering, lock};

pub(crate) struct RemoteQueue<T> {
    inner: Mutex<Inner<T>>,
    len: AtomicUsize,
}

struct Inner<T> {
    items: VecDeque<T>,
    closed: bool,
}

/// The outcome of a push that was accepted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// The queue was empty: the consumer must be woken.
    First,
    /// The consumer was already told about earlier items.
    More,
}

impl<T> RemoteQueue<T> {
    pub(crate) fn new() -> RemoteQueue<T> {
        RemoteQueue {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                closed: false,
            }),
            len: AtomicUsize::new(0),
        }
    }

    /// Appends `item`, then runs `on_first` under the lock when the queue was empty (so the
    /// consumer cannot drain and free anything the caller still uses). Gives the item back when
    /// the queue is closed.
    pub(crate) fn push(&self, item: T, on_first: impl FnOnce()) -> Result<Pushed, T> {
        let mut inner = lock(&self.inner);
        if inner.closed {
            return Err(item);
        }
        inner.items.push_back(item);
        let n = inner.items.len();
        self.len.store(n, Ordering::Release);
        if n == 1 {
            on_first();
            Ok(Pushed::First)
        } else {
            Ok(Pushed::More)
        }
    }

    /// Takes every queued item, in push order.
    pub(crate) fn drain_into(&self, out: &mut VecDeque<T>) -> usize {
        if self.len.load(Ordering::Acquire) == 0 {
            return 0;
        }
        let mut inner = lock(&self.inner);
        let n = inner.items.len();
        out.extend(inner.items.drain(..));
        self.len.store(0, Ordering::Release);
        n
    }

    /// `true` when items are waiting (a hint: may be stale by the time it is read).
    pub(crate) fn is_empty(&self) -> bool {
        self.len.load(Ordering::Acquire) == 0
    }

    /// Refuses further pushes and returns what was queued.
    pub(crate) fn close(&self) -> VecDeque<T> {
        let mut inner = lock(&self.inner);
        inner.closed = true;
        self.len.store(0, Ordering::Release);
        std::mem::take(&mut inner.items)
    }
}
