//! The one task that drives every session: UDP, timers, signaling and outgoing media.
//!
//! Contract (str0m's single-mutation invariant, kept by `Session`): each turn waits for the
//! first of a datagram, the earliest session deadline, a signaling event, an encoded frame or
//! the status tick; applies that one input; then flushes what the sessions queued.

use super::session::{Notice, Session};
use super::stun;
use super::udp::Datagram;
use crate::display::{EncoderStatus, Participant, PeerState, Quality, SignalingState, StatusModel};
use crate::fanout::{BitratePolicy, KeyframeGate};
use crate::pipeline::{EncodedAudio, EncodedVideo};
use crate::signaling::SignalEvent;
use roombox_protocol::{ClientMessage, IceServer, PeerId, Relay, RelayKind};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use str0m::Candidate;
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

/// A session whose ICE stays disconnected this long is given up (the browser restarts ICE
/// well within it when it can).
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// What the media pipeline and the driver share.
#[derive(Clone)]
pub struct MediaLinks {
    pub video: broadcast::Sender<Arc<EncodedVideo>>,
    pub audio: broadcast::Sender<Arc<EncodedAudio>>,
    pub keyframes: Arc<Mutex<KeyframeGate>>,
    pub target_bps: Arc<AtomicU32>,
    /// Connected viewers; the encoder idles at zero.
    pub viewers: Arc<AtomicUsize>,
    /// Opus packets from each peer, for the room speaker.
    pub remote_audio: mpsc::Sender<RemoteAudioPacket>,
    /// The H.264 encoder in use ("openh264", "v4l2m2m"), for the status.
    pub encoder_name: Arc<std::sync::Mutex<&'static str>>,
    /// The status feed, where the capture thread reports the HDMI input's state.
    pub status: watch::Sender<StatusModel>,
}

#[derive(Debug)]
pub enum RemoteAudioPacket {
    Packet {
        peer: String,
        seq: u16,
        payload: Arc<[u8]>,
        at: Instant,
    },
    PeerGone(String),
}

pub struct DriverConfig {
    pub min_bps: u32,
    pub max_bps: u32,
    /// New (min, max) video bitrate bounds from the settings page, applied live.
    pub limits: watch::Receiver<(u32, u32)>,
}

struct Peer {
    session: Session,
    disconnected_since: Option<Instant>,
}

pub struct Driver {
    config: DriverConfig,
    my_id: Option<PeerId>,
    peers: HashMap<PeerId, Peer>,
    sockets: Vec<Arc<UdpSocket>>,
    host_candidates: Vec<Candidate>,
    srflx_candidates: Vec<Candidate>,
    stun_pending: Vec<(SocketAddr, SocketAddr, stun::TransactionId)>,
    bitrate: BitratePolicy,
    media: MediaLinks,
    signal_out: mpsc::Sender<ClientMessage>,
    stun_found: mpsc::Sender<SocketAddr>,
    frames_sent: u64,
    /// Frames per second sent over the last status interval, for the status page.
    last_fps: u32,
    /// Display names from the signaling server, for the status screen.
    names: HashMap<PeerId, String>,
    status: watch::Sender<StatusModel>,
    status_dirty: bool,
}

impl Driver {
    pub fn new(
        config: DriverConfig,
        sockets: Vec<Arc<UdpSocket>>,
        media: MediaLinks,
        signal_out: mpsc::Sender<ClientMessage>,
        stun_found: mpsc::Sender<SocketAddr>,
        status: watch::Sender<StatusModel>,
    ) -> Driver {
        let host_candidates = sockets
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .filter_map(|addr| Candidate::host(addr, "udp").ok())
            .collect();
        Driver {
            bitrate: BitratePolicy::new(config.min_bps, config.max_bps),
            config,
            my_id: None,
            peers: HashMap::new(),
            sockets,
            host_candidates,
            srflx_candidates: Vec::new(),
            stun_pending: Vec::new(),
            media,
            signal_out,
            stun_found,
            frames_sent: 0,
            last_fps: 0,
            names: HashMap::new(),
            status,
            status_dirty: true,
        }
    }

    pub async fn run(
        mut self,
        mut signal_in: mpsc::Receiver<SignalEvent>,
        mut udp_in: mpsc::Receiver<Datagram>,
        mut stun_found: mpsc::Receiver<SocketAddr>,
        stop: CancellationToken,
    ) {
        let mut video = self.media.video.subscribe();
        let mut audio = self.media.audio.subscribe();
        let mut status = tokio::time::interval(STATUS_EVERY);
        let mut limits = self.config.limits.clone();
        loop {
            let deadline = self
                .peers
                .values()
                .map(|p| p.session.next_timeout())
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            tokio::select! {
                _ = stop.cancelled() => break,
                ev = signal_in.recv() => match ev {
                    Some(ev) => self.handle_signal(ev),
                    None => break,
                },
                Some(d) = udp_in.recv() => self.handle_datagram(d),
                Some(server) = stun_found.recv() => self.ask_stun(server),
                frame = video.recv() => match frame {
                    Ok(f) => self.send_video(&f),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::debug!("driver fell {n} video frames behind; asking for a keyframe");
                        self.request_keyframe();
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                frame = audio.recv() => match frame {
                    Ok(f) => self.send_audio(&f),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tokio::time::sleep_until(deadline.into()) => {
                    let now = Instant::now();
                    for p in self.peers.values_mut() {
                        p.session.handle_timeout(now);
                    }
                }
                Ok(()) = limits.changed() => {
                    let (min_bps, max_bps) = *limits.borrow_and_update();
                    tracing::info!(min_kbps = min_bps / 1000, max_kbps = max_bps / 1000, "new bitrate limits");
                    (self.config.min_bps, self.config.max_bps) = (min_bps, max_bps);
                    self.bitrate.set_limits(min_bps, max_bps);
                }
                _ = status.tick() => {
                    self.log_status();
                    self.last_fps = (self.frames_sent as f64 / STATUS_EVERY.as_secs_f64()).round() as u32;
                    self.frames_sent = 0;
                    self.status_dirty = true;
                }
            }
            self.flush();
        }
        for p in self.peers.values_mut() {
            p.session.close();
        }
        self.flush();
    }

    fn handle_signal(&mut self, ev: SignalEvent) {
        let now = Instant::now();
        self.status_dirty = true;
        match ev {
            SignalEvent::Welcome(w) => {
                self.my_id = Some(w.id.clone());
                self.status
                    .send_modify(|m| m.signaling = SignalingState::Connected);
                self.names = w
                    .peers
                    .iter()
                    .map(|p| (p.id.clone(), p.name.clone()))
                    .collect();
                self.gather_srflx(&w.ice_servers);
                for info in w.peers {
                    let alive = self
                        .peers
                        .get(&info.id)
                        .is_some_and(|p| p.session.is_alive());
                    if alive {
                        continue; // a call that survived the signaling outage
                    }
                    tracing::info!(peer = %info.id, name = %info.name, "calling peer");
                    let mut session = self.new_session(info.id.clone(), None, now);
                    if let Err(e) = session.negotiate(now) {
                        tracing::warn!(peer = %info.id, "cannot offer: {e}");
                        continue;
                    }
                    self.insert(info.id, session);
                }
            }
            SignalEvent::PeerJoined(info) => {
                self.names.insert(info.id.clone(), info.name.clone());
                tracing::info!(peer = %info.id, name = %info.name, kind = ?info.kind, "peer joined");
            }
            SignalEvent::PeerLeft(id) => {
                self.names.remove(&id);
                tracing::info!(peer = %id, "peer left");
                self.remove(&id);
            }
            SignalEvent::Relay(relay) => self.handle_relay(relay, now),
            SignalEvent::LeftRoom => {
                self.my_id = None;
                self.names.clear();
                let ids: Vec<PeerId> = self.peers.keys().cloned().collect();
                tracing::info!(calls = ids.len(), "left the room; closing its calls");
                for id in ids {
                    self.remove(&id);
                }
                self.status
                    .send_modify(|m| m.signaling = SignalingState::Reconnecting);
            }
            SignalEvent::Disconnected => {
                self.status
                    .send_modify(|m| m.signaling = SignalingState::Reconnecting);
                tracing::info!(calls = self.peers.len(), "signaling down; calls carry on");
            }
        }
    }

    fn handle_relay(&mut self, relay: Relay, now: Instant) {
        let Some(from) = relay.from.clone() else {
            return;
        };
        let pc = relay
            .fields
            .get("pc")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        match relay.kind {
            RelayKind::Offer => {
                let Some(sdp) = relay.sdp_text() else { return };
                let same_call = self.peers.get(&from).is_some_and(|p| p.session.pc() == pc);
                if !same_call {
                    // A new connection from this peer (it joined, reloaded or started over).
                    let ours_pending = self
                        .peers
                        .get(&from)
                        .is_some_and(|p| !p.session.is_connected());
                    let polite = self.is_polite_to(&from);
                    if ours_pending && !polite {
                        return; // glare between two new connections: ours wins
                    }
                    self.remove(&from);
                    let session = self.new_session(from.clone(), Some(pc), now);
                    self.insert(from.clone(), session);
                }
                let peer = self.peers.get_mut(&from).expect("inserted above");
                if let Err(e) = peer.session.handle_offer(sdp, now) {
                    tracing::warn!(peer = %from, "refused offer: {e}");
                }
            }
            RelayKind::Answer => {
                let Some(sdp) = relay.sdp_text() else { return };
                if let Some(peer) = self.peers.get_mut(&from).filter(|p| p.session.pc() == pc) {
                    if let Err(e) = peer.session.handle_answer(sdp, now) {
                        tracing::warn!(peer = %from, "refused answer: {e}");
                    }
                }
            }
            RelayKind::IceCandidate => {
                let Some(peer) = self.peers.get_mut(&from) else {
                    return;
                };
                if peer.session.pc() != pc {
                    return; // for a connection that has been replaced
                }
                match relay.ice_candidate() {
                    Ok(c) => peer.session.handle_candidate(c, now),
                    Err(e) => tracing::debug!(peer = %from, "unreadable candidate: {e}"),
                }
            }
        }
    }

    fn handle_datagram(&mut self, d: Datagram) {
        let now = Instant::now();
        if stun::is_binding_response(&d.contents) {
            if let Some(i) = self.stun_pending.iter().position(|(server, local, txid)| {
                *server == d.source
                    && *local == d.destination
                    && stun::parse_binding_success(&d.contents, txid).is_some()
            }) {
                let (_, local, txid) = self.stun_pending.swap_remove(i);
                let mapped =
                    stun::parse_binding_success(&d.contents, &txid).expect("checked above");
                self.add_srflx(mapped, local, now);
                return;
            }
        }
        let target = self
            .peers
            .values_mut()
            .find(|p| p.session.accepts(d.source, d.destination, &d.contents));
        match target {
            Some(p) => p
                .session
                .handle_datagram(d.source, d.destination, &d.contents, now),
            None => tracing::trace!(source = %d.source, "datagram for no session"),
        }
    }

    fn send_video(&mut self, f: &EncodedVideo) {
        let now = Instant::now();
        self.frames_sent += 1;
        let mut held_back = false;
        for p in self.peers.values_mut() {
            held_back |= !p
                .session
                .write_video(&f.data, f.keyframe, f.pts, f.captured_at, now);
        }
        if held_back {
            self.request_keyframe();
        }
    }

    fn send_audio(&mut self, f: &EncodedAudio) {
        let now = Instant::now();
        for p in self.peers.values_mut() {
            p.session.write_audio(&f.data, f.pts, f.captured_at, now);
        }
    }

    /// Sends what every session queued, and acts on its notices.
    fn flush(&mut self) {
        let now = Instant::now();
        let mut dead = Vec::new();
        let mut keyframe = false;
        for (id, p) in self.peers.iter_mut() {
            while let Some(t) = p.session.poll_transmit() {
                if let Some(socket) = self
                    .sockets
                    .iter()
                    .find(|s| s.local_addr().ok() == Some(t.source))
                {
                    // UDP send on loopback or a LAN does not block for long; a full buffer drops.
                    if let Err(e) = socket.try_send_to(&t.contents, t.destination) {
                        tracing::trace!("UDP send to {}: {e}", t.destination);
                    }
                }
            }
            while let Some(relay) = p.session.poll_signal() {
                if self
                    .signal_out
                    .try_send(ClientMessage::Relay(relay))
                    .is_err()
                {
                    tracing::debug!(peer = %id, "signaling is down; a message to this peer is lost");
                }
            }
            while let Some(notice) = p.session.poll_notice() {
                match notice {
                    Notice::Connected => {
                        self.status_dirty = true;
                        tracing::info!(peer = %id, "media connected");
                        p.disconnected_since = None;
                        keyframe = true;
                    }
                    Notice::Disconnected => {
                        self.status_dirty = true;
                        tracing::info!(peer = %id, "ICE disconnected");
                        p.disconnected_since.get_or_insert(now);
                    }
                    Notice::KeyframeRequested => keyframe = true,
                    Notice::Estimate(bps) => self.bitrate.set_estimate(&id.0, bps),
                    Notice::Audio { seq, payload } => {
                        let packet = crate::peer::driver::RemoteAudioPacket::Packet {
                            peer: id.0.clone(),
                            seq,
                            payload,
                            at: now,
                        };
                        let _ = self.media.remote_audio.try_send(packet);
                    }
                }
            }
            let given_up = p
                .disconnected_since
                .is_some_and(|t| now.duration_since(t) > GIVE_UP_AFTER);
            if !p.session.is_alive() || given_up {
                dead.push(id.clone());
            }
        }
        for id in dead {
            tracing::info!(peer = %id, "call ended");
            self.remove(&id);
        }
        if keyframe {
            self.request_keyframe();
        }
        self.media
            .target_bps
            .store(self.bitrate.target_bps(), Relaxed);
        let viewers = self
            .peers
            .values()
            .filter(|p| p.session.is_connected())
            .count();
        self.media.viewers.store(viewers, Relaxed);
        if std::mem::take(&mut self.status_dirty) {
            self.publish_status(viewers);
        }
    }

    /// Updates the HDMI-out status screen's model (it redraws only if something changed).
    fn publish_status(&self, viewers: usize) {
        let mut participants: Vec<Participant> = self
            .peers
            .iter()
            .map(|(id, p)| Participant {
                name: self.names.get(id).cloned().unwrap_or_else(|| id.0.clone()),
                state: match (p.session.is_connected(), p.disconnected_since) {
                    (_, Some(_)) => PeerState::Reconnecting,
                    (true, None) => PeerState::Connected,
                    (false, None) => PeerState::Connecting,
                },
                quality: match p.session.rtt {
                    None => Quality::Unknown,
                    Some(rtt) if rtt < Duration::from_millis(150) => Quality::Good,
                    Some(rtt) if rtt < Duration::from_millis(400) => Quality::Fair,
                    Some(_) => Quality::Poor,
                },
            })
            .collect();
        participants.sort_by(|a, b| a.name.cmp(&b.name));
        let encoder = (viewers > 0).then(|| EncoderStatus {
            name: (*self.media.encoder_name.lock().expect("not poisoned")).into(),
            kbps: self.media.target_bps.load(Relaxed) / 1000,
            fps: self.last_fps,
        });
        self.status.send_if_modified(|m| {
            let changed = m.participants != participants || m.encoder != encoder;
            m.participants = participants;
            m.encoder = encoder;
            changed
        });
    }

    fn request_keyframe(&self) {
        self.media
            .keyframes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .request();
    }

    /// Perfect negotiation roles: the smaller id is polite (docs/protocol.md).
    fn is_polite_to(&self, peer: &PeerId) -> bool {
        self.my_id.as_ref().is_some_and(|me| me < peer)
    }

    fn new_session(&self, peer: PeerId, pc: Option<String>, now: Instant) -> Session {
        let polite = self.is_polite_to(&peer);
        let candidates: Vec<Candidate> = self
            .host_candidates
            .iter()
            .chain(&self.srflx_candidates)
            .cloned()
            .collect();
        let start = u64::from(self.config.max_bps.min(1_000_000).max(self.config.min_bps));
        Session::new(
            peer,
            pc,
            polite,
            &candidates,
            start,
            self.config.max_bps.into(),
            now,
        )
    }

    fn insert(&mut self, id: PeerId, session: Session) {
        self.peers.insert(
            id,
            Peer {
                session,
                disconnected_since: None,
            },
        );
    }

    fn remove(&mut self, id: &PeerId) {
        if let Some(mut p) = self.peers.remove(id) {
            p.session.close();
            self.bitrate.remove(&id.0);
            let _ = self
                .media
                .remote_audio
                .try_send(RemoteAudioPacket::PeerGone(id.0.clone()));
        }
    }

    /// Looks up the first STUN server off the driver's task (DNS may hang); the answer comes
    /// back on `stun_found`, and `ask_stun` then asks for each socket's public address.
    fn gather_srflx(&self, ice_servers: &[IceServer]) {
        let Some((host, port)) = ice_servers
            .iter()
            .flat_map(|s| &s.urls)
            .find_map(|u| stun::stun_host_port(u))
        else {
            return;
        };
        let found = self.stun_found.clone();
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

    fn ask_stun(&mut self, server: SocketAddr) {
        self.stun_pending.clear();
        for socket in &self.sockets {
            let Ok(local) = socket.local_addr() else {
                continue;
            };
            if local.ip().is_loopback() {
                continue;
            }
            let (txid, request) = stun::binding_request();
            if socket.try_send_to(&request, server).is_ok() {
                self.stun_pending.push((server, local, txid));
            }
        }
    }

    fn add_srflx(&mut self, mapped: SocketAddr, local: SocketAddr, now: Instant) {
        if mapped == local {
            return; // not behind a NAT: the host candidate says it all
        }
        let Ok(c) = Candidate::server_reflexive(mapped, local, "udp") else {
            return;
        };
        tracing::info!(%mapped, "server-reflexive candidate");
        self.srflx_candidates.push(c.clone());
        for p in self.peers.values_mut() {
            p.session.add_local_candidate(c.clone(), now);
        }
    }

    fn log_status(&self) {
        let peers: Vec<String> = self
            .peers
            .iter()
            .map(|(id, p)| {
                format!(
                    "{id}:{}{}{}",
                    if p.session.is_connected() {
                        "up"
                    } else {
                        "connecting"
                    },
                    p.session
                        .estimate_bps
                        .map(|b| format!(" bwe={}k", b / 1000))
                        .unwrap_or_default(),
                    p.session
                        .rtt
                        .map(|r| format!(" rtt={}ms", r.as_millis()))
                        .unwrap_or_default(),
                )
            })
            .collect();
        tracing::info!(
            peers = self.peers.len(),
            kbps = self.media.target_bps.load(Relaxed) / 1000,
            fps = self.frames_sent as f64 / STATUS_EVERY.as_secs_f64(),
            "status: [{}]",
            peers.join(", ")
        );
    }
}
