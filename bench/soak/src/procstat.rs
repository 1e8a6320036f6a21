//! Resource use of the box, read from /proc (Linux).

use std::fs;

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Usage {
    /// Resident set size (VmRSS), KiB.
    pub rss_kb: u64,
    /// Anonymous resident memory (RssAnon), KiB: the heap, where a leak shows.
    pub rss_anon_kb: u64,
    pub threads: u64,
    /// Open file descriptors (entries of /proc/PID/fd).
    pub fds: u64,
}

pub fn usage(pid: u32) -> std::io::Result<Usage> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds = fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64;
    Ok(Usage {
        rss_kb: field("VmRSS:"),
        rss_anon_kb: field("RssAnon:"),
        threads: field("Threads:"),
        fds,
    })
}
