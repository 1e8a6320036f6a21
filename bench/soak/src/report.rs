//! Summary statistics and the Markdown report.

use crate::peer::Outcome;
use crate::procstat::Usage;
use crate::Args;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
pub struct CycleRecord {
    pub cycle: u64,
    pub worker: u64,
    /// Seconds since the soak started.
    pub started_secs: f64,
    pub outcome: Option<Outcome>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Cycles completed when the sample was taken.
    pub cycle: u64,
    pub secs: f64,
    /// Cycles under way at the time (their sessions are live in the box).
    pub in_flight: u64,
    /// Taken with no soak peer in the room (before the first cycle, or after the last one
    /// and the settle time).
    pub settled: bool,
    #[serde(flatten)]
    pub usage: Usage,
}

#[derive(Debug, Clone, Serialize)]
pub struct Dist {
    pub n: usize,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Dist {
    fn of(mut v: Vec<f64>) -> Option<Dist> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let q = |p: f64| v[(((v.len() - 1) as f64) * p).round() as usize];
        Some(Dist {
            n: v.len(),
            mean: v.iter().sum::<f64>() / v.len() as f64,
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            max: v[v.len() - 1],
        })
    }
}

/// One resource over the run.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    /// Before the first cycle.
    pub first: u64,
    /// The first sample at or after the warm-up.
    pub warm: u64,
    /// The last sample (settled, when the box was watched to the end).
    pub last: u64,
    pub max: u64,
    /// Least-squares slope over the periodic samples from the warm-up on, per 1000 cycles.
    pub growth_per_1000: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BoxSummary {
    pub samples: usize,
    pub warmup_cycles: u64,
    pub warm_sample_cycle: u64,
    pub rss_kb: Series,
    pub rss_anon_kb: Series,
    pub threads: Series,
    pub fds: Series,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub cycles: u64,
    pub ok: u64,
    pub failed: u64,
    /// Failure messages and how often each came.
    pub failures: BTreeMap<String, u64>,
    pub wall_secs: f64,
    pub cycles_per_sec: f64,
    pub connect_ms: Option<Dist>,
    pub media_ms: Option<Dist>,
    pub renegotiations: u64,
    pub room_full_retries: u64,
    /// Cycles whose first video (audio) came on an m-line the box added rather than ours.
    pub video_on_added_mid: u64,
    pub audio_on_added_mid: u64,
    /// Smallest and largest first decoded picture.
    pub video_sizes: Vec<(usize, usize)>,
    pub by_leave_mode: BTreeMap<String, u64>,
    #[serde(rename = "box")]
    pub box_: Option<BoxSummary>,
}

pub fn summarize(
    args: &Args,
    records: &[CycleRecord],
    samples: &[Sample],
    warmup: u64,
    wall: Duration,
) -> Summary {
    let oks: Vec<&Outcome> = records.iter().filter_map(|r| r.outcome.as_ref()).collect();
    let mut failures = BTreeMap::new();
    for e in records.iter().filter_map(|r| r.error.as_ref()) {
        *failures.entry(e.clone()).or_insert(0) += 1;
    }
    let mut sizes: Vec<(usize, usize)> = oks.iter().map(|o| (o.width, o.height)).collect();
    sizes.sort();
    sizes.dedup();
    let mut by_leave_mode = BTreeMap::new();
    for o in &oks {
        *by_leave_mode
            .entry(format!("{:?}", o.leave).to_lowercase())
            .or_insert(0) += 1;
    }
    let _ = args;
    Summary {
        cycles: records.len() as u64,
        ok: oks.len() as u64,
        failed: (records.len() - oks.len()) as u64,
        failures,
        wall_secs: wall.as_secs_f64(),
        cycles_per_sec: records.len() as f64 / wall.as_secs_f64().max(1e-9),
        connect_ms: Dist::of(oks.iter().map(|o| o.connect_ms).collect()),
        media_ms: Dist::of(oks.iter().map(|o| o.media_ms).collect()),
        renegotiations: oks.iter().map(|o| u64::from(o.renegotiations)).sum(),
        room_full_retries: oks.iter().map(|o| u64::from(o.room_full_retries)).sum(),
        video_on_added_mid: oks.iter().filter(|o| !o.video_on_offered_mid).count() as u64,
        audio_on_added_mid: oks.iter().filter(|o| !o.audio_on_offered_mid).count() as u64,
        video_sizes: sizes,
        by_leave_mode,
        box_: box_summary(samples, warmup),
    }
}

fn box_summary(samples: &[Sample], warmup: u64) -> Option<BoxSummary> {
    let first = samples.first()?;
    let last = samples.last()?;
    let warm = samples
        .iter()
        .find(|s| s.cycle >= warmup && s.cycle > 0)
        .unwrap_or(last);
    let periodic: Vec<&Sample> = samples
        .iter()
        .filter(|s| !s.settled && s.cycle >= warm.cycle)
        .collect();
    let series = |get: fn(&Usage) -> u64| Series {
        first: get(&first.usage),
        warm: get(&warm.usage),
        last: get(&last.usage),
        max: samples.iter().map(|s| get(&s.usage)).max().unwrap_or(0),
        growth_per_1000: slope(
            &periodic
                .iter()
                .map(|s| (s.cycle as f64, get(&s.usage) as f64))
                .collect::<Vec<_>>(),
        )
        .map(|k| k * 1000.0),
    };
    Some(BoxSummary {
        samples: samples.len(),
        warmup_cycles: warmup,
        warm_sample_cycle: warm.cycle,
        rss_kb: series(|u| u.rss_kb),
        rss_anon_kb: series(|u| u.rss_anon_kb),
        threads: series(|u| u.threads),
        fds: series(|u| u.fds),
    })
}

/// Least-squares slope of y over x; None with fewer than 2 distinct x.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    Some(sxy / sxx)
}

fn mib(kb: u64) -> String {
    format!("{:.1}", kb as f64 / 1024.0)
}

impl Summary {
    /// The one-line summary printed at the end.
    pub fn line(&self) -> String {
        let mut s = format!(
            "soak: cycles ok={} failed={} in {:.0} s ({:.2}/s)",
            self.ok, self.failed, self.wall_secs, self.cycles_per_sec
        );
        if let Some(c) = &self.connect_ms {
            let _ = write!(s, "; connect mean={:.0} ms p99={:.0} ms", c.mean, c.p99);
        }
        if let Some(m) = &self.media_ms {
            let _ = write!(s, "; media mean={:.0} ms p99={:.0} ms", m.mean, m.p99);
        }
        if let Some(b) = &self.box_ {
            let _ = write!(
                s,
                "; box RSS first={} MiB warm={} MiB last={} MiB max={} MiB growth={} KiB/1000 cycles; threads {}->{} (max {}); fds {}->{} (max {})",
                mib(b.rss_kb.first),
                mib(b.rss_kb.warm),
                mib(b.rss_kb.last),
                mib(b.rss_kb.max),
                b.rss_kb
                    .growth_per_1000
                    .map(|g| format!("{g:.0}"))
                    .unwrap_or_else(|| "n/a".into()),
                b.threads.first,
                b.threads.last,
                b.threads.max,
                b.fds.first,
                b.fds.last,
                b.fds.max,
            );
        }
        s
    }
}

/// The results as Markdown: the run, connect times, the box's resources and their course.
pub fn markdown(args: &Args, s: &Summary, samples: &[Sample]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "### Run\n");
    let _ = writeln!(
        md,
        "| cycles | ok | failed | parallel | leave | wall time | cycles/s | renegotiations by the box | media on m-lines the box added (video/audio) | room-full retries |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
    let _ = writeln!(
        md,
        "| {} | {} | {} | {} | {:?} ({}) | {:.0} s | {:.2} | {} | {}/{} | {} |\n",
        s.cycles,
        s.ok,
        s.failed,
        args.parallel,
        args.leave,
        s.by_leave_mode
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        s.wall_secs,
        s.cycles_per_sec,
        s.renegotiations,
        s.video_on_added_mid,
        s.audio_on_added_mid,
        s.room_full_retries,
    );
    if !s.failures.is_empty() {
        let _ = writeln!(md, "Failures:\n");
        for (e, n) in &s.failures {
            let _ = writeln!(md, "- {n} x `{e}`");
        }
        md.push('\n');
    }
    let sizes: Vec<String> = s
        .video_sizes
        .iter()
        .map(|(w, h)| format!("{w}x{h}"))
        .collect();
    let _ = writeln!(
        md,
        "### Connect time\n\nFrom opening the signaling WebSocket; \"connected\" is str0m's `Connected` (ICE and DTLS up), \"media\" is the first decoded H.264 picture ({}) and the first Opus packet from the box, whichever comes later.\n",
        sizes.join(", ")
    );
    let _ = writeln!(md, "| ms | mean | p50 | p90 | p99 | max |");
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    for (label, d) in [("connected", &s.connect_ms), ("media", &s.media_ms)] {
        if let Some(d) = d {
            let _ = writeln!(
                md,
                "| {label} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
                d.mean, d.p50, d.p90, d.p99, d.max
            );
        }
    }
    md.push('\n');

    let Some(b) = &s.box_ else {
        return md;
    };
    let _ = writeln!(
        md,
        "### The box's resources\n\n\"first\": before the first cycle; \"warm\": after {} cycles (warm-up); \"last\": {} s after the last cycle, no soak peer in the room; growth: least-squares slope over the samples from the warm-up to the last cycle ({} samples in all, every {} cycles).\n",
        b.warm_sample_cycle, args.settle_secs, b.samples, args.sample_every
    );
    let _ = writeln!(
        md,
        "| | first | warm | last | max | growth per 1000 cycles |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    let growth = |g: Option<f64>, unit: &str| {
        g.map(|g| format!("{g:+.1} {unit}"))
            .unwrap_or_else(|| "n/a".into())
    };
    let _ = writeln!(
        md,
        "| RSS (MiB) | {} | {} | {} | {} | {} |",
        mib(b.rss_kb.first),
        mib(b.rss_kb.warm),
        mib(b.rss_kb.last),
        mib(b.rss_kb.max),
        growth(b.rss_kb.growth_per_1000, "KiB"),
    );
    let _ = writeln!(
        md,
        "| RssAnon (MiB) | {} | {} | {} | {} | {} |",
        mib(b.rss_anon_kb.first),
        mib(b.rss_anon_kb.warm),
        mib(b.rss_anon_kb.last),
        mib(b.rss_anon_kb.max),
        growth(b.rss_anon_kb.growth_per_1000, "KiB"),
    );
    for (label, x) in [("threads", &b.threads), ("fds", &b.fds)] {
        let _ = writeln!(
            md,
            "| {label} | {} | {} | {} | {} | {} |",
            x.first,
            x.warm,
            x.last,
            x.max,
            growth(x.growth_per_1000, ""),
        );
    }
    md.push('\n');

    let _ = writeln!(md, "### RSS over cycles\n");
    let _ = writeln!(
        md,
        "| cycle | time (s) | peers in flight | RSS (MiB) | RssAnon (MiB) | threads | fds |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    // At most ~25 rows: every k-th sample, always the first and the last.
    let k = samples.len().div_ceil(25).max(1);
    for (i, smp) in samples.iter().enumerate() {
        if i % k != 0 && i != samples.len() - 1 {
            continue;
        }
        let _ = writeln!(
            md,
            "| {}{} | {:.0} | {} | {} | {} | {} | {} |",
            smp.cycle,
            if smp.settled { " (settled)" } else { "" },
            smp.secs,
            smp.in_flight,
            mib(smp.usage.rss_kb),
            mib(smp.usage.rss_anon_kb),
            smp.usage.threads,
            smp.usage.fds,
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line() {
        let pts: Vec<(f64, f64)> = (0..10)
            .map(|i| (f64::from(i), 3.0 * f64::from(i) + 1.0))
            .collect();
        assert!((slope(&pts).unwrap() - 3.0).abs() < 1e-9);
        assert_eq!(slope(&[(1.0, 1.0)]), None);
        assert_eq!(slope(&[(1.0, 1.0), (1.0, 2.0)]), None);
    }

    #[test]
    fn percentiles() {
        let d = Dist::of((1..=100).map(f64::from).collect()).unwrap();
        assert_eq!(d.n, 100);
        assert_eq!(d.max, 100.0);
        assert!((d.mean - 50.5).abs() < 1e-9);
        assert_eq!(d.p99, 99.0);
        assert!(Dist::of(vec![]).is_none());
    }
}
