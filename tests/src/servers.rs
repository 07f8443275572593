//! Real servers for the database tests: PostgreSQL and Redis from Debian's packages, started
//! in temporary directories on free loopback ports and stopped (and their directories
//! removed) when dropped, also when a test fails. A test whose server is missing is skipped
//! with a message naming the package to install (`.ci/run` installs both).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound, then released for the server to bind).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh temporary directory.
fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "pinwheel-{what}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Waits until something accepts TCP connections on `port`, or panics naming `what`.
fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before accepting connections: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not accept connections on 127.0.0.1:{port} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether this process runs as root (PostgreSQL refuses to run as root: it runs as the
/// `postgres` user then).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// The directory of PostgreSQL's server programs, if installed.
fn pg_bin() -> Option<PathBuf> {
    let base = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<_> = std::fs::read_dir(base)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("postgres").exists() && p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// A number `id` prints for the `postgres` user (`-u` or `-g`).
fn pg_id(flag: &str) -> u32 {
    let out = Command::new("id")
        .args([flag, "postgres"])
        .output()
        .expect("run id");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("PostgreSQL refuses to run as root, and there is no postgres user to run it as")
}

/// A command run as the `postgres` user when this process is root (set in the child itself,
/// so the server is the child: killing it stops the server).
fn as_pg_user(program: &Path) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(program);
    if is_root() {
        c.uid(pg_id("-u")).gid(pg_id("-g"));
    }
    c
}

/// Sends `signal` (a name for kill(1)) to `child`.
fn signal(child: &Child, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status();
}

/// Why PostgreSQL tests or benchmark rows cannot run here (its server is not installed), or
/// `None`.
pub fn postgres_missing() -> Option<&'static str> {
    pg_bin().is_none().then_some(
        "PostgreSQL's server is not installed (Debian package postgresql; .ci/run installs it)",
    )
}

/// Why Redis tests or benchmark rows cannot run here, or `None`.
pub fn redis_missing() -> Option<&'static str> {
    redis_program().is_none().then_some(
        "redis-server is not installed (Debian package redis-server; .ci/run installs it)",
    )
}

/// The redis-server program, if installed.
fn redis_program() -> Option<&'static Path> {
    ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
}

/// The password of the `pinwheel` role of the test clusters.
pub const PG_PASSWORD: &str = "wheel-secret";

/// A PostgreSQL cluster of its own: `initdb` in a temporary directory, a server on a free
/// loopback port with password (scram) authentication for user `pinwheel`, taking logins
/// when `start` returns.
#[derive(Debug)]
pub struct Postgres {
    /// The loopback port it listens on.
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Postgres {
    /// Starts one; `None` (with a message) when PostgreSQL is not installed.
    pub fn start() -> Option<Postgres> {
        let Some(bin) = pg_bin() else {
            eprintln!("skipped: {}", postgres_missing().unwrap_or_default());
            return None;
        };
        let dir = temp_dir("pg");
        let data = dir.join("data");
        let pwfile = dir.join("pw");
        std::fs::write(&pwfile, PG_PASSWORD).unwrap();
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown of {dir:?} to postgres failed");
        }
        let out = as_pg_user(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "pinwheel", "--auth=scram-sha-256", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let mut child = as_pg_user(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.display()))
            .args(["-c", "fsync=off", "-c", "max_connections=64"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        wait_for_port(port, "postgres", &mut child);
        // The port accepts before the server takes logins ("the database system is starting
        // up"): wait for `pg_isready` to say it accepts them, so clients connect at once.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !Command::new(bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(
                Instant::now() < deadline,
                "postgres on 127.0.0.1:{port} did not take logins within 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Postgres {
            port,
            dir,
            child: Some(child),
        })
    }

    /// The connection string for user `pinwheel` (with `password`).
    pub fn url_with(&self, password: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=pinwheel password={password} dbname=postgres connect_timeout=10",
            self.port
        )
    }

    /// The connection string with the right password.
    pub fn url(&self) -> String {
        self.url_with(PG_PASSWORD)
    }

    /// Stops the server at once (PostgreSQL's immediate shutdown: it and its backends go
    /// without closing their sessions cleanly, a dropped server mid-query).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(&c, "QUIT");
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis server of its own on a free loopback port, no persistence.
#[derive(Debug)]
pub struct Redis {
    /// The loopback port it listens on.
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Redis {
    /// Starts one; `None` (with a message) when redis-server is not installed.
    pub fn start() -> Option<Redis> {
        let Some(program) = redis_program() else {
            eprintln!("skipped: {}", redis_missing().unwrap_or_default());
            return None;
        };
        let dir = temp_dir("redis");
        let port = free_port();
        let mut child = Command::new(program)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        wait_for_port(port, "redis-server", &mut child);
        Some(Redis {
            port,
            dir,
            child: Some(child),
        })
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server now.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
