//! Scheduler workloads (the `rt_*` rows): spawning, yielding, ping-pong, chained spawns,
//! and cross-thread mailboxes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc;

use crate::{Exec, Pinwheel, Tokio, Workload};

/// tokio's `spawn_many_local`: 10,000 spawns from inside `block_on`, the last one signals.
#[derive(Debug)]
pub struct SpawnManyLocal {
    tx: mpsc::SyncSender<()>,
    rx: mpsc::Receiver<()>,
    rem: Arc<AtomicUsize>,
}

/// Spawns in `spawn_many_*`.
pub const NUM_SPAWN: usize = 10_000;

impl Default for SpawnManyLocal {
    fn default() -> Self {
        let (tx, rx) = mpsc::sync_channel(1000);
        SpawnManyLocal {
            tx,
            rx,
            rem: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl<E: Exec> Workload<E> for SpawnManyLocal {
    fn iter(&mut self, rt: &E) {
        self.rem.store(NUM_SPAWN, Relaxed);
        rt.block_on(async {
            for _ in 0..NUM_SPAWN {
                let tx = self.tx.clone();
                let rem = self.rem.clone();
                drop(E::spawn(async move {
                    if 1 == rem.fetch_sub(1, Relaxed) {
                        tx.send(()).unwrap();
                    }
                }));
            }
            self.rx.recv().unwrap();
        });
    }
}

/// A variant of `spawn_many_local` where the spawns come from a task on a worker (the common
/// case in a server: a task spawning sub-tasks), not from `block_on`.
#[derive(Debug, Default)]
pub struct SpawnManyWorker(SpawnManyLocal);

impl<E: Exec> Workload<E> for SpawnManyWorker {
    fn iter(&mut self, rt: &E) {
        let s = &self.0;
        s.rem.store(NUM_SPAWN, Relaxed);
        let tx = s.tx.clone();
        let rem = s.rem.clone();
        drop(rt.spawn_outside(async move {
            for _ in 0..NUM_SPAWN {
                let tx = tx.clone();
                let rem = rem.clone();
                drop(E::spawn(async move {
                    if 1 == rem.fetch_sub(1, Relaxed) {
                        tx.send(()).unwrap();
                    }
                }));
            }
        }));
        s.rx.recv().unwrap();
    }
}

/// tokio's `spawn_many_remote_idle`: 10,000 spawns from outside an idle runtime, then all
/// JoinHandles awaited.
#[derive(Debug, Default)]
pub struct SpawnManyRemoteIdle;

impl<E: Exec> Workload<E> for SpawnManyRemoteIdle {
    fn iter(&mut self, rt: &E) {
        let mut handles = Vec::with_capacity(NUM_SPAWN);
        for _ in 0..NUM_SPAWN {
            handles.push(rt.spawn_outside(async {}));
        }
        rt.block_on(async {
            for h in handles {
                h.await;
            }
        });
    }
}

/// tokio's `yield_many`: 200 tasks, each yielding 1,000 times.
#[derive(Debug)]
pub struct YieldMany {
    tx: mpsc::SyncSender<()>,
    rx: mpsc::Receiver<()>,
}

/// Tasks in `yield_many`.
pub const YIELD_TASKS: usize = 200;
/// Yields per task in `yield_many`.
pub const NUM_YIELD: usize = 1_000;

impl Default for YieldMany {
    fn default() -> Self {
        let (tx, rx) = mpsc::sync_channel(YIELD_TASKS);
        YieldMany { tx, rx }
    }
}

impl<E: Exec> Workload<E> for YieldMany {
    fn iter(&mut self, rt: &E) {
        for _ in 0..YIELD_TASKS {
            let tx = self.tx.clone();
            drop(rt.spawn_outside(async move {
                for _ in 0..NUM_YIELD {
                    E::yield_now().await;
                }
                tx.send(()).unwrap();
            }));
        }
        for _ in 0..YIELD_TASKS {
            self.rx.recv().unwrap();
        }
    }
}

/// tokio's `ping_pong`: 1,000 pairs of tasks exchanging a oneshot message each way.
#[derive(Debug)]
pub struct PingPong {
    tx: mpsc::SyncSender<()>,
    rx: mpsc::Receiver<()>,
    rem: Arc<AtomicUsize>,
}

/// Pairs in `ping_pong`.
pub const NUM_PINGS: usize = 1_000;

impl Default for PingPong {
    fn default() -> Self {
        let (tx, rx) = mpsc::sync_channel(1000);
        PingPong {
            tx,
            rx,
            rem: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl<E: Exec> Workload<E> for PingPong {
    fn iter(&mut self, rt: &E) {
        let done_tx = self.tx.clone();
        let rem = self.rem.clone();
        rem.store(NUM_PINGS, Relaxed);
        rt.block_on(async {
            drop(E::spawn(async move {
                for _ in 0..NUM_PINGS {
                    let rem = rem.clone();
                    let done_tx = done_tx.clone();
                    drop(E::spawn(async move {
                        let (tx1, rx1) = tokio::sync::oneshot::channel::<()>();
                        let (tx2, rx2) = tokio::sync::oneshot::channel::<()>();
                        drop(E::spawn(async move {
                            rx1.await.unwrap();
                            tx2.send(()).unwrap();
                        }));
                        tx1.send(()).unwrap();
                        rx2.await.unwrap();
                        if 1 == rem.fetch_sub(1, Relaxed) {
                            done_tx.send(()).unwrap();
                        }
                    }));
                }
            }));
            self.rx.recv().unwrap();
        });
    }
}

/// tokio's `chained_spawn`: a chain of 1,000 tasks, each spawning the next.
#[derive(Debug)]
pub struct ChainedSpawn {
    tx: mpsc::SyncSender<()>,
    rx: mpsc::Receiver<()>,
}

/// Depth of the chain in `chained_spawn`.
pub const CHAIN: usize = 1_000;

impl Default for ChainedSpawn {
    fn default() -> Self {
        let (tx, rx) = mpsc::sync_channel(1000);
        ChainedSpawn { tx, rx }
    }
}

fn chain<E: Exec>(done: mpsc::SyncSender<()>, n: usize) {
    if n == 0 {
        done.send(()).unwrap();
    } else {
        drop(E::spawn(async move { chain::<E>(done, n - 1) }));
    }
}

impl<E: Exec> Workload<E> for ChainedSpawn {
    fn iter(&mut self, rt: &E) {
        let done = self.tx.clone();
        rt.block_on(async {
            drop(E::spawn(async move { chain::<E>(done, CHAIN) }));
            self.rx.recv().unwrap();
        });
    }
}

/// Items each worker sends in `mailbox`.
pub const MAILBOX_ITEMS: usize = 1_000_000;

/// Which worker receives item `k` of producer `p`: round-robin over the other workers.
fn mailbox_target(p: usize, k: usize, workers: usize) -> usize {
    if workers == 1 {
        return 0;
    }
    let j = k % (workers - 1);
    if j >= p { j + 1 } else { j }
}

/// How many items worker `t` receives in one `mailbox` iteration.
fn mailbox_expected(t: usize, workers: usize) -> usize {
    (0..workers)
        .map(|p| {
            (0..MAILBOX_ITEMS)
                .filter(|&k| mailbox_target(p, k, workers) == t)
                .count()
        })
        .sum()
}

/// `mailbox`: every worker sends 1,000,000 items, round-robin to every other worker, each
/// received by a task bound to the target thread. pinwheel uses a [`pinwheel::WorkList`]; tokio
/// the idiom a user would write instead: one unbounded `mpsc` channel per thread, received by a
/// task on a current-thread runtime of that thread (producers run there too). Producers yield
/// every 256 items on both.
#[derive(Debug, Default)]
pub struct Mailbox {
    expected: Vec<usize>,
    tokio_threads: Vec<TokioThread>,
}

impl Mailbox {
    fn expected(&mut self, workers: usize) -> Vec<usize> {
        if self.expected.len() != workers {
            self.expected = (0..workers).map(|t| mailbox_expected(t, workers)).collect();
        }
        self.expected.clone()
    }
}

/// A thread running a tokio current-thread runtime until dropped.
#[derive(Debug)]
struct TokioThread {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokioThread {
    fn start() -> TokioThread {
        let (htx, hrx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            htx.send(rt.handle().clone()).unwrap();
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                let _ = stop_rx.await;
            });
        });
        TokioThread {
            handle: hrx.recv().unwrap(),
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for TokioThread {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Workload<Pinwheel> for Mailbox {
    fn iter(&mut self, rt: &Pinwheel) {
        let workers = rt.0.worker_threads();
        let expected = Arc::new(self.expected(workers));
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let done_tx = std::sync::Mutex::new(done_tx);
        let exp = expected.clone();
        let list = rt.0.handle().work_list_with_state(
            move |t| (0usize, exp[t], done_tx.lock().unwrap().clone()),
            |(count, want, done): &mut (usize, usize, mpsc::Sender<()>), item: u64| {
                std::hint::black_box(item);
                *count += 1;
                if *count == *want {
                    done.send(()).unwrap();
                }
            },
        );
        for p in 0..workers {
            let list = list.clone();
            drop(
                rt.0.handle()
                    .spawn_on(pinwheel::ThreadMask::one(p), async move {
                        for k in 0..MAILBOX_ITEMS {
                            list.push(mailbox_target(p, k, workers), k as u64).unwrap();
                            if k % 256 == 255 {
                                pinwheel::yield_now().await;
                            }
                        }
                    }),
            );
        }
        for _ in 0..workers {
            done_rx.recv().unwrap();
        }
    }
}

impl Workload<Tokio> for Mailbox {
    fn iter(&mut self, rt: &Tokio) {
        let workers = rt.0.metrics().num_workers();
        let expected = self.expected(workers);
        while self.tokio_threads.len() < workers {
            self.tokio_threads.push(TokioThread::start());
        }
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..workers {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
            senders.push(tx);
            receivers.push(rx);
        }
        for (t, mut rx) in receivers.into_iter().enumerate() {
            let want = expected[t];
            let done = done_tx.clone();
            drop(self.tokio_threads[t].handle.spawn(async move {
                let mut count = 0;
                while count < want {
                    let Some(item) = rx.recv().await else { break };
                    std::hint::black_box(item);
                    count += 1;
                }
                done.send(()).unwrap();
            }));
        }
        for p in 0..workers {
            let senders = senders.clone();
            drop(self.tokio_threads[p].handle.spawn(async move {
                for k in 0..MAILBOX_ITEMS {
                    senders[mailbox_target(p, k, workers)]
                        .send(k as u64)
                        .unwrap();
                    if k % 256 == 255 {
                        tokio::task::yield_now().await;
                    }
                }
            }));
        }
        drop(senders);
        for _ in 0..workers {
            done_rx.recv().unwrap();
        }
    }
}
