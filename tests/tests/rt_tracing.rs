//! `tracing`: a span per task (id, name, spawn location) entered on every poll, and
//! trace-level events for wake, poll and complete, seen through a subscriber that listens.

use pinwheel_tests::capture;

#[test]
fn task_spans_and_events() {
    let log = capture::log();
    let rt = pinwheel::Builder::new().worker_threads(2).build().unwrap();
    let id = rt.block_on(async {
        let parent = pinwheel::spawn(async {
            let h = pinwheel::task::Builder::new().name("traced").spawn(async {
                pinwheel::yield_now().await; // a wake and a second poll
                7
            });
            let id = h.id().as_u64();
            assert_eq!(h.await.unwrap(), 7);
            id
        });
        parent.await.unwrap()
    });
    let log = log.lock().unwrap();
    let span = log
        .spans
        .values()
        .find(|s| s.contains("task.name=\"traced\""))
        .unwrap_or_else(|| panic!("no span for the named task: {:?}", log.spans));
    assert!(span.contains(&format!("task.id={id}")), "{span}");
    assert!(span.contains("rt_tracing.rs"), "the spawn location: {span}");
    // Spawned from inside another task's poll, it is still a root span: a task outlives
    // the poll that spawned it.
    assert!(span.contains("(root)"), "a task span has no parent: {span}");
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
