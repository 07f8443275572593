//! Timer facts that are not throughput: memory per pending timer, and the lateness of a 10 ms
//! sleep on an idle runtime (median and 99th percentile), for pinwheel and tokio.
//!
//! ```text
//! cargo run --release -p pinwheel-benches --bin timers -- [SAMPLES]
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use pinwheel_benches::{Exec, Pinwheel, Tokio};

fn lateness<E: Exec>(rt: &E, samples: usize) -> (Duration, Duration) {
    let mut late: Vec<Duration> = (0..samples)
        .map(|_| {
            rt.block_on(rt.spawn_outside(async {
                let d = Duration::from_millis(10);
                let start = Instant::now();
                E::sleep(d).await;
                start.elapsed().saturating_sub(d)
            }))
        })
        .collect();
    late.sort();
    (late[late.len() / 2], late[late.len() * 99 / 100])
}

fn main() -> ExitCode {
    let samples = match std::env::args().nth(1).map(|s| s.parse::<usize>()) {
        None => 200,
        Some(Ok(n)) if n >= 10 => n,
        _ => {
            eprintln!("timers: the argument is the number of 10 ms sleeps to time (at least 10)");
            return ExitCode::from(2);
        }
    };
    println!("memory per pending timer:");
    println!(
        "  pinwheel: {} bytes in the worker's wheel (slab entry with the waker) + a {}-byte Sleep in the task",
        pinwheel_timer::entry_size::<std::task::Waker>(),
        std::mem::size_of::<pinwheel::time::Sleep>()
    );
    println!(
        "  tokio:    a {}-byte Sleep in the task (the timer entry lives inside it, linked into the wheel)",
        std::mem::size_of::<tokio::time::Sleep>()
    );
    let pw = Pinwheel::build(2);
    let tk = Tokio::build(2);
    let (pm, p99) = lateness(&pw, samples);
    let (tm, t99) = lateness(&tk, samples);
    println!("lateness of a 10 ms sleep on an idle 2-worker runtime ({samples} samples):");
    println!("  pinwheel: median {pm:?}, p99 {p99:?}");
    println!("  tokio:    median {tm:?}, p99 {t99:?}");
    ExitCode::SUCCESS
}
