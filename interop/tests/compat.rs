//! The bridge (`pinwheel::compat`, feature `tokio-compat`): reqwest, which needs tokio's
//! reactor, timers and spawn, used from pinwheel tasks against a pinwheel hyper server; and a
//! tokio-only API outside the bridge failing loudly, not hanging.

use std::time::Duration;

use pinwheel::compat::compat;
use pinwheel_interop::start_app;
use pinwheel_tests::rt;

#[test]
fn reqwest_through_compat_against_a_pinwheel_server() {
    let rt = rt(2);
    rt.block_on(async {
        let addr = start_app().await;
        // The client lives on the bridge's tokio runtime (made inside its context); the
        // tasks awaiting it are pinwheel's.
        let client = {
            let _tokio = pinwheel::compat::handle().enter();
            reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap()
        };
        for _ in 0..3 {
            let body = compat(async {
                client
                    .get(format!("http://{addr}/"))
                    .send()
                    .await?
                    .error_for_status()?
                    .text()
                    .await
            })
            .await
            .unwrap();
            assert_eq!(body, "hello from axum on pinwheel\n");
        }
        let greeting = compat(async {
            client
                .post(format!("http://{addr}/greet"))
                .header("content-type", "application/json")
                .body(r#"{"name":"reqwest"}"#)
                .send()
                .await?
                .text()
                .await
        })
        .await
        .unwrap();
        assert!(greeting.contains("hello, reqwest"), "{greeting}");
        // A connection refused is reqwest's error, through the bridge, not a hang.
        let refused = compat(async { client.get("http://127.0.0.1:1/").send().await }).await;
        assert!(refused.unwrap_err().is_connect());
    });
}

#[test]
fn compat_runs_tokio_timers_and_spawn_from_a_pinwheel_task() {
    let rt = rt(2);
    let out = rt.block_on(rt.spawn(async {
        // Made inside the wrapped future, so inside the bridge's context.
        compat(async { tokio::time::sleep(Duration::from_millis(5)).await }).await;
        compat(async { tokio::spawn(async { 6 * 7 }).await.unwrap() }).await
    }));
    assert_eq!(out.unwrap(), 42);
}

#[test]
fn a_tokio_api_outside_compat_fails_loudly() {
    let rt = rt(2);
    let joined = rt.block_on(rt.spawn(async {
        // No tokio context here: tokio panics at once, the task reports the panic.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }));
    let err = joined.unwrap_err();
    assert!(err.is_panic());
    let payload = err.into_panic();
    let text = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(text.contains("no reactor running"), "{text}");
}

#[test]
fn configure_after_start_and_zero_threads_are_errors() {
    use pinwheel::compat::{Config, configure};
    let err = configure(Config::default().worker_threads(0)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    drop(pinwheel::compat::handle());
    let err = configure(Config::default()).unwrap_err();
    assert!(err.to_string().contains("already started"), "{err}");
}

#[test]
fn a_compat_future_is_dropped_in_place_when_aborted_and_at_shutdown() {
    use pinwheel_tests::pin_check::PinProbe;
    let rt = rt(2);
    let probe = PinProbe::new();
    // A tokio sleep (its timer entry is an intrusive node in tokio's wheel) inside a
    // self-referential block inside `Compat`, itself checked: all dropped where they live.
    let sleeping = |probe: &PinProbe| {
        probe.wrap(compat(probe.self_ref(async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        })))
    };
    let aborted = rt.spawn(sleeping(&probe));
    let _cancelled = rt.spawn(sleeping(&probe));
    pinwheel_tests::wait_until(Duration::from_secs(20), "both tasks polled", || {
        probe.polls() >= 2
    });
    aborted.abort();
    assert!(rt.block_on(aborted).unwrap_err().is_cancelled());
    probe.assert_dropped_in_place(2);
    drop(rt);
    probe.assert_dropped_in_place(4);
}
