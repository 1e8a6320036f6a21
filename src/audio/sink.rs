//! Where the mixed remote voices go: `alsa:DEVICE` (the room speaker), `wav:PATH` (a WAV file
//! that stays valid at every moment, even if the process is killed), or `none`.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

pub use crate::config::AudioOutput;
use crate::media::{AUDIO_FRAME, AUDIO_RATE};

/// A consumer of 20 ms mono frames at 48 kHz. ALSA blocks and so paces its caller; the others
/// return at once and the caller paces itself.
pub trait AudioSink: Send {
    fn write(&mut self, frame: &[i16; AUDIO_FRAME]) -> Result<(), SinkError>;
}

/// Why an audio sink failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    #[error("WAV file {path}: {source}")]
    Wav {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("ALSA playback device {device:?}: {reason}")]
    Alsa { device: String, reason: String },
}

impl AudioOutput {
    /// Opens the sink.
    pub fn open(&self) -> Result<Box<dyn AudioSink>, SinkError> {
        match self {
            Self::Alsa(dev) => Ok(Box::new(super::alsa::AlsaPlayback::open(dev))),
            Self::Wav(path) => Ok(Box::new(WavFile::create(path)?)),
            Self::None => Ok(Box::new(NullSink)),
        }
    }
}

/// Discards audio.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl AudioSink for NullSink {
    fn write(&mut self, _frame: &[i16; AUDIO_FRAME]) -> Result<(), SinkError> {
        Ok(())
    }
}

const HEADER_LEN: usize = 44;
const FRAME_BYTES: usize = AUDIO_FRAME * 2;

/// A 48 kHz mono 16-bit WAV file. Each write appends the samples with one `write` and then
/// rewrites the header's size fields with one positional write, so whatever moment the process
/// dies at, the file on disk is a valid WAV of everything written before. No user-space
/// buffering: data is in the kernel once `write` returns. Past 4 GiB (about 12 hours) the
/// size fields stay at their maximum, which readers treat as "until the end of the file".
pub struct WavFile {
    path: String,
    file: File,
    data_bytes: u64,
    scratch: Box<[u8; FRAME_BYTES]>,
}

impl WavFile {
    /// Creates (or truncates) the file and writes a header for an empty stream.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self, SinkError> {
        let path_buf = path.into();
        let path = path_buf.display().to_string();
        let wav_err = |source| SinkError::Wav {
            path: path.clone(),
            source,
        };
        let mut file = File::create(&path_buf).map_err(wav_err)?;
        file.write_all(&header(0)).map_err(wav_err)?;
        Ok(Self {
            path,
            file,
            data_bytes: 0,
            scratch: Box::new([0; FRAME_BYTES]),
        })
    }
}

impl AudioSink for WavFile {
    fn write(&mut self, frame: &[i16; AUDIO_FRAME]) -> Result<(), SinkError> {
        for (dst, s) in self.scratch.chunks_exact_mut(2).zip(frame) {
            dst.copy_from_slice(&s.to_le_bytes());
        }
        let wav_err = |source| SinkError::Wav {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&self.scratch[..]).map_err(wav_err)?;
        self.data_bytes += FRAME_BYTES as u64;
        // Bytes 4..44 hold both size fields; one pwrite keeps them consistent.
        let h = header(self.data_bytes);
        self.file.write_all_at(&h[4..], 4).map_err(wav_err)?;
        Ok(())
    }
}

/// The canonical 44-byte PCM WAV header for `data_bytes` of samples.
fn header(data_bytes: u64) -> [u8; HEADER_LEN] {
    let data = u32::try_from(data_bytes).unwrap_or(u32::MAX - 36 - 1) & !1;
    let riff = data.saturating_add(36);
    let byte_rate = AUDIO_RATE * 2;
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&riff.to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&1u16.to_le_bytes()); // mono
    h[24..28].copy_from_slice(&AUDIO_RATE.to_le_bytes());
    h[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    h[32..34].copy_from_slice(&2u16.to_le_bytes()); // block align
    h[34..36].copy_from_slice(&16u16.to_le_bytes()); // bits per sample
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_outputs() {
        assert_eq!("none".parse(), Ok(AudioOutput::None));
        assert_eq!(
            "alsa:default".parse(),
            Ok(AudioOutput::Alsa("default".into()))
        );
        assert_eq!(
            "alsa:plughw:1,0".parse(),
            Ok(AudioOutput::Alsa("plughw:1,0".into()))
        );
        assert_eq!(
            "wav:/tmp/x.wav".parse(),
            Ok(AudioOutput::Wav("/tmp/x.wav".into()))
        );
        for bad in ["", "wav:", "speaker", "none:x", "pulse:default"] {
            let err = bad.parse::<AudioOutput>().expect_err(bad);
            assert!(
                err.to_string().contains("alsa:DEVICE, wav:PATH or none"),
                "{err}"
            );
        }
        assert_eq!(AudioOutput::Wav("a.wav".into()).to_string(), "wav:a.wav");
    }

    #[test]
    fn wav_is_valid_mid_stream() {
        let path = std::env::temp_dir().join(format!("roombox-sink-{}.wav", std::process::id()));
        let mut sink = AudioOutput::Wav(path.clone()).open().expect("creates");
        let mut frame = [0i16; AUDIO_FRAME];
        for (i, s) in frame.iter_mut().enumerate() {
            *s = i as i16 - 480;
        }
        for n in 1..=3usize {
            sink.write(&frame).expect("write");
            // Read while the writer is still open: the file must be complete as it stands.
            let reader = hound::WavReader::open(&path).expect("valid WAV mid-stream");
            let spec = reader.spec();
            assert_eq!(
                (spec.sample_rate, spec.channels, spec.bits_per_sample),
                (48_000, 1, 16)
            );
            assert_eq!(reader.duration() as usize, n * AUDIO_FRAME);
            let samples: Vec<i16> = reader
                .into_samples::<i16>()
                .map(|s| s.expect("sample"))
                .collect();
            assert_eq!(&samples[(n - 1) * AUDIO_FRAME..], &frame[..]);
        }
        drop(sink);
        std::fs::remove_file(path).ok();
    }

    #[test]
    fn wav_create_error_names_the_path() {
        let err = WavFile::create("/nonexistent-dir/x.wav")
            .err()
            .expect("must fail");
        assert!(err.to_string().contains("/nonexistent-dir/x.wav"), "{err}");
    }

    #[test]
    fn null_sink_accepts_frames() {
        let mut sink = AudioOutput::None.open().expect("opens");
        sink.write(&[0; AUDIO_FRAME]).expect("write");
    }
}
