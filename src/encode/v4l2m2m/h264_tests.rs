//! The H.264 layer and the session under it, against the FAKE bcm2835-codec (the ioctl
//! boundary only; see fake_bcm2835.rs). The Pi's encoder itself does not run here.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use v4l2r::bindings as b;

use super::device::{FourCc, RawKind};
use super::fake_bcm2835::{Behaviour, Call, FakeBcm2835, Log};
use super::h264::{level_for, V4l2H264Config, V4l2H264Encoder};
use crate::encode::h264::{nal, nal_type, nal_units, EncodeError, H264Encoder};
use crate::media::frame::{i420_len, VideoFrame};

fn encoder(behaviour: Behaviour, gop: u32) -> (V4l2H264Encoder<FakeBcm2835>, Arc<Mutex<Log>>) {
    let log = Arc::new(Mutex::new(Log::default()));
    let for_open = log.clone();
    let enc = V4l2H264Encoder::new(
        V4l2H264Config {
            fps: 30,
            bitrate_bps: 1_500_000,
            gop_frames: gop,
        },
        Box::new(move || Ok(FakeBcm2835::new(for_open.clone(), behaviour.clone()))),
    )
    .expect("opens");
    (enc, log)
}

/// A flat frame whose luma is `n` (so the fake's record shows which frame reached it).
fn frame(width: u32, height: u32, n: u32) -> VideoFrame {
    let mut data = vec![128u8; i420_len(width, height)];
    data[..(width * height) as usize].fill(n as u8);
    VideoFrame {
        width,
        height,
        data,
        captured_at: Instant::now(),
        pts: Duration::from_millis(u64::from(n) * 33),
    }
}

fn types(data: &[u8]) -> Vec<u8> {
    nal_units(data).filter_map(nal_type).collect()
}

fn calls(log: &Arc<Mutex<Log>>) -> Vec<Call> {
    log.lock().unwrap().calls.clone()
}

#[test]
fn sets_formats_rate_and_controls_before_streaming() {
    let (mut enc, log) = encoder(Behaviour::default(), 60);
    enc.encode(&frame(1280, 720, 1), false).unwrap().unwrap();
    let c = calls(&log);
    let stream_on = c.iter().position(|c| *c == Call::StreamOn).unwrap();
    let before = &c[..stream_on];
    assert_eq!(
        before[0],
        Call::Formats {
            coded: FourCc::from_fourcc(b"H264"),
            raw: RawKind::Yu12,
            width: 1280,
            height: 720
        }
    );
    assert!(before.contains(&Call::FrameRate(30)));
    for (id, value) in [
        (
            b::V4L2_CID_MPEG_VIDEO_BITRATE_MODE,
            b::v4l2_mpeg_video_bitrate_mode_V4L2_MPEG_VIDEO_BITRATE_MODE_CBR,
        ),
        (b::V4L2_CID_MPEG_VIDEO_BITRATE, 1_500_000),
        (b::V4L2_CID_MPEG_VIDEO_H264_I_PERIOD, 60),
        (b::V4L2_CID_MPEG_VIDEO_B_FRAMES, 0),
        (
            b::V4L2_CID_MPEG_VIDEO_H264_PROFILE,
            b::v4l2_mpeg_video_h264_profile_V4L2_MPEG_VIDEO_H264_PROFILE_CONSTRAINED_BASELINE,
        ),
        (
            b::V4L2_CID_MPEG_VIDEO_H264_LEVEL,
            b::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_3_1,
        ),
        (b::V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER, 0),
    ] {
        assert!(
            before.contains(&Call::Control(id, value as i32)),
            "control {id:#x} = {value} missing from {before:?}"
        );
    }
    // The frame's content reached the driver's buffer.
    assert_eq!(c[stream_on + 1], Call::Frame(1, 1));
}

/// Keyframes at the start, on request and every I period; each IDR carries SPS and PPS in
/// front, whether the driver sent them apart, joined, or (after the first) not at all.
fn every_idr_has_sps_pps(separate_headers: bool) {
    let (mut enc, _log) = encoder(
        Behaviour {
            separate_headers,
            ..Behaviour::default()
        },
        60,
    );
    let mut keyframes = vec![];
    for i in 0..130 {
        let f = frame(640, 360, i);
        let out = enc.encode(&f, i == 45).unwrap().expect("one AU per frame");
        assert_eq!(out.pts, f.pts);
        let t = types(&out.data);
        if out.keyframe {
            keyframes.push(i);
            assert_eq!(t, [nal::SPS, nal::PPS, nal::IDR], "frame {i}");
            let sps = nal_units(&out.data).next().unwrap();
            assert_eq!(
                &sps[..4],
                [0x67, 0x42, 0xc0, 30],
                "constrained baseline, level 3.0"
            );
        } else {
            assert_eq!(t, [nal::SLICE], "frame {i}");
        }
    }
    assert_eq!(keyframes, [0, 45, 105]);
}

#[test]
fn every_idr_has_sps_pps_with_separate_headers() {
    every_idr_has_sps_pps(true);
}

#[test]
fn every_idr_has_sps_pps_with_joined_headers() {
    every_idr_has_sps_pps(false);
}

#[test]
fn bitrate_changes_on_the_fly_without_a_restart() {
    let (mut enc, log) = encoder(Behaviour::default(), 60);
    for i in 0..10 {
        if i == 5 {
            enc.set_bitrate(800_000);
        }
        if i == 7 {
            enc.set_bitrate(800_000); // unchanged: no ioctl
        }
        enc.encode(&frame(640, 360, i), false).unwrap().unwrap();
    }
    let c = calls(&log);
    let bitrate = Call::Control(b::V4L2_CID_MPEG_VIDEO_BITRATE, 800_000);
    let at = c.iter().position(|x| *x == bitrate).expect("bitrate set");
    // Applied between frame 5 (timestamp 5) and frame 6.
    assert_eq!(c[at - 1], Call::Frame(5, 4));
    assert_eq!(c[at + 1], Call::Frame(6, 5));
    assert_eq!(c.iter().filter(|x| **x == bitrate).count(), 1);
    assert_eq!(c.iter().filter(|x| **x == Call::StreamOn).count(), 1);
    assert_eq!(enc.refusals, 0);
}

#[test]
fn forced_keyframe_sets_the_control_before_its_frame() {
    let (mut enc, log) = encoder(Behaviour::default(), 1000);
    enc.encode(&frame(320, 240, 0), false).unwrap();
    enc.encode(&frame(320, 240, 1), false).unwrap();
    let out = enc.encode(&frame(320, 240, 2), true).unwrap().unwrap();
    assert!(out.keyframe);
    let c = calls(&log);
    let n = c.len();
    assert_eq!(
        c[n - 2..],
        [
            Call::Control(b::V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME, 1),
            Call::Frame(3, 2)
        ]
    );
}

#[test]
fn a_size_change_restarts_with_an_idr_and_new_headers() {
    let (mut enc, log) = encoder(Behaviour::default(), 1000);
    for i in 0..3 {
        enc.encode(&frame(1280, 720, i), false).unwrap();
    }
    let out = enc.encode(&frame(1920, 1080, 3), false).unwrap().unwrap();
    assert!(out.keyframe);
    assert_eq!(types(&out.data), [nal::SPS, nal::PPS, nal::IDR]);
    let sps = nal_units(&out.data).next().unwrap();
    // The new session's SPS (1920/16 = 120, 1080/16 = 67), level 4.0, not the cached 720p one.
    assert_eq!(sps, [0x67, 0x42, 0xc0, 40, 120, 67]);
    let next = enc.encode(&frame(1920, 1080, 4), false).unwrap().unwrap();
    assert!(!next.keyframe);
    let c = calls(&log);
    let restart = c.iter().position(|x| *x == Call::Stop).expect("drained");
    assert_eq!(c[restart + 1], Call::StreamOff);
    assert_eq!(
        c[restart + 2],
        Call::Formats {
            coded: FourCc::from_fourcc(b"H264"),
            raw: RawKind::Yu12,
            width: 1920,
            height: 1080
        }
    );
    assert!(c[restart..].contains(&Call::Control(
        b::V4L2_CID_MPEG_VIDEO_H264_LEVEL,
        b::v4l2_mpeg_video_h264_level_V4L2_MPEG_VIDEO_H264_LEVEL_4_0 as i32
    )));
    // Same file handle: a restart is not a reopen.
    assert_eq!(log.lock().unwrap().opens, 1);
}

#[test]
fn a_stalled_encoder_is_reported_and_reopened() {
    let (mut enc, log) = encoder(
        Behaviour {
            stall_after: Some(3),
            ..Behaviour::default()
        },
        1000,
    );
    for i in 0..3 {
        enc.encode(&frame(320, 240, i), false).unwrap().unwrap();
    }
    let e = enc
        .encode(&frame(320, 240, 3), false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/dev/video11 (bcm2835-codec)") && e.contains("no coded frame"),
        "{e}"
    );
    // The next frame opens the device afresh (this fake instance stalls again after 3 more).
    let out = enc.encode(&frame(320, 240, 4), false).unwrap().unwrap();
    assert!(out.keyframe);
    assert_eq!(types(&out.data), [nal::SPS, nal::PPS, nal::IDR]);
    assert_eq!(log.lock().unwrap().opens, 2);
}

#[test]
fn drop_drains_and_stops_streaming() {
    let (mut enc, log) = encoder(Behaviour::default(), 1000);
    enc.encode(&frame(320, 240, 0), false).unwrap();
    drop(enc);
    let c = calls(&log);
    assert_eq!(c[c.len() - 2..], [Call::Stop, Call::StreamOff]);
}

#[test]
fn a_device_without_h264_is_refused_by_name() {
    let log = Arc::new(Mutex::new(Log::default()));
    let behaviour = Behaviour {
        coded: vec![FourCc::from_fourcc(b"FWHT")],
        ..Behaviour::default()
    };
    let e = V4l2H264Encoder::new(
        V4l2H264Config {
            fps: 30,
            bitrate_bps: 1_000_000,
            gop_frames: 60,
        },
        Box::new(move || Ok(FakeBcm2835::new(log.clone(), behaviour.clone()))),
    )
    .err()
    .expect("refused");
    assert!(matches!(e, EncodeError::Init { .. }));
    let e = e.to_string();
    assert!(
        e.contains("/dev/video11") && e.contains("no H264") && e.contains("FWHT"),
        "{e}"
    );
}

#[test]
fn malformed_frames_are_refused() {
    let (mut enc, _log) = encoder(Behaviour::default(), 60);
    let mut f = frame(64, 64, 0);
    f.data.truncate(10);
    assert!(matches!(
        enc.encode(&f, false),
        Err(EncodeError::BadFrame { .. })
    ));
}

#[test]
fn levels_follow_size_and_rate() {
    assert_eq!(level_for(640, 360, 30).0, "level 3.0");
    assert_eq!(level_for(1280, 720, 30).0, "level 3.1");
    assert_eq!(level_for(1280, 720, 60).0, "level 3.2");
    assert_eq!(level_for(1920, 1080, 30).0, "level 4.0");
    assert_eq!(level_for(1920, 1080, 60).0, "level 4.2");
}

#[test]
fn a_vanished_device_is_retried_after_a_pause_not_every_frame() {
    use super::device::DeviceError;
    use std::sync::atomic::{AtomicBool, Ordering};
    let log = Arc::new(Mutex::new(Log::default()));
    let gone = Arc::new(AtomicBool::new(false));
    let (l, g) = (log.clone(), gone.clone());
    let mut enc = V4l2H264Encoder::new(
        V4l2H264Config {
            fps: 30,
            bitrate_bps: 1_000_000,
            gop_frames: 60,
        },
        Box::new(move || {
            if g.load(Ordering::Relaxed) {
                return Err(DeviceError::new(
                    &"/dev/video11",
                    "opening",
                    "No such file or directory",
                ));
            }
            Ok(FakeBcm2835::new(
                l.clone(),
                Behaviour {
                    stall_after: Some(1),
                    ..Behaviour::default()
                },
            ))
        }),
    )
    .unwrap();
    assert!(enc.encode(&frame(320, 240, 0), false).unwrap().is_some());
    gone.store(true, Ordering::Relaxed);
    let stalled = enc
        .encode(&frame(320, 240, 1), false)
        .unwrap_err()
        .to_string();
    assert!(stalled.contains("no coded frame"), "{stalled}");
    let missing = enc
        .encode(&frame(320, 240, 2), false)
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("/dev/video11: opening: No such file"),
        "{missing}"
    );
    // Within the pause the frame is skipped quietly instead of failing again.
    assert!(enc.encode(&frame(320, 240, 3), false).unwrap().is_none());
    assert_eq!(log.lock().unwrap().opens, 1);
}
