//! Copies the box's tightly packed I420 frames into a driver's raw buffer layout (its stride and
//! padded rows), in place: no allocation per frame.

use super::device::{RawKind, RawLayout};
use crate::media::frame::VideoFrame;

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
}
