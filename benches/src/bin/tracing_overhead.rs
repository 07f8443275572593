//! What pinwheel's `tracing` instrumentation (a span per task, events for wake, poll and
//! complete) costs a service that has a subscriber installed: the scheduler and timer
//! workloads on two pinwheel runtimes side by side, one whose threads have a
//! `tracing-subscriber` fmt subscriber writing to a sink and one without. By default the
//! subscriber filters pinwheel out (`info,pinwheel=off`); with `--spans` it wants every task's
//! span and events (`pinwheel::task=trace`), as `RUST_LOG=trace` or a console would.
//!
//! ```text
//! cargo run --release -p pinwheel-benches --bin tracing_overhead -- [--quick] [--spans] [FILTER]
//! ```
//!
//! Ratio = with subscriber / without: 1.03 is 3% overhead.

use std::process::ExitCode;
use std::time::Duration;

use pinwheel_benches::runner::{Config, Row, compare_pair, human};
use pinwheel_benches::{
    ChainedSpawn, Exec, PingPong, Pinwheel, PinwheelSpans, PinwheelTraced, SpawnManyLocal,
    SpawnManyRemoteIdle, SpawnManyWorker, TimeoutCancel, TimerReset, YieldMany,
};

type Bench = (&'static str, fn(&'static str, &Config) -> Row);

/// The workloads, run on a runtime with the subscriber `S` beside one without.
fn benches<S: Exec>() -> [Bench; 8] {
    [
        (
            "spawn_many_local",
            compare_pair::<SpawnManyLocal, S, Pinwheel>,
        ),
        (
            "spawn_many_worker",
            compare_pair::<SpawnManyWorker, S, Pinwheel>,
        ),
        (
            "spawn_many_remote_idle",
            compare_pair::<SpawnManyRemoteIdle, S, Pinwheel>,
        ),
        ("yield_many", compare_pair::<YieldMany, S, Pinwheel>),
        ("ping_pong", compare_pair::<PingPong, S, Pinwheel>),
        ("chained_spawn", compare_pair::<ChainedSpawn, S, Pinwheel>),
        ("timeout_cancel", compare_pair::<TimeoutCancel, S, Pinwheel>),
        ("timer_reset", compare_pair::<TimerReset, S, Pinwheel>),
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
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--spans" => spans = true,
            "--quick" => {
                cfg.rounds = 5;
                cfg.round_target = Duration::from_millis(20);
            }
            f if f.starts_with('-') => {
                eprintln!(
                    "tracing_overhead: unknown flag {f:?}; usage: tracing_overhead [--quick] [--spans] [FILTER]"
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
    let benches = if spans {
        benches::<PinwheelSpans>()
    } else {
        benches::<PinwheelTraced>()
    };
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
    ExitCode::SUCCESS
}
