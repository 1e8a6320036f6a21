//! Scaling an I420 frame down (the sender's smaller sizes on a slow link), plane by plane with
//! `fast_image_resize`: SIMD on both the development machine (SSE4.1/AVX2, picked at run
//! time) and the Pi (NEON), and a convolution filter that averages what it drops rather than
//! skipping pixels (no aliasing shimmer on text and fine patterns).

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::frame::{i420_len, FramePool, VideoFrame};

/// Keeps the resizer's scratch buffers between frames.
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
    /// `frame` at `width` x `height` (even), in a buffer from `pool`. Same timestamps.
    pub fn scale(
        &mut self,
        frame: &VideoFrame,
        width: u32,
        height: u32,
        pool: &FramePool,
    ) -> VideoFrame {
        let mut data = pool.take(i420_len(width, height));
        let (y, u, v) = frame.planes();
        let (cw, ch) = (frame.width.div_ceil(2), frame.height.div_ceil(2));
        let y_len = (width * height) as usize;
        let (dy, chroma) = data.split_at_mut(y_len);
        let (du, dv) = chroma.split_at_mut(chroma.len() / 2);
        self.plane(y, (frame.width, frame.height), dy, (width, height));
        self.plane(u, (cw, ch), du, (width / 2, height / 2));
        self.plane(v, (cw, ch), dv, (width / 2, height / 2));
        VideoFrame {
            width,
            height,
            data,
            captured_at: frame.captured_at,
            pts: frame.pts,
        }
    }

    fn plane(&mut self, src: &[u8], from: (u32, u32), dst: &mut [u8], to: (u32, u32)) {
        // U8 images need no alignment and the sizes come from the frames themselves, so
        // neither constructor nor the resize can fail.
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
    use std::time::{Duration, Instant};

    /// A frame whose luma is a horizontal ramp and whose chroma planes are flat.
    fn ramp(width: u32, height: u32) -> VideoFrame {
        let mut data = vec![0u8; i420_len(width, height)];
        let (w, h) = (width as usize, height as usize);
        for row in data[..w * h].chunks_mut(w) {
            for (x, p) in row.iter_mut().enumerate() {
                *p = (x * 255 / (w - 1)) as u8;
            }
        }
        let c = w / 2 * (h / 2);
        data[w * h..w * h + c].fill(90);
        data[w * h + c..].fill(200);
        VideoFrame {
            width,
            height,
            data,
            captured_at: Instant::now(),
            pts: Duration::from_millis(40),
        }
    }

    #[test]
    fn scales_each_plane_and_keeps_the_picture() {
        let src = ramp(1280, 720);
        let pool = FramePool::default();
        let out = Scaler::default().scale(&src, 640, 360, &pool);
        assert_eq!((out.width, out.height), (640, 360));
        assert_eq!(out.data.len(), i420_len(640, 360));
        assert_eq!((out.pts, out.captured_at), (src.pts, src.captured_at));
        let (y, u, v) = out.planes();
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
    fn three_quarters_of_1080p() {
        let out = Scaler::default().scale(&ramp(1920, 1080), 1440, 810, &FramePool::default());
        let (y, u, v) = out.planes();
        assert_eq!(
            (y.len(), u.len(), v.len()),
            (1440 * 810, 720 * 405, 720 * 405)
        );
        assert!(v.iter().all(|&p| p == 200));
    }
}
