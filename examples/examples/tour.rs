//! A tour of pinwheel's executor: work-stolen tasks, tasks pinned by thread mask, a `!Send`
//! session pinned with `spawn_local`, cancellation, panics, and the per-worker counters.
//!
//! ```text
//! cargo run --release --example tour [-- WORKERS]
//! ```

use std::cell::RefCell;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Instant;

use pinwheel::{Builder, ThreadMask};

fn main() -> ExitCode {
    let workers = match std::env::args().nth(1).map(|a| a.parse::<usize>()) {
        None => 2,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("tour: the argument is the number of worker threads (1 to 64)");
            return ExitCode::from(2);
        }
    };
    let rt = match Builder::new()
        .worker_threads(workers)
        .thread_name("tour")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tour: {e}");
            return ExitCode::from(2);
        }
    };
    println!("pinwheel runtime with {} workers", rt.worker_threads());

    // 1. Many small tasks, spawned from a task: they go on that worker's queue and idle
    //    workers steal them.
    let start = Instant::now();
    let sum = rt.block_on(rt.spawn(async {
        let handles: Vec<_> = (0..100_000u64)
            .map(|i| pinwheel::spawn(async move { i % 7 }))
            .collect();
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        sum
    }));
    println!(
        "100,000 tasks spawned and joined in {:?} (sum {})",
        start.elapsed(),
        sum.unwrap()
    );

    // 2. Tasks pinned to one worker each: their code never runs elsewhere.
    for k in 0..rt.worker_threads() {
        let ran_on = rt.block_on(rt.handle().spawn_on(ThreadMask::one(k), async {
            pinwheel::yield_now().await;
            pinwheel::current_worker()
        }));
        println!(
            "task pinned with {:?} ran on worker {:?}",
            ThreadMask::one(k),
            ran_on.unwrap()
        );
    }

    // 3. A session that is not Send (Rc<RefCell<..>>), pinned to the worker that spawned it,
    //    as a connection's session is pinned to the thread owning its socket.
    let log = rt.block_on(rt.handle().spawn_on(ThreadMask::one(0), async {
        pinwheel::spawn_local(async {
            let state = Rc::new(RefCell::new(Vec::new()));
            for step in ["accept", "read", "write", "close"] {
                state
                    .borrow_mut()
                    .push(format!("{step} on worker {:?}", pinwheel::current_worker()));
                pinwheel::yield_now().await;
            }
            state.borrow().join(", ")
        })
        .await
        .unwrap()
    }));
    println!("local session: {}", log.unwrap());

    // 4. Cancellation and panics come back as JoinErrors.
    let forever = rt.spawn(std::future::pending::<()>());
    forever.abort();
    println!("aborted task: {}", rt.block_on(forever).unwrap_err());
    let boom = rt.spawn(async { panic!("a task may panic; its worker lives on") });
    println!("panicked task: {}", rt.block_on(boom).unwrap_err());

    // 5. A work list: one mailbox and one handler task per worker. Items pushed to worker i are
    //    handled on worker i, with per-thread state that needs no lock.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let done_tx = std::sync::Mutex::new(done_tx);
    let per_thread = 10_000;
    let list = rt.handle().work_list_with_state(
        move |_thread| (0usize, done_tx.lock().unwrap().clone()),
        move |(count, done): &mut (usize, std::sync::mpsc::Sender<usize>), _item: u64| {
            *count += 1;
            if *count == per_thread {
                done.send(pinwheel::current_worker().unwrap()).unwrap();
            }
        },
    );
    let start = Instant::now();
    for i in 0..(per_thread * rt.worker_threads()) as u64 {
        list.push(i as usize % rt.worker_threads(), i).unwrap();
    }
    for _ in 0..rt.worker_threads() {
        let w = done_rx.recv().unwrap();
        println!("work list: worker {w} handled its {per_thread} items");
    }
    println!(
        "work list: {} items pushed from main and handled in {:?}",
        per_thread * rt.worker_threads(),
        start.elapsed()
    );
    drop(list);

    // 6. What each worker did.
    print!("{}", rt.metrics());
    ExitCode::SUCCESS
}
