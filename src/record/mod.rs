//! `roombox record`: capture from the box's own sources for a number of seconds, encode with
//! the box's encoders (H.264 and Opus) and write a Matroska file, so an installer can check
//! what the box sees and hears. At the end it reports how many video frames the source
//! offered and how many were written (the rest were dropped, and by which stage).
//!
//! `remote` records the other side: what people send the box, as they send it
//! (`roombox run --record-remote DIR`). Both write with `mkv`'s Matroska writer.

mod ebml;
mod mkv;
#[cfg(test)]
mod mkv_read;
#[cfg(test)]
mod mkv_tests;
pub mod remote;
#[cfg(test)]
mod remote_tests;

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::audio::{AudioInput, OpusEncoder};
use crate::capture::{VideoInput, VideoSource};
use crate::encode::h264::H264Encoder;
use crate::media::mailbox::Mailbox;
use crate::media::{FramePool, AUDIO_FRAME};
use mkv::{AudioTrack, MkvWriter, Track, VideoTrack};

/// What to record.
#[derive(Debug, Clone)]
pub struct Recording {
    pub video: VideoInput,
    pub audio: AudioInput,
    pub seconds: u32,
    pub out: PathBuf,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// The box's name, for the "no signal" slate of a V4L2 input.
    pub name: String,
    /// Which H.264 encoder, as the box's `encoder` setting.
    pub encoder: crate::encode::EncoderChoice,
    /// Benchmark mode: write exactly this many video frames, taking them from a y4m file or the
    /// test pattern as fast as the encoder goes (no pacing, nothing dropped, timestamps from
    /// the source's frame times); `seconds` is then ignored. Needs no audio input.
    pub frames: Option<u64>,
}

/// What happened, for the summary printed at the end.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Frames the video source delivered within the recording's time.
    pub frames_offered: u64,
    /// Frames replaced by a newer one while the encoder was still busy: the latest frame wins,
    /// as in the box (they share `media::mailbox`).
    pub dropped_behind: u64,
    /// Frames the encoder did not code: an unchanged picture held (openh264 holds a still
    /// picture once it has coded it fully; the file shows the same picture), rate control, or
    /// a failure.
    pub dropped_by_encoder: u64,
    pub frames_written: u64,
    pub audio_packets: u64,
    pub duration_ms: u64,
    pub encoder: String,
    /// The audio source's own account (xruns, absences), if it keeps one.
    pub audio_summary: Option<String>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dropped = self.frames_offered.saturating_sub(self.frames_written);
        writeln!(
            f,
            "recorded {:.2} s with {}",
            self.duration_ms as f64 / 1000.0,
            self.encoder
        )?;
        writeln!(
            f,
            "video: {} frames offered, {} written, {dropped} dropped ({} while the encoder was busy, {} by the encoder: unchanged pictures held, or rate control)",
            self.frames_offered, self.frames_written, self.dropped_behind, self.dropped_by_encoder
        )?;
        write!(f, "audio: {} Opus packets", self.audio_packets)?;
        if let Some(s) = &self.audio_summary {
            write!(f, "; {s}")?;
        }
        Ok(())
    }
}

/// The recording bitrate: the box's upper limit, so the file shows what viewers see at best.
const VIDEO_BPS: u32 = 2_500_000;
const OPUS_BPS: u32 = 64_000;
/// Frame buffers in circulation: the source's, the mailbox's, the encoder's and a spare.
const POOLED_FRAMES: usize = 4;
/// How long after the end a stuck source is waited for before the file is closed anyway.
const GRACE: Duration = Duration::from_secs(3);

/// The H.264 encoder the box would use (its `encoder` setting), and its name for the report.
fn open_encoder(
    choice: &crate::encode::EncoderChoice,
    fps: u32,
) -> anyhow::Result<(Box<dyn H264Encoder>, String)> {
    let params = crate::encode::EncoderParams {
        // Every frame the source gives is written: no rate-control skipping in a recording.
        skip_frames: false,
        ..crate::encode::EncoderParams::new(fps, VIDEO_BPS)
    };
    let opened = crate::encode::open(choice, params)?;
    tracing::info!("{opened}");
    Ok((opened.encoder, opened.description))
}

enum Packet {
    Video {
        ms: u64,
        data: Vec<u8>,
        keyframe: bool,
    },
    Audio {
        ms: u64,
        data: Vec<u8>,
    },
}

/// Opens the video source: as the box does, or unpaced for a fixed frame count.
fn open_video(rec: &Recording, pool: &FramePool) -> anyhow::Result<Box<dyn VideoSource>> {
    use crate::capture::{testsrc::TestPattern, y4m::Y4mFile};
    let source: Box<dyn VideoSource> = match (&rec.video, rec.frames) {
        (VideoInput::Y4m(path), Some(_)) => {
            Box::new(Y4mFile::open(path)?.unpaced().with_pool(pool.clone()))
        }
        (VideoInput::Test, Some(_)) => Box::new(
            TestPattern::new(rec.width, rec.height, rec.fps)?
                .unpaced()
                .with_pool(pool.clone()),
        ),
        (VideoInput::V4l2(_), Some(_)) => {
            anyhow::bail!("frames: a capture device cannot go faster than real time")
        }
        _ => rec.video.open(
            &crate::capture::VideoOptions {
                width: rec.width,
                height: rec.height,
                fps: rec.fps,
                box_name: rec.name.clone(),
            },
            pool,
        )?,
    };
    Ok(source)
}

/// Records for `rec.seconds` seconds (or `rec.frames` frames); blocks until the file is
/// complete.
pub fn record(rec: &Recording) -> anyhow::Result<Report> {
    anyhow::ensure!(
        rec.frames.is_none() || rec.audio == AudioInput::None,
        "frames: a fixed frame count needs --audio-in none"
    );
    anyhow::ensure!(rec.frames != Some(0), "frames: must be at least 1");
    let pool = FramePool::new(POOLED_FRAMES);
    let source = open_video(rec, &pool).with_context(|| format!("video source {}", rec.video))?;
    tracing::info!(name = %rec.name, "recording {} from {}", rec.out.display(), source.describe());
    let mic = rec
        .audio
        .open()
        .with_context(|| format!("audio input {}", rec.audio))?;
    let (encoder, encoder_name) = open_encoder(&rec.encoder, rec.fps)?;
    let file =
        File::create(&rec.out).with_context(|| format!("cannot create {}", rec.out.display()))?;

    let start = Instant::now();
    let length = Duration::from_secs(u64::from(rec.seconds));
    let max_frames = rec.frames;
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let (packets_tx, packets) = mpsc::channel::<Packet>();
    let mailbox = Arc::new(Mailbox::with_pool(pool.clone()));

    let video_thread = {
        let (stop, counters, mailbox) = (stop.clone(), counters.clone(), mailbox.clone());
        std::thread::Builder::new()
            .name("record-video".into())
            .spawn(move || {
                let limit = match max_frames {
                    Some(n) => Limit::Frames(n),
                    None => Limit::Time(length),
                };
                capture_video(source, start, limit, &mailbox, &counters, &stop);
                mailbox.finish();
            })?
    };
    let encode_thread = {
        let (tx, counters, mailbox) = (packets_tx.clone(), counters.clone(), mailbox.clone());
        std::thread::Builder::new()
            .name("record-encode".into())
            .spawn(move || {
                // Unpaced frames are timed by the source's clock, not by when they were read.
                let clock = match max_frames {
                    Some(_) => Clock::Pts,
                    None => Clock::Captured(start),
                };
                encode_video(encoder, clock, &mailbox, &tx, &counters);
            })?
    };
    let audio_pre_skip = match mic {
        Some(mic) => {
            let mut opus = OpusEncoder::new(OPUS_BPS)?;
            let pre_skip = opus.lookahead().unwrap_or(312);
            let (tx, stop) = (packets_tx.clone(), stop.clone());
            let summary_tx = counters.clone();
            std::thread::Builder::new()
                .name("record-audio".into())
                .spawn(move || capture_audio(mic, opus, start, length, tx, &stop, &summary_tx))?;
            Some(pre_skip)
        }
        None => None,
    };
    drop(packets_tx);

    // Track 1 the video (its size from the encoder's SPS), track 2 the audio if any.
    let mut tracks = vec![Track::Video(VideoTrack { fps: Some(rec.fps) })];
    tracks.extend(audio_pre_skip.map(|pre_skip| {
        Track::Audio(AudioTrack {
            channels: 1,
            pre_skip,
        })
    }));
    let mut writer = MkvWriter::new(BufWriter::new(file), &tracks);
    let give_up = start + length + GRACE;
    let (mut audio_packets, mut frames_written) = (0, 0);
    loop {
        let wait = give_up.saturating_duration_since(Instant::now());
        let next = match max_frames {
            // Unpaced, the end comes when the frames are done, however long that takes.
            Some(_) => packets
                .recv()
                .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            None => packets.recv_timeout(wait),
        };
        match next {
            Ok(Packet::Video { ms, data, keyframe }) => {
                writer.video(1, ms, &data, keyframe)?;
                frames_written += 1;
            }
            Ok(Packet::Audio { ms, data }) => {
                writer.audio(2, ms, &data)?;
                audio_packets += 1;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                tracing::warn!("a source did not stop in time; closing the file without it");
                break;
            }
        }
    }
    stop.store(true, Relaxed);
    let (duration_ms, _) = writer
        .finish()
        .with_context(|| format!("writing {}", rec.out.display()))?;
    anyhow::ensure!(frames_written > 0, "no video frame was recorded");
    // A source stuck in a device call is left behind; the process ends after the report.
    if video_thread.is_finished() {
        let _ = video_thread.join();
    }
    if encode_thread.is_finished() {
        let _ = encode_thread.join();
    }
    let summary = counters
        .audio_summary
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    Ok(Report {
        frames_offered: counters.offered.load(Relaxed),
        dropped_behind: mailbox.dropped(),
        dropped_by_encoder: counters.dropped_by_encoder.load(Relaxed),
        frames_written,
        audio_packets,
        duration_ms,
        encoder: encoder_name,
        audio_summary: summary,
    })
}

#[derive(Default)]
struct Counters {
    offered: AtomicU64,
    dropped_by_encoder: AtomicU64,
    audio_summary: std::sync::Mutex<Option<String>>,
}

fn since(start: Instant, at: Instant) -> Duration {
    at.saturating_duration_since(start)
}

/// When the video stops.
#[derive(Debug, Clone, Copy)]
enum Limit {
    /// Frames captured this long after the start are not recorded.
    Time(Duration),
    /// After this many frames, each waited for by the encoder (unpaced sources).
    Frames(u64),
}

/// Where a video packet's timestamp comes from.
#[derive(Debug, Clone, Copy)]
enum Clock {
    /// When the frame was captured, since the recording's start.
    Captured(Instant),
    /// The source's presentation time (unpaced sources).
    Pts,
}

/// Hands frames to the encoder through the box's mailbox without ever waiting for it (a frame
/// the encoder has not taken is replaced and counted). With a frame count, the encoder is
/// waited for instead, so nothing is lost.
fn capture_video(
    mut source: Box<dyn crate::capture::VideoSource>,
    start: Instant,
    limit: Limit,
    mailbox: &Mailbox,
    counters: &Counters,
    stop: &AtomicBool,
) {
    let mut offered = 0;
    while !stop.load(Relaxed) {
        if matches!(limit, Limit::Frames(n) if offered >= n) {
            return;
        }
        let frame = match source.next_frame() {
            Ok(f) => f,
            Err(e) => {
                tracing::error!("video source: {e}");
                return;
            }
        };
        offered += 1;
        match limit {
            Limit::Time(length) => {
                if since(start, frame.captured_at) >= length {
                    return;
                }
                counters.offered.fetch_add(1, Relaxed);
                mailbox.put(frame);
            }
            Limit::Frames(_) => {
                counters.offered.fetch_add(1, Relaxed);
                mailbox.put_waiting(frame);
            }
        }
    }
}

fn encode_video(
    mut encoder: Box<dyn H264Encoder>,
    clock: Clock,
    mailbox: &Mailbox,
    out: &mpsc::Sender<Packet>,
    counters: &Counters,
) {
    let mut first = true;
    while !mailbox.is_done() {
        let Some(frame) = mailbox.take(Duration::from_millis(200)) else {
            continue;
        };
        let at = match clock {
            Clock::Captured(start) => since(start, frame.captured_at),
            Clock::Pts => frame.pts,
        };
        let ms = at.as_millis() as u64;
        let result = encoder.encode(&frame, first);
        frame.recycle(&mailbox.pool);
        match result {
            Ok(Some(encoded)) => {
                first = false;
                let _ = out.send(Packet::Video {
                    ms,
                    data: encoded.data,
                    keyframe: encoded.keyframe,
                });
            }
            Ok(None) => {
                counters.dropped_by_encoder.fetch_add(1, Relaxed);
            }
            Err(e) => {
                tracing::warn!("{e}");
                counters.dropped_by_encoder.fetch_add(1, Relaxed);
            }
        }
    }
}

/// Audio timestamps follow the sample count from the first frame, so they do not jitter.
fn capture_audio(
    mut mic: Box<dyn crate::audio::AudioSource>,
    mut opus: OpusEncoder,
    start: Instant,
    length: Duration,
    out: mpsc::Sender<Packet>,
    stop: &AtomicBool,
    counters: &Counters,
) {
    let mut pcm = [0i16; AUDIO_FRAME];
    let mut first_at = None;
    let mut frames: u64 = 0;
    while !stop.load(Relaxed) {
        if let Err(e) = mic.read_frame(&mut pcm) {
            tracing::error!("audio input: {e}");
            break;
        }
        // The frame's first sample was taken 20 ms before it was complete.
        let first = *first_at.get_or_insert_with(|| {
            since(start, Instant::now()).saturating_sub(Duration::from_millis(20))
        });
        let at = first + Duration::from_millis(20 * frames);
        if at >= length {
            break;
        }
        frames += 1;
        match opus.encode(&pcm) {
            Ok(data) => {
                let _ = out.send(Packet::Audio {
                    ms: at.as_millis() as u64,
                    data,
                });
            }
            Err(e) => tracing::warn!("{e}"),
        }
    }
    *counters
        .audio_summary
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = mic.summary();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::frame::i420_len;
    use std::io::Write;

    #[test]
    fn fixed_frame_count_is_unpaced_and_complete() {
        let path = std::env::temp_dir().join(format!("roombox-rec-{}.y4m", std::process::id()));
        let out = path.with_extension("mkv");
        {
            let mut f = File::create(&path).expect("create");
            writeln!(f, "YUV4MPEG2 W64 H48 F30:1 C420jpeg").expect("write");
            for i in 0..3u8 {
                f.write_all(b"FRAME\n").expect("write");
                f.write_all(&vec![i * 40; i420_len(64, 48)]).expect("write");
            }
        }
        let rec = Recording {
            video: VideoInput::Y4m(path.clone()),
            audio: AudioInput::None,
            seconds: 1,
            out: out.clone(),
            width: 64,
            height: 48,
            fps: 30,
            name: "test".into(),
            encoder: crate::encode::EncoderChoice::OpenH264,
            frames: Some(45),
        };
        let begun = Instant::now();
        let report = record(&rec).expect("records");
        // 45 frames at 30 fps would take 1.5 s paced.
        assert!(begun.elapsed() < Duration::from_millis(1400), "{report}");
        assert_eq!(report.frames_offered, 45, "{report}");
        assert_eq!(report.frames_written, 45, "{report}");
        // Timestamps follow the file's frame rate: the last frame at 44/30 s, plus its length.
        assert_eq!(report.duration_ms, 1466 + 33, "{report}");
        let with_audio = Recording {
            audio: AudioInput::Test,
            ..rec
        };
        assert!(record(&with_audio).is_err());
        std::fs::remove_file(path).ok();
        std::fs::remove_file(out).ok();
    }
}
