//! Phases 2 and 3: relay latency and relay throughput between two clients, A → server → B.

use crate::proto::{next_text, quick_seq, synthetic_sdp, Client, Target};
use anyhow::{bail, ensure, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

/// How long one relayed message may take before the run gives up.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LatencyResult {
    pub warmup: usize,
    pub samples: usize,
    /// Length of the JSON text frame A sends, bytes.
    pub frame_bytes: usize,
    pub min_us: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThroughputResult {
    pub messages: usize,
    pub window: usize,
    pub frame_bytes: usize,
    /// Messages a second of each round, in the order run.
    pub rounds: Vec<f64>,
    /// The median round.
    pub msgs_per_sec: f64,
    /// Server CPU time (user + system, /proc/PID/stat) over all rounds, divided by the
    /// messages relayed in them (warm-up included), microseconds.
    pub server_cpu_us_per_msg: f64,
}

/// Runs [`throughput`] `rounds` times, each with a fresh pair, and keeps the median.
pub async fn throughput_rounds(
    target: &Target,
    pid: u32,
    tag: &str,
    rounds: usize,
    messages: usize,
    window: usize,
    sdp_bytes: usize,
) -> Result<ThroughputResult> {
    let mut rates = Vec::with_capacity(rounds);
    let mut frame_bytes = 0;
    let cpu_before = crate::procfs::cpu_secs(pid)?;
    for round in 0..rounds.max(1) {
        let (rate, bytes) = throughput(
            target,
            &format!("{tag}r{round}"),
            messages,
            window,
            sdp_bytes,
        )
        .await?;
        eprintln!(
            "[{}] throughput round {round}: {rate:.0} messages/s",
            target.kind.label()
        );
        rates.push(rate);
        frame_bytes = bytes;
    }
    let cpu = crate::procfs::cpu_secs(pid)? - cpu_before;
    let relayed = rates.len() * (messages + window.max(100));
    let mut sorted = rates.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(ThroughputResult {
        messages,
        window,
        frame_bytes,
        msgs_per_sec: sorted[sorted.len() / 2],
        rounds: rates,
        server_cpu_us_per_msg: cpu * 1e6 / relayed as f64,
    })
}

/// Two clients that can reach each other: A in the room first, then B (roombox), or two
/// PeerJS ids.
pub async fn pair(target: &Target, tag: &str, phase: &str) -> Result<(Client, Client)> {
    let room = format!("relay-{phase}-{tag}");
    let a = target
        .connect(&room, &format!("{phase}-a-{tag}"))
        .await
        .context("client A")?;
    let b = target
        .connect(&room, &format!("{phase}-b-{tag}"))
        .await
        .context("client B")?;
    Ok((a, b))
}

/// Sequential one-way latency: A sends an offer numbered `seq`; the clock (monotonic) runs
/// from just before A's send until B's WebSocket yields the frame. One message in flight.
pub async fn latency(
    target: &Target,
    tag: &str,
    warmup: usize,
    samples: usize,
    sdp_bytes: usize,
) -> Result<LatencyResult> {
    let (mut a, mut b) = pair(target, tag, "lat").await?;
    let template = target.offer_template(&b.id, &synthetic_sdp(sdp_bytes));
    let frame_bytes = template.with_seq(0).len();
    let mut lat = Vec::with_capacity(samples);
    for seq in 0..(warmup + samples) as u64 {
        let msg = Message::text(template.with_seq(seq));
        let t0 = Instant::now();
        a.ws.send(msg).await?;
        let text = tokio::time::timeout(MESSAGE_TIMEOUT, next_text(&mut b.ws))
            .await
            .with_context(|| format!("offer {seq} not relayed within {MESSAGE_TIMEOUT:?}"))??;
        let t1 = Instant::now();
        let got = target.check_relayed(&text, &a.id)?;
        ensure!(got == seq, "expected offer {seq}, got {got}");
        if seq >= warmup as u64 {
            lat.push(t1 - t0);
        }
    }
    let _ = a.ws.close(None).await;
    let _ = b.ws.close(None).await;

    lat.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let pct = |p: f64| us(lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1]);
    let mean = lat.iter().map(|d| us(*d)).sum::<f64>() / lat.len() as f64;
    Ok(LatencyResult {
        warmup,
        samples,
        frame_bytes,
        min_us: us(lat[0]),
        mean_us: mean,
        p50_us: pct(0.50),
        p90_us: pct(0.90),
        p99_us: pct(0.99),
        p999_us: pct(0.999),
        max_us: us(lat[lat.len() - 1]),
    })
}

/// Throughput: A keeps up to `window` offers in flight (sent, not yet received by B) and
/// sends `messages` of them; the rate is messages / (first send → last receipt). Returns the
/// rate and the frame size.
async fn throughput(
    target: &Target,
    tag: &str,
    messages: usize,
    window: usize,
    sdp_bytes: usize,
) -> Result<(f64, usize)> {
    let (a, b) = pair(target, tag, "tput").await?;
    let template = target.offer_template(&b.id, &synthetic_sdp(sdp_bytes));
    let frame_bytes = template.with_seq(0).len();
    // Warm-up: a round of messages through the same pair, outside the clock, with sequence
    // numbers the receiver skips.
    let (mut a_tx, a_rx) = a.ws.split();
    let (b_tx, mut b_rx) = b.ws.split();
    let warm = window.max(100) as u64;
    for seq in 0..warm {
        a_tx.send(Message::text(template.with_seq(seq))).await?;
        let text = tokio::time::timeout(MESSAGE_TIMEOUT, next_text(&mut b_rx))
            .await
            .context("warm-up offer not relayed")??;
        ensure!(
            target.check_relayed(&text, &a.id)? == seq,
            "warm-up out of order"
        );
    }

    let credits = Arc::new(Semaphore::new(window));
    let receiver = {
        let credits = credits.clone();
        let target = target.clone();
        let from = a.id.clone();
        tokio::spawn(async move {
            let first = warm;
            let last = warm + messages as u64 - 1;
            let mut expected = first;
            while expected <= last {
                let text = tokio::time::timeout(MESSAGE_TIMEOUT, next_text(&mut b_rx))
                    .await
                    .with_context(|| format!("offer {expected} not relayed in time"))??;
                // Check every 1000th message in full, the rest by its number.
                let got = if expected.is_multiple_of(1000) || expected == last {
                    target.check_relayed(&text, &from)?
                } else {
                    quick_seq(&text).context("relayed frame without seq")?
                };
                ensure!(got == expected, "expected offer {expected}, got {got}");
                expected += 1;
                credits.add_permits(1);
            }
            Ok::<_, anyhow::Error>((Instant::now(), b_rx))
        })
    };

    let t0 = Instant::now();
    let sending = async {
        for seq in warm..warm + messages as u64 {
            let permit = match credits.try_acquire() {
                Ok(p) => p,
                Err(_) => {
                    // The window is full: push out what is buffered, then wait for credit.
                    a_tx.flush().await?;
                    credits.acquire().await?
                }
            };
            permit.forget();
            a_tx.feed(Message::text(template.with_seq(seq))).await?;
        }
        a_tx.flush().await?;
        Ok::<_, anyhow::Error>(())
    };
    let budget = Duration::from_secs(300);
    tokio::time::timeout(budget, sending)
        .await
        .context("sending took too long")??;
    let (t_end, b_rx) = match tokio::time::timeout(budget, receiver).await {
        Ok(joined) => joined??,
        Err(_) => bail!("receiving took too long"),
    };
    let secs = (t_end - t0).as_secs_f64();
    if let (Ok(mut a_ws), Ok(mut b_ws)) = (a_tx.reunite(a_rx), b_tx.reunite(b_rx)) {
        let _ = a_ws.close(None).await;
        let _ = b_ws.close(None).await;
    }
    Ok((messages as f64 / secs, frame_bytes))
}
