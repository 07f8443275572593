//! Idle workers (and the watchdog) sleep without using the CPU.

#![cfg(target_os = "linux")]

use std::time::Duration;

use pinwheel::Builder;
use pinwheel_tests::proc::cpu_ticks;

#[test]
fn rt_idle_workers_use_no_cpu() {
    let rt = Builder::new()
        .worker_threads(2)
        .thread_name("idlecheck")
        .build()
        .unwrap();
    // Run something on each worker, so both threads are up and named.
    for k in 0..2 {
        rt.block_on(rt.handle().spawn_on(pinwheel::ThreadMask::one(k), async {}))
            .unwrap();
    }
    // Two workers and the watchdog (which sleeps while every worker sleeps). A new thread
    // names itself once it runs, so the watchdog may still carry its parent's name for a moment:
    // wait (bounded) until all three show under their names.
    let mut waited = 0;
    let (threads, before) = loop {
        let (threads, ticks) = cpu_ticks("idlecheck");
        if threads == 3 || waited >= 1000 {
            break (threads, ticks);
        }
        std::thread::sleep(Duration::from_millis(10));
        waited += 1;
    };
    assert_eq!(
        threads, 3,
        "expected two workers and the watchdog named idlecheck*"
    );
    // A spinning worker would burn about 50 ticks (10 ms each) per thread in this half second;
    // a parked one burns none. Passing does not depend on the duration: a parked worker stays
    // at zero however long we wait.
    std::thread::sleep(Duration::from_millis(500));
    let (_, after) = cpu_ticks("idlecheck");
    assert!(
        after - before <= 2,
        "idle workers used {} CPU ticks in 500 ms",
        after - before
    );
    drop(rt);
}

/// After serving I/O under load a worker may yield and repoll before it sleeps
/// (`spin_before_park(1)`), but once a spin finds nothing it sleeps like any idle worker: no CPU, and the
/// spin counter stops moving. With `spin_before_park(0)` it never spins.
#[test]
fn rt_idle_after_io_stops_spinning() {
    for rounds in [1, 0] {
        let name = format!("spin{rounds}");
        let rt = Builder::new()
            .worker_threads(2)
            .thread_name(name.as_str())
            .spin_before_park(rounds)
            .build()
            .unwrap();
        // Echo exchanges on 8 connections at once (8 client threads), so that the workers'
        // polls deliver several events together, as under load (a lone ping-pong connection
        // delivers one at a time and never spins).
        let addr = rt.block_on(async {
            let listener = pinwheel::net::TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap();
            let addr = listener.local_addr().unwrap();
            drop(pinwheel::spawn(pinwheel::net::serve(
                listener,
                |s, _| async move {
                    let mut b = [0u8; 8];
                    while s.read_exact(&mut b).await.is_ok() {
                        if s.write_all(&b).await.is_err() {
                            break;
                        }
                    }
                },
            )));
            addr
        });
        // Whether a poll delivers several events depends on how the OS interleaves the
        // threads, so with spinning on, repeat the load (bounded) until a spin is seen.
        let batches = if rounds == 0 { 1 } else { 50 };
        for _ in 0..batches {
            let clients: Vec<_> = (0..8)
                .map(|_| {
                    std::thread::spawn(move || {
                        use std::io::{Read, Write};
                        let mut c = std::net::TcpStream::connect(addr).unwrap();
                        let mut b = [0u8; 8];
                        for _ in 0..200 {
                            c.write_all(b"pingpong").unwrap();
                            c.read_exact(&mut b).unwrap();
                        }
                    })
                })
                .collect();
            for c in clients {
                c.join().unwrap();
            }
            if rt.metrics().total().park_spins > 0 {
                break;
            }
        }
        let spins = rt.metrics().total().park_spins;
        if rounds == 0 {
            assert_eq!(spins, 0, "spin_before_park(0) spun");
        } else {
            assert!(
                spins > 0,
                "no spin after up to 80,000 round trips on 8 connections"
            );
        }
        // With no more I/O, each worker spins at most `rounds` more times, then sleeps.
        let spins_before = rt.metrics().total().park_spins;
        std::thread::sleep(Duration::from_millis(100));
        let (_, before) = cpu_ticks(&name);
        std::thread::sleep(Duration::from_millis(300));
        let (_, after) = cpu_ticks(&name);
        let more = rt.metrics().total().park_spins - spins_before;
        assert!(
            more <= u64::from(rounds) * 2,
            "idle workers spun {more} more times"
        );
        assert!(
            after - before <= 2,
            "idle workers used {} ticks",
            after - before
        );
    }
}
