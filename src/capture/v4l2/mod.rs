//! V4L2 capture: HDMI receivers (TC358743 on a Pi, vivid in the tests) and USB capture dongles.
//!
//! - [`device`]: open a node, check it streams video, select the HDMI input (or input 0),
//!   subscribe to source-change events.
//! - [`format`]: apply the receiver's DV timings, or pick a camera format, size and rate.
//! - [`stream`]: mmap buffers, poll for frames and events.
//! - [`convert`], [`mjpeg`]: captured pixels to I420 in pooled buffers.
//! - [`signal`], [`slate`]: why there is no picture, and the frame viewers see instead.
//! - [`capture`]: the [`VideoSource`](crate::media::VideoSource) tying them together.
//! - [`inventory`]: inputs, timings, signal and formats for `roombox devices`.

pub mod capture;
pub mod convert;
pub mod device;
pub mod format;
pub mod inventory;
pub mod mjpeg;
pub mod signal;
pub mod slate;
pub mod stream;
pub mod timings;

/// Every `videoN` node under `dir`, in number order (video2 before video10).
pub fn video_nodes(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut nodes: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("video"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    nodes.sort_by_key(|p| (p.as_os_str().len(), p.clone()));
    nodes
}

#[cfg(test)]
mod vivid_tests;

pub use capture::V4l2Capture;
