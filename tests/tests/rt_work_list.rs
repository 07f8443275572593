//! Work lists: every item handled exactly once, on the right thread, in push order per
//! producer; per-thread state; errors; closing; shutdown.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use pinwheel::{PushErrorKind, ThreadMask, WorkList};
use pinwheel_tests::rt;

/// (producer, sequence number, target thread)
type Item = (usize, usize, usize);

#[test]
fn rt_work_list_every_item_once_on_its_thread_in_order() {
    const WORKERS: usize = 3;
    const PER_PRODUCER: usize = 3000;
    let rt = rt(WORKERS);
    let total = Arc::new(AtomicUsize::new(0));
    let wrong_thread = Arc::new(AtomicUsize::new(0));
    let out_of_order = Arc::new(AtomicUsize::new(0));
    let (t2, w2, o2) = (total.clone(), wrong_thread.clone(), out_of_order.clone());
    let producers = WORKERS + 2;
    let expected = producers * PER_PRODUCER;
    // Per-thread state, not Send (Rc): for each producer, the last sequence number seen here.
    let list: WorkList<Item> = rt.handle().work_list_with_state(
        |_| Rc::new(RefCell::new(HashMap::<usize, usize>::new())),
        move |last, (producer, seq, target)| {
            if pinwheel::current_worker() != Some(target) {
                w2.fetch_add(1, SeqCst);
            }
            if let Some(prev) = last.borrow_mut().insert(producer, seq) {
                if prev >= seq {
                    o2.fetch_add(1, SeqCst);
                }
            }
            t2.fetch_add(1, SeqCst);
        },
    );
    // Producers on every worker...
    let mut hs = Vec::new();
    for p in 0..WORKERS {
        let l = list.clone();
        hs.push(rt.handle().spawn_on(ThreadMask::one(p), async move {
            for seq in 0..PER_PRODUCER {
                let target = (seq * 7 + p) % WORKERS;
                l.push(target, (p, seq, target)).unwrap();
                if seq % 100 == 0 {
                    pinwheel::yield_now().await;
                }
            }
        }));
    }
    // ...and on two outside threads.
    let outside: Vec<_> = (WORKERS..producers)
        .map(|p| {
            let l = list.clone();
            std::thread::spawn(move || {
                for seq in 0..PER_PRODUCER {
                    let target = (seq + p) % WORKERS;
                    l.push(target, (p, seq, target)).unwrap();
                }
            })
        })
        .collect();
    for h in hs {
        rt.block_on(h).unwrap();
    }
    for t in outside {
        t.join().unwrap();
    }
    // Wait until every item is handled (bounded: a lost item fails instead of hanging).
    pinwheel_tests::wait_until(
        std::time::Duration::from_secs(60),
        "every item handled",
        || total.load(SeqCst) >= expected,
    );
    assert_eq!(total.load(SeqCst), expected);
    assert_eq!(wrong_thread.load(SeqCst), 0);
    assert_eq!(out_of_order.load(SeqCst), 0);
    let m = rt.metrics().total();
    assert_eq!(m.mailbox_items, expected as u64);
    assert!(m.mailbox_wakeups >= 1 && m.mailbox_wakeups <= expected as u64);
    assert_eq!(m.mailbox_handler_panics, 0);
    drop(list);
}

#[test]
fn rt_work_list_order_per_producer_is_kept() {
    let rt = rt(2);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let s2 = seen.clone();
    let list = rt.handle().work_list(move |n: usize| {
        s2.lock().unwrap().push(n);
        if n == 9999 {
            tx.lock().unwrap().send(()).unwrap();
        }
    });
    for n in 0..10_000 {
        list.push(1, n).unwrap();
    }
    rx.recv().unwrap();
    assert_eq!(*seen.lock().unwrap(), (0..10_000).collect::<Vec<_>>());
}

#[test]
fn rt_work_list_handler_may_spawn_local() {
    let rt = rt(2);
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let list = rt.handle().work_list(move |target: usize| {
        let tx = tx.lock().unwrap().clone();
        // A session pinned where the item landed: !Send state inside.
        drop(pinwheel::spawn_local(async move {
            let rc = Rc::new(pinwheel::current_worker());
            pinwheel::yield_now().await;
            tx.send((target, *rc)).unwrap();
        }));
    });
    list.push(0, 0).unwrap();
    list.push(1, 1).unwrap();
    let mut got = vec![rx.recv().unwrap(), rx.recv().unwrap()];
    got.sort();
    assert_eq!(got, vec![(0, Some(0)), (1, Some(1))]);
}

#[test]
fn rt_work_list_push_local_and_errors() {
    let rt = rt(2);
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let list = rt.handle().work_list(move |v: u32| {
        tx.lock()
            .unwrap()
            .send((v, pinwheel::current_worker()))
            .unwrap()
    });

    let err = list.push(2, 7).unwrap_err();
    assert_eq!(
        err.kind(),
        PushErrorKind::NoSuchThread {
            thread: 2,
            workers: 2
        }
    );
    assert!(err.to_string().contains("there is no worker 2"), "{err}");
    assert_eq!(err.into_inner(), 7);

    let err = list.push_local(8).unwrap_err();
    assert_eq!(err.kind(), PushErrorKind::NotOnWorker);
    assert!(err.to_string().contains("not a worker"), "{err}");

    let l2 = list.clone();
    rt.block_on(
        rt.handle()
            .spawn_on(ThreadMask::one(1), async move { l2.push_local(9).unwrap() }),
    )
    .unwrap();
    assert_eq!(rx.recv().unwrap(), (9, Some(1)));

    list.close();
    assert!(list.is_closed());
    let err = list.push(0, 10).unwrap_err();
    assert_eq!(err.kind(), PushErrorKind::Closed);
    assert!(err.to_string().contains("closed"), "{err}");
    assert_eq!(err.into_inner(), 10);
    assert_eq!(list.threads(), 2);
}

#[test]
#[should_panic(expected = "WorkList::len: there is no worker 5")]
fn rt_work_list_len_out_of_range_panics() {
    let rt = rt(2);
    let list = rt.handle().work_list(|_: u8| {});
    let _ = list.len(5);
}

#[test]
#[should_panic(expected = "Handle::current")]
fn rt_work_list_new_outside_runtime_panics() {
    let _ = WorkList::new(|_: u8| {});
}

struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn rt_work_list_close_handles_what_was_pushed_then_refuses() {
    let rt = rt(2);
    let handled = Arc::new(AtomicUsize::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    let h2 = handled.clone();
    // Hold worker 0 busy so items pile up, then close: they must still all be handled.
    let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let g2 = gate.clone();
    let list = rt.handle().work_list(move |c: Counted| {
        h2.fetch_add(1, SeqCst);
        drop(c);
    });
    let blocker = rt.handle().spawn_on(ThreadMask::one(0), async move {
        let mut open = g2.0.lock().unwrap();
        while !*open {
            open = g2.1.wait(open).unwrap();
        }
    });
    for _ in 0..500 {
        list.push(0, Counted(drops.clone())).unwrap();
    }
    let l2 = list.clone();
    drop(list);
    l2.close();
    assert!(l2.push(0, Counted(drops.clone())).is_err());
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    rt.block_on(blocker).unwrap();
    pinwheel_tests::wait_until(
        std::time::Duration::from_secs(60),
        "the 500 items of the closed list handled",
        || handled.load(SeqCst) >= 500,
    );
    drop(l2);
    drop(rt);
    assert_eq!(handled.load(SeqCst), 500);
    // 500 handled + 1 refused (given back and dropped here).
    assert_eq!(drops.load(SeqCst), 501);
}

#[test]
fn rt_work_list_dropping_last_handle_closes() {
    let rt = rt(1);
    let list = rt.handle().work_list(|_: u8| {});
    let l2 = list.clone();
    drop(list);
    assert!(!l2.is_closed());
    let l3 = l2.clone();
    drop(l2);
    assert!(!l3.is_closed());
    // The last handle: afterwards nobody can push, so the handlers end.
    drop(l3);
}

#[test]
fn rt_work_list_items_queued_at_shutdown_are_dropped_once() {
    let rt = rt(2);
    let drops = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let list = rt.handle().work_list(|c: Counted| drop(c));
    // Block both workers so nothing is handled, queue items, then shut down.
    for k in 0..2 {
        let g = gate.clone();
        drop(rt.handle().spawn_on(ThreadMask::one(k), async move {
            let mut open = g.0.lock().unwrap();
            while !*open {
                open = g.1.wait(open).unwrap();
            }
        }));
    }
    for i in 0..1000 {
        list.push(i % 2, Counted(drops.clone())).unwrap();
    }
    let g = gate.clone();
    let opener = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(20));
        *g.0.lock().unwrap() = true;
        g.1.notify_all();
    });
    drop(rt);
    opener.join().unwrap();
    // Whether handled before the shutdown or dropped by it, each item is dropped once; and the
    // list now refuses pushes (its handlers are gone).
    let err = list.push(0, Counted(drops.clone())).unwrap_err();
    assert_eq!(err.kind(), PushErrorKind::Closed);
    drop(err);
    drop(list);
    assert_eq!(drops.load(SeqCst), 1001);
}

#[test]
fn rt_work_list_panicking_handler_loses_only_that_item() {
    let rt = rt(1);
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let list = rt.handle().work_list(move |n: u32| {
        if n == 1 {
            panic!("handler panic on purpose");
        }
        tx.lock().unwrap().send(n).unwrap();
    });
    for n in 0..3 {
        list.push(0, n).unwrap();
    }
    assert_eq!(rx.recv().unwrap(), 0);
    assert_eq!(rx.recv().unwrap(), 2);
    assert_eq!(rt.metrics().worker(0).mailbox_handler_panics, 1);
}

#[test]
fn rt_work_list_flood_does_not_starve_other_tasks() {
    // A handler that pushes back to its own list forever would take its thread if it did
    // not yield between batches; another task on that thread must still run.
    let rt = rt(1);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let cell: Arc<Mutex<Option<WorkList<u64>>>> = Arc::new(Mutex::new(None));
    let c2 = cell.clone();
    let list = rt.handle().work_list(move |n: u64| {
        if !s2.load(SeqCst) {
            if let Some(l) = c2.lock().unwrap().as_ref() {
                let _ = l.push_local(n + 1);
                let _ = l.push_local(n + 2);
            }
        }
    });
    *cell.lock().unwrap() = Some(list.clone());
    list.push(0, 0).unwrap();
    let s3 = stop.clone();
    rt.block_on(rt.spawn(async move { s3.store(true, SeqCst) }))
        .unwrap();
    cell.lock().unwrap().take();
    assert!(rt.metrics().worker(0).mailbox_items > 0);
}

#[test]
fn rt_work_list_on_a_shut_down_runtime_refuses_pushes() {
    let rt = rt(2);
    let handle = rt.handle().clone();
    drop(rt);
    let list = handle.work_list(|_: u8| {});
    // Its handler tasks could not start, so nothing would ever drain the mailboxes.
    let err = list.push(1, 3).unwrap_err();
    assert_eq!(err.kind(), PushErrorKind::Closed);
    assert!(list.is_closed());
}
