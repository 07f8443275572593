//! The readiness of one registered source: a word of readiness bits with a tick that grows
//! with every event, and the wakers of the tasks waiting in each direction ([`ScheduledIo`],
//! [`Waiter`]); the [`Direction`] a task
//! waits on and the [`ReadyEvent`] it sees.

use std::io;
use std::task::{Context, Poll, Waker};

use crate::{AtomicUsize, Mutex, Ordering, lock};

// Readiness bits, then a tick in the upper bits of the same word.
pub(crate) const READABLE: usize = 1 << 0;
pub(crate) const WRITABLE: usize = 1 << 1;
pub(crate) const READ_CLOSED: usize = 1 << 2;
pub(crate) const WRITE_CLOSED: usize = 1 << 3;
pub(crate) const ERROR: usize = 1 << 4;
pub(crate) const SHUTDOWN: usize = 1 << 5;
pub(crate) const READY_MASK: usize = (1 << 6) - 1;
pub(crate) const TICK_SHIFT: u32 = 16;

/// Which half of a source a task waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Readable, or the read half closed, or an error.
    Read,
    /// Writable, or the write half closed, or an error.
    Write,
}

impl Direction {
    pub(crate) fn mask(self) -> usize {
        match self {
            Direction::Read => READABLE | READ_CLOSED | ERROR,
            Direction::Write => WRITABLE | WRITE_CLOSED | ERROR,
        }
    }
}

/// Readiness seen by [`Registration::poll_ready`](crate::Registration::poll_ready), with the tick it was seen at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadyEvent {
    pub(crate) bits: usize,
    pub(crate) tick: usize,
}

impl ReadyEvent {
    /// The source is readable.
    pub fn is_readable(&self) -> bool {
        self.bits & READABLE != 0
    }

    /// The source is writable.
    pub fn is_writable(&self) -> bool {
        self.bits & WRITABLE != 0
    }

    /// The peer closed its write half (reads will return 0).
    pub fn is_read_closed(&self) -> bool {
        self.bits & READ_CLOSED != 0
    }

    /// The write half is closed.
    pub fn is_write_closed(&self) -> bool {
        self.bits & WRITE_CLOSED != 0
    }

    /// The source reported an error (read it with the socket's `take_error`).
    pub fn is_error(&self) -> bool {
        self.bits & ERROR != 0
    }
}

/// Readiness and wakers of one registered source.
///
/// # Who is woken (the waiter rule)
///
/// Each direction has two kinds of waiting task, and an event for that direction wakes all of
/// them:
/// - the *poll slot*: one waker, replaced by each `poll_*` call ([`Registration::poll_ready`](crate::Registration::poll_ready),
///   the `AsyncRead`/`AsyncWrite` traits), as tokio's `poll_read_ready` keeps one: a stream
///   polled through a trait has one reader and one writer;
/// - the *waiters*: one entry per waiting `&self` operation ([`Waiter`], made by the async
///   methods: `accept`, `read`, `recv_from`, `readable`...), so any number of tasks may wait on
///   one socket and each is woken. The first waiter's entry is inline (no allocation); a
///   [`Waiter`] that is dropped takes its entry out.
///
/// An event takes every waker of its direction under the lock and moves the direction's
/// *epoch* on: the waiters' entries are all gone then, and a [`Waiter`] holding a key of an
/// older epoch knows (without the lock) that it has nothing to remove. Keys of one epoch are
/// never reused within it, so a stale key never removes another waiter's entry.
pub(crate) struct ScheduledIo {
    pub(crate) readiness: AtomicUsize,
    pub(crate) wakers: Mutex<Wakers>,
    /// Per direction (read, write): bumped under the `wakers` lock each time its waiters are
    /// taken; read without it by a dropped [`Waiter`].
    epochs: [AtomicUsize; 2],
}

/// The wakers of both directions (read, write).
#[derive(Default)]
pub(crate) struct Wakers {
    dirs: [DirWakers; 2],
}

#[derive(Default)]
struct DirWakers {
    /// The poll slot.
    poll: Option<Waker>,
    /// The waiters' entries: index 0 inline, then `more[i]` at index `i + 1`.
    first: Option<Waker>,
    more: slab::Slab<Waker>,
}

impl DirWakers {
    /// Stores `waker` as a waiter's entry; returns its index.
    fn insert(&mut self, waker: &Waker) -> usize {
        if self.first.is_none() {
            self.first = Some(waker.clone());
            0
        } else {
            self.more.insert(waker.clone()) + 1
        }
    }

    fn get_mut(&mut self, index: usize) -> Option<&mut Waker> {
        match index {
            0 => self.first.as_mut(),
            i => self.more.get_mut(i - 1),
        }
    }

    fn remove(&mut self, index: usize) -> Option<Waker> {
        match index {
            0 => self.first.take(),
            i => self.more.try_remove(i - 1),
        }
    }

    /// Moves every waker of this direction to `out`; `true` if a waiter's entry was among them.
    #[inline(always)]
    fn take_all(&mut self, out: &mut Vec<Waker>) -> bool {
        if let Some(w) = self.poll.take() {
            out.push(w);
        }
        let mut had = false;
        if let Some(w) = self.first.take() {
            out.push(w);
            had = true;
        }
        if !self.more.is_empty() {
            // `drain` keeps the slab's capacity for the next waiters.
            out.extend(self.more.drain());
            had = true;
        }
        had
    }
}

/// A waiter's place among its direction's waiters: the epoch it registered in, and its index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WaiterKey {
    epoch: usize,
    index: usize,
}

/// Whose waker a poll registers: the direction's poll slot, or a waiter's own entry.
pub(crate) enum Who<'a> {
    PollSlot,
    Waiter(&'a mut Option<WaiterKey>),
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::Read => 0,
            Direction::Write => 1,
        }
    }
}

impl ScheduledIo {
    pub(crate) fn new() -> ScheduledIo {
        ScheduledIo {
            readiness: AtomicUsize::new(0),
            wakers: Mutex::new(Wakers::default()),
            epochs: [AtomicUsize::new(0), AtomicUsize::new(0)],
        }
    }

    #[inline]
    pub(crate) fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        who: Who<'_>,
    ) -> Poll<io::Result<ReadyEvent>> {
        if let Some(ev) = self.ready(direction) {
            return Poll::Ready(ev);
        }
        self.register(cx, direction, who)
    }

    /// Not ready at the first look: keeps the waker, then looks again.
    #[inline(never)]
    fn register(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        who: Who<'_>,
    ) -> Poll<io::Result<ReadyEvent>> {
        {
            let mut w = lock(&self.wakers);
            let d = direction.index();
            let dir = &mut w.dirs[d];
            let waker = cx.waker();
            match who {
                Who::PollSlot => {
                    if !dir.poll.as_ref().is_some_and(|s| s.will_wake(waker)) {
                        dir.poll = Some(waker.clone());
                    }
                }
                Who::Waiter(key) => {
                    // Read under the lock, which every change of it holds.
                    let epoch = self.epochs[d].load(Ordering::Relaxed);
                    // An entry of this epoch is still there (only an event, which moves the
                    // epoch on, or this waiter's drop takes it out): refresh it.
                    let live = key
                        .filter(|k| k.epoch == epoch)
                        .and_then(|k| dir.get_mut(k.index));
                    match live {
                        Some(slot) => {
                            if !slot.will_wake(waker) {
                                *slot = waker.clone();
                            }
                        }
                        None => {
                            *key = Some(WaiterKey {
                                epoch,
                                index: dir.insert(waker),
                            });
                        }
                    }
                }
            }
        }
        // Look again: an event may have come between the first look and the waker's
        // registration (its wake found no waker).
        match self.ready(direction) {
            Some(ev) => Poll::Ready(ev),
            None => Poll::Pending,
        }
    }

    /// Takes a dropped waiter's entry out, if an event has not taken it already.
    #[inline]
    pub(crate) fn remove_waiter(&self, direction: Direction, key: WaiterKey) {
        // An older epoch: the entry went with the event that moved it on (the waiter rule).
        if self.epochs[direction.index()].load(Ordering::Acquire) != key.epoch {
            return;
        }
        self.remove_live_waiter(direction, key);
    }

    /// The entry may still be there (no event since it registered): takes it out under the
    /// lock.
    #[cold]
    fn remove_live_waiter(&self, direction: Direction, key: WaiterKey) {
        let d = direction.index();
        let mut w = lock(&self.wakers);
        if self.epochs[d].load(Ordering::Relaxed) == key.epoch {
            drop(w.dirs[d].remove(key.index));
        }
    }

    pub(crate) fn ready(&self, direction: Direction) -> Option<io::Result<ReadyEvent>> {
        let cur = self.readiness.load(Ordering::Acquire);
        if cur & SHUTDOWN != 0 {
            return Some(Err(shut_down_error()));
        }
        let bits = cur & direction.mask();
        (bits != 0).then_some(Ok(ReadyEvent {
            bits,
            tick: cur >> TICK_SHIFT,
        }))
    }

    pub(crate) fn clear_readiness(&self, event: ReadyEvent) {
        let clear = event.bits & (READABLE | WRITABLE);
        let _ = self
            .readiness
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                (cur >> TICK_SHIFT == event.tick).then_some(cur & !clear)
            });
    }

    /// Adds `bits` and moves the tick on; moves to `out` the wakers to call for them: every
    /// waiting task of each direction the bits concern (the waiter rule).
    pub(crate) fn set_readiness(&self, bits: usize, out: &mut Vec<Waker>) {
        let _ = self
            .readiness
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                let tick = (cur >> TICK_SHIFT).wrapping_add(1);
                Some((tick << TICK_SHIFT) | (cur & READY_MASK) | bits)
            });
        let mut w = lock(&self.wakers);
        if bits & (Direction::Read.mask() | SHUTDOWN) != 0 && w.dirs[0].take_all(out) {
            self.next_epoch(0);
        }
        if bits & (Direction::Write.mask() | SHUTDOWN) != 0 && w.dirs[1].take_all(out) {
            self.next_epoch(1);
        }
    }

    /// Moves direction `d`'s epoch on: its waiters' entries were just taken (under the lock).
    #[inline]
    fn next_epoch(&self, d: usize) {
        let epoch = &self.epochs[d];
        epoch.store(
            epoch.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Release,
        );
    }
}

/// The error of an operation on a source whose driver has shut down.
pub(crate) fn shut_down_error() -> io::Error {
    io::Error::other(
        "the pinwheel runtime that owns this socket's I/O driver has shut down; create the socket inside a running runtime",
    )
}
