//! One encoding session on a stateful encoder, whatever the coded format: formats, frame rate
//! and controls, buffers and streaming, raw frames in and coded buffers out, drain, and a
//! restart at a new size. The H.264 encoder builds on it; the VM tests run it on vicodec (FWHT)
//! so these exact paths meet a real kernel driver.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::device::{Coded, DeviceError, EncoderDevice, FourCc, RawKind, RawLayout};
use crate::m2m::layout::write_frame;
use crate::media::frame::VideoFrame;

/// Buffers per queue: one being filled or drained by us, one with the driver, one spare.
const BUFFERS: u32 = 3;
/// How long to wait for the driver to give back an OUTPUT buffer.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(2);

/// A control set before streaming starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    pub id: u32,
    pub value: i32,
    /// For logs and errors, e.g. "bitrate".
    pub name: &'static str,
    /// Without it the stream would be wrong (fail); else the driver's default is acceptable.
    pub required: bool,
}

/// What to encode to and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecSetup {
    pub coded: FourCc,
    pub fps: u32,
    pub controls: Vec<Control>,
}

/// A coded buffer and the frame it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    pub coded: Coded,
    pub pts: Duration,
    pub captured_at: Instant,
}

/// A streaming encoder at one frame size.
pub struct Session<D: EncoderDevice> {
    device: D,
    layout: RawLayout,
    /// Frames queued whose coded buffer has not come back: (timestamp, pts, captured at).
    in_flight: VecDeque<(u64, Duration, Instant)>,
    next_timestamp: u64,
}

impl<D: EncoderDevice> Session<D> {
    /// Configures `device` for `width`x`height` and starts streaming.
    pub fn start(
        mut device: D,
        setup: &CodecSetup,
        width: u32,
        height: u32,
    ) -> Result<Self, DeviceError> {
        let layout = configure(&mut device, setup, width, height)?;
        Ok(Session {
            device,
            layout,
            in_flight: VecDeque::with_capacity(BUFFERS as usize * 2),
            next_timestamp: 1,
        })
    }

    pub fn device(&self) -> &D {
        &self.device
    }

    pub fn layout(&self) -> &RawLayout {
        &self.layout
    }

    /// Frames queued whose coded buffer has not been received yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Sets a control while streaming (bitrate, forced keyframe).
    pub fn set_control(&mut self, id: u32, value: i32) -> Result<(), DeviceError> {
        self.device.set_control(id, value)
    }

    /// Queues one frame of the session's size.
    pub fn submit(&mut self, frame: &VideoFrame) -> Result<(), DeviceError> {
        if (frame.width, frame.height) != (self.layout.width, self.layout.height) {
            return Err(DeviceError::new(
                self.device.info(),
                "queueing a frame",
                format!(
                    "the frame is {}x{} but the session is {}x{}",
                    frame.width, frame.height, self.layout.width, self.layout.height
                ),
            ));
        }
        let timestamp = self.next_timestamp;
        self.next_timestamp += 1;
        let layout = self.layout;
        self.device
            .queue_raw(timestamp, QUEUE_TIMEOUT, &mut |dst| {
                write_frame(frame, &layout, dst);
            })?;
        self.in_flight
            .push_back((timestamp, frame.pts, frame.captured_at));
        Ok(())
    }

    /// The next coded buffer, its payload appended to `out`; `None` if none came within
    /// `timeout`. A buffer with no payload and no LAST flag is skipped.
    pub fn receive(
        &mut self,
        timeout: Duration,
        out: &mut Vec<u8>,
    ) -> Result<Option<Output>, DeviceError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(coded) = self.device.dequeue_coded(left, out)? else {
                return Ok(None);
            };
            if coded.len == 0 && !coded.last {
                continue;
            }
            // Frames come back in order; drop the bookkeeping of any the driver skipped.
            while self
                .in_flight
                .front()
                .is_some_and(|&(t, _, _)| t < coded.timestamp)
            {
                self.in_flight.pop_front();
            }
            let (pts, captured_at) = match self.in_flight.front() {
                Some(&(t, pts, at)) if t == coded.timestamp => {
                    // A header-only buffer shares its frame's timestamp: keep the entry
                    // until the frame's own data has come (the caller tells them apart).
                    (pts, at)
                }
                _ => (Duration::ZERO, Instant::now()),
            };
            return Ok(Some(Output {
                coded,
                pts,
                captured_at,
            }));
        }
    }

    /// Marks the frame with this timestamp as fully received.
    pub fn done(&mut self, timestamp: u64) {
        if self
            .in_flight
            .front()
            .is_some_and(|&(t, _, _)| t == timestamp)
        {
            self.in_flight.pop_front();
        }
    }

    /// Drains: V4L2_ENC_CMD_STOP, then every coded buffer up to the one flagged LAST, each
    /// handed to `each` with its payload. Streaming stops afterwards. Returns the buffers with
    /// a payload.
    pub fn drain(
        &mut self,
        timeout: Duration,
        mut each: impl FnMut(&Output, &[u8]),
    ) -> Result<usize, DeviceError> {
        self.device.stop()?;
        let mut buf = Vec::new();
        let mut count = 0;
        loop {
            buf.clear();
            let Some(output) = self.receive(timeout, &mut buf)? else {
                return Err(DeviceError::new(
                    self.device.info(),
                    "draining",
                    format!("no buffer flagged LAST within {timeout:?}"),
                ));
            };
            if output.coded.len > 0 {
                count += 1;
                each(&output, &buf);
                self.done(output.coded.timestamp);
            }
            if output.coded.last {
                break;
            }
        }
        self.in_flight.clear();
        self.device.stop_streaming()?;
        Ok(count)
    }

    /// Restarts at a new size: drains (coded buffers of the old size are dropped: the new
    /// stream starts with a keyframe), stops streaming, reconfigures, streams again.
    pub fn restart(
        &mut self,
        setup: &CodecSetup,
        width: u32,
        height: u32,
    ) -> Result<(), DeviceError> {
        let dropped = self.drain(QUEUE_TIMEOUT, |_, _| {})?;
        if dropped > 0 {
            tracing::debug!(dropped, "coded frames of the old size dropped on restart");
        }
        self.layout = configure(&mut self.device, setup, width, height)?;
        Ok(())
    }

    /// Stops without waiting for queued frames (for shutdown after an error).
    pub fn abort(mut self) -> D {
        let _ = self.device.stop_streaming();
        self.device
    }
}

/// Formats (YU12 preferred: a plain copy of our I420; NV12 otherwise), frame rate, controls,
/// buffers, streaming.
fn configure<D: EncoderDevice>(
    device: &mut D,
    setup: &CodecSetup,
    width: u32,
    height: u32,
) -> Result<RawLayout, DeviceError> {
    let offered = device.raw_formats();
    let raw = [RawKind::Yu12, RawKind::Nv12]
        .into_iter()
        .find(|k| offered.contains(&k.fourcc()))
        .ok_or_else(|| {
            DeviceError::new(
                device.info(),
                "choosing the raw format",
                format!(
                    "the OUTPUT queue offers neither YU12 nor NV12 (it offers {})",
                    fourcc_list(&offered)
                ),
            )
        })?;
    let layout = device.set_formats(setup.coded, raw, width, height)?;
    if let Err(e) = device.set_frame_rate(setup.fps) {
        // Rate control then assumes the driver's default rate; the stream is still valid.
        tracing::warn!("{e}");
    }
    for c in &setup.controls {
        match device.set_control(c.id, c.value) {
            Ok(()) => {}
            Err(e) if c.required => {
                return Err(DeviceError::new(
                    device.info(),
                    &format!("setting {} to {}", c.name, c.value),
                    e.detail,
                ))
            }
            Err(e) => tracing::debug!(
                "{}: {} not set ({}); driver default kept",
                e.device,
                c.name,
                e.detail
            ),
        }
    }
    device.start_streaming(BUFFERS)?;
    Ok(layout)
}

pub use crate::m2m::fourcc_list;
