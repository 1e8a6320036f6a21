//! One V4L2 capture node: opened non-blocking, checked to be a streaming capture device, its
//! HDMI input (or input 0) selected, and subscribed to source-change events for that input.

use super::signal::NoPicture;
use super::timings::DvTimings;
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use v4l2r::bindings;
use v4l2r::ioctl::{self, Capabilities, SelectionError};
use v4l2r::nix::errno::Errno;
use v4l2r::QueueType;

/// Why capture cannot run right now.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// A state the slate shows while the source retries (no signal, device missing, ...).
    #[error("{0}")]
    NoPicture(NoPicture),
    /// The kernel refused something for another reason.
    #[error("{path}: {what}: {errno}")]
    Ioctl {
        path: String,
        what: &'static str,
        errno: Errno,
    },
    /// The node cannot be used as the box's video input, whatever is plugged in.
    #[error("{path}: {reason}")]
    Unsupported { path: String, reason: String },
}

impl CaptureError {
    /// `errno` from `what` on `path`: a slate reason when it is one, else an error.
    pub fn ioctl(path: &str, what: &'static str, errno: Errno) -> Self {
        match NoPicture::from_errno(errno) {
            Some(reason) => Self::NoPicture(reason),
            None => Self::Ioctl {
                path: path.to_owned(),
                what,
                errno,
            },
        }
    }
}

/// An input of a capture node (`VIDIOC_ENUMINPUT`).
#[derive(Debug, Clone)]
pub struct Input {
    pub index: u32,
    pub name: String,
    /// An HDMI/DVI receiver: it has DV timings to query and apply.
    pub dv_timings: bool,
    /// `V4L2_INPUT_TYPE_TUNER` (TV) rather than a camera or line input.
    pub tuner: bool,
    /// `V4L2_IN_ST_*` flags (valid for the current input).
    pub status: u32,
}

impl From<bindings::v4l2_input> for Input {
    fn from(i: bindings::v4l2_input) -> Self {
        Self {
            index: i.index,
            name: c_string(&i.name),
            dv_timings: i.capabilities & bindings::V4L2_IN_CAP_DV_TIMINGS != 0,
            tuner: i.type_ == bindings::V4L2_INPUT_TYPE_TUNER,
            status: i.status,
        }
    }
}

/// An open capture node with its input selected.
pub struct Device {
    pub path: String,
    pub file: File,
    pub input: Input,
    /// Whether the driver takes source-change subscriptions (TC358743 and vivid do, most UVC
    /// drivers do not: those are only polled).
    pub events: bool,
}

pub const QUEUE: QueueType = QueueType::VideoCapture;

impl Device {
    /// Opens `path`, checks it captures video by streaming, selects the HDMI input (the first
    /// with DV timings, else input 0) and subscribes to its source-change events.
    pub fn open(path: &str) -> Result<Self, CaptureError> {
        let file = open_node(path)?;
        let cap: ioctl::Capability = ioctl::querycap(&file)
            .map_err(|e| CaptureError::ioctl(path, "VIDIOC_QUERYCAP", e.into()))?;
        let caps = cap.device_caps();
        let unsupported = |reason: &str| CaptureError::Unsupported {
            path: path.to_owned(),
            reason: format!("{reason} ({} driver, {:?})", cap.driver, cap.card),
        };
        if !caps.contains(Capabilities::VIDEO_CAPTURE) {
            return Err(if caps.contains(Capabilities::VIDEO_CAPTURE_MPLANE) {
                unsupported("multi-planar capture is not supported")
            } else {
                unsupported("not a video capture device")
            });
        }
        if !caps.contains(Capabilities::STREAMING) {
            return Err(unsupported("the driver cannot stream (read() only)"));
        }
        let inputs = list_inputs(&file);
        let input = inputs
            .iter()
            .find(|i| i.dv_timings)
            .or(inputs.first())
            .cloned()
            .unwrap_or(Input {
                index: 0,
                name: String::new(),
                dv_timings: false,
                tuner: false,
                status: 0,
            });
        if !inputs.is_empty() {
            match ioctl::s_input(&file, input.index as usize) {
                Ok(_) => {}
                Err(SelectionError::IoctlError(e)) => {
                    return Err(CaptureError::ioctl(path, "VIDIOC_S_INPUT", e))
                }
                Err(e) => return Err(CaptureError::ioctl(path, "VIDIOC_S_INPUT", e.into())),
            }
        }
        let events = ioctl::subscribe_event(
            &file,
            ioctl::EventType::SourceChange(input.index),
            ioctl::SubscribeEventFlags::empty(),
        )
        .is_ok();
        Ok(Self {
            path: path.to_owned(),
            file,
            input,
            events,
        })
    }

    /// The selected input's current status flags (0 when the driver reports none).
    pub fn input_status(&self) -> Result<u32, CaptureError> {
        match ioctl::enuminput::<bindings::v4l2_input>(&self.file, self.input.index as usize) {
            Ok(i) => Ok(i.status),
            Err(SelectionError::OutOfRange(_)) => Ok(0),
            Err(SelectionError::IoctlError(e)) => {
                Err(CaptureError::ioctl(&self.path, "VIDIOC_ENUMINPUT", e))
            }
        }
    }

    /// What the HDMI receiver sees now (`VIDIOC_QUERY_DV_TIMINGS`): timings, or why there are
    /// none.
    pub fn query_dv_timings(&self) -> Result<DvTimings, CaptureError> {
        query_dv_timings(&self.file, &self.path)
    }
}

/// `VIDIOC_QUERY_DV_TIMINGS` on the current input of `file`.
pub fn query_dv_timings(file: &File, path: &str) -> Result<DvTimings, CaptureError> {
    ioctl::query_dv_timings::<bindings::v4l2_dv_timings>(file)
        .map(DvTimings::from)
        .map_err(|e| CaptureError::ioctl(path, "VIDIOC_QUERY_DV_TIMINGS", e.into()))
}

/// Opens a node read-write and non-blocking (buffers are waited for with poll, which also
/// brings events).
pub fn open_node(path: &str) -> Result<File, CaptureError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(v4l2r::nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            let errno = Errno::from_raw(e.raw_os_error().unwrap_or(v4l2r::nix::libc::EIO));
            CaptureError::ioctl(path, "open", errno)
        })
}

/// Every input of the node, in index order.
pub fn list_inputs(file: &File) -> Vec<Input> {
    (0..64)
        .map_while(|i| ioctl::enuminput::<bindings::v4l2_input>(file, i).ok())
        .map(Input::from)
        .collect()
}

/// Every pixel format the capture queue offers, in the driver's order.
pub fn list_formats(file: &File) -> Vec<v4l2r::PixelFormat> {
    (0..256)
        .map_while(|i| ioctl::enum_fmt::<bindings::v4l2_fmtdesc>(file, QUEUE, i).ok())
        .map(|d| v4l2r::PixelFormat::from(d.pixelformat))
        .collect()
}

/// A fixed-size, NUL-padded C string from a kernel struct.
pub fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_strings_stop_at_nul() {
        assert_eq!(c_string(b"HDMI 0\0\0\0junk"), "HDMI 0");
        assert_eq!(c_string(b"full"), "full");
    }

    #[test]
    fn inputs_read_their_kind() {
        let mut raw = bindings::v4l2_input {
            index: 3,
            capabilities: bindings::V4L2_IN_CAP_DV_TIMINGS,
            status: bindings::V4L2_IN_ST_NO_SIGNAL,
            ..Default::default()
        };
        raw.name[..6].copy_from_slice(b"HDMI 0");
        let i = Input::from(raw);
        assert!(i.dv_timings && !i.tuner);
        assert_eq!((i.index, i.name.as_str()), (3, "HDMI 0"));
        assert_eq!(i.status, bindings::V4L2_IN_ST_NO_SIGNAL);
    }

    #[test]
    fn a_missing_node_is_the_missing_device_state() {
        let err = Device::open("/dev/video-roombox-test-missing")
            .err()
            .expect("no such node");
        assert!(
            matches!(err, CaptureError::NoPicture(NoPicture::DeviceMissing)),
            "{err}"
        );
        // A node that is not a V4L2 device at all: the ioctl is refused, named, not a slate.
        let err = Device::open("/dev/null").err().expect("not V4L2");
        assert!(err.to_string().contains("VIDIOC_QUERYCAP"), "{err}");
    }
}
