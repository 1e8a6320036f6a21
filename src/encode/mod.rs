//! H.264 encoding: the encoders (openh264 in software, a V4L2 memory-to-memory node such as the
//! Pi's bcm2835-codec), what they share (`h264`), and the one place that opens the one the
//! `encoder` setting names (`auto`, `openh264` or `v4l2:/dev/videoN`), for `roombox run` and
//! `roombox record`.
//! `auto` takes the first V4L2 memory-to-memory node that encodes H.264 (the Pi's
//! bcm2835-codec) and falls back to openh264, saying why.

pub mod h264;
pub mod ladder;
pub mod openh264;
pub mod openh264_simd;
pub mod sps;
pub mod v4l2m2m;

use std::path::{Path, PathBuf};

pub use crate::config::EncoderChoice;
use h264::{EncodeError, H264Encoder};
use openh264::{OpenH264Config, OpenH264Encoder};
use v4l2m2m::{EncoderDevice as _, V4l2H264Config, V4l2H264Encoder};

/// What every encoder is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderParams {
    pub fps: u32,
    pub bitrate_bps: u32,
    /// Frames between periodic IDRs.
    pub gop_frames: u32,
    /// Whether a software encoder may skip frames to hold the bitrate (live calls: yes; a
    /// recording: no).
    pub skip_frames: bool,
}

impl EncoderParams {
    pub fn new(fps: u32, bitrate_bps: u32) -> Self {
        // An IDR every four seconds: late joiners normally get one on request anyway.
        EncoderParams {
            fps,
            bitrate_bps,
            gop_frames: fps * 4,
            skip_frames: true,
        }
    }
}

/// An open encoder and, for the log and the status, which it is and why.
pub struct Opened {
    pub encoder: Box<dyn H264Encoder>,
    /// e.g. "v4l2 m2m /dev/video11 (bcm2835-codec)" or "openh264".
    pub description: String,
    /// Why this one, e.g. "no V4L2 M2M H.264 encoder found".
    pub reason: String,
}

impl std::fmt::Display for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "encoder: {} ({})", self.description, self.reason)
    }
}

/// Opens the chosen encoder and logs which it is and why. An explicit choice that fails is an
/// error; `auto` falls back to openh264.
pub fn open(choice: &EncoderChoice, params: EncoderParams) -> Result<Opened, EncodeError> {
    let opened = match choice {
        EncoderChoice::Auto => open_auto(Path::new("/dev"), params)?,
        EncoderChoice::OpenH264 => openh264(params, "chosen in the settings".into())?,
        EncoderChoice::V4l2(path) => {
            let enc = v4l2m2m::open_h264(path, v4l2_config(params))?;
            hardware(enc, "chosen in the settings".into())
        }
    };
    tracing::info!("{opened}");
    Ok(opened)
}

/// `auto` over the nodes in `dev_dir`: the first V4L2 M2M node whose CAPTURE side offers H.264
/// and that opens, else openh264 with the reason.
pub fn open_auto(dev_dir: &Path, params: EncoderParams) -> Result<Opened, EncodeError> {
    let (found, passed) = v4l2m2m::find_encoders(dev_dir, v4l2m2m::H264);
    for p in &passed {
        tracing::debug!("encoder probe: {p}");
    }
    let mut failures = Vec::new();
    for device in found {
        let path = PathBuf::from(&device.info().path);
        let mut first = Some(device);
        let open = Box::new(move || match first.take() {
            Some(d) => Ok(d),
            None => v4l2m2m::KernelDevice::open(&path),
        });
        match V4l2H264Encoder::new(v4l2_config(params), open) {
            Ok(enc) => return Ok(hardware(enc, "auto: found a V4L2 M2M H.264 encoder".into())),
            Err(e) => failures.push(e.to_string()),
        }
    }
    let reason = if failures.is_empty() {
        "no V4L2 M2M H.264 encoder found".to_owned()
    } else {
        format!(
            "the V4L2 M2M H.264 encoder did not open: {}",
            failures.join("; ")
        )
    };
    openh264(params, reason)
}

fn v4l2_config(p: EncoderParams) -> V4l2H264Config {
    V4l2H264Config {
        fps: p.fps,
        bitrate_bps: p.bitrate_bps,
        gop_frames: p.gop_frames,
    }
}

fn hardware(enc: V4l2H264Encoder<v4l2m2m::KernelDevice>, reason: String) -> Opened {
    Opened {
        description: format!("v4l2 m2m {}", enc.device()),
        encoder: Box::new(enc),
        reason,
    }
}

fn openh264(p: EncoderParams, reason: String) -> Result<Opened, EncodeError> {
    tracing::info!("{}", openh264_simd::describe());
    let enc = OpenH264Encoder::new(OpenH264Config {
        fps: p.fps,
        bitrate_bps: p.bitrate_bps,
        gop_frames: p.gop_frames,
        skip_frames: p.skip_frames,
        ..OpenH264Config::default()
    })?;
    Ok(Opened {
        encoder: Box::new(enc),
        description: "openh264".into(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::testsrc::TestPattern;
    use crate::capture::VideoSource;

    /// A directory with no video nodes at all, and one whose `video0` is not a device.
    #[test]
    fn auto_falls_back_to_openh264_and_says_why() {
        let dir = std::env::temp_dir().join(format!("roombox-enc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let params = EncoderParams::new(30, 1_000_000);
        let opened = open_auto(&dir, params).unwrap();
        assert_eq!(opened.description, "openh264");
        assert_eq!(opened.reason, "no V4L2 M2M H.264 encoder found");
        assert_eq!(
            opened.to_string(),
            "encoder: openh264 (no V4L2 M2M H.264 encoder found)"
        );
        std::fs::write(dir.join("video0"), b"not a device").unwrap();
        let (found, passed) = v4l2m2m::find_encoders(&dir, v4l2m2m::H264);
        assert!(found.is_empty());
        assert_eq!(passed.len(), 1);
        assert!(passed[0].contains("video0: VIDIOC_QUERYCAP"), "{passed:?}");
        // The fallback really encodes.
        let mut enc = open_auto(&dir, params).unwrap().encoder;
        let frame = TestPattern::new(320, 240, 30)
            .unwrap()
            .unpaced()
            .next_frame()
            .unwrap();
        assert!(enc.encode(&frame, false).unwrap().unwrap().keyframe);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_explicit_device_that_is_missing_is_an_error_naming_it() {
        let choice = EncoderChoice::V4l2("/dev/video-missing".into());
        let e = open(&choice, EncoderParams::new(30, 1_000_000))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("/dev/video-missing: opening"), "{e}");
    }
}
