//! Runtime construction, spawning, JoinHandle and errors.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use pinwheel::{Builder, Handle, JoinError, Runtime, ThreadMask};
use pinwheel_tests::rt;

#[test]
fn rt_spawn_and_join() {
    let rt = rt(2);
    let h = rt.spawn(async { 1 + 1 });
    assert_eq!(rt.block_on(h).unwrap(), 2);
    assert_eq!(rt.worker_threads(), 2);
}

#[test]
fn rt_default_worker_count_is_clamped() {
    let rt = Runtime::new().unwrap();
    assert!((1..=64).contains(&rt.worker_threads()));
}

#[test]
fn rt_worker_threads_out_of_range_is_invalid_input() {
    for n in [0, 65, 1000] {
        let err = Builder::new().worker_threads(n).build().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let msg = err.to_string();
        assert!(msg.contains("64") && msg.contains(&n.to_string()), "{msg}");
    }
}

#[test]
fn rt_thread_name_is_applied() {
    let rt = Builder::new()
        .worker_threads(1)
        .thread_name("svc")
        .build()
        .unwrap();
    let name = rt
        .block_on(rt.spawn(async { std::thread::current().name().map(str::to_owned) }))
        .unwrap();
    assert_eq!(name.as_deref(), Some("svc-0"));
}

#[test]
fn rt_spawn_from_inside_block_on_and_tasks() {
    let rt = rt(2);
    let out = rt.block_on(async {
        let outer = pinwheel::spawn(async {
            let inner = pinwheel::spawn(async { 20 });
            inner.await.unwrap() + 1
        });
        outer.await.unwrap() * 2
    });
    assert_eq!(out, 42);
}

#[test]
fn rt_handle_current_inside_and_outside() {
    assert!(Handle::try_current().is_err());
    let msg = Handle::try_current().unwrap_err().to_string();
    assert!(msg.contains("no pinwheel runtime"), "{msg}");
    let rt = rt(1);
    let n = rt.block_on(async { Handle::current().worker_threads() });
    assert_eq!(n, 1);
    let n = rt
        .block_on(rt.spawn(async { Handle::current().worker_threads() }))
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
#[should_panic(expected = "Handle::current")]
fn rt_handle_current_outside_panics() {
    let _ = Handle::current();
}

#[test]
#[should_panic(expected = "must be called from inside a pinwheel runtime")]
fn rt_spawn_outside_runtime_panics() {
    drop(pinwheel::spawn(async {}));
}

#[test]
#[should_panic(expected = "spawn_local must be called on a pinwheel worker thread")]
fn rt_spawn_local_off_worker_panics() {
    drop(pinwheel::spawn_local(async {}));
}

#[test]
fn rt_spawn_local_inside_block_on_panics_too() {
    let rt = rt(1);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async { drop(pinwheel::spawn_local(async {})) })
    }));
    assert!(r.is_err());
}

#[test]
#[should_panic(expected = "names no worker of this runtime, which has 2 workers")]
fn rt_spawn_on_empty_mask_panics() {
    let rt = rt(2);
    drop(rt.handle().spawn_on(ThreadMask::one(5), async {}));
}

#[test]
fn rt_block_on_inside_worker_panics() {
    let rt = rt(1);
    let handle = rt.handle().clone();
    let res = rt.block_on(rt.spawn(async move { handle.block_on(async {}) }));
    let err = res.unwrap_err();
    assert!(err.is_panic());
    assert!(
        err.to_string()
            .contains("block_on was called on a worker thread"),
        "{err}"
    );
}

#[test]
fn rt_panic_is_caught_and_worker_survives() {
    let rt = rt(1);
    let err = rt
        .block_on(rt.spawn(async { panic!("kaboom") }))
        .unwrap_err();
    assert!(err.is_panic() && !err.is_cancelled());
    assert!(err.to_string().contains("kaboom"), "{err}");
    assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "kaboom");
    // The single worker is still alive.
    assert_eq!(rt.block_on(rt.spawn(async { 5 })).unwrap(), 5);
}

#[test]
fn rt_panic_in_drop_of_future_is_contained() {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("drop panic");
        }
    }
    let rt = rt(1);
    // Panics while dropping the future after it completed.
    let r = rt.block_on(rt.spawn(async {
        let _guard = PanicOnDrop;
        3
    }));
    assert!(r.unwrap_err().is_panic());
    // Panics while dropping an aborted future.
    let h = rt.spawn(async {
        let _guard = PanicOnDrop;
        std::future::pending::<()>().await
    });
    rt.block_on(pinwheel_yield(&rt));
    h.abort();
    let err = rt.block_on(h).unwrap_err();
    assert!(err.is_panic(), "{err}");
    assert_eq!(rt.block_on(rt.spawn(async { 1 })).unwrap(), 1);
}

async fn pinwheel_yield(rt: &Runtime) {
    rt.spawn(async {}).await.unwrap();
}

#[test]
fn rt_join_error_display_and_into_panic() {
    let rt = rt(1);
    let h = rt.spawn(std::future::pending::<()>());
    h.abort();
    let err: JoinError = rt.block_on(h).unwrap_err();
    assert!(err.is_cancelled());
    assert!(err.to_string().contains("was cancelled"), "{err}");
    assert!(err.try_into_panic().is_err());
}

#[test]
#[should_panic(expected = "into_panic called on a cancelled task")]
fn rt_into_panic_on_cancelled_panics() {
    let rt = rt(1);
    let h = rt.spawn(std::future::pending::<()>());
    h.abort();
    let err = rt.block_on(h).unwrap_err();
    let _ = err.into_panic();
}

#[test]
fn rt_abort_handle_and_is_finished() {
    let rt = rt(2);
    let h = rt.spawn(std::future::pending::<()>());
    let a = h.abort_handle();
    assert_eq!(a.id(), h.id());
    assert!(!h.is_finished());
    a.clone().abort();
    let err = rt.block_on(h).unwrap_err();
    assert!(err.is_cancelled());
    assert!(a.is_finished());
    // Abort after completion does nothing.
    let h = rt.spawn(async { 9 });
    let a = h.abort_handle();
    let v = rt.block_on(h).unwrap();
    a.abort();
    assert_eq!(v, 9);
}

#[test]
fn rt_detached_task_runs_to_completion() {
    let rt = rt(2);
    let done = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = std::sync::mpsc::channel();
    for _ in 0..100 {
        let done = done.clone();
        let tx = tx.clone();
        drop(rt.spawn(async move {
            pinwheel::yield_now().await;
            done.fetch_add(1, Ordering::SeqCst);
            tx.send(()).unwrap();
        }));
    }
    for _ in 0..100 {
        rx.recv().unwrap();
    }
    assert_eq!(done.load(Ordering::SeqCst), 100);
}

#[test]
fn rt_task_ids_are_unique() {
    let rt = rt(2);
    let mut ids: Vec<_> = (0..1000).map(|_| rt.spawn(async {}).id()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1000);
}

#[test]
fn rt_handle_block_on_from_other_thread() {
    let rt = rt(2);
    let handle = rt.handle().clone();
    let out = std::thread::spawn(move || {
        handle.block_on(async { pinwheel::spawn(async { 11 }).await.unwrap() })
    })
    .join()
    .unwrap();
    assert_eq!(out, 11);
}

#[test]
fn rt_many_tasks_with_many_wakeups() {
    // Cross-thread wakes through std channels: every task completes, none is lost.
    let rt = rt(2);
    let total = rt.block_on(async {
        let mut handles = Vec::new();
        for i in 0..200u64 {
            handles.push(pinwheel::spawn(async move {
                let mut acc = 0;
                for j in 0..20 {
                    acc += i * j;
                    pinwheel::yield_now().await;
                }
                acc
            }));
        }
        let mut total = 0;
        for h in handles {
            total += h.await.unwrap();
        }
        total
    });
    assert_eq!(total, (0..200u64).map(|i| i * 190).sum::<u64>());
}

#[test]
fn rt_metrics_count_polls() {
    let rt = rt(2);
    rt.block_on(async {
        for _ in 0..50 {
            pinwheel::spawn(async {}).await.unwrap();
        }
    });
    let m = rt.metrics();
    assert_eq!(m.worker_threads(), 2);
    assert!(m.total().tasks_polled >= 50);
    assert!(m.total().remote_wakes >= 1);
    let table = m.to_string();
    assert!(
        // Five groups, each a title, a header, a row per worker and a total row, a blank line
        // between groups; then the live-task count.
        table.contains("polled")
            && table.contains("total")
            && table.lines().count() == 5 * (2 + 2 + 1) + 4 + 1,
        "{table}"
    );
}

#[test]
#[should_panic(expected = "index 7 is out of range for a runtime with 2 workers")]
fn rt_metrics_bad_index_panics() {
    let rt = rt(2);
    let _ = rt.metrics().worker(7);
}

#[test]
fn rt_join_handle_polled_after_ready_panics() {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Waker};

    let rt = rt(1);
    let mut h = rt.spawn(async { 1 });
    while !h.is_finished() {
        std::thread::yield_now();
    }
    let mut cx = Context::from_waker(Waker::noop());
    assert!(Pin::new(&mut h).poll(&mut cx).is_ready());
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Pin::new(&mut h).poll(&mut cx)
    }));
    let msg = *again.unwrap_err().downcast::<&str>().unwrap();
    assert!(
        msg.contains("JoinHandle polled after it returned Ready"),
        "{msg}"
    );
}

#[test]
fn rt_join_handle_works_across_runtimes() {
    let a = rt(1);
    let b = rt(1);
    let h = a.spawn(async { 5 });
    let out = b.block_on(b.spawn(async move { h.await.unwrap() * 2 }));
    assert_eq!(out.unwrap(), 10);
}
