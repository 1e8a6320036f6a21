//! A YUV4MPEG2 (`.y4m`) file as a video source: looped at the end, paced in real time at the
//! file's frame rate. 4:2:0 files (C420, C420jpeg, C420paldv, C420mpeg2; the chroma siting
//! differences are ignored) pass through; `Cmono` gets neutral chroma.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Instant;

use super::source::VideoSource;
use crate::media::frame::{i420_len, FramePool, VideoFrame};
use crate::media::pace::Pacer;
use crate::media::SourceError;

/// Longest header or FRAME line accepted (real ones are well under 100 bytes).
const MAX_LINE: u64 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    I420,
    Mono,
}

/// The parsed stream header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Y4mHeader {
    pub width: u32,
    pub height: u32,
    pub fps_num: u32,
    pub fps_den: u32,
    layout: Layout,
}

impl Y4mHeader {
    /// Parses the first line (without its newline). `Err` carries the reason.
    fn parse(line: &[u8]) -> Result<Self, ParseFail> {
        let line = std::str::from_utf8(line)
            .map_err(|_| ParseFail::Header("header is not ASCII".into()))?;
        let mut tokens = line.split(' ').filter(|t| !t.is_empty());
        if tokens.next() != Some("YUV4MPEG2") {
            return Err(ParseFail::Header("missing the YUV4MPEG2 signature".into()));
        }
        let (mut width, mut height, mut fps) = (None, None, None);
        let mut layout = Layout::I420;
        for token in tokens {
            let (tag, value) = token.split_at(1);
            let bad = || ParseFail::Header(format!("bad parameter {token:?}"));
            match tag {
                "W" => width = Some(value.parse::<u32>().map_err(|_| bad())?),
                "H" => height = Some(value.parse::<u32>().map_err(|_| bad())?),
                "F" => {
                    let (n, d) = value.split_once(':').ok_or_else(bad)?;
                    fps = Some((
                        n.parse::<u32>().map_err(|_| bad())?,
                        d.parse::<u32>().map_err(|_| bad())?,
                    ));
                }
                "C" => {
                    layout = match value {
                        "420" | "420jpeg" | "420paldv" | "420mpeg2" => Layout::I420,
                        "mono" => Layout::Mono,
                        other => return Err(ParseFail::Colourspace(other.to_owned())),
                    }
                }
                // Interlacing, aspect ratio and extensions do not change the sample layout.
                _ => {}
            }
        }
        let width = width
            .filter(|&w| w > 0)
            .ok_or_else(|| ParseFail::Header("no width (W)".into()))?;
        let height = height
            .filter(|&h| h > 0)
            .ok_or_else(|| ParseFail::Header("no height (H)".into()))?;
        if width > 8192 || height > 8192 {
            return Err(ParseFail::Header(format!(
                "frame size {width}x{height} is too large"
            )));
        }
        let (fps_num, fps_den) =
            fps.ok_or_else(|| ParseFail::Header("no frame rate (F)".into()))?;
        if fps_num == 0 || fps_den == 0 || fps_num / fps_den > 240 {
            return Err(ParseFail::Header(format!(
                "frame rate {fps_num}:{fps_den} is out of range"
            )));
        }
        Ok(Self {
            width,
            height,
            fps_num,
            fps_den,
            layout,
        })
    }

    /// Bytes of one frame's samples in the file.
    fn frame_bytes(&self) -> usize {
        match self.layout {
            Layout::I420 => i420_len(self.width, self.height),
            Layout::Mono => self.width as usize * self.height as usize,
        }
    }
}

enum ParseFail {
    Header(String),
    Colourspace(String),
}

/// A looping, paced y4m file source.
pub struct Y4mFile {
    path: String,
    reader: BufReader<File>,
    header: Y4mHeader,
    data_start: u64,
    pacer: Pacer,
    pool: FramePool,
    line: Vec<u8>,
}

impl Y4mFile {
    /// Opens the file, reads its header and checks it holds at least one frame.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SourceError> {
        let path_ref = path.as_ref();
        let path = path_ref.display().to_string();
        let io = |source| SourceError::Io {
            what: path.clone(),
            source,
        };
        let file = File::open(path_ref).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let mut line = Vec::with_capacity(128);
        (&mut reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .map_err(io)?;
        if line.last() != Some(&b'\n') {
            return Err(SourceError::BadY4mHeader {
                path,
                reason: "no header line".into(),
            });
        }
        let header = Y4mHeader::parse(&line[..line.len() - 1]).map_err(|fail| match fail {
            ParseFail::Header(reason) => SourceError::BadY4mHeader {
                path: path.clone(),
                reason,
            },
            ParseFail::Colourspace(colourspace) => SourceError::UnsupportedColourspace {
                path: path.clone(),
                colourspace,
            },
        })?;
        let data_start = line.len() as u64;
        // "FRAME\n" plus the samples.
        if file_len < data_start + 6 + header.frame_bytes() as u64 {
            return Err(SourceError::NoFrames { path });
        }
        Ok(Self {
            pacer: Pacer::new(header.fps_num, header.fps_den, true),
            path,
            reader,
            header,
            data_start,
            pool: FramePool::default(),
            line,
        })
    }

    /// Never sleeps (tests, benchmarks).
    pub fn unpaced(mut self) -> Self {
        self.pacer = Pacer::new(self.header.fps_num, self.header.fps_den, false);
        self
    }

    /// Takes frame buffers from `pool`.
    pub fn with_pool(mut self, pool: FramePool) -> Self {
        self.pool = pool;
        self
    }

    pub fn header(&self) -> &Y4mHeader {
        &self.header
    }

    fn io(&self, source: std::io::Error) -> SourceError {
        SourceError::Io {
            what: self.path.clone(),
            source,
        }
    }

    /// Reads the next frame's samples into `data`; `Ok(false)` at the end of the file (or a
    /// truncated last frame).
    fn read_frame(&mut self, data: &mut [u8]) -> Result<bool, SourceError> {
        self.line.clear();
        let n = (&mut self.reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut self.line)
            .map_err(|e| self.io(e))?;
        if n == 0 || self.line.last() != Some(&b'\n') {
            return Ok(false);
        }
        if !self.line.starts_with(b"FRAME") {
            return Err(SourceError::BadY4mHeader {
                path: self.path.clone(),
                reason: "a frame does not start with FRAME".into(),
            });
        }
        let samples = self.header.frame_bytes();
        match self.reader.read_exact(&mut data[..samples]) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(self.io(e)),
        }
        if self.header.layout == Layout::Mono {
            data[samples..].fill(128);
        }
        Ok(true)
    }
}

impl VideoSource for Y4mFile {
    fn next_frame(&mut self) -> Result<VideoFrame, SourceError> {
        let (_, pts) = self.pacer.wait();
        let captured_at = Instant::now();
        let mut data = self
            .pool
            .take(i420_len(self.header.width, self.header.height));
        if !self.read_frame(&mut data)? {
            self.reader
                .seek(SeekFrom::Start(self.data_start))
                .map_err(|e| self.io(e))?;
            if !self.read_frame(&mut data)? {
                return Err(SourceError::NoFrames {
                    path: self.path.clone(),
                });
            }
        }
        Ok(VideoFrame {
            width: self.header.width,
            height: self.header.height,
            data,
            captured_at,
            pts,
        })
    }

    fn describe(&self) -> String {
        let h = &self.header;
        format!(
            "y4m file {} {}x{} at {}/{} fps",
            self.path, h.width, h.height, h.fps_num, h.fps_den
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_path(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("roombox-y4m-{}-{name}", std::process::id()))
    }

    fn write_y4m(name: &str, header: &str, frames: &[Vec<u8>]) -> std::path::PathBuf {
        let path = temp_path(name);
        let mut f = File::create(&path).expect("create temp file");
        writeln!(f, "{header}").expect("write");
        for frame in frames {
            f.write_all(b"FRAME\n").expect("write");
            f.write_all(frame).expect("write");
        }
        path
    }

    #[test]
    fn reads_and_loops() {
        let frames: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i * 10; i420_len(64, 48)]).collect();
        let path = write_y4m(
            "loop.y4m",
            "YUV4MPEG2 W64 H48 F30000:1001 Ip A1:1 C420jpeg XYSCSS=420JPEG",
            &frames,
        );
        let mut src = Y4mFile::open(&path).expect("opens").unpaced();
        assert_eq!((src.header().width, src.header().height), (64, 48));
        assert!(src.describe().contains("64x48 at 30000/1001"));
        let seen: Vec<u8> = (0..7)
            .map(|_| src.next_frame().expect("frame").data[0])
            .collect();
        assert_eq!(seen, [0, 10, 20, 0, 10, 20, 0]);
        std::fs::remove_file(path).ok();
    }

    #[test]
    fn mono_gets_neutral_chroma() {
        let path = write_y4m("mono.y4m", "YUV4MPEG2 W8 H4 F25:1 Cmono", &[vec![77; 32]]);
        let mut src = Y4mFile::open(&path).expect("opens").unpaced();
        let frame = src.next_frame().expect("frame");
        let (y, u, v) = frame.planes();
        assert!(y.iter().all(|&p| p == 77));
        assert!(u.iter().chain(v).all(|&p| p == 128));
        std::fs::remove_file(path).ok();
    }

    #[test]
    fn clear_errors() {
        let cases = [
            ("magic.y4m", "YUV4MPEG W8 H4 F25:1", "signature"),
            ("cs.y4m", "YUV4MPEG2 W8 H4 F25:1 C444", "colourspace 444"),
            ("w.y4m", "YUV4MPEG2 H4 F25:1", "no width"),
            ("f.y4m", "YUV4MPEG2 W8 H4", "no frame rate"),
            ("f0.y4m", "YUV4MPEG2 W8 H4 F25:0", "frame rate"),
        ];
        for (name, header, needle) in cases {
            let path = write_y4m(name, header, &[vec![0; 48]]);
            let err = Y4mFile::open(&path).err().expect("must fail");
            assert!(err.to_string().contains(needle), "{name}: {err}");
            assert!(err.to_string().contains(name), "names the file: {err}");
            std::fs::remove_file(path).ok();
        }
        let path = write_y4m("empty.y4m", "YUV4MPEG2 W8 H4 F25:1", &[]);
        assert!(matches!(
            Y4mFile::open(&path),
            Err(SourceError::NoFrames { .. })
        ));
        std::fs::remove_file(path).ok();
        assert!(matches!(
            Y4mFile::open(temp_path("missing.y4m")),
            Err(SourceError::Io { .. })
        ));
    }
}
