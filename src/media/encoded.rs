//! What the media pipeline hands the calls: encoded frames, shared by every viewer.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// One encoded video frame, shared by every viewer (encode once, send N times).
#[derive(Debug)]
pub struct EncodedVideo {
    /// Annex B, SPS and PPS in front of every IDR.
    pub data: Arc<[u8]>,
    pub keyframe: bool,
    pub pts: Duration,
    pub captured_at: Instant,
    /// The picture's size as encoded (smaller than the source's on a slow link).
    pub size: (u32, u32),
}

/// One 20 ms Opus packet of room audio.
#[derive(Debug)]
pub struct EncodedAudio {
    pub data: Arc<[u8]>,
    /// Position on the room audio's sample clock.
    pub pts: Duration,
    pub captured_at: Instant,
}
