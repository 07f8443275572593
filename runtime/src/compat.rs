//! The bridge to crates that need a tokio runtime (feature `tokio-compat`): reqwest, tonic's
//! `Channel`, sqlx with its tokio feature, anything that calls `tokio::spawn`, `tokio::time` or
//! opens `tokio::net` sockets internally.
//!
//! [`compat`] wraps a future so that each of its polls (and its drop) runs inside the context
//! of one small tokio runtime the process starts at the first use (one worker thread by
//! default, named `pinwheel-compat`; see [`configure`]).
//!
//! ```
//! use std::time::Duration;
//!
//! let rt = pinwheel::Runtime::new()?;
//! rt.block_on(async {
//!     // tokio's timer, from a pinwheel task: works through the bridge.
//!     pinwheel::compat::compat(async { tokio::time::sleep(Duration::from_millis(1)).await })
//!         .await;
//!     // tokio::spawn too: the spawned task runs on the bridge's thread.
//!     let answer = pinwheel::compat::compat(async { tokio::spawn(async { 42 }).await })
//!         .await
//!         .unwrap();
//!     assert_eq!(answer, 42);
//! });
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Make tokio's objects *inside* the wrapped future, or inside `handle().enter()` (not held
//! across an await): `compat(tokio::time::sleep(d))` builds the sleep before the bridge is
//! entered, and tokio panics there. Something built once and kept (reqwest's `Client`, a
//! tokio `Interval`) is built in the bridge's context:
//!
//! ```
//! use std::time::Duration;
//!
//! let rt = pinwheel::Runtime::new()?;
//! rt.block_on(async {
//!     let mut ticks = {
//!         let _tokio = pinwheel::compat::handle().enter();
//!         tokio::time::interval(Duration::from_millis(1))
//!     };
//!     for _ in 0..3 {
//!         pinwheel::compat::compat(ticks.tick()).await;
//!     }
//! });
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # What runs where, and what it costs
//!
//! - The wrapped future itself is polled by the pinwheel worker that polls the `Compat`, so its
//!   own code (a client's request building, response parsing) runs there.
//! - What it spawns with `tokio::spawn` runs on the bridge's tokio worker thread.
//! - Sockets it opens through `tokio::net` are registered with tokio's reactor: their
//!   readiness events are read on the bridge's thread, which wakes the pinwheel task across
//!   threads. Timers from `tokio::time` live in tokio's timer. So each I/O event or timer of a
//!   bridged future costs a cross-thread wake, and the bridge thread competes for CPU with
//!   the workers: use the bridge for clients that need it, and pinwheel's own sockets and
//!   timers (or the `tokio-io` traits on them) for the hot path of a service.
//!
//! On a runtime built with [`Builder::tokio_context(true)`](crate::Builder::tokio_context),
//! every worker thread has a tokio context of its own: tokio code needs no wrapping there, and
//! `compat` polls its future on that context, on the calling worker (the bridge is not
//! started for it).
//!
//! A tokio-only API used outside `compat` still fails as it does without a tokio runtime
//! (tokio's panic "there is no reactor running, must be called from the context of a Tokio
//! 1.x runtime"): it never hangs.

use crate::loom::lock;
use std::future::Future;
use std::io;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};

/// How the bridge's tokio runtime is built; see [`configure`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Worker threads of the bridge's tokio runtime (default 1).
    pub worker_threads: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config { worker_threads: 1 }
    }
}

impl Config {
    /// Sets the bridge's worker threads.
    pub fn worker_threads(mut self, n: usize) -> Config {
        self.worker_threads = n;
        self
    }
}

static CONFIG: Mutex<Option<Config>> = Mutex::new(None);
static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

/// Sets how the bridge's tokio runtime will be built. Call it before the first [`compat`] or
/// [`handle`].
///
/// ```
/// pinwheel::compat::configure(pinwheel::compat::Config::default().worker_threads(2))?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// `InvalidInput` when `worker_threads` is 0; an error saying so when the bridge already
/// started (the configuration would be ignored).
pub fn configure(config: Config) -> io::Result<()> {
    if config.worker_threads == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "pinwheel::compat::configure: worker_threads must be at least 1",
        ));
    }
    let mut slot = lock(&CONFIG);
    if RUNTIME.get().is_some() {
        return Err(io::Error::other(
            "pinwheel::compat::configure: the bridge's tokio runtime already started; configure it before the first compat() or handle()",
        ));
    }
    *slot = Some(config);
    Ok(())
}

fn runtime() -> &'static tokio::runtime::Runtime {
    RUNTIME.get_or_init(|| {
        let config = lock(&CONFIG).clone().unwrap_or_default();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.worker_threads)
            .thread_name("pinwheel-compat")
            .enable_all()
            .build()
            .unwrap_or_else(|e| {
                panic!("pinwheel::compat: cannot start the bridge's tokio runtime: {e}")
            })
    })
}

/// The bridge's tokio runtime handle (started on first use), for code that wants to
/// `spawn` onto it or `enter` it directly.
///
/// # Panics
///
/// When the tokio runtime cannot be started (out of threads).
pub fn handle() -> tokio::runtime::Handle {
    runtime().handle().clone()
}

/// Wraps `fut` so that it is polled, and dropped, inside the bridge's tokio runtime context.
pub fn compat<F: Future>(fut: F) -> Compat<F> {
    Compat {
        inner: ManuallyDrop::new(fut),
    }
}

/// A future polled inside the bridge's tokio runtime context; see [`compat`].
#[must_use = "futures do nothing unless polled"]
pub struct Compat<F> {
    /// Dropped by hand in `Drop`, inside the tokio context.
    inner: ManuallyDrop<F>,
}

impl<F> Compat<F> {
    /// The wrapped future, pinned.
    fn project(self: Pin<&mut Self>) -> Pin<&mut F> {
        // SAFETY: `inner` is structurally pinned: it is never moved out of a pinned `Compat`
        // (only dropped in place, in `Drop`), and `Compat` has no `Unpin` impl of its own.
        unsafe { self.map_unchecked_mut(|c| &mut *c.inner) }
    }
}

impl<F: Future> Future for Compat<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _context = enter_unless_in_tokio();
        self.project().poll(cx)
    }
}

/// Enters the bridge's tokio context, unless this thread is in one already (a worker of a
/// runtime built with `Builder::tokio_context(true)`, which then runs the future on its own
/// tokio context, on the calling worker).
fn enter_unless_in_tokio() -> Option<tokio::runtime::EnterGuard<'static>> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => None,
        Err(_) => Some(runtime().enter()),
    }
}

impl<F> Drop for Compat<F> {
    fn drop(&mut self) {
        let _context = enter_unless_in_tokio();
        // SAFETY: dropped once, here, in place (so a pinned future is never moved).
        unsafe { ManuallyDrop::drop(&mut self.inner) }
    }
}

impl<F> std::fmt::Debug for Compat<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Compat")
    }
}
