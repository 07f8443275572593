//! Loom models of the task state protocol: every interleaving of a poller, a waker, an abort and
//! a JoinHandle, with the very harness the runtime uses. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p pinwheel --release --lib loom`.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Wake, Waker};

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use loom::sync::{Arc, Mutex};
use loom::thread;

use super::{Id, JoinHandle, NewTask, Notified, RawTask, Schedule, new_task};
use crate::loom::model;
use crate::task::ThreadMask;

/// A scheduler with one queue and one owned-task slot.
struct Sched {
    queue: Mutex<VecDeque<Notified>>,
    owned: Mutex<Option<RawTask>>,
}

impl Schedule for Arc<Sched> {
    unsafe fn schedule(this: *const Self, task: Notified, _yielded: bool) {
        // SAFETY: `this` is alive until `task` is queued (trait contract).
        let sched = unsafe { (*this).clone() };
        sched.queue.lock().unwrap().push_back(task);
    }

    fn release(&self, task: RawTask) -> bool {
        let mut owned = self.owned.lock().unwrap();
        if *owned == Some(task) {
            *owned = None;
            true
        } else {
            false
        }
    }

    fn unpublish(_task: std::ptr::NonNull<crate::task::Header>) {}
}

fn spawn<F: Future + Send + 'static>(sched: &Arc<Sched>, f: F) -> JoinHandle<F::Output> {
    let NewTask {
        owned,
        notified,
        join,
    } = new_task(
        f,
        sched.clone(),
        Id::next(),
        (ThreadMask::all(), 0, 0),
        &crate::task::TaskMeta::caller(),
    );
    *sched.owned.lock().unwrap() = Some(owned);
    sched.queue.lock().unwrap().push_back(notified);
    join
}

impl Sched {
    /// Runs queued tasks until the queue is empty.
    fn drain(&self) {
        loop {
            let task = self.queue.lock().unwrap().pop_front();
            match task {
                Some(t) => t.run(),
                None => return,
            }
        }
    }

    /// Shuts down like the runtime: cancels the owned task if still live, drops the queue.
    fn shutdown(&self) {
        let owned = self.owned.lock().unwrap().take();
        if let Some(t) = owned {
            // SAFETY: we took the owned slot's reference.
            unsafe { t.shutdown() };
        }
        let q = std::mem::take(&mut *self.queue.lock().unwrap());
        drop(q);
    }
}

fn new_sched() -> Arc<Sched> {
    Arc::new(Sched {
        queue: Mutex::new(VecDeque::new()),
        owned: Mutex::new(None),
    })
}

/// Records whether a waker was woken.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.store(true, SeqCst);
    }
}

fn flag_waker() -> (std::sync::Arc<Flag>, Waker) {
    let f = std::sync::Arc::new(Flag(AtomicBool::new(false)));
    (f.clone(), Waker::from(f))
}

fn poll_join<T>(h: &mut JoinHandle<T>, waker: &Waker) -> Poll<Result<T, super::JoinError>> {
    Pin::new(h).poll(&mut Context::from_waker(waker))
}

/// Polls `Pending` `pending` times, handing its waker out each time, then `Ready`.
struct Handoff {
    slot: Arc<Mutex<Option<Waker>>>,
    polls: Arc<AtomicUsize>,
    in_poll: Arc<AtomicBool>,
    pending: usize,
    drops: Arc<AtomicUsize>,
}

impl Future for Handoff {
    type Output = usize;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        assert!(
            !self.in_poll.swap(true, SeqCst),
            "a task was polled twice at once"
        );
        let n = self.polls.fetch_add(1, SeqCst);
        let out = if n < self.pending {
            *self.slot.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        } else {
            // Hand the waker out even when finishing, to race a wake with completion.
            *self.slot.lock().unwrap() = Some(cx.waker().clone());
            Poll::Ready(n + 1)
        };
        self.in_poll.store(false, SeqCst);
        out
    }
}

impl Drop for Handoff {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
    }
}

struct Probe {
    slot: Arc<Mutex<Option<Waker>>>,
    polls: Arc<AtomicUsize>,
    drops: Arc<AtomicUsize>,
}

fn handoff(pending: usize) -> (Handoff, Probe) {
    let slot = Arc::new(Mutex::new(None));
    let polls = Arc::new(AtomicUsize::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    let fut = Handoff {
        slot: slot.clone(),
        polls: polls.clone(),
        in_poll: Arc::new(AtomicBool::new(false)),
        pending,
        drops: drops.clone(),
    };
    (fut, Probe { slot, polls, drops })
}

/// Takes the waker out of the slot once it is there, spinning politely.
fn take_waker(slot: &Mutex<Option<Waker>>) -> Waker {
    loop {
        if let Some(w) = slot.lock().unwrap().take() {
            return w;
        }
        thread::yield_now();
    }
}

#[test]
fn loom_wake_during_poll_is_not_lost() {
    model(|| {
        let sched = new_sched();
        let (fut, probe) = handoff(1);
        let mut join = spawn(&sched, fut);
        let s2 = sched.clone();
        let slot = probe.slot.clone();
        let waker_thread = thread::spawn(move || {
            take_waker(&slot).wake();
            // A second runner: the task may be re-run here or on the main thread, never both.
            s2.drain();
        });
        sched.drain();
        waker_thread.join().unwrap();
        sched.drain();
        assert_eq!(probe.polls.load(SeqCst), 2, "the wake was lost");
        assert_eq!(probe.drops.load(SeqCst), 1);
        let (_, w) = flag_waker();
        assert!(matches!(poll_join(&mut join, &w), Poll::Ready(Ok(2))));
        drop(probe.slot.lock().unwrap().take());
    });
}

#[test]
fn loom_wake_vs_complete() {
    model(|| {
        let sched = new_sched();
        let (fut, probe) = handoff(0);
        let join = spawn(&sched, fut);
        let slot = probe.slot.clone();
        let waker_thread = thread::spawn(move || {
            let w = take_waker(&slot);
            w.wake_by_ref();
            w.wake();
        });
        sched.drain();
        waker_thread.join().unwrap();
        sched.drain();
        assert_eq!(
            probe.polls.load(SeqCst),
            1,
            "a complete task was polled again"
        );
        assert_eq!(probe.drops.load(SeqCst), 1);
        assert!(join.is_finished());
        drop(join);
    });
}

#[test]
fn loom_abort_vs_poll() {
    model(|| {
        let sched = new_sched();
        let (fut, probe) = handoff(usize::MAX);
        let mut join = spawn(&sched, fut);
        let abort = join.abort_handle();
        let s2 = sched.clone();
        let aborter = thread::spawn(move || {
            abort.abort();
            s2.drain();
        });
        sched.drain();
        aborter.join().unwrap();
        sched.drain();
        assert_eq!(
            probe.drops.load(SeqCst),
            1,
            "the aborted future was not dropped exactly once"
        );
        let (_, w) = flag_waker();
        match poll_join(&mut join, &w) {
            Poll::Ready(Err(e)) => assert!(e.is_cancelled()),
            other => panic!(
                "expected a cancellation, got {:?}",
                other.map(|r| r.map_err(|e| e.to_string()))
            ),
        }
        drop(probe.slot.lock().unwrap().take());
    });
}

#[test]
fn loom_join_handle_drop_vs_complete() {
    model(|| {
        let sched = new_sched();
        let out_drops = Arc::new(AtomicUsize::new(0));
        struct Out(Arc<AtomicUsize>);
        impl Drop for Out {
            fn drop(&mut self) {
                self.0.fetch_add(1, SeqCst);
            }
        }
        let od = out_drops.clone();
        let join = spawn(&sched, async move { Out(od) });
        let dropper = thread::spawn(move || drop(join));
        sched.drain();
        dropper.join().unwrap();
        assert_eq!(
            out_drops.load(SeqCst),
            1,
            "the output was not dropped exactly once"
        );
    });
}

#[test]
fn loom_join_waker_vs_complete() {
    model(|| {
        let sched = new_sched();
        let (fut, probe) = handoff(1);
        let mut join = spawn(&sched, fut);
        let s2 = sched.clone();
        let joiner = thread::spawn(move || {
            let (flag, w) = flag_waker();
            if let Poll::Ready(r) = poll_join(&mut join, &w) {
                return r.unwrap();
            }
            // The task is woken elsewhere; wait for our join waker, then the output is there.
            while !flag.0.load(SeqCst) {
                thread::yield_now();
            }
            match poll_join(&mut join, &w) {
                Poll::Ready(r) => r.unwrap(),
                Poll::Pending => panic!("join waker fired but the output was not ready"),
            }
        });
        sched.drain();
        take_waker(&probe.slot).wake();
        sched.drain();
        s2.drain();
        assert_eq!(joiner.join().unwrap(), 2);
        drop(probe.slot.lock().unwrap().take());
    });
}

#[test]
fn loom_shutdown_vs_wake() {
    model(|| {
        let sched = new_sched();
        let (fut, probe) = handoff(usize::MAX);
        let mut join = spawn(&sched, fut);
        sched.drain();
        let w = take_waker(&probe.slot);
        let s2 = sched.clone();
        let waker_thread = thread::spawn(move || {
            w.wake();
            s2.drain();
        });
        sched.shutdown();
        waker_thread.join().unwrap();
        sched.shutdown();
        assert_eq!(probe.drops.load(SeqCst), 1);
        let (_, w) = flag_waker();
        assert!(matches!(poll_join(&mut join, &w), Poll::Ready(Err(_))));
        drop(probe.slot.lock().unwrap().take());
    });
}
