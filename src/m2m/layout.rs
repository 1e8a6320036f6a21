//! Raw frames in a driver's buffers: the layouts the box can fill and read (its stride and
//! padded rows), and the copies between them and the box's tightly packed I420, in place (no
//! allocation per frame): into an encoder's OUTPUT buffer, out of a decoder's CAPTURE buffer.

use super::FourCc;
use crate::media::frame::VideoFrame;

/// The raw formats the box can fill from its I420 frames (an encoder's OUTPUT queue) and read
/// into them (a decoder's CAPTURE queue) without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawKind {
    /// Planar 4:2:0, U before V: the box's own layout, copied row by row.
    Yu12,
    /// Y plane, then interleaved UV.
    Nv12,
}

impl RawKind {
    pub fn fourcc(self) -> FourCc {
        match self {
            RawKind::Yu12 => FourCc::from_fourcc(b"YU12"),
            RawKind::Nv12 => FourCc::from_fourcc(b"NV12"),
        }
    }
}

/// How one raw frame lies in a buffer, as the driver set the format: drivers round the
/// stride and the allocated rows up (the Pi's to 32 bytes and 16 rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawLayout {
    pub kind: RawKind,
    /// The picture (the crop rectangle when the driver padded the buffer).
    pub width: u32,
    pub height: u32,
    /// Bytes per luma row.
    pub stride: u32,
    /// Luma rows allocated (>= height); chroma starts after them.
    pub rows: u32,
    /// Bytes of one buffer as the driver wants it filled (sizeimage).
    pub size: usize,
}

impl RawLayout {
    /// Bytes the layout needs: luma rows, then chroma (two half planes, or one interleaved).
    pub fn required(&self) -> usize {
        let (stride, rows) = (self.stride as usize, self.rows as usize);
        stride * rows + stride * rows.div_ceil(2)
    }
}

/// Writes `frame` into `dst` laid out as `layout`. Rows below the picture (padding up to
/// `layout.rows`) repeat the last row, so the encoder does not spend bits on garbage there.
/// The caller checks that the frame has the layout's size and `dst` is large enough.
pub fn write_frame(frame: &VideoFrame, layout: &RawLayout, dst: &mut [u8]) {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let (stride, rows) = (layout.stride as usize, layout.rows as usize);
    let (cw, ch, crows) = (w.div_ceil(2), h.div_ceil(2), rows.div_ceil(2));
    let (y, u, v) = frame.planes();
    let (dst_y, dst_c) = dst.split_at_mut(stride * rows);
    copy_plane(y, w, h, dst_y, stride, rows);
    match layout.kind {
        RawKind::Yu12 => {
            let cstride = stride / 2;
            let (dst_u, dst_v) = dst_c.split_at_mut(cstride * crows);
            copy_plane(u, cw, ch, dst_u, cstride, crows);
            copy_plane(v, cw, ch, dst_v, cstride, crows);
        }
        RawKind::Nv12 => {
            for row in 0..crows {
                let src = row.min(ch - 1) * cw;
                let out = &mut dst_c[row * stride..row * stride + 2 * cw];
                for (i, pair) in out.chunks_exact_mut(2).enumerate() {
                    pair[0] = u[src + i];
                    pair[1] = v[src + i];
                }
            }
        }
    }
}

/// Reads the picture out of `src` laid out as `layout` into `dst`, packed I420 of the layout's
/// size (`dst` is resized to fit). The caller checks that `src` is as large as the layout needs.
pub fn read_frame(src: &[u8], layout: &RawLayout, dst: &mut Vec<u8>) {
    let (w, h) = (layout.width as usize, layout.height as usize);
    let (stride, rows) = (layout.stride as usize, layout.rows as usize);
    let (cw, ch, crows) = (w.div_ceil(2), h.div_ceil(2), rows.div_ceil(2));
    dst.resize(w * h + 2 * cw * ch, 0);
    let (y, c) = dst.split_at_mut(w * h);
    let (u, v) = c.split_at_mut(cw * ch);
    let (src_y, src_c) = src.split_at(stride * rows);
    for row in 0..h {
        y[row * w..(row + 1) * w].copy_from_slice(&src_y[row * stride..row * stride + w]);
    }
    match layout.kind {
        RawKind::Yu12 => {
            let cstride = stride / 2;
            let (src_u, src_v) = src_c.split_at(cstride * crows);
            for row in 0..ch {
                let at = row * cstride;
                u[row * cw..(row + 1) * cw].copy_from_slice(&src_u[at..at + cw]);
                v[row * cw..(row + 1) * cw].copy_from_slice(&src_v[at..at + cw]);
            }
        }
        RawKind::Nv12 => {
            for row in 0..ch {
                let pairs = &src_c[row * stride..row * stride + 2 * cw];
                for (i, pair) in pairs.chunks_exact(2).enumerate() {
                    u[row * cw + i] = pair[0];
                    v[row * cw + i] = pair[1];
                }
            }
        }
    }
}

fn copy_plane(src: &[u8], width: usize, height: usize, dst: &mut [u8], stride: usize, rows: usize) {
    for row in 0..rows {
        let from = row.min(height - 1) * width;
        dst[row * stride..row * stride + width].copy_from_slice(&src[from..from + width]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A 4x2 frame whose every sample is distinct: Y 0..8, U 100, 101, V 200, 201.
    fn frame() -> VideoFrame {
        let mut data: Vec<u8> = (0..8).collect();
        data.extend([100, 101, 200, 201]);
        VideoFrame {
            width: 4,
            height: 2,
            data,
            captured_at: Instant::now(),
            pts: Duration::ZERO,
        }
    }

    #[test]
    fn yu12_with_stride_and_padded_rows() {
        let layout = RawLayout {
            kind: RawKind::Yu12,
            width: 4,
            height: 2,
            stride: 8,
            rows: 4,
            size: 48,
        };
        assert_eq!(layout.required(), 48);
        let mut dst = vec![0xee; 48];
        write_frame(&frame(), &layout, &mut dst);
        assert_eq!(&dst[0..4], [0, 1, 2, 3]);
        assert_eq!(&dst[8..12], [4, 5, 6, 7]);
        // Padding rows repeat the last picture row.
        assert_eq!(&dst[16..20], [4, 5, 6, 7]);
        assert_eq!(&dst[24..28], [4, 5, 6, 7]);
        // U: stride 4, 2 rows; V after it.
        assert_eq!(&dst[32..34], [100, 101]);
        assert_eq!(&dst[36..38], [100, 101]);
        assert_eq!(&dst[40..42], [200, 201]);
        assert_eq!(&dst[44..46], [200, 201]);
        // Stride padding is left alone.
        assert_eq!(dst[4], 0xee);
    }

    #[test]
    fn nv12_interleaves_chroma() {
        let layout = RawLayout {
            kind: RawKind::Nv12,
            width: 4,
            height: 2,
            stride: 4,
            rows: 2,
            size: 12,
        };
        let mut dst = vec![0; 12];
        write_frame(&frame(), &layout, &mut dst);
        assert_eq!(dst, [0, 1, 2, 3, 4, 5, 6, 7, 100, 200, 101, 201]);
    }

    #[test]
    fn read_frame_takes_back_what_write_frame_laid_out() {
        for (kind, stride, rows) in [(RawKind::Yu12, 8, 4), (RawKind::Nv12, 6, 2)] {
            let layout = RawLayout {
                kind,
                width: 4,
                height: 2,
                stride,
                rows,
                size: 64,
            };
            let mut buf = vec![0xee; layout.required()];
            write_frame(&frame(), &layout, &mut buf);
            let mut back = vec![1, 2, 3];
            read_frame(&buf, &layout, &mut back);
            assert_eq!(back, frame().data, "{kind:?}");
        }
    }
}
