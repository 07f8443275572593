//! A task's memory is never touched after the task is freed, even when a `tracing` subscriber
//! makes the runtime enter a span stored inside the task on every poll (issue 11).
//!
//! Without a sanitizer a use-after-free usually reads memory that still looks fine, so this
//! binary makes it visible: its global allocator keeps freed blocks in quarantine (intact, not
//! reused) for a while and can say whether an address lies in one, and its subscriber checks,
//! whenever a span is exited, that the span was not closed (the task's `Span` dropped with the
//! task) and that the `Id` it is handed does not live in freed memory. Each test covers one of
//! the three ways a task used to be freed while its poller still held the span guard.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

// ---- the quarantine allocator -------------------------------------------------------------

const SLOTS: usize = 1 << 15;

struct Ring {
    blocks: [(usize, usize, usize); SLOTS],
    next: usize,
}

/// An allocator that frees a block only after `SLOTS` later frees.
struct Quarantine {
    locked: AtomicBool,
    ring: UnsafeCell<Ring>,
}

// SAFETY: `ring` is only touched while `locked` is held (see `with_ring`).
unsafe impl Sync for Quarantine {}

impl Quarantine {
    fn with_ring<R>(&self, f: impl FnOnce(&mut Ring) -> R) -> R {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        // SAFETY: `locked` is held, so this is the only reference to the ring.
        let out = f(unsafe { &mut *self.ring.get() });
        self.locked.store(false, Ordering::Release);
        out
    }

    /// `true` when `addr` lies in a block freed not long ago.
    fn is_freed(&self, addr: usize) -> bool {
        self.with_ring(|r| {
            r.blocks
                .iter()
                .any(|&(p, size, _)| p != 0 && addr >= p && addr < p + size)
        })
    }
}

// SAFETY: allocation is System's; a freed block is handed to System exactly once, when it
// leaves the ring, with the layout it was allocated with.
unsafe impl GlobalAlloc for Quarantine {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let evicted = self.with_ring(|r| {
            let slot = r.next;
            r.next = (slot + 1) % SLOTS;
            std::mem::replace(
                &mut r.blocks[slot],
                (ptr as usize, layout.size(), layout.align()),
            )
        });
        if evicted.0 != 0 {
            // SAFETY: the block was allocated by System with this size and alignment, and
            // left the ring just now, once.
            unsafe {
                System.dealloc(
                    evicted.0 as *mut u8,
                    Layout::from_size_align_unchecked(evicted.1, evicted.2),
                )
            }
        }
    }
}

#[global_allocator]
static ALLOC: Quarantine = Quarantine {
    locked: AtomicBool::new(false),
    ring: UnsafeCell::new(Ring {
        blocks: [(0, 0, 0); SLOTS],
        next: 0,
    }),
};

// ---- the checking subscriber --------------------------------------------------------------

#[derive(Default)]
struct Spans {
    /// Each task span's `task.name`, by span id.
    names: HashMap<u64, String>,
    closed: HashSet<u64>,
    /// Exits begun, and exits checked, per task name.
    exits_started: HashMap<String, usize>,
    exits: HashMap<String, usize>,
    /// What went wrong, each with the task name.
    violations: Vec<String>,
}

struct Checker {
    spans: Mutex<Spans>,
    next: AtomicU64,
}

struct NameOf<'a>(&'a mut String);

impl tracing::field::Visit for NameOf<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "task.name" {
            *self.0 = format!("{value:?}");
        }
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "task.name" {
            *self.0 = value.to_owned();
        }
    }
}

/// The task name whose first exit waits (bounded) for the task to be freed elsewhere.
const WAIT_ON_FIRST_EXIT: &str = "woken-elsewhere";

impl Subscriber for Checker {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        meta.target() == "pinwheel::task" && meta.is_span()
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut name = String::new();
        attrs.record(&mut NameOf(&mut name));
        self.spans.lock().unwrap().names.insert(id, name);
        Id::from_u64(id)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, id: &Id) {
        // `id` points into the task's span: note its address before anything else.
        let addr = std::ptr::from_ref(id) as usize;
        let key = id.into_u64();
        let (name, first) = {
            let mut s = self.spans.lock().unwrap();
            let name = s.names.get(&key).cloned().unwrap_or_default();
            let started = s.exits_started.entry(name.clone()).or_default();
            *started += 1;
            (name, *started == 1)
        };
        if name == WAIT_ON_FIRST_EXIT && first {
            // Give another worker the time to run the task to completion and free it, which
            // it can do only if this worker queued the task before leaving its span (the bug).
            let deadline = Instant::now() + Duration::from_millis(500);
            while Instant::now() < deadline && !self.spans.lock().unwrap().closed.contains(&key) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let freed = ALLOC.is_freed(addr);
        let mut s = self.spans.lock().unwrap();
        let closed = s.closed.contains(&key);
        if closed || freed {
            s.violations.push(format!(
                "task {name:?}: span {key} exited after the task was freed \
                 (span closed: {closed}, its id in freed memory: {freed})"
            ));
        }
        *s.exits.entry(name).or_default() += 1;
    }
    fn try_close(&self, id: Id) -> bool {
        self.spans.lock().unwrap().closed.insert(id.into_u64());
        true
    }
}

impl Checker {
    fn exits_of(&self, name: &str) -> usize {
        self.spans
            .lock()
            .unwrap()
            .exits
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    fn violations_of(&self, name: &str) -> Vec<String> {
        let s = self.spans.lock().unwrap();
        s.violations
            .iter()
            .filter(|v| v.contains(&format!("{name:?}")))
            .cloned()
            .collect()
    }

    /// Waits (bounded) until `n` exits of the spans of tasks named `name` were seen.
    fn wait_exits(&self, name: &str, n: usize) {
        pinwheel_tests::wait_until(
            Duration::from_secs(30),
            &format!("{n} span exits of {name:?}"),
            || self.exits_of(name) >= n,
        );
    }
}

fn checker() -> &'static Checker {
    static CHECKER: OnceLock<&'static Checker> = OnceLock::new();
    CHECKER.get_or_init(|| {
        // Task cells from the allocator, not the task pools (which keep freed cells): the
        // quarantine must see each task's memory freed. Set before this binary's first task
        // (every test calls `checker` first; the pools read the variable once).
        // SAFETY: no other thread reads or writes the environment now: the tests of this
        // binary wait on this `OnceLock` before they start anything.
        unsafe { std::env::set_var("PINWHEEL_TASK_POOLS", "off") };
        let c: &'static Checker = Box::leak(Box::new(Checker {
            spans: Mutex::new(Spans::default()),
            next: AtomicU64::new(0),
        }));
        struct Forward(&'static Checker);
        impl Subscriber for Forward {
            fn enabled(&self, m: &Metadata<'_>) -> bool {
                self.0.enabled(m)
            }
            fn new_span(&self, a: &Attributes<'_>) -> Id {
                self.0.new_span(a)
            }
            fn record(&self, i: &Id, r: &Record<'_>) {
                self.0.record(i, r)
            }
            fn record_follows_from(&self, a: &Id, b: &Id) {
                self.0.record_follows_from(a, b)
            }
            fn event(&self, e: &Event<'_>) {
                self.0.event(e)
            }
            fn enter(&self, i: &Id) {
                self.0.enter(i)
            }
            fn exit(&self, i: &Id) {
                self.0.exit(i)
            }
            fn try_close(&self, i: Id) -> bool {
                self.0.try_close(i)
            }
        }
        tracing::subscriber::set_global_default(Forward(c))
            .expect("rt_task_memory installs the only global subscriber");
        c
    })
}

// ---- the three paths ----------------------------------------------------------------------

/// Path 1: the future completes in its first poll and the JoinHandle is already gone, so the
/// poller drops the last reference and frees the task (and its span).
#[test]
fn completed_task_with_no_join_handle() {
    const NAME: &str = "complete-detached";
    const N: usize = 500;
    let checker = checker();
    let rt = pinwheel::Builder::new().worker_threads(2).build().unwrap();
    let polled = Arc::new(AtomicUsize::new(0));
    for _ in 0..N {
        let polled = polled.clone();
        rt.block_on(async move {
            drop(pinwheel::task::Builder::new().name(NAME).spawn(async move {
                polled.fetch_add(1, Ordering::Relaxed);
                1u8
            }))
        });
    }
    checker.wait_exits(NAME, N);
    drop(rt);
    assert_eq!(polled.load(Ordering::Relaxed), N);
    assert_eq!(checker.violations_of(NAME), Vec::<String>::new());
}

/// Path 2: the task is woken from another thread during its poll, so its poller queues it
/// again; another worker runs it to completion and frees it, while the first worker has not
/// yet left the span of its poll.
#[test]
fn task_woken_during_its_poll_completes_on_another_worker() {
    let checker = checker();
    let rt = pinwheel::Builder::new().worker_threads(2).build().unwrap();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let mut first = true;
    let fut = std::future::poll_fn(move |cx| {
        if std::mem::take(&mut first) {
            // Woken during this poll, from a thread of our own, before the poll returns.
            let waker = cx.waker().clone();
            std::thread::spawn(move || waker.wake()).join().unwrap();
            std::task::Poll::Pending
        } else {
            let _ = done_tx.send(());
            std::task::Poll::Ready(())
        }
    });
    rt.block_on(async {
        drop(
            pinwheel::task::Builder::new()
                .name(WAIT_ON_FIRST_EXIT)
                .spawn(fut),
        )
    });
    done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the task completed");
    checker.wait_exits(WAIT_ON_FIRST_EXIT, 2);
    drop(rt);
    assert_eq!(
        checker.violations_of(WAIT_ON_FIRST_EXIT),
        Vec::<String>::new()
    );
}

/// Path 3: shutdown drops the owned list's reference while the task is being polled, and the
/// poller, seeing the cancellation, drops the future and the last reference.
#[test]
fn task_cancelled_by_shutdown_during_its_poll() {
    const NAME: &str = "cancelled-by-shutdown";
    let checker = checker();
    let rt = pinwheel::Builder::new().worker_threads(1).build().unwrap();
    let (running_tx, running_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    let fut = std::future::poll_fn(move |_| {
        let _ = running_tx.send(());
        // Held inside the poll until the runtime has finished its shutdown around us.
        let _ = go_rx.lock().unwrap().recv_timeout(Duration::from_secs(30));
        std::task::Poll::<()>::Pending
    });
    rt.block_on(async { drop(pinwheel::task::Builder::new().name(NAME).spawn(fut)) });
    running_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the task is polled");
    // The worker is stuck in the poll: after the timeout, shutdown cancels what is left,
    // taking the owned list's reference to our running task.
    rt.shutdown_timeout(Duration::from_millis(10));
    go_tx.send(()).unwrap();
    checker.wait_exits(NAME, 1);
    assert_eq!(checker.violations_of(NAME), Vec::<String>::new());
}
