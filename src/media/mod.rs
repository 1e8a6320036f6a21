//! Media of the box: video sources and H.264 encoding, room audio capture and Opus, and the
//! remote voices' jitter buffers, mixing and playout.
//!
//! Threads: every blocking source (`VideoSource`, `AudioSource`) and sink (`AudioSink`) runs
//! on its own thread; sources pace themselves in real time on an absolute schedule. The jitter
//! buffer and mixer are pure (time passed in), so the playout thread decides the 20 ms tick.

pub mod alsa;
pub mod encoded;
pub mod encoder;
pub mod frame;
pub mod h264;
pub mod jitter;
pub mod limits;
pub mod mailbox;
pub mod mixer;
pub mod openh264;
pub mod openh264_simd;
pub mod opus;
pub mod pace;
pub mod sink;
pub mod source;
pub mod testsrc;
pub mod tone;
pub mod v4l2;
pub mod v4l2m2m;
pub mod y4m;

pub use encoded::{EncodedAudio, EncodedVideo};
pub use frame::{FramePool, VideoFrame, AUDIO_FRAME};
pub use h264::{EncodeError, H264Encoder};
pub use mixer::RemoteAudio;
pub use opus::OpusEncoder;
pub use sink::AudioSink;
pub use source::{AudioInput, AudioSource, VideoInput, VideoOptions, VideoSource};
