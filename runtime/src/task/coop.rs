//! The cooperative budget of a task's poll: how many operations on pinwheel's resources
//! (sockets, timers, `JoinHandle`s) may complete in one poll before they answer `Pending`.
//!
//! A future that is always ready (a socket with data always waiting, a timer already due)
//! would otherwise never return `Pending`: it would keep its worker to itself, starving every
//! other task there (pinned sessions included), and a `timeout` around it would never fire.
//! With the budget, its 129th operation in one poll answers `Pending` and wakes the task, which
//! goes to the back of its queue: the worker runs the others, looks at its poller and timers,
//! and polls it again with a fresh budget. tokio does the same (128 per poll).
//!
//! This is the *task's* budget, beside HAProxy's *turn* budget that pinwheel's worker loop
//! also has (at most `BUDGET` polls per turn before it looks at its inbox, the injector and its
//! poller): the turn budget bounds how long one turn keeps the others waiting when many tasks
//! are ready; the task budget bounds how long one poll does when one task always is.
//!
//! # The budget rule
//!
//! The budget lives in one thread-local cell, set to a full budget at the start of each poll of
//! a task (by the worker: [`start_poll`]) and around each poll of `block_on`'s future (saved and
//! restored); inside [`unconstrained`], and on threads that poll nothing, there is no budget
//! and every operation proceeds. An operation ([`budgeted`]) answers `Pending` when none is
//! left, and spends a unit only when it completes, so waiting costs nothing. (The cell is the
//! bottom
//! layer's own: resources of every layer read it, and it has no destructor, so reading it is
//! one access to the thread's TLS block.)

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Operations on pinwheel's resources one poll of a task may complete (tokio's figure).
pub(crate) const TASK_BUDGET: u8 = 128;

/// The cell's value when there is no budget (a plain byte, not an `Option`: one compare on
/// the hot path).
const UNCONSTRAINED: u8 = u8::MAX;

thread_local! {
    /// `n < UNCONSTRAINED`: a poll with `n` operations left; `UNCONSTRAINED`: no budget (the
    /// budget rule).
    static BUDGET: Cell<u8> = const { Cell::new(UNCONSTRAINED) };
}

/// Runs `f` (one poll of a task or of `block_on`'s future) with a full budget, restoring
/// the budget there was after (the budget rule).
#[inline]
pub(crate) fn with_budget<R>(f: impl FnOnce() -> R) -> R {
    with(TASK_BUDGET, f)
}

/// Runs `f` with no budget, restoring the budget there was after.
#[inline]
pub(crate) fn with_unconstrained<R>(f: impl FnOnce() -> R) -> R {
    with(UNCONSTRAINED, f)
}

#[inline]
fn with<R>(budget: u8, f: impl FnOnce() -> R) -> R {
    /// Restores the budget of the enclosing poll, also when `f` unwinds.
    struct Reset(u8);
    impl Drop for Reset {
        #[inline]
        fn drop(&mut self) {
            // `try_with`: a reset during the thread's TLS teardown has nothing to restore.
            let _ = BUDGET.try_with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(BUDGET.with(|c| c.replace(budget)));
    f()
}

/// Starts a task's poll on a worker: a full budget (the budget rule). Nothing is saved or
/// restored: a worker runs one poll at a time, and between its polls it runs nothing that
/// reads the budget (its loop, timers and wakers operate on no resource of a task), so what a
/// poll leaves in the cell is overwritten by the next poll's start. (A worker thread never
/// enters `block_on`, which saves and restores.)
#[inline]
pub(crate) fn start_poll() {
    BUDGET.with(|c| c.set(TASK_BUDGET));
}

/// Runs one operation on a resource under the budget: `Pending` (the task woken, to run again
/// later) when the poll's budget is spent; otherwise `op`, and one unit spent if it completed.
/// (One look at the cell before, and one write only when it completed: waiting costs
/// nothing.)
#[inline(always)]
pub(crate) fn budgeted<R>(
    cx: &mut Context<'_>,
    op: impl FnOnce(&mut Context<'_>) -> Poll<R>,
) -> Poll<R> {
    if spent(cx) {
        return Poll::Pending;
    }
    let out = op(cx);
    if out.is_ready() {
        spend();
    }
    out
}

/// `true` when the poll's budget is spent: the task is woken (it runs again after the others)
/// and the operation must answer `Pending`.
#[inline(always)]
pub(crate) fn spent(cx: &mut Context<'_>) -> bool {
    if BUDGET.with(Cell::get) == 0 {
        exhausted(cx);
        true
    } else {
        false
    }
}

/// The budget is spent: wake the task so it runs again once the others had their turn.
#[cold]
#[inline(never)]
fn exhausted(cx: &mut Context<'_>) {
    cx.waker().wake_by_ref();
}

/// An operation completed: one unit of the poll's budget is spent.
#[inline(always)]
pub(crate) fn spend() {
    BUDGET.with(|c| {
        let n = c.get();
        // 1..UNCONSTRAINED: a unit to take (0 stays 0; no budget stays none).
        if n.wrapping_sub(1) < UNCONSTRAINED - 1 {
            c.set(n - 1);
        }
    });
}

/// Uses one unit of the task's cooperative budget, and yields (the task goes to the back of
/// its worker's queue) when the budget is spent: for a loop of work that touches no pinwheel
/// resource (pure computation, a runtime-independent channel) and should still let the other
/// tasks of its worker run now and then. Outside a task, it never yields.
///
/// ```
/// let rt = pinwheel::Runtime::new()?;
/// let sum = rt.block_on(rt.spawn(async {
///     let mut sum = 0u64;
///     for i in 0..10_000u64 {
///         // Every 128 rounds, the other tasks of this worker get a turn.
///         pinwheel::task::consume_budget().await;
///         sum += i;
///     }
///     sum
/// }));
/// assert_eq!(sum.unwrap(), 49_995_000);
/// # Ok::<(), std::io::Error>(())
/// ```
pub async fn consume_budget() {
    let mut done = false;
    std::future::poll_fn(move |cx| {
        if done {
            return Poll::Ready(());
        }
        // An operation that always completes: it only spends a unit, or waits for the next
        // poll when none is left.
        let out = budgeted(cx, |_| Poll::Ready(()));
        done = out.is_ready();
        out
    })
    .await;
}

/// Runs `inner` without a cooperative budget: its operations on pinwheel's resources never
/// answer `Pending` for want of budget. For a future that must not be interrupted (and that
/// bounds its own work): it can starve the other tasks of its worker, as any future could
/// before the budget existed.
///
/// ```
/// let rt = pinwheel::Runtime::new()?;
/// rt.block_on(rt.spawn(pinwheel::task::unconstrained(async {
///     for _ in 0..1_000 {
///         // Never yields here.
///         pinwheel::task::consume_budget().await;
///     }
/// })))
/// .unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn unconstrained<F: Future>(inner: F) -> Unconstrained<F> {
    Unconstrained { inner }
}

pin_project_lite::pin_project! {
    /// The future of [`unconstrained`].
    #[must_use = "futures do nothing unless awaited"]
    #[derive(Debug)]
    pub struct Unconstrained<F> {
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for Unconstrained<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let inner = self.project().inner;
        with_unconstrained(|| inner.poll(cx))
    }
}
