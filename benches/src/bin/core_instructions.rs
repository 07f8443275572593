//! Runs one core workload a fixed number of times on pinwheel alone, for instruction counts:
//! under `valgrind --tool=callgrind`, the difference between two iteration counts is what the
//! extra iterations cost, whatever the machine is doing (the compare runner's times move by
//! ±30% between runs on a busy VM; instruction counts do not). `PINWHEEL_BENCH_PROFILING`
//! (`on` / `off`) chooses task profiling, so an A/B of its cost is two runs of this binary.
//!
//! ```text
//! benches/scripts/core_instructions.sh          # every row, profiling off and on, via callgrind
//! cargo run --release -p pinwheel-benches --bin core_instructions -- ROW ITERS [WORKERS]
//! ```

use std::process::ExitCode;

use pinwheel_benches::{
    ChainedSpawn, Exec, Mailbox, PingPong, Pinwheel, SleepFire, SpawnManyLocal,
    SpawnManyRemoteIdle, SpawnManyWorker, TimeoutCancel, TimerReset, Workload, YieldMany,
};

fn run<W: Default + Workload<Pinwheel>>(iters: usize, workers: usize) {
    let rt = Pinwheel::build(workers);
    let mut w = W::default();
    for _ in 0..iters {
        w.iter(&rt);
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: core_instructions ROW ITERS [WORKERS] (ROW: spawn_many_local, \
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
    match row.as_str() {
        "spawn_many_local" => run::<SpawnManyLocal>(iters, workers),
        "spawn_many_worker" => run::<SpawnManyWorker>(iters, workers),
        "yield_many" => run::<YieldMany>(iters, workers),
        "ping_pong" => run::<PingPong>(iters, workers),
        "chained_spawn" => run::<ChainedSpawn>(iters, workers),
        "spawn_many_remote_idle" => run::<SpawnManyRemoteIdle>(iters, workers),
        "mailbox" => run::<Mailbox>(iters, workers),
        "timeout_cancel" => run::<TimeoutCancel>(iters, workers),
        "sleep_fire" => run::<SleepFire>(iters, workers),
        "timer_reset" => run::<TimerReset>(iters, workers),
        _ => {
            eprintln!("core_instructions: unknown row {row:?}; {usage}");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
