//! Scaling an I420 picture down (and, in [`convert`], to and from the display's XRGB8888), plane by plane with `fast_image_resize`: SIMD on both the
//! development machine (SSE4.1/AVX2, picked at run time) and the Pi (NEON), and a convolution
//! filter that averages what it drops rather than skipping pixels (no aliasing shimmer on text
//! and fine patterns).
//!
//! A crate of its own so that debug builds optimize it (Cargo.toml's dev profile): the
//! library's generic code is compiled where it is instantiated, and unoptimized it takes
//! a quarter of a second per 720p frame, which no test of a live call survives.

pub mod convert;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

/// Bytes of an I420 picture of this size (chroma planes round up for odd sizes).
pub fn i420_len(width: u32, height: u32) -> usize {
    let (w, h) = (width as usize, height as usize);
    w * h + 2 * w.div_ceil(2) * h.div_ceil(2)
}

/// Why a picture cannot be scaled.
#[derive(Debug, PartialEq, Eq)]
pub enum ScaleError {
    /// A buffer does not hold an I420 picture of the size given with it.
    Size { width: u32, height: u32, len: usize },
}

impl std::fmt::Display for ScaleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScaleError::Size { width, height, len } => {
                write!(f, "{len} bytes are not an I420 picture of {width}x{height}")
            }
        }
    }
}

impl std::error::Error for ScaleError {}

/// Keeps the resizer's scratch buffers between pictures.
pub struct Scaler {
    resizer: Resizer,
    options: ResizeOptions,
}

impl Default for Scaler {
    fn default() -> Self {
        Scaler {
            resizer: Resizer::new(),
            options: ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
        }
    }
}

impl Scaler {
    /// Scales the I420 picture `src` (`from` in pixels) into `dst` (`to`).
    pub fn scale(
        &mut self,
        src: &[u8],
        from: (u32, u32),
        dst: &mut [u8],
        to: (u32, u32),
    ) -> Result<(), ScaleError> {
        for (buf, (width, height)) in [(src, from), (&*dst, to)] {
            if buf.len() != i420_len(width, height) || width == 0 || height == 0 {
                return Err(ScaleError::Size {
                    width,
                    height,
                    len: buf.len(),
                });
            }
        }
        let chroma = |(w, h): (u32, u32)| (w.div_ceil(2), h.div_ceil(2));
        let (sy, s_rest) = src.split_at((from.0 * from.1) as usize);
        let (su, sv) = s_rest.split_at(s_rest.len() / 2);
        let (dy, d_rest) = dst.split_at_mut((to.0 * to.1) as usize);
        let (du, dv) = d_rest.split_at_mut(d_rest.len() / 2);
        self.plane(sy, from, dy, to);
        self.plane(su, chroma(from), du, chroma(to));
        self.plane(sv, chroma(from), dv, chroma(to));
        Ok(())
    }

    fn plane(&mut self, src: &[u8], from: (u32, u32), dst: &mut [u8], to: (u32, u32)) {
        // U8 planes need no alignment and their lengths were checked above, so neither the
        // constructors nor the resize can fail.
        let src = ImageRef::new(from.0, from.1, src, PixelType::U8).expect("plane size");
        let mut dst = Image::from_slice_u8(to.0, to.1, dst, PixelType::U8).expect("plane size");
        self.resizer
            .resize(&src, &mut dst, &self.options)
            .expect("same pixel type on both sides");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Luma a horizontal ramp, chroma flat.
    fn ramp(width: u32, height: u32) -> Vec<u8> {
        let (w, h) = (width as usize, height as usize);
        let mut data = vec![0u8; i420_len(width, height)];
        for row in data[..w * h].chunks_mut(w) {
            for (x, p) in row.iter_mut().enumerate() {
                *p = (x * 255 / (w - 1)) as u8;
            }
        }
        let c = w.div_ceil(2) * h.div_ceil(2);
        data[w * h..w * h + c].fill(90);
        data[w * h + c..].fill(200);
        data
    }

    #[test]
    fn scales_each_plane_and_keeps_the_picture() {
        let mut out = vec![0; i420_len(640, 360)];
        Scaler::default()
            .scale(&ramp(1280, 720), (1280, 720), &mut out, (640, 360))
            .unwrap();
        let (y, chroma) = out.split_at(640 * 360);
        let (u, v) = chroma.split_at(320 * 180);
        // The ramp is still a ramp, end to end, in every row.
        for row in y.chunks(640) {
            assert!(row[0] < 3 && row[639] > 252, "{} .. {}", row[0], row[639]);
            assert!(row.windows(2).all(|p| p[1] >= p[0]));
            assert!(
                (i32::from(row[320]) - 128).abs() <= 2,
                "middle {}",
                row[320]
            );
        }
        assert!(u.iter().all(|&p| p == 90) && v.iter().all(|&p| p == 200));
    }

    #[test]
    fn odd_chroma_sizes_three_quarters_of_1080p() {
        let mut out = vec![0; i420_len(1440, 810)];
        Scaler::default()
            .scale(&ramp(1920, 1080), (1920, 1080), &mut out, (1440, 810))
            .unwrap();
        assert_eq!(out.len(), 1440 * 810 + 2 * 720 * 405);
        assert!(out[1440 * 810 + 720 * 405..].iter().all(|&p| p == 200));
    }

    #[test]
    fn a_buffer_of_the_wrong_size_is_refused() {
        let mut out = vec![0; 10];
        let err = Scaler::default()
            .scale(&ramp(64, 64), (64, 64), &mut out, (32, 32))
            .unwrap_err();
        assert_eq!(err.to_string(), "10 bytes are not an I420 picture of 32x32");
    }
}
