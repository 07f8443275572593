//! `Runtime::enter` / `Handle::enter`: the runtime is the current one without `block_on`
//! (spawn, `Handle::current`, timers, sockets), nested guards restore the runtime before them,
//! a guard dropped out of order is a clear panic; and `Runtime::shutdown_background`.

use std::time::Duration;

use pinwheel::{Builder, Handle};

#[test]
fn inside_enter_the_runtime_is_current() {
    let rt = Builder::new().worker_threads(2).build().unwrap();
    assert!(Handle::try_current().is_err());
    let (task, sleep, listener) = {
        let _guard = rt.enter();
        assert_eq!(Handle::current().worker_threads(), 2);
        let task = pinwheel::spawn(async { 5 });
        let sleep = pinwheel::time::sleep(Duration::from_millis(1));
        let std = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std.set_nonblocking(true).unwrap();
        let listener = pinwheel::net::TcpListener::from_std(std).unwrap();
        (task, sleep, listener)
    };
    assert!(Handle::try_current().is_err(), "the guard is gone");
    rt.block_on(async move {
        assert_eq!(task.await.unwrap(), 5);
        sleep.await;
        let addr = listener.local_addr().unwrap();
        let accept = pinwheel::spawn(async move { listener.accept().await.map(|_| ()) });
        let _c = pinwheel::net::TcpStream::connect(addr).await.unwrap();
        accept.await.unwrap().unwrap();
    });
}

#[test]
fn nested_guards_restore_the_runtime_before_them() {
    let a = Builder::new().worker_threads(1).build().unwrap();
    let b = Builder::new().worker_threads(2).build().unwrap();
    let ga = a.enter();
    assert_eq!(Handle::current().worker_threads(), 1);
    {
        let _gb = b.enter();
        assert_eq!(Handle::current().worker_threads(), 2);
    }
    assert_eq!(Handle::current().worker_threads(), 1);
    drop(ga);
    assert!(Handle::try_current().is_err());
}

#[test]
fn a_guard_dropped_out_of_order_is_a_clear_panic() {
    let a = Builder::new().worker_threads(1).build().unwrap();
    let b = Builder::new().worker_threads(1).build().unwrap();
    let ga = a.enter();
    let gb = b.enter();
    let msg = pinwheel_tests::panic_message(|| drop(ga));
    assert!(
        msg.contains("EnterGuard dropped out of order") && msg.contains("reverse order"),
        "{msg}"
    );
    drop(gb);
}

#[test]
fn shutdown_background_does_not_wait_for_a_blocked_worker() {
    let rt = Builder::new().worker_threads(1).build().unwrap();
    let (release, blocked) = std::sync::mpsc::channel::<()>();
    let (started_tx, started) = std::sync::mpsc::channel::<()>();
    drop(rt.spawn(async move {
        started_tx.send(()).unwrap();
        // Blocks its worker until the test lets it go, after shutdown_background returned:
        // if shutdown waited for the worker, this test would never end.
        let _ = blocked.recv();
    }));
    started.recv().unwrap();
    rt.shutdown_background();
    release.send(()).unwrap();
}
