//! Named tasks, spawn locations and the task dump (HAProxy's `show tasks`).

use std::sync::mpsc;

use pinwheel::ThreadMask;
use pinwheel::task::{Builder, TaskState};
use pinwheel_tests::pin_check::PinProbe;
use pinwheel_tests::rt;

#[test]
fn dump_lists_names_masks_states_and_spawn_locations() {
    let rt = rt(2);
    let pins = PinProbe::new();
    let line = line!();
    let (named, plain) = rt.block_on(async {
        let named = Builder::new()
            .name("parked forever")
            .mask(ThreadMask::one(1))
            .spawn(pins.wrap(std::future::pending::<()>()));
        let plain = pinwheel::spawn(pins.wrap(std::future::pending::<()>()));
        // Let both be polled once.
        pinwheel::yield_now().await;
        (named, plain)
    });
    // Wait (boundedly) until both have been polled and gone idle.
    let start = std::time::Instant::now();
    let dump = loop {
        let dump = rt.handle().dump_tasks();
        let idle = dump
            .tasks
            .iter()
            .filter(|t| t.state == TaskState::Idle && t.since_last_poll.is_some())
            .count();
        if idle >= 2 {
            break dump;
        }
        assert!(
            start.elapsed().as_secs() < 20,
            "tasks never went idle: {dump}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    let t = dump
        .tasks
        .iter()
        .find(|t| t.id == named.id())
        .expect("the named task is listed");
    assert_eq!(t.name.as_deref(), Some("parked forever"));
    assert_eq!(t.mask, ThreadMask::one(1));
    assert!(!t.local);
    assert_eq!(t.location.file(), file!());
    assert!(
        (line..line + 8).contains(&t.location.line()),
        "the spawn location {} is the caller's (near line {line})",
        t.location
    );
    let p = dump.tasks.iter().find(|t| t.id == plain.id()).unwrap();
    assert_eq!(p.name, None);
    assert_eq!(p.location.file(), file!());
    let table = dump.to_string();
    assert!(
        table.contains("parked forever") && table.contains("rt_tasks.rs"),
        "{table}"
    );

    // Aborted tasks leave the dump (and their names leave the runtime).
    named.abort();
    plain.abort();
    rt.block_on(async {
        assert!(named.await.unwrap_err().is_cancelled());
        assert!(plain.await.unwrap_err().is_cancelled());
    });
    pins.assert_dropped_in_place(2);
    // The JoinHandle may see the end a moment before the worker takes the task off its list:
    // wait (boundedly) for that.
    let start = std::time::Instant::now();
    loop {
        let left = rt.handle().dump_tasks();
        if left.tasks.iter().all(|t| t.name.is_none()) {
            break;
        }
        assert!(
            start.elapsed().as_secs() < 20,
            "a finished named task is still listed: {left}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[test]
fn a_task_that_never_ran_is_scheduled_and_never_polled() {
    let rt = rt(1);
    let (release, blocked) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel::<()>();
    let blocker = rt.spawn(async move {
        started_tx.send(()).unwrap();
        blocked.recv().unwrap();
    });
    started.recv().unwrap();
    let waiting = rt.block_on(async {
        let h = Builder::new().name("waiting").spawn(async {});
        Some(h)
    });
    let waiting = waiting.unwrap();
    let dump = rt.handle().dump_tasks();
    let w = dump.tasks.iter().find(|t| t.id == waiting.id()).unwrap();
    assert_eq!(w.state, TaskState::Scheduled);
    assert_eq!(w.since_last_poll, None);
    let b = dump.tasks.iter().find(|t| t.id == blocker.id()).unwrap();
    assert_eq!(b.state, TaskState::Running);
    release.send(()).unwrap();
    rt.block_on(async {
        blocker.await.unwrap();
        waiting.await.unwrap();
    });
}

#[test]
fn local_tasks_are_listed_too() {
    let rt = rt(2);
    let (tx, rx) = mpsc::channel();
    rt.block_on(rt.handle().spawn_on(ThreadMask::one(0), async move {
        let h = Builder::new()
            .name("session")
            .spawn_local(std::future::pending::<()>());
        tx.send(h.abort_handle()).unwrap();
    }))
    .unwrap();
    let abort = rx.recv().unwrap();
    let dump = rt.handle().dump_tasks();
    let s = dump
        .tasks
        .iter()
        .find(|t| t.name.as_deref() == Some("session"))
        .expect("the local task is listed");
    assert!(s.local);
    assert_eq!(s.mask, ThreadMask::one(0));
    abort.abort();
}

#[test]
#[should_panic(expected = "task::Builder::spawn")]
fn builder_mask_outside_the_runtime_panics_naming_the_api() {
    let rt = rt(2);
    rt.block_on(async {
        drop(Builder::new().mask(ThreadMask::one(5)).spawn(async {}));
    });
}
