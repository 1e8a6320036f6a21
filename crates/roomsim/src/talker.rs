//! A synthetic talker: a source-filter vowel synthesizer (a glottal pulse train with a falling
//! spectrum through three formant resonators) speaking syllables grouped into words with pauses,
//! some opened by a fricative. It is not intelligible, but it has what an echo canceller meets
//! in speech: a moving pitch, formant structure, syllabic on/off and silent gaps, fricative
//! noise. Deterministic for a seed, with nothing to install.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Who is talking: pitch and vocal-tract size.
#[derive(Clone, Copy, Debug)]
pub struct Voice {
    pub pitch_hz: f32,
    /// Formant frequencies are multiplied by this (shorter vocal tracts have higher formants).
    pub formant_scale: f32,
}

impl Voice {
    pub const LOW: Voice = Voice {
        pitch_hz: 110.0,
        formant_scale: 1.0,
    };
    pub const HIGH: Voice = Voice {
        pitch_hz: 210.0,
        formant_scale: 1.17,
    };
}

/// F1, F2, F3 of a few vowels (Peterson and Barney's adult male averages, rounded).
const VOWELS: [[f32; 3]; 6] = [
    [730.0, 1090.0, 2440.0], // a
    [270.0, 2290.0, 3010.0], // i
    [300.0, 870.0, 2240.0],  // u
    [530.0, 1840.0, 2480.0], // e
    [570.0, 840.0, 2410.0],  // o
    [660.0, 1720.0, 2410.0], // ae
];
const BANDWIDTHS: [f32; 3] = [80.0, 100.0, 140.0];
/// Fricative noise against the voiced excitation's scale (about 12 dB below the vowels).
const FRICATIVE_GAIN: f32 = 0.1;
/// The active speech's RMS level, before the caller's gain.
const LEVEL_DBFS: f32 = -20.0;

/// A two-pole resonator (one formant), unity gain at DC.
#[derive(Default, Clone, Copy)]
struct Resonator {
    y1: f32,
    y2: f32,
}

impl Resonator {
    fn step(&mut self, x: f32, freq: f32, bw: f32, rate: f32) -> f32 {
        let r = (-std::f32::consts::PI * bw / rate).exp();
        let a1 = 2.0 * r * (std::f32::consts::TAU * freq / rate).cos();
        let a2 = -r * r;
        let y = (1.0 - a1 - a2) * x + a1 * self.y1 + a2 * self.y2;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// `seconds` of speech at `rate` by `voice`, active speech at -20 dBFS RMS.
pub fn speech(voice: Voice, seconds: f32, rate: u32, seed: u64) -> Vec<f32> {
    let fs = rate as f32;
    let total = (seconds * fs) as usize;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(total);
    let mut formants = [Resonator::default(); 3];
    let mut tilt = [0f32; 2];
    let mut last_flow = 0f32;
    let mut last_noise = 0f32;
    let mut phase = 0f32;
    let mut previous = VOWELS[0];
    while out.len() < total {
        // A word of 1-4 syllables, then a pause.
        for _ in 0..rng.random_range(1..=4) {
            let vowel = VOWELS[rng.random_range(0..VOWELS.len())];
            let len = (rng.random_range(0.12..0.32) * fs) as usize;
            let fricative = if rng.random_bool(0.35) {
                (rng.random_range(0.04..0.09) * fs) as usize
            } else {
                0
            };
            let pitch0 = voice.pitch_hz * rng.random_range(0.85..1.2);
            for n in 0..len {
                let t = n as f32 / len as f32;
                // Formants glide from the previous vowel over the first 30 %.
                let glide = (t / 0.3).min(1.0);
                let f: [f32; 3] = std::array::from_fn(|i| {
                    (previous[i] + (vowel[i] - previous[i]) * glide) * voice.formant_scale
                });
                // Pitch falls a little over the syllable.
                let pitch = pitch0 * (1.0 - 0.12 * t);
                phase += pitch / fs;
                let pulse = if phase >= 1.0 {
                    phase -= 1.0;
                    1.0
                } else {
                    0.0
                };
                // Two one-pole low-passes make the glottal flow (roughly -12 dB/octave); its
                // derivative, zero-mean, excites the vocal tract (lip radiation).
                tilt[0] = 0.9 * tilt[0] + pulse;
                tilt[1] = 0.9 * tilt[1] + tilt[0];
                let mut s = tilt[1] - last_flow;
                last_flow = tilt[1];
                for (i, r) in formants.iter_mut().enumerate() {
                    s = r.step(s, f[i].min(fs * 0.45), BANDWIDTHS[i], fs);
                }
                if n < fricative {
                    // A fricative: high-passed noise, about 12 dB below the vowels.
                    let noise = rng.random_range(-1.0f32..1.0);
                    s = FRICATIVE_GAIN * (noise - last_noise);
                    last_noise = noise;
                }
                // 20 ms raised-cosine attack and decay.
                let edge = (0.02 * fs) as usize;
                let env = if n < edge {
                    0.5 - 0.5 * (std::f32::consts::PI * n as f32 / edge as f32).cos()
                } else if len - n < edge {
                    0.5 - 0.5 * (std::f32::consts::PI * (len - n) as f32 / edge as f32).cos()
                } else {
                    1.0
                };
                out.push(s * env);
            }
            previous = vowel;
        }
        let pause = (rng.random_range(0.15..0.5) * fs) as usize;
        out.extend(std::iter::repeat_n(0.0, pause));
    }
    out.truncate(total);
    // Remove the resonators' DC and set the active level.
    let mean = out.iter().sum::<f32>() / out.len().max(1) as f32;
    let mut hp = 0f32;
    let mut last = 0f32;
    for s in &mut out {
        let x = *s - mean;
        hp = 0.995 * (hp + x - last);
        last = x;
        *s = hp;
    }
    set_active_level(&mut out, LEVEL_DBFS);
    out
}

/// Scales `x` so that its active speech (the samples that are not silence) has the RMS level
/// `dbfs`: the pauses do not count, so talkers with different pauses are equally loud.
pub fn set_active_level(x: &mut [f32], dbfs: f32) {
    let active: Vec<f32> = x.iter().copied().filter(|s| s.abs() > 1e-6).collect();
    if active.is_empty() {
        return;
    }
    let gain = crate::db_to_amp(dbfs - crate::rms_dbfs(&active));
    x.iter_mut().for_each(|s| *s *= gain);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_burst_stands_far_above_the_speech() {
        // Real fricatives are quieter than vowels: no 10 ms block of 30 s of speech at
        // -20 dBFS comes within 8 dB of full scale.
        let s = speech(Voice::LOW, 30.0, crate::RATE, 3);
        let levels: Vec<f32> = s.chunks(480).map(crate::rms_dbfs).collect();
        let loudest = levels.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        assert!(
            loudest < -8.0,
            "no burst far above the -20 dBFS speech: {loudest}"
        );
    }

    #[test]
    fn speech_has_the_level_and_pauses_of_speech() {
        let s = speech(Voice::LOW, 10.0, crate::RATE, 1);
        assert_eq!(s.len(), 480_000);
        let blocks: Vec<f32> = s.chunks(480).map(crate::rms_dbfs).collect();
        let silent = blocks.iter().filter(|&&l| l < -50.0).count();
        let loud = blocks.iter().filter(|&&l| l > -30.0).count();
        // Speech is on for most of the time and off between words.
        assert!(
            silent > 50 && silent < 500,
            "{silent} silent blocks of 1000"
        );
        assert!(loud > 400, "{loud} loud blocks of 1000");
        assert!(s.iter().all(|x| x.abs() < 1.0), "no clipping");
        // Deterministic for a seed, different for another.
        assert_eq!(s, speech(Voice::LOW, 10.0, crate::RATE, 1));
        assert_ne!(s, speech(Voice::LOW, 10.0, crate::RATE, 2));
    }
}
