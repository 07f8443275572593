//! How much CPU an idle runtime burns: start it, run a burst of tasks, then leave it idle and
//! read its worker threads' CPU time from `/proc/self/task/*/stat` (Linux).
//!
//! ```text
//! cargo run --release -p pinwheel-benches --bin idle_cpu -- [SECONDS]
//! ```

use std::process::ExitCode;
use std::time::Duration;

/// CPU time, in clock ticks, of this process's threads whose name starts with `prefix`.
fn cpu_ticks(prefix: &str) -> std::io::Result<(usize, u64)> {
    let mut threads = 0;
    let mut ticks = 0;
    for entry in std::fs::read_dir("/proc/self/task")? {
        let dir = entry?.path();
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        if !comm.trim_end().starts_with(prefix) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            continue;
        };
        let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        ticks += f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
        threads += 1;
    }
    Ok((threads, ticks))
}

fn measure(name: &str, prefix: &str, secs: u64, burst: impl FnOnce()) -> std::io::Result<()> {
    burst();
    std::thread::sleep(Duration::from_millis(100));
    let (threads, before) = cpu_ticks(prefix)?;
    std::thread::sleep(Duration::from_secs(secs));
    let (_, after) = cpu_ticks(prefix)?;
    // Clock ticks are 10 ms on Linux (USER_HZ = 100).
    let ms = (after - before) * 10;
    println!(
        "{name:<9} {threads} workers idle for {secs} s: {ms} ms of CPU ({:.3}% of one core)",
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
    let pw = pinwheel::Builder::new()
        .worker_threads(2)
        .thread_name("pw-idle")
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
