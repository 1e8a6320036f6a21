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

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/record/check_mkv.py");
    let check = Command::new("python3")
        .arg(script)
        .arg(&out)
        .args([
            "--width",
            "640",
            "--height",
            "360",
            "--fps",
            "30",
            "--seconds",
            "3",
        ])
        .args(["--tone", "440"])
        .output()
        .expect("python3 runs (ffmpeg: bash scripts/deps/install.sh)");
    let said = String::from_utf8_lossy(&check.stdout);
    println!("{said}");
    assert!(
        check.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
}
