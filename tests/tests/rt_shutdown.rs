//! Shutdown drops every unfinished future exactly once, pinned ones on their own thread, and
//! resolves their JoinHandles to cancellations.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pinwheel::{Builder, JoinHandle, Runtime, ThreadMask};
use pinwheel_tests::pin_check::PinProbe;

/// Counts drops and records the worker that dropped it.
struct DropProbe {
    drops: Arc<AtomicUsize>,
    wrong_thread: Arc<AtomicUsize>,
    expect: Option<usize>,
}

impl Drop for DropProbe {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        if let Some(k) = self.expect {
            if pinwheel::current_worker() != Some(k) {
                self.wrong_thread.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

struct Counters {
    drops: Arc<AtomicUsize>,
    wrong_thread: Arc<AtomicUsize>,
}

impl Counters {
    fn new() -> Counters {
        Counters {
            drops: Arc::new(AtomicUsize::new(0)),
            wrong_thread: Arc::new(AtomicUsize::new(0)),
        }
    }
    fn probe(&self, expect: Option<usize>) -> DropProbe {
        DropProbe {
            drops: self.drops.clone(),
            wrong_thread: self.wrong_thread.clone(),
            expect,
        }
    }
}

#[test]
fn rt_shutdown_drops_every_kind_of_pending_task_once() {
    let rt = Builder::new().worker_threads(3).build().unwrap();
    let c = Counters::new();
    // Every future is also a `!Unpin` address check: dropped where it was polled.
    let pins = PinProbe::new();
    let mut handles: Vec<JoinHandle<()>> = Vec::new();
    const N: usize = 200;

    // Stealable tasks, parked forever.
    for _ in 0..N {
        let p = c.probe(None);
        handles.push(rt.spawn(pins.wrap(async move {
            let _p = p;
            std::future::pending::<()>().await
        })));
    }
    // Pinned Send tasks on each worker.
    for k in 0..3 {
        for _ in 0..N {
            let p = c.probe(Some(k));
            handles.push(rt.handle().spawn_on(
                ThreadMask::one(k),
                pins.wrap(async move {
                    let _p = p;
                    std::future::pending::<()>().await
                }),
            ));
        }
    }
    // spawn_local tasks (not Send) on each worker; their handles are kept on the worker.
    let local_handles = Arc::new(Mutex::new(Vec::new()));
    for k in 0..3 {
        let probes: Vec<_> = (0..N).map(|_| c.probe(Some(k))).collect();
        let lh = local_handles.clone();
        let pins = pins.clone();
        rt.block_on(rt.handle().spawn_on(ThreadMask::one(k), async move {
            for p in probes {
                let rc = Rc::new(Cell::new(0));
                let h = pinwheel::spawn_local(pins.wrap(async move {
                    let _p = p;
                    rc.set(1);
                    std::future::pending::<()>().await
                }));
                lh.lock().unwrap().push(h);
            }
            // Let them all be polled once.
            pinwheel::yield_now().await;
        }))
        .unwrap();
    }
    // Tasks that are queued but not yet polled: spawned behind a task that blocks its worker.
    let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let g2 = gate.clone();
    rt.block_on(rt.handle().spawn_on(ThreadMask::one(0), async move {
        let g3 = g2.clone();
        // This one blocks worker 0 until the gate opens.
        drop(pinwheel::spawn_local(async move {
            let mut open = g3.0.lock().unwrap();
            while !*open {
                open = g3.1.wait(open).unwrap();
            }
        }));
    }))
    .unwrap();
    for _ in 0..N {
        let p = c.probe(Some(0));
        handles.push(rt.handle().spawn_on(
            ThreadMask::one(0),
            pins.wrap(async move {
                let _p = p;
                std::future::pending::<()>().await
            }),
        ));
    }

    let expected = N * 8;
    assert_eq!(c.drops.load(Ordering::SeqCst), 0);
    // Open the gate from a thread, most likely once shutdown has begun: the worker finishes its
    // poll, then drops what is queued. (Either order gives the same counts.)
    let g4 = gate.clone();
    let opener = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        *g4.0.lock().unwrap() = true;
        g4.1.notify_all();
    });
    drop(rt);
    opener.join().unwrap();

    assert_eq!(
        c.drops.load(Ordering::SeqCst),
        expected,
        "every future dropped exactly once"
    );
    assert_eq!(
        c.wrong_thread.load(Ordering::SeqCst),
        0,
        "pinned futures dropped off their thread"
    );
    pins.assert_dropped_in_place(expected);
    for h in handles {
        assert!(h.is_finished());
        // Awaiting a JoinHandle needs no runtime.
        let err = futures_block_on(h).unwrap_err();
        assert!(err.is_cancelled(), "{err}");
    }
    // The local handles' tasks were all cancelled too.
    let lh = std::mem::take(&mut *local_handles.lock().unwrap());
    assert_eq!(lh.len(), 3 * N);
    for h in lh {
        assert!(h.is_finished());
    }
}

/// A minimal executor for awaiting a JoinHandle after the runtime is gone.
fn futures_block_on<F: std::future::Future>(f: F) -> F::Output {
    let rt = Builder::new().worker_threads(1).build().unwrap();
    rt.block_on(f)
}

#[test]
fn rt_spawn_after_shutdown_began_is_cancelled() {
    let rt = Builder::new().worker_threads(1).build().unwrap();
    let handle = rt.handle().clone();
    drop(rt);
    let h = handle.spawn(async { 1 });
    assert!(h.is_finished());
    let other = Runtime::new().unwrap();
    assert!(other.block_on(h).unwrap_err().is_cancelled());
}

#[test]
fn rt_shutdown_timeout_returns_despite_a_blocked_worker() {
    let rt = Builder::new().worker_threads(2).build().unwrap();
    let release = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let r2 = release.clone();
    let started = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let s2 = started.clone();
    #[allow(clippy::async_yields_async)] // it yields the JoinHandle of the task it spawns
    let blocked = rt.block_on(async {
        pinwheel::task::Builder::new()
            .name("stuck")
            .spawn(async move {
                *s2.0.lock().unwrap() = true;
                s2.1.notify_all();
                let mut go = r2.0.lock().unwrap();
                while !*go {
                    go = r2.1.wait(go).unwrap();
                }
            })
    });
    let blocked_id = blocked.id();
    {
        let mut s = started.0.lock().unwrap();
        while !*s {
            s = started.1.wait(s).unwrap();
        }
    }
    let idle = rt.spawn(std::future::pending::<()>());
    let report = rt.shutdown_timeout(Duration::from_millis(50));
    // The idle task was cancelled although a worker is still stuck.
    assert!(idle.is_finished());
    // The report names the stuck worker and what it polls.
    assert!(!report.is_clean());
    assert_eq!(report.stuck_workers.len(), 1, "{report}");
    let task = report.stuck_workers[0]
        .task
        .as_ref()
        .expect("the stuck worker's task");
    assert_eq!(task.id, blocked_id);
    assert_eq!(task.name.as_deref(), Some("stuck"));
    assert!(task.location.file().ends_with("rt_shutdown.rs"), "{report}");
    assert!(task.since_last_poll.is_some());
    assert!(report.tasks_cancelled >= 1, "{report}");
    assert!(report.blocking_running.is_empty());
    let text = report.to_string();
    assert!(
        text.contains("did not stop: polling task") && text.contains("(stuck) spawned at"),
        "{text}"
    );
    *release.0.lock().unwrap() = true;
    release.1.notify_all();
    // The stuck task finishes its poll; its output is kept (it completed, it was not cancelled
    // mid-poll).
    let other = Runtime::new().unwrap();
    assert!(other.block_on(blocked).is_ok());
}

#[test]
fn rt_shutdown_report_of_a_clean_shutdown() {
    let rt = Builder::new().worker_threads(2).build().unwrap();
    let pending: Vec<_> = (0..3)
        .map(|_| rt.spawn(std::future::pending::<()>()))
        .collect();
    rt.block_on(rt.spawn(async {})).unwrap();
    let report = rt.shutdown_timeout(Duration::from_secs(30));
    assert!(report.is_clean(), "{report}");
    assert!(report.stuck_workers.is_empty() && report.blocking_running.is_empty());
    assert_eq!(report.tasks_cancelled, 3, "{report}");
    assert_eq!(report.blocking_cancelled, 0);
    assert!(
        report.to_string().contains("every thread stopped"),
        "{report}"
    );
    for h in pending {
        assert!(h.is_finished());
    }
}

#[test]
fn rt_dropping_runtime_with_nothing_running_is_quick_and_clean() {
    for _ in 0..20 {
        let rt = Builder::new().worker_threads(4).build().unwrap();
        rt.block_on(rt.spawn(async {})).unwrap();
        drop(rt);
    }
}
