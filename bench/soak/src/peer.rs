//! One join/leave cycle as a browser would do it: join the room, offer audio (send and receive)
//! and video (receive) to the box, answer its renegotiation if it makes one, trickle ICE, wait
//! for the connection and the first media from the box, then go.
//!
//! The WebRTC side is the box's own `WebClientPeer` (the web client's protocol played by str0m,
//! as in the box's simulation tests), driven here in one task over a real UDP socket: after
//! every input its output is drained to its timeout before anything else happens. Signaling
//! goes through the box's own sealer (crates/seal), and frames are sealed both ways, as a
//! browser's are (docs/protocol.md, version 2).

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use roombox::calls::web_client::{Seen, WebClientPeer};
use roombox_protocol::{
    ClientMessage, ErrorCode, PeerId, PeerKind, Relay, RelayKind, RoomName, ServerMessage,
};
use roombox_seal::{Hi, RoomSecret, SealOutput, Sealer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::media::Mid;
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
    pub secret: RoomSecret,
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

    let hi = Hi {
        name: name.to_owned(),
        kind: PeerKind::Browser,
    };
    let mut sealer = Sealer::new(&cfg.secret, cfg.room.clone(), hi);
    let join = sealer.join(None);
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

    sealer.handle_welcome(welcome.id.clone(), &welcome.peers);
    let socket = UdpSocket::bind("127.0.0.1:0").await.context("UDP bind")?;
    let local = socket.local_addr()?;
    let mut peer = Peer::new(welcome.id.clone(), box_id.clone(), local, cfg.expect_size)?;

    let mut outbox = peer.start();
    peer.drain(&socket)?;
    seal_out(&mut sealer, &mut peer, &box_id, &mut outbox, &mut ws).await?;

    let mut audio_tick = tokio::time::interval(Duration::from_millis(20));
    audio_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = vec![0u8; 2048];
    while !peer.done() {
        let deadline = peer.web.timeout();
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
                    ServerMessage::Relay(r) => sealer.handle_relay(r),
                    ServerMessage::PeerLeft { id } if id == box_id => bail!("the box left the room"),
                    ServerMessage::PeerJoined { peer } => sealer.handle_peer_joined(&peer),
                    ServerMessage::PeerLeft { id } => sealer.handle_peer_left(&id),
                    // A hello or envelope to the other soak peer, which left while it was on
                    // its way (our sealer pairs with everyone in the room): not ours to fail.
                    ServerMessage::Error { code: ErrorCode::UnknownPeer, .. } => continue,
                    ServerMessage::Error { code, message } => bail!("server error: {code}: {message}"),
                    _ => continue,
                }
            }
            r = socket.recv_from(&mut buf) => {
                let (n, source) = r.context("UDP receive")?;
                peer.web.handle_datagram(source, &buf[..n], Instant::now());
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                peer.web.handle_timeout(Instant::now());
            }
            _ = audio_tick.tick(), if peer.connected.is_some() => {
                peer.write_audio(&cfg.audio);
            }
        }
        peer.drain(&socket)?;
        seal_out(&mut sealer, &mut peer, &box_id, &mut outbox, &mut ws).await?;
    }

    let video = peer.video.expect("done");
    let outcome = Outcome {
        connect_ms: ms(peer.connected.expect("done") - t0),
        media_ms: ms(Instant::now() - t0),
        width: video.0,
        height: video.1,
        video_frames: peer.video_frames,
        audio_packets: peer.audio_packets,
        renegotiations: u32::try_from(peer.web.renegotiations).unwrap_or(u32::MAX),
        room_full_retries,
        video_on_offered_mid: peer.first_video_mid == peer.offered.1,
        audio_on_offered_mid: peer.first_audio_mid == peer.offered.0,
        leave,
    };

    match leave {
        LeaveMode::Leave | LeaveMode::Mixed => {
            send(&mut ws, &ClientMessage::Leave).await?;
            ws.close(None).await.ok();
        }
        LeaveMode::Close => {
            peer.web.close().context("Rtc::close")?;
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

/// Seals what the peer wants sent and acts on what the sealer opened, until both are quiet.
async fn seal_out(
    sealer: &mut Sealer,
    peer: &mut Peer,
    box_id: &PeerId,
    outbox: &mut Vec<ClientMessage>,
    ws: &mut Ws,
) -> anyhow::Result<()> {
    loop {
        for m in outbox.drain(..) {
            match m {
                ClientMessage::Relay(r) => sealer.send(r),
                other => send(ws, &other).await?,
            }
        }
        let Some(out) = sealer.poll_output() else {
            return Ok(());
        };
        match out {
            SealOutput::Send(m) => send(ws, &m).await?,
            SealOutput::Relay(r) if r.from.as_ref() == Some(box_id) => {
                peer.handle_relay(&r, outbox)?;
            }
            // The box's pair is ready: it gets our frame key, as a browser's transform sends.
            SealOutput::Named(info) if &info.id == box_id => {
                sealer.send_media_key(box_id, &peer.web.frame_key());
            }
            SealOutput::MediaKey { id, key } if &id == box_id => peer.web.add_box_key(key),
            SealOutput::Refused { id, refusal } if &id == box_id => {
                bail!("the box was refused: {}", refusal.reason())
            }
            _ => {}
        }
    }
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

/// The WebRTC side of one cycle: the web client's peer, plus what the soak checks of it.
struct Peer {
    web: WebClientPeer,
    /// The audio and video m-lines of our offer.
    offered: (Option<Mid>, Option<Mid>),
    decoder: openh264::decoder::Decoder,
    expect_size: Option<(usize, usize)>,
    connected: Option<Instant>,
    /// Size of the first decoded picture.
    video: Option<(usize, usize)>,
    video_frames: u32,
    audio_packets: u32,
    last_pli: Option<Instant>,
    audio_sent: usize,
    first_video_mid: Option<Mid>,
    first_audio_mid: Option<Mid>,
    /// A failure found while draining (a picture of the wrong size).
    failed: Option<String>,
}

impl Peer {
    fn new(
        id: PeerId,
        box_id: PeerId,
        local: SocketAddr,
        expect_size: Option<(usize, usize)>,
    ) -> anyhow::Result<Peer> {
        let web = WebClientPeer::new(id, box_id, local, random_pc(), Instant::now());
        Ok(Peer {
            web,
            offered: (None, None),
            decoder: openh264::decoder::Decoder::new().context("H.264 decoder")?,
            expect_size,
            connected: None,
            video: None,
            video_frames: 0,
            audio_packets: 0,
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

    /// The offer (audio both ways, video to receive), our host candidate trickled (as browsers
    /// do, though it is in the SDP too), then the end of candidates.
    fn start(&mut self) -> Vec<ClientMessage> {
        let relays = self.web.offer(true);
        self.offered = self.web.mids();
        if std::env::var_os("SOAK_DUMP_SDP").is_some() {
            eprintln!(
                "soak: our offer:\n{}",
                relays[0].sdp_text().unwrap_or_default()
            );
        }
        relays.into_iter().map(ClientMessage::Relay).collect()
    }

    fn handle_relay(
        &mut self,
        relay: &Relay,
        outbox: &mut Vec<ClientMessage>,
    ) -> anyhow::Result<()> {
        let pc = relay.pc().unwrap_or("");
        if relay.kind == RelayKind::Offer {
            // The box never starts a connection of its own to a newcomer, and it answers
            // before it renegotiates, so there is no glare here.
            if pc != self.web.pc() {
                bail!(
                    "the box offered a new connection (pc {pc:?}, ours {:?})",
                    self.web.pc()
                );
            }
            if self.web.offer_pending() {
                bail!("the box offered while our offer was pending");
            }
        }
        if std::env::var_os("SOAK_DUMP_SDP").is_some() {
            if let Some(sdp) = relay.sdp_text() {
                eprintln!("soak: {} from the box:\n{sdp}", relay.kind.as_str());
            }
        }
        let reply = self
            .web
            .handle_relay(relay)
            .with_context(|| format!("the box's {}", relay.kind.as_str()))?;
        outbox.extend(reply.map(ClientMessage::Relay));
        Ok(())
    }

    /// One 20 ms Opus packet of the looped tone.
    fn write_audio(&mut self, packets: &[Arc<[u8]>]) {
        let packet = &packets[self.audio_sent % packets.len()];
        self.audio_sent += 1;
        // A write before the media is fully up is dropped; that is fine for a tone.
        self.web.write_audio(packet, Instant::now());
    }

    /// Drains the peer to its next timeout: datagrams go out on `socket`, what it saw is
    /// checked.
    fn drain(&mut self, socket: &UdpSocket) -> anyhow::Result<()> {
        let (sent, seen) = self.web.poll().context("poll_output")?;
        for d in sent {
            // Loopback: a full send buffer drops, as UDP does.
            let _ = socket.try_send_to(&d.contents, d.destination);
        }
        for s in seen {
            self.handle_seen(s);
        }
        match self.failed.take() {
            Some(f) => Err(anyhow!(f)),
            None => Ok(()),
        }
    }

    fn handle_seen(&mut self, seen: Seen) {
        match seen {
            Seen::Connected => {
                self.connected.get_or_insert_with(Instant::now);
            }
            // The soak peer shares no screen.
            Seen::KeyframeRequested => {}
            Seen::Audio { mid, .. } => {
                self.audio_packets += 1;
                self.first_audio_mid.get_or_insert(mid);
            }
            Seen::Video { mid, data, .. } => {
                self.video_frames += 1;
                self.first_video_mid.get_or_insert(mid);
                if self.video.is_some() {
                    return;
                }
                let size = match self.decoder.decode(&data) {
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
                    None => self.ask_keyframe(),
                }
            }
        }
    }

    /// Nothing decodable yet: ask for a keyframe (PLI), at most once a second, as browsers do.
    fn ask_keyframe(&mut self) {
        let now = Instant::now();
        if self
            .last_pli
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return;
        }
        self.last_pli = Some(now);
        self.web.request_keyframe();
    }
}

/// A fresh connection id for every cycle (docs/protocol.md, `pc`).
fn random_pc() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 12)
}
