//! The web client's side of a call, played by str0m: what web/js/call.js does with a browser's
//! RTCPeerConnection, sans-IO like the core (inputs with the time passed in, datagrams and
//! relays handed back). One peer for everything that needs a browser without a browser: the
//! session tests, the simulated room (`sim`) and the soak test (`bench/soak`, through the
//! `web-client-peer` feature).
//!
//! As the web client: it offers audio (send and receive, a microphone) and, if asked, video to
//! receive; perfect negotiation with the box (the smaller id is polite); it adopts the `pc` of
//! an offer it takes; relays for another `pc` are dropped. Frames are sealed and opened as
//! docs/protocol.md's "Frame encryption" says: its own sender key for what it sends, the box's
//! keys (handed over by the caller, as the sealed signaling would) for what it receives.

use roombox_protocol::{IceCandidateInit, PeerId, Relay, RelayKind};
use roombox_seal::frame::{FrameCipher, KeyRing, SenderKey};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{
    Direction, Frequency, KeyframeRequestKind, MediaData, MediaKind, MediaTime, Mid,
};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

/// A datagram the peer sends.
#[derive(Debug, Clone)]
pub struct Sent {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
}

/// What a peer saw happen, for the caller to act on or count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Connected,
    /// An H.264 access unit (Annex B), on which m-line, and whether it starts a decoder (SPS
    /// or IDR).
    Video {
        mid: Mid,
        data: std::sync::Arc<[u8]>,
        keyframe: bool,
        timing: FrameTiming,
    },
    Audio {
        mid: Mid,
        timing: FrameTiming,
    },
    /// The box asked for a keyframe of our screen share (PLI or FIR).
    KeyframeRequested,
}

/// A received frame's RTP time and, once a sender report has come, that time on the sender's
/// clock: what a browser's audio/video sync goes by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTiming {
    pub rtp: MediaTime,
    pub sender_time: Option<SystemTime>,
}

impl FrameTiming {
    fn of(d: &MediaData) -> FrameTiming {
        let sender_time = d.last_sender_info.map(|sr| {
            // RTP timestamps are 32 bits on the wire: the distance, not the values, counts.
            let ticks = (d.time.numer() as u32).wrapping_sub(sr.rtp_time.numer() as u32) as i32;
            let secs = f64::from(ticks) / f64::from(d.time.frequency().get());
            if secs >= 0.0 {
                sr.ntp_time + Duration::from_secs_f64(secs)
            } else {
                sr.ntp_time - Duration::from_secs_f64(-secs)
            }
        });
        FrameTiming {
            rtp: d.time,
            sender_time,
        }
    }
}

/// Something the box sent that the web client would not take.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error("{0}")]
    Protocol(String),
    #[error("str0m: {0}")]
    Rtc(String),
}

pub struct WebClientPeer {
    /// Our id in the room and the box's.
    id: PeerId,
    box_id: PeerId,
    local: SocketAddr,
    rtc: Rtc,
    /// The current connection's id.
    pc: String,
    pending: Option<SdpPendingOffer>,
    audio_mid: Option<Mid>,
    video_mid: Option<Mid>,
    timeout: Instant,
    audio_n: u64,
    pub connected: bool,
    pub video_frames: usize,
    pub keyframes: usize,
    /// The first video frame was a keyframe (a decoder can start from it).
    pub first_frame_was_keyframe: Option<bool>,
    pub audio_packets: usize,
    /// Offers from the box it answered.
    pub renegotiations: usize,
    /// The m-line our video (a camera or a shared screen) goes out on, once sent.
    screen_mid: Option<Mid>,
    screen_frames: u64,
    /// The loudness our audio packets carry (RFC 6464, dBov: 0 loudest, -127 silence), as a
    /// browser sends it.
    pub voice_level: Option<i8>,
    /// Every `view` the box sent on this connection: how much of our video it shows.
    pub views: Vec<std::collections::BTreeMap<String, roombox_protocol::ViewWish>>,
    /// Our sender key: what the box must be given to open our frames.
    frame_key: SenderKey,
    sealing: FrameCipher,
    /// The box's keys, as its sealed `media-key`s would bring them.
    pub box_keys: KeyRing,
    /// Frames from the box that did not open (no key, or altered): not counted as received.
    pub unopened: usize,
    /// The box's last video frames as they arrived, sealed (for tests of who can open them).
    pub sealed_video: VecDeque<Arc<[u8]>>,
}

/// How many sealed frames a peer keeps for tests.
const SEALED_KEPT: usize = 250;

impl WebClientPeer {
    /// A peer with one host candidate at `local`, about to call the box with connection `pc`.
    pub fn new(id: PeerId, box_id: PeerId, local: SocketAddr, pc: String, now: Instant) -> Self {
        // As a browser: Opus and H.264, the default header extensions, TWCC, NACK.
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_h264(true)
            .set_stats_interval(Some(Duration::from_secs(1)))
            .build(now);
        rtc.add_local_candidate(Candidate::host(local, "udp").expect("a host candidate"));
        let frame_key = SenderKey::generate(1);
        WebClientPeer {
            id,
            box_id,
            local,
            rtc,
            pc,
            pending: None,
            audio_mid: None,
            video_mid: None,
            timeout: now,
            audio_n: 0,
            connected: false,
            video_frames: 0,
            keyframes: 0,
            first_frame_was_keyframe: None,
            audio_packets: 0,
            renegotiations: 0,
            screen_mid: None,
            screen_frames: 0,
            voice_level: None,
            views: Vec::new(),
            sealing: frame_key.cipher(),
            frame_key,
            box_keys: KeyRing::default(),
            unopened: 0,
            sealed_video: VecDeque::new(),
        }
    }

    /// Our frame key, for the box (the sealed signaling's `media-key`).
    pub fn frame_key(&self) -> SenderKey {
        self.frame_key.clone()
    }

    /// A key the box sent us.
    pub fn add_box_key(&mut self, key: SenderKey) {
        self.box_keys.insert(key);
    }

    pub fn pc(&self) -> &str {
        &self.pc
    }

    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// The audio and video m-lines: those of our offer, else the first the box added.
    pub fn mids(&self) -> (Option<Mid>, Option<Mid>) {
        (self.audio_mid, self.video_mid)
    }

    /// Our offer awaits the box's answer.
    pub fn offer_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// As a closing tab: RTCP BYE and DTLS close_notify (then [`poll`](Self::poll) them out).
    pub fn close(&mut self) -> Result<(), Refused> {
        self.rtc.close().map_err(rtc)
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due.
    pub fn timeout(&self) -> Instant {
        self.timeout
    }

    fn relay(&self, kind: RelayKind, sdp: String) -> Relay {
        Relay::sdp(kind, self.box_id.clone(), sdp).with_pc(self.pc.clone())
    }

    /// As a newcomer with a microphone: the offer (audio, and video to receive if `video`;
    /// without it the box adds its video by renegotiating), then its host candidate trickled
    /// and the end of candidates, as browsers do.
    pub fn offer(&mut self, video: bool) -> Vec<Relay> {
        let mut api = self.rtc.sdp_api();
        self.audio_mid =
            Some(api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None));
        if video {
            self.video_mid =
                Some(api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None));
        }
        let (offer, pending) = api.apply().expect("a first offer");
        self.pending = Some(pending);
        let host = Candidate::host(self.local, "udp").expect("a host candidate");
        let init = IceCandidateInit {
            candidate: host.to_sdp_string(),
            sdp_mid: self.audio_mid.map(|m| m.to_string()),
            sdp_m_line_index: Some(0),
            username_fragment: None,
        };
        vec![
            self.relay(RelayKind::Offer, offer.to_sdp_string()),
            Relay::candidate(self.box_id.clone(), Some(&init)).with_pc(self.pc.clone()),
            Relay::candidate(self.box_id.clone(), None).with_pc(self.pc.clone()),
        ]
    }

    /// Sends a video, as the web client's `startScreen` or `startCamera`: a video m-line to
    /// send on, offered to the box (a renegotiation), labelled with what it carries.
    pub fn send_video(&mut self, kind: crate::media::VideoKind) -> Relay {
        let mut api = self.rtc.sdp_api();
        let stream = Some(kind.label().to_owned());
        let mid = api.add_media(MediaKind::Video, Direction::SendOnly, stream, None, None);
        self.screen_mid = Some(mid);
        let (offer, pending) = api.apply().expect("a video offer");
        self.pending = Some(pending);
        let mut relay = self.relay(RelayKind::Offer, offer.to_sdp_string());
        let labels = serde_json::json!({ mid.to_string(): kind.label() });
        relay.fields.insert("media".into(), labels);
        relay
    }

    /// The next frame of the shared screen (an H.264 access unit, Annex B), 25 a second;
    /// dropped until the box has answered.
    pub fn write_screen(&mut self, annex_b: &[u8], now: Instant) {
        let Some(mid) = self.screen_mid else { return };
        let Some(writer) = self.rtc.writer(mid) else {
            return;
        };
        let Some(pt) = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::H264)
            .map(str0m::format::PayloadParams::pt)
        else {
            return;
        };
        let time = MediaTime::new(self.screen_frames * 3600, Frequency::NINETY_KHZ);
        self.screen_frames += 1;
        let sealed = self.sealing.seal_h264(annex_b, rand::random);
        let _ = writer.write(pt, now, time, sealed);
    }

    /// An ICE restart (the browser's network changed): a new offer on the same `pc`.
    pub fn restart_ice(&mut self) -> Relay {
        let mut api = self.rtc.sdp_api();
        api.ice_restart(true);
        let (offer, pending) = api.apply().expect("an ICE restart offer");
        self.pending = Some(pending);
        self.relay(RelayKind::Offer, offer.to_sdp_string())
    }

    /// A relay from the box; an answer to send back when it was an offer we take.
    pub fn handle_relay(&mut self, r: &Relay) -> Result<Option<Relay>, Refused> {
        let refuse = |m: &str| Err(Refused::Protocol(m.to_owned()));
        let same_pc = r.pc() == Some(self.pc.as_str());
        match r.kind {
            // docs/protocol.md: answers and candidates for another connection are dropped.
            RelayKind::Answer | RelayKind::IceCandidate | RelayKind::View if !same_pc => Ok(None),
            RelayKind::Sealed => refuse("a sealed relay (opened before the call)"),
            RelayKind::View => {
                self.views.push(r.view_wishes());
                Ok(None)
            }
            RelayKind::Offer => {
                // Perfect negotiation: on glare the impolite side ignores the offer, the
                // polite one rolls its own back (accept_offer does).
                let polite = self.id < self.box_id;
                if self.pending.is_some() && !polite {
                    return Ok(None);
                }
                self.pending = None;
                // Taking an offer for another connection: the web client adopts its id.
                self.pc = r.pc().unwrap_or_default().to_owned();
                let Some(sdp) = r.sdp_text() else {
                    return refuse("an offer without sdp");
                };
                let offer = SdpOffer::from_sdp_string(sdp).map_err(rtc)?;
                let answer = self.rtc.sdp_api().accept_offer(offer).map_err(rtc)?;
                self.renegotiations += 1;
                Ok(Some(self.relay(RelayKind::Answer, answer.to_sdp_string())))
            }
            RelayKind::Answer => {
                let Some(sdp) = r.sdp_text() else {
                    return refuse("an answer without sdp");
                };
                let Some(pending) = self.pending.take() else {
                    return refuse("an answer without an offer of ours");
                };
                let answer = SdpAnswer::from_sdp_string(sdp).map_err(rtc)?;
                self.rtc
                    .sdp_api()
                    .accept_answer(pending, answer)
                    .map_err(rtc)?;
                Ok(None)
            }
            RelayKind::IceCandidate => {
                let init = r
                    .ice_candidate()
                    .map_err(|e| Refused::Protocol(format!("ice-candidate: {e}")))?;
                match init {
                    Some(IceCandidateInit { candidate, .. }) if !candidate.is_empty() => {
                        let c = Candidate::from_sdp_string(&candidate).map_err(rtc)?;
                        self.rtc.add_remote_candidate(c);
                    }
                    _ => {} // the end of candidates
                }
                Ok(None)
            }
        }
    }

    /// A datagram from `source` to our address; ones str0m does not take are ignored.
    pub fn handle_datagram(&mut self, source: SocketAddr, contents: &[u8], now: Instant) {
        let Ok(contents) = contents.try_into() else {
            return; // not STUN, DTLS or RTP
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents,
            },
        );
        if self.rtc.accepts(&input) {
            let _ = self.rtc.handle_input(input);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = self.rtc.handle_input(Input::Timeout(now));
    }

    /// Drains str0m to its next timeout: the datagrams to send and what was seen.
    pub fn poll(&mut self) -> Result<(Vec<Sent>, Vec<Seen>), Refused> {
        let (mut sent, mut seen) = (Vec::new(), Vec::new());
        loop {
            match self.rtc.poll_output().map_err(rtc)? {
                Output::Timeout(t) => {
                    self.timeout = t;
                    return Ok((sent, seen));
                }
                Output::Transmit(t) => sent.push(Sent {
                    source: t.source,
                    destination: t.destination,
                    contents: t.contents.into(),
                }),
                Output::Event(e) => match e {
                    Event::Connected => {
                        self.connected = true;
                        seen.push(Seen::Connected);
                    }
                    Event::MediaAdded(m) if m.kind == MediaKind::Audio => {
                        self.audio_mid.get_or_insert(m.mid);
                    }
                    Event::MediaAdded(m) if Some(m.mid) != self.screen_mid => {
                        self.video_mid.get_or_insert(m.mid);
                    }
                    Event::KeyframeRequest(_) => seen.push(Seen::KeyframeRequested),
                    Event::MediaData(d) if d.params.spec().codec == Codec::H264 => {
                        if self.sealed_video.len() == SEALED_KEPT {
                            self.sealed_video.pop_front();
                        }
                        self.sealed_video.push_back(d.data.clone());
                        let Some(data) = self.box_keys.open_h264(&d.data) else {
                            self.unopened += 1;
                            continue;
                        };
                        let keyframe = is_keyframe(&data);
                        self.first_frame_was_keyframe.get_or_insert(keyframe);
                        self.video_frames += 1;
                        self.keyframes += usize::from(keyframe);
                        seen.push(Seen::Video {
                            mid: d.mid,
                            timing: FrameTiming::of(&d),
                            data: data.into(),
                            keyframe,
                        });
                    }
                    Event::MediaData(d) => {
                        if self.box_keys.open_opus(&d.data).is_none() {
                            self.unopened += 1;
                            continue;
                        }
                        self.audio_packets += 1;
                        seen.push(Seen::Audio {
                            mid: d.mid,
                            timing: FrameTiming::of(&d),
                        });
                    }
                    _ => {}
                },
            }
        }
    }

    /// Asks the box for a keyframe, as a decoder that lost its place does (PLI).
    pub fn request_keyframe(&mut self) {
        if let Some(mid) = self.video_mid {
            if let Some(mut w) = self.rtc.writer(mid) {
                let _ = w.request_keyframe(None, KeyframeRequestKind::Pli);
            }
        }
    }

    /// The next 20 ms Opus packet from the microphone; dropped before the media is up.
    pub fn write_audio(&mut self, packet: &[u8], now: Instant) {
        let Some(mid) = self.audio_mid else { return };
        let Some((writer, pt)) = super::session::opus_writer(&mut self.rtc, mid) else {
            return;
        };
        let time = MediaTime::new(self.audio_n * 960, Frequency::FORTY_EIGHT_KHZ);
        self.audio_n += 1;
        let writer = match self.voice_level {
            Some(level) => writer.audio_level(level, true),
            None => writer,
        };
        let sealed = self.sealing.seal_opus(packet, rand::random());
        let _ = writer.write(pt, now, time, sealed);
    }
}

fn rtc(e: impl std::fmt::Display) -> Refused {
    Refused::Rtc(e.to_string())
}

pub use crate::encode::h264::is_keyframe;
