//! The loom models of `blocking.rs` (a child module of it: see `README.md` here).

use std::panic::Location;
use std::time::Duration;

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use super::{BlockingPool, PoolConfig};

fn pool() -> BlockingPool {
    BlockingPool::new(PoolConfig {
        max_threads: 1,
        keep_alive: Duration::from_secs(10),
        thread_name: "model".into(),
        hooks: Default::default(),
    })
}

/// Two producers (one on another thread) and one pool thread: both closures run (the
/// second is never stranded in the queue while the only thread goes idle), then shutdown
/// lets the thread leave (loom reports a deadlock otherwise).
#[test]
fn pushes_are_picked_up_and_shutdown_ends_the_pool() {
    crate::loom::model(|| {
        let pool = Arc::new(pool());
        let ran = Arc::new(AtomicUsize::new(0));
        let (p, r) = (pool.clone(), ran.clone());
        let producer = loom::thread::spawn(move || {
            drop(p.spawn(
                move || {
                    r.fetch_add(1, SeqCst);
                },
                Location::caller(),
            ));
        });
        let r = ran.clone();
        drop(pool.spawn(
            move || {
                r.fetch_add(1, SeqCst);
            },
            Location::caller(),
        ));
        producer.join().unwrap();
        while ran.load(SeqCst) < 2 {
            loom::thread::yield_now();
        }
        pool.begin_shutdown();
    });
}
