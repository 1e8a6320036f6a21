//! An open memory-to-memory node, through v4l2r's ioctl wrappers: single- or multi-planar API
//! (vicodec uses either, bcm2835-codec the multi-planar one), MMAP buffers, non-blocking DQBUF
//! with poll for the waits. The encoder and the decoder add what their direction needs.

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use v4l2r::ioctl::{
    self, BufferFlags, Capabilities, DqBufError, DqBufIoctlError, FormatFlags, FormatIterator,
    MemoryConsistency, PlaneMapping, QBufPlane, QBuffer, QueryBuffer, V4l2Buffer,
};
use v4l2r::memory::{MemoryType, MmapHandle};
use v4l2r::QueueType;

use super::{DeviceError, DeviceInfo, FourCc};

/// Which way a node converts, by what its queues take: an encoder's OUTPUT queue takes raw
/// frames and its CAPTURE queue gives compressed ones; a decoder's the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Encoder,
    Decoder,
}

/// One CAPTURE buffer as the driver gave it back (and the node queued it again, unless LAST).
#[derive(Debug, Clone, Copy)]
pub struct Dequeued {
    /// Bytes of payload handed to the reader.
    pub len: usize,
    pub flags: BufferFlags,
    /// V4L2_BUF_FLAG_LAST: the end of a drain or of a resolution; may be empty.
    pub last: bool,
    /// The driver flagged the buffer as corrupt.
    pub error: bool,
    /// Copied by the driver from the OUTPUT buffer it came from (µs).
    pub timestamp: u64,
}

pub struct Node {
    pub info: DeviceInfo,
    pub fd: File,
    pub output: QueueType,
    pub capture: QueueType,
}

impl Node {
    /// Opens `path` and checks that it is a memory-to-memory node converting `direction`'s way.
    pub fn open(path: &Path, direction: Direction) -> Result<Node, DeviceError> {
        let name = path.display();
        let fd = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(path)
            .map_err(|e| DeviceError::new(&name, "opening", e))?;
        let cap: ioctl::Capability = ioctl::querycap(&fd).map_err(|e| {
            DeviceError::new(
                &name,
                "VIDIOC_QUERYCAP",
                format!("{e} (not a V4L2 device?)"),
            )
        })?;
        let info = DeviceInfo {
            path: path.display().to_string(),
            driver: cap.driver.clone(),
            card: cap.card.clone(),
        };
        let caps = cap.device_caps();
        let (output, capture) = if caps.contains(Capabilities::VIDEO_M2M_MPLANE) {
            (QueueType::VideoOutputMplane, QueueType::VideoCaptureMplane)
        } else if caps.contains(Capabilities::VIDEO_M2M) {
            (QueueType::VideoOutput, QueueType::VideoCapture)
        } else {
            return Err(DeviceError::new(
                &info,
                "checking the capabilities",
                format!("not a memory-to-memory device (card {:?})", info.card),
            ));
        };
        let node = Node {
            info,
            fd,
            output,
            capture,
        };
        let compressed = |queue| {
            FormatIterator::new(&node.fd, queue)
                .map(|f| f.flags.contains(FormatFlags::COMPRESSED))
                .collect::<Vec<_>>()
        };
        let (out, cap) = (compressed(output), compressed(capture));
        let (coded_in, raw_in) = (out.contains(&true), out.contains(&false));
        let (coded_out, raw_out) = (cap.contains(&true), cap.contains(&false));
        let fits = match direction {
            Direction::Encoder => raw_in && coded_out,
            Direction::Decoder => coded_in && raw_out,
        };
        if !fits {
            let what = match direction {
                Direction::Encoder => {
                    "not an encoder (its OUTPUT queue must take raw frames and its CAPTURE queue \
                     give compressed ones; a decoder is the other way round)"
                }
                Direction::Decoder => {
                    "not a decoder (its OUTPUT queue must take compressed frames and its CAPTURE \
                     queue give raw ones; an encoder is the other way round)"
                }
            };
            return Err(DeviceError::new(&node.info, "checking the formats", what));
        }
        Ok(node)
    }

    pub fn fail(&self, what: &str, detail: impl ToString) -> DeviceError {
        DeviceError::new(&self.info, what, detail)
    }

    pub fn formats(&self, queue: QueueType) -> Vec<FourCc> {
        FormatIterator::new(&self.fd, queue)
            .map(|f| f.pixelformat)
            .collect()
    }

    /// Waits up to `timeout` for `flags` on the node (the caller looks again either way).
    pub fn wait(&self, flags: PollFlags, timeout: Duration, what: &str) -> Result<(), DeviceError> {
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.fd.as_fd(), flags)];
        poll(&mut fds, PollTimeout::from(ms)).map_err(|e| self.fail(what, e))?;
        let got = fds[0].revents().unwrap_or(PollFlags::empty());
        if got.contains(PollFlags::POLLERR) && !got.intersects(flags) {
            return Err(self.fail(what, "poll reported an error (queue not streaming?)"));
        }
        Ok(())
    }

    /// VIDIOC_REQBUFS, VIDIOC_QUERYBUF and mmap of `count` buffers (the driver may give more).
    pub fn map_buffers(
        &self,
        queue: QueueType,
        count: u32,
    ) -> Result<Vec<PlaneMapping>, DeviceError> {
        let what = format!("allocating {queue:?} buffers");
        let got: usize = ioctl::reqbufs(
            &self.fd,
            queue,
            MemoryType::Mmap,
            count,
            MemoryConsistency::empty(),
        )
        .map_err(|e| self.fail(&what, e))?;
        (0..got)
            .map(|i| {
                let q: QueryBuffer =
                    ioctl::querybuf(&self.fd, queue, i).map_err(|e| self.fail(&what, e))?;
                let plane = q
                    .planes
                    .first()
                    .ok_or_else(|| self.fail(&what, "a buffer without planes"))?;
                ioctl::mmap(&self.fd, plane.mem_offset, plane.length)
                    .map_err(|e| self.fail(&what, e))
            })
            .collect()
    }

    /// VIDIOC_REQBUFS(0): the buffers of `queue` freed (after STREAMOFF and munmap).
    pub fn free_buffers(&self, queue: QueueType) -> Result<(), DeviceError> {
        ioctl::reqbufs::<()>(
            &self.fd,
            queue,
            MemoryType::Mmap,
            0,
            MemoryConsistency::empty(),
        )
        .map_err(|e| self.fail(&format!("freeing {queue:?} buffers"), e))
    }

    /// VIDIOC_QBUF of an empty CAPTURE buffer, for the driver to fill.
    pub fn queue_capture(&self, index: u32) -> Result<(), DeviceError> {
        let mut buf = QBuffer::<MmapHandle>::new(self.capture, index);
        buf.planes = vec![QBufPlane::new(0)];
        ioctl::qbuf::<_, ()>(&self.fd, buf).map_err(|e| self.fail("queueing a CAPTURE buffer", e))
    }

    /// VIDIOC_QBUF of a filled OUTPUT buffer: `len` bytes, stamped with `timestamp` (µs).
    pub fn queue_output(&self, index: u32, len: usize, timestamp: u64) -> Result<(), DeviceError> {
        let mut buf = QBuffer::<MmapHandle>::new(self.output, index)
            .set_timestamp((timestamp / 1_000_000) as _, (timestamp % 1_000_000) as _);
        buf.planes = vec![QBufPlane::new(len)];
        ioctl::qbuf::<_, ()>(&self.fd, buf).map_err(|e| self.fail("queueing an OUTPUT buffer", e))
    }

    /// A free OUTPUT buffer: those the driver is done with are taken back into `free` first;
    /// waits up to `timeout` (poll) for one. `what` names the operation in the error.
    pub fn free_output(
        &self,
        free: &mut Vec<u32>,
        timeout: Duration,
        what: &str,
    ) -> Result<u32, DeviceError> {
        let deadline = Instant::now() + timeout;
        loop {
            loop {
                match ioctl::dqbuf::<V4l2Buffer>(&self.fd, self.output) {
                    Ok(buf) => free.push(buf.index()),
                    Err(DqBufError::IoctlError(
                        DqBufIoctlError::NotReady | DqBufIoctlError::Eos,
                    )) => break,
                    Err(e) => return Err(self.fail("dequeueing an OUTPUT buffer", e)),
                }
            }
            if let Some(i) = free.pop() {
                return Ok(i);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.fail(
                    what,
                    format!("no OUTPUT buffer came back within {timeout:?}"),
                ));
            }
            // Woken or timed out, the loop looks again (and gives up once the time is over).
            self.wait(PollFlags::POLLOUT, left, "waiting for an OUTPUT buffer")?;
        }
    }

    /// Waits up to `timeout` (poll) for a filled CAPTURE buffer, VIDIOC_DQBUF, hands its
    /// payload (in `maps`) to `read`, VIDIOC_QBUF it back unless it is the LAST. `None` when
    /// nothing came in time; after the LAST buffer, an empty LAST again.
    pub fn dequeue_capture(
        &self,
        maps: &[PlaneMapping],
        timeout: Duration,
        read: &mut dyn FnMut(&[u8]),
    ) -> Result<Option<Dequeued>, DeviceError> {
        let deadline = Instant::now() + timeout;
        loop {
            match ioctl::dqbuf::<V4l2Buffer>(&self.fd, self.capture) {
                Ok(buf) => {
                    let index = buf.index();
                    let plane = buf.get_first_plane();
                    let used = *plane.bytesused as usize;
                    let offset = plane.data_offset.map_or(0, |o| *o as usize);
                    let map = maps.get(index as usize).ok_or_else(|| {
                        self.fail(
                            "dequeueing a CAPTURE buffer",
                            format!("unknown index {index}"),
                        )
                    })?;
                    let data = map.get(offset..used.max(offset)).unwrap_or(&[]);
                    read(data);
                    let tv = buf.timestamp();
                    let got = Dequeued {
                        len: data.len(),
                        flags: buf.flags(),
                        last: buf.is_last(),
                        error: buf.has_error(),
                        timestamp: tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64,
                    };
                    if !got.last {
                        self.queue_capture(index)?;
                    }
                    return Ok(Some(got));
                }
                Err(DqBufError::IoctlError(DqBufIoctlError::Eos)) => {
                    // The LAST buffer was dequeued before: the drain is over.
                    return Ok(Some(Dequeued {
                        len: 0,
                        flags: BufferFlags::empty(),
                        last: true,
                        error: false,
                        timestamp: 0,
                    }));
                }
                Err(DqBufError::IoctlError(DqBufIoctlError::NotReady)) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    self.wait(PollFlags::POLLIN, left, "waiting for a CAPTURE buffer")?;
                }
                Err(e) => return Err(self.fail("dequeueing a CAPTURE buffer", e)),
            }
        }
    }
}
