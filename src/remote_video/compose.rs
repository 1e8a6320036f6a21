//! The call on the HDMI-out display: the remote people's video laid out in a
//! [`MemoryFramebuffer`], each picture with its owner's name, the speaker outlined.
//!
//! What is shown:
//! - one screen share: it fills the display (aspect kept, letterboxed in black); cameras are
//!   left out for now, the room is there to read the shared screen;
//! - several screen shares: all of them in the grid, cameras left out;
//! - no screen share: the cameras in the grid.
//!
//! The grid has `ceil(sqrt(n))` columns and as many rows as needed, cells separated by a small
//! black gap, each picture aspect-kept and centred in its cell.
//!
//! Pictures are scaled by nearest-neighbour sampling straight from I420 into the target
//! rectangle (BT.601 limited range, integer math): the source x of every target column is
//! worked out once per tile, so a row costs a lookup and a conversion per pixel.

use embedded_graphics::mono_font::iso_8859_1::FONT_10X20;
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;

use crate::display::framebuffer::MemoryFramebuffer;
use crate::display::render::GOOD;
use crate::display::text::{truncate, Font};
use crate::media::frame::{i420_len, VideoFrame};
pub use crate::media::VideoKind;
use roombox_scale::convert::i420_to_xrgb_nearest;

/// One remote picture to show.
#[derive(Clone, Copy, Debug)]
pub struct Tile<'a> {
    /// Shown in the tile's name bar (cut with ".." when it does not fit).
    pub name: &'a str,
    /// Screen shares take the display over cameras.
    pub kind: VideoKind,
    /// Outlined in green.
    pub speaking: bool,
    pub frame: &'a VideoFrame,
}

const NAME_TEXT: Rgb888 = Rgb888::WHITE;
/// Shown instead of a frame whose data does not match its size (a bug upstream, not a reason
/// to stop drawing the call).
const BROKEN: Rgb888 = Rgb888::new(0x30, 0x30, 0x30);

/// Draws the call (see the module doc for the layout) over the whole of `out`, clearing it
/// first. Returns false and draws nothing when there are no tiles, so the caller shows the
/// status screen instead.
pub fn compose(tiles: &[Tile], out: &mut MemoryFramebuffer) -> bool {
    if tiles.is_empty() {
        return false;
    }
    let font = font_for(out.height());
    out.pixels_mut().0.fill(0);
    for (tile, cell) in layout(tiles, out.width(), out.height()) {
        draw_tile(out, tile, cell, font);
    }
    true
}

/// The call over a video plane, for a display that scales a picture itself: when exactly one
/// picture is shown (one screen share, or one camera), draws everything else into `out` as
/// premultiplied ARGB8888 (the picture's rectangle transparent, the name bar translucent black
/// as [`compose`] darkens it, the name and the speaker's outline opaque) and returns the
/// picture and where it goes. `None`, drawing nothing, for no picture, a grid or a frame that
/// is not whole: [`compose`] draws those.
pub fn compose_overlay<'a>(
    tiles: &[Tile<'a>],
    out: &mut MemoryFramebuffer,
) -> Option<(&'a VideoFrame, Rect)> {
    let (tile, g, font) = lone(tiles, out.width(), out.height())?;
    let Ok(()) = out.clear(Rgb888::BLACK);
    fill_bytes(out, g.pic, [0; 4]);
    if let Some((r, text)) = &g.bar {
        fill_bytes(out, *r, [0, 0, 0, 0xff - darken(0xff)]);
        let Ok(()) = font.draw(out, text, g.text_at(*r), NAME_TEXT);
    }
    if tile.speaking {
        outline(out, g.pic, g.border);
    }
    Some((tile.frame, g.pic))
}

/// The one picture [`compose_overlay`] leaves to a video plane on a `w` x `h` display, and
/// where it goes, without drawing anything.
pub fn lone_picture<'a>(tiles: &[Tile<'a>], w: u32, h: u32) -> Option<(&'a VideoFrame, Rect)> {
    lone(tiles, w, h).map(|(t, g, _)| (t.frame, g.pic))
}

fn lone<'a>(tiles: &[Tile<'a>], w: u32, h: u32) -> Option<(Tile<'a>, TileGeometry, Font)> {
    let [(tile, cell)] = layout(tiles, w, h)[..] else {
        return None;
    };
    let font = font_for(h);
    let g = TileGeometry::of(tile, cell, font)?;
    g.valid.then_some((*tile, g, font))
}

/// The tiles shown and their cells on a `w` x `h` display (see the module doc).
fn layout<'t, 'a>(tiles: &'t [Tile<'a>], w: u32, h: u32) -> Vec<(&'t Tile<'a>, Rect)> {
    let screens: Vec<&Tile> = tiles
        .iter()
        .filter(|t| t.kind == VideoKind::Screen)
        .collect();
    let shown: Vec<&Tile> = if screens.is_empty() {
        tiles.iter().collect()
    } else {
        screens
    };
    if let [only] = shown[..] {
        if only.kind == VideoKind::Screen {
            return vec![(only, Rect::new(0, 0, w, h))];
        }
    }
    let cells = grid(shown.len(), w, h);
    shown.into_iter().zip(cells).collect()
}

/// Text grows with the display: 1x up to 720 lines, 2x at 1440.
fn font_for(height: u32) -> Font {
    Font::new(&FONT_10X20, (height / 720).max(1))
}

/// How big each tile is drawn on a `w` x `h` display, in the order given: the cell it fits
/// in, or `None` for one left out (a camera beside a screen share). What the box asks each
/// sender for.
pub fn tile_sizes(kinds: &[VideoKind], w: u32, h: u32) -> Vec<Option<(u32, u32)>> {
    let any_screen = kinds.contains(&VideoKind::Screen);
    let shown = |k: &VideoKind| !any_screen || *k == VideoKind::Screen;
    let n = kinds.iter().filter(|k| shown(k)).count();
    let cell = match n {
        0 => return vec![None; kinds.len()],
        1 if any_screen => (w, h),
        _ => {
            let c = grid(n, w, h)[0];
            (c.w, c.h)
        }
    };
    kinds.iter().map(|k| shown(k).then_some(cell)).collect()
}

/// A rectangle of target pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Rect {
    pub fn new(x: u32, y: u32, w: u32, h: u32) -> Self {
        Self { x, y, w, h }
    }

    fn eg(self) -> Rectangle {
        Rectangle::new(
            Point::new(self.x as i32, self.y as i32),
            Size::new(self.w, self.h),
        )
    }
}

/// The cells of `n` tiles on a `w` x `h` display, row by row.
fn grid(n: usize, w: u32, h: u32) -> Vec<Rect> {
    let n = n.max(1) as u32;
    let cols = n.isqrt() + u32::from(n.isqrt().pow(2) < n);
    let rows = n.div_ceil(cols);
    let gap = (w.min(h) / 90).max(2);
    let cw = w.saturating_sub(gap * (cols + 1)) / cols;
    let ch = h.saturating_sub(gap * (rows + 1)) / rows;
    (0..n)
        .map(|i| {
            let (c, r) = (i % cols, i / cols);
            Rect::new(gap + c * (cw + gap), gap + r * (ch + gap), cw, ch)
        })
        .collect()
}

/// The largest rectangle of the source's aspect ratio centred in `cell`.
fn fit(src_w: u32, src_h: u32, cell: Rect) -> Rect {
    let (sw, sh) = (u64::from(src_w.max(1)), u64::from(src_h.max(1)));
    let (cw, ch) = (u64::from(cell.w), u64::from(cell.h));
    let (w, h) = if sw * ch >= sh * cw {
        (cw, (sh * cw + sw / 2) / sw)
    } else {
        ((sw * ch + sh / 2) / sh, ch)
    };
    let (w, h) = (w.clamp(1, cw.max(1)) as u32, h.clamp(1, ch.max(1)) as u32);
    Rect::new(cell.x + (cell.w - w) / 2, cell.y + (cell.h - h) / 2, w, h)
}

/// Where a tile's parts go in its cell.
struct TileGeometry {
    /// The picture (the whole cell, grey, for a frame that is not whole).
    pic: Rect,
    bar: Option<(Rect, String)>,
    /// The frame's data matches its size.
    valid: bool,
    /// The speaking outline's width.
    border: u32,
    pad: u32,
}

impl TileGeometry {
    /// `None` for an empty cell.
    fn of(tile: &Tile, cell: Rect, font: Font) -> Option<Self> {
        if cell.w == 0 || cell.h == 0 {
            return None;
        }
        let frame = tile.frame;
        let valid = frame.width > 0
            && frame.height > 0
            && frame.data.len() >= i420_len(frame.width, frame.height);
        let pic = if valid {
            fit(frame.width, frame.height, cell)
        } else {
            cell
        };
        let s = font.scale;
        let border = 3 * s;
        let margin = border + 5 * s;
        let pad = 4 * s;
        let bar = name_bar(tile.name, pic, font, margin, pad);
        Some(TileGeometry {
            pic,
            bar,
            valid,
            border,
            pad,
        })
    }

    fn text_at(&self, bar: Rect) -> Point {
        Point::new((bar.x + 2 * self.pad) as i32, (bar.y + self.pad) as i32)
    }
}

fn draw_tile(out: &mut MemoryFramebuffer, tile: &Tile, cell: Rect, font: Font) {
    let Some(g) = TileGeometry::of(tile, cell, font) else {
        return;
    };
    if g.valid {
        blit(out, tile.frame, g.pic, g.bar.as_ref().map(|(r, _)| *r));
    } else {
        let Ok(()) = out.fill_solid(&g.pic.eg(), BROKEN);
    }
    if let Some((r, text)) = &g.bar {
        let Ok(()) = font.draw(out, text, g.text_at(*r), NAME_TEXT);
    }
    if tile.speaking {
        outline(out, g.pic, g.border);
    }
}

/// Sets every pixel of `r` to these bytes (B, G, R, A as stored).
fn fill_bytes(out: &mut MemoryFramebuffer, r: Rect, px: [u8; 4]) {
    let (pixels, stride) = out.pixels_mut();
    for y in r.y..r.y + r.h {
        let row = &mut pixels[y as usize * stride + r.x as usize * 4..][..r.w as usize * 4];
        for p in row.chunks_exact_mut(4) {
            p.copy_from_slice(&px);
        }
    }
}

/// The name bar's rectangle at the picture's bottom-left and the text that fits in it; none
/// when the name is empty or the picture too small to carry it.
fn name_bar(name: &str, pic: Rect, font: Font, margin: u32, pad: u32) -> Option<(Rect, String)> {
    let bar_h = font.line_height() + 2 * pad;
    if name.is_empty() || pic.h < 3 * bar_h + margin {
        return None;
    }
    let room = pic.w.checked_sub(2 * margin + 4 * pad)?;
    let text = truncate(name, font.chars_in(room));
    if text.is_empty() {
        return None;
    }
    let bar_w = font.width_of(&text) + 4 * pad;
    let r = Rect::new(pic.x + margin, pic.y + pic.h - margin - bar_h, bar_w, bar_h);
    Some((r, text))
}

fn outline(out: &mut MemoryFramebuffer, r: Rect, t: u32) {
    let t = t.min(r.w / 2).min(r.h / 2).max(1);
    for side in [
        Rect::new(r.x, r.y, r.w, t),
        Rect::new(r.x, r.y + r.h - t, r.w, t),
        Rect::new(r.x, r.y, t, r.h),
        Rect::new(r.x + r.w - t, r.y, t, r.h),
    ] {
        let Ok(()) = out.fill_solid(&side.eg(), GOOD);
    }
}

/// Scales `frame` into `dst` (roombox_scale, optimized even in debug builds), then darkens
/// the pixels under `dim` (the name bar, translucent: the picture shows through it). The
/// source pixel of a target pixel is the one under its centre.
fn blit(out: &mut MemoryFramebuffer, frame: &VideoFrame, dst: Rect, dim: Option<Rect>) {
    let (pixels, stride) = out.pixels_mut();
    i420_to_xrgb_nearest(
        &frame.data,
        frame.width,
        frame.height,
        pixels,
        stride,
        (dst.x, dst.y, dst.w, dst.h),
    );
    if let Some(b) = dim {
        for y in b.y..b.y + b.h {
            let row = &mut pixels[y as usize * stride + b.x as usize * 4..][..b.w as usize * 4];
            for px in row.chunks_exact_mut(4) {
                for c in &mut px[..3] {
                    *c = darken(*c);
                }
            }
        }
    }
}

/// Black at 60 % over the picture.
fn darken(c: u8) -> u8 {
    (u16::from(c) * 2 / 5) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A solid I420 frame of an RGB colour (BT.601 limited range).
    fn solid(width: u32, height: u32, rgb: (u8, u8, u8)) -> VideoFrame {
        let (r, g, b) = (i32::from(rgb.0), i32::from(rgb.1), i32::from(rgb.2));
        let y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
        let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
        let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
        let luma = (width * height) as usize;
        let mut data = vec![y as u8; i420_len(width, height)];
        let c = (data.len() - luma) / 2;
        data[luma..luma + c].fill(u as u8);
        data[luma + c..].fill(v as u8);
        VideoFrame {
            width,
            height,
            data,
            captured_at: Instant::now(),
            pts: Duration::ZERO,
        }
    }

    fn near(c: Rgb888, rgb: (u8, u8, u8)) -> bool {
        c.r().abs_diff(rgb.0) <= 4 && c.g().abs_diff(rgb.1) <= 4 && c.b().abs_diff(rgb.2) <= 4
    }

    const RED: (u8, u8, u8) = (255, 0, 0);
    const BLUE: (u8, u8, u8) = (0, 0, 255);

    fn tile<'a>(name: &'a str, kind: VideoKind, frame: &'a VideoFrame) -> Tile<'a> {
        Tile {
            name,
            kind,
            speaking: false,
            frame,
        }
    }

    fn white_pixels(
        fb: &MemoryFramebuffer,
        xs: std::ops::Range<u32>,
        ys: std::ops::Range<u32>,
    ) -> usize {
        ys.flat_map(|y| xs.clone().map(move |x| (x, y)))
            .filter(|&(x, y)| fb.pixel(x, y) == Rgb888::WHITE)
            .count()
    }

    #[test]
    fn no_tiles_draws_nothing_and_says_so() {
        let mut fb = MemoryFramebuffer::new(64, 36);
        let Ok(()) = fb.clear(Rgb888::BLUE);
        assert!(!compose(&[], &mut fb));
        assert_eq!(fb.pixel(10, 10), Rgb888::BLUE);
    }

    #[test]
    fn a_screen_share_of_the_same_aspect_fills_the_display() {
        let frame = solid(320, 180, RED);
        let mut fb = MemoryFramebuffer::new(1280, 720);
        assert!(compose(
            &[tile("Alice", VideoKind::Screen, &frame)],
            &mut fb
        ));
        for (x, y) in [(640, 360), (0, 0), (1279, 0), (0, 719), (1279, 719)] {
            assert!(
                near(fb.pixel(x, y), RED),
                "({x}, {y}): {:?}",
                fb.pixel(x, y)
            );
        }
        // The name in white on a darkened bar at the bottom-left.
        assert!(white_pixels(&fb, 0..400, 600..720) > 20);
        assert!(fb.pixel(12, 705).r() < 160, "{:?}", fb.pixel(12, 705));
    }

    #[test]
    fn a_four_by_three_screen_share_is_letterboxed_in_black() {
        let frame = solid(320, 240, BLUE);
        let mut fb = MemoryFramebuffer::new(1280, 720);
        assert!(compose(&[tile("Bob", VideoKind::Screen, &frame)], &mut fb));
        // 960 wide, centred: 160 black columns each side.
        assert_eq!(fb.pixel(0, 360), Rgb888::BLACK);
        assert_eq!(fb.pixel(159, 100), Rgb888::BLACK);
        assert_eq!(fb.pixel(1279, 360), Rgb888::BLACK);
        assert!(near(fb.pixel(640, 360), BLUE));
        assert!(near(fb.pixel(160, 0), BLUE));
        assert!(near(fb.pixel(1119, 0), BLUE));
    }

    #[test]
    fn a_screen_share_takes_the_display_over_cameras() {
        let screen = solid(320, 180, RED);
        let cam = solid(320, 180, BLUE);
        let mut fb = MemoryFramebuffer::new(640, 360);
        let tiles = [
            tile("Cam", VideoKind::Camera, &cam),
            tile("Screen", VideoKind::Screen, &screen),
        ];
        assert!(compose(&tiles, &mut fb));
        assert!(near(fb.pixel(160, 180), RED));
        assert!(near(fb.pixel(480, 180), RED));
    }

    #[test]
    fn two_cameras_sit_side_by_side_with_their_names() {
        let left = solid(320, 180, RED);
        let right = solid(320, 180, BLUE);
        let mut fb = MemoryFramebuffer::new(1280, 720);
        let tiles = [
            tile("Alice", VideoKind::Camera, &left),
            tile("Bob", VideoKind::Camera, &right),
        ];
        assert!(compose(&tiles, &mut fb));
        assert!(near(fb.pixel(320, 360), RED));
        assert!(near(fb.pixel(960, 360), BLUE));
        // A black gap between them, and above and below the 16:9 pictures.
        assert_eq!(fb.pixel(640, 360), Rgb888::BLACK);
        assert_eq!(fb.pixel(320, 100), Rgb888::BLACK);
        // Each name in the bottom-left quarter of its own tile (the pictures span y 183..536).
        assert!(white_pixels(&fb, 0..320, 440..540) > 20);
        assert!(white_pixels(&fb, 640..960, 440..540) > 20);
        assert_eq!(white_pixels(&fb, 320..640, 0..720), 0);
        assert_eq!(white_pixels(&fb, 960..1280, 0..720), 0);
    }

    #[test]
    fn two_screen_shares_share_the_grid() {
        let a = solid(320, 180, RED);
        let b = solid(320, 180, BLUE);
        let cam = solid(320, 180, (0, 255, 0));
        let mut fb = MemoryFramebuffer::new(1280, 720);
        let tiles = [
            tile("A", VideoKind::Screen, &a),
            tile("Cam", VideoKind::Camera, &cam),
            tile("B", VideoKind::Screen, &b),
        ];
        assert!(compose(&tiles, &mut fb));
        assert!(near(fb.pixel(320, 360), RED));
        assert!(near(fb.pixel(960, 360), BLUE));
    }

    #[test]
    fn a_speaking_tile_is_outlined_in_green() {
        let frame = solid(320, 180, BLUE);
        let mut quiet_fb = MemoryFramebuffer::new(1280, 720);
        let mut speaking_fb = MemoryFramebuffer::new(1280, 720);
        let quiet = tile("Alice", VideoKind::Camera, &frame);
        let speaking = Tile {
            speaking: true,
            ..quiet
        };
        assert!(compose(&[quiet], &mut quiet_fb));
        assert!(compose(&[speaking], &mut speaking_fb));
        // The first picture pixel from the left on the middle row, and from the top on the
        // middle column.
        let first_lit = |fb: &MemoryFramebuffer, along_x: bool| {
            (0..720)
                .map(|i| {
                    if along_x {
                        fb.pixel(i, 360)
                    } else {
                        fb.pixel(640, i)
                    }
                })
                .find(|&c| c != Rgb888::BLACK)
                .expect("a lit pixel")
        };
        for along_x in [true, false] {
            assert_eq!(first_lit(&speaking_fb, along_x), GOOD);
            assert!(near(first_lit(&quiet_fb, along_x), BLUE));
        }
        assert!(near(speaking_fb.pixel(640, 360), BLUE));
    }

    /// The stored bytes (B, G, R, A) of a pixel.
    fn argb(fb: &MemoryFramebuffer, x: u32, y: u32) -> [u8; 4] {
        let i = y as usize * fb.stride() + x as usize * 4;
        fb.data()[i..i + 4].try_into().unwrap()
    }

    #[test]
    fn the_overlay_leaves_a_hole_where_compose_draws_the_picture() {
        let frame = solid(320, 240, BLUE);
        let share = Tile {
            speaking: true,
            ..tile("Bob", VideoKind::Screen, &frame)
        };
        let mut cpu = MemoryFramebuffer::new(1280, 720);
        let mut over = MemoryFramebuffer::new(1280, 720);
        assert!(compose(&[share], &mut cpu));
        let (shown, at) = compose_overlay(&[share], &mut over).expect("one picture");
        assert!(std::ptr::eq(shown, &frame));
        // 4:3 in 16:9: 960 wide, centred, as compose draws it.
        assert_eq!(at, Rect::new(160, 0, 960, 720));
        assert_eq!(lone_picture(&[share], 1280, 720).map(|(_, r)| r), Some(at));
        for (x, y) in [(170, 10), (640, 360), (1109, 709)] {
            assert!(near(cpu.pixel(x, y), BLUE));
            assert_eq!(argb(&over, x, y), [0; 4], "({x}, {y}) see-through");
        }
        // Letterbox: opaque black in both.
        assert_eq!(argb(&over, 100, 360), [0, 0, 0, 0xff]);
        assert_eq!(cpu.pixel(100, 360), Rgb888::BLACK);
        // The speaker's outline: opaque green at the picture's edge, in both.
        assert_eq!(cpu.pixel(160, 360), GOOD);
        assert_eq!(over.pixel(160, 360), GOOD);
        assert_eq!(argb(&over, 160, 360)[3], 0xff);
        // The name bar darkens the picture by the same 60 %: black at alpha 153, and its
        // text is opaque white.
        let bar: Vec<(u32, u32)> = (560..720)
            .flat_map(|y| (160..700).map(move |x| (x, y)))
            .filter(|&(x, y)| argb(&over, x, y) == [0, 0, 0, 153])
            .collect();
        assert!(bar.len() > 1000, "{} bar pixels", bar.len());
        let (x, y) = bar[bar.len() / 2];
        let blue = cpu.pixel(x, y).b();
        assert!(
            blue.abs_diff(darken(BLUE.2 - 1)) <= 4,
            "{blue} under the bar"
        );
        assert!(white_pixels(&over, 160..700, 560..720) > 20);
        assert_eq!(
            white_pixels(&over, 160..700, 560..720),
            white_pixels(&cpu, 160..700, 560..720)
        );
    }

    #[test]
    fn grids_and_broken_frames_are_left_to_compose() {
        let a = solid(320, 180, RED);
        let b = solid(320, 180, BLUE);
        let mut over = MemoryFramebuffer::new(640, 360);
        let Ok(()) = over.clear(Rgb888::RED);
        let two = [
            tile("A", VideoKind::Camera, &a),
            tile("B", VideoKind::Camera, &b),
        ];
        assert!(compose_overlay(&two, &mut over).is_none());
        assert!(compose_overlay(&[], &mut over).is_none());
        let broken = VideoFrame {
            data: vec![0; 10],
            ..solid(64, 64, RED)
        };
        assert!(compose_overlay(&[tile("X", VideoKind::Screen, &broken)], &mut over).is_none());
        assert_eq!(over.pixel(10, 10), Rgb888::RED, "nothing drawn");
        // One camera among cameras is a grid of one: its cell, with the grid's gap.
        let (_, at) = compose_overlay(&[two[0]], &mut over).expect("a lone camera");
        assert!(at.x > 0 && at.y > 0 && at.x + at.w < 640, "{at:?}");
        // A share among cameras fills the display alone.
        let share = tile("S", VideoKind::Screen, &a);
        assert_eq!(
            lone_picture(&[two[0], share, two[1]], 640, 360).map(|(_, r)| r),
            Some(Rect::new(0, 0, 640, 360))
        );
    }

    #[test]
    fn tile_sizes_follow_the_layout() {
        use VideoKind::{Camera, Screen};
        assert_eq!(tile_sizes(&[Screen], 1920, 1080), [Some((1920, 1080))]);
        // A share hides the cameras.
        assert_eq!(
            tile_sizes(&[Camera, Screen, Camera], 1920, 1080),
            [None, Some((1920, 1080)), None]
        );
        // Two cameras: half the width each, less the gaps (12 px on 1080 lines).
        assert_eq!(
            tile_sizes(&[Camera, Camera], 1920, 1080),
            [Some((942, 1056)); 2]
        );
        // Five: three columns, two rows.
        let five = tile_sizes(&[Camera; 5], 1920, 1080);
        assert!(five.iter().all(|s| *s == Some((624, 522))), "{five:?}");
        assert!(tile_sizes(&[], 1920, 1080).is_empty());
    }

    #[test]
    fn grid_columns_are_the_ceiling_of_the_square_root() {
        let cols = |n: usize| {
            let cells = grid(n, 1000, 1000);
            cells.iter().filter(|c| c.y == cells[0].y).count()
        };
        assert_eq!([1, 2, 3, 4, 5, 9, 10].map(cols), [1, 2, 2, 2, 3, 3, 4]);
        let cells = grid(5, 1000, 1000);
        assert!(cells
            .windows(2)
            .all(|p| p[0].x + p[0].w < p[1].x || p[1].y > p[0].y));
        assert!(cells.iter().all(|c| c.x + c.w <= 1000 && c.y + c.h <= 1000));
    }

    #[test]
    fn odd_sized_and_broken_frames_are_drawn_without_panicking() {
        let odd = solid(33, 17, RED);
        let broken = VideoFrame {
            data: vec![0; 10],
            ..solid(64, 64, RED)
        };
        let mut fb = MemoryFramebuffer::new(201, 99);
        let tiles = [
            tile("Odd", VideoKind::Camera, &odd),
            tile("Broken", VideoKind::Camera, &broken),
            tile("", VideoKind::Camera, &odd),
        ];
        assert!(compose(&tiles, &mut fb));
        let mut tiny = MemoryFramebuffer::new(3, 2);
        assert!(compose(&tiles, &mut tiny));
    }
}
