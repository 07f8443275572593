//! Where a server's work runs, per iteration of `tcp_echo`'s load: `accept_spawn` (a plain
//! accept loop that `pinwheel::spawn`s each session) beside `tcp_echo` (`net::serve`), from
//! pinwheel's own counters: polls, I/O events, steals and remote wakes (tasks queued for a
//! worker by another thread) per worker. A steal is a session polled on another worker than
//! the one whose poller got its event.
//!
//! ```text
//! cargo run --release -p pinwheel-benches --bin locality [ITERATIONS (default 10)]
//! ```

use pinwheel::RuntimeMetrics;
use pinwheel_benches::net::{AcceptSpawn, Echo};
use pinwheel_benches::{Exec, Pinwheel, Workload};

/// Runs `w` once to set up, then `iters` times; the counters before and after.
fn measure<W: Workload<Pinwheel>>(
    rt: &Pinwheel,
    mut w: W,
    iters: usize,
) -> (RuntimeMetrics, RuntimeMetrics) {
    w.iter(rt);
    let before = rt.0.metrics();
    for _ in 0..iters {
        w.iter(rt);
    }
    (before, rt.0.metrics())
}

fn main() {
    let iters: usize = std::env::args()
        .nth(1)
        .map_or(10, |a| a.parse().expect("ITERATIONS is a number"));
    let workers = 2;
    println!("# {workers} workers, {iters} iterations, per iteration");
    for row in ["accept_spawn", "tcp_echo"] {
        let rt = Pinwheel::build(workers);
        let (before, after) = if row == "accept_spawn" {
            measure(&rt, AcceptSpawn::default(), iters)
        } else {
            measure(&rt, Echo::<64>::default(), iters)
        };
        let per = |a: u64, b: u64| (a - b) as f64 / iters as f64;
        for i in 0..workers {
            let (a, b) = (after.worker(i), before.worker(i));
            println!(
                "{row:<13} worker {i}: polls {:>7.0}  io events {:>7.0}  steals {:>7.0}  remote wakes {:>6.0}  parks {:>6.0}",
                per(a.tasks_polled, b.tasks_polled),
                per(a.io_events, b.io_events),
                per(a.steals, b.steals),
                per(a.remote_wakes, b.remote_wakes),
                per(a.parks, b.parks),
            );
        }
    }
}
