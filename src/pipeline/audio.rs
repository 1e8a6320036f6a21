//! The pipeline's audio threads: the room microphone (processing, mute, levels, Opus out) and
//! the remote voices (jitter buffers, mix, the speaker), tied by the far-end queue that gives
//! the echo canceller what the speaker played.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, watch};

use super::{AudioControl, OPUS_BPS, REOPEN_AFTER};
use crate::audio::levels::{frame_dbfs, AudioMeters, SpeakingDetector};
use crate::audio::processing::{FarEnd, FarEndTap, RoomProcessor};
use crate::audio::stamp::FrameStamps;
use crate::audio::{AudioInput, AudioOutput, AudioSink, AudioSource, OpusEncoder, RemoteAudio};
use crate::calls::RemoteAudioPacket;
use crate::config::AudioProcessing;
use crate::display::{MicState, StatusModel};
use crate::media::{EncodedAudio, AUDIO_FRAME};

/// What the audio-in thread shares with the rest of the box besides the encoded audio.
pub(super) struct RoomSide {
    /// What the speaker played (the echo canceller's reference).
    pub far: FarEnd,
    pub control: watch::Receiver<AudioControl>,
    pub meters: Arc<AudioMeters>,
    pub status: watch::Sender<StatusModel>,
}

pub(super) fn set_mic(m: &mut StatusModel, state: MicState) -> bool {
    std::mem::replace(&mut m.mic, state) != state
}

/// The processing a source gets: a room microphone all its stages, the test tone none (noise
/// suppression would take a steady tone for noise).
fn processing_for(input: &AudioInput, control: AudioControl) -> AudioProcessing {
    match input {
        AudioInput::Alsa(_) => control.processing,
        _ => AudioProcessing::NONE,
    }
}

fn log_processing(input: &AudioInput, chain: &RoomProcessor, control: AudioControl) {
    let muted = if control.mute { ", muted" } else { "" };
    tracing::info!(
        "audio input {input}: processing {}{muted}",
        chain.stages().label()
    );
}

pub(super) fn capture_audio(
    mut mic: Box<dyn AudioSource>,
    input: AudioInput,
    out: &broadcast::Sender<Arc<EncodedAudio>>,
    mut room: RoomSide,
    stop: &AtomicBool,
) {
    let mut opus = match OpusEncoder::new(OPUS_BPS) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!("cannot start the Opus encoder: {e}");
            return;
        }
    };
    let mut control = *room.control.borrow_and_update();
    let mut chain = RoomProcessor::new(processing_for(&input, control));
    log_processing(&input, &chain, control);
    let mut speaking = SpeakingDetector::default();
    let mut pcm = [0i16; AUDIO_FRAME];
    let mut stamps = FrameStamps::default();
    let mut frames: u64 = 0;
    while !stop.load(Relaxed) {
        if let Err(e) = mic.read_frame(&mut pcm) {
            tracing::warn!("audio input {input}: {e}; retrying");
            std::thread::sleep(REOPEN_AFTER);
            match input.open() {
                Ok(Some(m)) => mic = m,
                Ok(None) => break,
                Err(e) => tracing::debug!("audio input {input} still unavailable: {e}"),
            }
            continue;
        }
        let now = Instant::now();
        let stamp = stamps.next(now, mic.first_sample_age());
        if room.control.has_changed().unwrap_or(false) {
            control = *room.control.borrow_and_update();
            chain.set_stages(processing_for(&input, control));
            log_processing(&input, &chain, control);
        }
        let captured = frame_dbfs(&pcm);
        chain.process(&room.far, &mut pcm, now);
        if control.mute {
            pcm.fill(0);
        }
        let sent = frame_dbfs(&pcm);
        room.meters.mic(captured, sent);
        if frames.is_multiple_of(50) {
            room.meters.echo(chain.echo_stats());
        }
        let state = match (control.mute, speaking.update(sent)) {
            (true, _) => MicState::Muted,
            (false, true) => MicState::Speaking,
            (false, false) => MicState::On,
        };
        room.status.send_if_modified(|m| set_mic(m, state));
        match opus.encode(&pcm) {
            Ok(packet) => {
                let _ = out.send(Arc::new(EncodedAudio {
                    data: packet.into(),
                    pts: stamp.pts,
                    captured_at: stamp.captured_at,
                }));
            }
            Err(e) => tracing::warn!("Opus: {e}"),
        }
        frames += 1;
    }
    room.meters.mic_silent();
    room.status.send_if_modified(|m| set_mic(m, MicState::Off));
}

/// What the playout thread tells the rest of the box about what it plays.
pub(super) struct Heard {
    pub tap: FarEndTap,
    pub meters: Arc<AudioMeters>,
}

/// Mixes the remote voices every 20 ms into the speaker. ALSA's blocking write sets the pace;
/// files and `none` are paced here on an absolute schedule.
pub(super) fn play_remote_audio(
    mut sink: Box<dyn AudioSink>,
    output: AudioOutput,
    paced_by_device: bool,
    mut packets: mpsc::Receiver<RemoteAudioPacket>,
    heard: Heard,
    stop: &AtomicBool,
) -> mpsc::Receiver<RemoteAudioPacket> {
    let mut voices = RemoteAudio::new();
    let mut mixed = [0i16; AUDIO_FRAME];
    let start = Instant::now();
    if !paced_by_device {
        // Where a file's samples sit in time, for measurements against other clocks (the
        // display sink's times: bench/display's A/V sync).
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        tracing::info!(
            "audio out {output}: frame n plays at unix {} us + n x 20 ms",
            unix.as_micros()
        );
    }
    let mut tick: u32 = 0;
    while !stop.load(Relaxed) {
        while let Ok(p) = packets.try_recv() {
            match p {
                RemoteAudioPacket::Packet {
                    peer,
                    seq,
                    payload,
                    at,
                    ..
                } => {
                    if let Err(e) = voices.push_packet(&peer, seq, &payload, at) {
                        tracing::debug!(%peer, "undecodable audio: {e}");
                    }
                }
                RemoteAudioPacket::PeerGone(peer) => voices.remove_peer(&peer),
            }
        }
        voices.pull_mixed(Instant::now(), &mut mixed);
        heard.tap.played(&mixed, Instant::now());
        heard.meters.speaker(frame_dbfs(&mixed));
        if let Err(e) = sink.write(&mixed) {
            tracing::warn!("audio output {output}: {e}; retrying");
            std::thread::sleep(REOPEN_AFTER);
            match output.open() {
                Ok(s) => sink = s,
                Err(e) => tracing::debug!("audio output {output} still unavailable: {e}"),
            }
        }
        tick += 1;
        if !paced_by_device {
            let due = start + Duration::from_millis(20) * tick;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    }
    packets
}
