//! Ecosystem workloads (issue 12): axum, TLS with tokio-rustls, and the cost of the `compat`
//! bridge, each the same client code against pinwheel and tokio.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::routing::get;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

use crate::net::{ECHO_CONNS, HttpHello, echo_with_tokio_traits, pinwheel_server, tokio_server};
use crate::{Exec, Pinwheel, Tokio, Workload};

/// The router of `axum_hello`: `GET /` answers `hello, world`, as `http_hello` does.
fn hello_router() -> Router {
    Router::new().route("/", get(|| async { "hello, world" }))
}

/// `axum_hello`: the `http_hello` load (64 keep-alive connections, 200 requests each per
/// iteration) against axum: on pinwheel through `net::serve` (pinned sessions) and hyper-util's
/// `TowerToHyperService`; on tokio through `axum::serve`, as its users run it.
#[derive(Debug, Default)]
pub struct AxumHello(HttpHello);

impl Workload<Pinwheel> for AxumHello {
    fn iter(&mut self, rt: &Pinwheel) {
        self.0.run(|| {
            pinwheel_server(rt, |s| async move {
                let service = hyper_util::service::TowerToHyperService::new(hello_router());
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(s, service)
                    .await;
            })
        });
    }
}

impl Workload<Tokio> for AxumHello {
    fn iter(&mut self, rt: &Tokio) {
        self.0.run(|| {
            rt.0.block_on(async {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                tokio::spawn(async move { axum::serve(listener, hello_router()).await });
                addr
            })
        });
    }
}

/// The TLS configurations of `tls_echo`, made once: a self-signed certificate for
/// "localhost" and the client trusting it.
struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    connector: tokio_rustls::TlsConnector,
}

fn tls() -> &'static Tls {
    static TLS: OnceLock<Tls> = OnceLock::new();
    TLS.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert: CertificateDer<'static> = ck.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
        }
    })
}

/// A TLS echo session on any stream with tokio's I/O traits.
async fn tls_echo_session<S>(s: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Ok(tls) = tls().acceptor.accept(s).await {
        echo_with_tokio_traits(tls).await;
    }
}

/// Messages of `tls_echo`.
const TLS_MSG: usize = 1024;
/// Round trips per connection per iteration of `tls_echo`.
const TLS_ROUNDS: usize = 50;

type ClientTls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// `tls_echo`: 64 TLS connections (handshaken once, kept), each doing 50 round trips of 1 KiB
/// per iteration. The client is the same for both servers: one thread running a tokio
/// current-thread runtime with tokio-rustls. The servers: tokio-rustls on pinwheel's
/// `TcpStream` (`tokio-io`) in pinned sessions, and on tokio's `TcpStream` with a task per
/// connection.
#[derive(Debug, Default)]
pub struct TlsEcho {
    addr: Option<SocketAddr>,
    client: Option<tokio::runtime::Runtime>,
    conns: Vec<ClientTls>,
}

impl TlsEcho {
    fn run(&mut self, start: impl FnOnce() -> SocketAddr) {
        let addr = *self.addr.get_or_insert_with(start);
        let client = self.client.get_or_insert_with(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        });
        let conns = std::mem::take(&mut self.conns);
        self.conns = client.block_on(async move {
            let mut conns = conns;
            if conns.is_empty() {
                for _ in 0..ECHO_CONNS {
                    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
                    tcp.set_nodelay(true).unwrap();
                    let name = ServerName::try_from("localhost").unwrap();
                    conns.push(tls().connector.connect(name, tcp).await.unwrap());
                }
            }
            let tasks: Vec<_> = conns
                .into_iter()
                .map(|mut c| {
                    tokio::spawn(async move {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let msg = [7u8; TLS_MSG];
                        let mut back = [0u8; TLS_MSG];
                        for _ in 0..TLS_ROUNDS {
                            c.write_all(&msg).await.unwrap();
                            c.read_exact(&mut back).await.unwrap();
                        }
                        c
                    })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        });
    }
}

impl Workload<Pinwheel> for TlsEcho {
    fn iter(&mut self, rt: &Pinwheel) {
        self.run(|| pinwheel_server(rt, tls_echo_session));
    }
}

impl Workload<Tokio> for TlsEcho {
    fn iter(&mut self, rt: &Tokio) {
        self.run(|| tokio_server(rt, tls_echo_session));
    }
}

/// Requests per iteration of `compat_overhead`.
const COMPAT_REQUESTS: usize = 200;

/// `compat_overhead`: a reqwest GET loop (200 sequential keep-alive requests per iteration)
/// from a task: on pinwheel through `pinwheel::compat`, on tokio directly. Each side talks to
/// a hyper hello server of its own, the same code on a one-worker pinwheel runtime. The ratio
/// is the price of the bridge; with `PINWHEEL_BENCH_TOKIO_CONTEXT=1`, of the workers' own tokio
/// contexts (`Builder::tokio_context`), where `compat` runs on the calling worker.
#[derive(Debug, Default)]
pub struct CompatOverhead {
    server: Option<(pinwheel::Runtime, SocketAddr)>,
    client: Option<reqwest::Client>,
}

impl CompatOverhead {
    fn url(&mut self) -> String {
        let (_, addr) = self.server.get_or_insert_with(|| {
            // Named apart, so its threads count for neither side's context switches.
            let rt = pinwheel::Builder::new()
                .worker_threads(1)
                .thread_name("hello-server")
                .build()
                .unwrap();
            let addr = rt.block_on(async {
                let listener = pinwheel::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .unwrap();
                let addr = listener.local_addr().unwrap();
                drop(pinwheel::spawn(pinwheel::net::serve(
                    listener,
                    |s, _| async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(
                                s,
                                hyper::service::service_fn(crate::net::hello_service),
                            )
                            .await;
                    },
                )));
                addr
            });
            (rt, addr)
        });
        format!("http://{addr}/")
    }
}

async fn get_loop(client: reqwest::Client, url: String) {
    for _ in 0..COMPAT_REQUESTS {
        let body = client
            .get(&url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&body[..], b"hello, world");
    }
}

impl Workload<Pinwheel> for CompatOverhead {
    fn iter(&mut self, rt: &Pinwheel) {
        let url = self.url();
        let client = self
            .client
            .get_or_insert_with(|| {
                if crate::exec::tokio_context() {
                    // The workers' own tokio contexts: the client is made on a worker.
                    rt.block_on(rt.spawn_outside(async { reqwest::Client::new() }))
                } else {
                    let _tokio = pinwheel::compat::handle().enter();
                    reqwest::Client::new()
                }
            })
            .clone();
        // With the workers' tokio contexts, `compat` polls on the calling worker's own.
        rt.block_on(rt.spawn_outside(pinwheel::compat::compat(get_loop(client, url))));
    }
}

impl Workload<Tokio> for CompatOverhead {
    fn iter(&mut self, rt: &Tokio) {
        let url = self.url();
        // A client made in the tokio runtime under test (its connections' tasks run there).
        let client = self
            .client
            .get_or_insert_with(|| {
                let _tokio = rt.0.enter();
                reqwest::Client::new()
            })
            .clone();
        rt.block_on(rt.spawn_outside(get_loop(client, url)));
    }
}

/// Sequential requests per iteration of `pg_select1` and `redis_get`.
const DB_REQUESTS: usize = 10_000;

/// Connects to the test cluster; the connection's task is `tokio::spawn`ed on the calling
/// runtime (on pinwheel, the calling worker's tokio context).
async fn pg_connect(url: String) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("pg_select1: connect to the test cluster: {e:?}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

async fn pg_loop(client: std::sync::Arc<tokio_postgres::Client>) {
    let select = client.prepare("SELECT 1").await.unwrap();
    for _ in 0..DB_REQUESTS {
        let one: i32 = client.query_one(&select, &[]).await.unwrap().get(0);
        assert_eq!(one, 1);
    }
}

/// `pg_select1`: 10,000 sequential `SELECT 1` (a prepared statement) over one tokio-postgres
/// connection per iteration, against a PostgreSQL cluster the row starts on a loopback port
/// (Debian's package; the row is skipped when it is missing). pinwheel runs it with the
/// workers' tokio contexts (no `compat`); tokio natively.
#[derive(Debug, Default)]
pub struct PgSelect1 {
    server: Option<pinwheel_tests::servers::Postgres>,
    client: Option<std::sync::Arc<tokio_postgres::Client>>,
}

impl PgSelect1 {
    fn url(&mut self) -> String {
        self.server
            .get_or_insert_with(|| {
                pinwheel_tests::servers::Postgres::start()
                    .expect("pg_select1 needs PostgreSQL's server (Debian package postgresql)")
            })
            .url()
    }
}

/// The same code on both runtimes (pinwheel's with the workers' tokio contexts).
impl<E: Exec> Workload<E> for PgSelect1 {
    fn iter(&mut self, rt: &E) {
        if self.client.is_none() {
            let url = self.url();
            self.client = Some(std::sync::Arc::new(
                rt.block_on(rt.spawn_outside(pg_connect(url))),
            ));
        }
        let client = self.client.clone().unwrap();
        rt.block_on(rt.spawn_outside(pg_loop(client)));
    }
}

async fn redis_loop(mut con: redis::aio::MultiplexedConnection) {
    let () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut con)
        .await
        .unwrap();
    for _ in 0..DB_REQUESTS {
        let v: String = redis::cmd("GET")
            .arg("k")
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(v, "v");
    }
}

/// `redis_get`: 10,000 sequential `GET`s over one redis-rs multiplexed connection per
/// iteration, against a redis-server the row starts on a loopback port (Debian's package;
/// skipped when it is missing). pinwheel with the workers' tokio contexts; tokio natively.
#[derive(Default)]
pub struct RedisGet {
    server: Option<pinwheel_tests::servers::Redis>,
    con: Option<redis::aio::MultiplexedConnection>,
}

impl std::fmt::Debug for RedisGet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisGet")
            .field("server", &self.server)
            .finish()
    }
}

impl RedisGet {
    fn url(&mut self) -> String {
        self.server
            .get_or_insert_with(|| {
                pinwheel_tests::servers::Redis::start()
                    .expect("redis_get needs redis-server (Debian package redis-server)")
            })
            .url()
    }
}

async fn redis_connect(url: String) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("redis_get: connect to the test server")
}

/// The same code on both runtimes (pinwheel's with the workers' tokio contexts).
impl<E: Exec> Workload<E> for RedisGet {
    fn iter(&mut self, rt: &E) {
        if self.con.is_none() {
            let url = self.url();
            self.con = Some(rt.block_on(rt.spawn_outside(redis_connect(url))));
        }
        let con = self.con.clone().unwrap();
        rt.block_on(rt.spawn_outside(redis_loop(con)));
    }
}
