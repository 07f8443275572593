use std::fmt;
use std::ops::{BitAnd, BitOr};

/// The set of worker threads allowed to poll a task: HAProxy's `process_mask`.
///
/// Bit `i` stands for worker `i` (a runtime has at most 64 workers). Most tasks may run
/// anywhere ([`ThreadMask::all`]) and are work-stolen; a task restricted to some threads is only
/// ever polled on those.
///
/// ```
/// use pinwheel::ThreadMask;
///
/// let m = ThreadMask::one(0) | ThreadMask::one(3);
/// assert!(m.contains(3) && !m.contains(1));
/// assert_eq!(m.count(), 2);
/// assert_eq!(format!("{m:?}"), "ThreadMask[0, 3]");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ThreadMask(u64);

impl ThreadMask {
    /// Every thread.
    pub const fn all() -> ThreadMask {
        ThreadMask(u64::MAX)
    }

    /// Thread `i` only.
    ///
    /// # Panics
    ///
    /// Panics when `i >= 64`: a runtime has at most 64 workers.
    #[track_caller]
    pub const fn one(i: usize) -> ThreadMask {
        assert!(
            i < 64,
            "ThreadMask::one: thread index must be below 64 (a runtime has at most 64 workers)"
        );
        ThreadMask(1 << i)
    }

    /// The mask whose bit `i` stands for worker `i`.
    pub const fn from_bits(bits: u64) -> ThreadMask {
        ThreadMask(bits)
    }

    /// The bits of the mask.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// `true` when thread `i` is in the mask.
    pub const fn contains(self, i: usize) -> bool {
        i < 64 && self.0 & (1 << i) != 0
    }

    /// How many threads the mask names.
    pub const fn count(self) -> u32 {
        self.0.count_ones()
    }

    /// `true` when the mask names no thread.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The first `n` threads: every worker of an `n`-worker runtime.
    pub(crate) const fn first(n: usize) -> ThreadMask {
        if n >= 64 {
            ThreadMask(u64::MAX)
        } else {
            ThreadMask((1 << n) - 1)
        }
    }

    /// The `k`-th thread in the mask (k < count).
    pub(crate) fn nth(self, mut k: u32) -> usize {
        let mut bits = self.0;
        loop {
            let i = bits.trailing_zeros();
            if k == 0 {
                return i as usize;
            }
            bits &= bits - 1;
            k -= 1;
        }
    }

    /// The thread indices in the mask, in order.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            Some(i)
        })
    }
}

impl BitOr for ThreadMask {
    type Output = ThreadMask;
    fn bitor(self, rhs: ThreadMask) -> ThreadMask {
        ThreadMask(self.0 | rhs.0)
    }
}

impl BitAnd for ThreadMask {
    type Output = ThreadMask;
    fn bitand(self, rhs: ThreadMask) -> ThreadMask {
        ThreadMask(self.0 & rhs.0)
    }
}

impl fmt::Debug for ThreadMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == u64::MAX {
            return f.write_str("ThreadMask(all)");
        }
        f.write_str("ThreadMask")?;
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::ThreadMask;

    #[test]
    fn operations() {
        let m = ThreadMask::from_bits(0b1010_0100);
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![2, 5, 7]);
        assert_eq!(m.nth(0), 2);
        assert_eq!(m.nth(2), 7);
        assert_eq!((m & ThreadMask::first(6)).bits(), 0b10_0100);
        assert_eq!(format!("{:?}", ThreadMask::all()), "ThreadMask(all)");
        assert_eq!(format!("{:?}", ThreadMask::from_bits(0)), "ThreadMask[]");
        assert!(!ThreadMask::all().contains(64));
    }

    #[test]
    #[should_panic(expected = "below 64")]
    fn one_out_of_range_panics() {
        let _ = ThreadMask::one(64);
    }
}
