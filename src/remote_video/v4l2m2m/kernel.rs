//! [`DecoderDevice`] on a real V4L2 memory-to-memory node ([`Node`]: single- or multi-planar
//! API, MMAP buffers, non-blocking DQBUF and DQEVENT with poll for the waits).

use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::PollFlags;
use v4l2r::ioctl::{
    self, DqEventError, Event, EventType, PlaneMapping, SelectionTarget, SelectionType,
    SubscribeEventFlags,
};
use v4l2r::{Format, Rect};

use super::device::{DecoderDevice, DeviceError, DeviceInfo, FourCc, Picture, RawKind, RawLayout};
use crate::m2m::node::{Direction, Node};

/// An open decoder node.
pub struct KernelDecoder {
    node: Node,
    output_maps: Vec<PlaneMapping>,
    capture_maps: Vec<PlaneMapping>,
    /// OUTPUT buffers we may fill.
    free: Vec<u32>,
    capture_streaming: bool,
}

impl KernelDecoder {
    /// Opens `path` and checks that it is a stateful decoder: a memory-to-memory node whose
    /// OUTPUT queue takes compressed frames and whose CAPTURE queue gives raw ones.
    pub fn open(path: &Path) -> Result<Self, DeviceError> {
        Ok(KernelDecoder {
            node: Node::open(path, Direction::Decoder)?,
            output_maps: Vec::new(),
            capture_maps: Vec::new(),
            free: Vec::new(),
            capture_streaming: false,
        })
    }

    fn fail(&self, what: &str, detail: impl ToString) -> DeviceError {
        self.node.fail(what, detail)
    }
}

impl DecoderDevice for KernelDecoder {
    fn info(&self) -> &DeviceInfo {
        &self.node.info
    }

    fn coded_formats(&self) -> Vec<FourCc> {
        self.node.formats(self.node.output)
    }

    fn start_output(
        &mut self,
        coded: FourCc,
        buffer_size: u32,
        buffers: u32,
    ) -> Result<(), DeviceError> {
        let node = &mut self.node;
        let mut fmt: Format = ioctl::g_fmt(&node.fd, node.output)
            .map_err(|e| node.fail("reading the OUTPUT format", e))?;
        fmt.pixelformat = coded;
        if let Some(p) = fmt.plane_fmt.first_mut() {
            p.sizeimage = buffer_size;
            p.bytesperline = 0;
        }
        let fmt: Format = ioctl::s_fmt(&mut node.fd, (node.output, &fmt))
            .map_err(|e| node.fail("setting the OUTPUT format", e))?;
        if fmt.pixelformat != coded {
            return Err(node.fail(
                "setting the OUTPUT format",
                format!("asked for {coded}, the driver chose {}", fmt.pixelformat),
            ));
        }
        ioctl::subscribe_event(
            &node.fd,
            EventType::SourceChange(0),
            SubscribeEventFlags::empty(),
        )
        .map_err(|e| node.fail("subscribing to source changes", e))?;
        self.output_maps = self.node.map_buffers(self.node.output, buffers)?;
        self.free = (0..self.output_maps.len() as u32).collect();
        ioctl::streamon(&self.node.fd, self.node.output)
            .map_err(|e| self.fail("VIDIOC_STREAMON OUTPUT", e))
    }

    fn queue_coded(
        &mut self,
        data: &[u8],
        timestamp: u64,
        timeout: Duration,
    ) -> Result<(), DeviceError> {
        let index = self
            .node
            .free_output(&mut self.free, timeout, "queueing coded data")?;
        let map = &mut self.output_maps[index as usize];
        if data.len() > map.len() {
            let room = map.len();
            self.free.push(index);
            return Err(self.fail(
                "queueing coded data",
                format!("{} bytes do not fit an OUTPUT buffer of {room}", data.len()),
            ));
        }
        map[..data.len()].copy_from_slice(data);
        self.node
            .queue_output(index, data.len(), timestamp)
            .inspect_err(|_| self.free.push(index))
    }

    fn source_changed(&mut self, timeout: Duration) -> Result<bool, DeviceError> {
        let deadline = Instant::now() + timeout;
        loop {
            match ioctl::dqevent::<Event>(&self.node.fd) {
                Ok(Event::SrcChangeEvent(_)) => return Ok(true),
                Ok(Event::Eos) => continue,
                Err(DqEventError::NotReady) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(false);
                    }
                    self.node
                        .wait(PollFlags::POLLPRI, left, "waiting for a source change")?;
                }
                Err(e) => return Err(self.fail("VIDIOC_DQEVENT", e)),
            }
        }
    }

    fn start_capture(&mut self, buffers: u32) -> Result<RawLayout, DeviceError> {
        let what = "setting the CAPTURE format";
        let offered = self.node.formats(self.node.capture);
        let kind = [RawKind::Yu12, RawKind::Nv12]
            .into_iter()
            .find(|k| offered.contains(&k.fourcc()))
            .ok_or_else(|| {
                self.fail(
                    what,
                    format!(
                        "the CAPTURE queue offers neither YU12 nor NV12 (it offers {})",
                        crate::m2m::fourcc_list(&offered)
                    ),
                )
            })?;
        let node = &mut self.node;
        let mut fmt: Format = ioctl::g_fmt(&node.fd, node.capture)
            .map_err(|e| node.fail("reading the CAPTURE format", e))?;
        if fmt.pixelformat != kind.fourcc() {
            fmt.pixelformat = kind.fourcc();
            for p in &mut fmt.plane_fmt {
                *p = Default::default();
            }
            fmt =
                ioctl::s_fmt(&mut node.fd, (node.capture, &fmt)).map_err(|e| node.fail(what, e))?;
        }
        let [plane] = fmt.plane_fmt.as_slice() else {
            return Err(node.fail(
                what,
                format!("{} planes; one is supported", fmt.plane_fmt.len()),
            ));
        };
        // The visible picture; the buffer may be padded (macroblocks, the Pi's 16 rows). The
        // selection API names the single-planar type; drivers map it for multi-planar queues.
        let visible =
            ioctl::g_selection::<Rect>(&node.fd, SelectionType::Capture, SelectionTarget::Compose)
                .ok()
                .filter(|r| {
                    r.width > 0 && r.height > 0 && r.width <= fmt.width && r.height <= fmt.height
                });
        let (width, height) = visible.map_or((fmt.width, fmt.height), |r| (r.width, r.height));
        let layout = RawLayout {
            kind,
            width,
            height,
            stride: plane.bytesperline.max(fmt.width),
            rows: fmt.height,
            size: plane.sizeimage as usize,
        };
        if layout.required() > layout.size {
            return Err(node.fail(
                what,
                format!(
                    "buffer of {} bytes is smaller than {layout:?} needs",
                    layout.size
                ),
            ));
        }
        self.capture_maps = self.node.map_buffers(self.node.capture, buffers)?;
        for i in 0..self.capture_maps.len() as u32 {
            self.node.queue_capture(i)?;
        }
        ioctl::streamon(&self.node.fd, self.node.capture)
            .map_err(|e| self.fail("VIDIOC_STREAMON CAPTURE", e))?;
        self.capture_streaming = true;
        Ok(layout)
    }

    fn dequeue_picture(
        &mut self,
        timeout: Duration,
        read: &mut dyn FnMut(&[u8]),
    ) -> Result<Option<Picture>, DeviceError> {
        let got = self
            .node
            .dequeue_capture(&self.capture_maps, timeout, read)?;
        Ok(got.map(|d| Picture {
            len: d.len,
            last: d.last,
            error: d.error,
            timestamp: d.timestamp,
        }))
    }

    fn stop_capture(&mut self) -> Result<(), DeviceError> {
        if !std::mem::take(&mut self.capture_streaming) {
            return Ok(());
        }
        let node = &self.node;
        let off = ioctl::streamoff(&node.fd, node.capture);
        self.capture_maps.clear();
        off.map_err(|e| node.fail("VIDIOC_STREAMOFF CAPTURE", e))?;
        node.free_buffers(node.capture)
    }

    fn stop_streaming(&mut self) -> Result<(), DeviceError> {
        let capture = self.stop_capture();
        let node = &self.node;
        let off = ioctl::streamoff(&node.fd, node.output);
        self.output_maps.clear();
        self.free.clear();
        off.map_err(|e| node.fail("VIDIOC_STREAMOFF OUTPUT", e))?;
        node.free_buffers(node.output)?;
        capture
    }
}

/// Every /dev/video* node under `dir` that is a stateful decoder of `coded`, in node order,
/// and why each other node was passed over.
pub fn find_decoders(dir: &Path, coded: FourCc) -> (Vec<KernelDecoder>, Vec<String>) {
    let (mut found, mut passed) = (Vec::new(), Vec::new());
    for path in crate::capture::v4l2::video_nodes(dir) {
        match KernelDecoder::open(&path) {
            Ok(d) if d.coded_formats().contains(&coded) => found.push(d),
            Ok(d) => passed.push(format!(
                "{}: decodes {}, not {coded}",
                d.node.info,
                crate::m2m::fourcc_list(&d.coded_formats())
            )),
            Err(e) => passed.push(e.to_string()),
        }
    }
    (found, passed)
}
