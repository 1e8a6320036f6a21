//! `roombox record` with the test sources, checked by an independent reader: ffprobe and
//! ffmpeg (Debian's, installed by scripts/deps/install.sh) through tests/record/check_mkv.py.

use std::path::Path;
use std::process::Command;

#[test]
fn records_test_sources_to_a_file_ffmpeg_reads() {
    let dir = std::env::temp_dir().join(format!("roombox-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = dir.join("x.mkv");
    let run = Command::new(env!("CARGO_BIN_EXE_roombox"))
        .args([
            "record",
            "--video",
            "test",
            "--audio-in",
            "test",
            "--seconds",
            "3",
        ])
        .args(["--width", "640", "--height", "360", "--fps", "30", "--out"])
        .arg(&out)
        .output()
        .expect("roombox runs");
    let report = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    println!("{report}");
    assert!(report.contains("frames offered"), "{report}");

    check_mkv(
        &out,
        &[
            "--width",
            "640",
            "--height",
            "360",
            "--fps",
            "30",
            "--seconds",
            "3",
            "--tone",
            "440",
        ],
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// tests/record/check_mkv.py on `file` (decodes every frame, checks size, rate and tone).
fn check_mkv(file: &Path, args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/record/check_mkv.py");
    let check = Command::new("python3")
        .arg(script)
        .arg(file)
        .args(args)
        .output()
        .expect("python3 runs (ffmpeg: bash scripts/deps/install.sh)");
    let said = String::from_utf8_lossy(&check.stdout);
    println!("{said}");
    assert!(
        check.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// `--record-remote`'s recorder fed as the pump feeds it (a person's Opus voice from the start,
/// their screen share as H.264 access units, then they leave), its file checked by ffprobe and
/// ffmpeg: the screen at its size and frame count, the voice decoded with its tone.
#[test]
fn records_what_a_person_sends_to_a_file_ffmpeg_reads() {
    use roombox::audio::OpusEncoder;
    use roombox::calls::RemoteFrame;
    use roombox::encode::h264::H264Encoder;
    use roombox::encode::openh264::{OpenH264Config, OpenH264Encoder};
    use roombox::media::{VideoFrame, VideoKind, AUDIO_FRAME};
    use roombox::record::remote::{Heard, Recorder};
    use std::time::{Duration, Instant};

    let dir = std::env::temp_dir().join(format!("roombox-record-remote-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut recorder = Recorder::new(dir.clone());
    let mut opus = OpusEncoder::new(48_000).expect("Opus");
    let mut h264 = OpenH264Encoder::new(OpenH264Config::default()).expect("openh264");
    let t0 = Instant::now();
    // 3 s: a 440 Hz voice every 20 ms, a 320x240 screen at 25 fps.
    for n in 0..150u64 {
        let at = t0 + Duration::from_millis(20 * n);
        let pcm: [i16; AUDIO_FRAME] = std::array::from_fn(|i| {
            let t = (n * AUDIO_FRAME as u64 + i as u64) as f64 / 48_000.0;
            ((t * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16
        });
        recorder.handle(Heard::Audio {
            peer: "p7".into(),
            name: "Screen Sharer".into(),
            payload: opus.encode(&pcm).expect("encodes").into(),
            at,
        });
        if n % 2 == 0 {
            let mut data = vec![128u8; 320 * 240 * 3 / 2];
            for (i, b) in data.iter_mut().take(320 * 240).enumerate() {
                *b = ((i % 320) as u64 + n) as u8;
            }
            let frame = VideoFrame {
                width: 320,
                height: 240,
                data,
                captured_at: at,
                pts: Duration::from_millis(20 * n),
            };
            let au = h264
                .encode(&frame, n == 0)
                .expect("encodes")
                .expect("a frame");
            recorder.handle(Heard::Video(RemoteFrame {
                peer: "p7".into(),
                name: "Screen Sharer".into(),
                track: "1".into(),
                kind: VideoKind::Screen,
                annex_b: au.data.into(),
                keyframe: au.keyframe,
                at,
            }));
        }
    }
    recorder.handle(Heard::Gone("p7".into()));
    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the directory")
        .map(|e| e.expect("an entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("Screen_Sharer-p7-"), "{name}");

    check_mkv(
        &files[0],
        &[
            "--width",
            "320",
            "--height",
            "240",
            "--fps",
            "25",
            "--seconds",
            "3",
            "--tone",
            "440",
        ],
    );
    std::fs::remove_dir_all(&dir).ok();
}
