//! One network row's server alone in its process, for measurements that must not see the load
//! generator: `strace -f -c`, `valgrind --tool=callgrind`, `perf stat`, wrk and h2load.
//!
//! ```text
//! net_server ROW RUNTIME [--workers N]
//!   ROW:     tcp_echo | tcp_echo_1k | http_hello   (tcp_echo and tcp_echo_1k are the same server)
//!   RUNTIME: pinwheel | tokio | tokio-tpc           (tokio-tpc: thread-per-core)
//! ```
//!
//! Prints `listening ADDR` on the first line, then serves until its standard input closes;
//! then it exits (so a tracer wrapping it sees a normal exit). Drive it with `net_load`.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use pinwheel_benches::net::{
    EXTERNAL_ROWS, pinwheel_echo, pinwheel_http, tokio_echo, tokio_echo_session, tokio_http,
    tokio_http_session,
};
use pinwheel_benches::tpc::TokioTpc;
use pinwheel_benches::{Exec, Pinwheel, Tokio};

fn main() -> ExitCode {
    let usage = "usage: net_server (tcp_echo|tcp_echo_1k|http_hello) (pinwheel|tokio|tokio-tpc) [--workers N]";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let workers = match args.get(2..) {
        Some([flag, n]) if flag == "--workers" => match n.parse::<usize>() {
            Ok(n) if (1..=64).contains(&n) => n,
            _ => {
                eprintln!("net_server: --workers takes 1 to 64, not {n:?}\n{usage}");
                return ExitCode::from(2);
            }
        },
        Some([]) => 2,
        _ => {
            eprintln!("net_server: bad arguments {args:?}\n{usage}");
            return ExitCode::from(2);
        }
    };
    let (Some(row), Some(runtime)) = (args.first(), args.get(1)) else {
        eprintln!("net_server: a row and a runtime are needed\n{usage}");
        return ExitCode::from(2);
    };
    if !EXTERNAL_ROWS.contains(&row.as_str()) {
        eprintln!("net_server: no row {row:?}\n{usage}");
        return ExitCode::from(2);
    }
    let http = row == "http_hello";
    // The runtime lives until stdin closes; the process then exits without tearing it down.
    let addr = match runtime.as_str() {
        "pinwheel" => {
            let rt = Box::leak(Box::new(Pinwheel::build(workers)));
            if http {
                pinwheel_http(rt)
            } else {
                pinwheel_echo(rt)
            }
        }
        "tokio" => {
            let rt = Box::leak(Box::new(Tokio::build(workers)));
            if http { tokio_http(rt) } else { tokio_echo(rt) }
        }
        "tokio-tpc" => {
            let rt = Box::leak(Box::new(TokioTpc::build(workers)));
            if http {
                rt.serve(tokio_http_session)
            } else {
                rt.serve(tokio_echo_session)
            }
        }
        other => {
            eprintln!("net_server: no runtime {other:?}\n{usage}");
            return ExitCode::from(2);
        }
    };
    println!("listening {addr}");
    let _ = std::io::stdout().flush();
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}
