//! Software H.264 with Cisco's openh264 (built from source, BSD-2): constrained baseline,
//! camera real-time mode, bitrate rate control, no B-frames (baseline has none), one slice.
//! This file is the only place in the media modules with `unsafe`: openh264's safe wrapper has
//! no way to change the bitrate of a running encoder.

use std::os::raw::c_int;
use std::ptr::addr_of_mut;

use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Level,
    Profile, RateControlMode, SpsPpsStrategy, UsageType,
};
use openh264::formats::YUVSlices;
use openh264::{OpenH264API, Timestamp};
use openh264_sys2::{
    SBitrateInfo, ENCODER_OPTION_BITRATE, ENCODER_OPTION_MAX_BITRATE, SPATIAL_LAYER_0,
    SPATIAL_LAYER_ALL,
};

use super::h264::{EncodeError, EncodedFrame, H264Encoder};
use crate::media::frame::VideoFrame;

const NAME: &str = "openh264";

/// What the encoder is asked for.
#[derive(Debug, Clone, Copy)]
pub struct OpenH264Config {
    /// The source frame rate (rate control spreads the bitrate over it).
    pub fps: u32,
    /// Initial target bitrate.
    pub bitrate_bps: u32,
    /// Frames between periodic IDRs; keyframes on request come on top.
    pub gop_frames: u32,
    /// Encoder threads (openh264 only uses more than one with several slices).
    pub threads: u16,
    /// Encoder effort: Low is faster on small CPUs, at some quality cost.
    pub complexity: Complexity,
    /// Let rate control drop frames. openh264 only holds the bitrate with this on; off, it
    /// overshoots on busy content (it says so in its log).
    pub skip_frames: bool,
    /// openh264's scene change detection (an IDR on a cut).
    pub scene_change_detect: bool,
    /// openh264's background detection (cheaper coding of still background).
    pub background_detection: bool,
    /// Do not encode a frame identical to the one before once openh264 has settled on that
    /// picture (its last frame of it coded no change); a frame still goes out every second and
    /// on every keyframe request. See [`Unchanged`].
    pub hold_unchanged: bool,
}

impl Default for OpenH264Config {
    fn default() -> Self {
        Self {
            fps: 30,
            bitrate_bps: 1_500_000,
            // An IDR every four seconds: late joiners normally get one on request anyway.
            gop_frames: 120,
            threads: 1,
            complexity: Complexity::Medium,
            skip_frames: true,
            scene_change_detect: true,
            background_detection: true,
            hold_unchanged: true,
        }
    }
}

/// An access unit this small (or smaller) codes no change: every macroblock skipped, a slice
/// header and a skip run (about 20 bytes at 1080p).
const SETTLED_BYTES: usize = 64;
/// While the picture keeps changing, one frame in this many is kept to compare with the next,
/// so a camera's never-equal frames cost one copy per this many frames.
const PROBE_EVERY: u32 = 8;
/// After an identical pair, every frame is kept and compared for this many frames.
const WATCH_FRAMES: u32 = 90;

/// The unchanged-frame check: a copy of the last frame (when kept) and what the encoder made of
/// it. A frame equal to the one before is not encoded once the encoder has settled (its last
/// frame of this picture coded no change, so another would code no change either); at most
/// `fps` frames in a row are held, a keyframe request always encodes, and the periodic IDR
/// comes every `gop_frames` frames shown, held or not.
#[derive(Debug, Default)]
struct Unchanged {
    /// The last frame's samples, when kept (`kept`).
    last: Vec<u8>,
    kept: bool,
    size: (u32, u32),
    /// The encoder's last output coded this same picture as "no change".
    settled: bool,
    /// Frames held in a row.
    held: u32,
    /// Frames (coded or held) since the last IDR: held frames do not advance openh264's own
    /// IDR period, so the period is kept here, in frames shown.
    since_idr: u32,
    /// Frames since the last identical pair (saturating).
    since_equal: u32,
    frames: u32,
}

impl Unchanged {
    /// Whether `frame` is the same picture as the last one (compared only when that was kept).
    fn same(&self, frame: &VideoFrame) -> bool {
        self.kept && self.size == (frame.width, frame.height) && self.last == frame.data
    }

    /// Records a frame that was compared (`same`), keeping a copy when it may be needed.
    fn saw(&mut self, frame: &VideoFrame, same: bool) {
        self.frames = self.frames.wrapping_add(1);
        if same {
            self.since_equal = 0;
            return; // `last` already holds this picture
        }
        self.since_equal = self.since_equal.saturating_add(1);
        self.settled = false;
        self.kept = self.since_equal < WATCH_FRAMES || self.frames.is_multiple_of(PROBE_EVERY);
        if self.kept {
            self.last.clear();
            self.last.extend_from_slice(&frame.data);
            self.size = (frame.width, frame.height);
        }
    }
}

/// The openh264 encoder behind [`H264Encoder`]. It configures itself on the first frame (and
/// again when the frame size changes).
pub struct OpenH264Encoder {
    config: OpenH264Config,
    encoder: Option<Encoder>,
    size: (u32, u32),
    pending_bitrate: Option<u32>,
    /// Bitrate changes openh264 refused (kept for tests and logs).
    bitrate_refusals: u32,
    unchanged: Unchanged,
}

impl OpenH264Encoder {
    pub fn new(config: OpenH264Config) -> Result<Self, EncodeError> {
        if config.fps == 0 || config.bitrate_bps == 0 {
            return Err(EncodeError::Init {
                encoder: NAME,
                detail: format!(
                    "fps {} and bitrate {} must be positive",
                    config.fps, config.bitrate_bps
                ),
            });
        }
        Ok(Self {
            config,
            encoder: None,
            size: (0, 0),
            pending_bitrate: None,
            bitrate_refusals: 0,
            unchanged: Unchanged {
                since_equal: WATCH_FRAMES,
                ..Unchanged::default()
            },
        })
    }

    fn start(&mut self, width: u32, height: u32) -> Result<(), EncodeError> {
        let c = &self.config;
        let bitrate = self.pending_bitrate.take().unwrap_or(c.bitrate_bps);
        self.config.bitrate_bps = bitrate;
        let c = &self.config;
        let enc_config = EncoderConfig::new()
            .usage_type(UsageType::CameraVideoRealTime)
            .profile(Profile::Baseline)
            .level(level_for(width, height, c.fps))
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(bitrate))
            .max_frame_rate(FrameRate::from_hz(c.fps as f32))
            .intra_frame_period(IntraFramePeriod::from_num_frames(c.gop_frames))
            // Every IDR repeats the same SPS/PPS ids, which keeps late joiners simple.
            .sps_pps_strategy(SpsPpsStrategy::ConstantId)
            .skip_frames(c.skip_frames)
            .num_threads(c.threads)
            .complexity(c.complexity)
            .scene_change_detect(c.scene_change_detect)
            .background_detection(c.background_detection);
        let encoder =
            Encoder::with_api_config(OpenH264API::from_source(), enc_config).map_err(|e| {
                EncodeError::Init {
                    encoder: NAME,
                    detail: e.to_string(),
                }
            })?;
        self.encoder = Some(encoder);
        self.size = (width, height);
        Ok(())
    }

    /// Changes the running encoder's target and maximum bitrate; false if openh264 refused.
    ///
    /// The maximum is set for the whole stream and for spatial layer 0 too: openh264 checks
    /// the target against layer 0's own maximum, which the overall option leaves at its
    /// initial value, and refuses (rc 1) any target above it.
    fn apply_bitrate(encoder: &mut Encoder, old: u32, new: u32) -> bool {
        let set = |encoder: &mut Encoder, option, layer, bps: u32| {
            let mut info = SBitrateInfo {
                iLayer: layer,
                iBitrate: c_int::try_from(bps).unwrap_or(c_int::MAX),
            };
            // SAFETY: the encoder is initialised (it has encoded a frame) and SetOption only
            // reads the SBitrateInfo during the call.
            let rc = unsafe {
                encoder
                    .raw_api()
                    .set_option(option, addr_of_mut!(info).cast())
            };
            if rc != 0 {
                tracing::warn!(bps, rc, "openh264 rejected a bitrate change");
            }
            rc == 0
        };
        // Keep target <= max at every step.
        if new > old {
            set(encoder, ENCODER_OPTION_MAX_BITRATE, SPATIAL_LAYER_ALL, new)
                & set(encoder, ENCODER_OPTION_MAX_BITRATE, SPATIAL_LAYER_0, new)
                & set(encoder, ENCODER_OPTION_BITRATE, SPATIAL_LAYER_ALL, new)
        } else {
            set(encoder, ENCODER_OPTION_BITRATE, SPATIAL_LAYER_ALL, new)
                & set(encoder, ENCODER_OPTION_MAX_BITRATE, SPATIAL_LAYER_0, new)
                & set(encoder, ENCODER_OPTION_MAX_BITRATE, SPATIAL_LAYER_ALL, new)
        }
    }
}

/// The lowest H.264 level (table A-1) that fits the frame size and macroblock rate.
fn level_for(width: u32, height: u32, fps: u32) -> Level {
    let mbs = width.div_ceil(16) * height.div_ceil(16);
    let rate = mbs * fps;
    match (mbs, rate) {
        (..=1620, ..=40_500) => Level::Level_3_0,
        (..=3600, ..=108_000) => Level::Level_3_1,
        (..=5120, ..=216_000) => Level::Level_3_2,
        (..=8192, ..=245_760) => Level::Level_4_0,
        (..=8704, ..=522_240) => Level::Level_4_2,
        _ => Level::Level_5_1,
    }
}

impl H264Encoder for OpenH264Encoder {
    fn encode(
        &mut self,
        frame: &VideoFrame,
        force_keyframe: bool,
    ) -> Result<Option<EncodedFrame>, EncodeError> {
        super::h264::check_frame(frame)?;
        let (w, h) = (frame.width, frame.height);
        let same = self.config.hold_unchanged && self.unchanged.same(frame);
        self.unchanged.since_idr = self.unchanged.since_idr.saturating_add(1);
        let idr_due = self.config.hold_unchanged
            && self.config.gop_frames > 0
            && self.unchanged.since_idr >= self.config.gop_frames;
        let force_keyframe = force_keyframe || idr_due;
        if same
            && self.unchanged.settled
            && !force_keyframe
            && self.unchanged.held < self.config.fps.saturating_sub(1)
            && self.encoder.is_some()
        {
            self.unchanged.held += 1;
            return Ok(None);
        }
        if self.config.hold_unchanged {
            self.unchanged.saw(frame, same);
        }
        self.unchanged.held = 0;
        if self.encoder.is_none() || self.size != (w, h) {
            // A fresh encoder starts with an IDR, which a size change needs anyway.
            self.start(w, h)?;
        }
        let Some(encoder) = self.encoder.as_mut() else {
            unreachable!("start() sets the encoder or returns an error");
        };
        if let Some(bps) = self.pending_bitrate.take() {
            self.bitrate_refusals +=
                u32::from(!Self::apply_bitrate(encoder, self.config.bitrate_bps, bps));
            self.config.bitrate_bps = bps;
        }
        if force_keyframe {
            encoder.force_intra_frame();
        }
        let (y, u, v) = frame.planes();
        let (wu, hu) = (w as usize, h as usize);
        let yuv = YUVSlices::new((y, u, v), (wu, hu), (wu, wu / 2, wu / 2));
        let pts_ms = u64::try_from(frame.pts.as_millis()).unwrap_or(u64::MAX);
        let stream = encoder
            .encode_at(&yuv, Timestamp::from_millis(pts_ms))
            .map_err(|e| EncodeError::Encode {
                encoder: NAME,
                detail: e.to_string(),
            })?;
        let keyframe = match stream.frame_type() {
            FrameType::Skip | FrameType::Invalid => return Ok(None),
            FrameType::IDR => true,
            FrameType::I | FrameType::P | FrameType::IPMixed => false,
        };
        // One exact-size allocation: the buffer is handed on to the peers.
        let len: usize = (0..stream.num_layers())
            .filter_map(|i| stream.layer(i))
            .flat_map(|l| (0..l.nal_count()).filter_map(move |n| l.nal_unit(n).map(<[u8]>::len)))
            .sum();
        let mut data = Vec::with_capacity(len);
        stream.write_vec(&mut data);
        self.unchanged.settled = same && !keyframe && len <= SETTLED_BYTES;
        if keyframe {
            self.unchanged.since_idr = 0;
        }
        Ok(Some(EncodedFrame {
            data,
            keyframe,
            captured_at: frame.captured_at,
            pts: frame.pts,
        }))
    }

    fn set_bitrate(&mut self, bits_per_sec: u32) {
        let bps = bits_per_sec.max(10_000);
        if self.encoder.is_none() {
            self.config.bitrate_bps = bps;
        } else if bps != self.config.bitrate_bps {
            self.pending_bitrate = Some(bps);
        }
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

/// Tests elsewhere: a real IDR access unit of a `w` x `h` grey picture, SPS and PPS in front.
#[cfg(test)]
pub(crate) fn grey_idr(w: u32, h: u32) -> Vec<u8> {
    let frame = VideoFrame {
        width: w,
        height: h,
        data: vec![128; crate::media::frame::i420_len(w, h)],
        captured_at: std::time::Instant::now(),
        pts: std::time::Duration::ZERO,
    };
    let mut enc = OpenH264Encoder::new(OpenH264Config::default()).expect("encoder");
    enc.encode(&frame, true)
        .expect("encodes")
        .expect("a frame")
        .data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::testsrc::{decode_frame_code, TestPattern};
    use crate::capture::VideoSource;
    use crate::encode::h264::{nal, nal_type, nal_units};
    use crate::media::frame::i420_len;
    use openh264::decoder::Decoder;
    use openh264::formats::YUVSource;

    fn types(data: &[u8]) -> Vec<u8> {
        nal_units(data).filter_map(nal_type).collect()
    }

    #[test]
    fn idr_has_sps_pps_and_decodes() {
        let mut src = TestPattern::new(640, 360, 30).expect("size").unpaced();
        let mut enc = OpenH264Encoder::new(OpenH264Config {
            gop_frames: 1000,
            skip_frames: false,
            ..Default::default()
        })
        .expect("encoder");
        let mut decoder = Decoder::new().expect("decoder");
        let mut keyframes = vec![];
        for i in 0..12 {
            let frame = src.next_frame().expect("frame");
            let out = enc
                .encode(&frame, i == 8)
                .expect("encode")
                .expect("no skipping");
            let t = types(&out.data);
            if out.keyframe {
                keyframes.push(i);
                assert_eq!(&t[..3], [nal::SPS, nal::PPS, nal::IDR], "frame {i}: {t:?}");
                let sps = nal_units(&out.data).next().expect("sps");
                // profile_idc 66 (baseline) with constraint_set1 (constrained baseline).
                assert_eq!(sps[1], 0x42);
                assert_ne!(sps[2] & 0x40, 0, "constraint_set1 flag: {:#x}", sps[2]);
            } else {
                assert!(t.iter().all(|&n| n == nal::SLICE), "frame {i}: {t:?}");
            }
            let decoded = decoder
                .decode(&out.data)
                .expect("decodes")
                .expect("a picture");
            assert_eq!(decoded.dimensions(), (640, 360));
            // The frame code survives the encoder (a benchmark reads it the same way).
            let (dw, dh) = decoded.dimensions();
            let (sy, _, _) = decoded.strides();
            let mut luma = Vec::with_capacity(dw * dh);
            for row in decoded.y().chunks(sy).take(dh) {
                luma.extend_from_slice(&row[..dw]);
            }
            assert_eq!(decode_frame_code(&luma, 640, 360), Some(i));
            assert_eq!(out.pts, frame.pts);
        }
        assert_eq!(keyframes, [0, 8]);
    }

    /// Busy content (faint noise) so the encoder's output is bound by the bitrate.
    fn noise_frame(seed: &mut u32, n: u32) -> VideoFrame {
        let mut data = vec![128u8; i420_len(640, 360)];
        for p in &mut data[..640 * 360] {
            // xorshift32
            *seed ^= *seed << 13;
            *seed ^= *seed >> 17;
            *seed ^= *seed << 5;
            *p = 120 + (*seed % 16) as u8;
        }
        VideoFrame {
            width: 640,
            height: 360,
            data,
            captured_at: std::time::Instant::now(),
            pts: std::time::Duration::from_millis(u64::from(n) * 1000 / 30),
        }
    }

    #[test]
    fn bitrate_changes_up_and_down_are_accepted() {
        let mut enc = OpenH264Encoder::new(OpenH264Config {
            bitrate_bps: 2_500_000,
            ..Default::default()
        })
        .expect("encoder");
        let mut seed = 7;
        // The pattern a bandwidth estimate follows: down to the floor, back up, down, up.
        let targets = [300_000, 1_600_000, 900_000, 2_200_000, 2_500_000, 400_000];
        for (i, bps) in (0..).zip(targets) {
            enc.set_bitrate(bps);
            enc.encode(&noise_frame(&mut seed, i), false)
                .expect("encode");
        }
        assert_eq!(enc.bitrate_refusals, 0);
    }

    #[test]
    fn live_bitrate_change() {
        let mut enc = OpenH264Encoder::new(OpenH264Config {
            bitrate_bps: 2_000_000,
            ..Default::default()
        })
        .expect("encoder");
        let mut seed = 1;
        let mut sizes = vec![];
        let mut keyframes = vec![];
        for i in 0..120u32 {
            if i == 60 {
                enc.set_bitrate(200_000);
            }
            match enc
                .encode(&noise_frame(&mut seed, i), false)
                .expect("encode")
            {
                Some(out) => {
                    if out.keyframe {
                        keyframes.push(i);
                    }
                    sizes.push(out.data.len());
                }
                None => sizes.push(0),
            }
        }
        assert_eq!(keyframes.first(), Some(&0));
        let before: usize = sizes[30..60].iter().sum();
        let after: usize = sizes[90..120].iter().sum();
        // One second of output tracks the target (2 Mbps = 250 kB/s, 200 kbps = 25 kB/s).
        assert!(
            after * 5 < before,
            "bitrate change took effect: {before} -> {after}"
        );
        assert!(after < 40_000, "{after} bytes in the second at 200 kbps");
    }

    #[test]
    fn periodic_idr_on_calm_content() {
        let mut src = TestPattern::new(640, 360, 30).expect("size").unpaced();
        let mut enc = OpenH264Encoder::new(OpenH264Config {
            gop_frames: 30,
            ..Default::default()
        })
        .expect("encoder");
        let keyframes: Vec<u32> = (0..70u32)
            .filter(|_| {
                let out = enc
                    .encode(&src.next_frame().expect("frame"), false)
                    .expect("encode");
                out.is_some_and(|o| o.keyframe)
            })
            .collect();
        assert_eq!(keyframes, [0, 30, 60]);
    }

    #[test]
    fn size_change_restarts_with_idr() {
        let mut enc = OpenH264Encoder::new(OpenH264Config::default()).expect("encoder");
        let mut a = TestPattern::new(320, 180, 30).expect("size").unpaced();
        let mut b = TestPattern::new(640, 360, 30).expect("size").unpaced();
        assert!(
            enc.encode(&a.next_frame().expect("frame"), false)
                .expect("ok")
                .expect("au")
                .keyframe
        );
        assert!(
            !enc.encode(&a.next_frame().expect("frame"), false)
                .expect("ok")
                .expect("au")
                .keyframe
        );
        assert!(
            enc.encode(&b.next_frame().expect("frame"), false)
                .expect("ok")
                .expect("au")
                .keyframe
        );
    }

    #[test]
    fn rejects_malformed_frames() {
        let mut enc = OpenH264Encoder::new(OpenH264Config::default()).expect("encoder");
        let frame = VideoFrame {
            width: 64,
            height: 64,
            data: vec![0; 10],
            captured_at: std::time::Instant::now(),
            pts: std::time::Duration::ZERO,
        };
        assert!(matches!(
            enc.encode(&frame, false),
            Err(EncodeError::BadFrame { .. })
        ));
    }

    /// A slide: the same picture, frame after frame.
    fn still_frame(n: u32, shade: u8) -> VideoFrame {
        let mut data = vec![128u8; i420_len(320, 180)];
        for (i, p) in data[..320 * 180].iter_mut().enumerate() {
            *p = if (i / 320) % 20 < 3 && i % 320 < 200 {
                40
            } else {
                shade
            };
        }
        VideoFrame {
            width: 320,
            height: 180,
            data,
            captured_at: std::time::Instant::now(),
            pts: std::time::Duration::from_millis(u64::from(n) * 1000 / 30),
        }
    }

    #[test]
    fn unchanged_frames_are_held_once_settled() {
        let mut enc = OpenH264Encoder::new(OpenH264Config {
            skip_frames: false,
            ..Default::default()
        })
        .expect("encoder");
        let mut decoder = Decoder::new().expect("decoder");
        let mut sent = vec![];
        for i in 0..200u32 {
            // A slide change at 100, a keyframe request at 150.
            let frame = still_frame(i, if i < 100 { 230 } else { 200 });
            if let Some(out) = enc.encode(&frame, i == 150).expect("encode") {
                decoder.decode(&out.data).expect("decodes");
                sent.push((i, out.keyframe, out.data.len()));
            }
        }
        let at = |i| sent.iter().find(|s| s.0 == i).copied();
        assert!(at(0).is_some_and(|s| s.1), "starts with an IDR: {sent:?}");
        assert!(at(100).is_some(), "a change is encoded at once: {sent:?}");
        assert!(
            at(150).is_some_and(|s| s.1),
            "keyframe on request: {sent:?}"
        );
        // Settled stretches are held, with a frame every second.
        assert!(sent.len() < 80, "{} of 200 encoded: {sent:?}", sent.len());
        for w in sent.windows(2) {
            assert!(w[1].0 - w[0].0 <= 30, "a gap over a second: {sent:?}");
        }
        // Only frames that coded no change were followed by a hold.
        for w in sent.windows(2) {
            if w[1].0 - w[0].0 > 1 {
                assert!(w[0].2 <= SETTLED_BYTES && !w[0].1, "{w:?} in {sent:?}");
            }
        }
    }

    #[test]
    fn periodic_idr_on_a_held_picture() {
        let mut enc = OpenH264Encoder::new(OpenH264Config {
            gop_frames: 30,
            skip_frames: false,
            ..Default::default()
        })
        .expect("encoder");
        let mut coded = 0;
        let keyframes: Vec<u32> = (0..70u32)
            .filter(|&i| {
                let out = enc.encode(&still_frame(i, 230), false).expect("encode");
                coded += u32::from(out.is_some());
                out.is_some_and(|o| o.keyframe)
            })
            .collect();
        assert_eq!(keyframes, [0, 30, 60]);
        assert!(coded < 50, "{coded} of 70 coded");
    }

    #[test]
    fn moving_or_unheld_frames_are_all_encoded() {
        let mut src = TestPattern::new(320, 180, 30).expect("size").unpaced();
        let mut enc = OpenH264Encoder::new(OpenH264Config {
            skip_frames: false,
            ..Default::default()
        })
        .expect("encoder");
        for _ in 0..60 {
            let frame = src.next_frame().expect("frame");
            assert!(enc.encode(&frame, false).expect("encode").is_some());
        }
        let mut enc = OpenH264Encoder::new(OpenH264Config {
            skip_frames: false,
            hold_unchanged: false,
            ..Default::default()
        })
        .expect("encoder");
        for i in 0..60 {
            assert!(enc
                .encode(&still_frame(i, 230), false)
                .expect("encode")
                .is_some());
        }
    }

    #[test]
    fn levels_follow_size() {
        assert!(matches!(level_for(1280, 720, 30), Level::Level_3_1));
        assert!(matches!(level_for(1920, 1080, 30), Level::Level_4_0));
        assert!(matches!(level_for(640, 360, 30), Level::Level_3_0));
    }

    /// This thread's CPU time (user + system) from /proc, in clock ticks (1/100 s).
    fn thread_cpu_ticks() -> u64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("/proc");
        // Fields after the command name (which may hold spaces): state is field 3.
        let rest = &stat[stat.rfind(')').expect("comm") + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
    }

    /// The settings comparison of bench/encode: every variant of [`OpenH264Config`] worth
    /// weighing, on the frames of ROOMBOX_SWEEP_Y4M (held in memory, so only the encoder is
    /// timed), ROOMBOX_SWEEP_ROUNDS rounds in a rotating order. Prints `SWEEP NAME ROUND TICKS
    /// FRAMES BYTES` (TICKS: the encoding thread's CPU time in 1/100 s) and leaves each
    /// variant's output in ROOMBOX_SWEEP_OUT for PSNR/SSIM (see `write_sweep_output`).
    #[test]
    #[ignore = "a benchmark: bench/encode/run.sh runs it"]
    fn settings_sweep() {
        use crate::capture::y4m::Y4mFile;
        let Ok(path) = std::env::var("ROOMBOX_SWEEP_Y4M") else {
            return;
        };
        let out = std::path::PathBuf::from(std::env::var("ROOMBOX_SWEEP_OUT").expect("OUT"));
        let rounds: u32 =
            std::env::var("ROOMBOX_SWEEP_ROUNDS").map_or(3, |r| r.parse().expect("n"));
        let mut src = Y4mFile::open(&path).expect("y4m").unpaced();
        let count = 300;
        let frames: Vec<VideoFrame> = (0..count)
            .map(|_| src.next_frame().expect("frame"))
            .collect();
        let fps = src.header().fps_num / src.header().fps_den.max(1);
        let base = OpenH264Config {
            fps,
            bitrate_bps: 2_500_000,
            gop_frames: fps * 4,
            skip_frames: false,
            hold_unchanged: false,
            ..Default::default()
        };
        // Not here: complexity High codes a camera stream exactly as Medium does (openh264 only
        // looks at it for screen content), and openh264 turns adaptive quantization off itself.
        let variants: Vec<(&str, OpenH264Config)> = vec![
            ("medium", base),
            (
                "low",
                OpenH264Config {
                    complexity: Complexity::Low,
                    ..base
                },
            ),
            (
                "no-scene-change",
                OpenH264Config {
                    scene_change_detect: false,
                    ..base
                },
            ),
            (
                "no-background",
                OpenH264Config {
                    background_detection: false,
                    ..base
                },
            ),
            (
                "hold-unchanged",
                OpenH264Config {
                    hold_unchanged: true,
                    ..base
                },
            ),
        ];
        for round in 0..rounds {
            for k in 0..variants.len() {
                let (name, config) = variants[(k + round as usize) % variants.len()];
                let mut enc = OpenH264Encoder::new(config).expect("encoder");
                let mut aus = Vec::with_capacity(frames.len());
                let before = thread_cpu_ticks();
                for frame in &frames {
                    aus.push(enc.encode(frame, false).expect("encode").map(|au| au.data));
                }
                let ticks = thread_cpu_ticks() - before;
                let written = aus.iter().flatten().count();
                let bytes: usize = aus.iter().flatten().map(Vec::len).sum();
                println!("SWEEP {name} {round} {ticks} {written} {bytes}");
                if round + 1 == rounds {
                    write_sweep_output(&out, name, &aus, &frames[0]);
                }
            }
        }
    }

    /// NAME.h264 when every frame was coded; else NAME.y4m, decoded, a held frame shown again.
    fn write_sweep_output(
        dir: &std::path::Path,
        name: &str,
        aus: &[Option<Vec<u8>>],
        f: &VideoFrame,
    ) {
        use std::io::Write;
        if aus.iter().all(Option::is_some) {
            let stream: Vec<u8> = aus.iter().flatten().flatten().copied().collect();
            std::fs::write(dir.join(format!("{name}.h264")), stream).expect("write");
            return;
        }
        let file = std::fs::File::create(dir.join(format!("{name}.y4m"))).expect("create");
        let mut y4m = std::io::BufWriter::new(file);
        writeln!(y4m, "YUV4MPEG2 W{} H{} F30:1 C420jpeg", f.width, f.height).expect("write");
        let mut decoder = Decoder::new().expect("decoder");
        let mut picture = vec![];
        for au in aus {
            if let Some(au) = au {
                let yuv = decoder.decode(au).expect("decodes").expect("a picture");
                let (w, h) = yuv.dimensions();
                let (sy, su, sv) = yuv.strides();
                picture.clear();
                for (plane, stride, pw, ph) in [
                    (yuv.y(), sy, w, h),
                    (yuv.u(), su, w / 2, h / 2),
                    (yuv.v(), sv, w / 2, h / 2),
                ] {
                    for row in plane.chunks(stride).take(ph) {
                        picture.extend_from_slice(&row[..pw]);
                    }
                }
            }
            y4m.write_all(b"FRAME\n").expect("write");
            y4m.write_all(&picture).expect("write");
        }
        y4m.flush().expect("write");
    }
}
