//! CPU the echo *server* spends per round trip, pinwheel vs tokio: on a 2-core machine the
//! load generator shares the cores with the server, so wall-clock `tcp_echo` is bound by the
//! client; the server threads' own CPU time (from `/proc/self/task/*/stat`) shows which runtime
//! does the same work for less.
//!
//! ```text
//! cargo run --release -p pinwheel-benches --bin echo_cpu -- [ITERATIONS]
//! ```

use std::process::ExitCode;

use pinwheel_benches::net::{ECHO_CONNS, ECHO_ROUNDS, Echo};
use pinwheel_benches::{Exec, Pinwheel, Tokio, Workload};

fn measure<E: Exec, W: Workload<E> + Default>(rt: &E, prefix: &str, iters: usize) -> f64 {
    let mut w = W::default();
    w.iter(rt); // set up, warm up
    let before = pinwheel_benches::thread_cpu_ticks(prefix).1;
    for _ in 0..iters {
        w.iter(rt);
    }
    let ticks = pinwheel_benches::thread_cpu_ticks(prefix).1 - before;
    let round_trips = (iters * ECHO_CONNS * ECHO_ROUNDS) as f64;
    // 10 ms per tick; report microseconds of server CPU per round trip.
    ticks as f64 * 10_000.0 / round_trips
}

fn main() -> ExitCode {
    let iters = match std::env::args().nth(1).map(|s| s.parse::<usize>()) {
        None => 20,
        Some(Ok(n)) if n > 0 => n,
        _ => {
            eprintln!("echo_cpu: the argument is the number of iterations (at least 1)");
            return ExitCode::from(2);
        }
    };
    let pw = Pinwheel(
        pinwheel::Builder::new()
            .worker_threads(2)
            .thread_name("pw-echo")
            .build()
            .unwrap(),
    );
    let tk = Tokio(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tk-echo")
            .enable_all()
            .build()
            .unwrap(),
    );
    for (name, size) in [("tcp_echo (64 B)", 64), ("tcp_echo_1k", 1024)] {
        let (p, t) = if size == 64 {
            (
                measure::<_, Echo<64>>(&pw, "pw-echo", iters),
                measure::<_, Echo<64>>(&tk, "tk-echo", iters),
            )
        } else {
            (
                measure::<_, Echo<1024>>(&pw, "pw-echo", iters),
                measure::<_, Echo<1024>>(&tk, "tk-echo", iters),
            )
        };
        println!(
            "{name:<16} server CPU per round trip: pinwheel {p:.2} µs, tokio {t:.2} µs, ratio {:.3}",
            p / t
        );
    }
    ExitCode::SUCCESS
}
