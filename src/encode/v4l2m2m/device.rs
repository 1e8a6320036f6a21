//! The ioctl boundary of a V4L2 stateful encoder: the handful of operations the box performs on
//! an encoder's device node, as one trait. [`super::kernel::KernelDevice`] implements it with
//! v4l2r's ioctls on a real node (bcm2835-codec on a Pi, vicodec in the test VM). The tests'
//! fake of the Pi's driver (`fake_bcm2835.rs`) implements it too, and stands nowhere else.

use std::time::Duration;

/// A V4L2 pixel format code such as `H264`, `FWHT`, `YU12`.
pub type FourCc = v4l2r::PixelFormat;

/// Which node this is, for logs and errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The device node, e.g. "/dev/video11".
    pub path: String,
    /// The kernel driver, e.g. "bcm2835-codec" or "vicodec".
    pub driver: String,
    pub card: String,
}

impl std::fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.path, self.driver)
    }
}

/// The raw (OUTPUT queue) formats the box can fill from its I420 frames without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawKind {
    /// Planar 4:2:0, U before V: the box's own layout, copied row by row.
    Yu12,
    /// Y plane, then interleaved UV.
    Nv12,
}

impl RawKind {
    pub fn fourcc(self) -> FourCc {
        match self {
            RawKind::Yu12 => FourCc::from_fourcc(b"YU12"),
            RawKind::Nv12 => FourCc::from_fourcc(b"NV12"),
        }
    }
}

/// How one raw frame lies in an OUTPUT buffer, as the driver set the format: drivers round the
/// stride and the allocated rows up (the Pi's to 32 bytes and 16 rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawLayout {
    pub kind: RawKind,
    /// The picture (the crop rectangle when the driver padded the buffer).
    pub width: u32,
    pub height: u32,
    /// Bytes per luma row.
    pub stride: u32,
    /// Luma rows allocated (>= height); chroma starts after them.
    pub rows: u32,
    /// Bytes of one buffer as the driver wants it filled (sizeimage).
    pub size: usize,
}

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

/// What failed on which device.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{device}: {what}: {detail}")]
pub struct DeviceError {
    /// e.g. "/dev/video11 (bcm2835-codec)".
    pub device: String,
    /// The operation, e.g. "setting the CAPTURE format".
    pub what: String,
    pub detail: String,
}

impl DeviceError {
    pub fn new(device: &impl std::fmt::Display, what: &str, detail: impl ToString) -> Self {
        DeviceError {
            device: device.to_string(),
            what: what.into(),
            detail: detail.to_string(),
        }
    }
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
