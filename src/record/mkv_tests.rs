//! The Matroska writer read back with a small EBML reader: structure, patched sizes and
//! Duration, block flags and order, and Cues that point at clusters.

use std::io::Cursor;

use super::mkv::{avc_config, opus_head, AudioTrack, MkvWriter, VideoTrack};

/// Reads a variable-size integer; returns (value with the marker removed, length).
fn vint(b: &[u8]) -> (u64, usize) {
    let len = b[0].leading_zeros() as usize + 1;
    let mut v = u64::from(b[0]) & (0xff >> len);
    for &x in &b[1..len] {
        v = (v << 8) | u64::from(x);
    }
    (v, len)
}

/// Reads an element ID (marker kept, as IDs are written).
fn read_id(b: &[u8]) -> (u32, usize) {
    let len = b[0].leading_zeros() as usize + 1;
    let id = b[..len].iter().fold(0u32, |a, &x| (a << 8) | u32::from(x));
    (id, len)
}

/// (id, offset of the body, body) of each element in `b`.
fn children(b: &[u8]) -> Vec<(u32, usize, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let (id, il) = read_id(&b[at..]);
        let (size, sl) = vint(&b[at + il..]);
        let body_at = at + il + sl;
        let end = body_at + size as usize;
        out.push((id, body_at, &b[body_at..end]));
        at = end;
    }
    out
}

fn find<'a>(elems: &[(u32, usize, &'a [u8])], id: u32) -> Vec<&'a [u8]> {
    elems.iter().filter(|e| e.0 == id).map(|e| e.2).collect()
}

fn uint(b: &[u8]) -> u64 {
    b.iter().fold(0, |a, &x| (a << 8) | u64::from(x))
}

const SPS: [u8; 8] = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16];
const PPS: [u8; 4] = [0x68, 0xce, 0x3c, 0x80];

fn idr() -> Vec<u8> {
    let mut f = vec![0, 0, 0, 1];
    f.extend_from_slice(&SPS);
    f.extend_from_slice(&[0, 0, 0, 1]);
    f.extend_from_slice(&PPS);
    f.extend_from_slice(&[0, 0, 1, 0x65, 0x88, 0x84, 0x00]);
    f
}

const P_FRAME: [u8; 7] = [0, 0, 0, 1, 0x41, 0x9a, 0x02];

#[test]
fn avcc_and_opus_head_follow_their_specs() {
    let c = avc_config(&idr()).expect("SPS and PPS present");
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
    let video = VideoTrack {
        width: 320,
        height: 240,
        fps: 25,
    };
    let audio = AudioTrack {
        channels: 1,
        pre_skip: 312,
    };
    let mut w = MkvWriter::new(Cursor::new(Vec::new()), video, Some(audio));
    // Audio that comes before the first keyframe waits for it; video runs 60 ms late, as a
    // real encoder would, and the file must still be in timestamp order.
    w.audio(0, &[0xf8, 1]).unwrap();
    let mut audio_ms = 20;
    for n in 0..60u64 {
        let ms = n * 40;
        while audio_ms <= ms + 60 {
            w.audio(audio_ms, &[0xf8, 2]).unwrap();
            audio_ms += 20;
        }
        let frame = if n % 25 == 0 { idr() } else { P_FRAME.to_vec() };
        w.video(ms, &frame, n % 25 == 0).unwrap();
    }
    let (duration, cursor) = w.finish().unwrap();
    let file = cursor.into_inner();
    assert_eq!(duration, audio_ms, "ends with the last audio packet");

    let top = children(&file);
    assert_eq!(top.len(), 2);
    let header = children(top[0].2);
    assert_eq!(find(&header, 0x4282), [b"matroska"]);
    let (segment_id, segment_at, segment) = top[1];
    assert_eq!(segment_id, 0x18538067);
    assert_eq!(
        segment_at + segment.len(),
        file.len(),
        "segment size patched"
    );
    let parts = children(segment);

    // Duration patched to the end of the last frame.
    let info = children(find(&parts, 0x1549a966)[0]);
    let dur = f64::from_be_bytes(find(&info, 0x4489)[0].try_into().unwrap());
    assert_eq!(dur, duration as f64);
    assert_eq!(uint(find(&info, 0x2ad7b1)[0]), 1_000_000);

    // Tracks: H.264 with the avcC, Opus with OpusHead.
    let tracks = children(find(&parts, 0x1654ae6b)[0]);
    let entries: Vec<_> = find(&tracks, 0xae).into_iter().map(children).collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(find(&entries[0], 0x86), [b"V_MPEG4/ISO/AVC"]);
    assert_eq!(find(&entries[0], 0x63a2)[0], avc_config(&idr()).unwrap());
    let v = children(find(&entries[0], 0xe0)[0]);
    assert_eq!(
        (uint(find(&v, 0xb0)[0]), uint(find(&v, 0xba)[0])),
        (320, 240)
    );
    assert_eq!(find(&entries[1], 0x86), [b"A_OPUS"]);
    assert_eq!(&find(&entries[1], 0x63a2)[0][..8], b"OpusHead");

    // The SeekHead's Cues entry points at the Cues.
    let seeks: Vec<_> = find(&children(find(&parts, 0x114d9b74)[0]), 0x4dbb)
        .into_iter()
        .map(children)
        .collect();
    let cues_pos = seeks
        .iter()
        .find(|s| find(s, 0x53ab)[0] == [0x1c, 0x53, 0xbb, 0x6b])
        .map(|s| uint(find(s, 0x53ac)[0]))
        .expect("a Seek for the Cues");
    let (cues_id, _) = read_id(&segment[cues_pos as usize..]);
    assert_eq!(cues_id, 0x1c53bb6b);

    // Clusters: blocks in timestamp order, keyframes flagged, each cluster opened by an IDR.
    let mut last = 0i64;
    let (mut video_blocks, mut audio_blocks, mut keyframes) = (0, 0, 0);
    let clusters: Vec<_> = parts.iter().filter(|p| p.0 == 0x1f43b675).collect();
    assert_eq!(clusters.len(), 3, "a cluster per IDR (frames 0, 25, 50)");
    for (_, _, body) in &clusters {
        let elems = children(body);
        let base = uint(find(&elems, 0xe7)[0]) as i64;
        for block in find(&elems, 0xa3) {
            let track = block[0] & 0x7f;
            let ms = base + i64::from(i16::from_be_bytes([block[1], block[2]]));
            assert!(ms >= last, "block at {ms} after {last}");
            last = ms;
            let key = block[3] & 0x80 != 0;
            if track == 1 {
                video_blocks += 1;
                keyframes += u32::from(key);
                // Length-prefixed NAL units, not start codes.
                let first_len = u32::from_be_bytes(block[4..8].try_into().unwrap()) as usize;
                assert!(first_len > 0 && 8 + first_len <= block.len());
            } else {
                assert_eq!(track, 2);
                assert!(key, "every Opus packet is a keyframe");
                audio_blocks += 1;
            }
        }
    }
    assert_eq!((video_blocks, keyframes), (60, 3));
    assert_eq!(audio_blocks, audio_ms / 20);

    // Cues: one per IDR cluster, pointing at a Cluster element.
    let cues = children(&segment[cues_pos as usize..]);
    let cue_points: Vec<_> = find(&children(cues[0].2), 0xbb)
        .into_iter()
        .map(children)
        .collect();
    assert_eq!(cue_points.len(), 3);
    for cp in &cue_points {
        let pos = children(find(cp, 0xb7)[0]);
        let at = uint(find(&pos, 0xf1)[0]) as usize;
        assert_eq!(read_id(&segment[at..]).0, 0x1f43b675);
    }
}

#[test]
fn refuses_a_first_frame_without_parameter_sets() {
    let video = VideoTrack {
        width: 320,
        height: 240,
        fps: 25,
    };
    let mut w = MkvWriter::new(Cursor::new(Vec::new()), video, None);
    assert!(w.video(0, &P_FRAME, false).is_err());
    let w = MkvWriter::new(Cursor::new(Vec::new()), video, None);
    assert!(w.finish().is_err(), "nothing recorded");
}
