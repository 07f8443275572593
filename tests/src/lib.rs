//! Integration tests of pinwheel live in `tests/`; this library checks that the Rust examples
//! in the README and PORTING.md compile and run, and holds what several tests share.

pub mod servers;

#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[doc = include_str!("../../PORTING.md")]
#[cfg(doctest)]
pub struct PortingDoctests;

/// The message of a panic's payload (a `&str` or a `String`; empty otherwise).
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// Runs `f`, which must panic; the panic's message.
///
/// # Panics
///
/// When `f` returns instead.
pub fn panic_message<R>(f: impl FnOnce() -> R) -> String {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic, and it returned"),
        Err(payload) => panic_text(&*payload),
    }
}

/// A runtime with `n` workers (and the other defaults), for tests.
///
/// # Panics
///
/// When the runtime cannot be built.
pub fn rt(n: usize) -> pinwheel::Runtime {
    pinwheel::Builder::new().worker_threads(n).build().unwrap()
}

/// Waits until `done()` holds, checking every millisecond, for at most `limit`; panics with
/// `what` (and how long it waited) if it never does. A test that waits with this cannot hang,
/// and does not depend on how fast the machine is short of the limit.
///
/// # Panics
///
/// When `done()` is still false after `limit`.
#[track_caller]
pub fn wait_until(limit: std::time::Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "waited {limit:?} for: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// What `/proc` says of this process's threads (Linux).
#[cfg(target_os = "linux")]
pub mod proc {
    /// User + system CPU ticks (of 10 ms) of every thread of this process whose name starts
    /// with `prefix`, and how many such threads there are.
    ///
    /// # Panics
    ///
    /// When `/proc/self/task` cannot be read.
    pub fn cpu_ticks(prefix: &str) -> (usize, u64) {
        let mut threads = 0;
        let mut ticks = 0;
        for entry in std::fs::read_dir("/proc/self/task").unwrap() {
            let dir = entry.unwrap().path();
            let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
                continue;
            };
            if !comm.trim_end().starts_with(prefix) {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
                continue;
            };
            // Fields after the command name (which ends with ')'): utime is the 14th field of
            // the whole line, stime the 15th.
            let rest = &stat[stat.rfind(')').unwrap() + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            ticks += f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
            threads += 1;
        }
        (threads, ticks)
    }
}

pub mod capture {
    //! A `tracing` subscriber that keeps what it sees as text, for tests that check what
    //! pinwheel logs: the spans (their fields) and the events (their fields, and the span
    //! they happened in).

    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    /// What the subscriber saw.
    #[derive(Default, Debug)]
    pub struct Log {
        /// Each span's fields as `name=value ` text, by span id; `(root) ` ends the text of a
        /// span made with `parent: None`.
        pub spans: HashMap<u64, String>,
        /// Each event's fields as text, with the text of the span it happened in.
        pub events: Vec<(String, Option<String>)>,
    }

    struct Capture {
        log: Arc<Mutex<Log>>,
        next: AtomicU64,
    }

    thread_local! {
        static STACK: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
    }

    struct Text<'a>(&'a mut String);

    impl Visit for Text<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.push_str(&format!("{}={:?} ", field.name(), value));
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, meta: &Metadata<'_>) -> bool {
            meta.target().starts_with("pinwheel")
        }
        fn new_span(&self, attrs: &Attributes<'_>) -> Id {
            let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
            let mut s = String::new();
            attrs.record(&mut Text(&mut s));
            if attrs.is_root() {
                s.push_str("(root) ");
            }
            self.log.lock().unwrap().spans.insert(id, s);
            Id::from_u64(id)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut s = String::new();
            event.record(&mut Text(&mut s));
            let mut log = self.log.lock().unwrap();
            let span = STACK.with(|st| st.borrow().last().copied());
            let span = span.and_then(|id| log.spans.get(&id).cloned());
            log.events.push((s, span));
        }
        fn enter(&self, id: &Id) {
            STACK.with(|s| s.borrow_mut().push(id.into_u64()));
        }
        fn exit(&self, _: &Id) {
            STACK.with(|s| {
                s.borrow_mut().pop();
            });
        }
    }

    /// The process-wide capture (installed as the global default at the first call) of
    /// everything under the `pinwheel` targets.
    pub fn log() -> Arc<Mutex<Log>> {
        static LOG: OnceLock<Arc<Mutex<Log>>> = OnceLock::new();
        LOG.get_or_init(|| {
            let log = Arc::new(Mutex::new(Log::default()));
            tracing::subscriber::set_global_default(Capture {
                log: log.clone(),
                next: AtomicU64::new(0),
            })
            .expect("pinwheel_tests::capture must be the only global subscriber");
            log
        })
        .clone()
    }
}

pub mod pin_check {
    //! Checks of `Pin`'s drop guarantee: a future, once polled, is dropped where it was polled.
    //!
    //! [`PinProbe::wrap`] gives a `!Unpin` future ([`PinCheck`]) that records its address at
    //! each poll and compares it with its address when it is dropped; [`PinProbe::self_ref`]
    //! gives a self-referential async block (a local borrowed across an await) that checks,
    //! when dropped, that the borrow still points into the block. A runtime that moves a
    //! pinned future before dropping it (a `mem::replace` of the task's stage) makes the probe
    //! report a violation. Use the probe wherever a test lets the runtime drop a future:
    //! completion, cancellation, abort, shutdown.
    //!
    //! ```
    //! use pinwheel_tests::pin_check::PinProbe;
    //!
    //! let probe = PinProbe::new();
    //! let rt = pinwheel::Runtime::new().unwrap();
    //! rt.block_on(rt.spawn(probe.wrap(pinwheel::yield_now()))).unwrap();
    //! drop(rt);
    //! probe.assert_dropped_in_place(1);
    //! ```

    use std::future::Future;
    use std::marker::PhantomPinned;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};

    /// What the probe's futures saw; shared by the probe and every future it made.
    #[derive(Default, Debug)]
    struct Seen {
        polls: AtomicUsize,
        drops: AtomicUsize,
        /// One sentence per broken rule.
        violations: Mutex<Vec<String>>,
    }

    impl Seen {
        fn violation(&self, what: String) {
            self.violations
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(what);
        }
    }

    /// Makes checked futures and says what they saw. Cloning it shares the record.
    #[derive(Clone, Default, Debug)]
    pub struct PinProbe {
        seen: Arc<Seen>,
    }

    impl PinProbe {
        /// A probe that has seen nothing yet.
        pub fn new() -> PinProbe {
            PinProbe::default()
        }

        /// Wraps `inner` in a `!Unpin` future that checks it is never moved once polled,
        /// neither between polls nor before it is dropped.
        pub fn wrap<F: Future>(&self, inner: F) -> PinCheck<F> {
            PinCheck {
                inner,
                polled_at: AtomicUsize::new(0),
                seen: self.seen.clone(),
                _pinned: PhantomPinned,
            }
        }

        /// A self-referential future, as `async fn`s, `select!` and `join!` make: it borrows a
        /// local of its own across the await of `inner`, and checks when it is dropped
        /// (completed or not) that the borrow still points at that local, i.e. that it was
        /// dropped where it was polled.
        pub fn self_ref<F: Future>(&self, inner: F) -> impl Future<Output = F::Output> + use<F> {
            let seen = self.seen.clone();
            async move {
                let anchor = Anchor { seen };
                let borrow = Borrow(&anchor);
                let out = inner.await;
                drop(borrow);
                out
            }
        }

        /// Polls of the futures made by [`wrap`](Self::wrap).
        pub fn polls(&self) -> usize {
            self.seen.polls.load(Ordering::SeqCst)
        }

        /// Drops of the futures made by [`wrap`](Self::wrap) and [`self_ref`](Self::self_ref).
        pub fn drops(&self) -> usize {
            self.seen.drops.load(Ordering::SeqCst)
        }

        /// Every rule broken so far, one sentence each.
        pub fn violations(&self) -> Vec<String> {
            self.seen
                .violations
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        }

        /// Asserts that exactly `drops` futures of this probe were dropped, and that none was
        /// moved after its first poll.
        ///
        /// # Panics
        ///
        /// With the violations seen, or the drop count, when the check fails.
        #[track_caller]
        pub fn assert_dropped_in_place(&self, drops: usize) {
            let violations = self.violations();
            assert!(
                violations.is_empty(),
                "pinned futures were moved ({} times): {}",
                violations.len(),
                violations.join("; ")
            );
            assert_eq!(
                self.drops(),
                drops,
                "futures of this probe dropped (polled {} times)",
                self.polls()
            );
        }
    }

    /// The future of [`PinProbe::wrap`]: `!Unpin`, checks its own address.
    pub struct PinCheck<F> {
        inner: F,
        /// Where it was first polled; 0 before.
        polled_at: AtomicUsize,
        seen: Arc<Seen>,
        _pinned: PhantomPinned,
    }

    impl<F> std::fmt::Debug for PinCheck<F> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("PinCheck")
                .field("polled_at", &self.polled_at)
                .finish_non_exhaustive()
        }
    }

    impl<F: Future> Future for PinCheck<F> {
        type Output = F::Output;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            let here = std::ptr::from_ref::<Self>(&self) as usize;
            self.seen.polls.fetch_add(1, Ordering::SeqCst);
            match self
                .polled_at
                .compare_exchange(0, here, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => {}
                Err(first) if first == here => {}
                Err(first) => self.seen.violation(format!(
                    "polled at {here:#x} after a poll at {first:#x} (moved while pinned)"
                )),
            }
            // SAFETY: `inner` is structurally pinned: `PinCheck` is `!Unpin`, never moves it
            // out, and drops it in place.
            unsafe { self.map_unchecked_mut(|s| &mut s.inner) }.poll(cx)
        }
    }

    impl<F> Drop for PinCheck<F> {
        fn drop(&mut self) {
            let here = std::ptr::from_ref::<Self>(self) as usize;
            let first = self.polled_at.load(Ordering::SeqCst);
            if first != 0 && first != here {
                self.seen.violation(format!(
                    "dropped at {here:#x}, polled at {first:#x} (moved before its drop)"
                ));
            }
            self.seen.drops.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A local of [`PinProbe::self_ref`]'s block, borrowed across its await.
    struct Anchor {
        seen: Arc<Seen>,
    }

    impl Drop for Anchor {
        fn drop(&mut self) {
            let here = std::ptr::from_ref::<Self>(self) as usize;
            // The block's borrow of this anchor was dropped just before, on this thread (the
            // borrow is the later local, and locals drop in reverse order).
            let pointed = POINTED.with(|p| p.replace(0));
            if pointed != here {
                self.seen.violation(format!(
                    "a self-referential future was moved: its borrow points at {pointed:#x}, its local is at {here:#x}"
                ));
            }
            self.seen.drops.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The borrow of an [`Anchor`]: says, when dropped, where it points. If the block was
    /// moved, it points at the anchor's old place, which may hold anything by now: so it is
    /// never read through, only its address is handed to the anchor's `Drop`, which runs next.
    struct Borrow<'a>(&'a Anchor);

    impl Drop for Borrow<'_> {
        fn drop(&mut self) {
            let at = std::ptr::from_ref::<Anchor>(self.0) as usize;
            POINTED.with(|p| p.set(at));
        }
    }

    thread_local! {
        /// Where the last dropped [`Borrow`] of this thread pointed.
        static POINTED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }
}

/// A global allocator that counts the allocations (and reallocations) each thread makes, for
/// the tests that count what a spawn costs: install it with
/// `#[global_allocator] static A: pinwheel_tests::CountingAlloc = pinwheel_tests::CountingAlloc;`
/// and read [`allocs_here`].
#[derive(Debug)]
pub struct CountingAlloc;

thread_local! {
    static ALLOCS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator; only counts calls on the calling thread.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: forwarded.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations counted on this thread so far by [`CountingAlloc`].
pub fn allocs_here() -> usize {
    ALLOCS.with(std::cell::Cell::get)
}

/// Allocations per spawn of `n` tasks spawned and awaited one after another on a one-worker
/// runtime (after 100 of them as a warm-up), counted on the worker ([`CountingAlloc`] must be
/// the global allocator).
pub fn steady_spawn_allocs(n: usize) -> f64 {
    let rt = pinwheel::Builder::new().worker_threads(1).build().unwrap();
    rt.block_on(rt.spawn(async move {
        for _ in 0..100 {
            pinwheel::spawn(async { [0u64; 4] }).await.unwrap();
        }
        let before = allocs_here();
        for _ in 0..n {
            pinwheel::spawn(async { [0u64; 4] }).await.unwrap();
        }
        (allocs_here() - before) as f64 / n as f64
    }))
    .unwrap()
}

/// The server side of a speculative-I/O check (net_affinity, net_serve): reads the client's
/// "ping" (however its 4 bytes arrive), answers "pong", says so on `answered`, waits for `go`,
/// then returns what its next read gets (a read that must wait, so it registers the socket).
pub async fn pong_then_read_after_go(
    stream: &pinwheel::net::TcpStream,
    answered: std::sync::mpsc::Sender<()>,
    go: impl std::future::Future<Output = ()>,
) -> Vec<u8> {
    let mut buf = [0u8; 16];
    // The speculative reads take "ping" without waiting only if it all arrived: read until
    // the 4 bytes are in.
    let mut got = 0;
    while got < 4 {
        got += stream.read(&mut buf[got..]).await.unwrap();
    }
    stream.write_all(b"pong").await.unwrap();
    answered.send(()).unwrap();
    go.await;
    let n = stream.read(&mut buf).await.unwrap();
    buf[..n].to_vec()
}
