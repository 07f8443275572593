//! The `Waker` of a task: its data pointer is the task itself, each waker one reference.

use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::task::{RawWaker, RawWakerVTable, Waker};

use super::raw::{Header, RawTask};
use super::state::ToNotified;

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

fn header<'a>(data: *const ()) -> &'a Header {
    // SAFETY: a task waker's data is a live task header; the waker holds a reference.
    unsafe { &*(data as *const Header) }
}

unsafe fn clone(data: *const ()) -> RawWaker {
    header(data).state.ref_inc();
    RawWaker::new(data, &VTABLE)
}

unsafe fn wake(data: *const ()) {
    tracing::trace!(target: "pinwheel::task", task_id = header(data).id.as_u64(), "wake");
    let raw = RawTask(NonNull::from(header(data)));
    match header(data).state.transition_to_notified_by_val() {
        // SAFETY: the waker's reference goes to the queue.
        ToNotified::Submit => unsafe { (raw.header().vtable.schedule)(raw.0) },
        // SAFETY: the waker held the last reference.
        ToNotified::Dealloc => unsafe { (raw.header().vtable.dealloc)(raw.0) },
        ToNotified::Nothing => {}
    }
}

unsafe fn wake_by_ref(data: *const ()) {
    tracing::trace!(target: "pinwheel::task", task_id = header(data).id.as_u64(), "wake");
    RawTask(NonNull::from(header(data))).wake_by_ref();
}

unsafe fn drop_waker(data: *const ()) {
    // SAFETY: the waker owned one reference.
    unsafe { RawTask(NonNull::from(header(data))).drop_reference() }
}

/// A waker for a task being polled, borrowing the poller's reference instead of taking one.
pub(crate) fn waker_ref(task: RawTask) -> ManuallyDrop<Waker> {
    let raw = RawWaker::new(task.0.as_ptr() as *const (), &VTABLE);
    // SAFETY: the vtable's functions follow the RawWaker contract for task headers, and the
    // ManuallyDrop keeps the borrowed reference from being dropped; clones take their own.
    ManuallyDrop::new(unsafe { Waker::from_raw(raw) })
}
