//! Pools of task memory (HAProxy's pools): a task's cell is a block of a size class, taken
//! from the spawning thread's cache and given back to the freeing thread's, so a spawn and
//! its task's end cost a vector push and pop instead of the allocator's free-list walk (the
//! allocator, glibc's, keeps only seven blocks of a size per thread; past them every free of a
//! task cell, a few hundred bytes, takes its slow path).
//!
//! Blocks move between threads in *magazines* (Bonwick's): a thread's cache holds up to two
//! magazines' worth of blocks per class; past that it hands one full magazine to the process'
//! *depot* (a mutex per class, taken once per magazine), and a thread whose cache is empty
//! takes a full magazine from there. So the common shape, tasks spawned on one thread and
//! ending on another, recycles blocks at one lock per magazine, not one per task.
//!
//! Like HAProxy's pools, the depot keeps what the busiest moment needed (a burst of 10,000
//! spawns is served from it the next time, where a small pool would send 9,900 of them to the
//! allocator anyway and cost more than it saves), up to [`DEPOT_BYTES`] per class; what does
//! not fit goes back to the allocator, and a thread's cache is freed when the thread ends.
//! glibc keeps freed memory in its own bins much the same way.
//!
//! Loom builds, and builds with `--cfg pinwheel_no_pools` (CI's AddressSanitizer run sets it),
//! take every cell from the allocator directly (see [`USE_POOLS`]): a block kept for reuse
//! would hide a use after free of a task cell from the sanitizer. Every other build, debug
//! ones included, uses the pools, so the test suite runs on them, unless the environment
//! variable `PINWHEEL_TASK_POOLS` is `off` (or `0`) when the process allocates its first task.

use std::alloc::Layout;
use std::cell::RefCell;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// Whether task cells can come from the pools (every build but loom's and
/// `pinwheel_no_pools`); see [`enabled`] for the run-time switch.
const USE_POOLS: bool = !cfg!(loom) && !cfg!(pinwheel_no_pools);

/// The environment variable that turns the pools off for a run (`off` or `0`): for valgrind
/// or a sanitizer on a build made without `pinwheel_no_pools`, or a test allocator that must
/// see every task's memory come and go.
pub(crate) const ENV: &str = "PINWHEEL_TASK_POOLS";

/// Whether task cells come from the pools in this process. The environment is read once, at
/// the first task's allocation, and the answer kept: a block goes back the way it came.
pub(crate) fn enabled() -> bool {
    /// 0: not read yet; 1: on; 2: off.
    static STATE: AtomicU8 = AtomicU8::new(0);
    if !USE_POOLS {
        return false;
    }
    match STATE.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let off = std::env::var_os(ENV).is_some_and(|v| v == "off" || v == "0");
            // The first answer stands: two threads reading the environment at once agree
            // unless it changed in between, and then the one stored first wins for both.
            let state = match STATE.compare_exchange(
                0,
                1 + u8::from(off),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => 1 + u8::from(off),
                Err(stored) => stored,
            };
            state == 1
        }
    }
}

/// Size step of the classes.
const GRAIN: usize = 64;
/// Alignment of every block: what `malloc` gives without asking (a larger one sends glibc
/// through `memalign`, several times the cost of the `malloc` the pools save).
const ALIGN: usize = 16;
/// Classes: blocks of 64, 128, ... 1024 bytes. A larger or more aligned cell is allocated
/// directly. (Classes up to 4 KiB pooled a hyper session's task, ~1.1 KiB, and saved ~1,000
/// instructions per proxied connection, but the depot then kept a burst's worth of session
/// cells: the soak's heap check saw +40% after its burst of 2,000 connections. Larger classes
/// need a depot that gives memory back when the burst is over.)
const CLASSES: usize = 16;
/// Blocks per magazine.
const MAGAZINE: usize = 64;
/// Bytes of blocks the depot keeps per class (a class of 512-byte cells: 32,768 of them).
const DEPOT_BYTES: usize = 16 << 20;

/// Full magazines the depot keeps for `class`.
fn depot_magazines(class: usize) -> usize {
    DEPOT_BYTES / (MAGAZINE * block_layout(class).size())
}

/// A pooled block, owned by whoever holds this value (the block rule: a block is in one place
/// at a time, a cache, the depot or a live task, and only its holder reads or writes it).
struct Block(NonNull<u8>);

// SAFETY: a `Block` owns its memory (the block rule); moving it to another thread moves that
// ownership, as a `Box<[u8]>` would.
unsafe impl Send for Block {}

/// The class of `layout`, if it has one.
fn class_of(layout: Layout) -> Option<usize> {
    if layout.align() > ALIGN || layout.size() == 0 {
        return None;
    }
    let c = layout.size().div_ceil(GRAIN);
    (c <= CLASSES).then(|| c - 1)
}

/// The layout of the blocks of class `class`.
fn block_layout(class: usize) -> Layout {
    Layout::from_size_align(GRAIN * (class + 1), ALIGN).expect("a valid block layout")
}

/// Full magazines, per class, shared by the threads.
static DEPOT: [Mutex<Vec<Vec<Block>>>; CLASSES] = [const { Mutex::new(Vec::new()) }; CLASSES];

/// How many magazines `DEPOT[class]` holds, written under its lock and read without it, so a
/// thread whose cache is empty takes the lock only when there is a magazine to take (a hint:
/// a stale zero only sends one allocation to the allocator).
static DEPOT_LEN: [AtomicUsize; CLASSES] = [const { AtomicUsize::new(0) }; CLASSES];

/// A thread's blocks, per class.
struct Cache {
    classes: [Vec<Block>; CLASSES],
}

impl Drop for Cache {
    fn drop(&mut self) {
        for (class, blocks) in self.classes.iter_mut().enumerate() {
            for b in blocks.drain(..) {
                // SAFETY: the block was allocated with this class's layout, and this cache
                // holds it (the block rule): nothing else uses it.
                unsafe { std::alloc::dealloc(b.0.as_ptr(), block_layout(class)) };
            }
        }
    }
}

thread_local! {
    static CACHE: RefCell<Cache> = const {
        RefCell::new(Cache {
            classes: [const { Vec::new() }; CLASSES],
        })
    };
}

fn raw_alloc(layout: Layout) -> NonNull<u8> {
    // SAFETY: every layout given here has a non-zero size (`class_of` refuses size 0, and a
    // task cell holds at least its header).
    let p = unsafe { std::alloc::alloc(layout) };
    NonNull::new(p).unwrap_or_else(|| std::alloc::handle_alloc_error(layout))
}

/// Memory for `layout` (non-zero size): a pooled block when `layout` has a class, else the
/// allocator's. Give it back with [`free`], with the same layout.
pub(crate) fn alloc(layout: Layout) -> NonNull<u8> {
    let Some(class) = class_of(layout) else {
        return raw_alloc(layout);
    };
    let cached = CACHE
        .try_with(|cache| {
            let mut cache = cache.borrow_mut();
            let blocks = &mut cache.classes[class];
            if blocks.is_empty() && DEPOT_LEN[class].load(Ordering::Relaxed) > 0 {
                let full = {
                    let mut depot = crate::loom::lock(&DEPOT[class]);
                    let full = depot.pop();
                    DEPOT_LEN[class].store(depot.len(), Ordering::Relaxed);
                    full
                };
                if let Some(magazine) = full {
                    *blocks = magazine;
                }
            }
            blocks.pop()
        })
        .ok()
        .flatten();
    match cached {
        Some(b) => b.0,
        None => raw_alloc(block_layout(class)),
    }
}

/// Gives back memory from [`alloc`].
///
/// # Safety
///
/// `ptr` came from [`alloc`] with this `layout`, and nothing uses it any more.
pub(crate) unsafe fn free(ptr: NonNull<u8>, layout: Layout) {
    let Some(class) = class_of(layout) else {
        // SAFETY: allocated by `raw_alloc(layout)` (no class), unused now (the caller's word).
        unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) };
        return;
    };
    let spare = CACHE.try_with(|cache| {
        let mut cache = cache.borrow_mut();
        let blocks = &mut cache.classes[class];
        let spare = if blocks.len() >= 2 * MAGAZINE {
            // One full magazine to the depot (or, when the depot is full, back to the
            // allocator below).
            let magazine = blocks.split_off(blocks.len() - MAGAZINE);
            let mut depot = crate::loom::lock(&DEPOT[class]);
            if depot.len() < depot_magazines(class) {
                depot.push(magazine);
                DEPOT_LEN[class].store(depot.len(), Ordering::Relaxed);
                None
            } else {
                Some(magazine)
            }
        } else {
            None
        };
        blocks.push(Block(ptr));
        spare
    });
    let spare = match spare {
        Ok(spare) => spare.unwrap_or_default(),
        // The thread is ending (its cache is gone): straight back to the allocator.
        Err(_) => vec![Block(ptr)],
    };
    for b in spare {
        // SAFETY: a block of this class (from `alloc`, or a cache's), held here alone.
        unsafe { std::alloc::dealloc(b.0.as_ptr(), block_layout(class)) };
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Blocks of this thread's cache for `class`.
    fn cached(class: usize) -> usize {
        CACHE.with(|c| c.borrow().classes[class].len())
    }

    #[test]
    fn classes_round_up_to_the_grain_and_refuse_what_they_cannot_hold() {
        assert_eq!(class_of(Layout::from_size_align(1, 8).unwrap()), Some(0));
        assert_eq!(class_of(Layout::from_size_align(64, 16).unwrap()), Some(0));
        assert_eq!(class_of(Layout::from_size_align(65, 8).unwrap()), Some(1));
        assert_eq!(
            class_of(Layout::from_size_align(1024, 8).unwrap()),
            Some(15)
        );
        assert_eq!(class_of(Layout::from_size_align(1025, 8).unwrap()), None);
        assert_eq!(class_of(Layout::from_size_align(64, 32).unwrap()), None);
    }

    #[test]
    fn a_freed_block_is_reused_by_the_next_alloc_of_its_class() {
        // Class 9 (577..=640 bytes): no other test of this thread uses it.
        let layout = Layout::from_size_align(600, 8).unwrap();
        let a = alloc(layout);
        // SAFETY: `a` is 600 writable bytes, ours.
        unsafe { a.as_ptr().write_bytes(0xAB, 600) };
        let before = cached(9);
        // SAFETY: from `alloc` with `layout`, unused after.
        unsafe { free(a, layout) };
        assert_eq!(cached(9), before + 1);
        let b = alloc(layout);
        assert_eq!(a, b, "the block just freed comes back first");
        assert_eq!(
            b.as_ptr() as usize % ALIGN,
            0,
            "blocks are aligned to ALIGN"
        );
        // SAFETY: as above.
        unsafe { free(b, layout) };
    }

    #[test]
    fn blocks_freed_on_another_thread_come_back_through_the_depot() {
        // Class 12 (769..=832 bytes), used by this test alone.
        let layout = Layout::from_size_align(800, 16).unwrap();
        let blocks: Vec<usize> = (0..4 * MAGAZINE)
            .map(|_| alloc(layout).as_ptr() as usize)
            .collect();
        // Freed on a thread that then ends: two magazines go to the depot as its cache
        // fills, the rest is freed with its cache.
        std::thread::spawn(move || {
            for &p in &blocks {
                // SAFETY: each from `alloc` with `layout`, unused after, freed once.
                unsafe { free(NonNull::new(p as *mut u8).unwrap(), layout) };
            }
            assert_eq!(cached(12), 2 * MAGAZINE);
        })
        .join()
        .unwrap();
        let in_depot = crate::loom::lock(&DEPOT[12]).len();
        assert!(
            (1..=depot_magazines(12)).contains(&in_depot),
            "{in_depot} magazines in the depot"
        );
        // This thread's cache is empty for the class: an alloc takes a magazine from the
        // depot.
        assert_eq!(cached(12), 0);
        let p = alloc(layout);
        assert_eq!(cached(12), MAGAZINE - 1);
        assert_eq!(crate::loom::lock(&DEPOT[12]).len(), in_depot - 1);
        // SAFETY: from `alloc` with `layout`, unused after.
        unsafe { free(p, layout) };
    }

    #[test]
    fn the_depot_keeps_at_most_its_bytes_and_frees_the_rest() {
        // Class 13 (833..=896 bytes), used by this test alone.
        let layout = Layout::from_size_align(850, 8).unwrap();
        let cap = depot_magazines(13);
        assert!(cap * MAGAZINE * 896 <= DEPOT_BYTES && cap > 100, "{cap}");
        let blocks: Vec<usize> = (0..(cap + 4) * MAGAZINE)
            .map(|_| alloc(layout).as_ptr() as usize)
            .collect();
        std::thread::spawn(move || {
            for &p in &blocks {
                // SAFETY: each from `alloc` with `layout`, unused after, freed once.
                unsafe { free(NonNull::new(p as *mut u8).unwrap(), layout) };
            }
        })
        .join()
        .unwrap();
        assert_eq!(crate::loom::lock(&DEPOT[13]).len(), cap);
        assert_eq!(DEPOT_LEN[13].load(Ordering::Relaxed), cap);
    }

    #[test]
    fn large_and_over_aligned_layouts_go_to_the_allocator() {
        for layout in [
            Layout::from_size_align(4096, 8).unwrap(),
            Layout::from_size_align(64, 256).unwrap(),
        ] {
            let p = alloc(layout);
            assert_eq!(p.as_ptr() as usize % layout.align(), 0);
            // SAFETY: from `alloc` with `layout`, unused after.
            unsafe { free(p, layout) };
        }
    }
}
