//! Phase 1: N idle, joined connections held open; the server's resident memory per connection.

use crate::procfs;
use crate::proto::{Target, Ws};
use anyhow::{bail, Context, Result};
use futures_util::{stream, SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleResult {
    /// Connections asked for.
    pub target: usize,
    /// Connections that completed the handshake (roombox `welcome`, PeerJS `OPEN`).
    pub joined: usize,
    pub connect_failures: usize,
    pub first_failure: Option<String>,
    /// Seconds from the first connect to the last join.
    pub connect_secs: f64,
    /// Server VmRSS before the first connection, bytes.
    pub rss_baseline: u64,
    /// Server VmRSS right after all joined (plus a short settle), bytes.
    pub rss_joined: u64,
    /// Server VmRSS at the end of the hold, bytes.
    pub rss_held: u64,
    /// Highest VmRSS sampled (once a second) while holding, bytes.
    pub rss_peak: u64,
    /// Server VmRSS a few seconds after every connection closed, bytes.
    pub rss_after_close: u64,
    /// How long the connections were held after joining, seconds.
    pub hold_secs: f64,
    /// The fewest connections open at any sample during the hold (the client's view).
    pub min_open_during_hold: usize,
    /// Connections open at the end of the hold (the client's view).
    pub open_at_end: usize,
    /// Sockets the server process holds at the end of the hold, minus those it held before.
    pub server_sockets_at_end: usize,
}

impl IdleResult {
    /// (VmRSS at the end of the hold − baseline) / joined, bytes.
    pub fn per_conn_held(&self) -> f64 {
        self.rss_held.saturating_sub(self.rss_baseline) as f64 / self.joined.max(1) as f64
    }

    /// (VmRSS right after joining − baseline) / joined, bytes.
    pub fn per_conn_joined(&self) -> f64 {
        self.rss_joined.saturating_sub(self.rss_baseline) as f64 / self.joined.max(1) as f64
    }
}

pub struct IdleParams {
    pub conns: usize,
    pub concurrency: usize,
    pub hold: Duration,
    pub tag: String,
}

pub async fn run(target: &Target, pid: u32, p: &IdleParams) -> Result<IdleResult> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_baseline = procfs::rss(pid)?;
    let sockets_baseline = procfs::socket_count(pid)?;
    eprintln!(
        "[{}] idle: baseline VmRSS {:.1} MiB; opening {} connections ({} at a time)",
        target.kind.label(),
        mib(rss_baseline),
        p.conns,
        p.concurrency
    );

    let open = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut holders = Vec::with_capacity(p.conns);
    let mut failures = 0;
    let mut first_failure = None;
    let started = Instant::now();
    let mut connects = stream::iter(0..p.conns)
        .map(|i| {
            let target = target.clone();
            let name = format!("idle-{}-{i}", p.tag);
            async move { target.connect(&name, &name).await }
        })
        .buffer_unordered(p.concurrency);
    // Bounded: every handshake has its own timeout, so this loop ends.
    while let Some(r) = connects.next().await {
        match r {
            Ok(client) => {
                let open = open.clone();
                open.fetch_add(1, Ordering::SeqCst);
                holders.push(tokio::spawn(hold(
                    client.ws,
                    open,
                    stop_rx.clone(),
                    target.heartbeat(),
                )));
            }
            Err(e) => {
                failures += 1;
                if first_failure.is_none() {
                    first_failure = Some(format!("{e:#}"));
                }
            }
        }
        let done = holders.len() + failures;
        if done % 2000 == 0 {
            eprintln!(
                "[{}] idle: {done} handshakes done, {failures} failed",
                target.kind.label()
            );
        }
    }
    drop(connects);
    let connect_secs = started.elapsed().as_secs_f64();
    let joined = holders.len();
    eprintln!(
        "[{}] idle: {joined} joined in {connect_secs:.1} s ({failures} failed); holding for {} s",
        target.kind.label(),
        p.hold.as_secs()
    );

    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_joined = procfs::rss(pid)?;
    let hold_start = Instant::now();
    let mut rss_peak = rss_joined;
    let mut min_open = open.load(Ordering::SeqCst);
    while hold_start.elapsed() < p.hold {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss_peak = rss_peak.max(procfs::rss(pid)?);
        min_open = min_open.min(open.load(Ordering::SeqCst));
    }
    let rss_held = procfs::rss(pid)?;
    rss_peak = rss_peak.max(rss_held);
    let open_at_end = open.load(Ordering::SeqCst);
    let server_sockets_at_end = procfs::socket_count(pid)?.saturating_sub(sockets_baseline);
    let hold_secs = hold_start.elapsed().as_secs_f64() + 2.0;
    eprintln!(
        "[{}] idle: held {open_at_end} open (min {min_open}), server holds {server_sockets_at_end} sockets, VmRSS {:.1} MiB",
        target.kind.label(),
        mib(rss_held)
    );

    // Close them all, bounded.
    let _ = stop_tx.send(true);
    let deadline = Instant::now() + Duration::from_secs(30);
    while open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for h in holders {
        h.abort();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after_close = procfs::rss(pid)?;

    if joined == 0 {
        bail!(
            "no connection joined: {}",
            first_failure.unwrap_or_default()
        );
    }
    Ok(IdleResult {
        target: p.conns,
        joined,
        connect_failures: failures,
        first_failure,
        connect_secs,
        rss_baseline,
        rss_joined,
        rss_held,
        rss_peak,
        rss_after_close,
        hold_secs,
        min_open_during_hold: min_open,
        open_at_end,
        server_sockets_at_end,
    })
}

/// Holds one joined connection: reads (so pings are answered), sends the protocol's own
/// heartbeat if it has one, and closes when told to.
async fn hold(
    mut ws: Ws,
    open: Arc<AtomicUsize>,
    mut stop: watch::Receiver<bool>,
    heartbeat: Option<(Duration, &'static str)>,
) {
    let period = heartbeat.map_or(Duration::from_secs(3600), |(d, _)| d);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            m = ws.next() => match m {
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            _ = tick.tick(), if heartbeat.is_some() => {
                let text = heartbeat.map(|(_, t)| t).unwrap_or_default();
                if ws.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
            _ = stop.changed() => {
                let _ = tokio::time::timeout(Duration::from_secs(5), ws.close(None)).await;
                break;
            }
        }
    }
    open.fetch_sub(1, Ordering::SeqCst);
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Checks that the process is there before the phase starts.
pub fn check_pid(pid: u32) -> Result<()> {
    procfs::rss(pid).with_context(|| format!("server process {pid} not found"))?;
    Ok(())
}
