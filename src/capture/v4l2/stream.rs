//! mmap streaming: a few driver-allocated buffers mapped once, queued, and waited for with
//! poll together with the device's events. The kernel fills a buffer, we convert it out of the
//! mapping and queue it straight back, so no frame memory is allocated while streaming.

use super::device::{CaptureError, Device, QUEUE};
use std::os::fd::AsFd;
use std::time::Duration;
use v4l2r::bindings;
use v4l2r::ioctl::{self, DqBufIoctlError, IoctlConvertError, PlaneMapping, V4l2Buffer};
use v4l2r::memory::MemoryType;
use v4l2r::nix::errno::Errno;
use v4l2r::nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// Buffers in flight: one being converted, the rest for the driver, so a slow frame does not
/// make it drop the next one.
const BUFFERS: u32 = 4;

/// What waiting on the device brought.
pub enum Ready {
    /// Buffer `index` holds a frame of `bytesused` bytes; give it back with [`Stream::requeue`].
    Frame { index: u32, bytesused: usize },
    /// The driver says the source changed (resolution, signal lost or found).
    SourceChange,
    /// Nothing within the timeout.
    Timeout,
}

/// A streaming capture queue with its mapped buffers.
pub struct Stream {
    maps: Vec<PlaneMapping>,
}

impl Stream {
    /// Allocates and maps the buffers, queues them all and starts streaming.
    pub fn start(dev: &Device) -> Result<Self, CaptureError> {
        let path = dev.path.as_str();
        let err = |what: &'static str| move |e: Errno| CaptureError::ioctl(path, what, e);
        let count: usize = ioctl::reqbufs(
            &dev.file,
            QUEUE,
            MemoryType::Mmap,
            BUFFERS,
            ioctl::MemoryConsistency::empty(),
        )
        .map_err(|e| err("VIDIOC_REQBUFS")(e.into()))?;
        if count == 0 {
            return Err(err("VIDIOC_REQBUFS")(Errno::ENOMEM));
        }
        let mut stream = Self {
            maps: Vec::with_capacity(count),
        };
        match stream.map_and_start(dev, count) {
            Ok(()) => Ok(stream),
            Err(e) => {
                stream.stop(dev); // free what was allocated, or the next S_FMT is refused
                Err(e)
            }
        }
    }

    fn map_and_start(&mut self, dev: &Device, count: usize) -> Result<(), CaptureError> {
        let path = dev.path.as_str();
        let err = |what: &'static str| move |e: Errno| CaptureError::ioctl(path, what, e);
        for index in 0..count {
            let info: ioctl::QueryBuffer = ioctl::querybuf(&dev.file, QUEUE, index)
                .map_err(|e| err("VIDIOC_QUERYBUF")(ioctl_errno(e)))?;
            let plane = info
                .planes
                .first()
                .ok_or_else(|| err("VIDIOC_QUERYBUF")(Errno::EINVAL))?;
            let map = ioctl::mmap(&dev.file.as_fd(), plane.mem_offset, plane.length)
                .map_err(|e| err("mmap")(e.into()))?;
            self.maps.push(map);
        }
        for index in 0..count as u32 {
            queue_buffer(dev, index)?;
        }
        ioctl::streamon(&dev.file, QUEUE).map_err(|e| err("VIDIOC_STREAMON")(e.into()))
    }

    /// Waits up to `timeout` for a filled buffer or an event.
    pub fn wait(&mut self, dev: &Device, timeout: Duration) -> Result<Ready, CaptureError> {
        let path = dev.path.as_str();
        // Events first: a source change makes the buffers after it meaningless.
        if take_source_change(dev) {
            return Ok(Ready::SourceChange);
        }
        if let Some(ready) = dequeue(dev)? {
            return Ok(ready);
        }
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(
            dev.file.as_fd(),
            PollFlags::POLLIN | PollFlags::POLLPRI,
        )];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(Errno::EINTR) => return Ok(Ready::Timeout),
            Ok(_) => {}
            Err(e) => return Err(CaptureError::ioctl(path, "poll", e)),
        }
        let revents = fds[0].revents().unwrap_or(PollFlags::empty());
        if revents.contains(PollFlags::POLLPRI) && take_source_change(dev) {
            return Ok(Ready::SourceChange);
        }
        if revents.intersects(PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL) {
            // DQBUF says why (ENODEV when unplugged); if it has a frame after all, take it.
            return match dequeue(dev)? {
                Some(ready) => Ok(ready),
                None => Err(CaptureError::ioctl(path, "poll", Errno::ENODEV)),
            };
        }
        Ok(dequeue(dev)?.unwrap_or(Ready::Timeout))
    }

    /// The bytes of a dequeued buffer.
    pub fn data(&self, index: u32, bytesused: usize) -> &[u8] {
        let map = &self.maps[index as usize];
        &map[..bytesused.min(map.len())]
    }

    /// Gives buffer `index` back to the driver.
    pub fn requeue(&self, dev: &Device, index: u32) -> Result<(), CaptureError> {
        queue_buffer(dev, index)
    }

    /// Stops streaming and frees the buffers, so the format or timings may change.
    pub fn stop(self, dev: &Device) {
        let _ = ioctl::streamoff(&dev.file, QUEUE);
        drop(self.maps); // unmapped before the buffers are freed
        let _ = ioctl::reqbufs::<()>(
            &dev.file,
            QUEUE,
            MemoryType::Mmap,
            0,
            ioctl::MemoryConsistency::empty(),
        );
    }
}

/// One filled buffer, `None` when none is ready.
fn dequeue(dev: &Device) -> Result<Option<Ready>, CaptureError> {
    match ioctl::dqbuf::<V4l2Buffer>(&dev.file, QUEUE) {
        Ok(buf) => {
            let bytesused = *buf.get_first_plane().bytesused as usize;
            if buf.has_error() {
                // A frame the driver itself marks corrupt: back to it, wait for the next.
                queue_buffer(dev, buf.index())?;
                return Ok(None);
            }
            Ok(Some(Ready::Frame {
                index: buf.index(),
                bytesused,
            }))
        }
        Err(IoctlConvertError::IoctlError(DqBufIoctlError::NotReady)) => Ok(None),
        Err(e) => Err(CaptureError::ioctl(
            &dev.path,
            "VIDIOC_DQBUF",
            ioctl_errno(e),
        )),
    }
}

fn queue_buffer(dev: &Device, index: u32) -> Result<(), CaptureError> {
    let buf = V4l2Buffer::new(QUEUE, index, MemoryType::Mmap);
    ioctl::qbuf::<_, ()>(&dev.file, buf)
        .map_err(|e| CaptureError::ioctl(&dev.path, "VIDIOC_QBUF", ioctl_errno(e)))
}

/// Drains pending events; true if one was a source change.
pub fn take_source_change(dev: &Device) -> bool {
    if !dev.events {
        return false;
    }
    let mut changed = false;
    while let Ok(ev) = ioctl::dqevent::<bindings::v4l2_event>(&dev.file) {
        changed |= ev.type_ == bindings::V4L2_EVENT_SOURCE_CHANGE;
    }
    changed
}

fn ioctl_errno<IE: Into<Errno> + std::fmt::Debug, CE: std::fmt::Debug>(
    e: IoctlConvertError<IE, CE>,
) -> Errno {
    match e {
        IoctlConvertError::IoctlError(e) => e.into(),
        IoctlConvertError::ConversionError(_) => Errno::EINVAL,
    }
}
