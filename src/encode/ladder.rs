//! Which picture size to send for the bitrate the calls allow: the `balanced` degradation
//! policy (docs/decisions.md, "Degradation under a low bitrate"). Sans-IO: the target, the
//! source's size and rate and the time go in, the size to encode comes out.
//!
//! A picture too big for its bitrate comes out as a few large, blocky frames a second (the
//! encoder skips frames to hold the rate) and freezes the page whenever the link drops a burst;
//! a smaller picture at the full frame rate keeps motion and recovers from loss faster. So the
//! size steps down a ladder (1, 3/4, 1/2, 3/8, 1/4 of the source, as libwebrtc's alternating
//! 3/4 and 2/3 steps) when the target stays below what the size needs, and back up when the
//! target has had room for a bigger size for a while.

use std::time::{Duration, Instant};

use crate::config::Degradation;

/// Rungs as fractions of the source's width and height.
const RUNGS: [(u32, u32); 5] = [(1, 1), (3, 4), (1, 2), (3, 8), (1, 4)];
/// No rung narrower than this (unless the source is).
const MIN_WIDTH: u32 = 160;
/// How long the target must stay too low before the size steps down: one bad estimate is not
/// worth a keyframe.
const DOWN_AFTER: Duration = Duration::from_secs(1);
/// How long the target must leave room for a bigger size before stepping up, counted from the
/// last change too (a step up that overshoots would otherwise come straight back down).
const UP_AFTER: Duration = Duration::from_secs(4);
/// A bigger size is taken only with this much headroom over what it needs.
const UP_MARGIN: f64 = 1.3;

/// The bitrate a size needs at a frame rate: 0.033 bit per pixel plus 60 kbit/s of fixed cost
/// (headers, a keyframe's share). It puts 1280x720p30 at 972 kbit/s, 960x540 at 573,
/// 640x360 at 288 and 480x270 at 188: close to the per-resolution start bitrates libwebrtc
/// uses for its own scaling.
pub fn needs_bps(width: u32, height: u32, fps: u32) -> u32 {
    let pixel_rate = f64::from(width) * f64::from(height) * f64::from(fps.max(1));
    (60_000.0 + 0.033 * pixel_rate) as u32
}

/// The sizes of the ladder for a source, biggest first (even sizes, as I420 needs).
pub fn rungs(source: (u32, u32)) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for (num, den) in RUNGS {
        let size = ((source.0 * num / den) & !1, (source.1 * num / den) & !1);
        let small = size.0 < MIN_WIDTH.min(source.0) || size.1 < 2;
        if small || out.last() == Some(&size) {
            break;
        }
        out.push(size);
    }
    out
}

/// The size policy of one video stream.
#[derive(Debug)]
pub struct Ladder {
    mode: Degradation,
    source: (u32, u32),
    sizes: Vec<(u32, u32)>,
    /// Index into `sizes`: 0 is the source's own size.
    rung: usize,
    /// Since when the target has been too low for `rung`.
    low_since: Option<Instant>,
    /// Since when a bigger size has fit, and the lowest target seen since.
    room_since: Option<(Instant, u32)>,
    changed_at: Option<Instant>,
}

/// A change of size, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeChange {
    pub from: (u32, u32),
    pub to: (u32, u32),
    pub target_bps: u32,
}

impl Ladder {
    pub fn new(mode: Degradation) -> Self {
        Ladder {
            mode,
            source: (0, 0),
            sizes: Vec::new(),
            rung: 0,
            low_since: None,
            room_since: None,
            changed_at: None,
        }
    }

    /// The size to encode the next frame at; `Some` change when it differs from the last.
    pub fn update(
        &mut self,
        target_bps: u32,
        source: (u32, u32),
        fps: u32,
        now: Instant,
    ) -> ((u32, u32), Option<SizeChange>) {
        if self.mode == Degradation::MaintainResolution {
            return (source, None);
        }
        if source != self.source {
            // A new input size: start over from the ladder's rung that fits now.
            self.source = source;
            self.sizes = rungs(source);
            self.rung = self.fitting(target_bps, fps, 1.0);
            self.low_since = None;
            self.room_since = None;
            return (self.size(), None);
        }
        let from = self.size();
        let fits_down = self.fitting(target_bps, fps, 1.0);
        if fits_down > self.rung {
            let since = *self.low_since.get_or_insert(now);
            if now.duration_since(since) >= DOWN_AFTER {
                self.rung = fits_down;
            }
        } else {
            self.low_since = None;
        }
        let bigger_fits = self.fitting(target_bps, fps, UP_MARGIN) < self.rung;
        if bigger_fits {
            let (since, lowest) = match self.room_since {
                Some((since, lowest)) => (since, lowest.min(target_bps)),
                None => (now, target_bps),
            };
            self.room_since = Some((since, lowest));
            let settled = self
                .changed_at
                .is_none_or(|t| now.duration_since(t) >= UP_AFTER);
            if now.duration_since(since) >= UP_AFTER && settled {
                // Straight to the biggest size the whole wait had room for.
                self.rung = self.fitting(lowest, fps, UP_MARGIN).min(self.rung - 1);
            }
        } else {
            self.room_since = None;
        }
        let to = self.size();
        if to == from {
            return (to, None);
        }
        self.changed_at = Some(now);
        self.low_since = None;
        self.room_since = None;
        let change = SizeChange {
            from,
            to,
            target_bps,
        };
        (to, Some(change))
    }

    /// The biggest rung whose need, times `margin`, the target covers (the smallest if none).
    fn fitting(&self, target_bps: u32, fps: u32, margin: f64) -> usize {
        self.sizes
            .iter()
            .position(|&(w, h)| f64::from(needs_bps(w, h, fps)) * margin <= f64::from(target_bps))
            .unwrap_or(self.sizes.len().saturating_sub(1))
    }

    fn size(&self) -> (u32, u32) {
        self.sizes.get(self.rung).copied().unwrap_or(self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HD: (u32, u32) = (1280, 720);

    /// Feeds `target` at 30 fps for `secs` seconds; the sizes chosen, one per frame.
    fn run(l: &mut Ladder, t: &mut Instant, target: u32, secs: f64) -> Vec<(u32, u32)> {
        let frames = (secs * 30.0) as usize;
        (0..frames)
            .map(|_| {
                *t += Duration::from_millis(33);
                l.update(target, HD, 30, *t).0
            })
            .collect()
    }

    #[test]
    fn ladder_sizes_are_even_and_stop_at_small_pictures() {
        assert_eq!(
            rungs(HD),
            [(1280, 720), (960, 540), (640, 360), (480, 270), (320, 180)]
        );
        assert_eq!(
            rungs((1920, 1080)),
            [
                (1920, 1080),
                (1440, 810),
                (960, 540),
                (720, 404),
                (480, 270)
            ]
        );
        assert_eq!(rungs((320, 240)), [(320, 240), (240, 180), (160, 120)]);
        assert_eq!(rungs((64, 64)), [(64, 64)]);
        assert_eq!(needs_bps(1280, 720, 30), 972_384);
        assert_eq!(needs_bps(640, 360, 30), 288_096);
    }

    #[test]
    fn starts_at_the_size_the_target_fits() {
        let mut l = Ladder::new(Degradation::Balanced);
        let now = Instant::now();
        assert_eq!(l.update(2_500_000, HD, 30, now), (HD, None));
        let mut l = Ladder::new(Degradation::Balanced);
        assert_eq!(l.update(600_000, HD, 30, now).0, (960, 540));
    }

    #[test]
    fn steps_down_after_a_second_too_low_and_to_the_size_that_fits() {
        let mut l = Ladder::new(Degradation::Balanced);
        let mut t = Instant::now();
        l.update(2_500_000, HD, 30, t);
        let sizes = run(&mut l, &mut t, 350_000, 2.0);
        // One bad second keeps the size; then one step, straight to what 350 kbit/s carries.
        assert!(sizes[..29].iter().all(|&s| s == HD), "{sizes:?}");
        assert_eq!(sizes.last(), Some(&(640, 360)));
        assert_eq!(sizes.iter().filter(|&&s| s == (960, 540)).count(), 0);
    }

    #[test]
    fn a_short_dip_changes_nothing() {
        let mut l = Ladder::new(Degradation::Balanced);
        let mut t = Instant::now();
        l.update(2_500_000, HD, 30, t);
        let dip = run(&mut l, &mut t, 400_000, 0.8);
        let after = run(&mut l, &mut t, 2_500_000, 5.0);
        assert!(dip.iter().chain(&after).all(|&s| s == HD));
    }

    #[test]
    fn climbs_back_once_the_target_has_held_room_for_a_bigger_size() {
        let mut l = Ladder::new(Degradation::Balanced);
        let mut t = Instant::now();
        l.update(300_000, HD, 30, t);
        assert_eq!(run(&mut l, &mut t, 300_000, 2.0).last(), Some(&(640, 360)));
        // Room for 960x540 (573k x 1.3 = 745k) but not 1280x720 (972k x 1.3 = 1264k).
        let sizes = run(&mut l, &mut t, 900_000, 6.0);
        let first_up = sizes.iter().position(|&s| s != (640, 360)).unwrap();
        assert!(
            (119..=125).contains(&first_up),
            "stepped up after {first_up} frames"
        );
        assert_eq!(sizes.last(), Some(&(960, 540)));
        // A lifted cap: straight to full size after the wait, not one rung per wait.
        let sizes = run(&mut l, &mut t, 2_500_000, 6.0);
        assert_eq!(sizes.last(), Some(&HD));
        let waited = sizes.iter().filter(|&&s| s == (960, 540)).count();
        assert!(
            (119..=125).contains(&waited),
            "stepped up after {waited} frames"
        );
    }

    #[test]
    fn a_wavering_target_gets_the_size_its_lowest_point_allowed() {
        let mut l = Ladder::new(Degradation::Balanced);
        let mut t = Instant::now();
        l.update(300_000, HD, 30, t);
        run(&mut l, &mut t, 300_000, 2.0);
        let mut sizes = Vec::new();
        for _ in 0..4 {
            sizes.extend(run(&mut l, &mut t, 2_500_000, 1.0));
            sizes.extend(run(&mut l, &mut t, 800_000, 0.5));
        }
        assert!(sizes.iter().all(|&s| s == (640, 360) || s == (960, 540)));
        assert_eq!(sizes.last(), Some(&(960, 540)));
    }

    #[test]
    fn maintain_resolution_never_scales() {
        let mut l = Ladder::new(Degradation::MaintainResolution);
        let mut t = Instant::now();
        assert!(run(&mut l, &mut t, 100_000, 3.0).iter().all(|&s| s == HD));
    }

    #[test]
    fn a_new_source_size_starts_over() {
        let mut l = Ladder::new(Degradation::Balanced);
        let t = Instant::now();
        l.update(600_000, HD, 30, t);
        let (size, change) = l.update(600_000, (640, 480), 30, t + Duration::from_millis(33));
        assert_eq!((size, change), ((640, 480), None));
    }
}
