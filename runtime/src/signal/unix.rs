//! Any Unix signal as a stream of deliveries: [`signal`] gives a [`Signal`] whose
//! [`recv`](Signal::recv) completes once per delivery (deliveries between two awaits count as
//! one). See the [module above](super) for how deliveries reach tasks.
//!
//! ```
//! use pinwheel::signal::unix::{SignalKind, signal};
//!
//! let rt = pinwheel::Runtime::new()?;
//! rt.block_on(async {
//!     let mut usr1 = signal(SignalKind::user_defined1())?;
//!     // Deliver one to ourselves (a shell would `kill -USR1 <pid>`).
//!     std::process::Command::new("kill")
//!         .args(["-USR1", &std::process::id().to_string()])
//!         .status()?;
//!     usr1.recv().await;
//!     std::io::Result::Ok(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```

use crate::loom::lock;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

/// The highest signal number handled (Linux's `SIGRTMAX` is 64).
const MAX_SIGNAL: usize = 64;

/// A kind of signal: a signal number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SignalKind(i32);

impl SignalKind {
    /// Any signal by its number (`libc::SIGxxx`).
    pub const fn from_raw(signum: i32) -> SignalKind {
        SignalKind(signum)
    }

    /// The signal's number.
    pub const fn as_raw_value(&self) -> i32 {
        self.0
    }

    /// `SIGINT`: Ctrl-C at a terminal.
    pub const fn interrupt() -> SignalKind {
        SignalKind(libc::SIGINT)
    }

    /// `SIGTERM`: the polite request to stop (what `kill` and service managers send).
    pub const fn terminate() -> SignalKind {
        SignalKind(libc::SIGTERM)
    }

    /// `SIGHUP`: the terminal went away; daemons take it as "reload the configuration".
    pub const fn hangup() -> SignalKind {
        SignalKind(libc::SIGHUP)
    }

    /// `SIGQUIT`.
    pub const fn quit() -> SignalKind {
        SignalKind(libc::SIGQUIT)
    }

    /// `SIGUSR1`.
    pub const fn user_defined1() -> SignalKind {
        SignalKind(libc::SIGUSR1)
    }

    /// `SIGUSR2`.
    pub const fn user_defined2() -> SignalKind {
        SignalKind(libc::SIGUSR2)
    }

    /// `SIGCHLD`: a child process changed state.
    pub const fn child() -> SignalKind {
        SignalKind(libc::SIGCHLD)
    }

    /// `SIGPIPE`.
    pub const fn pipe() -> SignalKind {
        SignalKind(libc::SIGPIPE)
    }

    /// `SIGALRM`.
    pub const fn alarm() -> SignalKind {
        SignalKind(libc::SIGALRM)
    }

    /// `SIGWINCH`: the terminal's window changed size.
    pub const fn window_change() -> SignalKind {
        SignalKind(libc::SIGWINCH)
    }
}

impl From<i32> for SignalKind {
    fn from(signum: i32) -> SignalKind {
        SignalKind(signum)
    }
}

/// One signal's state, process-wide.
struct Slot {
    /// Deliveries so far; bumped by the handler, before it writes to the pipe.
    delivered: AtomicU64,
    /// Whether the handler is installed (its installation is serialised by this lock).
    installed: Mutex<bool>,
    /// The wakers of the tasks waiting on this signal, by waiter id.
    waiters: Mutex<HashMap<u64, Waker>>,
}

/// What every signal shares: the pipe the handlers write to and the slots.
struct Globals {
    /// The pipe's write end: non-blocking, so a handler never blocks (a full pipe loses the
    /// byte, not the delivery: the count has it, and the reader wakes for the bytes there).
    /// Never closed: the handlers may run at any moment for the rest of the process.
    write: RawFd,
    slots: Vec<Slot>,
    next_waiter: AtomicU64,
}

fn globals() -> io::Result<&'static Globals> {
    static GLOBALS: OnceLock<Globals> = OnceLock::new();
    static INIT: Mutex<()> = Mutex::new(());
    if let Some(g) = GLOBALS.get() {
        return Ok(g);
    }
    let _once = lock(&INIT);
    if let Some(g) = GLOBALS.get() {
        return Ok(g);
    }
    let (read, write) = pipe()?;
    let g = GLOBALS.get_or_init(|| Globals {
        write: write.into_raw_fd(),
        slots: (0..=MAX_SIGNAL)
            .map(|_| Slot {
                delivered: AtomicU64::new(0),
                installed: Mutex::new(false),
                waiters: Mutex::new(HashMap::new()),
            })
            .collect(),
        next_waiter: AtomicU64::new(0),
    });
    std::thread::Builder::new()
        .name("pinwheel-signal".into())
        .spawn(move || reader(read, g))
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("pinwheel::signal: cannot start the signal thread: {e}"),
            )
        })?;
    Ok(g)
}

/// A pipe whose write end does not block; both ends close on exec.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded: both descriptors are open and owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: F_SETFL on a descriptor we own.
    if unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((read, write))
}

/// The signal thread: waits for bytes in the pipe, then wakes the waiters of every signal
/// whose count moved.
fn reader(read: OwnedFd, g: &'static Globals) {
    let mut seen = vec![0u64; g.slots.len()];
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: `buf` is valid for writes of its length; `read` is our open descriptor.
        let n = unsafe { libc::read(read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            // The write end is never closed; a read error here would mean the pipe is gone.
            tracing::error!(
                "pinwheel::signal: the signal pipe failed; signals are no longer delivered to tasks"
            );
            return;
        }
        for (slot, seen) in g.slots.iter().zip(seen.iter_mut()) {
            let now = slot.delivered.load(SeqCst);
            if now != *seen {
                *seen = now;
                let waiters: Vec<Waker> = lock(&slot.waiters).drain().map(|(_, w)| w).collect();
                for w in waiters {
                    w.wake();
                }
            }
        }
    }
}

/// Installs the handler of `signum` (once per process).
fn install(g: &'static Globals, signum: i32) -> io::Result<&'static Slot> {
    let slot = usize::try_from(signum)
        .ok()
        .filter(|&n| (1..=MAX_SIGNAL).contains(&n))
        .map(|n| &g.slots[n])
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "pinwheel::signal: {signum} is not a signal number (1 to {MAX_SIGNAL} here)"
                ),
            )
        })?;
    if signal_hook_registry::FORBIDDEN.contains(&signum) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "pinwheel::signal: signal {signum} cannot be waited for: SIGKILL and SIGSTOP cannot be caught, and SIGILL, SIGFPE and SIGSEGV mean the process is broken"
            ),
        ));
    }
    let mut installed = lock(&slot.installed);
    if !*installed {
        let write = g.write;
        let delivered = &slot.delivered;
        let byte = signum as u8;
        let action = move || {
            delivered.fetch_add(1, SeqCst);
            // SAFETY: write(2) is async-signal-safe; `write` is the never-closed pipe end and
            // the one-byte buffer lives on this stack. A full pipe (EAGAIN) loses the byte
            // only: the count above keeps the delivery.
            unsafe { libc::write(write, (&raw const byte).cast(), 1) };
        };
        // SAFETY: the action only does what a signal handler may: an atomic add and a write.
        unsafe { signal_hook_registry::register(signum, action) }.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("pinwheel::signal: cannot install a handler for signal {signum}: {e}"),
            )
        })?;
        *installed = true;
    }
    Ok(slot)
}

/// Creates a stream of the deliveries of `kind` from now on.
///
/// The first call for a signal installs its handler for the life of the process (the signal's
/// default action no longer runs). Works on any thread, inside a runtime or not.
///
/// # Errors
///
/// `InvalidInput` for a signal that cannot be waited for (`SIGKILL`, `SIGSTOP`, `SIGILL`,
/// `SIGFPE`, `SIGSEGV`, or a number out of range); the OS error when the handler or the
/// signal thread cannot be set up.
pub fn signal(kind: SignalKind) -> io::Result<Signal> {
    let g = globals()?;
    let slot = install(g, kind.0)?;
    Ok(Signal {
        kind,
        slot,
        seen: slot.delivered.load(SeqCst),
        id: g.next_waiter.fetch_add(1, SeqCst),
    })
}

/// The deliveries of one signal, from the moment [`signal`] made it.
pub struct Signal {
    kind: SignalKind,
    slot: &'static Slot,
    /// The delivery count this stream has reported.
    seen: u64,
    /// This stream's place among the signal's waiters.
    id: u64,
}

impl Signal {
    /// Waits for the next delivery (one that arrived since the last `recv` counts, even if
    /// nobody was awaiting then). Always `Some`: the stream never ends; the `Option` is
    /// tokio's shape.
    pub async fn recv(&mut self) -> Option<()> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next delivery; see [`recv`](Self::recv).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
        if self.take() {
            return Poll::Ready(Some(()));
        }
        {
            let mut waiters = lock(&self.slot.waiters);
            match waiters.get_mut(&self.id) {
                Some(w) if w.will_wake(cx.waker()) => {}
                Some(w) => w.clone_from(cx.waker()),
                None => {
                    waiters.insert(self.id, cx.waker().clone());
                }
            }
        }
        // Looked at again after registering: a delivery the signal thread handled before our
        // waker was in the list is seen here.
        if self.take() {
            return Poll::Ready(Some(()));
        }
        Poll::Pending
    }

    /// Takes the deliveries not yet reported; `true` if there were any.
    fn take(&mut self) -> bool {
        let now = self.slot.delivered.load(SeqCst);
        if now != self.seen {
            self.seen = now;
            true
        } else {
            false
        }
    }

    /// The signal this stream receives.
    pub fn kind(&self) -> SignalKind {
        self.kind
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        lock(&self.slot.waiters).remove(&self.id);
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signal").field("kind", &self.kind).finish()
    }
}
