//! The media pipeline: capture and encode threads feeding the peer driver, and the playout
//! thread feeding the room speaker.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// One encoded video frame, shared by every viewer (encode once, send N times).
#[derive(Debug)]
pub struct EncodedVideo {
    /// Annex B, SPS and PPS in front of every IDR.
    pub data: Arc<[u8]>,
    pub keyframe: bool,
    pub pts: Duration,
    pub captured_at: Instant,
}

/// One 20 ms Opus packet of room audio.
#[derive(Debug)]
pub struct EncodedAudio {
    pub data: Arc<[u8]>,
    /// Position on the room audio's sample clock.
    pub pts: Duration,
    pub captured_at: Instant,
}

use crate::config::Settings;
use crate::display::{HdmiIn, SignalingState, StatusModel, StatusScreen};
use crate::fanout::KeyframeGate;
use crate::media::sink::AudioOutput;
use crate::media::{
    AudioInput, AudioSink, AudioSource, FramePool, H264Encoder, OpenH264Config, OpenH264Encoder,
    OpusEncoder, RemoteAudio, VideoFrame, VideoInput, VideoOptions, VideoSource, AUDIO_FRAME,
};
use crate::peer::driver::{Driver, DriverConfig, MediaLinks, RemoteAudioPacket};
use crate::peer::udp;
use crate::signaling::{self, SignalingConfig};
use anyhow::Context;
use roombox_protocol::RoomName;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::Relaxed};
use std::sync::{Condvar, Mutex};
use std::thread::JoinHandle;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// Keyframes on request at most this often, however many viewers ask.
const KEYFRAME_MIN_INTERVAL: Duration = Duration::from_millis(300);
/// A device that failed is opened again after this long.
const REOPEN_AFTER: Duration = Duration::from_secs(1);
const OPUS_BPS: u32 = 48_000;

/// Runs the box until `shutdown` resolves: capture, encode, the peers and the speaker.
pub async fn run_box(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let video_in: VideoInput = settings.video.parse().context("video")?;
    let audio_in: AudioInput = settings.audio_in.parse().context("audio_in")?;
    let audio_out: AudioOutput = settings.audio_out.parse().context("audio_out")?;
    install_crypto_provider();

    let (video_tx, _) = broadcast::channel(4);
    let (audio_tx, _) = broadcast::channel(16);
    let (remote_tx, remote_rx) = mpsc::channel(512);
    let links = MediaLinks {
        video: video_tx,
        audio: audio_tx,
        keyframes: Arc::new(Mutex::new(KeyframeGate::new(KEYFRAME_MIN_INTERVAL))),
        target_bps: Arc::new(AtomicU32::new(settings.max_kbps * 1000)),
        viewers: Arc::new(AtomicUsize::new(0)),
        remote_audio: remote_tx,
    };
    let stop = Arc::new(AtomicBool::new(false));
    // service: the encoder and the driver bump this; the watchdog is petted only while both turn.
    let health = Arc::new(crate::service::Health::new(Instant::now()));

    let mailbox = Arc::new(Mailbox::default());
    // Open the devices up front, so a wrong setting fails at start with its name.
    let video_options = VideoOptions {
        width: settings.width,
        height: settings.height,
        fps: settings.fps,
        box_name: settings.name.trim().to_owned(),
    };
    let source = video_in
        .open(&video_options, &mailbox.pool)
        .with_context(|| format!("video source {video_in}"))?;
    tracing::info!("video: {} -> openh264", source.describe());
    let mic = audio_in
        .open()
        .with_context(|| format!("audio input {audio_in}"))?;
    let speaker = audio_out
        .open()
        .with_context(|| format!("audio output {audio_out}"))?;

    let mut threads = vec![
        spawn("capture", {
            let (mailbox, stop) = (mailbox.clone(), stop.clone());
            let spec = (video_in.clone(), video_options.clone());
            move || capture_video(source, spec, &mailbox, &stop)
        }),
        spawn("encode", {
            let (mailbox, stop, links, health) =
                (mailbox.clone(), stop.clone(), links.clone(), health.clone());
            let config = OpenH264Config {
                fps: settings.fps,
                bitrate_bps: settings.max_kbps * 1000,
                ..OpenH264Config::default()
            };
            move || encode_video(config, &mailbox, &links, &stop, &health)
        }),
        spawn("playout", {
            let stop = stop.clone();
            let paced_by_device = matches!(audio_out, AudioOutput::Alsa(_));
            move || play_remote_audio(speaker, audio_out, paced_by_device, remote_rx, &stop)
        }),
    ];
    if let Some(mic) = mic {
        let (stop, audio) = (stop.clone(), links.audio.clone());
        threads.push(spawn("audio-in", move || {
            capture_audio(mic, audio_in, &audio, &stop)
        }));
    }

    let ips = udp::candidate_addresses(settings.ice_loopback);
    anyhow::ensure!(
        !ips.is_empty(),
        "no network address to offer peers (no IPv4 interface up; --ice-loopback for tests)"
    );
    let (sockets, udp_rx) = udp::bind_all(&ips).await.context("binding UDP sockets")?;

    // The HDMI-out status screen: idle without a display, redrawn when the model changes.
    let (status_tx, status_rx) = tokio::sync::watch::channel(StatusModel {
        room: settings.room.clone(),
        box_name: settings.name.trim().to_owned(),
        signaling: SignalingState::Reconnecting,
        hdmi_in: match video_in {
            VideoInput::Test => {
                HdmiIn::signal(settings.width, settings.height, settings.fps.into())
            }
            // Real HDMI state comes with V4L2 capture (DV timings, source-change events).
            _ => HdmiIn::NoDevice,
        },
        ..StatusModel::default()
    });
    let screen = StatusScreen::start(status_rx);

    let cancel = CancellationToken::new();
    let (events_tx, events_rx) = mpsc::channel(64);
    let (out_tx, out_rx) = mpsc::channel(256);
    let (stun_tx, stun_rx) = mpsc::channel(4);
    let signaling_config = SignalingConfig {
        url: settings.signal_url.clone(),
        room: RoomName::parse(&settings.room).context("room")?,
        name: settings.name.trim().to_owned(),
    };
    let signaling = tokio::spawn(signaling::run(
        signaling_config,
        events_tx,
        out_rx,
        cancel.clone(),
    ));
    let peers = links.viewers.clone(); // service: for systemd's STATUS line
    let driver = Driver::new(
        DriverConfig {
            min_bps: settings.min_kbps * 1000,
            max_bps: settings.max_kbps * 1000,
        },
        sockets,
        links,
        out_tx,
        stun_tx,
        status_tx,
    );
    let driver = driver.run(events_rx, udp_rx, stun_rx, cancel.clone());
    // service: the driver counts as turning each time it is polled.
    let driving = tokio::spawn(health.clone().track_driver(driver));
    // service: READY=1 once encoder and driver have turned, STATUS=, WATCHDOG=1 while healthy.
    let supervise = crate::service::supervise(health, settings.room.clone(), peers, cancel.clone());
    tokio::spawn(supervise);

    shutdown.await;
    tracing::info!("stopping");
    crate::service::notify_stopping();
    cancel.cancel();
    let _ = driving.await;
    let _ = signaling.await;
    stop.store(true, Relaxed);
    mailbox.wake();
    for t in threads {
        let _ = t.join();
    }
    // The driver held the model's sender; with it gone the screen gives the display back.
    let _ = screen.join();
    Ok(())
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

/// The latest captured frame. Capture never waits for the encoder: a frame the encoder has
/// not taken yet is replaced (and counted), so latency never queues up.
#[derive(Default)]
struct Mailbox {
    slot: Mutex<(Option<VideoFrame>, u64)>,
    ready: Condvar,
    /// Frame buffers go back here once encoded or replaced, so capture stops allocating.
    pool: FramePool,
}

impl Mailbox {
    fn put(&self, frame: VideoFrame) {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = slot.0.replace(frame) {
            slot.1 += 1;
            old.recycle(&self.pool);
        }
        self.ready.notify_one();
    }

    fn take(&self, wait: Duration) -> Option<VideoFrame> {
        let slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        let (mut slot, _) = self
            .ready
            .wait_timeout_while(slot, wait, |s| s.0.is_none())
            .unwrap_or_else(|p| p.into_inner());
        slot.0.take()
    }

    fn dropped(&self) -> u64 {
        self.slot.lock().unwrap_or_else(|p| p.into_inner()).1
    }

    fn wake(&self) {
        self.ready.notify_all();
    }
}

fn capture_video(
    mut source: Box<dyn VideoSource>,
    (input, options): (VideoInput, VideoOptions),
    mailbox: &Mailbox,
    stop: &AtomicBool,
) {
    while !stop.load(Relaxed) {
        match source.next_frame() {
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

fn encode_video(
    config: OpenH264Config,
    mailbox: &Mailbox,
    links: &MediaLinks,
    stop: &AtomicBool,
    health: &crate::service::Health,
) {
    let mut encoder = match OpenH264Encoder::new(config) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!("cannot start the H.264 encoder: {e}");
            return;
        }
    };
    tracing::info!(encoder = encoder.name(), "H.264 encoder ready");
    let mut bitrate = config.bitrate_bps;
    let mut last_dropped = 0;
    while !stop.load(Relaxed) {
        health.encoder_turned_at(Instant::now()); // service: an encode or a deliberate idle
        let Some(frame) = mailbox.take(Duration::from_millis(200)) else {
            continue;
        };
        if links.viewers.load(Relaxed) == 0 {
            frame.recycle(&mailbox.pool);
            continue; // nobody watches: save the CPU
        }
        let target = links.target_bps.load(Relaxed);
        if target != bitrate {
            encoder.set_bitrate(target);
            bitrate = target;
        }
        let now = Instant::now();
        let force = links
            .keyframes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .poll_force(now);
        let result = encoder.encode(&frame, force);
        frame.recycle(&mailbox.pool);
        match result {
            Ok(Some(encoded)) => {
                if encoded.keyframe {
                    links
                        .keyframes
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .keyframe_sent(now);
                }
                let _ = links.video.send(Arc::new(EncodedVideo {
                    data: encoded.data.into(),
                    keyframe: encoded.keyframe,
                    pts: encoded.pts,
                    captured_at: encoded.captured_at,
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

fn capture_audio(
    mut mic: Box<dyn AudioSource>,
    input: AudioInput,
    out: &broadcast::Sender<Arc<EncodedAudio>>,
    stop: &AtomicBool,
) {
    let mut opus = match OpusEncoder::new(OPUS_BPS) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!("cannot start the Opus encoder: {e}");
            return;
        }
    };
    let mut pcm = [0i16; AUDIO_FRAME];
    let mut frames: u64 = 0;
    while !stop.load(Relaxed) {
        if let Err(e) = mic.read_frame(&mut pcm) {
            tracing::warn!("audio input {input}: {e}; retrying");
            std::thread::sleep(REOPEN_AFTER);
            match input.open() {
                Ok(Some(m)) => mic = m,
                Ok(None) => return,
                Err(e) => tracing::debug!("audio input {input} still unavailable: {e}"),
            }
            continue;
        }
        let captured_at = Instant::now();
        match opus.encode(&pcm) {
            Ok(packet) => {
                let _ = out.send(Arc::new(EncodedAudio {
                    data: packet.into(),
                    pts: Duration::from_millis(20 * frames),
                    captured_at,
                }));
            }
            Err(e) => tracing::warn!("Opus: {e}"),
        }
        frames += 1;
    }
}

/// Mixes the remote voices every 20 ms into the speaker. ALSA's blocking write sets the pace;
/// files and `none` are paced here on an absolute schedule.
fn play_remote_audio(
    mut sink: Box<dyn AudioSink>,
    output: AudioOutput,
    paced_by_device: bool,
    mut packets: mpsc::Receiver<RemoteAudioPacket>,
    stop: &AtomicBool,
) {
    let mut voices = RemoteAudio::new();
    let mut mixed = [0i16; AUDIO_FRAME];
    let start = Instant::now();
    let mut tick: u32 = 0;
    while !stop.load(Relaxed) {
        while let Ok(p) = packets.try_recv() {
            match p {
                RemoteAudioPacket::Packet {
                    peer,
                    seq,
                    payload,
                    at,
                } => {
                    if let Err(e) = voices.push_packet(&peer, seq, &payload, at) {
                        tracing::debug!(%peer, "undecodable audio: {e}");
                    }
                }
                RemoteAudioPacket::PeerGone(peer) => voices.remove_peer(&peer),
            }
        }
        voices.pull_mixed(Instant::now(), &mut mixed);
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
}
