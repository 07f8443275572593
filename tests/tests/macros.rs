//! `#[pinwheel::main]` and `#[pinwheel::test]`: expansions that must work, and (through
//! `trybuild`, with checked `.stderr` files under `tests/ui/`) the mistakes that must be
//! reported at the offending token.

use std::sync::atomic::{AtomicUsize, Ordering};

#[pinwheel::test]
async fn a_test_runs_on_a_current_thread_runtime_by_default() {
    // As tokio's #[tokio::test]: the test's thread is the one worker, and runs the tasks.
    let me = std::thread::current().id();
    assert_eq!(
        pinwheel::current_worker(),
        Some(0),
        "the body runs on the worker"
    );
    let on = pinwheel::spawn(async { (pinwheel::current_worker(), std::thread::current().id()) })
        .await
        .unwrap();
    assert_eq!(on, (Some(0), me));
    assert_eq!(pinwheel::Handle::current().worker_threads(), 1);
}

#[pinwheel::test(flavor = "multi_thread")]
async fn multi_thread_flavor_has_two_workers_by_default() {
    assert!(
        pinwheel::current_worker().is_none(),
        "the body runs in block_on, off the workers"
    );
    let on = pinwheel::spawn(async { pinwheel::current_worker() })
        .await
        .unwrap();
    assert!(matches!(on, Some(0 | 1)));
    assert_eq!(pinwheel::Handle::current().worker_threads(), 2);
}

#[pinwheel::test(flavor = "current_thread")]
async fn current_thread_flavor_by_name() {
    assert_eq!(pinwheel::Handle::current().worker_threads(), 1);
}

#[pinwheel::test(worker_threads = 3)]
async fn worker_threads_argument() {
    assert_eq!(pinwheel::Handle::current().worker_threads(), 3);
}

#[pinwheel::test]
async fn returns_a_result() -> Result<(), std::num::ParseIntError> {
    let n: u32 = "42".parse()?;
    assert_eq!(n, 42);
    Ok(())
}

#[pinwheel::test]
#[should_panic(expected = "boom from the test body")]
async fn should_panic_works() {
    pinwheel::yield_now().await;
    panic!("boom from the test body");
}

#[pinwheel::test]
#[should_panic(expected = "task panicked")]
async fn a_panicking_task_surfaces_through_its_join_handle() {
    let h = pinwheel::spawn(async { panic!("task panicked") });
    match h.await {
        Err(e) => std::panic::resume_unwind(e.into_panic()),
        Ok(()) => unreachable!(),
    }
}

mod reexport {
    //! A crate re-exporting pinwheel under another path uses `crate = "..."`.
    pub mod rt {
        pub use pinwheel;
    }
}

#[pinwheel::test(crate = "reexport::rt::pinwheel", worker_threads = 1)]
async fn crate_argument_names_a_reexport() {
    assert_eq!(
        reexport::rt::pinwheel::Handle::current().worker_threads(),
        1
    );
}

static MAIN_RAN: AtomicUsize = AtomicUsize::new(0);

mod as_main {
    use super::*;

    /// A `main`-shaped function, called from a test (a test binary has its own `main`).
    #[pinwheel::main(worker_threads = 2)]
    pub async fn main() -> Result<(), String> {
        let v = pinwheel::spawn(async { 7 })
            .await
            .map_err(|e| e.to_string())?;
        MAIN_RAN.fetch_add(v, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn main_attribute_runs_the_body_to_completion() {
    as_main::main().unwrap();
    assert_eq!(MAIN_RAN.load(Ordering::SeqCst), 7);
}

#[test]
fn mistakes_are_reported_at_the_offending_token() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
}
