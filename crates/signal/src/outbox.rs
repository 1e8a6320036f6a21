//! A peer's queue of outgoing text frames, filled by other connections' tasks.

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Frames waiting for a slow reader, per connection. Signaling is bursty but small: a join
/// into a full room with trickle ICE queues a few dozen frames at most.
pub const OUTBOX_FRAMES: usize = 256;

#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Utf8Bytes>,
    closed: CancellationToken,
}

impl Outbox {
    pub fn new(capacity: usize) -> (Outbox, mpsc::Receiver<Utf8Bytes>, CancellationToken) {
        let (tx, rx) = mpsc::channel(capacity);
        let closed = CancellationToken::new();
        let outbox = Outbox {
            tx,
            closed: closed.clone(),
        };
        (outbox, rx, closed)
    }

    /// Queues a frame; a full queue means the peer stopped reading, so it is disconnected
    /// instead of buffering without bound. False when the frame was not queued.
    pub fn deliver(&self, frame: &Utf8Bytes) -> bool {
        match self.tx.try_send(frame.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!("peer stopped reading its messages; disconnecting it");
                self.close();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Asks the owning connection to close (it was replaced or is too slow).
    pub fn close(&self) {
        self.closed.cancel();
    }
}
