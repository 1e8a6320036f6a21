//! One WebRTC session with one remote participant: a plain struct over `str0m::Rtc`.
//!
//! Sans-IO: it never touches a socket or reads the clock. Every mutating method drains the
//! `Rtc` to its next timeout before it returns (str0m's single-mutation invariant), queueing
//! datagrams to send, signaling messages to relay and notices for the box.

use super::Datagram;
use crate::media::VideoKind;
use roombox_protocol::{IceCandidateInit, PeerId, Relay, RelayKind, ViewWish};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::bwe::{Bitrate, BweKind};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::{Codec, CodecConfig};
use str0m::media::{Direction, Frequency, KeyframeRequestKind, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

/// Resends (RTX) may take up to half of what the video stream sends in a second, as
/// libwebrtc's retransmission limiter allows resends up to the target bitrate. str0m's default
/// (15%) stops answering NACKs at about 12% loss: a 30% burst then froze the page for 4 s
/// until a keyframe (bench/network/RESULTS.md).
const RTX_RATIO_CAP: f32 = 0.5;
/// How far back a NACK can reach (str0m's defaults: 2000 packets, 3 s).
const RTX_CACHE_PACKETS: usize = 2000;
const RTX_CACHE_AGE: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("bad SDP from the peer: {0}")]
    Sdp(String),
    #[error("WebRTC: {0}")]
    Rtc(#[from] str0m::RtcError),
}

/// Something the box must act on.
#[derive(Debug)]
pub enum Notice {
    /// ICE and DTLS are up: media can flow.
    Connected,
    /// Connected with an m-line to send our video on: this viewer needs a keyframe now. Not
    /// at `Connected`: a newcomer offers audio only and gets our video by renegotiation, often
    /// after connecting, and a keyframe made before then would go nowhere while the encoder
    /// spaces the next one 300 ms later.
    VideoReady,
    /// ICE lost the peer; it may come back (the browser restarts ICE).
    Disconnected,
    /// The viewer asked for a keyframe (PLI or FIR).
    KeyframeRequested,
    /// A new send-side bandwidth estimate, bits a second.
    Estimate(u64),
    /// One Opus packet from the peer's microphone, with its loudness when the peer sends it
    /// (RFC 6464, in dBov: 0 loudest, -127 silence).
    Audio {
        seq: u16,
        payload: Arc<[u8]>,
        level: Option<i8>,
    },
    /// One H.264 access unit (Annex B) of one of the peer's videos (`track`: its m-line), a
    /// camera or a shared screen; `keyframe` when a decoder can start from it.
    Video {
        track: String,
        kind: VideoKind,
        payload: Arc<[u8]>,
        keyframe: bool,
    },
}

/// Our offer in flight, and the m-lines it adds: they exist only once the peer answers (a
/// polite rollback discards them).
struct PendingOffer {
    offer: SdpPendingOffer,
    audio: Option<Mid>,
    video: Option<Mid>,
}

pub struct Session {
    peer: PeerId,
    rtc: Rtc,
    /// The connection's id, sent as `pc` on every message (docs/protocol.md): chosen by
    /// whichever side started the connection, echoed by the other.
    pc: String,
    /// Perfect negotiation: the polite side yields on glare.
    polite: bool,
    pending: Option<PendingOffer>,
    audio_mid: Option<Mid>,
    video_mid: Option<Mid>,
    /// The video m-line whose resend cache has our limits.
    rtx_configured: Option<Mid>,
    connected: bool,
    /// A viewer that joined mid-GOP can decode nothing until a keyframe.
    awaiting_keyframe: bool,
    /// `VideoReady` was told for this connection.
    video_ready_told: bool,
    /// The peer's videos (a camera, a screen), by m-line.
    remote_videos: HashMap<Mid, RemoteVideo>,
    /// What the peer says each m-line carries; unlabelled video counts as a screen (clients
    /// before labels sent video only to share a screen).
    video_kinds: HashMap<Mid, VideoKind>,
    /// What we last told the peer we show of its videos (`view`).
    view_sent: BTreeMap<String, ViewWish>,
    next_timeout: Instant,
    transmits: VecDeque<Datagram>,
    signals: VecDeque<Relay>,
    notices: VecDeque<Notice>,
    pub rtt: Option<Duration>,
    pub estimate_bps: Option<u64>,
}

/// The codecs with transport-cc feedback on video only. str0m probes for bandwidth, before any
/// video stream exists, with SSRC 0 padding on the first m-line whose codec has transport-cc:
/// the audio one. A browser makes an unsignaled receive stream of SSRC 0 on that m-line, which
/// can take the receiver's frame transform and the box's voice with it (docs/decisions.md).
/// Without it on audio, probes ride on video; the estimate rests on video, as browsers' did
/// for years.
fn without_audio_transport_cc(codecs: &CodecConfig) -> CodecConfig {
    let params = codecs
        .params()
        .iter()
        .map(|p| {
            let mut p = *p;
            if p.spec().codec.is_audio() {
                p.set_fb_transport_cc(false);
            }
            p
        })
        .collect();
    CodecConfig::new_from_payload_params(params)
}

impl Session {
    /// A session with our local candidates added; `start_bps`/`max_bps` seed the estimator.
    /// `pc` is the connection's id: the peer's when it offered first, else a new one.
    pub fn new(
        peer: PeerId,
        pc: String,
        polite: bool,
        local_candidates: &[Candidate],
        start_bps: u64,
        max_bps: u64,
        now: Instant,
    ) -> Session {
        let mut config = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_h264(true)
            .enable_bwe(Some(Bitrate::bps(start_bps)))
            .set_stats_interval(Some(Duration::from_secs(1)));
        *config.codec_config() = without_audio_transport_cc(config.codec_config());
        let mut rtc = config.build(now);
        // No padding to sustain a rate (minimum 0); probe up to what the encoder may send.
        rtc.bwe()
            .set_bitrate(Bitrate::bps(0), Bitrate::bps(max_bps));
        for c in local_candidates {
            rtc.add_local_candidate(c.clone());
        }
        let mut s = Session {
            peer,
            rtc,
            pc,
            polite,
            pending: None,
            audio_mid: None,
            video_mid: None,
            rtx_configured: None,
            connected: false,
            awaiting_keyframe: true,
            video_ready_told: false,
            remote_videos: HashMap::new(),
            video_kinds: HashMap::new(),
            view_sent: BTreeMap::new(),
            next_timeout: now,
            transmits: VecDeque::new(),
            signals: VecDeque::new(),
            notices: VecDeque::new(),
            rtt: None,
            estimate_bps: None,
        };
        s.drain(now);
        s
    }

    pub fn pc(&self) -> &str {
        &self.pc
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    pub fn is_alive(&self) -> bool {
        self.rtc.is_alive()
    }

    pub fn next_timeout(&self) -> Instant {
        self.next_timeout
    }

    /// Offers our audio (send and receive) and video (send) tracks, if not yet negotiated.
    pub fn negotiate(&mut self, now: Instant) -> Result<(), SessionError> {
        if self.pending.is_some() || (self.audio_mid.is_some() && self.video_mid.is_some()) {
            return Ok(());
        }
        let mut change = self.rtc.sdp_api();
        let stream = Some("roombox".to_owned());
        let audio = self.audio_mid.is_none().then(|| {
            let track = Some("room-audio".to_owned());
            change.add_media(
                MediaKind::Audio,
                Direction::SendRecv,
                stream.clone(),
                track,
                None,
            )
        });
        let video = self.video_mid.is_none().then(|| {
            let track = Some("hdmi".to_owned());
            change.add_media(
                MediaKind::Video,
                Direction::SendOnly,
                stream.clone(),
                track,
                None,
            )
        });
        if let Some((offer, pending)) = change.apply() {
            self.pending = Some(PendingOffer {
                offer: pending,
                audio,
                video,
            });
            self.queue_sdp(RelayKind::Offer, offer.to_sdp_string());
        }
        self.drain(now);
        Ok(())
    }

    /// What the peer says its m-lines carry (`media` on its offer or answer).
    pub fn set_media_labels(&mut self, labels: &BTreeMap<String, String>) {
        for (mid, label) in labels {
            match VideoKind::from_label(label) {
                Some(kind) => {
                    self.video_kinds.insert(Mid::from(mid.as_str()), kind);
                }
                None => tracing::debug!(peer = %self.peer, %mid, %label, "unknown media label"),
            }
        }
    }

    /// Tells the peer how much of each of its videos (by track) the room's display shows, when
    /// that changed since we last said; nothing while there is nothing to say.
    pub fn show_videos(&mut self, wishes: &BTreeMap<String, ViewWish>) {
        if wishes.is_empty() || *wishes == self.view_sent {
            return;
        }
        self.view_sent = wishes.clone();
        let relay = Relay::view(self.peer.clone(), wishes).with_pc(self.pc.clone());
        self.signals.push_back(relay);
    }

    /// An offer from the peer: a new call, a renegotiation (screen share) or an ICE restart.
    pub fn handle_offer(&mut self, sdp: &str, now: Instant) -> Result<(), SessionError> {
        if self.pending.is_some() && !self.polite {
            // Glare, and we are the impolite side: our offer stands, theirs is dropped.
            tracing::debug!(peer = %self.peer, "ignoring a colliding offer");
            return Ok(());
        }
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| SessionError::Sdp(e.to_string()))?;
        // accept_offer rolls back a pending offer of ours (we are polite).
        self.pending = None;
        let answer = self.rtc.sdp_api().accept_offer(offer)?;
        self.adopt_offered_media(sdp);
        self.queue_sdp(RelayKind::Answer, answer.to_sdp_string());
        self.drain(now);
        // The peer's offer may have had no m-line we can send video on: add ours.
        self.negotiate(now)
    }

    pub fn handle_answer(&mut self, sdp: &str, now: Instant) -> Result<(), SessionError> {
        let Some(pending) = self.pending.take() else {
            tracing::debug!(peer = %self.peer, "answer without an offer; ignored");
            return Ok(());
        };
        let answer =
            SdpAnswer::from_sdp_string(sdp).map_err(|e| SessionError::Sdp(e.to_string()))?;
        self.rtc.sdp_api().accept_answer(pending.offer, answer)?;
        self.audio_mid = self.audio_mid.or(pending.audio);
        self.video_mid = self.video_mid.or(pending.video);
        self.drain(now);
        Ok(())
    }

    /// A trickled remote candidate; None is end of candidates. Unusable ones (mDNS names,
    /// TCP) are skipped: they are the peer's extra options, not errors.
    pub fn handle_candidate(&mut self, candidate: Option<IceCandidateInit>, now: Instant) {
        let Some(init) = candidate else { return };
        if init.candidate.is_empty() {
            return;
        }
        match Candidate::from_sdp_string(&init.candidate) {
            Ok(c) => {
                self.rtc.add_remote_candidate(c);
                self.drain(now);
            }
            Err(e) => {
                tracing::debug!(peer = %self.peer, "skipping candidate {:?}: {e}", init.candidate);
            }
        }
    }

    /// Adds a candidate found after the offer/answer (server-reflexive) and trickles it.
    pub fn add_local_candidate(&mut self, c: Candidate, now: Instant) {
        if let Some(added) = self.rtc.add_local_candidate(c) {
            let init = IceCandidateInit {
                candidate: added.to_sdp_string(),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
                username_fragment: None,
            };
            let relay = Relay::candidate(self.peer.clone(), Some(&init)).with_pc(self.pc.clone());
            self.signals.push_back(relay);
        }
        self.drain(now);
    }

    /// The box's addresses changed: candidates of addresses that went away are dropped, new
    /// ones added, and ICE restarts (an offer with new credentials and the candidates we have
    /// now), so the call moves to a path that works. With our offer already in flight the new
    /// candidates are trickled instead, and the restart waits for the next change.
    pub fn restart_ice(
        &mut self,
        added: &[Candidate],
        removed: &[Candidate],
        now: Instant,
    ) -> Result<(), SessionError> {
        for c in removed {
            self.rtc.direct_api().invalidate_candidate(c);
        }
        if self.pending.is_some() {
            for c in added {
                self.add_local_candidate(c.clone(), now);
            }
            return Ok(());
        }
        for c in added {
            self.rtc.add_local_candidate(c.clone());
        }
        let mut change = self.rtc.sdp_api();
        change.ice_restart(true);
        if let Some((offer, pending)) = change.apply() {
            tracing::info!(peer = %self.peer, "local addresses changed: restarting ICE");
            self.pending = Some(PendingOffer {
                offer: pending,
                audio: None,
                video: None,
            });
            self.queue_sdp(RelayKind::Offer, offer.to_sdp_string());
        }
        self.drain(now);
        Ok(())
    }

    pub fn accepts(&self, source: SocketAddr, destination: SocketAddr, contents: &[u8]) -> bool {
        match receive(source, destination, contents) {
            Some(r) => self.rtc.accepts(&Input::Receive(self.next_timeout, r)),
            None => false,
        }
    }

    pub fn handle_datagram(
        &mut self,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
        now: Instant,
    ) {
        if let Some(r) = receive(source, destination, contents) {
            if let Err(e) = self.rtc.handle_input(Input::Receive(now, r)) {
                tracing::debug!(peer = %self.peer, "bad datagram: {e}");
            }
            self.drain(now);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next_timeout {
            if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
                tracing::warn!(peer = %self.peer, "timeout handling failed: {e}");
            }
            self.drain(now);
        }
    }

    /// Sends one encoded video frame (Annex B), unless this viewer still waits for a keyframe.
    /// Returns false when the frame was held back for want of a keyframe.
    pub fn write_video(
        &mut self,
        annex_b: &Arc<[u8]>,
        keyframe: bool,
        pts: Duration,
        captured_at: Instant,
        now: Instant,
    ) -> bool {
        let Some(mid) = self.video_mid else {
            return true;
        };
        if !self.connected {
            return true;
        }
        if self.awaiting_keyframe && !keyframe {
            return false;
        }
        if self.rtx_configured != Some(mid) {
            if let Some(tx) = self.rtc.direct_api().stream_tx_by_mid(mid, None) {
                tx.set_rtx_cache(RTX_CACHE_PACKETS, RTX_CACHE_AGE, Some(RTX_RATIO_CAP));
                self.rtx_configured = Some(mid);
            }
        }
        let Some(writer) = self.rtc.writer(mid) else {
            return true;
        };
        let Some(pt) = h264_pt(writer.payload_params().map(|p| (p.pt(), p.spec()))) else {
            return true;
        };
        let time = MediaTime::new(duration_ticks(pts, 90_000), Frequency::NINETY_KHZ);
        match writer.write(pt, captured_at, time, annex_b.clone()) {
            Ok(()) => self.awaiting_keyframe &= !keyframe,
            Err(e) => tracing::debug!(peer = %self.peer, "video write: {e}"),
        }
        self.drain(now);
        true
    }

    /// Sends one 20 ms Opus packet; `pts` is the sample clock of the room audio.
    pub fn write_audio(
        &mut self,
        opus: &Arc<[u8]>,
        pts: Duration,
        captured_at: Instant,
        now: Instant,
    ) {
        let Some(mid) = self.audio_mid else { return };
        if !self.connected {
            return;
        }
        let Some((writer, pt)) = opus_writer(&mut self.rtc, mid) else {
            return;
        };
        let time = MediaTime::new(duration_ticks(pts, 48_000), Frequency::FORTY_EIGHT_KHZ);
        if let Err(e) = writer.write(pt, captured_at, time, opus.clone()) {
            tracing::debug!(peer = %self.peer, "audio write: {e}");
        }
        self.drain(now);
    }

    pub fn close(&mut self) {
        self.rtc.disconnect();
    }

    pub fn poll_transmit(&mut self) -> Option<Datagram> {
        self.transmits.pop_front()
    }

    pub fn poll_signal(&mut self) -> Option<Relay> {
        self.signals.pop_front()
    }

    pub fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    /// Takes the peer's offered m-lines we may send on as ours. str0m's `MediaAdded` comes
    /// only once media can flow, too late to decide whether to add our own m-lines.
    fn adopt_offered_media(&mut self, offer_sdp: &str) {
        let mids = offer_sdp
            .lines()
            .filter_map(|l| l.trim_end().strip_prefix("a=mid:"));
        for mid in mids {
            let Some(media) = self.rtc.media(Mid::from(mid)) else {
                continue;
            };
            if !media.direction().is_sending() {
                continue;
            }
            let slot = match media.kind() {
                MediaKind::Audio => &mut self.audio_mid,
                MediaKind::Video => &mut self.video_mid,
            };
            slot.get_or_insert(media.mid());
        }
    }

    fn queue_sdp(&mut self, kind: RelayKind, sdp: String) {
        let relay = Relay::sdp(kind, self.peer.clone(), sdp).with_pc(self.pc.clone());
        self.signals.push_back(relay);
    }

    /// `VideoReady` once a connection has both ICE/DTLS and an m-line to send video on,
    /// whichever came last (every path that sets them ends in `drain`).
    fn tell_video_ready(&mut self) {
        if self.connected && self.video_mid.is_some() && !self.video_ready_told {
            self.video_ready_told = true;
            self.notices.push_back(Notice::VideoReady);
        }
    }

    /// Drains the Rtc to its next timeout (the single-mutation invariant).
    fn drain(&mut self, now: Instant) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.next_timeout = t;
                    self.tell_video_ready();
                    return;
                }
                Ok(Output::Transmit(t)) => self.transmits.push_back(Datagram {
                    source: t.source,
                    destination: t.destination,
                    contents: t.contents.into(),
                }),
                Ok(Output::Event(e)) => self.handle_event(e),
                Err(e) => {
                    tracing::warn!(peer = %self.peer, "WebRTC session failed: {e}");
                    self.rtc.disconnect();
                    self.next_timeout = now + Duration::from_secs(1);
                    return;
                }
            }
        }
    }

    fn handle_event(&mut self, event: Event) {
        match event {
            Event::Connected => {
                self.connected = true;
                self.awaiting_keyframe = true;
                self.video_ready_told = false;
                self.notices.push_back(Notice::Connected);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.notices.push_back(Notice::Disconnected);
            }
            Event::IceConnectionStateChange(state) => {
                tracing::debug!(peer = %self.peer, ?state, "ICE state");
            }
            Event::MediaAdded(m) => {
                // The peer's m-lines: take the first we may send on for each kind.
                let slot = match m.kind {
                    MediaKind::Audio => &mut self.audio_mid,
                    MediaKind::Video => &mut self.video_mid,
                };
                if slot.is_none() && m.direction.is_sending() {
                    *slot = Some(m.mid);
                }
            }
            Event::MediaData(d) if d.params.spec().codec == Codec::Opus => {
                self.notices.push_back(Notice::Audio {
                    seq: (**d.seq_range.start()) as u16,
                    level: d.ext_vals.audio_level,
                    payload: d.data,
                });
            }
            Event::MediaData(d) if d.params.spec().codec == Codec::H264 => {
                self.receive_video(d);
            }
            Event::KeyframeRequest(_) => self.notices.push_back(Notice::KeyframeRequested),
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                self.estimate_bps = Some(estimate.as_u64());
                self.notices.push_back(Notice::Estimate(estimate.as_u64()));
            }
            Event::MediaEgressStats(s) if s.rtt.is_some() => self.rtt = s.rtt,
            _ => {}
        }
    }
}

/// Receiving one of the peer's videos: we pass nothing on until its next keyframe, asked for
/// when its first frame, or a frame after a gap, is not one; asked once per half second while
/// waiting, not once per frame.
struct RemoteVideo {
    waits_for_keyframe: bool,
    keyframe_asked_at: Option<Instant>,
}

impl Session {
    /// A frame of the peer's video: passed on from a keyframe on; after a gap (frames lost
    /// beyond what resends repaired) the decoder's picture is broken until the next keyframe,
    /// so one is asked for (PLI) and nothing is passed on until it comes.
    fn receive_video(&mut self, d: str0m::media::MediaData) {
        let keyframe = crate::encode::h264::is_keyframe(&d.data);
        let video = self.remote_videos.entry(d.mid).or_insert(RemoteVideo {
            waits_for_keyframe: true,
            keyframe_asked_at: None,
        });
        if !d.contiguous {
            video.waits_for_keyframe = true;
        }
        if video.waits_for_keyframe && !keyframe {
            self.ask_for_remote_keyframe(d.mid, d.network_time);
            return;
        }
        video.waits_for_keyframe = false;
        let kind = self.video_kinds.get(&d.mid).copied();
        self.notices.push_back(Notice::Video {
            track: d.mid.to_string(),
            kind: kind.unwrap_or(VideoKind::Screen),
            payload: d.data,
            keyframe,
        });
    }

    /// A frame of the peer's video `track` was lost after the session passed it on (the
    /// display fell behind): nothing more until a keyframe, which is asked for.
    pub fn restart_remote_video(&mut self, track: &str, now: Instant) {
        let mid = Mid::from(track);
        if let Some(video) = self.remote_videos.get_mut(&mid) {
            video.waits_for_keyframe = true;
            self.ask_for_remote_keyframe(mid, now);
        }
        self.drain(now);
    }

    /// Another user of the peer's video `track` than the display (the recording of what
    /// people send) lost a frame: the peer is asked for a keyframe (at most every 500 ms),
    /// and the display's frames carry on as they are.
    pub fn ask_for_keyframe(&mut self, track: &str, now: Instant) {
        self.ask_for_remote_keyframe(Mid::from(track), now);
        self.drain(now);
    }

    fn ask_for_remote_keyframe(&mut self, mid: Mid, now: Instant) {
        const AGAIN_AFTER: Duration = Duration::from_millis(500);
        let Some(video) = self.remote_videos.get_mut(&mid) else {
            return;
        };
        if video
            .keyframe_asked_at
            .is_some_and(|t| now.saturating_duration_since(t) < AGAIN_AFTER)
        {
            return;
        }
        if let Some(mut w) = self.rtc.writer(mid) {
            if w.request_keyframe(None, KeyframeRequestKind::Pli).is_ok() {
                video.keyframe_asked_at = Some(now);
            }
        }
    }
}

fn receive(source: SocketAddr, destination: SocketAddr, contents: &[u8]) -> Option<Receive<'_>> {
    Some(Receive {
        proto: Protocol::Udp,
        source,
        destination,
        contents: contents.try_into().ok()?,
    })
}

/// The H.264 payload type to send: packetization mode 1, constrained baseline when offered.
fn h264_pt(params: impl Iterator<Item = (Pt, str0m::format::CodecSpec)>) -> Option<Pt> {
    let h264: Vec<_> = params
        .filter(|(_, spec)| spec.codec == Codec::H264 && spec.format.packetization_mode == Some(1))
        .collect();
    h264.iter()
        .find(|(_, spec)| {
            spec.format
                .profile_level_id
                .is_some_and(|p| p >> 8 == 0x42e0)
        })
        .or_else(|| h264.first())
        .map(|(pt, _)| *pt)
}

fn duration_ticks(d: Duration, hz: u64) -> u64 {
    (d.as_nanos() * u128::from(hz) / 1_000_000_000) as u64
}

/// The writer of the audio m-line `mid` and its Opus payload type, once negotiated.
pub(crate) fn opus_writer(rtc: &mut Rtc, mid: Mid) -> Option<(str0m::media::Writer<'_>, Pt)> {
    let writer = rtc.writer(mid)?;
    let pt = writer
        .payload_params()
        .find(|p| p.spec().codec == Codec::Opus)
        .map(str0m::format::PayloadParams::pt)?;
    Some((writer, pt))
}

#[cfg(test)]
mod tests;
