//! One join/leave cycle as a browser would do it: join the room, offer audio (send and receive)
//! and video (receive) to the box, answer its renegotiation if it makes one, trickle ICE, wait
//! for the connection and the first media from the box, then go.
//!
//! The `Rtc` is driven by hand in one task, keeping str0m's single-mutation invariant: after
//! every mutation (`sdp_api`, `handle_input`, `writer`, `add_remote_candidate`, `close`) the
//! output is drained to its `Timeout` before anything else happens.

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use roombox_protocol::{
    ClientMessage, ErrorCode, IceCandidateInit, Join, PeerId, PeerKind, Relay, RelayKind, RoomName,
    ServerMessage,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, KeyframeRequestKind, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::{TcpStream, UdpSocket};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a peer goes once it has seen media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeaveMode {
    /// `leave` on the signaling socket, then close it; the `Rtc` is dropped without a word.
    Leave,
    /// As a closing tab: RTCP BYE and DTLS close_notify (`Rtc::close`), then `leave`.
    Close,
    /// As a killed tab: the TCP connection just goes (no `leave`, no close frame); the server
    /// announces `peer-left` when it notices.
    Drop,
    /// Leave, close and drop in turn, cycle by cycle.
    Mixed,
}

impl LeaveMode {
    /// The concrete mode of cycle `n`.
    pub fn for_cycle(self, n: u64) -> LeaveMode {
        match self {
            LeaveMode::Mixed => {
                [LeaveMode::Leave, LeaveMode::Close, LeaveMode::Drop][(n % 3) as usize]
            }
            m => m,
        }
    }
}

pub struct CycleConfig {
    /// `ws://HOST/ws`.
    pub ws_url: String,
    pub room: RoomName,
    /// Opus packets (20 ms each) sent in a loop as the peer's microphone.
    pub audio: Arc<Vec<Arc<[u8]>>>,
    /// Fail a cycle whose first decoded picture is not this size.
    pub expect_size: Option<(usize, usize)>,
}

/// What one successful cycle saw.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// From opening the WebSocket to str0m's `Connected` (ICE and DTLS up).
    pub connect_ms: f64,
    /// From opening the WebSocket to the first decoded video frame and first audio packet.
    pub media_ms: f64,
    pub width: usize,
    pub height: usize,
    pub video_frames: u32,
    pub audio_packets: u32,
    /// Offers from the box on our connection after its answer.
    pub renegotiations: u32,
    /// `room-full` refusals before the join went through (a previous peer's slot not yet freed).
    pub room_full_retries: u32,
    /// The first video and audio came on the m-lines of our offer (not on ones the box added
    /// by renegotiating).
    pub video_on_offered_mid: bool,
    pub audio_on_offered_mid: bool,
    pub leave: LeaveMode,
}

/// Runs one cycle. The caller bounds it with a timeout; dropping the future drops everything.
pub async fn run_cycle(cfg: &CycleConfig, name: &str, leave: LeaveMode) -> anyhow::Result<Outcome> {
    let t0 = Instant::now();
    let (mut ws, _) = tokio_tungstenite::connect_async(cfg.ws_url.as_str())
        .await
        .context("signaling connect")?;

    let join = ClientMessage::Join(Join {
        room: cfg.room.clone(),
        name: name.to_owned(),
        kind: PeerKind::Browser,
        resume: None,
    });
    send(&mut ws, &join).await?;
    let mut room_full_retries = 0;
    let welcome = loop {
        match next_message(&mut ws).await? {
            ServerMessage::Welcome(w) => break w,
            ServerMessage::Error {
                code: ErrorCode::RoomFull,
                ..
            } => {
                // Another soak peer's slot is still being freed; try again shortly.
                room_full_retries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                send(&mut ws, &join).await?;
            }
            ServerMessage::Error { code, message } => bail!("join refused: {code}: {message}"),
            _ => {}
        }
    };
    let box_id = welcome
        .peers
        .iter()
        .find(|p| p.kind == PeerKind::Appliance)
        .map(|p| p.id.clone())
        .ok_or_else(|| anyhow!("no appliance in the room (peers: {:?})", welcome.peers))?;

    let socket = UdpSocket::bind("127.0.0.1:0").await.context("UDP bind")?;
    let local = socket.local_addr()?;
    let mut peer = Peer::new(box_id.clone(), local, cfg.expect_size)?;

    let mut outbox = Vec::new();
    peer.start(&mut outbox)?;
    peer.drain(&socket)?;
    for m in outbox.drain(..) {
        send(&mut ws, &m).await?;
    }

    let mut audio_tick = tokio::time::interval(Duration::from_millis(20));
    audio_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = vec![0u8; 2048];
    while !peer.done() {
        let deadline = peer.next_timeout;
        tokio::select! {
            frame = ws.next() => {
                let text = match frame {
                    None => bail!("signaling socket closed"),
                    Some(Err(e)) => bail!("signaling socket: {e}"),
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(f))) => bail!("signaling socket closed by the server: {f:?}"),
                    Some(Ok(_)) => continue,
                };
                let msg = ServerMessage::parse(&text).map_err(|e| anyhow!("unreadable server message: {e}"))?;
                match msg {
                    ServerMessage::Relay(r) if r.from.as_ref() == Some(&box_id) => {
                        peer.handle_relay(&r, &mut outbox)?;
                    }
                    ServerMessage::PeerLeft { id } if id == box_id => bail!("the box left the room"),
                    ServerMessage::Error { code, message } => bail!("server error: {code}: {message}"),
                    _ => continue,
                }
            }
            r = socket.recv_from(&mut buf) => {
                let (n, source) = r.context("UDP receive")?;
                peer.handle_datagram(source, &buf[..n])?;
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                peer.handle_timeout()?;
            }
            _ = audio_tick.tick(), if peer.connected.is_some() => {
                peer.write_audio(&cfg.audio);
            }
        }
        peer.drain(&socket)?;
        for m in outbox.drain(..) {
            send(&mut ws, &m).await?;
        }
    }

    let video = peer.video.expect("done");
    let outcome = Outcome {
        connect_ms: ms(peer.connected.expect("done") - t0),
        media_ms: ms(Instant::now() - t0),
        width: video.0,
        height: video.1,
        video_frames: peer.video_frames,
        audio_packets: peer.audio_packets,
        renegotiations: peer.renegotiations,
        room_full_retries,
        video_on_offered_mid: peer.first_video_mid == peer.video_mid,
        audio_on_offered_mid: peer.first_audio_mid == peer.audio_mid,
        leave,
    };

    match leave {
        LeaveMode::Leave | LeaveMode::Mixed => {
            send(&mut ws, &ClientMessage::Leave).await?;
            ws.close(None).await.ok();
        }
        LeaveMode::Close => {
            peer.rtc.close().context("Rtc::close")?;
            peer.drain(&socket)?;
            send(&mut ws, &ClientMessage::Leave).await?;
            ws.close(None).await.ok();
        }
        LeaveMode::Drop => {}
    }
    drop(ws);
    drop(socket);
    drop(peer);
    Ok(outcome)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn send(ws: &mut Ws, msg: &ClientMessage) -> anyhow::Result<()> {
    ws.send(Message::text(msg.to_json()))
        .await
        .context("signaling send")
}

async fn next_message(ws: &mut Ws) -> anyhow::Result<ServerMessage> {
    loop {
        match ws.next().await {
            None => bail!("signaling socket closed"),
            Some(Err(e)) => bail!("signaling socket: {e}"),
            Some(Ok(Message::Text(t))) => {
                return ServerMessage::parse(&t)
                    .map_err(|e| anyhow!("unreadable server message: {e}"));
            }
            Some(Ok(_)) => {}
        }
    }
}

/// The WebRTC side of one cycle.
struct Peer {
    box_id: PeerId,
    rtc: Rtc,
    local: SocketAddr,
    pc: String,
    pending: Option<SdpPendingOffer>,
    audio_mid: Option<Mid>,
    video_mid: Option<Mid>,
    next_timeout: Instant,
    decoder: openh264::decoder::Decoder,
    expect_size: Option<(usize, usize)>,
    connected: Option<Instant>,
    /// Size of the first decoded picture.
    video: Option<(usize, usize)>,
    video_frames: u32,
    audio_packets: u32,
    renegotiations: u32,
    last_pli: Option<Instant>,
    audio_sent: u64,
    first_video_mid: Option<Mid>,
    first_audio_mid: Option<Mid>,
    /// A failure found while draining (a picture of the wrong size).
    failed: Option<String>,
}

impl Peer {
    fn new(
        box_id: PeerId,
        local: SocketAddr,
        expect_size: Option<(usize, usize)>,
    ) -> anyhow::Result<Peer> {
        let now = Instant::now();
        // As a browser: Opus and H.264, the default RTP header extensions, TWCC, NACK.
        let rtc = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_h264(true)
            .set_stats_interval(Some(Duration::from_secs(1)))
            .build(now);
        Ok(Peer {
            box_id,
            rtc,
            local,
            pc: random_pc(),
            pending: None,
            audio_mid: None,
            video_mid: None,
            next_timeout: now,
            decoder: openh264::decoder::Decoder::new().context("H.264 decoder")?,
            expect_size,
            connected: None,
            video: None,
            video_frames: 0,
            audio_packets: 0,
            renegotiations: 0,
            last_pli: None,
            audio_sent: 0,
            first_video_mid: None,
            first_audio_mid: None,
            failed: None,
        })
    }

    fn done(&self) -> bool {
        self.connected.is_some() && self.video.is_some() && self.audio_packets > 0
    }

    /// Adds our host candidate, makes the offer and trickles the candidate (as browsers do,
    /// even though it is in the SDP too), then end of candidates.
    fn start(&mut self, outbox: &mut Vec<ClientMessage>) -> anyhow::Result<()> {
        let candidate = Candidate::host(self.local, "udp").context("host candidate")?;
        let added = self
            .rtc
            .add_local_candidate(candidate)
            .map(str0m::Candidate::to_sdp_string)
            .ok_or_else(|| anyhow!("str0m refused the host candidate {}", self.local))?;
        let mut change = self.rtc.sdp_api();
        self.audio_mid = Some(change.add_media(
            MediaKind::Audio,
            Direction::SendRecv,
            Some("soak".into()),
            Some("mic".into()),
            None,
        ));
        self.video_mid =
            Some(change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None));
        let (offer, pending) = change.apply().ok_or_else(|| anyhow!("no offer to make"))?;
        self.pending = Some(pending);
        if std::env::var_os("SOAK_DUMP_SDP").is_some() {
            eprintln!("soak: our offer:\n{offer}");
        }
        outbox.push(self.sdp(RelayKind::Offer, offer.to_sdp_string()));
        let init = IceCandidateInit {
            candidate: added,
            sdp_mid: self.audio_mid.map(|m| m.to_string()),
            sdp_m_line_index: Some(0),
            username_fragment: None,
        };
        outbox.push(self.candidate(Some(&init)));
        outbox.push(self.candidate(None));
        Ok(())
    }

    fn handle_relay(
        &mut self,
        relay: &Relay,
        outbox: &mut Vec<ClientMessage>,
    ) -> anyhow::Result<()> {
        let pc = relay.pc().unwrap_or("");
        if pc != self.pc {
            // docs/protocol.md: answers and candidates for another connection are dropped. An
            // offer with another pc would be the box starting a connection of its own, which
            // it never does to a newcomer.
            if relay.kind == RelayKind::Offer {
                bail!(
                    "the box offered a new connection (pc {pc:?}, ours {:?})",
                    self.pc
                );
            }
            return Ok(());
        }
        match relay.kind {
            RelayKind::Answer => {
                let sdp = relay
                    .sdp_text()
                    .ok_or_else(|| anyhow!("answer without sdp"))?;
                let Some(pending) = self.pending.take() else {
                    bail!("an answer without an offer of ours");
                };
                if std::env::var_os("SOAK_DUMP_SDP").is_some() {
                    eprintln!("soak: answer from the box:\n{sdp}");
                }
                let answer = SdpAnswer::from_sdp_string(sdp).context("the box's answer")?;
                self.rtc
                    .sdp_api()
                    .accept_answer(pending, answer)
                    .context("accept answer")?;
            }
            RelayKind::Offer => {
                // Renegotiation by the box (it adds m-lines our offer lacked). We only ever
                // offer once and the box answers before it offers, so there is no glare.
                let sdp = relay
                    .sdp_text()
                    .ok_or_else(|| anyhow!("offer without sdp"))?;
                if self.pending.take().is_some() {
                    bail!("the box offered while our offer was pending");
                }
                if std::env::var_os("SOAK_DUMP_SDP").is_some() {
                    eprintln!("soak: renegotiation offer from the box:\n{sdp}");
                }
                let offer = SdpOffer::from_sdp_string(sdp).context("the box's offer")?;
                let answer = self
                    .rtc
                    .sdp_api()
                    .accept_offer(offer)
                    .context("accept offer")?;
                self.renegotiations += 1;
                outbox.push(self.sdp(RelayKind::Answer, answer.to_sdp_string()));
            }
            RelayKind::IceCandidate => {
                let Some(init) = relay.ice_candidate().context("ice-candidate")? else {
                    return Ok(()); // end of candidates
                };
                if init.candidate.is_empty() {
                    return Ok(());
                }
                let c = Candidate::from_sdp_string(&init.candidate)
                    .with_context(|| format!("the box's candidate {:?}", init.candidate))?;
                self.rtc.add_remote_candidate(c);
            }
        }
        Ok(())
    }

    fn handle_datagram(&mut self, source: SocketAddr, contents: &[u8]) -> anyhow::Result<()> {
        let Ok(contents) = contents.try_into() else {
            return Ok(()); // not STUN, DTLS or RTP
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents,
            },
        );
        if self.rtc.accepts(&input) {
            self.rtc.handle_input(input).context("handle datagram")?;
        }
        Ok(())
    }

    fn handle_timeout(&mut self) -> anyhow::Result<()> {
        self.rtc
            .handle_input(Input::Timeout(Instant::now()))
            .context("handle timeout")
    }

    /// One 20 ms Opus packet of the looped tone.
    fn write_audio(&mut self, packets: &[Arc<[u8]>]) {
        let Some(mid) = self.audio_mid else { return };
        let Some(writer) = self.rtc.writer(mid) else {
            return;
        };
        let Some(pt) = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::Opus)
            .map(str0m::format::PayloadParams::pt)
        else {
            return;
        };
        let packet = packets[(self.audio_sent % packets.len() as u64) as usize].clone();
        let time = MediaTime::new(self.audio_sent * 960, Frequency::FORTY_EIGHT_KHZ);
        self.audio_sent += 1;
        // A write before the media is fully up is dropped by str0m; that is fine for a tone.
        let _ = writer.write(pt, Instant::now(), time, packet);
    }

    /// Drains the Rtc to its next timeout: datagrams go out on `socket`, events are handled.
    fn drain(&mut self, socket: &UdpSocket) -> anyhow::Result<()> {
        loop {
            match self.rtc.poll_output().context("poll_output")? {
                Output::Timeout(t) => {
                    self.next_timeout = t;
                    break;
                }
                Output::Transmit(t) => {
                    // Loopback: a full send buffer drops, as UDP does.
                    let _ = socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(e) => self.handle_event(e),
            }
        }
        match self.failed.take() {
            Some(f) => Err(anyhow!(f)),
            None => Ok(()),
        }
    }

    fn handle_event(&mut self, event: Event) {
        match event {
            Event::Connected => {
                self.connected.get_or_insert_with(Instant::now);
            }
            Event::MediaData(d) if d.params.spec().codec == Codec::Opus => {
                self.audio_packets += 1;
                self.first_audio_mid.get_or_insert(d.mid);
            }
            Event::MediaData(d) if d.params.spec().codec == Codec::H264 => {
                self.video_frames += 1;
                self.first_video_mid.get_or_insert(d.mid);
                if self.video.is_some() {
                    return;
                }
                let size = match self.decoder.decode(&d.data) {
                    Ok(Some(picture)) => {
                        use openh264::formats::YUVSource;
                        Some(picture.dimensions())
                    }
                    Ok(None) | Err(_) => None,
                };
                match size {
                    Some(size) => {
                        if let Some(want) = self.expect_size.filter(|w| *w != size) {
                            self.failed = Some(format!(
                                "decoded {}x{}, expected {}x{}",
                                size.0, size.1, want.0, want.1
                            ));
                        }
                        self.video = Some(size);
                    }
                    None => self.ask_keyframe(d.mid),
                }
            }
            _ => {}
        }
    }

    /// Nothing decodable yet: ask for a keyframe (PLI), at most once a second, as browsers do.
    fn ask_keyframe(&mut self, mid: Mid) {
        let now = Instant::now();
        if self
            .last_pli
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return;
        }
        self.last_pli = Some(now);
        if let Some(mut writer) = self.rtc.writer(mid) {
            let _ = writer.request_keyframe(None, KeyframeRequestKind::Pli);
        }
    }

    fn sdp(&self, kind: RelayKind, sdp: String) -> ClientMessage {
        ClientMessage::Relay(Relay::sdp(kind, self.box_id.clone(), sdp).with_pc(self.pc.clone()))
    }

    fn candidate(&self, init: Option<&IceCandidateInit>) -> ClientMessage {
        ClientMessage::Relay(Relay::candidate(self.box_id.clone(), init).with_pc(self.pc.clone()))
    }
}

/// A fresh connection id for every cycle (docs/protocol.md, `pc`).
fn random_pc() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 12)
}
