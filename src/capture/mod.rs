//! Video capture: HDMI and cameras through V4L2 (with the "no signal" slate), y4m files and
//! the test pattern, each a blocking, paced `VideoSource` run on its own thread.

pub mod source;
pub mod testsrc;
pub mod v4l2;
pub mod y4m;

pub use source::{InputState, VideoInput, VideoOptions, VideoSource};
