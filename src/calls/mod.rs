//! The call core, sans-IO: every session with the people in the room, STUN gathering, glare,
//! reaping, and what the one encoder should do for all of them.
//!
//! Inputs are values passed in with the current time (a signaling event, a datagram with its
//! local and remote address, an encoded frame, a STUN server's address, new bitrate bounds);
//! effects are [`Output`]s polled with [`Calls::poll_output`] (datagrams to send from a local
//! address, signaling messages, a STUN lookup, the encoder's control, the status, remote
//! audio). It owns no socket, reads no clock and spawns nothing; its randomness (connection
//! ids, STUN transaction ids) comes from a seed. `crate::pump` does the I/O.
//!
//! Contract (str0m's single-mutation invariant, kept by `Session`): each input is applied,
//! then everything the sessions queued is collected into outputs before the next input.

pub mod frame_keys;
pub mod session;
pub mod stun;
pub mod turn;
#[cfg(test)]
mod turn_tests;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod sim_tests;
#[cfg(any(test, feature = "web-client-peer"))]
pub mod web_client;

use crate::display::{PeerState, RelayState, SignalingState};
use crate::fanout::BitratePolicy;
use crate::media::{EncodedAudio, EncodedVideo, VideoKind};
use crate::signaling::SignalEvent;
use frame_keys::FrameKeys;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use roombox_protocol::{ClientMessage, IceServer, PeerId, Relay, RelayKind, ViewWish};
use roombox_seal::frame::SenderKey;
use roombox_seal::Refusal;
use session::{Notice, Session};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::Candidate;
use turn::{RelayOutput, Relays, TcpCommand, TcpEvent};

/// A session whose ICE stays disconnected this long is given up (the browser restarts ICE
/// well within it when it can).
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(30);
/// How often the status (frames per second sent) is summed up and logged.
pub const STATUS_EVERY: Duration = Duration::from_secs(5);
/// A keyframe asked of the encoder and not seen this long is asked for again.
const KEYFRAME_RETRY: Duration = Duration::from_millis(500);

/// One UDP datagram, with the local address it came in on or leaves from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
}

pub struct CallsConfig {
    pub min_bps: u32,
    pub max_bps: u32,
    /// The local addresses the pump has sockets on (host candidates; STUN is asked from each).
    pub local_addrs: Vec<SocketAddr>,
    /// Seeds connection ids and STUN transaction ids (tests replay a run from it).
    pub seed: u64,
}

/// What the one encoder should do for every viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EncoderControl {
    /// The video bitrate: the slowest viewer's share, within the bounds.
    pub target_bps: u32,
    /// Viewers with media connected; the encoder idles at zero.
    pub viewers: usize,
    /// Counts keyframe requests (coalesced): a higher number than last seen asks for one.
    pub keyframes: u64,
}

/// One participant as the status screen and settings page show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub name: String,
    pub state: PeerState,
    pub rtt: Option<Duration>,
}

/// The calls' part of the status model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallsStatus {
    pub signaling: SignalingState,
    /// Sorted by name.
    pub peers: Vec<PeerStatus>,
    /// Viewers with media connected.
    pub viewers: usize,
    /// The encoder's target, sampled each status interval (not each estimate: the screen
    /// would redraw for every wobble).
    pub kbps: u32,
    /// Frames per second sent over the last status interval.
    pub fps: u32,
    /// The size of the last picture sent.
    pub size: (u32, u32),
    pub relay: RelayState,
    /// The room's safety code (docs/protocol.md, "Safety code"), once the sealer has one.
    pub safety_code: Option<String>,
}

/// Opus from one peer, for the room speaker (and the recording of what people send, which
/// names the file after `name`), or word that the peer is gone.
#[derive(Debug)]
pub enum RemoteAudioPacket {
    Packet {
        peer: String,
        name: String,
        seq: u16,
        payload: Arc<[u8]>,
        at: Instant,
    },
    PeerGone(String),
}

/// One encoded picture a person sent: an H.264 access unit (Annex B), already out of its frame
/// encryption, of their camera or shared screen (`track`, a mid).
#[derive(Clone, Debug)]
pub struct RemoteFrame {
    pub peer: String,
    pub name: String,
    pub track: String,
    pub kind: VideoKind,
    pub annex_b: Arc<[u8]>,
    pub keyframe: bool,
    pub at: Instant,
}

/// What the room's display needs of the call: an H.264 access unit (Annex B) of a peer's
/// camera or shared screen (`track`), from a keyframe on; that a peer speaks; or that it is
/// gone.
#[derive(Debug)]
pub enum RemoteVideoPacket {
    Frame(RemoteFrame),
    /// The peer's voice was louder than [`SPEAKING_DBOV`] at `at`; sent at most every
    /// [`VOICE_EVERY`] a peer, so the display's queue is not filled with audio.
    Voice {
        peer: String,
        at: Instant,
    },
    PeerGone(String),
}

/// A peer's audio level (RFC 6464, in dBov) at or over this is speech: the threshold the room's
/// own microphone uses.
pub const SPEAKING_DBOV: i8 = -45;
pub const VOICE_EVERY: Duration = Duration::from_millis(200);

#[derive(Debug)]
pub enum Output {
    Transmit(Datagram),
    Signal(ClientMessage),
    /// Resolve this STUN server and pass its address to [`Calls::handle_stun_server`].
    LookUpStun {
        host: String,
        port: u16,
    },
    /// Resolve this TURN server (every address) and pass them to [`Calls::handle_turn_lookup`].
    LookUpTurn {
        url: String,
        host: String,
        port: u16,
    },
    /// Open, feed or close a stream to a TURN server; what happens to it comes back through
    /// [`Calls::handle_tcp`].
    Tcp(TcpCommand),
    /// The encoder's control changed.
    Encoder(EncoderControl),
    /// The status changed.
    Status(CallsStatus),
    RemoteAudio(RemoteAudioPacket),
    RemoteVideo(RemoteVideoPacket),
    /// A frame encryption key for one peer, to be sealed to it (never sent in clear).
    MediaKey {
        to: PeerId,
        key: SenderKey,
    },
}

struct Peer {
    session: Session,
    disconnected_since: Option<Instant>,
    /// When a `Voice` went out for this peer last.
    voice_sent_at: Option<Instant>,
}

pub struct Calls {
    config: CallsConfig,
    rng: StdRng,
    my_id: Option<PeerId>,
    /// Ordered, so every walk over the peers (and so the outputs) is the same for a seed.
    peers: BTreeMap<PeerId, Peer>,
    host_candidates: Vec<Candidate>,
    srflx_candidates: Vec<Candidate>,
    /// TURN allocations and their relayed candidates.
    relays: Relays,
    stun_pending: Vec<(SocketAddr, SocketAddr, stun::TransactionId)>,
    /// The STUN server's address once looked up: new local addresses ask it too.
    stun_server: Option<SocketAddr>,
    bitrate: BitratePolicy,
    control: EncoderControl,
    /// When the last keyframe request went out and no keyframe has come since.
    keyframe_asked: Option<Instant>,
    signaling: SignalingState,
    names: HashMap<PeerId, String>,
    /// Peers the sealer refused, shown until they leave.
    refused: BTreeMap<PeerId, Refusal>,
    frame_keys: FrameKeys,
    /// Frames from peers that did not open (no key yet, or altered), for the log.
    unopened: u64,
    safety_code: Option<String>,
    /// How much of each peer's videos (by track) the room's display shows.
    view: BTreeMap<String, BTreeMap<String, ViewWish>>,
    frames_sent: u64,
    last_fps: u32,
    sent_size: (u32, u32),
    status_kbps: u32,
    next_status: Instant,
    status: Option<CallsStatus>,
    outputs: VecDeque<Output>,
}

impl Calls {
    pub fn new(config: CallsConfig, now: Instant) -> Calls {
        let host_candidates = config
            .local_addrs
            .iter()
            .filter_map(|addr| Candidate::host(*addr, "udp").ok())
            .collect();
        let control = EncoderControl {
            target_bps: config.max_bps,
            ..EncoderControl::default()
        };
        Calls {
            relays: Relays::new(config.local_addrs.clone(), now),
            bitrate: BitratePolicy::new(config.min_bps, config.max_bps),
            rng: StdRng::seed_from_u64(config.seed),
            config,
            my_id: None,
            peers: BTreeMap::new(),
            host_candidates,
            srflx_candidates: Vec::new(),
            stun_pending: Vec::new(),
            stun_server: None,
            control,
            keyframe_asked: None,
            signaling: SignalingState::Reconnecting,
            names: HashMap::new(),
            refused: BTreeMap::new(),
            frame_keys: FrameKeys::default(),
            unopened: 0,
            safety_code: None,
            view: BTreeMap::new(),
            frames_sent: 0,
            last_fps: 0,
            sent_size: (0, 0),
            status_kbps: 0,
            next_status: now + STATUS_EVERY,
            status: None,
            outputs: VecDeque::new(),
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Calls::handle_timeout`] is due next.
    pub fn poll_timeout(&self) -> Instant {
        let sessions = self.peers.values().map(|p| p.session.next_timeout());
        let keyframe = self.keyframe_asked.map(|t| t + KEYFRAME_RETRY);
        sessions
            .chain(keyframe)
            .chain(self.relays.poll_timeout())
            .fold(self.next_status, Instant::min)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        for p in self.peers.values_mut() {
            if p.session.next_timeout() <= now {
                p.session.handle_timeout(now);
            }
        }
        if self.relays.poll_timeout().is_some_and(|t| t <= now) {
            self.relays.handle_timeout(now);
        }
        if now >= self.next_status {
            self.log_status();
            self.last_fps = (self.frames_sent as f64 / STATUS_EVERY.as_secs_f64()).round() as u32;
            self.frames_sent = 0;
            self.status_kbps = self.control.target_bps / 1000;
            self.next_status = now + STATUS_EVERY;
        }
        if self
            .keyframe_asked
            .is_some_and(|t| now >= t + KEYFRAME_RETRY)
        {
            // The encoder has not answered (it idled, or dropped the frame): ask again.
            self.keyframe_asked = None;
            if self.peers.values().any(|p| p.session.is_connected()) {
                self.request_keyframe(now);
            }
        }
        self.flush(now);
    }

    /// New (min, max) video bitrate bounds from the settings page, applied at once.
    pub fn set_bitrate_bounds(&mut self, min_bps: u32, max_bps: u32, now: Instant) {
        tracing::info!(
            min_kbps = min_bps / 1000,
            max_kbps = max_bps / 1000,
            "new bitrate limits"
        );
        (self.config.min_bps, self.config.max_bps) = (min_bps, max_bps);
        self.bitrate.set_limits(min_bps, max_bps);
        self.flush(now);
    }

    /// The room's display dropped a frame of `peer`'s video (it fell behind): its decoder
    /// needs a keyframe, as after a gap on the network.
    pub fn remote_video_lost(&mut self, peer: &str, track: &str, now: Instant) {
        if let Some(p) = self.peers.get_mut(&PeerId(peer.into())) {
            p.session.restart_remote_video(track, now);
        }
        self.flush(now);
    }

    /// The recording of what people send lost a frame of a peer's video `track` (its queue
    /// was full): the peer is asked for a keyframe, and the display's frames carry on.
    pub fn ask_for_keyframe(&mut self, peer: &str, track: &str, now: Instant) {
        if let Some(p) = self.peers.get_mut(&PeerId(peer.into())) {
            p.session.ask_for_keyframe(track, now);
        }
        self.flush(now);
    }

    /// What the room's display shows of each peer's videos, by (peer, track): each peer is
    /// told its part when it changes (so it sends no more than that).
    pub fn set_view(&mut self, wishes: &BTreeMap<(String, String), ViewWish>, now: Instant) {
        self.view.clear();
        for ((peer, track), wish) in wishes {
            self.view
                .entry(peer.clone())
                .or_default()
                .insert(track.clone(), *wish);
        }
        for (id, p) in self.peers.iter_mut() {
            if let Some(wishes) = self.view.get(&id.0) {
                p.session.show_videos(wishes);
            }
        }
        self.flush(now);
    }

    pub fn handle_signal(&mut self, ev: SignalEvent, now: Instant) {
        match ev {
            SignalEvent::Welcome(w) => {
                self.my_id = Some(w.id.clone());
                self.signaling = SignalingState::Connected;
                // Back after an outage: the frame key again, for whoever is still here.
                let keys = self.frame_keys.resend();
                self.send_media_keys(keys);
                self.names = w
                    .peers
                    .iter()
                    .map(|p| (p.id.clone(), p.name.clone()))
                    .collect();
                self.gather_srflx(&w.ice_servers);
                self.relays.set_servers(&w.ice_servers, now);
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
                self.refused.remove(&id);
                let keys = self.frame_keys.peer_gone(&id, now);
                self.send_media_keys(keys);
                tracing::info!(peer = %id, "peer left");
                self.remove(&id);
            }
            SignalEvent::Relay(relay) => self.handle_relay(relay, now),
            SignalEvent::IceServers(servers) => {
                tracing::debug!("renewed TURN credentials");
                self.relays.set_servers(&servers, now);
            }
            SignalEvent::LeftRoom => {
                self.my_id = None;
                self.names.clear();
                self.refused.clear();
                self.frame_keys.clear();
                let ids: Vec<PeerId> = self.peers.keys().cloned().collect();
                tracing::info!(calls = ids.len(), "left the room; closing its calls");
                for id in ids {
                    self.remove(&id);
                }
                self.signaling = SignalingState::Reconnecting;
            }
            SignalEvent::PeerNamed(info) => {
                tracing::info!(peer = %info.id, name = %info.name, kind = ?info.kind, "peer named (sealed)");
                // Its pair's keys are agreed: it gets the box's frame key, moved on by ratchet.
                let keys = self.frame_keys.peer_ready(&info.id);
                self.send_media_keys(keys);
                self.names.insert(info.id, info.name);
            }
            SignalEvent::PeerRefused { id, refusal } => {
                tracing::warn!(peer = %id, "no call with a refused peer: {}", refusal.reason());
                self.remove(&id);
                let keys = self.frame_keys.peer_gone(&id, now);
                self.send_media_keys(keys);
                self.refused.insert(id, refusal);
            }
            SignalEvent::PeerMediaKey { id, key } => {
                tracing::debug!(peer = %id, kid = key.kid, "a frame key from a peer");
                self.frame_keys.peer_key(&id, key);
            }
            SignalEvent::SafetyCode(code) => {
                // Public (a hash of public keys): people compare it with their pages'.
                tracing::info!("room safety code: {code}");
                self.safety_code = Some(code);
            }
            SignalEvent::Disconnected => {
                self.signaling = SignalingState::Reconnecting;
                tracing::info!(calls = self.peers.len(), "signaling down; calls carry on");
            }
        }
        self.flush(now);
    }

    pub fn handle_datagram(&mut self, d: &Datagram, now: Instant) {
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
                self.flush(now);
                return;
            }
        }
        if let Some(d) = self.relays.handle_datagram(d, now) {
            self.deliver(d, now);
        }
        self.flush(now);
    }

    /// The addresses of a TURN server asked for with [`Output::LookUpTurn`] (empty: not found).
    pub fn handle_turn_lookup(&mut self, url: &str, addrs: Vec<SocketAddr>, now: Instant) {
        self.relays.resolved(url, addrs, now);
        self.flush(now);
    }

    /// What happened to a stream to a TURN server opened with [`Output::Tcp`].
    pub fn handle_tcp(&mut self, conn: u64, ev: TcpEvent, now: Instant) {
        self.relays.handle_tcp(conn, ev, now);
        self.flush(now);
    }

    fn deliver(&mut self, d: &Datagram, now: Instant) {
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

    /// Carries out what the relays asked: transports to the pump, relayed candidates to every
    /// call, relayed datagrams to their session.
    fn drain_relays(&mut self, now: Instant) {
        while let Some(out) = self.relays.poll_output() {
            match out {
                RelayOutput::Transmit(t) => self.outputs.push_back(Output::Transmit(t)),
                RelayOutput::Tcp(c) => self.outputs.push_back(Output::Tcp(c)),
                RelayOutput::LookUp { url, host, port } => {
                    self.outputs
                        .push_back(Output::LookUpTurn { url, host, port });
                }
                RelayOutput::Added(c) => {
                    for p in self.peers.values_mut() {
                        p.session.add_local_candidate(c.clone(), now);
                    }
                }
                RelayOutput::Removed(c) => {
                    for (id, p) in &mut self.peers {
                        if let Err(e) = p.session.restart_ice(&[], std::slice::from_ref(&c), now) {
                            tracing::warn!(peer = %id, "cannot restart ICE: {e}");
                        }
                    }
                }
                RelayOutput::PeerData(d) => self.deliver(&d, now),
            }
        }
    }

    /// The address of the STUN server asked for with [`Output::LookUpStun`]: a Binding request
    /// goes out from each non-loopback local address.
    pub fn handle_stun_server(&mut self, server: SocketAddr, now: Instant) {
        self.stun_pending.clear();
        self.stun_server = Some(server);
        self.ask_stun(server, &self.config.local_addrs.clone());
        self.flush(now);
    }

    /// The addresses the pump has sockets on now (an interface came up, went down or changed
    /// address). New addresses become host candidates (and ask the STUN server); the
    /// candidates of gone ones are dropped; every call restarts ICE so it moves to a path that
    /// works. No address at all leaves the calls waiting for one.
    pub fn set_local_addrs(&mut self, mut addrs: Vec<SocketAddr>, now: Instant) {
        addrs.sort();
        addrs.dedup();
        if addrs == self.config.local_addrs {
            return;
        }
        let gone: Vec<SocketAddr> = (self.config.local_addrs.iter())
            .filter(|a| !addrs.contains(a))
            .copied()
            .collect();
        let new: Vec<SocketAddr> = (addrs.iter())
            .filter(|a| !self.config.local_addrs.contains(a))
            .copied()
            .collect();
        tracing::info!(?gone, ?new, "local addresses changed");
        let mut removed: Vec<Candidate> = (self.host_candidates.iter())
            .filter(|c| gone.contains(&c.addr()))
            .cloned()
            .collect();
        removed.extend(
            (self.srflx_candidates.iter())
                .filter(|c| gone.contains(&c.local()))
                .cloned(),
        );
        self.srflx_candidates.retain(|c| !gone.contains(&c.local()));
        self.stun_pending
            .retain(|(_, local, _)| !gone.contains(local));
        let added: Vec<Candidate> = (new.iter())
            .filter_map(|a| Candidate::host(*a, "udp").ok())
            .collect();
        self.host_candidates.retain(|c| !gone.contains(&c.addr()));
        self.host_candidates.extend(added.iter().cloned());
        self.config.local_addrs = addrs.clone();
        self.relays.set_locals(addrs, now);
        for (id, p) in &mut self.peers {
            if let Err(e) = p.session.restart_ice(&added, &removed, now) {
                tracing::warn!(peer = %id, "cannot restart ICE: {e}");
            }
        }
        if let Some(server) = self.stun_server {
            self.ask_stun(server, &new);
        }
        self.flush(now);
    }

    /// A STUN Binding request to `server` from each of `locals` of its family but loopback.
    fn ask_stun(&mut self, server: SocketAddr, locals: &[SocketAddr]) {
        for &local in locals {
            if local.ip().is_loopback() || local.is_ipv4() != server.is_ipv4() {
                continue;
            }
            let txid: stun::TransactionId = self.rng.random();
            let request = stun::binding_request(txid);
            self.outputs.push_back(Output::Transmit(Datagram {
                source: local,
                destination: server,
                contents: request.to_vec(),
            }));
            self.stun_pending.push((server, local, txid));
        }
    }

    /// Encode once, send to every viewer. A viewer still waiting for a keyframe is held back
    /// and a keyframe is asked for.
    pub fn send_video(&mut self, f: &EncodedVideo, now: Instant) {
        self.frames_sent += 1;
        self.sent_size = f.size;
        if f.keyframe {
            self.keyframe_asked = None;
        }
        if self.peers.is_empty() {
            self.flush(now);
            return;
        }
        // Sealed once for every viewer (docs/protocol.md, "Frame encryption").
        let sealed: Arc<[u8]> = self.frame_keys.seal_video(&f.data, now).into();
        let mut held_back = false;
        for p in self.peers.values_mut() {
            held_back |= !p
                .session
                .write_video(&sealed, f.keyframe, f.pts, f.captured_at, now);
        }
        if held_back {
            self.request_keyframe(now);
        }
        self.flush(now);
    }

    /// The pump missed video frames (it fell behind): the viewers' decoders need a keyframe.
    pub fn video_frames_lost(&mut self, now: Instant) {
        self.request_keyframe(now);
        self.flush(now);
    }

    pub fn send_audio(&mut self, f: &EncodedAudio, now: Instant) {
        if !self.peers.is_empty() {
            let sealed: Arc<[u8]> = self.frame_keys.seal_audio(&f.data, now).into();
            for p in self.peers.values_mut() {
                p.session.write_audio(&sealed, f.pts, f.captured_at, now);
            }
        }
        self.flush(now);
    }

    /// Ends every call (the box is stopping).
    pub fn close(&mut self, now: Instant) {
        for p in self.peers.values_mut() {
            p.session.close();
        }
        self.relays.close(now);
        self.flush(now);
    }

    fn handle_relay(&mut self, relay: Relay, now: Instant) {
        let Some(from) = relay.from.clone() else {
            return;
        };
        let pc = relay.pc().unwrap_or("").to_owned();
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
                    if ours_pending && !self.is_polite_to(&from) {
                        return; // glare between two new connections: ours wins
                    }
                    self.remove(&from);
                    let session = self.new_session(from.clone(), Some(pc), now);
                    self.insert(from.clone(), session);
                }
                let peer = self.peers.get_mut(&from).expect("inserted above");
                peer.session.set_media_labels(&relay.media_labels());
                if let Err(e) = peer.session.handle_offer(sdp, now) {
                    tracing::warn!(peer = %from, "refused offer: {e}");
                }
            }
            RelayKind::Answer => {
                let Some(sdp) = relay.sdp_text() else { return };
                if let Some(peer) = self.peers.get_mut(&from).filter(|p| p.session.pc() == pc) {
                    peer.session.set_media_labels(&relay.media_labels());
                    if let Err(e) = peer.session.handle_answer(sdp, now) {
                        tracing::warn!(peer = %from, "refused answer: {e}");
                    }
                }
            }
            RelayKind::View => {
                // The box sends one video, at the size its input and the link allow.
                tracing::debug!(peer = %from, "a view of our video (not acted on)");
            }
            // Opened by the signaling client's sealer before they reach the call.
            RelayKind::Sealed => tracing::debug!(peer = %from, "an unopened sealed relay"),
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

    /// Collects what every session queued into outputs, reaps dead calls, and publishes the
    /// encoder's control and the status when they changed.
    fn flush(&mut self, now: Instant) {
        self.drain_relays(now);
        let mut dead = Vec::new();
        let mut keyframe = false;
        for (id, p) in self.peers.iter_mut() {
            while let Some(t) = p.session.poll_transmit() {
                // From a relayed candidate: through its TURN allocation.
                if let Some(t) = self.relays.send(t, now) {
                    self.outputs.push_back(Output::Transmit(t));
                }
            }
            while let Some(relay) = p.session.poll_signal() {
                self.outputs
                    .push_back(Output::Signal(ClientMessage::Relay(relay)));
            }
            while let Some(notice) = p.session.poll_notice() {
                match notice {
                    Notice::Connected => {
                        tracing::info!(peer = %id, "media connected");
                        p.disconnected_since = None;
                    }
                    Notice::Disconnected => {
                        tracing::info!(peer = %id, "ICE disconnected");
                        p.disconnected_since.get_or_insert(now);
                    }
                    Notice::VideoReady | Notice::KeyframeRequested => keyframe = true,
                    Notice::Estimate(bps) => self.bitrate.set_estimate(&id.0, bps),
                    Notice::Video {
                        track,
                        kind,
                        payload,
                        keyframe,
                    } => {
                        let Some(payload) = self.frame_keys.open_video(id, &payload) else {
                            // No key for it (yet) or altered: the decoder must restart from
                            // a keyframe it can open.
                            self.unopened += 1;
                            if self.unopened.is_power_of_two() {
                                tracing::info!(peer = %id, unopened = self.unopened, "a video frame that does not open: dropped");
                            }
                            p.session.restart_remote_video(&track, now);
                            continue;
                        };
                        let payload: Arc<[u8]> = payload.into();
                        let name = self.names.get(id).cloned().unwrap_or_else(|| id.0.clone());
                        self.outputs
                            .push_back(Output::RemoteVideo(RemoteVideoPacket::Frame(
                                RemoteFrame {
                                    peer: id.0.clone(),
                                    name,
                                    track,
                                    kind,
                                    annex_b: payload,
                                    keyframe,
                                    at: now,
                                },
                            )));
                    }
                    Notice::Audio {
                        seq,
                        payload,
                        level,
                    } => {
                        let Some(payload) = self.frame_keys.open_audio(id, &payload) else {
                            self.unopened += 1;
                            if self.unopened.is_power_of_two() {
                                tracing::info!(peer = %id, unopened = self.unopened, "an audio frame that does not open: dropped");
                            }
                            continue;
                        };
                        let payload: Arc<[u8]> = payload.into();
                        let voice = level.is_some_and(|l| l >= SPEAKING_DBOV);
                        let due = p
                            .voice_sent_at
                            .is_none_or(|t| now.saturating_duration_since(t) >= VOICE_EVERY);
                        if voice && due {
                            p.voice_sent_at = Some(now);
                            self.outputs
                                .push_back(Output::RemoteVideo(RemoteVideoPacket::Voice {
                                    peer: id.0.clone(),
                                    at: now,
                                }));
                        }
                        let name = self.names.get(id).cloned().unwrap_or_else(|| id.0.clone());
                        self.outputs
                            .push_back(Output::RemoteAudio(RemoteAudioPacket::Packet {
                                peer: id.0.clone(),
                                name,
                                seq,
                                payload,
                                at: now,
                            }));
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
        self.drain_relays(now);
        for id in dead {
            tracing::info!(peer = %id, "call ended");
            self.remove(&id);
        }
        if keyframe {
            self.request_keyframe(now);
        }
        let control = EncoderControl {
            target_bps: self.bitrate.target_bps(),
            viewers: self
                .peers
                .values()
                .filter(|p| p.session.is_connected())
                .count(),
            keyframes: self.control.keyframes,
        };
        if control != self.control {
            if control.viewers != self.control.viewers {
                self.status_kbps = control.target_bps / 1000;
            }
            self.control = control;
            self.outputs.push_back(Output::Encoder(control));
        }
        let status = self.status_now();
        if self.status.as_ref() != Some(&status) {
            self.status = Some(status.clone());
            self.outputs.push_back(Output::Status(status));
        }
    }

    /// Asks the encoder for a keyframe, unless a request is already out and unanswered:
    /// however many viewers ask at once, the encoder hears it once.
    fn send_media_keys(&mut self, keys: Vec<(PeerId, SenderKey)>) {
        for (to, key) in keys {
            self.outputs.push_back(Output::MediaKey { to, key });
        }
    }

    fn request_keyframe(&mut self, now: Instant) {
        if self.keyframe_asked.is_some() {
            return;
        }
        self.keyframe_asked = Some(now);
        self.control.keyframes += 1;
        self.outputs.push_back(Output::Encoder(self.control));
    }

    fn status_now(&self) -> CallsStatus {
        let mut peers: Vec<PeerStatus> = self
            .peers
            .iter()
            .map(|(id, p)| PeerStatus {
                name: self.names.get(id).cloned().unwrap_or_else(|| id.0.clone()),
                state: match (p.session.is_connected(), p.disconnected_since) {
                    (_, Some(_)) => PeerState::Reconnecting,
                    (true, None) => PeerState::Connected,
                    (false, None) => PeerState::Connecting,
                },
                rtt: p.session.rtt,
            })
            .collect();
        peers.extend(self.refused.iter().map(|(id, refusal)| PeerStatus {
            name: self.names.get(id).cloned().unwrap_or_else(|| id.0.clone()),
            state: PeerState::Refused(*refusal),
            rtt: None,
        }));
        peers.sort_by(|a, b| a.name.cmp(&b.name));
        CallsStatus {
            safety_code: self.safety_code.clone(),
            // Without an address no call can connect, whatever the signaling does.
            signaling: if self.config.local_addrs.is_empty() {
                SignalingState::NoNetwork
            } else {
                self.signaling
            },
            peers,
            viewers: self.control.viewers,
            kbps: self.status_kbps,
            fps: self.last_fps,
            size: self.sent_size,
            relay: self.relays.state(),
        }
    }

    /// Perfect negotiation roles: the smaller id is polite (docs/protocol.md).
    fn is_polite_to(&self, peer: &PeerId) -> bool {
        self.my_id.as_ref().is_some_and(|me| me < peer)
    }

    fn new_session(&mut self, peer: PeerId, pc: Option<String>, now: Instant) -> Session {
        let polite = self.is_polite_to(&peer);
        let candidates: Vec<Candidate> = self
            .host_candidates
            .iter()
            .chain(&self.srflx_candidates)
            .chain(self.relays.candidates())
            .cloned()
            .collect();
        let start = u64::from(self.config.max_bps.min(1_000_000).max(self.config.min_bps));
        let pc = pc.unwrap_or_else(|| new_pc(&mut self.rng));
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

    /// A new session for `id`; told at once what the display shows of the peer's videos.
    fn insert(&mut self, id: PeerId, mut session: Session) {
        if let Some(wishes) = self.view.get(&id.0) {
            session.show_videos(wishes);
        }
        self.peers.insert(
            id,
            Peer {
                session,
                disconnected_since: None,
                voice_sent_at: None,
            },
        );
    }

    fn remove(&mut self, id: &PeerId) {
        if let Some(mut p) = self.peers.remove(id) {
            p.session.close();
            self.bitrate.remove(&id.0);
            self.outputs
                .push_back(Output::RemoteAudio(RemoteAudioPacket::PeerGone(
                    id.0.clone(),
                )));
            self.outputs
                .push_back(Output::RemoteVideo(RemoteVideoPacket::PeerGone(
                    id.0.clone(),
                )));
        }
    }

    /// Asks the pump to resolve the first STUN server (DNS is I/O); its answer comes back
    /// through `handle_stun_server`.
    fn gather_srflx(&mut self, ice_servers: &[IceServer]) {
        if let Some((host, port)) = ice_servers
            .iter()
            .flat_map(|s| &s.urls)
            .find_map(|u| stun::stun_host_port(u))
        {
            self.outputs.push_back(Output::LookUpStun { host, port });
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
            kbps = self.control.target_bps / 1000,
            fps = self.frames_sent as f64 / STATUS_EVERY.as_secs_f64(),
            size = format!("{}x{}", self.sent_size.0, self.sent_size.1),
            "status: [{}]",
            peers.join(", ")
        );
    }
}

/// A new connection id (`pc`, docs/protocol.md): 12 letters and digits.
fn new_pc(rng: &mut StdRng) -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(rng, 12)
}
