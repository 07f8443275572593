//! The Rust network ecosystem on pinwheel: each crate of the README's compatibility table has
//! a test in `tests/` here (loopback only), kept out of the runtime's own packages so that
//! their build stays light. This library holds what the tests, the `axum` example and the
//! benchmarks share.

use std::io;

use axum::Json;
use axum::Router;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

/// What `POST /greet` takes.
#[derive(Debug, Deserialize, Serialize)]
pub struct Greet {
    /// Who to greet.
    pub name: String,
}

/// What `POST /greet` answers.
#[derive(Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Greeting {
    /// The greeting.
    pub greeting: String,
    /// The pinwheel worker that ran the session.
    pub worker: Option<usize>,
}

/// The axum app of the test and the example: `GET /` says hello, `GET /worker` names the
/// worker that runs the session, `POST /greet` takes and gives JSON.
pub fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "hello from axum on pinwheel\n" }))
        .route(
            "/worker",
            get(|| async { format!("{:?}\n", pinwheel::current_worker()) }),
        )
        .route(
            "/greet",
            post(|Json(g): Json<Greet>| async move {
                Json(Greeting {
                    greeting: format!("hello, {}", g.name),
                    worker: pinwheel::current_worker(),
                })
            }),
        )
}

/// Serves `router` on `listener` with `net::serve` under `server` (which can stop and drain
/// it): each connection is an HTTP/1.1 session pinned to one worker, the router called through
/// hyper-util's `TowerToHyperService`, on pinwheel's own hyper I/O and timer.
///
/// # Errors
///
/// The listener's error that ended serving.
pub async fn serve_router(
    server: &pinwheel::net::Server,
    listener: pinwheel::net::TcpListener,
    router: Router,
) -> io::Result<()> {
    server
        .serve(listener, move |stream, _peer| {
            let service = hyper_util::service::TowerToHyperService::new(router.clone());
            async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(pinwheel::hyper::Timer)
                    .serve_connection(stream, service)
                    .await;
            }
        })
        .await
}

/// One HTTP/1.1 request over a new pinwheel connection with hyper's client: status and body.
///
/// # Errors
///
/// Connection or protocol errors, as `io::Error`.
pub async fn http_request(
    addr: std::net::SocketAddr,
    req: hyper::Request<http_body_util::Full<bytes::Bytes>>,
) -> io::Result<(hyper::StatusCode, bytes::Bytes)> {
    use http_body_util::BodyExt;
    let stream = pinwheel::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(stream)
        .await
        .map_err(io::Error::other)?;
    drop(pinwheel::spawn(conn));
    let resp = sender.send_request(req).await.map_err(io::Error::other)?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(io::Error::other)?
        .to_bytes();
    Ok((status, body))
}

/// Starts [`app`] on a loopback port with [`serve_router`] (from inside a runtime); returns
/// its address.
///
/// # Panics
///
/// When no loopback port can be bound.
pub async fn start_app() -> std::net::SocketAddr {
    let listener = pinwheel::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("the listener's address");
    drop(pinwheel::spawn(async move {
        serve_router(&pinwheel::net::Server::new(), listener, app()).await
    }));
    addr
}

/// Connects to a tokio-console server (console-subscriber's gRPC API) at `addr`, trying again
/// every 50 ms for up to 30 s while it starts (it runs on a thread of its own), and subscribes
/// to its stream of updates. Call it inside [`pinwheel::compat::compat`]: the client needs
/// tokio's reactor.
///
/// # Errors
///
/// When the server does not answer within 30 s, or refuses the subscription.
pub async fn console_updates(
    addr: std::net::SocketAddr,
) -> io::Result<tonic::Streaming<console_api::instrument::Update>> {
    use console_api::instrument::InstrumentRequest;
    use console_api::instrument::instrument_client::InstrumentClient;
    let mut tries = 0;
    let mut client = loop {
        match InstrumentClient::connect(format!("http://{addr}")).await {
            Ok(c) => break c,
            Err(_) if tries < 600 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => {
                return Err(io::Error::other(format!(
                    "the console server at {addr} never answered: {e}"
                )));
            }
        }
    };
    client
        .watch_updates(InstrumentRequest {})
        .await
        .map(tonic::Response::into_inner)
        .map_err(io::Error::other)
}

/// A runtime with `workers` workers, each with a tokio context of its own
/// (`Builder::tokio_context`), for the tests of tokio-native crates.
///
/// # Panics
///
/// When the runtime cannot be built.
pub fn rt_with_tokio(workers: usize) -> pinwheel::Runtime {
    pinwheel::Builder::new()
        .worker_threads(workers)
        .tokio_context(true)
        .build()
        .unwrap()
}
