//! Binding worker threads to CPUs (HAProxy's `cpu-map`), through `sched_setaffinity`.

use std::io;

/// The CPUs that are online (`/sys/devices/system/cpu/online`, e.g. `0-3,6`), or, where that
/// cannot be read, those the calling thread may run on.
#[cfg(target_os = "linux")]
pub(crate) fn online_cpus() -> io::Result<Vec<usize>> {
    match std::fs::read_to_string("/sys/devices/system/cpu/online") {
        Ok(text) => parse_list(text.trim()).ok_or_else(|| {
            io::Error::other(format!("cannot read the list of online CPUs {text:?}"))
        }),
        Err(_) => allowed_cpus(),
    }
}

/// Parses a kernel CPU list such as `0-3,6`.
fn parse_list(text: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<usize>().ok()?..=b.parse::<usize>().ok()?),
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// The CPUs the calling thread may run on (inherited by the threads it starts), in order.
#[cfg(target_os = "linux")]
pub(crate) fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `cpu` is below the set's capacity in bits.
    Ok((0..max)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// Binds the calling thread to `cpu`.
#[cfg(target_os = "linux")]
pub(crate) fn bind_current_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` was checked against the allowed set, whose bits fit in a cpu_set_t.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn allowed_cpus() -> io::Result<Vec<usize>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "pinwheel::Builder: binding workers to CPUs is only supported on Linux",
    ))
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn online_cpus() -> io::Result<Vec<usize>> {
    allowed_cpus()
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn bind_current_thread(_cpu: usize) -> io::Result<()> {
    allowed_cpus().map(drop)
}

/// "0-3, 6" for [0, 1, 2, 3, 6].
pub(crate) fn describe(cpus: &[usize]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        let mut end = start;
        while i + 1 < cpus.len() && cpus[i + 1] == end + 1 {
            i += 1;
            end = cpus[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_kernel_lists() {
        assert_eq!(super::parse_list("0-3,6"), Some(vec![0, 1, 2, 3, 6]));
        assert_eq!(super::parse_list("0"), Some(vec![0]));
        assert_eq!(super::parse_list("x"), None);
    }

    #[test]
    fn describes_ranges() {
        assert_eq!(super::describe(&[0, 1, 2, 3, 6, 8, 9]), "0-3, 6, 8-9");
        assert_eq!(super::describe(&[5]), "5");
    }
}
