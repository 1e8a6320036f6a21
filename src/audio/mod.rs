//! Room audio: capture (ALSA, the test tone) and Opus encoding out; for the remote voices in,
//! Opus decoding, one jitter buffer a voice, the mixer and the sinks (ALSA, WAV).
//!
//! Threads: every blocking source (`AudioSource`) and sink (`AudioSink`) runs on its own
//! thread. The jitter buffer and mixer are pure (time passed in), so the playout thread decides
//! the 20 ms tick.

pub mod alsa;
pub mod drift;
pub mod echo_check;
pub mod jitter;
pub mod levels;
pub mod mixer;
pub mod opus;
pub mod processing;
pub mod sink;
pub mod source;
pub mod stamp;
pub mod tone;

pub use mixer::RemoteAudio;
pub use opus::OpusEncoder;
pub use sink::{AudioOutput, AudioSink};
pub use source::{AudioInput, AudioSource};
