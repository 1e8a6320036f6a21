//! I420 to and from XRGB8888 (the display's format), BT.601 limited range in integer math.
//! Here rather than in the box so debug builds run them optimized: a 720p picture goes
//! through each once a frame while a call is on the room's display.

/// Draws `src` (I420, `src_w` x `src_h`) scaled by nearest neighbour into the `w` x `h`
/// rectangle at (`x`, `y`) of `dst`, XRGB8888 rows of `stride` bytes (bytes B, G, R, X). The
/// source pixel of a target pixel is the one under its centre. The rectangle must lie inside
/// `dst`, and `src` must hold the whole picture.
#[allow(clippy::too_many_arguments)]
pub fn i420_to_xrgb_nearest(
    src: &[u8],
    src_w: u32,
    src_h: u32,
    dst: &mut [u8],
    stride: usize,
    (x, y, w, h): (u32, u32, u32, u32),
) {
    let (sw, sh) = (src_w as usize, src_h as usize);
    let (dw, dh) = (w as usize, h as usize);
    if sw == 0 || sh == 0 || dw == 0 || dh == 0 {
        return;
    }
    let cw = sw.div_ceil(2);
    let ch = sh.div_ceil(2);
    let (y_plane, chroma) = src.split_at(sw * sh);
    let (u_plane, v_plane) = chroma.split_at(cw * ch);
    let xs: Vec<usize> = (0..dw).map(|dx| ((2 * dx + 1) * sw) / (2 * dw)).collect();
    for dy in 0..dh {
        let sy = ((2 * dy + 1) * sh) / (2 * dh);
        let y_row = &y_plane[sy * sw..][..sw];
        let u_row = &u_plane[sy / 2 * cw..][..cw];
        let v_row = &v_plane[sy / 2 * cw..][..cw];
        let row = &mut dst[(y as usize + dy) * stride + x as usize * 4..][..dw * 4];
        for (px, &sx) in row.chunks_exact_mut(4).zip(&xs) {
            let (r, g, b) = yuv_to_rgb(y_row[sx], u_row[sx / 2], v_row[sx / 2]);
            px.copy_from_slice(&[b, g, r, 0]);
        }
    }
}

/// BT.601 limited range to RGB (8 fractional bits).
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> (u8, u8, u8) {
    let c = 298 * (i32::from(y) - 16);
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let clip = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
    (
        clip(c + 409 * e),
        clip(c - 100 * d - 208 * e),
        clip(c + 516 * d),
    )
}

/// XRGB8888 rows of `stride` bytes (bytes B, G, R, X) to I420 in `out` (exactly `i420_len`
/// bytes of `w` x `h`); chroma is the average of each 2x2 block, cut at odd edges.
pub fn xrgb_to_i420(src: &[u8], stride: usize, w: usize, h: usize, out: &mut [u8]) {
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let (y_plane, chroma) = out.split_at_mut(w * h);
    let (u_plane, v_plane) = chroma.split_at_mut(cw * ch);
    let rgb = |x: usize, y: usize| {
        let p = &src[y * stride + x * 4..][..3];
        (i32::from(p[2]), i32::from(p[1]), i32::from(p[0]))
    };
    for y in 0..h {
        for x in 0..w {
            let (r, g, b) = rgb(x, y);
            y_plane[y * w + x] = (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16) as u8;
        }
    }
    for cy in 0..ch {
        for cx in 0..cw {
            let (mut r, mut g, mut b, mut n) = (0, 0, 0, 0);
            for y in 2 * cy..(2 * cy + 2).min(h) {
                for x in 2 * cx..(2 * cx + 2).min(w) {
                    let p = rgb(x, y);
                    (r, g, b, n) = (r + p.0, g + p.1, b + p.2, n + 1);
                }
            }
            let (r, g, b) = ((r + n / 2) / n, (g + n / 2) / n, (b + n / 2) / n);
            u_plane[cy * cw + cx] = (((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128) as u8;
            v_plane[cy * cw + cx] = (((112 * r - 94 * g - 18 * b + 128) >> 8) + 128) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i420_len;

    #[test]
    fn a_colour_survives_the_round_trip() {
        let (w, h) = (6usize, 4usize);
        let mut xrgb = vec![0u8; w * h * 4];
        for px in xrgb.chunks_exact_mut(4) {
            px.copy_from_slice(&[0x20, 0xc0, 0xf0, 0]); // B, G, R
        }
        let mut yuv = vec![0u8; i420_len(w as u32, h as u32)];
        xrgb_to_i420(&xrgb, w * 4, w, h, &mut yuv);
        let mut back = vec![0u8; 8 * 8 * 4];
        i420_to_xrgb_nearest(&yuv, w as u32, h as u32, &mut back, 8 * 4, (2, 2, 4, 4));
        let px = &back[(3 * 8 + 3) * 4..][..4];
        for (got, want) in px[..3].iter().zip([0x20u8, 0xc0, 0xf0]) {
            assert!(got.abs_diff(want) <= 3, "{px:?}");
        }
        assert_eq!(&back[..4], &[0, 0, 0, 0], "outside the rectangle untouched");
    }
}
