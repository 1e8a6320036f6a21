//! Per-frame cost of showing what people send the box: decoding their H.264 (openh264, the
//! software path), laying it out full screen on a 1080p display (roombox::remote_video::compose),
//! and, for the file sink only, converting the picture back to I420. 720p and 1080p senders,
//! the box's own moving test pattern encoded beforehand at a screen share's bitrate; unpaced,
//! so it measures CPU time per frame.
//!
//! Run with: `cargo run --release --example display_bench [-- FRAMES]` (default 300 a size)

use std::time::Instant;

use roombox::capture::testsrc::TestPattern;
use roombox::capture::VideoSource;
use roombox::display::framebuffer::MemoryFramebuffer;
use roombox::encode::h264::H264Encoder;
use roombox::encode::openh264::{OpenH264Config, OpenH264Encoder};
use roombox::remote_video::{compose, H264Decoder, Tile, VideoKind};
use roombox_scale::convert::xrgb_to_i420;

#[path = "common/timing.rs"]
mod timing;
use timing::stats;

fn run(
    width: u32,
    height: u32,
    bitrate_bps: u32,
    frames: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut pattern = TestPattern::new(width, height, 30)?.unpaced();
    let mut enc = OpenH264Encoder::new(OpenH264Config {
        bitrate_bps,
        skip_frames: false,
        hold_unchanged: false,
        ..Default::default()
    })?;
    let mut stream = Vec::with_capacity(frames);
    for i in 0..frames {
        let f = pattern.next_frame().expect("pattern");
        if let Some(au) = enc.encode(&f, i == 0)? {
            stream.push(au.data);
        }
    }
    let mut dec = H264Decoder::new()?;
    let mut display = MemoryFramebuffer::new(1920, 1080);
    let mut i420 = vec![0u8; 1920 * 1080 * 3 / 2];
    let (mut t_dec, mut t_comp, mut t_conv) = (Vec::new(), Vec::new(), Vec::new());
    for au in &stream {
        let t0 = Instant::now();
        let Some(frame) = dec.decode(au)? else {
            continue;
        };
        let t1 = Instant::now();
        let tile = Tile {
            name: "Sender",
            kind: VideoKind::Screen,
            speaking: false,
            frame: &frame,
        };
        compose(&[tile], &mut display);
        let t2 = Instant::now();
        xrgb_to_i420(display.data(), display.stride(), 1920, 1080, &mut i420);
        let t3 = Instant::now();
        t_dec.push(t1 - t0);
        t_comp.push(t2 - t1);
        t_conv.push(t3 - t2);
    }
    for (what, samples) in [
        ("decode", &mut t_dec),
        ("compose to 1080p", &mut t_comp),
        ("sink's I420", &mut t_conv),
    ] {
        let (mean, p50, p99) = stats(samples);
        println!(
            "{width}x{height} {what:<17} mean {mean:6.2} ms  p50 {p50:6.2}  p99 {p99:6.2}  ({} frames)",
            samples.len()
        );
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let frames = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(300);
    run(1280, 720, 2_500_000, frames)?;
    run(1920, 1080, 4_000_000, frames)?;
    Ok(())
}
