//! systemd integration: readiness, status lines, the watchdog and stopping, over the
//! `sd_notify` protocol (a datagram to `$NOTIFY_SOCKET`). Outside systemd (no `NOTIFY_SOCKET`)
//! every call here is a no-op.
//!
//! The watchdog is petted only while the pipeline is healthy, so a box that hangs is restarted
//! by systemd (`WatchdogSec=` in systemd/roombox.service) instead of sitting in a room frozen.
//! Healthy means both of the parts that must never stall have turned recently:
//! - the encoder thread went round its loop (it encoded a frame, or idled on purpose: no frame
//!   within its 200 ms wait, or nobody watching). A hung encoder or a dead thread stops this.
//! - the peer driver task was polled. Its loop always has a timer of at most a second, so a
//!   driver that is alive is polled at least that often; one stuck on an await that never
//!   completes, or blocking its thread, is not.
//!
//! A missing HDMI signal or an unreachable signaling server is not unhealthy: the box retries
//! those itself, and a restart would not help.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A part that has not turned for this long makes the box unhealthy. Both turn at least once a
/// second when well, so this is generous; it must stay well under `WatchdogSec=` (30 s).
pub const STALE_AFTER: Duration = Duration::from_secs(10);

/// When the encoder and the driver last turned, as milliseconds after `start` plus one (zero:
/// never yet). Atomics, so the encoder thread and the driver task bump it without a lock; the
/// clock is always passed in, so the verdict is testable without waiting.
#[derive(Debug)]
pub struct Health {
    start: Instant,
    encoder: AtomicU64,
    driver: AtomicU64,
}

/// What [`Health::check_at`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// A part has not turned even once yet.
    Starting,
    Healthy,
    /// `part` last turned `for_` ago.
    Stalled {
        part: &'static str,
        for_: Duration,
    },
}

impl Health {
    pub fn new(start: Instant) -> Health {
        Health {
            start,
            encoder: AtomicU64::new(0),
            driver: AtomicU64::new(0),
        }
    }

    pub fn encoder_turned_at(&self, now: Instant) {
        self.encoder.store(self.stamp(now), Relaxed);
    }

    pub fn driver_turned_at(&self, now: Instant) {
        self.driver.store(self.stamp(now), Relaxed);
    }

    pub fn check_at(&self, now: Instant, stale_after: Duration) -> Verdict {
        let mut verdict = Verdict::Healthy;
        for (part, stamp) in [("encoder", &self.encoder), ("driver", &self.driver)] {
            let stamp = stamp.load(Relaxed);
            if stamp == 0 {
                return Verdict::Starting;
            }
            let at = self.start + Duration::from_millis(stamp - 1);
            let ago = now.saturating_duration_since(at);
            if ago > stale_after && verdict == Verdict::Healthy {
                verdict = Verdict::Stalled { part, for_: ago };
            }
        }
        verdict
    }

    /// Runs `fut` (the driver), marking the driver as turned each time it is polled.
    pub async fn track_driver<F: Future>(self: Arc<Self>, fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| {
            self.driver_turned_at(Instant::now());
            fut.as_mut().poll(cx)
        })
        .await
    }

    fn stamp(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_millis() as u64 + 1
    }
}

/// A message for the service manager.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    Ready,
    Status(String),
    Watchdog,
    Stopping,
}

/// What to tell systemd on each check: READY once the pipeline first turns, a STATUS line when
/// it changes, and a watchdog ping on every healthy check (never on an unhealthy one).
#[derive(Debug)]
pub struct Notices {
    room: String,
    ready: bool,
    status: String,
}

impl Notices {
    pub fn new(room: &str) -> Notices {
        Notices {
            room: room.to_owned(),
            ready: false,
            status: String::new(),
        }
    }

    pub fn handle_check(&mut self, verdict: &Verdict, peers: usize) -> Vec<Notice> {
        let mut out = Vec::new();
        let status = match verdict {
            Verdict::Starting => format!("room {}: starting the pipeline", self.room),
            Verdict::Healthy => {
                let s = if peers == 1 { "" } else { "s" };
                format!("room {}: {peers} peer{s} connected", self.room)
            }
            Verdict::Stalled { part, for_ } => format!(
                "room {}: unhealthy, the {part} has not turned for {} s; watchdog not petted",
                self.room,
                for_.as_secs()
            ),
        };
        if *verdict == Verdict::Healthy && !self.ready {
            self.ready = true;
            out.push(Notice::Ready);
        }
        if status != self.status {
            self.status = status.clone();
            out.push(Notice::Status(status));
        }
        if *verdict == Verdict::Healthy {
            out.push(Notice::Watchdog);
        }
        out
    }
}

/// Tells systemd how the box is doing until `stop`: READY=1, STATUS= lines, and WATCHDOG=1
/// while healthy. Returns at once when not started by systemd.
pub async fn supervise(
    health: Arc<Health>,
    room: String,
    calls: tokio::sync::watch::Receiver<crate::calls::EncoderControl>,
    stop: CancellationToken,
) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let mut usec = 0;
    // Ping at half the watchdog interval (as sd_watchdog_enabled(3) advises), and check at least
    // once a second so READY and STATUS are prompt.
    let every = if sd_notify::watchdog_enabled(false, &mut usec) {
        tracing::info!("systemd watchdog: {} ms", usec / 1000);
        Duration::from_micros(usec / 2).min(Duration::from_secs(1))
    } else {
        Duration::from_secs(1)
    }
    .max(Duration::from_millis(10));
    let mut notices = Notices::new(&room);
    let mut tick = tokio::time::interval(every);
    let mut last: Option<Verdict> = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let verdict = health.check_at(Instant::now(), STALE_AFTER);
        if last.as_ref() != Some(&verdict) {
            if let Verdict::Stalled { part, .. } = verdict {
                tracing::error!(
                    "the {part} has stalled; letting the systemd watchdog restart the box"
                );
            }
        }
        for notice in notices.handle_check(&verdict, calls.borrow().viewers) {
            send(notice);
        }
        last = Some(verdict);
    }
}

/// STOPPING=1: the box is shutting down on purpose.
pub fn notify_stopping() {
    send(Notice::Stopping);
}

fn send(notice: Notice) {
    use sd_notify::NotifyState;
    let result = match &notice {
        Notice::Ready => sd_notify::notify(false, &[NotifyState::Ready]),
        Notice::Status(s) => sd_notify::notify(false, &[NotifyState::Status(s)]),
        Notice::Watchdog => sd_notify::notify(false, &[NotifyState::Watchdog]),
        Notice::Stopping => sd_notify::notify(false, &[NotifyState::Stopping]),
    };
    if let Err(e) = result {
        tracing::warn!("cannot notify systemd ({notice:?}): {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn starting_until_both_parts_turned() {
        let t0 = Instant::now();
        let h = Health::new(t0);
        assert_eq!(h.check_at(t0, STALE_AFTER), Verdict::Starting);
        h.encoder_turned_at(t0);
        assert_eq!(h.check_at(t0 + S, STALE_AFTER), Verdict::Starting);
        h.driver_turned_at(t0 + S);
        assert_eq!(h.check_at(t0 + S, STALE_AFTER), Verdict::Healthy);
    }

    #[test]
    fn a_part_that_stops_turning_is_named() {
        let t0 = Instant::now();
        let h = Health::new(t0);
        h.encoder_turned_at(t0);
        h.driver_turned_at(t0);
        assert_eq!(h.check_at(t0 + 10 * S, 10 * S), Verdict::Healthy);
        h.driver_turned_at(t0 + 11 * S);
        assert_eq!(
            h.check_at(t0 + 12 * S, 10 * S),
            Verdict::Stalled {
                part: "encoder",
                for_: 12 * S
            }
        );
        // It recovers as soon as the encoder turns again.
        h.encoder_turned_at(t0 + 13 * S);
        assert_eq!(h.check_at(t0 + 13 * S, 10 * S), Verdict::Healthy);
        assert_eq!(
            h.check_at(t0 + 30 * S, 10 * S),
            Verdict::Stalled {
                part: "encoder",
                for_: 17 * S
            }
        );
    }

    #[test]
    fn ready_once_status_on_change_watchdog_only_while_healthy() {
        let mut n = Notices::new("board");
        assert_eq!(
            n.handle_check(&Verdict::Starting, 0),
            [Notice::Status("room board: starting the pipeline".into())]
        );
        assert_eq!(n.handle_check(&Verdict::Starting, 0), []);
        assert_eq!(
            n.handle_check(&Verdict::Healthy, 0),
            [
                Notice::Ready,
                Notice::Status("room board: 0 peers connected".into()),
                Notice::Watchdog
            ]
        );
        assert_eq!(n.handle_check(&Verdict::Healthy, 0), [Notice::Watchdog]);
        assert_eq!(
            n.handle_check(&Verdict::Healthy, 1),
            [
                Notice::Status("room board: 1 peer connected".into()),
                Notice::Watchdog
            ]
        );
        let stalled = Verdict::Stalled {
            part: "driver",
            for_: 11 * S,
        };
        assert_eq!(
            n.handle_check(&stalled, 1),
            [Notice::Status(
                "room board: unhealthy, the driver has not turned for 11 s; watchdog not petted"
                    .into()
            )]
        );
        assert_eq!(
            n.handle_check(&Verdict::Healthy, 1),
            [
                Notice::Status("room board: 1 peer connected".into()),
                Notice::Watchdog
            ]
        );
    }

    #[tokio::test]
    async fn the_driver_is_marked_each_time_it_is_polled() {
        let t0 = Instant::now();
        let h = Arc::new(Health::new(t0));
        h.encoder_turned_at(t0);
        let out = h
            .clone()
            .track_driver(async {
                tokio::task::yield_now().await;
                7
            })
            .await;
        assert_eq!(out, 7);
        assert_eq!(h.check_at(Instant::now(), STALE_AFTER), Verdict::Healthy);
    }
}
