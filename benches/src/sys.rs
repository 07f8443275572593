//! What `/proc` says of this process's threads, and binding threads to CPUs.

/// What `/proc/self/task` says of a group of this process's threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadStats {
    /// How many threads matched.
    pub threads: usize,
    /// User + system CPU time, in clock ticks (10 ms).
    pub cpu_ticks: u64,
    /// Voluntary + involuntary context switches.
    pub ctx_switches: u64,
}

/// The stats of this process's threads whose name starts with one of `prefixes` (Linux; names
/// are cut at 15 bytes by the kernel).
pub fn thread_stats(prefixes: &[&str]) -> ThreadStats {
    let mut out = ThreadStats::default();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for entry in dir.flatten() {
        let p = entry.path();
        let Ok(comm) = std::fs::read_to_string(p.join("comm")) else {
            continue;
        };
        if !prefixes.iter().any(|x| comm.trim_end().starts_with(x)) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(p.join("stat")) else {
            continue;
        };
        let Some(i) = stat.rfind(')') else { continue };
        // After the command name: utime and stime are the 12th and 13th fields.
        let f: Vec<&str> = stat[i + 2..].split_whitespace().collect();
        out.cpu_ticks += f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        if let Ok(status) = std::fs::read_to_string(p.join("status")) {
            out.ctx_switches += status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
        out.threads += 1;
    }
    out
}

/// User + system CPU time, in clock ticks (10 ms), of this process's threads whose name starts
/// with `prefix`, and how many such threads there are (Linux, from `/proc/self/task`).
pub fn thread_cpu_ticks(prefix: &str) -> (usize, u64) {
    let s = thread_stats(&[prefix]);
    (s.threads, s.cpu_ticks)
}

/// `PINWHEEL_BENCH_PIN=1`: the servers' workers run on CPUs `0..workers` and the load
/// generator (the calling thread) on the CPUs after them, so that on a small machine the
/// client does not compete with the server for a core (use `--workers 1` on 2 cores).
pub fn pinned() -> bool {
    std::env::var_os("PINWHEEL_BENCH_PIN").is_some()
}

/// Binds the calling thread to the CPUs in `cpus` (Linux; elsewhere a no-op).
pub fn bind_current_thread(cpus: std::ops::Range<usize>) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a zeroed cpu_set_t is a valid empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for cpu in cpus {
            // SAFETY: CPU numbers on this machine fit in a cpu_set_t.
            unsafe { libc::CPU_SET(cpu, &mut set) };
        }
        // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
        let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        assert_eq!(
            r,
            0,
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        );
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cpus;
}

/// Open descriptors of this process (Linux, from `/proc/self/fd`; 0 elsewhere).
pub fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

/// Resident memory of this process, in KiB (Linux, from `/proc/self/statm`; 0 elsewhere).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4)
}
