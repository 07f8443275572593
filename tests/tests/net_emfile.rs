//! Out of file descriptors: `serve` pauses accepting with a back-off, keeps serving live
//! sessions, and resumes when descriptors free up, without a busy loop. The server runs in a
//! child process (this test binary again) under a low `RLIMIT_NOFILE` set by `ulimit -n`.

#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

const CHILD_ENV: &str = "PINWHEEL_EMFILE_CHILD";
const CLIENTS: usize = 48;

/// The server side, run only in the child process.
#[test]
#[ignore = "run by net_serve_backs_off_when_out_of_descriptors in a child process"]
fn emfile_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let rt = pinwheel::Builder::new().worker_threads(1).build().unwrap();
    let server = pinwheel::net::Server::new();
    let s2 = server.clone();
    let port = rt.block_on(async move {
        let l = pinwheel::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap();
        let port = l.local_addr().unwrap().port();
        drop(pinwheel::spawn(async move {
            s2.serve(l, |s: pinwheel::net::TcpStream, _| async move {
                let mut b = [0u8; 16];
                while let Ok(n) = s.read(&mut b).await {
                    if n == 0 || s.write_all(&b[..n]).await.is_err() {
                        break;
                    }
                }
            })
            .await
        }));
        port
    });
    println!("PORT {port}");
    std::io::stdout().flush().unwrap();
    // Serve until the parent closes our stdin.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    println!("PAUSES {}", server.accept_pauses());
    std::io::stdout().flush().unwrap();
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(i) = stat.rfind(')') else { return 0 };
    let f: Vec<&str> = stat[i + 2..].split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

#[test]
fn net_serve_backs_off_when_out_of_descriptors() {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 32 && exec \"$0\" --exact emfile_child --ignored --nocapture --test-threads 1")
        .arg(&exe)
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the child server");
    let pid = child.id();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let port = loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the child exited before printing its port"
        );
        // The test harness prints "test emfile_child ... " before it on the same line.
        if let Some(i) = line.find("PORT ") {
            break line[i + 5..].trim().parse::<u16>().unwrap();
        }
    };
    // More clients than the child has descriptors: the kernel queues them in the backlog.
    let mut clients: Vec<std::net::TcpStream> = (0..CLIENTS)
        .map(|_| {
            let c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            c
        })
        .collect();
    for c in clients.iter_mut() {
        c.write_all(b"x").unwrap();
    }
    // The first few are served while the rest wait.
    for c in clients.iter_mut().take(4) {
        let mut b = [0u8; 1];
        c.read_exact(&mut b).unwrap();
    }
    let busy_before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_millis(500));
    let busy = cpu_ticks(pid) - busy_before;
    // Free the child's descriptors: close the first half.
    let rest = clients.split_off(CLIENTS / 2);
    drop(clients);
    // The rest are accepted once descriptors are free, and served.
    for mut c in rest {
        let mut b = [0u8; 1];
        c.read_exact(&mut b)
            .expect("a client queued while the server was out of descriptors was never served");
        assert_eq!(&b, b"x");
    }
    drop(child.stdin.take());
    let mut pauses = None;
    for line in out.lines() {
        let line = line.unwrap();
        if let Some(i) = line.find("PAUSES ") {
            pauses = Some(line[i + 7..].trim().parse::<usize>().unwrap());
        }
    }
    assert!(child.wait().unwrap().success());
    let pauses = pauses.expect("the child did not report its pauses");
    assert!(pauses >= 1, "the server never paused accepting");
    // Paused, it sleeps: well under half a core over half a second (a busy loop takes it all).
    assert!(
        busy <= 20,
        "the paused server used {busy} CPU ticks in 500 ms"
    );
}
