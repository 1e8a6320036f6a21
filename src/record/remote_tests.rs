//! The recording of what people send: packets as the call core passes them on, into files read
//! back with the test reader (`mkv_read`), the video decoded with openh264 and the voice with
//! libopus; the tap's bounded queue; a failing disk.

use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::mkv_read::{annex_b, parse, Parsed};
use super::remote::{file_part, queue, Heard, Recorder, Sink};
use crate::audio::opus::OpusDecoder;
use crate::audio::OpusEncoder;
use crate::calls::{RemoteAudioPacket, RemoteFrame, RemoteVideoPacket};
use crate::encode::h264::H264Encoder;
use crate::encode::openh264::{OpenH264Config, OpenH264Encoder};
use crate::media::frame::i420_len;
use crate::media::{VideoFrame, VideoKind, AUDIO_FRAME};
use crate::remote_video::decode::H264Decoder;

fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "roombox-record-remote-{label}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}

/// A sender's camera or screen: openh264 at `w` x `h`, a moving picture, a keyframe first.
struct Camera {
    enc: OpenH264Encoder,
    w: u32,
    h: u32,
    n: u32,
}

impl Camera {
    fn new(w: u32, h: u32) -> Self {
        let enc = OpenH264Encoder::new(OpenH264Config::default()).expect("encoder");
        Camera { enc, w, h, n: 0 }
    }

    fn next(&mut self, keyframe: bool) -> (Arc<[u8]>, bool) {
        let mut data = vec![128u8; i420_len(self.w, self.h)];
        for (i, b) in data.iter_mut().take((self.w * self.h) as usize).enumerate() {
            *b = ((i as u32 % self.w + self.n * 3) % 256) as u8;
        }
        let frame = VideoFrame {
            width: self.w,
            height: self.h,
            data,
            captured_at: Instant::now(),
            pts: Duration::from_millis(u64::from(self.n) * 40),
        };
        self.n += 1;
        let au = self
            .enc
            .encode(&frame, keyframe || self.n == 1)
            .expect("encodes")
            .expect("a frame");
        (au.data.into(), au.keyframe)
    }
}

/// 20 ms of a 440 Hz tone, Opus.
fn voice(opus: &mut OpusEncoder, n: u64) -> Arc<[u8]> {
    let pcm: [i16; AUDIO_FRAME] = std::array::from_fn(|i| {
        let t = (n * AUDIO_FRAME as u64 + i as u64) as f64 / 48_000.0;
        ((t * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16
    });
    opus.encode(&pcm).expect("encodes").into()
}

fn audio(peer: &str, name: &str, payload: Arc<[u8]>, at: Instant) -> Heard {
    Heard::Audio {
        peer: peer.into(),
        name: name.into(),
        payload,
        at,
    }
}

fn video(peer: &str, track: &str, kind: VideoKind, au: (Arc<[u8]>, bool), at: Instant) -> Heard {
    Heard::Video(RemoteFrame {
        peer: peer.into(),
        name: "Alice Smith".into(),
        track: track.into(),
        kind,
        annex_b: au.0,
        keyframe: au.1,
        at,
    })
}

fn mkv_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the directory")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "mkv"))
        .collect();
    files.sort();
    files
}

/// Every block of a video track decoded with openh264: how many pictures came out, and the
/// last one's size.
fn decode_video(f: &Parsed, track: u8) -> (usize, Option<(u32, u32)>) {
    let mut dec = H264Decoder::new().expect("decoder");
    let (mut pictures, mut size) = (0, None);
    for b in f.blocks_of(track) {
        if let Some(p) = dec.decode(&annex_b(&b.data)).expect("decodes") {
            pictures += 1;
            size = Some((p.width, p.height));
        }
    }
    (pictures, size)
}

/// Every Opus packet of the audio track decoded with libopus; the tone's share of the energy
/// in the last packet.
fn decode_audio(f: &Parsed) -> usize {
    let mut dec = OpusDecoder::new().expect("decoder");
    let mut pcm = [0i16; AUDIO_FRAME];
    let mut decoded = 0;
    for b in f.blocks_of(2) {
        dec.decode(&b.data, &mut pcm).expect("an Opus packet");
        decoded += 1;
    }
    let loud = pcm.iter().map(|&s| i32::from(s).abs()).max().unwrap_or(0);
    assert!(loud > 2000, "the tone is in the last packet (peak {loud})");
    decoded
}

/// A person talks for 3 s and shares a screen from the second second; they leave. One file,
/// named after them, with their voice and their screen as they sent them.
#[test]
fn a_person_who_talks_and_shares_is_one_file_that_decodes() {
    let dir = temp_dir("share");
    let mut rec = Recorder::new(dir.clone());
    let mut opus = OpusEncoder::new(32_000).expect("encoder");
    let mut screen = Camera::new(320, 240);
    let t0 = Instant::now();
    let mut sent: Vec<Arc<[u8]>> = Vec::new();
    for n in 0..150u64 {
        let at = t0 + Duration::from_millis(20 * n);
        let packet = voice(&mut opus, n);
        sent.push(packet.clone());
        rec.handle(audio("p1", "Alice Smith", packet, at));
        if n >= 50 && n % 2 == 0 {
            rec.handle(video("p1", "1", VideoKind::Screen, screen.next(false), at));
        }
    }
    rec.handle(Heard::Gone("p1".into()));
    rec.handle(Heard::Gone("p1".into())); // audio's and video's word: once is enough

    let files = mkv_files(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let file_name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        file_name.starts_with("Alice_Smith-p1-") && file_name.ends_with(".mkv"),
        "{file_name}"
    );
    let f = parse(&std::fs::read(&files[0]).unwrap());
    assert_eq!(
        f.tracks.len(),
        2,
        "the camera track that got nothing is gone"
    );
    let s = f.track(1).expect("the screen");
    assert_eq!(
        (s.codec.as_str(), s.size, s.name.as_deref()),
        ("V_MPEG4/ISO/AVC", Some((320, 240)), Some("screen"))
    );
    let a = f.track(2).expect("the voice");
    assert_eq!((a.codec.as_str(), a.channels), ("A_OPUS", Some(2)));
    // As received: every packet byte for byte, at its arrival time from the first packet.
    let got: Vec<_> = f.blocks_of(2).collect();
    assert_eq!(got.len(), 150);
    for (n, (b, p)) in got.iter().zip(&sent).enumerate() {
        assert_eq!(&b.data[..], &p[..]);
        assert_eq!(b.ms, 20 * n as i64);
    }
    let first_video = f.blocks_of(1).next().expect("video");
    assert!(first_video.keyframe);
    assert_eq!(first_video.ms, 1000);
    assert_eq!(f.blocks_of(1).count(), 50);
    assert_eq!(decode_video(&f, 1), (50, Some((320, 240))));
    assert_eq!(decode_audio(&f), 150);
    assert_eq!(f.duration_ms, 3000.0);
    assert_eq!(
        f.cues.first(),
        Some(&(1000, 1)),
        "cued on the screen's keyframe"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A screen share that ends and a new one (another track of the call) go on in the screen
/// track from the new one's keyframe; a camera meanwhile has its own track; a second screen
/// at the same time as the first is not recorded; frames before a video's first keyframe
/// are skipped.
#[test]
fn shares_one_after_another_go_on_in_one_track_and_a_camera_in_its_own() {
    let dir = temp_dir("tracks");
    let mut rec = Recorder::new(dir.clone());
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let (mut first, mut second, mut other) = (
        Camera::new(320, 240),
        Camera::new(640, 360),
        Camera::new(160, 90),
    );
    let mut camera = Camera::new(176, 144);
    let _ = camera.next(true); // its keyframe was lost: the recording waits for the next
    for n in 0..25u64 {
        rec.handle(video(
            "p1",
            "1",
            VideoKind::Screen,
            first.next(false),
            at(n * 40),
        ));
        rec.handle(video(
            "p1",
            "5",
            VideoKind::Camera,
            camera.next(n == 10),
            at(n * 40 + 1),
        ));
        // A second share at once, from the fifth frame: not recorded.
        if n >= 5 {
            rec.handle(video(
                "p1",
                "7",
                VideoKind::Screen,
                other.next(false),
                at(n * 40 + 2),
            ));
        }
    }
    // The first share ended at 960 ms; the other stops too; a new one starts at 3 s.
    for n in 0..25u64 {
        rec.handle(video(
            "p1",
            "9",
            VideoKind::Screen,
            second.next(false),
            at(3000 + n * 40),
        ));
    }
    rec.finish_all();

    let files = mkv_files(&dir);
    assert_eq!(files.len(), 1);
    let f = parse(&std::fs::read(&files[0]).unwrap());
    assert_eq!(f.tracks.len(), 2, "screen and camera, no audio track");
    assert_eq!(
        f.track(1).unwrap().size,
        Some((320, 240)),
        "the first share's size"
    );
    assert_eq!(f.track(3).unwrap().name.as_deref(), Some("camera"));
    assert_eq!(f.track(3).unwrap().size, Some((176, 144)));
    let screen: Vec<_> = f.blocks_of(1).collect();
    assert_eq!(
        screen.len(),
        50,
        "both shares, and nothing of the one at the same time"
    );
    assert!(screen[25].keyframe && screen[25].ms == 3000);
    let camera_blocks: Vec<_> = f.blocks_of(3).collect();
    assert_eq!(camera_blocks.len(), 15, "from its keyframe (frame 10) on");
    assert!(camera_blocks[0].keyframe);
    // The second share's own parameter sets come with its keyframe: it decodes at its size.
    assert_eq!(decode_video(&f, 1), (50, Some((640, 360))));
    assert_eq!(decode_video(&f, 3).0, 15);
    std::fs::remove_dir_all(&dir).ok();
}

/// Every file is finished when the box stops; one person leaving finishes only theirs; a
/// person who comes back gets a new file.
#[test]
fn files_are_finished_when_people_leave_and_when_the_box_stops() {
    let dir = temp_dir("stop");
    let mut rec = Recorder::new(dir.clone());
    let mut opus = OpusEncoder::new(32_000).expect("encoder");
    let t0 = Instant::now();
    for n in 0..50u64 {
        let at = t0 + Duration::from_millis(20 * n);
        rec.handle(audio("a", "Ann", voice(&mut opus, n), at));
        rec.handle(audio("b", "Bob/../x", voice(&mut opus, n), at));
    }
    rec.handle(Heard::Gone("a".into()));
    let files = mkv_files(&dir);
    assert_eq!(files.len(), 2);
    // Ann's is finished, Bob's is still being written (its size not yet patched).
    let ann = files
        .iter()
        .find(|p| p.to_string_lossy().contains("Ann-a-"))
        .unwrap();
    assert_eq!(parse(&std::fs::read(ann).unwrap()).blocks.len(), 50);
    // Ann comes back (same id): a new file beside the first.
    rec.handle(audio(
        "a",
        "Ann",
        voice(&mut opus, 0),
        t0 + Duration::from_secs(2),
    ));
    rec.finish_all();
    let files = mkv_files(&dir);
    assert_eq!(files.len(), 3, "{files:?}");
    for p in &files {
        let f = parse(&std::fs::read(p).unwrap());
        assert_eq!(decode_audio(&f), f.blocks.len());
    }
    assert!(
        files.iter().any(|p| p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("Bob_x-b-")),
        "{files:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A person of whom nothing could start a file (a video frame that is no keyframe, then they
/// leave) leaves no empty file behind.
#[test]
fn nothing_recorded_leaves_no_file() {
    let dir = temp_dir("empty");
    let mut rec = Recorder::new(dir.clone());
    let mut screen = Camera::new(160, 90);
    let _ = screen.next(true);
    rec.handle(video(
        "p1",
        "1",
        VideoKind::Screen,
        screen.next(false),
        Instant::now(),
    ));
    assert_eq!(mkv_files(&dir).len(), 1, "made at the first packet");
    rec.handle(Heard::Gone("p1".into()));
    assert_eq!(mkv_files(&dir).len(), 0);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn names_become_safe_file_names() {
    assert_eq!(file_part("Alice Smith"), "Alice_Smith");
    assert_eq!(file_part("../etc/passwd"), "etc_passwd");
    assert_eq!(file_part("Zoë Ångström"), "Zoë_Ångström");
    assert_eq!(file_part("  "), "peer");
    assert_eq!(file_part("..."), "peer");
    assert_eq!(file_part("a\u{0}b\nc"), "a_b_c");
    assert_eq!(file_part(&"x".repeat(100)).len(), 40);
}

/// A sink that takes `room` bytes and then fails every write, counting the attempts.
struct FailingDisk {
    data: io::Cursor<Vec<u8>>,
    room: usize,
    failed_writes: Arc<Mutex<u32>>,
}

impl Write for FailingDisk {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.data.get_ref().len() + buf.len() > self.room {
            *self.failed_writes.lock().unwrap() += 1;
            return Err(io::Error::other("No space left on device"));
        }
        self.data.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for FailingDisk {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.data.seek(pos)
    }
}

impl Sink for FailingDisk {
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Log lines written while `f` runs.
fn logged(f: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);
    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    text
}

/// The disk fills up: the error is logged once, that file is abandoned (nothing more is
/// written to it), the box carries on; the person's next call gets a new file. A file that
/// cannot be made is said once too.
#[test]
fn a_disk_error_is_said_once_and_abandons_that_file() {
    let failed = Arc::new(Mutex::new(0));
    let opened = Arc::new(Mutex::new(0));
    let (failed2, opened2) = (failed.clone(), opened.clone());
    let mut rec = Recorder::with_opener(
        PathBuf::from("/nowhere"),
        Box::new(move |_, name, peer| {
            *opened2.lock().unwrap() += 1;
            if name == "Nobody" {
                return Err(io::Error::other("Permission denied"));
            }
            Ok((
                PathBuf::from(format!("/nowhere/{name}-{peer}.mkv")),
                Box::new(FailingDisk {
                    data: io::Cursor::new(Vec::new()),
                    room: 20_000,
                    failed_writes: failed2.clone(),
                }) as Box<dyn Sink>,
            ))
        }),
    );
    let mut screen = Camera::new(640, 360);
    let t0 = Instant::now();
    let log = logged(|| {
        for n in 0..100u64 {
            let at = t0 + Duration::from_millis(40 * n);
            rec.handle(video(
                "p1",
                "1",
                VideoKind::Screen,
                screen.next(n % 10 == 0),
                at,
            ));
            rec.handle(audio("p2", "Nobody", vec![0xf8, 1].into(), at));
        }
        rec.handle(Heard::Gone("p1".into()));
        rec.handle(Heard::Gone("p2".into()));
    });
    assert_eq!(
        *failed.lock().unwrap(),
        1,
        "nothing written after the failure"
    );
    assert_eq!(log.matches("that file is abandoned").count(), 1, "{log}");
    assert!(log.contains("No space left on device"), "{log}");
    assert_eq!(log.matches("Permission denied").count(), 1, "{log}");
    assert_eq!(*opened.lock().unwrap(), 2);
    // After they left, a new call of theirs is tried afresh.
    rec.handle(audio("p1", "Alice Smith", vec![0xf8, 1].into(), t0));
    assert_eq!(*opened.lock().unwrap(), 3);
}

fn screen_packet(keyframe: bool) -> RemoteVideoPacket {
    RemoteVideoPacket::Frame(RemoteFrame {
        peer: "p1".into(),
        name: "Alice".into(),
        track: "1".into(),
        kind: VideoKind::Screen,
        annex_b: vec![0u8; 1000].into(),
        keyframe,
        at: Instant::now(),
    })
}

/// The pump's tap never waits: past the queue's bound packets are dropped and counted, a video
/// that lost a frame waits for its next keyframe (and asks for one), and word that a person
/// left always goes through.
#[test]
fn the_tap_drops_and_counts_when_the_recorder_is_behind() {
    let (mut tap, inbox) = queue();
    let audio = |seq| RemoteAudioPacket::Packet {
        peer: "p1".into(),
        name: "Alice".into(),
        seq,
        payload: vec![0xf8, 1].into(),
        at: Instant::now(),
    };
    for seq in 0..1023 {
        tap.audio(&audio(seq));
    }
    assert_eq!(tap.video(&screen_packet(true)), None, "the 1024th fits");
    assert_eq!(tap.dropped(), 0);
    tap.audio(&audio(0));
    assert_eq!(tap.dropped(), 1, "full: dropped");
    let ask = Some(("p1".to_string(), "1".to_string()));
    assert_eq!(
        tap.video(&screen_packet(false)),
        ask,
        "dropped: a keyframe is asked for"
    );
    // Room again, but the video waits for a keyframe.
    for _ in 0..10 {
        inbox.try_recv().expect("queued");
    }
    assert_eq!(tap.video(&screen_packet(false)), ask);
    assert_eq!(tap.dropped(), 3);
    assert_eq!(tap.video(&screen_packet(true)), None, "the keyframe goes");
    assert_eq!(
        tap.video(&screen_packet(false)),
        None,
        "and what follows it"
    );
    // Full again: the word that they left still goes.
    while tap.dropped() == 3 {
        tap.audio(&audio(0));
    }
    tap.audio(&RemoteAudioPacket::PeerGone("p1".into()));
    let mut last = None;
    while let Some(h) = inbox.try_recv() {
        last = Some(h);
    }
    assert!(matches!(last, Some(Heard::Gone(p)) if p == "p1"));
    drop(tap);
    assert!(inbox.recv().is_none(), "the tap gone, the queue ends");
}
