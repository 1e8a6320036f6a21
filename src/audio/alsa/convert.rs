//! Between the device's format and the box's: channel mixing (average down to mono, copy mono
//! up to every channel) and rate conversion with rubato's FFT resampler, which suits a fixed
//! ratio such as 44.1 kHz <-> 48 kHz: exact, alias-free and cheap per sample.

use std::collections::VecDeque;

use rubato::{FftFixedInOut, Resampler};

/// Averages interleaved frames of `channels` samples into mono floats, appended to `out`.
pub fn downmix(interleaved: &[i16], channels: usize, out: &mut Vec<f32>) {
    let scale = 1.0 / channels as f32;
    out.extend(
        interleaved
            .chunks_exact(channels)
            .map(|f| f.iter().map(|&s| f32::from(s)).sum::<f32>() * scale),
    );
}

/// Copies each mono sample to every one of `channels`, appended to `out` (interleaved).
pub fn upmix(mono: &[f32], channels: usize, out: &mut Vec<i16>) {
    for &s in mono {
        let v = to_i16(s);
        out.extend(std::iter::repeat_n(v, channels));
    }
}

/// Rounds and clamps a float sample to S16.
pub fn to_i16(s: f32) -> i16 {
    s.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
}

/// Why a rate converter could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot convert {from} Hz to {to} Hz: {detail}")]
pub struct RateError {
    pub from: u32,
    pub to: u32,
    pub detail: String,
}

/// A mono stream converter: push samples at one rate, pop them at another. Input is taken in
/// the resampler's fixed chunks (about 20 ms); output waits in a queue until popped. After
/// warm-up nothing allocates (the buffers keep their capacity).
pub struct RateConverter {
    resampler: FftFixedInOut<f32>,
    pending: Vec<f32>,
    ready: VecDeque<f32>,
    chunk_out: Vec<Vec<f32>>,
}

impl RateConverter {
    pub fn new(from: u32, to: u32) -> Result<Self, RateError> {
        // 20 ms chunks: the box's frame length, so one device read feeds one frame.
        let chunk = from as usize / 50;
        let resampler = FftFixedInOut::<f32>::new(from as usize, to as usize, chunk.max(1), 1)
            .map_err(|e| RateError {
                from,
                to,
                detail: e.to_string(),
            })?;
        let chunk_out = resampler.output_buffer_allocate(true);
        let (cap_in, cap_out) = (resampler.input_frames_max(), resampler.output_frames_max());
        Ok(Self {
            resampler,
            pending: Vec::with_capacity(cap_in * 2),
            ready: VecDeque::with_capacity(cap_out * 3),
            chunk_out,
        })
    }

    /// Samples the converter takes at once (a good device read size).
    pub fn input_chunk(&self) -> usize {
        self.resampler.input_frames_next()
    }

    /// Queues input samples (the `pending` buffer) and converts every full chunk.
    pub fn pending_mut(&mut self) -> &mut Vec<f32> {
        &mut self.pending
    }

    /// Converts every full chunk waiting in the input.
    pub fn convert(&mut self) {
        loop {
            let need = self.resampler.input_frames_next();
            if self.pending.len() < need {
                return;
            }
            let input = [&self.pending[..need]];
            match self
                .resampler
                .process_into_buffer(&input[..], &mut self.chunk_out[..], None)
            {
                Ok((_, produced)) => self.ready.extend(&self.chunk_out[0][..produced]),
                // Cannot happen with buffers sized by the resampler itself; drop the chunk.
                Err(e) => tracing::error!("resampler: {e}"),
            }
            self.pending.drain(..need);
        }
    }

    /// Converted samples waiting to be popped.
    pub fn available(&self) -> usize {
        self.ready.len()
    }

    /// Moves `out.len()` converted samples into `out`; false (and nothing moved) if fewer wait.
    pub fn pop(&mut self, out: &mut [f32]) -> bool {
        if self.ready.len() < out.len() {
            return false;
        }
        let n = out.len();
        for (o, s) in out.iter_mut().zip(self.ready.drain(..n)) {
            *o = s;
        }
        true
    }

    /// Moves every converted sample into `out` (appended).
    pub fn pop_all(&mut self, out: &mut Vec<f32>) {
        out.extend(self.ready.drain(..));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Power of `freq` in `samples` at `rate` (Goertzel), normalised by the sample count.
    pub fn goertzel(samples: &[f32], rate: f32, freq: f32) -> f32 {
        let w = std::f32::consts::TAU * freq / rate;
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0f32, 0.0f32);
        for &x in samples {
            let s0 = x + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        (s1 * s1 + s2 * s2 - coeff * s1 * s2).sqrt() / samples.len() as f32
    }

    fn sine(rate: u32, freq: f32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| 8000.0 * (std::f32::consts::TAU * freq * i as f32 / rate as f32).sin())
            .collect()
    }

    #[test]
    fn mixes_channels() {
        let mut mono = Vec::new();
        downmix(&[100, 300, -50, 50, 7, 9], 2, &mut mono);
        assert_eq!(mono, [200.0, 0.0, 8.0]);
        let mut stereo = Vec::new();
        upmix(&[1.4, -2.6, 40000.0], 2, &mut stereo);
        assert_eq!(stereo, [1, 1, -3, -3, i16::MAX, i16::MAX]);
    }

    /// A 1 kHz tone recorded at 44.1 kHz is still 1 kHz at 48 kHz, with the right length.
    #[test]
    fn resamples_44k1_to_48k_keeping_the_pitch() {
        let mut conv = RateConverter::new(44_100, 48_000).expect("converter");
        assert_eq!(conv.input_chunk(), 882);
        let input = sine(44_100, 1000.0, 44_100);
        let mut out = Vec::new();
        for chunk in input.chunks(1000) {
            conv.pending_mut().extend_from_slice(chunk);
            conv.convert();
            conv.pop_all(&mut out);
        }
        // One second in, one second out less what is still in the resampler (< 2 chunks).
        assert!(
            (48_000 - 2 * 960..=48_000).contains(&out.len()),
            "{}",
            out.len()
        );
        let tail = &out[4800..43_200];
        let at = |f| goertzel(tail, 48_000.0, f);
        assert!(at(1000.0) > 3000.0, "1 kHz power {}", at(1000.0));
        assert!(at(1000.0) > 50.0 * at(918.75), "pitch moved");
        let mut frame = [0.0; 960];
        assert!(!conv.pop(&mut frame) || conv.available() < 48_000);
    }

    #[test]
    fn converts_48k_back_to_44k1() {
        let mut conv = RateConverter::new(48_000, 44_100).expect("converter");
        conv.pending_mut().extend(sine(48_000, 440.0, 48_000));
        conv.convert();
        let mut out = Vec::new();
        conv.pop_all(&mut out);
        assert!(out.len() > 40_000, "{}", out.len());
        let tail = &out[4410..];
        assert!(goertzel(tail, 44_100.0, 440.0) > 3000.0);
    }
}
