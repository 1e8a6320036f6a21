//! What `roombox devices` shows of a capture node: its inputs (kind, current DV timings, signal)
//! and its pixel formats.
//!
//! Signal state is only defined for the selected input, so each input is selected in turn and
//! the original selection put back. A node that is streaming (the box itself capturing) refuses
//! the switch: its other inputs then show "unknown (device busy)".

use super::device::{list_formats, list_inputs, query_dv_timings, CaptureError, Input};
use super::signal::NoPicture;
use std::fs::File;
use v4l2r::bindings;
use v4l2r::ioctl;

/// One input as `roombox devices` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputReport {
    pub index: u32,
    pub name: String,
    /// "HDMI" (has DV timings), "tuner" or "camera".
    pub kind: &'static str,
    /// e.g. "1920x1080p60", when the input has DV timings and is locked.
    pub dv_timings: Option<String>,
    /// "ok", "no signal", "no lock", "out of range", or "unknown (...)".
    pub signal: String,
}

/// The kind of an input, as people call it.
pub fn kind(input: &Input) -> &'static str {
    if input.dv_timings {
        "HDMI"
    } else if input.tuner {
        "tuner"
    } else {
        "camera"
    }
}

/// Every input of the node with its signal state.
pub fn inputs(file: &File, path: &str) -> Vec<InputReport> {
    let listed = list_inputs(file);
    let current = ioctl::g_input(file).ok().map(|i| i as u32);
    let mut reports = Vec::with_capacity(listed.len());
    for input in &listed {
        let selected = current == Some(input.index)
            || listed.len() == 1
            || ioctl::s_input(file, input.index as usize).is_ok();
        let (dv_timings, signal) = if selected {
            signal_of(file, path, input)
        } else {
            (None, "unknown (device busy)".to_owned())
        };
        reports.push(InputReport {
            index: input.index,
            name: input.name.clone(),
            kind: kind(input),
            dv_timings,
            signal,
        });
    }
    if let Some(current) = current {
        if ioctl::g_input(file).ok() != Some(current as usize) {
            let _ = ioctl::s_input(file, current as usize);
        }
    }
    reports
}

/// Timings and signal of `input`, which is selected.
fn signal_of(file: &File, path: &str, input: &Input) -> (Option<String>, String) {
    if input.dv_timings {
        return match query_dv_timings(file, path) {
            Ok(t) => (Some(t.name()), "ok".to_owned()),
            Err(CaptureError::NoPicture(r)) => (None, r.state().to_owned()),
            Err(e) => (None, format!("unknown ({e})")),
        };
    }
    let status = ioctl::enuminput::<bindings::v4l2_input>(file, input.index as usize)
        .map(|i| i.status)
        .unwrap_or(0);
    let signal = NoPicture::from_input_status(status).map_or("ok", NoPicture::state);
    (None, signal.to_owned())
}

/// The capture formats as FourCC strings ("YUYV", "MJPG", ...).
pub fn formats(file: &File) -> Vec<String> {
    list_formats(file).into_iter().map(fourcc_name).collect()
}

/// A FourCC as v4l2-ctl writes it: trailing spaces dropped, big-endian variants (bit 31 set,
/// `v4l2_fourcc_be`) as "XR15-BE".
pub fn fourcc_name(f: v4l2r::PixelFormat) -> String {
    const BE: u32 = 1 << 31;
    let code = f.to_u32();
    let name = v4l2r::PixelFormat::from_u32(code & !BE).to_string();
    let name = name.trim_end();
    if code & BE != 0 {
        format!("{name}-BE")
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourcc_names_read_like_v4l2_ctl() {
        use v4l2r::PixelFormat;
        assert_eq!(fourcc_name(PixelFormat::from(b"YUYV")), "YUYV");
        assert_eq!(fourcc_name(PixelFormat::from(b"Y16 ")), "Y16");
        let be = PixelFormat::from_u32(PixelFormat::from(b"XR15").to_u32() | 1 << 31);
        assert_eq!(fourcc_name(be), "XR15-BE");
    }

    #[test]
    fn kinds_follow_capabilities() {
        let mut input = Input {
            index: 0,
            name: "x".into(),
            dv_timings: true,
            tuner: false,
            status: 0,
        };
        assert_eq!(kind(&input), "HDMI");
        input.dv_timings = false;
        assert_eq!(kind(&input), "camera");
        input.tuner = true;
        assert_eq!(kind(&input), "tuner");
    }
}
