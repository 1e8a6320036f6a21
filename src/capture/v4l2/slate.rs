//! The "no signal" slate viewers see instead of the HDMI picture: the box's name and the reason,
//! drawn with the status screen's fonts straight into an I420 frame. Built once per (size,
//! reason) and copied into each frame after that.

use super::signal::NoPicture;
use crate::display::text::{truncate, Font};
use crate::media::frame::i420_len;
use embedded_graphics::mono_font::iso_8859_1::FONT_10X20;
use embedded_graphics::pixelcolor::{Rgb888, RgbColor};
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use std::convert::Infallible;

const BACKGROUND: Rgb888 = Rgb888::new(0x12, 0x16, 0x20);
const NAME: Rgb888 = Rgb888::new(0xf2, 0xf4, 0xf8);
const REASON: Rgb888 = Rgb888::new(0xf0, 0xb4, 0x28);

/// The last slate drawn; a new one only when the size or the reason changes.
#[derive(Default)]
pub struct SlateCache {
    key: Option<(u32, u32, NoPicture)>,
    i420: Vec<u8>,
}

impl SlateCache {
    /// The slate for `box_name` at `width x height` (even) with `reason`, as I420.
    pub fn get(&mut self, width: u32, height: u32, box_name: &str, reason: NoPicture) -> &[u8] {
        let key = (width, height, reason);
        if self.key != Some(key) {
            self.i420 = render(width, height, box_name, reason);
            self.key = Some(key);
        }
        &self.i420
    }
}

/// Draws the slate: the box's name large in the middle, the reason below it.
pub fn render(width: u32, height: u32, box_name: &str, reason: NoPicture) -> Vec<u8> {
    let mut canvas = I420Canvas::new(width, height);
    let _ = canvas.clear(BACKGROUND);
    let name = if box_name.trim().is_empty() {
        "roombox"
    } else {
        box_name.trim()
    };
    // 10x20 glyphs scaled so the name is about a tenth of the height and the reason a twentieth.
    let big = Font::new(&FONT_10X20, height / 216);
    let small = Font::new(&FONT_10X20, height / 432);
    let margin = width / 20;
    let lines = [
        (truncate(name, big.chars_in(width - 2 * margin)), big, NAME),
        (
            truncate(reason.text(), small.chars_in(width - 2 * margin)),
            small,
            REASON,
        ),
    ];
    let gap = big.line_height() / 2;
    let total = big.line_height() + gap + small.line_height();
    let mut y = height.saturating_sub(total) / 2;
    for (text, font, colour) in &lines {
        let x = width.saturating_sub(font.width_of(text)) / 2;
        let _ = font.draw(&mut canvas, text, Point::new(x as i32, y as i32), *colour);
        y += font.line_height() + gap;
    }
    canvas.data
}

/// An I420 frame as an embedded-graphics target. A chroma sample takes the colour of the last
/// pixel drawn in its 2x2 block; with solid text on a solid background that is exact enough.
struct I420Canvas {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

impl I420Canvas {
    fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            data: vec![0; i420_len(width, height)],
        }
    }

    fn put(&mut self, x: u32, y: u32, (ly, cb, cr): (u8, u8, u8)) {
        let (w, h) = (self.width as usize, self.height as usize);
        let (x, y) = (x as usize, y as usize);
        let cw = w.div_ceil(2);
        let c = w * h + (y / 2) * cw + x / 2;
        self.data[y * w + x] = ly;
        self.data[c] = cb;
        self.data[c + cw * h.div_ceil(2)] = cr;
    }
}

/// BT.709 limited range, as the encoder expects.
pub fn rgb_to_yuv(c: Rgb888) -> (u8, u8, u8) {
    let (r, g, b) = (f32::from(c.r()), f32::from(c.g()), f32::from(c.b()));
    let y = 16.0 + (0.2126 * r + 0.7152 * g + 0.0722 * b) * 219.0 / 255.0;
    let cb = 128.0 + (-0.1146 * r - 0.3854 * g + 0.5 * b) * 224.0 / 255.0;
    let cr = 128.0 + (0.5 * r - 0.4542 * g - 0.0458 * b) * 224.0 / 255.0;
    (y.round() as u8, cb.round() as u8, cr.round() as u8)
}

impl OriginDimensions for I420Canvas {
    fn size(&self) -> Size {
        Size::new(self.width, self.height)
    }
}

impl DrawTarget for I420Canvas {
    type Color = Rgb888;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Infallible>
    where
        I: IntoIterator<Item = Pixel<Rgb888>>,
    {
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && (p.x as u32) < self.width && (p.y as u32) < self.height {
                self.put(p.x as u32, p.y as u32, rgb_to_yuv(c));
            }
        }
        Ok(())
    }

    // Row slices at a time: the background and every scaled glyph pixel are rectangles.
    fn fill_solid(&mut self, area: &Rectangle, colour: Rgb888) -> Result<(), Infallible> {
        let area = area.intersection(&self.bounding_box());
        let Some(br) = area.bottom_right() else {
            return Ok(());
        };
        let (ly, cb, cr) = rgb_to_yuv(colour);
        let (w, h) = (self.width as usize, self.height as usize);
        let (x0, x1) = (area.top_left.x as usize, br.x as usize + 1);
        let (y0, y1) = (area.top_left.y as usize, br.y as usize + 1);
        for row in y0..y1 {
            self.data[row * w + x0..row * w + x1].fill(ly);
        }
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let (u, v) = self.data[w * h..].split_at_mut(cw * ch);
        for crow in y0 / 2..y1.div_ceil(2) {
            let line = crow * cw;
            u[line + x0 / 2..line + x1.div_ceil(2)].fill(cb);
            v[line + x0 / 2..line + x1.div_ceil(2)].fill(cr);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn luma(frame: &[u8], w: u32, x: u32, y: u32) -> u8 {
        frame[(y * w + x) as usize]
    }

    #[test]
    fn slate_is_the_right_size_with_text_where_the_text_is() {
        let (w, h) = (1280, 720);
        let frame = render(w, h, "Board Room", NoPicture::NoSignal);
        assert_eq!(frame.len(), i420_len(w, h));
        let bg = rgb_to_yuv(BACKGROUND).0;
        // Corners are background.
        for (x, y) in [(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)] {
            assert_eq!(luma(&frame, w, x, y), bg, "corner {x},{y}");
        }
        // The name's band (middle of the frame) has bright text pixels; the band above is flat.
        let big = Font::new(&FONT_10X20, h / 216);
        let small = Font::new(&FONT_10X20, h / 432);
        let total = big.line_height() * 3 / 2 + small.line_height();
        let top = (h - total) / 2;
        let row_range = |y0: u32, y1: u32| (y0..y1).flat_map(move |y| (0..w).map(move |x| (x, y)));
        let bright = |y0, y1| {
            row_range(y0, y1)
                .filter(|&(x, y)| luma(&frame, w, x, y) > 200)
                .count()
        };
        let name_px = bright(top, top + big.line_height());
        assert!(name_px > 1000, "name pixels: {name_px}");
        assert_eq!(bright(0, top), 0, "nothing above the text");
        // The reason is amber: its band has pixels of the amber's chroma.
        let reason_top = top + big.line_height() * 3 / 2;
        let amber = rgb_to_yuv(REASON);
        let reason_px = row_range(reason_top, reason_top + small.line_height())
            .filter(|&(x, y)| luma(&frame, w, x, y) == amber.0)
            .count();
        assert!(reason_px > 300, "reason pixels: {reason_px}");
        // The name is centred: as many text columns left of the middle as right of it (+-1 glyph).
        let cols: Vec<u32> = (0..w)
            .filter(|&x| (top..top + big.line_height()).any(|y| luma(&frame, w, x, y) > 200))
            .collect();
        let (first, last) = (cols[0], *cols.last().expect("text columns"));
        assert!(
            (i64::from(first) - i64::from(w - 1 - last)).abs() <= i64::from(big.char_width()),
            "{first}..{last}"
        );
    }

    #[test]
    fn reasons_and_names_change_the_picture() {
        let a = render(640, 360, "Board Room", NoPicture::NoSignal);
        let b = render(640, 360, "Board Room", NoPicture::NoLock);
        let c = render(640, 360, "Lab", NoPicture::NoSignal);
        assert_ne!(a, b);
        assert_ne!(a, c);
        // Small frames still get legible (scale 1) text, and a long name is cut, not overflowed.
        let tiny = render(
            192,
            108,
            &"Very Long Room Name ".repeat(5),
            NoPicture::DeviceMissing,
        );
        assert_eq!(tiny.len(), i420_len(192, 108));
    }

    #[test]
    fn cache_builds_once_per_size_and_reason() {
        let mut cache = SlateCache::default();
        let p1 = cache.get(320, 180, "Room", NoPicture::NoSignal).as_ptr();
        let p2 = cache.get(320, 180, "Room", NoPicture::NoSignal).as_ptr();
        assert_eq!(p1, p2);
        let other = cache.get(320, 180, "Room", NoPicture::NoLock).to_vec();
        assert_eq!(other, render(320, 180, "Room", NoPicture::NoLock));
        assert_eq!(
            cache.get(640, 360, "Room", NoPicture::NoLock).len(),
            i420_len(640, 360)
        );
    }

    #[test]
    fn colours_convert_to_limited_range() {
        assert_eq!(rgb_to_yuv(Rgb888::BLACK), (16, 128, 128));
        assert_eq!(rgb_to_yuv(Rgb888::WHITE), (235, 128, 128));
    }
}
