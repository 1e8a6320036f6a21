//! The two times every captured audio frame carries. Its media time counts samples (the RTP
//! timestamp: 20 ms a frame by the device's own clock); its capture time is the system clock's
//! instant of its first sample, as video frames carry. A device's clock drifts from the system
//! clock (100 ppm is 60 ms in ten minutes), so the two drift apart; the sender reports pair each
//! stream's RTP time with the capture time of its latest frame, which is what lets a browser
//! line audio up with video however far the device has drifted (lip sync).

use std::time::{Duration, Instant};

/// Samples in one frame's media time.
const FRAME: Duration = Duration::from_millis(20);

#[derive(Debug, Default)]
pub struct FrameStamps {
    frames: u64,
}

/// The stamps of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Media time: the frame's first sample counted from the first frame's.
    pub pts: Duration,
    /// When its first sample was captured, on the system clock.
    pub captured_at: Instant,
}

impl FrameStamps {
    /// Stamps the frame just read at `now`, whose first sample is `first_sample_age` old (the
    /// frame and what the device still buffers behind it).
    pub fn next(&mut self, now: Instant, first_sample_age: Duration) -> Stamp {
        let stamp = Stamp {
            pts: FRAME * u32::try_from(self.frames).unwrap_or(u32::MAX),
            captured_at: now.checked_sub(first_sample_age).unwrap_or(now),
        };
        self.frames += 1;
        stamp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_time_counts_frames_and_capture_time_follows_the_clock() {
        let t0 = Instant::now();
        let mut s = FrameStamps::default();
        let age = Duration::from_millis(25);
        let a = s.next(t0 + Duration::from_millis(30), age);
        // Read late: the media time still counts one frame, the capture time says when.
        let b = s.next(t0 + Duration::from_millis(80), age);
        assert_eq!(a.pts, Duration::ZERO);
        assert_eq!(b.pts, Duration::from_millis(20));
        assert_eq!(a.captured_at, t0 + Duration::from_millis(5));
        assert_eq!(b.captured_at, t0 + Duration::from_millis(55));
    }
}
