//! What the V4L2 memory-to-memory encoder (`encode::v4l2m2m`) and decoder
//! (`remote_video::v4l2m2m`) share: naming a node and its failures, and [`node::Node`], the
//! open node with the ioctls both directions use (capabilities, formats, buffers, poll).

pub mod layout;
pub mod node;

use std::fmt;

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

impl fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.path, self.driver)
    }
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
    pub fn new(device: &impl fmt::Display, what: &str, detail: impl ToString) -> Self {
        DeviceError {
            device: device.to_string(),
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

/// "H264 MJPG" for messages.
pub fn fourcc_list(formats: &[FourCc]) -> String {
    if formats.is_empty() {
        return "nothing".into();
    }
    formats
        .iter()
        .map(|f| String::from_utf8_lossy(&f.to_fourcc()).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
