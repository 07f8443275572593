//! The soak: the proxy example under a fixed request rate with faults injected on a seeded
//! schedule, then a table of checks (every request answered or its failure explained by a
//! fault, no panic, tasks / timers / sessions / descriptors back to their baseline, memory
//! within 10%) turned into the exit code.
//!
//! ```text
//! cargo run --release -p pinwheel-benches --bin soak -- [--seconds N] [--rate R] [--seed S]
//!     [--workers N] [--plot PATH.svg]
//! ```
//!
//! (`--emfile-child N [BACKEND..]` is how the soak runs its descriptor-starved proxy: not for
//! users.)

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use pinwheel_benches::soak::{Options, alloc::Counting, run};

#[global_allocator]
static GLOBAL: Counting = Counting;

const USAGE: &str = "usage: soak [--seconds N] [--rate R] [--seed S] [--workers N] [--plot PATH.svg]
  --seconds N   length of the phase with faults (default 60; a warm-up of a tenth, at least 3 s, comes first)
  --rate R      requests per second of the healthy clients (default 400)
  --seed S      seed of the fault schedule and the clients' choices (default 1)
  --workers N   the proxy's worker threads (default 2)
  --plot PATH   write an SVG plot of rate, p99, memory and descriptors over time";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--emfile-child") {
        let nofile = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(64);
        let backends: Result<Vec<std::net::SocketAddr>, _> =
            args.iter().skip(2).map(|a| a.parse()).collect();
        return match backends {
            Ok(backends) => emfile_child(nofile, backends),
            Err(e) => {
                eprintln!("soak child: a backend address: {e}");
                ExitCode::from(2)
            }
        };
    }
    let mut opts = Options {
        seconds: 60,
        rate: 400,
        seed: 1,
        workers: 2,
        plot: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = |what: &str| -> Result<String, String> {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs {what}"))
        };
        let parsed: Result<(), String> = match flag.as_str() {
            "--seconds" => value("a number of seconds").and_then(|v| {
                opts.seconds = number(flag, &v, 10)?;
                Ok(())
            }),
            "--rate" => value("requests per second").and_then(|v| {
                opts.rate = number(flag, &v, 1)?;
                Ok(())
            }),
            "--seed" => value("a number").and_then(|v| {
                opts.seed = number(flag, &v, 0)?;
                Ok(())
            }),
            "--workers" => value("a number of threads").and_then(|v| {
                opts.workers = number(flag, &v, 1)? as usize;
                Ok(())
            }),
            "--plot" => value("a path").map(|v| opts.plot = Some(PathBuf::from(v))),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => Err(format!("unknown argument {other:?}")),
        };
        if let Err(e) = parsed {
            eprintln!("soak: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    if run(&opts) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn number(flag: &str, v: &str, min: u64) -> Result<u64, String> {
    match v.parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(format!(
            "{flag} {v:?}: expected a whole number of at least {min}"
        )),
    }
}

/// The descriptor-starved proxy: limits itself to `nofile` descriptors, serves on a free port
/// (printed as `ADDR host:port`), and stops, drains and exits 0 when its stdin closes.
fn emfile_child(nofile: u64, backends: Vec<std::net::SocketAddr>) -> ExitCode {
    let lim = libc::rlimit {
        rlim_cur: nofile,
        rlim_max: nofile,
    };
    // SAFETY: setrlimit reads the struct we pass; no memory is shared.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        eprintln!(
            "soak child: setrlimit(RLIMIT_NOFILE, {nofile}) failed: {}",
            std::io::Error::last_os_error()
        );
        return ExitCode::FAILURE;
    }
    let rt = match pinwheel::Builder::new().worker_threads(1).build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("soak child: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = pinwheel_examples::proxy::Config {
        listen: ([127, 0, 0, 1], 0).into(),
        stats: None,
        threads: 1,
        // Empty: embedded ones (in this process, sharing its descriptors).
        backends,
        ..Default::default()
    };
    let proxy = match rt.block_on(pinwheel_examples::proxy::Proxy::start(config)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("soak child: proxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("ADDR {}", proxy.listen_addr());
    // Wait for the parent to close our stdin.
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
    }
    proxy.stop();
    rt.block_on(proxy.drain(std::time::Duration::from_secs(5)));
    ExitCode::SUCCESS
}
