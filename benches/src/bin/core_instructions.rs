//! Runs one core workload a fixed number of times on one runtime (pinwheel by default, or
//! tokio), for instruction counts: under `valgrind --tool=callgrind`, the difference between
//! two iteration counts is what the extra iterations cost, whatever the machine is doing (the
//! compare runner's times move by ±30% between runs on a busy VM; instruction counts do not).
//! `PINWHEEL_BENCH_PROFILING` (`on` / `off`) chooses task profiling, so an A/B of its cost is
//! two runs of this binary; pinwheel against tokio is two runs too.
//!
//! ```text
//! benches/scripts/core_instructions.sh          # every row, profiling off and on, via callgrind
//! benches/scripts/core_instructions.sh vs-tokio # every row, pinwheel and tokio side by side
//! cargo run --release -p pinwheel-benches --bin core_instructions -- ROW ITERS [WORKERS] [pinwheel|tokio]
//! ```

use std::process::ExitCode;

use pinwheel_benches::{
    ChainedSpawn, Exec, Mailbox, PingPong, Pinwheel, SleepFire, SpawnManyLocal,
    SpawnManyRemoteIdle, SpawnManyWorker, TimeoutCancel, TimerReset, Tokio, Workload, YieldMany,
};

fn run_on<E: Exec, W: Default + Workload<E>>(iters: usize, workers: usize) {
    let rt = E::build(workers);
    let mut w = W::default();
    for _ in 0..iters {
        w.iter(&rt);
    }
}

/// Runs workload `W` on the runtime named `tokio` (or pinwheel).
fn run<W: Default + Workload<Pinwheel> + Workload<Tokio>>(
    iters: usize,
    workers: usize,
    tokio: bool,
) {
    if tokio {
        run_on::<Tokio, W>(iters, workers);
    } else {
        run_on::<Pinwheel, W>(iters, workers);
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: core_instructions ROW ITERS [WORKERS] [pinwheel|tokio] (ROW: spawn_many_local, \
                 spawn_many_worker, spawn_many_remote_idle, yield_many, ping_pong, chained_spawn, \
                 mailbox, timeout_cancel, sleep_fire, timer_reset)";
    let (Some(row), Some(Ok(iters))) = (args.first(), args.get(1).map(|s| s.parse::<usize>()))
    else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let workers = match args.get(2).map(|s| s.parse::<usize>()) {
        None => 2,
        Some(Ok(n)) if (1..=64).contains(&n) => n,
        Some(_) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let tokio = match args.get(3).map(String::as_str) {
        None | Some("pinwheel") => false,
        Some("tokio") => true,
        Some(other) => {
            eprintln!("core_instructions: unknown runtime {other:?}; {usage}");
            return ExitCode::from(2);
        }
    };
    match row.as_str() {
        "spawn_many_local" => run::<SpawnManyLocal>(iters, workers, tokio),
        "spawn_many_worker" => run::<SpawnManyWorker>(iters, workers, tokio),
        "yield_many" => run::<YieldMany>(iters, workers, tokio),
        "ping_pong" => run::<PingPong>(iters, workers, tokio),
        "chained_spawn" => run::<ChainedSpawn>(iters, workers, tokio),
        "spawn_many_remote_idle" => run::<SpawnManyRemoteIdle>(iters, workers, tokio),
        "mailbox" => run::<Mailbox>(iters, workers, tokio),
        "timeout_cancel" => run::<TimeoutCancel>(iters, workers, tokio),
        "sleep_fire" => run::<SleepFire>(iters, workers, tokio),
        "timer_reset" => run::<TimerReset>(iters, workers, tokio),
        _ => {
            eprintln!("core_instructions: unknown row {row:?}; {usage}");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
