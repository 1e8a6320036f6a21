//! The V4L2 video source: real frames while the input has a picture, the "no signal" slate at
//! the configured rate while it has none, and the way between the two without anyone touching
//! the box.
//!
//! - Streaming: buffers are converted into pooled I420 frames. Devices faster than the
//!   configured rate (60 Hz HDMI for a 30 fps call) are thinned out before conversion.
//! - A source-change event (or two seconds without a frame) stops the stream, renegotiates
//!   (new DV timings, new size) and starts again; frames then come at the new size.
//! - No signal, no lock, out of range or the device gone: slate frames, and a retry about once
//!   a second (re-query the timings, or reopen the node). Each change is logged once.

use super::convert::{Converter, PixelLayout};
use super::device::{CaptureError, Device};
use super::format::{negotiate, Negotiated, Wanted};
use super::signal::NoPicture;
use super::slate::SlateCache;
use super::stream::{Ready, Stream};
use crate::capture::{InputState, VideoOptions, VideoSource};
use crate::media::frame::{i420_len, FramePool, VideoFrame};
use crate::media::SourceError;
use std::time::{Duration, Instant};

/// How often a source without a picture is looked at again.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// A streaming device that sends nothing for this long is renegotiated.
const STALL_AFTER: Duration = Duration::from_secs(2);
/// How long one wait for a buffer may block (bounds how late a stall is noticed).
const WAIT_SLICE: Duration = Duration::from_millis(250);

/// Capture from one V4L2 node (`v4l2:/dev/videoN`).
pub struct V4l2Capture {
    path: String,
    box_name: String,
    want: Wanted,
    pool: FramePool,
    start: Instant,
    /// One frame per `gap` at most: real frames are thinned to it, slate frames paced by it.
    gap: Duration,
    next_due: Instant,
    state: State,
    slate: SlateCache,
    /// The size of the last real picture (the configured size before the first): the slate
    /// keeps it so the encoder does not restart twice for a short drop-out.
    last_size: (u32, u32),
    /// What the log last said: `Some(None)` live, `Some(Some(r))` down for `r`.
    shown: Option<Option<NoPicture>>,
    bad_frames: u64,
}

enum State {
    Live(Box<Live>),
    Down(Down),
}

struct Live {
    dev: Device,
    stream: Stream,
    converter: Converter,
    negotiated: Negotiated,
    last_frame: Instant,
}

struct Down {
    reason: NoPicture,
    /// Kept open while only the signal is missing; `None` when the node must be reopened.
    dev: Option<Device>,
    next_try: Instant,
}

impl V4l2Capture {
    /// Opens `path`. A missing node or an input without a signal is not an error: the source
    /// starts on the slate and picks the picture up when it comes. A node that can never
    /// deliver (not a capture device, no format the box reads) is.
    pub fn open(
        path: &str,
        options: &VideoOptions,
        layout: Option<PixelLayout>,
        pool: FramePool,
    ) -> Result<Self, SourceError> {
        let now = Instant::now();
        let mut capture = Self {
            path: path.to_owned(),
            box_name: options.box_name.clone(),
            want: Wanted {
                width: options.width,
                height: options.height,
                fps: options.fps,
                layout,
            },
            pool,
            start: now,
            gap: Duration::from_secs(1) / options.fps.max(1),
            next_due: now,
            state: State::Down(Down {
                reason: NoPicture::DeviceMissing,
                dev: None,
                next_try: now,
            }),
            slate: SlateCache::default(),
            last_size: (options.width & !1, options.height & !1),
            shown: None,
            bad_frames: 0,
        };
        match Device::open(path) {
            Ok(dev) => capture.bring_up(dev)?,
            Err(CaptureError::NoPicture(reason)) => capture.go_down(reason, None),
            Err(e) => return Err(e.into()),
        }
        Ok(capture)
    }

    /// Why there is no picture, if there is none.
    pub fn no_picture(&self) -> Option<NoPicture> {
        match &self.state {
            State::Live(_) => None,
            State::Down(d) => Some(d.reason),
        }
    }

    /// Negotiates and starts streaming on `dev`, or goes down with the reason.
    fn bring_up(&mut self, dev: Device) -> Result<(), SourceError> {
        let started = negotiate(&dev, self.want).and_then(|n| Ok((n, Stream::start(&dev)?)));
        match started {
            Ok((negotiated, stream)) => {
                self.last_size = negotiated.format.out_size();
                let live = Live {
                    converter: Converter::new(negotiated.format),
                    negotiated,
                    stream,
                    last_frame: Instant::now(),
                    dev,
                };
                let what = if self.shown == Some(None) {
                    "source changed, now capturing"
                } else {
                    "capturing"
                };
                tracing::info!("{}: {what} {}", self.path, describe_live(&live));
                self.shown = Some(None);
                self.state = State::Live(Box::new(live));
                Ok(())
            }
            Err(CaptureError::NoPicture(reason)) => {
                let keep = (reason != NoPicture::DeviceMissing).then_some(dev);
                self.go_down(reason, keep);
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn go_down(&mut self, reason: NoPicture, dev: Option<Device>) {
        if self.shown != Some(Some(reason)) {
            let name = self.box_name.trim();
            let prefix = if name.is_empty() {
                String::new()
            } else {
                format!("{name} \u{2014} ")
            };
            tracing::warn!(
                "{}: {reason}; sending the slate \"{prefix}{reason}\", retrying every second",
                self.path
            );
            self.shown = Some(Some(reason));
        }
        if matches!(self.state, State::Live(_)) {
            self.next_due = Instant::now(); // slate frames start now
        }
        self.state = State::Down(Down {
            reason,
            dev,
            next_try: Instant::now() + RETRY_EVERY,
        });
    }

    /// Stops the stream and negotiates again (new timings, new size or no signal).
    fn restart(&mut self) -> Result<(), SourceError> {
        let placeholder = State::Down(Down {
            reason: NoPicture::DeviceMissing,
            dev: None,
            next_try: Instant::now(),
        });
        if let State::Live(live) = std::mem::replace(&mut self.state, placeholder) {
            let Live { dev, stream, .. } = *live;
            stream.stop(&dev);
            self.bring_up(dev)?;
        }
        Ok(())
    }

    /// Tries to get the picture back (reopen the node, renegotiate) when it is time.
    fn retry(&mut self) -> Result<(), SourceError> {
        let State::Down(down) = &mut self.state else {
            return Ok(());
        };
        if Instant::now() < down.next_try {
            return Ok(());
        }
        down.next_try = Instant::now() + RETRY_EVERY;
        let dev = match down.dev.take() {
            Some(dev) => dev,
            None => match Device::open(&self.path) {
                Ok(dev) => dev,
                Err(CaptureError::NoPicture(r)) => {
                    self.go_down(r, None);
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            },
        };
        // Events that piled up while down say nothing negotiation will not see for itself.
        super::stream::take_source_change(&dev);
        self.bring_up(dev)
    }

    /// The next slate frame, paced at the configured rate.
    fn slate_frame(&mut self, reason: NoPicture) -> VideoFrame {
        self.wait_until_due();
        let (w, h) = self.last_size;
        let slate = self.slate.get(w, h, &self.box_name, reason);
        let mut data = self.pool.take(slate.len());
        data.copy_from_slice(slate);
        self.frame(w, h, data)
    }

    fn wait_until_due(&mut self) {
        let now = Instant::now();
        if self.next_due > now {
            std::thread::sleep(self.next_due - now);
        }
        self.advance_due(Instant::now());
    }

    /// Moves the schedule one gap on, or to `now` after a long stall (no burst to catch up).
    fn advance_due(&mut self, now: Instant) {
        self.next_due += self.gap;
        if self.next_due + 3 * self.gap < now {
            self.next_due = now + self.gap;
        }
    }

    fn frame(&self, width: u32, height: u32, data: Vec<u8>) -> VideoFrame {
        let captured_at = Instant::now();
        VideoFrame {
            width,
            height,
            data,
            captured_at,
            pts: captured_at.saturating_duration_since(self.start),
        }
    }
}

impl VideoSource for V4l2Capture {
    fn next_frame(&mut self) -> Result<VideoFrame, SourceError> {
        loop {
            if matches!(self.state, State::Down(_)) {
                self.retry()?;
                if let State::Down(down) = &self.state {
                    let reason = down.reason;
                    return Ok(self.slate_frame(reason));
                }
            }
            let State::Live(live) = &mut self.state else {
                continue;
            };
            match live.stream.wait(&live.dev, WAIT_SLICE) {
                Ok(Ready::Frame { index, bytesused }) => {
                    let now = Instant::now();
                    live.last_frame = now;
                    // Thin a faster device down to the configured rate before converting.
                    if now + self.gap / 4 < self.next_due {
                        if let Err(e) = live.stream.requeue(&live.dev, index) {
                            self.lost(e)?;
                        }
                        continue;
                    }
                    let (w, h) = live.converter.format().out_size();
                    let mut data = self.pool.take(i420_len(w, h));
                    let converted = live
                        .converter
                        .convert(live.stream.data(index, bytesused), &mut data);
                    let requeued = live.stream.requeue(&live.dev, index);
                    self.advance_due(now);
                    if let Err(e) = requeued {
                        self.pool.put(data);
                        self.lost(e)?;
                        continue;
                    }
                    match converted {
                        Ok(()) => return Ok(self.frame(w, h, data)),
                        Err(e) => {
                            self.pool.put(data);
                            self.bad_frames += 1;
                            if self.bad_frames == 1 {
                                tracing::warn!("{}: frame dropped: {e}", self.path);
                            } else {
                                tracing::debug!("{}: frame dropped: {e}", self.path);
                            }
                        }
                    }
                }
                Ok(Ready::SourceChange) => self.restart()?,
                Ok(Ready::Timeout) => {
                    if live.last_frame.elapsed() >= STALL_AFTER {
                        tracing::info!(
                            "{}: no frame for {} s, renegotiating",
                            self.path,
                            STALL_AFTER.as_secs()
                        );
                        self.restart()?;
                    }
                }
                Err(e) => self.lost(e)?,
            }
        }
    }

    fn describe(&self) -> String {
        match &self.state {
            State::Live(live) => format!("V4L2 {} {}", self.path, describe_live(live)),
            State::Down(down) => format!("V4L2 {} ({}, slate)", self.path, down.reason),
        }
    }

    fn input_state(&self) -> Option<InputState> {
        Some(match &self.state {
            State::Live(live) => {
                let (width, height) = live.converter.format().out_size();
                // The source's own rate (HDMI timings) where it has one, else what was asked.
                let rate = match &live.negotiated.timings {
                    Some(t) => t.rate(),
                    None => f64::from(self.want.fps),
                };
                InputState::Picture {
                    width,
                    height,
                    fps_x100: (rate * 100.0).round() as u32,
                }
            }
            State::Down(down) if down.reason == NoPicture::DeviceMissing => InputState::NoDevice,
            State::Down(_) => InputState::NoSignal,
        })
    }
}

impl V4l2Capture {
    /// A streaming error: the slate for signal and device trouble, an error otherwise.
    fn lost(&mut self, e: CaptureError) -> Result<(), SourceError> {
        let CaptureError::NoPicture(reason) = e else {
            return Err(e.into());
        };
        let placeholder = State::Down(Down {
            reason,
            dev: None,
            next_try: Instant::now(),
        });
        if let State::Live(live) = std::mem::replace(&mut self.state, placeholder) {
            let Live { dev, stream, .. } = *live;
            if reason == NoPicture::DeviceMissing {
                drop(stream); // unmapped; the node is closed with `dev`
                drop(dev);
                self.go_down(reason, None);
            } else {
                stream.stop(&dev);
                self.go_down(reason, Some(dev));
            }
        }
        Ok(())
    }
}

fn describe_live(live: &Live) -> String {
    let f = live.converter.format();
    let input = &live.dev.input;
    let size = match &live.negotiated.timings {
        Some(t) => t.name(),
        None => format!("{}x{}", f.width, f.height),
    };
    format!(
        "input {} {:?}: {size} {}",
        input.index,
        input.name,
        String::from_utf8_lossy(&f.layout.fourcc())
    )
}

impl From<CaptureError> for SourceError {
    fn from(e: CaptureError) -> Self {
        SourceError::V4l2(e.to_string())
    }
}
