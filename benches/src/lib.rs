//! Workloads for side-by-side benchmarks of pinwheel and tokio.
//!
//! Each workload is written once, generic over [`Exec`], so both runtimes run the very same
//! code; only spawning, blocking and yielding differ. The synchronisation the workloads use
//! (std channels, `tokio::sync::oneshot`) works on any executor.

use std::time::Duration;

pub mod ecosystem;
pub mod exec;
pub mod floor;
pub mod net;
pub mod rt;
pub mod runner;
pub mod soak;
pub mod sys;
pub mod time;
pub mod tpc;

pub use exec::*;
pub use rt::*;
pub use sys::*;
pub use time::*;

/// A benchmark workload: state kept across iterations, and one iteration.
pub trait Workload<E: Exec> {
    /// Runs one iteration.
    fn iter(&mut self, rt: &E);

    /// Time an iteration cannot go below whatever the runtime (a sleep's own length): the
    /// runner compares the time above it.
    fn floor(&self) -> Duration {
        Duration::ZERO
    }
}
