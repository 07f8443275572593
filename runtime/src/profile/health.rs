//! Loop health (HAProxy's `avg_loop_us` and `cpust`): each worker's average loop turn and the
//! time the OS stole from it, and `Mode::Auto`'s switch, which they drive.

use std::sync::atomic::Ordering::*;
use std::time::{Duration, Instant};

use super::Mode;
use super::record::{LocalProfile, Profiler, WorkerProfile, now_nanos};
use crate::metrics::single_writer_add;

/// The sliding average covers about this many loop turns.
const LOOP_SAMPLES: u64 = 1024;
/// A window of work is closed (and its stolen time counted) after this long.
const WINDOW: Duration = Duration::from_millis(1);
/// A window counts as stolen when it lost at least this much.
const STOLEN_MIN: Duration = Duration::from_micros(500);
/// `Mode::Auto` turns a worker's profiling on above this average loop turn...
const AUTO_ON: Duration = Duration::from_millis(1);
/// ... and off below this one.
const AUTO_OFF: Duration = Duration::from_micros(990);

impl LocalProfile {
    /// A loop turn starts at `now` (the clock reading of its timers). Ends the previous turn
    /// if it did not park, keeps the stolen-time window, and applies the mode.
    pub(crate) fn turn_starts(&self, now: Instant, profiler: &Profiler, shared: &WorkerProfile) {
        if let Some(start) = self.turn_start.replace(Some(now)) {
            self.turn_ends(start, now, shared);
        }
        if self.streak_start.get().is_none() {
            self.streak_start.set(Some(now));
        }
        self.check_window(now, false, shared);
        let avg = Duration::from_nanos(self.loop_sum.get() / LOOP_SAMPLES);
        let want = match profiler.mode() {
            Mode::Off => false,
            Mode::On => true,
            Mode::Auto if self.active.get() => avg >= AUTO_OFF,
            Mode::Auto => avg > AUTO_ON,
        };
        if want != self.active.get() {
            self.active.set(want);
            shared.active.store(want, Relaxed);
            if want {
                self.active_since.set(now_nanos());
                profiler.active_workers.fetch_add(1, Relaxed);
            } else {
                profiler.active_workers.fetch_sub(1, Relaxed);
            }
        }
    }

    /// The worker is about to sleep: its turn and its window end now.
    pub(crate) fn before_park(&self, shared: &WorkerProfile) {
        let now = Instant::now();
        if let Some(start) = self.turn_start.take() {
            self.turn_ends(start, now, shared);
        }
        self.check_window(now, true, shared);
        self.streak_start.set(None);
    }

    /// The worker stops: it no longer counts as profiling.
    pub(crate) fn stop(&self, profiler: &Profiler, shared: &WorkerProfile) {
        if self.active.replace(false) {
            shared.active.store(false, Relaxed);
            profiler.active_workers.fetch_sub(1, Relaxed);
        }
    }

    fn turn_ends(&self, start: Instant, end: Instant, shared: &WorkerProfile) {
        let took = end.saturating_duration_since(start).as_nanos() as u64;
        let sum = self.loop_sum.get();
        let sum = sum - sum / LOOP_SAMPLES + took;
        self.loop_sum.set(sum);
        shared.avg_loop_nanos.store(sum / LOOP_SAMPLES, Relaxed);
    }

    /// Opens a stolen-time window once the worker has worked for `STOLEN_MIN` since it woke,
    /// closes it after `WINDOW` (or at a park), and counts what it lost.
    fn check_window(&self, now: Instant, parking: bool, shared: &WorkerProfile) {
        match self.window.get() {
            None => {
                let worked = self
                    .streak_start
                    .get()
                    .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
                if !parking && worked >= STOLEN_MIN {
                    if let Some(cpu) = thread_cpu_time() {
                        self.window.set(Some((now, cpu)));
                    }
                }
            }
            Some((start, cpu_start)) => {
                let wall = now.saturating_duration_since(start);
                if wall < WINDOW && !parking {
                    return;
                }
                let Some(cpu) = thread_cpu_time() else {
                    self.window.set(None);
                    return;
                };
                let lost = wall.saturating_sub(cpu.saturating_sub(cpu_start));
                if lost >= STOLEN_MIN {
                    single_writer_add(&shared.stolen_nanos, lost.as_nanos() as u64);
                }
                self.window.set((!parking).then_some((now, cpu)));
            }
        }
    }
}

/// The calling thread's CPU time, where the OS has a per-thread CPU clock.
fn thread_cpu_time() -> Option<Duration> {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; the call writes only it.
        let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        (r == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }
    #[cfg(not(unix))]
    {
        None
    }
}
