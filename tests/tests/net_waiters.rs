//! Several tasks waiting on one socket at once (`&self` I/O methods allow it): each is woken.
//! Before the waiter lists, the I/O driver kept one waker per direction and only the task that
//! registered last was ever woken; the others hung.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pinwheel::ThreadMask;
use pinwheel::net::{TcpListener, TcpStream, UdpSocket};
use pinwheel::time::timeout;
use pinwheel_tests::{rt, wait_until};

const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn fifty_tasks_accepting_on_one_listener_from_two_workers_all_get_a_connection() {
    const TASKS: usize = 50;
    let rt = rt(2);
    let listener = Arc::new(
        rt.block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind on loopback"),
    );
    let addr = listener.local_addr().unwrap();
    let waiting = Arc::new(AtomicUsize::new(0));
    let accepters: Vec<_> = (0..TASKS)
        .map(|i| {
            let (listener, waiting) = (listener.clone(), waiting.clone());
            // Half on each worker, all waiting at once before any connection arrives.
            rt.handle().spawn_on(ThreadMask::one(i % 2), async move {
                waiting.fetch_add(1, Ordering::SeqCst);
                let (stream, _) = listener.accept().await.unwrap();
                let mut b = [0u8; 1];
                stream.read_exact(&mut b).await.unwrap();
                b[0]
            })
        })
        .collect();
    wait_until(LIMIT, "every accepter to wait", || {
        waiting.load(Ordering::SeqCst) == TASKS
    });
    let clients: Vec<_> = (0..TASKS)
        .map(|i| {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.write_all(&[i as u8]).unwrap();
            c
        })
        .collect();
    let mut got: Vec<u8> = accepters
        .into_iter()
        .map(|h| rt.block_on(async { timeout(LIMIT, h).await }))
        .map(|r| r.expect("an accepter was never woken").unwrap())
        .collect();
    got.sort_unstable();
    assert_eq!(got, (0..TASKS as u8).collect::<Vec<_>>());
    drop(clients);
}

#[test]
fn several_tasks_receiving_on_one_udp_socket_are_each_woken() {
    const TASKS: usize = 4;
    let rt = rt(2);
    let socket = Arc::new(rt.block_on(UdpSocket::bind("127.0.0.1:0")).unwrap());
    let addr = socket.local_addr().unwrap();
    let waiting = Arc::new(AtomicUsize::new(0));
    let receivers: Vec<_> = (0..TASKS)
        .map(|i| {
            let (socket, waiting) = (socket.clone(), waiting.clone());
            rt.handle().spawn_on(ThreadMask::one(i % 2), async move {
                waiting.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 8];
                let (n, _) = socket.recv_from(&mut buf).await.unwrap();
                buf[..n].to_vec()
            })
        })
        .collect();
    wait_until(LIMIT, "every receiver to wait", || {
        waiting.load(Ordering::SeqCst) == TASKS
    });
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..TASKS {
        sender.send_to(&[i as u8], addr).unwrap();
    }
    let mut got: Vec<u8> = receivers
        .into_iter()
        .map(|h| rt.block_on(async { timeout(LIMIT, h).await }))
        .map(|r| r.expect("a receiver was never woken").unwrap()[0])
        .collect();
    got.sort_unstable();
    assert_eq!(got, (0..TASKS as u8).collect::<Vec<_>>());
}

#[test]
fn readers_on_both_workers_of_one_socket_pinned_to_worker_0_are_each_woken() {
    const READERS: usize = 6;
    let rt = rt(2);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    // Registered with worker 0's poller.
    let stream: Arc<TcpStream> = Arc::new(
        rt.block_on(rt.handle().spawn_on(ThreadMask::one(0), async move {
            TcpStream::from_std(server)
        }))
        .unwrap()
        .unwrap(),
    );
    let waiting = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..READERS)
        .map(|i| {
            let (stream, waiting) = (stream.clone(), waiting.clone());
            rt.handle().spawn_on(ThreadMask::one(i % 2), async move {
                waiting.fetch_add(1, Ordering::SeqCst);
                // One byte each: a read fills its buffer, so the readiness stays for the next.
                let mut b = [0u8; 1];
                stream.read_exact(&mut b).await.unwrap();
                (pinwheel::current_worker(), b[0])
            })
        })
        .collect();
    wait_until(LIMIT, "every reader to wait", || {
        waiting.load(Ordering::SeqCst) == READERS
    });
    client
        .write_all(&(0..READERS as u8).collect::<Vec<_>>())
        .unwrap();
    let mut got: Vec<(Option<usize>, u8)> = readers
        .into_iter()
        .map(|h| rt.block_on(async { timeout(LIMIT, h).await }))
        .map(|r| r.expect("a reader was never woken").unwrap())
        .collect();
    assert!(got.iter().any(|(w, _)| *w == Some(0)) && got.iter().any(|(w, _)| *w == Some(1)));
    got.sort_unstable_by_key(|(_, b)| *b);
    let bytes: Vec<u8> = got.into_iter().map(|(_, b)| b).collect();
    assert_eq!(bytes, (0..READERS as u8).collect::<Vec<_>>());
}

#[test]
fn an_accept_cancelled_by_a_timeout_leaves_and_the_next_accepter_gets_the_connection() {
    let rt = rt(1);
    let listener = Arc::new(rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap());
    let addr = listener.local_addr().unwrap();
    let l = listener.clone();
    // Many accepts that give up: each leaves the listener's waiters when dropped.
    rt.block_on(async move {
        for _ in 0..100 {
            assert!(timeout(Duration::from_micros(1), l.accept()).await.is_err());
        }
    });
    let l = listener.clone();
    let accepter = rt.spawn(async move { l.accept().await.map(|_| ()) });
    let _c = std::net::TcpStream::connect(addr).unwrap();
    rt.block_on(async { timeout(LIMIT, accepter).await })
        .expect("the accepter was never woken")
        .unwrap()
        .unwrap();
}
