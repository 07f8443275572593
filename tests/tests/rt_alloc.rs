//! At most one heap allocation per spawned task (header, future and output together), and
//! none once the task pools hold the blocks of ended tasks.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts calls on the calling thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

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
    const N: usize = 10_000;
    let rt = pinwheel::Builder::new().worker_threads(1).build().unwrap();
    let per_spawn = rt
        .block_on(rt.spawn(async {
            for _ in 0..100 {
                pinwheel::spawn(async { [0u64; 4] }).await.unwrap();
            }
            let before = allocs();
            for _ in 0..N {
                pinwheel::spawn(async { [0u64; 4] }).await.unwrap();
            }
            (allocs() - before) as f64 / N as f64
        }))
        .unwrap();
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
