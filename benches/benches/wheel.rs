//! Criterion benches of the bare timing wheel (`pinwheel-timer`), no runtime around it:
//! insert + cancel pairs with 100,000 timers pending, and the expiry of 1,000,000 timers.
//!
//! ```text
//! cargo bench -p pinwheel-benches --bench wheel
//! ```

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use pinwheel_timer::Wheel;

fn insert_cancel(c: &mut Criterion) {
    let mut wheel = Wheel::new();
    // 100,000 pending timers spread over 30 s at 1 ms ticks.
    for i in 0..100_000u64 {
        wheel.insert(1 + (i * 7919) % 30_000, i);
    }
    let mut n = 0u64;
    c.bench_function("wheel/insert+cancel, 100k pending", |b| {
        b.iter(|| {
            n = n.wrapping_add(7919);
            let k = wheel.insert(1 + n % 30_000, n);
            black_box(wheel.cancel(k));
        })
    });
}

fn expire_million(c: &mut Criterion) {
    c.bench_function("wheel/expire 1M timers over 10 s", |b| {
        b.iter_batched(
            || {
                let mut wheel = Wheel::new();
                for i in 0..1_000_000u64 {
                    wheel.insert(1 + (i * 7919) % 10_000, i);
                }
                wheel
            },
            |mut wheel| {
                let mut fired = 0u64;
                for now in (0..=10_000).step_by(10) {
                    wheel.advance(now, |_, v| fired = fired.wrapping_add(v));
                }
                black_box(fired)
            },
            BatchSize::LargeInput,
        )
    });
}

criterion_group! {
    name = wheel;
    config = Criterion::default().sample_size(20);
    targets = insert_cancel, expire_million
}
criterion_main!(wheel);
