//! Motion-JPEG frames (USB capture dongles) to I420 with zune-jpeg: decoded as YCbCr (no RGB
//! round trip), chroma averaged over 2x2, and moved from JPEG's full range to the limited range
//! the rest of the box (and H.264 by default) uses.

use super::convert::{i420_planes, ConvertError};
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

/// Keeps the full-size YCbCr scratch between frames, so steady capture reuses one buffer.
#[derive(Default)]
pub struct MjpegDecoder {
    scratch: Vec<u8>,
}

impl MjpegDecoder {
    /// Decodes `jpeg`, which must be `width x height`, into the I420 buffer `out` of the even
    /// size below it.
    pub fn decode(
        &mut self,
        jpeg: &[u8],
        width: u32,
        height: u32,
        out: &mut [u8],
    ) -> Result<(), ConvertError> {
        let options = DecoderOptions::default()
            .jpeg_set_out_colorspace(ColorSpace::YCbCr)
            .set_max_width(8192)
            .set_max_height(8192);
        let mut decoder = JpegDecoder::new_with_options(ZCursor::new(jpeg), options);
        let bad = |e: zune_jpeg::errors::DecodeErrors| ConvertError::Jpeg(e.to_string());
        decoder.decode_headers().map_err(bad)?;
        let info = decoder
            .info()
            .ok_or_else(|| ConvertError::Jpeg("no image header".into()))?;
        let (jw, jh) = (usize::from(info.width), usize::from(info.height));
        if (jw, jh) != (width as usize, height as usize) {
            return Err(ConvertError::JpegSize {
                got_w: jw,
                got_h: jh,
                want_w: width,
                want_h: height,
            });
        }
        if decoder.output_colorspace() != Some(ColorSpace::YCbCr) {
            return Err(ConvertError::Jpeg(format!(
                "decodes as {:?}, not YCbCr",
                decoder.output_colorspace()
            )));
        }
        let len = decoder
            .output_buffer_size()
            .ok_or_else(|| ConvertError::Jpeg("image too large".into()))?;
        self.scratch.resize(len, 0);
        decoder.decode_into(&mut self.scratch).map_err(bad)?;
        ycbcr444_to_i420(
            &self.scratch,
            jw,
            (width & !1) as usize,
            (height & !1) as usize,
            out,
        );
        Ok(())
    }
}

/// Interleaved full-range YCbCr 4:4:4 (`src_w` pixels a line) to limited-range I420 `w x h`.
fn ycbcr444_to_i420(src: &[u8], src_w: usize, w: usize, h: usize, out: &mut [u8]) {
    let (y_plane, u_plane, v_plane) = i420_planes(out, w, h);
    let line = 3 * src_w;
    for (row, y_row) in y_plane.chunks_exact_mut(w).enumerate() {
        for (x, dst) in y_row.iter_mut().enumerate() {
            *dst = LUMA[usize::from(src[row * line + 3 * x])];
        }
    }
    let cw = w / 2;
    for crow in 0..h / 2 {
        let (top, bottom) = (2 * crow * line, (2 * crow + 1) * line);
        for cx in 0..cw {
            let at =
                |base: usize, dx: usize, c: usize| u16::from(src[base + 3 * (2 * cx + dx) + c]);
            for (plane, c) in [(&mut *u_plane, 1), (&mut *v_plane, 2)] {
                let sum = at(top, 0, c) + at(top, 1, c) + at(bottom, 0, c) + at(bottom, 1, c);
                plane[crow * cw + cx] = CHROMA[usize::from((sum + 2) / 4)];
            }
        }
    }
}

/// Full range (0-255) to limited range: luma 16-235, chroma 16-240.
const LUMA: [u8; 256] = range_table(219);
const CHROMA: [u8; 256] = range_table(224);

const fn range_table(span: u32) -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut v = 0;
    while v < 256 {
        t[v] = (16 + (v as u32 * span + 127) / 255) as u8;
        v += 1;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::frame::i420_len;
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

    /// JFIF's RGB to full-range YCbCr.
    fn ycbcr(rgb: [u8; 3]) -> [f64; 3] {
        let [r, g, b] = rgb.map(f64::from);
        [
            0.299 * r + 0.587 * g + 0.114 * b,
            128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b,
            128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b,
        ]
    }

    fn limited(v: f64, span: f64) -> f64 {
        16.0 + v * span / 255.0
    }

    #[test]
    fn range_tables_hit_the_limits() {
        assert_eq!((LUMA[0], LUMA[255]), (16, 235));
        assert_eq!((CHROMA[0], CHROMA[128], CHROMA[255]), (16, 128, 240));
    }

    #[test]
    fn mjpeg_to_i420_pixel_by_pixel() {
        // 32x16, 8x8 blocks of flat colours (4:4:4, quality 100: each block survives JPEG
        // to within rounding).
        let colours = [
            [255, 0, 0],
            [0, 255, 0],
            [0, 0, 255],
            [255, 255, 255],
            [0, 0, 0],
            [200, 120, 40],
            [30, 160, 220],
            [128, 128, 128],
        ];
        let (w, h) = (32usize, 16usize);
        let colour_at = |x: usize, y: usize| colours[(y / 8) * 4 + x / 8];
        let rgb: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).flat_map(move |x| colour_at(x, y)))
            .collect();
        let mut jpeg = Vec::new();
        let mut encoder = Encoder::new(&mut jpeg, 100);
        encoder.set_sampling_factor(SamplingFactor::R_4_4_4);
        encoder
            .encode(&rgb, w as u16, h as u16, ColorType::Rgb)
            .expect("encodes");

        let mut out = vec![0; i420_len(w as u32, h as u32)];
        let mut decoder = MjpegDecoder::default();
        decoder
            .decode(&jpeg, w as u32, h as u32, &mut out)
            .expect("decodes");
        let (y, rest) = out.split_at(w * h);
        let (u, v) = rest.split_at(w * h / 4);
        for row in 0..h {
            for x in 0..w {
                let want = limited(ycbcr(colour_at(x, row))[0], 219.0);
                let got = f64::from(y[row * w + x]);
                assert!((got - want).abs() <= 2.0, "Y at {x},{row}: {got} vs {want}");
            }
        }
        for crow in 0..h / 2 {
            for cx in 0..w / 2 {
                let [_, cb, cr] = ycbcr(colour_at(2 * cx, 2 * crow));
                let (gu, gv) = (u[crow * w / 2 + cx], v[crow * w / 2 + cx]);
                for (got, want) in [(gu, limited(cb, 224.0)), (gv, limited(cr, 224.0))] {
                    let got = f64::from(got);
                    assert!(
                        (got - want).abs() <= 2.0,
                        "chroma at {cx},{crow}: {got} vs {want}"
                    );
                }
            }
        }

        // The same decoder takes the next frame without a new scratch buffer.
        let scratch = decoder.scratch.as_ptr();
        decoder
            .decode(&jpeg, w as u32, h as u32, &mut out)
            .expect("decodes again");
        assert_eq!(decoder.scratch.as_ptr(), scratch);
    }

    #[test]
    fn wrong_size_and_garbage_are_errors() {
        let mut jpeg = Vec::new();
        Encoder::new(&mut jpeg, 80)
            .encode(&[0; 16 * 8 * 3], 16, 8, ColorType::Rgb)
            .expect("encodes");
        let mut out = vec![0; i420_len(32, 8)];
        let err = MjpegDecoder::default()
            .decode(&jpeg, 32, 8, &mut out)
            .expect_err("size");
        assert!(err.to_string().contains("16x8"), "{err}");
        let err = MjpegDecoder::default()
            .decode(b"not a jpeg", 32, 8, &mut out)
            .expect_err("garbage");
        assert!(err.to_string().contains("bad JPEG"), "{err}");
    }
}
