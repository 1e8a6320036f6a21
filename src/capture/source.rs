//! The video source trait (blocking and paced: each call returns when the next frame is due)
//! and the opening of the source a `VideoInput` setting names.

use crate::config::limits;
pub use crate::config::VideoInput;
use crate::media::{FramePool, SourceError, VideoFrame};

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
                if !limits::fps_ok(fps) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let slate = crate::capture::v4l2::slate::render(
            320,
            180,
            "Board Room",
            crate::capture::v4l2::signal::NoPicture::DeviceMissing,
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
}
