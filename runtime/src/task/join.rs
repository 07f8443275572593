use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::raw::RawTask;
use super::state::{COMPLETE, ToNotified};
use super::{Id, JoinError};

/// An owned permission to await a spawned task's output.
///
/// Awaiting it gives `Ok(output)`, or a [`JoinError`] when the task panicked or was cancelled
/// ([`abort`](Self::abort), or the runtime shut down first). Dropping it detaches the task: it
/// keeps running and its output is dropped when it finishes.
///
/// ```
/// let rt = pinwheel::Runtime::new().unwrap();
/// let handle = rt.spawn(async { 6 * 7 });
/// assert_eq!(rt.block_on(handle).unwrap(), 42);
/// ```
pub struct JoinHandle<T> {
    raw: RawTask,
    _output: PhantomData<T>,
}

// SAFETY: the handle only moves the output `T` across threads (when it is `Send`); everything
// else it touches is synchronised by the task state word.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: `&JoinHandle` only reads the state word and the id.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> Unpin for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    /// # Safety
    ///
    /// The caller gives the handle the task's JOIN_INTEREST and one reference; `T` is the
    /// task's output type.
    pub(crate) unsafe fn from_raw(raw: RawTask) -> JoinHandle<T> {
        JoinHandle {
            raw,
            _output: PhantomData,
        }
    }

    /// Cancels the task. If it is idle, its future is dropped on a thread of its mask at the next
    /// opportunity; if it is being polled, right after that poll. Awaiting the handle then gives
    /// a [`JoinError`] whose `is_cancelled()` is true, unless the task finished first.
    pub fn abort(&self) {
        abort(self.raw);
    }

    /// `true` once the task has finished: output stored, panicked, or cancelled.
    pub fn is_finished(&self) -> bool {
        self.raw.header().state.load().has(COMPLETE)
    }

    /// The task's id.
    pub fn id(&self) -> Id {
        self.raw.header().id
    }

    /// A handle that can cancel the task but not await it, and may outlive this one.
    pub fn abort_handle(&self) -> AbortHandle {
        self.raw.header().state.ref_inc();
        AbortHandle { raw: self.raw }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // A resource of the cooperative budget: awaiting finished tasks in a loop yields too.
        super::coop::budgeted(cx, |cx| self.poll_output(cx))
    }
}

impl<T> JoinHandle<T> {
    /// The output, once the task is done; otherwise `cx`'s waker is kept for its completion.
    fn poll_output(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>> {
        let mut out: Poll<Result<T, JoinError>> = Poll::Pending;
        // SAFETY: the handle holds a reference and JOIN_INTEREST; `out` has the output type
        // the vtable writes.
        unsafe {
            (self.raw.header().vtable.try_read_output)(
                self.raw.as_ptr(),
                &mut out as *mut _ as *mut (),
                cx.waker(),
            );
        }
        out
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        // SAFETY: the handle gives up its interest and reference exactly once.
        unsafe { (self.raw.header().vtable.drop_join_handle)(self.raw.as_ptr()) }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Cancels a task without owning its output; cheap to clone, `Send + Sync`.
///
/// ```
/// let rt = pinwheel::Runtime::new().unwrap();
/// let handle = rt.spawn(std::future::pending::<()>());
/// let abort = handle.abort_handle();
/// abort.abort();
/// assert!(rt.block_on(handle).unwrap_err().is_cancelled());
/// ```
pub struct AbortHandle {
    raw: RawTask,
}

impl AbortHandle {
    /// Cancels the task; see [`JoinHandle::abort`].
    pub fn abort(&self) {
        abort(self.raw);
    }

    /// `true` once the task has finished.
    pub fn is_finished(&self) -> bool {
        self.raw.header().state.load().has(COMPLETE)
    }

    /// The task's id.
    pub fn id(&self) -> Id {
        self.raw.header().id
    }
}

impl Clone for AbortHandle {
    fn clone(&self) -> Self {
        self.raw.header().state.ref_inc();
        AbortHandle { raw: self.raw }
    }
}

impl Drop for AbortHandle {
    fn drop(&mut self) {
        // SAFETY: the handle's own reference.
        unsafe { self.raw.drop_reference() }
    }
}

impl fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortHandle")
            .field("id", &self.id())
            .finish()
    }
}

fn abort(raw: RawTask) {
    if raw.header().state.transition_to_notified_and_cancel() == ToNotified::Submit {
        // SAFETY: the transition made a reference for the queue.
        unsafe { (raw.header().vtable.schedule)(raw.as_ptr()) }
    }
}
