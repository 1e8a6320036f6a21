//! The V4L2 memory-to-memory stateful encoder (the Raspberry Pi 4's bcm2835-codec on
//! /dev/video11), in layers so each can be tested where it can run:
//!
//! - `device`: the ioctl boundary as a trait; `kernel` implements it with v4l2r on a real node.
//! - `session`: formats, controls, buffers, streaming, drain and restart, for any coded format.
//!   The VM tests run it against vicodec, the kernel's virtual FWHT encoder.
//! - `h264`: H.264 on top (controls, SPS/PPS cached and put before every IDR, forced keyframes,
//!   bitrate changes). Tested against a fake of bcm2835-codec at the ioctl boundary only,
//!   because no Pi is attached here.

pub mod device;
pub mod h264;
pub mod kernel;
pub mod session;

#[cfg(test)]
mod fake_bcm2835;
#[cfg(test)]
mod h264_tests;
#[cfg(test)]
mod vicodec_tests;

pub use device::EncoderDevice;
pub use h264::{V4l2H264Config, V4l2H264Encoder, H264};
pub use kernel::{find_encoders, KernelDevice};

/// Opens the H.264 encoder on a real node.
pub fn open_h264(
    path: &std::path::Path,
    config: V4l2H264Config,
) -> Result<V4l2H264Encoder<KernelDevice>, crate::encode::h264::EncodeError> {
    let path = path.to_owned();
    V4l2H264Encoder::new(config, Box::new(move || KernelDevice::open(&path)))
}
