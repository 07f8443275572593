//! axum on pinwheel, sessions pinned: each connection runs on the worker that accepted it.
//!
//! ```text
//! cargo run --release --example axum                      # serves on 127.0.0.1:3000
//! cargo run --release --example axum -- --listen ADDR     # elsewhere
//! cargo run --release --example axum -- --self-test       # a few requests, then exits
//! ```
//!
//! Ctrl-C stops accepting and waits (5 s at most) for the live connections.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use pinwheel::net::{Server, TcpListener};
use pinwheel_interop::{app, http_request, serve_router};

#[pinwheel::main]
async fn main() -> std::io::Result<()> {
    let mut listen = "127.0.0.1:3000".to_owned();
    let mut self_test = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => {
                listen = args
                    .next()
                    .ok_or_else(|| usage("--listen needs an address"))?;
            }
            "--self-test" => self_test = true,
            other => return Err(usage(&format!("unknown argument {other:?}"))),
        }
    }
    let listener = TcpListener::bind(listen.as_str()).await?;
    let addr = listener.local_addr()?;
    let server = Server::new();
    let serving = pinwheel::spawn({
        let server = server.clone();
        async move { serve_router(&server, listener, app()).await }
    });
    println!("axum on pinwheel: http://{addr}/");
    if self_test {
        for path in ["/", "/worker", "/worker"] {
            let req = hyper::Request::get(path)
                .header("host", "localhost")
                .body(Full::<Bytes>::default())
                .map_err(std::io::Error::other)?;
            let (status, body) = http_request(addr, req).await?;
            print!(
                "  GET {path} -> {status} {}",
                String::from_utf8_lossy(&body)
            );
            if !status.is_success() {
                return Err(std::io::Error::other(format!(
                    "GET {path} answered {status}"
                )));
            }
        }
    } else {
        println!("try:  curl http://{addr}/worker");
        println!(
            "      curl -H 'content-type: application/json' -d '{{\"name\":\"you\"}}' http://{addr}/greet"
        );
        println!("Ctrl-C stops.");
        pinwheel::signal::ctrl_c().await?;
    }
    server.stop();
    server.drain(Duration::from_secs(5)).await;
    serving.await.map_err(std::io::Error::from)?
}

fn usage(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{what}\nusage: axum [--listen ADDR] [--self-test]"),
    )
}
