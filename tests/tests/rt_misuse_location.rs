//! A misuse panic names the user's line, not pinwheel's: `spawn`, `spawn_on`, `spawn_local`,
//! `spawn_blocking`, `task::Builder::spawn` (outside a runtime, or with a mask that names no
//! worker), `Handle::current` and the timers. (Before, several panicked inside a closure, which
//! `#[track_caller]` does not reach, and reported `spawn.rs`.) One test: it installs a panic
//! hook, which is process-wide.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use pinwheel::ThreadMask;

thread_local! {
    static SEEN: RefCell<Option<(String, u32)>> = const { RefCell::new(None) };
}

/// Runs `f`, which must panic, and returns the line its panic reported (in this file).
fn panic_line(what: &str, f: impl FnOnce()) -> u32 {
    SEEN.with(|s| s.borrow_mut().take());
    assert!(
        catch_unwind(AssertUnwindSafe(f)).is_err(),
        "{what} did not panic"
    );
    let (file, line) = SEEN
        .with(|s| s.borrow_mut().take())
        .unwrap_or_else(|| panic!("{what}: no location recorded"));
    assert!(
        file.ends_with("rt_misuse_location.rs"),
        "{what} reported its panic at {file}:{line}, not at the caller"
    );
    line
}

/// The reported line is the call's (rustfmt may break the call over a few lines).
#[track_caller]
fn near(got: u32, line: u32) {
    assert!(
        (line..line + 4).contains(&got),
        "the panic reported line {got}, the call is at line {line}"
    );
}

#[test]
fn misuse_panics_report_the_callers_line() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        eprintln!("{info}");
        if let Some(l) = info.location() {
            SEEN.with(|s| *s.borrow_mut() = Some((l.file().to_owned(), l.line())));
        }
    }));

    let l = line!() + 1;
    let got = panic_line("spawn", || drop(pinwheel::spawn(async {})));
    near(got, l);
    let l = line!() + 1;
    let got = panic_line("spawn_on", || {
        drop(pinwheel::spawn_on(ThreadMask::one(0), async {}))
    });
    near(got, l);
    let l = line!() + 1;
    let got = panic_line("spawn_local", || drop(pinwheel::spawn_local(async {})));
    near(got, l);
    let l = line!() + 1;
    let got = panic_line("spawn_blocking", || drop(pinwheel::spawn_blocking(|| ())));
    near(got, l);
    let l = line!() + 1;
    let got = panic_line("Builder::spawn", || {
        drop(pinwheel::task::Builder::new().spawn(async {}))
    });
    near(got, l);
    let l = line!() + 1;
    let got = panic_line("Handle::current", || drop(pinwheel::Handle::current()));
    near(got, l);
    let l = line!() + 1;
    let got = panic_line("sleep", || {
        drop(pinwheel::time::sleep(Duration::from_secs(1)))
    });
    near(got, l);
    let l = line!() + 1;
    let got = panic_line("timeout", || {
        drop(pinwheel::time::timeout(Duration::from_secs(1), async {}))
    });
    near(got, l);

    // Inside a runtime, a mask naming no worker.
    let rt = pinwheel_tests::rt(2);
    rt.block_on(async {
        let l = line!() + 1;
        let got = panic_line("spawn_on(mask)", || {
            drop(pinwheel::spawn_on(ThreadMask::one(5), async {}))
        });
        near(got, l);
        let l = line!() + 2;
        let got = panic_line("Builder::mask", || {
            drop(
                pinwheel::task::Builder::new()
                    .mask(ThreadMask::one(5))
                    .spawn(async {}),
            )
        });
        near(got, l);
        let l = line!() + 1;
        let got = panic_line("Handle::spawn_on(mask)", || {
            drop(pinwheel::Handle::current().spawn_on(ThreadMask::one(5), async {}))
        });
        near(got, l);
    });
    drop(rt);
    std::panic::set_hook(previous);
}

#[test]
fn join_error_debug_has_tokios_shape() {
    let rt = pinwheel_tests::rt(1);
    let panicked = rt.block_on(rt.spawn(async { panic!("boom") })).unwrap_err();
    let id = panicked.id();
    assert_eq!(
        format!("{panicked:?}"),
        format!("JoinError::Panic(Id({id}), \"boom\", ...)")
    );
    let formatted = rt
        .block_on(rt.spawn(async { panic!("{} {}", "two", "words") }))
        .unwrap_err();
    assert_eq!(
        format!("{formatted:?}"),
        format!(
            "JoinError::Panic(Id({}), \"two words\", ...)",
            formatted.id()
        )
    );
    let opaque = rt
        .block_on(rt.spawn(async { std::panic::panic_any(7_u32) }))
        .unwrap_err();
    assert_eq!(
        format!("{opaque:?}"),
        format!("JoinError::Panic(Id({}), ...)", opaque.id())
    );
    let h = rt.spawn(std::future::pending::<()>());
    h.abort();
    let cancelled = rt.block_on(h).unwrap_err();
    assert_eq!(
        format!("{cancelled:?}"),
        format!("JoinError::Cancelled(Id({}))", cancelled.id())
    );
    // Display as tokio's too.
    assert_eq!(
        panicked.to_string(),
        format!("task {id} panicked with message \"boom\"")
    );
}
