//! The proxy example's code, end to end over loopback: requests reach both backends, a killed
//! backend is detected and skipped, no backend means 503, an idle client is cut by the idle
//! timeout, `/stats` renders, and bad flags get a clear error.

use std::io::Read;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pinwheel::Runtime;
use pinwheel_examples::proxy::{ArgsError, Config, Proxy, get, start_backend};

/// Bound on every wait: reaching it fails the test instead of hanging it.
const BOUND: Duration = Duration::from_secs(20);

fn runtime(threads: usize) -> Runtime {
    pinwheel::Builder::new()
        .worker_threads(threads)
        .build()
        .unwrap()
}

/// A backend on a runtime of its own, so that dropping the runtime kills it (listener and
/// connections closed).
fn backend(name: &str) -> (Runtime, SocketAddr) {
    let rt = runtime(1);
    let (addr, _server) = rt.block_on(start_backend(name.to_owned())).unwrap();
    (rt, addr)
}

fn config(backends: Vec<SocketAddr>) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        stats: Some("127.0.0.1:0".parse().unwrap()),
        backends,
        check_interval: Duration::from_millis(50),
        connect_timeout: Duration::from_secs(2),
        ..Config::default()
    }
}

/// Waits (boundedly) until `cond` holds.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < BOUND, "waited {BOUND:?} for {what}");
        pinwheel::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn requests_reach_both_backends_and_a_killed_backend_is_skipped() {
    let (rt_a, a) = backend("backend A");
    let (rt_b, b) = backend("backend B");
    let rt = runtime(2);
    rt.block_on(async {
        let proxy = Proxy::start(config(vec![a, b])).await.unwrap();
        let front = proxy.listen_addr();
        assert_eq!(proxy.backends(), vec![(a, true), (b, true)]);

        let mut seen = Vec::new();
        for i in 0..6 {
            let (status, body) = get(front, &format!("/r{i}")).await.unwrap();
            assert_eq!(status, 200, "{body}");
            assert!(body.ends_with(&format!("GET /r{i}\n")), "{body}");
            seen.push(body);
        }
        assert!(seen.iter().any(|b| b.starts_with("hello from backend A")));
        assert!(seen.iter().any(|b| b.starts_with("hello from backend B")));

        // Kill A: the health checks (or the first refused connect) mark it down, and every
        // request goes to B.
        drop(rt_a);
        wait_until("backend A to be marked down", || {
            proxy.backends() == vec![(a, false), (b, true)]
        })
        .await;
        for i in 0..4 {
            let (status, body) = get(front, &format!("/after{i}")).await.unwrap();
            assert_eq!(status, 200);
            assert!(body.starts_with("hello from backend B"), "{body}");
        }
        let page = proxy.stats_page().await;
        assert!(page.contains("DOWN"), "{page}");

        // Kill B too: no backend is up, so the proxy answers 503 itself.
        drop(rt_b);
        wait_until("backend B to be marked down", || {
            proxy.backends() == vec![(a, false), (b, false)]
        })
        .await;
        let (status, body) = get(front, "/none").await.unwrap();
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("no backend is up"), "{body}");

        proxy.stop();
        assert!(proxy.drain(BOUND).await, "sessions did not drain");
    });
}

#[test]
fn an_idle_client_is_cut_by_the_idle_timeout() {
    let (_rt_a, a) = backend("backend A");
    let rt = runtime(2);
    let idle = Duration::from_millis(200);
    let mut c = config(vec![a]);
    c.idle_timeout = idle;
    // The proxy runs on the runtime's workers while this thread plays the idle client.
    let proxy = rt.block_on(Proxy::start(c)).unwrap();
    let front = proxy.listen_addr();
    let start = Instant::now();
    let mut client = std::net::TcpStream::connect(front).unwrap();
    client.set_read_timeout(Some(BOUND)).unwrap();
    let mut buf = [0u8; 512];
    // Silence from the client: the proxy closes the connection (perhaps with a 408 first).
    loop {
        match client.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the idle client was not cut within {BOUND:?}: {e}"),
        }
    }
    assert!(
        start.elapsed() >= idle,
        "cut after {:?}, before the idle timeout",
        start.elapsed()
    );
    rt.block_on(async {
        proxy.stop();
        assert!(proxy.drain(BOUND).await, "sessions did not drain");
    });
}

#[test]
fn stats_page_is_served_over_http() {
    let (_rt_a, a) = backend("backend A");
    let rt = runtime(2);
    rt.block_on(async {
        let proxy = Proxy::start(config(vec![a])).await.unwrap();
        let (status, _) = get(proxy.listen_addr(), "/x").await.unwrap();
        assert_eq!(status, 200);
        let stats = proxy.stats_addr().unwrap();
        let (status, page) = get(stats, "/stats").await.unwrap();
        assert_eq!(status, 200);
        for part in ["backends", "UP", "per thread", "runtime activity", "polled"] {
            assert!(page.contains(part), "no {part:?} in\n{page}");
        }
        // Two worker rows in each per-thread table.
        assert!(
            page.lines().any(|l| l.trim_start().starts_with("1 ")),
            "{page}"
        );
        let (status, tasks) = get(stats, "/tasks").await.unwrap();
        assert_eq!(status, 200);
        assert!(
            tasks.contains("live tasks") && tasks.contains("proxy.rs"),
            "{tasks}"
        );
        // Profiling: off until asked for, then the proxy's own tasks show up.
        let (status, off) = get(stats, "/profiling").await.unwrap();
        assert_eq!(status, 200);
        assert!(
            off.contains("profiling: Off") && off.contains("cpu_tot"),
            "{off}"
        );
        let (_, on) = get(stats, "/profiling?on").await.unwrap();
        assert!(on.contains("profiling: On"), "{on}");
        for _ in 0..3 {
            let (status, _) = get(proxy.listen_addr(), "/x").await.unwrap();
            assert_eq!(status, 200);
        }
        let (_, table) = get(stats, "/profiling").await.unwrap();
        assert!(table.contains("proxy.rs"), "{table}");
        let (_, off) = get(stats, "/profiling?off").await.unwrap();
        assert!(off.contains("profiling: Off"), "{off}");
        for part in ["loop_us", "stolen_ms"] {
            assert!(page.contains(part), "no {part:?} in\n{page}");
        }
        let (status, body) = get(stats, "/nope").await.unwrap();
        assert_eq!(status, 404);
        assert!(body.contains("/stats"), "{body}");
        proxy.stop();
    });
}

#[test]
fn a_listen_address_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let rt = runtime(1);
    let (_rt_a, a) = backend("backend A");
    let err = rt
        .block_on(async {
            let mut c = config(vec![a]);
            c.listen = taken.local_addr().unwrap();
            Proxy::start(c).await
        })
        .expect_err("binding a port in use must fail");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    let msg = err.to_string();
    assert!(msg.contains("--listen"), "{msg}");
}

#[test]
fn bad_flags_get_a_clear_error() {
    let parse = |args: &[&str]| Config::from_args(args.iter().map(|s| s.to_string()));
    let bad = |args: &[&str], needle: &str| match parse(args) {
        Err(ArgsError::Bad(msg)) => assert!(msg.contains(needle), "{args:?}: {msg}"),
        other => panic!("{args:?} was accepted: {other:?}"),
    };
    bad(&["--frobnicate"], "unknown option \"--frobnicate\"");
    bad(&["--threads", "0"], "from 1 to 64");
    bad(&["--threads", "lots"], "from 1 to 64");
    bad(&["--balance", "random"], "roundrobin or leastconn");
    bad(&["--connect-timeout", "0"], "above zero");
    bad(&["--idle-timeout", "5 parsecs"], "unknown unit");
    bad(&["--server-timeout", "soon"], "number with a unit");
    bad(&["--backend", "not an address"], "HOST:PORT");
    bad(&["--listen"], "--listen needs a value");
    assert_eq!(parse(&["--help"]).unwrap_err(), ArgsError::Help);

    let c = parse(&[
        "--listen",
        "127.0.0.1:9000",
        "--backend",
        "127.0.0.1:9001",
        "--backend",
        "127.0.0.1:9002",
        "--threads",
        "4",
        "--balance",
        "leastconn",
        "--idle-timeout",
        "1500ms",
        "--server-timeout",
        "3s",
        "--check-interval",
        "1m",
    ])
    .unwrap();
    assert_eq!(c.listen, "127.0.0.1:9000".parse().unwrap());
    assert_eq!(c.backends.len(), 2);
    assert_eq!(c.threads, 4);
    assert_eq!(c.idle_timeout, Duration::from_millis(1500));
    assert_eq!(c.server_timeout, Duration::from_secs(3));
    assert_eq!(c.check_interval, Duration::from_secs(60));
}

#[test]
fn a_soft_stop_closes_idle_keep_alive_connections() {
    let (_rt_a, a) = backend("backend A");
    let rt = runtime(2);
    rt.block_on(async {
        let mut c = config(vec![a]);
        // Only the soft stop can close the idle connection within the bound.
        c.idle_timeout = Duration::from_secs(600);
        let proxy = Proxy::start(c).await.unwrap();
        let front = proxy.listen_addr();
        // A keep-alive client: one request, then the connection stays open, idle.
        let stream = pinwheel::net::TcpStream::connect(front).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(stream).await.unwrap();
        let conn = pinwheel::spawn(conn);
        let req = hyper::Request::get("/first")
            .header("host", front.to_string())
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        drop(resp);
        proxy.stop();
        assert!(
            proxy.drain(BOUND).await,
            "the idle keep-alive connection was not closed by the soft stop"
        );
        // The client sees its connection end.
        pinwheel::time::timeout(BOUND, conn)
            .await
            .expect("the client connection never ended")
            .unwrap()
            .unwrap();
    });
}

/// Request heads a backend saw, each with the number of the connection it came on.
type Heads = std::sync::Arc<std::sync::Mutex<Vec<(usize, String)>>>;

/// A plain HTTP/1.1 backend on a thread: keeps each request's head with the number of the
/// connection it came on; answers `ok` and keeps each connection open.
fn counting_backend() -> (SocketAddr, Heads) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let h = heads.clone();
    std::thread::spawn(move || {
        for (conn, s) in listener.incoming().enumerate() {
            let Ok(mut s) = s else { return };
            let h = h.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head: Vec<u8> = buf.drain(..end + 4).collect();
                        h.lock()
                            .unwrap()
                            .push((conn, String::from_utf8_lossy(&head).to_lowercase()));
                        if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                            .is_err()
                        {
                            return;
                        }
                    }
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    (addr, heads)
}

/// Clients that open a connection per request (`Connection: close`) share the thread's
/// pooled backend connection: the backend sees all their requests on one connection, and
/// never the clients' hop-by-hop headers.
#[test]
fn connection_per_request_clients_reuse_the_pooled_backend_connection() {
    use std::io::Write;
    let (backend, heads) = counting_backend();
    let rt = runtime(1);
    rt.block_on(async {
        let proxy = Proxy::start(Config {
            // No purge round during the test.
            check_interval: Duration::from_secs(3600),
            ..config(vec![backend])
        })
        .await
        .unwrap();
        let front = proxy.listen_addr();
        for i in 0..10 {
            let answer = pinwheel::spawn_blocking(move || {
                let mut c = std::net::TcpStream::connect(front).unwrap();
                write!(
                    c,
                    "GET /r{i} HTTP/1.1\r\nhost: x\r\nconnection: close, x-hop\r\nx-hop: 1\r\nkeep-alive: timeout=5\r\n\r\n"
                )
                .unwrap();
                let mut answer = String::new();
                // The proxy closes the client's connection after the response.
                c.read_to_string(&mut answer).unwrap();
                answer
            })
            .await
            .unwrap();
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            assert!(answer.ends_with("ok"), "{answer}");
        }
        let heads = heads.lock().unwrap().clone();
        assert_eq!(heads.len(), 10, "{heads:?}");
        let conns: std::collections::BTreeSet<usize> = heads.iter().map(|(c, _)| *c).collect();
        assert_eq!(
            conns.len(),
            1,
            "ten requests of ten client connections took backend connections {conns:?}"
        );
        for (_, h) in &heads {
            assert!(!h.contains("connection:"), "a hop-by-hop header was passed on: {h}");
            assert!(!h.contains("keep-alive:"), "a hop-by-hop header was passed on: {h}");
            assert!(!h.contains("x-hop:"), "a header named by Connection was passed on: {h}");
            assert!(h.contains("x-forwarded-for: 127.0.0.1"), "{h}");
        }
        proxy.stop();
        assert!(proxy.drain(BOUND).await, "sessions did not drain");
    });
}

/// A client that shuts its write side down right after its request (a half-close) still gets
/// the answer: the proxy does not read the client while the request is served (HAProxy's
/// default), so the early end of its stream is not taken for an abort.
#[test]
fn a_client_that_half_closes_after_its_request_gets_the_answer() {
    use std::io::Write;
    let (_b, backend) = backend("half");
    let rt = runtime(1);
    rt.block_on(async {
        let proxy = Proxy::start(config(vec![backend])).await.unwrap();
        let front = proxy.listen_addr();
        let answer = pinwheel::spawn_blocking(move || {
            let mut c = std::net::TcpStream::connect(front).unwrap();
            c.write_all(b"GET /half HTTP/1.1\r\nhost: x\r\n\r\n")
                .unwrap();
            c.shutdown(std::net::Shutdown::Write).unwrap();
            let mut answer = String::new();
            let _ = c.read_to_string(&mut answer);
            answer
        })
        .await
        .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
        assert!(answer.contains("hello from half"), "{answer:?}");
        proxy.stop();
        assert!(proxy.drain(BOUND).await, "sessions did not drain");
    });
}
