//! Scheduling classes (`task::Class`): Urgent first, Normal and Bulk by weight, at most one
//! Heavy poll per turn while other work waits, a Heavy backlog that drains, classes kept
//! across stealing, `set_class` / `current_class`, metrics and the task dump.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pinwheel::ThreadMask;
use pinwheel::task::{self, Builder, Class};
use pinwheel_tests::rt;

/// A log of which task ran, in order.
type Log = Arc<Mutex<Vec<char>>>;

/// Which task ran, on which worker, in which class.
type Runs = Arc<Mutex<Vec<(char, Option<usize>, Class)>>>;

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

fn push(log: &Log, c: char) {
    log.lock().unwrap().push(c);
}

#[test]
fn the_default_class_is_normal_and_builder_sets_another() {
    let rt = rt(2);
    rt.block_on(rt.spawn(async {
        let normal = pinwheel::spawn(async { task::current_class() });
        assert_eq!(normal.await.unwrap(), Class::Normal);
        for class in Class::ALL {
            let got = Builder::new()
                .class(class)
                .spawn(async { task::current_class() })
                .await
                .unwrap();
            assert_eq!(got, class);
        }
        let local = Builder::new()
            .class(Class::Bulk)
            .spawn_local(async { task::current_class() });
        assert_eq!(local.await.unwrap(), Class::Bulk);
        let on_one = Builder::new()
            .class(Class::Urgent)
            .mask(ThreadMask::one(1))
            .spawn(async { (task::current_class(), pinwheel::current_worker()) });
        assert_eq!(on_one.await.unwrap(), (Class::Urgent, Some(1)));
    }))
    .unwrap();
}

#[test]
fn set_class_changes_the_next_polls() {
    let rt = rt(1);
    let before = rt.metrics().worker(0).heavy_polls;
    rt.block_on(rt.spawn(async {
        task::set_class(Class::Heavy);
        // This poll goes on as Normal was chosen for it; the next ones are Heavy.
        for _ in 0..3 {
            pinwheel::yield_now().await;
        }
        assert_eq!(task::current_class(), Class::Heavy);
        task::set_class(Class::Normal);
        pinwheel::yield_now().await;
        assert_eq!(task::current_class(), Class::Normal);
    }))
    .unwrap();
    let m = rt.metrics();
    assert_eq!(m.worker(0).heavy_polls - before, 3, "{m}");
    assert_eq!(
        m.worker(0).class_polls(Class::Heavy),
        m.worker(0).heavy_polls
    );
}

#[test]
fn set_class_outside_a_task_is_a_clear_panic() {
    let err = std::panic::catch_unwind(|| task::set_class(Class::Heavy)).unwrap_err();
    let msg = err.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(
        msg.contains("task::set_class") && msg.contains("outside"),
        "{msg}"
    );
    let rt = rt(1);
    // block_on's own future is not a task either.
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async { task::current_class() })
    }))
    .unwrap_err();
    let msg = err.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(msg.contains("task::current_class"), "{msg}");
}

/// A task can be freed inside its own run (its JoinHandle gone, the poll that completes it
/// gives up the last reference), and freeing it runs user code: here, the drop of the waker
/// its JoinHandle registered. That code must find no polled task (the clear panic), never the
/// task being freed.
#[test]
fn code_run_while_a_task_is_freed_finds_no_polled_task() {
    type Seen = Arc<Mutex<Vec<Result<Class, String>>>>;
    struct Probe(Seen);
    impl std::task::Wake for Probe {
        fn wake(self: Arc<Self>) {}
    }
    impl Drop for Probe {
        fn drop(&mut self) {
            let got = std::panic::catch_unwind(task::current_class).map_err(|e| {
                let msg = e.downcast_ref::<&str>().copied().unwrap_or_default();
                msg.to_string()
            });
            self.0.lock().unwrap().push(got);
        }
    }
    let rt = rt(1);
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let go = Arc::new(AtomicBool::new(false));
    let g = go.clone();
    let mut join = rt.spawn(async move {
        while !g.load(Ordering::Acquire) {
            pinwheel::yield_now().await;
        }
    });
    let waker = std::task::Waker::from(Arc::new(Probe(seen.clone())));
    let polled = std::pin::Pin::new(&mut join).poll(&mut std::task::Context::from_waker(&waker));
    assert!(polled.is_pending());
    drop(waker);
    drop(join);
    go.store(true, Ordering::Release);
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the task was never freed");
        std::thread::sleep(Duration::from_millis(1));
    }
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    match &got[0] {
        Err(msg) => assert!(msg.contains("task::current_class"), "{msg}"),
        Ok(class) => panic!("code run while a task was freed saw it as polled ({class:?})"),
    }
}

#[test]
fn urgent_runs_before_queued_normal_work() {
    let rt = rt(1);
    let log = log();
    let l = log.clone();
    rt.block_on(rt.spawn(async move {
        let mut hs = Vec::new();
        for _ in 0..10 {
            let l = l.clone();
            hs.push(pinwheel::spawn(async move { push(&l, 'N') }));
        }
        let l2 = l.clone();
        hs.push(
            Builder::new()
                .class(Class::Urgent)
                .spawn(async move { push(&l2, 'U') }),
        );
        for h in hs {
            h.await.unwrap();
        }
    }))
    .unwrap();
    let log = log.lock().unwrap();
    assert_eq!(log.first(), Some(&'U'), "{log:?}");
    assert_eq!(log.len(), 11);
}

#[test]
fn heavy_work_delays_normal_work_by_at_most_one_poll_per_turn() {
    let rt = rt(1);
    let log = log();
    let l = log.clone();
    rt.block_on(rt.spawn(async move {
        // A backlog of 100 Heavy tasks, each polled 3 times...
        let mut heavy = Vec::new();
        for _ in 0..100 {
            let l = l.clone();
            heavy.push(Builder::new().class(Class::Heavy).spawn(async move {
                for _ in 0..3 {
                    push(&l, 'H');
                    pinwheel::yield_now().await;
                }
            }));
        }
        // ... and a Normal task with endless work (it yields 2,000 times).
        let l2 = l.clone();
        let normal = pinwheel::spawn(async move {
            for _ in 0..2_000 {
                push(&l2, 'N');
                pinwheel::yield_now().await;
            }
        });
        normal.await.unwrap();
        for h in heavy {
            h.await.unwrap();
        }
    }))
    .unwrap();
    let log = log.lock().unwrap();
    let last_n = log.iter().rposition(|c| *c == 'N').unwrap();
    let first_n = log.iter().position(|c| *c == 'N').unwrap();
    let mut run = 0;
    let mut heavy_meanwhile = 0;
    for c in &log[first_n..last_n] {
        if *c == 'H' {
            run += 1;
            heavy_meanwhile += 1;
            assert!(
                run <= 1,
                "two Heavy polls in a row while Normal work waited: {log:?}"
            );
        } else {
            run = 0;
        }
    }
    // Heavy was not starved meanwhile: about one poll per turn of 64 Normal polls.
    assert!(heavy_meanwhile >= 2_000 / 64 - 2, "{heavy_meanwhile}");
    // And the whole backlog ran.
    assert_eq!(log.iter().filter(|c| **c == 'H').count(), 300);
}

#[test]
fn a_heavy_backlog_drains_when_nothing_else_waits() {
    let rt = rt(1);
    let done = rt.block_on(rt.spawn(async {
        let hs: Vec<_> = (0..500)
            .map(|i| {
                Builder::new().class(Class::Heavy).spawn(async move {
                    pinwheel::yield_now().await;
                    i
                })
            })
            .collect();
        let mut n = 0;
        for h in hs {
            n += usize::from(h.await.unwrap() < 500);
        }
        n
    }));
    assert_eq!(done.unwrap(), 500);
    let m = rt.metrics();
    assert_eq!(m.worker(0).heavy_polls, 1_000, "{m}");
    // More than one Heavy poll per turn: the backlog rule (at one per turn, 1,000 polls would
    // need 1,000 turns).
    assert!(m.worker(0).loop_turns < 1_000, "{m}");
}

#[test]
fn bulk_is_never_starved_by_endless_normal_wakes() {
    let rt = rt(1);
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    rt.block_on(rt.spawn(async move {
        let d2 = d.clone();
        let bulk = Builder::new().class(Class::Bulk).spawn(async move {
            for _ in 0..10 {
                pinwheel::yield_now().await;
            }
            d2.store(true, Ordering::SeqCst);
        });
        // Normal work that never ends on its own: it stops when the Bulk task is done.
        let mut yields = 0u64;
        while !d.load(Ordering::SeqCst) {
            yields += 1;
            assert!(yields < 10_000_000, "the Bulk task was starved");
            pinwheel::yield_now().await;
        }
        bulk.await.unwrap();
    }))
    .unwrap();
    assert!(done.load(Ordering::SeqCst));
    assert!(rt.metrics().worker(0).bulk_polls >= 11);
}

#[test]
fn a_thief_takes_normal_work_before_heavy_and_stolen_tasks_keep_their_class() {
    let rt = rt(2);
    let log: Runs = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    rt.block_on(rt.handle().spawn_on(ThreadMask::one(0), async move {
        // Queued on worker 0 (stealable), which then stays busy: worker 1 steals them.
        let record = |c: char, l: &Runs| {
            l.lock()
                .unwrap()
                .push((c, pinwheel::current_worker(), task::current_class()));
        };
        // Normal first: whenever a thief can see the Heavy task, the Normal ones are queued.
        let ln = l.clone();
        let normal1 = pinwheel::spawn(async move { record('N', &ln) });
        let ln = l.clone();
        let normal2 = pinwheel::spawn(async move { record('N', &ln) });
        let lh = l.clone();
        let heavy = Builder::new()
            .class(Class::Heavy)
            .spawn(async move { record('H', &lh) });
        // Keep worker 0 busy until all three ran elsewhere (bounded).
        let deadline = Instant::now() + Duration::from_secs(30);
        while l.lock().unwrap().len() < 3 {
            assert!(Instant::now() < deadline, "worker 1 stole nothing");
            std::hint::spin_loop();
        }
        drop((heavy, normal1, normal2));
    }))
    .unwrap();
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 3);
    for (c, worker, class) in log.iter() {
        assert_eq!(*worker, Some(1), "{log:?}");
        let want = if *c == 'H' {
            Class::Heavy
        } else {
            Class::Normal
        };
        assert_eq!(*class, want, "a stolen task keeps its class: {log:?}");
    }
    assert_eq!(log[2].0, 'H', "Normal work is stolen before Heavy: {log:?}");
}

#[test]
fn metrics_and_the_dump_show_classes() {
    let rt = rt(1);
    let _list = rt.handle().work_list(|_: u32| {});
    rt.block_on(rt.spawn(async {
        Builder::new()
            .class(Class::Bulk)
            .spawn(async { pinwheel::yield_now().await })
            .await
            .unwrap();
    }))
    .unwrap();
    let m = rt.metrics();
    assert!(m.worker(0).bulk_polls >= 2, "{m}");
    let text = m.to_string();
    for col in [
        "urg_poll",
        "bulk_poll",
        "hvy_poll",
        "urg_q",
        "bulk_q",
        "hvy_q",
    ] {
        assert!(text.contains(col), "no {col} in\n{text}");
    }
    // The work list's handler is the runtime's own plumbing: Urgent.
    let dump = rt.handle().dump_tasks();
    assert!(
        dump.tasks.iter().any(|t| t.class == Class::Urgent),
        "{dump}"
    );
    assert!(dump.to_string().contains("urgent"), "{dump}");
}
