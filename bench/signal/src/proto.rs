//! The two signaling protocols the generator speaks: roombox's (docs/protocol.md) and the
//! PeerJS server's (npm `peer`).

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use roombox_protocol::{
    ClientMessage, Join, PeerId, PeerKind, Relay, RelayKind, RoomName, ServerMessage,
};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a connect plus join (or OPEN) may take before the run gives up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// The PeerJS server's default key (its `--key` option).
const PEERJS_KEY: &str = "peerjs";

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ServerKind {
    /// roombox-signal: WebSocket at /ws, `join` answered by `welcome`.
    Roombox,
    /// The PeerJS server: WebSocket at /peerjs?key=&id=&token=, answered by `OPEN`.
    Peerjs,
}

impl ServerKind {
    pub fn label(self) -> &'static str {
        match self {
            ServerKind::Roombox => "roombox-signal",
            ServerKind::Peerjs => "PeerJS server (npm peer)",
        }
    }
}

/// One server under test: its kind and `ws://HOST:PORT` base address.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: ServerKind,
    pub base: String,
}

/// A connected, joined client and the id the server knows it by.
pub struct Client {
    pub ws: Ws,
    pub id: String,
}

impl Target {
    /// Connects and joins: roombox `join` into `room` until `welcome`; PeerJS with id `name`
    /// until `OPEN`. Fails on an error frame, a close, or after [`HANDSHAKE_TIMEOUT`].
    pub async fn connect(&self, room: &str, name: &str) -> Result<Client> {
        tokio::time::timeout(HANDSHAKE_TIMEOUT, self.connect_inner(room, name))
            .await
            .context("handshake timed out")?
    }

    async fn connect_inner(&self, room: &str, name: &str) -> Result<Client> {
        match self.kind {
            ServerKind::Roombox => {
                let url = format!("{}/ws", self.base);
                let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
                    .await
                    .with_context(|| format!("connecting to {url}"))?;
                let join = ClientMessage::Join(Join {
                    room: RoomName::parse(room).context("bad room name")?,
                    name: name.to_owned(),
                    kind: PeerKind::Browser,
                    resume: None,
                    key: None,
                });
                ws.send(Message::text(join.to_json())).await?;
                loop {
                    let text = next_text(&mut ws).await?;
                    match ServerMessage::parse(&text) {
                        Ok(ServerMessage::Welcome(w)) => return Ok(Client { ws, id: w.id.0 }),
                        Ok(ServerMessage::Error { code, message }) => {
                            bail!("join refused: {code:?}: {message}")
                        }
                        Ok(_) => continue,
                        Err(e) => bail!("unparsable server frame {text:?}: {e:?}"),
                    }
                }
            }
            ServerKind::Peerjs => {
                let url = format!(
                    "{}/peerjs?key={PEERJS_KEY}&id={name}&token=t{name}",
                    self.base
                );
                let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
                    .await
                    .with_context(|| format!("connecting to {url}"))?;
                loop {
                    let text = next_text(&mut ws).await?;
                    let v: Value = serde_json::from_str(&text)?;
                    match v.get("type").and_then(Value::as_str) {
                        Some("OPEN") => {
                            return Ok(Client {
                                ws,
                                id: name.to_owned(),
                            })
                        }
                        Some("ERROR" | "ID-TAKEN") => bail!("refused: {text}"),
                        _ => continue,
                    }
                }
            }
        }
    }

    /// The keep-alive a real client of this server sends on its own, if any: the PeerJS
    /// client sends `HEARTBEAT` every 5 s (roombox's server pings, and the client's WebSocket
    /// library answers with pongs).
    pub fn heartbeat(&self) -> Option<(Duration, &'static str)> {
        match self.kind {
            ServerKind::Roombox => None,
            ServerKind::Peerjs => Some((Duration::from_secs(5), r#"{"type":"HEARTBEAT"}"#)),
        }
    }

    /// A template for an offer from `from` to `to` carrying `sdp` and a sequence number.
    pub fn offer_template(&self, to: &str, sdp: &str) -> OfferTemplate {
        const MARK: &str = "__SEQ_MARK__";
        let text = match self.kind {
            ServerKind::Roombox => {
                let mut relay = Relay::sdp(RelayKind::Offer, PeerId(to.to_owned()), sdp.into())
                    .with_pc("bench");
                relay.fields.insert("seq".into(), MARK.into());
                ClientMessage::Relay(relay).to_json()
            }
            ServerKind::Peerjs => json!({
                "type": "OFFER",
                "dst": to,
                "payload": {
                    "sdp": {"type": "offer", "sdp": sdp},
                    "type": "media",
                    "connectionId": "bench",
                    "seq": MARK,
                },
            })
            .to_string(),
        };
        let quoted = format!("\"{MARK}\"");
        let at = text.find(&quoted).expect("the mark is in the template");
        OfferTemplate {
            prefix: text[..at].to_owned(),
            suffix: text[at + quoted.len()..].to_owned(),
        }
    }

    /// Checks a relayed offer in full (type, sender, sequence number) and returns its number.
    pub fn check_relayed(&self, text: &str, from: &str) -> Result<u64> {
        match self.kind {
            ServerKind::Roombox => match ServerMessage::parse(text) {
                Ok(ServerMessage::Relay(r)) if r.kind == RelayKind::Offer => {
                    if r.from.as_ref().map(|p| p.0.as_str()) != Some(from) {
                        bail!("offer not from {from}: {text:.200}");
                    }
                    r.fields
                        .get("seq")
                        .and_then(Value::as_u64)
                        .context("relayed offer without seq")
                }
                other => bail!("expected a relayed offer, got {other:?}"),
            },
            ServerKind::Peerjs => {
                let v: Value = serde_json::from_str(text)?;
                if v["type"] != "OFFER" || v["src"] != from {
                    bail!("expected an OFFER from {from}: {text:.200}");
                }
                v["payload"]["seq"]
                    .as_u64()
                    .context("relayed OFFER without seq")
            }
        }
    }
}

/// A serialized offer split around its sequence number, so that a message costs one
/// `format!` to build, the same for both servers.
pub struct OfferTemplate {
    prefix: String,
    suffix: String,
}

impl OfferTemplate {
    pub fn with_seq(&self, seq: u64) -> String {
        format!("{}{seq}{}", self.prefix, self.suffix)
    }
}

/// The sequence number of a relayed offer, found without a full parse (`"seq":N`).
pub fn quick_seq(text: &str) -> Option<u64> {
    let at = text.rfind("\"seq\":")? + 6;
    let digits: &str = &text[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// The next text frame from a socket or its read half; control frames are skipped
/// (tungstenite answers pings itself).
pub async fn next_text<S>(ws: &mut S) -> Result<String>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_owned()),
            Some(Ok(Message::Close(c))) => bail!("closed by the server: {c:?}"),
            Some(Ok(Message::Binary(_))) => bail!("unexpected binary frame"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("connection ended"),
        }
    }
}

/// A synthetic SDP of about `bytes` bytes (CRLF lines, like a browser's).
pub fn synthetic_sdp(bytes: usize) -> String {
    let mut sdp = String::from(
        "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
         a=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n",
    );
    let mut n = 0;
    while sdp.len() < bytes {
        sdp.push_str(&format!(
            "a=candidate:{n} 1 udp 2122260223 192.168.1.{} 5{n:04} typ host generation 0\r\n",
            n % 250
        ));
        n += 1;
    }
    sdp.truncate(bytes);
    sdp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_carry_the_seq_for_both_servers() {
        for kind in [ServerKind::Roombox, ServerKind::Peerjs] {
            let t = Target {
                kind,
                base: String::new(),
            };
            let text = t.offer_template("peerB", &synthetic_sdp(300)).with_seq(42);
            let v: Value = serde_json::from_str(&text).unwrap();
            assert!(v.is_object());
            assert_eq!(quick_seq(&text), Some(42));
        }
    }

    #[test]
    fn synthetic_sdp_has_the_asked_size() {
        assert_eq!(synthetic_sdp(1000).len(), 1000);
    }
}
