//! A per-connection token bucket. Time is passed in, so tests need no clock.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateConfig {
    /// Messages a connection may send at once after being quiet.
    pub burst: f64,
    /// Sustained messages a second; 0 turns the limit off.
    pub per_sec: f64,
}

impl Default for RateConfig {
    fn default() -> Self {
        // A browser joining a room of six trickles a few dozen candidates per peer at once.
        RateConfig {
            burst: 200.0,
            per_sec: 50.0,
        }
    }
}

#[derive(Debug)]
pub struct TokenBucket {
    config: RateConfig,
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    pub fn new(config: RateConfig, now: Instant) -> Self {
        TokenBucket {
            config,
            tokens: config.burst,
            refilled_at: now,
        }
    }

    /// Takes one token; false when the connection is over its budget.
    pub fn try_take(&mut self, now: Instant) -> bool {
        if self.config.per_sec <= 0.0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.refilled_at);
        self.tokens =
            (self.tokens + elapsed.as_secs_f64() * self.config.per_sec).min(self.config.burst);
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Lets a repeated notice through at most once per `every`.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
}

impl Throttle {
    pub fn new(every: Duration) -> Self {
        Throttle { every, last: None }
    }

    pub fn allow(&mut self, now: Instant) -> bool {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < self.every => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_sustained_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(
            RateConfig {
                burst: 3.0,
                per_sec: 10.0,
            },
            t0,
        );
        assert!(b.try_take(t0) && b.try_take(t0) && b.try_take(t0));
        assert!(!b.try_take(t0));
        assert!(!b.try_take(t0 + Duration::from_millis(50)));
        assert!(b.try_take(t0 + Duration::from_millis(150)));
        // A long pause refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        assert!((0..3).all(|_| b.try_take(later)));
        assert!(!b.try_take(later));
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(
            RateConfig {
                burst: 1.0,
                per_sec: 0.0,
            },
            t0,
        );
        assert!((0..10_000).all(|_| b.try_take(t0)));
    }

    #[test]
    fn throttle_once_per_period() {
        let t0 = Instant::now();
        let mut th = Throttle::new(Duration::from_secs(1));
        assert!(th.allow(t0));
        assert!(!th.allow(t0 + Duration::from_millis(999)));
        assert!(th.allow(t0 + Duration::from_millis(1000)));
    }
}
