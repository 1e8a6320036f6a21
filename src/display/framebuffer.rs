//! An XRGB8888 image in memory: the renderer draws here, tests read it, the DRM path copies it
//! into the scanout buffer.

use embedded_graphics::pixelcolor::{Rgb888, RgbColor};
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use std::convert::Infallible;

/// Pixels as little-endian XRGB8888 (bytes B, G, R, X), the format DRM dumb buffers use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryFramebuffer {
    width: u32,
    height: u32,
    /// Bytes per row; at least `width * 4`.
    stride: usize,
    data: Vec<u8>,
}

impl MemoryFramebuffer {
    pub fn new(width: u32, height: u32) -> Self {
        let stride = width as usize * 4;
        MemoryFramebuffer {
            width,
            height,
            stride,
            data: vec![0; stride * height as usize],
        }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn stride(&self) -> usize {
        self.stride
    }

    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The pixels and the bytes per row, for code that writes rows itself (video, converted).
    pub fn pixels_mut(&mut self) -> (&mut [u8], usize) {
        (&mut self.data, self.stride)
    }

    /// Panics outside the image (a test or copy bug, not a runtime state).
    #[cfg_attr(not(test), allow(dead_code))] // read by tests
    pub fn pixel(&self, x: u32, y: u32) -> Rgb888 {
        assert!(x < self.width && y < self.height, "pixel out of range");
        let i = y as usize * self.stride + x as usize * 4;
        Rgb888::new(self.data[i + 2], self.data[i + 1], self.data[i])
    }

    /// Copies row by row into a buffer with its own stride (a dumb buffer's pitch may be larger).
    pub fn copy_to(&self, dst: &mut [u8], dst_stride: usize) {
        let row = self.width as usize * 4;
        for (src, dst) in self
            .data
            .chunks_exact(self.stride)
            .zip(dst.chunks_mut(dst_stride))
        {
            let n = row.min(dst.len());
            dst[..n].copy_from_slice(&src[..n]);
        }
    }

    fn put(&mut self, x: usize, y: usize, c: Rgb888) {
        let i = y * self.stride + x * 4;
        self.data[i..i + 4].copy_from_slice(&[c.b(), c.g(), c.r(), 0xff]);
    }
}

impl OriginDimensions for MemoryFramebuffer {
    fn size(&self) -> Size {
        Size::new(self.width, self.height)
    }
}

impl DrawTarget for MemoryFramebuffer {
    type Color = Rgb888;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        let (w, h) = (self.width as i32, self.height as i32);
        for Pixel(p, c) in pixels {
            if (0..w).contains(&p.x) && (0..h).contains(&p.y) {
                self.put(p.x as usize, p.y as usize, c);
            }
        }
        Ok(())
    }

    // Rows at a time: backgrounds and scaled glyphs are all rectangles.
    fn fill_solid(&mut self, area: &Rectangle, color: Self::Color) -> Result<(), Self::Error> {
        let area = area.intersection(&self.bounding_box());
        let Some(br) = area.bottom_right() else {
            return Ok(());
        };
        let px = [color.b(), color.g(), color.r(), 0xff];
        let (x0, x1) = (area.top_left.x as usize, br.x as usize + 1);
        for y in area.top_left.y as usize..=br.y as usize {
            let row = &mut self.data[y * self.stride..][x0 * 4..x1 * 4];
            for p in row.chunks_exact_mut(4) {
                p.copy_from_slice(&px);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_and_read_back() {
        let mut fb = MemoryFramebuffer::new(8, 4);
        fb.fill_solid(
            &Rectangle::new(Point::new(-2, 1), Size::new(5, 10)),
            Rgb888::RED,
        )
        .unwrap();
        assert_eq!(fb.pixel(0, 1), Rgb888::RED);
        assert_eq!(fb.pixel(2, 3), Rgb888::RED);
        assert_eq!(fb.pixel(3, 1), Rgb888::BLACK);
        assert_eq!(fb.pixel(0, 0), Rgb888::BLACK);
        // Row 1, pixel 0, stored B, G, R, X.
        assert_eq!(&fb.data()[32..36], &[0, 0, 255, 255]);
    }

    #[test]
    fn copy_honours_a_wider_pitch() {
        let mut fb = MemoryFramebuffer::new(2, 2);
        fb.clear(Rgb888::WHITE).unwrap();
        let mut dst = vec![0u8; 12 * 2];
        fb.copy_to(&mut dst, 12);
        assert_eq!(&dst[..8], &[255; 8]);
        assert_eq!(&dst[8..12], &[0; 4]);
        assert_eq!(&dst[12..20], &[255; 8]);
    }
}
