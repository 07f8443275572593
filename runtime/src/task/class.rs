//! Scheduling classes (HAProxy's `TL_URGENT`, `TL_NORMAL`, `TL_BULK`, `TL_HEAVY`): which lane
//! of its worker's turn a task runs in.

/// A task's scheduling class: which share of its worker's loop turn it runs in.
///
/// Each loop turn a worker runs up to 64 polls, split between the classes that have work by
/// their weights: **Urgent 64, Normal 60, Bulk 4** (HAProxy's `TL_URGENT` / `TL_NORMAL` /
/// `TL_BULK` weights, rounded so that a class with work always gets at least one poll); Heavy
/// gets at most **one poll per turn**, plus, once the other classes' queues are empty, one
/// more per 16 Heavy tasks queued, so a backlog drains without delaying live work by more than
/// one Heavy poll per turn. When only Normal tasks exist the turn is exactly what it was
/// without classes.
///
/// - [`Urgent`](Class::Urgent): the runtime's own handler tasks (work-list mailboxes), and
///   anything whose latency matters more than everything else's.
/// - [`Normal`](Class::Normal): the default, `net::serve` sessions among them.
/// - [`Bulk`](Class::Bulk): background work that runs when normal work is light, and is never
///   starved (a few polls every turn).
/// - [`Heavy`](Class::Heavy): CPU-heavy polls (a TLS handshake, compression, a large JSON
///   document): at most one per turn while other work waits.
///
/// Set at spawn with [`task::Builder::class`](crate::task::Builder::class), changed from inside
/// a running task with [`set_class`](crate::task::set_class) (for its next polls), read with
/// [`current_class`](crate::task::current_class).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Runs first in each turn, with the largest share.
    Urgent,
    /// The default.
    #[default]
    Normal,
    /// A small share of each turn.
    Bulk,
    /// At most one poll per turn while other work waits.
    Heavy,
}

impl Class {
    /// Every class, in the order a turn serves them.
    pub const ALL: [Class; 4] = [Class::Urgent, Class::Normal, Class::Bulk, Class::Heavy];

    /// Its position in [`Class::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    pub(crate) const fn from_index(i: u8) -> Class {
        match i {
            0 => Class::Urgent,
            2 => Class::Bulk,
            3 => Class::Heavy,
            _ => Class::Normal,
        }
    }

    /// Its name, in lower case (as the task dump and the metrics table show it).
    pub const fn name(self) -> &'static str {
        match self {
            Class::Urgent => "urgent",
            Class::Normal => "normal",
            Class::Bulk => "bulk",
            Class::Heavy => "heavy",
        }
    }
}

impl std::fmt::Display for Class {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// One value per class, indexed by [`Class`]: a worker's lanes, their gauges, their counters
/// (HAProxy's `tasklets[TL_URGENT]` .. `tasklets[TL_HEAVY]`). The one index space of classes.
#[derive(Debug, Default)]
pub(crate) struct ByClass<T>([T; 4]);

impl<T> ByClass<T> {
    /// A value for each class, made by `f`, in the order of [`Class::ALL`].
    pub(crate) fn from_fn(f: impl FnMut(Class) -> T) -> ByClass<T> {
        ByClass(Class::ALL.map(f))
    }

    /// The value of each class made from this one's by `f`.
    pub(crate) fn map<U>(self, f: impl FnMut(T) -> U) -> ByClass<U> {
        ByClass(self.0.map(f))
    }

    /// Each class with its value, in the order a turn serves them.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Class, &T)> {
        Class::ALL.into_iter().zip(&self.0)
    }

    /// The values of the classes that have a lane apart from Normal's (Urgent, Bulk, Heavy).
    pub(crate) fn others(&self) -> impl Iterator<Item = (Class, &T)> {
        self.iter().filter(|(c, _)| *c != Class::Normal)
    }
}

impl<T> std::ops::Index<Class> for ByClass<T> {
    type Output = T;

    #[inline]
    fn index(&self, class: Class) -> &T {
        &self.0[class.index()]
    }
}
