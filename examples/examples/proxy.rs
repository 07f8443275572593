//! The showcase: a small HAProxy-style HTTP load balancer on pinwheel.
//!
//! ```text
//! cargo run --release --example proxy                # two embedded backends, :8080 and :8081
//! cargo run --release --example proxy -- --help      # the options
//! ```
//!
//! The code is in `examples/src/proxy.rs`: sessions pinned with `net::serve`, timeouts on the
//! timer wheels, health checks, `/stats` collected from every thread through a `WorkList`.

use std::process::ExitCode;
use std::task::Poll;
use std::time::Duration;

use pinwheel::signal::unix::SignalKind;

use pinwheel_examples::proxy::{ArgsError, Config, Proxy, get};

fn main() -> ExitCode {
    let config = match Config::from_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(ArgsError::Help) => {
            println!("{}", ArgsError::Help);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("proxy: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match pinwheel::Builder::new()
        .worker_threads(config.threads)
        .thread_name("proxy")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("proxy: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Ctrl-C and SIGTERM start the soft stop (handlers installed now, before serving).
    let signals = match pinwheel::signal::unix::signal(SignalKind::interrupt()).and_then(|int| {
        Ok((
            int,
            pinwheel::signal::unix::signal(SignalKind::terminate())?,
        ))
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("proxy: cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let self_test = config.self_test;
    rt.block_on(async move {
        let proxy = match Proxy::start(config).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("proxy: {e}");
                return ExitCode::FAILURE;
            }
        };
        let listen = proxy.listen_addr();
        println!("pinwheel proxy listening on http://{listen}/");
        for (addr, up) in proxy.backends() {
            let state = if up { "up" } else { "DOWN (is it running?)" };
            println!("  backend {addr}: {state}");
        }
        if let Some(stats) = proxy.stats_addr() {
            println!("  stats on http://{stats}/stats and http://{stats}/tasks");
        }
        let ok = demo_requests(listen).await;
        if self_test {
            println!("\n{}", proxy.stats_page().await);
            proxy.stop();
            proxy.drain(Duration::from_secs(5)).await;
            return if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        println!("\ntry:  curl http://{listen}/hello");
        if let Some(stats) = proxy.stats_addr() {
            println!("      curl http://{stats}/stats");
        }
        println!("Ctrl-C stops accepting and drains the live connections (10 s at most).");
        let (mut int, mut term) = signals;
        std::future::poll_fn(|cx| {
            if int.poll_recv(cx).is_ready() || term.poll_recv(cx).is_ready() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        println!("\ndraining...");
        proxy.stop();
        if proxy.drain(Duration::from_secs(10)).await {
            println!("all connections closed; bye");
        } else {
            println!("some connections were still open after 10 s; closing them");
        }
        ExitCode::SUCCESS
    })
}

/// A few requests through the proxy, each on its own connection, to show where they went.
async fn demo_requests(listen: std::net::SocketAddr) -> bool {
    let mut ok = true;
    for i in 0..4 {
        let path = format!("/demo/{i}");
        match get(listen, &path).await {
            Ok((status, body)) => {
                ok &= status == 200;
                println!("  GET {path} -> {status} {}", body.trim_end());
            }
            Err(e) => {
                ok = false;
                println!("  GET {path} -> failed: {e}");
            }
        }
    }
    ok
}
