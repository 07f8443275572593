//! The proxy's configuration: its command line ([`USAGE`]), parsed into a [`Config`] with an
//! error that says which flag was wrong and why.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// The command line's help.
pub const USAGE: &str = "\
usage: proxy [OPTIONS]

A small HAProxy-style HTTP load balancer on pinwheel. With no --backend, two embedded
backends are started so that it works out of the box.

options:
  --listen ADDR            where clients connect (default 127.0.0.1:8080)
  --backend ADDR           a backend HOST:PORT; repeat for more (default: two embedded ones)
  --stats ADDR             where the /stats page is served (default 127.0.0.1:8081)
  --threads N              worker threads, 1 to 64 (default 2)
  --balance POLICY         roundrobin (default) or leastconn
  --connect-timeout TIME   to connect to a backend (default 2s)
  --server-timeout TIME    for a backend's response headers (default 30s)
  --idle-timeout TIME      a client connection with no traffic is closed (default 30s)
  --check-interval TIME    between health checks of each backend (default 2s)
  --self-test              send a few requests through the proxy, print them, and exit
  -h, --help               this help

TIME is a number with a unit: 500ms, 2s, 1m (a bare number is milliseconds).";

/// How a request picks its backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Each request goes to the next backend that is up.
    RoundRobin,
    /// Each request goes to the backend that is up with the fewest requests in flight.
    LeastConn,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Policy::RoundRobin => "roundrobin",
            Policy::LeastConn => "leastconn",
        })
    }
}

/// The proxy's settings, from the command line or built by hand.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where clients connect.
    pub listen: SocketAddr,
    /// The backends; empty means "start two embedded ones".
    pub backends: Vec<SocketAddr>,
    /// Where `/stats` is served; `None` serves no stats page.
    pub stats: Option<SocketAddr>,
    /// Worker threads.
    pub threads: usize,
    /// How requests pick a backend.
    pub balance: Policy,
    /// Limit on connecting to a backend.
    pub connect_timeout: Duration,
    /// Limit on a backend's response headers.
    pub server_timeout: Duration,
    /// A client connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// Time between two health checks of a backend.
    pub check_interval: Duration,
    /// Send a few requests through the proxy, print them and exit.
    pub self_test: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: ([127, 0, 0, 1], 8080).into(),
            backends: Vec::new(),
            stats: Some(([127, 0, 0, 1], 8081).into()),
            threads: 2,
            balance: Policy::RoundRobin,
            connect_timeout: Duration::from_secs(2),
            server_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            check_interval: Duration::from_secs(2),
            self_test: false,
        }
    }
}

/// Why the command line was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum ArgsError {
    /// `--help` was asked for.
    Help,
    /// A flag or its value is wrong; the sentence says which and why.
    Bad(String),
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgsError::Help => f.write_str(USAGE),
            ArgsError::Bad(why) => write!(f, "{why}\n\n{USAGE}"),
        }
    }
}

impl Config {
    /// Parses the command line (without the program name).
    ///
    /// # Errors
    ///
    /// [`ArgsError::Help`] for `-h`/`--help`; [`ArgsError::Bad`] naming the flag and the
    /// problem otherwise.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Config, ArgsError> {
        let mut c = Config::default();
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let mut value = |flag: &str| {
                args.next()
                    .ok_or_else(|| ArgsError::Bad(format!("{flag} needs a value")))
            };
            match flag.as_str() {
                "-h" | "--help" => return Err(ArgsError::Help),
                "--self-test" => c.self_test = true,
                "--listen" => c.listen = parse_addr("--listen", &value("--listen")?)?,
                "--backend" => c
                    .backends
                    .push(parse_addr("--backend", &value("--backend")?)?),
                "--stats" => c.stats = Some(parse_addr("--stats", &value("--stats")?)?),
                "--threads" => {
                    let v = value("--threads")?;
                    c.threads = match v.parse::<usize>() {
                        Ok(n) if (1..=pinwheel::MAX_WORKERS).contains(&n) => n,
                        _ => {
                            return Err(ArgsError::Bad(format!(
                                "--threads {v:?}: expected a number of worker threads from 1 to {}",
                                pinwheel::MAX_WORKERS
                            )));
                        }
                    }
                }
                "--balance" => {
                    c.balance = match value("--balance")?.as_str() {
                        "roundrobin" => Policy::RoundRobin,
                        "leastconn" => Policy::LeastConn,
                        other => {
                            return Err(ArgsError::Bad(format!(
                                "--balance {other:?}: expected roundrobin or leastconn"
                            )));
                        }
                    }
                }
                "--connect-timeout" => {
                    c.connect_timeout = parse_time(&flag, &value(&flag)?)?;
                }
                "--server-timeout" => c.server_timeout = parse_time(&flag, &value(&flag)?)?,
                "--idle-timeout" => c.idle_timeout = parse_time(&flag, &value(&flag)?)?,
                "--check-interval" => c.check_interval = parse_time(&flag, &value(&flag)?)?,
                other => {
                    return Err(ArgsError::Bad(format!("unknown option {other:?}")));
                }
            }
        }
        Ok(c)
    }
}

fn parse_addr(flag: &str, v: &str) -> Result<SocketAddr, ArgsError> {
    let bad = |why: String| {
        ArgsError::Bad(format!(
            "{flag} {v:?}: {why} (expected HOST:PORT, e.g. 127.0.0.1:9000)"
        ))
    };
    if let Ok(a) = v.parse() {
        return Ok(a);
    }
    match v.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| bad("the name resolves to no address".into())),
        Err(e) => Err(bad(e.to_string())),
    }
}

fn parse_time(flag: &str, v: &str) -> Result<Duration, ArgsError> {
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        ArgsError::Bad(format!(
            "{flag} {v:?}: expected a number with a unit, e.g. 500ms or 2s"
        ))
    })?;
    let d = match unit {
        "" | "ms" => Duration::from_millis(n),
        "us" => Duration::from_micros(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        _ => {
            return Err(ArgsError::Bad(format!(
                "{flag} {v:?}: unknown unit {unit:?}; use us, ms, s or m"
            )));
        }
    };
    if d.is_zero() {
        return Err(ArgsError::Bad(format!("{flag} {v:?}: must be above zero")));
    }
    Ok(d)
}
