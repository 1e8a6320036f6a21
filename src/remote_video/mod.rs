//! The remote people's video on the box's own screen: browser screen shares now, cameras later.
//!
//! - [`decode`]: H.264 access units to I420 frames ([`H264Decoder`], openh264), behind
//!   [`VideoDecoder`]; [`v4l2m2m`]: the same on a V4L2 stateful decoder (the Pi's hardware);
//!   [`choose`]: which one the `decoder` setting opens.
//! - [`compose`]: the layout of the call drawn into a `MemoryFramebuffer` ([`compose()`]).
//! - [`y4m`]: what the display shows, written to a YUV4MPEG2 file ([`Y4mSink`]), and read back.
//! - [`picture`]: the senders' latest pictures as the drawers share them ([`CallPicture`]).
//!
//! All but `v4l2m2m` are pure (no threads, no devices); the caller owns the loop and the DRM
//! output.

pub mod choose;
pub mod compose;
pub mod decode;
pub mod picture;
pub mod v4l2m2m;
pub mod y4m;

pub use compose::{compose, Tile, VideoKind};
pub use decode::{DecodeError, H264Decoder, VideoDecoder};
pub use picture::{CallPicture, Shown};
pub use y4m::{read_y4m, Y4mSink};
