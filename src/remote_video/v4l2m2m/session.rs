//! One decoding session on a stateful decoder, whatever the coded format: the coded queue
//! started, access units in, the picture format taken when the driver announces it (the first
//! headers, a resolution change: the CAPTURE queue is set up again), decoded pictures out as
//! packed I420. The H.264 decoder is this with `H264`; the VM tests run it on vicodec (FWHT).

use std::time::{Duration, Instant};

use super::device::{DecoderDevice, DeviceError, FourCc, RawLayout};
use crate::m2m::layout::read_frame;
use crate::media::frame::VideoFrame;

/// Coded buffers: one being filled, the rest with the driver.
const OUTPUT_BUFFERS: u32 = 4;
/// Picture buffers asked for; drivers raise it to what the stream's references need.
const CAPTURE_BUFFERS: u32 = 6;
/// A coded buffer holds one access unit: 1 MiB covers a 1080p keyframe at any sane bitrate.
const CODED_BUFFER_SIZE: u32 = 1 << 20;
/// How long to wait for the driver to give back a coded buffer.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long `decode` waits for the picture of what it just queued: decoders run on their own
/// (a worker thread, the Pi's VideoCore), a few milliseconds a picture.
const PICTURE_WAIT: Duration = Duration::from_millis(30);
/// How long a resolution change may take to hand back the old size's last picture.
const DRAIN_WAIT: Duration = Duration::from_millis(500);

/// A streaming decoder.
pub struct DecodeSession<D: DecoderDevice> {
    device: D,
    /// The pictures' layout, once the driver has read the stream's headers.
    layout: Option<RawLayout>,
    /// The timestamp of the last access unit queued (1, 2, ...: the driver copies it onto the
    /// picture decoded from it, which is how pictures still inside are counted).
    queued: u64,
    /// The timestamp of the newest picture out.
    decoded: u64,
}

impl<D: DecoderDevice> DecodeSession<D> {
    /// Starts the coded queue of `device` for `coded`; pictures come once the first headers
    /// are in.
    pub fn start(mut device: D, coded: FourCc) -> Result<Self, DeviceError> {
        device.start_output(coded, CODED_BUFFER_SIZE, OUTPUT_BUFFERS)?;
        Ok(DecodeSession {
            device,
            layout: None,
            queued: 0,
            decoded: 0,
        })
    }

    pub fn device(&self) -> &D {
        &self.device
    }

    /// The pictures' layout, once known.
    pub fn layout(&self) -> Option<&RawLayout> {
        self.layout.as_ref()
    }

    /// Queues one access unit and returns the newest picture decoded since the last call,
    /// waiting a little for the one just queued. `None` while the decoder has nothing new (the
    /// headers alone, a picture still inside).
    pub fn decode(&mut self, access_unit: &[u8]) -> Result<Option<VideoFrame>, DeviceError> {
        self.queued += 1;
        self.device
            .queue_coded(access_unit, self.queued, QUEUE_TIMEOUT)?;
        self.collect(PICTURE_WAIT)
    }

    /// The pictures ready, the newest kept: waits up to `wait` for the first while an access
    /// unit queued has given none.
    fn collect(&mut self, wait: Duration) -> Result<Option<VideoFrame>, DeviceError> {
        let deadline = Instant::now() + wait;
        let mut newest = None;
        loop {
            let left = if newest.is_none() && self.decoded < self.queued {
                deadline.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            let Some(layout) = self.layout else {
                // Nothing comes out before the driver has read the headers and said so.
                if !self.device.source_changed(left)? {
                    return Ok(newest);
                }
                self.layout = Some(self.device.start_capture(CAPTURE_BUFFERS)?);
                tracing::debug!(layout = ?self.layout, "{}: picture format", self.device.info());
                continue;
            };
            if self.device.source_changed(Duration::ZERO)? {
                self.change_resolution()?;
                continue;
            }
            let mut data = Vec::new();
            let mut read = |buf: &[u8]| {
                if buf.len() >= layout.required() {
                    read_frame(buf, &layout, &mut data);
                }
            };
            let Some(picture) = self.device.dequeue_picture(left, &mut read)? else {
                return Ok(newest);
            };
            self.decoded = self.decoded.max(picture.timestamp);
            if picture.last || picture.error || data.is_empty() {
                continue;
            }
            newest = Some(VideoFrame {
                width: layout.width,
                height: layout.height,
                data,
                captured_at: Instant::now(),
                pts: Duration::ZERO,
            });
        }
    }

    /// The stream changed size: the pictures of the old size up to the one flagged LAST are
    /// dropped (the display wants the new), then the CAPTURE queue is set up again.
    fn change_resolution(&mut self) -> Result<(), DeviceError> {
        let deadline = Instant::now() + DRAIN_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.device.dequeue_picture(left, &mut |_| {})? {
                Some(p) if p.last => break,
                Some(_) => continue,
                None => {
                    tracing::debug!(
                        "{}: no LAST picture before the new size",
                        self.device.info()
                    );
                    break;
                }
            }
        }
        self.device.stop_capture()?;
        self.layout = Some(self.device.start_capture(CAPTURE_BUFFERS)?);
        tracing::debug!(layout = ?self.layout, "{}: new picture format", self.device.info());
        Ok(())
    }

    /// Stops both queues (the node can be closed or started again).
    pub fn stop(mut self) -> D {
        if let Err(e) = self.device.stop_streaming() {
            tracing::debug!("{e}");
        }
        self.device
    }
}
