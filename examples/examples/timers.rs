//! Many timeouts: 100,000 tasks each arm a timeout that (almost always) is cancelled because
//! the work finishes first, plus a few that fire. Each worker has its own timer wheel: arming
//! and cancelling is O(1), takes no lock and allocates nothing.
//!
//! ```text
//! cargo run --release --example timers
//! ```

use std::time::Duration;

use pinwheel::time::Instant;

use pinwheel::time::{interval, sleep, timeout};

#[pinwheel::main(worker_threads = 2)]
async fn main() {
    let start = Instant::now();
    let tasks: Vec<_> = (0..100_000u32)
        .map(|i| {
            pinwheel::spawn(async move {
                // Every 10,000th task is too slow for its 5 ms budget.
                let work = if i % 10_000 == 0 { 50 } else { 0 };
                timeout(Duration::from_millis(5), sleep(Duration::from_millis(work)))
                    .await
                    .is_err()
            })
        })
        .collect();
    let mut timed_out = 0;
    for t in tasks {
        timed_out += t.await.unwrap() as usize;
    }
    println!(
        "100,000 timeouts armed, {timed_out} fired, the rest cancelled, in {:?}",
        start.elapsed()
    );

    // A periodic timer, and a sleep pushed back before it fires (a reset costs a field write).
    let mut tick = interval(Duration::from_millis(10));
    for n in 0..3 {
        let at = tick.tick().await;
        println!("tick {n} at +{:?}", at - start);
    }
    let mut nap = sleep(Duration::from_millis(10));
    nap.reset(Instant::now() + Duration::from_millis(30));
    let before = Instant::now();
    nap.await;
    println!(
        "a 10 ms sleep reset to 30 ms woke after {:?}",
        before.elapsed()
    );
}
