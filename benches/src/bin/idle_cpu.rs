//! How much CPU an idle runtime burns: start it, run a burst of tasks, then leave it idle and
//! read its worker threads' CPU time from `/proc/self/task/*/stat` (Linux).
//!
//! ```text
//! cargo run --release -p pinwheel-benches --bin idle_cpu -- [SECONDS]
//! ```

use std::process::ExitCode;
use std::time::Duration;

/// Runs `burst`, then reports the CPU the runtime's idle workers use for `secs` seconds.
fn measure(name: &str, prefix: &str, secs: u64, burst: impl FnOnce()) -> std::io::Result<()> {
    burst();
    std::thread::sleep(Duration::from_millis(100));
    let (threads, before) = pinwheel_benches::thread_cpu_ticks(prefix);
    if threads == 0 {
        return Err(std::io::Error::other(
            "no worker thread found in /proc/self/task",
        ));
    }
    std::thread::sleep(Duration::from_secs(secs));
    let (_, after) = pinwheel_benches::thread_cpu_ticks(prefix);
    // Clock ticks are 10 ms on Linux (USER_HZ = 100).
    let ms = (after - before) * 10;
    println!(
        "{name:<9} {threads} runtime threads (workers, and pinwheel's watchdog) idle for {secs} s: {ms} ms of CPU ({:.3}% of one core)",
        ms as f64 / (secs * 10) as f64
    );
    Ok(())
}

fn main() -> ExitCode {
    let secs = match std::env::args().nth(1).map(|s| s.parse::<u64>()) {
        None => 5,
        Some(Ok(n)) if n > 0 => n,
        _ => {
            eprintln!("idle_cpu: the argument is the idle time in whole seconds (at least 1)");
            return ExitCode::from(2);
        }
    };
    // `PINWHEEL_BENCH_TOKIO_CONTEXT=1`: the workers carry tokio contexts (they sleep in
    // tokio's driver).
    let pw = pinwheel::Builder::new()
        .worker_threads(2)
        .thread_name("pw-idle")
        .tokio_context(pinwheel_benches::exec::tokio_context())
        .build()
        .expect("pinwheel");
    let tk = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tk-idle")
        .enable_all()
        .build()
        .expect("tokio");
    let r = measure("pinwheel", "pw-idle", secs, || {
        pw.block_on(async {
            let hs: Vec<_> = (0..10_000).map(|_| pinwheel::spawn(async {})).collect();
            for h in hs {
                h.await.unwrap();
            }
        })
    })
    .and_then(|_| {
        measure("tokio", "tk-idle", secs, || {
            tk.block_on(async {
                let hs: Vec<_> = (0..10_000).map(|_| tokio::spawn(async {})).collect();
                for h in hs {
                    h.await.unwrap();
                }
            })
        })
    });
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("idle_cpu: could not read /proc/self/task (Linux only): {e}");
            ExitCode::FAILURE
        }
    }
}
