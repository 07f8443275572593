//! Task-local values: [`task_local!`](crate::task_local), tokio's, and the [`LocalKey`] it
//! declares. A value is set for the length of a future ([`LocalKey::scope`]) or a closure
//! ([`LocalKey::sync_scope`]): each poll of the scoped future swaps the value into a thread-local
//! cell, polls, and swaps it back out, so it follows the task whichever worker polls it.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Declares task-local values (tokio's `task_local!`): each is a [`LocalKey`], set for the
/// length of a future with [`scope`](LocalKey::scope) and read inside it with
/// [`with`](LocalKey::with) / [`try_with`](LocalKey::try_with) / [`get`](LocalKey::get).
///
/// ```
/// pinwheel::task_local! {
///     static REQUEST_ID: u64;
/// }
///
/// let rt = pinwheel::Builder::new_current_thread().build()?;
/// let seen = rt.block_on(REQUEST_ID.scope(42, async {
///     pinwheel::yield_now().await;
///     REQUEST_ID.get()
/// }));
/// assert_eq!(seen, 42);
/// assert!(REQUEST_ID.try_with(|_| ()).is_err(), "not set outside its scope");
/// # Ok::<(), std::io::Error>(())
/// ```
#[macro_export]
macro_rules! task_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty; $($rest:tt)*) => {
        $(#[$attr])*
        $vis static $name: $crate::task::LocalKey<$t> = {
            ::std::thread_local! {
                static __KEY: ::std::cell::RefCell<::core::option::Option<$t>> =
                    const { ::std::cell::RefCell::new(::core::option::Option::None) };
            }
            $crate::task::LocalKey::__new(&__KEY)
        };
        $crate::task_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty) => {
        $crate::task_local!($(#[$attr])* $vis static $name: $t;);
    };
}

/// A task-local key, declared by [`task_local!`](crate::task_local).
pub struct LocalKey<T: 'static> {
    inner: &'static std::thread::LocalKey<RefCell<Option<T>>>,
}

/// The error of [`LocalKey::try_with`] outside the value's scope (or while the value is
/// borrowed mutably, inside a nested `sync_scope` closure).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessError(());

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task-local value not set: read it inside LocalKey::scope or sync_scope")
    }
}

impl std::error::Error for AccessError {}

impl<T: 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn __new(inner: &'static std::thread::LocalKey<RefCell<Option<T>>>) -> Self {
        LocalKey { inner }
    }

    /// Runs `future` with the value set to `value`: inside it (across awaits, on whichever
    /// worker polls it), [`with`](Self::with) sees `value`.
    pub fn scope<F: Future>(&'static self, value: T, future: F) -> TaskLocalFuture<T, F> {
        TaskLocalFuture {
            key: self,
            slot: Some(value),
            future: Some(future),
        }
    }

    /// Runs `f` with the value set to `value`.
    pub fn sync_scope<R>(&'static self, value: T, f: impl FnOnce() -> R) -> R {
        let mut slot = Some(value);
        self.with_swapped(&mut slot, f)
    }

    /// Puts `slot`'s value in the cell for the length of `f`, then back in `slot` (also when
    /// `f` unwinds).
    fn with_swapped<R>(&'static self, slot: &mut Option<T>, f: impl FnOnce() -> R) -> R {
        struct Restore<'a, T: 'static> {
            key: &'static std::thread::LocalKey<RefCell<Option<T>>>,
            slot: &'a mut Option<T>,
        }
        impl<T: 'static> Drop for Restore<'_, T> {
            fn drop(&mut self) {
                let _ = self
                    .key
                    .try_with(|c| std::mem::swap(self.slot, &mut *c.borrow_mut()));
            }
        }
        self.inner.with(|c| {
            let mut cell = c.try_borrow_mut().unwrap_or_else(|_| {
                panic!(
                    "pinwheel::task::LocalKey: the value is borrowed (a scope entered from inside `with`); end the `with` first"
                )
            });
            std::mem::swap(slot, &mut *cell);
        });
        let _restore = Restore {
            key: self.inner,
            slot,
        };
        f()
    }

    /// Runs `f` with a reference to the value.
    ///
    /// # Panics
    ///
    /// Outside a [`scope`](Self::scope) or [`sync_scope`](Self::sync_scope) of this key.
    #[track_caller]
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        match self.try_with(f) {
            Ok(r) => r,
            Err(e) => panic!("pinwheel::task::LocalKey::with: {e}"),
        }
    }

    /// Runs `f` with a reference to the value, or says it is not set.
    ///
    /// # Errors
    ///
    /// [`AccessError`] outside a scope of this key.
    pub fn try_with<R>(&'static self, f: impl FnOnce(&T) -> R) -> Result<R, AccessError> {
        self.inner
            .try_with(|c| {
                let cell = c.try_borrow().ok()?;
                cell.as_ref().map(f)
            })
            .ok()
            .flatten()
            .ok_or(AccessError(()))
    }

    /// A copy of the value.
    ///
    /// # Panics
    ///
    /// Outside a scope of this key.
    #[track_caller]
    pub fn get(&'static self) -> T
    where
        T: Clone,
    {
        self.with(T::clone)
    }
}

impl<T: 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("LocalKey { .. }")
    }
}

/// The future of [`LocalKey::scope`].
pub struct TaskLocalFuture<T: 'static, F> {
    key: &'static LocalKey<T>,
    /// The value while the future is not being polled.
    slot: Option<T>,
    /// `None` once it completed (then it is dropped at once, inside the scope).
    future: Option<F>,
}

impl<T: 'static, F: Future> Future for TaskLocalFuture<T, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `future` is never moved out of its place while pinned: it is polled through
        // a re-pinned reference and dropped in place (`Option::take` is never used on it;
        // `set(None)` drops it where it lives); `slot` and `key` are not structurally pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let (key, slot, future) = (this.key, &mut this.slot, &mut this.future);
        key.with_swapped(slot, || {
            let Some(f) = future.as_mut() else {
                panic!("pinwheel::task::TaskLocalFuture polled after it completed");
            };
            // SAFETY: as above: `f` lives in `this.future`, which is pinned with `self`.
            let out = unsafe { Pin::new_unchecked(f) }.poll(cx);
            if out.is_ready() {
                // Dropped in place, with the value still set.
                *future = None;
            }
            out
        })
    }
}

impl<T: 'static, F> Drop for TaskLocalFuture<T, F> {
    fn drop(&mut self) {
        // The future is dropped with its value set, as tokio's is (its destructor may read it).
        if self.future.is_some() && self.slot.is_some() {
            let (key, slot, future) = (self.key, &mut self.slot, &mut self.future);
            key.with_swapped(slot, || *future = None);
        }
    }
}

impl<T: 'static, F> fmt::Debug for TaskLocalFuture<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskLocalFuture")
            .field("completed", &self.future.is_none())
            .finish()
    }
}
