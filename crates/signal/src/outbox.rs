//! A peer's queue of outgoing text frames, filled by other connections' tasks.
//!
//! A mutex-guarded VecDeque and a Notify rather than a tokio channel: an empty channel keeps
//! about 1.6 KB per connection allocated, an empty VecDeque nothing (bench/signal measured it),
//! and most connections are idle most of the time.

use axum::extract::ws::Utf8Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// Frames waiting for a slow reader, per connection. Signaling is bursty but small: a join
/// into a full room with trickle ICE queues a few dozen frames at most.
pub const OUTBOX_FRAMES: usize = 256;

#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Mutex<VecDeque<Utf8Bytes>>,
    capacity: usize,
    closed: AtomicBool,
    ready: Notify,
}

impl Outbox {
    pub fn new(capacity: usize) -> Outbox {
        Outbox {
            inner: Arc::new(Inner {
                queue: Mutex::new(VecDeque::new()),
                capacity,
                closed: AtomicBool::new(false),
                ready: Notify::new(),
            }),
        }
    }

    /// Queues a frame; a full queue means the peer stopped reading, so it is disconnected
    /// instead of buffering without bound. False when the frame was not queued.
    pub fn deliver(&self, frame: &Utf8Bytes) -> bool {
        if self.is_closed() {
            return false;
        }
        let mut queue = self.queue();
        if queue.len() >= self.inner.capacity {
            drop(queue);
            tracing::warn!("peer stopped reading its messages; disconnecting it");
            self.close();
            return false;
        }
        queue.push_back(frame.clone());
        drop(queue);
        self.inner.ready.notify_one();
        true
    }

    /// Asks the owning connection to close (it was replaced or is too slow).
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.ready.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// The next queued frame without waiting.
    pub fn try_recv(&self) -> Option<Utf8Bytes> {
        let mut queue = self.queue();
        let frame = queue.pop_front();
        if queue.is_empty() && queue.capacity() > 0 {
            // Give a burst's memory back: idle connections should cost nothing here.
            *queue = VecDeque::new();
        }
        frame
    }

    /// For the owning connection: the next frame, or None once the outbox is closed.
    pub async fn recv(&self) -> Option<Utf8Bytes> {
        loop {
            if self.is_closed() {
                return None;
            }
            if let Some(frame) = self.try_recv() {
                return Some(frame);
            }
            // notify_one leaves a permit when nobody waits, so a frame queued between the
            // check above and this await is not missed.
            self.inner.ready.notified().await;
        }
    }

    fn queue(&self) -> MutexGuard<'_, VecDeque<Utf8Bytes>> {
        // Pushing and popping cannot leave the deque inconsistent, so poison is moot.
        self.inner
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
