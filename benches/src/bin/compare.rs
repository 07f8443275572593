//! Runs every workload on pinwheel and on tokio, side by side.
//!
//! ```text
//! cargo run --release -p pinwheel-benches --bin compare -- [--quick] [--workers N] [--rounds N] [--json PATH] [FILTER]
//! ```
//!
//! Prints one row per workload: `name  pinwheel_median  tokio_median  ratio  pw_cs  tk_cs`
//! (ratio = pinwheel/tokio, below 1.0 is better; cs = context switches of each runtime's own
//! threads per iteration, from `/proc/self/task`, the load generator's not counted). The
//! network rows add tokio run thread-per-core and the floor: a bare mio loop per worker
//! thread on the same load, what no runtime can beat (`floor.rs`). FILTER keeps the
//! workloads whose name contains it.

use std::process::ExitCode;
use std::time::Duration;

use pinwheel_benches::ecosystem::{AxumHello, CompatOverhead, PgSelect1, RedisGet, TlsEcho};
use pinwheel_benches::net::{AcceptChurn, AcceptSpawn, Echo, HttpHello, TokioNetEcho};
use pinwheel_benches::runner::{Config, Row, compare, compare_with_tpc, human, to_json};
use pinwheel_benches::{
    ChainedSpawn, Mailbox, PingPong, SleepFire, SpawnManyLocal, SpawnManyRemoteIdle,
    SpawnManyWorker, TimeoutCancel, TimerReset, YieldMany,
};

const USAGE: &str = "usage: compare [--quick] [--workers N] [--rounds N] [--json PATH] [FILTER]";

type Bench = (&'static str, fn(&'static str, &Config) -> Row);

const BENCHES: &[Bench] = &[
    ("spawn_many_local", compare::<SpawnManyLocal>),
    ("spawn_many_worker", compare::<SpawnManyWorker>),
    ("spawn_many_remote_idle", compare::<SpawnManyRemoteIdle>),
    ("yield_many", compare::<YieldMany>),
    ("ping_pong", compare::<PingPong>),
    ("chained_spawn", compare::<ChainedSpawn>),
    ("mailbox", compare::<Mailbox>),
    ("timeout_cancel", compare::<TimeoutCancel>),
    ("sleep_fire", compare::<SleepFire>),
    ("timer_reset", compare::<TimerReset>),
    ("tcp_echo", compare_with_tpc::<Echo<64>>),
    ("tcp_echo_1k", compare_with_tpc::<Echo<1024>>),
    ("accept_spawn", compare::<AcceptSpawn>),
    ("accept_churn", compare_with_tpc::<AcceptChurn>),
    ("http_hello", compare_with_tpc::<HttpHello>),
    ("axum_hello", compare::<AxumHello>),
    ("tls_echo", compare::<TlsEcho>),
    ("compat_overhead", compare::<CompatOverhead>),
    ("tokio_net_echo", with_tokio_context::<TokioNetEcho>),
    ("pg_select1", with_tokio_context::<PgSelect1>),
    ("redis_get", with_tokio_context::<RedisGet>),
];

/// Why a row cannot run on this machine (a server it starts is not installed), or `None`.
fn skip_reason(name: &str) -> Option<&'static str> {
    match name {
        "pg_select1" => pinwheel_tests::servers::postgres_missing(),
        "redis_get" => pinwheel_tests::servers::redis_missing(),
        _ => None,
    }
}

/// [`compare`] with the pinwheel runtime's workers carrying tokio contexts
/// (`Builder::tokio_context(true)`), for a row whose pinwheel side calls tokio directly.
fn with_tokio_context<W>(name: &'static str, cfg: &Config) -> Row
where
    W: Default
        + pinwheel_benches::Workload<pinwheel_benches::Pinwheel>
        + pinwheel_benches::Workload<pinwheel_benches::Tokio>,
{
    use std::sync::atomic::Ordering::Relaxed;
    pinwheel_benches::exec::TOKIO_CONTEXT.store(true, Relaxed);
    let row = compare::<W>(name, cfg);
    pinwheel_benches::exec::TOKIO_CONTEXT.store(false, Relaxed);
    row
}

fn main() -> ExitCode {
    let mut cfg = Config {
        workers: 2,
        rounds: 15,
        round_target: Duration::from_millis(100),
    };
    let mut json = None;
    let mut filter = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |flag: &str| match args.next() {
            Some(v) => Ok(v),
            None => Err(format!("{flag} needs a value\n{USAGE}")),
        };
        let res: Result<(), String> = match a.as_str() {
            "--quick" => {
                cfg.rounds = 5;
                cfg.round_target = Duration::from_millis(20);
                Ok(())
            }
            "--workers" => value("--workers").and_then(|v| match v.parse() {
                Ok(n) if (1..=64).contains(&n) => {
                    cfg.workers = n;
                    Ok(())
                }
                _ => Err(format!("--workers takes a number from 1 to 64, not {v:?}")),
            }),
            "--rounds" => value("--rounds").and_then(|v| match v.parse() {
                Ok(n) if n >= 5 => {
                    cfg.rounds = n;
                    Ok(())
                }
                _ => Err(format!("--rounds takes a number of at least 5, not {v:?}")),
            }),
            "--json" => value("--json").map(|v| json = Some(v)),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            f if f.starts_with('-') => Err(format!("unknown flag {f:?}\n{USAGE}")),
            f => {
                filter = Some(f.to_owned());
                Ok(())
            }
        };
        if let Err(e) = res {
            eprintln!("compare: {e}");
            return ExitCode::from(2);
        }
    }
    let selected: Vec<&Bench> = BENCHES
        .iter()
        .filter(|(n, _)| filter.as_deref().is_none_or(|f| n.contains(f)))
        .collect();
    if selected.is_empty() {
        let names: Vec<_> = BENCHES.iter().map(|(n, _)| *n).collect();
        eprintln!(
            "compare: no workload matches {:?}; workloads: {}",
            filter.unwrap_or_default(),
            names.join(", ")
        );
        return ExitCode::from(2);
    }
    if pinwheel_benches::pinned() {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cfg.workers >= cpus {
            eprintln!(
                "compare: PINWHEEL_BENCH_PIN needs a CPU left for the load generator; use --workers {} or fewer",
                cpus - 1
            );
            return ExitCode::from(2);
        }
        // The load generator (this thread) on the CPUs the servers do not use.
        pinwheel_benches::bind_current_thread(cfg.workers..cpus);
        println!(
            "# servers pinned to CPUs 0..{}, load generator to the rest",
            cfg.workers
        );
    }
    println!(
        "# {} workers, {} rounds per runtime (alternating), medians per iteration",
        cfg.workers, cfg.rounds
    );
    println!(
        "{:<24} {:>14} {:>14} {:>7} {:>12} {:>12}",
        "name", "pinwheel", "tokio", "ratio", "pw cs/iter", "tk cs/iter"
    );
    let mut rows = Vec::new();
    for (name, run) in selected {
        if let Some(why) = skip_reason(name) {
            println!("{name:<24} skipped: {why}");
            continue;
        }
        let row = run(name, &cfg);
        let floor = if row.floor_ns > 0.0 {
            format!("  (time above a {} floor)", human(row.floor_ns))
        } else {
            String::new()
        };
        let tpc = row.tpc.map_or(String::new(), |(ns, cs)| {
            format!(
                "   tokio thread-per-core {} (ratio {:.3}) {cs:.1} cs/iter",
                human(ns),
                row.pinwheel_ns / ns
            )
        });
        let bare = row.floor.map_or(String::new(), |(ns, cs)| {
            format!(
                "   floor (bare mio loop) {} (pinwheel/floor {:.2}, tokio/floor {:.2}) {cs:.1} cs/iter",
                human(ns),
                row.pinwheel_ns / ns,
                row.tokio_ns / ns
            )
        });
        println!(
            "{:<24} {:>14} {:>14} {:>7.3} {:>12.1} {:>12.1}{floor}{tpc}{bare}",
            row.name,
            human(row.pinwheel_ns),
            human(row.tokio_ns),
            row.ratio(),
            row.pinwheel_cs,
            row.tokio_cs
        );
        rows.push(row);
    }
    if let Some(path) = json {
        if let Err(e) = std::fs::write(&path, to_json(&rows)) {
            eprintln!("compare: could not write {path}: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
