//! The thin I/O pump around the call core: it owns the UDP sockets (following the machine's
//! addresses), the timer and the channels, feeds each input to `Calls` with the time, and
//! carries its outputs out. No call logic lives here (that is `crate::calls`, tested without
//! sockets).

pub mod tcp;
pub mod tls;
pub mod udp;

use crate::calls::{
    Calls, CallsStatus, Datagram, EncoderControl, Output, RemoteAudioPacket, RemoteVideoPacket,
};
use crate::display::{EncoderStatus, Participant, Quality, StatusModel};
use crate::media::{EncodedAudio, EncodedVideo};
use crate::signaling::{Outgoing, SignalEvent};
use std::net::SocketAddr;
use std::sync::mpsc::TrySendError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;
use udp::Sockets;

/// Where the pump reads its inputs and sends what the core decides.
pub struct Wiring {
    pub signal_in: mpsc::Receiver<SignalEvent>,
    pub signal_out: mpsc::Sender<Outgoing>,
    /// What the sockets receive.
    pub udp_in: mpsc::Receiver<Datagram>,
    pub video: broadcast::Receiver<Arc<EncodedVideo>>,
    pub audio: broadcast::Receiver<Arc<EncodedAudio>>,
    /// New (min, max) video bitrate bounds from the settings page.
    pub limits: watch::Receiver<(u32, u32)>,
    pub encoder: watch::Sender<EncoderControl>,
    pub remote_audio: mpsc::Sender<RemoteAudioPacket>,
    /// The room display's decoder. A frame it has no room for
    /// is dropped and the sender asked for a keyframe (the decoder starts again from it).
    pub remote_video: std::sync::mpsc::SyncSender<RemoteVideoPacket>,
    /// What the room display shows of each peer's videos (the call view sets it).
    pub view: watch::Receiver<crate::pipeline::call_view::ViewWishes>,
    /// The recording of what people send (`--record-remote`): a copy of their media, never
    /// waited for.
    pub record: Option<crate::record::remote::Tap>,
    pub status: watch::Sender<StatusModel>,
    /// The H.264 encoder in use, for the status (the media threads set it).
    pub encoder_name: Arc<Mutex<&'static str>>,
}

/// How often the machine's addresses are looked at (getifaddrs: a few microseconds). Within
/// this an address change reaches the calls, well inside ICE's 30 s before a call is given up.
const ADDRESS_POLL: Duration = Duration::from_secs(2);

/// Runs the calls until `stop`, then closes them.
pub async fn run(mut calls: Calls, mut sockets: Sockets, mut io: Wiring, stop: CancellationToken) {
    let (stun_tx, mut stun_rx) = mpsc::channel::<SocketAddr>(4);
    let (turn_tx, mut turn_rx) = mpsc::channel::<(String, Vec<SocketAddr>)>(8);
    let (mut streams, mut tcp_rx) = tcp::Streams::new();
    let mut addresses = tokio::time::interval(ADDRESS_POLL);
    addresses.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let deadline = calls.poll_timeout();
        tokio::select! {
            _ = stop.cancelled() => break,
            ev = io.signal_in.recv() => match ev {
                Some(ev) => calls.handle_signal(ev, Instant::now()),
                None => break,
            },
            Some(d) = io.udp_in.recv() => calls.handle_datagram(&d, Instant::now()),
            Some(server) = stun_rx.recv() => calls.handle_stun_server(server, Instant::now()),
            Some((url, addrs)) = turn_rx.recv() => calls.handle_turn_lookup(&url, addrs, Instant::now()),
            Some((conn, ev)) = tcp_rx.recv() => calls.handle_tcp(conn, ev, Instant::now()),
            frame = io.video.recv() => match frame {
                Ok(f) => calls.send_video(&f, Instant::now()),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!("the pump fell {n} video frames behind; asking for a keyframe");
                    calls.video_frames_lost(Instant::now());
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            frame = io.audio.recv() => match frame {
                Ok(f) => calls.send_audio(&f, Instant::now()),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = tokio::time::sleep_until(deadline.into()) => calls.handle_timeout(Instant::now()),
            _ = addresses.tick() => {
                if sockets.refresh().await {
                    calls.set_local_addrs(sockets.local_addrs(), Instant::now());
                }
            }
            Ok(()) = io.limits.changed() => {
                let (min_bps, max_bps) = *io.limits.borrow_and_update();
                calls.set_bitrate_bounds(min_bps, max_bps, Instant::now());
            }
            Ok(()) = io.view.changed() => {
                let wishes = io.view.borrow_and_update().clone();
                calls.set_view(&wishes, Instant::now());
            }
        }
        let lookups = Lookups {
            stun: &stun_tx,
            turn: &turn_tx,
        };
        carry_out(&mut calls, &sockets, &mut streams, &mut io, &lookups);
    }
    calls.close(Instant::now());
    let lookups = Lookups {
        stun: &stun_tx,
        turn: &turn_tx,
    };
    carry_out(&mut calls, &sockets, &mut streams, &mut io, &lookups);
    // Let the TURN servers hear the allocations deleted before the streams go.
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Where resolved names go back to the core.
struct Lookups<'a> {
    stun: &'a mpsc::Sender<SocketAddr>,
    turn: &'a mpsc::Sender<(String, Vec<SocketAddr>)>,
}

fn carry_out(
    calls: &mut Calls,
    sockets: &Sockets,
    streams: &mut tcp::Streams,
    io: &mut Wiring,
    lookups: &Lookups,
) {
    while let Some(out) = calls.poll_output() {
        match out {
            // UDP send on loopback or a LAN does not block for long; a full buffer drops.
            Output::Transmit(t) => sockets.send(t.source, t.destination, &t.contents),
            Output::Signal(m) => {
                if io.signal_out.try_send(Outgoing::Message(m)).is_err() {
                    tracing::debug!("signaling is down; a message to a peer is lost");
                }
            }
            Output::MediaKey { to, key } => {
                if io
                    .signal_out
                    .try_send(Outgoing::MediaKey { to, key })
                    .is_err()
                {
                    tracing::warn!("signaling is down; a frame key for a peer is lost");
                }
            }
            Output::LookUpStun { host, port } => look_up_stun(host, port, lookups.stun.clone()),
            Output::LookUpTurn { url, host, port } => {
                look_up_turn(url, host, port, lookups.turn.clone());
            }
            Output::Tcp(c) => streams.command(c),
            Output::Encoder(c) => {
                io.encoder.send_replace(c);
            }
            Output::Status(s) => publish_status(&s, io),
            Output::RemoteAudio(p) => {
                if let Some(tap) = &mut io.record {
                    tap.audio(&p);
                }
                let _ = io.remote_audio.try_send(p);
            }
            Output::RemoteVideo(p) => {
                // The recording lost a frame: it waits for a keyframe, asked for here.
                if let Some((peer, track)) = io.record.as_mut().and_then(|tap| tap.video(&p)) {
                    calls.ask_for_keyframe(&peer, &track, Instant::now());
                }
                let sent = io.remote_video.try_send(p);
                if let Err(TrySendError::Full(RemoteVideoPacket::Frame(frame))) = sent {
                    calls.remote_video_lost(&frame.peer, &frame.track, Instant::now());
                }
            }
        }
    }
}

/// Resolves the STUN server off the pump's loop (DNS may hang); the address comes back on
/// `found` and goes to the core.
fn look_up_stun(host: String, port: u16, found: mpsc::Sender<SocketAddr>) {
    tokio::spawn(async move {
        let lookup = tokio::time::timeout(
            Duration::from_secs(3),
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await;
        match lookup {
            Ok(Ok(mut addrs)) => {
                if let Some(server) = addrs.find(SocketAddr::is_ipv4) {
                    let _ = found.send(server).await;
                }
            }
            _ => tracing::info!(%host, "STUN server not found; offering host candidates only"),
        }
    });
}

/// Resolves a TURN server to all its addresses (IPv4 and IPv6: the core makes an allocation
/// per family it can reach); none when it cannot be found.
fn look_up_turn(
    url: String,
    host: String,
    port: u16,
    found: mpsc::Sender<(String, Vec<SocketAddr>)>,
) {
    tokio::spawn(async move {
        let lookup = tokio::time::timeout(
            Duration::from_secs(3),
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await;
        let mut addrs: Vec<SocketAddr> = match lookup {
            Ok(Ok(addrs)) => addrs.collect(),
            _ => Vec::new(),
        };
        addrs.sort();
        addrs.dedup();
        let _ = found.send((url, addrs)).await;
    });
}

/// The calls' status into the model of the HDMI-out screen and the settings page.
fn publish_status(s: &CallsStatus, io: &Wiring) {
    let participants: Vec<Participant> = s
        .peers
        .iter()
        .map(|p| Participant {
            name: p.name.clone(),
            state: p.state,
            quality: Quality::from_rtt(p.rtt),
        })
        .collect();
    let encoder = (s.viewers > 0).then(|| EncoderStatus {
        name: (*io
            .encoder_name
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
        .into(),
        kbps: s.kbps,
        fps: s.fps,
        size: s.size,
    });
    io.status.send_if_modified(|m| {
        let changed = m.participants != participants
            || m.encoder != encoder
            || m.signaling != s.signaling
            || m.safety_code != s.safety_code;
        m.safety_code.clone_from(&s.safety_code);
        m.participants = participants;
        m.encoder = encoder;
        if m.relay != s.relay {
            tracing::info!("relay (TURN): {}", s.relay.label());
        }
        let changed = changed || m.relay != s.relay;
        m.signaling = s.signaling;
        m.relay = s.relay.clone();
        changed
    });
}
