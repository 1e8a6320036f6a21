//! Media of the box: video sources and H.264 encoding, room audio capture and Opus, and the
//! remote voices' jitter buffers, mixing and playout.
//!
//! Threads: every blocking source (`VideoSource`, `AudioSource`) and sink (`AudioSink`) runs
//! on its own thread; sources pace themselves in real time on an absolute schedule. The jitter
//! buffer and mixer are pure (time passed in), so the driver decides the 20 ms tick.

// Until the pipeline in main uses every part.
#![allow(dead_code, unused_imports)]

pub mod alsa;
pub mod encoded;
pub mod encoder;
pub mod frame;
pub mod h264;
pub mod jitter;
pub mod limits;
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
pub use frame::{FramePool, VideoFrame, AUDIO_FRAME, AUDIO_RATE};
pub use h264::{EncodeError, EncodedFrame, H264Encoder};
pub use jitter::{JitterBuffer, Playout};
pub use mixer::RemoteAudio;
pub use openh264::{OpenH264Config, OpenH264Encoder};
pub use opus::{OpusDecoder, OpusEncoder, OpusError};
pub use sink::{AudioOutput, AudioSink, SinkError};
pub use source::{
    AudioInput, AudioSource, SourceError, SpecError, VideoInput, VideoOptions, VideoSource,
};
