//! `Pin`'s drop guarantee on every path a task's future is dropped by: completion, a panic
//! inside its poll, an abort (from outside, and during its own poll), cancellation at shutdown,
//! a detached task, `spawn_local`, `spawn_on`, `Handle::spawn`, `net::serve`'s sessions, and a
//! `Drop` that panics. Each future is a `!Unpin` `PinCheck` (checks its own address) or a
//! self-referential async block (a local borrowed across an await); see
//! `pinwheel_tests::pin_check`.

use std::future::{Future, pending};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::Duration;

use pinwheel::{AbortHandle, Runtime, ThreadMask};
use pinwheel_tests::pin_check::PinProbe;
use pinwheel_tests::{rt, wait_until};

const LIMIT: Duration = Duration::from_secs(20);

/// Waits (bounded) until the probe's futures were polled `n` times.
fn wait_polled(probe: &PinProbe, n: usize) {
    wait_until(LIMIT, "the probe's futures to be polled", || {
        probe.polls() >= n
    });
}

/// A future that is pending once (waking itself), then runs `then`: polled at least twice.
async fn after_a_pending_poll<T>(then: impl FnOnce() -> T) -> T {
    pinwheel::yield_now().await;
    then()
}

/// Both kinds of checked future around `inner`: the `!Unpin` address check around a
/// self-referential block, so one drop exercises both checks (2 drops per future).
fn checked<F: Future>(probe: &PinProbe, inner: F) -> impl Future<Output = F::Output> + use<F> {
    probe.wrap(probe.self_ref(inner))
}

#[test]
fn a_completed_future_is_dropped_where_it_was_polled() {
    let rt = rt(2);
    let probe = PinProbe::new();
    let out = rt
        .block_on(rt.spawn(checked(&probe, after_a_pending_poll(|| 7))))
        .unwrap();
    assert_eq!(out, 7);
    assert!(probe.polls() >= 2);
    probe.assert_dropped_in_place(2);
}

#[test]
fn a_future_that_panics_in_poll_is_dropped_in_place() {
    let rt = rt(2);
    let probe = PinProbe::new();
    let err = rt
        .block_on(rt.spawn(checked(
            &probe,
            after_a_pending_poll(|| panic!("pin test: a deliberate panic")),
        )))
        .unwrap_err();
    assert!(err.is_panic());
    probe.assert_dropped_in_place(2);
}

#[test]
fn an_aborted_future_is_dropped_in_place() {
    let rt = rt(2);
    let probe = PinProbe::new();
    let handle = rt.spawn(checked(&probe, pending::<()>()));
    wait_polled(&probe, 1);
    handle.abort();
    let err = rt.block_on(handle).unwrap_err();
    assert!(err.is_cancelled());
    probe.assert_dropped_in_place(2);
}

#[test]
fn a_future_aborted_during_its_own_poll_is_dropped_in_place() {
    // The abort lands while the task is RUNNING: the future is dropped when its poll returns.
    let rt = rt(2);
    let probe = PinProbe::new();
    let slot: Arc<OnceLock<AbortHandle>> = Arc::new(OnceLock::new());
    let mine = slot.clone();
    let handle = rt.spawn(checked(
        &probe,
        std::future::poll_fn(move |cx| {
            match mine.get() {
                Some(me) => me.abort(),
                None => cx.waker().wake_by_ref(),
            }
            Poll::<()>::Pending
        }),
    ));
    slot.set(handle.abort_handle()).unwrap();
    let err = rt.block_on(handle).unwrap_err();
    assert!(err.is_cancelled());
    probe.assert_dropped_in_place(2);
}

#[test]
fn futures_cancelled_at_shutdown_are_dropped_in_place() {
    let rt = rt(2);
    let probe = PinProbe::new();
    let mut handles = Vec::new();
    // Stealable, pinned to each worker, and spawned from outside the runtime.
    handles.push(rt.spawn(checked(&probe, pending::<()>())));
    for w in 0..2 {
        handles.push(
            rt.handle()
                .spawn_on(ThreadMask::one(w), checked(&probe, pending::<()>())),
        );
    }
    let handle = rt.handle().clone();
    handles.push(std::thread::scope(|s| {
        s.spawn(|| handle.spawn(checked(&probe, pending::<()>())))
            .join()
            .unwrap()
    }));
    // Local tasks, spawned by a task on its worker.
    let local = probe.clone();
    rt.block_on(rt.handle().spawn_on(ThreadMask::one(1), async move {
        for _ in 0..3 {
            drop(pinwheel::spawn_local(checked(&local, pending::<()>())));
        }
    }))
    .unwrap();
    wait_polled(&probe, 7);
    drop(rt);
    probe.assert_dropped_in_place(14);
    for h in handles {
        assert!(h.is_finished());
    }
}

#[test]
fn shutdown_timeout_drops_pending_futures_in_place() {
    let rt = rt(1);
    let probe = PinProbe::new();
    let _handle = rt.spawn(checked(&probe, pending::<()>()));
    wait_polled(&probe, 1);
    let report = rt.shutdown_timeout(LIMIT);
    assert!(report.is_clean());
    probe.assert_dropped_in_place(2);
}

#[test]
fn a_detached_task_is_dropped_in_place_when_it_completes_and_when_cancelled() {
    let rt = rt(2);
    let probe = PinProbe::new();
    drop(rt.spawn(checked(&probe, after_a_pending_poll(|| ()))));
    wait_until(LIMIT, "the detached task to complete", || {
        probe.drops() == 2
    });
    drop(rt.spawn(checked(&probe, pending::<()>())));
    wait_polled(&probe, 3);
    drop(rt);
    probe.assert_dropped_in_place(4);
}

#[test]
fn local_and_pinned_tasks_complete_and_abort_in_place() {
    let rt = rt(2);
    let probe = PinProbe::new();
    let p = probe.clone();
    rt.block_on(rt.handle().spawn_on(ThreadMask::one(0), async move {
        let done = pinwheel::spawn_local(checked(&p, after_a_pending_poll(|| 1)));
        assert_eq!(done.await.unwrap(), 1);
        let aborted = pinwheel::spawn_local(checked(&p, pending::<()>()));
        pinwheel::yield_now().await;
        aborted.abort();
        assert!(aborted.await.unwrap_err().is_cancelled());
        let other = pinwheel::spawn_on(ThreadMask::one(1), checked(&p, after_a_pending_poll(|| 2)));
        assert_eq!(other.await.unwrap(), 2);
    }))
    .unwrap();
    probe.assert_dropped_in_place(6);
}

#[test]
fn a_future_whose_drop_panics_is_dropped_once_in_place() {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("pin test: a deliberate panic in Drop");
        }
    }
    let rt = rt(1);
    let probe = PinProbe::new();
    let handle = rt.spawn(checked(&probe, async {
        let _bomb = PanicOnDrop;
        pending::<()>().await;
    }));
    wait_polled(&probe, 1);
    handle.abort();
    let err = rt.block_on(handle).unwrap_err();
    assert!(
        err.is_panic(),
        "a panic from Drop is reported as the task's panic"
    );
    // Both checks ran once (no double drop of the dead future), and the runtime goes on.
    probe.assert_dropped_in_place(2);
    assert_eq!(rt.block_on(rt.spawn(async { 5 })).unwrap(), 5);
}

#[test]
fn serve_sessions_cancelled_at_shutdown_are_dropped_in_place() {
    let rt: Runtime = rt(2);
    let probe = PinProbe::new();
    let started = Arc::new(AtomicUsize::new(0));
    let (addr, sessions) = rt.block_on(async {
        let listener = pinwheel::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let p = probe.clone();
        let s = started.clone();
        let sessions = pinwheel::spawn(pinwheel::net::serve(listener, move |stream, _| {
            s.fetch_add(1, Ordering::SeqCst);
            checked(&p, async move {
                // Holds the connection until shutdown.
                let mut buf = [0u8; 16];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
                pending::<()>().await;
            })
        }));
        (addr, sessions)
    });
    let clients: Vec<_> = (0..4)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    wait_until(LIMIT, "four sessions to start", || {
        started.load(Ordering::SeqCst) == 4
    });
    wait_polled(&probe, 4);
    drop(rt);
    // The sessions, and the serve task itself (not checked: no probe).
    probe.assert_dropped_in_place(8);
    assert!(sessions.is_finished());
    drop(clients);
}

#[test]
fn a_timeout_drops_its_future_in_place_when_it_elapses() {
    let rt = rt(1);
    let probe = PinProbe::new();
    let p = probe.clone();
    let out = rt.block_on(rt.spawn(async move {
        pinwheel::time::timeout(Duration::from_millis(1), checked(&p, pending::<()>())).await
    }));
    assert!(out.unwrap().is_err());
    probe.assert_dropped_in_place(2);
}

#[test]
fn block_on_drops_its_future_in_place() {
    let rt = rt(1);
    let probe = PinProbe::new();
    rt.block_on(checked(&probe, after_a_pending_poll(|| ())));
    probe.assert_dropped_in_place(2);
}

#[test]
fn hyper_executors_futures_are_dropped_in_place_at_shutdown() {
    use hyper::rt::Executor as _;
    let rt = rt(2);
    let probe = PinProbe::new();
    let p = probe.clone();
    rt.block_on(rt.spawn(async move {
        pinwheel::hyper::Executor.execute(checked(&p, pending::<()>()));
        pinwheel::hyper::LocalExecutor.execute(checked(&p, pending::<()>()));
    }))
    .unwrap();
    wait_polled(&probe, 2);
    drop(rt);
    probe.assert_dropped_in_place(4);
}

/// A future around `F` whose own `Drop` records whether a panic was unwinding then (1) or not
/// (2). (A local of an async block would not do: the block drops its own locals as a panic
/// leaves its poll, whatever the runtime does.)
struct SeesPanic<F> {
    inner: F,
    seen: Arc<AtomicUsize>,
}

impl<F: Future> Future for SeesPanic<F> {
    type Output = F::Output;
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        // SAFETY: structural pinning: `inner` is never moved out.
        unsafe { self.map_unchecked_mut(|s| &mut s.inner) }.poll(cx)
    }
}

impl<F> Drop for SeesPanic<F> {
    fn drop(&mut self) {
        let code = if std::thread::panicking() { 1 } else { 2 };
        self.seen.store(code, Ordering::SeqCst);
    }
}

#[test]
fn a_future_that_panics_in_poll_is_dropped_while_the_panic_unwinds() {
    // tokio drops it from a guard while unwinding: its Drop sees `thread::panicking()`.
    let rt = rt(1);
    let probe = PinProbe::new();
    let seen = Arc::new(AtomicUsize::new(0));
    let fut = SeesPanic {
        inner: after_a_pending_poll(|| panic!("pin test: a deliberate panic")),
        seen: seen.clone(),
    };
    // Only the address check around it: an async block around it would drop it as the panic
    // leaves the block.
    let err = rt.block_on(rt.spawn(probe.wrap(fut))).unwrap_err();
    assert!(err.is_panic());
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "the future was dropped after the panic was caught, not while it unwound"
    );
    probe.assert_dropped_in_place(1);
}

#[test]
fn a_second_panic_from_drop_while_unwinding_is_swallowed_and_the_first_reported() {
    // A future whose own `Drop` panics, around one whose poll panics: the runtime drops it
    // while the first panic unwinds, catches the second, and reports the first. (A local of
    // the panicking async block itself that panics in `Drop` aborts the process in any
    // runtime: the block drops its locals as it unwinds.)
    struct PanicOnDrop<F>(F);
    impl<F: Future> Future for PanicOnDrop<F> {
        type Output = F::Output;
        fn poll(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> Poll<F::Output> {
            // SAFETY: structural pinning: the field is never moved out.
            unsafe { self.map_unchecked_mut(|s| &mut s.0) }.poll(cx)
        }
    }
    impl<F> Drop for PanicOnDrop<F> {
        fn drop(&mut self) {
            panic!("pin test: the second panic, from Drop");
        }
    }
    let rt = rt(1);
    let err = rt
        .block_on(rt.spawn(PanicOnDrop(async {
            pinwheel::yield_now().await;
            panic!("pin test: the first panic");
        })))
        .unwrap_err();
    let payload = err.into_panic();
    assert_eq!(
        *payload.downcast_ref::<&str>().unwrap(),
        "pin test: the first panic"
    );
    // The worker goes on.
    assert_eq!(rt.block_on(rt.spawn(async { 3 })).unwrap(), 3);
}
