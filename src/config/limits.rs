//! The video sizes and frame rates the box works with, in one place: the settings' validation
//! and the sources check against these same ranges.

use std::ops::RangeInclusive;

/// Even widths only (4:2:0 chroma). 192 is the narrowest the test pattern lays out.
pub const WIDTH: RangeInclusive<u32> = 192..=3840;
/// Even heights only.
pub const HEIGHT: RangeInclusive<u32> = 108..=2160;
/// Frames per second asked of a source (a camera or the test pattern).
pub const FPS: RangeInclusive<u32> = 1..=60;

pub fn size_ok(width: u32, height: u32) -> bool {
    width.is_multiple_of(2)
        && height.is_multiple_of(2)
        && WIDTH.contains(&width)
        && HEIGHT.contains(&height)
}

pub fn fps_ok(fps: u32) -> bool {
    FPS.contains(&fps)
}
