//! A QR code (the settings address, the room's join link), drawn as filled squares scaled to
//! fit, or written as SVG for the settings page.

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use qrcode::{Color, EcLevel, QrCode};

/// The quiet zone the QR specification asks for, in modules, on each side.
const QUIET: u32 = 4;

/// A QR symbol ready to draw.
pub struct Qr {
    code: QrCode,
}

impl Qr {
    /// `None` when the text is too long for any QR version (the URL text is still shown).
    /// Level M: survives some glare or a dirty screen and keeps modules large.
    pub fn new(text: &str) -> Option<Self> {
        QrCode::with_error_correction_level(text, EcLevel::M)
            .ok()
            .map(|code| Qr { code })
    }

    /// Modules across, quiet zone included.
    pub fn modules(&self) -> u32 {
        self.code.width() as u32 + 2 * QUIET
    }

    /// Side in pixels when drawn into at most `max` pixels (whole pixels per module, so every
    /// module is the same size); 0 when it cannot fit with at least 2 pixels per module.
    pub fn side_for(&self, max: u32) -> u32 {
        let px = max / self.modules();
        if px < 2 {
            0
        } else {
            px * self.modules()
        }
    }

    /// The symbol as an SVG image one unit per module (quiet zone included), to scale with CSS:
    /// a white square and one path of the dark modules. No script, no style attribute (the
    /// settings page's content security policy allows neither inline).
    pub fn svg(&self) -> String {
        use std::fmt::Write;
        let n = self.modules();
        let w = self.code.width();
        let mut path = String::new();
        for (i, c) in self.code.to_colors().into_iter().enumerate() {
            if c == Color::Dark {
                let (x, y) = ((i % w) as u32 + QUIET, (i / w) as u32 + QUIET);
                let _ = write!(path, "M{x} {y}h1v1h-1z");
            }
        }
        format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {n} {n}" shape-rendering="crispEdges"><rect width="{n}" height="{n}" fill="#fff"/><path d="{path}" fill="#000"/></svg>"##
        )
    }

    /// Draws dark modules on a white square of `side_for(max)` pixels at `top_left`.
    pub fn draw<D>(&self, target: &mut D, top_left: Point, max: u32) -> Result<u32, D::Error>
    where
        D: DrawTarget,
        D::Color: From<Rgb888>,
    {
        let side = self.side_for(max);
        if side == 0 {
            return Ok(0);
        }
        let px = side / self.modules();
        Rectangle::new(top_left, Size::new_equal(side))
            .into_styled(PrimitiveStyle::with_fill(Rgb888::WHITE.into()))
            .draw(target)?;
        let w = self.code.width();
        for (i, c) in self.code.to_colors().into_iter().enumerate() {
            if c == Color::Dark {
                let (x, y) = ((i % w) as u32 + QUIET, (i / w) as u32 + QUIET);
                let at = top_left + Point::new((x * px) as i32, (y * px) as i32);
                target.fill_solid(
                    &Rectangle::new(at, Size::new_equal(px)),
                    Rgb888::BLACK.into(),
                )?;
            }
        }
        Ok(side)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_svg_has_every_dark_module_and_the_quiet_zone() {
        let qr = Qr::new("http://192.168.1.20/").unwrap();
        let svg = qr.svg();
        let n = qr.modules();
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.contains(&format!(r#"viewBox="0 0 {n} {n}""#)), "{svg}");
        let dark = qr
            .code
            .to_colors()
            .iter()
            .filter(|c| **c == Color::Dark)
            .count();
        assert_eq!(svg.matches("h1v1h-1z").count(), dark);
        assert!(!svg.contains("style=") && !svg.contains("<script"));
        // The finder pattern's corner sits just inside the quiet zone.
        assert!(svg.contains(&format!("M{QUIET} {QUIET}h1v1h-1z")), "{svg}");
    }
}
