//! Loom models of the scheduler's cross-thread protocols: the parker's token, the inbox
//! with its wake-on-first-item, and the idle protocol that decides whom to wake.

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::thread;

use super::idle::Idle;
use super::inbox::Inbox;
use super::park::Parker;
use crate::loom::model;

#[test]
fn loom_unpark_before_or_during_park_is_not_lost() {
    model(|| {
        let p = Arc::new(Parker::new());
        let p2 = p.clone();
        let t = thread::spawn(move || p2.unpark());
        // Loom reports a deadlock if this park never returns.
        p.park();
        t.join().unwrap();
    });
}

#[test]
fn loom_remote_queue_push_vs_drain_and_park() {
    // Two producers push one item each; the consumer drains and parks whenever the queue looks
    // empty. It must end up with both items, in per-producer order, without sleeping forever.
    model(|| {
        let q = Arc::new(Inbox::new());
        let p = Arc::new(Parker::new());
        let producers: Vec<_> = (0..2)
            .map(|i| {
                let (q, p) = (q.clone(), p.clone());
                thread::spawn(move || {
                    if let Ok(Some(())) = q.push(i, |_| ()) {
                        p.unpark();
                    }
                })
            })
            .collect();
        let mut got = std::collections::VecDeque::new();
        while got.len() < 2 {
            if q.drain_into(&mut got) == 0 && q.is_empty() {
                p.park();
            }
        }
        let mut v: Vec<_> = got.into_iter().collect();
        v.sort();
        assert_eq!(v, vec![0, 1]);
        for t in producers {
            t.join().unwrap();
        }
    });
}

#[test]
fn loom_remote_queue_push_vs_close_gives_item_back() {
    model(|| {
        let q = Arc::new(Inbox::new());
        let q2 = q.clone();
        let t = thread::spawn(move || q2.push(7, |_| ()));
        let closed = q.close();
        let pushed = t.join().unwrap();
        // Either the push landed before the close (and close returned it), or it was refused.
        match pushed {
            Ok(_) => assert_eq!(closed.into_iter().collect::<Vec<_>>(), vec![7]),
            Err(item) => {
                assert_eq!(item, 7);
                assert!(closed.is_empty());
            }
        }
    });
}

#[test]
fn loom_idle_protocol_never_sleeps_through_work() {
    // A worker that finds no work registers as a sleeper, looks again, and parks; a producer
    // pushes work, then asks whom to wake. The worker must always get the work.
    model(|| {
        let idle = Arc::new(Idle::new(1));
        let parker = Arc::new(Parker::new());
        let work = Arc::new(AtomicUsize::new(0));
        let producer = {
            let (idle, parker, work) = (idle.clone(), parker.clone(), work.clone());
            thread::spawn(move || {
                // An RMW rather than a store: loom lets a plain store slip inside a concurrent
                // RMW (tokio-rs/loom#254), which would report a lost wake that cannot happen.
                work.fetch_add(1, SeqCst);
                if let Some(i) = idle.worker_to_notify() {
                    assert_eq!(i, 0);
                    parker.unpark();
                }
            })
        };
        let mut searching = false;
        loop {
            if work.swap(0, SeqCst) == 1 {
                if searching {
                    idle.stop_searching();
                }
                break;
            }
            if searching {
                idle.stop_searching();
                searching = false;
            }
            idle.sleep(0);
            if work.load(SeqCst) == 0 {
                parker.park();
            }
            if !idle.wake(0) {
                searching = true;
            }
        }
        producer.join().unwrap();
    });
}

/// A scheduler for tasks that are only moved around, never woken.
struct Inert;

impl crate::task::Schedule for Inert {
    unsafe fn schedule(_this: *const Self, task: crate::task::Notified, _yielded: bool) {
        drop(task);
    }
    fn release(&self, _task: crate::task::RawTask) -> bool {
        false
    }
    fn unpublish(_task: std::ptr::NonNull<crate::task::Header>) {}
}

#[test]
fn loom_lifo_slot_owner_vs_thief() {
    use super::lifo::LifoSlot;
    use crate::task::{Id, NewTask, new_task};

    model(|| {
        let slot = Arc::new(LifoSlot::new());
        let mut owned = Vec::new();
        let mut notified = Vec::new();
        let mut ids = Vec::new();
        for _ in 0..2 {
            let NewTask {
                owned: o,
                notified: n,
                join,
            } = new_task(
                async {},
                Inert,
                Id::next(),
                (super::ThreadMask::all(), 0, 0),
                &crate::task::TaskMeta::caller(),
            );
            ids.push(n.header().id);
            drop(join);
            owned.push(o);
            notified.push(n);
        }
        let thief = {
            let slot = slot.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                for _ in 0..2 {
                    if let Some(t) = slot.take() {
                        got.push(t.header().id);
                    }
                }
                got
            })
        };
        let mut got = Vec::new();
        let second = notified.pop().unwrap();
        let first = notified.pop().unwrap();
        assert!(slot.replace(first).is_none());
        if let Some(t) = slot.replace(second) {
            got.push(t.header().id);
        }
        if let Some(t) = slot.take() {
            got.push(t.header().id);
        }
        got.extend(thief.join().unwrap());
        got.sort();
        assert_eq!(got, ids, "each task leaves the slot exactly once");
        for o in owned {
            // SAFETY: the owned reference of a task no list holds.
            unsafe { o.shutdown() };
        }
    });
}

/// A waker that unparks the consumer and counts its wakes.
struct ParkWaker {
    parker: Parker,
    wakes: AtomicUsize,
}

impl std::task::Wake for ParkWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.wakes.fetch_add(1, SeqCst);
        self.parker.unpark();
    }
}

/// Drains like a work-list handler until `want` items arrived or the queue closed, parking
/// whenever it registered its waker and found nothing.
fn consume(q: &Inbox<usize>, want: usize) -> Vec<usize> {
    use super::inbox::Drained;
    let pw = std::sync::Arc::new(ParkWaker {
        parker: Parker::new(),
        wakes: AtomicUsize::new(0),
    });
    let waker = std::task::Waker::from(pw.clone());
    let mut got = std::collections::VecDeque::new();
    while got.len() < want {
        match q.drain_or_register(&mut got, &waker) {
            Drained::Items(_) => {}
            Drained::Closed => break,
            // Loom reports a deadlock if no push or close ever wakes us.
            Drained::Empty => pw.parker.park(),
        }
    }
    assert!(
        pw.wakes.load(SeqCst) <= want,
        "more wakes than items: wakes are not coalesced"
    );
    got.into_iter().collect()
}

#[test]
fn loom_mailbox_two_producers_vs_task_consumer() {
    model(|| {
        let q = Arc::new(Inbox::new());
        let producers: Vec<_> = (0..2)
            .map(|i| {
                let q = q.clone();
                thread::spawn(move || {
                    // Woken after the push released the lock.
                    if let Some(w) = q.push(i, |w| w).unwrap().flatten() {
                        w.wake();
                    }
                })
            })
            .collect();
        let mut got = consume(&q, 2);
        got.sort();
        assert_eq!(got, vec![0, 1], "the last item was left behind");
        for p in producers {
            p.join().unwrap();
        }
    });
}

#[test]
fn loom_mailbox_push_vs_close_and_wake() {
    model(|| {
        let q = Arc::new(Inbox::new());
        let producer = {
            let q = q.clone();
            thread::spawn(move || {
                q.push(5, |w| w).map(|w| {
                    if let Some(w) = w.flatten() {
                        w.wake();
                    }
                })
            })
        };
        let closer = {
            let q = q.clone();
            thread::spawn(move || q.close_and_wake())
        };
        // The consumer stops at the close; an item pushed before it is still handed out.
        let got = consume(&q, 2);
        let pushed = producer.join().unwrap();
        closer.join().unwrap();
        match pushed {
            Ok(_) => assert_eq!(got, vec![5], "an accepted item was lost at close"),
            Err(item) => {
                assert_eq!(item, 5);
                assert!(got.is_empty());
            }
        }
    });
}

/// A stand-in for the I/O driver's poll and its `mio::Waker`: a sticky flag under a mutex.
#[derive(Clone)]
struct TestBell(Arc<(loom::sync::Mutex<bool>, loom::sync::Condvar)>);

impl super::park::Bell for TestBell {
    fn ring(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_one();
    }
}

impl super::park::Sleeper for TestBell {
    fn sleep(&mut self, timeout: Option<std::time::Duration>) -> std::io::Result<usize> {
        let mut rung = self.0.0.lock().unwrap();
        // A zero timeout only collects what is there; no timeout waits for a ring.
        if timeout != Some(std::time::Duration::ZERO) {
            while !*rung {
                rung = self.0.1.wait(rung).unwrap();
            }
        }
        *rung = false;
        Ok(0)
    }
}

#[test]
fn loom_io_parker_unpark_is_not_lost() {
    use super::park::IoParker;
    model(|| {
        let bell = TestBell(Arc::new((
            loom::sync::Mutex::new(false),
            loom::sync::Condvar::new(),
        )));
        let parker = Arc::new(IoParker::new(bell.clone()));
        let work = Arc::new(AtomicUsize::new(0));
        let producer = {
            let (parker, work) = (parker.clone(), work.clone());
            thread::spawn(move || {
                work.fetch_add(1, SeqCst);
                parker.unpark();
            })
        };
        let mut sleeper = bell;
        // The worker: look for work, park when there is none. Loom reports a deadlock if the
        // unpark is lost.
        while work.load(SeqCst) == 0 {
            parker.park(&mut sleeper, None).unwrap();
        }
        producer.join().unwrap();
    });
}
