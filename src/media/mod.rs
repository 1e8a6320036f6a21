//! The media vocabulary every stage shares: raw video frames and their pool, the 20 ms audio
//! frame, what kind a remote picture is, encoded video and audio, the real-time pacer, the latest-wins hand-off from capture
//! to the encoder, and why a source failed. The stages themselves are `capture`, `encode` and
//! `audio`.

pub mod encoded;
pub mod error;
pub mod frame;
pub mod kind;
pub mod mailbox;
pub mod pace;
pub mod scale;

pub use encoded::{EncodedAudio, EncodedVideo};
pub use error::SourceError;
pub use frame::{FramePool, VideoFrame, AUDIO_FRAME, AUDIO_FRAME_DURATION, AUDIO_RATE};
pub use kind::VideoKind;
