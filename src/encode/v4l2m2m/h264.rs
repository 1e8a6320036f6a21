//! The hardware H.264 encoder behind [`H264Encoder`]: a [`Session`] producing H.264 with the
//! controls the Pi's bcm2835-codec understands, and the stream fixed up the way WebRTC viewers
//! need it: SPS and PPS in front of every IDR. The driver's own repeat-sequence-header option
//! stalls after long runs on the Pi, so it is left off: the first SPS/PPS of a session is
//! cached and prepended to every IDR that comes without them.

use std::time::{Duration, Instant};

use v4l2r::bindings as b;

use super::device::{DeviceError, EncoderDevice, FourCc};
use super::session::{CodecSetup, Control, Session};
use crate::encode::h264::{nal, nal_type, nal_units, EncodeError, EncodedFrame, H264Encoder};
use crate::media::frame::VideoFrame;

pub const NAME: &str = "v4l2m2m";
/// The coded format this encoder asks for.
pub const H264: FourCc = FourCc::from_fourcc(b"H264");
/// A frame's coded buffer must come back within this; else the session is restarted.
const FRAME_TIMEOUT: Duration = Duration::from_secs(2);
const DRAIN_TIMEOUT: Duration = Duration::from_millis(500);
const MIN_BPS: u32 = 10_000;
/// A device that failed to open or start is tried again after this long.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What the encoder is asked for (the same knobs as openh264's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V4l2H264Config {
    pub fps: u32,
    pub bitrate_bps: u32,
    /// Frames between periodic IDRs.
    pub gop_frames: u32,
}

/// Opens a device again (after a failure the session starts over on a fresh file handle).
pub type Opener<D> = Box<dyn FnMut() -> Result<D, DeviceError> + Send>;

pub struct V4l2H264Encoder<D: EncoderDevice> {
    config: V4l2H264Config,
    open: Opener<D>,
    /// A device opened but not streaming yet (at start, and after a session was dropped).
    idle: Option<D>,
    session: Option<Session<D>>,
    /// "/dev/video11 (bcm2835-codec)".
    device: String,
    /// The current session's SPS and PPS, Annex B with 4-byte start codes.
    sps_pps: Vec<u8>,
    pending_bitrate: Option<u32>,
    /// After the device failed to open or start, frames are skipped until then (no retry storm
    /// at the frame rate while a device is gone).
    retry_at: Option<Instant>,
    /// Bitrate changes the driver refused (kept for tests and logs).
    pub(crate) refusals: u32,
}

impl<D: EncoderDevice> V4l2H264Encoder<D> {
    /// Checks that the device encodes H.264; streaming starts with the first frame.
    pub fn new(config: V4l2H264Config, mut open: Opener<D>) -> Result<Self, EncodeError> {
        if config.fps == 0 || config.bitrate_bps == 0 || config.gop_frames == 0 {
            return Err(init(format!(
                "fps {}, bitrate {} and GOP {} must be positive",
                config.fps, config.bitrate_bps, config.gop_frames
            )));
        }
        let device = open().map_err(|e| init(e.to_string()))?;
        let coded = device.coded_formats();
        if !coded.contains(&H264) {
            return Err(init(format!(
                "{}: its CAPTURE queue offers no H264 (it offers {})",
                device.info(),
                super::session::fourcc_list(&coded)
            )));
        }
        Ok(Self {
            config,
            device: device.info().to_string(),
            idle: Some(device),
            open,
            session: None,
            sps_pps: Vec::new(),
            pending_bitrate: None,
            retry_at: None,
            refusals: 0,
        })
    }

    /// "/dev/video11 (bcm2835-codec)".
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The controls of a session: rate control, GOP, profile, level, headers.
    fn setup(&self, width: u32, height: u32) -> CodecSetup {
        let c = &self.config;
        let gop = i32::try_from(c.gop_frames).unwrap_or(i32::MAX);
        let control = |id, value: u32, name, required| Control {
            id,
            value: value as i32,
            name,
            required,
        };
        CodecSetup {
            coded: H264,
            fps: c.fps,
            controls: vec![
                control(
                    b::V4L2_CID_MPEG_VIDEO_BITRATE_MODE,
                    b::v4l2_mpeg_video_bitrate_mode_V4L2_MPEG_VIDEO_BITRATE_MODE_CBR,
                    "bitrate mode CBR",
                    false,
                ),
                control(b::V4L2_CID_MPEG_VIDEO_BITRATE, c.bitrate_bps, "bitrate", true),
                Control {
                    id: b::V4L2_CID_MPEG_VIDEO_H264_I_PERIOD,
                    value: gop,
                    name: "H.264 I period",
                    required: false,
                },
                Control {
                    id: b::V4L2_CID_MPEG_VIDEO_GOP_SIZE,
                    value: gop,
                    name: "GOP size",
                    required: false,
                },
                control(b::V4L2_CID_MPEG_VIDEO_B_FRAMES, 0, "no B-frames", false),
                control(
                    b::V4L2_CID_MPEG_VIDEO_H264_PROFILE,
                    b::v4l2_mpeg_video_h264_profile_V4L2_MPEG_VIDEO_H264_PROFILE_CONSTRAINED_BASELINE,
                    "profile constrained baseline",
                    true,
                ),
                control(
                    b::V4L2_CID_MPEG_VIDEO_H264_LEVEL,
                    level_for(width, height, c.fps).1,
                    level_for(width, height, c.fps).0,
                    false,
                ),
                control(
                    b::V4L2_CID_MPEG_VIDEO_HEADER_MODE,
                    b::v4l2_mpeg_video_header_mode_V4L2_MPEG_VIDEO_HEADER_MODE_JOINED_WITH_1ST_FRAME,
                    "headers joined with the first frame",
                    false,
                ),
                // Off on purpose: it stalls the Pi's encoder after long runs; we prepend instead.
                control(b::V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER, 0, "no repeated headers", false),
            ],
        }
    }

    /// A streaming session at the frame's size: the current one, restarted, or a new one.
    fn session_for(&mut self, width: u32, height: u32) -> Result<&mut Session<D>, EncodeError> {
        let same = self
            .session
            .as_ref()
            .is_some_and(|s| (s.layout().width, s.layout().height) == (width, height));
        if !same {
            // A new session starts at the latest bitrate; its first IDR brings new SPS/PPS.
            if let Some(bps) = self.pending_bitrate.take() {
                self.config.bitrate_bps = bps;
            }
            self.sps_pps.clear();
            if let Some(mut s) = self.session.take() {
                tracing::info!(
                    "{}: {}x{} -> {width}x{height}: restarting the encoder",
                    self.device,
                    s.layout().width,
                    s.layout().height
                );
                match s.restart(&self.setup(width, height), width, height) {
                    Ok(()) => self.session = Some(s),
                    Err(e) => {
                        tracing::warn!("{e}; reopening the device");
                        drop(s.abort());
                    }
                }
            }
        }
        let setup = self.setup(width, height);
        if self.session.is_none() {
            let device = match self.idle.take() {
                Some(d) => d,
                None => (self.open)().map_err(|e| self.fail(e))?,
            };
            let session =
                Session::start(device, &setup, width, height).map_err(|e| self.fail(e))?;
            tracing::info!(
                "{}: encoding H.264 {width}x{height} at {} fps, {} kbps, {:?} input",
                self.device,
                self.config.fps,
                self.config.bitrate_bps / 1000,
                session.layout().kind
            );
            self.session = Some(session);
        }
        Ok(self.session.as_mut().expect("set above"))
    }

    fn fail(&self, e: DeviceError) -> EncodeError {
        EncodeError::Encode {
            encoder: NAME,
            detail: e.to_string(),
        }
    }

    /// Encodes one frame on the current session: applies pending changes, queues the frame,
    /// and reads coded buffers until the frame's slices came.
    fn encode_on_session(
        &mut self,
        frame: &VideoFrame,
        force_keyframe: bool,
    ) -> Result<Option<EncodedFrame>, DeviceError> {
        let pending = self.pending_bitrate.take();
        let session = self.session.as_mut().expect("session_for set it");
        if let Some(bps) = pending {
            match session.set_control(b::V4L2_CID_MPEG_VIDEO_BITRATE, bps as i32) {
                Ok(()) => self.config.bitrate_bps = bps,
                Err(e) => {
                    self.refusals += 1;
                    tracing::warn!("{e}");
                }
            }
        }
        if force_keyframe {
            // A button control: any value triggers it for the next frame queued.
            if let Err(e) = session.set_control(b::V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME, 1) {
                tracing::warn!("{e}");
            }
        }
        session.submit(frame)?;
        let mut data = Vec::new();
        loop {
            let start = data.len();
            let Some(out) = session.receive(FRAME_TIMEOUT, &mut data)? else {
                return Err(DeviceError::new(
                    &self.device,
                    "encoding",
                    format!("no coded frame within {FRAME_TIMEOUT:?}"),
                ));
            };
            if out.coded.error {
                tracing::warn!(
                    "{}: the driver flagged a coded buffer as corrupt",
                    self.device
                );
            }
            if out.coded.last {
                return Err(DeviceError::new(
                    &self.device,
                    "encoding",
                    "the stream ended",
                ));
            }
            let chunk = &data[start..];
            let (mut sps_pps, mut slices) = (false, false);
            for unit in nal_units(chunk) {
                match nal_type(unit) {
                    Some(nal::SPS | nal::PPS) => sps_pps = true,
                    Some(nal::SLICE | nal::IDR) => slices = true,
                    _ => {}
                }
            }
            if sps_pps {
                self.sps_pps = headers_of(chunk);
            }
            if !slices {
                // A header-only buffer (the driver sends SPS/PPS apart): the frame follows.
                continue;
            }
            session.done(out.coded.timestamp);
            return Ok(Some(self.finish_access_unit(
                data,
                out.pts,
                out.captured_at,
            )));
        }
    }

    /// Puts the cached SPS/PPS in front of an IDR that lacks them.
    fn finish_access_unit(
        &self,
        data: Vec<u8>,
        pts: Duration,
        captured_at: Instant,
    ) -> EncodedFrame {
        let types: Vec<u8> = nal_units(&data).filter_map(nal_type).collect();
        let keyframe = types.contains(&nal::IDR);
        let has_headers = types.contains(&nal::SPS) && types.contains(&nal::PPS);
        let data = if keyframe && !has_headers {
            if self.sps_pps.is_empty() {
                tracing::warn!("{}: an IDR without SPS/PPS and none cached", self.device);
                data
            } else {
                let mut with = Vec::with_capacity(self.sps_pps.len() + data.len());
                with.extend_from_slice(&self.sps_pps);
                with.extend_from_slice(&data);
                with
            }
        } else {
            data
        };
        EncodedFrame {
            data,
            keyframe,
            captured_at,
            pts,
        }
    }
}

/// The SPS and PPS units of an Annex B chunk, each behind a 4-byte start code.
fn headers_of(chunk: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for unit in nal_units(chunk).filter(|u| matches!(nal_type(u), Some(nal::SPS | nal::PPS))) {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(unit);
    }
    out
}

fn init(detail: String) -> EncodeError {
    EncodeError::Init {
        encoder: NAME,
        detail,
    }
}

/// The lowest H.264 level (table A-1) that fits the frame size and macroblock rate, as its
/// name and V4L2 menu value.
pub fn level_for(width: u32, height: u32, fps: u32) -> (&'static str, u32) {
    let mbs = width.div_ceil(16) * height.div_ceil(16);
    let rate = mbs * fps;
    match (mbs, rate) {
        (..=1620, ..=40_500) => (
            "level 3.0",
            b::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_3_0,
        ),
        (..=3600, ..=108_000) => (
            "level 3.1",
            b::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_3_1,
        ),
        (..=5120, ..=216_000) => (
            "level 3.2",
            b::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_3_2,
        ),
        (..=8192, ..=245_760) => (
            "level 4.0",
            b::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_4_0,
        ),
        (..=8704, ..=522_240) => (
            "level 4.2",
            b::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_4_2,
        ),
        _ => (
            "level 5.1",
            b::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_5_1,
        ),
    }
}

impl<D: EncoderDevice> H264Encoder for V4l2H264Encoder<D> {
    fn encode(
        &mut self,
        frame: &VideoFrame,
        force_keyframe: bool,
    ) -> Result<Option<EncodedFrame>, EncodeError> {
        crate::encode::h264::check_frame(frame)?;
        let (w, h) = (frame.width, frame.height);
        if self.session.is_none() && self.retry_at.is_some_and(|t| Instant::now() < t) {
            return Ok(None);
        }
        if let Err(e) = self.session_for(w, h) {
            self.retry_at = Some(Instant::now() + RETRY_AFTER);
            return Err(e);
        }
        self.retry_at = None;
        self.encode_on_session(frame, force_keyframe).map_err(|e| {
            // Start over on a fresh handle with the next frame (and with an IDR).
            if let Some(s) = self.session.take() {
                drop(s.abort());
            }
            self.sps_pps.clear();
            EncodeError::Encode {
                encoder: NAME,
                detail: format!("{e}; the encoder restarts with the next frame"),
            }
        })
    }

    fn set_bitrate(&mut self, bits_per_sec: u32) {
        let bps = bits_per_sec.max(MIN_BPS);
        if self.session.is_none() {
            self.config.bitrate_bps = bps;
        } else if bps != self.config.bitrate_bps {
            self.pending_bitrate = Some(bps);
        }
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

impl<D: EncoderDevice> Drop for V4l2H264Encoder<D> {
    /// Drains and stops streaming, so the driver is left idle for the next user.
    fn drop(&mut self) {
        if let Some(mut s) = self.session.take() {
            if let Err(e) = s.drain(DRAIN_TIMEOUT, |_, _| {}) {
                tracing::debug!("{e}");
                drop(s.abort());
            }
        }
    }
}
