//! The remote people's video on the box's own screen: browser screen shares now, cameras later.
//!
//! - [`decode`]: H.264 access units to I420 frames ([`H264Decoder`]).
//! - [`compose`]: the layout of the call drawn into a `MemoryFramebuffer` ([`compose()`]).
//! - [`y4m`]: what the display shows, written to a YUV4MPEG2 file ([`Y4mSink`]), and read back.
//! - [`picture`]: the senders' latest pictures as the drawers share them ([`CallPicture`]).
//!
//! All are pure (no threads, no devices); the caller owns the loop and the DRM output.

pub mod compose;
pub mod decode;
pub mod picture;
pub mod y4m;

pub use compose::{compose, Tile, VideoKind};
pub use decode::{DecodeError, H264Decoder};
pub use picture::{CallPicture, Shown};
pub use y4m::{read_y4m, Y4mSink};
