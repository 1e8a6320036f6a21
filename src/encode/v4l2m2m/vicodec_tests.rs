//! The session code against a real kernel driver: vicodec, the kernel's virtual stateful
//! FWHT codec, which implements the same memory-to-memory encoder API as the Pi's
//! bcm2835-codec. Run inside the test VM (tests/vm), where vicodec is loaded:
//! `roombox-<hash> --ignored vicodec`.

use std::path::Path;
use std::time::Duration;

use v4l2r::bindings as b;

use super::device::{EncoderDevice, FourCc};
use super::kernel::{find_encoders, KernelDevice};
use super::session::{CodecSetup, Control, Session};
use crate::capture::testsrc::TestPattern;
use crate::capture::VideoSource;

const FWHT: FourCc = FourCc::from_fourcc(b"FWHT");
const WAIT: Duration = Duration::from_secs(5);

fn vicodec_encoder() -> KernelDevice {
    let (mut found, passed) = find_encoders(Path::new("/dev"), FWHT);
    assert!(
        !found.is_empty(),
        "no vicodec encoder node; passed over: {passed:?}"
    );
    let dev = found.remove(0);
    assert_eq!(dev.info().driver, "vicodec");
    dev
}

fn setup(gop: i32) -> CodecSetup {
    CodecSetup {
        coded: FWHT,
        fps: 30,
        controls: vec![Control {
            id: b::V4L2_CID_MPEG_VIDEO_GOP_SIZE,
            value: gop,
            name: "GOP size",
            required: true,
        }],
    }
}

/// The picture size in an FWHT frame header (struct fwht_cframe_hdr: big-endian words magic1,
/// magic2, version, width, height, ...).
fn fwht_size(coded: &[u8]) -> (u32, u32) {
    (fwht_word(coded, 3), fwht_word(coded, 4))
}

/// The header's flags word says whether the frame is intra-coded (a keyframe).
fn fwht_i_frame(coded: &[u8]) -> bool {
    u64::from(fwht_word(coded, 5)) & b::V4L2_FWHT_FL_I_FRAME != 0
}

fn fwht_word(coded: &[u8], i: usize) -> u32 {
    assert!(coded.len() > 44, "{} bytes", coded.len());
    u32::from_be_bytes(coded[i * 4..i * 4 + 4].try_into().unwrap())
}

fn pattern(w: u32, h: u32) -> TestPattern {
    TestPattern::new(w, h, 30).expect("size").unpaced()
}

#[test]
#[ignore = "needs vicodec: run by tests/vm"]
fn vicodec_frames_in_coded_frames_out() {
    let mut session = Session::start(vicodec_encoder(), &setup(10), 640, 360).expect("start");
    let mut src = pattern(640, 360);
    let mut buf = Vec::new();
    let mut keyframes = vec![];
    for i in 0..30 {
        let frame = src.next_frame().expect("frame");
        session.submit(&frame).expect("submit");
        buf.clear();
        let out = session
            .receive(WAIT, &mut buf)
            .expect("receive")
            .expect("a coded frame");
        assert!(!out.coded.last && !out.coded.error && out.coded.len == buf.len());
        assert_eq!(fwht_size(&buf), (640, 360), "frame {i}");
        assert_eq!(out.pts, frame.pts, "the driver copied our timestamp back");
        if fwht_i_frame(&buf) {
            keyframes.push(i);
        }
        session.done(out.coded.timestamp);
    }
    println!("vicodec: 30 frames in, 30 coded out; keyframes {keyframes:?}");
    // The GOP size control took effect on the real driver.
    assert_eq!(keyframes, [0, 10, 20]);
    assert_eq!(session.drain(WAIT, |_, _| {}).expect("drain"), 0);
}

#[test]
#[ignore = "needs vicodec: run by tests/vm"]
fn vicodec_geometry_change_mid_stream() {
    let mut session = Session::start(vicodec_encoder(), &setup(10), 640, 360).expect("start");
    let mut sizes = vec![];
    let mut buf = Vec::new();
    for (w, h) in [(640, 360), (1280, 720)] {
        if (w, h) != (640, 360) {
            session.restart(&setup(10), w, h).expect("restart");
        }
        let mut src = pattern(w, h);
        for _ in 0..5 {
            session
                .submit(&src.next_frame().expect("frame"))
                .expect("submit");
            buf.clear();
            let out = session
                .receive(WAIT, &mut buf)
                .expect("receive")
                .expect("coded");
            sizes.push(fwht_size(&buf));
            session.done(out.coded.timestamp);
        }
    }
    assert_eq!(sizes[..5], [(640, 360); 5]);
    assert_eq!(sizes[5..], [(1280, 720); 5]);
    session.drain(WAIT, |_, _| {}).expect("drain");
}

#[test]
#[ignore = "needs vicodec: run by tests/vm"]
fn vicodec_drain_returns_every_queued_frame() {
    let mut session = Session::start(vicodec_encoder(), &setup(10), 640, 360).expect("start");
    let mut src = pattern(640, 360);
    // Three frames queued (the session has three OUTPUT buffers), none received yet.
    let mut pts = vec![];
    for _ in 0..3 {
        let frame = src.next_frame().expect("frame");
        pts.push(frame.pts);
        session.submit(&frame).expect("submit");
    }
    let mut drained = vec![];
    let n = session
        .drain(WAIT, |out, data| {
            assert_eq!(fwht_size(data), (640, 360));
            drained.push(out.pts);
        })
        .expect("drain");
    assert_eq!(n, 3);
    assert_eq!(drained, pts);
    // The device is idle again and can stream anew on the same handle.
    let mut session = Session::start(session.abort(), &setup(10), 640, 360).expect("again");
    session
        .submit(&src.next_frame().expect("frame"))
        .expect("submit");
    let mut buf = Vec::new();
    assert!(session.receive(WAIT, &mut buf).expect("receive").is_some());
}

#[test]
#[ignore = "needs vicodec: run by tests/vm"]
fn vicodec_non_encoders_are_refused_by_name() {
    // vicodec's decoder node: M2M, but compressed on OUTPUT.
    let mut refused = 0;
    for entry in std::fs::read_dir("/dev").expect("/dev") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("video") {
            continue;
        }
        if let Err(e) = KernelDevice::open(&path) {
            let e = e.to_string();
            assert!(e.starts_with(&path.display().to_string()), "{e}");
            assert!(
                e.contains("not an encoder") || e.contains("not a memory-to-memory"),
                "{e}"
            );
            println!("refused: {e}");
            refused += 1;
        }
    }
    assert!(
        refused > 0,
        "the VM has vicodec's decoder and vivid: both are not encoders"
    );
    let e = KernelDevice::open(Path::new("/dev/video-none"))
        .err()
        .expect("missing");
    assert!(e.to_string().contains("/dev/video-none: opening"), "{e}");
}

#[test]
#[ignore = "needs vicodec: run by tests/vm"]
fn vicodec_is_not_taken_for_an_h264_encoder() {
    let (found, passed) = find_encoders(Path::new("/dev"), super::H264);
    assert!(found.is_empty());
    assert!(
        passed
            .iter()
            .any(|p| p.contains("vicodec") && p.contains("not H264")),
        "{passed:?}"
    );
}

#[test]
#[ignore = "needs vicodec: run by tests/vm"]
fn vicodec_a_size_below_the_drivers_minimum_is_an_error() {
    // vicodec encodes 640x360 at the least and cannot crop below it: an error naming both
    // sizes, not a stream that silently shows padding.
    let e = Session::start(vicodec_encoder(), &setup(10), 320, 240)
        .err()
        .expect("refused")
        .to_string();
    println!("{e}");
    assert!(
        e.contains("vicodec") && e.contains("640x360") && e.contains("320x240"),
        "{e}"
    );
}
