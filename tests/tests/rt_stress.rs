//! Many tasks of every kind waking each other across threads, with aborts and shutdowns in the
//! middle: every task ends exactly once, every future is dropped exactly once, nothing hangs.
//! Bounded in count; deterministic in what it checks.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use pinwheel::{Builder, JoinHandle, ThreadMask};

/// A mailbox of wake-ups: a task waits until its counter is positive, consuming one.
#[derive(Default)]
struct Signal {
    count: Mutex<(usize, Option<Waker>)>,
}

impl Signal {
    fn notify(&self) {
        let mut g = self.count.lock().unwrap();
        g.0 += 1;
        if let Some(w) = g.1.take() {
            w.wake();
        }
    }

    fn wait(self: &Arc<Self>) -> impl Future<Output = ()> + Send + use<> {
        let me = self.clone();
        std::future::poll_fn(move |cx: &mut Context<'_>| {
            let mut g = me.count.lock().unwrap();
            if g.0 > 0 {
                g.0 -= 1;
                Poll::Ready(())
            } else {
                g.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }
}

struct Dropped(Arc<AtomicUsize>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// Task `i` of `n` waits for `rounds` signals, signalling task `(i * 7 + 1) % n` after each.
fn ring_task(
    i: usize,
    signals: Arc<Vec<Arc<Signal>>>,
    rounds: usize,
    drops: Arc<AtomicUsize>,
) -> impl Future<Output = usize> + Send + 'static {
    // Made before the future is first polled, so an unpolled future counts its drop too.
    let dropped = Dropped(drops);
    async move {
        let _d = dropped;
        let n = signals.len();
        let next = signals[(i * 7 + 1) % n].clone();
        for r in 0..rounds {
            signals[i].wait().await;
            next.notify();
            if r % 3 == 0 {
                pinwheel::yield_now().await;
            }
        }
        i
    }
}

#[test]
fn rt_stress_ring_of_wakes_with_masks_and_aborts() {
    for workers in [1, 2, 3, 4] {
        for round in 0..6 {
            let rt = Builder::new().worker_threads(workers).build().unwrap();
            const N: usize = 240;
            const ROUNDS: usize = 50;
            let signals: Arc<Vec<Arc<Signal>>> =
                Arc::new((0..N).map(|_| Arc::new(Signal::default())).collect());
            let drops = Arc::new(AtomicUsize::new(0));
            let mut handles: Vec<JoinHandle<usize>> = Vec::new();
            for i in 0..N {
                let fut = ring_task(i, signals.clone(), ROUNDS, drops.clone());
                let h = match i % 3 {
                    0 => rt.spawn(fut),
                    1 => rt.handle().spawn_on(ThreadMask::one(i % workers), fut),
                    _ => rt.handle().spawn_on(
                        ThreadMask::one(i % workers) | ThreadMask::one((i + 1) % workers),
                        fut,
                    ),
                };
                handles.push(h);
            }
            // Enough signals for every task to finish all its rounds: each task receives
            // exactly ROUNDS from its predecessor in the permutation, given one to start.
            for s in signals.iter() {
                s.notify();
            }
            // Abort a few along the way; their successors then starve and are ended by the
            // runtime's shutdown, which must still drop them exactly once.
            if round > 0 {
                for h in handles.iter().step_by(37) {
                    h.abort();
                }
            }
            let mut finished = 0;
            if round == 0 {
                for h in handles.drain(..) {
                    assert!(rt.block_on(h).is_ok());
                    finished += 1;
                }
                assert_eq!(finished, N);
            }
            drop(rt);
            assert_eq!(drops.load(SeqCst), N, "workers={workers} round={round}");
            for h in handles {
                assert!(h.is_finished());
            }
        }
    }
}
