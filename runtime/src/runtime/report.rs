//! [`ShutdownReport`]: what `Runtime::shutdown_timeout` could not stop, and what it dropped.

use std::fmt;
use std::panic::Location;
use std::time::Duration;

use crate::task::TaskInfo;

/// What [`Runtime::shutdown_timeout`](crate::Runtime::shutdown_timeout) left behind when its
/// deadline passed, and what it dropped: tokio's users ask "what blocked my shutdown?"; this
/// says it.
///
/// ```
/// let rt = pinwheel::Runtime::new()?;
/// rt.block_on(async { pinwheel::spawn(std::future::pending::<()>()) });
/// let report = rt.shutdown_timeout(std::time::Duration::from_secs(5));
/// assert!(report.is_clean());
/// assert_eq!(report.tasks_cancelled, 1);
/// println!("{report}");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// How long the shutdown took.
    pub elapsed: Duration,
    /// The workers that had not stopped by the deadline (their threads are left running,
    /// detached), each with the task it was polling.
    pub stuck_workers: Vec<StuckWorker>,
    /// The [`spawn_blocking`](crate::spawn_blocking) closures still running at the deadline.
    pub blocking_running: Vec<BlockingRunning>,
    /// Tasks the shutdown cancelled: their futures dropped (a task being polled by a stuck
    /// worker is dropped there, when its poll returns).
    pub tasks_cancelled: u64,
    /// Blocking closures cancelled before they started.
    pub blocking_cancelled: u64,
}

/// A worker that had not stopped when the shutdown's deadline passed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StuckWorker {
    /// Its index.
    pub worker: usize,
    /// The task it was polling (its `since_last_poll` says for how long), or `None` when it
    /// was not in a task poll (a thread hook, or a task that finished meanwhile).
    pub task: Option<TaskInfo>,
}

/// A blocking closure that was still running when the shutdown's deadline passed.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct BlockingRunning {
    /// Where it was spawned.
    pub location: &'static Location<'static>,
    /// How long it had been running.
    pub running_for: Duration,
}

impl ShutdownReport {
    /// `true` when every worker stopped and no blocking closure was left running.
    pub fn is_clean(&self) -> bool {
        self.stuck_workers.is_empty() && self.blocking_running.is_empty()
    }
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "shutdown took {:.1} ms: {} tasks cancelled, {} queued blocking closures cancelled{}",
            self.elapsed.as_secs_f64() * 1e3,
            self.tasks_cancelled,
            self.blocking_cancelled,
            if self.is_clean() {
                "; every thread stopped"
            } else {
                ""
            }
        )?;
        for s in &self.stuck_workers {
            match &s.task {
                Some(t) => writeln!(
                    f,
                    "worker {} did not stop: polling task {} ({}) spawned at {}, for {}",
                    s.worker,
                    t.id.as_u64(),
                    t.name.as_deref().unwrap_or("unnamed"),
                    t.location,
                    t.since_last_poll.map_or_else(
                        || "?".to_owned(),
                        |d| format!("{:.1} ms", d.as_secs_f64() * 1e3)
                    ),
                )?,
                None => writeln!(
                    f,
                    "worker {} did not stop, and was not polling a task",
                    s.worker
                )?,
            }
        }
        for b in &self.blocking_running {
            writeln!(
                f,
                "blocking closure spawned at {} still running after {:.1} ms",
                b.location,
                b.running_for.as_secs_f64() * 1e3
            )?;
        }
        Ok(())
    }
}
