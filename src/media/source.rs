//! The source traits (blocking and paced: each call returns when the next frame is due), their
//! errors, and the command-line names of the sources (`test`, `y4m:PATH`, `alsa:DEVICE`, ...).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::frame::{FramePool, VideoFrame, AUDIO_FRAME};

/// A video source. `next_frame` blocks until the next frame is due (real-time pacing).
pub trait VideoSource: Send {
    fn next_frame(&mut self) -> Result<VideoFrame, SourceError>;
    /// One line for logs, e.g. "test pattern 1280x720 at 30 fps".
    fn describe(&self) -> String;
    /// What a capture input sees right now (for the status screen and page); `None` for sources
    /// that always have a picture (test pattern, files).
    fn input_state(&self) -> Option<InputState> {
        None
    }
}

/// The state of a capture input such as HDMI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputState {
    /// A picture: its size and frame rate in hundredths of a hertz (59.94 Hz stays exact).
    Picture {
        width: u32,
        height: u32,
        fps_x100: u32,
    },
    /// The device is there but shows no picture ("no HDMI signal", "no lock", ...).
    NoSignal,
    /// The device is gone (unplugged) or cannot be opened.
    NoDevice,
}

/// An audio source of 20 ms mono frames at 48 kHz; `read_frame` blocks until a frame is ready.
pub trait AudioSource: Send {
    fn read_frame(&mut self, out: &mut [i16; AUDIO_FRAME]) -> Result<(), SourceError>;
    /// One line on how the source fared (xruns, absences), for reports; None if nothing to say.
    fn summary(&self) -> Option<String> {
        None
    }
}

/// Why a source could not be opened or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a YUV4MPEG2 file we can read: {reason}")]
    BadY4mHeader { path: String, reason: String },
    #[error("{path}: colourspace {colourspace} is not supported (use 420, 420jpeg, 420paldv, 420mpeg2 or mono)")]
    UnsupportedColourspace { path: String, colourspace: String },
    #[error("{path}: no complete frame in the file")]
    NoFrames { path: String },
    #[error("video size {width}x{height} is not supported (even sizes from {w0}x{h0} to {w1}x{h1})",
        w0 = super::limits::WIDTH.start(), h0 = super::limits::HEIGHT.start(),
        w1 = super::limits::WIDTH.end(), h1 = super::limits::HEIGHT.end())]
    BadSize { width: u32, height: u32 },
    #[error("frame rate {0} is not supported ({lo} to {hi})", lo = super::limits::FPS.start(), hi = super::limits::FPS.end())]
    BadFrameRate(u32),
    #[error("ALSA capture device {device:?}: {reason}")]
    AlsaConfig { device: String, reason: String },
    #[error("V4L2 capture: {0}")]
    V4l2(String),
}

/// A source or sink name on the command line or in the config file that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {given:?}: expected {expected}")]
pub struct SpecError {
    pub what: &'static str,
    pub given: String,
    pub expected: &'static str,
}

/// Where video comes from: `test` | `y4m:PATH` | `v4l2:DEVICE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoInput {
    Test,
    Y4m(PathBuf),
    V4l2(String),
}

impl FromStr for VideoInput {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let err = || SpecError {
            what: "video source",
            given: s.to_owned(),
            expected: "test, y4m:PATH or v4l2:DEVICE",
        };
        match s.split_once(':') {
            None if s == "test" => Ok(Self::Test),
            Some(("y4m", path)) if !path.is_empty() => Ok(Self::Y4m(path.into())),
            Some(("v4l2", dev)) if !dev.is_empty() => Ok(Self::V4l2(dev.to_owned())),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for VideoInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Test => f.write_str("test"),
            Self::Y4m(p) => write!(f, "y4m:{}", p.display()),
            Self::V4l2(d) => write!(f, "v4l2:{d}"),
        }
    }
}

/// What a video source is opened with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoOptions {
    /// The test pattern's size; what a camera is asked for; the slate's size before a V4L2
    /// input has shown a picture. HDMI inputs and y4m files bring their own.
    pub width: u32,
    pub height: u32,
    /// Frames a second: the test pattern's rate, the most a V4L2 input delivers, the slate's.
    pub fps: u32,
    /// The box's display name, shown on the "no signal" slate.
    pub box_name: String,
}

impl VideoInput {
    /// Opens the source. Frame buffers come from `pool` (the consumer recycles them into it).
    pub fn open(
        &self,
        options: &VideoOptions,
        pool: &FramePool,
    ) -> Result<Box<dyn VideoSource>, SourceError> {
        let VideoOptions {
            width, height, fps, ..
        } = *options;
        match self {
            Self::Test => Ok(Box::new(
                super::testsrc::TestPattern::new(width, height, fps)?.with_pool(pool.clone()),
            )),
            Self::Y4m(path) => Ok(Box::new(
                super::y4m::Y4mFile::open(path)?.with_pool(pool.clone()),
            )),
            Self::V4l2(dev) => {
                if !super::limits::fps_ok(fps) {
                    return Err(SourceError::BadFrameRate(fps));
                }
                Ok(Box::new(super::v4l2::V4l2Capture::open(
                    dev,
                    options,
                    None,
                    pool.clone(),
                )?))
            }
        }
    }
}

/// Where room audio comes from: `test` | `alsa:DEVICE` | `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioInput {
    Test,
    Alsa(String),
    None,
}

impl FromStr for AudioInput {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        match s.split_once(':') {
            None if s == "test" => Ok(Self::Test),
            None if s == "none" => Ok(Self::None),
            Some(("alsa", dev)) if !dev.is_empty() => Ok(Self::Alsa(dev.to_owned())),
            _ => Err(SpecError {
                what: "audio input",
                given: s.to_owned(),
                expected: "test, alsa:DEVICE or none",
            }),
        }
    }
}

impl fmt::Display for AudioInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Test => f.write_str("test"),
            Self::Alsa(d) => write!(f, "alsa:{d}"),
            Self::None => f.write_str("none"),
        }
    }
}

impl AudioInput {
    /// Opens the source; `None` for `none`.
    pub fn open(&self) -> Result<Option<Box<dyn AudioSource>>, SourceError> {
        match self {
            Self::Test => Ok(Some(Box::new(super::tone::Tone::new()))),
            Self::Alsa(dev) => Ok(Some(Box::new(super::alsa::AlsaCapture::open(dev)))),
            Self::None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_video_inputs() {
        assert_eq!("test".parse(), Ok(VideoInput::Test));
        assert_eq!(
            "y4m:/a/b.y4m".parse(),
            Ok(VideoInput::Y4m("/a/b.y4m".into()))
        );
        assert_eq!(
            "v4l2:/dev/video0".parse(),
            Ok(VideoInput::V4l2("/dev/video0".into()))
        );
        for bad in ["", "y4m:", "webcam", "test:x", "hdmi:0"] {
            let err = bad.parse::<VideoInput>().expect_err(bad);
            assert!(
                err.to_string()
                    .contains("expected test, y4m:PATH or v4l2:DEVICE"),
                "{err}"
            );
        }
        assert_eq!(VideoInput::Y4m("x.y4m".into()).to_string(), "y4m:x.y4m");
    }

    fn options() -> VideoOptions {
        VideoOptions {
            width: 320,
            height: 180,
            fps: 30,
            box_name: "Board Room".into(),
        }
    }

    #[test]
    fn a_missing_v4l2_node_opens_on_the_slate() {
        // A capture dongle that is not plugged in yet must not stop the box: frames come, they
        // are the slate at the configured size, and they name the box and the reason.
        let mut source = VideoInput::V4l2("/dev/video-roombox-test-missing".into())
            .open(&options(), &FramePool::default())
            .expect("opens on the slate");
        assert!(
            source.describe().contains("capture device missing"),
            "{}",
            source.describe()
        );
        let frame = source.next_frame().expect("slate frame");
        assert_eq!((frame.width, frame.height), (320, 180));
        let slate = super::super::v4l2::slate::render(
            320,
            180,
            "Board Room",
            super::super::v4l2::signal::NoPicture::DeviceMissing,
        );
        assert_eq!(frame.data, slate);
    }

    #[test]
    fn a_node_that_is_not_v4l2_is_an_error() {
        let err = VideoInput::V4l2("/dev/null".into())
            .open(&options(), &FramePool::default())
            .err()
            .expect("error");
        assert!(err.to_string().contains("/dev/null"), "{err}");
    }

    #[test]
    fn parses_audio_inputs() {
        assert_eq!("test".parse(), Ok(AudioInput::Test));
        assert_eq!("none".parse(), Ok(AudioInput::None));
        assert_eq!("alsa:hw:1,0".parse(), Ok(AudioInput::Alsa("hw:1,0".into())));
        assert!("alsa:".parse::<AudioInput>().is_err());
        assert!("pulse".parse::<AudioInput>().is_err());
        assert!(AudioInput::None.open().expect("none opens").is_none());
    }
}
