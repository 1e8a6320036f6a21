//! One encoder, many viewers: which bitrate the encoder runs at, and when it makes a keyframe.
//!
//! Pure policy with time passed in; the peer driver feeds it each viewer's bandwidth estimate
//! and keyframe requests, and applies what it decides to the encoder.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The encoder's bitrate follows the slowest viewer, within configured bounds.
#[derive(Debug)]
pub struct BitratePolicy {
    min_bps: u32,
    max_bps: u32,
    /// Latest send-side estimate per viewer (peer id).
    estimates: HashMap<String, u64>,
}

/// Leave headroom under the estimate for audio, RTP/SRTP overhead and retransmissions.
const VIDEO_SHARE_OF_ESTIMATE: f64 = 0.85;

impl BitratePolicy {
    pub fn new(min_bps: u32, max_bps: u32) -> Self {
        BitratePolicy {
            min_bps: min_bps.min(max_bps),
            max_bps,
            estimates: HashMap::new(),
        }
    }

    /// New bounds from the settings page; the next `target_bps` honours them.
    pub fn set_limits(&mut self, min_bps: u32, max_bps: u32) {
        (self.min_bps, self.max_bps) = (min_bps.min(max_bps), max_bps);
    }

    pub fn set_estimate(&mut self, viewer: &str, bps: u64) {
        self.estimates.insert(viewer.to_owned(), bps);
    }

    pub fn remove(&mut self, viewer: &str) {
        self.estimates.remove(viewer);
    }

    /// The encoder bitrate: the lowest viewer's share, clamped; the maximum with no estimates.
    pub fn target_bps(&self) -> u32 {
        match self.estimates.values().min() {
            None => self.max_bps,
            Some(&lowest) => {
                let share = (lowest as f64 * VIDEO_SHARE_OF_ESTIMATE) as u64;
                share.clamp(self.min_bps.into(), self.max_bps.into()) as u32
            }
        }
    }
}

/// Keyframes on request at most this often, however many viewers ask.
pub const KEYFRAME_MIN_INTERVAL: Duration = Duration::from_millis(300);

/// Coalesces keyframe requests (PLI/FIR from any viewer, a new viewer) into at most one
/// keyframe per `min_interval`; a request inside the interval is kept and served at its end.
#[derive(Debug)]
pub struct KeyframeGate {
    min_interval: Duration,
    last_keyframe: Option<Instant>,
    pending: bool,
}

impl KeyframeGate {
    pub fn new(min_interval: Duration) -> Self {
        KeyframeGate {
            min_interval,
            last_keyframe: None,
            pending: false,
        }
    }

    pub fn request(&mut self) {
        self.pending = true;
    }

    /// Asked once per frame about to be encoded: force a keyframe now?
    pub fn poll_force(&mut self, now: Instant) -> bool {
        if !self.pending {
            return false;
        }
        let due = self
            .last_keyframe
            .is_none_or(|t| now.saturating_duration_since(t) >= self.min_interval);
        if due {
            self.pending = false;
        }
        due
    }

    /// The encoder made a keyframe (forced or by its GOP); requests before it are satisfied.
    pub fn keyframe_sent(&mut self, now: Instant) {
        self.last_keyframe = Some(now);
        self.pending = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrate_follows_the_slowest_viewer_within_bounds() {
        let mut p = BitratePolicy::new(300_000, 4_000_000);
        assert_eq!(
            p.target_bps(),
            4_000_000,
            "no estimate yet: the configured maximum"
        );
        p.set_estimate("a", 10_000_000);
        assert_eq!(p.target_bps(), 4_000_000);
        p.set_estimate("b", 2_000_000);
        assert_eq!(p.target_bps(), 1_700_000);
        p.set_estimate("c", 100_000);
        assert_eq!(p.target_bps(), 300_000, "never under the minimum");
        p.remove("c");
        assert_eq!(
            p.target_bps(),
            1_700_000,
            "a slow viewer leaving frees the rest"
        );
        p.set_estimate("b", 3_000_000);
        assert_eq!(
            p.target_bps(),
            2_550_000,
            "estimates are replaced, not accumulated"
        );
    }

    #[test]
    fn keyframe_requests_coalesce() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut g = KeyframeGate::new(Duration::from_millis(500));
        assert!(!g.poll_force(t0), "nothing asked");
        // Five viewers ask at once: one keyframe.
        for _ in 0..5 {
            g.request();
        }
        assert!(g.poll_force(t0));
        g.keyframe_sent(t0);
        assert!(!g.poll_force(ms(33)));
        // Another request inside the interval waits for its end, then is served once.
        g.request();
        assert!(!g.poll_force(ms(100)));
        assert!(!g.poll_force(ms(499)));
        assert!(g.poll_force(ms(500)));
        g.keyframe_sent(ms(500));
        assert!(!g.poll_force(ms(2000)));
    }

    #[test]
    fn a_gop_keyframe_satisfies_pending_requests() {
        let t0 = Instant::now();
        let mut g = KeyframeGate::new(Duration::from_millis(500));
        g.keyframe_sent(t0);
        g.request();
        g.keyframe_sent(t0 + Duration::from_millis(200));
        assert!(!g.poll_force(t0 + Duration::from_secs(5)));
    }
}
