//! What the display shows, as a YUV4MPEG2 file: a sink any player (ffplay, mpv) opens and tests
//! read back with [`read_y4m`], for running the call's display without a screen.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

use crate::display::framebuffer::MemoryFramebuffer;
use crate::media::frame::i420_len;
use roombox_scale::convert::xrgb_to_i420;

/// Writes framebuffers as I420 frames (BT.601 limited range, chroma the average of each 2x2
/// block, the way `C420jpeg` sites it).
pub struct Y4mSink {
    out: BufWriter<File>,
    width: u32,
    height: u32,
    /// One frame's planes, reused from frame to frame.
    planes: Vec<u8>,
}

impl std::fmt::Debug for Y4mSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Y4mSink")
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl Y4mSink {
    /// Creates (or truncates) `path` and writes the stream header. Every frame written must be
    /// `width` x `height`.
    pub fn create(path: impl AsRef<Path>, width: u32, height: u32, fps: u32) -> io::Result<Self> {
        if width == 0 || height == 0 || fps == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("y4m: cannot write a {width}x{height} stream at {fps} fps"),
            ));
        }
        let mut out = BufWriter::new(File::create(path)?);
        writeln!(
            out,
            "YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg"
        )?;
        Ok(Self {
            out,
            width,
            height,
            planes: vec![0; i420_len(width, height)],
        })
    }

    /// Appends one frame. Flushed before returning, so a reader of the file sees whole frames.
    pub fn write(&mut self, frame: &MemoryFramebuffer) -> io::Result<()> {
        if (frame.width(), frame.height()) != (self.width, self.height) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "y4m: a {}x{} frame in a {}x{} stream",
                    frame.width(),
                    frame.height(),
                    self.width,
                    self.height
                ),
            ));
        }
        xrgb_to_i420(
            frame.data(),
            frame.stride(),
            self.width as usize,
            self.height as usize,
            &mut self.planes,
        );
        self.out.write_all(b"FRAME\n")?;
        self.out.write_all(&self.planes)?;
        self.out.flush()
    }

    /// Flushes and closes the file, reporting an error a drop would swallow.
    pub fn finish(mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()
    }
}

/// Reads a 4:2:0 YUV4MPEG2 file: width, height and every frame's I420 planes. For tests and
/// tools; it holds the whole file in memory.
pub fn read_y4m(path: impl AsRef<Path>) -> io::Result<(u32, u32, Vec<Vec<u8>>)> {
    let bad = |msg: String| io::Error::new(io::ErrorKind::InvalidData, format!("y4m: {msg}"));
    let mut input = BufReader::new(File::open(path)?);
    let mut header = String::new();
    input.read_line(&mut header)?;
    let mut fields = header.trim_end_matches('\n').split(' ');
    if fields.next() != Some("YUV4MPEG2") {
        return Err(bad(format!("not a YUV4MPEG2 header: {header:?}")));
    }
    let (mut width, mut height) = (None, None);
    for field in fields {
        let (tag, value) = field.split_at(field.len().min(1));
        match tag {
            "W" => width = value.parse::<u32>().ok(),
            "H" => height = value.parse::<u32>().ok(),
            "C" if !value.starts_with("420") => {
                return Err(bad(format!("colour space {value} is not 4:2:0")))
            }
            _ => {}
        }
    }
    let (Some(width), Some(height)) = (width, height) else {
        return Err(bad(format!("no width or height in {header:?}")));
    };
    let len = i420_len(width, height);
    let mut frames = vec![];
    loop {
        let mut line = Vec::new();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if !line.starts_with(b"FRAME") || line.last() != Some(&b'\n') {
            return Err(bad(format!("frame {} has no FRAME line", frames.len())));
        }
        let mut frame = vec![0; len];
        input
            .read_exact(&mut frame)
            .map_err(|e| bad(format!("frame {} is cut short: {e}", frames.len())))?;
        frames.push(frame);
    }
    Ok((width, height, frames))
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_graphics::pixelcolor::Rgb888;
    use embedded_graphics::prelude::*;
    use embedded_graphics::primitives::Rectangle;

    fn temp_path(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("roombox-y4m-{}-{name}.y4m", std::process::id()))
    }

    #[test]
    fn three_frames_read_back_with_the_right_header_and_levels() {
        let path = temp_path("levels");
        let (w, h) = (64, 36);
        let mut fb = MemoryFramebuffer::new(w, h);
        let mut sink = Y4mSink::create(&path, w, h, 30).expect("create");
        for color in [Rgb888::WHITE, Rgb888::BLACK, Rgb888::RED] {
            fb.clear(color).unwrap();
            sink.write(&fb).expect("write");
        }
        sink.finish().expect("finish");

        let text = std::fs::read(&path).expect("read");
        assert!(text.starts_with(b"YUV4MPEG2 W64 H36 F30:1 Ip A1:1 C420jpeg\nFRAME\n"));
        let (rw, rh, frames) = read_y4m(&path).expect("parse");
        std::fs::remove_file(&path).ok();
        assert_eq!((rw, rh), (w, h));
        assert_eq!(frames.len(), 3);
        let luma = (w * h) as usize;
        let c = luma / 4;
        for f in &frames {
            assert_eq!(f.len(), i420_len(w, h));
        }
        let (white, black, red) = (&frames[0], &frames[1], &frames[2]);
        assert!(white[..luma].iter().all(|&y| y.abs_diff(235) <= 1));
        assert!(white[luma..].iter().all(|&c| c.abs_diff(128) <= 1));
        assert!(black[..luma].iter().all(|&y| y.abs_diff(16) <= 1));
        assert!(black[luma..].iter().all(|&c| c.abs_diff(128) <= 1));
        // Red: Y 82, U 90, V 240 in BT.601 limited range.
        assert!(red[..luma].iter().all(|&y| y.abs_diff(82) <= 1));
        assert!(red[luma..luma + c].iter().all(|&u| u.abs_diff(90) <= 1));
        assert!(red[luma + c..].iter().all(|&v| v.abs_diff(240) <= 1));
    }

    #[test]
    fn chroma_averages_each_two_by_two_block_of_an_odd_size() {
        let path = temp_path("odd");
        let mut fb = MemoryFramebuffer::new(3, 3);
        fb.clear(Rgb888::BLACK).unwrap();
        // Left column white: the first chroma column averages 2 white and 2 black pixels (top
        // block), the second is black only.
        fb.fill_solid(
            &Rectangle::new(Point::zero(), Size::new(1, 3)),
            Rgb888::WHITE,
        )
        .unwrap();
        let mut sink = Y4mSink::create(&path, 3, 3, 25).expect("create");
        sink.write(&fb).expect("write");
        assert!(sink.write(&MemoryFramebuffer::new(4, 4)).is_err());
        sink.finish().expect("finish");
        let (w, h, frames) = read_y4m(&path).expect("parse");
        std::fs::remove_file(&path).ok();
        assert_eq!((w, h, frames.len()), (3, 3, 1));
        let f = &frames[0];
        assert_eq!(f.len(), 9 + 4 + 4);
        assert_eq!(&f[..9], &[235, 16, 16, 235, 16, 16, 235, 16, 16]);
        // Grey chroma everywhere: neutral whatever the mix of white and black.
        assert!(f[9..].iter().all(|&c| c.abs_diff(128) <= 1));
    }

    #[test]
    fn a_cut_short_file_is_an_error() {
        let path = temp_path("short");
        std::fs::write(&path, b"YUV4MPEG2 W4 H4 F30:1 C420jpeg\nFRAME\n0123").expect("write");
        let err = read_y4m(&path).expect_err("short frame");
        std::fs::remove_file(&path).ok();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("cut short"), "{err}");
    }
}
