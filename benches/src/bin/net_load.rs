//! The load generator of the network rows, alone in its process (see `net_server`).
//!
//! ```text
//! net_load ADDR ROW ITERATIONS
//! ```
//!
//! Runs ITERATIONS iterations of ROW (64 connections x 200 round trips each, connections made
//! once) against the server at ADDR and prints `round_trips N seconds S`.

use std::process::ExitCode;
use std::time::Instant;

use pinwheel_benches::net::{EXTERNAL_ROWS, drive_external};

fn main() -> ExitCode {
    let usage = "usage: net_load ADDR (tcp_echo|tcp_echo_1k|http_hello) ITERATIONS";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, row, iters] = args.as_slice() else {
        eprintln!("net_load: bad arguments {args:?}\n{usage}");
        return ExitCode::from(2);
    };
    let (Ok(addr), true, Ok(iters)) = (
        addr.parse(),
        EXTERNAL_ROWS.contains(&row.as_str()),
        iters.parse::<usize>(),
    ) else {
        eprintln!("net_load: bad arguments {args:?}\n{usage}");
        return ExitCode::from(2);
    };
    let t = Instant::now();
    let n = drive_external(addr, row, iters);
    println!("round_trips {n} seconds {:.3}", t.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}
