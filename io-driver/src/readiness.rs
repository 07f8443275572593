//! The readiness of one registered source: a word of readiness bits with a tick that grows
//! with every event, and one waker per direction ([`ScheduledIo`]); the [`Direction`] a task
//! waits on and the [`ReadyEvent`] it sees.

use std::io;
use std::task::{Context, Poll, Waker};

use crate::driver::shut_down_error;
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
pub(crate) struct ScheduledIo {
    pub(crate) readiness: AtomicUsize,
    pub(crate) wakers: Mutex<Wakers>,
}

#[derive(Default)]
pub(crate) struct Wakers {
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl ScheduledIo {
    pub(crate) fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
    ) -> Poll<io::Result<ReadyEvent>> {
        if let Some(ev) = self.ready(direction) {
            return Poll::Ready(ev);
        }
        {
            let mut w = lock(&self.wakers);
            let slot = match direction {
                Direction::Read => &mut w.reader,
                Direction::Write => &mut w.writer,
            };
            if !slot.as_ref().is_some_and(|s| s.will_wake(cx.waker())) {
                *slot = Some(cx.waker().clone());
            }
        }
        // Look again: an event may have come between the first look and the waker's
        // registration (its wake found no waker).
        match self.ready(direction) {
            Some(ev) => Poll::Ready(ev),
            None => Poll::Pending,
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

    /// Adds `bits` and moves the tick on; returns the wakers to call for them.
    pub(crate) fn set_readiness(&self, bits: usize, out: &mut Vec<Waker>) {
        let _ = self
            .readiness
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                let tick = (cur >> TICK_SHIFT).wrapping_add(1);
                Some((tick << TICK_SHIFT) | (cur & READY_MASK) | bits)
            });
        let mut w = lock(&self.wakers);
        if bits & (Direction::Read.mask() | SHUTDOWN) != 0 {
            out.extend(w.reader.take());
        }
        if bits & (Direction::Write.mask() | SHUTDOWN) != 0 {
            out.extend(w.writer.take());
        }
    }
}
