//! The V4L2 memory-to-memory stateful decoder (the Raspberry Pi 4's bcm2835-codec on
//! /dev/video10), in layers as the encoder's (`encode::v4l2m2m`):
//!
//! - `device`: the ioctl boundary as a trait; `kernel` implements it on a real node.
//! - `session`: the coded queue, the picture format when the driver announces it (and again at
//!   a resolution change), access units in and I420 pictures out, for any coded format. The VM
//!   tests run it against vicodec's FWHT decoder, fed by vicodec's encoder.
//!
//! [`V4l2H264Decoder`] is a session decoding H.264. No Pi is attached here: H.264 through a
//! real driver has not run (the Pi 5 has no H.264 decoder at all: `auto` falls back there).

pub mod device;
pub mod kernel;
pub mod session;

#[cfg(test)]
mod vicodec_tests;

pub use device::DecoderDevice;
pub use kernel::{find_decoders, KernelDecoder};
pub use session::DecodeSession;

use super::decode::{DecodeError, VideoDecoder};
use crate::media::frame::VideoFrame;

/// The H.264 fourcc on a V4L2 queue.
pub const H264: device::FourCc = device::FourCc::from_fourcc(b"H264");

/// H.264 decoded by a V4L2 stateful decoder.
pub struct V4l2H264Decoder {
    session: DecodeSession<KernelDecoder>,
}

impl V4l2H264Decoder {
    /// Starts decoding H.264 on `device`.
    pub fn start(device: KernelDecoder) -> Result<Self, DecodeError> {
        let session = DecodeSession::start(device, H264).map_err(DecodeError::Device)?;
        Ok(V4l2H264Decoder { session })
    }

    /// Opens the node at `path` and starts decoding H.264 on it.
    pub fn open(path: &std::path::Path) -> Result<Self, DecodeError> {
        Self::start(KernelDecoder::open(path).map_err(DecodeError::Device)?)
    }
}

impl VideoDecoder for V4l2H264Decoder {
    fn decode(&mut self, annex_b: &[u8]) -> Result<Option<VideoFrame>, DecodeError> {
        self.session.decode(annex_b).map_err(DecodeError::Device)
    }
}
