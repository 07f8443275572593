//! The soak's faults: misbehaving clients and a descriptor-starved proxy. Each returns what it
//! saw, counted by kind, for the final table. (Killing and restarting a backend needs the
//! backends' runtime and lives in `mod.rs`.)

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::load::{Rng, connect, read_response, request};

/// What one fault did and what came back, by kind.
#[derive(Clone, Debug, Default)]
pub struct FaultReport {
    /// The fault's name.
    pub name: &'static str,
    /// When it started, in seconds since the run's start.
    pub at_s: f64,
    /// How long it lasted, in seconds.
    pub lasted_s: f64,
    /// What came back, by kind ("200", "431", "closed by the proxy", ...), with counts. The
    /// kinds are static strings, so that folding reports into the run's totals allocates
    /// nothing once every kind has been seen (the soak measures the heap).
    pub seen: BTreeMap<&'static str, u64>,
    /// A check this fault makes failed: why.
    pub failure: Option<String>,
}

impl FaultReport {
    fn new(name: &'static str, at_s: f64) -> FaultReport {
        FaultReport {
            name,
            at_s,
            ..FaultReport::default()
        }
    }

    /// Counts one more of `kind`.
    pub fn count(&mut self, kind: &'static str) {
        *self.seen.entry(kind).or_default() += 1;
    }

    fn outcome(&mut self, o: &std::io::Result<u16>) {
        match o {
            Ok(s) => self.count(status_str(*s)),
            Err(_) => self.count("connection error"),
        }
    }
}

/// A status code as a static string (the ones the proxy sends; any other as "other status").
pub fn status_str(code: u16) -> &'static str {
    match code {
        200 => "200",
        400 => "400",
        408 => "408",
        413 => "413",
        431 => "431",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        _ => "other status",
    }
}

/// Clients that send half a request and reset the connection (`SO_LINGER` 0).
pub fn resets(addr: SocketAddr, n: usize, at_s: f64) -> FaultReport {
    let mut r = FaultReport::new("reset mid-request", at_s);
    let start = Instant::now();
    for _ in 0..n {
        match connect(addr, Duration::from_secs(5)) {
            Ok(mut c) => {
                let _ = c.write_all(b"GET /reset HTTP/1.1\r\nhost: soak\r\nx-half: ");
                let s = socket2::SockRef::from(&c);
                let _ = s.set_linger(Some(Duration::ZERO));
                drop(c);
                r.count("reset sent");
            }
            Err(_) => r.count("connect failed"),
        }
    }
    r.lasted_s = start.elapsed().as_secs_f64();
    r
}

/// Slowloris: `n` clients sending one header byte per second for `secs`; the proxy's header
/// timeout should close them.
pub fn slowloris(addr: SocketAddr, n: usize, secs: u64, at_s: f64) -> FaultReport {
    let mut r = FaultReport::new("slowloris", at_s);
    let start = Instant::now();
    let mut conns: Vec<Option<TcpStream>> = (0..n)
        .map(|_| connect(addr, Duration::from_secs(5)).ok())
        .collect();
    let line = b"GET /slow HTTP/1.1\r\nhost: soak\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for i in 0..secs as usize {
        for c in conns.iter_mut() {
            if let Some(s) = c {
                if s.write_all(&line[i % line.len()..][..1]).is_err() {
                    *c = None;
                    r.count("closed by the proxy");
                }
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    for s in conns.into_iter().flatten() {
        // Still open: was it answered (a 408) or closed meanwhile?
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let mut s = s;
        let mut b = [0u8; 256];
        match s.read(&mut b) {
            Ok(0) | Err(_) => r.count("closed by the proxy"),
            Ok(_) => r.count("answered"),
        }
    }
    r.lasted_s = start.elapsed().as_secs_f64();
    r
}

/// Clients that pipeline requests and never read the responses (back-pressure), then close.
pub fn no_readers(addr: SocketAddr, n: usize, secs: u64, at_s: f64) -> FaultReport {
    let mut r = FaultReport::new("clients that never read", at_s);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let threads: Vec<_> = (0..n)
        .map(|_| {
            std::thread::spawn(move || {
                let Ok(mut c) = connect(addr, Duration::from_secs(1)) else {
                    return "connect failed";
                };
                let req = b"GET /pipelined HTTP/1.1\r\nhost: soak\r\n\r\n";
                while Instant::now() < deadline {
                    if c.write_all(req).is_err() {
                        // The write timed out: the proxy stopped reading (back-pressure).
                        return "held back by the proxy";
                    }
                }
                "sent until the end"
            })
        })
        .collect();
    for t in threads {
        r.count(t.join().unwrap_or("client panicked"));
    }
    r.lasted_s = start.elapsed().as_secs_f64();
    r
}

/// A burst of `n` new connections at once (from 16 threads), each sending one request.
pub fn burst(addr: SocketAddr, n: usize, at_s: f64) -> FaultReport {
    let mut r = FaultReport::new("burst of new connections", at_s);
    let start = Instant::now();
    let per = n.div_ceil(16);
    let threads: Vec<_> = (0..16)
        .map(|_| {
            std::thread::spawn(move || {
                // Open them all first, then ask: the proxy sees `per` connections at once.
                let conns: Vec<_> = (0..per)
                    .map(|_| connect(addr, Duration::from_secs(10)))
                    .collect();
                conns
                    .into_iter()
                    .map(|c| c.and_then(|mut c| request(&mut c, "/burst", true)))
                    .map(|o| match o {
                        Ok(s) => status_str(s),
                        Err(_) => "connection error",
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        for kind in t.join().unwrap_or_default() {
            r.count(kind);
        }
    }
    r.lasted_s = start.elapsed().as_secs_f64();
    r
}

/// Requests over the proxy's limits: a request head of 1 MiB (hyper's limit is far below).
pub fn oversized(addr: SocketAddr, n: usize, at_s: f64) -> FaultReport {
    let mut r = FaultReport::new("requests over the limits", at_s);
    let start = Instant::now();
    let big = "a".repeat(1 << 20);
    for _ in 0..n {
        let o = connect(addr, Duration::from_secs(5)).and_then(|mut c| {
            let head = format!("GET /big HTTP/1.1\r\nhost: soak\r\nx-big: {big}\r\n\r\n");
            // The proxy may answer and close before the whole head is written.
            let _ = c.write_all(head.as_bytes());
            read_response(&mut c)
        });
        r.outcome(&o);
    }
    r.lasted_s = start.elapsed().as_secs_f64();
    r
}

/// Runs a proxy in a child process limited to `nofile` descriptors, in front of `backends`
/// (servers of this process), opens `n` connections to it at once (more than it can accept),
/// closes them, then checks that it serves again and exits cleanly.
///
/// The backends stay out of the child, as a proxy's backends are other processes: backends
/// inside it would take their accepted connections from the same `nofile`, and once every
/// descriptor is a client's or a connection to them, sessions wait for answers the backends
/// cannot accept the connections for, holding their descriptors until the server timeout
/// (30 s). CI saw that once (0 served during the burst, 0 of 20 within 10 s after it).
pub fn fd_exhaustion(
    exe: &std::path::Path,
    nofile: u64,
    n: usize,
    backends: &[SocketAddr],
    at_s: f64,
) -> FaultReport {
    let mut r = FaultReport::new("descriptor exhaustion (child)", at_s);
    let start = Instant::now();
    let child = Command::new(exe)
        .arg("--emfile-child")
        .arg(nofile.to_string())
        .args(backends.iter().map(|b| b.to_string()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            r.failure = Some(format!("could not start the child proxy: {e}"));
            return r;
        }
    };
    let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    let _ = out.read_line(&mut line);
    let Some(addr) = line
        .trim()
        .strip_prefix("ADDR ")
        .and_then(|a| a.parse::<SocketAddr>().ok())
    else {
        r.failure = Some(format!(
            "the child proxy did not say where it listens: {line:?}"
        ));
        let _ = child.kill();
        let _ = child.wait();
        return r;
    };
    // Over the limit: every connection sends its request at once and stays open, so the
    // proxy runs out of descriptors with the rest waiting in its listen queue.
    let mut conns: Vec<TcpStream> = (0..n)
        .filter_map(|_| connect(addr, Duration::from_secs(2)).ok())
        .collect();
    for c in conns.iter_mut() {
        let _ = c.write_all(b"GET /e HTTP/1.1\r\nhost: soak\r\n\r\n");
    }
    std::thread::sleep(Duration::from_secs(1));
    let mut served_during = 0;
    for c in conns.iter_mut() {
        let _ = c.set_read_timeout(Some(Duration::from_millis(5)));
        if read_response(c).is_ok() {
            served_during += 1;
        }
    }
    r.seen.insert(
        "waiting (the proxy out of descriptors)",
        (conns.len() - served_during as usize) as u64,
    );
    drop(conns);
    r.seen.insert("served during the burst", served_during);
    // Closed: it must serve again (its accept loop paused, not died).
    let mut rng = Rng::new(7);
    let mut recovered = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while recovered < 20 && Instant::now() < deadline {
        let o = connect(addr, Duration::from_secs(2))
            .and_then(|mut c| request(&mut c, &format!("/after/{}", rng.below(100)), true));
        match o {
            Ok(200) => recovered += 1,
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    r.seen.insert("served after the burst", recovered);
    if recovered < 20 {
        r.failure = Some(format!(
            "the child proxy served only {recovered} of 20 requests within 10 s after the burst"
        ));
    }
    drop(child.stdin.take()); // EOF: the child stops, drains and exits.
    let status = wait_bounded(&mut child, Duration::from_secs(15));
    match status {
        Some(s) if s.success() => r.count("child exited cleanly"),
        Some(s) => r.failure = Some(format!("the child proxy exited with {s}")),
        None => r.failure = Some("the child proxy did not exit within 15 s".into()),
    }
    r.lasted_s = start.elapsed().as_secs_f64();
    r
}

fn wait_bounded(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
