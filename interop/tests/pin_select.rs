//! The crash a ported tokio server hit (issue 22): a task running `tokio::select!` over
//! `broadcast::Receiver::recv()` (an intrusive waiter node, linked into the channel's list while
//! the future waits) and a socket read is cancelled, by runtime shutdown and by abort. The
//! future must be dropped where it lives, so that `Recv`'s `Drop` unlinks the node the channel
//! knows; a moved copy would unlink the wrong node and leave the channel pointing into the
//! freed task, which the next `send` walks. Only tokio's `sync` and `macros` features are used:
//! no tokio runtime.

use std::net::{TcpListener as StdListener, TcpStream as StdStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pinwheel::net::TcpStream;
use pinwheel_tests::pin_check::PinProbe;
use pinwheel_tests::wait_until;
use tokio::sync::broadcast;

const ROUNDS: usize = 100;
const TASKS: usize = 4;
const LIMIT: Duration = Duration::from_secs(20);

/// The connection handler of the ported server: waits for a broadcast or a read.
async fn handler(
    stream: TcpStream,
    mut rx: broadcast::Receiver<u64>,
    received: Arc<AtomicUsize>,
) -> u64 {
    let mut buf = [0u8; 64];
    let mut seen = 0;
    loop {
        tokio::select! {
            got = rx.recv() => match got {
                Ok(v) => {
                    seen += v;
                    received.fetch_add(1, Ordering::SeqCst);
                }
                Err(_) => return seen,
            },
            n = stream.read(&mut buf) => match n {
                Ok(0) | Err(_) => return seen,
                Ok(_) => {}
            },
        }
    }
}

/// One round: `TASKS` handlers, each with its own connection and receiver, all waiting in
/// `select!` after a first broadcast, then cancelled by `cancel`; the channel is then used again (a `send`
/// walks its waiter list, where a wrongly dropped `Recv` would have left a dangling node).
fn round(
    listener: &StdListener,
    cancel: impl FnOnce(pinwheel::Runtime, Vec<pinwheel::JoinHandle<u64>>),
) {
    let rt = pinwheel::Builder::new().worker_threads(2).build().unwrap();
    let (tx, mut keep) = broadcast::channel::<u64>(16);
    let probe = PinProbe::new();
    let received = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let client = StdStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        clients.push(client);
        let rx = tx.subscribe();
        let received = received.clone();
        let fut = probe.wrap(async move {
            let stream = TcpStream::from_std(server).unwrap();
            handler(stream, rx, received).await
        });
        handles.push(rt.spawn(fut));
    }
    // Every handler gets this broadcast, then waits again in `select!` (in the same poll, so
    // a cancellation finds each of them waiting there).
    tx.send(1).unwrap();
    wait_until(LIMIT, "every handler to receive the broadcast", || {
        received.load(Ordering::SeqCst) == TASKS
    });
    cancel(rt, handles);
    probe.assert_dropped_in_place(TASKS);
    // The channel is sound: a send walks the waiter list; the kept receiver sees both values.
    assert_eq!(tx.send(2).unwrap(), 1, "only the kept receiver is left");
    assert_eq!(keep.try_recv().unwrap(), 1);
    assert_eq!(keep.try_recv().unwrap(), 2);
    drop(clients);
}

#[test]
fn select_over_broadcast_and_read_cancelled_by_shutdown() {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    for _ in 0..ROUNDS {
        round(&listener, |rt, handles| {
            drop(rt);
            for h in handles {
                assert!(h.is_finished());
            }
        });
    }
}

#[test]
fn select_over_broadcast_and_read_cancelled_by_abort() {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    for _ in 0..ROUNDS {
        round(&listener, |rt, handles| {
            for h in &handles {
                h.abort();
            }
            for h in handles {
                assert!(rt.block_on(h).unwrap_err().is_cancelled());
            }
            drop(rt);
        });
    }
}
