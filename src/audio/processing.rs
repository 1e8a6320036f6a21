//! The room microphone's processing before it is encoded: a high-pass filter, acoustic echo
//! cancellation against what the box plays (WebRTC's AEC3), noise suppression and automatic
//! gain (AGC2), each a setting. The implementation is `sonora`, a pure-Rust port of WebRTC's
//! audio processing module (docs/decisions.md says why it and not speexdsp or Debian's old
//! libwebrtc-audio-processing).
//!
//! Sans-IO: the playout thread's frames arrive through [`FarEndTap`] (a bounded queue, so the
//! speaker never waits on the microphone), and the capture thread hands each captured frame to
//! [`RoomProcessor::process`], which first feeds the queued far end to the canceller. AEC3 finds
//! the delay between the two itself (device buffers, the air) and follows it as the capture
//! and playback clocks drift apart; the box also measures that drift and resamples what it
//! played onto the microphone's clock (audio::drift), so the echo path stands still.

use super::drift::{self, RateEstimator, Resampler};
use crate::media::AUDIO_FRAME;
use sonora::config::{
    AdaptiveDigital, EchoCanceller, GainController2, HighPassFilter, NoiseSuppression,
};
use sonora::{AudioProcessing, Config, StreamConfig};

pub use crate::config::AudioProcessing as Stages;
use std::sync::mpsc;
use std::time::Instant;

/// 10 ms at 48 kHz: the unit the processing works in (a 20 ms frame is two).
const BLOCK: usize = 480;
/// Far-end frames waiting for the capture thread: 1 s. More means the capture thread stalled;
/// the oldest reference is then useless anyway and new frames are dropped.
const FAR_QUEUE_FRAMES: usize = 50;

/// A frame the speaker was given, and when.
type Played = (Box<[i16; AUDIO_FRAME]>, Instant);

/// The playout thread's end of the far-end queue: what the box is about to play.
#[derive(Clone)]
pub struct FarEndTap(mpsc::SyncSender<Played>);

impl FarEndTap {
    /// A frame given to the speaker at `at`. Never blocks: a full queue drops it.
    pub fn played(&self, frame: &[i16; AUDIO_FRAME], at: Instant) {
        let _ = self.0.try_send((Box::new(*frame), at));
    }
}

/// A tap and the queue it fills.
pub fn far_end_queue() -> (FarEndTap, FarEnd) {
    let (tx, rx) = mpsc::sync_channel(FAR_QUEUE_FRAMES);
    (FarEndTap(tx), FarEnd(rx))
}

/// The capture thread's end of the far-end queue.
pub struct FarEnd(mpsc::Receiver<Played>);

/// The canceller's view of the echo, for the page and the logs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EchoStats {
    /// Echo return loss enhancement of the linear filter, dB.
    pub erle_db: Option<f64>,
    /// The echo path's delay AEC3 estimated, ms.
    pub delay_ms: Option<i32>,
    /// How far apart the speaker's and the microphone's clocks run, ppm, once measured.
    pub clock_drift_ppm: Option<f64>,
}

/// The microphone's processing chain.
pub struct RoomProcessor {
    stages: Stages,
    apm: Option<AudioProcessing>,
    out: [i16; BLOCK],
    /// The two devices' clocks, and what was played on the microphone's clock.
    speaker_clock: RateEstimator,
    mic_clock: RateEstimator,
    ratio: f64,
    resampler: Resampler,
    /// Resampled reference not yet fed (less than a block).
    aligned: Vec<i16>,
}

impl RoomProcessor {
    pub fn new(stages: Stages) -> RoomProcessor {
        RoomProcessor {
            stages,
            apm: build(stages),
            out: [0; BLOCK],
            speaker_clock: RateEstimator::default(),
            mic_clock: RateEstimator::default(),
            ratio: 1.0,
            resampler: Resampler::default(),
            aligned: Vec::with_capacity(2 * AUDIO_FRAME),
        }
    }

    pub fn stages(&self) -> Stages {
        self.stages
    }

    /// A settings change: the chain is rebuilt (the canceller converges again in about a
    /// second).
    pub fn set_stages(&mut self, stages: Stages) {
        if stages != self.stages {
            self.stages = stages;
            self.apm = build(stages);
        }
    }

    /// Speaker samples per microphone sample (1 + the drift), as measured or as known.
    pub fn set_drift_ratio(&mut self, ratio: f64) {
        self.ratio = ratio;
    }

    /// A frame the speaker played (the echo canceller's reference), put on the microphone's
    /// clock.
    pub fn far_end(&mut self, frame: &[i16; AUDIO_FRAME]) {
        let Some(apm) = self.apm.as_mut().filter(|_| self.stages.echo_cancellation) else {
            return;
        };
        self.resampler.push(frame);
        self.resampler.drain_into(self.ratio, &mut self.aligned);
        let whole = self.aligned.len() / BLOCK * BLOCK;
        for block in self.aligned[..whole].chunks_exact(BLOCK) {
            // Mono in, mono out: the render side's output is not used.
            let _ = apm.process_render_i16(block, &mut self.out);
        }
        self.aligned.drain(..whole);
    }

    /// Feeds what the speaker played since the last call (measuring both devices' clocks),
    /// then processes `frame`, captured at `now`, in place.
    pub fn process(&mut self, far: &FarEnd, frame: &mut [i16; AUDIO_FRAME], now: Instant) {
        while let Ok((played, at)) = far.0.try_recv() {
            self.speaker_clock.frame(at);
            self.far_end(&played);
        }
        self.mic_clock.frame(now);
        self.ratio = drift::ratio(&self.speaker_clock, &self.mic_clock);
        self.near_end(frame);
    }

    /// Processes a captured frame in place.
    pub fn near_end(&mut self, frame: &mut [i16; AUDIO_FRAME]) {
        let Some(apm) = self.apm.as_mut() else { return };
        for block in frame.chunks_exact_mut(BLOCK) {
            // AEC3 estimates the delay itself; the hint is required but unused by it.
            let _ = apm.set_stream_delay_ms(0);
            if apm.process_capture_i16(block, &mut self.out).is_ok() {
                block.copy_from_slice(&self.out);
            }
        }
    }

    pub fn echo_stats(&self) -> EchoStats {
        self.apm
            .as_ref()
            .filter(|_| self.stages.echo_cancellation)
            .map(|apm| {
                let s = apm.statistics();
                EchoStats {
                    erle_db: s.echo_return_loss_enhancement,
                    delay_ms: s.delay_ms,
                    clock_drift_ppm: (self.ratio != 1.0).then_some((self.ratio - 1.0) * 1e6),
                }
            })
            .unwrap_or_default()
    }
}

/// The stages as sonora's configuration.
fn sonora_config(stages: Stages) -> Config {
    let s = stages;
    Config {
        high_pass_filter: s.high_pass.then(HighPassFilter::default),
        echo_canceller: s.echo_cancellation.then(|| EchoCanceller {
            // AEC3 works better on a filtered signal, but "off" means off.
            enforce_high_pass_filtering: s.high_pass,
            ..EchoCanceller::default()
        }),
        noise_suppression: s.noise_suppression.then(NoiseSuppression::default),
        gain_controller2: s.auto_gain.then(|| GainController2 {
            adaptive_digital: Some(AdaptiveDigital {
                // WebRTC's 15 dB suits a laptop's quiet microphone; a room box's line or
                // USB microphone starts near its level, and a high start amplifies the
                // canceller's residual while it converges.
                initial_gain_db: 0.0,
                ..AdaptiveDigital::default()
            }),
            ..GainController2::default()
        }),
        ..Config::default()
    }
}

fn build(stages: Stages) -> Option<AudioProcessing> {
    stages.any().then(|| {
        AudioProcessing::builder()
            .config(sonora_config(stages))
            .capture_config(StreamConfig::new(48_000, 1))
            .render_config(StreamConfig::new(48_000, 1))
            .build()
    })
}

#[cfg(test)]
#[path = "processing_tests.rs"]
mod tests;
