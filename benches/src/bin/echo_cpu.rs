//! CPU the echo *server* spends per round trip, pinwheel vs tokio, beside the floor: on a
//! 2-core machine the load generator shares the cores with the server, so wall-clock
//! `tcp_echo` is bound by the client; the server threads' own CPU time (from
//! `/proc/self/task/*/stat`) shows which runtime does the same work for less, and the floor (a
//! bare mio loop per thread, `floor.rs`, same load, same run) what no runtime can go below.
//!
//! ```text
//! cargo run --release -p pinwheel-benches --bin echo_cpu -- [ITERATIONS] [pinwheel|tokio|floor] [64|1024]
//! ```
//!
//! With a runtime named, only that server runs (at the given message size, default 64 B): run it
//! under `strace -f -c` or `perf stat` to compare system calls and context switches, the load
//! generator's share being the same code in both runs.

use std::process::ExitCode;

use pinwheel_benches::floor::MioFloor;
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
    let usage = "usage: echo_cpu [ITERATIONS (at least 1)] [pinwheel|tokio|floor] [64|1024]";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let iters = match args.first().map(|s| s.parse::<usize>()) {
        None => 20,
        Some(Ok(n)) if n > 0 => n,
        _ => {
            eprintln!("echo_cpu: bad iteration count\n{usage}");
            return ExitCode::from(2);
        }
    };
    let only = args.get(1).map(String::as_str);
    let size = match args.get(2).map(String::as_str) {
        None | Some("64") => 64,
        Some("1024") => 1024,
        Some(other) => {
            eprintln!("echo_cpu: message size {other:?} is not 64 or 1024\n{usage}");
            return ExitCode::from(2);
        }
    };
    if !matches!(
        only,
        None | Some("pinwheel") | Some("tokio") | Some("floor")
    ) || args.len() > 3
    {
        eprintln!("echo_cpu: bad arguments {args:?}\n{usage}");
        return ExitCode::from(2);
    }
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
    let floor = MioFloor::build(2);
    if let Some(only) = only {
        let v = match (only, size) {
            ("pinwheel", 64) => measure::<_, Echo<64>>(&pw, "pw-echo", iters),
            ("pinwheel", _) => measure::<_, Echo<1024>>(&pw, "pw-echo", iters),
            ("floor", 64) => measure::<_, Echo<64>>(&floor, "mio-floor", iters),
            ("floor", _) => measure::<_, Echo<1024>>(&floor, "mio-floor", iters),
            (_, 64) => measure::<_, Echo<64>>(&tk, "tk-echo", iters),
            _ => measure::<_, Echo<1024>>(&tk, "tk-echo", iters),
        };
        println!("{only}, {size} B messages: server CPU per round trip {v:.2} µs");
        return ExitCode::SUCCESS;
    }
    for (name, size) in [("tcp_echo (64 B)", 64), ("tcp_echo_1k", 1024)] {
        let (p, t, f) = if size == 64 {
            (
                measure::<_, Echo<64>>(&pw, "pw-echo", iters),
                measure::<_, Echo<64>>(&tk, "tk-echo", iters),
                measure::<_, Echo<64>>(&floor, "mio-floor", iters),
            )
        } else {
            (
                measure::<_, Echo<1024>>(&pw, "pw-echo", iters),
                measure::<_, Echo<1024>>(&tk, "tk-echo", iters),
                measure::<_, Echo<1024>>(&floor, "mio-floor", iters),
            )
        };
        println!(
            "{name:<16} server CPU per round trip: pinwheel {p:.2} µs, tokio {t:.2} µs, ratio {:.3}; floor (bare mio loop) {f:.2} µs (pinwheel/floor {:.2}, tokio/floor {:.2})",
            p / t,
            p / f,
            t / f
        );
    }
    ExitCode::SUCCESS
}
