//! `heavy_flood`: live sessions under a flood of CPU-heavy tasks (issue 17's benchmark).
//!
//! 200 keep-alive connections each send a 64-byte request at a fixed rate to an echo server
//! (the servers of `tcp_echo`); a load generator on its own thread (mio, one thread) times
//! each response from the moment its request was *due* (so a late send counts against the
//! server: no coordinated omission). Meanwhile a spawner inside the runtime floods it with
//! tasks that each burn 1 ms of CPU, at 1.5 times what the workers can absorb. pinwheel marks
//! the flood `Class::Heavy`; tokio has no classes, so it runs them as users would
//! (`tokio::spawn`). Reported for each runtime: p50 / p99 / max latency of the small
//! requests, and heavy tasks completed per second.
//!
//! ```text
//! cargo run --release -p pinwheel-benches --bin heavy_flood -- [--workers N] [--seconds S] [--rate R]
//! ```
//!
//! `--rate` is each connection's requests per second (default 20: 4,000 a second in all).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use pinwheel_benches::net::{pinwheel_echo, tokio_echo};
use pinwheel_benches::{Exec, Pinwheel, Tokio};

const CONNS: usize = 200;
const MSG: usize = 64;
const HEAVY: Duration = Duration::from_millis(1);

/// Burns `d` of CPU on this thread.
fn burn(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

/// The paced load: returns each response's latency, measured from when its request was due.
fn paced_load(
    addr: SocketAddr,
    rate: u32,
    run_for: Duration,
    stop: &AtomicBool,
) -> io::Result<Vec<Duration>> {
    struct Conn {
        s: TcpStream,
        due: Instant,
        in_flight: Option<Instant>,
        got: usize,
    }
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let interval = Duration::from_secs(1) / rate;
    let start = Instant::now() + Duration::from_millis(100);
    let mut conns: HashMap<usize, Conn> = HashMap::new();
    for i in 0..CONNS {
        let std = std::net::TcpStream::connect(addr)?;
        std.set_nodelay(true)?;
        std.set_nonblocking(true)?;
        let mut s = TcpStream::from_std(std);
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE)?;
        // Staggered over one interval.
        let due = start + interval * i as u32 / CONNS as u32;
        conns.insert(
            i,
            Conn {
                s,
                due,
                in_flight: None,
                got: 0,
            },
        );
    }
    let end = start + run_for;
    let mut lat = Vec::new();
    let mut buf = [0u8; 4096];
    let msg = [7u8; MSG];
    loop {
        let now = Instant::now();
        if now >= end {
            // The flood stops with the load; what it queued stays.
            stop.store(true, Ordering::Relaxed);
            if conns.values().all(|c| c.in_flight.is_none()) {
                break;
            }
        }
        if now >= end + Duration::from_secs(60) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "responses still missing 60 s after the end of the load",
            ));
        }
        let mut next = end;
        for c in conns.values_mut() {
            if c.in_flight.is_none() && c.due <= now && c.due < end {
                c.s.write_all(&msg)?;
                c.in_flight = Some(c.due);
                c.due += interval;
            }
            if c.in_flight.is_none() {
                next = next.min(c.due);
            }
        }
        let wait = next.saturating_duration_since(Instant::now());
        poll.poll(&mut events, Some(wait.min(Duration::from_millis(50))))?;
        for ev in events.iter() {
            let Some(c) = conns.get_mut(&ev.token().0) else {
                continue;
            };
            loop {
                match c.s.read(&mut buf) {
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the server closed a connection",
                        ));
                    }
                    Ok(n) => {
                        c.got += n;
                        if c.got >= MSG {
                            c.got -= MSG;
                            if let Some(due) = c.in_flight.take() {
                                lat.push(due.elapsed());
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(lat)
}

/// One runtime's figures.
struct Figures {
    p50: Duration,
    p99: Duration,
    max: Duration,
    responses: usize,
    heavy_per_sec: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Runs the load against `addr` while `flood` (started by the caller) spawns heavy tasks that
/// count themselves in `done`.
fn measure(
    addr: SocketAddr,
    rate: u32,
    seconds: u64,
    done: &AtomicU64,
    stop: &AtomicBool,
) -> io::Result<Figures> {
    let before = done.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let mut lat = paced_load(addr, rate, Duration::from_secs(seconds), stop)?;
    // Heavy tasks completed over the load's duration (those finished while the last
    // responses were awaited count too: the load's clock includes that wait).
    let took = t0.elapsed();
    let heavy = done.load(Ordering::Relaxed) - before;
    lat.sort();
    Ok(Figures {
        p50: percentile(&lat, 0.50),
        p99: percentile(&lat, 0.99),
        max: *lat.last().unwrap_or(&Duration::ZERO),
        responses: lat.len(),
        heavy_per_sec: heavy as f64 / took.as_secs_f64(),
    })
}

/// Tasks to spawn so that `spawned` keeps up with `per_sec` since `start`.
fn due_now(start: Instant, per_sec: f64, spawned: u64) -> u64 {
    ((start.elapsed().as_secs_f64() * per_sec) as u64).saturating_sub(spawned)
}

/// A heavy task: burns `HEAVY` of CPU, then counts itself in `done`.
async fn heavy(done: Arc<AtomicU64>) {
    burn(HEAVY);
    done.fetch_add(1, Ordering::Relaxed);
}

/// The flood, on runtime `E`: spawns heavy tasks with `spawn_heavy` at 1.5 times what
/// `workers` workers absorb, looking every millisecond, until `stop`.
async fn flood<E: Exec>(
    workers: usize,
    done: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    spawn_heavy: impl Fn(Arc<AtomicU64>),
) {
    let per_sec = 1.5 * workers as f64 * (1.0 / HEAVY.as_secs_f64());
    let start = Instant::now();
    let mut spawned = 0;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..due_now(start, per_sec, spawned) {
            spawn_heavy(done.clone());
            spawned += 1;
        }
        E::sleep(Duration::from_millis(1)).await;
    }
}

fn run_pinwheel(workers: usize, rate: u32, seconds: u64) -> io::Result<Figures> {
    let rt = Pinwheel::build(workers);
    let addr = pinwheel_echo(&rt);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let _flood = rt.0.spawn(flood::<Pinwheel>(
        workers,
        done.clone(),
        stop.clone(),
        |d| {
            drop(
                pinwheel::task::Builder::new()
                    .class(pinwheel::task::Class::Heavy)
                    .spawn(heavy(d)),
            );
        },
    ));
    measure(addr, rate, seconds, &done, &stop)
}

fn run_tokio(workers: usize, rate: u32, seconds: u64) -> io::Result<Figures> {
    let rt = Tokio::build(workers);
    let addr = tokio_echo(&rt);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let _flood =
        rt.0.spawn(flood::<Tokio>(workers, done.clone(), stop.clone(), |d| {
            drop(tokio::spawn(heavy(d)))
        }));
    let figures = measure(addr, rate, seconds, &done, &stop);
    // The backlog left is dropped with the runtime, without waiting for it.
    rt.0.shutdown_background();
    figures
}

fn main() -> ExitCode {
    let (mut workers, mut seconds, mut rate) = (2usize, 5u64, 20u32);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().and_then(|v| v.parse::<u64>().ok());
        match (a.as_str(), v) {
            ("--workers", Some(n)) if (1..=64).contains(&n) => workers = n as usize,
            ("--seconds", Some(n)) if n >= 1 => seconds = n,
            ("--rate", Some(n)) if (1..=1000).contains(&n) => rate = n as u32,
            _ => {
                eprintln!(
                    "heavy_flood: bad argument {a:?}; usage: heavy_flood [--workers 1-64] [--seconds S>=1] [--rate 1-1000]"
                );
                return ExitCode::from(2);
            }
        }
    }
    println!(
        "# heavy_flood: {workers} workers, {CONNS} connections x {rate} req/s of {MSG} B, \
         1 ms heavy tasks at {:.0}/s (1.5x capacity), {seconds} s",
        1.5 * workers as f64 * 1000.0
    );
    println!(
        "{:<10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "runtime", "p50", "p99", "max", "responses", "heavy/s"
    );
    let mut rows = Vec::new();
    for (name, run) in [
        (
            "pinwheel",
            run_pinwheel as fn(usize, u32, u64) -> io::Result<Figures>,
        ),
        ("tokio", run_tokio),
    ] {
        match run(workers, rate, seconds) {
            Ok(f) => {
                println!(
                    "{:<10} {:>10.2?} {:>10.2?} {:>10.2?} {:>10} {:>10.0}",
                    name, f.p50, f.p99, f.max, f.responses, f.heavy_per_sec
                );
                rows.push(f);
            }
            Err(e) => {
                eprintln!("heavy_flood: {name}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let (p, t) = (&rows[0], &rows[1]);
    println!(
        "p99 pinwheel/tokio {:.3}; heavy throughput pinwheel/tokio {:.3}",
        p.p99.as_secs_f64() / t.p99.as_secs_f64(),
        p.heavy_per_sec / t.heavy_per_sec
    );
    ExitCode::SUCCESS
}
