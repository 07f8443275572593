//! `PINWHEEL_TASK_POOLS=off` gives every task an allocation of its own (for valgrind, a
//! sanitizer or a test allocator), where the pools would hand back the block of the task that
//! ended before (`rt_alloc.rs`).

#[global_allocator]
static GLOBAL: pinwheel_tests::CountingAlloc = pinwheel_tests::CountingAlloc;

#[test]
fn with_the_pools_off_each_spawn_allocates_its_task() {
    // SAFETY: the only test of this binary, before it starts a thread of its own.
    unsafe { std::env::set_var("PINWHEEL_TASK_POOLS", "off") };
    let per_spawn = pinwheel_tests::steady_spawn_allocs(2_000);
    assert!(
        (1.0..1.02).contains(&per_spawn),
        "{per_spawn} allocations per spawn"
    );
}
