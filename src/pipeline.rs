//! The media pipeline: capture and encode threads feeding the calls (through the pump), and
//! the playout thread feeding the room speaker.

use std::sync::Arc;
use std::time::{Duration, Instant};

mod audio;
pub mod call_view;

use crate::access::Access;
use crate::audio::levels::AudioMeters;
use crate::audio::processing::far_end_queue;
use crate::audio::{AudioInput, AudioOutput, AudioSink, AudioSource};
use crate::calls::{Calls, CallsConfig, EncoderControl, RemoteAudioPacket};
use crate::capture::{InputState, VideoInput, VideoOptions, VideoSource};
use crate::config::{AudioProcessing, Degradation, Settings};
use crate::display::{HdmiIn, MicState, OnScreenOnly, SignalingState, StatusModel, StatusScreen};
use crate::encode::h264::H264Encoder;
use crate::encode::ladder::Ladder;
use crate::encode::EncoderParams;
use crate::fanout::{KeyframeGate, KEYFRAME_MIN_INTERVAL};
use crate::media::mailbox::Mailbox;
use crate::media::scale::Scaler;
use crate::media::{EncodedAudio, EncodedVideo};
use crate::pump::{self, udp};
use crate::signaling::{self, SignalingConfig};
use anyhow::Context;
use audio::{capture_audio, play_remote_audio, set_mic, Heard, RoomSide};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Mutex;
use std::thread::JoinHandle;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

/// What the media threads and the pump share.
#[derive(Clone)]
pub struct MediaLinks {
    pub video: broadcast::Sender<Arc<EncodedVideo>>,
    pub audio: broadcast::Sender<Arc<EncodedAudio>>,
    /// What the calls want of the encoder (bitrate, viewers, keyframes): one typed channel.
    pub control: watch::Receiver<EncoderControl>,
    /// The H.264 encoder in use ("openh264", "v4l2m2m"), for the status.
    pub encoder_name: Arc<Mutex<&'static str>>,
    /// The status feed, where the capture thread reports the HDMI input's state.
    pub status: watch::Sender<StatusModel>,
    /// The microphone's processing and mute, applied live by the audio thread.
    pub audio_control: watch::Receiver<AudioControl>,
    /// The live levels the settings page shows.
    pub meters: Arc<AudioMeters>,
}

/// What the audio-in thread applies without a restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioControl {
    pub processing: AudioProcessing,
    pub mute: bool,
}

fn audio_control(s: &Settings) -> AudioControl {
    AudioControl {
        processing: s.processing,
        mute: s.mute,
    }
}

/// A device that failed is opened again after this long.
const REOPEN_AFTER: Duration = Duration::from_secs(1);
const OPUS_BPS: u32 = 48_000;

/// Runs the box until `shutdown` resolves: capture, encode, the peers and the speaker.
///
/// `settings` may change while it runs (the settings page): room, name and server make the
/// signaling client leave and join again, and so does a new room secret in `access`; bitrate
/// limits go to the driver; devices, size and frame rate restart only the media threads.
/// `access` also carries the claim code while the box is unclaimed (the screen shows it).
/// `status` is the feed of the HDMI-out screen and the settings page, `meters` its live audio
/// levels. `record_remote` is the directory where what people send the box is recorded
/// (`--record-remote`, `record::remote`), if anywhere.
pub async fn run_box(
    mut settings: watch::Receiver<Settings>,
    mut access: watch::Receiver<Access>,
    status_tx: watch::Sender<StatusModel>,
    meters: Arc<AudioMeters>,
    display_out: Option<call_view::DisplaySink>,
    record_remote: Option<std::path::PathBuf>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut current = settings.borrow_and_update().clone();
    let mut keys = access.borrow_and_update().clone();
    install_crypto_provider();

    let (video_tx, _) = broadcast::channel(4);
    let (audio_tx, _) = broadcast::channel(16);
    let (remote_tx, remote_rx) = mpsc::channel(512);
    let (control_tx, control_rx) = watch::channel(EncoderControl {
        target_bps: current.max_kbps * 1000,
        ..EncoderControl::default()
    });
    let (audio_control_tx, audio_control_rx) = watch::channel(audio_control(&current));
    let links = MediaLinks {
        video: video_tx,
        audio: audio_tx,
        control: control_rx,
        encoder_name: Arc::new(Mutex::new("openh264")),
        status: status_tx.clone(),
        audio_control: audio_control_rx,
        meters,
    };
    // service: the encoder and the driver bump this; the watchdog is petted only while both turn.
    let health = Arc::new(crate::service::Health::new(Instant::now()));
    // Open the devices up front, so a wrong setting fails at start with its name.
    let mut media = Some(Media::start(&current, &links, &health, remote_rx).map_err(|(e, _)| e)?);
    let mut parked_remote = None; // the playout queue while a restart waits for a device

    let (mut sockets, udp_rx) = udp::Sockets::new(current.ice_loopback);
    sockets.refresh().await;
    if sockets.local_addrs().is_empty() {
        // A box that booted before DHCP answered: it waits (the screen says so), the pump
        // takes the address when it comes.
        tracing::warn!("no network address yet: waiting for one (--ice-loopback for tests)");
    }

    // The HDMI-out status screen: idle without a display, redrawn when the model changes.
    status_tx.send_modify(|m| {
        m.signaling = SignalingState::Reconnecting;
        describe_settings(m, &current);
        describe_access(m, &current, &keys);
    });
    // What people send the box, decoded: shown on the HDMI-out instead of the status while
    // somebody sends video, and written to the display sink when there is one.
    let (pictures_tx, pictures_rx) = watch::channel(crate::remote_video::CallPicture::default());
    let (lit_tx, lit_rx) = watch::channel(false);
    let screen = StatusScreen::start(status_tx.subscribe(), pictures_rx, lit_tx);
    let (remote_video_tx, remote_video_rx) = std::sync::mpsc::sync_channel(64);
    let (view_tx, view_rx) = watch::channel(call_view::ViewWishes::new());
    let (decoder_tx, decoder_rx) = watch::channel(current.decoder.clone());
    let view_thread = call_view::start(
        remote_video_rx,
        status_tx.clone(),
        pictures_tx,
        view_tx,
        (
            decoder_rx,
            call_view::Watchers {
                lit: lit_rx,
                recorded: record_remote.is_some(),
            },
        ),
        display_out.clone(),
    )
    .with_context(|| format!("display sink {display_out:?}"))?;
    // What people send, as they send it, into a file per person (tests and diagnosis).
    let (record_tap, recorder) = match &record_remote {
        Some(dir) => {
            let (tap, thread) = crate::record::remote::start(dir)
                .with_context(|| format!("--record-remote {}", dir.display()))?;
            (Some(tap), Some(thread))
        }
        None => (None, None),
    };

    let cancel = CancellationToken::new();
    let (events_tx, events_rx) = mpsc::channel(64);
    let (out_tx, out_rx) = mpsc::channel(256);
    let (signaling_tx, signaling_rx) = watch::channel(signaling_config(&current, &keys));
    let signaling = tokio::spawn(signaling::run(
        signaling_rx,
        events_tx,
        out_rx,
        cancel.clone(),
    ));
    let (limits_tx, limits_rx) = watch::channel(current.bitrate_bounds());
    let local_addrs = sockets.local_addrs();
    let calls = Calls::new(
        CallsConfig {
            min_bps: current.min_kbps * 1000,
            max_bps: current.max_kbps * 1000,
            local_addrs,
            seed: rand::random(),
        },
        Instant::now(),
    );
    let wiring = pump::Wiring {
        signal_in: events_rx,
        signal_out: out_tx,
        udp_in: udp_rx,
        video: links.video.subscribe(),
        audio: links.audio.subscribe(),
        limits: limits_rx,
        encoder: control_tx,
        remote_audio: remote_tx,
        remote_video: remote_video_tx,
        view: view_rx,
        record: record_tap,
        status: status_tx.clone(),
        encoder_name: links.encoder_name.clone(),
    };
    let pumping = pump::run(calls, sockets, wiring, cancel.clone());
    // service: the pump counts as turning each time it is polled.
    let driving = tokio::spawn(health.clone().track_driver(pumping));
    // service: READY=1 once encoder and pump have turned, STATUS=, WATCHDOG=1 while healthy.
    let supervise = crate::service::supervise(
        health.clone(),
        current.room.to_string(),
        links.control.clone(),
        cancel.clone(),
    );
    tokio::spawn(supervise);

    // Live apply: each saved change goes where it is needed, nothing restarts needlessly.
    let mut retry = tokio::time::interval(REOPEN_AFTER * 2);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Ok(()) = settings.changed() => {
                let new = settings.borrow_and_update().clone();
                signaling_tx.send_if_modified(|c| std::mem::replace(c, signaling_config(&new, &keys)) != *c);
                limits_tx.send_if_modified(|l| std::mem::replace(l, new.bitrate_bounds()) != *l);
                decoder_tx.send_if_modified(|d| std::mem::replace(d, new.decoder.clone()) != *d);
                audio_control_tx.send_if_modified(|c| std::mem::replace(c, audio_control(&new)) != *c);
                status_tx.send_modify(|m| {
                    describe_settings(m, &new);
                    describe_access(m, &new, &keys);
                });
                let restart = media_settings(&new) != media_settings(&current);
                current = new;
                if restart {
                    tracing::info!("devices, size, frame rate or degradation changed: restarting the media pipeline");
                    if let Some(old) = media.take() {
                        parked_remote = Some(tokio::task::spawn_blocking(move || old.stop()).await?);
                    }
                    retry.reset_immediately();
                }
            }
            Ok(()) = access.changed() => {
                // A new room secret (the box leaves and joins again), or the claim code made
                // or used up: both only change what signaling and the screen get.
                keys = access.borrow_and_update().clone();
                signaling_tx.send_if_modified(|c| std::mem::replace(c, signaling_config(&current, &keys)) != *c);
                status_tx.send_modify(|m| describe_access(m, &current, &keys));
            }
            _ = retry.tick(), if media.is_none() => {
                let Some(remote_rx) = parked_remote.take() else { continue };
                let (s, l, h) = (current.clone(), links.clone(), health.clone());
                let started = tokio::task::spawn_blocking(move || Media::start(&s, &l, &h, remote_rx)).await?;
                match started {
                    Ok(m) => {
                        media = Some(m);
                        status_tx.send_modify(|m| m.media_error = None);
                    }
                    Err((e, remote_rx)) => {
                        tracing::warn!("media pipeline: {e:#}; retrying");
                        parked_remote = Some(remote_rx);
                        status_tx.send_modify(|m| m.media_error = Some(format!("{e:#}")));
                    }
                }
            }
        }
    }
    tracing::info!("stopping");
    crate::service::notify_stopping();
    cancel.cancel();
    let _ = driving.await;
    let _ = signaling.await;
    if let Some(media) = media {
        media.stop();
    }
    // With every sender of the model gone (the links carry one for the capture thread), the
    // screen gives the display back.
    drop(links);
    drop(status_tx);
    let _ = screen.join();
    // The pump is gone, and with it the sender of the remote video: the view finishes its file,
    // and the recorder of what people send finishes theirs.
    let _ = view_thread.join();
    if let Some(recorder) = recorder {
        let _ = recorder.join();
    }
    Ok(())
}

fn signaling_config(s: &Settings, access: &Access) -> SignalingConfig {
    SignalingConfig {
        url: s.signal_url.clone(),
        room: s.room.clone(),
        name: s.name.clone(),
        secret: access.room_secret.clone(),
    }
}

/// The parts of the status model that only the screen shows: the join link (it carries the
/// room secret) and, while the box is unclaimed, the claim code.
fn describe_access(m: &mut StatusModel, s: &Settings, access: &Access) {
    let link = crate::access::join_link(&s.signal_url, &s.room, &access.room_secret);
    m.join_link = OnScreenOnly::new(link);
    m.claim_code = access
        .claim_code
        .as_ref()
        .map(|c| OnScreenOnly::new(c.expose()));
}

/// What only a restart of the media threads can change.
type MediaSettings<'a> = (
    &'a VideoInput,
    &'a AudioInput,
    &'a AudioOutput,
    u32,
    u32,
    u32,
    Degradation,
);

fn media_settings(s: &Settings) -> MediaSettings<'_> {
    (
        &s.video,
        &s.audio_in,
        &s.audio_out,
        s.width,
        s.height,
        s.fps,
        s.degradation,
    )
}

/// The parts of the status model that come from the settings.
fn describe_settings(m: &mut StatusModel, s: &Settings) {
    m.room = s.room.to_string();
    m.box_name = s.name.clone();
    m.video_device = s.video.to_string();
    m.mic_processing = match s.audio_in {
        AudioInput::Alsa(_) => s.processing.label(),
        AudioInput::Test => "none (test tone)".into(),
        AudioInput::None => "none (no microphone)".into(),
    };
    m.hdmi_in = match s.video {
        VideoInput::Test => HdmiIn::signal(s.width, s.height, s.fps.into()),
        // A capture input reports its own state from the capture thread (`hdmi_status`).
        _ => HdmiIn::NoDevice,
    };
}

/// The capture, encode, audio-in and playout threads of one set of device settings.
struct Media {
    stop: Arc<AtomicBool>,
    mailbox: Arc<Mailbox>,
    threads: Vec<JoinHandle<()>>,
    playout: JoinHandle<mpsc::Receiver<RemoteAudioPacket>>,
}

impl Media {
    /// Opens the devices and starts the threads; on failure hands the playout queue back.
    fn start(
        settings: &Settings,
        links: &MediaLinks,
        health: &Arc<crate::service::Health>,
        remote_rx: mpsc::Receiver<RemoteAudioPacket>,
    ) -> Result<Media, (anyhow::Error, mpsc::Receiver<RemoteAudioPacket>)> {
        match Self::open(settings) {
            Ok(devices) => Ok(Self::spawn(settings, devices, links, health, remote_rx)),
            Err(e) => Err((e, remote_rx)),
        }
    }

    fn open(settings: &Settings) -> anyhow::Result<OpenDevices> {
        let Settings {
            video: video_in,
            audio_in,
            audio_out,
            encoder: encoder_choice,
            ..
        } = settings;
        // A wrong `encoder` fails here with its name; `auto` logs its choice and why.
        let encoder = crate::encode::open(
            encoder_choice,
            EncoderParams::new(settings.fps, settings.max_kbps * 1000),
        )
        .with_context(|| format!("encoder {encoder_choice}"))?;
        let mailbox = Arc::new(Mailbox::default());
        let source = video_in
            .open(&video_options(settings), &mailbox.pool)
            .with_context(|| format!("video source {video_in}"))?;
        tracing::info!("video: {} -> {}", source.describe(), encoder.description);
        let mic = audio_in
            .open()
            .with_context(|| format!("audio input {audio_in}"))?;
        let speaker = audio_out
            .open()
            .with_context(|| format!("audio output {audio_out}"))?;
        Ok(OpenDevices {
            mailbox,
            source,
            mic,
            speaker,
            encoder: encoder.encoder,
        })
    }

    fn spawn(
        settings: &Settings,
        OpenDevices {
            mailbox,
            source,
            mic,
            speaker,
            encoder,
        }: OpenDevices,
        links: &MediaLinks,
        health: &Arc<crate::service::Health>,
        remote_rx: mpsc::Receiver<RemoteAudioPacket>,
    ) -> Media {
        // Parsed by `open` already.
        let Settings {
            video: video_in,
            audio_in,
            audio_out,
            ..
        } = settings;
        let stop = Arc::new(AtomicBool::new(false));
        // What the speaker plays, for the microphone's echo canceller.
        let (tap, far) = far_end_queue();
        let mut threads = vec![
            spawn("capture", {
                let (mailbox, stop, status) = (mailbox.clone(), stop.clone(), links.status.clone());
                let spec = (video_in.clone(), video_options(settings));
                move || capture_video(source, spec, &mailbox, &status, &stop)
            }),
            spawn("encode", {
                let (mailbox, stop, links, health) =
                    (mailbox.clone(), stop.clone(), links.clone(), health.clone());
                *links.encoder_name.lock().expect("not poisoned") = encoder.name();
                let sizing = EncodeSizing {
                    ladder: Ladder::new(settings.degradation),
                    fps: settings.fps,
                };
                let bitrate = settings.max_kbps * 1000;
                move || encode_video(encoder, bitrate, sizing, &mailbox, &links, &stop, &health)
            }),
        ];
        let playout = std::thread::Builder::new()
            .name("playout".into())
            .spawn({
                let (stop, audio_out) = (stop.clone(), audio_out.clone());
                let paced_by_device = matches!(audio_out, AudioOutput::Alsa(_));
                let heard = Heard {
                    tap,
                    meters: links.meters.clone(),
                };
                move || {
                    play_remote_audio(speaker, audio_out, paced_by_device, remote_rx, heard, &stop)
                }
            })
            .expect("the OS lets us start a thread");
        if let Some(mic) = mic {
            let (stop, audio, audio_in) = (stop.clone(), links.audio.clone(), audio_in.clone());
            let room = RoomSide {
                far,
                control: links.audio_control.clone(),
                meters: links.meters.clone(),
                status: links.status.clone(),
            };
            threads.push(spawn("audio-in", move || {
                capture_audio(mic, audio_in, &audio, room, &stop);
            }));
        } else {
            links.meters.mic_silent();
            links.status.send_if_modified(|m| set_mic(m, MicState::Off));
        }
        Media {
            stop,
            mailbox,
            threads,
            playout,
        }
    }

    /// Stops the threads (each notices within a frame or two) and hands back the playout queue.
    fn stop(self) -> mpsc::Receiver<RemoteAudioPacket> {
        self.stop.store(true, Relaxed);
        self.mailbox.wake();
        for t in self.threads {
            let _ = t.join();
        }
        self.playout
            .join()
            .expect("the playout thread does not panic")
    }
}

fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .expect("the OS lets us start a thread")
}

/// The devices and encoder of one media run, opened before its threads start.
struct OpenDevices {
    mailbox: Arc<Mailbox>,
    source: Box<dyn VideoSource>,
    mic: Option<Box<dyn AudioSource>>,
    speaker: Box<dyn AudioSink>,
    encoder: Box<dyn H264Encoder>,
}

/// What a video source is opened with: the configured size and rate, and the box's name for
/// the "no signal" slate.
fn video_options(settings: &Settings) -> VideoOptions {
    VideoOptions {
        width: settings.width,
        height: settings.height,
        fps: settings.fps,
        box_name: settings.name.clone(),
    }
}

fn hdmi_status(state: &InputState) -> HdmiIn {
    match *state {
        InputState::Picture {
            width,
            height,
            fps_x100,
        } => HdmiIn::Signal {
            width,
            height,
            fps_x100,
        },
        InputState::NoSignal => HdmiIn::NoSignal,
        InputState::NoDevice => HdmiIn::NoDevice,
    }
}

fn capture_video(
    mut source: Box<dyn VideoSource>,
    (input, options): (VideoInput, VideoOptions),
    mailbox: &Mailbox,
    status: &watch::Sender<StatusModel>,
    stop: &AtomicBool,
) {
    while !stop.load(Relaxed) {
        let frame = source.next_frame();
        if let Some(state) = source.input_state() {
            // The screen and the page show the HDMI input as the capture sees it.
            let hdmi = hdmi_status(&state);
            status.send_if_modified(|m| {
                let changed = m.hdmi_in != hdmi;
                m.hdmi_in = hdmi;
                changed
            });
        }
        match frame {
            Ok(frame) => mailbox.put(frame),
            Err(e) => {
                tracing::warn!("video source {input}: {e}; retrying");
                std::thread::sleep(REOPEN_AFTER);
                match input.open(&options, &mailbox.pool) {
                    Ok(s) => source = s,
                    Err(e) => tracing::debug!("video source {input} still unavailable: {e}"),
                }
            }
        }
    }
}

/// How the encode thread picks the size it sends (the `degradation` setting).
struct EncodeSizing {
    ladder: Ladder,
    fps: u32,
}

fn encode_video(
    mut encoder: Box<dyn H264Encoder>,
    mut bitrate: u32,
    EncodeSizing { mut ladder, fps }: EncodeSizing,
    mailbox: &Mailbox,
    links: &MediaLinks,
    stop: &AtomicBool,
    health: &crate::service::Health,
) {
    tracing::info!(encoder = encoder.name(), "H.264 encoder ready");
    let mut last_dropped = 0;
    // Requests from the calls, coalesced here too: this thread knows when keyframes happen.
    let mut gate = KeyframeGate::new(KEYFRAME_MIN_INTERVAL);
    let mut keyframes_seen = links.control.borrow().keyframes;
    let mut scaler = Scaler::default();
    while !stop.load(Relaxed) {
        health.encoder_turned_at(Instant::now()); // service: an encode or a deliberate idle
        let Some(frame) = mailbox.take(Duration::from_millis(200)) else {
            continue;
        };
        let control = *links.control.borrow();
        if control.keyframes != keyframes_seen {
            keyframes_seen = control.keyframes;
            gate.request();
        }
        if control.viewers == 0 {
            frame.recycle(&mailbox.pool);
            continue; // nobody watches: save the CPU
        }
        let target = control.target_bps;
        if target != bitrate {
            encoder.set_bitrate(target);
            bitrate = target;
        }
        let now = Instant::now();
        let (size, change) = ladder.update(target, (frame.width, frame.height), fps, now);
        if let Some(c) = change {
            tracing::info!(
                target_kbps = c.target_bps / 1000,
                "sending {}x{} instead of {}x{} (degradation = balanced)",
                c.to.0,
                c.to.1,
                c.from.0,
                c.from.1
            );
        }
        let frame = if size == (frame.width, frame.height) {
            frame
        } else {
            match scaler.scale(&frame, size.0, size.1, &mailbox.pool) {
                Ok(scaled) => {
                    frame.recycle(&mailbox.pool);
                    scaled
                }
                Err(e) => {
                    tracing::warn!("cannot scale the picture: {e}; sending it as it is");
                    frame
                }
            }
        };
        let sent_size = (frame.width, frame.height);
        let force = gate.poll_force(now);
        let result = encoder.encode(&frame, force);
        frame.recycle(&mailbox.pool);
        match result {
            Ok(Some(encoded)) => {
                if encoded.keyframe {
                    gate.keyframe_sent(now);
                }
                let _ = links.video.send(Arc::new(EncodedVideo {
                    data: encoded.data.into(),
                    keyframe: encoded.keyframe,
                    pts: encoded.pts,
                    captured_at: encoded.captured_at,
                    size: sent_size,
                }));
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("{e}"),
        }
        let dropped = mailbox.dropped();
        if dropped > last_dropped + 30 {
            tracing::warn!(dropped, "the encoder cannot keep up; frames are skipped");
            last_dropped = dropped;
        }
    }
}

#[cfg(test)]
mod hdmi_status_tests {
    use super::*;

    #[test]
    fn capture_states_map_to_what_the_screen_shows() {
        let picture = InputState::Picture {
            width: 1920,
            height: 1080,
            fps_x100: 5994,
        };
        assert_eq!(hdmi_status(&picture).label(), "1920x1080@59.94");
        assert_eq!(hdmi_status(&InputState::NoSignal), HdmiIn::NoSignal);
        assert_eq!(hdmi_status(&InputState::NoDevice), HdmiIn::NoDevice);
    }
}
