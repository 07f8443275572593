//! The report: the workers' tables summed into a [`Profile`], and its table (HAProxy's `show
//! profiling`).

use std::collections::HashMap;
use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::Ordering::*;
use std::time::Duration;

use super::Mode;
use super::record::{BUCKETS, Profiler, SlotStats, WorkerProfile};
use crate::loom::lock;

impl Profiler {
    /// Sums the workers' tables: the profile as of now.
    pub(crate) fn profile<'a>(&self, workers: impl Iterator<Item = &'a WorkerProfile>) -> Profile {
        let mut sums: HashMap<u32, Sum> = HashMap::new();
        let mut active = Vec::new();
        for w in workers {
            active.push(w.active.load(Relaxed));
            let table = lock(&w.table);
            for (slot, stats) in table.iter() {
                sums.entry(*slot).or_default().add(stats);
            }
        }
        let reg = lock(&self.registry);
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
