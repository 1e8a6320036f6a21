//! Moving test pattern: colour bars, a large frame counter, a wall clock and a machine-readable
//! frame code, so people see latency and freezes at a glance and benchmarks can measure them.
//!
//! # Layout (I420, limited range)
//! - Frame code, at the top-left corner. Block size `B = (width / 24)` rounded down to a
//!   multiple of 8 (48 px at 1280 wide, 80 px at 1920, at least 32 px from 768 wide up).
//!   - Row 0, `y` in `[0, B)`: 24 blocks of `B x B` at `x = i * B`, `i = 0..24`. Block `i`
//!     carries bit `23 - i` of the frame counter (block 0 is the most significant bit): luma
//!     235 (white) for 1, luma 16 (black) for 0.
//!   - Row 1, `y` in `[B, 2B)`: the same 24 blocks with every bit inverted, so a reader can
//!     reject a frame it mis-read (each bit must differ between the two rows).
//!   - The code area's chroma is neutral (128), so in RGB the blocks are pure black / white;
//!     anything right of `24 * B` in both rows is black, except in the frame nearest to each
//!     whole second since the media epoch (`pace::epoch`): there it is white, the sync flash
//!     (the test tone beeps at the same instant; tests/e2e/lipsync.test.js measures both). To read it back, threshold the centre
//!     of each block at mid-grey (luma 125 or RGB 128).
//! - The counter is the frame's slot number at the configured fps, modulo 2^24: when the
//!   source falls behind, skipped slots show as jumps.
//! - Below the code: 75% colour bars; centred on them a black panel with the counter (seven
//!   digits, a quarter of the frame high) and the UTC wall clock `HH:MM:SS.mmm` at render time;
//!   along the bottom an eighth of the frame with a white box crossing it every two seconds.
//!   Digits are 7-segment shapes drawn from rectangles (no font files).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::source::VideoSource;
use crate::media::frame::{i420_len, FramePool, VideoFrame};
use crate::media::pace::Pacer;
use crate::media::SourceError;

/// Bits in the frame code.
pub const CODE_BITS: u32 = 24;
const BLACK: u8 = 16;
const WHITE: u8 = 235;
/// The code, counter and clock use the same white and black as limited-range video.
const NEUTRAL: u8 = 128;

/// Block size of the frame code for a frame `width` pixels wide.
pub fn code_block_size(width: u32) -> u32 {
    (width / CODE_BITS) & !7
}

/// A paced, moving test pattern source.
pub struct TestPattern {
    width: u32,
    height: u32,
    fps: u32,
    pacer: Pacer,
    /// The static parts (bars, panel, strips, all chroma), copied under each frame.
    background: Vec<u8>,
    pool: FramePool,
}

impl TestPattern {
    /// A test pattern of `width x height` at `fps`, paced in real time from now.
    pub fn new(width: u32, height: u32, fps: u32) -> Result<Self, SourceError> {
        if !crate::config::limits::size_ok(width, height) {
            return Err(SourceError::BadSize { width, height });
        }
        if !crate::config::limits::fps_ok(fps) {
            return Err(SourceError::BadFrameRate(fps));
        }
        let pacer = Pacer::new(fps, 1, true);
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_micros() as f64 / 1000.0);
        tracing::info!(unix_ms, fps, "test pattern clock: frame 0 due at");
        let mut pattern = Self {
            width,
            height,
            fps,
            pacer,
            background: vec![0; i420_len(width, height)],
            pool: FramePool::default(),
        };
        pattern.draw_background();
        Ok(pattern)
    }

    /// Never sleeps: frames come as fast as they are rendered (benchmarks, tests).
    pub fn unpaced(mut self) -> Self {
        self.pacer = Pacer::new(self.fps, 1, false);
        self
    }

    /// Takes frame buffers from `pool` (give them back with [`VideoFrame::recycle`]).
    pub fn with_pool(mut self, pool: FramePool) -> Self {
        self.pool = pool;
        self
    }

    /// The pool frames come from.
    pub fn pool(&self) -> &FramePool {
        &self.pool
    }

    /// Renders frame `counter` at `pts` with the clock showing `wall` into `out` (I420 sized
    /// for this pattern).
    pub fn render(&self, counter: u64, pts: Duration, wall: SystemTime, out: &mut [u8]) {
        self.render_marked(counter, pts, wall, false, out);
    }

    /// As [`render`](Self::render), with the sync flash when `flash`.
    pub fn render_marked(
        &self,
        counter: u64,
        pts: Duration,
        wall: SystemTime,
        flash: bool,
        out: &mut [u8],
    ) {
        out.copy_from_slice(&self.background);
        let (w, h) = (self.width as usize, self.height as usize);
        let y = &mut out[..w * h];
        let mut canvas = Luma { y, w };
        let code = (counter & ((1 << CODE_BITS) - 1)) as u32;
        let b = code_block_size(self.width) as usize;
        for i in 0..CODE_BITS as usize {
            let bit = code >> (CODE_BITS as usize - 1 - i) & 1 == 1;
            let (top, bottom) = if bit { (WHITE, BLACK) } else { (BLACK, WHITE) };
            canvas.fill(i * b, 0, b, b, top);
            canvas.fill(i * b, b, b, b, bottom);
        }
        if flash {
            let x = CODE_BITS as usize * b;
            canvas.fill(x, 0, w - x, 2 * b, WHITE);
        }

        let layout = Layout::new(self.width, self.height);
        let digits = counter % 10_000_000;
        let mut text = [0u8; 12];
        for (i, slot) in text[..7].iter_mut().enumerate() {
            *slot = b'0' + (digits / 10u64.pow(6 - i as u32) % 10) as u8;
        }
        draw_text(
            &mut canvas,
            layout.counter_x,
            layout.counter_y,
            layout.counter_h,
            &text[..7],
        );
        let clock = clock_text(wall);
        draw_text(
            &mut canvas,
            layout.clock_x,
            layout.clock_y,
            layout.clock_h,
            &clock,
        );

        // The box crosses the strip every two seconds, positioned by pts so it moves smoothly
        // whatever the frame rate.
        let period = 2_000_000u128;
        let phase = (pts.as_micros() % period) as usize;
        let travel = w - layout.box_size;
        let x = (travel * phase / period as usize) & !1;
        canvas.fill(
            x,
            layout.strip_y + (layout.strip_h - layout.box_size) / 2,
            layout.box_size,
            layout.box_size,
            WHITE,
        );
    }

    fn draw_background(&mut self) {
        let (w, h) = (self.width as usize, self.height as usize);
        let layout = Layout::new(self.width, self.height);
        let mut planes = Planes::new(&mut self.background, w, h);
        // 75% bars, BT.709 limited range (Y, Cb, Cr).
        const BARS: [(u8, u8, u8); 7] = [
            (180, 128, 128),
            (168, 44, 136),
            (145, 147, 44),
            (133, 63, 52),
            (63, 193, 204),
            (51, 109, 212),
            (28, 212, 120),
        ];
        let bar_top = layout.code_h;
        for (i, &colour) in BARS.iter().enumerate() {
            let x0 = (w * i / BARS.len()) & !1;
            let x1 = (w * (i + 1) / BARS.len()) & !1;
            planes.fill(x0, bar_top, x1 - x0, layout.strip_y - bar_top, colour);
        }
        planes.fill(0, 0, w, layout.code_h, (BLACK, NEUTRAL, NEUTRAL));
        planes.fill(
            0,
            layout.strip_y,
            w,
            h - layout.strip_y,
            (BLACK, NEUTRAL, NEUTRAL),
        );
        planes.fill(
            layout.panel_x,
            layout.panel_y,
            layout.panel_w,
            layout.panel_h,
            (BLACK, NEUTRAL, NEUTRAL),
        );
    }
}

impl VideoSource for TestPattern {
    fn next_frame(&mut self) -> Result<VideoFrame, SourceError> {
        let (counter, pts) = self.pacer.wait();
        let captured_at = Instant::now();
        let mut data = self.pool.take(self.background.len());
        let slot = Duration::from_secs(1) / self.fps;
        let flash = crate::media::pace::holds_a_second_mark(self.pacer.start() + pts, slot);
        self.render_marked(counter, pts, SystemTime::now(), flash, &mut data);
        Ok(VideoFrame {
            width: self.width,
            height: self.height,
            data,
            captured_at,
            pts,
        })
    }

    fn describe(&self) -> String {
        format!(
            "test pattern {}x{} at {} fps",
            self.width, self.height, self.fps
        )
    }
}

/// Reads the frame code back from a luma plane (stride = `width`); `None` when the two rows do
/// not agree (not a test pattern frame, or too damaged to trust).
pub fn decode_frame_code(y_plane: &[u8], width: u32, height: u32) -> Option<u32> {
    let b = code_block_size(width) as usize;
    let w = width as usize;
    if b < 8 || (height as usize) < 2 * b || y_plane.len() < w * 2 * b {
        return None;
    }
    // Average the centre half of each block: edges blur under compression.
    let mean = |x0: usize, y0: usize| -> u32 {
        let (q, half) = (b / 4, b / 2);
        let mut sum = 0u32;
        for row in y0 + q..y0 + q + half {
            let start = row * w + x0 + q;
            sum += y_plane[start..start + half]
                .iter()
                .map(|&p| u32::from(p))
                .sum::<u32>();
        }
        sum / (half * half) as u32
    };
    let threshold = u32::from(BLACK + WHITE) / 2;
    let mut code = 0u32;
    for i in 0..CODE_BITS as usize {
        let top = mean(i * b, 0) > threshold;
        let bottom = mean(i * b, b) > threshold;
        if top == bottom {
            return None;
        }
        code = code << 1 | u32::from(top);
    }
    Some(code)
}

/// `HH:MM:SS.mmm` in UTC.
fn clock_text(wall: SystemTime) -> [u8; 12] {
    let since = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() % 86_400;
    let ms = since.subsec_millis();
    let parts = [secs / 3600, secs / 60 % 60, secs % 60];
    let mut out = *b"00:00:00.000";
    for (i, v) in parts.iter().enumerate() {
        out[i * 3] = b'0' + (v / 10) as u8;
        out[i * 3 + 1] = b'0' + (v % 10) as u8;
    }
    out[9] = b'0' + (ms / 100) as u8;
    out[10] = b'0' + (ms / 10 % 10) as u8;
    out[11] = b'0' + (ms % 10) as u8;
    out
}

/// Where the parts of the pattern go for a frame size (all even, so chroma lines up).
struct Layout {
    code_h: usize,
    panel_x: usize,
    panel_y: usize,
    panel_w: usize,
    panel_h: usize,
    counter_x: usize,
    counter_y: usize,
    counter_h: usize,
    clock_x: usize,
    clock_y: usize,
    clock_h: usize,
    strip_y: usize,
    strip_h: usize,
    box_size: usize,
}

impl Layout {
    fn new(width: u32, height: u32) -> Self {
        let (w, h) = (width as usize, height as usize);
        let code_h = 2 * code_block_size(width) as usize;
        let strip_h = (h / 8) & !1;
        let strip_y = h - strip_h;
        let counter_h = (h / 4) & !1;
        let clock_h = (h / 10) & !1;
        let gap = (h / 40) & !1;
        let counter_w = text_width(counter_h, 7);
        let clock_w = text_width(clock_h, 12);
        let panel_w = (counter_w.max(clock_w) + 2 * gap).min(w) & !1;
        let panel_h = counter_h + clock_h + 3 * gap;
        let panel_x = ((w - panel_w) / 2) & !1;
        let panel_y = ((code_h + strip_y).saturating_sub(panel_h) / 2).max(code_h) & !1;
        Self {
            code_h,
            panel_x,
            panel_y,
            panel_w,
            panel_h,
            counter_x: (w.saturating_sub(counter_w) / 2) & !1,
            counter_y: panel_y + gap,
            counter_h,
            clock_x: (w.saturating_sub(clock_w) / 2) & !1,
            clock_y: panel_y + 2 * gap + counter_h,
            clock_h,
            strip_y,
            strip_h,
            box_size: (strip_h * 3 / 4) & !1,
        }
    }
}

/// Width of a character cell for text `h` pixels high (including the gap after it).
fn cell_width(h: usize) -> usize {
    h * 3 / 5 + h / 6
}

fn text_width(h: usize, chars: usize) -> usize {
    cell_width(h) * chars
}

/// Segments a..g (bit 0 = a, top; then clockwise; g = middle) of the digits 0-9.
const SEGMENTS: [u8; 10] = [0x3f, 0x06, 0x5b, 0x4f, 0x66, 0x6d, 0x7d, 0x07, 0x7f, 0x6f];

/// Draws digits, ':' and '.' in white, 7-segment style.
fn draw_text(canvas: &mut Luma<'_>, x: usize, y: usize, h: usize, text: &[u8]) {
    let dw = h * 3 / 5;
    let t = (h / 8).max(2);
    let half = h / 2;
    for (i, &c) in text.iter().enumerate() {
        let cx = x + i * cell_width(h);
        match c {
            b'0'..=b'9' => {
                let s = SEGMENTS[usize::from(c - b'0')];
                let rects = [
                    (cx, y, dw, t),                       // a
                    (cx + dw - t, y, t, half),            // b
                    (cx + dw - t, y + half, t, h - half), // c
                    (cx, y + h - t, dw, t),               // d
                    (cx, y + half, t, h - half),          // e
                    (cx, y, t, half),                     // f
                    (cx, y + half - t / 2, dw, t),        // g
                ];
                for (bit, &(rx, ry, rw, rh)) in rects.iter().enumerate() {
                    if s >> bit & 1 == 1 {
                        canvas.fill(rx, ry, rw, rh, WHITE);
                    }
                }
            }
            b':' => {
                canvas.fill(cx + dw / 2 - t / 2, y + h / 4, t, t, WHITE);
                canvas.fill(cx + dw / 2 - t / 2, y + h * 3 / 4 - t, t, t, WHITE);
            }
            b'.' => canvas.fill(cx + dw / 2 - t / 2, y + h - t, t, t, WHITE),
            _ => {}
        }
    }
}

/// A luma plane to draw on; rectangles are clipped to it.
struct Luma<'a> {
    y: &'a mut [u8],
    w: usize,
}

impl Luma<'_> {
    fn fill(&mut self, x: usize, y: usize, w: usize, h: usize, value: u8) {
        let rows = self.y.len() / self.w;
        let x1 = (x + w).min(self.w);
        let y1 = (y + h).min(rows);
        if x >= x1 {
            return;
        }
        for row in y.min(y1)..y1 {
            self.y[row * self.w + x..row * self.w + x1].fill(value);
        }
    }
}

/// All three planes of an I420 buffer; rectangles must have even coordinates.
struct Planes<'a> {
    y: Luma<'a>,
    u: Luma<'a>,
    v: Luma<'a>,
}

impl<'a> Planes<'a> {
    fn new(buf: &'a mut [u8], w: usize, h: usize) -> Self {
        let (y, rest) = buf.split_at_mut(w * h);
        let (u, v) = rest.split_at_mut(w / 2 * (h / 2));
        Self {
            y: Luma { y, w },
            u: Luma { y: u, w: w / 2 },
            v: Luma { y: v, w: w / 2 },
        }
    }

    fn fill(&mut self, x: usize, y: usize, w: usize, h: usize, (ly, cb, cr): (u8, u8, u8)) {
        self.y.fill(x, y, w, h, ly);
        self.u.fill(x / 2, y / 2, w / 2, h / 2, cb);
        self.v.fill(x / 2, y / 2, w / 2, h / 2, cr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_round_trips() {
        for (w, h) in [(1280, 720), (1920, 1080), (640, 360)] {
            let pattern = TestPattern::new(w, h, 30).expect("valid size").unpaced();
            let mut buf = vec![0; i420_len(w, h)];
            for counter in [0u64, 1, 2, 0x00ab_cdef, 0x00ff_ffff, (1 << 24) + 5, 123_456] {
                pattern.render(
                    counter,
                    Duration::from_millis(counter % 5000),
                    SystemTime::now(),
                    &mut buf,
                );
                let got = decode_frame_code(&buf[..(w * h) as usize], w, h);
                assert_eq!(
                    got,
                    Some((counter & 0xff_ffff) as u32),
                    "{w}x{h} counter {counter}"
                );
            }
        }
        assert_eq!(code_block_size(1280), 48);
        assert_eq!(code_block_size(1920), 80);
    }

    #[test]
    fn decode_rejects_other_pictures() {
        let grey = vec![126u8; 1280 * 720];
        assert_eq!(decode_frame_code(&grey, 1280, 720), None);
        let black = vec![16u8; 1280 * 720];
        assert_eq!(decode_frame_code(&black, 1280, 720), None);
    }

    #[test]
    fn code_area_has_no_mid_grey() {
        let pattern = TestPattern::new(1280, 720, 30).expect("valid size");
        let mut buf = vec![0; i420_len(1280, 720)];
        pattern.render(0x5a5a5a, Duration::ZERO, SystemTime::now(), &mut buf);
        let rows = 2 * code_block_size(1280) as usize;
        assert!(buf[..1280 * rows].iter().all(|&p| p == BLACK || p == WHITE));
    }

    #[test]
    fn frames_advance_and_move() {
        let mut pattern = TestPattern::new(320, 180, 30)
            .expect("valid size")
            .unpaced();
        let a = pattern.next_frame().expect("frame");
        let b = pattern.next_frame().expect("frame");
        assert_eq!(decode_frame_code(a.planes().0, 320, 180), Some(0));
        assert_eq!(decode_frame_code(b.planes().0, 320, 180), Some(1));
        assert_eq!(b.pts, Duration::from_nanos(33_333_333));
        assert_ne!(a.data, b.data);
        assert!(pattern.describe().contains("320x180"));
    }

    #[test]
    fn clock_text_is_utc() {
        let t = UNIX_EPOCH + Duration::from_millis(((13 * 60 + 7) * 60 + 9) * 1000 + 42);
        assert_eq!(&clock_text(t), b"13:07:09.042");
    }

    #[test]
    fn rejects_bad_sizes() {
        assert!(TestPattern::new(1281, 720, 30).is_err());
        assert!(TestPattern::new(64, 64, 30).is_err());
        assert!(TestPattern::new(1280, 720, 0).is_err());
    }
}

#[cfg(test)]
mod flash_tests {
    use super::*;

    #[test]
    fn the_sync_flash_whitens_the_corner_right_of_the_code() {
        let pattern = TestPattern::new(1280, 720, 30).expect("valid size");
        let mut buf = vec![0; i420_len(1280, 720)];
        let corner = |buf: &[u8]| buf[1280 * 40 + 1200];
        pattern.render_marked(7, Duration::ZERO, SystemTime::now(), false, &mut buf);
        assert_eq!(corner(&buf), BLACK);
        pattern.render_marked(7, Duration::ZERO, SystemTime::now(), true, &mut buf);
        assert_eq!(corner(&buf), WHITE);
        // The frame code is unchanged by it.
        assert_eq!(buf[1280 * 24 + 24], BLACK, "bit 23 of 7 is 0");
    }
}
