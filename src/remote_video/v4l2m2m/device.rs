//! The ioctl boundary of a V4L2 stateful decoder: the operations the box performs on a
//! decoder's node, as one trait. [`super::kernel::KernelDecoder`] implements it on a real node
//! (bcm2835-codec's /dev/video10 on a Pi, vicodec's decoder in the test VM).

use std::time::Duration;

pub use crate::m2m::layout::{RawKind, RawLayout};
pub use crate::m2m::{DeviceError, DeviceInfo, FourCc};

/// One decoded CAPTURE buffer, as the driver flagged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Picture {
    /// Bytes the driver filled (0 for the empty LAST buffer of a drain or a resolution change).
    pub len: usize,
    /// The last buffer before a resolution change or after a drain (V4L2_BUF_FLAG_LAST).
    pub last: bool,
    /// The driver flagged the buffer as corrupt (a broken reference, a bad slice).
    pub error: bool,
    /// Copied by the driver from the OUTPUT buffer it was decoded from.
    pub timestamp: u64,
}

/// The operations on a stateful decoder node, each one ioctl or a fixed short sequence of them
/// (the order is the kernel's decoder interface, Documentation/userspace-api/media/v4l/
/// dev-decoder.rst).
pub trait DecoderDevice: Send {
    fn info(&self) -> &DeviceInfo;
    /// VIDIOC_ENUM_FMT on the OUTPUT (coded) queue.
    fn coded_formats(&self) -> Vec<FourCc>;
    /// VIDIOC_S_FMT on OUTPUT (`coded`, buffers of `buffer_size` bytes), VIDIOC_SUBSCRIBE_EVENT
    /// for source changes, VIDIOC_REQBUFS and mmap of `buffers` OUTPUT buffers,
    /// VIDIOC_STREAMON OUTPUT.
    fn start_output(
        &mut self,
        coded: FourCc,
        buffer_size: u32,
        buffers: u32,
    ) -> Result<(), DeviceError>;
    /// VIDIOC_DQBUF of finished OUTPUT buffers, `data` copied into a free one, VIDIOC_QBUF.
    /// Waits up to `timeout` (poll) for a free buffer.
    fn queue_coded(
        &mut self,
        data: &[u8],
        timestamp: u64,
        timeout: Duration,
    ) -> Result<(), DeviceError>;
    /// VIDIOC_DQEVENT, waiting up to `timeout` (poll POLLPRI): whether the driver announced a
    /// new stream format (the first headers, or a resolution change).
    fn source_changed(&mut self, timeout: Duration) -> Result<bool, DeviceError>;
    /// After a source change: VIDIOC_G_FMT on CAPTURE, VIDIOC_S_FMT to a raw format the box
    /// reads (YU12, else NV12), VIDIOC_G_SELECTION for the visible picture, VIDIOC_REQBUFS and
    /// mmap of at least `buffers` CAPTURE buffers, VIDIOC_QBUF of each, VIDIOC_STREAMON.
    fn start_capture(&mut self, buffers: u32) -> Result<RawLayout, DeviceError>;
    /// Waits up to `timeout` (poll) for a decoded CAPTURE buffer, VIDIOC_DQBUF, hands its bytes
    /// to `read`, VIDIOC_QBUF it back. `None` when nothing came in time.
    fn dequeue_picture(
        &mut self,
        timeout: Duration,
        read: &mut dyn FnMut(&[u8]),
    ) -> Result<Option<Picture>, DeviceError>;
    /// VIDIOC_STREAMOFF CAPTURE, munmap, VIDIOC_REQBUFS(0) (for a resolution change).
    fn stop_capture(&mut self) -> Result<(), DeviceError>;
    /// VIDIOC_STREAMOFF on both queues and the buffers freed.
    fn stop_streaming(&mut self) -> Result<(), DeviceError>;
}
