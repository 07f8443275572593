//! The type-erased task: a header every task starts with, and a vtable that knows the rest.

use std::panic::Location;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::sync::atomic::{AtomicU8, AtomicU32};
use std::task::Waker;

use super::Id;
use super::ThreadMask;
use super::state::{State, ToNotified};

/// The scheduler a task belongs to: where it goes when woken, and the list that owns it.
pub(crate) trait Schedule: Send + Sync + Sized + 'static {
    /// Puts a woken task on a queue. `yielded` says the task woke itself during its own poll
    /// (a yield): it must go behind everything already waiting, not ahead.
    ///
    /// # Safety
    ///
    /// `this` points at the scheduler stored inside the task that `task` references. The
    /// implementation must not use `this` once `task` is handed to a queue: another thread may
    /// then run the task to completion and free it.
    unsafe fn schedule(this: *const Self, task: Notified, yielded: bool);

    /// Removes a completed task from the owned-task list. Returns `true` when the list's
    /// reference was given back (the caller drops it), `false` when shutdown took it already.
    fn release(&self, task: RawTask) -> bool;

    /// The task is about to be freed: a scheduler that publishes the task its thread is
    /// polling (for `task::set_class`) must stop pointing at it now.
    ///
    /// *The polled-task rule*: a worker publishes the header of the task it polls for the
    /// length of that task's `run`; the task may be freed inside that `run` (its last reference
    /// given up by the poll), and freeing it may run user code (a span's subscriber, a waker's
    /// drop) that asks for the polled task. So `dealloc` calls this first, on the freeing
    /// thread. The task may also be freed by another thread once the poll has handed its
    /// reference on (to a queue, or dropped it while others held theirs); from then until
    /// `run` returns, the harness and the scheduler run no user code on the polling thread
    /// (no waker, no tracing event, no drop of a user's value), so nothing reads the published
    /// header there. Hence whenever code that may ask for the polled task runs, a published
    /// header is a live task's.
    fn unpublish(task: NonNull<Header>);
}

/// Functions that know the concrete future and scheduler of a task.
pub(crate) struct Vtable {
    /// Runs the task; consumes the queue's reference.
    pub(crate) poll: unsafe fn(NonNull<Header>),
    /// Queues the task; consumes one reference.
    pub(crate) schedule: unsafe fn(NonNull<Header>),
    /// Frees the allocation.
    pub(crate) dealloc: unsafe fn(NonNull<Header>),
    /// Writes `Poll<Result<T, JoinError>>` into `dst` when the output is ready.
    pub(crate) try_read_output: unsafe fn(NonNull<Header>, *mut (), &Waker),
    /// Drops the JoinHandle's interest and reference.
    pub(crate) drop_join_handle: unsafe fn(NonNull<Header>),
    /// Cancels the task for runtime shutdown; consumes the owned-list reference.
    pub(crate) shutdown: unsafe fn(NonNull<Header>),
    /// Emits a `runtime::waker` event (`op`) for tokio-console, naming the task's span; only
    /// called for tasks with `FLAG_TRACED`.
    pub(crate) trace_waker: unsafe fn(NonNull<Header>, &'static str),
}

/// The task may run on any worker: it lives in the work-stealing queues.
pub(crate) const FLAG_STEALABLE: u8 = 1;
/// The task came from `spawn_local`: its future is not `Send`, and the owned-task list of its
/// thread holds it.
pub(crate) const FLAG_LOCAL: u8 = 2;
/// The task has a name, kept in the runtime's table of names until it completes.
pub(crate) const FLAG_NAMED: u8 = 4;
/// The task has a `tracing` span (a subscriber wanted it at spawn time): its wakers report
/// their operations as `runtime::waker` events, for tokio-console.
pub(crate) const FLAG_TRACED: u8 = 8;

/// `last_poll` of a task never polled yet.
pub(crate) const NEVER_POLLED: u32 = u32::MAX;

/// The first field of every task allocation.
///
/// # Borrowing a task
///
/// This is the rule the `SAFETY` comments of `task/` cite as *the borrow rule*.
///
/// A task's allocation (its `Header`, and in `harness.rs` the rest of the `Cell`: scheduler,
/// span, stage, join waker) lives as long as its reference count is not zero. The references
/// are owned by: each run-queue entry (`Notified`), each `Waker`, the `JoinHandle`, each
/// `AbortHandle`, and the owned-task list (while the task is in it, so a reader holding the
/// list's lock holds that reference too).
///
/// 1. A borrow of anything inside the allocation (`&Header`, `&Cell`, `&Span` and a span guard,
///    the stage, the join waker, the location read through the header) may be made only by a
///    holder of one of those references, and must end *before* the holder gives its reference
///    up: `drop_reference`, `ref_dec_n`, `finish`, a `Notified` handed to a queue (`schedule`),
///    a list's reference taken by `close`/`take_where` and passed on. Once a reference is given
///    up another thread may free the task at any moment, even if this thread thinks it holds
///    another.
/// 2. Code that may give up the last reference therefore works from the raw pointer
///    (`NonNull<Header>` / `RawTask`) and makes each borrow in a scope that closes before the
///    hand-off; a borrow never lives in a variable whose scope spans it, and never in a guard
///    (such as `tracing::span::Entered`) whose drop runs after it.
/// 3. The one borrow alive across a hand-off is the `&State` receiver of the atomic operation
///    that performs it (`ref_dec_n`, `transition_to_notified_by_val`): the operation does not
///    touch the task after its read-modify-write, exactly as `std::sync::Arc`'s `drop` does.
/// 4. What outlives the task is copied out, never borrowed: the watchdog's sign holds the id (a
///    number) and the spawn location (`&'static`), the task dump copies its fields while the
///    owned-list lock holds the list's reference.
#[repr(C)]
pub(crate) struct Header {
    pub(crate) state: State,
    pub(crate) vtable: &'static Vtable,
    pub(crate) id: Id,
    pub(crate) mask: ThreadMask,
    /// Where the task was spawned (`#[track_caller]`).
    pub(crate) location: &'static Location<'static>,
    /// When a worker last started polling it, in milliseconds since the runtime's start as
    /// the worker's clock read it at the start of its loop turn; `NEVER_POLLED` at first.
    pub(crate) last_poll: AtomicU32,
    /// The worker that receives the task when it is woken on a thread outside its mask.
    pub(crate) home: u32,
    /// Where the owned-task list keeps it (a slab key); bookkeeping only, hence relaxed.
    pub(crate) owned_key: AtomicU32,
    /// The task's slot in the profiler's registry (0: not looked up yet); written by the
    /// first worker that profiles a poll of it, always to the same value (see `profile.rs`).
    pub(crate) prof_slot: AtomicU32,
    /// When the task was last woken, as a profiler stamp (0: not stamped); written by a
    /// waker while profiling, cleared by the poll that reads it.
    pub(crate) woken_at: AtomicU32,
    /// `FLAG_*` bits, written at spawn.
    pub(crate) flags: u8,
    /// Where to queue it: its scheduling class (`Class` as a number) in the low bits, and
    /// `BOUND` when the task (a stealable one) is bound to the worker `io_home` names by its
    /// sockets (I/O affinity). Set at spawn; changed by the task itself while it runs
    /// (`task::set_class`) and by a binding ([`Header::adopt_io_home`]), each a
    /// read-modify-write; read by whoever queues it, relaxed, as both are hints about where to
    /// queue the task, never a condition of its safety. One byte for both, so queueing an unbound Normal task (the
    /// hot path) is still one comparison.
    pub(crate) class: AtomicU8,
    /// The worker whose poller holds a socket this stealable task registered while it ran
    /// there (`NO_IO_HOME`: none yet), written before `BOUND` is set in `class`; whoever queues
    /// a bound task sends it to that worker instead of the stealable queues, so its events and
    /// its code stay on one thread. Relaxed, as `class`.
    pub(crate) io_home: AtomicU8,
}

/// `io_home` of a task with no socket registered from its polls.
pub(crate) const NO_IO_HOME: u8 = u8::MAX;

/// The bit of `Header::class` that says the task is bound to its `io_home` worker.
pub(crate) const BOUND: u8 = 0x80;

impl Header {
    /// The task's scheduling class.
    #[inline]
    pub(crate) fn class(&self) -> super::Class {
        super::Class::from_index(self.class.load(Relaxed) & !BOUND)
    }

    /// `true` when the task is of the Normal class, bound to a worker or not.
    #[inline]
    pub(crate) fn is_normal(&self) -> bool {
        self.class.load(Relaxed) & !BOUND == super::Class::Normal.index() as u8
    }

    /// The `class` byte: the class's index, with `BOUND` for a task bound to a worker.
    #[inline(always)]
    pub(crate) fn queueing(&self) -> u8 {
        self.class.load(Relaxed)
    }

    /// Changes the task's scheduling class (for the queues it goes to from now on), keeping
    /// `BOUND` (a binding may come from another thread's wake meanwhile).
    pub(crate) fn set_class(&self, class: super::Class) {
        let _ = self
            .class
            .fetch_update(Relaxed, Relaxed, |q| Some(q & BOUND | class.index() as u8));
    }

    /// Whether a worker has polled the task yet (a spawned task not yet run has not).
    #[cfg_attr(not(feature = "tokio-compat"), allow(dead_code))]
    pub(crate) fn was_polled(&self) -> bool {
        self.last_poll.load(Relaxed) != NEVER_POLLED
    }

    /// The worker a stealable task is bound to by its sockets, if any (see `io_home`).
    #[inline]
    pub(crate) fn io_home(&self) -> Option<usize> {
        match self.io_home.load(Relaxed) {
            NO_IO_HOME => None,
            w => Some(w as usize),
        }
    }

    /// The worker a task is bound to by its sockets, if it is bound.
    #[inline]
    pub(crate) fn bound_home(&self) -> Option<usize> {
        // Acquire: pairs with the binding's release, so `io_home` is seen set.
        if self.class.load(std::sync::atomic::Ordering::Acquire) & BOUND == 0 {
            return None;
        }
        self.io_home()
    }

    /// Binds a stealable task to worker `index`, whose poller now holds a socket the task
    /// registered (or whose tokio context woke it); `true` when this call bound it (a task
    /// binds once: its later sockets register with its worker's poller). The first binder
    /// claims `io_home`, then sets `BOUND` (release), so a reader that sees `BOUND` sees the
    /// worker; one that does not queues the task as unbound.
    pub(crate) fn adopt_io_home(&self, index: usize) -> bool {
        if self.flags & FLAG_STEALABLE == 0
            || self
                .io_home
                .compare_exchange(NO_IO_HOME, index as u8, Relaxed, Relaxed)
                .is_err()
        {
            return false;
        }
        self.class.fetch_or(BOUND, Release);
        true
    }
}

/// A pointer to a task, owning nothing by itself. Made only by [`RawTask::from_raw`], whose
/// contract is what lets [`header`](RawTask::header) be safe.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct RawTask(NonNull<Header>);

// SAFETY: a RawTask is an address; what may be done through it is governed by the task state
// word, whose protocol is what makes cross-thread use sound (see `state.rs`).
unsafe impl Send for RawTask {}
// SAFETY: as above.
unsafe impl Sync for RawTask {}

impl RawTask {
    /// A `RawTask` for the task whose header `ptr` points at.
    ///
    /// # Safety
    ///
    /// `ptr` is the header of a task allocation made by `new_task` (or null-checked from a
    /// pointer that was), and every use of the result, and of its copies, follows the borrow
    /// rule (on [`Header`]): made by a holder of one of the task's references, for no longer
    /// than it holds it.
    pub(crate) unsafe fn from_raw(ptr: NonNull<Header>) -> RawTask {
        RawTask(ptr)
    }

    /// The header's address (for the vtable functions and the waker's data pointer).
    pub(crate) fn as_ptr(self) -> NonNull<Header> {
        self.0
    }

    /// The task's header. The caller holds a reference to the task for as long as it uses the
    /// borrow, and ends the borrow before giving that reference up (the borrow rule, on
    /// [`Header`]).
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the contract of `from_raw`, the only way to make a RawTask: a live task,
        // used under the borrow rule.
        unsafe { self.0.as_ref() }
    }

    /// Drops one reference, freeing the task when it was the last.
    ///
    /// # Safety
    ///
    /// The caller owns a reference and gives it up.
    pub(crate) unsafe fn drop_reference(self) {
        // The borrow of the state word ends with the decrement (the borrow rule, 3).
        if self.header().state.ref_dec_n(1) {
            // SAFETY: that was the last reference: nobody else can reach the task, so this
            // thread may read the header once more and free it.
            unsafe { (self.header().vtable.dealloc)(self.0) }
        }
    }

    /// Cancels the task at shutdown.
    ///
    /// # Safety
    ///
    /// The caller owns the owned-list reference and gives it up.
    pub(crate) unsafe fn shutdown(self) {
        // SAFETY: forwarded from the caller.
        unsafe { (self.header().vtable.shutdown)(self.0) }
    }

    /// Wakes the task without consuming a reference.
    pub(crate) fn wake_by_ref(self) {
        if self.header().state.transition_to_notified_by_ref() == ToNotified::Submit {
            // SAFETY: the transition made a reference for the queue.
            unsafe { (self.header().vtable.schedule)(self.0) }
        }
    }
}

/// A task in a run queue: owns one reference, and the right to run the task once.
pub(crate) struct Notified(RawTask);

// SAFETY: a Notified moves between threads only through the runtime's queues, and the routing in
// `scheduler` only runs a task on a thread in its mask; a task whose future is not `Send`
// (`FLAG_LOCAL`) is only ever polled and dropped on its own thread.
unsafe impl Send for Notified {}

impl Notified {
    /// # Safety
    ///
    /// The caller gives up one reference to the task, which must be `NOTIFIED`.
    pub(crate) unsafe fn from_raw(raw: RawTask) -> Notified {
        Notified(raw)
    }

    pub(crate) fn header(&self) -> &Header {
        self.0.header()
    }

    /// Gives up the entry without dropping its reference (see `from_raw`).
    pub(crate) fn into_raw(self) -> RawTask {
        let raw = self.0;
        std::mem::forget(self);
        raw
    }

    /// Polls the task (or drops it when cancelled); the reference goes with it.
    pub(crate) fn run(self) {
        let raw = self.0;
        std::mem::forget(self);
        // SAFETY: we owned the queue's reference and hand it to `poll`.
        unsafe { (raw.header().vtable.poll)(raw.0) }
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        // SAFETY: a Notified owns one reference.
        unsafe { self.0.drop_reference() }
    }
}

impl std::fmt::Debug for Notified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Notified({})", self.header().id)
    }
}
