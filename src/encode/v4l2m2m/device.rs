//! The ioctl boundary of a V4L2 stateful encoder: the handful of operations the box performs on
//! an encoder's device node, as one trait. [`super::kernel::KernelDevice`] implements it with
//! v4l2r's ioctls on a real node (bcm2835-codec on a Pi, vicodec in the test VM). The tests'
//! fake of the Pi's driver (`fake_bcm2835.rs`) implements it too, and stands nowhere else.

use std::time::Duration;

pub use crate::m2m::layout::{RawKind, RawLayout};
pub use crate::m2m::{DeviceError, DeviceInfo, FourCc};

/// One CAPTURE buffer's worth of coded data, appended to the caller's vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coded {
    /// Bytes appended.
    pub len: usize,
    /// The driver flagged a keyframe.
    pub keyframe: bool,
    /// The last buffer of a drain (V4L2_BUF_FLAG_LAST); may be empty.
    pub last: bool,
    /// The driver flagged the buffer as corrupt.
    pub error: bool,
    /// Copied by the driver from the OUTPUT buffer it came from.
    pub timestamp: u64,
}

/// The operations on a stateful encoder node, each one ioctl or a fixed short sequence of them.
pub trait EncoderDevice: Send {
    fn info(&self) -> &DeviceInfo;
    /// VIDIOC_ENUM_FMT on the OUTPUT (raw) queue.
    fn raw_formats(&self) -> Vec<FourCc>;
    /// VIDIOC_ENUM_FMT on the CAPTURE (coded) queue.
    fn coded_formats(&self) -> Vec<FourCc>;
    /// VIDIOC_S_FMT on CAPTURE (the coded format first, as the encoder API orders it), then on
    /// OUTPUT; VIDIOC_S_SELECTION crops to the picture when the driver padded the buffer.
    fn set_formats(
        &mut self,
        coded: FourCc,
        raw: RawKind,
        width: u32,
        height: u32,
    ) -> Result<RawLayout, DeviceError>;
    /// VIDIOC_S_PARM on OUTPUT: the frame rate rate control spreads the bitrate over.
    fn set_frame_rate(&mut self, fps: u32) -> Result<(), DeviceError>;
    /// VIDIOC_S_CTRL.
    fn set_control(&mut self, id: u32, value: i32) -> Result<(), DeviceError>;
    /// VIDIOC_REQBUFS, VIDIOC_QUERYBUF and mmap on both queues, VIDIOC_QBUF of every CAPTURE
    /// buffer, VIDIOC_STREAMON on both.
    fn start_streaming(&mut self, buffers: u32) -> Result<(), DeviceError>;
    /// VIDIOC_DQBUF of finished OUTPUT buffers, `fill` on a free one, VIDIOC_QBUF. Waits up
    /// to `timeout` (poll) for a free buffer.
    fn queue_raw(
        &mut self,
        timestamp: u64,
        timeout: Duration,
        fill: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), DeviceError>;
    /// Waits up to `timeout` (poll) for a coded CAPTURE buffer, VIDIOC_DQBUF, appends its
    /// payload to `out`, VIDIOC_QBUF it back. `None` when nothing came in time.
    fn dequeue_coded(
        &mut self,
        timeout: Duration,
        out: &mut Vec<u8>,
    ) -> Result<Option<Coded>, DeviceError>;
    /// VIDIOC_ENCODER_CMD V4L2_ENC_CMD_STOP: encode what is queued, then flag the last buffer.
    fn stop(&mut self) -> Result<(), DeviceError>;
    /// VIDIOC_STREAMOFF on both queues, munmap, VIDIOC_REQBUFS(0) on both.
    fn stop_streaming(&mut self) -> Result<(), DeviceError>;
}
