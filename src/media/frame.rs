//! Raw media units passed between capture, encode and playout threads, and a buffer pool so
//! steady-state video capture does not allocate a frame buffer per frame.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Audio sample rate everywhere in the box (Opus' native rate, RFC 7587).
pub const AUDIO_RATE: u32 = 48_000;
/// Samples in one 20 ms mono audio frame at [`AUDIO_RATE`].
pub const AUDIO_FRAME: usize = 960;
/// Duration of one audio frame.
pub const AUDIO_FRAME_DURATION: Duration = Duration::from_millis(20);

/// One uncompressed video frame.
#[derive(Debug, Clone)]
pub struct VideoFrame {
    pub width: u32,
    pub height: u32,
    /// I420: the Y plane, then U, then V, tightly packed (strides = width, width / 2).
    pub data: Vec<u8>,
    /// When the source produced (or captured) the frame.
    pub captured_at: Instant,
    /// Presentation time since the source started.
    pub pts: Duration,
}

/// Bytes of an I420 frame of this size (chroma planes round up for odd sizes).
pub use roombox_scale::i420_len;

impl VideoFrame {
    /// The Y, U and V planes.
    pub fn planes(&self) -> (&[u8], &[u8], &[u8]) {
        let y_len = self.width as usize * self.height as usize;
        let c_len = (self.width as usize).div_ceil(2) * (self.height as usize).div_ceil(2);
        let (y, rest) = self.data.split_at(y_len);
        let (u, v) = rest.split_at(c_len);
        (y, u, &v[..c_len])
    }

    /// Hands the buffer back to `pool` for a later frame.
    pub fn recycle(self, pool: &FramePool) {
        pool.put(self.data);
    }
}

/// A small shared stock of frame buffers. Sources take from it, whoever consumes the frame last
/// (normally the encoder thread) gives the buffer back with [`VideoFrame::recycle`]. Cloning
/// shares the stock. A frame that is dropped instead of recycled only costs one allocation.
#[derive(Debug, Clone)]
pub struct FramePool {
    stock: Arc<Mutex<Vec<Vec<u8>>>>,
    max: usize,
}

impl FramePool {
    /// A pool that keeps at most `max` idle buffers.
    pub fn new(max: usize) -> Self {
        Self {
            stock: Arc::new(Mutex::new(Vec::with_capacity(max))),
            max,
        }
    }

    /// A buffer of exactly `len` bytes; the contents are unspecified (old frame data or zeros).
    pub fn take(&self, len: usize) -> Vec<u8> {
        let reused = self.lock().pop();
        match reused {
            Some(mut buf) => {
                buf.resize(len, 0);
                buf
            }
            None => vec![0; len],
        }
    }

    /// Returns a buffer to the stock (dropped if the stock is full).
    pub fn put(&self, buf: Vec<u8>) {
        let mut stock = self.lock();
        if stock.len() < self.max {
            stock.push(buf);
        }
    }

    /// Idle buffers in the stock.
    pub fn idle(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        // A panic while holding this lock cannot leave the Vec inconsistent, so poison is moot.
        self.stock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for FramePool {
    fn default() -> Self {
        Self::new(4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_reuses_buffers() {
        let pool = FramePool::new(2);
        let buf = pool.take(i420_len(4, 4));
        assert_eq!(buf.len(), 24);
        let ptr = buf.as_ptr();
        let frame = VideoFrame {
            width: 4,
            height: 4,
            data: buf,
            captured_at: Instant::now(),
            pts: Duration::ZERO,
        };
        let (y, u, v) = frame.planes();
        assert_eq!((y.len(), u.len(), v.len()), (16, 4, 4));
        frame.recycle(&pool);
        assert_eq!(pool.idle(), 1);
        let again = pool.take(24);
        assert_eq!(again.as_ptr(), ptr);
        pool.put(vec![]);
        pool.put(vec![]);
        pool.put(vec![]);
        assert_eq!(pool.idle(), 2);
    }
}
