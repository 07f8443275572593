//! At most one heap allocation per spawned task (header, future and output together), and
//! none once the task pools hold the blocks of ended tasks.

use pinwheel_tests::{CountingAlloc, allocs_here as allocs, steady_spawn_allocs};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[test]
fn rt_one_allocation_per_spawn() {
    const N: usize = 10_000;
    let rt = pinwheel::Builder::new().worker_threads(1).build().unwrap();
    let per_spawn = rt
        .block_on(rt.spawn(async {
            let mut handles = Vec::with_capacity(N);
            // Warm the queues and the owned-task list up to their size, then measure.
            for _ in 0..N {
                handles.push(pinwheel::spawn(async { [0u64; 4] }));
            }
            for h in handles.drain(..) {
                h.await.unwrap();
            }
            let before = allocs();
            for _ in 0..N {
                handles.push(pinwheel::spawn(async { [0u64; 4] }));
            }
            let spent = allocs() - before;
            for h in handles.drain(..) {
                h.await.unwrap();
            }
            spent as f64 / N as f64
        }))
        .unwrap();
    println!("{per_spawn} allocations per spawn");
    // One for the task (the queues' own blocks are amortised to almost nothing) without the
    // task pools; with them, none: the second burst's cells are the first burst's blocks, kept
    // by the pools (they keep what the busiest moment needed, as HAProxy's do).
    if cfg!(pinwheel_no_pools) {
        assert!(
            (1.0..1.02).contains(&per_spawn),
            "{per_spawn} allocations per spawn"
        );
    } else {
        assert!(per_spawn < 0.02, "{per_spawn} allocations per spawn");
    }
}

/// Tasks spawned and awaited one after another: each cell is the block the previous task gave
/// back to the thread's pool, so a spawn allocates nothing (but in the builds without pools).
#[test]
fn rt_a_steady_spawn_loop_reuses_task_memory() {
    let per_spawn = steady_spawn_allocs(10_000);
    println!("{per_spawn} allocations per spawn");
    if cfg!(pinwheel_no_pools) {
        assert!(
            (1.0..1.02).contains(&per_spawn),
            "{per_spawn} allocations per spawn"
        );
    } else {
        assert!(per_spawn < 0.01, "{per_spawn} allocations per spawn");
    }
}
