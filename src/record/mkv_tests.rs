//! The Matroska writer read back with a small EBML reader (`mkv_read`): structure, patched
//! sizes and Duration, block flags and order, Cues that point at clusters, a video track whose
//! first keyframe comes after the header, and tracks that never got a block.

use std::io::Cursor;

use super::mkv::{avc_config, opus_head, AudioTrack, MkvError, MkvWriter, Track, VideoTrack};
use super::mkv_read::{annex_b, parse, voids_in_tracks};
use crate::encode::openh264::grey_idr;

const SPS: [u8; 8] = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16];
const PPS: [u8; 4] = [0x68, 0xce, 0x3c, 0x80];

/// SPS, PPS and an IDR slice as bytes (the SPS is cut short: enough for the avcC, not for a
/// picture size).
fn fake_idr() -> Vec<u8> {
    let mut f = vec![0, 0, 0, 1];
    f.extend_from_slice(&SPS);
    f.extend_from_slice(&[0, 0, 0, 1]);
    f.extend_from_slice(&PPS);
    f.extend_from_slice(&[0, 0, 1, 0x65, 0x88, 0x84, 0x00]);
    f
}

const P_FRAME: [u8; 7] = [0, 0, 0, 1, 0x41, 0x9a, 0x02];
const OPUS_20MS: [u8; 2] = [0xf8, 2]; // CELT fullband 20 ms, one frame

fn opus_track() -> Track {
    Track::Audio(AudioTrack {
        channels: 1,
        pre_skip: 312,
    })
}

#[test]
fn avcc_and_opus_head_follow_their_specs() {
    let c = avc_config(&fake_idr()).expect("SPS and PPS present");
    assert_eq!(&c[..6], [1, 0x42, 0xc0, 0x1f, 0xff, 0xe1]);
    assert_eq!(&c[6..8], [0, 8]);
    assert_eq!(&c[8..16], SPS);
    assert_eq!(&c[16..19], [1, 0, 4]);
    assert_eq!(&c[19..], PPS);
    assert!(avc_config(&P_FRAME).is_none());
    let h = opus_head(AudioTrack {
        channels: 1,
        pre_skip: 312,
    });
    assert_eq!(&h[..8], b"OpusHead");
    assert_eq!(h.len(), 19);
    assert_eq!(&h[8..12], [1, 1, 0x38, 0x01]);
    assert_eq!(&h[12..16], 48_000u32.to_le_bytes());
}

#[test]
fn writes_a_complete_interleaved_file() {
    let video = Track::Video(VideoTrack { fps: Some(25) });
    let mut w = MkvWriter::new(Cursor::new(Vec::new()), &[video, opus_track()]);
    let key = grey_idr(320, 240);
    // Audio that comes before the first keyframe waits for it; video runs 60 ms late, as a
    // real encoder would, and the file must still be in timestamp order.
    w.audio(2, 0, &OPUS_20MS).unwrap();
    let mut audio_ms = 20;
    for n in 0..60u64 {
        let ms = n * 40;
        while audio_ms <= ms + 60 {
            w.audio(2, audio_ms, &OPUS_20MS).unwrap();
            audio_ms += 20;
        }
        let frame = if n % 25 == 0 {
            key.clone()
        } else {
            P_FRAME.to_vec()
        };
        w.video(1, ms, &frame, n % 25 == 0).unwrap();
    }
    let (duration, cursor) = w.finish().unwrap();
    let file = cursor.into_inner();
    assert_eq!(duration, audio_ms, "ends with the last audio packet");

    let f = parse(&file);
    assert_eq!(f.duration_ms, duration as f64, "Duration patched");
    assert_eq!(voids_in_tracks(&file), 0);
    // Tracks: H.264 with the avcC and the SPS's size, Opus with OpusHead.
    assert_eq!(f.tracks.len(), 2);
    let v = f.track(1).expect("video");
    assert_eq!((v.kind, v.codec.as_str()), (1, "V_MPEG4/ISO/AVC"));
    assert_eq!(v.codec_private, avc_config(&key).unwrap());
    assert_eq!(v.size, Some((320, 240)), "from the SPS");
    assert_eq!(v.default_duration, Some(40_000_000));
    let a = f.track(2).expect("audio");
    assert_eq!((a.kind, a.codec.as_str()), (2, "A_OPUS"));
    assert_eq!(&a.codec_private[..8], b"OpusHead");
    assert_eq!(a.channels, Some(1));

    // Blocks: keyframes flagged, each IDR opening a cluster, NAL units length-prefixed.
    assert_eq!(f.clusters, 3, "a cluster per IDR (frames 0, 25, 50)");
    let video: Vec<_> = f.blocks_of(1).collect();
    assert_eq!(video.len(), 60);
    assert_eq!(video.iter().filter(|b| b.keyframe).count(), 3);
    assert_eq!(
        annex_b(&video[0].data),
        key,
        "the IDR as given, in avcC framing"
    );
    assert_eq!(annex_b(&video[1].data), P_FRAME);
    assert!(
        f.blocks_of(2).all(|b| b.keyframe),
        "every Opus packet is a keyframe"
    );
    assert_eq!(f.blocks_of(2).count() as u64, audio_ms / 20);
    // Cues: one per IDR cluster, on the video track.
    assert_eq!(f.cues, [(0, 1), (1000, 1), (2000, 1)]);
}

#[test]
fn refuses_a_first_frame_without_parameter_sets() {
    let video = Track::Video(VideoTrack { fps: Some(25) });
    let mut w = MkvWriter::new(Cursor::new(Vec::new()), &[video]);
    assert!(matches!(
        w.video(1, 0, &P_FRAME, false),
        Err(MkvError::NoParameterSets)
    ));
    // An SPS that does not say the picture's size is no better.
    assert!(matches!(
        w.video(1, 0, &fake_idr(), true),
        Err(MkvError::NoParameterSets)
    ));
    assert!(matches!(
        w.audio(1, 0, &OPUS_20MS),
        Err(MkvError::NoSuchTrack(1, "audio"))
    ));
    let w2 = MkvWriter::new(Cursor::new(Vec::new()), &[video]);
    assert!(
        matches!(w2.finish(), Err(MkvError::Empty)),
        "nothing recorded"
    );
    // The refused frames left nothing behind: a keyframe starts the file.
    w.video(1, 40, &grey_idr(64, 48), true).unwrap();
    let (_, out) = w.finish().unwrap();
    let f = parse(&out.into_inner());
    assert_eq!(f.blocks.len(), 1);
    assert_eq!(f.track(1).unwrap().size, Some((64, 48)));
}

/// What people send the box, in arrival order: a voice from the start, a screen share that
/// begins a second later (after the header is out), and a second video that never comes.
#[test]
fn a_video_that_starts_after_the_header_fills_the_room_kept_for_it() {
    let sender = Track::Video(VideoTrack { fps: None });
    let audio = Track::Audio(AudioTrack {
        channels: 2,
        pre_skip: 0,
    });
    let mut w =
        MkvWriter::new(Cursor::new(Vec::new()), &[sender, audio, sender]).in_arrival_order();
    let key = grey_idr(640, 360);
    let mut video_frames = 0;
    for ms in (0..3000).step_by(20) {
        w.audio(2, ms, &OPUS_20MS).unwrap();
        if ms >= 1000 && ms % 100 == 0 {
            if video_frames == 0 {
                w.name_track(1, "screen");
                assert_eq!(w.written(2), 51, "the audio went out at once");
            }
            let frame = if video_frames % 10 == 0 {
                key.clone()
            } else {
                P_FRAME.to_vec()
            };
            w.video(1, ms, &frame, video_frames % 10 == 0).unwrap();
            video_frames += 1;
        }
    }
    let (duration, out) = w.finish().unwrap();
    let file = out.into_inner();
    assert_eq!(duration, 3000);
    let f = parse(&file);
    assert_eq!(
        voids_in_tracks(&file),
        1,
        "the video that never came is taken back"
    );
    assert_eq!(f.tracks.len(), 2);
    let v = f.track(1).expect("the screen");
    assert_eq!(v.size, Some((640, 360)));
    assert_eq!(v.codec_private, avc_config(&key).unwrap());
    assert_eq!(v.name.as_deref(), Some("screen"));
    assert_eq!(v.default_duration, None, "the sender's own pace");
    assert_eq!(f.track(2).unwrap().channels, Some(2));
    assert!(f.track(3).is_none());
    assert_eq!(f.blocks_of(1).count(), video_frames);
    assert_eq!(f.blocks_of(2).count(), 150);
    // Cues on the video's keyframes only (the audio-only first second has none).
    assert_eq!(f.cues, [(1000, 1), (2000, 1)]);
}

#[test]
fn a_file_without_video_declares_only_its_audio_and_cues_it() {
    let sender = Track::Video(VideoTrack { fps: None });
    let mut w = MkvWriter::new(Cursor::new(Vec::new()), &[sender, opus_track()]).in_arrival_order();
    for ms in (0..12_000).step_by(20) {
        w.audio(2, ms, &OPUS_20MS).unwrap();
    }
    let (duration, out) = w.finish().unwrap();
    let file = out.into_inner();
    assert_eq!(duration, 12_000);
    let f = parse(&file);
    assert_eq!(f.tracks.len(), 1);
    assert_eq!(f.tracks[0].number, 2);
    assert_eq!(f.blocks.len(), 600);
    // A cluster every 5 s, each cued on its first audio packet.
    assert_eq!(f.cues, [(0, 2), (5000, 2), (10_000, 2)]);
}

#[test]
fn a_file_without_audio_declares_only_its_video() {
    let sender = Track::Video(VideoTrack { fps: None });
    let mut w = MkvWriter::new(Cursor::new(Vec::new()), &[sender, opus_track()]).in_arrival_order();
    let key = grey_idr(160, 90);
    w.video(1, 0, &key, true).unwrap();
    w.video(1, 50, &P_FRAME, false).unwrap();
    w.video(1, 150, &P_FRAME, false).unwrap();
    let (duration, out) = w.finish().unwrap();
    let f = parse(&out.into_inner());
    assert_eq!(
        duration, 250,
        "the last frame lasts as long as the gap before it"
    );
    assert_eq!(f.tracks.len(), 1);
    assert_eq!(f.tracks[0].size, Some((160, 90)));
    assert_eq!(f.cues, [(0, 1)]);
}

/// Without the arrival-order promise (`roombox record`), a track that never comes holds the
/// others back only until the queue is full: memory stays bounded.
#[test]
fn a_stalled_track_holds_the_others_back_only_so_long() {
    let video = Track::Video(VideoTrack { fps: Some(30) });
    let mut w = MkvWriter::new(Cursor::new(Vec::new()), &[video, opus_track()]);
    for n in 0..300u64 {
        w.audio(2, n * 20, &OPUS_20MS).unwrap();
    }
    assert!(w.written(2) >= 300 - 257, "{} written", w.written(2));
    let (_, out) = w.finish().unwrap();
    assert_eq!(parse(&out.into_inner()).blocks.len(), 300);
}
