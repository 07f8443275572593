//! The `Waker` of a task: its data pointer is the task itself, each waker one reference.

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::{self, NonNull};
use std::task::{RawWaker, RawWakerVTable, Waker};

use super::raw::{Header, RawTask};
use super::state::ToNotified;

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

/// The header of the task a waker points at.
///
/// # Safety
///
/// `data` is a task waker's data pointer and the caller holds the waker's reference for as
/// long as it uses the borrow (the borrow rule, on `Header`).
unsafe fn header<'a>(data: *const ()) -> &'a Header {
    // SAFETY: per the caller.
    unsafe { &*(data as *const Header) }
}

/// # Safety
///
/// As [`header`]: `data` is a task waker's data pointer, used under the borrow rule.
unsafe fn raw(data: *const ()) -> RawTask {
    // SAFETY: a task waker's data pointer is the address of a task header (`waker_ref`, `clone`
    // make no other), never null; the caller follows the borrow rule.
    unsafe { RawTask::from_raw(NonNull::new_unchecked(data.cast_mut().cast::<Header>())) }
}

/// Reports a waker operation to tokio-console when the task is traced.
///
/// # Safety
///
/// As [`header`]: the caller holds the waker's reference for the whole call.
#[inline]
unsafe fn trace(data: *const (), op: &'static str) {
    // SAFETY: per the caller.
    let h = unsafe { header(data) };
    if h.flags & super::raw::FLAG_TRACED != 0 {
        // SAFETY: per the caller, the task is alive through the call.
        unsafe { (h.vtable.trace_waker)(NonNull::from(h), op) }
    }
}

unsafe fn clone(data: *const ()) -> RawWaker {
    // SAFETY: the waker being cloned holds a reference, and keeps it.
    unsafe { trace(data, "waker.clone") };
    // SAFETY: as above.
    unsafe { header(data) }.state.ref_inc();
    RawWaker::new(data, &VTABLE)
}

unsafe fn wake(data: *const ()) {
    // SAFETY: the waker's data pointer; see the next comment for the borrows.
    let raw = unsafe { raw(data) };
    // SAFETY: this waker's reference keeps the task alive until the transition below gives it
    // up; the header is not borrowed after that unless the transition handed the reference on
    // (Submit) or it was the last (Dealloc) (the borrow rule, on `Header`).
    let header = unsafe { header(data) };
    tracing::trace!(target: "pinwheel::task", task_id = header.id.as_u64(), "wake");
    // SAFETY: before the transition, the waker's reference is still held.
    unsafe { trace(data, "waker.wake") };
    match header.state.transition_to_notified_by_val() {
        // SAFETY: the waker's reference goes to the queue.
        ToNotified::Submit => unsafe { (raw.header().vtable.schedule)(raw.as_ptr()) },
        // SAFETY: the waker held the last reference.
        ToNotified::Dealloc => unsafe { (raw.header().vtable.dealloc)(raw.as_ptr()) },
        ToNotified::Nothing => {}
    }
}

unsafe fn wake_by_ref(data: *const ()) {
    // SAFETY: the waker's data pointer; the waker keeps its reference through this call.
    let raw = unsafe { raw(data) };
    tracing::trace!(target: "pinwheel::task", task_id = raw.header().id.as_u64(), "wake");
    // SAFETY: the waker keeps its reference through this call.
    unsafe { trace(data, "waker.wake_by_ref") };
    raw.wake_by_ref();
}

unsafe fn drop_waker(data: *const ()) {
    // SAFETY: the waker still holds its reference here.
    unsafe { trace(data, "waker.drop") };
    // SAFETY: the waker owned one reference, given up here.
    unsafe { raw(data).drop_reference() }
}

/// A waker for a task being polled, borrowing the poller's reference instead of taking one.
///
/// It lives no longer than the borrow of the header it was made from, so it cannot outlive
/// the poller's reference (the borrow rule, on `Header`); clones take references of their own.
pub(crate) struct WakerRef<'a> {
    waker: ManuallyDrop<Waker>,
    _task: PhantomData<&'a Header>,
}

impl std::ops::Deref for WakerRef<'_> {
    type Target = Waker;

    fn deref(&self) -> &Waker {
        &self.waker
    }
}

/// The waker of the task whose header is borrowed, for its poller.
pub(crate) fn waker_ref(header: &Header) -> WakerRef<'_> {
    let raw = RawWaker::new(ptr::from_ref(header).cast::<()>(), &VTABLE);
    WakerRef {
        // SAFETY: the vtable's functions follow the RawWaker contract for task headers, and the
        // ManuallyDrop keeps the borrowed reference from being dropped.
        waker: ManuallyDrop::new(unsafe { Waker::from_raw(raw) }),
        _task: PhantomData,
    }
}
