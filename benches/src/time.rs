//! Timer workloads (the `time_*` rows): timeouts that are cancelled, sleeps that fire, timers
//! that are reset.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::{Exec, Workload};

/// Pending at its first poll (waking itself), ready at the second: a future that really makes
/// a timeout arm its timer, then completes.
struct PendingOnce(bool);

impl Future for PendingOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Tasks the timer workloads spread their timers over.
const TIMER_TASKS: usize = 100;

/// `timeout_cancel`: 1,000,000 `timeout(30 s, f)` where `f` is pending once, then completes:
/// each arms its timer, then cancels it (the proxy's common case). Spread over 100 tasks.
#[derive(Debug, Default)]
pub struct TimeoutCancel;

/// Timeouts in `timeout_cancel`.
pub const TIMEOUTS: usize = 1_000_000;

impl<E: Exec> Workload<E> for TimeoutCancel {
    fn iter(&mut self, rt: &E) {
        let hs: Vec<_> = (0..TIMER_TASKS)
            .map(|_| {
                rt.spawn_outside(async {
                    for _ in 0..TIMEOUTS / TIMER_TASKS {
                        E::timeout(Duration::from_secs(30), PendingOnce(false))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        rt.block_on(async {
            for h in hs {
                h.await;
            }
        });
    }
}

/// `sleep_fire`: 100,000 tasks each sleeping 1..=100 ms, all awaited. Its floor is the
/// 100 ms itself: the runner compares the time above it.
#[derive(Debug, Default)]
pub struct SleepFire;

/// Sleeping tasks in `sleep_fire`.
pub const SLEEPERS: usize = 100_000;

impl<E: Exec> Workload<E> for SleepFire {
    fn iter(&mut self, rt: &E) {
        let hs: Vec<_> = (0..SLEEPERS)
            .map(|i| {
                rt.spawn_outside(async move {
                    E::sleep(Duration::from_millis(1 + (i % 100) as u64)).await
                })
            })
            .collect();
        rt.block_on(async {
            for h in hs {
                h.await;
            }
        });
    }

    fn floor(&self) -> Duration {
        Duration::from_millis(100)
    }
}

/// `timer_reset`: 100,000 armed timeouts, each pushed back 100 times (a keep-alive timeout
/// renewed on every request), then dropped. Spread over 100 tasks.
#[derive(Debug, Default)]
pub struct TimerReset;

/// Armed timers in `timer_reset`.
pub const RESET_TIMERS: usize = 100_000;
/// Resets of each timer in `timer_reset`.
pub const RESETS: usize = 100;

impl<E: Exec> Workload<E> for TimerReset {
    fn iter(&mut self, rt: &E) {
        let hs: Vec<_> = (0..TIMER_TASKS)
            .map(|_| {
                rt.spawn_outside(async {
                    let mut sleeps: Vec<Pin<Box<E::Sleep>>> = (0..RESET_TIMERS / TIMER_TASKS)
                        .map(|_| Box::pin(E::sleep(Duration::from_secs(30))))
                        .collect();
                    // Arm each: poll once, from this task.
                    std::future::poll_fn(|cx| {
                        for s in sleeps.iter_mut() {
                            assert!(s.as_mut().poll(cx).is_pending());
                        }
                        Poll::Ready(())
                    })
                    .await;
                    let base = Instant::now() + Duration::from_secs(30);
                    for round in 1..=RESETS {
                        for s in sleeps.iter_mut() {
                            E::reset(s.as_mut(), base + Duration::from_millis(round as u64));
                        }
                    }
                    drop(sleeps);
                })
            })
            .collect();
        rt.block_on(async {
            for h in hs {
                h.await;
            }
        });
    }
}
