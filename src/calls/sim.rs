//! A room simulated in memory on virtual time, for the call core's tests: the box's `Calls`,
//! browsers played by real str0m peers that follow the web client's protocol (newcomers
//! offer, perfect negotiation, `pc` ids), a signaling server that stamps `from`, and a network
//! of our own between them that can lose, delay and reorder datagrams. Everything random
//! comes from one seed, so a run replays exactly: `World::transcript` is the record.

use super::web_client::{FrameTiming, Seen, WebClientPeer};
use super::{Calls, CallsConfig, Datagram, EncoderControl, Output, RemoteFrame, RemoteVideoPacket};
use crate::audio::stamp::FrameStamps;
use crate::fanout::{KeyframeGate, KEYFRAME_MIN_INTERVAL};
use crate::media::{EncodedAudio, EncodedVideo, VideoKind};
use crate::signaling::SignalEvent;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use roombox_protocol::{ClientMessage, PeerId, PeerInfo, PeerKind, Relay, RoomName, Welcome};
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::media::MediaKind;

pub const BOX_ID: &str = "box";
const BOX_ADDR: &str = "10.0.0.1:5000";
/// Video frames at 25 fps, audio every 20 ms.
const FRAME_EVERY: Duration = Duration::from_millis(40);
const AUDIO_EVERY: Duration = Duration::from_millis(20);

/// What the network does to each datagram.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    /// Percent of datagrams lost.
    pub loss_percent: u32,
    pub delay: Duration,
    /// Extra random delay up to this much (reorders datagrams).
    pub jitter: Duration,
}

impl Link {
    pub const CLEAN: Link = Link {
        loss_percent: 0,
        delay: Duration::from_millis(5),
        jitter: Duration::ZERO,
    };
}

/// A datagram in flight, ordered by arrival (then by sending order, for ties).
struct InFlight {
    at: Instant,
    order: u64,
    datagram: Datagram,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // BinaryHeap is a max-heap: the earliest arrival first.
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

/// A browser tab running the web client ([`WebClientPeer`]), at an address of its own.
pub struct Browser {
    pub id: PeerId,
    pub name: String,
    addr: SocketAddr,
    pub peer: WebClientPeer,
    /// Silent: the tab froze or the laptop was closed (no datagrams in or out).
    pub silent: bool,
    /// Every frame it received, audio and video, with its timing.
    pub received: Vec<(MediaKind, FrameTiming)>,
    /// When each video frame from the box arrived and opened (virtual time).
    pub video_seen_at: Vec<Instant>,
    /// Shares its screen: frames of it go out with the box's, a keyframe every 250 and when
    /// the box asks.
    sharing: Option<ScreenShare>,
    pub keyframe_requests: usize,
}

#[derive(Default)]
struct ScreenShare {
    frames: u64,
    keyframe_asked: bool,
}

/// The tests read the peer's counters through the tab.
impl std::ops::Deref for Browser {
    type Target = WebClientPeer;
    fn deref(&self) -> &WebClientPeer {
        &self.peer
    }
}

/// What the tests read of the core (they live in its child modules).
impl Calls {
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// The lowest bandwidth estimate of the viewers, bits a second (for tests and logs).
    pub fn lowest_estimate_bps(&self) -> Option<u64> {
        self.peers
            .values()
            .filter_map(|p| p.session.estimate_bps)
            .min()
    }

    /// The connection id of the call with `peer`, if there is one.
    pub fn pc_of(&self, peer: &PeerId) -> Option<&str> {
        self.peers.get(peer).map(|p| p.session.pc())
    }
}

/// An H.264 keyframe as the box's tests see one: SPS, PPS, IDR slice.
const KEYFRAME: [u8; 28] = [
    0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0x8c, 0x8d, 0x40, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0,
    0, 1, 0x65, 0x88, 0x84, 0x21, 0xa0,
];
/// A delta frame (a non-IDR slice).
const DELTA: [u8; 9] = [0, 0, 0, 1, 0x41, 0x9a, 0x02, 0x03, 0x04];

/// The encoder as the call core sees it: keyframes when asked, spaced as the pipeline's
/// encoder thread spaces them (the same gate), and every 250 frames.
struct FakeEncoder {
    control: EncoderControl,
    keyframes_served: u64,
    gate: KeyframeGate,
    frame: u64,
}

impl FakeEncoder {
    fn next_frame(&mut self, start: Instant, now: Instant) -> Option<EncodedVideo> {
        if self.control.keyframes > self.keyframes_served {
            self.keyframes_served = self.control.keyframes;
            self.gate.request();
        }
        if self.control.viewers == 0 {
            return None; // idles with nobody watching
        }
        let keyframe = self.gate.poll_force(now) || self.frame.is_multiple_of(250);
        if keyframe {
            self.gate.keyframe_sent(now);
        }
        self.frame += 1;
        let data: Vec<u8> = if keyframe {
            KEYFRAME.to_vec()
        } else {
            DELTA.to_vec()
        };
        Some(EncodedVideo {
            data: data.into(),
            keyframe,
            pts: now - start,
            captured_at: now,
            size: (1280, 720),
        })
    }
}

/// The room: the box, the browsers, the signaling server and the network, on virtual time.
pub struct World {
    pub now: Instant,
    start: Instant,
    pub calls: Calls,
    pub browsers: BTreeMap<String, Browser>,
    /// Every tab gets an address of its own, also one that rejoins.
    tabs_opened: u8,
    rng: StdRng,
    pub link: Link,
    /// How much faster than the system clock the box's microphone runs, parts per million.
    pub audio_clock_ppm: f64,
    audio_frames: u32,
    audio_stamps: FrameStamps,
    in_flight: BinaryHeap<InFlight>,
    sent: u64,
    encoder: FakeEncoder,
    /// Keyframe requests the core sent the encoder.
    pub encoder_requests: u64,
    pub control: EncoderControl,
    next_video: Instant,
    next_audio: Instant,
    /// The box is in the room (it has had its welcome).
    box_joined: bool,
    /// The box's addresses: datagrams to others are lost, and it cannot send from others.
    box_addrs: Vec<SocketAddr>,
    /// Signaling up: relays pass; down, they are lost (as with a dead WebSocket).
    pub signaling_up: bool,
    /// What the core passed on of the browsers' videos.
    pub remote_video: Vec<SeenVideo>,
    /// Browsers whose frame key never reaches the box (as if their `media-key` were lost).
    pub keys_withheld: std::collections::BTreeSet<String>,
    /// The core's word that a browser speaks: (peer, when).
    pub voices: Vec<(String, Instant)>,
    /// How long a browser takes to answer the box's offers (0: at once). Chromium on a loaded
    /// machine takes a few hundred milliseconds, so a newcomer connects before the box's video
    /// m-line is agreed.
    pub answers_after: Duration,
    /// Browsers' answers on their way: (due, from, answer).
    late_answers: Vec<(Instant, String, Relay)>,
    /// When each browser's answer reached the box.
    pub answers_at: Vec<(String, Instant)>,
    pub transcript: Vec<String>,
}

/// A frame of a browser's video the core passed on.
#[derive(Debug, Clone)]
pub struct SeenVideo {
    pub peer: String,
    pub track: String,
    pub kind: VideoKind,
    pub keyframe: bool,
    pub at: Instant,
}

impl World {
    pub fn new(seed: u64) -> World {
        let now = Instant::now();
        let calls = Calls::new(
            CallsConfig {
                min_bps: 300_000,
                max_bps: 2_500_000,
                local_addrs: vec![BOX_ADDR.parse().expect("an address")],
                seed,
            },
            now,
        );
        World {
            now,
            start: now,
            calls,
            browsers: BTreeMap::new(),
            tabs_opened: 1,
            rng: StdRng::seed_from_u64(seed ^ 0x5eed),
            link: Link::CLEAN,
            in_flight: BinaryHeap::new(),
            sent: 0,
            encoder: FakeEncoder {
                control: EncoderControl::default(),
                keyframes_served: 0,
                gate: KeyframeGate::new(KEYFRAME_MIN_INTERVAL),
                frame: 0,
            },
            encoder_requests: 0,
            control: EncoderControl::default(),
            next_video: now,
            next_audio: now,
            audio_clock_ppm: 0.0,
            audio_frames: 0,
            audio_stamps: FrameStamps::default(),
            box_joined: false,
            box_addrs: vec![BOX_ADDR.parse().expect("an address")],
            signaling_up: true,
            remote_video: Vec::new(),
            keys_withheld: std::collections::BTreeSet::new(),
            voices: Vec::new(),
            answers_after: Duration::ZERO,
            late_answers: Vec::new(),
            answers_at: Vec::new(),
            transcript: Vec::new(),
        }
    }

    fn welcome_box(&mut self, peers: Vec<PeerInfo>) {
        let w = Welcome {
            id: PeerId(BOX_ID.into()),
            resume_token: "t".into(),
            room: RoomName::parse("sim").expect("a room name"),
            peers,
            ice_servers: vec![],
            max_peers: 8,
        };
        self.calls.handle_signal(SignalEvent::Welcome(w), self.now);
        self.box_joined = true;
        self.after_box();
        let ids: Vec<String> = self.browsers.keys().cloned().collect();
        for id in ids {
            self.pair_ready(&id);
        }
    }

    /// The box joins (or rejoins after a signaling outage) with whoever is in the room.
    pub fn box_joins(&mut self) {
        let peers = self
            .browsers
            .values()
            .map(|b| PeerInfo {
                id: b.id.clone(),
                name: b.name.clone(),
                kind: PeerKind::Browser,
                key: None,
            })
            .collect();
        self.signaling_up = true;
        self.welcome_box(peers);
    }

    /// New bitrate bounds from the settings page.
    pub fn set_bitrate_bounds(&mut self, min_bps: u32, max_bps: u32) {
        self.calls.set_bitrate_bounds(min_bps, max_bps, self.now);
        self.after_box();
    }

    /// The box's signaling socket drops: calls carry on, relays are lost until it is back.
    pub fn signaling_drops(&mut self) {
        self.signaling_up = false;
        self.calls
            .handle_signal(SignalEvent::Disconnected, self.now);
        self.after_box();
    }

    /// The box's address changes (DHCP gave it another, or it moved networks): packets to the
    /// old one are lost from now on, and the core is told.
    pub fn box_moves_to(&mut self, addr: SocketAddr) {
        self.transcript.push(format!("box moves to {addr}"));
        self.box_addrs = vec![addr];
        self.calls.set_local_addrs(vec![addr], self.now);
        self.after_box();
    }

    /// A browser joins the room: the box hears of it, and the newcomer offers.
    pub fn browser_joins(&mut self, id: &str) {
        self.tabs_opened += 1;
        let addr = SocketAddr::from(([10, 0, 1, self.tabs_opened], 40000));
        let pc = format!("{id}-pc{}", self.rng.random::<u16>());
        let mut b = Browser {
            id: PeerId(id.into()),
            name: format!("Person {id}"),
            addr,
            peer: WebClientPeer::new(PeerId(id.into()), PeerId(BOX_ID.into()), addr, pc, self.now),
            silent: false,
            received: Vec::new(),
            video_seen_at: Vec::new(),
            sharing: None,
            keyframe_requests: 0,
        };
        self.transcript.push(format!("{id} joins"));
        if self.box_joined {
            let info = PeerInfo {
                id: b.id.clone(),
                name: b.name.clone(),
                kind: PeerKind::Browser,
                key: None,
            };
            self.calls
                .handle_signal(SignalEvent::PeerJoined(info), self.now);
            let offer = b.peer.offer(false);
            self.browsers.insert(id.into(), b);
            self.pair_ready(id);
            for relay in offer {
                self.relay_to_box(relay, id);
            }
        } else {
            self.browsers.insert(id.into(), b);
        }
        self.pump_browser(id);
    }

    /// What the sealed signaling tells the box once a browser's pair is ready: its name (the
    /// `hi`) and its frame key (`media-key`).
    fn pair_ready(&mut self, id: &str) {
        let Some(b) = self.browsers.get(id) else {
            return;
        };
        let info = PeerInfo {
            id: b.id.clone(),
            name: b.name.clone(),
            kind: PeerKind::Browser,
            key: None,
        };
        let key = b.peer.frame_key();
        self.calls
            .handle_signal(SignalEvent::PeerNamed(info), self.now);
        if !self.keys_withheld.contains(id) {
            self.calls.handle_signal(
                SignalEvent::PeerMediaKey {
                    id: PeerId(id.into()),
                    key,
                },
                self.now,
            );
        }
        self.after_box();
    }

    /// A browser leaves: the server tells the box.
    pub fn browser_leaves(&mut self, id: &str) {
        self.browsers.remove(id);
        self.transcript.push(format!("{id} leaves"));
        self.calls
            .handle_signal(SignalEvent::PeerLeft(PeerId(id.into())), self.now);
        self.after_box();
    }

    /// Glare: `id` (in the room before the box) makes an offer that is still on its way when
    /// the box joins and offers to it; the browser's offer reaches the box after.
    pub fn box_joins_in_glare_with(&mut self, id: &str) {
        let offer = self
            .browsers
            .get_mut(id)
            .expect("a browser")
            .peer
            .offer(false);
        self.transcript
            .push(format!("{id} offers while the box joins"));
        self.box_joins();
        for relay in offer {
            self.relay_to_box(relay, id);
        }
    }

    pub fn browser_restarts_ice(&mut self, id: &str) {
        let offer = self
            .browsers
            .get_mut(id)
            .expect("a browser")
            .peer
            .restart_ice();
        self.transcript.push(format!("{id} restarts ICE"));
        self.relay_to_box(offer, id);
    }

    /// A browser starts sharing its screen: it offers a video m-line to send on.
    pub fn browser_shares_screen(&mut self, id: &str) {
        self.browser_sends_video(id, VideoKind::Screen);
    }

    /// A browser sends a camera or a screen, labelled as the web client labels it.
    pub fn browser_sends_video(&mut self, id: &str, kind: VideoKind) {
        let b = self.browsers.get_mut(id).expect("a browser");
        let offer = b.peer.send_video(kind);
        b.sharing = Some(ScreenShare::default());
        self.transcript
            .push(format!("{id} sends its {}", kind.label()));
        self.relay_to_box(offer, id);
        self.pump_browser(id);
    }

    /// The loudness (dBov) a browser's audio packets carry from now on; `None`: no level.
    pub fn browser_voice_level(&mut self, id: &str, level: Option<i8>) {
        self.browsers
            .get_mut(id)
            .expect("a browser")
            .peer
            .voice_level = level;
    }

    pub fn browser_requests_keyframe(&mut self, id: &str) {
        self.browsers
            .get_mut(id)
            .expect("a browser")
            .peer
            .request_keyframe();
        self.pump_browser(id);
    }

    /// A browser's reply to the box's offer reaches the box.
    fn answered(&mut self, reply: Relay, from: &str) {
        self.answers_at.push((from.to_owned(), self.now));
        self.relay_to_box(reply, from);
    }

    fn relay_to_box(&mut self, mut relay: Relay, from: &str) {
        if !self.signaling_up {
            return;
        }
        relay.from = Some(PeerId(from.into()));
        relay.to = PeerId(BOX_ID.into());
        self.transcript
            .push(format!("{from} -> box {}", relay.kind.as_str()));
        self.calls
            .handle_signal(SignalEvent::Relay(relay), self.now);
        self.after_box();
    }

    /// Carries out what the box's core asked for.
    fn after_box(&mut self) {
        while let Some(out) = self.calls.poll_output() {
            match out {
                // The pump has no socket for an address that went away.
                Output::Transmit(d) if !self.box_addrs.contains(&d.source) => {}
                Output::Transmit(d) => self.send(d),
                Output::Signal(ClientMessage::Relay(r)) => {
                    if !self.signaling_up {
                        continue;
                    }
                    let to = r.to.0.clone();
                    self.transcript
                        .push(format!("box -> {to} {}", r.kind.as_str()));
                    let reply = match self.browsers.get_mut(&to) {
                        Some(b) => b.peer.handle_relay(&r).ok().flatten(),
                        None => continue,
                    };
                    self.pump_browser(&to);
                    match reply {
                        Some(reply) if !self.answers_after.is_zero() => {
                            self.late_answers
                                .push((self.now + self.answers_after, to, reply));
                        }
                        Some(reply) => self.answered(reply, &to),
                        None => {}
                    }
                }
                Output::Signal(other) => self.transcript.push(format!("box sends {other:?}")),
                // Sealed to that browser alone by the signaling client (crates/seal).
                Output::MediaKey { to, key } => {
                    if !self.signaling_up {
                        continue;
                    }
                    self.transcript
                        .push(format!("box -> {to} media-key {}", key.kid));
                    if let Some(b) = self.browsers.get_mut(&to.0) {
                        b.peer.add_box_key(key);
                    }
                }
                Output::LookUpStun { host, .. } | Output::LookUpTurn { host, .. } => {
                    self.transcript.push(format!("box looks up {host}"));
                }
                // The simulated servers name no TURN server over TCP.
                Output::Tcp(c) => self.transcript.push(format!("box asks for {c:?}")),
                Output::Encoder(c) => {
                    if c.keyframes > self.control.keyframes {
                        self.encoder_requests += c.keyframes - self.control.keyframes;
                    }
                    self.control = c;
                    self.encoder.control = c;
                    // Not the bitrate: str0m's estimator sees DTLS records whose sizes vary with
                    // its own random keys, so estimates differ by a percent between runs.
                    self.transcript.push(format!(
                        "encoder {} viewers, keyframes {}",
                        c.viewers, c.keyframes
                    ));
                }
                Output::Status(s) => {
                    let peers: Vec<String> = s
                        .peers
                        .iter()
                        .map(|p| format!("{}:{:?}", p.name, p.state))
                        .collect();
                    self.transcript
                        .push(format!("status {:?} [{}]", s.signaling, peers.join(" ")));
                }
                Output::RemoteVideo(RemoteVideoPacket::Frame(RemoteFrame {
                    peer,
                    track,
                    kind,
                    keyframe,
                    at,
                    ..
                })) => self.remote_video.push(SeenVideo {
                    peer,
                    track,
                    kind,
                    keyframe,
                    at,
                }),
                Output::RemoteVideo(RemoteVideoPacket::Voice { peer, at }) => {
                    self.voices.push((peer, at));
                }
                Output::RemoteAudio(_) | Output::RemoteVideo(_) => {}
            }
        }
    }

    fn pump_browser(&mut self, id: &str) {
        let Some(b) = self.browsers.get_mut(id) else {
            return;
        };
        let (sent, seen) = b
            .peer
            .poll()
            .unwrap_or_else(|e| panic!("browser {id}: {e}"));
        for s in &seen {
            match s {
                Seen::Connected => self.transcript.push(format!("{id} connected")),
                Seen::Video { timing, .. } => {
                    b.received.push((MediaKind::Video, *timing));
                    b.video_seen_at.push(self.now);
                }
                Seen::Audio { timing, .. } => b.received.push((MediaKind::Audio, *timing)),
                Seen::KeyframeRequested => {
                    b.keyframe_requests += 1;
                    if let Some(share) = &mut b.sharing {
                        share.keyframe_asked = true;
                    }
                }
            }
        }
        if b.silent {
            return;
        }
        for d in sent {
            self.send(Datagram {
                source: d.source,
                destination: d.destination,
                contents: d.contents,
            });
        }
    }

    /// Puts a datagram on the network (it may be lost, delayed, reordered).
    fn send(&mut self, d: Datagram) {
        if self.rng.random_range(0..100) < self.link.loss_percent {
            return;
        }
        let jitter = if self.link.jitter.is_zero() {
            Duration::ZERO
        } else {
            self.link.jitter.mul_f64(self.rng.random::<f64>())
        };
        self.sent += 1;
        self.in_flight.push(InFlight {
            at: self.now + self.link.delay + jitter,
            order: self.sent,
            datagram: d,
        });
    }

    fn deliver(&mut self, d: Datagram) {
        if self.box_addrs.contains(&d.destination) {
            self.calls.handle_datagram(&d, self.now);
            self.after_box();
            return;
        }
        let Some(id) = self
            .browsers
            .iter()
            .find(|(_, b)| b.addr == d.destination)
            .map(|(id, _)| id.clone())
        else {
            return; // for a browser that left
        };
        let b = self.browsers.get_mut(&id).expect("found above");
        if b.silent {
            return;
        }
        b.peer.handle_datagram(d.source, &d.contents, self.now);
        self.pump_browser(&id);
    }

    /// Runs the world for `d` of virtual time: the network, every timer, the box's encoder
    /// (video every 40 ms, audio every 20 ms) and the browsers' microphones.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            let mut next = end
                .min(self.calls.poll_timeout())
                .min(self.next_video)
                .min(self.next_audio);
            for b in self.browsers.values() {
                next = next.min(b.timeout());
            }
            if let Some(f) = self.in_flight.peek() {
                next = next.min(f.at);
            }
            for (at, _, _) in &self.late_answers {
                next = next.min(*at);
            }
            self.now = self.now.max(next);
            let (due, later) = std::mem::take(&mut self.late_answers)
                .into_iter()
                .partition(|(at, _, _)| *at <= self.now);
            self.late_answers = later;
            for (_, from, answer) in due {
                self.answered(answer, &from);
            }
            while self.in_flight.peek().is_some_and(|f| f.at <= self.now) {
                let f = self.in_flight.pop().expect("peeked");
                self.deliver(f.datagram);
            }
            if self.calls.poll_timeout() <= self.now {
                self.calls.handle_timeout(self.now);
                self.after_box();
            }
            let ids: Vec<String> = self.browsers.keys().cloned().collect();
            for id in &ids {
                let b = self.browsers.get_mut(id).expect("listed");
                if b.timeout() <= self.now {
                    b.peer.handle_timeout(self.now);
                    self.pump_browser(id);
                }
            }
            if self.now >= self.next_video {
                self.next_video += FRAME_EVERY;
                self.send_screens(&ids);
                if let Some(f) = self.encoder.next_frame(self.start, self.now) {
                    self.calls.send_video(&f, self.now);
                    self.after_box();
                }
            }
            if self.now >= self.next_audio {
                // The microphone hands over a frame each time its own clock has made one; the
                // box stamps it as the pipeline does, the frame's first sample a frame ago.
                self.audio_frames += 1;
                self.next_audio = self.start
                    + (AUDIO_EVERY * self.audio_frames).div_f64(1.0 + self.audio_clock_ppm * 1e-6);
                let stamp = self.audio_stamps.next(self.now, AUDIO_EVERY);
                let packet = EncodedAudio {
                    data: Arc::from(vec![0xf8u8, 0xff, 0xfe]),
                    pts: stamp.pts,
                    captured_at: stamp.captured_at,
                };
                self.calls.send_audio(&packet, self.now);
                self.after_box();
                for id in &ids {
                    let b = self.browsers.get_mut(id).expect("listed");
                    if b.connected && !b.silent {
                        b.peer.write_audio(&[0xf8, 0xff, 0xfe], self.now);
                    }
                    self.pump_browser(id);
                }
            }
        }
    }

    /// Runs the world in 10 ms steps until `done` holds or `limit` has passed; how long it took.
    pub fn run_until(
        &mut self,
        limit: Duration,
        done: impl Fn(&World) -> bool,
    ) -> Option<Duration> {
        let step = Duration::from_millis(10);
        let mut waited = Duration::ZERO;
        while !done(self) {
            if waited >= limit {
                return None;
            }
            self.run_for(step);
            waited += step;
        }
        Some(waited)
    }

    /// The sharing browsers' next frames (the same tiny access units as the box's encoder).
    fn send_screens(&mut self, ids: &[String]) {
        for id in ids {
            let b = self.browsers.get_mut(id).expect("listed");
            // A silent tab's frames are made and lost on the way, as on a dead link.
            if !b.connected {
                continue;
            }
            let Some(share) = &mut b.sharing else {
                continue;
            };
            let keyframe = share.keyframe_asked || share.frames.is_multiple_of(250);
            share.keyframe_asked = false;
            share.frames += 1;
            let data: &[u8] = if keyframe { &KEYFRAME } else { &DELTA };
            b.peer.write_screen(data, self.now);
            self.pump_browser(id);
        }
    }

    pub fn browser(&self, id: &str) -> &Browser {
        &self.browsers[id]
    }

    /// Every browser has media connected and has decoded video since `frames_before`.
    pub fn all_watching(&self) -> bool {
        !self.browsers.is_empty()
            && self
                .browsers
                .values()
                .all(|b| b.connected && b.video_frames > 0)
    }
}
