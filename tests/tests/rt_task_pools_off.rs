//! `PINWHEEL_TASK_POOLS=off` gives every task an allocation of its own (for valgrind, a
//! sanitizer or a test allocator), where the pools would hand back the block of the task that
//! ended before (`rt_alloc.rs`).

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
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn with_the_pools_off_each_spawn_allocates_its_task() {
    // SAFETY: the only test of this binary, before it starts a thread of its own.
    unsafe { std::env::set_var("PINWHEEL_TASK_POOLS", "off") };
    const N: usize = 2_000;
    let rt = pinwheel::Builder::new().worker_threads(1).build().unwrap();
    let per_spawn = rt
        .block_on(rt.spawn(async {
            for _ in 0..100 {
                pinwheel::spawn(async { [0u64; 4] }).await.unwrap();
            }
            let before = ALLOCS.with(Cell::get);
            for _ in 0..N {
                pinwheel::spawn(async { [0u64; 4] }).await.unwrap();
            }
            (ALLOCS.with(Cell::get) - before) as f64 / N as f64
        }))
        .unwrap();
    assert!(
        (1.0..1.02).contains(&per_spawn),
        "{per_spawn} allocations per spawn"
    );
}
