//! Per-frame cost of showing what people send the box: decoding their H.264 (openh264, the
//! software path), laying it out full screen on a 1080p display (roombox::remote_video::compose),
//! and, for the file sink only, converting the picture back to I420. 720p and 1080p senders,
//! the box's own moving test pattern encoded beforehand at a screen share's bitrate; unpaced,
//! so it measures CPU time per frame.
//!
//! The video-plane path (a display with a YUV420 overlay plane, src/display/video_plane.rs)
//! instead copies the decoded I420 frame into the plane's buffer
//! (roombox::display::planes::copy_i420, here into ordinary memory laid out by `yuv420_layout`,
//! not a mapped dumb buffer) and draws the ARGB overlay with the names (`compose_overlay`) only
//! when the layout changes: both are measured here, the atomic commit and the hardware's scaling
//! are not (no display here has such a plane).
//!
//! Run with: `cargo run --release --example display_bench [-- FRAMES]` (default 300 a size)
//!
//! With `ROOMBOX_INSN_MARKERS=1` it times nothing and runs the regions an instruction counter
//! counts instead (see [`count`]): bench/display/arm64.sh counts them on the aarch64 build
//! under qemu-user, and callgrind on x86_64 (`--toggle-collect` on the region functions).

use std::time::Instant;

use roombox::capture::testsrc::TestPattern;
use roombox::capture::VideoSource;
use roombox::display::framebuffer::MemoryFramebuffer;
use roombox::display::planes::{copy_i420, yuv420_layout};
use roombox::encode::h264::{EncodedFrame, H264Encoder};
use roombox::encode::openh264::{OpenH264Config, OpenH264Encoder};
use roombox::media::frame::VideoFrame;
use roombox::remote_video::compose::compose_overlay;
use roombox::remote_video::{compose, DecodeError, H264Decoder, Tile, VideoKind};
use roombox_scale::convert::xrgb_to_i420;

#[path = "common/timing.rs"]
mod timing;
use timing::stats;

/// A video plane's buffer for a `width` x `height` I420 picture, laid out as
/// src/display/video_plane.rs lays out its dumb buffer: rows of `pitch` bytes, the width rounded
/// up to 64 as a driver aligns it (1280 and 1920 already are). Filled once, so that the pages
/// exist before anything is measured.
struct PlaneBuffer {
    data: Vec<u8>,
    offsets: [u32; 3],
    pitches: [u32; 3],
}

impl PlaneBuffer {
    fn new(width: u32, height: u32) -> Self {
        let pitch = width.next_multiple_of(64);
        let (offsets, pitches, rows) = yuv420_layout(width, height, pitch).expect("an even size");
        PlaneBuffer {
            data: vec![0x10; (rows * pitch) as usize],
            offsets,
            pitches,
        }
    }
}

/// `frames` frames of the moving test pattern encoded by openh264 at a screen share's bitrate.
fn encode(
    width: u32,
    height: u32,
    bitrate_bps: u32,
    frames: usize,
) -> Result<Vec<EncodedFrame>, Box<dyn std::error::Error>> {
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
            stream.push(au);
        }
    }
    Ok(stream)
}

fn run(
    width: u32,
    height: u32,
    bitrate_bps: u32,
    frames: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let stream: Vec<Vec<u8>> = encode(width, height, bitrate_bps, frames)?
        .into_iter()
        .map(|au| au.data)
        .collect();
    let mut dec = H264Decoder::new()?;
    let mut display = MemoryFramebuffer::new(1920, 1080);
    let mut i420 = vec![0u8; 1920 * 1080 * 3 / 2];
    let mut plane = PlaneBuffer::new(width, height);
    let mut overlay = MemoryFramebuffer::new(1920, 1080);
    let (mut t_dec, mut t_comp, mut t_conv) = (Vec::new(), Vec::new(), Vec::new());
    let (mut t_plane, mut t_overlay) = (Vec::new(), Vec::new());
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
        // The video plane's path instead of the two above: the copy is per frame, the overlay
        // only when the layout changes (timed every frame here to have samples).
        let (w, h) = (frame.width, frame.height);
        copy_i420(
            &frame.data,
            w,
            h,
            &mut plane.data,
            plane.offsets,
            plane.pitches,
        );
        let t4 = Instant::now();
        assert!(compose_overlay(&[tile], &mut overlay).is_some());
        let t5 = Instant::now();
        t_dec.push(t1 - t0);
        t_comp.push(t2 - t1);
        t_conv.push(t3 - t2);
        t_plane.push(t4 - t3);
        t_overlay.push(t5 - t4);
    }
    for (what, samples) in [
        ("decode", &mut t_dec),
        ("compose to 1080p", &mut t_comp),
        ("sink's I420", &mut t_conv),
        ("video plane copy", &mut t_plane),
        ("overlay on 1080p", &mut t_overlay),
    ] {
        let (mean, p50, p99) = stats(samples);
        println!(
            "{width}x{height} {what:<17} mean {mean:6.2} ms  p50 {p50:6.2}  p99 {p99:6.2}  ({} frames)",
            samples.len()
        );
    }
    Ok(())
}

// --- instruction counts ------------------------------------------------------------------------

/// The regions, in the order the counting run reports them: (marker side, region function).
/// The side is what the qemu plugin (bench/audio/qemu/insn_region.c) reports each region under;
/// the function is what callgrind toggles on and names.
const REGIONS: [(u64, &str); 10] = [
    (0, "decode_720p"),
    (1, "decode_1080p"),
    (2, "compose_share_1080p"),
    (3, "compose_grid5_1080p"),
    (4, "sink_i420_1080p"),
    (5, "decode_720p_idr"),
    (6, "decode_1080p_idr"),
    (7, "plane_share_720p"),
    (8, "plane_share_1080p"),
    (9, "overlay_1080p"),
];

/// Tells the qemu plugin where a region starts and stops: prctl with an option no kernel has
/// (it fails with EINVAL, natively or under qemu; the plugin sees the call first), as
/// bench/audio's stage-cost does. `on`: 1 start, 0 stop. Outside the region functions, so
/// callgrind does not count it.
#[inline(never)]
fn marker(side: u64, on: u64) {
    /// "ROOM"
    const ROOM: nix::libc::c_int = 0x524f_4f4d;
    // SAFETY: prctl with an unknown option reads no memory; it only returns EINVAL.
    unsafe {
        nix::libc::prctl(ROOM, side, on, 0u64, 0u64);
    }
}

/// Decodes `au`, checking it is what the region is for. Inlined into each decode region, whose
/// constants differ, so that the compiler does not merge their identical bodies into one
/// symbol (callgrind would then see one function).
#[inline(always)]
fn decode_checked(
    dec: &mut H264Decoder,
    au: &EncodedFrame,
    height: u32,
    keyframe: bool,
) -> Result<Option<VideoFrame>, DecodeError> {
    assert_eq!(au.keyframe, keyframe, "an access unit in the wrong region");
    let frame = dec.decode(&au.data)?;
    assert!(frame.as_ref().is_none_or(|f| f.height == height));
    Ok(frame)
}

// The only code the instruction counters count (callgrind: `--toggle-collect` on each).
#[inline(never)]
fn decode_720p(
    dec: &mut H264Decoder,
    au: &EncodedFrame,
) -> Result<Option<VideoFrame>, DecodeError> {
    decode_checked(dec, au, 720, false)
}

#[inline(never)]
fn decode_1080p(
    dec: &mut H264Decoder,
    au: &EncodedFrame,
) -> Result<Option<VideoFrame>, DecodeError> {
    decode_checked(dec, au, 1080, false)
}

#[inline(never)]
fn decode_720p_idr(
    dec: &mut H264Decoder,
    au: &EncodedFrame,
) -> Result<Option<VideoFrame>, DecodeError> {
    decode_checked(dec, au, 720, true)
}

#[inline(never)]
fn decode_1080p_idr(
    dec: &mut H264Decoder,
    au: &EncodedFrame,
) -> Result<Option<VideoFrame>, DecodeError> {
    decode_checked(dec, au, 1080, true)
}

/// One screen share full screen, as the timing run lays it out.
#[inline(never)]
fn compose_share_1080p(frame: &VideoFrame, display: &mut MemoryFramebuffer) {
    let tile = Tile {
        name: "Sender",
        kind: VideoKind::Screen,
        speaking: false,
        frame,
    };
    compose(&[tile], display);
}

/// Five cameras in the grid (3 + 2 cells, one speaker outlined), each a 720p picture.
#[inline(never)]
fn compose_grid5_1080p(frames: [&VideoFrame; 5], display: &mut MemoryFramebuffer) {
    const NAMES: [&str; 5] = ["Sender 1", "Sender 2", "Sender 3", "Sender 4", "Sender 5"];
    let tiles = std::array::from_fn::<_, 5, _>(|i| Tile {
        name: NAMES[i],
        kind: VideoKind::Camera,
        speaking: i == 0,
        frame: frames[i],
    });
    compose(&tiles, display);
}

#[inline(never)]
fn sink_i420_1080p(display: &MemoryFramebuffer, i420: &mut [u8]) {
    xrgb_to_i420(display.data(), display.stride(), 1920, 1080, i420);
}

/// The video plane's per-frame work for a 720p sender: the decoded picture into the plane's
/// buffer (the sizes checked, so that it stays apart from the 1080p region's identical body).
#[inline(never)]
fn plane_share_720p(frame: &VideoFrame, plane: &mut PlaneBuffer) {
    assert_eq!((frame.width, frame.height), (1280, 720));
    copy_i420(
        &frame.data,
        1280,
        720,
        &mut plane.data,
        plane.offsets,
        plane.pitches,
    );
}

#[inline(never)]
fn plane_share_1080p(frame: &VideoFrame, plane: &mut PlaneBuffer) {
    assert_eq!((frame.width, frame.height), (1920, 1080));
    copy_i420(
        &frame.data,
        1920,
        1080,
        &mut plane.data,
        plane.offsets,
        plane.pitches,
    );
}

/// The ARGB overlay over a screen share's video plane on a 1080p display (its name bar; the
/// picture's rectangle transparent): drawn when the layout changes, not every frame.
#[inline(never)]
fn overlay_1080p(frame: &VideoFrame, overlay: &mut MemoryFramebuffer) {
    let tile = Tile {
        name: "Sender",
        kind: VideoKind::Screen,
        speaking: false,
        frame,
    };
    assert!(compose_overlay(&[tile], overlay).is_some());
}

/// Runs each region of [`REGIONS`] between its markers: the first access unit (the keyframe)
/// of a 720p and of a 1080p stream, then the next `frames` of each stream (P frames; a later
/// IDR would go to the IDR region), and after each pair the 1080p picture composed full screen,
/// the 720p picture composed five times in the grid, and the sink's conversion of the display;
/// then the video plane's path: each picture copied into a plane buffer of its size, and the
/// 1080p display's overlay (once per layout change in the box; once per pair here, to count it).
/// Prints how many times each region ran (what the counts are divided by).
fn count(frames: usize) -> Result<(), Box<dyn std::error::Error>> {
    let s720 = encode(1280, 720, 2_500_000, frames + 1)?;
    let s1080 = encode(1920, 1080, 4_000_000, frames + 1)?;
    let mut runs = [0usize; REGIONS.len()];
    let mut region = |side: u64| {
        marker(side, 1);
        runs[side as usize] += 1;
    };
    let (mut d720, mut d1080) = (H264Decoder::new()?, H264Decoder::new()?);
    let mut display = MemoryFramebuffer::new(1920, 1080);
    let mut i420 = vec![0u8; 1920 * 1080 * 3 / 2];
    let (mut p720, mut p1080) = (PlaneBuffer::new(1280, 720), PlaneBuffer::new(1920, 1080));
    let mut overlay = MemoryFramebuffer::new(1920, 1080);
    for (i, (a, b)) in s720.iter().zip(&s1080).enumerate() {
        let f720 = if a.keyframe {
            region(5);
            let f = decode_720p_idr(&mut d720, a)?;
            marker(5, 0);
            f
        } else {
            region(0);
            let f = decode_720p(&mut d720, a)?;
            marker(0, 0);
            f
        };
        let f1080 = if b.keyframe {
            region(6);
            let f = decode_1080p_idr(&mut d1080, b)?;
            marker(6, 0);
            f
        } else {
            region(1);
            let f = decode_1080p(&mut d1080, b)?;
            marker(1, 0);
            f
        };
        // The pictures after the first keyframe's, as many as the decode regions.
        let (Some(f720), Some(f1080), true) = (f720, f1080, i > 0) else {
            continue;
        };
        region(2);
        compose_share_1080p(&f1080, &mut display);
        marker(2, 0);
        region(4);
        sink_i420_1080p(&display, &mut i420);
        marker(4, 0);
        region(3);
        compose_grid5_1080p([&f720; 5], &mut display);
        marker(3, 0);
        region(7);
        plane_share_720p(&f720, &mut p720);
        marker(7, 0);
        region(8);
        plane_share_1080p(&f1080, &mut p1080);
        marker(8, 0);
        region(9);
        overlay_1080p(&f1080, &mut overlay);
        marker(9, 0);
    }
    let runs: Vec<String> = REGIONS
        .iter()
        .map(|&(side, name)| format!("{side}:{name}:{}", runs[side as usize]))
        .collect();
    println!("regions: {}", runs.join(" "));
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let frames = std::env::args().nth(1).map(|s| s.parse()).transpose()?;
    if std::env::var_os("ROOMBOX_INSN_MARKERS").is_some_and(|v| v == "1") {
        return count(frames.unwrap_or(30));
    }
    let frames = frames.unwrap_or(300);
    run(1280, 720, 2_500_000, frames)?;
    run(1920, 1080, 4_000_000, frames)?;
    Ok(())
}
