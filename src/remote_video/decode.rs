//! H.264 to I420 with openh264's decoder (the same library the box encodes with): Annex B access
//! units in, tightly packed [`VideoFrame`]s out, ready for [`super::compose`].

use std::time::{Duration, Instant};

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;

use crate::media::frame::{i420_len, VideoFrame};

/// Why decoding failed. A bitstream error is per access unit: the decoder stays usable, and the
/// next IDR (ask the sender for one with a PLI) brings the picture back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("openh264: cannot start the decoder: {0}")]
    Init(String),
    #[error("openh264: cannot decode the access unit: {0}")]
    Bitstream(String),
    #[error("openh264: decoded picture {width}x{height} with strides {y_stride}/{uv_stride} does not fit its planes")]
    BadPicture {
        width: usize,
        height: usize,
        y_stride: usize,
        uv_stride: usize,
    },
    /// A V4L2 decoder's node failed (it names itself and the operation).
    #[error("{0}")]
    Device(#[from] crate::m2m::DeviceError),
}

/// A decoder of one remote video stream: access units in order, the newest picture out.
pub trait VideoDecoder: Send {
    /// Decodes one Annex B access unit; `Ok(None)` while there is no new picture.
    fn decode(&mut self, annex_b: &[u8]) -> Result<Option<VideoFrame>, DecodeError>;
}

impl VideoDecoder for H264Decoder {
    fn decode(&mut self, annex_b: &[u8]) -> Result<Option<VideoFrame>, DecodeError> {
        H264Decoder::decode(self, annex_b)
    }
}

/// One remote video stream's decoder. Feed it the access units of one stream in order.
pub struct H264Decoder {
    inner: Decoder,
}

impl std::fmt::Debug for H264Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Decoder").finish_non_exhaustive()
    }
}

impl H264Decoder {
    pub fn new() -> Result<Self, DecodeError> {
        let inner = Decoder::new().map_err(|e| DecodeError::Init(e.to_string()))?;
        Ok(Self { inner })
    }

    /// Decodes one Annex B access unit (SPS/PPS may ride in front of an IDR). `Ok(None)` when
    /// the decoder needs more data before it has a picture (parameter sets alone, or a frame
    /// that references a picture it never saw).
    ///
    /// The frame's `captured_at` is now (when it was decoded) and its `pts` is zero: the
    /// decoder does not know the stream's clock, so the caller sets `pts` from the RTP
    /// timestamp if it needs one. The frame owns its buffer: the decoder's picture is copied out
    /// row by row, because openh264's strides are wider than the picture and its buffer is
    /// reused by the next call.
    pub fn decode(&mut self, annex_b: &[u8]) -> Result<Option<VideoFrame>, DecodeError> {
        let picture = self
            .inner
            .decode(annex_b)
            .map_err(|e| DecodeError::Bitstream(e.to_string()))?;
        let Some(picture) = picture else {
            return Ok(None);
        };
        let (width, height) = picture.dimensions();
        let (y_stride, uv_stride, _) = picture.strides();
        let bad = || DecodeError::BadPicture {
            width,
            height,
            y_stride,
            uv_stride,
        };
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        if width == 0 || height == 0 || y_stride < width || uv_stride < cw {
            return Err(bad());
        }
        let w32 = u32::try_from(width).map_err(|_| bad())?;
        let h32 = u32::try_from(height).map_err(|_| bad())?;
        let mut data = Vec::with_capacity(i420_len(w32, h32));
        copy_plane(&mut data, picture.y(), y_stride, width, height).ok_or_else(bad)?;
        copy_plane(&mut data, picture.u(), uv_stride, cw, ch).ok_or_else(bad)?;
        copy_plane(&mut data, picture.v(), uv_stride, cw, ch).ok_or_else(bad)?;
        debug_assert_eq!(data.len(), i420_len(w32, h32));
        Ok(Some(VideoFrame {
            width: w32,
            height: h32,
            data,
            captured_at: Instant::now(),
            pts: Duration::ZERO,
        }))
    }
}

/// Appends `rows` rows of `width` bytes from a plane with `stride` bytes per row. openh264
/// sizes its chroma slices as `height * stride / 2`, half a row short of the last chroma row of
/// an odd height: a row that is not (fully) there repeats the one above it. `None` when not
/// even the first row is there.
fn copy_plane(
    out: &mut Vec<u8>,
    plane: &[u8],
    stride: usize,
    width: usize,
    rows: usize,
) -> Option<()> {
    let mut last: Option<&[u8]> = None;
    for r in 0..rows {
        let row = plane.get(r * stride..r * stride + width).or(last)?;
        out.extend_from_slice(row);
        last = Some(row);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::h264::H264Encoder;
    use crate::encode::openh264::{OpenH264Config, OpenH264Encoder};

    /// A picture with structure in both directions (gradients and a square), so a decoder that
    /// mixed up strides or planes would show it.
    fn pattern(width: u32, height: u32) -> VideoFrame {
        let (w, h) = (width as usize, height as usize);
        let mut data = vec![0u8; i420_len(width, height)];
        for y in 0..h {
            for x in 0..w {
                let square = (w / 4..w / 2).contains(&x) && (h / 4..h / 2).contains(&y);
                data[y * w + x] = if square {
                    230
                } else {
                    (16 + (x * 150 / w) + (y * 60 / h)) as u8
                };
            }
        }
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        for (i, p) in data[w * h..].iter_mut().enumerate() {
            let plane_i = i % (cw * ch);
            *p = if i < cw * ch {
                (90 + plane_i % cw * 60 / cw) as u8
            } else {
                (160 - plane_i / cw * 50 / ch) as u8
            };
        }
        VideoFrame {
            width,
            height,
            data,
            captured_at: Instant::now(),
            pts: Duration::ZERO,
        }
    }

    fn psnr(a: &[u8], b: &[u8]) -> f64 {
        assert_eq!(a.len(), b.len());
        let mse = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum::<f64>()
            / a.len() as f64;
        10.0 * (255.0 * 255.0 / mse.max(1e-9)).log10()
    }

    #[test]
    fn decodes_the_boxs_own_encoder_output_to_a_close_packed_frame() {
        let (w, h) = (320, 180);
        let source = pattern(w, h);
        let mut enc = OpenH264Encoder::new(OpenH264Config {
            bitrate_bps: 2_000_000,
            skip_frames: false,
            hold_unchanged: false,
            ..Default::default()
        })
        .expect("encoder");
        let mut dec = H264Decoder::new().expect("decoder");
        let mut decoded = None;
        for i in 0..3 {
            let au = enc
                .encode(&source, i == 0)
                .expect("encode")
                .expect("not skipped");
            if let Some(f) = dec.decode(&au.data).expect("decodes") {
                decoded = Some(f);
            }
        }
        let frame = decoded.expect("a picture");
        assert_eq!((frame.width, frame.height), (w, h));
        assert_eq!(frame.data.len(), i420_len(w, h));
        let (y, u, v) = frame.planes();
        let (sy, su, sv) = source.planes();
        let luma = psnr(y, sy);
        assert!(luma > 30.0, "luma PSNR {luma:.1} dB");
        let chroma = psnr(u, su).min(psnr(v, sv));
        assert!(chroma > 30.0, "chroma PSNR {chroma:.1} dB");
    }

    #[test]
    fn garbage_gives_an_error_or_nothing_never_a_panic() {
        let mut dec = H264Decoder::new().expect("decoder");
        let mut seed = 0x1234_5678u32;
        let mut noise = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect()
        };
        let mut inputs = vec![vec![], vec![0, 0, 0, 1], vec![0, 0, 1, 0x65, 0xff, 0x00]];
        for n in [1, 16, 1000] {
            inputs.push(noise(n));
            // Noise behind a start code and a slice or SPS header reaches the parsers.
            for header in [0x67u8, 0x65, 0x41] {
                let mut au = vec![0, 0, 0, 1, header];
                au.extend(noise(n));
                inputs.push(au);
            }
        }
        for au in &inputs {
            match dec.decode(au) {
                Ok(None) | Err(_) => {}
                Ok(Some(f)) => assert_eq!(f.data.len(), i420_len(f.width, f.height)),
            }
        }
        // Still a working decoder after all that.
        let mut enc = OpenH264Encoder::new(OpenH264Config::default()).expect("encoder");
        let au = enc
            .encode(&pattern(64, 48), true)
            .expect("encode")
            .expect("keyframe");
        let frame = dec.decode(&au.data).expect("decodes").expect("a picture");
        assert_eq!((frame.width, frame.height), (64, 48));
    }

    #[test]
    fn copy_plane_repeats_a_missing_last_row() {
        let mut out = vec![];
        // Two full rows of stride 4, the third only half there.
        let plane = [1, 2, 9, 9, 3, 4, 9, 9, 5];
        copy_plane(&mut out, &plane, 4, 2, 3).expect("rows");
        assert_eq!(out, [1, 2, 3, 4, 3, 4]);
        assert!(copy_plane(&mut out, &[], 4, 2, 1).is_none());
    }
}
