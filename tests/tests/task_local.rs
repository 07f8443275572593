//! `task_local!`: a value set for the length of a future follows it across awaits and
//! workers, each task sees its own, scopes nest, the value is set while the future is dropped,
//! and reading it outside its scope is a clear panic (or an error from `try_with`).

use std::sync::{Arc, Mutex};

use pinwheel::task::LocalKey;
use pinwheel_tests::pin_check::PinProbe;

pinwheel::task_local! {
    static ID: u32;
    /// A second key, with a doc comment and a non-Copy type.
    pub(crate) static NAME: String;
}

#[test]
fn the_value_follows_the_task_across_awaits_and_workers() {
    let rt = pinwheel::Builder::new().worker_threads(2).build().unwrap();
    let seen = rt.block_on(async {
        let tasks: Vec<_> = (0..8u32)
            .map(|i| {
                pinwheel::spawn(ID.scope(i, async move {
                    let mut seen = Vec::new();
                    for _ in 0..50 {
                        pinwheel::yield_now().await;
                        seen.push(ID.get());
                    }
                    (i, seen)
                }))
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    for (i, seen) in seen {
        assert!(seen.iter().all(|&v| v == i), "task {i} saw {seen:?}");
    }
}

#[pinwheel::test]
async fn scopes_nest_and_restore() {
    NAME.scope("outer".to_string(), async {
        assert_eq!(NAME.get(), "outer");
        NAME.scope("inner".to_string(), async {
            pinwheel::yield_now().await;
            assert_eq!(NAME.get(), "inner");
        })
        .await;
        assert_eq!(NAME.get(), "outer");
        let n = NAME.sync_scope("sync".to_string(), || NAME.with(|s| s.len()));
        assert_eq!(n, 4);
        assert_eq!(NAME.get(), "outer");
    })
    .await;
    assert!(NAME.try_with(|_| ()).is_err());
}

#[test]
fn outside_its_scope_it_is_a_clear_panic() {
    let msg = pinwheel_tests::panic_message(|| ID.with(|v| *v));
    assert!(
        msg.contains("LocalKey::with") && msg.contains("not set"),
        "{msg}"
    );
    let e = ID.try_with(|v| *v).unwrap_err();
    assert!(e.to_string().contains("inside LocalKey::scope"), "{e}");
}

#[test]
fn the_future_is_dropped_in_place_with_its_value_set() {
    static KEY: &LocalKey<u32> = &ID;
    struct ReadsOnDrop(Arc<Mutex<Option<u32>>>);
    impl Drop for ReadsOnDrop {
        fn drop(&mut self) {
            *self.0.lock().unwrap() = KEY.try_with(|v| *v).ok();
        }
    }
    let probe = PinProbe::new();
    let seen = Arc::new(Mutex::new(None));
    let rt = pinwheel::Builder::new_current_thread().build().unwrap();
    let guard = ReadsOnDrop(seen.clone());
    let task = rt.spawn(ID.scope(
        9,
        probe.wrap(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        }),
    ));
    rt.block_on(async {
        pinwheel::yield_now().await;
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
    });
    assert_eq!(*seen.lock().unwrap(), Some(9));
    probe.assert_dropped_in_place(1);
}
