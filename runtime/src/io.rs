//! Readiness, as tokio's `io::{Interest, Ready}`: what a socket's `ready(interest)` waits for
//! and what it found.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

/// The readiness a task waits for: [`READABLE`](Self::READABLE), [`WRITABLE`](Self::WRITABLE),
/// or both (`Interest::READABLE | Interest::WRITABLE`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interest(u8);

impl Interest {
    /// Readable (or read-closed, or an error).
    pub const READABLE: Interest = Interest(1);
    /// Writable (or write-closed, or an error).
    pub const WRITABLE: Interest = Interest(2);

    /// Whether it includes readable.
    pub const fn is_readable(self) -> bool {
        self.0 & 1 != 0
    }

    /// Whether it includes writable.
    pub const fn is_writable(self) -> bool {
        self.0 & 2 != 0
    }

    /// Both interests.
    #[must_use]
    pub const fn add(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }
}

impl BitOr for Interest {
    type Output = Interest;

    fn bitor(self, other: Interest) -> Interest {
        self.add(other)
    }
}

impl BitOrAssign for Interest {
    fn bitor_assign(&mut self, other: Interest) {
        *self = self.add(other);
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.is_readable(), self.is_writable()) {
            (true, true) => f.write_str("READABLE | WRITABLE"),
            (true, false) => f.write_str("READABLE"),
            (false, true) => f.write_str("WRITABLE"),
            (false, false) => f.write_str("(none)"),
        }
    }
}

/// The readiness a socket was found in by `ready(interest)`.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Ready(u8);

impl Ready {
    /// Nothing ready.
    pub const EMPTY: Ready = Ready(0);
    /// Readable.
    pub const READABLE: Ready = Ready(1);
    /// Writable.
    pub const WRITABLE: Ready = Ready(2);
    /// The peer closed its write half: reads return 0.
    pub const READ_CLOSED: Ready = Ready(4);
    /// The write half is closed.
    pub const WRITE_CLOSED: Ready = Ready(8);
    /// The socket reported an error (read it with its `take_error`).
    pub const ERROR: Ready = Ready(16);

    /// Whether nothing is ready.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Readable (or read-closed).
    pub const fn is_readable(self) -> bool {
        self.0 & (1 | 4) != 0
    }

    /// Writable (or write-closed).
    pub const fn is_writable(self) -> bool {
        self.0 & (2 | 8) != 0
    }

    /// The peer closed its write half.
    pub const fn is_read_closed(self) -> bool {
        self.0 & 4 != 0
    }

    /// The write half is closed.
    pub const fn is_write_closed(self) -> bool {
        self.0 & 8 != 0
    }

    /// An error was reported.
    pub const fn is_error(self) -> bool {
        self.0 & 16 != 0
    }

    /// The readiness of a driver event.
    pub(crate) fn from_event(e: &pinwheel_io_driver::ReadyEvent) -> Ready {
        let bit = |on: bool, r: Ready| if on { r.0 } else { 0 };
        Ready(
            bit(e.is_readable(), Ready::READABLE)
                | bit(e.is_writable(), Ready::WRITABLE)
                | bit(e.is_read_closed(), Ready::READ_CLOSED)
                | bit(e.is_write_closed(), Ready::WRITE_CLOSED)
                | bit(e.is_error(), Ready::ERROR),
        )
    }
}

impl BitOr for Ready {
    type Output = Ready;

    fn bitor(self, other: Ready) -> Ready {
        Ready(self.0 | other.0)
    }
}

impl fmt::Debug for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ready")
            .field("readable", &self.is_readable())
            .field("writable", &self.is_writable())
            .field("read_closed", &self.is_read_closed())
            .field("write_closed", &self.is_write_closed())
            .field("error", &self.is_error())
            .finish()
    }
}

/// Waits until `reg` is ready for any of `interest`; the readiness found (both directions'
/// when both are asked and both are ready). Each direction waits as a waiter of its own, so any
/// number of tasks may wait at once.
pub(crate) async fn ready(
    reg: &pinwheel_io_driver::Registration,
    interest: Interest,
) -> std::io::Result<Ready> {
    use pinwheel_io_driver::Direction;
    use std::task::Poll;
    let mut read = interest.is_readable().then(|| reg.waiter(Direction::Read));
    let mut write = interest.is_writable().then(|| reg.waiter(Direction::Write));
    std::future::poll_fn(|cx| {
        crate::task::coop::budgeted(cx, |cx| {
            let mut found = Ready::EMPTY;
            for waiter in [read.as_mut(), write.as_mut()].into_iter().flatten() {
                match waiter.poll_ready(cx) {
                    Poll::Ready(Ok(e)) => found = found | Ready::from_event(&e),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            if found.is_empty() {
                Poll::Pending
            } else {
                Poll::Ready(Ok(found))
            }
        })
    })
    .await
}
