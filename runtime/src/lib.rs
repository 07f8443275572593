//! # pinwheel
//!
//! A multi-threaded async runtime for network services, whose scheduler follows HAProxy's:
//! every task carries a [`ThreadMask`] saying which worker threads may poll it. Most tasks may
//! run anywhere and are work-stolen; a session can be pinned to the worker whose I/O it owns, so
//! its events and its code never cross threads.
//!
//! ## The shortest program
//!
//! [`#[pinwheel::main]`](main) starts a runtime (one worker per CPU, or `worker_threads = N`)
//! and runs `async fn main` on it; [`#[pinwheel::test]`](test) does the same for a test.
//!
//! ```
//! #[pinwheel::main(worker_threads = 2)]
//! async fn main() -> Result<(), pinwheel::JoinError> {
//!     let answer = pinwheel::spawn(async { 6 * 7 }).await?;
//!     assert_eq!(answer, 42);
//!     Ok(())
//! }
//! ```
//!
//! ## Starting a runtime and spawning
//!
//! ```
//! let rt = pinwheel::Builder::new().worker_threads(2).build()?;
//! let sum = rt.block_on(async {
//!     let handles: Vec<_> = (0..10u64).map(|i| pinwheel::spawn(async move { i * i })).collect();
//!     let mut sum = 0;
//!     for h in handles {
//!         sum += h.await.unwrap();
//!     }
//!     sum
//! });
//! assert_eq!(sum, 285);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## Thread masks and pinned tasks
//!
//! [`spawn_on`] restricts a `Send` future to some workers; [`spawn_local`] pins a future that
//! need not be `Send` to the calling worker, for the whole of its life, drop included.
//!
//! ```
//! use pinwheel::ThreadMask;
//! use std::rc::Rc;
//!
//! let rt = pinwheel::Builder::new().worker_threads(2).build()?;
//! let on = rt.block_on(rt.handle().spawn_on(ThreadMask::one(1), async {
//!     // An Rc may live in a pinned task: it never leaves worker 1.
//!     let local = pinwheel::spawn_local(async {
//!         let here = Rc::new(pinwheel::current_worker());
//!         pinwheel::yield_now().await;
//!         *here
//!     });
//!     local.await.unwrap()
//! }));
//! assert_eq!(on.unwrap(), Some(1));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## Sessions: a connection pinned to the worker that owns its socket
//!
//! [`net::serve`] accepts connections and calls the factory *on the worker that will own the
//! connection*; the session it returns is spawned pinned there, so its socket's events and its
//! code never cross threads, and it may hold `Rc`/`RefCell` state. [`net::serve_with`] chooses
//! how connections are spread ([`net::Balance`]: round-robin, least-loaded, the accepting
//! thread, or one `SO_REUSEPORT` listener per worker).
//!
//! ```
//! use std::cell::Cell;
//! use std::rc::Rc;
//! use pinwheel::net::{Server, TcpListener, TcpStream};
//!
//! #[pinwheel::main(worker_threads = 2)]
//! async fn main() -> std::io::Result<()> {
//!     let listener = TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?;
//!     let server = Server::new();
//!     let serving = server.clone();
//!     let accept = pinwheel::spawn(async move {
//!         serving.serve(listener, |stream: TcpStream, _peer| async move {
//!             let count = Rc::new(Cell::new(0)); // !Send state is fine here
//!             let mut buf = [0u8; 64];
//!             while let Ok(n @ 1..) = stream.read(&mut buf).await {
//!                 count.set(count.get() + n);
//!                 let _ = stream.write_all(&buf[..n]).await;
//!             }
//!         }).await
//!     });
//!     let client = TcpStream::connect(addr).await?;
//!     client.write_all(b"ping").await?;
//!     let mut back = [0u8; 4];
//!     client.read_exact(&mut back).await?;
//!     assert_eq!(&back, b"ping");
//!     drop(client);
//!     server.stop(); // stop accepting; drain() waits for live sessions
//!     accept.await.unwrap()
//! }
//! ```
//!
//! ## Work lists: handing work to a given thread
//!
//! A [`WorkList`] is one mailbox per worker, each drained by a handler task pinned to that
//! worker (HAProxy's `work_list`): push an item to thread `i`, and the handler runs there, with
//! per-thread state that needs no lock. See the [`work_list`] module.
//!
//! ```
//! #[pinwheel::main(worker_threads = 2)]
//! async fn main() {
//!     let (tx, rx) = std::sync::mpsc::channel();
//!     let list = pinwheel::WorkList::new(move |item: &'static str| {
//!         tx.send((pinwheel::current_worker(), item)).unwrap();
//!     });
//!     list.push(1, "for worker 1").unwrap();
//!     assert_eq!(rx.recv().unwrap(), (Some(1), "for worker 1"));
//! }
//! ```
//!
//! ## Time
//!
//! [`time::sleep`], [`time::timeout`] and [`time::interval`] run on a timer wheel per worker:
//! arming and cancelling a timer is O(1), takes no lock and allocates nothing, and a
//! [`time::Sleep`] pushed later with `reset` costs a field write.
//!
//! ```
//! use std::time::Duration;
//! use pinwheel::time::{sleep, timeout};
//!
//! #[pinwheel::main(worker_threads = 1)]
//! async fn main() {
//!     let slow = timeout(Duration::from_millis(10), sleep(Duration::from_secs(60))).await;
//!     assert!(slow.is_err());
//!     let fast = timeout(Duration::from_secs(60), async { 7 }).await;
//!     assert_eq!(fast.unwrap(), 7);
//! }
//! ```
//!
//! ## Networking
//!
//! [`net`] has [`TcpListener`](net::TcpListener), [`TcpStream`](net::TcpStream) (with
//! `futures_io` traits, split halves, `try_read`/`try_write`),
//! [`TcpSocket`](net::TcpSocket) for socket options, [`UdpSocket`](net::UdpSocket), and on
//! Unix [`UnixListener`](net::UnixListener), [`UnixStream`](net::UnixStream) and
//! [`UnixDatagram`](net::UnixDatagram). Each worker has its own `mio` poller: a socket created
//! in a task registers with the worker running it. [`net::serve`] takes a TCP or a Unix
//! listener. [`signal::ctrl_c`] and `signal::unix::signal` wait for signals.
//!
//! ## The tokio ecosystem
//!
//! - Feature `tokio-io`: tokio's `AsyncRead`/`AsyncWrite` on the stream sockets and their
//!   halves (tokio itself comes without any runtime feature). tokio-rustls, tokio-util's
//!   codecs, hyper-util's `TowerToHyperService` (axum), tonic's services and "bring your own
//!   stream" clients take pinwheel's sockets natively.
//! - Feature `hyper`: the `pinwheel::hyper` module runs hyper 1.x on pinwheel (executor,
//!   timer, and hyper's I/O traits on the stream sockets).
//! - Feature `tokio-compat`: the `pinwheel::compat` bridge polls a future inside a small
//!   tokio runtime of its own, for client crates that need tokio's reactor, timers or spawn
//!   (reqwest, tonic's `Channel`).
//! - tokio-console lists pinwheel's tasks (names, spawn locations, polls, wakes) with no
//!   feature: the task spans are the ones console-subscriber reads. Feature `console` adds the
//!   timers (`time::sleep`, `time::timeout`, `time::interval`) to its resources view; without
//!   it a timer pays nothing for the console.
//!
//! **Where is `pinwheel::sync`?** There is none on purpose: channels and locks that do not
//! depend on a runtime work between pinwheel tasks on any workers, and they are well kept
//! elsewhere: `async-channel` (MPMC channels), `async-lock` (`Mutex`, `RwLock`, `Semaphore`,
//! `Barrier`), `futures::channel` (`mpsc`, `oneshot`), `event-listener`. The interop tests of
//! the repository run each between tasks pinned to different workers.
//!
//! ## Metrics
//!
//! [`Runtime::metrics`] (or [`Handle::metrics`]) reads each worker's counters without
//! stopping it: tasks polled, local and remote wakes, steals, parks, mailbox items, timers
//! fired, I/O events. Its `Display` is a table, one row per thread, like HAProxy's
//! `show activity`.
//!
//! ```
//! let rt = pinwheel::Builder::new().worker_threads(2).build()?;
//! rt.block_on(async { pinwheel::spawn(async {}).await.unwrap() });
//! let m = rt.metrics();
//! assert!(m.total().tasks_polled >= 1);
//! assert_eq!(m.workers().len(), 2);
//! println!("{m}");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## Blocking work
//!
//! [`spawn_blocking`] runs a closure on a separate, bounded pool of threads, so file I/O,
//! name resolution or heavy computation never stall a worker; host names given to
//! `bind`/`connect` are resolved there.
//!
//! ## Operating it: task dump, watchdog, placement
//!
//! - [`Handle::dump_tasks`] lists the live tasks (id, name, mask, state, spawn location, time
//!   since last poll), HAProxy's `show tasks`; name tasks with [`task::Builder`].
//! - The watchdog reports a task poll longer than [`Builder::long_poll_threshold`] (default
//!   100 ms) with a `tracing` warning naming the task and the thread, and a worker that stops
//!   turning while work waits for it; both are counted in the metrics.
//! - [`Builder::worker_cpus`] / [`Builder::pin_workers`] bind workers to CPUs (HAProxy's
//!   `cpu-map`); [`Builder::on_thread_start`] / [`Builder::on_thread_stop`] run hooks.
//! - Each task has a `tracing` span (id, name, spawn location) entered on every poll, with
//!   trace-level events for wake, poll and complete under the `pinwheel::task` target; they
//!   cost nothing measurable when no subscriber listens or when it filters them out. The span
//!   is the one tokio-console's console-subscriber reads (`runtime.spawn`), and wakers report
//!   their operations, so tokio-console lists pinwheel's tasks.
//! - [`profile`]: task profiling (HAProxy's `show profiling`) through [`Handle::profile`];
//!   each worker's average loop turn and stolen time are in [`WorkerMetrics`].
//! - [`task::Class`]: scheduling classes (Urgent, Normal, Bulk, Heavy) sharing each worker's
//!   turn, so heavy work never drowns live sessions.
//!
//! ## Guarantees
//!
//! - One heap allocation per task (header, future and output together).
//! - A wake during a poll re-runs the task after that poll: never lost, never polled twice at
//!   once.
//! - A task is only ever polled on a thread in its mask.
//! - A panic in a task is caught and handed to its [`JoinHandle`] as a [`JoinError`].
//! - Dropping the [`Runtime`] drops every unfinished future exactly once.

#![cfg_attr(loom, allow(dead_code, unused_imports))]

mod blocking;
#[cfg(all(feature = "tokio-compat", not(loom)))]
pub mod compat;
mod hooks;
#[cfg(all(feature = "hyper", not(loom)))]
pub mod hyper;
pub mod io;
mod join_set;
mod local_set;
mod loom;
mod metrics;
pub mod net;
mod placement;
pub mod profile;
mod runtime;
mod scheduler;
pub mod signal;
mod spawn;
pub mod task;
pub mod time;
mod watchdog;
pub mod work_list;

/// Entry points for the fuzz targets in `fuzz/` (built with `--cfg fuzzing`); not an API.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    /// Runs the task state protocol model (task/state_model.rs) over `ops`.
    pub fn task_state(ops: &[u8]) {
        crate::task::state_model::run(ops);
    }
}

pub use metrics::{RuntimeMetrics, WorkerMetrics};
/// Runs `async fn main` on a pinwheel runtime: see [the crate docs](crate#the-shortest-program).
///
/// Arguments: `flavor = "multi_thread"` (the default) or `"current_thread"`, `worker_threads =
/// N` (1 to 64, multi-thread; default `PINWHEEL_WORKER_THREADS`, else one per CPU),
/// `start_paused = true` (current-thread only) and `crate = "path"` (when `pinwheel` is
/// re-exported under another path). `main` may return a `Result`.
#[cfg(not(loom))]
pub use pinwheel_macros::main;
/// Runs an `async fn` test on a fresh runtime: a current-thread one by default, as
/// `#[tokio::test]` (the test's thread is the only worker); with `worker_threads = N` or
/// `flavor = "multi_thread"`, N workers (default 2); `start_paused = true` pauses its clock
/// (see [`time::pause`]). It adds `#[test]` itself. Works with
/// `#[should_panic]` and with tests returning `Result`.
///
/// ```
/// #[pinwheel::test]
/// async fn spawns() {
///     assert_eq!(pinwheel::spawn(async { 40 + 2 }).await.unwrap(), 42);
/// }
/// ```
#[cfg(not(loom))]
pub use pinwheel_macros::test;
pub use runtime::{
    BlockingRunning, Builder, EnterGuard, Handle, MAX_WORKERS, Runtime, RuntimeFlavor,
    ShutdownReport, StuckWorker, TryCurrentError,
};
pub use scheduler::current_worker;
pub use spawn::{YieldNow, spawn, spawn_blocking, spawn_local, spawn_on, yield_now};
pub use task::mask::ThreadMask;
pub use task::{AbortHandle, JoinError, JoinHandle};
pub use work_list::{PushError, PushErrorKind, WorkList};
