//! Per-frame cost of the box's software video path: test-pattern render plus openh264 encode,
//! at 1280x720 and 1920x1080 (30 fps content), unpaced so it measures CPU time per frame.
//!
//! Run with: `cargo run --release --example encode_bench [-- FRAMES]` (default 300 frames a size)

use std::time::{Duration, Instant};

use roombox::capture::testsrc::TestPattern;
use roombox::capture::VideoSource;
use roombox::encode::h264::H264Encoder;
use roombox::encode::openh264::{OpenH264Config, OpenH264Encoder};
use roombox::media::FramePool;

const WARMUP: usize = 10;

struct Stats {
    mean: f64,
    p50: f64,
    p99: f64,
    max: f64,
}

fn stats(samples: &mut [Duration]) -> Stats {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| ms(samples[((samples.len() - 1) as f64 * q).round() as usize]);
    Stats {
        mean: samples.iter().map(|&d| ms(d)).sum::<f64>() / samples.len() as f64,
        p50: at(0.5),
        p99: at(0.99),
        max: ms(samples[samples.len() - 1]),
    }
}

fn run(
    width: u32,
    height: u32,
    bitrate_bps: u32,
    frames: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let pool = FramePool::new(4);
    let mut source = TestPattern::new(width, height, 30)?
        .unpaced()
        .with_pool(pool.clone());
    let mut encoder = OpenH264Encoder::new(OpenH264Config {
        fps: 30,
        bitrate_bps,
        ..Default::default()
    })?;
    let (mut render, mut encode, mut total) = (vec![], vec![], vec![]);
    let mut bytes = 0usize;
    let mut emitted = 0usize;
    for i in 0..WARMUP + frames {
        let t0 = Instant::now();
        let frame = source.next_frame()?;
        let t1 = Instant::now();
        let out = encoder.encode(&frame, false)?;
        let t2 = Instant::now();
        frame.recycle(&pool);
        if i >= WARMUP {
            render.push(t1 - t0);
            encode.push(t2 - t1);
            total.push(t2 - t0);
            if let Some(out) = out {
                bytes += out.data.len();
                emitted += 1;
            }
        }
    }
    let kbps = bytes as f64 * 8.0 * 30.0 / frames as f64 / 1000.0;
    for (name, samples) in [
        ("render", &mut render),
        ("encode", &mut encode),
        ("total", &mut total),
    ] {
        let s = stats(samples);
        println!(
            "| {width}x{height} | {name} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} |",
            s.mean,
            s.p50,
            s.p99,
            s.max,
            1000.0 / s.mean
        );
    }
    println!("<!-- {width}x{height}: {emitted}/{frames} frames emitted, {kbps:.0} kbps at 30 fps (target {} kbps) -->", bitrate_bps / 1000);
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let frames = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 300,
    };
    println!("{frames} frames per size after {WARMUP} warm-up frames; times in ms per frame");
    println!();
    println!("| size | stage | mean | p50 | p99 | max | max fps (1000/mean) |");
    println!("|---|---|---|---|---|---|---|");
    run(1280, 720, 2_500_000, frames)?;
    run(1920, 1080, 4_000_000, frames)?;
    Ok(())
}
