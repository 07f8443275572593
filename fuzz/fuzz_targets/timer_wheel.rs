//! The timer wheel against a simple model: random insert / cancel / reset / advance / query
//! sequences; every entry fires exactly once, never before its deadline, never after an
//! `advance` past it, in deadline order, and `next_deadline` never skips a due entry.
#![no_main]

use std::collections::BTreeMap;

use pinwheel_timer::{Key, Wheel};

/// Reads a little-endian number of `n` bytes, or zero when the input is exhausted.
fn take(data: &mut &[u8], n: usize) -> u64 {
    let mut v = 0u64;
    for i in 0..n {
        let Some((&b, rest)) = data.split_first() else {
            break;
        };
        v |= u64::from(b) << (8 * i);
        *data = rest;
    }
    v
}

/// A deadline around `now`: near ticks mostly, sometimes far ones (levels, the overflow ring).
fn deadline(data: &mut &[u8], now: u64) -> u64 {
    match take(data, 1) % 4 {
        0 => now.saturating_sub(take(data, 1)),
        1 => now + take(data, 1),
        2 => now + take(data, 3),
        _ => now.saturating_add(take(data, 6)),
    }
}

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let mut data = input;
    let start = take(&mut data, 2);
    let mut wheel: Wheel<u32> = Wheel::with_now(start);
    let mut now = start;
    // The model: id -> (key, deadline) of every pending entry.
    let mut pending: BTreeMap<u32, (Key, u64)> = BTreeMap::new();
    let mut next_id = 0u32;
    while !data.is_empty() {
        match take(&mut data, 1) % 6 {
            0 | 1 => {
                let d = deadline(&mut data, now);
                let id = next_id;
                next_id += 1;
                pending.insert(id, (wheel.insert(d, id), d));
            }
            2 => {
                if let Some(&id) = pending
                    .keys()
                    .nth(take(&mut data, 1) as usize % pending.len().max(1))
                {
                    let (key, _) = pending.remove(&id).unwrap();
                    assert_eq!(wheel.cancel(key), Some(id), "cancel of a pending entry");
                    assert_eq!(wheel.cancel(key), None, "second cancel of the same key");
                }
            }
            3 => {
                if let Some(&id) = pending
                    .keys()
                    .nth(take(&mut data, 1) as usize % pending.len().max(1))
                {
                    let d = deadline(&mut data, now);
                    let entry = pending.get_mut(&id).unwrap();
                    assert!(wheel.reset(entry.0, d), "reset of a pending entry");
                    entry.1 = d;
                    assert_eq!(wheel.deadline(entry.0), Some(d));
                }
            }
            4 => {
                // Advance, sometimes to the wheel's own next deadline (how a worker sleeps).
                let to = if take(&mut data, 1) % 2 == 0 {
                    wheel.next_deadline().unwrap_or(now)
                } else {
                    now + take(&mut data, 2)
                };
                let effective = to.max(wheel.now());
                let mut fired = Vec::new();
                wheel.advance(to, |d, id| fired.push((d, id)));
                now = now.max(to);
                let mut last = 0;
                for (d, id) in fired {
                    let (_, want) = pending
                        .remove(&id)
                        .expect("fired an entry twice, or one not pending");
                    assert_eq!(d, want, "fired with a deadline it was not given");
                    assert!(
                        d <= effective,
                        "fired early: deadline {d}, advanced to {effective}"
                    );
                    assert!(d >= last, "fired out of deadline order");
                    last = d;
                }
                for (id, (_, d)) in &pending {
                    assert!(
                        *d > effective,
                        "entry {id} due at {d} not fired by advance({effective})"
                    );
                }
            }
            _ => {
                // next_deadline is at or before the earliest pending deadline.
                let earliest = pending.values().map(|(_, d)| *d).min();
                match (wheel.next_deadline(), earliest) {
                    (None, None) => {}
                    (Some(n), Some(e)) => assert!(
                        n <= e.max(wheel.now()),
                        "next_deadline {n} after a pending deadline {e}"
                    ),
                    (n, e) => panic!("next_deadline {n:?} but the earliest pending is {e:?}"),
                }
            }
        }
        assert_eq!(wheel.len(), pending.len(), "pending count");
    }
});
