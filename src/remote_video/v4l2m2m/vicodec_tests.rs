//! The decoding session against a real kernel driver: vicodec's stateful FWHT decoder, which
//! implements the same memory-to-memory decoder interface as the Pi's bcm2835-codec (source
//! change events, CAPTURE set up after the headers, a resolution change with a LAST buffer).
//! Its input is what vicodec's encoder made of the box's test pattern. Run inside the test VM
//! (tests/vm), where vicodec is loaded: `roombox-<hash> --ignored vicodec`.

use std::path::Path;
use std::time::Duration;

use v4l2r::bindings as b;

use super::device::{DecoderDevice, FourCc};
use super::kernel::{find_decoders, KernelDecoder};
use super::session::DecodeSession;
use crate::capture::testsrc::TestPattern;
use crate::capture::VideoSource;
use crate::encode::v4l2m2m::find_encoders;
use crate::encode::v4l2m2m::session::{CodecSetup, Control, Session};
use crate::media::frame::VideoFrame;

const FWHT: FourCc = FourCc::from_fourcc(b"FWHT");
const WAIT: Duration = Duration::from_secs(5);

fn vicodec_decoder() -> KernelDecoder {
    let (mut found, passed) = find_decoders(Path::new("/dev"), FWHT);
    assert!(
        !found.is_empty(),
        "no vicodec decoder node; passed over: {passed:?}"
    );
    let dev = found.remove(0);
    assert_eq!(dev.info().driver, "vicodec");
    dev
}

/// `count` frames of the test pattern at each size, FWHT-coded by vicodec's encoder, with the
/// frames they were made from.
fn fwht_stream(sizes: &[(u32, u32, usize)]) -> Vec<(Vec<u8>, VideoFrame)> {
    let (mut found, passed) = find_encoders(Path::new("/dev"), FWHT);
    assert!(!found.is_empty(), "no vicodec encoder: {passed:?}");
    let setup = CodecSetup {
        coded: FWHT,
        fps: 30,
        controls: vec![Control {
            id: b::V4L2_CID_MPEG_VIDEO_GOP_SIZE,
            value: 10,
            name: "GOP size",
            required: true,
        }],
    };
    let (w0, h0, _) = sizes[0];
    let mut enc = Session::start(found.remove(0), &setup, w0, h0).expect("encoder");
    let mut out = Vec::new();
    for &(w, h, count) in sizes {
        if (w, h) != (enc.layout().width, enc.layout().height) {
            enc.restart(&setup, w, h).expect("encoder restart");
        }
        let mut src = TestPattern::new(w, h, 30).expect("size").unpaced();
        for _ in 0..count {
            let frame = src.next_frame().expect("frame");
            enc.submit(&frame).expect("submit");
            let mut coded = Vec::new();
            let got = enc
                .receive(WAIT, &mut coded)
                .expect("receive")
                .expect("coded");
            enc.done(got.coded.timestamp);
            out.push((coded, frame));
        }
    }
    out
}

/// Luma PSNR in dB.
fn psnr(a: &VideoFrame, b: &VideoFrame) -> f64 {
    let n = (a.width * a.height) as usize;
    let mse = a.data[..n]
        .iter()
        .zip(&b.data[..n])
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum::<f64>()
        / n as f64;
    10.0 * (255.0 * 255.0 / mse.max(1e-9)).log10()
}

#[test]
#[ignore = "needs vicodec: run by tests/vm"]
fn vicodec_decodes_what_vicodec_encoded() {
    let stream = fwht_stream(&[(640, 360, 30)]);
    let mut dec = DecodeSession::start(vicodec_decoder(), FWHT).expect("start");
    let mut pictures = 0;
    let mut worst = f64::MAX;
    for (i, (coded, source)) in stream.iter().enumerate() {
        let Some(picture) = dec.decode(coded).expect("decode") else {
            continue;
        };
        assert_eq!((picture.width, picture.height), (640, 360), "picture {i}");
        assert_eq!(picture.data.len(), 640 * 360 * 3 / 2);
        // The picture out is the one just queued (the session waits for it).
        worst = worst.min(psnr(&picture, source));
        pictures += 1;
    }
    println!("vicodec decoder: {pictures} of 30 pictures, worst luma PSNR {worst:.1} dB");
    assert!(pictures >= 29, "{pictures} pictures of 30");
    assert!(worst > 30.0, "worst PSNR {worst:.1} dB");
    dec.stop();
}

#[test]
#[ignore = "needs vicodec: run by tests/vm"]
fn vicodec_a_new_size_mid_stream_is_taken_after_the_last_old_picture() {
    let stream = fwht_stream(&[(640, 360, 5), (1280, 720, 10)]);
    let mut dec = DecodeSession::start(vicodec_decoder(), FWHT).expect("start");
    let mut sizes = Vec::new();
    for (coded, _) in &stream {
        if let Some(p) = dec.decode(coded).expect("decode") {
            sizes.push((p.width, p.height));
        }
    }
    println!("vicodec decoder sizes: {sizes:?}");
    let first_big = sizes
        .iter()
        .position(|s| *s == (1280, 720))
        .expect("the new size");
    assert!(first_big >= 3, "{sizes:?}");
    assert!(
        sizes[..first_big].iter().all(|s| *s == (640, 360)),
        "{sizes:?}"
    );
    assert!(
        sizes[first_big..].iter().all(|s| *s == (1280, 720)),
        "{sizes:?}"
    );
    assert!(sizes.len() >= 12, "{} pictures of 15", sizes.len());
    let layout = dec.layout().expect("known");
    assert_eq!((layout.width, layout.height), (1280, 720));
}

#[test]
#[ignore = "needs vicodec: run by tests/vm"]
fn vicodec_is_passed_over_by_the_h264_decoder_probe() {
    let (found, passed) = find_decoders(Path::new("/dev"), super::H264);
    assert!(found.is_empty());
    assert!(
        passed
            .iter()
            .any(|p| p.contains("vicodec") && p.contains("decodes FWHT")),
        "{passed:?}"
    );
    // Encoders and capture nodes are refused as decoders, naming themselves.
    assert!(
        passed.iter().any(|p| p.contains("not a decoder")),
        "{passed:?}"
    );
    let opened = crate::remote_video::choose::open_auto(Path::new("/dev")).expect("fallback");
    assert_eq!(
        opened.to_string(),
        "decoder: openh264 (no V4L2 M2M H.264 decoder found)"
    );
}
