//! Integration tests of pinwheel live in `tests/`; this library checks that the Rust examples
//! in the README compile and run, and holds what several tests share.

#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

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
