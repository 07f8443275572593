//! `PINWHEEL_WORKER_THREADS`: the worker count when the code gives none. One test in its own
//! binary, because it sets a process-wide environment variable.

use pinwheel::Builder;

/// Sets or removes the variable. Only this file's one test runs in this process, and it calls
/// this with no runtime alive, so no other thread reads the environment meanwhile.
fn set(value: Option<&str>) {
    // SAFETY: see above: no other thread of this process reads or writes the environment
    // while the variable is changed (the test harness runs the one test of this binary, and
    // every runtime built before was dropped, its threads joined).
    unsafe {
        match value {
            Some(v) => std::env::set_var("PINWHEEL_WORKER_THREADS", v),
            None => std::env::remove_var("PINWHEEL_WORKER_THREADS"),
        }
    }
}

#[test]
fn the_variable_sets_the_count_and_a_bad_value_is_an_error() {
    set(Some("3"));
    let rt = Builder::new().build().unwrap();
    assert_eq!(rt.worker_threads(), 3);
    drop(rt);
    // An explicit count wins over the variable (which is then not read at all).
    let rt = Builder::new().worker_threads(1).build().unwrap();
    assert_eq!(rt.worker_threads(), 1);
    drop(rt);
    // So does it over the test macro's default of 2 (its fallback).
    let rt = Builder::new().fallback_worker_threads(2).build().unwrap();
    assert_eq!(rt.worker_threads(), 3);
    drop(rt);
    for bad in ["0", "65", "two", "-1", ""] {
        set(Some(bad));
        let Err(e) = Builder::new().build() else {
            panic!("PINWHEEL_WORKER_THREADS={bad:?} was accepted");
        };
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{bad:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("PINWHEEL_WORKER_THREADS") && msg.contains("from 1 to 64"),
            "{bad:?}: {msg}"
        );
    }
    // A bad value is not even read when the count is given.
    let rt = Builder::new().worker_threads(1).build().unwrap();
    assert_eq!(rt.worker_threads(), 1);
    drop(rt);
    set(None);
    let rt = Builder::new().fallback_worker_threads(2).build().unwrap();
    assert_eq!(rt.worker_threads(), 2);
}
