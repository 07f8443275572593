//! Hello world over HTTP/1.1 with hyper on pinwheel.
//!
//! ```text
//! cargo run --release --example http [-- ADDR]      # default 127.0.0.1:3000
//! curl http://127.0.0.1:3000/
//! ```

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};

async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let thread = pinwheel::current_worker().unwrap_or(0);
    let text = format!("hello, {} (served by worker {thread})\n", req.uri().path());
    Ok(Response::new(Full::new(Bytes::from(text))))
}

#[pinwheel::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:3000".into());
    let listener = pinwheel::net::TcpListener::bind(addr.as_str()).await?;
    println!("try: curl http://{}/", listener.local_addr()?);

    pinwheel::net::serve(listener, |stream, peer| async move {
        // `pinwheel::hyper::Timer` runs hyper's timeouts on this worker's timer wheel;
        // `TcpStream` implements hyper's `Read` and `Write` directly.
        let served = hyper::server::conn::http1::Builder::new()
            .timer(pinwheel::hyper::Timer)
            .header_read_timeout(Duration::from_secs(10))
            .serve_connection(stream, hyper::service::service_fn(hello))
            .await;
        if let Err(e) = served {
            eprintln!("{peer}: {e}");
        }
    })
    .await
}
