//! Large, legible text from embedded-graphics' built-in bitmap fonts: an integer scaling wrapper
//! (each font pixel becomes an s x s square) and width-aware truncation and wrapping.

use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use embedded_graphics::text::{Baseline, Text};

/// Draws into `inner` with every pixel scaled by `scale` and moved by `origin` (target pixels).
pub struct Scaled<'a, D> {
    inner: &'a mut D,
    scale: u32,
    origin: Point,
}

impl<D: DrawTarget> Dimensions for Scaled<'_, D> {
    fn bounding_box(&self) -> Rectangle {
        let bb = self.inner.bounding_box();
        let s = self.scale as i32;
        Rectangle::new(
            (bb.top_left - self.origin) / s,
            Size::new(bb.size.width / self.scale, bb.size.height / self.scale),
        )
    }
}

impl<D: DrawTarget> DrawTarget for Scaled<'_, D> {
    type Color = D::Color;
    type Error = D::Error;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        let size = Size::new_equal(self.scale);
        for Pixel(p, c) in pixels {
            let at = p * self.scale as i32 + self.origin;
            self.inner.fill_solid(&Rectangle::new(at, size), c)?;
        }
        Ok(())
    }
}

/// A bitmap font at an integer scale.
#[derive(Clone, Copy)]
pub struct Font {
    pub font: &'static MonoFont<'static>,
    pub scale: u32,
}

impl Font {
    pub fn new(font: &'static MonoFont<'static>, scale: u32) -> Self {
        Font {
            font,
            scale: scale.max(1),
        }
    }

    /// Advance per character, in target pixels.
    pub fn char_width(&self) -> u32 {
        (self.font.character_size.width + self.font.character_spacing) * self.scale
    }

    pub fn line_height(&self) -> u32 {
        self.font.character_size.height * self.scale
    }

    pub fn width_of(&self, text: &str) -> u32 {
        text.chars().count() as u32 * self.char_width()
    }

    /// How many characters fit in `width` pixels.
    pub fn chars_in(&self, width: u32) -> usize {
        (width / self.char_width()) as usize
    }

    /// Draws `text` with its top-left corner at `top_left`.
    pub fn draw<D: DrawTarget>(
        &self,
        target: &mut D,
        text: &str,
        top_left: Point,
        color: D::Color,
    ) -> Result<(), D::Error> {
        let mut scaled = Scaled {
            inner: target,
            scale: self.scale,
            origin: top_left,
        };
        let style = MonoTextStyle::new(self.font, color);
        Text::with_baseline(text, Point::zero(), style, Baseline::Top).draw(&mut scaled)?;
        Ok(())
    }
}

/// Cuts `text` to at most `max` characters, marking the cut with "..".
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    if max <= 2 {
        return text.chars().take(max).collect();
    }
    let mut out: String = text.chars().take(max - 2).collect();
    out.push_str("..");
    out
}

/// Splits `text` into lines of at most `max` characters (URLs have no spaces to break at).
pub fn wrap(text: &str, max: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(max.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("Alice", 5), "Alice");
        assert_eq!(truncate("Alexandra", 6), "Alex..");
        assert_eq!(truncate("Ab", 1), "A");
    }

    #[test]
    fn wrap_splits_evenly() {
        assert_eq!(wrap("abcdefg", 3), ["abc", "def", "g"]);
        assert!(wrap("", 3).is_empty());
    }
}
