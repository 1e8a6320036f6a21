//! Captured pixels to the encoder's I420, written into a buffer the caller owns (a pooled frame),
//! so converting allocates nothing. Packed 4:2:2 chroma is averaged over each pair of lines.
//!
//! Output sizes are even (an odd last row or column is cropped): I420 and H.264 want whole
//! chroma samples, and one pixel at the edge of an HDMI picture is not missed.

use super::mjpeg::MjpegDecoder;
use crate::media::frame::i420_len;

/// The capture formats the box reads, by V4L2 FourCC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelLayout {
    /// Planar 4:2:0 (`V4L2_PIX_FMT_YUV420`), already I420.
    Yu12,
    /// Y plane, then interleaved CbCr at half height.
    Nv12,
    /// Packed 4:2:2, Y0 Cb Y1 Cr.
    Yuyv,
    /// Packed 4:2:2, Cb Y0 Cr Y1 (what HDMI bridges such as the TC358743 deliver).
    Uyvy,
    /// Motion JPEG (USB dongles at 1080p).
    Mjpeg,
}

impl PixelLayout {
    /// Most preferred first: the less work per frame the better; JPEG decoding costs the most.
    pub const PREFERRED: [PixelLayout; 5] = [
        PixelLayout::Yu12,
        PixelLayout::Nv12,
        PixelLayout::Yuyv,
        PixelLayout::Uyvy,
        PixelLayout::Mjpeg,
    ];

    pub fn fourcc(self) -> [u8; 4] {
        match self {
            Self::Yu12 => *b"YU12",
            Self::Nv12 => *b"NV12",
            Self::Yuyv => *b"YUYV",
            Self::Uyvy => *b"UYVY",
            Self::Mjpeg => *b"MJPG",
        }
    }

    pub fn from_fourcc(fourcc: [u8; 4]) -> Option<Self> {
        Self::PREFERRED.into_iter().find(|l| l.fourcc() == fourcc)
    }

    /// Bytes a buffer of this layout holds at least (MJPEG: any).
    fn min_len(self, bytesperline: usize, height: usize) -> usize {
        match self {
            Self::Yu12 => bytesperline * height + 2 * (bytesperline / 2) * height.div_ceil(2),
            Self::Nv12 => bytesperline * height + bytesperline * height.div_ceil(2),
            Self::Yuyv | Self::Uyvy => bytesperline * height,
            Self::Mjpeg => 1,
        }
    }
}

/// How the captured picture lies in a buffer (from `VIDIOC_G_FMT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceFormat {
    pub layout: PixelLayout,
    pub width: u32,
    pub height: u32,
    /// Bytes per line of the first plane (0 for MJPEG).
    pub bytesperline: u32,
}

impl SourceFormat {
    /// The I420 size frames come out at.
    pub fn out_size(&self) -> (u32, u32) {
        (self.width & !1, self.height & !1)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("short buffer: {got} bytes, a {layout:?} frame needs {need}")]
    Short {
        layout: PixelLayout,
        got: usize,
        need: usize,
    },
    #[error("bad JPEG frame: {0}")]
    Jpeg(String),
    #[error("JPEG frame is {got_w}x{got_h}, the format says {want_w}x{want_h}")]
    JpegSize {
        got_w: usize,
        got_h: usize,
        want_w: u32,
        want_h: u32,
    },
}

/// Converts frames of one source format; keeps the JPEG decoder's scratch between frames.
pub struct Converter {
    format: SourceFormat,
    mjpeg: Option<MjpegDecoder>,
}

impl Converter {
    pub fn new(format: SourceFormat) -> Self {
        Self {
            format,
            mjpeg: (format.layout == PixelLayout::Mjpeg).then(MjpegDecoder::default),
        }
    }

    pub fn format(&self) -> SourceFormat {
        self.format
    }

    /// Writes `src` (one captured buffer's used bytes) as I420 into `out`, which must be
    /// `i420_len` of [`SourceFormat::out_size`].
    pub fn convert(&mut self, src: &[u8], out: &mut [u8]) -> Result<(), ConvertError> {
        let f = self.format;
        let (w, h) = f.out_size();
        debug_assert_eq!(out.len(), i420_len(w, h));
        let (bpl, src_h) = (f.bytesperline as usize, f.height as usize);
        let need = f.layout.min_len(bpl, src_h);
        if src.len() < need {
            return Err(ConvertError::Short {
                layout: f.layout,
                got: src.len(),
                need,
            });
        }
        let (w, h) = (w as usize, h as usize);
        match f.layout {
            PixelLayout::Yu12 => yu12_to_i420(src, bpl, src_h, w, h, out),
            PixelLayout::Nv12 => nv12_to_i420(src, bpl, src_h, w, h, out),
            PixelLayout::Yuyv => packed_to_i420(src, bpl, 0, w, h, out),
            PixelLayout::Uyvy => packed_to_i420(src, bpl, 1, w, h, out),
            PixelLayout::Mjpeg => {
                let decoder = self.mjpeg.get_or_insert_with(MjpegDecoder::default);
                decoder.decode(src, f.width, f.height, out)?;
            }
        }
        Ok(())
    }
}

/// Splits an I420 buffer of `w x h` (both even) into its planes.
pub fn i420_planes(out: &mut [u8], w: usize, h: usize) -> (&mut [u8], &mut [u8], &mut [u8]) {
    let (y, rest) = out.split_at_mut(w * h);
    let (u, v) = rest.split_at_mut(w / 2 * (h / 2));
    (y, u, v)
}

/// Packed 4:2:2 (YUYV when `y_at` is 0, UYVY when 1): Y copied, chroma of each line pair averaged.
fn packed_to_i420(src: &[u8], bpl: usize, y_at: usize, w: usize, h: usize, out: &mut [u8]) {
    let c_at = 1 - y_at;
    let (y_plane, u_plane, v_plane) = i420_planes(out, w, h);
    for (row, y_row) in y_plane.chunks_exact_mut(w).enumerate() {
        let line = &src[row * bpl..row * bpl + 2 * w];
        for (dst, px) in y_row.iter_mut().zip(line.chunks_exact(2)) {
            *dst = px[y_at];
        }
    }
    let cw = w / 2;
    for (crow, (u_row, v_row)) in u_plane
        .chunks_exact_mut(cw)
        .zip(v_plane.chunks_exact_mut(cw))
        .enumerate()
    {
        let top = &src[2 * crow * bpl..2 * crow * bpl + 2 * w];
        let bottom = &src[(2 * crow + 1) * bpl..(2 * crow + 1) * bpl + 2 * w];
        for (i, (a, b)) in top.chunks_exact(4).zip(bottom.chunks_exact(4)).enumerate() {
            u_row[i] = avg(a[c_at], b[c_at]);
            v_row[i] = avg(a[c_at + 2], b[c_at + 2]);
        }
    }
}

/// NV12: Y copied line by line, the interleaved CbCr plane split in two.
fn nv12_to_i420(src: &[u8], bpl: usize, src_h: usize, w: usize, h: usize, out: &mut [u8]) {
    let (y_plane, u_plane, v_plane) = i420_planes(out, w, h);
    copy_plane(src, bpl, y_plane, w);
    let uv = &src[bpl * src_h..];
    let cw = w / 2;
    for (crow, (u_row, v_row)) in u_plane
        .chunks_exact_mut(cw)
        .zip(v_plane.chunks_exact_mut(cw))
        .enumerate()
    {
        let line = &uv[crow * bpl..crow * bpl + w];
        for (i, pair) in line.chunks_exact(2).enumerate() {
            u_row[i] = pair[0];
            v_row[i] = pair[1];
        }
    }
}

/// YU12: three planes copied line by line (only the strides may differ).
fn yu12_to_i420(src: &[u8], bpl: usize, src_h: usize, w: usize, h: usize, out: &mut [u8]) {
    let (y_plane, u_plane, v_plane) = i420_planes(out, w, h);
    copy_plane(src, bpl, y_plane, w);
    let cbpl = bpl / 2;
    let u_src = &src[bpl * src_h..];
    let v_src = &u_src[cbpl * src_h.div_ceil(2)..];
    copy_plane(u_src, cbpl, u_plane, w / 2);
    copy_plane(v_src, cbpl, v_plane, w / 2);
}

/// Copies `dst.len() / w` lines of `w` bytes from `src` lines `stride` apart.
fn copy_plane(src: &[u8], stride: usize, dst: &mut [u8], w: usize) {
    for (row, d) in dst.chunks_exact_mut(w).enumerate() {
        d.copy_from_slice(&src[row * stride..row * stride + w]);
    }
}

fn avg(a: u8, b: u8) -> u8 {
    (u16::from(a) + u16::from(b)).div_ceil(2) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic picture: every pixel's Y, and every 2x1 pair's Cb and Cr, all different.
    fn y_at(x: usize, y: usize) -> u8 {
        (16 + x * 7 + y * 31) as u8
    }
    fn cb_at(cx: usize, y: usize) -> u8 {
        (40 + cx * 13 + y * 5) as u8
    }
    fn cr_at(cx: usize, y: usize) -> u8 {
        (200 - cx * 11 - y * 3) as u8
    }

    fn check_packed_result(out: &[u8], w: usize, h: usize) {
        let (y, rest) = out.split_at(w * h);
        let (u, v) = rest.split_at(w * h / 4);
        for row in 0..h {
            for x in 0..w {
                assert_eq!(y[row * w + x], y_at(x, row), "Y at {x},{row}");
            }
        }
        for crow in 0..h / 2 {
            for cx in 0..w / 2 {
                let (r0, r1) = (2 * crow, 2 * crow + 1);
                let want_u = avg(cb_at(cx, r0), cb_at(cx, r1));
                let want_v = avg(cr_at(cx, r0), cr_at(cx, r1));
                assert_eq!(u[crow * w / 2 + cx], want_u, "U at {cx},{crow}");
                assert_eq!(v[crow * w / 2 + cx], want_v, "V at {cx},{crow}");
            }
        }
    }

    fn packed(w: usize, h: usize, bpl: usize, uyvy: bool) -> Vec<u8> {
        let mut buf = vec![0xEE; bpl * h];
        for row in 0..h {
            for cx in 0..w / 2 {
                let at = row * bpl + cx * 4;
                let (y0, y1) = (y_at(2 * cx, row), y_at(2 * cx + 1, row));
                let (cb, cr) = (cb_at(cx, row), cr_at(cx, row));
                let px = if uyvy {
                    [cb, y0, cr, y1]
                } else {
                    [y0, cb, y1, cr]
                };
                buf[at..at + 4].copy_from_slice(&px);
            }
        }
        buf
    }

    fn convert(format: SourceFormat, src: &[u8]) -> Vec<u8> {
        let (w, h) = format.out_size();
        let mut out = vec![0; i420_len(w, h)];
        Converter::new(format)
            .convert(src, &mut out)
            .expect("converts");
        out
    }

    #[test]
    fn yuyv_and_uyvy_to_i420_pixel_by_pixel() {
        // 8x6 with padded lines (stride 20 > 16 bytes), as drivers do for alignment.
        let (w, h, bpl) = (8, 6, 20);
        for (layout, uyvy) in [(PixelLayout::Yuyv, false), (PixelLayout::Uyvy, true)] {
            let src = packed(w, h, bpl, uyvy);
            let format = SourceFormat {
                layout,
                width: w as u32,
                height: h as u32,
                bytesperline: bpl as u32,
            };
            check_packed_result(&convert(format, &src), w, h);
        }
    }

    #[test]
    fn nv12_to_i420_pixel_by_pixel() {
        let (w, h, bpl) = (6, 4, 8);
        let mut src = vec![0xEE; bpl * h + bpl * h / 2];
        for row in 0..h {
            for x in 0..w {
                src[row * bpl + x] = y_at(x, row);
            }
        }
        for crow in 0..h / 2 {
            for cx in 0..w / 2 {
                src[bpl * h + crow * bpl + 2 * cx] = cb_at(cx, crow);
                src[bpl * h + crow * bpl + 2 * cx + 1] = cr_at(cx, crow);
            }
        }
        let format = SourceFormat {
            layout: PixelLayout::Nv12,
            width: w as u32,
            height: h as u32,
            bytesperline: bpl as u32,
        };
        let out = convert(format, &src);
        let (y, rest) = out.split_at(w * h);
        let (u, v) = rest.split_at(w * h / 4);
        for row in 0..h {
            for x in 0..w {
                assert_eq!(y[row * w + x], y_at(x, row));
            }
        }
        for crow in 0..h / 2 {
            for cx in 0..w / 2 {
                assert_eq!(u[crow * w / 2 + cx], cb_at(cx, crow));
                assert_eq!(v[crow * w / 2 + cx], cr_at(cx, crow));
            }
        }
    }

    #[test]
    fn yu12_strides_are_dropped() {
        let (w, h, bpl) = (4, 4, 8);
        let cbpl = bpl / 2;
        let mut src = vec![0xEE; bpl * h + 2 * cbpl * h / 2];
        for row in 0..h {
            for x in 0..w {
                src[row * bpl + x] = y_at(x, row);
            }
        }
        let (u0, v0) = (bpl * h, bpl * h + cbpl * h / 2);
        for crow in 0..h / 2 {
            for cx in 0..w / 2 {
                src[u0 + crow * cbpl + cx] = cb_at(cx, crow);
                src[v0 + crow * cbpl + cx] = cr_at(cx, crow);
            }
        }
        let format = SourceFormat {
            layout: PixelLayout::Yu12,
            width: w as u32,
            height: h as u32,
            bytesperline: bpl as u32,
        };
        let out = convert(format, &src);
        let want_y: Vec<u8> = (0..h)
            .flat_map(|r| (0..w).map(move |x| y_at(x, r)))
            .collect();
        let want_u: Vec<u8> = (0..h / 2)
            .flat_map(|r| (0..w / 2).map(move |x| cb_at(x, r)))
            .collect();
        let want_v: Vec<u8> = (0..h / 2)
            .flat_map(|r| (0..w / 2).map(move |x| cr_at(x, r)))
            .collect();
        assert_eq!(out, [want_y, want_u, want_v].concat());
    }

    #[test]
    fn odd_sizes_are_cropped_to_even() {
        // 7x5 YUYV (the driver pads lines to 16 bytes): out is 6x4.
        let (w, h, bpl) = (7, 5, 16);
        let src = packed(8, h, bpl, false);
        let format = SourceFormat {
            layout: PixelLayout::Yuyv,
            width: w,
            height: h as u32,
            bytesperline: bpl as u32,
        };
        assert_eq!(format.out_size(), (6, 4));
        check_packed_result(&convert(format, &src), 6, 4);
    }

    #[test]
    fn short_buffers_are_refused_not_read_past() {
        let format = SourceFormat {
            layout: PixelLayout::Yuyv,
            width: 8,
            height: 4,
            bytesperline: 16,
        };
        let mut out = vec![0; i420_len(8, 4)];
        let err = Converter::new(format)
            .convert(&[0; 63], &mut out)
            .expect_err("short");
        assert!(err.to_string().contains("63 bytes"), "{err}");
    }

    #[test]
    fn fourcc_round_trip() {
        for l in PixelLayout::PREFERRED {
            assert_eq!(PixelLayout::from_fourcc(l.fourcc()), Some(l));
        }
        assert_eq!(PixelLayout::from_fourcc(*b"RGB3"), None);
    }
}
