//! Signals: deliveries reach every waiter on every runtime, none is lost between two awaits,
//! misuse is a clear error, and `ctrl_c` lets a process exit cleanly on SIGINT.
//!
//! Each test uses a signal of its own, since they run in one process at once.

#![cfg(unix)]

use std::io::{BufRead, BufReader, ErrorKind};
use std::process::{Command, Stdio};
use std::time::Duration;

use pinwheel::signal::unix::{SignalKind, signal};
use pinwheel_tests::rt;

unsafe extern "C" {
    safe fn raise(sig: i32) -> i32;
    safe fn kill(pid: i32, sig: i32) -> i32;
}

const SIGHUP: i32 = 1;
const SIGINT: i32 = 2;
const SIGKILL: i32 = 9;
const SIGUSR1: i32 = 10;
const SIGUSR2: i32 = 12;
const SIGWINCH: i32 = 28;

#[test]
fn a_delivery_wakes_a_waiting_task() {
    let rt = rt(2);
    let mut s = signal(SignalKind::user_defined1()).unwrap();
    let waiter = rt.spawn(async move {
        s.recv().await;
        s.kind()
    });
    // The task may not be waiting yet: the delivery is kept for it either way.
    assert_eq!(raise(SIGUSR1), 0);
    let kind =
        rt.block_on(async { pinwheel::time::timeout(Duration::from_secs(30), waiter).await });
    assert_eq!(
        kind.expect("woken within 30 s").unwrap(),
        SignalKind::user_defined1()
    );
}

#[test]
fn every_waiter_on_every_runtime_is_woken() {
    let (a, b) = (rt(2), rt(2));
    let mut waiters = Vec::new();
    for rt in [&a, &b] {
        for _ in 0..3 {
            let mut s = signal(SignalKind::user_defined2()).unwrap();
            waiters.push((rt, rt.spawn(async move { s.recv().await })));
        }
    }
    assert_eq!(raise(SIGUSR2), 0);
    for (rt, w) in waiters {
        let got = rt.block_on(async { pinwheel::time::timeout(Duration::from_secs(30), w).await });
        assert_eq!(got.expect("woken within 30 s").unwrap(), Some(()));
    }
}

#[test]
fn no_delivery_is_lost_between_two_awaits() {
    let rt = rt(2);
    rt.block_on(async {
        let mut s = signal(SignalKind::window_change()).unwrap();
        for round in 0..5 {
            // Delivered while nobody awaits: the next recv still sees it.
            assert_eq!(raise(SIGWINCH), 0);
            let got = pinwheel::time::timeout(Duration::from_secs(30), s.recv()).await;
            assert_eq!(got, Ok(Some(())), "round {round}");
        }
        // Nothing more was delivered: the next recv waits.
        let idle = pinwheel::time::timeout(Duration::from_millis(50), s.recv()).await;
        assert!(idle.is_err(), "a recv completed with no delivery");
    });
}

#[test]
fn misuse_is_a_clear_error() {
    for (n, what) in [
        (SIGKILL, "cannot be caught"),
        (0, "not a signal"),
        (999, "not a signal"),
    ] {
        let err = signal(SignalKind::from_raw(n)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{n}");
        assert!(err.to_string().contains(what), "{n}: {err}");
    }
}

/// The child of `ctrl_c_lets_a_service_exit_cleanly`: waits for Ctrl-C, says so, exits.
#[test]
#[ignore = "run by ctrl_c_lets_a_service_exit_cleanly in a child process"]
fn ctrl_c_child() {
    let rt = rt(2);
    rt.block_on(async {
        let waiting = pinwheel::signal::ctrl_c();
        // ctrl_c installs its handler at its first poll; poll once before saying we wait.
        let mut waiting = std::pin::pin!(waiting);
        assert!(futures_poll_once(waiting.as_mut()).await.is_none());
        println!("waiting for ctrl-c");
        waiting.await.unwrap();
        println!("got ctrl-c, exiting cleanly");
    });
}

/// Polls a future once, returning its output if it was ready.
async fn futures_poll_once<F: std::future::Future + Unpin>(mut f: F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut f).poll(cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

#[test]
fn ctrl_c_lets_a_service_exit_cleanly() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "ctrl_c_child",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the child ended before waiting for ctrl-c"
        );
        if line.contains("waiting for ctrl-c") {
            break;
        }
    }
    assert_eq!(kill(child.id() as i32, SIGINT), 0);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the child did not exit cleanly: {status:?}\n{rest}"
    );
    assert!(rest.contains("got ctrl-c, exiting cleanly"), "{rest}");
}

#[test]
fn a_signal_stream_works_off_the_runtime_threads_too() {
    // Made and awaited inside block_on (not a worker): the signal thread wakes it all the same.
    let rt = rt(2);
    rt.block_on(async {
        let mut s = signal(SignalKind::hangup()).unwrap();
        assert_eq!(raise(SIGHUP), 0);
        let got = pinwheel::time::timeout(Duration::from_secs(30), s.recv()).await;
        assert_eq!(got, Ok(Some(())));
    });
}
