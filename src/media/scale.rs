//! Scaling a frame down for the sender's smaller sizes on a slow link (`encode::ladder`); the
//! pixels are the `roombox-scale` crate's business, the pooled buffers and timestamps ours.

use roombox_scale::ScaleError;

use super::frame::{i420_len, FramePool, VideoFrame};

/// Keeps the resizer's scratch buffers between frames.
#[derive(Default)]
pub struct Scaler(roombox_scale::Scaler);

impl Scaler {
    /// `frame` at `width` x `height`, in a buffer from `pool`; same timestamps.
    pub fn scale(
        &mut self,
        frame: &VideoFrame,
        width: u32,
        height: u32,
        pool: &FramePool,
    ) -> Result<VideoFrame, ScaleError> {
        let mut data = pool.take(i420_len(width, height));
        let from = (frame.width, frame.height);
        self.0
            .scale(&frame.data, from, &mut data, (width, height))?;
        Ok(VideoFrame {
            width,
            height,
            data,
            captured_at: frame.captured_at,
            pts: frame.pts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn keeps_the_timestamps_and_takes_its_buffer_from_the_pool() {
        let pool = FramePool::new(2);
        pool.put(Vec::with_capacity(i420_len(640, 360)));
        let src = VideoFrame {
            width: 1280,
            height: 720,
            data: vec![128; i420_len(1280, 720)],
            captured_at: Instant::now(),
            pts: Duration::from_millis(40),
        };
        let out = Scaler::default().scale(&src, 640, 360, &pool).unwrap();
        assert_eq!((out.width, out.height), (640, 360));
        assert_eq!((out.pts, out.captured_at), (src.pts, src.captured_at));
        assert!(out.data.iter().all(|&p| p == 128));
        assert_eq!(pool.idle(), 0, "the pooled buffer was used");
    }
}
