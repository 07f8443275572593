//! `task::JoinSet`: outputs in completion order, each task joined once, aborts on drop,
//! `abort_all`, `detach_all`, panics, `try_join_next`, local tasks, and the pinning rule.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use pinwheel::task::JoinSet;
use pinwheel_tests::pin_check::PinProbe;
use pinwheel_tests::{rt, wait_until};

/// A door tasks wait at until the test opens it (no timing involved); every waiting task is
/// woken when it opens.
#[derive(Clone, Default)]
struct Gate(Arc<Mutex<(bool, Vec<Waker>)>>);

impl Gate {
    fn open(&self) {
        let wakers = {
            let mut g = self.0.lock().unwrap();
            g.0 = true;
            std::mem::take(&mut g.1)
        };
        for w in wakers {
            w.wake();
        }
    }

    fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let gate = self.clone();
        std::future::poll_fn(move |cx: &mut Context<'_>| {
            let mut g = gate.0.lock().unwrap();
            if g.0 {
                Poll::Ready(())
            } else {
                g.1.push(cx.waker().clone());
                Poll::Pending
            }
        })
    }
}

/// Counts its drops.
struct OnDrop(Arc<AtomicUsize>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn outputs_come_in_the_order_tasks_complete() {
    let rt = rt(2);
    rt.block_on(async {
        let gates: Vec<Gate> = (0..4).map(|_| Gate::default()).collect();
        let mut set = JoinSet::new();
        assert!(set.is_empty());
        assert!(
            set.join_next().await.is_none(),
            "an empty set joins nothing"
        );
        for (i, g) in gates.iter().enumerate() {
            let wait = g.wait();
            set.spawn(async move {
                wait.await;
                i
            });
        }
        assert_eq!(set.len(), 4);
        for i in [2, 0, 3, 1] {
            gates[i].open();
            assert_eq!(set.join_next().await.unwrap().unwrap(), i);
        }
        assert!(set.is_empty());
        assert!(set.join_next().await.is_none());
    });
}

#[test]
fn every_task_of_a_large_set_is_joined_exactly_once() {
    let rt = rt(2);
    let sum = rt.block_on(async {
        let mut set = JoinSet::new();
        for i in 0..2_000u64 {
            set.spawn(async move {
                if i % 3 == 0 {
                    pinwheel::yield_now().await;
                }
                i
            });
        }
        let mut seen = vec![false; 10_100];
        let mut sum = 0;
        while let Some(out) = set.join_next_with_id().await {
            let (_, i) = out.unwrap();
            assert!(!std::mem::replace(&mut seen[i as usize], true), "{i} twice");
            sum += i;
            // Keys are reused as tasks leave: spawn more meanwhile.
            if i < 100 {
                set.spawn(async move { 10_000 + i });
            }
        }
        sum
    });
    let first: u64 = (0..2_000).sum();
    let second: u64 = (0..100).map(|i| 10_000 + i).sum();
    assert_eq!(sum, first + second);
}

#[test]
fn dropping_the_set_aborts_its_tasks_and_drops_their_futures_in_place() {
    let rt = rt(2);
    let probe = PinProbe::new();
    let dropped = Arc::new(AtomicUsize::new(0));
    rt.block_on(async {
        let mut set = JoinSet::new();
        for _ in 0..8 {
            let guard = OnDrop(dropped.clone());
            set.spawn(probe.wrap(async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            }));
        }
        // Let them start.
        pinwheel::time::sleep(Duration::from_millis(1)).await;
        drop(set);
    });
    wait_until(Duration::from_secs(10), "the aborted tasks to drop", || {
        dropped.load(SeqCst) == 8
    });
    probe.assert_dropped_in_place(8);
}

#[test]
fn abort_all_leaves_cancellations_to_join() {
    let rt = rt(2);
    rt.block_on(async {
        let gate = Gate::default();
        let mut set = JoinSet::new();
        for _ in 0..5 {
            set.spawn(gate.wait());
        }
        let done = set.spawn(async {});
        // The one that completes may be joined before or after the abort.
        while !done.is_finished() {
            pinwheel::yield_now().await;
        }
        set.abort_all();
        assert_eq!(set.len(), 6);
        let (mut ok, mut cancelled) = (0, 0);
        while let Some(out) = set.join_next().await {
            match out {
                Ok(()) => ok += 1,
                Err(e) => {
                    assert!(e.is_cancelled(), "{e:?}");
                    cancelled += 1;
                }
            }
        }
        assert_eq!((ok, cancelled), (1, 5));
    });
}

#[test]
fn detach_all_lets_the_tasks_run_on() {
    let rt = rt(2);
    let ran = Arc::new(AtomicUsize::new(0));
    let gate = Gate::default();
    rt.block_on(async {
        let mut set = JoinSet::new();
        for _ in 0..3 {
            let (ran, wait) = (ran.clone(), gate.wait());
            set.spawn(async move {
                wait.await;
                ran.fetch_add(1, SeqCst);
            });
        }
        set.detach_all();
        assert!(set.is_empty());
        drop(set);
        gate.open();
    });
    wait_until(Duration::from_secs(10), "the detached tasks", || {
        ran.load(SeqCst) == 3
    });
}

#[test]
fn a_panic_is_a_join_error_and_join_all_resumes_it() {
    let rt = rt(2);
    rt.block_on(async {
        let mut set = JoinSet::new();
        set.spawn(async { panic!("boom in the set") });
        let err = set.join_next().await.unwrap().unwrap_err();
        assert!(err.is_panic());
        let all: JoinSet<u32> = (0..5u32).map(|i| async move { i }).collect();
        let mut out = all.join_all().await;
        out.sort();
        assert_eq!(out, [0, 1, 2, 3, 4]);
    });
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            let mut set = JoinSet::new();
            set.spawn(async { panic!("resumed by join_all") });
            set.join_all().await
        })
    }));
    let payload = res.expect_err("join_all resumes the task's panic");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"resumed by join_all"));
}

#[test]
fn try_join_next_takes_only_what_is_done() {
    let rt = rt(2);
    rt.block_on(async {
        let gate = Gate::default();
        let mut set = JoinSet::new();
        set.spawn({
            let wait = gate.wait();
            async move {
                wait.await;
                1
            }
        });
        assert!(set.try_join_next().is_none());
        gate.open();
        let mut got = None;
        while got.is_none() {
            pinwheel::yield_now().await;
            got = set.try_join_next();
        }
        assert_eq!(got.unwrap().unwrap(), 1);
        assert!(set.try_join_next().is_none());
    });
}

#[test]
fn local_and_blocking_tasks_join_too() {
    let rt = rt(2);
    let out = rt.block_on(rt.spawn(async {
        let mut set = JoinSet::new();
        let here = pinwheel::current_worker();
        let not_send = std::rc::Rc::new(5);
        set.spawn_local(async move {
            assert_eq!(pinwheel::current_worker(), here);
            *not_send
        });
        set.spawn_blocking(|| 6);
        let mut total = 0;
        while let Some(v) = set.join_next().await {
            total += v.unwrap();
        }
        total
    }));
    assert_eq!(out.unwrap(), 11);
}

#[test]
fn join_next_is_cancel_safe() {
    let rt = rt(2);
    rt.block_on(async {
        let gate = Gate::default();
        let mut set = JoinSet::new();
        set.spawn({
            let wait = gate.wait();
            async move {
                wait.await;
                9
            }
        });
        // Polled once, then dropped: the task stays in the set.
        {
            let mut fut = std::pin::pin!(set.join_next());
            let waker = Waker::noop();
            assert!(
                Pin::new(&mut fut)
                    .poll(&mut Context::from_waker(waker))
                    .is_pending()
            );
        }
        assert_eq!(set.len(), 1);
        gate.open();
        assert_eq!(set.join_next().await.unwrap().unwrap(), 9);
    });
}
