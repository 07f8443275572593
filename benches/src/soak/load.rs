//! The soak's healthy clients: std threads with blocking sockets (nothing shared with the
//! runtime under test), a minimal HTTP/1.1 client, a fixed request rate, keep-alive and new
//! connections mixed, and per-second statistics.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A small deterministic generator (xorshift64*), so a seed reproduces a run's choices.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// What happened to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// A response with this status.
    Status(u16),
    /// The connection failed or closed before a whole response came (or a read timed out).
    ConnError,
}

/// Latency buckets: eight per power of two of microseconds (about 9% wide), up to 2^27 µs.
const BUCKETS: usize = 8 * 27;

fn bucket_of(us: u64) -> usize {
    if us < 8 {
        return us as usize;
    }
    let log = 63 - us.leading_zeros() as usize; // >= 3
    let mantissa = ((us >> (log - 3)) & 7) as usize;
    (8 * (log - 2) + mantissa).min(BUCKETS - 1)
}

/// The upper edge of bucket `b`, in µs.
fn bucket_top(b: usize) -> u64 {
    if b < 8 {
        return b as u64 + 1;
    }
    let log = b / 8 + 2;
    let mantissa = (b % 8) as u64;
    (8 + mantissa + 1) << (log - 3)
}

/// One second of the run, as the clients and the sampler saw it. Fixed size, and the whole
/// timeline is allocated before the run: recording it does not grow the memory the soak
/// checks.
#[derive(Clone, Debug)]
pub struct Second {
    /// Latencies of the healthy clients' requests that completed this second, bucketed.
    latency: [u32; BUCKETS],
    /// Their outcomes: 2xx, 500, 502, 503, 504, other 5xx, anything else, connection error.
    outcomes: [u32; 8],
    /// Resident memory at the end of the second, in KiB.
    pub rss_kib: u64,
    /// Open file descriptors at the end of the second.
    pub fds: u64,
    /// Live heap bytes at the end of the second (with the soak's counting allocator).
    pub heap: u64,
}

impl Default for Second {
    fn default() -> Self {
        Second {
            latency: [0; BUCKETS],
            outcomes: [0; 8],
            rss_kib: 0,
            fds: 0,
            heap: 0,
        }
    }
}

const OUTCOME_KINDS: [Outcome; 8] = [
    Outcome::Status(200),
    Outcome::Status(500),
    Outcome::Status(502),
    Outcome::Status(503),
    Outcome::Status(504),
    Outcome::Status(599),
    Outcome::Status(0),
    Outcome::ConnError,
];

fn outcome_index(o: Outcome) -> usize {
    match o {
        Outcome::Status(200..=299) => 0,
        Outcome::Status(500) => 1,
        Outcome::Status(502) => 2,
        Outcome::Status(503) => 3,
        Outcome::Status(504) => 4,
        Outcome::Status(501..=599) => 5,
        Outcome::Status(_) => 6,
        Outcome::ConnError => 7,
    }
}

impl Second {
    /// Requests completed this second.
    pub fn requests(&self) -> u64 {
        self.outcomes.iter().map(|&n| u64::from(n)).sum()
    }

    /// This second's outcomes with their counts (2xx as 200, other 5xx as 599, any other
    /// status as 0).
    pub fn outcomes(&self) -> impl Iterator<Item = (Outcome, u64)> + '_ {
        OUTCOME_KINDS
            .iter()
            .zip(self.outcomes.iter())
            .filter(|(_, n)| **n > 0)
            .map(|(o, n)| (*o, u64::from(*n)))
    }

    /// The 99th percentile latency of the second, in ms (0 when no request completed).
    pub fn p99_ms(&self) -> f64 {
        percentile(std::slice::from_ref(self), 0.99) as f64 / 1e3
    }
}

/// The `q` quantile of the latencies of `seconds` together, in µs (the upper edge of its
/// bucket: about 9% high at most); 0 when there are none.
pub fn percentile(seconds: &[Second], q: f64) -> u64 {
    let mut all = [0u64; BUCKETS];
    for s in seconds {
        for (a, n) in all.iter_mut().zip(s.latency.iter()) {
            *a += u64::from(*n);
        }
    }
    let total: u64 = all.iter().sum();
    if total == 0 {
        return 0;
    }
    let want = ((total as f64 * q).ceil() as u64).max(1);
    let mut seen = 0;
    for (b, n) in all.iter().enumerate() {
        seen += n;
        if seen >= want {
            return bucket_top(b);
        }
    }
    bucket_top(BUCKETS - 1)
}

/// Per-second records, shared by the clients and the sampler.
#[derive(Debug)]
pub struct Timeline {
    start: Instant,
    seconds: Mutex<Vec<Second>>,
}

impl Timeline {
    /// A timeline starting now with room for `seconds` (later seconds are dropped).
    pub fn new(seconds: usize) -> Timeline {
        Timeline {
            start: Instant::now(),
            seconds: Mutex::new(vec![Second::default(); seconds]),
        }
    }

    /// Seconds since the start.
    pub fn now_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn with_second(&self, at: Instant, f: impl FnOnce(&mut Second)) {
        let i = at.saturating_duration_since(self.start).as_secs() as usize;
        let mut s = self.seconds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(second) = s.get_mut(i) {
            f(second);
        }
    }

    /// Records a healthy client's request that ended now.
    pub fn record(&self, latency: Duration, outcome: Outcome) {
        self.with_second(Instant::now(), |s| {
            s.latency[bucket_of(latency.as_micros() as u64)] += 1;
            s.outcomes[outcome_index(outcome)] += 1;
        });
    }

    /// Records the process's memory and descriptors now.
    pub fn sample(&self, rss_kib: u64, fds: u64, heap: u64) {
        self.with_second(Instant::now(), |s| {
            s.rss_kib = rss_kib;
            s.fds = fds;
            s.heap = heap;
        });
    }

    /// A copy of the seconds up to now.
    pub fn seconds(&self) -> Vec<Second> {
        let upto = self.start.elapsed().as_secs() as usize + 1;
        let s = self.seconds.lock().unwrap_or_else(|e| e.into_inner());
        s[..upto.min(s.len())].to_vec()
    }
}

/// Sends `GET path` on `conn` and reads one response (headers and a `Content-Length` body);
/// returns its status. `close` asks the server to close after it.
pub fn request(conn: &mut TcpStream, path: &str, close: bool) -> io::Result<u16> {
    let req = format!(
        "GET {path} HTTP/1.1\r\nhost: soak\r\nconnection: {}\r\n\r\n",
        if close { "close" } else { "keep-alive" }
    );
    conn.write_all(req.as_bytes())?;
    read_response(conn)
}

/// Reads one HTTP/1.1 response (see [`crate::net::read_http1_response`]) and returns its
/// status.
pub fn read_response(conn: &mut TcpStream) -> io::Result<u16> {
    crate::net::read_http1_response(conn).map(|(status, _)| status)
}

/// Connects with a read/write timeout, so a lost response shows as an error, not a hang.
pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let c = TcpStream::connect_timeout(&addr, timeout)?;
    c.set_read_timeout(Some(timeout))?;
    c.set_write_timeout(Some(timeout))?;
    c.set_nodelay(true)?;
    Ok(c)
}

/// Runs `clients` threads sending `rate` requests per second in all to `addr` until `stop`;
/// each request reuses the client's keep-alive connection, or (one in `new_every`) opens a new
/// one. Every request's latency and outcome go to `timeline`.
pub fn run_clients(
    addr: SocketAddr,
    clients: usize,
    rate: u64,
    new_every: u64,
    seed: u64,
    timeline: Arc<Timeline>,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    let period = Duration::from_secs_f64(clients as f64 / rate.max(1) as f64);
    (0..clients)
        .map(|c| {
            let (timeline, stop) = (timeline.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("soak-client-{c}"))
                .spawn(move || {
                    let mut rng = Rng::new(seed ^ (c as u64 + 1));
                    let mut conn: Option<TcpStream> = None;
                    // Spread the clients' sends over the period.
                    let mut next = Instant::now() + period.mul_f64(c as f64 / clients as f64);
                    while !stop.load(Ordering::Relaxed) {
                        let now = Instant::now();
                        if next > now {
                            std::thread::sleep(next - now);
                        }
                        next += period;
                        let sent = Instant::now();
                        let mut reused = true;
                        if conn.is_none() || rng.below(new_every) == 0 {
                            conn = connect(addr, Duration::from_secs(5)).ok();
                            reused = false;
                        }
                        let mut result = conn.as_mut().map(|c| request(c, "/soak", false));
                        if reused && matches!(result, Some(Err(_))) {
                            // A kept-alive connection the server closed meanwhile: what any
                            // HTTP client does, retry once on a new one.
                            conn = connect(addr, Duration::from_secs(5)).ok();
                            result = conn.as_mut().map(|c| request(c, "/soak", false));
                        }
                        let outcome = match result {
                            Some(Ok(status)) => Outcome::Status(status),
                            _ => {
                                conn = None;
                                Outcome::ConnError
                            }
                        };
                        timeline.record(sent.elapsed(), outcome);
                    }
                })
                .expect("soak: could not start a client thread")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_bound_their_values_within_an_eighth_of_an_octave() {
        for v in (0..100_000u64).chain([1 << 20, (1 << 26) + 12345]) {
            let top = bucket_top(bucket_of(v));
            assert!(top > v, "bucket of {v} ends at {top}");
            assert!(top <= v + v / 8 + 1, "bucket of {v} too wide: {top}");
        }
    }

    #[test]
    fn percentile_of_known_latencies() {
        let t = Timeline::new(2);
        for us in 1..=100u64 {
            t.record(Duration::from_micros(us * 100), Outcome::Status(200));
        }
        let s = t.seconds();
        let p99 = percentile(&s, 0.99);
        assert!((9_900..=11_200).contains(&p99), "{p99}");
        assert_eq!(s[0].requests(), 100);
    }
}
