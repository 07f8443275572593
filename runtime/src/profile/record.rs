//! The recording: the runtime-wide [`Profiler`] (mode, slot registry), each worker's table
//! ([`WorkerProfile`], shared; [`LocalProfile`], its own), the wake and spawn stamps, and the
//! two paths of a profiled poll.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{CPU_SAMPLE, EXACT_POLLS, Mode, SPAWN_SAMPLE, xorshift};
use crate::loom::lock;
use crate::metrics::single_writer_add;
use crate::task::Header;

/// `Header::woken_at` holds no stamp and asks for none.
pub(crate) const WAKE_NONE: u32 = 0;
/// `Header::woken_at` asks the task's next wake for its time (a timed poll sets it, so the
/// wakes measured are those after the polls timed).
pub(crate) const WAKE_ASKED: u32 = 1;
/// The least value of a stamp (`stamp_of`): every value above [`WAKE_ASKED`] is one.
const STAMP_MIN: u32 = 2;

/// Latency histogram buckets: bucket `k` counts latencies below `2^(k+1)` ns (and at least
/// `2^k`, but for bucket 0); the last one counts everything above.
pub(super) const BUCKETS: usize = 32;

/// Nanoseconds on the monotonic clock (the one `Instant` reads), from an arbitrary origin.
/// Read directly: converting an `Instant` to a number costs more than reading the clock.
pub(super) fn now_nanos() -> u64 {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; the call writes only it.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        (ts.tv_sec as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(ts.tv_nsec as u64)
    }
    #[cfg(not(unix))]
    {
        static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let base = *BASE.get_or_init(Instant::now);
        Instant::now().saturating_duration_since(base).as_nanos() as u64
    }
}

/// A wake stamp: the clock in units of 64 ns, truncated to 32 bits (it wraps every 274 s, so
/// a latency is measured right if it is shorter than that); never [`WAKE_NONE`] or
/// [`WAKE_ASKED`].
fn stamp_of(nanos: u64) -> u32 {
    ((nanos >> 6) as u32).max(STAMP_MIN)
}

/// The latency between a stamp and `nanos`, in nanoseconds.
fn latency_since(stamp: u32, nanos: u64) -> u64 {
    u64::from(stamp_of(nanos).wrapping_sub(stamp)) << 6
}

/// The wake side: a task whose next wake was asked for (`WAKE_ASKED`) is stamped with the
/// time of this one. Called for every wake of a task of this runtime, before it is queued:
/// one load and compare of a header word the wake touches anyway, whatever the mode.
#[inline]
pub(crate) fn on_wake(header: &Header) {
    if header.woken_at.load(Relaxed) == WAKE_ASKED {
        stamp(header);
    }
}

#[cold]
fn stamp(header: &Header) {
    header.woken_at.store(stamp_of(now_nanos()), Relaxed);
}

/// The runtime-wide part: the mode, how many workers profile, and the slot registry. On a
/// cache line of its own: every spawn and every loop turn reads it, and it must not share a
/// line with counters other threads write (the injector's, say).
#[repr(align(64))]
pub(crate) struct Profiler {
    pub(super) mode: AtomicU8,
    /// Workers profiling now; spawns are sampled for stamps while it is not 0.
    pub(super) active_workers: AtomicUsize,
    pub(super) registry: Mutex<Registry>,
}

#[derive(Default)]
pub(super) struct Registry {
    slots: HashMap<(usize, Option<Arc<str>>), u32>,
    /// By slot number - 1.
    pub(super) keys: Vec<(&'static Location<'static>, Option<Arc<str>>)>,
}

impl Profiler {
    pub(crate) fn new(mode: Mode) -> Profiler {
        Profiler {
            mode: AtomicU8::new(mode.to_u8()),
            active_workers: AtomicUsize::new(0),
            registry: Mutex::new(Registry::default()),
        }
    }

    pub(crate) fn mode(&self) -> Mode {
        Mode::from_u8(self.mode.load(Relaxed))
    }

    pub(crate) fn set_mode(&self, mode: Mode) {
        self.mode.store(mode.to_u8(), Relaxed);
    }

    /// Called for every spawn of a task of this runtime, before it is queued: while some
    /// worker profiles, stamps one spawn in [`SPAWN_SAMPLE`] (chosen by a hash of the task id),
    /// for the latency from the spawn to the first poll.
    #[inline]
    pub(crate) fn on_spawn(&self, header: &Header) {
        if self.active_workers.load(Relaxed) != 0 {
            spawn_sample(header);
        }
    }

    /// The slot of a location (and name), made on first sight. Slots count up from 1; 0 and
    /// `u32::MAX` are never handed out (`LocalProfile::last_stats` relies on the latter).
    fn slot(&self, location: &'static Location<'static>, name: Option<Arc<str>>) -> u32 {
        let mut reg = lock(&self.registry);
        let key = (std::ptr::from_ref(location) as usize, name);
        if let Some(&slot) = reg.slots.get(&key) {
            return slot;
        }
        reg.keys.push((location, key.1.clone()));
        let slot = u32::try_from(reg.keys.len())
            .ok()
            .filter(|&s| s != u32::MAX)
            .expect("pinwheel: more than 4 billion spawn locations and task names profiled");
        reg.slots.insert(key, slot);
        slot
    }
}

#[cold]
fn spawn_sample(header: &Header) {
    // The top bits of the id times a 64-bit odd constant: spread evenly, however ids are
    // handed out, and independent of what a workload spawns in which order.
    let h = header.id.as_u64().wrapping_mul(0x9E37_79B9_7F4A_7C15);
    if h >> (64 - SPAWN_SAMPLE.trailing_zeros()) == 0 {
        stamp(header);
    }
}

/// One location's figures on one worker. Written only by that worker.
#[derive(Default)]
pub(super) struct SlotStats {
    pub(super) tasks: AtomicU64,
    pub(super) polls: AtomicU64,
    /// Polls timed, and their time, each sampled poll weighted by the polls it stands for.
    pub(super) cpu_samples: AtomicU64,
    pub(super) cpu_nanos: AtomicU64,
    pub(super) lat_samples: AtomicU64,
    pub(super) lat_nanos: AtomicU64,
    pub(super) lat_hist: [AtomicU64; BUCKETS],
}

/// What one worker shares about its profiling: whether it profiles now, its table, and its
/// loop health. On cache lines of its own, as the worker stores to it every loop turn.
#[derive(Default)]
#[repr(align(64))]
pub(crate) struct WorkerProfile {
    pub(super) active: AtomicBool,
    /// The worker's slots, appended to when it first records a location (readers lock it).
    pub(super) table: Mutex<Vec<(u32, Arc<SlotStats>)>>,
    /// Average loop turn, in nanoseconds (the sliding average kept by the worker).
    pub(crate) avg_loop_nanos: AtomicU64,
    /// Time stolen from the worker by the OS, in nanoseconds, and the windows that lost it.
    pub(crate) stolen_nanos: AtomicU64,
}

/// A worker's own side: only its thread touches it.
pub(crate) struct LocalProfile {
    pub(super) active: Cell<bool>,
    /// This worker's stats, by slot number. An entry, once made, stays until the worker's
    /// thread ends (the rule `PollRecord::stats` relies on).
    pub(super) slots: RefCell<Vec<Option<Arc<SlotStats>>>>,
    /// Slots of unnamed tasks by spawn location address, so a task's first poll finds its slot
    /// without the registry's lock.
    pub(super) by_location: RefCell<HashMap<usize, u32>>,
    /// The last (location address, slot) found there: tasks spawned in a loop hit it.
    pub(super) last_location: Cell<(usize, u32)>,
    /// The (slot, its stats) of the last poll recorded in full whose location was past its
    /// first [`EXACT_POLLS`] (so its polls are no longer all timed): a poll of that slot may
    /// take [`count_poll`](Self::count_poll)'s fast path. The pointer follows
    /// `PollRecord::stats`'s rule; `(u32::MAX, null)` at first (no task has slot `u32::MAX`,
    /// see `Profiler::slot`).
    pub(super) last_stats: Cell<(u32, *const SlotStats)>,
    /// The spawn location (address) of the cached slot when that slot is an unnamed
    /// location's, 0 otherwise: a new unnamed task spawned there has the cached slot.
    pub(super) last_new: Cell<usize>,
    /// When (`now_nanos`) this worker last started profiling: a wake stamp older than that
    /// was left from an earlier period (a task asked for one, then profiling stopped before
    /// the poll that would have read it) and is not a latency of this one.
    pub(super) active_since: Cell<u64>,
    /// Polls until the next timed one (past a location's first `EXACT_POLLS`): redrawn at
    /// random between `CPU_SAMPLE / 2` and `3 * CPU_SAMPLE / 2` each time, so one poll in
    /// `CPU_SAMPLE` on average is timed without lining up with a workload's own period.
    pub(super) countdown: Cell<u32>,
    pub(super) rng: Cell<u32>,
    /// The sliding average of loop turns, times 1024 (HAProxy's `swrate`).
    pub(super) loop_sum: Cell<u64>,
    /// When the current turn started; `None` right after a park (the turn starts at the next
    /// clock reading).
    pub(super) turn_start: Cell<Option<Instant>>,
    /// When the worker last woke up (the start of its current stretch of work).
    pub(super) streak_start: Cell<Option<Instant>>,
    /// The open stolen-time window: its start on the monotonic clock and the thread's CPU
    /// clock.
    pub(super) window: Cell<Option<(Instant, Duration)>>,
}

impl LocalProfile {
    pub(crate) fn new(index: usize) -> LocalProfile {
        LocalProfile {
            active: Cell::new(false),
            slots: RefCell::new(Vec::new()),
            by_location: RefCell::new(HashMap::new()),
            last_location: Cell::new((0, 0)),
            last_stats: Cell::new((u32::MAX, std::ptr::null())),
            last_new: Cell::new(0),
            active_since: Cell::new(0),
            countdown: Cell::new(CPU_SAMPLE as u32),
            rng: Cell::new((0x2545_F491 ^ (index as u32).wrapping_mul(0x9E37_79B9)) | 1),
            loop_sum: Cell::new(0),
            turn_start: Cell::new(None),
            streak_start: Cell::new(None),
            window: Cell::new(None),
        }
    }

    /// Whether this worker profiles its polls now.
    #[inline]
    pub(crate) fn active(&self) -> bool {
        self.active.get()
    }

    fn next_rand(&self) -> u32 {
        xorshift(&self.rng)
    }

    /// The fast path of a profiled poll, before it: counts the poll and returns `true` when
    /// that is all there is to record: the task's slot is the cached one (`last_stats`: a
    /// location past its exact polls), or the task is new, unnamed and spawned where the last
    /// new task the slow path saw was (then its slot is set and the task counted); it carries
    /// no wake stamp; and the sampling countdown does not pick this poll to time. `false` sends
    /// the poll to [`begin_poll`](Self::begin_poll) instead (nothing is counted here then).
    #[inline(always)]
    pub(crate) fn count_poll(&self, header: &Header) -> bool {
        let (last_slot, ptr) = self.last_stats.get();
        let n = self.countdown.get();
        if n == 0 || header.woken_at.load(Relaxed) > WAKE_ASKED {
            return false;
        }
        let slot = header.prof_slot.load(Relaxed);
        let new = slot != last_slot;
        if new
            && !(slot == 0
                && header.flags & crate::task::FLAG_NAMED == 0
                && std::ptr::from_ref(header.location) as usize == self.last_new.get())
        {
            // Another location's task, or a named one, or seen before elsewhere.
            return false;
        }
        // SAFETY: the slot is the cached one, so the pointer is the one `begin_poll` cached for
        // this worker (`self`), whose slots keep their Arcs for the worker's life
        // (`PollRecord::stats`).
        let stats = unsafe { &*ptr };
        if new {
            header.prof_slot.store(last_slot, Relaxed);
            single_writer_add(&stats.tasks, 1);
        }
        single_writer_add(&stats.polls, 1);
        self.countdown.set(n - 1);
        true
    }

    /// Records the start of a poll [`count_poll`](Self::count_poll) did not take: finds the
    /// task's slot (counting the task if the profiler never saw it), counts the poll, reads
    /// the task's wake stamp into the latency figures, and decides whether to time the poll
    /// (then it asks for the task's next wake to be stamped). The caller polls the task, then
    /// hands the record to [`end_poll`](Self::end_poll); the borrow of the header ends here,
    /// before the poll may give the task's last reference away (the borrow rule, on
    /// `Header`).
    #[cold]
    #[inline(never)]
    pub(crate) fn begin_poll(
        &self,
        profiler: &Profiler,
        shared: &WorkerProfile,
        header: &Header,
        name: impl FnOnce() -> Option<Arc<str>>,
    ) -> PollRecord {
        let (slot, stats) = self.stats_of(profiler, shared, header, name);
        let polls = stats.polls.load(Relaxed);
        stats.polls.store(polls + 1, Relaxed);
        if polls + 1 >= EXACT_POLLS {
            // Past its exact polls: the next poll of this slot may take the fast path.
            self.last_stats.set((slot, std::ptr::from_ref(stats)));
            let named = header.flags & crate::task::FLAG_NAMED != 0;
            let location = std::ptr::from_ref(header.location) as usize;
            self.last_new.set(if named { 0 } else { location });
        }
        let weight = if polls < EXACT_POLLS {
            1
        } else {
            match self.countdown.get() {
                0 => {
                    let half = CPU_SAMPLE as u32 / 2;
                    self.countdown.set(half + self.next_rand() % (2 * half));
                    CPU_SAMPLE
                }
                n => {
                    self.countdown.set(n - 1);
                    0
                }
            }
        };
        let woken = header.woken_at.load(Relaxed);
        let stamped = woken > WAKE_ASKED;
        let now = if weight != 0 || stamped {
            now_nanos()
        } else {
            0
        };
        if stamped {
            let lat = latency_since(woken, now);
            if lat <= now.wrapping_sub(self.active_since.get()) {
                single_writer_add(&stats.lat_samples, 1);
                single_writer_add(&stats.lat_nanos, lat);
                let bucket = (63 - lat.max(1).leading_zeros() as usize).min(BUCKETS - 1);
                single_writer_add(&stats.lat_hist[bucket], 1);
            }
        }
        if weight != 0 {
            header.woken_at.store(WAKE_ASKED, Relaxed);
        } else if stamped {
            header.woken_at.store(WAKE_NONE, Relaxed);
        }
        PollRecord {
            stats: std::ptr::from_ref(stats),
            weight,
            start: now,
        }
    }

    /// Records the end of a poll begun with [`begin_poll`](Self::begin_poll).
    pub(crate) fn end_poll(&self, rec: PollRecord) {
        if rec.weight != 0 {
            let took = now_nanos().saturating_sub(rec.start);
            // SAFETY: `rec.stats` points into an Arc of `self.slots`, which keeps its entries
            // for the worker's life (see `PollRecord::stats`); `self` is that worker's.
            let stats = unsafe { &*rec.stats };
            single_writer_add(&stats.cpu_samples, 1);
            single_writer_add(&stats.cpu_nanos, took * rec.weight);
        }
    }

    #[cold]
    fn stats_of(
        &self,
        profiler: &Profiler,
        shared: &WorkerProfile,
        header: &Header,
        name: impl FnOnce() -> Option<Arc<str>>,
    ) -> (u32, &SlotStats) {
        let mut slot = header.prof_slot.load(Relaxed);
        let new = slot == 0;
        if new {
            slot = match name() {
                None => {
                    let addr = std::ptr::from_ref(header.location) as usize;
                    match self.last_location.get() {
                        (last, slot) if last == addr => slot,
                        _ => {
                            let slot = *self
                                .by_location
                                .borrow_mut()
                                .entry(addr)
                                .or_insert_with(|| profiler.slot(header.location, None));
                            self.last_location.set((addr, slot));
                            slot
                        }
                    }
                }
                Some(name) => profiler.slot(header.location, Some(name)),
            };
            header.prof_slot.store(slot, Relaxed);
        }
        let (last_slot, last_ptr) = self.last_stats.get();
        let ptr = if slot == last_slot {
            last_ptr
        } else {
            self.lookup(shared, slot)
        };
        // SAFETY: the pointer came from `lookup` for this worker (`self`), directly or through
        // `last_stats`, and its slots keep their Arcs for the worker's life
        // (`PollRecord::stats`).
        let stats = unsafe { &*ptr };
        if new {
            // The profiler sees this task for the first time.
            single_writer_add(&stats.tasks, 1);
        }
        (slot, stats)
    }

    /// This worker's stats of slot `slot`, made on first use (and shared in its table).
    fn lookup(&self, shared: &WorkerProfile, slot: u32) -> *const SlotStats {
        let mut slots = self.slots.borrow_mut();
        let i = slot as usize;
        if slots.len() <= i {
            slots.resize(i + 1, None);
        }
        let stats = slots[i].get_or_insert_with(|| {
            let stats = Arc::new(SlotStats::default());
            let mut table = lock(&shared.table);
            table.push((slot, stats.clone()));
            stats
        });
        // The Arc stays in `self.slots` for the worker's life (entries are never removed or
        // replaced), so this pointer stays valid as long as the worker (`PollRecord::stats`).
        Arc::as_ptr(stats)
    }
}

/// A poll being recorded: where its figures go, and whether (and since when) it is timed.
pub(crate) struct PollRecord {
    /// Points into an `Arc` held by `LocalProfile::slots`, which keeps every entry for as long
    /// as the worker lives; a record lives for one poll on that worker's thread.
    pub(super) stats: *const SlotStats,
    /// How many polls this one stands for in the time total (0: not timed).
    pub(super) weight: u64,
    pub(super) start: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_measure_latency_across_the_wrap() {
        let t = 5_000_000_000u64;
        assert_eq!(latency_since(stamp_of(t), t + 6_400), 6_400);
        // 2^38 ns after a base is past the 32-bit wrap of 64 ns units.
        let near_wrap = (1u64 << 38) - 640;
        assert_eq!(latency_since(stamp_of(near_wrap), near_wrap + 1_280), 1_280);
        assert_ne!(stamp_of(0), 0, "0 means no stamp");
    }
}
