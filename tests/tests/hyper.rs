//! hyper 1.x on pinwheel: HTTP/1.1 (keep-alive, `header_read_timeout` on pinwheel's timer) and
//! HTTP/2 (streams on pinwheel's executor), served through `net::serve` and queried with
//! hyper's own client over loopback, plus `curl` where it is installed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use pinwheel::net::{Server, TcpListener, TcpStream};

/// Bound on every wait in these tests: reaching it fails the test instead of hanging it.
const BOUND: Duration = Duration::from_secs(20);

async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = format!("hello {} from {:?}\n", req.uri().path(), req.version());
    Ok(Response::new(Full::new(Bytes::from(body))))
}

#[derive(Clone, Copy)]
enum Proto {
    H1 { header_read_timeout: Duration },
    H2,
}

/// Serves `hello` on a loopback port; returns the address, the server handle and the count of
/// accepted connections.
async fn start(proto: Proto) -> (SocketAddr, Server, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let counted = conns.clone();
    let server = Server::new();
    let serving = server.clone();
    let factory = move |stream: TcpStream, _peer| {
        counted.fetch_add(1, Ordering::SeqCst);
        async move {
            let svc = hyper::service::service_fn(hello);
            let _ = match proto {
                Proto::H1 {
                    header_read_timeout,
                } => {
                    hyper::server::conn::http1::Builder::new()
                        .timer(pinwheel::hyper::Timer)
                        .header_read_timeout(header_read_timeout)
                        .keep_alive(true)
                        .serve_connection(stream, svc)
                        .await
                }
                Proto::H2 => {
                    hyper::server::conn::http2::Builder::new(pinwheel::hyper::LocalExecutor)
                        .timer(pinwheel::hyper::Timer)
                        .serve_connection(stream, svc)
                        .await
                }
            };
        }
    };
    drop(pinwheel::spawn(async move {
        serving.serve(listener, factory).await
    }));
    (addr, server, conns)
}

async fn body_text(resp: Response<Incoming>) -> String {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn get(addr: SocketAddr, path: &str) -> Request<Empty<Bytes>> {
    Request::get(format!("http://{addr}{path}"))
        .header("host", addr.to_string())
        .body(Empty::new())
        .unwrap()
}

#[pinwheel::test]
async fn http1_keep_alive_through_hypers_client() {
    let (addr, server, conns) = start(Proto::H1 {
        header_read_timeout: Duration::from_secs(30),
    })
    .await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(stream).await.unwrap();
    let driver = pinwheel::spawn(conn);
    for i in 0..5 {
        // hyper's http1 sender takes the next request once the previous one is done.
        pinwheel::time::timeout(BOUND, sender.ready())
            .await
            .expect("the connection never became ready")
            .unwrap();
        let resp =
            pinwheel::time::timeout(BOUND, sender.send_request(get(addr, &format!("/r{i}"))))
                .await
                .expect("a request took longer than the bound")
                .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            body_text(resp).await,
            format!("hello /r{i} from HTTP/1.1\n")
        );
    }
    assert_eq!(
        conns.load(Ordering::SeqCst),
        1,
        "keep-alive reuses one connection"
    );
    drop(sender);
    driver.await.unwrap().unwrap();
    server.stop();
}

#[pinwheel::test]
async fn http1_header_read_timeout_runs_on_pinwheels_timer() {
    let timeout = Duration::from_millis(200);
    let (addr, server, _) = start(Proto::H1 {
        header_read_timeout: timeout,
    })
    .await;
    // Taken before connecting: the server may accept (and start its timer) before `connect`
    // returns here.
    let start = Instant::now();
    let stream = TcpStream::connect(addr).await.unwrap();
    // Half a request line, then silence: the server must cut the connection.
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let closed = pinwheel::time::timeout(BOUND, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {} // hyper may answer 408 first
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server never cut the slow client");
    assert!(
        start.elapsed() >= timeout,
        "cut after {:?}, before the {timeout:?} header read timeout",
        start.elapsed()
    );
    server.stop();
}

#[pinwheel::test]
async fn http2_streams_on_pinwheels_executor() {
    let (addr, server, conns) = start(Proto::H2).await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http2::Builder::new(pinwheel::hyper::Executor)
        .timer(pinwheel::hyper::Timer)
        .handshake(stream)
        .await
        .unwrap();
    let driver = pinwheel::spawn(conn);
    // Concurrent requests multiplexed on one connection.
    let requests: Vec<_> = (0..8)
        .map(|i| {
            let mut sender = sender.clone();
            pinwheel::spawn(async move {
                let resp = sender
                    .send_request(get(addr, &format!("/s{i}")))
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
                body_text(resp).await
            })
        })
        .collect();
    for (i, r) in requests.into_iter().enumerate() {
        let text = pinwheel::time::timeout(BOUND, r)
            .await
            .expect("a request took longer than the bound")
            .unwrap();
        assert_eq!(text, format!("hello /s{i} from HTTP/2.0\n"));
    }
    assert_eq!(conns.load(Ordering::SeqCst), 1);
    drop(sender);
    driver.await.unwrap().unwrap();
    server.stop();
}

#[test]
fn curl_where_installed() {
    let Ok(out) = std::process::Command::new("curl").arg("--version").output() else {
        eprintln!("curl is not installed: skipping the curl half of the hyper tests");
        return;
    };
    let has_http2 = String::from_utf8_lossy(&out.stdout).contains("HTTP2");
    let rt = pinwheel::Builder::new().worker_threads(2).build().unwrap();
    let h1 = rt.block_on(start(Proto::H1 {
        header_read_timeout: Duration::from_secs(30),
    }));
    let h2 = rt.block_on(start(Proto::H2));
    let curl = |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "curl {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let url1 = format!("http://{}/one", h1.0);
    let url2 = format!("http://{}/two", h1.0);
    // Two URLs in one curl run share a keep-alive connection.
    assert_eq!(
        curl(&["--http1.1", &url1, &url2]),
        "hello /one from HTTP/1.1\nhello /two from HTTP/1.1\n"
    );
    assert_eq!(h1.2.load(Ordering::SeqCst), 1);
    if has_http2 {
        let url = format!("http://{}/h2", h2.0);
        assert_eq!(
            curl(&["--http2-prior-knowledge", &url]),
            "hello /h2 from HTTP/2.0\n"
        );
    }
    h1.1.stop();
    h2.1.stop();
}

#[pinwheel::test]
async fn timer_reset_moves_the_same_sleep() {
    use hyper::rt::Timer as _;
    let timer = pinwheel::hyper::Timer;
    let mut sleep = timer.sleep(Duration::from_secs(3600));
    let before: *const () = (&*sleep as *const dyn hyper::rt::Sleep).cast();
    let start = Instant::now();
    timer.reset(&mut sleep, start + Duration::from_millis(20));
    let after: *const () = (&*sleep as *const dyn hyper::rt::Sleep).cast();
    assert_eq!(
        before, after,
        "reset re-boxed the sleep instead of moving it"
    );
    pinwheel::time::timeout(BOUND, sleep)
        .await
        .expect("the reset sleep never fired");
    assert!(start.elapsed() >= Duration::from_millis(20));
}

#[test]
#[should_panic(expected = "pinwheel::time::sleep must be called from inside a pinwheel runtime")]
fn the_hyper_timer_outside_a_runtime_panics_naming_the_rule() {
    use hyper::rt::Timer as _;
    drop(pinwheel::hyper::Timer.sleep(Duration::from_secs(1)));
}

#[test]
#[should_panic(expected = "spawn_local")]
fn the_local_executor_off_the_workers_panics_naming_the_rule() {
    use hyper::rt::Executor as _;
    pinwheel::hyper::LocalExecutor.execute(async {});
}
