//! A small service whose tasks you can watch in tokio-console: pinwheel's task spans carry
//! what console-subscriber reads (`runtime.spawn`, the task's name, id and spawn location),
//! and its wakers report their operations.
//!
//! ```text
//! cargo run --example console                 # serves until Ctrl-C
//! cargo install tokio-console && tokio-console # in another terminal: the task list
//! cargo run --example console -- --self-test  # checks the console server answers, exits
//! ```
//!
//! The service: a TCP echo server on 127.0.0.1:7000 whose sessions are named `echo-session`,
//! an `accept` task, a `ticker` waking every 100 ms, and a `client` that connects once a
//! second and says hello, so there is something to watch. console-subscriber serves its
//! gRPC API on 127.0.0.1:6669 (its default; `TOKIO_CONSOLE_BIND` changes it). It refuses to
//! start unless built with `--cfg console_without_tokio_unstable` (or `tokio_unstable`): the
//! workspace's `.cargo/config.toml` sets it; a project of your own needs the same line.

use std::net::SocketAddr;
use std::time::Duration;

use pinwheel::net::{TcpListener, TcpStream};
use pinwheel::task::Builder;
use tracing_subscriber::layer::SubscriberExt;

async fn echo(stream: TcpStream) {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn say_hello(addr: std::net::SocketAddr) -> std::io::Result<()> {
    let s = TcpStream::connect(addr).await?;
    s.write_all(b"hello").await?;
    let mut back = [0u8; 5];
    s.read_exact(&mut back).await?;
    Ok(())
}

fn main() -> std::io::Result<()> {
    let self_test = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--self-test") => true,
        Some(other) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("unknown argument {other:?}; usage: console [--self-test]"),
            ));
        }
    };
    // The console's own default, or `TOKIO_CONSOLE_BIND`; the self-test takes a free port.
    let console_addr: SocketAddr = if self_test {
        std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?
    } else {
        std::env::var("TOKIO_CONSOLE_BIND")
            .ok()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 6669)))
    };
    let console = console_subscriber::ConsoleLayer::builder()
        .with_default_env()
        .server_addr(console_addr)
        .spawn();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(console))
        .map_err(std::io::Error::other)?;

    let rt = pinwheel::Builder::new().worker_threads(2).build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(if self_test {
            "127.0.0.1:0"
        } else {
            "127.0.0.1:7000"
        })
        .await?;
        let addr = listener.local_addr()?;
        Builder::new().name("accept").spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                Builder::new().name("echo-session").spawn(echo(stream));
            }
        });
        Builder::new().name("ticker").spawn(async {
            loop {
                pinwheel::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Builder::new().name("client").spawn(async move {
            loop {
                let _ = say_hello(addr).await;
                pinwheel::time::sleep(Duration::from_secs(1)).await;
            }
        });
        println!("echo on {addr}; tokio-console: `tokio-console http://{console_addr}`");
        if self_test {
            // The console's gRPC API answers and lists our named tasks.
            let names = pinwheel::compat::compat(named_tasks(console_addr)).await?;
            println!("the console lists: {names:?}");
            for want in ["accept", "ticker", "client"] {
                if !names.iter().any(|n| n == want) {
                    return Err(std::io::Error::other(format!(
                        "the console does not list the task {want:?}: {names:?}"
                    )));
                }
            }
            return Ok(());
        }
        pinwheel::signal::ctrl_c().await
    })
}

/// The task names the console server reports, read with console-api's client (what the
/// `tokio-console` binary uses), waiting up to 30 s for all three.
async fn named_tasks(addr: SocketAddr) -> std::io::Result<Vec<String>> {
    use console_api::field::Value;

    let mut updates = pinwheel_interop::console_updates(addr).await?;
    let mut names = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !["accept", "ticker", "client"]
        .iter()
        .all(|w| names.iter().any(|n| n == w))
    {
        let update = match tokio::time::timeout_at(deadline, updates.message()).await {
            Ok(Ok(Some(u))) => u,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => return Err(std::io::Error::other(e)),
            Err(_) => break,
        };
        for task in update.task_update.into_iter().flat_map(|t| t.new_tasks) {
            for f in task.fields {
                if let Some(Value::StrVal(s)) = f.value {
                    names.push(s);
                }
            }
        }
    }
    Ok(names)
}
