//! What a process holds, read from `/proc`: resident memory and open file descriptors. The
//! reliability tests (load, faults, resource bounds) compare these before, during and after
//! a run, so a leak of connections, tasks' sockets or buffers shows as a number.

use std::path::Path;

/// Resident set size in KiB (`VmRSS`), or `None` once the process is gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS:")
}

/// Peak resident set size in KiB (`VmHWM`, the high-water mark since start).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmHWM:")
}

/// Threads of the process (`Threads`).
pub fn threads(pid: u32) -> Option<u64> {
    status_field(pid, "Threads:")
}

/// Open file descriptors (entries of `/proc/PID/fd`).
pub fn open_fds(pid: u32) -> Option<usize> {
    let dir = Path::new("/proc").join(pid.to_string()).join("fd");
    Some(std::fs::read_dir(dir).ok()?.count())
}

fn status_field(pid: u32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(super::rss_kib(me).unwrap() > 0);
        assert!(super::peak_rss_kib(me).unwrap() >= super::rss_kib(me).unwrap() / 2);
        assert!(super::threads(me).unwrap() >= 1);
        assert!(super::open_fds(me).unwrap() >= 3);
    }
}
