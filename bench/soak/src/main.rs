//! roombox-soak: join/leave cycles against the room box by a browser-like WebRTC peer (str0m),
//! while watching the box's resident memory, threads and file descriptors for leaks.
//!
//! Each cycle: join the room as a browser, offer audio (sendrecv) and video (recvonly) to the
//! box with a fresh `pc`, answer the box's renegotiation if any, trickle ICE on 127.0.0.1, wait
//! for the connection, one decoded H.264 picture and one Opus packet from the box, then leave
//! (see `--leave`). `--parallel` peers cycle at once.

mod peer;
mod procstat;
mod report;

use anyhow::Context;
use clap::Parser;
use peer::{CycleConfig, LeaveMode};
use report::{CycleRecord, Sample};
use roombox_protocol::RoomName;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser, Debug, Clone, serde::Serialize)]
#[command(about = "Soak test of the room box: join/leave cycles by a browser-like WebRTC peer")]
pub struct Args {
    /// The signaling server (http(s):// or ws(s)://); /ws is appended.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    signal_url: String,
    #[arg(long, default_value = "soak")]
    room: String,
    /// A file holding the room's secret (the box's `<state dir>/room-secret`): signaling and
    /// frames are sealed (docs/protocol.md, version 2).
    #[arg(long)]
    room_secret_file: PathBuf,
    /// Join/leave cycles in all.
    #[arg(long, default_value_t = 100)]
    cycles: u64,
    /// Peers cycling at once (the box's room holds 6: the box and at most 5 others).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=5))]
    parallel: u64,
    /// The box's process id: sample its VmRSS, threads and fds.
    #[arg(long)]
    box_pid: Option<u32>,
    /// Sample the box every this many completed cycles.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    sample_every: u64,
    /// Cycles before the growth is measured (default: a tenth of --cycles).
    #[arg(long)]
    warmup: Option<u64>,
    /// A cycle that has not seen media after this many seconds fails.
    #[arg(long, default_value_t = 15)]
    cycle_timeout: u64,
    /// Exit non-zero when more cycles than this fail.
    #[arg(long, default_value_t = 3)]
    max_failures: u64,
    /// Stop starting cycles after this many failures (the box is broken; keep the run bounded).
    #[arg(long, default_value_t = 25)]
    abort_after: u64,
    /// How a peer goes: leave, close (DTLS close_notify first), drop (TCP gone), mixed.
    #[arg(long, value_enum, default_value = "mixed")]
    leave: LeaveMode,
    /// Fail a cycle whose first decoded picture is not WxH.
    #[arg(long, value_parser = parse_size)]
    expect_size: Option<(usize, usize)>,
    /// Start no cycle after this many seconds (the run stays bounded; fewer cycles fail it).
    #[arg(long)]
    max_secs: Option<u64>,
    /// After the last cycle, wait this long before the final (settled) sample.
    #[arg(long, default_value_t = 6)]
    settle_secs: u64,
    /// Write the summary, every sample and every cycle as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the results as Markdown tables here.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let (w, h) = s.split_once('x').ok_or("expected WxH")?;
    Ok((
        w.parse().map_err(|_| "bad width")?,
        h.parse().map_err(|_| "bad height")?,
    ))
}

fn ws_url(signal_url: &str) -> anyhow::Result<String> {
    let base = signal_url.trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if base.starts_with("ws://") || base.starts_with("wss://") {
        base.to_owned()
    } else {
        anyhow::bail!("--signal-url must be http(s):// or ws(s)://, not {signal_url:?}");
    };
    Ok(if base.ends_with("/ws") {
        base
    } else {
        format!("{base}/ws")
    })
}

/// One second of a 440 Hz tone as 20 ms Opus packets (48 kHz mono), sent in a loop.
fn tone_packets() -> anyhow::Result<Vec<Arc<[u8]>>> {
    let mut enc = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)
        .context("Opus encoder")?;
    let mut out = Vec::new();
    let mut buf = [0u8; 1500];
    for frame in 0..50 {
        let pcm: Vec<i16> = (0..960)
            .map(|i| {
                let t = f64::from(frame * 960 + i) / 48_000.0;
                (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
            })
            .collect();
        let n = enc.encode(&pcm, &mut buf).context("Opus encode")?;
        out.push(Arc::from(&buf[..n]));
    }
    Ok(out)
}

struct Shared {
    args: Args,
    cfg: CycleConfig,
    started_at: Instant,
    next: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    records: Mutex<Vec<CycleRecord>>,
    samples: Mutex<Vec<Sample>>,
    box_gone: Mutex<Option<String>>,
}

impl Shared {
    fn sample(&self, cycle: u64, settled: bool) {
        let Some(pid) = self.args.box_pid else { return };
        let in_flight = self.next.load(SeqCst).min(self.args.cycles) - self.completed.load(SeqCst);
        match procstat::usage(pid) {
            Ok(usage) => {
                let s = Sample {
                    cycle,
                    secs: self.started_at.elapsed().as_secs_f64(),
                    in_flight: if settled { 0 } else { in_flight },
                    settled,
                    usage,
                };
                eprintln!(
                    "soak: cycle {cycle}: box rss={} KiB anon={} KiB threads={} fds={} ({} failed so far)",
                    usage.rss_kb,
                    usage.rss_anon_kb,
                    usage.threads,
                    usage.fds,
                    self.failed.load(SeqCst)
                );
                self.samples.lock().unwrap().push(s);
            }
            Err(e) => {
                let mut gone = self.box_gone.lock().unwrap();
                if gone.is_none() {
                    eprintln!("soak: the box (pid {pid}) cannot be read: {e}");
                    *gone = Some(e.to_string());
                }
            }
        }
    }

    fn should_stop(&self) -> bool {
        let out_of_time = self
            .args
            .max_secs
            .is_some_and(|m| self.started_at.elapsed() >= Duration::from_secs(m));
        out_of_time
            || self.failed.load(SeqCst) >= self.args.abort_after
            || self.box_gone.lock().unwrap().is_some()
    }
}

async fn worker(shared: Arc<Shared>, w: u64) {
    let timeout = Duration::from_secs(shared.args.cycle_timeout);
    loop {
        if shared.should_stop() {
            return;
        }
        let n = shared.next.fetch_add(1, SeqCst);
        if n >= shared.args.cycles {
            return;
        }
        let leave = shared.args.leave.for_cycle(n);
        let name = format!("soak-{w}-{n}");
        let started = shared.started_at.elapsed().as_secs_f64();
        let result = tokio::time::timeout(timeout, peer::run_cycle(&shared.cfg, &name, leave))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out after {} s", timeout.as_secs())));
        let record = CycleRecord {
            cycle: n,
            worker: w,
            started_secs: started,
            outcome: result.as_ref().ok().cloned(),
            error: result.as_ref().err().map(|e| format!("{e:#}")),
        };
        if let Err(e) = &result {
            shared.failed.fetch_add(1, SeqCst);
            eprintln!("soak: cycle {n} ({name}, {leave:?}) failed: {e:#}");
        }
        shared.records.lock().unwrap().push(record);
        let done = shared.completed.fetch_add(1, SeqCst) + 1;
        if done.is_multiple_of(shared.args.sample_every) {
            shared.sample(done, false);
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    str0m::crypto::from_feature_flags().install_process_default();
    let room = RoomName::parse(&args.room).context("--room must match [A-Za-z0-9_-]{1,64}")?;
    let secret_text = std::fs::read_to_string(&args.room_secret_file)
        .with_context(|| format!("cannot read {}", args.room_secret_file.display()))?;
    let secret = roombox_seal::RoomSecret::parse(&secret_text)
        .with_context(|| format!("{}", args.room_secret_file.display()))?;
    let cfg = CycleConfig {
        ws_url: ws_url(&args.signal_url)?,
        room,
        secret,
        audio: Arc::new(tone_packets()?),
        expect_size: args.expect_size,
    };
    let shared = Arc::new(Shared {
        args: args.clone(),
        cfg,
        started_at: Instant::now(),
        next: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        records: Mutex::new(Vec::new()),
        samples: Mutex::new(Vec::new()),
        box_gone: Mutex::new(None),
    });

    shared.sample(0, true);
    let workers: Vec<_> = (0..args.parallel)
        .map(|w| tokio::spawn(worker(shared.clone(), w)))
        .collect();
    for w in workers {
        w.await.context("worker panicked")?;
    }
    let wall = shared.started_at.elapsed();
    if args.box_pid.is_some() && shared.box_gone.lock().unwrap().is_none() {
        tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
        let done = shared.completed.load(SeqCst);
        shared.sample(done, true);
    }

    let mut records = std::mem::take(&mut *shared.records.lock().unwrap());
    records.sort_by_key(|r| r.cycle);
    let samples = std::mem::take(&mut *shared.samples.lock().unwrap());
    let warmup = args.warmup.unwrap_or(args.cycles / 10);
    let summary = report::summarize(&args, &records, &samples, warmup, wall);
    println!("{}", summary.line());

    if let Some(path) = &args.json {
        let doc = serde_json::json!({
            "args": args,
            "summary": summary,
            "samples": samples,
            "cycles": records,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.markdown {
        std::fs::write(path, report::markdown(&args, &summary, &samples))
            .with_context(|| format!("writing {}", path.display()))?;
    }

    if let Some(e) = shared.box_gone.lock().unwrap().as_ref() {
        eprintln!("soak: FAILED: the box went away: {e}");
        std::process::exit(2);
    }
    if summary.failed > args.max_failures {
        eprintln!(
            "soak: FAILED: {} of {} cycles failed (at most {} allowed)",
            summary.failed, summary.cycles, args.max_failures
        );
        std::process::exit(1);
    }
    if summary.cycles < args.cycles {
        eprintln!(
            "soak: FAILED: stopped after {} of {} cycles",
            summary.cycles, args.cycles
        );
        std::process::exit(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_urls() {
        assert_eq!(
            ws_url("http://127.0.0.1:9/").unwrap(),
            "ws://127.0.0.1:9/ws"
        );
        assert_eq!(ws_url("https://a.b").unwrap(), "wss://a.b/ws");
        assert_eq!(ws_url("ws://a:1/ws").unwrap(), "ws://a:1/ws");
        assert!(ws_url("a:1").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("640x360"), Ok((640, 360)));
        assert!(parse_size("640").is_err());
    }

    #[test]
    fn mixed_leave_rotates() {
        let modes: Vec<_> = (0..4).map(|n| LeaveMode::Mixed.for_cycle(n)).collect();
        assert_eq!(
            modes,
            [
                LeaveMode::Leave,
                LeaveMode::Close,
                LeaveMode::Drop,
                LeaveMode::Leave
            ]
        );
        assert_eq!(LeaveMode::Drop.for_cycle(0), LeaveMode::Drop);
    }

    #[test]
    fn tone_encodes() {
        let packets = tone_packets().unwrap();
        assert_eq!(packets.len(), 50);
        assert!(packets.iter().all(|p| !p.is_empty()));
    }
}
