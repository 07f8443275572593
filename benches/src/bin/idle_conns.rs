//! Memory per idle connection: a server holds N idle connections (socket registered, session
//! parked in a read), and the growth of its resident memory is divided by N. Each runtime runs
//! in a fresh process, and the clients in another one, so nothing else is counted (Linux).
//!
//! ```text
//! cargo run --release -p pinwheel-benches --bin idle_conns -- [N]
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Holds `n` connections to `port`, each having sent one byte, until stdin closes.
fn client(port: u16, n: usize) {
    let conns: Vec<std::net::TcpStream> = (0..n)
        .map(|_| {
            let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
            c.write_all(b"x").unwrap();
            c
        })
        .collect();
    println!("CONNECTED");
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(conns);
}

/// Waits until `live()` reaches `n` (bounded).
fn wait_for(n: usize, live: impl Fn() -> usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while live() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} sessions started",
            live()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn serve(which: &str, n: usize) {
    let exe = std::env::current_exe().unwrap();
    let live = Arc::new(AtomicUsize::new(0));
    let pw;
    let tk;
    let port = match which {
        "pinwheel" => {
            pw = pinwheel::Builder::new().worker_threads(2).build().unwrap();
            let l2 = live.clone();
            pw.block_on(async move {
                let l = pinwheel::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .unwrap();
                let port = l.local_addr().unwrap().port();
                drop(pinwheel::spawn(pinwheel::net::serve(
                    l,
                    move |s: pinwheel::net::TcpStream, _| {
                        let live = l2.clone();
                        async move {
                            let mut b = [0u8; 64];
                            live.fetch_add(1, Ordering::SeqCst);
                            while let Ok(n) = s.read(&mut b).await {
                                if n == 0 {
                                    break;
                                }
                            }
                        }
                    },
                )));
                port
            })
        }
        _ => {
            tk = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let l2 = live.clone();
            tk.block_on(async move {
                use tokio::io::AsyncReadExt;
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let port = l.local_addr().unwrap().port();
                tokio::spawn(async move {
                    loop {
                        let Ok((mut s, _)) = l.accept().await else {
                            continue;
                        };
                        let live = l2.clone();
                        tokio::spawn(async move {
                            let mut b = [0u8; 64];
                            live.fetch_add(1, Ordering::SeqCst);
                            while let Ok(n) = s.read(&mut b).await {
                                if n == 0 {
                                    break;
                                }
                            }
                        });
                    }
                });
                port
            })
        }
    };
    // The runtime and its server are up; now the connections.
    let before = pinwheel_benches::rss_kib() * 1024;
    let mut child = Command::new(exe)
        .args(["client", &port.to_string(), &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the client process");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    wait_for(n, || live.load(Ordering::SeqCst));
    std::thread::sleep(Duration::from_millis(200));
    let after = pinwheel_benches::rss_kib() * 1024;
    println!(
        "{which:<9} {n} idle connections: resident memory +{:.1} MiB, {} bytes per connection",
        (after - before) as f64 / (1 << 20) as f64,
        (after - before) / n as u64
    );
    drop(child.stdin.take());
    let _ = child.wait();
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("client") => {
            client(args[1].parse().unwrap(), args[2].parse().unwrap());
            ExitCode::SUCCESS
        }
        Some("serve") => {
            serve(&args[1], args[2].parse().unwrap());
            ExitCode::SUCCESS
        }
        other => {
            let n = match other.map(|a| a.parse::<usize>()) {
                None => 10_000,
                Some(Ok(n)) if n > 0 => n,
                _ => {
                    eprintln!("idle_conns: the argument is the number of idle connections");
                    return ExitCode::from(2);
                }
            };
            let exe = std::env::current_exe().unwrap();
            for which in ["pinwheel", "tokio"] {
                let ok = Command::new(&exe)
                    .args(["serve", which, &n.to_string()])
                    .status()
                    .is_ok_and(|s| s.success());
                if !ok {
                    eprintln!("idle_conns: the {which} run failed");
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
    }
}
