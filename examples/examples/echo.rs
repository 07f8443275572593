//! A TCP echo server: every connection is a session pinned to one worker thread.
//!
//! ```text
//! cargo run --release --example echo [-- ADDR]      # default 127.0.0.1:7000
//! nc 127.0.0.1 7000                                  # type a line, get it back
//! ```

use std::cell::Cell;
use std::rc::Rc;

use pinwheel::net::{TcpListener, TcpStream, serve};

#[pinwheel::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:7000".into());
    let listener = TcpListener::bind(addr.as_str()).await?;
    let local = listener.local_addr()?;
    println!(
        "echo server on {local}; try: nc {} {}",
        local.ip(),
        local.port()
    );

    // The factory runs on the worker that will own the connection; the session it returns
    // stays there, so it may hold `Rc` and `Cell` (no `Send` needed).
    serve(listener, |stream: TcpStream, peer| async move {
        let echoed = Rc::new(Cell::new(0usize));
        let mut buf = vec![0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => break, // the client closed its side
                Ok(n) => {
                    if stream.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    echoed.set(echoed.get() + n);
                }
                Err(e) => {
                    eprintln!("{peer}: {e}");
                    break;
                }
            }
        }
        let thread = pinwheel::current_worker().unwrap_or(0);
        println!("{peer}: echoed {} bytes on worker {thread}", echoed.get());
    })
    .await
}
