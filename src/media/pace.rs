//! Real-time pacing on an absolute schedule: slot `n` is due at `start + n * period`, so
//! rounding and oversleeping never accumulate into drift.

use std::time::{Duration, Instant};

/// Hands out frame slots at a fixed rate `num / den` per second.
#[derive(Debug, Clone)]
pub struct Pacer {
    start: Instant,
    num: u64,
    den: u64,
    next: u64,
    paced: bool,
}

/// The process's media epoch: the test sources mark every whole second since it (the
/// pattern flashes, the tone beeps), so a viewer can measure audio against video.
pub fn epoch() -> Instant {
    static EPOCH: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);
    *EPOCH
}

/// Whether a frame at `at`, of a source with slots of `slot`, is the one nearest to a whole
/// second since [`epoch`] (so a flash is at most half a slot off the second's beep).
pub fn holds_a_second_mark(at: Instant, slot: Duration) -> bool {
    let since = at.saturating_duration_since(epoch());
    let into = Duration::from_nanos((since.as_nanos() % 1_000_000_000) as u64);
    let half = slot / 2;
    into < half || Duration::from_secs(1) - into <= half
}

/// How far behind schedule a pacer may fall before it skips slots instead of bursting.
const MAX_LAG_SLOTS: u64 = 3;

impl Pacer {
    /// A pacer at `num / den` slots per second (e.g. 30000/1001), starting now.
    /// An unpaced pacer never sleeps (benchmarks, tests) but still numbers slots and times.
    pub fn new(num: u32, den: u32, paced: bool) -> Self {
        Self {
            start: Instant::now(),
            num: u64::from(num.max(1)),
            den: u64::from(den.max(1)),
            next: 0,
            paced,
        }
    }

    /// When slot 0 was (or is) due.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Time of slot `n` since the start.
    pub fn slot_time(&self, n: u64) -> Duration {
        let nanos = u128::from(n) * u128::from(self.den) * 1_000_000_000 / u128::from(self.num);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Sleeps until the next slot is due and returns its number and time since the start.
    /// When the caller is more than a few slots late, the skipped slots are dropped so the
    /// numbering keeps following the wall clock (a viewer sees the jump).
    pub fn wait(&mut self) -> (u64, Duration) {
        if self.paced {
            let now = Instant::now();
            let elapsed = now.saturating_duration_since(self.start);
            let due = self.slot_time(self.next);
            if due > elapsed {
                std::thread::sleep(due - elapsed);
            } else {
                let current = self.slot_at(elapsed);
                if current > self.next + MAX_LAG_SLOTS {
                    self.next = current;
                }
            }
        }
        let n = self.next;
        self.next += 1;
        (n, self.slot_time(n))
    }

    /// The slot whose time is the latest at or before `elapsed`.
    fn slot_at(&self, elapsed: Duration) -> u64 {
        let slots =
            elapsed.as_nanos() * u128::from(self.num) / (u128::from(self.den) * 1_000_000_000);
        u64::try_from(slots).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_slot_a_second_holds_the_mark() {
        let e = epoch();
        let slot = Duration::from_millis(33);
        // Frames at 0.990 s and 2.010 s are the nearest to their seconds; 0.980 s and 1.017 s
        // are not.
        assert!(holds_a_second_mark(e + Duration::from_millis(990), slot));
        assert!(holds_a_second_mark(e + Duration::from_millis(2010), slot));
        assert!(!holds_a_second_mark(e + Duration::from_millis(980), slot));
        assert!(!holds_a_second_mark(e + Duration::from_millis(1017), slot));
        let marked = (0..300)
            .filter(|&n| holds_a_second_mark(e + slot * n, slot))
            .count();
        assert_eq!(marked, 10, "one a second over 9.9 s, the first at 0");
    }

    #[test]
    fn slot_times_do_not_drift() {
        let p = Pacer::new(30_000, 1001, false);
        assert_eq!(p.slot_time(30_000), Duration::from_secs(1001));
        assert_eq!(p.slot_at(Duration::from_secs(1001)), 30_000);
    }

    #[test]
    fn paced_wait_follows_the_clock() {
        let mut p = Pacer::new(200, 1, true);
        let t0 = Instant::now();
        for _ in 0..5 {
            p.wait();
        }
        // Slot 4 is due at 20 ms; sleeping can only make it later.
        assert!(t0.elapsed() >= Duration::from_millis(19));
    }

    #[test]
    fn late_caller_skips_slots() {
        let mut p = Pacer::new(1000, 1, true);
        std::thread::sleep(Duration::from_millis(30));
        let (n, _) = p.wait();
        assert!(n >= 25, "slot {n}");
    }
}
