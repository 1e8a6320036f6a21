//! The hand-off from a capture thread to the encoder thread, shared by the box and by
//! `roombox record`: the latest frame wins. Capture never waits for the encoder; a frame the
//! encoder has not taken yet is replaced (and counted), so latency never queues up. Only an
//! unpaced source that must lose nothing (the recorder's benchmark mode) waits instead.

use super::frame::{FramePool, VideoFrame};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

#[derive(Default)]
struct Slot {
    frame: Option<VideoFrame>,
    /// Frames replaced before the encoder took them.
    dropped: u64,
    /// The capture side has ended: no frame will come.
    finished: bool,
}

#[derive(Default)]
pub struct Mailbox {
    slot: Mutex<Slot>,
    changed: Condvar,
    /// Frame buffers go back here once encoded or replaced, so capture stops allocating.
    pub pool: FramePool,
}

impl Mailbox {
    pub fn with_pool(pool: FramePool) -> Mailbox {
        Mailbox {
            pool,
            ..Mailbox::default()
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Leaves `frame` for the encoder, replacing (and counting) one it has not taken yet.
    pub fn put(&self, frame: VideoFrame) {
        let mut slot = self.lock();
        if let Some(old) = slot.frame.replace(frame) {
            slot.dropped += 1;
            old.recycle(&self.pool);
        }
        self.changed.notify_all();
    }

    /// Leaves `frame` once the encoder has taken the previous one (nothing is dropped).
    pub fn put_waiting(&self, frame: VideoFrame) {
        let slot = self.lock();
        let mut slot = self
            .changed
            .wait_while(slot, |s| s.frame.is_some())
            .unwrap_or_else(PoisonError::into_inner);
        slot.frame = Some(frame);
        self.changed.notify_all();
    }

    /// The next frame, waiting at most `wait`; None on time-out or once finished and empty.
    pub fn take(&self, wait: Duration) -> Option<VideoFrame> {
        let slot = self.lock();
        let (mut slot, _) = self
            .changed
            .wait_timeout_while(slot, wait, |s| s.frame.is_none() && !s.finished)
            .unwrap_or_else(PoisonError::into_inner);
        let frame = slot.frame.take();
        if frame.is_some() {
            self.changed.notify_all(); // a waiting `put_waiting` may go on
        }
        frame
    }

    /// Frames replaced before the encoder took them.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// The capture side is done; the encoder drains what is left and stops.
    pub fn finish(&self) {
        self.lock().finished = true;
        self.changed.notify_all();
    }

    /// Finished, and the last frame taken.
    pub fn is_done(&self) -> bool {
        let slot = self.lock();
        slot.finished && slot.frame.is_none()
    }

    /// Wakes a waiting encoder (it checks its stop flag).
    pub fn wake(&self) {
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    fn frame(n: u8) -> VideoFrame {
        VideoFrame {
            width: 2,
            height: 2,
            data: vec![n; 6],
            captured_at: Instant::now(),
            pts: Duration::from_millis(u64::from(n)),
        }
    }

    #[test]
    fn the_latest_frame_wins_and_replaced_ones_are_counted() {
        let m = Mailbox::default();
        m.put(frame(1));
        m.put(frame(2));
        m.put(frame(3));
        assert_eq!(m.take(Duration::ZERO).map(|f| f.data[0]), Some(3));
        assert_eq!(m.dropped(), 2);
        assert!(m.take(Duration::from_millis(1)).is_none());
    }

    #[test]
    fn put_waiting_loses_nothing_and_finish_ends_the_encoder() {
        let m = Arc::new(Mailbox::default());
        let producer = {
            let m = m.clone();
            std::thread::spawn(move || {
                for n in 0..50 {
                    m.put_waiting(frame(n));
                }
                m.finish();
            })
        };
        let mut got = Vec::new();
        while !m.is_done() {
            if let Some(f) = m.take(Duration::from_millis(100)) {
                got.push(f.data[0]);
            }
        }
        producer.join().unwrap();
        assert_eq!(got, (0..50).collect::<Vec<u8>>());
        assert_eq!(m.dropped(), 0);
    }
}
