//! Test tone: a steady 440 Hz sine with a 100 ms 880 Hz beep at the start of every second, so a
//! listener hears both continuity and the one-second rhythm. Paced in real time, 20 ms a frame.
//! The seconds are those of the media epoch (`pace::epoch`), when the test pattern flashes:
//! beep and flash leave the box at the same instant (lip sync).

use std::f64::consts::TAU;

use super::source::AudioSource;
use crate::media::frame::{AUDIO_FRAME, AUDIO_RATE};
use crate::media::pace::Pacer;
use crate::media::SourceError;

/// Frequency of the steady tone.
pub const TONE_HZ: f64 = 440.0;
const BEEP_HZ: f64 = 880.0;
const BEEP_SAMPLES: u64 = AUDIO_RATE as u64 / 10;
/// About -12 dBFS, leaving headroom for the beep on top.
const TONE_AMPLITUDE: f64 = 8000.0;
const BEEP_AMPLITUDE: f64 = 6000.0;

/// A paced tone source. Sample time comes from the pacer's slot (so a frame late enough to
/// skip slots skips their samples too, and the beeps stay on the media clock's seconds).
pub struct Tone {
    pacer: Pacer,
    /// The sample of slot 0, counted from the media epoch.
    first: u64,
    sample: u64,
}

impl Tone {
    /// A tone paced in real time from now, its samples counted from the media epoch.
    pub fn new() -> Self {
        let pacer = Pacer::new(AUDIO_RATE, AUDIO_FRAME as u32, true);
        let since = pacer
            .start()
            .saturating_duration_since(crate::media::pace::epoch());
        let first = (since.as_nanos() * u128::from(AUDIO_RATE) / 1_000_000_000) as u64;
        Self {
            pacer,
            first,
            sample: first,
        }
    }

    /// Never sleeps (tests, benchmarks).
    pub fn unpaced() -> Self {
        Self {
            pacer: Pacer::new(AUDIO_RATE, AUDIO_FRAME as u32, false),
            first: 0,
            sample: 0,
        }
    }

    /// Fills `out` with the next 20 ms without waiting.
    pub fn fill(&mut self, out: &mut [i16; AUDIO_FRAME]) {
        let rate = f64::from(AUDIO_RATE);
        for (i, s) in out.iter_mut().enumerate() {
            let n = self.sample + i as u64;
            // Reduce the time to within a second first so the phase stays precise for days.
            let t = (n % u64::from(AUDIO_RATE)) as f64 / rate;
            let mut v = TONE_AMPLITUDE * (TAU * TONE_HZ * t).sin();
            if n % u64::from(AUDIO_RATE) < BEEP_SAMPLES {
                v += BEEP_AMPLITUDE * (TAU * BEEP_HZ * t).sin();
            }
            *s = v as i16;
        }
        self.sample += AUDIO_FRAME as u64;
    }
}

impl Default for Tone {
    fn default() -> Self {
        Self::new()
    }
}

impl AudioSource for Tone {
    fn read_frame(&mut self, out: &mut [i16; AUDIO_FRAME]) -> Result<(), SourceError> {
        let (slot, _) = self.pacer.wait();
        self.sample = self.first + slot * AUDIO_FRAME as u64;
        self.fill(out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_reader_skips_samples_with_the_slots() {
        // The source is opened, then read 200 ms later (the box opens every device before
        // its threads start): the samples follow the clock, not the count of frames read.
        let mut tone = Tone::new();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut frame = [0; AUDIO_FRAME];
        tone.read_frame(&mut frame).expect("tone never fails");
        let skipped = (tone.sample - tone.first) / AUDIO_FRAME as u64;
        assert!(skipped >= 9, "{skipped} slots skipped, 10 due");
    }

    #[test]
    fn tone_is_continuous_and_beeps() {
        let mut tone = Tone::unpaced();
        let mut frames = vec![[0i16; AUDIO_FRAME]; 50];
        for f in frames.iter_mut() {
            tone.read_frame(f).expect("tone never fails");
        }
        let all: Vec<i16> = frames.concat();
        // No jumps between frames larger than the sine's slope allows.
        let max_step = all
            .windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max();
        assert!(max_step.unwrap_or(0) < 1200, "{max_step:?}");
        let rms = |s: &[i16]| {
            (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len() as f64).sqrt()
        };
        // The first 100 ms carry the beep on top of the tone.
        assert!(rms(&all[..4800]) > rms(&all[9600..14400]) * 1.2);
    }
}
