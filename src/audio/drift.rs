//! The speaker's and the microphone's clocks drift apart (separate USB devices share no clock:
//! up to 100 ppm, 6 ms a minute), so the echo slides against what the box played. AEC3
//! follows a slow slide by re-estimating its delay, but each re-estimate costs a moment of
//! echo, most after the far end was quiet for a while. The box measures both devices' rates
//! against the system clock ([`RateEstimator`]) and resamples what it played onto the
//! microphone's clock ([`Resampler`]) before the canceller sees it, so the echo path stands
//! still.
//!
//! Sans-IO: times are passed in.

use crate::media::{AUDIO_FRAME, AUDIO_RATE};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Points kept for the fit: one per 100 ms over the last minute.
const WINDOW: usize = 600;
const POINT_EVERY: u64 = 5;
/// A device is believed once it has run this long without a gap.
const BELIEVE_AFTER: Duration = Duration::from_secs(20);
/// A frame this late means the device stopped (an xrun, a reopen): start over.
const GAP: Duration = Duration::from_millis(250);
/// The first second after a (re)start is the device filling its buffer, not its clock.
const SKIP: u64 = 50;
/// Rates further off than this are not a crystal's error but a bug or a wrong rate setting.
const PLAUSIBLE_PPM: f64 = 1000.0;

/// One device's sample rate against the system clock, from when its frames came and went.
#[derive(Debug, Default)]
pub struct RateEstimator {
    /// Frames since the last (re)start, and when the last one came.
    frames: u64,
    start: Option<Instant>,
    last: Option<Instant>,
    /// (seconds since start, frames since start)
    points: VecDeque<(f64, f64)>,
}

impl RateEstimator {
    /// A 20 ms frame was read or written at `at`.
    pub fn frame(&mut self, at: Instant) {
        if self
            .last
            .is_some_and(|last| at.saturating_duration_since(last) > GAP)
        {
            *self = RateEstimator::default();
        }
        self.last = Some(at);
        self.frames += 1;
        if self.frames <= SKIP {
            return;
        }
        let start = *self.start.get_or_insert(at);
        if self.frames.is_multiple_of(POINT_EVERY) {
            let t = at.saturating_duration_since(start).as_secs_f64();
            self.points
                .push_back((t, ((self.frames - SKIP) * AUDIO_FRAME as u64) as f64));
            if self.points.len() > WINDOW {
                self.points.pop_front();
            }
        }
    }

    /// The device's rate error in ppm (positive: faster than nominal), once it has run long
    /// enough to tell.
    pub fn ppm(&self) -> Option<f64> {
        let (first, last) = (self.points.front()?, self.points.back()?);
        if last.0 - first.0 < BELIEVE_AFTER.as_secs_f64() {
            return None;
        }
        // Least squares slope of frames over time.
        let n = self.points.len() as f64;
        let (mt, mf) = self
            .points
            .iter()
            .fold((0.0, 0.0), |(a, b), (t, f)| (a + t / n, b + f / n));
        let (cov, var) = self.points.iter().fold((0.0, 0.0), |(c, v), (t, f)| {
            (c + (t - mt) * (f - mf), v + (t - mt) * (t - mt))
        });
        let ppm = (cov / var / f64::from(AUDIO_RATE) - 1.0) * 1e6;
        (ppm.abs() < PLAUSIBLE_PPM).then_some(ppm)
    }
}

/// How many of the speaker's samples pass per microphone sample: `(1 + speaker ppm) /
/// (1 + microphone ppm)`, 1 while either is unknown.
pub fn ratio(speaker: &RateEstimator, mic: &RateEstimator) -> f64 {
    match (speaker.ppm(), mic.ppm()) {
        (Some(s), Some(m)) => (1.0 + s * 1e-6) / (1.0 + m * 1e-6),
        _ => 1.0,
    }
}

/// Resamples a stream by a ratio close to 1 (cubic interpolation: the ratio moves by parts
/// per million, so the interpolation error, not aliasing, is what counts; it stays 50 dB
/// below speech).
#[derive(Debug)]
pub struct Resampler {
    input: VecDeque<f32>,
    /// Position of the next output sample in `input`, in input samples.
    pos: f64,
}

impl Default for Resampler {
    fn default() -> Self {
        // Start one sample in, so the cubic has a sample before.
        let mut input = VecDeque::with_capacity(4 * AUDIO_FRAME);
        input.push_back(0.0);
        Resampler { input, pos: 1.0 }
    }
}

impl Resampler {
    pub fn push(&mut self, frame: &[i16]) {
        self.input.extend(frame.iter().map(|&s| f32::from(s)));
    }

    /// Appends to `out` every sample the input so far allows, at `ratio` input samples per
    /// output sample (the cubic needs two samples past the position).
    pub fn drain_into(&mut self, ratio: f64, out: &mut Vec<i16>) {
        while self.pos + 2.0 < self.input.len() as f64 {
            let i = self.pos.floor() as usize;
            let t = (self.pos - i as f64) as f32;
            let (p0, p1, p2, p3) = (
                self.input[i - 1],
                self.input[i],
                self.input[i + 1],
                self.input[i + 2],
            );
            let v = p1
                + 0.5
                    * t
                    * (p2 - p0
                        + t * (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3
                            + t * (3.0 * (p1 - p2) + p3 - p0)));
            out.push(v.round().clamp(-32_768.0, 32_767.0) as i16);
            self.pos += ratio;
        }
        // Drop what no later output needs (keep one sample before the position).
        let used = (self.pos.floor() as usize).saturating_sub(1);
        self.input.drain(..used);
        self.pos -= used as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// One origin for every test's virtual clock.
    static ORIGIN: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

    /// Frames `from..to` s of a device `ppm` off, seen by a thread woken up to `jitter_ms`
    /// late.
    fn run(est: &mut RateEstimator, ppm: f64, (from, to): (u64, u64), jitter_ms: f64, seed: u64) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let period = 0.02 / (1.0 + ppm * 1e-6);
        let origin = *ORIGIN;
        for k in from * 50..to * 50 {
            let late = rng.random_range(0.0..jitter_ms) / 1000.0;
            est.frame(origin + Duration::from_secs_f64(k as f64 * period + late));
        }
    }

    #[test]
    fn a_device_rate_is_measured_to_a_few_ppm() {
        for (ppm, seed) in [(100.0, 1), (-73.0, 2), (0.0, 3)] {
            let mut est = RateEstimator::default();
            run(&mut est, ppm, (0, 15), 3.0, seed);
            assert_eq!(est.ppm(), None, "not yet believed after 15 s");
            run(&mut est, ppm, (15, 75), 3.0, seed + 10);
            let got = est.ppm().expect("believed after a minute");
            assert!((got - ppm).abs() < 3.0, "{ppm} ppm measured as {got}");
        }
    }

    #[test]
    fn a_gap_starts_over() {
        let mut est = RateEstimator::default();
        run(&mut est, 50.0, (0, 60), 1.0, 4);
        assert!(est.ppm().is_some());
        est.frame(*ORIGIN + Duration::from_secs(500));
        assert_eq!(est.ppm(), None);
    }

    #[test]
    fn the_resampler_stretches_by_the_ratio_and_keeps_the_signal() {
        // A 440 Hz tone resampled by 1.0001 is a 440.044 Hz tone: compare with the exact one.
        let ratio = 1.0001;
        let tone = |t: f64| (8000.0 * (std::f64::consts::TAU * 440.0 * t).sin()) as f32;
        let mut r = Resampler::default();
        let mut produced = Vec::new();
        for k in 0..500 {
            let frame: [i16; AUDIO_FRAME] = std::array::from_fn(|i| {
                tone((k * AUDIO_FRAME + i) as f64 / 48_000.0).round() as i16
            });
            r.push(&frame);
            r.drain_into(ratio, &mut produced);
        }
        // 10 s in, 10 s / 1.0001 out, less the two samples the cubic waits for.
        assert!((produced.len() as f64 - 480_000.0 / ratio).abs() < 4.0);
        // Output sample m is input at m * ratio, shifted by the one-sample lead.
        let err: f64 = produced
            .iter()
            .enumerate()
            .skip(10)
            .map(|(m, &y)| {
                let x = tone((m as f64 * ratio) / 48_000.0);
                (f64::from(y) - f64::from(x)).powi(2)
            })
            .sum::<f64>()
            / produced.len() as f64;
        let snr = 10.0 * (8000f64.powi(2) / 2.0 / err).log10();
        assert!(snr > 50.0, "{snr} dB");
    }

    #[test]
    fn the_ratio_is_one_until_both_are_known() {
        let (mut s, mut m) = (RateEstimator::default(), RateEstimator::default());
        assert_eq!(ratio(&s, &m), 1.0);
        run(&mut s, 60.0, (0, 60), 1.0, 5);
        assert_eq!(ratio(&s, &m), 1.0);
        run(&mut m, -40.0, (0, 60), 1.0, 6);
        assert!((ratio(&s, &m) - 1.0001).abs() < 3e-6, "{}", ratio(&s, &m));
    }
}
