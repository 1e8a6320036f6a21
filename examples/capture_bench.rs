//! Per-frame cost of the box's capture-to-encoded path for HDMI capture: a captured buffer as
//! the capture device hands it over (UYVY from an HDMI bridge such as the TC358743, or MJPEG
//! from a USB dongle) converted into a pooled I420 frame, then encoded by openh264. 720p and
//! 1080p; unpaced, so it measures CPU time per frame.
//!
//! The captured buffers are made beforehand from the test pattern (moving content), so the
//! device itself is not in the timing: the kernel's DMA into an mmap buffer costs the CPU nothing.
//!
//! Run with: `cargo run --release --example capture_bench [-- FRAMES]` (default 300 a size)

use std::time::{Duration, Instant};

use roombox::capture::testsrc::TestPattern;
use roombox::capture::v4l2::convert::{Converter, PixelLayout, SourceFormat};
use roombox::capture::VideoSource;
use roombox::encode::h264::H264Encoder;
use roombox::encode::openh264::{OpenH264Config, OpenH264Encoder};
use roombox::media::{FramePool, VideoFrame};

const WARMUP: usize = 10;
/// Distinct captured buffers cycled through (moving content without a huge working set).
const DISTINCT: usize = 30;

#[path = "common/timing.rs"]
mod timing;
use timing::stats;

/// I420 → UYVY (chroma repeated on both lines of a pair), as an HDMI bridge delivers it.
fn to_uyvy(frame: &VideoFrame) -> Vec<u8> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let (y, u, v) = frame.planes();
    let mut out = vec![0u8; w * h * 2];
    for row in 0..h {
        for col in (0..w).step_by(2) {
            let c = (row / 2) * (w / 2) + col / 2;
            let o = (row * w + col) * 2;
            out[o..o + 4].copy_from_slice(&[u[c], y[row * w + col], v[c], y[row * w + col + 1]]);
        }
    }
    out
}

/// I420 → a baseline JPEG at quality 80, as a USB capture dongle sends 1080p.
fn to_mjpeg(frame: &VideoFrame) -> Vec<u8> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let (y, u, v) = frame.planes();
    let mut ycbcr = Vec::with_capacity(w * h * 3);
    for row in 0..h {
        for col in 0..w {
            let c = (row / 2) * (w / 2) + col / 2;
            ycbcr.extend_from_slice(&[y[row * w + col], u[c], v[c]]);
        }
    }
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 80)
        .encode(&ycbcr, w as u16, h as u16, jpeg_encoder::ColorType::Ycbcr)
        .expect("jpeg encode");
    out
}

fn run(
    layout: PixelLayout,
    width: u32,
    height: u32,
    bitrate_bps: u32,
    frames: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut pattern = TestPattern::new(width, height, 30)?.unpaced();
    let captured: Vec<Vec<u8>> = (0..DISTINCT)
        .map(|_| {
            let f = pattern.next_frame().expect("pattern");
            match layout {
                PixelLayout::Mjpeg => to_mjpeg(&f),
                _ => to_uyvy(&f),
            }
        })
        .collect();
    let format = SourceFormat {
        layout,
        width,
        height,
        bytesperline: if layout == PixelLayout::Mjpeg {
            0
        } else {
            width * 2
        },
    };
    let mut converter = Converter::new(format);
    let pool = FramePool::new(4);
    let mut encoder = OpenH264Encoder::new(OpenH264Config {
        fps: 30,
        bitrate_bps,
        ..Default::default()
    })?;
    let (mut convert, mut encode, mut total) = (vec![], vec![], vec![]);
    for i in 0..WARMUP + frames {
        let t0 = Instant::now();
        let mut data = pool.take(roombox::media::frame::i420_len(width, height));
        converter.convert(&captured[i % DISTINCT], &mut data)?;
        let frame = VideoFrame {
            width,
            height,
            data,
            captured_at: t0,
            pts: Duration::from_millis(i as u64 * 33),
        };
        let t1 = Instant::now();
        encoder.encode(&frame, false)?;
        let t2 = Instant::now();
        frame.recycle(&pool);
        if i >= WARMUP {
            convert.push(t1 - t0);
            encode.push(t2 - t1);
            total.push(t2 - t0);
        }
    }
    let name = format!("{width}x{height} {layout:?}");
    for (stage, samples) in [
        ("convert", &mut convert),
        ("encode", &mut encode),
        ("total", &mut total),
    ] {
        let (mean, p50, p99) = stats(samples);
        println!(
            "| {name} | {stage} | {mean:.2} | {p50:.2} | {p99:.2} | {:.0} |",
            1000.0 / mean
        );
    }
    Ok(())
}

/// The sender's smaller sizes on a slow link (`degradation = balanced`): scaling a frame one
/// and two rungs down, and encoding the smaller frame, beside encoding the full one.
fn scale_rows(width: u32, height: u32, frames: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut pattern = TestPattern::new(width, height, 30)?.unpaced();
    let source: Vec<VideoFrame> = (0..DISTINCT)
        .map(|_| pattern.next_frame().expect("pattern"))
        .collect();
    let pool = FramePool::new(4);
    let mut scaler = roombox::media::scale::Scaler::default();
    for (w, h) in roombox::encode::ladder::rungs((width, height))
        .into_iter()
        .take(3)
    {
        let mut encoder = OpenH264Encoder::new(OpenH264Config {
            fps: 30,
            bitrate_bps: 1_000_000,
            ..Default::default()
        })?;
        let (mut scale, mut encode) = (vec![], vec![]);
        for i in 0..WARMUP + frames {
            let src = &source[i % DISTINCT];
            let t0 = Instant::now();
            let frame = if (w, h) == (width, height) {
                src.clone()
            } else {
                scaler.scale(src, w, h, &pool)?
            };
            let t1 = Instant::now();
            encoder.encode(&frame, false)?;
            let t2 = Instant::now();
            frame.recycle(&pool);
            if i >= WARMUP {
                scale.push(t1 - t0);
                encode.push(t2 - t1);
            }
        }
        let name = format!("{width}x{height} scaled to {w}x{h}");
        for (stage, samples) in [("scale", &mut scale), ("encode at 1 Mbit/s", &mut encode)] {
            if (w, h) == (width, height) && stage == "scale" {
                continue; // the full size is not scaled (the row would time a copy)
            }
            let (mean, p50, p99) = stats(samples);
            println!(
                "| {name} | {stage} | {mean:.2} | {p50:.2} | {p99:.2} | {:.0} |",
                1000.0 / mean
            );
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let frames = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 300,
    };
    println!("{frames} frames per row after {WARMUP} warm-up frames; times in ms per frame");
    println!();
    println!("| capture | stage | mean | p50 | p99 | max fps (1000/mean) |");
    println!("|---|---|---|---|---|---|");
    for layout in [PixelLayout::Uyvy, PixelLayout::Mjpeg] {
        run(layout, 1280, 720, 2_500_000, frames)?;
        run(layout, 1920, 1080, 4_000_000, frames)?;
    }
    scale_rows(1280, 720, frames)?;
    scale_rows(1920, 1080, frames)?;
    Ok(())
}
