//! Audio levels for people: the meters of the settings page (the microphone as captured and
//! as sent, the speaker) and whether the room is speaking (the HDMI-out screen). The audio
//! threads write them, the page reads them: atomics, so nobody waits on anybody.

use crate::media::AUDIO_FRAME;
use serde::Serialize;
use std::sync::atomic::{AtomicI32, Ordering::Relaxed};

/// The floor of every meter: quieter than this reads as silence.
pub const FLOOR_DBFS: f32 = -90.0;

/// The RMS level of a frame in dBFS, at least [`FLOOR_DBFS`].
pub fn frame_dbfs(frame: &[i16; AUDIO_FRAME]) -> f32 {
    dbfs(frame)
}

/// The RMS level of `samples` in dBFS, at least [`FLOOR_DBFS`] (silence, or none).
pub fn dbfs(samples: &[i16]) -> f32 {
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum / samples.len().max(1) as f64).sqrt() / 32_768.0;
    ((20.0 * rms.log10()) as f32).max(FLOOR_DBFS)
}

/// Speaking or not, from the processed microphone's level, with hangover so a word's pauses
/// do not flicker the indicator: on after 60 ms above the threshold, off after 500 ms below.
#[derive(Debug, Default)]
pub struct SpeakingDetector {
    speaking: bool,
    above_ms: u32,
    below_ms: u32,
}

/// Speech at a conference microphone is -40 to -15 dBFS; a quiet room's noise, after noise
/// suppression, is well below.
const SPEAKING_DBFS: f32 = -45.0;
const ON_AFTER_MS: u32 = 60;
const OFF_AFTER_MS: u32 = 500;
const FRAME_MS: u32 = 20;

impl SpeakingDetector {
    /// A 20 ms frame's level; returns whether the room is speaking now.
    pub fn update(&mut self, dbfs: f32) -> bool {
        if dbfs >= SPEAKING_DBFS {
            self.above_ms += FRAME_MS;
            self.below_ms = 0;
            if self.above_ms >= ON_AFTER_MS {
                self.speaking = true;
            }
        } else {
            self.below_ms += FRAME_MS;
            self.above_ms = 0;
            if self.below_ms >= OFF_AFTER_MS {
                self.speaking = false;
            }
        }
        self.speaking
    }
}

/// The live levels, shared between the audio threads and the settings page.
#[derive(Debug)]
pub struct AudioMeters {
    /// Tenths of a dB, so they fit an atomic integer.
    mic_in: AtomicI32,
    mic_sent: AtomicI32,
    speaker: AtomicI32,
    /// The canceller's ERLE (tenths of a dB) and the echo delay it found (ms); i32::MIN when
    /// unknown.
    erle: AtomicI32,
    echo_delay_ms: AtomicI32,
    /// Tenths of a ppm; i32::MIN when unknown.
    drift: AtomicI32,
}

impl Default for AudioMeters {
    fn default() -> Self {
        let floor = tenths(FLOOR_DBFS);
        AudioMeters {
            mic_in: AtomicI32::new(floor),
            mic_sent: AtomicI32::new(floor),
            speaker: AtomicI32::new(floor),
            erle: AtomicI32::new(i32::MIN),
            echo_delay_ms: AtomicI32::new(i32::MIN),
            drift: AtomicI32::new(i32::MIN),
        }
    }
}

fn tenths(db: f32) -> i32 {
    (db * 10.0).round() as i32
}

/// The meters as the page reads them.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LevelsView {
    /// The microphone as captured, dBFS.
    pub mic_dbfs: f32,
    /// What is sent after processing (and mute), dBFS.
    pub sent_dbfs: f32,
    /// The remote voices on the speaker, dBFS.
    pub speaker_dbfs: f32,
    pub echo_erle_db: Option<f32>,
    pub echo_delay_ms: Option<i32>,
    /// How far apart the speaker's and the microphone's clocks run, ppm (compensated).
    pub clock_drift_ppm: Option<f32>,
}

impl AudioMeters {
    /// The capture thread's frame: as captured and as sent.
    pub fn mic(&self, captured_dbfs: f32, sent_dbfs: f32) {
        self.mic_in.store(tenths(captured_dbfs), Relaxed);
        self.mic_sent.store(tenths(sent_dbfs), Relaxed);
    }

    pub fn speaker(&self, dbfs: f32) {
        self.speaker.store(tenths(dbfs), Relaxed);
    }

    pub fn echo(&self, stats: super::processing::EchoStats) {
        let erle = stats.erle_db.map_or(i32::MIN, |e| tenths(e as f32));
        self.erle.store(erle, Relaxed);
        self.echo_delay_ms
            .store(stats.delay_ms.unwrap_or(i32::MIN), Relaxed);
        let drift = stats.clock_drift_ppm.map_or(i32::MIN, |d| tenths(d as f32));
        self.drift.store(drift, Relaxed);
    }

    /// No microphone (a restart, `none`): the meters fall to the floor.
    pub fn mic_silent(&self) {
        self.mic(FLOOR_DBFS, FLOOR_DBFS);
        self.echo(super::processing::EchoStats::default());
    }

    pub fn view(&self) -> LevelsView {
        let db = |a: &AtomicI32| a.load(Relaxed) as f32 / 10.0;
        let known = |v: i32| (v != i32::MIN).then_some(v);
        LevelsView {
            mic_dbfs: db(&self.mic_in),
            sent_dbfs: db(&self.mic_sent),
            speaker_dbfs: db(&self.speaker),
            echo_erle_db: known(self.erle.load(Relaxed)).map(|e| e as f32 / 10.0),
            echo_delay_ms: known(self.echo_delay_ms.load(Relaxed)),
            clock_drift_ppm: known(self.drift.load(Relaxed)).map(|d| d as f32 / 10.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_in_dbfs() {
        assert_eq!(frame_dbfs(&[0; AUDIO_FRAME]), FLOOR_DBFS);
        let full: [i16; AUDIO_FRAME] =
            std::array::from_fn(|i| if i % 2 == 0 { 32_767 } else { -32_767 });
        assert!(frame_dbfs(&full).abs() < 0.01);
        // A sine at amplitude 0.1 is -20 dBFS peak, -23 dBFS RMS.
        let sine: [i16; AUDIO_FRAME] = std::array::from_fn(|i| {
            (3276.8 * (std::f32::consts::TAU * 1000.0 * i as f32 / 48_000.0).sin()) as i16
        });
        assert!(
            (frame_dbfs(&sine) + 23.0).abs() < 0.1,
            "{}",
            frame_dbfs(&sine)
        );
    }

    #[test]
    fn speaking_needs_60_ms_on_and_500_ms_off() {
        let mut d = SpeakingDetector::default();
        assert!(!d.update(-30.0));
        assert!(!d.update(-30.0));
        assert!(d.update(-30.0), "on at the third loud frame (60 ms)");
        // A word's gap of 300 ms keeps it on; 500 ms turns it off.
        for _ in 0..15 {
            assert!(d.update(-70.0));
        }
        assert!(d.update(-30.0));
        for _ in 0..24 {
            assert!(d.update(-70.0));
        }
        assert!(!d.update(-70.0), "off at the 25th quiet frame (500 ms)");
    }

    #[test]
    fn the_page_reads_what_the_threads_wrote() {
        let m = AudioMeters::default();
        assert_eq!(m.view().mic_dbfs, FLOOR_DBFS);
        assert_eq!(m.view().echo_erle_db, None);
        m.mic(-23.04, -30.0);
        m.speaker(-12.5);
        m.echo(super::super::processing::EchoStats {
            erle_db: Some(31.26),
            delay_ms: Some(84),
            clock_drift_ppm: Some(-41.04),
        });
        let v = m.view();
        assert_eq!(
            (v.mic_dbfs, v.sent_dbfs, v.speaker_dbfs),
            (-23.0, -30.0, -12.5)
        );
        assert_eq!((v.echo_erle_db, v.echo_delay_ms), (Some(31.3), Some(84)));
        assert_eq!(v.clock_drift_ppm, Some(-41.0));
        m.mic_silent();
        assert_eq!(m.view().echo_delay_ms, None);
    }
}
