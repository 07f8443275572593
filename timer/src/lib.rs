//! A hierarchical timing wheel (Varghese & Lauck): the per-worker wait queue of `pinwheel`.
//!
//! A plain data structure: no threads, no clock. The caller says what a tick is and tells the
//! wheel what time it is ([`Wheel::advance`]); the wheel hands out every entry whose deadline
//! has come, exactly once, in deadline order.
//!
//! ```
//! use pinwheel_timer::Wheel;
//!
//! let mut wheel = Wheel::new();
//! let a = wheel.insert(10, "ten");
//! let _b = wheel.insert(3, "three");
//! let c = wheel.insert(5_000, "five thousand");
//! assert_eq!(wheel.next_deadline(), Some(3));
//! assert_eq!(wheel.cancel(c), Some("five thousand"));
//! wheel.reset(a, 4);
//!
//! let mut fired = Vec::new();
//! wheel.advance(100, |deadline, value| fired.push((deadline, value)));
//! assert_eq!(fired, vec![(3, "three"), (4, "ten")]);
//! assert!(wheel.is_empty());
//! ```
//!
//! ## Design
//!
//! Six levels of 64 slots: level `l` slot `s` covers ticks whose bits `6l..6l+6` are `s`, so the
//! wheel spans 2^36 ticks (about 2.2 years at 1 ms). An entry sits at the level of the highest
//! bit in which its deadline differs from the wheel's current tick; when the wheel reaches a slot
//! of a higher level it moves the slot's entries down (cascades) until they reach level 0, whose
//! slots hold a single tick each. Each level keeps a 64-bit occupancy map, so the next deadline
//! is found with a few bit operations, never by scanning slots.
//!
//! Entries live in a [`slab`] and each slot is a doubly-linked list through slab indices, so
//! [`insert`](Wheel::insert), [`cancel`](Wheel::cancel) and [`reset`](Wheel::reset) are O(1)
//! and allocate nothing once the slab has grown to the number of pending timers. A [`Key`] carries
//! a generation, so a key whose entry has fired or been cancelled is refused even after its slab
//! slot is reused.
//!
//! A deadline beyond the wheel's span is kept in the furthest slot and re-checked when that slot
//! is reached: it never fires early. A deadline at or before the current tick fires on the next
//! [`advance`](Wheel::advance).

use std::fmt;

use slab::Slab;

const LEVEL_BITS: u32 = 6;
const SLOTS: usize = 1 << LEVEL_BITS;
const LEVELS: usize = 6;
/// How many ticks ahead the wheel can place a deadline exactly: 2^36.
pub const RANGE: u64 = 1 << (LEVEL_BITS as usize * LEVELS);
const NIL: u32 = u32::MAX;

/// Identifies an entry in a [`Wheel`]; stale once the entry fired or was cancelled.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    index: u32,
    generation: u32,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({}#{})", self.index, self.generation)
    }
}

struct Entry<T> {
    deadline: u64,
    value: T,
    prev: u32,
    next: u32,
    generation: u32,
    /// Where it is linked: `level * SLOTS + slot`, or `PENDING` for the due-now list.
    place: u16,
}

/// The list of entries already due when inserted: handed out by the next advance.
const PENDING: u16 = (LEVELS * SLOTS) as u16;

/// A hierarchical timing wheel of values of type `T`.
pub struct Wheel<T> {
    entries: Slab<Entry<T>>,
    /// Heads of the slot lists, `LEVELS * SLOTS` of them, then the due-now list.
    heads: Box<[u32; LEVELS * SLOTS + 1]>,
    tails: Box<[u32; LEVELS * SLOTS + 1]>,
    occupied: [u64; LEVELS],
    now: u64,
    generation: u32,
    /// Entries ever inserted and ever cancelled (statistics).
    inserted: u64,
    cancelled: u64,
}

impl<T> Default for Wheel<T> {
    fn default() -> Self {
        Wheel::new()
    }
}

impl<T> fmt::Debug for Wheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wheel")
            .field("now", &self.now)
            .field("len", &self.len())
            .finish()
    }
}

impl<T> Wheel<T> {
    /// An empty wheel at tick 0.
    pub fn new() -> Wheel<T> {
        Wheel::with_now(0)
    }

    /// An empty wheel at tick `now`.
    pub fn with_now(now: u64) -> Wheel<T> {
        Wheel {
            entries: Slab::new(),
            heads: Box::new([NIL; LEVELS * SLOTS + 1]),
            tails: Box::new([NIL; LEVELS * SLOTS + 1]),
            occupied: [0; LEVELS],
            now,
            generation: 0,
            inserted: 0,
            cancelled: 0,
        }
    }

    /// The wheel's current tick: the `now` of the last [`advance`](Self::advance).
    pub fn now(&self) -> u64 {
        self.now
    }

    /// How many entries were ever inserted.
    pub fn inserted(&self) -> u64 {
        self.inserted
    }

    /// How many entries were ever cancelled (removed before they came due).
    pub fn cancelled(&self) -> u64 {
        self.cancelled
    }

    /// How many entries are pending.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` when no entry is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds an entry due at tick `deadline`. O(1).
    ///
    /// # Panics
    ///
    /// Panics when more than 2^32 - 1 entries are pending.
    pub fn insert(&mut self, deadline: u64, value: T) -> Key {
        self.inserted += 1;
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;
        let index = self.entries.insert(Entry {
            deadline,
            value,
            prev: NIL,
            next: NIL,
            generation,
            place: 0,
        });
        let index = u32::try_from(index)
            .ok()
            .filter(|&i| i != NIL)
            .expect("pinwheel-timer: too many pending timers");
        self.link(index);
        Key { index, generation }
    }

    fn get_entry(&self, key: Key) -> Option<&Entry<T>> {
        self.entries
            .get(key.index as usize)
            .filter(|e| e.generation == key.generation)
    }

    /// The entry's value, if it is still pending.
    pub fn get(&self, key: Key) -> Option<&T> {
        self.get_entry(key).map(|e| &e.value)
    }

    /// The entry's value, mutably, if it is still pending.
    pub fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        self.entries
            .get_mut(key.index as usize)
            .filter(|e| e.generation == key.generation)
            .map(|e| &mut e.value)
    }

    /// The entry's deadline, if it is still pending.
    pub fn deadline(&self, key: Key) -> Option<u64> {
        self.get_entry(key).map(|e| e.deadline)
    }

    /// Removes a pending entry and returns its value; `None` when it already fired or was
    /// cancelled. O(1).
    pub fn cancel(&mut self, key: Key) -> Option<T> {
        self.get_entry(key)?;
        self.cancelled += 1;
        self.unlink(key.index);
        Some(self.entries.remove(key.index as usize).value)
    }

    /// Moves a pending entry to a new deadline; `false` when it already fired or was
    /// cancelled. O(1).
    pub fn reset(&mut self, key: Key, deadline: u64) -> bool {
        if self.get_entry(key).is_none() {
            return false;
        }
        self.unlink(key.index);
        self.entries[key.index as usize].deadline = deadline;
        self.link(key.index);
        true
    }

    /// A tick at or before the earliest pending deadline, and at which an
    /// [`advance`](Self::advance) is needed: the start of the next occupied slot. `None` when
    /// the wheel is empty. Waking at this tick never misses a deadline (entries beyond the
    /// wheel's span may need several such wake-ups).
    pub fn next_deadline(&self) -> Option<u64> {
        if self.heads[PENDING as usize] != NIL {
            return Some(self.now);
        }
        (0..LEVELS).find_map(|level| self.next_in_level(level).map(|(_, tick)| tick))
    }

    /// The first occupied slot of `level` after the current position, and its start tick.
    fn next_in_level(&self, level: usize) -> Option<(usize, u64)> {
        let occupied = self.occupied[level];
        if occupied == 0 {
            return None;
        }
        let shift = LEVEL_BITS as usize * level;
        let now_slot = ((self.now >> shift) & (SLOTS as u64 - 1)) as u32;
        // Search from the slot after the current one: the current slot of a level never holds
        // an entry, except at the top level, where it holds the next rotation's.
        let from = (now_slot + 1) % SLOTS as u32;
        let distance = occupied.rotate_right(from).trailing_zeros();
        let slot = ((from + distance) as usize) % SLOTS;
        let window = 1u64 << (shift + LEVEL_BITS as usize);
        let mut tick = (self.now & !(window - 1)) + ((slot as u64) << shift);
        if tick <= self.now {
            // Only the top level wraps: its slots are a ring, and a slot at or behind the
            // current position is in the next rotation.
            tick = tick.saturating_add(window);
        }
        Some((slot, tick))
    }

    /// Moves the wheel to tick `now` and hands every entry with `deadline <= now` to `expired`,
    /// in deadline order (entries due at the same tick in insertion order), each exactly once.
    /// A `now` earlier than the wheel's current tick only hands out what is already due.
    pub fn advance(&mut self, now: u64, mut expired: impl FnMut(u64, T)) {
        self.fire_pending(&mut expired);
        if now <= self.now {
            return;
        }
        // The earliest occupied slot: the lowest level that has one (entries of a lower level
        // are always due before those of a higher one).
        while let Some((level, slot, tick)) =
            (0..LEVELS).find_map(|l| self.next_in_level(l).map(|(s, t)| (l, s, t)))
        {
            if tick > now {
                break;
            }
            self.now = tick;
            // Take the slot's list and place each entry anew relative to the new tick: due ones
            // fire, the others drop to a lower level.
            let place = level * SLOTS + slot;
            let mut index = self.heads[place];
            self.heads[place] = NIL;
            self.tails[place] = NIL;
            self.occupied[level] &= !(1u64 << slot);
            while index != NIL {
                let e = &mut self.entries[index as usize];
                let next = e.next;
                e.prev = NIL;
                e.next = NIL;
                if e.deadline <= self.now {
                    let e = self.entries.remove(index as usize);
                    expired(e.deadline, e.value);
                } else {
                    self.link(index);
                }
                index = next;
            }
        }
        self.now = now;
    }

    fn fire_pending(&mut self, expired: &mut impl FnMut(u64, T)) {
        let mut index = self.heads[PENDING as usize];
        if index == NIL {
            return;
        }
        self.heads[PENDING as usize] = NIL;
        self.tails[PENDING as usize] = NIL;
        // Already-due entries, possibly with different past deadlines: hand them out sorted.
        let mut due = Vec::new();
        while index != NIL {
            let next = self.entries[index as usize].next;
            let e = self.entries.remove(index as usize);
            due.push((e.deadline, e.value));
            index = next;
        }
        due.sort_by_key(|(d, _)| *d);
        for (d, v) in due {
            expired(d, v);
        }
    }

    /// Where an entry due at `deadline` goes.
    fn place_for(&self, deadline: u64) -> u16 {
        if deadline <= self.now {
            return PENDING;
        }
        // Beyond one rotation of the top level, place it at the furthest tick the wheel can
        // hold; it is re-checked (and placed again) when that tick comes.
        let placed = deadline.min(self.now.saturating_add(RANGE - 1));
        let masked = ((placed ^ self.now) | (SLOTS as u64 - 1)).min(RANGE - 1);
        let significant = 63 - masked.leading_zeros();
        let level = (significant / LEVEL_BITS) as usize;
        let slot = ((placed >> (LEVEL_BITS as usize * level)) & (SLOTS as u64 - 1)) as usize;
        (level * SLOTS + slot) as u16
    }

    fn link(&mut self, index: u32) {
        let place = self.place_for(self.entries[index as usize].deadline);
        let p = place as usize;
        let tail = self.tails[p];
        {
            let e = &mut self.entries[index as usize];
            e.place = place;
            e.prev = tail;
            e.next = NIL;
        }
        if tail == NIL {
            self.heads[p] = index;
        } else {
            self.entries[tail as usize].next = index;
        }
        self.tails[p] = index;
        if place != PENDING {
            self.occupied[p / SLOTS] |= 1u64 << (p % SLOTS);
        }
    }

    fn unlink(&mut self, index: u32) {
        let (prev, next, place) = {
            let e = &self.entries[index as usize];
            (e.prev, e.next, e.place as usize)
        };
        if prev == NIL {
            self.heads[place] = next;
        } else {
            self.entries[prev as usize].next = next;
        }
        if next == NIL {
            self.tails[place] = prev;
        } else {
            self.entries[next as usize].prev = prev;
        }
        if self.heads[place] == NIL && place != PENDING as usize {
            self.occupied[place / SLOTS] &= !(1u64 << (place % SLOTS));
        }
        let e = &mut self.entries[index as usize];
        e.prev = NIL;
        e.next = NIL;
    }
}

/// Bytes one pending entry of a `Wheel<T>` takes in the wheel's slab (the slab stores each
/// entry in an enum with its free-list variant). For `T = std::task::Waker` it is 40.
pub const fn entry_size<T>() -> usize {
    std::mem::size_of::<SlabSlot<T>>()
}

/// Mirrors the slab's own slot type, to measure it.
#[allow(dead_code)]
enum SlabSlot<T> {
    Vacant(usize),
    Occupied(Entry<T>),
}

#[cfg(test)]
mod tests;
