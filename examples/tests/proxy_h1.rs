//! The proxy's HTTP/1.1 forwarding, end to end over loopback, against a plain backend written
//! with std: request bodies by length and by chunks (larger than the proxy's buffers), chunked
//! and close-delimited responses, pipelined requests, `HEAD`, `Expect: 100-continue`, a
//! pooled connection the backend closed, a backend too slow (504), and requests the proxy
//! refuses (400, 431).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pinwheel::Runtime;
use pinwheel_examples::proxy::{Config, Proxy};
use pinwheel_tests::wait_until;

/// Bound on every wait: reaching it fails the test instead of hanging it.
const BOUND: Duration = Duration::from_secs(20);

/// Where the head ends in `buf` (after its empty line), if it is all there.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// The value of header `name` in `head` (lowercase), if any.
fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads from `s` into `buf` until `done(buf)` says how much is wanted; panics at the end of
/// the stream before that.
fn read_until(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    done: impl Fn(&[u8]) -> Option<usize>,
) -> usize {
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(n) = done(buf) {
            return n;
        }
        match s.read(&mut chunk) {
            Ok(0) => panic!("the stream ended early: {:?}", String::from_utf8_lossy(buf)),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("read failed: {e}: {:?}", String::from_utf8_lossy(buf)),
        }
    }
}

/// The end of a chunked body at the front of `b` (its raw bytes), if it is all there.
fn chunked_end(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        let line = b[i..].windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&b[i..i + line]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        i += line + 2;
        if size == 0 {
            // No trailers in these tests: the final empty line.
            return (b.len() >= i + 2).then_some(i + 2);
        }
        if b.len() < i + size + 2 {
            return None;
        }
        i += size + 2;
    }
}

/// Decodes a whole chunked body.
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&b[..line]).unwrap(), 16).unwrap();
        b = &b[line + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// One response read from `s` (`buf` keeps what came after it): status, head (lowercase),
/// body (decoded if chunked). `head_request`: the response to a `HEAD` has no body.
fn response(s: &mut TcpStream, buf: &mut Vec<u8>, head_request: bool) -> (u16, String, Vec<u8>) {
    let end = read_until(s, buf, head_end);
    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
    buf.drain(..end);
    let status: u16 = head[9..12].parse().unwrap();
    let body = if head_request || status == 100 {
        Vec::new()
    } else if header(&head, "transfer-encoding") == Some("chunked") {
        let n = read_until(s, buf, chunked_end);
        dechunk(&buf.drain(..n).collect::<Vec<u8>>())
    } else if let Some(len) = header(&head, "content-length") {
        let len: usize = len.parse().unwrap();
        read_until(s, buf, |b| (b.len() >= len).then_some(len));
        buf.drain(..len).collect()
    } else {
        // Until the end of the stream.
        s.read_to_end(buf).unwrap();
        std::mem::take(buf)
    };
    (status, head, body)
}

/// A plain HTTP/1.1 backend on threads, answering by path: `/echo` (the request's body, raw,
/// as it came: chunk framing included), `/chunked` (a chunked body), `/until-close` (a body
/// that ends with the connection), `/then-drop` (`ok`, then the connection closed without a
/// word, as a backend's keep-alive timeout does), `/slow` (after 3 s), `/head-check`
/// (`Content-Length: 5`, no body for a `HEAD`), else the path. Counts its connections.
fn backend() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let count = conns.clone();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Some(end) = head_end(&buf) else {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let body_len = if header(&head, "transfer-encoding").is_some() {
                        loop {
                            if let Some(n) = chunked_end(&buf[end..]) {
                                break n;
                            }
                            match s.read(&mut chunk) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                    } else {
                        header(&head, "content-length").map_or(0, |v| v.parse().unwrap())
                    };
                    while buf.len() < end + body_len {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body: Vec<u8> = buf[end..end + body_len].to_vec();
                    buf.drain(..end + body_len);
                    let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                    let is_head = head.starts_with("head ");
                    let plain = |body: &[u8]| {
                        let mut r =
                            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len())
                                .into_bytes();
                        r.extend_from_slice(body);
                        r
                    };
                    let answer = match path.as_str() {
                        "/echo" => plain(&body),
                        "/chunked" => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n".to_vec(),
                        "/until-close" => {
                            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\nuntil close");
                            return;
                        }
                        "/then-drop" => {
                            let _ = s.write_all(&plain(b"ok"));
                            return;
                        }
                        "/then-408" => {
                            // Then, once that was read, unasked, what some servers send on an
                            // idle connection.
                            if s.write_all(&plain(b"ok")).is_err() {
                                return;
                            }
                            std::thread::sleep(Duration::from_millis(20));
                            b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n".to_vec()
                        }
                        "/slow" => {
                            std::thread::sleep(Duration::from_secs(3));
                            plain(b"slow")
                        }
                        "/head-check" if is_head => {
                            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n".to_vec()
                        }
                        other => plain(other.as_bytes()),
                    };
                    if s.write_all(&answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, conns)
}

/// The backend's count of connections once it has counted the proxy's first health check
/// (made before `Proxy::start` returns): its accept thread counts it when it gets to it, which
/// may be after the client has started (CI under ASan once counted it after the client read
/// the count, and saw one connection too many).
fn after_the_first_check(conns: &AtomicUsize) -> usize {
    wait_until(
        BOUND,
        "the backend to count the proxy's first health check",
        || conns.load(Ordering::SeqCst) >= 1,
    );
    conns.load(Ordering::SeqCst)
}

fn runtime() -> Runtime {
    pinwheel::Builder::new().worker_threads(1).build().unwrap()
}

/// Starts a proxy (one worker) in front of `backend`; runs `client` (blocking std code) on a
/// blocking thread with the proxy's address; stops the proxy.
fn with_proxy(
    backend: SocketAddr,
    server_timeout: Duration,
    client: impl FnOnce(SocketAddr) + Send + 'static,
) {
    let rt = runtime();
    rt.block_on(async {
        let proxy = Proxy::start(Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            stats: None,
            backends: vec![backend],
            check_interval: Duration::from_secs(3600),
            server_timeout,
            ..Config::default()
        })
        .await
        .unwrap();
        let front = proxy.listen_addr();
        pinwheel::spawn_blocking(move || client(front))
            .await
            .unwrap();
        proxy.stop();
        assert!(proxy.drain(BOUND).await, "sessions did not drain");
    });
}

/// A client connection to the proxy, with the bytes read past the last response.
struct Client {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn new(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(BOUND)).unwrap();
        Client { s, buf: Vec::new() }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// The next response (see [`response`]).
    fn response(&mut self, head_request: bool) -> (u16, String, Vec<u8>) {
        response(&mut self.s, &mut self.buf, head_request)
    }

    /// Sends `request` and reads its response.
    fn ask(&mut self, request: &[u8]) -> (u16, String, Vec<u8>) {
        self.send(request);
        self.response(false)
    }
}

/// `GET path` with `Connection: close`, on a new connection.
fn get_and_close(front: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    Client::new(front).ask(request.as_bytes())
}

#[test]
fn request_bodies_by_length_and_by_chunks_reach_the_backend_whole() {
    let (b, _) = backend();
    with_proxy(b, BOUND, |front| {
        let mut c = Client::new(front);
        // Small, with the head in one write.
        let (status, _, body) =
            c.ask(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello");
        assert_eq!((status, &body[..]), (200, &b"hello"[..]));
        // Larger than the proxy's 16 KiB buffers both ways, written in pieces.
        let big: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let head = format!(
            "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
            big.len()
        );
        c.send(head.as_bytes());
        for piece in big.chunks(7_000) {
            c.send(piece);
        }
        let (status, _, body) = c.response(false);
        assert_eq!(status, 200);
        assert!(
            body == big,
            "the 100 kB body came back changed ({} bytes)",
            body.len()
        );
        // Chunked: the backend sees the chunks as the client sent them.
        let chunks = b"4\r\nwiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n";
        c.send(b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n");
        c.send(&chunks[..9]);
        c.send(&chunks[9..]);
        let (status, _, body) = c.response(false);
        assert_eq!((status, &body[..]), (200, &chunks[..]));
        // The connection still serves.
        assert_eq!(
            c.ask(b"GET /after HTTP/1.1\r\nhost: x\r\n\r\n").2,
            b"/after"
        );
    });
}

#[test]
fn chunked_and_close_delimited_responses_reach_the_client() {
    let (b, _) = backend();
    with_proxy(b, BOUND, |front| {
        let mut c = Client::new(front);
        let (status, head, body) = c.ask(b"GET /chunked HTTP/1.1\r\nhost: x\r\n\r\n");
        assert_eq!((status, &body[..]), (200, &b"hello world"[..]), "{head}");
        // A body that ends with the backend's connection: the client's closes after it too.
        let (status, head, body) = c.ask(b"GET /until-close HTTP/1.1\r\nhost: x\r\n\r\n");
        assert_eq!((status, &body[..]), (200, &b"until close"[..]));
        assert_eq!(header(&head, "connection"), Some("close"), "{head}");
    });
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (b, _) = backend();
    with_proxy(b, BOUND, |front| {
        let mut c = Client::new(front);
        c.send(
            b"GET /one HTTP/1.1\r\nhost: x\r\n\r\nGET /two HTTP/1.1\r\nhost: x\r\n\r\nGET /three HTTP/1.1\r\nhost: x\r\n\r\n",
        );
        for path in ["/one", "/two", "/three"] {
            let (status, _, body) = c.response(false);
            assert_eq!((status, &body[..]), (200, path.as_bytes()));
        }
    });
}

/// A request after one that says `Connection: close` is never read: the connection closes
/// with it unread, yet the response to the first comes whole (its last bytes are held for the
/// FIN, and a close with unread bytes would reset the connection and drop them).
#[test]
fn a_response_before_a_close_comes_whole_with_a_request_left_unread() {
    let (b, _) = backend();
    with_proxy(b, BOUND, |front| {
        let mut c = Client::new(front);
        // More than the proxy's buffer takes: bytes stay unread in the kernel.
        let mut bytes = b"GET /last HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec();
        bytes
            .extend_from_slice(b"POST /never HTTP/1.1\r\nhost: x\r\ncontent-length: 49152\r\n\r\n");
        bytes.resize(bytes.len() + 49152, b'x');
        c.send(&bytes);
        let (status, head, body) = c.response(false);
        assert_eq!((status, &body[..]), (200, &b"/last"[..]));
        assert_eq!(header(&head, "connection"), Some("close"));
    });
}

#[test]
fn head_and_expect_100_continue() {
    let (b, _) = backend();
    with_proxy(b, BOUND, |front| {
        let mut c = Client::new(front);
        // The response to a HEAD says a length but has no body: the next response follows.
        c.send(
            b"HEAD /head-check HTTP/1.1\r\nhost: x\r\n\r\nGET /next HTTP/1.1\r\nhost: x\r\n\r\n",
        );
        let (status, head, _) = c.response(true);
        assert_eq!(status, 200);
        assert_eq!(header(&head, "content-length"), Some("5"));
        assert_eq!(c.response(false).2, b"/next");
        // The client waits for `100 Continue` before its body.
        let (status, _, _) = c.ask(
            b"PUT /echo HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 4\r\n\r\n",
        );
        assert_eq!(status, 100);
        let (status, _, body) = c.ask(b"data");
        assert_eq!((status, &body[..]), (200, &b"data"[..]));
    });
}

/// The backend closes a connection after its response without saying so (as a keep-alive
/// timeout does): the pooled connection is found closed by the next request, which goes on
/// a new one; the client sees nothing of it.
#[test]
fn a_pooled_connection_the_backend_closed_is_replaced() {
    let (b, conns) = backend();
    with_proxy(b, BOUND, move |front| {
        let before = after_the_first_check(&conns);
        for path in ["/then-drop", "/then-drop", "/x"] {
            let (status, head, body) = get_and_close(front, path);
            assert_eq!(status, 200, "{path}: {head}");
            assert_eq!(header(&head, "connection"), Some("close"), "{head}");
            assert!(body == b"ok" || body == b"/x", "{body:?}");
            // Give the backend's close time to arrive, so the next request finds it.
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            conns.load(Ordering::SeqCst) - before,
            3,
            "a new backend connection for each request (the pooled one was closed)"
        );
    });
}

/// A backend that sends a response no request asked for on an idle pooled connection: the
/// connection is not used again (the next request does not get that response).
#[test]
fn a_pooled_connection_with_unasked_bytes_is_not_reused() {
    let (b, conns) = backend();
    with_proxy(b, BOUND, move |front| {
        let before = after_the_first_check(&conns);
        for (path, body) in [("/then-408", &b"ok"[..]), ("/next", b"/next")] {
            let (status, head, got) = get_and_close(front, path);
            assert_eq!((status, &got[..]), (200, body), "{path}: {head}");
            // Give the unasked bytes time to arrive.
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(conns.load(Ordering::SeqCst) - before, 2);
    });
}

#[test]
fn a_backend_slower_than_the_server_timeout_gets_504() {
    let (b, _) = backend();
    with_proxy(b, Duration::from_millis(200), |front| {
        let mut c = Client::new(front);
        let (status, _, body) = c.ask(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n");
        assert_eq!(status, 504);
        assert!(
            String::from_utf8_lossy(&body).contains("no response within"),
            "{body:?}"
        );
        // The client's connection still serves.
        assert_eq!(c.ask(b"GET /x HTTP/1.1\r\nhost: x\r\n\r\n").0, 200);
    });
}

#[test]
fn bad_and_oversized_requests_get_400_and_431_and_a_close() {
    let (b, _) = backend();
    with_proxy(b, BOUND, |front| {
        for (request, want) in [
            (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n".to_vec(), 400),
            (
                b"POST / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n".to_vec(),
                400,
            ),
            (
                format!("GET / HTTP/1.1\r\nx-big: {}\r\n\r\n", "a".repeat(20_000)).into_bytes(),
                431,
            ),
        ] {
            let mut c = Client::new(front);
            // The proxy may answer and close before the whole request is written.
            let _ = c.s.write_all(&request);
            let (status, head, body) = c.response(false);
            assert_eq!(status, want, "{head}");
            assert_eq!(header(&head, "connection"), Some("close"), "{head}");
            assert!(!body.is_empty());
            let mut rest = Vec::new();
            let _ = c.s.read_to_end(&mut rest);
        }
    });
}
