//! The synchronisation primitives the lock-free protocols are written against.
//!
//! Built normally they are `std`'s; built with `RUSTFLAGS="--cfg loom"` they are `loom`'s, so the
//! models (all in `src/loom_models/`, see its README) explore every interleaving of the very code
//! the runtime runs.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicUsize, Ordering, fence};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

/// An `UnsafeCell` whose accesses go through closures, so loom can check them for races.
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(
    #[cfg(loom)] loom::cell::UnsafeCell<T>,
    #[cfg(not(loom))] std::cell::UnsafeCell<T>,
);

impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        #[cfg(loom)]
        return Self(loom::cell::UnsafeCell::new(value));
        #[cfg(not(loom))]
        return Self(std::cell::UnsafeCell::new(value));
    }

    /// Runs `f` with a shared pointer to the value.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        #[cfg(loom)]
        return self.0.with(f);
        #[cfg(not(loom))]
        return f(self.0.get());
    }

    /// Runs `f` with a unique pointer to the value.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(loom)]
        return self.0.with_mut(f);
        #[cfg(not(loom))]
        return f(self.0.get());
    }
}

/// A mutex [`lock`] takes: `std`'s always (the runtime's locks that no model reaches, statics
/// among them), and under loom, loom's too.
pub(crate) trait Lock {
    type Guard<'a>
    where
        Self: 'a;
    fn lock_through_poison(&self) -> Self::Guard<'_>;
}

impl<T: ?Sized> Lock for std::sync::Mutex<T> {
    type Guard<'a>
        = std::sync::MutexGuard<'a, T>
    where
        Self: 'a;
    fn lock_through_poison(&self) -> Self::Guard<'_> {
        self.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(loom)]
impl<T> Lock for loom::sync::Mutex<T> {
    type Guard<'a>
        = loom::sync::MutexGuard<'a, T>
    where
        Self: 'a;
    fn lock_through_poison(&self) -> Self::Guard<'_> {
        self.lock().unwrap()
    }
}

/// Locks a mutex, going on through poisoning: the runtime's own critical sections never panic
/// half-way, so a poisoned lock only means a user callback panicked elsewhere on that thread.
pub(crate) fn lock<M: Lock + ?Sized>(m: &M) -> M::Guard<'_> {
    m.lock_through_poison()
}

/// Waits on `cond` (releasing `guard`) until woken, or until `deadline` when there is one; as
/// any condition variable, it may also return spuriously, so the caller loops on its
/// condition. Returns the guard, and `true` when `deadline` had already passed (then it did not
/// wait). The one deadline wait of the runtime's threads (shutdown, parking, the watchdog, the
/// blocking pool).
///
/// Under loom, which has no timed wait, a wait with a deadline returns at once (a spurious
/// wake-up): a model never depends on time passing.
pub(crate) fn wait_until<'a, T>(
    cond: &Condvar,
    guard: MutexGuard<'a, T>,
    deadline: Option<std::time::Instant>,
) -> (MutexGuard<'a, T>, bool) {
    let timeout = match deadline {
        None => None,
        Some(d) => match d.checked_duration_since(std::time::Instant::now()) {
            Some(left) if !left.is_zero() => Some(left),
            _ => return (guard, true),
        },
    };
    #[cfg(not(loom))]
    let guard = match timeout {
        None => cond.wait(guard).unwrap_or_else(|e| e.into_inner()),
        Some(left) => {
            cond.wait_timeout(guard, left)
                .unwrap_or_else(|e| e.into_inner())
                .0
        }
    };
    #[cfg(loom)]
    let guard = match timeout {
        None => cond.wait(guard).unwrap(),
        Some(_) => guard,
    };
    (guard, false)
}

/// Runs a loom model with at most 3 preemptions per execution, unless `LOOM_MAX_PREEMPTIONS`
/// says otherwise: enough for the protocols here, and quick enough for CI.
#[cfg(all(test, loom))]
pub(crate) fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.check(f);
}
