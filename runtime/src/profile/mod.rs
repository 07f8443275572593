//! Task profiling (HAProxy's `profiling.tasks` and `show profiling`) and loop health (HAProxy's
//! `show activity`: `avg_loop_us`, `cpust`).
//!
//! Four rooms: this one (the modes, the sampling constants, and what is measured, below);
//! `record.rs` (the recording: the runtime-wide profiler and slot registry, each worker's
//! table, the poll and wake paths); `health.rs` (each worker's loop turn and stolen time,
//! which drive `Mode::Auto`); `report.rs` (the summed [`Profile`] and its table).
//!
//! # What is recorded, and where
//!
//! Per spawn location (and task name, when set): the tasks started, their polls, the time spent
//! in those polls, and the *schedule latency* of their wakes (from the wake to the poll it
//! causes). Each worker keeps its own table (`LocalProfile`): it alone writes it, with
//! relaxed stores of atomics (no read-modify-write, no lock, no shared cache line), and
//! `Profiler::profile` sums the workers' tables when somebody asks. A location is given a
//! *slot* number once, by the runtime-wide registry (a mutex, taken once per location per
//! worker and once per task that has a name); the task's header caches its slot.
//!
//! # Clocks, and sampling
//!
//! Poll times are read from the monotonic clock (`CLOCK_MONOTONIC`, the one `Instant` reads,
//! read directly as a number of nanoseconds), not the thread's CPU clock: on
//! Linux the thread CPU clock is a system call (0.7 µs on the VM this was written on, against
//! 56 ns for the monotonic clock through the vDSO), too slow to read twice per poll. A poll's
//! wall time equals its CPU time unless the OS switched the worker out during it, which the
//! loop-health figures below report separately (stolen time).
//!
//! Even the monotonic clock costs about as much as a whole poll of a small task, so timing is
//! sampled: every poll is counted, the first [`EXACT_POLLS`] polls of each location on each
//! worker are timed, and after that one poll in [`CPU_SAMPLE`] (a per-worker countdown drawn
//! at random), each sampled poll standing for `CPU_SAMPLE` polls (an unbiased estimate of the
//! total). Schedule latency is measured on the wakes that follow timed polls: a timed poll
//! marks the task's header (`WAKE_ASKED`), the next wake of a marked task writes its time
//! there, and the poll it causes reads it (so a wake costs one compare of a header word, in
//! every mode); one spawn in [`SPAWN_SAMPLE`] is stamped too, for the latency from spawn to
//! first poll. The latency average and percentiles are those of the measured wakes.
//!
//! # What a poll costs
//!
//! A profiled poll takes one of two paths. The fast one, inlined in the worker's loop, is a
//! handful of instructions: the task's slot is the one the worker cached (a location past its
//! exact polls; or the task is new, unnamed, and spawned where the last new task was, which
//! sets its slot), its header holds no stamp, and the countdown does not pick it: the poll is
//! counted, the countdown moves. Every other poll (timed, carrying a stamp, of another
//! location than the cached one, or named and new) takes the slow path, out of line, which
//! looks the slot up, records what there is, and reads the clock if it must.
//!
//! # Modes
//!
//! [`Mode::Off`] costs one predictable branch per poll and one per wake. [`Mode::On`] profiles
//! every worker. [`Mode::Auto`] is HAProxy's `auto`: a worker profiles while its average loop
//! turn is above 1 ms, and stops once it falls below 0.99 ms.
//!
//! # Loop health
//!
//! Each worker measures each loop turn (from the clock reading its timers already take, so no
//! extra clock read but one before it parks) and keeps a sliding average over about the last
//! 1024 turns. *Stolen time* is wall time minus the thread's CPU time, over windows of about a
//! millisecond of continuous work, counted when a window lost at least 0.5 ms: the OS ran
//! something else while the worker had work. The thread CPU clock is read only once a worker
//! has worked for 0.5 ms without sleeping, then about once a millisecond, so a worker that
//! sleeps often pays nothing; what it cannot see is time stolen in the first 0.5 ms after a
//! worker wakes.

mod health;
mod record;
mod report;

use std::cell::Cell;

pub(crate) use record::{LocalProfile, Profiler, WorkerProfile, on_wake};
pub use report::{Profile, ProfileEntry};

/// Polls of a location that a worker times one by one before it starts sampling.
pub const EXACT_POLLS: u64 = 64;
/// After [`EXACT_POLLS`], one poll in this many (on average) is timed.
pub const CPU_SAMPLE: u64 = 64;
/// One spawn in this many is stamped, for the latency from a spawn to the task's first poll.
pub const SPAWN_SAMPLE: u64 = 64;

/// Whether the runtime profiles its tasks: [`Builder::task_profiling`](crate::Builder::task_profiling),
/// [`Handle::set_task_profiling`](crate::Handle::set_task_profiling).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Nothing is recorded (the default): one branch per poll and per wake.
    #[default]
    Off,
    /// Every worker records every poll.
    On,
    /// A worker records while its average loop turn exceeds 1 ms, and stops below 0.99 ms
    /// (HAProxy's `profiling.tasks auto`): profiling comes on by itself when a worker is slow.
    Auto,
}

impl Mode {
    fn to_u8(self) -> u8 {
        match self {
            Mode::Off => 0,
            Mode::On => 1,
            Mode::Auto => 2,
        }
    }

    fn from_u8(v: u8) -> Mode {
        match v {
            1 => Mode::On,
            2 => Mode::Auto,
            _ => Mode::Off,
        }
    }
}

/// The next number of a xorshift32 sequence kept in `state` (never 0 if seeded non-zero): a
/// worker's cheap randomness, for its steal victims and its profiling samples.
pub(crate) fn xorshift(state: &Cell<u32>) -> u32 {
    let mut x = state.get();
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    state.set(x);
    x
}
