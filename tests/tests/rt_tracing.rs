//! `tracing`: a span per task (id, name, spawn location) entered on every poll, and
//! trace-level events for wake, poll and complete, seen through a subscriber that listens.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[derive(Default)]
struct Log {
    spans: HashMap<u64, String>,
    /// (event text, the text of the span it happened in)
    events: Vec<(String, Option<String>)>,
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
        meta.target().starts_with("pinwheel::task")
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut s = String::new();
        attrs.record(&mut Text(&mut s));
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

fn log() -> Arc<Mutex<Log>> {
    static LOG: OnceLock<Arc<Mutex<Log>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Log::default()));
        tracing::subscriber::set_global_default(Capture {
            log: log.clone(),
            next: AtomicU64::new(0),
        })
        .unwrap();
        log
    })
    .clone()
}

#[test]
fn task_spans_and_events() {
    let log = log();
    let rt = pinwheel::Builder::new().worker_threads(2).build().unwrap();
    let id = rt.block_on(async {
        let h = pinwheel::task::Builder::new().name("traced").spawn(async {
            pinwheel::yield_now().await; // a wake and a second poll
            7
        });
        let id = h.id().as_u64();
        assert_eq!(h.await.unwrap(), 7);
        id
    });
    let log = log.lock().unwrap();
    let span = log
        .spans
        .values()
        .find(|s| s.contains("task.name=\"traced\""))
        .unwrap_or_else(|| panic!("no span for the named task: {:?}", log.spans));
    assert!(span.contains(&format!("task.id={id}")), "{span}");
    assert!(span.contains("rt_tracing.rs"), "the spawn location: {span}");
    let in_span = |what: &str| {
        log.events
            .iter()
            .filter(|(e, s)| e.contains(what) && s.as_deref() == Some(span.as_str()))
            .count()
    };
    assert!(
        in_span("poll") >= 2,
        "two polls inside the task's span: {:?}",
        log.events
    );
    assert_eq!(in_span("complete"), 1);
    assert!(
        log.events
            .iter()
            .any(|(e, _)| e.contains("wake") && e.contains(&format!("task_id={id}"))),
        "a wake event for the task"
    );
}
