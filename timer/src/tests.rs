use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn drain(w: &mut Wheel<u32>, now: u64) -> Vec<(u64, u32)> {
    let mut out = Vec::new();
    w.advance(now, |d, v| out.push((d, v)));
    out
}

#[test]
fn fires_in_deadline_order_and_never_early() {
    let mut w = Wheel::new();
    for (i, d) in [70u64, 5, 4096, 64, 63, 1, 262_144, 5]
        .into_iter()
        .enumerate()
    {
        w.insert(d, i as u32);
    }
    assert_eq!(w.next_deadline(), Some(1));
    assert_eq!(drain(&mut w, 0), vec![]);
    assert_eq!(drain(&mut w, 5), vec![(1, 5), (5, 1), (5, 7)]);
    assert_eq!(drain(&mut w, 69), vec![(63, 4), (64, 3)]);
    assert_eq!(drain(&mut w, 5000), vec![(70, 0), (4096, 2)]);
    assert_eq!(drain(&mut w, 262_143), vec![]);
    assert_eq!(drain(&mut w, 262_144), vec![(262_144, 6)]);
    assert!(w.is_empty());
    assert_eq!(w.next_deadline(), None);
}

#[test]
fn due_entries_fire_on_next_advance() {
    let mut w = Wheel::with_now(100);
    w.insert(100, 1);
    w.insert(3, 2);
    assert_eq!(w.next_deadline(), Some(100));
    assert_eq!(drain(&mut w, 100), vec![(3, 2), (100, 1)]);
    // Advancing backwards hands out only what is due.
    w.insert(50, 3);
    assert_eq!(drain(&mut w, 10), vec![(50, 3)]);
    assert_eq!(w.now(), 100);
}

#[test]
fn stale_keys_are_refused_after_reuse() {
    let mut w = Wheel::new();
    let k = w.insert(10, 1);
    assert_eq!(w.cancel(k), Some(1));
    let k2 = w.insert(20, 2);
    assert_eq!(w.cancel(k), None);
    assert!(!w.reset(k, 5));
    assert_eq!(w.get(k2), Some(&2));
    drain(&mut w, 20);
    assert_eq!(w.cancel(k2), None);
}

#[test]
fn beyond_the_range_is_rechecked_not_early() {
    let mut w = Wheel::new();
    let far = RANGE * 3 + 12345;
    w.insert(far, 9);
    w.insert(u64::MAX, 10);
    let mut now = 0;
    let mut fired = Vec::new();
    while now < far {
        let next = w.next_deadline().unwrap();
        assert!(next > now && next <= far, "next {next} now {now}");
        now = next;
        w.advance(now, |d, v| fired.push((d, v, now)));
    }
    assert_eq!(fired, vec![(far, 9, far)]);
    assert_eq!(w.len(), 1);
}

#[test]
fn huge_jump_fires_everything_in_order() {
    let mut w = Wheel::new();
    let ds = [RANGE - 1, 1, RANGE + 7, 64 * 64 * 64, 2 * RANGE, 999];
    for (i, d) in ds.iter().enumerate() {
        w.insert(*d, i as u32);
    }
    let got = drain(&mut w, u64::MAX / 2);
    let mut want: Vec<_> = ds.iter().enumerate().map(|(i, d)| (*d, i as u32)).collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn entry_is_small() {
    assert!(
        entry_size::<std::task::Waker>() <= 64,
        "{}",
        entry_size::<std::task::Waker>()
    );
    assert_eq!(entry_size::<std::task::Waker>(), 40);
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u64),
    Cancel(usize),
    Reset(usize, u64),
    Advance(u64),
}

fn delta() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..70,
        60u64..70,
        4090u64..4100,
        262_140u64..262_150,
        (0u32..6).prop_map(|l| 1u64 << (6 * l)),
        (0u32..6).prop_map(|l| (1u64 << (6 * (l + 1))) - 1),
        0u64..RANGE * 2,
        Just(RANGE - 1),
        Just(RANGE),
        Just(RANGE + 1),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => delta().prop_map(Op::Insert),
        2 => any::<usize>().prop_map(Op::Cancel),
        2 => (any::<usize>(), delta()).prop_map(|(i, d)| Op::Reset(i, d)),
        3 => delta().prop_map(Op::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Against a BTreeMap model: never early, never lost, never twice, in deadline order.
    #[test]
    fn matches_reference_model(start in 0u64..1_000_000, ops in prop::collection::vec(op(), 1..120)) {
        let mut w = Wheel::with_now(start);
        let mut model: BTreeMap<u32, u64> = BTreeMap::new();
        let mut keys: Vec<(Key, u32)> = Vec::new();
        let mut next_id = 0u32;
        let mut now = start;
        for op in ops {
            match op {
                Op::Insert(d) => {
                    let deadline = now.saturating_add(d);
                    let k = w.insert(deadline, next_id);
                    model.insert(next_id, deadline);
                    keys.push((k, next_id));
                    next_id += 1;
                }
                Op::Cancel(i) if !keys.is_empty() => {
                    let (k, id) = keys[i % keys.len()];
                    let got = w.cancel(k);
                    prop_assert_eq!(got, model.remove(&id).map(|_| id));
                }
                Op::Reset(i, d) if !keys.is_empty() => {
                    let (k, id) = keys[i % keys.len()];
                    let deadline = now.saturating_add(d);
                    let ok = w.reset(k, deadline);
                    prop_assert_eq!(ok, model.contains_key(&id));
                    if ok {
                        model.insert(id, deadline);
                    }
                }
                Op::Advance(d) => {
                    now = now.saturating_add(d);
                    let mut fired = Vec::new();
                    w.advance(now, |dl, v| fired.push((dl, v)));
                    let mut want: Vec<(u64, u32)> = model.iter().filter(|(_, dl)| **dl <= now).map(|(id, dl)| (*dl, *id)).collect();
                    want.sort();
                    for (_, id) in &want {
                        model.remove(id);
                    }
                    // Deadline order; ties in any order.
                    prop_assert!(fired.windows(2).all(|p| p[0].0 <= p[1].0), "out of order: {:?}", fired);
                    fired.sort();
                    prop_assert_eq!(fired, want);
                    if let Some(next) = w.next_deadline() {
                        let earliest = model.values().min().copied().unwrap();
                        prop_assert!(next <= earliest, "next_deadline {} after earliest {}", next, earliest);
                        prop_assert!(next >= now, "next_deadline {} in the past of {}", next, now);
                    } else {
                        prop_assert!(model.is_empty());
                    }
                }
                _ => {}
            }
            prop_assert_eq!(w.len(), model.len());
        }
    }
}

#[test]
fn counts_inserts_and_cancels() {
    let mut w = Wheel::new();
    let a = w.insert(5, 1u32);
    let b = w.insert(9, 2);
    assert_eq!(w.cancel(a), Some(1));
    assert_eq!(w.cancel(a), None, "a second cancel is not counted");
    drain(&mut w, 20);
    assert_eq!(w.cancel(b), None, "a fired entry cannot be cancelled");
    assert_eq!((w.inserted(), w.cancelled()), (2, 1));
}
