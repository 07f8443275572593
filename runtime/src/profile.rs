//! Task profiling (HAProxy's `profiling.tasks` and `show profiling`) and loop health (HAProxy's
//! `show activity`: `avg_loop_us`, `cpust`).
//!
//! # What is recorded, and where
//!
//! Per spawn location (and task name, when set): the tasks started, their polls, the time spent
//! in those polls, and the *schedule latency* of their wakes (from the wake to the poll it
//! causes). Each worker keeps its own table (`LocalProfile`): it alone writes it, with
//! relaxed stores of atomics (no read-modify-write, no lock, no shared cache line), and
//! `Profiler::profile` sums the workers' tables when somebody asks. A location is given a
//! *slot* number once, by the runtime-wide registry (a mutex, taken once per location per
//! worker and once per task that has a name); the task's header caches its slot.
//!
//! # Clocks, and sampling
//!
//! Poll times are read from the monotonic clock (`CLOCK_MONOTONIC`, the one `Instant` reads,
//! read directly as a number of nanoseconds), not the thread's CPU clock: on
//! Linux the thread CPU clock is a system call (0.7 µs on the VM this was written on, against
//! 56 ns for the monotonic clock through the vDSO), too slow to read twice per poll. A poll's
//! wall time equals its CPU time unless the OS switched the worker out during it, which the
//! loop-health figures below report separately (stolen time).
//!
//! Even the monotonic clock costs about as much as a whole poll of a small task, so timing is
//! sampled: every poll is counted, the first [`EXACT_POLLS`] polls of each location on each
//! worker are timed, and after that one poll in [`CPU_SAMPLE`] (a per-worker countdown drawn
//! at random), each sampled poll standing for `CPU_SAMPLE` polls (an unbiased estimate of the
//! total). Schedule latency is measured on the wakes that follow timed polls: a timed poll
//! marks the task's header (`WAKE_ASKED`), the next wake of a marked task writes its time
//! there, and the poll it causes reads it (so a wake costs one compare of a header word, in
//! every mode); one spawn in [`SPAWN_SAMPLE`] is stamped too, for the latency from spawn to
//! first poll. The latency average and percentiles are those of the measured wakes.
//!
//! # What a poll costs
//!
//! A profiled poll takes one of two paths. The fast one, inlined in the worker's loop, is a
//! handful of instructions: the task's slot is the one the worker cached (a location past its
//! exact polls; or the task is new, unnamed, and spawned where the last new task was, which
//! sets its slot), its header holds no stamp, and the countdown does not pick it: the poll is
//! counted, the countdown moves. Every other poll (timed, carrying a stamp, of another
//! location than the cached one, or named and new) takes the slow path, out of line, which
//! looks the slot up, records what there is, and reads the clock if it must.
//!
//! # Modes
//!
//! [`Mode::Off`] costs one predictable branch per poll and one per wake. [`Mode::On`] profiles
//! every worker. [`Mode::Auto`] is HAProxy's `auto`: a worker profiles while its average loop
//! turn is above 1 ms, and stops once it falls below 0.99 ms.
//!
//! # Loop health
//!
//! Each worker measures each loop turn (from the clock reading its timers already take, so no
//! extra clock read but one before it parks) and keeps a sliding average over about the last
//! 1024 turns. *Stolen time* is wall time minus the thread's CPU time, over windows of about a
//! millisecond of continuous work, counted when a window lost at least 0.5 ms: the OS ran
//! something else while the worker had work. The thread CPU clock is read only once a worker
//! has worked for 0.5 ms without sleeping, then about once a millisecond, so a worker that
//! sleeps often pays nothing; what it cannot see is time stolen in the first 0.5 ms after a
//! worker wakes.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::metrics::single_writer_add;
use crate::task::Header;

/// Polls of a location that a worker times one by one before it starts sampling.
pub const EXACT_POLLS: u64 = 64;
/// After [`EXACT_POLLS`], one poll in this many (on average) is timed.
pub const CPU_SAMPLE: u64 = 64;
/// One spawn in this many is stamped, for the latency from a spawn to the task's first poll.
pub const SPAWN_SAMPLE: u64 = 64;

/// `Header::woken_at` holds no stamp and asks for none.
pub(crate) const WAKE_NONE: u32 = 0;
/// `Header::woken_at` asks the task's next wake for its time (a timed poll sets it, so the
/// wakes measured are those after the polls timed).
pub(crate) const WAKE_ASKED: u32 = 1;
/// The least value of a stamp (`stamp_of`): every value above [`WAKE_ASKED`] is one.
const STAMP_MIN: u32 = 2;

/// Latency histogram buckets: bucket `k` counts latencies below `2^(k+1)` ns (and at least
/// `2^k`, but for bucket 0); the last one counts everything above.
const BUCKETS: usize = 32;

/// Whether the runtime profiles its tasks: [`Builder::task_profiling`](crate::Builder::task_profiling),
/// [`Handle::set_task_profiling`](crate::Handle::set_task_profiling).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Nothing is recorded (the default): one branch per poll and per wake.
    #[default]
    Off,
    /// Every worker records every poll.
    On,
    /// A worker records while its average loop turn exceeds 1 ms, and stops below 0.99 ms
    /// (HAProxy's `profiling.tasks auto`): profiling comes on by itself when a worker is slow.
    Auto,
}

impl Mode {
    fn to_u8(self) -> u8 {
        match self {
            Mode::Off => 0,
            Mode::On => 1,
            Mode::Auto => 2,
        }
    }

    fn from_u8(v: u8) -> Mode {
        match v {
            1 => Mode::On,
            2 => Mode::Auto,
            _ => Mode::Off,
        }
    }
}

/// The next number of a xorshift32 sequence kept in `state` (never 0 if seeded non-zero): a
/// worker's cheap randomness, for its steal victims and its profiling samples.
pub(crate) fn xorshift(state: &Cell<u32>) -> u32 {
    let mut x = state.get();
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    state.set(x);
    x
}

/// Nanoseconds on the monotonic clock (the one `Instant` reads), from an arbitrary origin.
/// Read directly: converting an `Instant` to a number costs more than reading the clock.
fn now_nanos() -> u64 {
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
    mode: AtomicU8,
    /// Workers profiling now; spawns are sampled for stamps while it is not 0.
    active_workers: AtomicUsize,
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    slots: HashMap<(usize, Option<Arc<str>>), u32>,
    /// By slot number - 1.
    keys: Vec<(&'static Location<'static>, Option<Arc<str>>)>,
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
        let mut reg = self.registry.lock().unwrap_or_else(|e| e.into_inner());
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

    /// Sums the workers' tables: the profile as of now.
    pub(crate) fn profile<'a>(&self, workers: impl Iterator<Item = &'a WorkerProfile>) -> Profile {
        let mut sums: HashMap<u32, Sum> = HashMap::new();
        let mut active = Vec::new();
        for w in workers {
            active.push(w.active.load(Relaxed));
            let table = w.table.lock().unwrap_or_else(|e| e.into_inner());
            for (slot, stats) in table.iter() {
                sums.entry(*slot).or_default().add(stats);
            }
        }
        let reg = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let mut entries: Vec<ProfileEntry> = sums
            .into_iter()
            .map(|(slot, s)| {
                let (location, name) = reg.keys[slot as usize - 1].clone();
                s.entry(location, name)
            })
            .collect();
        entries.sort_by(|a, b| {
            b.cpu_total
                .cmp(&a.cpu_total)
                .then(b.polls.cmp(&a.polls))
                .then(a.location.to_string().cmp(&b.location.to_string()))
        });
        Profile {
            mode: self.mode(),
            workers_profiling: active,
            entries,
        }
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
struct SlotStats {
    tasks: AtomicU64,
    polls: AtomicU64,
    /// Polls timed, and their time, each sampled poll weighted by the polls it stands for.
    cpu_samples: AtomicU64,
    cpu_nanos: AtomicU64,
    lat_samples: AtomicU64,
    lat_nanos: AtomicU64,
    lat_hist: [AtomicU64; BUCKETS],
}

#[derive(Default)]
struct Sum {
    tasks: u64,
    polls: u64,
    cpu_nanos: u64,
    lat_samples: u64,
    lat_nanos: u64,
    lat_hist: [u64; BUCKETS],
}

impl Sum {
    fn add(&mut self, s: &SlotStats) {
        self.tasks += s.tasks.load(Relaxed);
        self.polls += s.polls.load(Relaxed);
        self.cpu_nanos += s.cpu_nanos.load(Relaxed);
        self.lat_samples += s.lat_samples.load(Relaxed);
        self.lat_nanos += s.lat_nanos.load(Relaxed);
        for (sum, v) in self.lat_hist.iter_mut().zip(&s.lat_hist) {
            *sum += v.load(Relaxed);
        }
    }

    fn entry(self, location: &'static Location<'static>, name: Option<Arc<str>>) -> ProfileEntry {
        let percentile = |p: u64| {
            if self.lat_samples == 0 {
                return None;
            }
            // The smallest bucket holding at least p% of the samples; its upper edge.
            let want = (self.lat_samples * p).div_ceil(100).max(1);
            let mut seen = 0;
            for (k, n) in self.lat_hist.iter().enumerate() {
                seen += n;
                if seen >= want {
                    return Some(Duration::from_nanos(1u64 << (k + 1).min(63)));
                }
            }
            None
        };
        ProfileEntry {
            location,
            name,
            tasks: self.tasks,
            polls: self.polls,
            cpu_total: Duration::from_nanos(self.cpu_nanos),
            latency_samples: self.lat_samples,
            latency_avg: (self.lat_samples > 0)
                .then(|| Duration::from_nanos(self.lat_nanos / self.lat_samples)),
            latency_p50: percentile(50),
            latency_p99: percentile(99),
        }
    }
}

/// What one worker shares about its profiling: whether it profiles now, its table, and its
/// loop health. On cache lines of its own, as the worker stores to it every loop turn.
#[derive(Default)]
#[repr(align(64))]
pub(crate) struct WorkerProfile {
    active: AtomicBool,
    /// The worker's slots, appended to when it first records a location (readers lock it).
    table: Mutex<Vec<(u32, Arc<SlotStats>)>>,
    /// Average loop turn, in nanoseconds (the sliding average kept by the worker).
    pub(crate) avg_loop_nanos: AtomicU64,
    /// Time stolen from the worker by the OS, in nanoseconds, and the windows that lost it.
    pub(crate) stolen_nanos: AtomicU64,
}

/// A worker's own side: only its thread touches it.
pub(crate) struct LocalProfile {
    active: Cell<bool>,
    /// This worker's stats, by slot number. An entry, once made, stays until the worker's
    /// thread ends (the rule `PollRecord::stats` relies on).
    slots: RefCell<Vec<Option<Arc<SlotStats>>>>,
    /// Slots of unnamed tasks by spawn location address, so a task's first poll finds its slot
    /// without the registry's lock.
    by_location: RefCell<HashMap<usize, u32>>,
    /// The last (location address, slot) found there: tasks spawned in a loop hit it.
    last_location: Cell<(usize, u32)>,
    /// The (slot, its stats) of the last poll recorded in full whose location was past its
    /// first [`EXACT_POLLS`] (so its polls are no longer all timed): a poll of that slot may
    /// take [`count_poll`](Self::count_poll)'s fast path. The pointer follows
    /// `PollRecord::stats`'s rule; `(u32::MAX, null)` at first (no task has slot `u32::MAX`,
    /// see `Profiler::slot`).
    last_stats: Cell<(u32, *const SlotStats)>,
    /// The spawn location (address) of the cached slot when that slot is an unnamed
    /// location's, 0 otherwise: a new unnamed task spawned there has the cached slot.
    last_new: Cell<usize>,
    /// When (`now_nanos`) this worker last started profiling: a wake stamp older than that
    /// was left from an earlier period (a task asked for one, then profiling stopped before
    /// the poll that would have read it) and is not a latency of this one.
    active_since: Cell<u64>,
    /// Polls until the next timed one (past a location's first `EXACT_POLLS`): redrawn at
    /// random between `CPU_SAMPLE / 2` and `3 * CPU_SAMPLE / 2` each time, so one poll in
    /// `CPU_SAMPLE` on average is timed without lining up with a workload's own period.
    countdown: Cell<u32>,
    rng: Cell<u32>,
    /// The sliding average of loop turns, times 1024 (HAProxy's `swrate`).
    loop_sum: Cell<u64>,
    /// When the current turn started; `None` right after a park (the turn starts at the next
    /// clock reading).
    turn_start: Cell<Option<Instant>>,
    /// When the worker last woke up (the start of its current stretch of work).
    streak_start: Cell<Option<Instant>>,
    /// The open stolen-time window: its start on the monotonic clock and the thread's CPU
    /// clock.
    window: Cell<Option<(Instant, Duration)>>,
}

/// The sliding average covers about this many loop turns.
const LOOP_SAMPLES: u64 = 1024;
/// A window of work is closed (and its stolen time counted) after this long.
const WINDOW: Duration = Duration::from_millis(1);
/// A window counts as stolen when it lost at least this much.
const STOLEN_MIN: Duration = Duration::from_micros(500);
/// `Mode::Auto` turns a worker's profiling on above this average loop turn...
const AUTO_ON: Duration = Duration::from_millis(1);
/// ... and off below this one.
const AUTO_OFF: Duration = Duration::from_micros(990);

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

    /// A loop turn starts at `now` (the clock reading of its timers). Ends the previous turn
    /// if it did not park, keeps the stolen-time window, and applies the mode.
    pub(crate) fn turn_starts(&self, now: Instant, profiler: &Profiler, shared: &WorkerProfile) {
        if let Some(start) = self.turn_start.replace(Some(now)) {
            self.turn_ends(start, now, shared);
        }
        if self.streak_start.get().is_none() {
            self.streak_start.set(Some(now));
        }
        self.check_window(now, false, shared);
        let avg = Duration::from_nanos(self.loop_sum.get() / LOOP_SAMPLES);
        let want = match profiler.mode() {
            Mode::Off => false,
            Mode::On => true,
            Mode::Auto if self.active.get() => avg >= AUTO_OFF,
            Mode::Auto => avg > AUTO_ON,
        };
        if want != self.active.get() {
            self.active.set(want);
            shared.active.store(want, Relaxed);
            if want {
                self.active_since.set(now_nanos());
                profiler.active_workers.fetch_add(1, Relaxed);
            } else {
                profiler.active_workers.fetch_sub(1, Relaxed);
            }
        }
    }

    /// The worker is about to sleep: its turn and its window end now.
    pub(crate) fn before_park(&self, shared: &WorkerProfile) {
        let now = Instant::now();
        if let Some(start) = self.turn_start.take() {
            self.turn_ends(start, now, shared);
        }
        self.check_window(now, true, shared);
        self.streak_start.set(None);
    }

    /// The worker stops: it no longer counts as profiling.
    pub(crate) fn stop(&self, profiler: &Profiler, shared: &WorkerProfile) {
        if self.active.replace(false) {
            shared.active.store(false, Relaxed);
            profiler.active_workers.fetch_sub(1, Relaxed);
        }
    }

    fn turn_ends(&self, start: Instant, end: Instant, shared: &WorkerProfile) {
        let took = end.saturating_duration_since(start).as_nanos() as u64;
        let sum = self.loop_sum.get();
        let sum = sum - sum / LOOP_SAMPLES + took;
        self.loop_sum.set(sum);
        shared.avg_loop_nanos.store(sum / LOOP_SAMPLES, Relaxed);
    }

    /// Opens a stolen-time window once the worker has worked for `STOLEN_MIN` since it woke,
    /// closes it after `WINDOW` (or at a park), and counts what it lost.
    fn check_window(&self, now: Instant, parking: bool, shared: &WorkerProfile) {
        match self.window.get() {
            None => {
                let worked = self
                    .streak_start
                    .get()
                    .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
                if !parking && worked >= STOLEN_MIN {
                    if let Some(cpu) = thread_cpu_time() {
                        self.window.set(Some((now, cpu)));
                    }
                }
            }
            Some((start, cpu_start)) => {
                let wall = now.saturating_duration_since(start);
                if wall < WINDOW && !parking {
                    return;
                }
                let Some(cpu) = thread_cpu_time() else {
                    self.window.set(None);
                    return;
                };
                let lost = wall.saturating_sub(cpu.saturating_sub(cpu_start));
                if lost >= STOLEN_MIN {
                    single_writer_add(&shared.stolen_nanos, lost.as_nanos() as u64);
                }
                self.window.set((!parking).then_some((now, cpu)));
            }
        }
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
            let mut table = shared.table.lock().unwrap_or_else(|e| e.into_inner());
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
    stats: *const SlotStats,
    /// How many polls this one stands for in the time total (0: not timed).
    weight: u64,
    start: u64,
}

/// The calling thread's CPU time, where the OS has a per-thread CPU clock.
fn thread_cpu_time() -> Option<Duration> {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; the call writes only it.
        let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        (r == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The task profile of a runtime, from [`Handle::profile`](crate::Handle::profile): one entry
/// per spawn location (and task name), sorted by the time spent polling, most first.
///
/// Its `Display` is a table like HAProxy's `show profiling`:
///
/// ```text
///   tasks     calls   cpu_tot   cpu_avg   lat_avg   lat_p50   lat_p99  location
///     100    100000   41.20ms   412.0ns   3.201us     2.0us     8.2us  src/main.rs:12:5 "reader"
/// ```
#[derive(Clone, Debug)]
pub struct Profile {
    mode: Mode,
    workers_profiling: Vec<bool>,
    entries: Vec<ProfileEntry>,
}

impl Profile {
    /// The entries, most CPU time first.
    pub fn entries(&self) -> &[ProfileEntry] {
        &self.entries
    }

    /// The runtime's profiling mode when the profile was taken.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Which workers were profiling when the profile was taken (by worker index).
    pub fn workers_profiling(&self) -> &[bool] {
        &self.workers_profiling
    }
}

/// One line of a [`Profile`]: what the tasks spawned at one location (with one name) did
/// while profiling was on.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ProfileEntry {
    /// Where the tasks were spawned.
    pub location: &'static Location<'static>,
    /// Their name ([`task::Builder::name`](crate::task::Builder::name)), if they had one.
    pub name: Option<Arc<str>>,
    /// Tasks polled while profiling was on, each counted once, at the first such poll (a task
    /// cancelled before it ran, or polled only while profiling was off, is not counted).
    pub tasks: u64,
    /// Polls recorded.
    pub polls: u64,
    /// Time spent in those polls (monotonic clock; sampled past the first polls, see the
    /// module docs).
    pub cpu_total: Duration,
    /// Wakes whose schedule latency was measured.
    pub latency_samples: u64,
    /// The average time from a wake to the poll it caused.
    pub latency_avg: Option<Duration>,
    /// The median of that time, as the upper edge of its power-of-two bucket (so within a
    /// factor of two, never below the true value).
    pub latency_p50: Option<Duration>,
    /// The 99th percentile of that time, as the upper edge of its power-of-two bucket.
    pub latency_p99: Option<Duration>,
}

impl ProfileEntry {
    /// The average time of one poll.
    pub fn cpu_avg(&self) -> Duration {
        if self.polls == 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos((self.cpu_total.as_nanos() / u128::from(self.polls)) as u64)
        }
    }
}

/// A duration in the table's units: `412.0ns`, `3.201us`, `41.20ms`, `1.500s`.
struct Short(Option<Duration>);

impl fmt::Display for Short {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(d) = self.0 else {
            return f.pad("-");
        };
        let ns = d.as_nanos() as f64;
        let s = if ns < 1e3 {
            format!("{ns:.1}ns")
        } else if ns < 1e6 {
            format!("{:.3}us", ns / 1e3)
        } else if ns < 1e9 {
            format!("{:.2}ms", ns / 1e6)
        } else {
            format!("{:.3}s", ns / 1e9)
        };
        f.pad(&s)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = self.workers_profiling.iter().filter(|a| **a).count();
        writeln!(
            f,
            "profiling: {:?}, {on} of {} workers recording",
            self.mode,
            self.workers_profiling.len()
        )?;
        writeln!(
            f,
            "{:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  location",
            "tasks", "calls", "cpu_tot", "cpu_avg", "lat_avg", "lat_p50", "lat_p99"
        )?;
        for e in &self.entries {
            write!(
                f,
                "{:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  {}",
                e.tasks,
                e.polls,
                Short(Some(e.cpu_total)),
                Short(Some(e.cpu_avg())),
                Short(e.latency_avg),
                Short(e.latency_p50),
                Short(e.latency_p99),
                e.location
            )?;
            if let Some(name) = &e.name {
                write!(f, " {name:?}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
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

    #[test]
    fn percentiles_are_bucket_upper_edges() {
        let mut s = Sum {
            lat_samples: 100,
            ..Default::default()
        };
        s.lat_hist[10] = 98; // [1024, 2048) ns
        s.lat_hist[20] = 2; // [1 Mi, 2 Mi) ns
        let e = s.entry(Location::caller(), None);
        assert_eq!(e.latency_p50, Some(Duration::from_nanos(2048)));
        assert_eq!(e.latency_p99, Some(Duration::from_nanos(1 << 21)));
    }

    #[test]
    fn short_durations() {
        let f = |ns| Short(Some(Duration::from_nanos(ns))).to_string();
        assert_eq!(f(412), "412.0ns");
        assert_eq!(f(3_201), "3.201us");
        assert_eq!(f(41_200_000), "41.20ms");
        assert_eq!(f(1_500_000_000), "1.500s");
        assert_eq!(Short(None).to_string(), "-");
    }
}
