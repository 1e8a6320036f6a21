//! The markdown table of RESULTS.md.

use crate::proto::ServerKind;
use crate::RunResult;
use std::fmt::Write;

/// Goal: resident bytes per idle connection for roombox-signal (10 KB, read as 10,000 bytes).
const GOAL_BYTES_PER_CONN: f64 = 10_000.0;
/// Goal: PeerJS's bytes per connection over roombox-signal's.
const GOAL_MEMORY_RATIO: f64 = 5.0;
/// Goal: relay p99 on loopback, microseconds.
const GOAL_P99_US: f64 = 1_000.0;

pub fn markdown(runs: &[RunResult]) -> String {
    let mut out = String::new();
    let find = |k: ServerKind| runs.iter().find(|r| r.server == k);
    let ordered: Vec<&RunResult> = [ServerKind::Roombox, ServerKind::Peerjs]
        .into_iter()
        .filter_map(find)
        .collect();
    let rb = find(ServerKind::Roombox);
    let pj = find(ServerKind::Peerjs);
    let both = rb.is_some() && pj.is_some();

    let mut header = String::from("| |");
    let mut rule = String::from("|---|");
    for r in &ordered {
        let _ = write!(header, " {} |", r.server.label());
        rule.push_str("---:|");
    }
    if both {
        header.push_str(" PeerJS ÷ roombox |");
        rule.push_str("---:|");
    }
    let _ = writeln!(out, "{header}\n{rule}");

    let mut row = |name: &str,
                   f: &dyn Fn(&RunResult) -> String,
                   ratio: Option<&dyn Fn(&RunResult) -> f64>| {
        let mut line = format!("| {name} |");
        for r in &ordered {
            let _ = write!(line, " {} |", f(r));
        }
        if both {
            match (ratio, rb, pj) {
                (Some(v), Some(rb), Some(pj)) => {
                    let ratio = v(pj) / v(rb);
                    let _ = if ratio < 0.1 {
                        write!(line, " {ratio:.3}x |")
                    } else {
                        write!(line, " {ratio:.1}x |")
                    };
                }
                _ => line.push_str(" |"),
            }
        }
        let _ = writeln!(out, "{line}");
    };

    let per_held = |r: &RunResult| r.idle.per_conn_held();
    let per_joined = |r: &RunResult| r.idle.per_conn_joined();
    let p50 = |r: &RunResult| r.latency.p50_us;
    let p99 = |r: &RunResult| r.latency.p99_us;
    let tput = |r: &RunResult| r.throughput.msgs_per_sec;

    row(
        "Idle connections joined / asked",
        &|r| format!("{} / {}", r.idle.joined, r.idle.target),
        None,
    );
    row(
        "Open at end of hold (client) / fewest during hold",
        &|r| format!("{} / {}", r.idle.open_at_end, r.idle.min_open_during_hold),
        None,
    );
    row(
        "Sockets held by the server at end of hold",
        &|r| r.idle.server_sockets_at_end.to_string(),
        None,
    );
    row(
        "Hold after last join",
        &|r| format!("{:.0} s", r.idle.hold_secs),
        None,
    );
    row(
        "Time to open and join all",
        &|r| format!("{:.1} s", r.idle.connect_secs),
        None,
    );
    row(
        "Server VmRSS: baseline → all joined → end of hold (peak)",
        &|r| {
            format!(
                "{:.1} → {:.1} → {:.1} ({:.1}) MiB",
                mib(r.idle.rss_baseline),
                mib(r.idle.rss_joined),
                mib(r.idle.rss_held),
                mib(r.idle.rss_peak)
            )
        },
        None,
    );
    row(
        "**Resident memory per idle connection** (end of hold)",
        &|r| format!("**{}**", bytes(per_held(r))),
        Some(&per_held),
    );
    row(
        "Resident memory per idle connection (right after joining)",
        &|r| bytes(per_joined(r)),
        Some(&per_joined),
    );
    row(
        "Server VmRSS 3 s after all closed",
        &|r| format!("{:.1} MiB", mib(r.idle.rss_after_close)),
        None,
    );
    row(
        "**Relay latency p50** (one-way A → B)",
        &|r| format!("**{:.0} µs**", r.latency.p50_us),
        Some(&p50),
    );
    row(
        "**Relay latency p99**",
        &|r| format!("**{:.0} µs**", r.latency.p99_us),
        Some(&p99),
    );
    row(
        "Relay latency p90 / p99.9 / max",
        &|r| {
            format!(
                "{:.0} / {:.0} / {:.0} µs",
                r.latency.p90_us, r.latency.p999_us, r.latency.max_us
            )
        },
        None,
    );
    row(
        "**Relay throughput** A → B (median round)",
        &|r| format!("**{:.0} msg/s**", r.throughput.msgs_per_sec),
        Some(&tput),
    );
    row(
        "Relay throughput, each round",
        &|r| {
            r.throughput
                .rounds
                .iter()
                .map(|x| format!("{x:.0}"))
                .collect::<Vec<_>>()
                .join(" / ")
                + " msg/s"
        },
        None,
    );
    let cpu = |r: &RunResult| r.throughput.server_cpu_us_per_msg;
    row(
        "Server CPU time per relayed message (throughput phase)",
        &|r| format!("{:.1} µs", cpu(r)),
        Some(&cpu),
    );
    row(
        "Relayed frame size (as sent by A)",
        &|r| format!("{} B", r.latency.frame_bytes),
        None,
    );

    let (Some(rb), Some(first)) = (rb, ordered.first()) else {
        return out;
    };
    let p = &first.params;
    let _ = writeln!(
        out,
        "\nLoad: {} idle connections (one room each for roombox; PeerJS clients send HEARTBEAT every 5 s \
         as its client library does), opened {} at a time. Latency: {} sequential offers after {} of warm-up, \
         about {}-byte frames. Throughput: {} offers with at most {} in flight, {} rounds, about {}-byte frames. \
         The generator runs on {} thread(s). \
         Memory: VmRSS from /proc/PID/status; per connection = (VmRSS with the connections − baseline) / connections. \
         Ratio column: PeerJS's number over roombox-signal's (for latency, lower is better; for throughput, higher).",
        p.conns,
        p.connect_concurrency,
        p.samples,
        p.warmup,
        first.latency.frame_bytes,
        p.messages,
        p.window,
        p.rounds,
        first.throughput.frame_bytes,
        p.threads,
    );

    let _ = writeln!(out, "\n### Goals (issue 2)\n");
    let per = per_held(rb);
    let _ = writeln!(
        out,
        "- Under 10 KB (10,000 bytes) resident per idle connection: {} ({})",
        verdict(per < GOAL_BYTES_PER_CONN),
        bytes(per)
    );
    if let Some(pj) = pj {
        let ratio = per_held(pj) / per;
        let _ = writeln!(
            out,
            "- At least 5x less memory per connection than the PeerJS server: {} ({ratio:.1}x)",
            verdict(ratio >= GOAL_MEMORY_RATIO)
        );
    }
    let _ = writeln!(
        out,
        "- Relay p99 under 1 ms on loopback: {} ({:.0} µs)",
        verdict(rb.latency.p99_us < GOAL_P99_US),
        rb.latency.p99_us
    );
    out
}

fn verdict(met: bool) -> &'static str {
    if met {
        "**met**"
    } else {
        "**missed**"
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn bytes(b: f64) -> String {
    format!("{:.0} B ({:.1} KiB)", b, b / 1024.0)
}
