//! Named tasks ([`Builder`]) and the task dump ([`TaskDump`], HAProxy's `show tasks`).

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::raw::{NEVER_POLLED, RawTask};
use super::state::{CANCELLED, COMPLETE, NOTIFIED, RUNNING};
use super::{Id, JoinHandle};
use crate::scheduler::ThreadMask;

/// What a spawn records about a task besides its future: where it was spawned and its name.
#[derive(Clone, Debug)]
pub(crate) struct TaskMeta {
    pub(crate) location: &'static Location<'static>,
    pub(crate) name: Option<Arc<str>>,
}

impl TaskMeta {
    /// The caller's location (through `#[track_caller]` frames), no name.
    #[track_caller]
    pub(crate) fn caller() -> TaskMeta {
        TaskMeta {
            location: Location::caller(),
            name: None,
        }
    }
}

/// Spawns a task with a name (shown by [`Handle::dump_tasks`](crate::Handle::dump_tasks), the
/// watchdog's warnings and `tracing` spans) and, optionally, a thread mask.
///
/// ```
/// use pinwheel::task::Builder;
///
/// let rt = pinwheel::Builder::new().worker_threads(2).build()?;
/// let out = rt.block_on(async {
///     Builder::new()
///         .name("answer")
///         .mask(pinwheel::ThreadMask::one(1))
///         .spawn(async { pinwheel::current_worker() })
///         .await
/// });
/// assert_eq!(out.unwrap(), Some(1));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a task::Builder does nothing until spawn is called"]
pub struct Builder {
    name: Option<Arc<str>>,
    mask: Option<ThreadMask>,
}

impl Builder {
    /// A builder for an unnamed task that may run on any worker.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// The task's name.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// The workers that may poll the task (default: all of them).
    pub fn mask(mut self, mask: ThreadMask) -> Builder {
        self.mask = Some(mask);
        self
    }

    /// Spawns the task on the current runtime.
    ///
    /// # Panics
    ///
    /// Panics outside a runtime, and when the mask names no worker of the current runtime.
    #[track_caller]
    pub fn spawn<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let meta = TaskMeta {
            location: Location::caller(),
            name: self.name,
        };
        let mask = self.mask;
        crate::runtime::with_current(|s| match s {
            Some(s) => {
                let mask = match mask {
                    Some(m) => {
                        crate::runtime::check_mask("task::Builder::spawn", m, s);
                        m
                    }
                    None => ThreadMask::all(),
                };
                s.spawn(future, mask, None, meta)
            }
            None => crate::no_runtime("task::Builder::spawn"),
        })
    }

    /// Spawns a future that need not be `Send`, pinned to the calling worker (see
    /// [`spawn_local`](crate::spawn_local)); a mask set on the builder is ignored.
    ///
    /// # Panics
    ///
    /// Panics when not called on a worker thread.
    #[track_caller]
    pub fn spawn_local<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let meta = TaskMeta {
            location: Location::caller(),
            name: self.name,
        };
        crate::spawn_local_with(future, meta)
    }
}

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
    /// Its name, when it was spawned through a [`Builder`] with one.
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
            "{:>8} {:<20} {:>18} {:<5} {:<9} {:>12}  spawned at",
            "id", "name", "mask", "local", "state", "last poll"
        )?;
        for t in &self.tasks {
            let since = match t.since_last_poll {
                Some(d) => format!("{:.1} ms ago", d.as_secs_f64() * 1e3),
                None => "never".to_owned(),
            };
            writeln!(
                f,
                "{:>8} {:<20} {:>18} {:<5} {:<9} {:>12}  {}",
                t.id.as_u64(),
                t.name.as_deref().unwrap_or("-"),
                format!("{:#x}", t.mask.bits()),
                if t.local { "yes" } else { "no" },
                t.state,
                since,
                t.location
            )?;
        }
        writeln!(f, "{} live tasks", self.tasks.len())
    }
}
