//! The side-by-side runner: each workload on both runtimes in turn (A B A B ...), medians and
//! the ratio pinwheel/tokio.

use std::time::{Duration, Instant};

use crate::{Exec, Pinwheel, Tokio, Workload};

/// How a comparison is run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Worker threads of both runtimes.
    pub workers: usize,
    /// Measured rounds per runtime (at least 5).
    pub rounds: usize,
    /// Wall time one round should take, to size the iteration count.
    pub round_target: Duration,
}

/// One row of the report.
#[derive(Clone, Debug)]
pub struct Row {
    /// The workload's name.
    pub name: &'static str,
    /// Median time of one iteration on pinwheel, in nanoseconds.
    pub pinwheel_ns: f64,
    /// Median time of one iteration on tokio, in nanoseconds.
    pub tokio_ns: f64,
    /// The workload's floor, already subtracted from both medians (0 for most workloads).
    pub floor_ns: f64,
    /// Context switches of pinwheel's threads per iteration, over the measured rounds.
    pub pinwheel_cs: f64,
    /// Context switches of tokio's threads per iteration, over the measured rounds.
    pub tokio_cs: f64,
    /// The network rows' third column, tokio run thread-per-core: median time and context
    /// switches per iteration.
    pub tpc: Option<(f64, f64)>,
    /// The network rows' fourth column, the floor: a bare mio loop per worker thread
    /// ([`MioFloor`](crate::floor::MioFloor)), median time and context switches per iteration.
    pub floor: Option<(f64, f64)>,
}

impl Row {
    /// pinwheel's time over tokio's: below 1.0 means pinwheel is faster.
    pub fn ratio(&self) -> f64 {
        self.pinwheel_ns / self.tokio_ns
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn time_iters<E: Exec, W: Workload<E>>(w: &mut W, rt: &E, iters: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        w.iter(rt);
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

/// Times `iters` iterations and adds the context switches of `E`'s threads to `cs`.
fn measure<E: Exec, W: Workload<E>>(w: &mut W, rt: &E, iters: usize, cs: &mut u64) -> f64 {
    let before = crate::thread_stats(E::THREADS).ctx_switches;
    let ns = time_iters(w, rt, iters);
    *cs += crate::thread_stats(E::THREADS)
        .ctx_switches
        .saturating_sub(before);
    ns
}

/// Runs one workload on pinwheel and on tokio, alternating, and returns its row.
pub fn compare<W>(name: &'static str, cfg: &Config) -> Row
where
    W: Default + Workload<Pinwheel> + Workload<Tokio>,
{
    compare_pair::<W, Pinwheel, Tokio>(name, cfg)
}

/// Runs one workload on runtimes `A` and `B`, alternating; the row's `pinwheel_ns` is `A`'s
/// time and `tokio_ns` is `B`'s.
pub fn compare_pair<W, A, B>(name: &'static str, cfg: &Config) -> Row
where
    W: Default + Workload<A> + Workload<B>,
    A: Exec,
    B: Exec,
{
    let pw = A::build(cfg.workers);
    let tk = B::build(cfg.workers);
    let (mut wp, mut wt) = (W::default(), W::default());
    // Warm-up, and size the rounds from the slower runtime.
    let mut one = 0f64;
    for _ in 0..3 {
        one = one
            .max(time_iters(&mut wp, &pw, 1))
            .max(time_iters(&mut wt, &tk, 1));
    }
    let iters = ((cfg.round_target.as_nanos() as f64 / one) as usize).clamp(1, 100_000);
    let (mut p, mut t) = (Vec::new(), Vec::new());
    let (mut pcs, mut tcs) = (0u64, 0u64);
    for round in 0..cfg.rounds {
        // Alternate which runtime goes first, so neither always runs on a warmer machine.
        if round % 2 == 0 {
            p.push(measure(&mut wp, &pw, iters, &mut pcs));
            t.push(measure(&mut wt, &tk, iters, &mut tcs));
        } else {
            t.push(measure(&mut wt, &tk, iters, &mut tcs));
            p.push(measure(&mut wp, &pw, iters, &mut pcs));
        }
    }
    let measured = (cfg.rounds * iters) as f64;
    // Compare what the runtimes add above the workload's floor (a sleep's own length).
    let floor = Workload::<A>::floor(&wp).as_nanos() as f64;
    Row {
        name,
        pinwheel_ns: median(&mut p) - floor,
        tokio_ns: median(&mut t) - floor,
        floor_ns: floor,
        pinwheel_cs: pcs as f64 / measured,
        tokio_cs: tcs as f64 / measured,
        tpc: None,
        floor: None,
    }
}

/// Like [`compare`], with tokio run thread-per-core ([`TokioTpc`](crate::tpc::TokioTpc)) and
/// the floor ([`MioFloor`](crate::floor::MioFloor), a bare mio loop per worker) as third and
/// fourth runtimes in the rotation (network rows).
pub fn compare_with_tpc<W>(name: &'static str, cfg: &Config) -> Row
where
    W: Default
        + Workload<Pinwheel>
        + Workload<Tokio>
        + Workload<crate::tpc::TokioTpc>
        + Workload<crate::floor::MioFloor>,
{
    use crate::floor::MioFloor;
    use crate::tpc::TokioTpc;
    let pw = Pinwheel::build(cfg.workers);
    let tk = Tokio::build(cfg.workers);
    let tpc = TokioTpc::build(cfg.workers);
    let bare = MioFloor::build(cfg.workers);
    let (mut wp, mut wt, mut wc, mut wb) = (W::default(), W::default(), W::default(), W::default());
    let mut one = 0f64;
    for _ in 0..3 {
        one = one
            .max(time_iters(&mut wp, &pw, 1))
            .max(time_iters(&mut wt, &tk, 1))
            .max(time_iters(&mut wc, &tpc, 1))
            .max(time_iters(&mut wb, &bare, 1));
    }
    let iters = ((cfg.round_target.as_nanos() as f64 / one) as usize).clamp(1, 100_000);
    let (mut p, mut t, mut c, mut b) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut pcs, mut tcs, mut ccs, mut bcs) = (0u64, 0u64, 0u64, 0u64);
    for round in 0..cfg.rounds {
        // Rotate which runtime goes first.
        for k in 0..4 {
            match (round + k) % 4 {
                0 => p.push(measure(&mut wp, &pw, iters, &mut pcs)),
                1 => t.push(measure(&mut wt, &tk, iters, &mut tcs)),
                2 => c.push(measure(&mut wc, &tpc, iters, &mut ccs)),
                _ => b.push(measure(&mut wb, &bare, iters, &mut bcs)),
            }
        }
    }
    let measured = (cfg.rounds * iters) as f64;
    Row {
        name,
        pinwheel_ns: median(&mut p),
        tokio_ns: median(&mut t),
        floor_ns: 0.0,
        pinwheel_cs: pcs as f64 / measured,
        tokio_cs: tcs as f64 / measured,
        tpc: Some((median(&mut c), ccs as f64 / measured)),
        floor: Some((median(&mut b), bcs as f64 / measured)),
    }
}

/// Formats nanoseconds for people.
pub fn human(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// The rows as JSON: `[{"name":..,"pinwheel_ns":..,"tokio_ns":..,"ratio":..,...}]`.
pub fn to_json(rows: &[Row]) -> String {
    let items: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{{\"name\":\"{}\",\"pinwheel_ns\":{:.1},\"tokio_ns\":{:.1},\"ratio\":{:.4},\"floor_ns\":{:.1},\"pinwheel_cs\":{:.2},\"tokio_cs\":{:.2}{}{}}}",
                r.name,
                r.pinwheel_ns,
                r.tokio_ns,
                r.ratio(),
                r.floor_ns,
                r.pinwheel_cs,
                r.tokio_cs,
                r.tpc.map_or(String::new(), |(ns, cs)| format!(
                    ",\"tokio_tpc_ns\":{ns:.1},\"tokio_tpc_cs\":{cs:.2}"
                )),
                r.floor.map_or(String::new(), |(ns, cs)| format!(
                    ",\"floor_mio_ns\":{ns:.1},\"floor_mio_cs\":{cs:.2}"
                ))
            )
        })
        .collect();
    format!("[{}]\n", items.join(","))
}
