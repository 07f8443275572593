//! The latency of one ping-pong connection at low load: 10,000 round trips of 64 bytes, each
//! timed by a blocking client on the calling thread, against an echo server on each runtime
//! (the servers of `tcp_echo`), in alternating blocks of 1,000.
//!
//! ```text
//! cargo run --release -p pinwheel-benches --bin latency -- [--workers N] [--round-trips N]
//! ```
//!
//! `PINWHEEL_BENCH_SPINS=N` sets pinwheel's `Builder::spin_before_park` (default 0);
//! `PINWHEEL_BENCH_PIN=1` puts the servers on CPUs `0..workers` and the client on the rest, so
//! that where the threads run does not change between runs (on 2 CPUs: `--workers 1`).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use pinwheel_benches::net::{pinwheel_echo, tokio_echo};
use pinwheel_benches::{Exec, Pinwheel, Tokio};

const BLOCK: usize = 1000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn block(conn: &mut std::net::TcpStream, out: &mut Vec<Duration>) -> std::io::Result<()> {
    let msg = [7u8; 64];
    let mut back = [0u8; 64];
    for _ in 0..BLOCK {
        let t = Instant::now();
        conn.write_all(&msg)?;
        conn.read_exact(&mut back)?;
        out.push(t.elapsed());
    }
    Ok(())
}

fn connect(addr: SocketAddr) -> std::io::Result<std::net::TcpStream> {
    let c = std::net::TcpStream::connect(addr)?;
    c.set_nodelay(true)?;
    c.set_read_timeout(Some(Duration::from_secs(30)))?;
    Ok(c)
}

fn main() -> ExitCode {
    let usage = "usage: latency [--workers N] [--round-trips N (a multiple of 1000)]";
    let (mut workers, mut total) = (2usize, 10_000usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().and_then(|v| v.parse::<usize>().ok());
        match (a.as_str(), v) {
            ("--workers", Some(n)) if (1..=64).contains(&n) => workers = n,
            ("--round-trips", Some(n)) if n >= BLOCK && n % BLOCK == 0 => total = n,
            _ => {
                eprintln!("latency: bad argument {a:?}\n{usage}");
                return ExitCode::from(2);
            }
        }
    }
    if pinwheel_benches::pinned() {
        // Servers on CPUs 0..workers (see Exec::build), this client on the others: the
        // placement no longer varies from run to run.
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        if workers >= cpus {
            eprintln!(
                "latency: PINWHEEL_BENCH_PIN needs a CPU left for the client; use --workers {}",
                cpus - 1
            );
            return ExitCode::from(2);
        }
        pinwheel_benches::bind_current_thread(workers..cpus);
    }
    let pw = Pinwheel::build(workers);
    let tk = Tokio::build(workers);
    let run = || -> std::io::Result<(Vec<Duration>, Vec<Duration>)> {
        let mut p = connect(pinwheel_echo(&pw))?;
        let mut t = connect(tokio_echo(&tk))?;
        // Warm-up.
        block(&mut p, &mut Vec::new())?;
        block(&mut t, &mut Vec::new())?;
        let (mut ps, mut ts) = (Vec::new(), Vec::new());
        for i in 0..total / BLOCK {
            if i % 2 == 0 {
                block(&mut p, &mut ps)?;
                block(&mut t, &mut ts)?;
            } else {
                block(&mut t, &mut ts)?;
                block(&mut p, &mut ps)?;
            }
        }
        Ok((ps, ts))
    };
    let (mut ps, mut ts) = match run() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("latency: {e}");
            return ExitCode::FAILURE;
        }
    };
    ps.sort();
    ts.sort();
    println!("# {workers} workers, {total} round trips of 64 B per runtime, one connection");
    println!(
        "{:<10} {:>10} {:>10} {:>10} {:>10}",
        "runtime", "p50", "p90", "p99", "p99.9"
    );
    for (name, v) in [("pinwheel", &ps), ("tokio", &ts)] {
        println!(
            "{name:<10} {:>10.1?} {:>10.1?} {:>10.1?} {:>10.1?}",
            percentile(v, 0.5),
            percentile(v, 0.9),
            percentile(v, 0.99),
            percentile(v, 0.999)
        );
    }
    ExitCode::SUCCESS
}
