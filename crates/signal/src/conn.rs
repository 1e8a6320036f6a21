//! One WebSocket connection: a session that turns each text frame into replies and
//! deliveries, and the pump that moves frames between the socket, the outbox and the clock.

use crate::outbox::{Outbox, OUTBOX_FRAMES};
use crate::ratelimit::{Throttle, TokenBucket};
use crate::rooms::ConnId;
use crate::Shared;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use roombox_protocol::{
    parse_client_message, ClientMessage, ErrorCode, ParseError, PeerId, ServerMessage,
    MAX_MESSAGE_BYTES,
};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::time::{interval_at, timeout, MissedTickBehavior};

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Close codes from RFC 6455.
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_POLICY: u16 = 1008;
const CLOSE_TOO_BIG: u16 = 1009;

/// A socket silent for this many ping intervals is taken for dead.
const MISSED_PINGS: u32 = 3;

/// The per-connection protocol state; no I/O, so it is driven directly in tests.
pub struct Session {
    shared: Arc<Shared>,
    conn: ConnId,
    outbox: Outbox,
    joined: Option<PeerId>,
    bucket: TokenBucket,
    rate_notice: Throttle,
}

impl Session {
    pub fn new(shared: Arc<Shared>, outbox: Outbox, now: Instant) -> Self {
        let bucket = TokenBucket::new(shared.config.rate, now);
        Session {
            shared,
            conn: ConnId(NEXT_CONN.fetch_add(1, Relaxed)),
            outbox,
            joined: None,
            bucket,
            rate_notice: Throttle::new(Duration::from_secs(1)),
        }
    }

    /// Handles one text frame; returns the replies for this socket (others get theirs
    /// through their outboxes).
    pub fn handle_text(&mut self, text: &str, now: Instant) -> Option<Utf8Bytes> {
        self.shared.metrics.messages_received.fetch_add(1, Relaxed);
        if !self.bucket.try_take(now) {
            self.shared.metrics.count_error(ErrorCode::RateLimited);
            return self.rate_notice.allow(now).then(|| {
                error_frame(&ParseError::new(
                    ErrorCode::RateLimited,
                    "too many messages; this one was dropped",
                ))
            });
        }
        match self.dispatch(text) {
            Ok(reply) => reply,
            Err(e) => {
                self.shared.metrics.count_error(e.code);
                Some(error_frame(&e))
            }
        }
    }

    /// Fresh TURN credentials for a joined client (their `welcome` ones expire): the ICE
    /// servers `welcome` gave, with a new TURN entry. `None` without TURN or before a join.
    pub fn renewed_ice_servers(&self, now: std::time::SystemTime) -> Option<Utf8Bytes> {
        let (turn, id) = (self.shared.config.turn.as_ref()?, self.joined.as_ref()?);
        let mut ice_servers = self.shared.config.ice_servers.clone();
        ice_servers.push(turn.credentials(id, now));
        Some(ServerMessage::IceServers { ice_servers }.to_json().into())
    }

    /// The reply for a message over the size limit; the pump closes the socket after it.
    pub fn too_large(&self, len: usize) -> Utf8Bytes {
        self.shared.metrics.count_error(ErrorCode::TooLarge);
        error_frame(&ParseError::new(
            ErrorCode::TooLarge,
            format!("message of {len} bytes is over the limit of {MAX_MESSAGE_BYTES}"),
        ))
    }

    /// A binary frame: the protocol is text only.
    pub fn binary(&self) -> Utf8Bytes {
        self.shared.metrics.count_error(ErrorCode::BadJson);
        error_frame(&ParseError::new(
            ErrorCode::BadJson,
            "binary frames are not part of the protocol",
        ))
    }

    fn dispatch(&mut self, text: &str) -> Result<Option<Utf8Bytes>, ParseError> {
        match parse_client_message(text)? {
            ClientMessage::Ping => Ok(Some(ServerMessage::Pong.to_json().into())),
            ClientMessage::Join(join) => {
                if self.joined.is_some() {
                    return Err(ParseError::new(
                        ErrorCode::AlreadyJoined,
                        "already in a room; send leave first",
                    ));
                }
                let room = join.room.clone();
                let joined = self.shared.rooms().join(
                    join,
                    self.conn,
                    self.outbox.clone(),
                    &self.shared.config.ice_servers,
                )?;
                let mut welcome = joined.welcome;
                let id = welcome.id.clone();
                if let Some(turn) = &self.shared.config.turn {
                    let now = std::time::SystemTime::now();
                    welcome.ice_servers.push(turn.credentials(&id, now));
                }
                tracing::info!(%room, peer = %id, resumed = joined.replaced, "joined");
                self.joined = Some(id);
                Ok(Some(ServerMessage::Welcome(welcome).to_json().into()))
            }
            ClientMessage::Leave => {
                let id = self.joined.take().ok_or_else(not_joined)?;
                self.shared.rooms().leave(&id, self.conn);
                tracing::info!(peer = %id, "left");
                Ok(None)
            }
            ClientMessage::Relay(mut relay) => {
                let from = self.joined.clone().ok_or_else(not_joined)?;
                let rooms = self.shared.rooms();
                if !rooms.holds(&from, self.conn) {
                    // A resume elsewhere took this id over; this socket is on its way out.
                    return Err(not_joined());
                }
                let to = rooms.route(&from, &relay.to).ok_or_else(|| {
                    ParseError::new(
                        ErrorCode::UnknownPeer,
                        format!(
                            "no peer `{}` in your room",
                            relay.to.0.chars().take(40).collect::<String>()
                        ),
                    )
                })?;
                relay.from = Some(from);
                if to.deliver(&ServerMessage::Relay(relay).to_json().into()) {
                    self.shared.metrics.messages_relayed.fetch_add(1, Relaxed);
                }
                Ok(None)
            }
        }
    }

    /// Leaves the room, if still in one; called once when the socket is gone.
    pub fn finish(&mut self) {
        if let Some(id) = self.joined.take() {
            if self.shared.rooms().leave(&id, self.conn) {
                tracing::info!(peer = %id, "gone");
            }
        }
    }
}

fn not_joined() -> ParseError {
    ParseError::new(ErrorCode::NotJoined, "join a room first")
}

fn error_frame(e: &ParseError) -> Utf8Bytes {
    ServerMessage::Error {
        code: e.code,
        message: e.message.clone(),
    }
    .to_json()
    .into()
}

/// Pumps one upgraded socket until it closes, then cleans up.
///
/// Each turn waits for the first of: shutdown, the outbox being closed, a queued frame, a
/// frame from the client, or the ping tick; it handles that one thing and loops.
pub async fn serve_socket(socket: WebSocket, shared: Arc<Shared>) {
    let metrics = &shared.metrics;
    metrics.connections_open.fetch_add(1, Relaxed);
    metrics.connections_total.fetch_add(1, Relaxed);

    let outbox = Outbox::new(OUTBOX_FRAMES);
    let mut session = Session::new(shared.clone(), outbox.clone(), Instant::now());
    let (mut sink, mut stream) = socket.split();
    let ping_every = shared.config.ping_interval;
    let mut ping = interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut heard_at = Instant::now();
    // TURN credentials are renewed at half their lifetime, so a client never holds only
    // expired ones (an always-on box keeps its relay for weeks).
    let renew_every = (shared.config.turn.as_ref())
        .map_or(Duration::from_secs(86400 * 365), |t| t.lifetime() / 2);
    let mut renew = interval_at(tokio::time::Instant::now() + renew_every, renew_every);
    renew.set_missed_tick_behavior(MissedTickBehavior::Delay);

    let close: Option<(u16, &str)> = loop {
        let reply = tokio::select! {
            biased;
            _ = shared.shutdown.cancelled() => break Some((CLOSE_GOING_AWAY, "server shutting down")),
            next = outbox.recv() => match next {
                Some(frame) => Some(frame),
                None => break Some((CLOSE_POLICY, "closed by the server")),
            },
            frame = stream.next() => {
                let Some(Ok(frame)) = frame else { break None };
                heard_at = Instant::now();
                match frame {
                    Message::Text(text) if text.len() > MAX_MESSAGE_BYTES => {
                        let _ = sink.send(Message::Text(session.too_large(text.len()))).await;
                        break Some((CLOSE_TOO_BIG, "message too large"));
                    }
                    Message::Text(text) => session.handle_text(&text, heard_at),
                    Message::Binary(_) => Some(session.binary()),
                    Message::Close(_) => break None,
                    Message::Ping(_) | Message::Pong(_) => None,
                }
            }
            _ = renew.tick() => session.renewed_ice_servers(std::time::SystemTime::now()),
            _ = ping.tick() => {
                if heard_at.elapsed() > ping_every * MISSED_PINGS {
                    tracing::info!("no answer to pings; closing");
                    break None;
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break None;
                }
                None
            }
        };
        if let Some(frame) = reply {
            if sink.send(Message::Text(frame)).await.is_err() {
                break None;
            }
        }
    };

    session.finish();
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = timeout(
            Duration::from_secs(2),
            sink.send(Message::Close(Some(frame))),
        )
        .await;
    }
    metrics.connections_open.fetch_sub(1, Relaxed);
}
