//! The one allocation of a task, and the functions its vtable points to.

use std::future::Future;
use std::mem;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::task::{Context, Poll, Waker};

use super::ThreadMask;
use super::raw::{Header, Notified, RawTask, Schedule, Vtable};
use super::state::{JOIN_INTEREST, JOIN_WAKER, State, ToIdle, ToRunning};
use super::waker::waker_ref;
use super::{Id, JoinError, JoinHandle};
use crate::loom::UnsafeCell;

/// What a spawn records about a task besides its future: where it was spawned and its name.
#[derive(Clone, Debug)]
pub(crate) struct TaskMeta {
    pub(crate) location: &'static Location<'static>,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) class: super::Class,
}

impl TaskMeta {
    /// The caller's location (through `#[track_caller]` frames), no name.
    #[track_caller]
    pub(crate) fn caller() -> TaskMeta {
        TaskMeta {
            location: Location::caller(),
            name: None,
            class: super::Class::Normal,
        }
    }
}

/// Header, scheduler, future-or-output and join waker: everything in one heap block.
///
/// # Who may touch which field (the access table)
///
/// Every access also needs a live cell, which the borrow rule (on [`Header`]) gives: the
/// accessor holds one of the task's references. Beyond that:
///
/// | field | who may access it | why it is exclusive or shared-safe |
/// | --- | --- | --- |
/// | `header.state` | anyone | atomic |
/// | other header fields, `scheduler`, `span` | anyone, read only | set in `new_task`, never written again (`last_poll`, `owned_key`: relaxed atomics) |
/// | `stage` while not `COMPLETE` | the thread that set `RUNNING` (poll, cancel, `finish`) | `RUNNING` is set by one compare-and-swap, and cleared by its holder |
/// | `stage` once `COMPLETE` | the JoinHandle while `JOIN_INTEREST` is set; otherwise whoever cleared `JOIN_INTEREST` or completed the task without it | `transition_to_complete` and `unset_join_interested` read the other bit in the same atomic step, so exactly one side owns the output |
/// | `join_waker` while `JOIN_WAKER` is clear | the JoinHandle (write) | the completer reads it only after seeing the bit set |
/// | `join_waker` while `JOIN_WAKER` is set | the completer (read, once `COMPLETE`); the JoinHandle (read) | nobody writes; the JoinHandle clears the bit before writing again |
///
/// The accessors [`Cell::with_stage`], [`Cell::with_join_waker`] and [`Cell::set_join_waker`]
/// are `unsafe fn`s whose contract is a row of this table; the `SAFETY` comments at their
/// calls name the row.
#[repr(C)]
pub(crate) struct Cell<F: Future, S> {
    header: Header,
    scheduler: S,
    /// The task's `tracing` span, made only when a subscriber wanted it at spawn time (so a
    /// runtime without one pays a null pointer per task and a branch per poll).
    span: Option<Box<tracing::Span>>,
    stage: UnsafeCell<Stage<F>>,
    join_waker: UnsafeCell<Option<Waker>>,
}

impl<F: Future, S> Cell<F, S> {
    /// Runs `f` with the stage.
    ///
    /// # Safety
    ///
    /// The caller has the stage to itself by a `stage` row of the access table (on [`Cell`]).
    unsafe fn with_stage<R>(&self, f: impl FnOnce(&mut Stage<F>) -> R) -> R {
        // SAFETY: exclusive, per the caller.
        self.stage.with_mut(|stage| f(unsafe { &mut *stage }))
    }

    /// Runs `f` with the JoinHandle's waker, if one is stored.
    ///
    /// # Safety
    ///
    /// Nobody writes the slot meanwhile: `JOIN_WAKER` is set (the access table, on [`Cell`]).
    unsafe fn with_join_waker<R>(&self, f: impl FnOnce(Option<&Waker>) -> R) -> R {
        // SAFETY: no writer, per the caller.
        self.join_waker.with(|w| f(unsafe { &*w }.as_ref()))
    }

    /// Stores (or clears) the JoinHandle's waker.
    ///
    /// # Safety
    ///
    /// The caller is the JoinHandle and `JOIN_WAKER` is clear (the access table, on [`Cell`]).
    unsafe fn set_join_waker(&self, waker: Option<Waker>) {
        // SAFETY: the slot is the JoinHandle's, per the caller.
        self.join_waker.with_mut(|w| unsafe { *w = waker });
    }
}

/// What the cell holds: the future, then its output, then nothing.
///
/// # The pinning rule
///
/// A task's future is pinned from the moment `new_task` writes it into the cell until it is
/// dropped: the cell's allocation never moves (tasks are reached through pointers to it), the
/// future is never moved out of `Stage::Running`, and it is dropped *where it lives*, by
/// [`Stage::drop_in_place`] (a `drop_in_place` on the stage, then `Consumed` written over the
/// dead bytes, also when the future's `Drop` panics). Nothing reads or writes the stage by value
/// while it holds the future: no `mem::replace`, `mem::take` or `mem::swap` of a `Running`
/// stage. Only the output (`Finished`) is ever moved out, once the future is gone, as
/// `Pin`'s drop guarantee allows. A self-referential future (`select!`, `join!`, an `async fn`
/// holding a borrow of its own local across an await, an intrusive waiter node such as tokio's
/// `broadcast::Recv`) relies on this: moved before its drop, its `Drop` would follow pointers
/// into the old location.
enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, JoinError>),
    Consumed,
}

impl<F: Future> Stage<F> {
    /// Drops the future or the output held here in place, and leaves `Consumed`: on every
    /// path, even when that `Drop` panics (the panic goes on unwinding after `Consumed` is
    /// written, so the dead value is never dropped or read again). The pinning rule, above.
    fn drop_in_place(&mut self) {
        /// Writes `Consumed` over the stage when dropped: after the stage's value was dropped,
        /// normally or by unwinding. (A raw pointer: no reference to the dead value is held.)
        struct Consume<F: Future>(*mut Stage<F>);
        impl<F: Future> Drop for Consume<F> {
            fn drop(&mut self) {
                // SAFETY: the pointer comes from the `&mut` below, still exclusive; the value
                // there was dropped just before (`drop_in_place` returned or is unwinding), so
                // it is overwritten without being dropped again (the pinning rule).
                unsafe { std::ptr::write(self.0, Stage::Consumed) }
            }
        }
        if matches!(self, Stage::Consumed) {
            return;
        }
        let consume = Consume(self as *mut Stage<F>);
        // SAFETY: the stage holds a live value (every drop goes through here, which writes
        // `Consumed` right after); it is dropped at its own address, as the pinning rule asks,
        // and `consume` overwrites it before anything can see it.
        unsafe { std::ptr::drop_in_place(consume.0) };
    }
}

/// What `new_task` hands back: the three references a new task starts with.
pub(crate) struct NewTask<T> {
    /// The owned-task list's reference.
    pub(crate) owned: RawTask,
    /// The first run-queue entry.
    pub(crate) notified: Notified,
    pub(crate) join: JoinHandle<T>,
}

/// Allocates a task.
pub(crate) fn new_task<F, S>(
    future: F,
    scheduler: S,
    id: Id,
    (mask, home, flags): (ThreadMask, u32, u8),
    meta: &TaskMeta,
) -> NewTask<F::Output>
where
    F: Future + 'static,
    S: Schedule,
{
    let location = meta.location;
    // A root span (`parent: None`), as tokio's task spans are: a task outlives the poll that
    // spawned it, and a child span would keep the spawner's span (and with chained spawns, a
    // chain of them) alive in the subscriber and in every event's context. Its name and
    // fields are the ones console-subscriber reads (tokio's `runtime.spawn` span), so
    // tokio-console lists pinwheel's tasks.
    let kind = if flags & super::raw::FLAG_LOCAL != 0 {
        "local"
    } else {
        "task"
    };
    let span = tracing::trace_span!(
        target: "pinwheel::task",
        parent: None,
        "runtime.spawn",
        kind,
        task.name = meta.name.as_deref(),
        task.id = id.as_u64(),
        loc.file = location.file(),
        loc.line = u64::from(location.line()),
        loc.col = u64::from(location.column()),
    );
    let span = (!span.is_disabled()).then(|| Box::new(span));
    let flags = if span.is_some() {
        flags | super::raw::FLAG_TRACED
    } else {
        flags
    };
    // Built in place, field by field: a `Box::new` of the whole cell builds it on the stack
    // and copies it, and past 128 bytes that copy is a `memcpy` call per spawn. The memory
    // comes from the task pools (`pool.rs`), and goes back there in `dealloc`.
    let p = cell_alloc::<F, S>();
    // SAFETY: `p` points at the allocation just made, valid for writes of a `Cell<F, S>`; each
    // write below initialises one field, through a raw pointer (no reference to the
    // uninitialised cell is made).
    unsafe {
        (&raw mut (*p).header).write(Header {
            state: State::new(),
            vtable: vtable::<F, S>(),
            id,
            mask,
            location,
            last_poll: AtomicU32::new(super::raw::NEVER_POLLED),
            home,
            owned_key: AtomicU32::new(u32::MAX),
            prof_slot: AtomicU32::new(0),
            woken_at: AtomicU32::new(0),
            flags,
            class: std::sync::atomic::AtomicU8::new(meta.class.index() as u8),
            io_home: std::sync::atomic::AtomicU8::new(super::raw::NO_IO_HOME),
        });
        (&raw mut (*p).scheduler).write(scheduler);
        (&raw mut (*p).span).write(span);
        (&raw mut (*p).stage).write(UnsafeCell::new(Stage::Running(future)));
        (&raw mut (*p).join_waker).write(UnsafeCell::new(None));
    }
    // SAFETY: the header of the allocation just made (every field written just above), which
    // holds the three references below.
    let raw = unsafe { RawTask::from_raw(NonNull::new_unchecked(p).cast::<Header>()) };
    NewTask {
        owned: raw,
        // SAFETY: the new state holds three references and NOTIFIED; this is the queue's one.
        notified: unsafe { Notified::from_raw(raw) },
        // SAFETY: this is the JoinHandle's reference.
        join: unsafe { JoinHandle::from_raw(raw) },
    }
}

fn vtable<F: Future + 'static, S: Schedule>() -> &'static Vtable {
    &Vtable {
        poll: poll::<F, S>,
        schedule: schedule::<F, S>,
        dealloc: dealloc::<F, S>,
        try_read_output: try_read_output::<F, S>,
        drop_join_handle: drop_join_handle::<F, S>,
        shutdown: shutdown::<F, S>,
        trace_waker: trace_waker::<F, S>,
    }
}

/// # Safety
///
/// `ptr` is a live task made by `new_task::<F, S>`.
unsafe fn cell<'a, F: Future, S>(ptr: NonNull<Header>) -> &'a Cell<F, S> {
    // SAFETY: the header is the first field of a repr(C) Cell<F, S>, per the caller.
    unsafe { ptr.cast::<Cell<F, S>>().as_ref() }
}

/// Runs a task popped from a queue; consumes the queue's reference.
///
/// Every borrow of the cell made here ends before the reference is given up (the borrow rule,
/// on `Header`): the span guard is scoped to the poll itself (`poll_in_span`), and `finish`,
/// `schedule_with` and `drop_reference` work from the raw pointer.
unsafe fn poll<F: Future + 'static, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: the vtable is only reached through tasks of this type; the queue's reference
    // (ours) keeps the cell alive, and `cell` is not used after that reference is given up
    // below (the borrow rule).
    let cell = unsafe { cell::<F, S>(ptr) };
    // SAFETY: as for `cell`.
    let raw = unsafe { RawTask::from_raw(ptr) };
    match cell.header.state.transition_to_running() {
        // SAFETY: we own the queue's reference.
        ToRunning::Skip => unsafe { raw.drop_reference() },
        ToRunning::Cancel => {
            // SAFETY: the transition gave us RUNNING.
            let out = unsafe { cancel_future(cell) };
            // SAFETY: we hold RUNNING and the queue's reference, and give it up here.
            unsafe { finish::<F, S>(ptr, out, 1) };
        }
        // SAFETY: the transition gave us RUNNING.
        ToRunning::Poll => match unsafe { poll_in_span(cell) } {
            Ok(Poll::Pending) => match cell.header.state.transition_to_idle() {
                // SAFETY: we own the queue's reference.
                ToIdle::Idle => unsafe { raw.drop_reference() },
                // SAFETY: the queue's reference is handed on to the next queue.
                ToIdle::Notified => unsafe { schedule_with::<F, S>(ptr, true) },
                ToIdle::Cancelled => {
                    // SAFETY: RUNNING is still ours (the transition to idle refused).
                    let out = unsafe { cancel_future(cell) };
                    // SAFETY: we hold RUNNING and the queue's reference, and give it up.
                    unsafe { finish::<F, S>(ptr, out, 1) };
                }
            },
            // SAFETY: we hold RUNNING and the queue's reference, and give it up.
            Ok(Poll::Ready(out)) => unsafe { finish::<F, S>(ptr, Ok(out), 1) },
            Err(payload) => {
                // The future was dropped while the panic unwound (`poll_future`), on its own
                // thread; this only makes sure of it (nothing is left to drop).
                // SAFETY: RUNNING is still ours.
                let _ = unsafe { cancel_future(cell) };
                let err = JoinError::panic(cell.header.id, payload);
                // SAFETY: we hold RUNNING and the queue's reference, and give it up.
                unsafe { finish::<F, S>(ptr, Err(err), 1) };
            }
        },
    }
}

/// Polls the future once inside the task's span (when it has one), catching a panic. The
/// span is entered and exited here, so its guard (a borrow of the cell) is gone before the
/// caller gives its reference up; "complete" is still logged inside the span.
///
/// # Safety
///
/// The caller holds `RUNNING`.
unsafe fn poll_in_span<F: Future, S>(cell: &Cell<F, S>) -> std::thread::Result<Poll<F::Output>> {
    let waker = waker_ref(&cell.header);
    let mut cx = Context::from_waker(&waker);
    let _entered = cell.span.as_deref().map(tracing::Span::enter);
    let id = cell.header.id.as_u64();
    tracing::trace!(target: "pinwheel::task", task_id = id, "poll");
    // SAFETY: per the caller.
    let polled = catch_unwind(AssertUnwindSafe(|| unsafe { poll_future(cell, &mut cx) }));
    if matches!(polled, Ok(Poll::Ready(_))) {
        tracing::trace!(target: "pinwheel::task", task_id = id, "complete");
    }
    polled
}

/// Polls the future; drops it right away when it is done, and while unwinding when the poll
/// panics (as tokio does: a `Drop` of the future sees `std::thread::panicking()`), in place
/// either way (the pinning rule, on `Stage`).
///
/// # Safety
///
/// The caller holds `RUNNING`.
unsafe fn poll_future<F: Future, S>(cell: &Cell<F, S>, cx: &mut Context<'_>) -> Poll<F::Output> {
    /// Drops the future in place if the poll unwinds; forgotten when it returns.
    struct DropOnUnwind<F: Future>(*mut Stage<F>);
    impl<F: Future> Drop for DropOnUnwind<F> {
        fn drop(&mut self) {
            // A second panic, from the future's `Drop`, is caught here: the first one goes on
            // unwinding and is the one reported.
            let _ = catch_unwind(AssertUnwindSafe(|| {
                // SAFETY: the pointer is the stage the poll below had to itself (the caller
                // holds RUNNING), and that poll's borrow ended with the unwinding.
                unsafe { (*self.0).drop_in_place() }
            }));
        }
    }
    let poll = |stage: &mut Stage<F>| {
        let guard = DropOnUnwind(stage as *mut Stage<F>);
        // SAFETY: the pointer comes from the `&mut` just above, which is not used while it is.
        let Stage::Running(future) = (unsafe { &mut *guard.0 }) else {
            unreachable!("pinwheel: a task was polled after its future was dropped")
        };
        // SAFETY: the pinning rule (on `Stage`): the future is never moved out of the cell,
        // which never moves, and is dropped in place.
        let future = unsafe { Pin::new_unchecked(future) };
        let out = future.poll(cx);
        std::mem::forget(guard);
        if out.is_ready() {
            // Dropped where it lives, before the output is stored (the pinning rule).
            stage.drop_in_place();
        }
        out
    };
    // SAFETY: the stage row "not COMPLETE": the caller holds RUNNING.
    unsafe { cell.with_stage(poll) }
}

/// Drops the future, catching a panic from its Drop.
///
/// # Safety
///
/// The caller holds `RUNNING`.
unsafe fn cancel_future<F: Future, S>(cell: &Cell<F, S>) -> Result<F::Output, JoinError> {
    let dropped = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the stage row "not COMPLETE": the caller holds RUNNING.
        // Dropped where it lives (the pinning rule, on `Stage`).
        unsafe { cell.with_stage(Stage::drop_in_place) }
    }));
    match dropped {
        Ok(()) => Err(JoinError::cancelled(cell.header.id)),
        Err(payload) => Err(JoinError::panic(cell.header.id, payload)),
    }
}

/// Stores the output, completes the task, tells the JoinHandle, leaves the owned list, and
/// drops `refs` references plus the list's one.
///
/// # Safety
///
/// `ptr` is a live task of type `Cell<F, S>`; the caller holds `RUNNING` and `refs`
/// references, gives them up here, and does not use any borrow of the cell afterwards (the
/// borrow rule, on `Header`): this may free the task.
unsafe fn finish<F: Future, S: Schedule>(
    ptr: NonNull<Header>,
    out: Result<F::Output, JoinError>,
    refs: usize,
) {
    let last = {
        // SAFETY: the caller's references keep the cell alive until the decrement that ends
        // this scope (the borrow rule, 3).
        let cell = unsafe { cell::<F, S>(ptr) };
        // SAFETY: the stage row "not COMPLETE": the caller holds RUNNING. The future was
        // dropped in place already (poll_future or cancel_future): the stage is `Consumed`.
        unsafe {
            cell.with_stage(|stage| {
                debug_assert!(matches!(stage, Stage::Consumed));
                *stage = Stage::Finished(out);
            });
        }
        let prev = cell.header.state.transition_to_complete();
        if !prev.has(JOIN_INTEREST) {
            // Nobody will read the output: drop it here, on the task's thread.
            let _ = catch_unwind(AssertUnwindSafe(|| {
                // SAFETY: the stage row "COMPLETE": no JOIN_INTEREST, so the completer owns it.
                unsafe { cell.with_stage(Stage::drop_in_place) }
            }));
        } else if prev.has(JOIN_WAKER) {
            // SAFETY: the join_waker row "set": JOIN_WAKER was set when COMPLETE was, so the
            // JoinHandle no longer writes the slot.
            unsafe { cell.with_join_waker(|w| w.map(Waker::wake_by_ref)) };
        }
        // SAFETY: the caller's references keep the task alive during the call.
        let released = cell.scheduler.release(unsafe { RawTask::from_raw(ptr) });
        cell.header.state.ref_dec_n(refs + released as usize)
    };
    if last {
        // SAFETY: those were the last references, and no borrow of the cell is left.
        unsafe { dealloc::<F, S>(ptr) }
    }
}

/// Queues a task woken by a waker or an abort.
unsafe fn schedule<F: Future, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: forwarded from the caller.
    unsafe { schedule_with::<F, S>(ptr, false) }
}

unsafe fn schedule_with<F: Future, S: Schedule>(ptr: NonNull<Header>, yielded: bool) {
    // SAFETY: the caller gives us a reference, so the task (and its scheduler) is alive here;
    // `S::schedule` stops using `sched` once it has queued the task, and nothing here touches
    // the cell after that call (the borrow rule, on `Header`).
    unsafe {
        let cell = ptr.cast::<Cell<F, S>>().as_ptr();
        let sched: *const S = &raw const (*cell).scheduler;
        S::schedule(sched, Notified::from_raw(RawTask::from_raw(ptr)), yielded);
    }
}

unsafe fn dealloc<F: Future, S: Schedule>(ptr: NonNull<Header>) {
    // Before anything of the task is dropped (its span, its scheduler, a join waker: code of
    // the user's may run there): the worker polling it stops publishing it (the polled-task
    // rule, on `Schedule::unpublish`).
    S::unpublish(ptr);
    let cell = ptr.cast::<Cell<F, S>>();
    // SAFETY: the last reference is gone, so nothing else uses the cell: it is dropped in
    // place (where the future lived since it was stored, so a pinned future is never moved),
    // then its memory, made by `cell_alloc` with this layout, goes back.
    unsafe {
        std::ptr::drop_in_place(cell.as_ptr());
        cell_free::<F, S>(cell);
    }
}

/// Memory for a task cell: from the task pools, or from the allocator in the builds and runs
/// that do not use them (`pool::enabled`).
fn cell_alloc<F: Future, S>() -> *mut Cell<F, S> {
    let layout = std::alloc::Layout::new::<Cell<F, S>>();
    if super::pool::enabled() {
        super::pool::alloc(layout).cast::<Cell<F, S>>().as_ptr()
    } else {
        Box::into_raw(Box::<Cell<F, S>>::new_uninit()).cast::<Cell<F, S>>()
    }
}

/// Gives back the memory of a task cell.
///
/// # Safety
///
/// `cell` came from [`cell_alloc`] with the same types, its value is dropped already, and
/// nothing uses it any more.
unsafe fn cell_free<F: Future, S>(cell: NonNull<Cell<F, S>>) {
    if super::pool::enabled() {
        // SAFETY: from `pool::alloc` with this layout (in `cell_alloc`), unused now.
        unsafe { super::pool::free(cell.cast::<u8>(), std::alloc::Layout::new::<Cell<F, S>>()) }
    } else {
        // SAFETY: a `Box<MaybeUninit<Cell>>`'s allocation (in `cell_alloc`), its value dropped
        // already: freeing it as a `MaybeUninit` drops nothing more.
        drop(unsafe { Box::from_raw(cell.cast::<std::mem::MaybeUninit<Cell<F, S>>>().as_ptr()) })
    }
}

unsafe fn try_read_output<F: Future, S: Schedule>(
    ptr: NonNull<Header>,
    dst: *mut (),
    waker: &Waker,
) {
    // SAFETY: the JoinHandle's reference keeps the task alive, and it keeps it past this call
    // (the borrow rule, on `Header`).
    let cell = unsafe { cell::<F, S>(ptr) };
    if can_read_output(cell, waker) {
        // SAFETY: the stage row "COMPLETE": JOIN_INTEREST is set and we are the JoinHandle.
        // Once COMPLETE the stage holds the output (the future was dropped in place before
        // it was stored), which may be moved (the pinning rule, on `Stage`).
        let out = unsafe { cell.with_stage(|stage| mem::replace(stage, Stage::Consumed)) };
        let Stage::Finished(out) = out else {
            panic!("JoinHandle polled after it returned Ready: a JoinHandle yields its output once")
        };
        // SAFETY: the JoinHandle passes a `*mut Poll<Result<F::Output, JoinError>>`.
        unsafe { *(dst as *mut Poll<Result<F::Output, JoinError>>) = Poll::Ready(out) };
    }
}

/// `true` when the output may be taken; otherwise `waker` is registered.
fn can_read_output<F: Future, S>(cell: &Cell<F, S>, waker: &Waker) -> bool {
    let state = &cell.header.state;
    let snap = state.load();
    if snap.has(super::state::COMPLETE) {
        return true;
    }
    if snap.has(JOIN_WAKER) {
        // SAFETY: the join_waker row "set": nobody writes the slot (only we may, after
        // clearing the bit).
        let same = unsafe { cell.with_join_waker(|w| w.is_some_and(|w| w.will_wake(waker))) };
        if same {
            return false;
        }
        if state.unset_join_waker().is_err() {
            return true;
        }
    }
    // SAFETY: the join_waker row "clear": we are the JoinHandle and the bit is clear.
    unsafe { cell.set_join_waker(Some(waker.clone())) };
    match state.set_join_waker() {
        Ok(()) => false,
        Err(_) => {
            // SAFETY: the join_waker row "clear": the bit stayed clear, the slot is still ours.
            unsafe { cell.set_join_waker(None) };
            true
        }
    }
}

unsafe fn drop_join_handle<F: Future, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: the JoinHandle's reference keeps the task alive; `cell` is not used once that
    // reference is dropped at the end (the borrow rule, on `Header`).
    let cell = unsafe { cell::<F, S>(ptr) };
    if cell.header.state.unset_join_interested() {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the stage row "COMPLETE": the JoinHandle cleared JOIN_INTEREST after the
            // task completed, so the output is its to drop.
            unsafe { cell.with_stage(Stage::drop_in_place) }
        }));
    }
    // SAFETY: the JoinHandle's reference, given up here.
    unsafe { RawTask::from_raw(ptr).drop_reference() }
}

/// Reports a waker operation on the task's span, as tokio does for console-subscriber.
///
/// # Safety
///
/// The caller holds a reference to the task for the whole call (the borrow rule, on `Header`).
unsafe fn trace_waker<F: Future, S: Schedule>(ptr: NonNull<Header>, op: &'static str) {
    // SAFETY: per the caller.
    let cell = unsafe { cell::<F, S>(ptr) };
    if let Some(id) = cell.span.as_deref().and_then(tracing::Span::id) {
        tracing::trace!(target: "runtime::waker", op, task.id = id.into_u64());
    }
}

unsafe fn shutdown<F: Future, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: the caller's owned-list reference keeps the task alive; `cell` is not used once
    // that reference is given up (the borrow rule).
    let cell = unsafe { cell::<F, S>(ptr) };
    if cell.header.state.transition_to_shutdown() {
        // SAFETY: the transition gave us RUNNING.
        let out = unsafe { cancel_future(cell) };
        // SAFETY: the transition gave us RUNNING; the list's reference is given up here.
        unsafe { finish::<F, S>(ptr, out, 1) };
    } else {
        // Running elsewhere (it sees CANCELLED when its poll returns) or complete.
        // SAFETY: the caller's reference, given up here.
        unsafe { RawTask::from_raw(ptr).drop_reference() }
    }
}
