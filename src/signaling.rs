//! The box's WebSocket client to the signaling server: join, relay, reconnect, resume.
//!
//! It never gives up: after any failure (server restart, network down, refused join) it
//! reconnects with exponential backoff and jitter, and rejoins with its previous id and token
//! so that peers' existing calls carry on (docs/protocol.md, "Resume").
//!
//! It speaks version 2 (docs/protocol.md, "Version 2: sealed signaling"): a
//! [`roombox_seal::Sealer`] between the socket and the call core seals what the calls send and
//! opens what peers send, so the server sees no SDP, candidate or name.

use crate::config::SignalUrl;
use futures_util::{SinkExt, StreamExt};
use roombox_protocol::{
    ClientMessage, IceServer, PeerId, PeerInfo, PeerKind, Relay, Resume, RoomName, ServerMessage,
    Welcome,
};
use roombox_seal::{Hi, Refusal, SealOutput, Sealer};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken as CancelToken;

/// What the signaling connection tells the box.
#[derive(Debug)]
pub enum SignalEvent {
    Welcome(Welcome),
    PeerJoined(PeerInfo),
    PeerLeft(PeerId),
    Relay(Relay),
    /// Fresh ICE servers (renewed TURN credentials).
    IceServers(Vec<IceServer>),
    /// The socket is gone; reconnecting. Calls already up carry on.
    Disconnected,
    /// The box left its room (settings changed: room, name or server); every call of that
    /// room ends, and the box joins the new one.
    LeftRoom,
    /// A peer's sealed name (version 2 names never pass the server in clear).
    PeerNamed(PeerInfo),
    /// A peer that failed the room's checks (docs/protocol.md, "Refused peers"): no call
    /// with it.
    PeerRefused {
        id: PeerId,
        refusal: Refusal,
    },
    /// The room's safety code as the box sees it.
    SafetyCode(String),
    /// A frame encryption key a peer sent (sealed).
    PeerMediaKey {
        id: PeerId,
        key: roombox_seal::frame::SenderKey,
    },
}

/// What the box gives the signaling client to send.
#[derive(Debug)]
pub enum Outgoing {
    /// A message for the server (relays are sealed on the way).
    Message(ClientMessage),
    /// The box's frame key for one peer: only ever sealed.
    MediaKey {
        to: PeerId,
        key: roombox_seal::frame::SenderKey,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct SignalingConfig {
    pub url: SignalUrl,
    pub room: RoomName,
    pub name: String,
    /// The room's secret (`<state_dir>/room-secret`; `Debug` is redacted). A new one from the
    /// settings page makes the box leave and join again, as a new room does.
    pub secret: roombox_seal::RoomSecret,
}

/// The server pings every few seconds; this long without any frame means the link is dead.
const SILENCE_LIMIT: Duration = Duration::from_secs(20);

/// How a connected session ended.
enum Ended {
    /// The socket broke; `joined` if it had been welcomed.
    Lost { joined: bool },
    /// The settings changed: the box said leave, and goes to the new room or server.
    Moved,
}

/// Runs the connection until `stop` is cancelled. A new `config` (room, name or server changed
/// on the settings page) makes it leave and join again at once, without resuming the old id.
pub async fn run(
    mut configs: watch::Receiver<SignalingConfig>,
    events: mpsc::Sender<SignalEvent>,
    mut outgoing: mpsc::Receiver<Outgoing>,
    stop: CancelToken,
) {
    let mut resume: Option<Resume> = None;
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(15));
    // Kept across reconnects (a resumed member keeps its key and pairs); a new room, name or
    // secret is a new member with a new key.
    let mut sealer: Option<(SignalingConfig, Sealer)> = None;
    loop {
        let config = configs.borrow_and_update().clone();
        if sealer.as_ref().is_none_or(|(c, _)| *c != config) {
            let hi = Hi {
                name: config.name.clone(),
                kind: PeerKind::Appliance,
            };
            let fresh = Sealer::new(&config.secret, config.room.clone(), hi);
            let _ = events
                .send(SignalEvent::SafetyCode(fresh.safety_code().to_owned()))
                .await;
            sealer = Some((config.clone(), fresh));
        }
        let (_, seal) = sealer.as_mut().expect("made above");
        let url = config.url.websocket().to_owned();
        match tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(&url),
        )
        .await
        {
            Ok(Ok((ws, _))) => {
                tracing::info!(%url, "signaling connected");
                let ended = session(
                    (&config, seal),
                    &mut resume,
                    ws,
                    &events,
                    &mut outgoing,
                    (&stop, &mut configs),
                    &mut backoff,
                )
                .await;
                if stop.is_cancelled() {
                    return;
                }
                let joined = match ended {
                    Ended::Lost { joined } => joined,
                    Ended::Moved => {
                        tracing::info!("settings changed: left the room; joining again");
                        resume = None; // a new room or name is a new member
                        backoff.reset();
                        while outgoing.try_recv().is_ok() {}
                        let _ = events.send(SignalEvent::LeftRoom).await;
                        continue;
                    }
                };
                let _ = events.send(SignalEvent::Disconnected).await;
                tracing::warn!(
                    "signaling connection lost{}; reconnecting",
                    if joined { "" } else { " before joining" }
                );
            }
            Ok(Err(e)) => tracing::warn!(%url, "signaling connect failed: {e}"),
            Err(_) => tracing::warn!(%url, "signaling connect timed out"),
        }
        // Drop what was queued for the old connection: those relays belong to its moment.
        while outgoing.try_recv().is_ok() {}
        let wait = backoff.next_delay(rand::random::<f64>());
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
            Ok(()) = configs.changed() => {
                // Not connected, so nothing to leave; but a joined room's calls still end.
                resume = None;
                backoff.reset();
                let _ = events.send(SignalEvent::LeftRoom).await;
                configs.mark_changed(); // read it at the top of the loop
            }
        }
    }
}

/// One connected socket: join, then pump until it breaks or the settings change.
async fn session<S>(
    (config, seal): (&SignalingConfig, &mut Sealer),
    resume: &mut Option<Resume>,
    ws: tokio_tungstenite::WebSocketStream<S>,
    events: &mpsc::Sender<SignalEvent>,
    outgoing: &mut mpsc::Receiver<Outgoing>,
    (stop, configs): (&CancelToken, &mut watch::Receiver<SignalingConfig>),
    backoff: &mut Backoff,
) -> Ended
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let join = seal.join(resume.clone());
    if sink.send(Message::text(join.to_json())).await.is_err() {
        return Ended::Lost { joined: false };
    }
    let lost = |joined| Ended::Lost { joined };
    let mut joined = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => {
                let _ = sink.send(Message::text(ClientMessage::Leave.to_json())).await;
                let _ = sink.close().await;
                return lost(joined);
            }
            Ok(()) = configs.changed() => {
                if *configs.borrow() == *config {
                    continue; // saved without changing what signaling uses
                }
                let _ = sink.send(Message::text(ClientMessage::Leave.to_json())).await;
                let _ = sink.close().await;
                configs.mark_changed(); // the caller reads the new one
                return Ended::Moved;
            }
            out = outgoing.recv() => {
                let Some(msg) = out else { return lost(joined) };
                match msg {
                    Outgoing::Message(ClientMessage::Relay(relay)) => seal.send(relay),
                    Outgoing::MediaKey { to, key } => seal.send_media_key(&to, &key),
                    Outgoing::Message(other) => {
                        if sink.send(Message::text(other.to_json())).await.is_err() {
                            return lost(joined);
                        }
                    }
                }
            }
            frame = tokio::time::timeout(SILENCE_LIMIT, stream.next()) => {
                let text = match frame {
                    Err(_) => { tracing::warn!("signaling server silent; reconnecting"); return lost(joined) }
                    Ok(None | Some(Err(_) | Ok(Message::Close(_)))) => return lost(joined),
                    Ok(Some(Ok(Message::Text(t)))) => t,
                    Ok(Some(Ok(_))) => continue, // pings are answered by tungstenite
                };
                let event = match ServerMessage::parse(&text) {
                    Ok(ServerMessage::Welcome(w)) => {
                        tracing::info!(room = %w.room, id = %w.id, peers = w.peers.len(), "joined");
                        *resume = Some(Resume { id: w.id.clone(), token: w.resume_token.clone() });
                        joined = true;
                        backoff.reset();
                        seal.handle_welcome(w.id.clone(), &w.peers);
                        Some(SignalEvent::Welcome(w))
                    }
                    Ok(ServerMessage::PeerJoined { peer }) => {
                        seal.handle_peer_joined(&peer);
                        Some(SignalEvent::PeerJoined(peer))
                    }
                    Ok(ServerMessage::PeerLeft { id }) => {
                        seal.handle_peer_left(&id);
                        Some(SignalEvent::PeerLeft(id))
                    }
                    Ok(ServerMessage::Relay(r)) => {
                        seal.handle_relay(r);
                        None
                    }
                    Ok(ServerMessage::Pong) => continue,
                    Ok(ServerMessage::IceServers { ice_servers }) => Some(SignalEvent::IceServers(ice_servers)),
                    Ok(ServerMessage::Error { code, message }) => {
                        tracing::warn!(%code, "signaling server refused a message: {message}");
                        if !joined {
                            // A refused join (room full, bad room): retry later, not in a loop.
                            return lost(false);
                        }
                        continue;
                    }
                    Err(e) => { tracing::warn!("unreadable message from the signaling server: {e}"); continue }
                };
                if let Some(event) = event {
                    if events.send(event).await.is_err() {
                        return lost(joined);
                    }
                }
            }
        }
        // What the sealer made of it: envelopes and hellos out, opened relays and news in.
        while let Some(out) = seal.poll_output() {
            let event = match out {
                SealOutput::Send(msg) => {
                    if sink.send(Message::text(msg.to_json())).await.is_err() {
                        return lost(joined);
                    }
                    continue;
                }
                SealOutput::Relay(r) => SignalEvent::Relay(r),
                SealOutput::Named(info) => SignalEvent::PeerNamed(info),
                SealOutput::Refused { id, refusal } => SignalEvent::PeerRefused { id, refusal },
                SealOutput::SafetyCode(code) => SignalEvent::SafetyCode(code),
                SealOutput::MediaKey { id, key } => SignalEvent::PeerMediaKey { id, key },
            };
            if events.send(event).await.is_err() {
                return lost(joined);
            }
        }
    }
}

/// Exponential backoff with full jitter, pure so it can be tested without a clock.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            attempt: 0,
        }
    }

    /// The next wait; `jitter` in [0, 1) spreads reconnecting boxes apart after a server restart.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1 << self.attempt.min(16))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        // Half fixed, half random: never zero, never in lockstep.
        ceiling.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(250), Duration::from_secs(15));
        assert_eq!(b.next_delay(1.0), Duration::from_millis(250));
        assert_eq!(b.next_delay(1.0), Duration::from_millis(500));
        assert_eq!(
            b.next_delay(0.0),
            Duration::from_millis(500),
            "jitter halves at most"
        );
        for _ in 0..20 {
            assert!(b.next_delay(1.0) <= Duration::from_secs(15));
        }
        assert_eq!(b.next_delay(1.0), Duration::from_secs(15));
        b.reset();
        assert_eq!(b.next_delay(1.0), Duration::from_millis(250));
    }
}
