//! The LIFO slot: one task a worker runs next, which an idle worker may still steal.
//!
//! A task spawned or woken by a running task usually has work for it right away (a message
//! was sent to it), so it runs next on the same thread without waking anyone. Unlike tokio's
//! slot, this one can be stolen: a worker that blocks in a long poll does not strand the task
//! in its slot while others search for work.

use std::ptr::{self, NonNull};

use crate::loom::{AtomicPtr, Ordering::AcqRel, Ordering::Relaxed};
use crate::task::{Header, Notified, RawTask};

pub(crate) struct LifoSlot(AtomicPtr<Header>);

impl LifoSlot {
    pub(crate) fn new() -> LifoSlot {
        LifoSlot(AtomicPtr::new(ptr::null_mut()))
    }

    fn swap(&self, task: Option<Notified>) -> Option<Notified> {
        let new = task.map_or(ptr::null_mut(), |t| t.into_raw().as_ptr().as_ptr());
        let old = self.0.swap(new, AcqRel);
        // SAFETY: a non-null pointer in the slot is a Notified's (a live task's header, under
        // the borrow rule), moved in by a swap; the swap that takes it out moves its reference
        // back into exactly one Notified.
        NonNull::new(old).map(|p| unsafe { Notified::from_raw(RawTask::from_raw(p)) })
    }

    /// Puts `task` in the slot; returns the task it displaced.
    pub(crate) fn replace(&self, task: Notified) -> Option<Notified> {
        self.swap(Some(task))
    }

    /// Takes the task out (the owner to run it, or a thief).
    pub(crate) fn take(&self) -> Option<Notified> {
        if self.0.load(Relaxed).is_null() {
            return None;
        }
        self.swap(None)
    }

    /// `true` when a task waits in the slot (a hint).
    pub(crate) fn is_occupied(&self) -> bool {
        !self.0.load(Relaxed).is_null()
    }
}

impl Drop for LifoSlot {
    fn drop(&mut self) {
        drop(self.take());
    }
}
