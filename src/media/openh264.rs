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

use super::frame::{i420_len, VideoFrame};
use super::h264::{EncodeError, EncodedFrame, H264Encoder};

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
            .complexity(c.complexity);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::h264::{nal, nal_type, nal_units};
    use crate::media::source::VideoSource;
    use crate::media::testsrc::{decode_frame_code, TestPattern};
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

    #[test]
    fn levels_follow_size() {
        assert!(matches!(level_for(1280, 720, 30), Level::Level_3_1));
        assert!(matches!(level_for(1920, 1080, 30), Level::Level_4_0));
        assert!(matches!(level_for(640, 360, 30), Level::Level_3_0));
    }
}
