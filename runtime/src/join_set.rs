//! [`JoinSet`]: a set of spawned tasks whose outputs are taken in the order they complete
//! (tokio's `JoinSet`, public as `pinwheel::task::JoinSet`).
//!
//! Each task's `JoinHandle` is polled with a waker of its own, which puts the task's key on the
//! set's ready list and wakes the task waiting in [`join_next`](JoinSet::join_next): a
//! `join_next` polls only the handles whose task woke them (and a new one once), not every
//! handle of the set.

use std::fmt;
use std::future::{Future, poll_fn};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use slab::Slab;

use crate::loom::lock;
use crate::spawn::{spawn, spawn_blocking, spawn_local};
use crate::task::{AbortHandle, Id, JoinError, JoinHandle};

/// A set of tasks spawned on the current runtime, awaited together: [`join_next`] gives each
/// task's output as it completes. Dropping the set aborts the tasks still in it (as tokio's
/// does); [`detach_all`](Self::detach_all) lets them run on instead.
///
/// ```
/// use pinwheel::task::JoinSet;
///
/// #[pinwheel::main(worker_threads = 2)]
/// async fn main() {
///     let mut set = JoinSet::new();
///     for i in 0..10u64 {
///         set.spawn(async move { i * i });
///     }
///     let mut sum = 0;
///     while let Some(out) = set.join_next().await {
///         sum += out.unwrap();
///     }
///     assert_eq!(sum, 285);
/// }
/// ```
///
/// [`join_next`]: Self::join_next
pub struct JoinSet<T> {
    entries: Slab<Entry<T>>,
    ready: Arc<Ready>,
    /// Tells an entry's waker from a later one at the same slab key.
    next_generation: u64,
}

struct Entry<T> {
    handle: JoinHandle<T>,
    /// Wakes the set on behalf of this entry (its key and generation on the ready list).
    waker: Waker,
    generation: u64,
}

/// The keys of the entries whose handle may be ready, and the waker of the task in
/// `join_next`, under one lock: an entry woken after `join_next` found the list empty finds the
/// set's waker there (the wake is never lost).
#[derive(Default)]
struct Ready {
    inner: Mutex<ReadyList>,
}

#[derive(Default)]
struct ReadyList {
    keys: Vec<(usize, u64)>,
    waker: Option<Waker>,
}

/// The waker of one entry.
struct EntryWaker {
    ready: Arc<Ready>,
    key: usize,
    generation: u64,
}

impl Wake for EntryWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let waker = {
            let mut list = lock(&self.ready.inner);
            list.keys.push((self.key, self.generation));
            list.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Default for JoinSet<T> {
    fn default() -> Self {
        JoinSet::new()
    }
}

impl<T> JoinSet<T> {
    /// An empty set.
    pub fn new() -> JoinSet<T> {
        JoinSet {
            entries: Slab::new(),
            ready: Arc::default(),
            next_generation: 0,
        }
    }

    /// How many tasks are in the set (running, or completed and not yet joined).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set holds no task.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a task already spawned, by its handle; returns a handle to abort it.
    fn insert(&mut self, handle: JoinHandle<T>) -> AbortHandle {
        let abort = handle.abort_handle();
        let entry = self.entries.vacant_entry();
        let key = entry.key();
        let generation = self.next_generation;
        self.next_generation += 1;
        let waker = Waker::from(Arc::new(EntryWaker {
            ready: self.ready.clone(),
            key,
            generation,
        }));
        // Polled once by the next `join_next`, which leaves this waker with the task.
        waker.wake_by_ref();
        entry.insert(Entry {
            handle,
            waker,
            generation,
        });
        abort
    }

    /// Spawns `future` on the current runtime (as [`pinwheel::spawn`](crate::spawn)) into the
    /// set.
    ///
    /// # Panics
    ///
    /// Outside a runtime, as `pinwheel::spawn`.
    #[track_caller]
    pub fn spawn<F>(&mut self, future: F) -> AbortHandle
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.insert(spawn(future))
    }

    /// Spawns a future that need not be `Send`, pinned to the calling worker (as
    /// [`pinwheel::spawn_local`](crate::spawn_local)), into the set.
    ///
    /// # Panics
    ///
    /// Off the runtime's worker threads, as `pinwheel::spawn_local`.
    #[track_caller]
    pub fn spawn_local<F>(&mut self, future: F) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
        T: 'static,
    {
        self.insert(spawn_local(future))
    }

    /// Runs the blocking closure `f` on the blocking pool (as
    /// [`pinwheel::spawn_blocking`](crate::spawn_blocking)), its result joined with the set.
    ///
    /// # Panics
    ///
    /// Outside a runtime, as `pinwheel::spawn_blocking`.
    #[track_caller]
    pub fn spawn_blocking<F>(&mut self, f: F) -> AbortHandle
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.insert(spawn_blocking(f))
    }

    /// Waits for one task of the set to complete and removes it: its output, or the
    /// [`JoinError`] of a task that panicked or was aborted. `None` when the set is empty.
    /// Cancel safe: a task that completes while this future is dropped stays in the set.
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// [`join_next`](Self::join_next), with the id of the task that completed.
    pub async fn join_next_with_id(&mut self) -> Option<Result<(Id, T), JoinError>> {
        poll_fn(|cx| self.poll_join_next_with_id(cx)).await
    }

    /// Removes and returns the output of a task that has completed, without waiting; `None`
    /// when none has (or the set is empty).
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        match self.poll_join_next_with_id(&mut cx) {
            Poll::Ready(out) => out.map(|r| r.map(|(_, v)| v)),
            Poll::Pending => None,
        }
    }

    /// Polls for the next task to complete: `Ready(None)` when the set is empty.
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        self.poll_join_next_with_id(cx)
            .map(|out| out.map(|r| r.map(|(_, v)| v)))
    }

    /// [`poll_join_next`](Self::poll_join_next), with the id of the task that completed.
    pub fn poll_join_next_with_id(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(Id, T), JoinError>>> {
        if self.entries.is_empty() {
            return Poll::Ready(None);
        }
        let mut keys = {
            let mut list = lock(&self.ready.inner);
            if list.keys.is_empty() {
                // Left under the lock that entry wakers take: a wake from now on finds it.
                list.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            std::mem::take(&mut list.keys)
        };
        let mut found = None;
        let mut i = 0;
        while i < keys.len() {
            let (key, generation) = keys[i];
            i += 1;
            let Some(entry) = self.entries.get_mut(key) else {
                continue;
            };
            if entry.generation != generation {
                continue;
            }
            let mut entry_cx = Context::from_waker(&entry.waker);
            if let Poll::Ready(out) = std::pin::Pin::new(&mut entry.handle).poll(&mut entry_cx) {
                let id = entry.handle.id();
                self.entries.remove(key);
                found = Some(out.map(|v| (id, v)));
                break;
            }
        }
        // The keys not looked at go back on the list, for the next call.
        keys.drain(..i);
        let more = !keys.is_empty();
        if more {
            lock(&self.ready.inner).keys.extend(keys);
        }
        match found {
            Some(out) => Poll::Ready(Some(out)),
            None => {
                // Every woken entry was still pending (a spurious wake, or the cooperative
                // budget): wait for the next wake.
                let mut list = lock(&self.ready.inner);
                if list.keys.is_empty() {
                    list.waker = Some(cx.waker().clone());
                    Poll::Pending
                } else {
                    drop(list);
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            }
        }
    }

    /// Aborts every task of the set. They stay in it until joined: `join_next` then gives
    /// their cancellation errors (or the outputs of those that had completed).
    pub fn abort_all(&mut self) {
        for (_, entry) in &self.entries {
            entry.handle.abort();
        }
    }

    /// Removes every task from the set without aborting it: they run on, detached.
    pub fn detach_all(&mut self) {
        self.entries.clear();
        lock(&self.ready.inner).keys.clear();
    }

    /// Aborts every task and waits until each has stopped (or completed), emptying the set.
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }

    /// Waits for every task and returns their outputs, in the order they completed.
    ///
    /// # Panics
    ///
    /// When a task panicked: its panic goes on in the caller (the remaining tasks are aborted
    /// when the set is dropped). When a task was aborted.
    pub async fn join_all(mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len());
        while let Some(res) = self.join_next().await {
            match res {
                Ok(v) => out.push(v),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => panic!("JoinSet::join_all: a task of the set was aborted ({e})"),
            }
        }
        out
    }
}

impl<T> Drop for JoinSet<T> {
    /// Aborts the tasks still in the set.
    fn drop(&mut self) {
        self.abort_all();
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet").field("len", &self.len()).finish()
    }
}

impl<T, F> FromIterator<F> for JoinSet<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    /// Spawns each future into a new set (on the current runtime; panics outside one).
    fn from_iter<I: IntoIterator<Item = F>>(iter: I) -> Self {
        let mut set = JoinSet::new();
        for f in iter {
            set.spawn(f);
        }
        set
    }
}
