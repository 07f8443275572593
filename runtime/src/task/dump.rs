//! The task dump ([`TaskDump`], HAProxy's `show tasks`): what each live task is doing, read
//! from its header under the owned list's lock.

use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::raw::{NEVER_POLLED, RawTask};
use super::state::{CANCELLED, COMPLETE, NOTIFIED, RUNNING};
use super::{Id, ThreadMask};

/// What a task is doing, as a dump sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskState {
    /// Waiting for a wake-up.
    Idle,
    /// Woken, in a run queue.
    Scheduled,
    /// Being polled now.
    Running,
    /// Aborted; its future is being dropped.
    Cancelled,
    /// Done; its output waits for the JoinHandle.
    Complete,
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskState::Idle => "idle",
            TaskState::Scheduled => "scheduled",
            TaskState::Running => "running",
            TaskState::Cancelled => "cancelled",
            TaskState::Complete => "complete",
        })
    }
}

/// One live task, as [`Handle::dump_tasks`](crate::Handle::dump_tasks) saw it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TaskInfo {
    /// The task's id.
    pub id: Id,
    /// Its name, when it was spawned through a [`Builder`](crate::task::Builder) with one.
    pub name: Option<Arc<str>>,
    /// The workers that may poll it.
    pub mask: ThreadMask,
    /// `true` for a `spawn_local` task (its future need not be `Send`).
    pub local: bool,
    /// What it is doing.
    pub state: TaskState,
    /// Where it was spawned.
    pub location: &'static Location<'static>,
    /// Time since a worker last started polling it (as that worker's clock read it at the
    /// start of its loop turn); `None` when it was never polled.
    pub since_last_poll: Option<Duration>,
    /// Its scheduling class.
    pub class: super::Class,
}

impl TaskInfo {
    pub(crate) fn of(
        task: RawTask,
        name: Option<Arc<str>>,
        since: impl Fn(u32) -> Duration,
    ) -> TaskInfo {
        let h = task.header();
        let s = h.state.load();
        let state = if s.has(COMPLETE) {
            TaskState::Complete
        } else if s.has(CANCELLED) {
            TaskState::Cancelled
        } else if s.has(RUNNING) {
            TaskState::Running
        } else if s.has(NOTIFIED) {
            TaskState::Scheduled
        } else {
            TaskState::Idle
        };
        let last = h.last_poll.load(std::sync::atomic::Ordering::Relaxed);
        TaskInfo {
            id: h.id,
            name,
            mask: h.mask,
            local: h.flags & super::FLAG_LOCAL != 0,
            state,
            location: h.location,
            since_last_poll: (last != NEVER_POLLED).then(|| since(last)),
            class: h.class(),
        }
    }
}

/// The live tasks of a runtime: HAProxy's `show tasks`. `Display` renders a table.
///
/// ```
/// let rt = pinwheel::Builder::new().worker_threads(1).build()?;
/// let _idle = rt.block_on(async {
///     pinwheel::task::Builder::new()
///         .name("forever")
///         .spawn(std::future::pending::<()>())
/// });
/// let dump = rt.handle().dump_tasks();
/// assert!(dump.tasks.iter().any(|t| t.name.as_deref() == Some("forever")));
/// println!("{dump}");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TaskDump {
    /// The tasks, by id.
    pub tasks: Vec<TaskInfo>,
    /// When the dump was taken.
    pub taken_at: Instant,
}

impl fmt::Display for TaskDump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:>8} {:<20} {:>18} {:<5} {:<6} {:<9} {:>12}  spawned at",
            "id", "name", "mask", "local", "class", "state", "last poll"
        )?;
        for t in &self.tasks {
            let since = match t.since_last_poll {
                Some(d) => format!("{:.1} ms ago", d.as_secs_f64() * 1e3),
                None => "never".to_owned(),
            };
            writeln!(
                f,
                "{:>8} {:<20} {:>18} {:<5} {:<6} {:<9} {:>12}  {}",
                t.id.as_u64(),
                t.name.as_deref().unwrap_or("-"),
                format!("{:#x}", t.mask.bits()),
                if t.local { "yes" } else { "no" },
                t.class,
                t.state,
                since,
                t.location
            )?;
        }
        writeln!(f, "{} live tasks", self.tasks.len())
    }
}
