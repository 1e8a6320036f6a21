//! The audio source trait (blocking: each call returns when the next 20 ms frame is ready) and
//! the opening of the source an `AudioInput` setting names.

pub use crate::config::AudioInput;
use crate::media::{SourceError, AUDIO_FRAME};

/// An audio source of 20 ms mono frames at 48 kHz; `read_frame` blocks until a frame is ready.
pub trait AudioSource: Send {
    fn read_frame(&mut self, out: &mut [i16; AUDIO_FRAME]) -> Result<(), SourceError>;
    /// How long before the last `read_frame` returned its frame's first sample was captured:
    /// the frame itself and what the device still buffers. Zero for a source that makes each
    /// frame at its own time (the test tone). What the audio's capture time is stamped with.
    fn first_sample_age(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
    /// One line on how the source fared (xruns, absences), for reports; None if nothing to say.
    fn summary(&self) -> Option<String> {
        None
    }
}

impl AudioInput {
    /// Opens the source; `None` for `none`.
    pub fn open(&self) -> Result<Option<Box<dyn AudioSource>>, SourceError> {
        match self {
            Self::Test => Ok(Some(Box::new(super::tone::Tone::new()))),
            Self::Alsa(dev) => Ok(Some(Box::new(super::alsa::AlsaCapture::open(dev)))),
            Self::None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_opens_to_no_source() {
        assert!(AudioInput::None.open().expect("none opens").is_none());
    }
}
