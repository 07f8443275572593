//! Timeouts: the future's output when it is first, `Elapsed` (and its message) when the
//! deadline is; misuse outside a runtime.

use std::io;
use std::time::{Duration, Instant};

use pinwheel::time::{timeout, timeout_at};
use pinwheel_tests::rt;

#[test]
fn time_timeout_ok_err_and_errors() {
    let rt = rt(2);
    rt.block_on(rt.spawn(async {
        assert_eq!(
            timeout(Duration::from_secs(10), async { 1 }).await.unwrap(),
            1
        );
        let start = Instant::now();
        let err = timeout(Duration::from_millis(10), std::future::pending::<()>())
            .await
            .unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(10));
        assert!(err.to_string().contains("deadline has elapsed"), "{err}");
        let io: io::Error = err.into();
        assert_eq!(io.kind(), io::ErrorKind::TimedOut);
        let at = Instant::now() + Duration::from_millis(3);
        assert!(timeout_at(at, std::future::pending::<()>()).await.is_err());
        assert!(Instant::now() >= at);
    }))
    .unwrap();
}

#[test]
#[should_panic(expected = "pinwheel::time::timeout must be called from inside a pinwheel runtime")]
fn time_timeout_outside_runtime_panics() {
    drop(timeout(Duration::from_millis(1), async {}));
}
