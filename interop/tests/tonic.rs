//! gRPC with tonic: a service with a unary and a server-streaming method, served on pinwheel
//! (HTTP/2 sessions pinned by `net::serve`, tonic's `server::Grpc` with the prost codec,
//! hyper's HTTP/2 on pinwheel's I/O, timer and `LocalExecutor`), called by tonic's client
//! `Channel` through the `compat` bridge. The messages and routes are written by hand, as
//! tonic-build would generate them, so the build needs no `protoc`.

use std::convert::Infallible;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::http::uri::PathAndQuery;
use pinwheel::compat::compat;
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

#[derive(Clone, PartialEq, prost::Message)]
struct EchoRequest {
    #[prost(string, tag = "1")]
    message: String,
    #[prost(uint32, tag = "2")]
    repeat: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct EchoReply {
    #[prost(string, tag = "1")]
    message: String,
    #[prost(uint64, tag = "2")]
    worker: u64,
}

const UNARY: &str = "/echo.Echo/Unary";
const STREAM: &str = "/echo.Echo/Stream";

fn worker() -> u64 {
    pinwheel::current_worker().map_or(u64::MAX, |w| w as u64)
}

/// The service's routes, as tonic-build's generated server would dispatch them.
async fn route(
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<tonic::body::Body>, Infallible> {
    let mut grpc = tonic::server::Grpc::new(ProstCodec::<EchoReply, EchoRequest>::default());
    Ok(match req.uri().path() {
        UNARY => {
            let unary = tower::service_fn(|r: Request<EchoRequest>| async move {
                let r = r.into_inner();
                if r.message.is_empty() {
                    return Err(Status::invalid_argument("message must not be empty"));
                }
                Ok(Response::new(EchoReply {
                    message: r.message,
                    worker: worker(),
                }))
            });
            grpc.unary(unary, req).await
        }
        STREAM => {
            let stream = tower::service_fn(|r: Request<EchoRequest>| async move {
                let r = r.into_inner();
                let w = worker();
                let items = (0..r.repeat).map(move |i| {
                    Ok(EchoReply {
                        message: format!("{} #{i}", r.message),
                        worker: w,
                    })
                });
                Ok::<_, Status>(Response::new(futures::stream::iter(items)))
            });
            grpc.server_streaming(stream, req).await
        }
        _ => Status::unimplemented("no such method").into_http(),
    })
}

async fn serve(listener: pinwheel::net::TcpListener) -> std::io::Result<()> {
    pinwheel::net::serve(listener, |stream, _peer| async move {
        let _ = hyper::server::conn::http2::Builder::new(pinwheel::hyper::LocalExecutor)
            .timer(pinwheel::hyper::Timer)
            .serve_connection(stream, hyper::service::service_fn(route))
            .await;
    })
    .await
}

/// Starts the gRPC server on a loopback port and connects tonic's client to it (through the
/// bridge: tonic's `Channel` needs tokio).
async fn server_and_client() -> tonic::client::Grpc<tonic::transport::Channel> {
    let listener = pinwheel::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    drop(pinwheel::spawn(serve(listener)));
    let channel = compat(async move {
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .timeout(Duration::from_secs(30))
            .connect()
            .await
    })
    .await
    .unwrap();
    tonic::client::Grpc::new(channel)
}

#[test]
fn tonic_unary_and_server_streaming_on_pinwheel() {
    let rt = pinwheel::Builder::new().worker_threads(2).build().unwrap();
    rt.block_on(async {
        let mut client = server_and_client().await;

        let reply = compat(async {
            client.ready().await.unwrap();
            client
                .unary(
                    Request::new(EchoRequest {
                        message: "hello grpc".into(),
                        repeat: 0,
                    }),
                    PathAndQuery::from_static(UNARY),
                    ProstCodec::<EchoRequest, EchoReply>::default(),
                )
                .await
        })
        .await
        .unwrap()
        .into_inner();
        assert_eq!(reply.message, "hello grpc");
        assert!(reply.worker < 2, "served on a pinwheel worker");

        // A gRPC error status crosses intact.
        let status = compat(async {
            client.ready().await.unwrap();
            client
                .unary(
                    Request::new(EchoRequest::default()),
                    PathAndQuery::from_static(UNARY),
                    ProstCodec::<EchoRequest, EchoReply>::default(),
                )
                .await
        })
        .await
        .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "message must not be empty");

        let got = compat(async {
            client.ready().await.unwrap();
            let mut stream = client
                .server_streaming(
                    Request::new(EchoRequest {
                        message: "tick".into(),
                        repeat: 5,
                    }),
                    PathAndQuery::from_static(STREAM),
                    ProstCodec::<EchoRequest, EchoReply>::default(),
                )
                .await?
                .into_inner();
            let mut got = Vec::new();
            while let Some(m) = stream.message().await? {
                got.push(m.message);
            }
            Ok::<_, Status>(got)
        })
        .await
        .unwrap();
        assert_eq!(
            got,
            (0..5).map(|i| format!("tick #{i}")).collect::<Vec<_>>()
        );
    });
}

#[test]
fn an_unknown_method_is_unimplemented() {
    let rt = pinwheel::Builder::new().worker_threads(1).build().unwrap();
    rt.block_on(async {
        let mut client = server_and_client().await;
        let status = compat(async {
            client.ready().await.unwrap();
            client
                .unary(
                    Request::new(EchoRequest::default()),
                    PathAndQuery::from_static("/echo.Echo/Nope"),
                    ProstCodec::<EchoRequest, EchoReply>::default(),
                )
                .await
        })
        .await
        .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unimplemented);
    });
}
