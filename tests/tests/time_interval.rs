//! Intervals: ticks never early, each `MissedTickBehavior`, and a zero period refused.

use std::time::Duration;

use pinwheel::time::Instant;

use pinwheel::time::{MissedTickBehavior, interval};
use pinwheel_tests::rt;

#[test]
#[should_panic(expected = "the period must be non-zero")]
fn time_interval_zero_period_panics() {
    let rt = rt(1);
    rt.block_on(async {
        let _ = interval(Duration::ZERO);
    });
}

#[test]
fn time_interval_ticks_and_missed_tick_behaviors() {
    let rt = rt(1);
    rt.block_on(rt.spawn(async {
        let period = Duration::from_millis(4);
        let mut iv = interval(period);
        let t0 = iv.tick().await;
        let t1 = iv.tick().await;
        let t2 = iv.tick().await;
        assert_eq!(t1 - t0, period);
        assert_eq!(t2 - t1, period);
        assert!(Instant::now() >= t2);

        // Burst: after a stall, the missed ticks come at once, each `period` after the last.
        std::thread::sleep(period * 4);
        let b1 = iv.tick().await;
        assert_eq!(b1 - t2, period);

        // Delay: the next tick is a period after the late one was taken.
        let mut iv = interval(period);
        iv.set_missed_tick_behavior(MissedTickBehavior::Delay);
        assert_eq!(iv.missed_tick_behavior(), MissedTickBehavior::Delay);
        iv.tick().await;
        std::thread::sleep(period * 4);
        let before_late_tick = Instant::now();
        iv.tick().await;
        let next = iv.tick().await;
        assert!(
            next >= before_late_tick + period,
            "delay behaviour ticked early"
        );

        // Skip: ticks stay on the original grid.
        let start = Instant::now();
        let mut iv = pinwheel::time::interval_at(start, period);
        iv.set_missed_tick_behavior(MissedTickBehavior::Skip);
        iv.tick().await;
        std::thread::sleep(period * 3 + period / 2);
        iv.tick().await;
        let next = iv.tick().await;
        let offset = (next - start).as_nanos() % period.as_nanos();
        assert_eq!(offset, 0, "skip behaviour left the grid");
        assert!(next >= start + period * 4);
    }))
    .unwrap();
}
