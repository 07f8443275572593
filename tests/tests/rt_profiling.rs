//! Task profiling (`Handle::profile`, `Builder::task_profiling`, `Handle::set_task_profiling`)
//! and loop health (`WorkerMetrics::avg_loop_nanos`, `stolen_nanos`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pinwheel::profile::{Mode, ProfileEntry};
use pinwheel::{Builder, Handle};
use pinwheel_tests::rt;

/// Burns `d` of wall time on this thread.
fn spin(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

/// A task that is polled `polls` times (it yields `polls - 1` times).
async fn polled(polls: usize) {
    for _ in 1..polls {
        pinwheel::yield_now().await;
    }
}

/// The entry of the tasks spawned at `line` of this file (and named `name`).
fn entry_at(h: &Handle, line: u32, name: Option<&str>) -> Option<ProfileEntry> {
    h.profile()
        .entries()
        .iter()
        .find(|e| {
            e.location.file().ends_with("rt_profiling.rs")
                && e.location.line() == line
                && e.name.as_deref() == name
        })
        .cloned()
}

#[test]
fn off_by_default_nothing_is_recorded() {
    let rt = rt(2);
    rt.block_on(async {
        for _ in 0..10 {
            pinwheel::spawn(polled(3)).await.unwrap();
        }
    });
    let p = rt.handle().profile();
    assert_eq!(p.mode(), Mode::Off);
    assert_eq!(rt.handle().task_profiling(), Mode::Off);
    assert!(p.entries().is_empty(), "{p}");
    assert_eq!(p.workers_profiling(), &[false, false]);
}

#[test]
fn every_poll_is_counted_per_location_and_name() {
    let rt = Builder::new()
        .worker_threads(2)
        .task_profiling(Mode::On)
        .build()
        .unwrap();
    let (unnamed_line, named_line) = rt.block_on(async {
        let mut handles = Vec::new();
        let unnamed_line = line!() + 2;
        for _ in 0..10 {
            handles.push(pinwheel::spawn(polled(5)));
        }
        let named_line = line!() + 5;
        for _ in 0..3 {
            handles.push(
                pinwheel::task::Builder::new()
                    .name("reader")
                    .spawn(polled(200)),
            );
        }
        for h in handles {
            h.await.unwrap();
        }
        (unnamed_line, named_line)
    });
    let h = rt.handle();
    let unnamed = entry_at(h, unnamed_line, None).expect("an entry for the unnamed tasks");
    assert_eq!((unnamed.tasks, unnamed.polls), (10, 50));
    let named = entry_at(h, named_line, Some("reader")).expect("an entry for the named tasks");
    assert_eq!((named.tasks, named.polls), (3, 600));
    // Every timed poll (the first 64 of a location on a worker, one in 64 after) asks for the
    // task's next wake to be stamped: some latencies were measured.
    assert!(named.latency_samples > 0, "{named:?}");
    assert!(named.latency_avg.is_some() && named.latency_p99 >= named.latency_p50);
    let text = rt.handle().profile().to_string();
    assert!(
        text.contains("calls") && text.contains("cpu_tot") && text.contains("lat_p99"),
        "{text}"
    );
    assert!(
        text.contains(&format!("rt_profiling.rs:{named_line}")) && text.contains("\"reader\""),
        "{text}"
    );
}

/// Past a location's first 64 polls on a worker, polls take the fast path (a count and a
/// countdown), and new tasks spawned where the last new task was are counted there too: the
/// counts stay exact, on one worker and on two (tasks stolen, polled on either).
#[test]
fn counts_stay_exact_past_the_timed_polls() {
    for workers in [1, 2] {
        let rt = Builder::new()
            .worker_threads(workers)
            .task_profiling(Mode::On)
            .build()
            .unwrap();
        let (line, yields_line) = rt
            .block_on(rt.spawn(async {
                let mut handles = Vec::new();
                let line = line!() + 2;
                for _ in 0..2_000 {
                    handles.push(pinwheel::spawn(polled(3)));
                }
                let yields_line = line!() + 2;
                for _ in 0..4 {
                    handles.push(pinwheel::spawn(polled(5_000)));
                }
                for h in handles {
                    h.await.unwrap();
                }
                (line, yields_line)
            }))
            .unwrap();
        let h = rt.handle();
        let many = entry_at(h, line, None).expect("an entry for the many tasks");
        assert_eq!(
            (many.tasks, many.polls),
            (2_000, 6_000),
            "{workers} workers"
        );
        let long = entry_at(h, yields_line, None).expect("an entry for the yielding tasks");
        assert_eq!((long.tasks, long.polls), (4, 20_000), "{workers} workers");
        assert!(long.latency_samples > 0, "{long:?}");
        assert!(long.cpu_total > Duration::ZERO, "{long:?}");
    }
}

#[test]
fn poll_time_is_measured_and_the_table_is_sorted_by_it() {
    let rt = Builder::new()
        .worker_threads(1)
        .task_profiling(Mode::On)
        .build()
        .unwrap();
    let (slow_line, fast_line) = rt.block_on(async {
        let slow_line = line!() + 1;
        let slow = pinwheel::spawn(async { spin(Duration::from_millis(3)) });
        let fast_line = line!() + 1;
        let fast = pinwheel::spawn(async {});
        slow.await.unwrap();
        fast.await.unwrap();
        (slow_line, fast_line)
    });
    let h = rt.handle();
    let slow = entry_at(h, slow_line, None).unwrap();
    // The first polls of a location are all timed: this one ran for at least 3 ms.
    assert!(slow.cpu_total >= Duration::from_millis(3), "{slow:?}");
    assert_eq!(slow.cpu_avg(), slow.cpu_total);
    assert!(entry_at(h, fast_line, None).is_some());
    let p = rt.handle().profile();
    let first = &p.entries()[0];
    assert_eq!(first.location.line(), slow_line, "{p}");
}

#[test]
fn profiling_is_turned_on_and_off_while_running() {
    let rt = rt(1);
    let h = rt.handle().clone();
    h.set_task_profiling(Mode::On);
    assert_eq!(h.task_profiling(), Mode::On);
    let on_line = rt.block_on(async {
        // The worker applies the mode at its next loop turn, which comes before this task's
        // first poll (it was spawned after the change).
        let line = line!() + 1;
        pinwheel::spawn(polled(4)).await.unwrap();
        line
    });
    h.set_task_profiling(Mode::Off);
    // One task run after the change ends any turn that began before it.
    rt.block_on(rt.spawn(async {})).unwrap();
    let off_line = rt.block_on(async {
        let line = line!() + 1;
        pinwheel::spawn(polled(4)).await.unwrap();
        line
    });
    let h = rt.handle();
    assert_eq!(entry_at(h, on_line, None).map(|e| e.polls), Some(4));
    assert!(entry_at(h, off_line, None).is_none());
    // What was recorded is kept.
    assert_eq!(h.profile().mode(), Mode::Off);
    assert_eq!(h.profile().workers_profiling(), &[false]);
}

#[test]
fn auto_mode_follows_the_loop_turn_length() {
    let rt = Builder::new()
        .worker_threads(1)
        .task_profiling(Mode::Auto)
        .long_poll_threshold(Duration::from_secs(10))
        .build()
        .unwrap();
    let h = rt.handle().clone();
    assert_eq!(h.profile().workers_profiling(), &[false]);
    // Loop turns of 20 ms each: the 1024-turn average passes 1 ms after about a second.
    let slow_line = rt.block_on(async {
        let line = line!() + 1;
        pinwheel::spawn(async {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !Handle::current().profile().workers_profiling()[0] {
                assert!(Instant::now() < deadline, "auto never turned profiling on");
                spin(Duration::from_millis(20));
                pinwheel::yield_now().await;
            }
            // Read in the turn that turned it on: the average it was turned on for (later
            // short turns bring it down a little each, so reading it after the task ends
            // would race with them).
            let avg = Handle::current().metrics().worker(0).avg_loop_nanos;
            assert!(
                avg > 1_000_000,
                "auto turned profiling on at an average turn of {avg} ns"
            );
            // Recorded from here on.
            spin(Duration::from_millis(1));
            pinwheel::yield_now().await;
        })
        .await
        .unwrap();
        line
    });
    {
        let h = rt.handle();
        let e = entry_at(h, slow_line, None).expect("polls recorded once auto turned on");
        assert!(e.polls >= 1);
    }
    // Short turns bring the average back down, and profiling turns itself off. The task
    // looks at the flag only every 4,096 yields: a turn is then 64 polls that do nothing but
    // yield (microseconds even under a sanitizer), far below the 0.99 ms that ends auto mode,
    // where reading the profile on every poll could itself keep turns above it.
    rt.block_on(rt.spawn(async {
        for _ in 0..10_000u64 {
            if !Handle::current().profile().workers_profiling()[0] {
                return;
            }
            for _ in 0..4_096 {
                pinwheel::yield_now().await;
            }
        }
        panic!("auto never turned profiling off");
    }))
    .unwrap();
    assert!(h.metrics().worker(0).avg_loop_nanos < 990_000);
}

#[test]
fn an_idle_runtime_loses_no_time() {
    // Idle: its workers sleep from their first turn on, so none ever works the 0.5 ms that
    // opens a stolen-time window, however busy the machine is.
    let rt = rt(2);
    std::thread::sleep(Duration::from_millis(50));
    let m = rt.metrics();
    assert_eq!(m.total().stolen_nanos, 0, "{m}");
    let text = m.to_string();
    assert!(
        text.contains("loop_us") && text.contains("stolen_ms"),
        "{text}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_worker_sharing_its_cpu_with_a_hog_shows_stolen_time() {
    // Two runtimes of one worker each, both bound to the first CPU this process may use: the
    // hog's worker spins, so the victim's worker has that CPU about half of the time.
    let one_cpu = |name: &str| {
        Builder::new()
            .worker_threads(1)
            .pin_workers(true)
            .thread_name(name)
            .long_poll_threshold(Duration::from_secs(10))
            .build()
            .unwrap()
    };
    let hog = one_cpu("hog");
    let victim = one_cpu("victim");
    let stop = Arc::new(AtomicBool::new(false));
    let hog_stop = stop.clone();
    let hogging = hog.spawn(async move {
        while !hog_stop.load(Ordering::Relaxed) {
            spin(Duration::from_millis(1));
            pinwheel::yield_now().await;
        }
    });
    victim
        .block_on(victim.spawn(async {
            let deadline = Instant::now() + Duration::from_secs(60);
            while Handle::current().metrics().worker(0).stolen_nanos == 0 {
                assert!(Instant::now() < deadline, "no stolen time seen in 60 s");
                spin(Duration::from_micros(200));
                pinwheel::yield_now().await;
            }
        }))
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    hog.block_on(hogging).unwrap();
    let m = victim.metrics();
    assert!(m.worker(0).stolen_nanos >= 500_000, "{m}");
}
