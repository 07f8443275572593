//! What pinwheel's `tracing` instrumentation (a span per task, events for wake, poll and
//! complete) costs a service that has a subscriber installed: the scheduler and timer
//! workloads on two pinwheel runtimes side by side, one whose threads have a
//! `tracing-subscriber` fmt subscriber writing to a sink and one without. By default the
//! subscriber filters pinwheel out (`info,pinwheel=off`); with `--spans` it wants every task's
//! span and events (`pinwheel::task=trace`), as `RUST_LOG=trace` would. With `--console` the
//! subscriber is tokio-console's layer (console-subscriber, its server on a free port), on
//! pinwheel and on tokio side by side: tokio emits its task spans only when built with
//! `--cfg tokio_unstable`, so run that one as
//! `RUSTFLAGS="--cfg tokio_unstable --cfg console_without_tokio_unstable"` (in a target
//! directory of its own) for tokio's figure to mean anything.
//!
//! ```text
//! cargo run --release -p pinwheel-benches --bin tracing_overhead -- [--quick] [--spans|--console] [FILTER]
//! ```
//!
//! Ratio = with subscriber / without: 1.03 is 3% overhead.

use std::process::ExitCode;
use std::time::Duration;

use pinwheel_benches::runner::{Config, Row, compare_pair, human};
use pinwheel_benches::{
    ChainedSpawn, Exec, PingPong, Pinwheel, PinwheelConsole, PinwheelSpans, PinwheelTraced,
    SpawnManyLocal, SpawnManyRemoteIdle, SpawnManyWorker, TimeoutCancel, TimerReset, Tokio,
    TokioConsole, YieldMany,
};

type Bench = (&'static str, fn(&'static str, &Config) -> Row);

/// The workloads, run on a runtime with the subscriber `S` beside the same runtime `R`
/// without.
fn benches<S: Exec, R: Exec>() -> [Bench; 8] {
    [
        ("spawn_many_local", compare_pair::<SpawnManyLocal, S, R>),
        ("spawn_many_worker", compare_pair::<SpawnManyWorker, S, R>),
        (
            "spawn_many_remote_idle",
            compare_pair::<SpawnManyRemoteIdle, S, R>,
        ),
        ("yield_many", compare_pair::<YieldMany, S, R>),
        ("ping_pong", compare_pair::<PingPong, S, R>),
        ("chained_spawn", compare_pair::<ChainedSpawn, S, R>),
        ("timeout_cancel", compare_pair::<TimeoutCancel, S, R>),
        ("timer_reset", compare_pair::<TimerReset, S, R>),
    ]
}

fn main() -> ExitCode {
    let mut cfg = Config {
        workers: 2,
        rounds: 15,
        round_target: Duration::from_millis(100),
    };
    let mut filter = None;
    let mut spans = false;
    let mut console = false;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--spans" => spans = true,
            "--console" => console = true,
            "--quick" => {
                cfg.rounds = 5;
                cfg.round_target = Duration::from_millis(20);
            }
            f if f.starts_with('-') => {
                eprintln!(
                    "tracing_overhead: unknown flag {f:?}; usage: tracing_overhead [--quick] [--spans|--console] [FILTER]"
                );
                return ExitCode::from(2);
            }
            f => filter = Some(f.to_owned()),
        }
    }
    println!(
        "# {} workers, {} rounds each (alternating), medians per iteration",
        cfg.workers, cfg.rounds
    );
    println!(
        "{:<24} {:>16} {:>16} {:>7}",
        "name", "with subscriber", "without", "ratio"
    );
    let sets: Vec<(&str, [Bench; 8])> = if console {
        vec![
            ("pinwheel", benches::<PinwheelConsole, Pinwheel>()),
            ("tokio", benches::<TokioConsole, Tokio>()),
        ]
    } else if spans {
        vec![("pinwheel", benches::<PinwheelSpans, Pinwheel>())]
    } else {
        vec![("pinwheel", benches::<PinwheelTraced, Pinwheel>())]
    };
    for (runtime, benches) in sets {
        if console {
            println!("## {runtime}");
        }
        let mut ratios = Vec::new();
        for (name, run) in benches
            .iter()
            .filter(|(n, _)| filter.as_deref().is_none_or(|f| n.contains(f)))
        {
            let row = run(name, &cfg);
            println!(
                "{:<24} {:>16} {:>16} {:>7.3}",
                row.name,
                human(row.pinwheel_ns),
                human(row.tokio_ns),
                row.ratio()
            );
            ratios.push(row.ratio());
        }
        if ratios.is_empty() {
            eprintln!("tracing_overhead: no workload matches {filter:?}");
            return ExitCode::from(2);
        }
        let geo = ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64;
        println!("geometric mean ratio: {:.3}", geo.exp());
    }
    ExitCode::SUCCESS
}
