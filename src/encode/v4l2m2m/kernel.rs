//! [`EncoderDevice`] on a real V4L2 memory-to-memory node ([`Node`]: single- or multi-planar
//! API, MMAP buffers on both queues, non-blocking DQBUF with poll for the waits).

use std::path::Path;
use std::time::Duration;

use v4l2r::ioctl::{
    self, BufferFlags, EncoderCommand, PlaneMapping, SelectionFlags, SelectionTarget, SelectionType,
};
use v4l2r::{Format, Rect};

use super::device::{Coded, DeviceError, DeviceInfo, EncoderDevice, FourCc, RawKind, RawLayout};
use crate::m2m::node::{Direction, Node};

/// An open encoder node.
pub struct KernelDevice {
    node: Node,
    output_maps: Vec<PlaneMapping>,
    capture_maps: Vec<PlaneMapping>,
    /// OUTPUT buffers we may fill.
    free: Vec<u32>,
    raw_size: usize,
}

impl KernelDevice {
    /// Opens `path` and checks that it is a stateful encoder: a memory-to-memory node whose
    /// OUTPUT queue takes raw frames and whose CAPTURE queue gives compressed ones.
    pub fn open(path: &Path) -> Result<Self, DeviceError> {
        Ok(KernelDevice {
            node: Node::open(path, Direction::Encoder)?,
            output_maps: Vec::new(),
            capture_maps: Vec::new(),
            free: Vec::new(),
            raw_size: 0,
        })
    }

    fn fail(&self, what: &str, detail: impl ToString) -> DeviceError {
        self.node.fail(what, detail)
    }
}

impl EncoderDevice for KernelDevice {
    fn info(&self) -> &DeviceInfo {
        &self.node.info
    }

    fn raw_formats(&self) -> Vec<FourCc> {
        self.node.formats(self.node.output)
    }

    fn coded_formats(&self) -> Vec<FourCc> {
        self.node.formats(self.node.capture)
    }

    fn set_formats(
        &mut self,
        coded: FourCc,
        raw: RawKind,
        width: u32,
        height: u32,
    ) -> Result<RawLayout, DeviceError> {
        let mut cap: Format = ioctl::g_fmt(&self.node.fd, self.node.capture)
            .map_err(|e| self.fail("reading the CAPTURE format", e))?;
        cap.pixelformat = coded;
        cap.width = width;
        cap.height = height;
        let cap: Format = ioctl::s_fmt(&mut self.node.fd, (self.node.capture, &cap))
            .map_err(|e| self.fail("setting the CAPTURE format", e))?;
        if cap.pixelformat != coded {
            return Err(self.fail(
                "setting the CAPTURE format",
                format!("asked for {coded}, the driver chose {}", cap.pixelformat),
            ));
        }
        let mut out: Format = ioctl::g_fmt(&self.node.fd, self.node.output)
            .map_err(|e| self.fail("reading the OUTPUT format", e))?;
        out.pixelformat = raw.fourcc();
        out.width = width;
        out.height = height;
        // Zeroes let the driver compute stride and size for the new geometry.
        for p in &mut out.plane_fmt {
            *p = Default::default();
        }
        let out: Format = ioctl::s_fmt(&mut self.node.fd, (self.node.output, &out))
            .map_err(|e| self.fail("setting the OUTPUT format", e))?;
        let what = "setting the OUTPUT format";
        if out.pixelformat != raw.fourcc() || out.width < width || out.height < height {
            return Err(self.fail(
                what,
                format!(
                    "asked for {} {width}x{height}, the driver chose {} {}x{}",
                    raw.fourcc(),
                    out.pixelformat,
                    out.width,
                    out.height
                ),
            ));
        }
        let [plane] = out.plane_fmt.as_slice() else {
            return Err(self.fail(
                what,
                format!("{} planes; one is supported", out.plane_fmt.len()),
            ));
        };
        let layout = RawLayout {
            kind: raw,
            width,
            height,
            stride: plane.bytesperline.max(width),
            rows: out.height,
            size: plane.sizeimage as usize,
        };
        if layout.required() > layout.size {
            return Err(self.fail(
                what,
                format!(
                    "buffer of {} bytes is smaller than {layout:?} needs",
                    layout.size
                ),
            ));
        }
        if (out.width, out.height) != (width, height) {
            // The driver padded (the Pi: rows to 16) or enlarged (vicodec: at least 640x360)
            // the buffer: the picture must be the top-left crop, or the stream would show the
            // padding.
            let rect = Rect::new(0, 0, width, height);
            if let Err(e) = ioctl::s_selection::<_, Rect>(
                &self.node.fd,
                SelectionType::Output,
                SelectionTarget::Crop,
                rect,
                SelectionFlags::empty(),
            ) {
                tracing::debug!(
                    "{}: VIDIOC_S_SELECTION {width}x{height}: {e}",
                    self.node.info
                );
            }
            match ioctl::g_selection::<Rect>(&self.node.fd, SelectionType::Output, SelectionTarget::Crop) {
                Ok(r) if (r.width, r.height) == (width, height) => {}
                Ok(r) => {
                    return Err(self.fail(
                        what,
                        format!(
                            "the driver encodes {}x{} (buffer {}x{}) and cannot crop to {width}x{height}",
                            r.width, r.height, out.width, out.height
                        ),
                    ))
                }
                Err(e) => tracing::warn!(
                    "{}: buffer {}x{} for a {width}x{height} picture and the crop is unreadable \
                     ({e}); the stream may include padding rows",
                    self.node.info,
                    out.width,
                    out.height
                ),
            }
        }
        self.raw_size = layout.size;
        Ok(layout)
    }

    fn set_frame_rate(&mut self, fps: u32) -> Result<(), DeviceError> {
        let mut parm = v4l2r::bindings::v4l2_streamparm {
            type_: self.node.output as u32,
            ..Default::default()
        };
        parm.parm.output = v4l2r::bindings::v4l2_outputparm {
            capability: v4l2r::bindings::V4L2_CAP_TIMEPERFRAME,
            timeperframe: v4l2r::bindings::v4l2_fract {
                numerator: 1,
                denominator: fps,
            },
            ..Default::default()
        };
        ioctl::s_parm::<_, v4l2r::bindings::v4l2_streamparm>(&self.node.fd, parm)
            .map(|_| ())
            .map_err(|e| self.fail(&format!("setting {fps} fps (VIDIOC_S_PARM)"), e))
    }

    fn set_control(&mut self, id: u32, value: i32) -> Result<(), DeviceError> {
        ioctl::s_ctrl(&self.node.fd, id, value)
            .map(|_| ())
            .map_err(|e| self.fail(&format!("setting control {id:#x} to {value}"), e))
    }

    fn start_streaming(&mut self, buffers: u32) -> Result<(), DeviceError> {
        let node = &self.node;
        self.output_maps = node.map_buffers(node.output, buffers)?;
        self.capture_maps = node.map_buffers(node.capture, buffers)?;
        self.free = (0..self.output_maps.len() as u32).collect();
        for i in 0..self.capture_maps.len() as u32 {
            node.queue_capture(i)?;
        }
        ioctl::streamon(&node.fd, node.output)
            .map_err(|e| node.fail("VIDIOC_STREAMON OUTPUT", e))?;
        ioctl::streamon(&node.fd, node.capture).map_err(|e| node.fail("VIDIOC_STREAMON CAPTURE", e))
    }

    fn queue_raw(
        &mut self,
        timestamp: u64,
        timeout: Duration,
        fill: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), DeviceError> {
        let index = self
            .node
            .free_output(&mut self.free, timeout, "queueing a frame")?;
        let map = &mut self.output_maps[index as usize];
        let len = self.raw_size.min(map.len());
        fill(&mut map[..len]);
        self.node
            .queue_output(index, len, timestamp)
            .inspect_err(|_| self.free.push(index))
    }

    fn dequeue_coded(
        &mut self,
        timeout: Duration,
        out: &mut Vec<u8>,
    ) -> Result<Option<Coded>, DeviceError> {
        let got = self
            .node
            .dequeue_capture(&self.capture_maps, timeout, &mut |data| {
                out.extend_from_slice(data);
            })?;
        Ok(got.map(|d| Coded {
            len: d.len,
            keyframe: d.flags.contains(BufferFlags::KEYFRAME),
            last: d.last,
            error: d.error,
            timestamp: d.timestamp,
        }))
    }

    fn stop(&mut self) -> Result<(), DeviceError> {
        ioctl::encoder_cmd::<_, ()>(&self.node.fd, &EncoderCommand::Stop(false))
            .map_err(|e| self.fail("VIDIOC_ENCODER_CMD STOP", e))
    }

    fn stop_streaming(&mut self) -> Result<(), DeviceError> {
        let node = &self.node;
        let off_out = ioctl::streamoff(&node.fd, node.output);
        let off_cap = ioctl::streamoff(&node.fd, node.capture);
        self.output_maps.clear();
        self.capture_maps.clear();
        self.free.clear();
        off_out.map_err(|e| node.fail("VIDIOC_STREAMOFF OUTPUT", e))?;
        off_cap.map_err(|e| node.fail("VIDIOC_STREAMOFF CAPTURE", e))?;
        node.free_buffers(node.output)?;
        node.free_buffers(node.capture)
    }
}

/// Every /dev/video* node under `dir` that is a stateful encoder able to produce `coded`,
/// in node order, and why each other node was passed over.
pub fn find_encoders(dir: &Path, coded: FourCc) -> (Vec<KernelDevice>, Vec<String>) {
    let nodes = crate::capture::v4l2::video_nodes(dir);
    let (mut found, mut passed) = (Vec::new(), Vec::new());
    for path in nodes {
        match KernelDevice::open(&path) {
            Ok(d) if d.coded_formats().contains(&coded) => found.push(d),
            Ok(d) => passed.push(format!(
                "{}: encodes {}, not {coded}",
                d.node.info,
                crate::m2m::fourcc_list(&d.coded_formats())
            )),
            Err(e) => passed.push(e.to_string()),
        }
    }
    (found, passed)
}
