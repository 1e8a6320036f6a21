//! `roombox echo-check`: the installer's check of the room's echo path and of the canceller.
//! The box plays a talker (synthetic speech, crates/roomsim) on the room speaker after a second
//! of silence, records the microphone, and runs what it records through the same processing
//! chain as a call, afterwards (so a slow machine does not overrun the capture), in the order
//! the call would have: each captured frame after the frames played before it. It reports the room's noise floor, how loud the echo is at the microphone
//! and how much of it the chain removes (ERLE), with the echo delay the canceller found.
//! `--save DIR` keeps what was played, heard and would have been sent, as WAV files.

use super::levels::{dbfs, frame_dbfs, FLOOR_DBFS};
use super::processing::RoomProcessor;
use super::sink::WavFile;
use super::{AudioInput, AudioOutput, AudioSink};
use crate::config::AudioProcessing;
use crate::media::AUDIO_FRAME;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// Silence first: the noise floor, and the devices settle.
const QUIET_FRAMES: usize = 50;
/// The first 2 s of talk are the canceller's to converge in; ERLE is measured after.
const CONVERGE_FRAMES: usize = 100;
/// Frames at the start of capture a device may fill with its start-up silence.
const SETTLE_FRAMES: usize = 10;
/// The talker's pauses are not part of its level.
const ACTIVE_TALK_DBFS: f32 = -50.0;
/// Echo counts where the microphone is this far above the noise floor.
const ECHO_ABOVE_NOISE_DB: f32 = 20.0;

/// What to check.
pub struct EchoCheck {
    pub speaker: AudioOutput,
    pub mic: AudioInput,
    /// Seconds of talk (after 1 s of silence).
    pub seconds: u32,
    pub processing: AudioProcessing,
    /// Where to write played.wav, heard.wav and sent.wav.
    pub save: Option<PathBuf>,
}

/// What the check measured.
#[derive(Debug, Clone, PartialEq)]
pub struct EchoReport {
    pub processing: AudioProcessing,
    /// The microphone in the silence, dBFS.
    pub noise_dbfs: f32,
    /// The talk as played, dBFS (RMS over its active blocks, as the echo's level is).
    pub played_dbfs: f32,
    /// The echo at the microphone over the blocks where it stands above the noise, dBFS.
    pub echo_dbfs: Option<f32>,
    /// How much the chain removed of it, from 2 s into the talk on, dB; None when no echo
    /// was heard.
    pub erle_db: Option<f32>,
    /// The speaker-to-microphone delay the canceller found, ms.
    pub delay_ms: Option<i32>,
}

impl fmt::Display for EchoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.noise_dbfs <= FLOOR_DBFS {
            write!(f, "echo-check: noise floor silent, ")?;
        } else {
            write!(f, "echo-check: noise floor {:.1} dBFS, ", self.noise_dbfs)?;
        }
        write!(f, "played {:.1} dBFS; ", self.played_dbfs)?;
        match (self.echo_dbfs, self.erle_db) {
            (Some(echo), Some(erle)) => {
                write!(
                    f,
                    "echo at the microphone {echo:.1} dBFS (echo return loss {:.1} dB); \
                     after {}: echo reduced by {erle:.1} dB (ERLE from 2 s on)",
                    self.played_dbfs - echo,
                    self.processing.label()
                )?;
                if let Some(d) = self.delay_ms {
                    write!(f, ", echo delay {d} ms")?;
                }
                Ok(())
            }
            _ => write!(
                f,
                "no echo heard above the noise floor (is the speaker on, its volume up, and \
                 within earshot of the microphone?)"
            ),
        }
    }
}

/// Plays the talker, records, processes, measures. Blocks for the check's length.
pub fn run(check: &EchoCheck) -> anyhow::Result<EchoReport> {
    anyhow::ensure!(
        matches!(check.speaker, AudioOutput::Alsa(_)) && matches!(check.mic, AudioInput::Alsa(_)),
        "echo-check needs the room's speaker and microphone: --audio-out alsa:DEVICE \
         --audio-in alsa:DEVICE"
    );
    let talk = talker(check.seconds);
    let total = QUIET_FRAMES + talk.len() + 25;
    let mut sink = check.speaker.open()?;
    let mut source = check
        .mic
        .open()?
        .ok_or_else(|| anyhow::anyhow!("no microphone"))?;
    // How many frames the speaker has taken, as each microphone frame arrives.
    let played_so_far = Arc::new(AtomicUsize::new(0));
    let played: Arc<Vec<[i16; AUDIO_FRAME]>> = Arc::new(
        std::iter::repeat_n([0; AUDIO_FRAME], QUIET_FRAMES)
            .chain(talk)
            .chain(std::iter::repeat_n([0; AUDIO_FRAME], 25))
            .collect(),
    );
    let player = std::thread::Builder::new()
        .name("echo-check-play".into())
        .spawn({
            let (played, so_far) = (played.clone(), played_so_far.clone());
            move || -> Result<(), super::sink::SinkError> {
                for frame in played.iter() {
                    so_far.fetch_add(1, Relaxed);
                    sink.write(frame)?;
                }
                Ok(())
            }
        })?;
    let mut heard = Vec::with_capacity(total);
    let mut played_before = Vec::with_capacity(total);
    let mut frame = [0i16; AUDIO_FRAME];
    for _ in 0..total {
        source
            .read_frame(&mut frame)
            .map_err(|e| anyhow::anyhow!("audio input {}: {e}", check.mic))?;
        heard.push(frame);
        played_before.push(played_so_far.load(Relaxed));
    }
    player
        .join()
        .map_err(|_| anyhow::anyhow!("the player thread panicked"))?
        .map_err(|e| anyhow::anyhow!("audio output {}: {e}", check.speaker))?;
    let mut chain = RoomProcessor::new(check.processing);
    let mut fed = 0;
    let sent: Vec<[i16; AUDIO_FRAME]> = heard
        .iter()
        .zip(&played_before)
        .map(|(h, &before)| {
            for f in &played[fed..before.min(played.len())] {
                chain.far_end(f);
            }
            fed = fed.max(before.min(played.len()));
            let mut f = *h;
            chain.near_end(&mut f);
            f
        })
        .collect();
    if let Some(dir) = &check.save {
        std::fs::create_dir_all(dir)?;
        for (name, frames) in [
            ("played.wav", &played[..]),
            ("heard.wav", &heard),
            ("sent.wav", &sent),
        ] {
            let mut wav = WavFile::create(dir.join(name))?;
            for f in frames {
                wav.write(f)?;
            }
        }
    }
    let mut report = analyse(&played[QUIET_FRAMES..], &heard, &sent);
    report.processing = check.processing;
    report.delay_ms = chain.echo_stats().delay_ms;
    Ok(report)
}

/// The talker as 20 ms frames.
fn talker(seconds: u32) -> Vec<[i16; AUDIO_FRAME]> {
    let speech = roombox_roomsim::talker::speech(
        roombox_roomsim::Voice::LOW,
        seconds as f32,
        roombox_roomsim::RATE,
        11,
    );
    roombox_roomsim::scenario::to_i16(&speech)
        .chunks_exact(AUDIO_FRAME)
        .map(|c| c.try_into().expect("a whole frame"))
        .collect()
}

fn power(frames: &[[i16; AUDIO_FRAME]]) -> f64 {
    frames
        .as_flattened()
        .iter()
        .map(|&s| f64::from(s) * f64::from(s))
        .sum()
}

fn dbfs_of(frames: &[[i16; AUDIO_FRAME]]) -> f32 {
    dbfs(frames.as_flattened())
}

/// The measures, from the talk as played and the microphone as heard and as processed (both
/// from the start of the silence).
fn analyse(
    talk: &[[i16; AUDIO_FRAME]],
    heard: &[[i16; AUDIO_FRAME]],
    sent: &[[i16; AUDIO_FRAME]],
) -> EchoReport {
    let noise_dbfs = dbfs_of(&heard[SETTLE_FRAMES..QUIET_FRAMES]);
    let from = QUIET_FRAMES + CONVERGE_FRAMES;
    let echo_blocks: Vec<usize> = (from..heard.len())
        .filter(|&i| frame_dbfs(&heard[i]) > noise_dbfs + ECHO_ABOVE_NOISE_DB)
        .collect();
    // A few blocks are chance (a door); a second's worth is an echo.
    let (echo_dbfs, erle_db) = if echo_blocks.len() >= 50 {
        let pick = |x: &[[i16; AUDIO_FRAME]]| -> Vec<[i16; AUDIO_FRAME]> {
            echo_blocks.iter().map(|&i| x[i]).collect()
        };
        let (h, s) = (pick(heard), pick(sent));
        let erle = 10.0 * (power(&h) / power(&s).max(1.0)).log10();
        (Some(dbfs_of(&h)), Some(erle as f32))
    } else {
        (None, None)
    };
    EchoReport {
        processing: AudioProcessing::NONE,
        noise_dbfs,
        played_dbfs: dbfs_of(
            &talk
                .iter()
                .filter(|f| frame_dbfs(f) > ACTIVE_TALK_DBFS)
                .copied()
                .collect::<Vec<_>>(),
        ),
        echo_dbfs,
        erle_db,
        delay_ms: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(n: usize, amplitude: i16) -> Vec<[i16; AUDIO_FRAME]> {
        (0..n)
            .map(|k| {
                std::array::from_fn(|i| {
                    if (i + k) % 2 == 0 {
                        amplitude
                    } else {
                        -amplitude
                    }
                })
            })
            .collect()
    }

    #[test]
    fn the_measures_of_an_echo_and_its_removal() {
        // Noise at 10 (-70 dBFS), echo at 1000 (-30 dBFS) for 4 s, the chain leaves 10.
        let talk = frames(200, 3000);
        let mut heard = frames(QUIET_FRAMES, 10);
        heard.extend(frames(200, 1000));
        let mut sent = frames(QUIET_FRAMES, 10);
        sent.extend(frames(200, 10));
        let r = analyse(&talk, &heard, &sent);
        assert!((r.noise_dbfs + 70.3).abs() < 0.1, "{r:?}");
        assert!((r.echo_dbfs.unwrap() + 30.3).abs() < 0.1, "{r:?}");
        assert!((r.erle_db.unwrap() - 40.0).abs() < 0.1, "{r:?}");
        assert!((r.played_dbfs + 20.8).abs() < 0.1, "{r:?}");
        assert!(r.to_string().contains("echo reduced by 40.0 dB"), "{r}");
    }

    #[test]
    fn no_echo_is_said_plainly() {
        let talk = frames(200, 3000);
        let heard = frames(QUIET_FRAMES + 200, 10);
        let r = analyse(&talk, &heard, &heard);
        assert_eq!((r.echo_dbfs, r.erle_db), (None, None));
        assert!(r.to_string().contains("no echo heard"), "{r}");
    }

    #[test]
    fn only_real_devices_are_checked() {
        let check = EchoCheck {
            speaker: AudioOutput::None,
            mic: AudioInput::Test,
            seconds: 4,
            processing: AudioProcessing::ALL,
            save: None,
        };
        let e = run(&check).unwrap_err().to_string();
        assert!(e.contains("--audio-out alsa:DEVICE"), "{e}");
    }
}
