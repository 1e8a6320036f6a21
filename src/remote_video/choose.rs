//! The one place that opens the decoder the `decoder` setting names (`auto`, `openh264` or
//! `v4l2:/dev/videoN`), a decoder per remote video. `auto` takes the first V4L2
//! memory-to-memory node that decodes H.264 (the Pi 4's bcm2835-codec) and falls back to
//! openh264, saying why, as the encoder's `auto` does.

use std::path::Path;

use super::decode::{DecodeError, H264Decoder, VideoDecoder};
use super::v4l2m2m::{self, V4l2H264Decoder};
pub use crate::config::DecoderChoice;

/// An open decoder and, for the log, which it is and why.
pub struct Opened {
    pub decoder: Box<dyn VideoDecoder>,
    /// e.g. "v4l2 m2m /dev/video10 (bcm2835-codec)" or "openh264".
    pub description: String,
    /// Why this one, e.g. "no V4L2 M2M H.264 decoder found".
    pub reason: String,
}

impl std::fmt::Display for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "decoder: {} ({})", self.description, self.reason)
    }
}

/// Opens the chosen decoder. An explicit choice that fails is an error; `auto` falls back to
/// openh264.
pub fn open(choice: &DecoderChoice) -> Result<Opened, DecodeError> {
    match choice {
        DecoderChoice::Auto => open_auto(Path::new("/dev")),
        DecoderChoice::OpenH264 => openh264("chosen in the settings".into()),
        DecoderChoice::V4l2(path) => Ok(Opened {
            decoder: Box::new(V4l2H264Decoder::open(path)?),
            description: format!("v4l2 m2m {}", path.display()),
            reason: "chosen in the settings".into(),
        }),
    }
}

/// `auto` over the nodes in `dev_dir`: the first V4L2 M2M node whose OUTPUT side takes H.264
/// and that starts, else openh264 with the reason.
pub fn open_auto(dev_dir: &Path) -> Result<Opened, DecodeError> {
    let (found, passed) = v4l2m2m::find_decoders(dev_dir, v4l2m2m::H264);
    for p in &passed {
        tracing::debug!("decoder probe: {p}");
    }
    let mut failures = Vec::new();
    for device in found {
        let description = format!("v4l2 m2m {}", v4l2m2m::DecoderDevice::info(&device));
        match V4l2H264Decoder::start(device) {
            Ok(dec) => {
                return Ok(Opened {
                    decoder: Box::new(dec),
                    description,
                    reason: "auto: found a V4L2 M2M H.264 decoder".into(),
                })
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    let reason = if failures.is_empty() {
        "no V4L2 M2M H.264 decoder found".to_owned()
    } else {
        format!(
            "the V4L2 M2M H.264 decoder did not start: {}",
            failures.join("; ")
        )
    };
    openh264(reason)
}

fn openh264(reason: String) -> Result<Opened, DecodeError> {
    Ok(Opened {
        decoder: Box::new(H264Decoder::new()?),
        description: "openh264".into(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_falls_back_to_openh264_and_says_why() {
        let dir = std::env::temp_dir().join(format!("roombox-dec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("video0"), b"not a device").unwrap();
        let opened = open_auto(&dir).unwrap();
        assert_eq!(
            opened.to_string(),
            "decoder: openh264 (no V4L2 M2M H.264 decoder found)"
        );
        let (found, passed) = v4l2m2m::find_decoders(&dir, v4l2m2m::H264);
        assert!(found.is_empty());
        assert!(passed[0].contains("video0: VIDIOC_QUERYCAP"), "{passed:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_explicit_device_that_is_missing_is_an_error_naming_it() {
        let choice = DecoderChoice::V4l2("/dev/video-missing".into());
        let e = open(&choice).err().unwrap().to_string();
        assert!(e.contains("/dev/video-missing: opening"), "{e}");
    }
}
