//! The H.264 encoder interface. It fits both the openh264 software encoder and a V4L2
//! memory-to-memory stateful hardware encoder: the bitrate changes on the fly, a keyframe can
//! be forced on any frame, and every IDR carries SPS and PPS in front so a viewer can start
//! decoding at any keyframe.

use std::time::{Duration, Instant};

use crate::media::frame::VideoFrame;

/// One encoded access unit.
#[derive(Debug, Clone)]
pub struct EncodedFrame {
    /// Annex B (start codes), SPS and PPS in front of every IDR.
    pub data: Vec<u8>,
    /// An IDR: decoding can start here.
    pub keyframe: bool,
    /// When the source frame was captured (for glass-to-glass measurements).
    pub captured_at: Instant,
    /// The source frame's presentation time.
    pub pts: Duration,
}

/// Why encoding failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("{encoder}: cannot start the encoder: {detail}")]
    Init {
        encoder: &'static str,
        detail: String,
    },
    #[error("{encoder}: encoding a frame failed: {detail}")]
    Encode {
        encoder: &'static str,
        detail: String,
    },
    #[error("frame {width}x{height} with {len} bytes is not an even-sized I420 frame")]
    BadFrame { width: u32, height: u32, len: usize },
}

/// Refuses a frame an encoder cannot take: odd or zero sizes, or data that is not I420 of that size.
pub fn check_frame(frame: &VideoFrame) -> Result<(), EncodeError> {
    let (w, h) = (frame.width, frame.height);
    if w % 2 != 0
        || h % 2 != 0
        || w == 0
        || h == 0
        || frame.data.len() != crate::media::frame::i420_len(w, h)
    {
        return Err(EncodeError::BadFrame {
            width: w,
            height: h,
            len: frame.data.len(),
        });
    }
    Ok(())
}

/// An H.264 encoder producing constrained-baseline streams a browser can decode.
pub trait H264Encoder: Send {
    /// Encodes one frame. `Ok(None)` when the encoder dropped the frame (rate control) or has
    /// nothing ready yet (a hardware pipeline's latency). A geometry change reconfigures the
    /// encoder and starts with an IDR.
    fn encode(
        &mut self,
        frame: &VideoFrame,
        force_keyframe: bool,
    ) -> Result<Option<EncodedFrame>, EncodeError>;
    /// Sets the target bitrate; applies from the next frame.
    fn set_bitrate(&mut self, bits_per_sec: u32);
    /// For logs, e.g. "openh264".
    fn name(&self) -> &'static str;
}

/// NAL unit types (ITU-T H.264 table 7-1) that matter to us.
pub mod nal {
    pub const SLICE: u8 = 1;
    pub const IDR: u8 = 5;
    pub const SEI: u8 = 6;
    pub const SPS: u8 = 7;
    pub const PPS: u8 = 8;
}

/// The NAL units of an Annex B stream, without their start codes.
pub fn nal_units(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let start = find_start_code(data)?;
        data = &data[start..];
        let end = find_start_code_prefix(data).unwrap_or(data.len());
        let (unit, rest) = data.split_at(end);
        data = rest;
        Some(unit)
    })
}

/// Index just past the first 00 00 01 (the 3-byte form also ends the 4-byte one).
fn find_start_code(data: &[u8]) -> Option<usize> {
    data.windows(3).position(|w| w == [0, 0, 1]).map(|i| i + 3)
}

/// Index of the first start code's leading zero (either form).
fn find_start_code_prefix(data: &[u8]) -> Option<usize> {
    let i = data.windows(3).position(|w| w == [0, 0, 1])?;
    Some(if i > 0 && data[i - 1] == 0 { i - 1 } else { i })
}

/// The type of a NAL unit (its first byte's low five bits).
pub fn nal_type(unit: &[u8]) -> Option<u8> {
    unit.first().map(|b| b & 0x1f)
}

/// An H.264 access unit a decoder can start from: it carries an SPS or an IDR slice.
pub fn is_keyframe(annex_b: &[u8]) -> bool {
    nal_units(annex_b).any(|u| matches!(nal_type(u), Some(5 | 7)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_annex_b() {
        let stream = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5,
        ];
        let units: Vec<&[u8]> = nal_units(&stream).collect();
        assert_eq!(
            units,
            [&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4, 5][..]]
        );
        let types: Vec<u8> = units.iter().filter_map(|u| nal_type(u)).collect();
        assert_eq!(types, [nal::SPS, nal::PPS, nal::IDR]);
        assert_eq!(nal_units(&[1, 2, 3]).count(), 0);
    }
}
