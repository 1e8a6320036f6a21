//! The echo path from the box's speaker to its microphone: a delay (the devices' buffers and
//! the air), a room's reverberation (an impulse response), a loss, and the capture clock
//! running fast or slow against the playback clock (separate USB devices share no clock).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use realfft::RealFftPlanner;

/// How the room returns what the box plays to its microphone.
#[derive(Clone, Copy, Debug)]
pub struct EchoPath {
    /// From the sample written to the speaker to its direct sound at the microphone.
    pub delay_ms: f32,
    /// Time for the reverberation to decay by 60 dB.
    pub rt60_s: f32,
    /// Echo level against what is played (echo return loss, negated): -6 = 6 dB quieter.
    pub gain_db: f32,
    /// The capture clock's rate error against the playback clock, parts per million.
    pub drift_ppm: f64,
    pub seed: u64,
}

impl Default for EchoPath {
    /// A meeting room: 80 ms of device and air delay, 250 ms of reverberation, the echo 6 dB
    /// below the far end, the microphone's clock 100 ppm fast.
    fn default() -> Self {
        EchoPath {
            delay_ms: 80.0,
            rt60_s: 0.25,
            gain_db: -6.0,
            drift_ppm: 100.0,
            seed: 7,
        }
    }
}

impl EchoPath {
    /// The impulse response at `rate`, delay included, scaled to the path's gain (its energy
    /// is the gain squared): a direct sound, then exponentially decaying noise whose envelope
    /// falls 60 dB in `rt60_s`.
    pub fn impulse_response(&self, rate: u32) -> Vec<f32> {
        let fs = rate as f32;
        let delay = (self.delay_ms / 1000.0 * fs) as usize;
        let tail = (self.rt60_s * fs) as usize;
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut ir = vec![0f32; delay + tail + 1];
        ir[delay] = 1.0;
        // Amplitude falls 60 dB (x1000) over rt60: exp(-6.9 t / rt60).
        let decay = -(1000f32.ln()) / (self.rt60_s * fs);
        // The reflections start 2 ms after the direct sound, 6 dB below it.
        let first = delay + (0.002 * fs) as usize;
        for (i, h) in ir.iter_mut().enumerate().skip(first) {
            *h = 0.5 * rng.random_range(-1.0f32..1.0) * (decay * (i - delay) as f32).exp();
        }
        let energy: f32 = ir.iter().map(|h| h * h).sum();
        let scale = crate::db_to_amp(self.gain_db) / energy.sqrt();
        ir.iter_mut().for_each(|h| *h *= scale);
        ir
    }

    /// What the microphone picks up of `played` (the speaker's signal): convolved with the
    /// room and resampled onto the capture clock.
    pub fn echo(&self, played: &[f32], rate: u32) -> Vec<f32> {
        let wet = convolve(played, &self.impulse_response(rate));
        drift(&wet[..played.len()], self.drift_ppm)
    }
}

/// Linear convolution by FFT (a reverberation tail is thousands of taps).
pub fn convolve(x: &[f32], h: &[f32]) -> Vec<f32> {
    let n = (x.len() + h.len() - 1).next_power_of_two();
    let mut planner = RealFftPlanner::<f32>::new();
    let fwd = planner.plan_fft_forward(n);
    let inv = planner.plan_fft_inverse(n);
    let spectrum = |s: &[f32]| {
        let mut buf = fwd.make_input_vec();
        buf[..s.len()].copy_from_slice(s);
        let mut out = fwd.make_output_vec();
        fwd.process(&mut buf, &mut out)
            .expect("sizes from the plan");
        out
    };
    let (fx, fh) = (spectrum(x), spectrum(h));
    let mut prod: Vec<_> = fx.iter().zip(&fh).map(|(a, b)| a * b).collect();
    let mut y = inv.make_output_vec();
    inv.process(&mut prod, &mut y).expect("sizes from the plan");
    y.truncate(x.len() + h.len() - 1);
    let norm = 1.0 / n as f32;
    y.iter_mut().for_each(|v| *v *= norm);
    y
}

/// `x` as a clock `ppm` parts per million fast would sample it: sample n is read at
/// n * (1 + ppm/1e6), by cubic (Catmull-Rom) interpolation. Same length as `x`.
pub fn drift(x: &[f32], ppm: f64) -> Vec<f32> {
    if ppm == 0.0 {
        return x.to_vec();
    }
    let step = 1.0 + ppm * 1e-6;
    let at = |i: isize| -> f32 { x.get(i.max(0) as usize).copied().unwrap_or(0.0) };
    (0..x.len())
        .map(|n| {
            let pos = n as f64 * step;
            let i = pos.floor() as isize;
            let t = (pos - i as f64) as f32;
            let (p0, p1, p2, p3) = (at(i - 1), at(i), at(i + 1), at(i + 2));
            p1 + 0.5
                * t
                * (p2 - p0
                    + t * (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3 + t * (3.0 * (p1 - p2) + p3 - p0)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_impulse_response_has_the_delay_gain_and_decay_asked() {
        let path = EchoPath::default();
        let ir = path.impulse_response(48_000);
        let first = ir.iter().position(|h| h.abs() > 0.0).expect("not all zero");
        assert_eq!(first, 3840, "80 ms at 48 kHz");
        let energy: f32 = ir.iter().map(|h| h * h).sum();
        assert!((10.0 * energy.log10() + 6.0).abs() < 0.01, "gain -6 dB");
        // The tail's level 125 ms in is about 30 dB down (half of rt60's 60 dB).
        let level = |at: usize| crate::rms_dbfs(&ir[at..at + 480]);
        let fall = level(first + 240) - level(first + 6000);
        assert!((fall - 30.0).abs() < 4.0, "fell {fall} dB");
    }

    #[test]
    fn convolution_matches_the_direct_sum() {
        let x: Vec<f32> = (0..300).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
        let h = [0.5, 0.0, -0.25, 0.125];
        let fast = convolve(&x, &h);
        for (n, y) in fast.iter().enumerate() {
            let direct: f32 = (0..h.len())
                .filter(|&k| n >= k && n - k < x.len())
                .map(|k| h[k] * x[n - k])
                .sum();
            assert!((y - direct).abs() < 1e-3, "sample {n}: {y} vs {direct}");
        }
    }

    #[test]
    fn drift_stretches_time_by_the_ppm() {
        // A 1 kHz tone read by a clock 100 ppm fast is a 1000.1 Hz tone.
        let x: Vec<f32> = (0..480_000)
            .map(|n| (std::f32::consts::TAU * 1000.0 * n as f32 / 48_000.0).sin())
            .collect();
        let y = drift(&x, 100.0);
        // At 5 s, y[n] = x[n * 1.0001] is 24 samples (half a cycle) ahead: opposite sign.
        let mid = 240_000;
        let dot: f32 = (mid..mid + 480).map(|n| x[n] * y[n]).sum();
        assert!(dot < -200.0, "half a cycle out at 5 s: {dot}");
    }
}
