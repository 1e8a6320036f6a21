//! What keeps a device stream going through trouble: xruns counted and logged (not too
//! often), and an absent device stood in for by a paced clock while it is retried about once
//! a second, with one log line when it goes and one when it comes back.

use std::time::{Duration, Instant};

use crate::media::frame::AUDIO_FRAME_DURATION;

/// Frames between attempts to reopen an absent device: 50 x 20 ms = one second.
const RETRY_EVERY_FRAMES: u32 = 50;
/// At most one xrun warning this often; the count in it covers the quiet time.
const XRUN_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// Counts over a stream's life, for logs and the `record` report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StreamStats {
    /// Overruns (capture) or underruns (playback), each recovered.
    pub xruns: u64,
    /// Times the device went away while in use, or could not be opened at the start.
    pub losses: u64,
    /// 20 ms frames passed while the device was absent (silence captured, audio not played).
    pub absent_frames: u64,
}

/// The trouble side of one device stream; `what` names it in logs ("audio input alsa:hw:1").
pub struct Watch {
    what: String,
    xrun_kind: &'static str,
    /// Some while the device is absent: when that began and the stand-in frames given since.
    /// Frame n is due at start + n x 20 ms and none is ever skipped, so a slow reopen attempt
    /// (alsa-lib reads its configuration each time) is caught up and no audio time is lost.
    absent: Option<(Instant, u32)>,
    frames_since_try: u32,
    last_xrun_log: Option<Instant>,
    xruns_logged: u64,
    pub stats: StreamStats,
}

impl Watch {
    /// `xrun_kind` is "overrun" or "underrun".
    pub fn new(what: String, xrun_kind: &'static str) -> Self {
        Self {
            what,
            xrun_kind,
            absent: None,
            frames_since_try: 0,
            last_xrun_log: None,
            xruns_logged: 0,
            stats: StreamStats::default(),
        }
    }

    pub fn what(&self) -> &str {
        &self.what
    }

    /// An xrun was recovered.
    pub fn xrun(&mut self) {
        self.stats.xruns += 1;
        let now = Instant::now();
        if self
            .last_xrun_log
            .is_none_or(|t| now.duration_since(t) >= XRUN_LOG_INTERVAL)
        {
            let since = self.stats.xruns - self.xruns_logged;
            tracing::warn!(
                total = self.stats.xruns,
                "{}: {} (recovered; {since} since the last report)",
                self.what,
                self.xrun_kind
            );
            self.last_xrun_log = Some(now);
            self.xruns_logged = self.stats.xruns;
        }
    }

    /// The device is gone (or could not be opened): log once and start the stand-in clock.
    pub fn lost(&mut self, why: &str) {
        self.stats.losses += 1;
        tracing::warn!(
            "{}: unavailable ({why}); going on without it, retrying every second",
            self.what
        );
        self.absent = Some((Instant::now(), 0));
        self.frames_since_try = 0;
    }

    /// While absent: waits for the next 20 ms slot; true when it is time to try reopening.
    pub fn absent_tick(&mut self) -> bool {
        if let Some((since, given)) = &mut self.absent {
            let due = *since + AUDIO_FRAME_DURATION * *given;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            *given += 1;
        }
        self.stats.absent_frames += 1;
        self.frames_since_try += 1;
        if self.frames_since_try >= RETRY_EVERY_FRAMES {
            self.frames_since_try = 0;
            return true;
        }
        false
    }

    /// The device is back.
    pub fn back(&mut self, how: &str) {
        self.absent = None;
        tracing::info!("{}: back ({how})", self.what);
    }

    /// One line for a report: "0 overruns, the device was away once (3.2 s)".
    pub fn summary(&self) -> String {
        let s = &self.stats;
        let mut line = format!("{} {}s", s.xruns, self.xrun_kind);
        if s.losses > 0 {
            let secs = s.absent_frames as f64 * 0.02;
            line += &format!(", unavailable {} time(s) for {secs:.1} s in all", s.losses);
        }
        line
    }
}
