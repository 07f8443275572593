//! The cooperative budget: a task whose resources are always ready (a socket with data always
//! waiting, timers already due, finished `JoinHandle`s) returns `Pending` after 128 operations
//! in one poll, so the other tasks of its worker run and a `timeout` around it fires;
//! `task::consume_budget` and `task::unconstrained`. Each test would hang or fail its count
//! without the budget; none depends on timing to pass (loops are bounded by counts).

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use pinwheel::ThreadMask;
use pinwheel::task::{consume_budget, unconstrained};
use pinwheel_tests::rt;

/// Counts the polls of the future it wraps.
struct Polls<F> {
    inner: Pin<Box<F>>,
    polls: Arc<AtomicUsize>,
}

impl<F: Future> Future for Polls<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        self.inner.as_mut().poll(cx)
    }
}

/// `f` with a count of its polls.
fn counted<F: Future>(f: F) -> (Polls<F>, Arc<AtomicUsize>) {
    let polls = Arc::new(AtomicUsize::new(0));
    (
        Polls {
            inner: Box::pin(f),
            polls: polls.clone(),
        },
        polls,
    )
}

#[test]
fn a_reader_of_an_always_ready_socket_lets_the_other_tasks_of_its_worker_run() {
    const BYTES: usize = 64 * 1024;
    let rt = rt(1);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    client.write_all(&vec![7u8; BYTES]).unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let read_before_the_other_ran = rt.block_on(rt.spawn(async move {
        let stream = pinwheel::net::TcpStream::from_std(server).unwrap();
        // Let the data arrive and be seen by the poller first.
        stream.readable().await.unwrap();
        let other = pinwheel::spawn(async move { f.store(true, Ordering::SeqCst) });
        let mut n = 0;
        let mut b = [0u8; 1];
        // One byte at a time: always ready while data is left.
        while !flag.load(Ordering::SeqCst) && n < BYTES {
            stream.read_exact(&mut b).await.unwrap();
            n += 1;
        }
        other.await.unwrap();
        n
    }));
    let n = read_before_the_other_ran.unwrap();
    assert!(
        n < BYTES,
        "the reader read all {BYTES} bytes before the other task of its worker ran"
    );
    drop(client);
}

#[test]
fn a_timeout_fires_around_an_always_ready_future() {
    let rt = rt(1);
    let out = rt.block_on(rt.spawn(async {
        let past = Instant::now() - Duration::from_secs(1);
        let mut rounds = 0u64;
        let r = pinwheel::time::timeout(Duration::from_millis(1), async {
            // A timer already due, forever: always ready.
            loop {
                pinwheel::time::sleep_until(past).await;
                rounds += 1;
                // Bounded: without the budget the timeout never fires and this is reached.
                assert!(rounds < 500_000_000, "the timeout never fired");
            }
        })
        .await;
        r.is_err()
    }));
    assert!(out.unwrap(), "the timeout fired");
}

#[test]
fn a_timeout_fires_around_an_always_ready_future_in_block_on() {
    let rt = rt(1);
    let past = Instant::now() - Duration::from_secs(1);
    let mut rounds = 0u64;
    let r = rt.block_on(async {
        pinwheel::time::timeout(Duration::from_millis(1), async {
            loop {
                pinwheel::time::sleep_until(past).await;
                rounds += 1;
                assert!(rounds < 500_000_000, "the timeout never fired");
            }
        })
        .await
    });
    assert!(r.is_err());
}

#[test]
fn awaiting_many_finished_tasks_yields_now_and_then() {
    let rt = rt(1);
    let polls = Arc::new(AtomicUsize::new(0));
    let p = polls.clone();
    let fut = Polls {
        inner: Box::pin(async move {
            let handles: Vec<_> = (0..300)
                .map(|i| pinwheel::spawn(async move { i }))
                .collect();
            while !handles.iter().all(|h| h.is_finished()) {
                pinwheel::yield_now().await;
            }
            // Every handle is ready now: count the polls it takes to await them all.
            let start = p.load(Ordering::SeqCst);
            let mut sum = 0;
            for h in handles {
                sum += h.await.unwrap();
            }
            (sum, p.load(Ordering::SeqCst) - start + 1)
        }),
        polls,
    };
    let (sum, polls) = rt.block_on(rt.spawn(fut)).unwrap();
    assert_eq!(sum, (0..300).sum::<i32>());
    assert!(
        polls >= 3,
        "300 ready JoinHandles were awaited in {polls} polls: no budget"
    );
}

#[test]
fn consume_budget_yields_once_the_budget_is_spent() {
    let rt = rt(1);
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let rounds = rt.block_on(rt.spawn(async move {
        let other = pinwheel::spawn(async move { f.store(true, Ordering::SeqCst) });
        let mut rounds = 0u32;
        while !flag.load(Ordering::SeqCst) {
            consume_budget().await;
            rounds += 1;
            assert!(rounds < 1_000_000, "consume_budget never yielded");
        }
        other.await.unwrap();
        rounds
    }));
    let rounds = rounds.unwrap();
    assert!(
        (100..=300).contains(&rounds),
        "the other task ran after {rounds} rounds (the budget is 128)"
    );
}

#[test]
fn unconstrained_never_yields_for_budget() {
    let rt = rt(1);
    let (fut, polls) = counted(unconstrained(async {
        for _ in 0..10_000 {
            consume_budget().await;
        }
        // Well past (a worker compares with the clock read at the start of its turn).
        let past = Instant::now() - Duration::from_secs(1);
        for _ in 0..1_000 {
            pinwheel::time::sleep_until(past).await;
        }
    }));
    rt.block_on(rt.handle().spawn_on(ThreadMask::one(0), fut))
        .unwrap();
    assert_eq!(polls.load(Ordering::SeqCst), 1);
    // Outside a task (no budget): consume_budget never yields either.
    let (fut, polls) = counted(async {
        for _ in 0..1_000 {
            consume_budget().await;
        }
    });
    futures_lite_block_on(fut);
    assert_eq!(polls.load(Ordering::SeqCst), 1);
}

/// Polls `f` on this thread with a waker that does nothing, until ready (no runtime).
fn futures_lite_block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    loop {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
    }
}
