//! Signals: [`ctrl_c`], and on Unix a stream of deliveries of any signal
//! ([`unix::signal`]).
//!
//! ```no_run
//! #[pinwheel::main]
//! async fn main() -> std::io::Result<()> {
//!     println!("Ctrl-C to stop");
//!     pinwheel::signal::ctrl_c().await?;
//!     println!("stopping");
//!     Ok(())
//! }
//! ```
//!
//! # How deliveries reach tasks
//!
//! The first wait on a signal installs a handler (through `signal-hook-registry`, which chains
//! with handlers other libraries installed). The handler does the two things a signal handler
//! may do: it bumps the signal's delivery count and writes one byte to a process-wide pipe.
//! A small thread of the process (`pinwheel-signal`, started at the first wait, blocked in
//! `read` the rest of the time) wakes every task waiting on a signal whose count moved, on
//! whichever runtime it runs. A waiter remembers the count it has seen, so a delivery that
//! arrives while it is not awaiting is seen at its next await; several deliveries between two
//! awaits are seen as one, as with tokio.
//!
//! Why a thread rather than the pipe in a worker's poller: the pipe and the handler are
//! process-wide and outlive any one runtime (a runtime may shut down while another keeps
//! waiting), and a signal is rare enough that one cross-thread wake per waiter costs nothing.
//!
//! Once a handler is installed for a signal it stays for the life of the process: the
//! signal's default action (ending the process, for `SIGINT` and `SIGTERM`) no longer runs,
//! even when nobody waits any more.

#[cfg(unix)]
pub mod unix;

use std::io;

/// Waits for the next Ctrl-C (`SIGINT`) delivered to the process after this call.
///
/// The first call replaces `SIGINT`'s default action (ending the process) for the life of the
/// process: from then on a Ctrl-C only wakes the waiters.
///
/// # Errors
///
/// When the handler cannot be installed or the signal thread cannot start.
#[cfg(unix)]
pub async fn ctrl_c() -> io::Result<()> {
    let mut s = unix::signal(unix::SignalKind::interrupt())?;
    s.recv().await;
    Ok(())
}
