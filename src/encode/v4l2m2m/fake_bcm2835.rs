//! FAKE, for tests only. It stands in for the Raspberry Pi's bcm2835-codec driver at the ioctl
//! boundary ([`EncoderDevice`]) and nowhere else: everything above it (the session, the H.264
//! layer) is the real code. It records each call and answers the way that driver does:
//! strides rounded to 32 and rows to 16, the controls the driver has (others are refused, as
//! the driver refuses them), SPS/PPS in a buffer of their own before the first frame only
//! (unless `REPEAT_SEQ_HEADER` is on), IDRs on the first frame, every I period and on
//! `FORCE_KEY_FRAME`, and the canned NAL units below instead of real H.264.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use v4l2r::bindings as b;

use super::device::{Coded, DeviceError, DeviceInfo, EncoderDevice, FourCc, RawKind, RawLayout};

/// One call across the boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Formats {
        coded: FourCc,
        raw: RawKind,
        width: u32,
        height: u32,
    },
    FrameRate(u32),
    Control(u32, i32),
    StreamOn,
    /// A raw frame queued: its timestamp and its first luma sample.
    Frame(u64, u8),
    Stop,
    StreamOff,
}

/// What the tests read back.
#[derive(Debug, Default)]
pub struct Log {
    pub calls: Vec<Call>,
    pub opens: u32,
}

/// How this fake driver instance behaves.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// SPS/PPS in a buffer of their own (the driver's default) or joined to the first IDR.
    pub separate_headers: bool,
    /// Stop producing coded buffers after this many frames (the stall seen on long runs).
    pub stall_after: Option<u32>,
    pub coded: Vec<FourCc>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            separate_headers: true,
            stall_after: None,
            coded: vec![FourCc::from_fourcc(b"H264"), FourCc::from_fourcc(b"MJPG")],
        }
    }
}

/// The controls bcm2835-codec's encoder has (others get EINVAL).
const SUPPORTED: [u32; 8] = [
    b::V4L2_CID_MPEG_VIDEO_BITRATE_MODE,
    b::V4L2_CID_MPEG_VIDEO_BITRATE,
    b::V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER,
    b::V4L2_CID_MPEG_VIDEO_H264_I_PERIOD,
    b::V4L2_CID_MPEG_VIDEO_H264_LEVEL,
    b::V4L2_CID_MPEG_VIDEO_H264_PROFILE,
    b::V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME,
    b::V4L2_CID_MPEG_VIDEO_B_FRAMES,
];

pub struct FakeBcm2835 {
    info: DeviceInfo,
    log: Arc<Mutex<Log>>,
    behaviour: Behaviour,
    controls: HashMap<u32, i32>,
    size: (u32, u32),
    streaming: bool,
    /// Queued raw frames: timestamp, keyframe forced.
    queued: VecDeque<(u64, bool)>,
    force: bool,
    headers_sent: bool,
    since_idr: Option<u32>,
    produced: u32,
    stopping: bool,
}

impl FakeBcm2835 {
    pub fn new(log: Arc<Mutex<Log>>, behaviour: Behaviour) -> Self {
        log.lock().unwrap().opens += 1;
        FakeBcm2835 {
            info: DeviceInfo {
                path: "/dev/video11".into(),
                driver: "bcm2835-codec".into(),
                card: "bcm2835-codec-encode".into(),
            },
            log,
            behaviour,
            controls: HashMap::new(),
            size: (0, 0),
            streaming: false,
            queued: VecDeque::new(),
            force: false,
            headers_sent: false,
            since_idr: None,
            produced: 0,
            stopping: false,
        }
    }

    fn record(&self, call: Call) {
        self.log.lock().unwrap().calls.push(call);
    }

    fn einval(&self, what: &str) -> DeviceError {
        DeviceError::new(&self.info, what, "EINVAL: Invalid argument")
    }

    /// The canned SPS: profile 66 with constraint_set0/1 (constrained baseline), the level,
    /// then the size in macroblocks so tests can tell sessions apart.
    fn sps(&self) -> [u8; 6] {
        let level = match self.controls.get(&b::V4L2_CID_MPEG_VIDEO_H264_LEVEL) {
            Some(&l)
                if l == b::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_3_0 as i32 =>
            {
                30
            }
            Some(&l)
                if l == b::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_3_1 as i32 =>
            {
                31
            }
            Some(&l)
                if l == b::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_3_2 as i32 =>
            {
                32
            }
            Some(&l)
                if l == b::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_4_2 as i32 =>
            {
                42
            }
            _ => 40,
        };
        let (w, h) = self.size;
        [0x67, 0x42, 0xc0, level, (w / 16) as u8, (h / 16) as u8]
    }
}

const PPS: [u8; 4] = [0x68, 0xce, 0x38, 0x80];

fn push_nal(out: &mut Vec<u8>, unit: &[u8]) {
    out.extend_from_slice(&[0, 0, 0, 1]);
    out.extend_from_slice(unit);
}

impl EncoderDevice for FakeBcm2835 {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn raw_formats(&self) -> Vec<FourCc> {
        [b"YU12", b"YV12", b"NV12", b"NV21", b"RGBP", b"BGR3"]
            .into_iter()
            .map(FourCc::from_fourcc)
            .collect()
    }

    fn coded_formats(&self) -> Vec<FourCc> {
        self.behaviour.coded.clone()
    }

    fn set_formats(
        &mut self,
        coded: FourCc,
        raw: RawKind,
        width: u32,
        height: u32,
    ) -> Result<RawLayout, DeviceError> {
        if self.streaming {
            return Err(DeviceError::new(
                &self.info,
                "setting the OUTPUT format",
                "EBUSY",
            ));
        }
        self.record(Call::Formats {
            coded,
            raw,
            width,
            height,
        });
        self.size = (width, height);
        let (stride, rows) = (width.next_multiple_of(32), height.next_multiple_of(16));
        Ok(RawLayout {
            kind: raw,
            width,
            height,
            stride,
            rows,
            size: (stride * rows * 3 / 2) as usize,
        })
    }

    fn set_frame_rate(&mut self, fps: u32) -> Result<(), DeviceError> {
        self.record(Call::FrameRate(fps));
        Ok(())
    }

    fn set_control(&mut self, id: u32, value: i32) -> Result<(), DeviceError> {
        if !SUPPORTED.contains(&id) {
            return Err(self.einval(&format!("setting control {id:#x}")));
        }
        if id == b::V4L2_CID_MPEG_VIDEO_H264_LEVEL
            && value > b::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_4_2 as i32
        {
            return Err(self.einval("setting the level"));
        }
        self.record(Call::Control(id, value));
        if id == b::V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME {
            self.force = true;
        } else {
            self.controls.insert(id, value);
        }
        Ok(())
    }

    fn start_streaming(&mut self, _buffers: u32) -> Result<(), DeviceError> {
        self.record(Call::StreamOn);
        self.streaming = true;
        Ok(())
    }

    fn queue_raw(
        &mut self,
        timestamp: u64,
        _timeout: Duration,
        fill: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), DeviceError> {
        if !self.streaming || self.stopping {
            return Err(self.einval("queueing an OUTPUT buffer"));
        }
        let (stride, rows) = (
            self.size.0.next_multiple_of(32),
            self.size.1.next_multiple_of(16),
        );
        let mut buf = vec![0u8; (stride * rows * 3 / 2) as usize];
        fill(&mut buf);
        self.record(Call::Frame(timestamp, buf[0]));
        self.queued
            .push_back((timestamp, std::mem::take(&mut self.force)));
        Ok(())
    }

    fn dequeue_coded(
        &mut self,
        _timeout: Duration,
        out: &mut Vec<u8>,
    ) -> Result<Option<Coded>, DeviceError> {
        let coded = |len, keyframe, last, timestamp| Coded {
            len,
            keyframe,
            last,
            error: false,
            timestamp,
        };
        let start = out.len();
        let Some(&(timestamp, forced)) = self.queued.front() else {
            if self.stopping {
                return Ok(Some(coded(0, false, true, 0)));
            }
            return Ok(None);
        };
        if self
            .behaviour
            .stall_after
            .is_some_and(|n| self.produced >= n)
        {
            return Ok(None);
        }
        if !self.headers_sent && self.behaviour.separate_headers {
            self.headers_sent = true;
            push_nal(out, &self.sps());
            push_nal(out, &PPS);
            return Ok(Some(coded(out.len() - start, false, false, timestamp)));
        }
        self.queued.pop_front();
        let period = self
            .controls
            .get(&b::V4L2_CID_MPEG_VIDEO_H264_I_PERIOD)
            .copied()
            .unwrap_or(60);
        let idr = forced || self.since_idr.is_none_or(|n| n + 1 >= period as u32);
        let n = (self.produced % 127 + 1) as u8;
        if idr {
            let repeat = self.controls.get(&b::V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER) == Some(&1);
            if !self.headers_sent || repeat {
                push_nal(out, &self.sps());
                push_nal(out, &PPS);
                self.headers_sent = true;
            }
            push_nal(out, &[0x65, 0x88, 0x84, n]);
            self.since_idr = Some(0);
        } else {
            push_nal(out, &[0x41, 0x9a, n]);
            self.since_idr = self.since_idr.map(|s| s + 1);
        }
        self.produced += 1;
        let last = self.stopping && self.queued.is_empty();
        Ok(Some(coded(out.len() - start, idr, last, timestamp)))
    }

    fn stop(&mut self) -> Result<(), DeviceError> {
        if !self.streaming {
            return Err(self.einval("VIDIOC_ENCODER_CMD STOP"));
        }
        self.record(Call::Stop);
        self.stopping = true;
        Ok(())
    }

    fn stop_streaming(&mut self) -> Result<(), DeviceError> {
        self.record(Call::StreamOff);
        self.streaming = false;
        self.stopping = false;
        self.queued.clear();
        self.headers_sent = false;
        self.since_idr = None;
        Ok(())
    }
}
