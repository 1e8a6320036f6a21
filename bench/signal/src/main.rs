//! Load generator for roombox-signal and, side by side, the PeerJS server (npm `peer`).
//!
//! `run` measures one server (idle connections and memory per connection, relay latency,
//! relay throughput) and writes its results as JSON; `report` turns those files into the
//! markdown table of RESULTS.md. See README.md.

mod idle;
mod procfs;
mod proto;
mod relay;
mod report;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use proto::{ServerKind, Target};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Signaling server benchmark: roombox-signal and the PeerJS server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure one running server and write its results as JSON.
    Run(RunArgs),
    /// Print the markdown table comparing results files (roombox first, then PeerJS).
    Report {
        /// JSON files written by `run`.
        #[arg(required = true)]
        results: Vec<PathBuf>,
    },
}

#[derive(clap::Args, Clone, Serialize, Deserialize)]
pub struct RunArgs {
    /// Which protocol the server speaks.
    #[arg(long, value_enum)]
    server: ServerKind,
    /// The server's address, e.g. 127.0.0.1:9100 (loopback only).
    #[arg(long)]
    addr: String,
    /// The server's process id, for /proc/PID/status (VmRSS) and /proc/PID/fd.
    #[arg(long)]
    pid: u32,
    /// Idle connections to open and hold.
    #[arg(long, default_value_t = 10_000)]
    conns: usize,
    /// Handshakes in flight at once while opening them.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Seconds to hold the idle connections once all joined (plus a 2 s settle).
    #[arg(long, default_value_t = 20)]
    hold_secs: u64,
    /// Latency: messages sent before measuring.
    #[arg(long, default_value_t = 2_000)]
    warmup: usize,
    /// Latency: measured messages (sequential, one in flight).
    #[arg(long, default_value_t = 20_000)]
    samples: usize,
    /// Throughput: messages sent A → B.
    #[arg(long, default_value_t = 100_000)]
    messages: usize,
    /// Throughput: most messages in flight (sent by A, not yet received by B).
    #[arg(long, default_value_t = 64)]
    window: usize,
    /// Throughput: rounds (each with a fresh pair); the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Size of the synthetic SDP each offer carries, bytes.
    #[arg(long, default_value_t = 1_000)]
    sdp_bytes: usize,
    /// Worker threads of the generator's runtime (1: a current-thread runtime, which keeps
    /// the generator from competing with the server for cores more than it must).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Where to write the results.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Serialize, Deserialize)]
pub struct RunResult {
    pub server: ServerKind,
    pub params: RunArgs,
    pub nofile_limit: u64,
    pub idle: idle::IdleResult,
    pub latency: relay::LatencyResult,
    pub throughput: relay::ThroughputResult,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            let nofile_limit = procfs::raise_nofile(args.conns as u64 * 2 + 1024);
            let rt = if args.threads <= 1 {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
            } else {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(args.threads)
                    .enable_all()
                    .build()?
            };
            let result = rt.block_on(run(args, nofile_limit))?;
            rt.shutdown_timeout(Duration::from_secs(5));
            let path = result.params.out.clone();
            std::fs::write(&path, serde_json::to_string_pretty(&result)?)
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(())
        }
        Command::Report { results } => {
            let mut runs = Vec::new();
            for path in &results {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let run: RunResult = serde_json::from_str(&text)
                    .with_context(|| format!("parsing {}", path.display()))?;
                runs.push(run);
            }
            print!("{}", report::markdown(&runs));
            Ok(())
        }
    }
}

async fn run(args: RunArgs, nofile_limit: u64) -> Result<RunResult> {
    let ip: std::net::SocketAddr = args.addr.parse().context("--addr must be IP:PORT")?;
    anyhow::ensure!(ip.ip().is_loopback(), "benchmark traffic stays on loopback");
    idle::check_pid(args.pid)?;
    let target = Target {
        kind: args.server,
        base: format!("ws://{}", args.addr),
    };
    let tag = format!("{}", std::process::id());
    let label = target.kind.label();
    eprintln!("[{label}] open-file limit of the generator: {nofile_limit}");

    let idle = idle::run(
        &target,
        args.pid,
        &idle::IdleParams {
            conns: args.conns,
            concurrency: args.connect_concurrency,
            hold: Duration::from_secs(args.hold_secs),
            tag: tag.clone(),
        },
    )
    .await?;

    eprintln!(
        "[{label}] latency: {} warm-up + {} samples",
        args.warmup, args.samples
    );
    let latency = relay::latency(&target, &tag, args.warmup, args.samples, args.sdp_bytes).await?;
    eprintln!(
        "[{label}] latency: p50 {:.1} µs, p99 {:.1} µs",
        latency.p50_us, latency.p99_us
    );

    eprintln!(
        "[{label}] throughput: {} messages, window {}",
        args.messages, args.window
    );
    let throughput = relay::throughput_rounds(
        &target,
        args.pid,
        &tag,
        args.rounds,
        args.messages,
        args.window,
        args.sdp_bytes,
    )
    .await?;
    eprintln!(
        "[{label}] throughput: {:.0} messages/s (median)",
        throughput.msgs_per_sec
    );

    Ok(RunResult {
        server: args.server,
        params: args,
        nofile_limit,
        idle,
        latency,
        throughput,
    })
}
