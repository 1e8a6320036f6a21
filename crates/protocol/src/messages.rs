use crate::{ErrorCode, ParseError, PeerId, RoomName, MAX_NAME_CHARS};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What kind of participant a peer is; the web client shows an appliance as a room box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerKind {
    Browser,
    Appliance,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub id: PeerId,
    /// Empty for a version 2 member: its name is sealed (docs/protocol.md, version 2).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub kind: PeerKind,
    /// A version 2 member's announced key, passed through by the server untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<MemberKey>,
}

/// A version 2 member's X-Wing encapsulation key and its MAC under the room secret, both
/// base64url. The server only carries it; members check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberKey {
    pub pk: String,
    pub mac: String,
}

/// One `RTCIceServer` as handed to clients in `welcome`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The fields of an `RTCIceCandidateInit` dictionary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidateInit {
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_m_line_index: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    pub id: PeerId,
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    pub room: RoomName,
    /// Empty in version 2 (names are sealed).
    pub name: String,
    pub kind: PeerKind,
    pub resume: Option<Resume>,
    /// Version 2: the member's announced key. `None` is a version 1 join.
    pub key: Option<MemberKey>,
}

impl Join {
    /// The protocol version this join speaks: 2 with a key, else 1.
    pub fn version(&self) -> u8 {
        if self.key.is_some() {
            2
        } else {
            1
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayKind {
    Offer,
    Answer,
    IceCandidate,
    /// What the receiver shows of the sender's videos (`videos`: mid to a [`ViewWish`]).
    View,
    /// Version 2: a hello or an envelope between two members, opaque to the server.
    Sealed,
}

/// The most of a video the receiver shows: a sender need not send more (docs/protocol.md,
/// `view`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewWish {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl RelayKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RelayKind::Offer => "offer",
            RelayKind::Answer => "answer",
            RelayKind::IceCandidate => "ice-candidate",
            RelayKind::View => "view",
            RelayKind::Sealed => "sealed",
        }
    }
}

/// An `offer`, `answer` or `ice-candidate`: addressed with `to`, stamped with `from` by the
/// server, and every other field carried through untouched in `fields`.
#[derive(Debug, Clone, PartialEq)]
pub struct Relay {
    pub kind: RelayKind,
    pub to: PeerId,
    pub from: Option<PeerId>,
    /// The connection the message belongs to (docs/protocol.md, "Connections"): picked by the
    /// side that offers first, echoed by the other.
    pub pc: Option<String>,
    /// Everything but `type`, `to`, `from` and `pc`; holds `sdp` or `candidate` (checked on
    /// parse).
    pub fields: Map<String, Value>,
}

impl Relay {
    /// A relay message with its required payload: `sdp` for offers and answers.
    pub fn sdp(kind: RelayKind, to: PeerId, sdp: String) -> Relay {
        let mut fields = Map::new();
        fields.insert("sdp".into(), Value::String(sdp));
        Relay {
            kind,
            to,
            from: None,
            pc: None,
            fields,
        }
    }

    /// An `ice-candidate`; `None` says end of candidates.
    pub fn candidate(to: PeerId, candidate: Option<&IceCandidateInit>) -> Relay {
        let mut fields = Map::new();
        let value = serde_json::to_value(candidate).expect("a candidate always serializes");
        fields.insert("candidate".into(), value);
        Relay {
            kind: RelayKind::IceCandidate,
            to,
            from: None,
            pc: None,
            fields,
        }
    }

    /// A `view`: what the receiver shows of each of the sender's videos, by mid.
    pub fn view(to: PeerId, videos: &BTreeMap<String, ViewWish>) -> Relay {
        let mut fields = Map::new();
        let value = serde_json::to_value(videos).expect("wishes always serialize");
        fields.insert("videos".into(), value);
        Relay {
            kind: RelayKind::View,
            to,
            from: None,
            pc: None,
            fields,
        }
    }

    /// The wishes of a `view`, by mid; entries that are not wishes are left out.
    pub fn view_wishes(&self) -> BTreeMap<String, ViewWish> {
        let Some(Value::Object(m)) = self.fields.get("videos") else {
            return BTreeMap::new();
        };
        m.iter()
            .filter_map(|(mid, w)| Some((mid.clone(), serde_json::from_value(w.clone()).ok()?)))
            .collect()
    }

    /// The same message for connection `pc`.
    pub fn with_pc(self, pc: impl Into<String>) -> Relay {
        Relay {
            pc: Some(pc.into()),
            ..self
        }
    }

    pub fn pc(&self) -> Option<&str> {
        self.pc.as_deref()
    }

    pub fn sdp_text(&self) -> Option<&str> {
        self.fields.get("sdp").and_then(Value::as_str)
    }

    /// What the sender says each of its m-lines carries (`media`: mid to `"camera"` or
    /// `"screen"`, on offers and answers). Entries that are not strings are left out; a client
    /// that sends no `media` gets an empty map.
    pub fn media_labels(&self) -> BTreeMap<String, String> {
        let Some(Value::Object(m)) = self.fields.get("media") else {
            return BTreeMap::new();
        };
        m.iter()
            .filter_map(|(mid, label)| Some((mid.clone(), label.as_str()?.to_owned())))
            .collect()
    }

    /// The candidate of an `ice-candidate`; `Ok(None)` is end of candidates.
    pub fn ice_candidate(&self) -> Result<Option<IceCandidateInit>, serde_json::Error> {
        serde_json::from_value(self.fields.get("candidate").cloned().unwrap_or(Value::Null))
    }

    fn to_json(&self) -> String {
        let mut map = Map::with_capacity(self.fields.len() + 4);
        map.insert("type".into(), self.kind.as_str().into());
        if let Some(from) = &self.from {
            map.insert("from".into(), from.0.clone().into());
        }
        map.insert("to".into(), self.to.0.clone().into());
        if let Some(pc) = &self.pc {
            map.insert("pc".into(), pc.clone().into());
        }
        for (k, v) in &self.fields {
            map.insert(k.clone(), v.clone());
        }
        Value::Object(map).to_string()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    Join(Join),
    Relay(Relay),
    Leave,
    Ping,
}

impl ClientMessage {
    pub fn to_json(&self) -> String {
        match self {
            ClientMessage::Join(j) => {
                let mut join = serde_json::json!({
                    "type": "join",
                    "room": j.room,
                    "kind": j.kind,
                    "resume": j.resume,
                });
                match &j.key {
                    Some(key) => {
                        join["v"] = 2.into();
                        join["key"] = serde_json::to_value(key).expect("keys serialize");
                    }
                    None => join["name"] = j.name.clone().into(),
                }
                join.to_string()
            }
            ClientMessage::Relay(r) => r.to_json(),
            ClientMessage::Leave => r#"{"type":"leave"}"#.to_owned(),
            ClientMessage::Ping => r#"{"type":"ping"}"#.to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Welcome {
    pub id: PeerId,
    pub resume_token: String,
    pub room: RoomName,
    pub peers: Vec<PeerInfo>,
    pub ice_servers: Vec<IceServer>,
    pub max_peers: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    Welcome(Welcome),
    PeerJoined {
        peer: PeerInfo,
    },
    PeerLeft {
        id: PeerId,
    },
    Relay(Relay),
    Pong,
    Error {
        code: ErrorCode,
        message: String,
    },
    /// Fresh ICE servers (TURN credentials) before the ones in `welcome` expire.
    IceServers {
        ice_servers: Vec<IceServer>,
    },
}

/// The server messages that serde can tag on its own (all but relays).
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum Tagged {
    Welcome(Welcome),
    PeerJoined {
        peer: PeerInfo,
    },
    PeerLeft {
        id: PeerId,
    },
    Pong,
    Error {
        code: ErrorCode,
        message: String,
    },
    IceServers {
        #[serde(rename = "iceServers")]
        ice_servers: Vec<IceServer>,
    },
}

impl ServerMessage {
    pub fn to_json(&self) -> String {
        let tagged = match self {
            ServerMessage::Relay(r) => return r.to_json(),
            ServerMessage::Welcome(w) => Tagged::Welcome(w.clone()),
            ServerMessage::PeerJoined { peer } => Tagged::PeerJoined { peer: peer.clone() },
            ServerMessage::PeerLeft { id } => Tagged::PeerLeft { id: id.clone() },
            ServerMessage::Pong => Tagged::Pong,
            ServerMessage::Error { code, message } => Tagged::Error {
                code: *code,
                message: message.clone(),
            },
            ServerMessage::IceServers { ice_servers } => Tagged::IceServers {
                ice_servers: ice_servers.clone(),
            },
        };
        serde_json::to_string(&tagged).expect("server messages always serialize")
    }

    /// Parses a frame from the server (used by the box's signaling client).
    pub fn parse(text: &str) -> Result<ServerMessage, ParseError> {
        let (kind, mut map) = split_type(text)?;
        if let Some(relay_kind) = relay_kind(&kind) {
            let from = take_peer_id(&mut map, "from")?;
            return Ok(ServerMessage::Relay(Relay {
                from: Some(from),
                ..relay_from_map(relay_kind, map)?
            }));
        }
        map.insert("type".into(), Value::String(kind.clone()));
        let tagged: Tagged = serde_json::from_value(Value::Object(map)).map_err(|e| {
            if e.to_string().starts_with("unknown variant") {
                ParseError::new(ErrorCode::UnknownType, format!("unknown type `{kind}`"))
            } else {
                ParseError::new(ErrorCode::BadJson, format!("{kind}: {e}"))
            }
        })?;
        Ok(match tagged {
            Tagged::Welcome(w) => ServerMessage::Welcome(w),
            Tagged::PeerJoined { peer } => ServerMessage::PeerJoined { peer },
            Tagged::PeerLeft { id } => ServerMessage::PeerLeft { id },
            Tagged::Pong => ServerMessage::Pong,
            Tagged::Error { code, message } => ServerMessage::Error { code, message },
            Tagged::IceServers { ice_servers } => ServerMessage::IceServers { ice_servers },
        })
    }
}

/// The fields a `join` may carry, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinFields {
    room: String,
    #[serde(default)]
    name: Option<String>,
    kind: PeerKind,
    #[serde(default)]
    resume: Option<Resume>,
    #[serde(default)]
    v: Option<u8>,
    #[serde(default)]
    key: Option<MemberKey>,
}

/// Parses one text frame from a client. Never panics; every refusal carries its error code.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, ParseError> {
    let (kind, map) = split_type(text)?;
    if let Some(relay_kind) = relay_kind(&kind) {
        return relay_from_map(relay_kind, map).map(ClientMessage::Relay);
    }
    match kind.as_str() {
        "join" => parse_join(map).map(ClientMessage::Join),
        "leave" => Ok(ClientMessage::Leave),
        "ping" => Ok(ClientMessage::Ping),
        other => Err(ParseError::new(
            ErrorCode::UnknownType,
            format!("unknown type `{}`", truncate(other, 40)),
        )),
    }
}

fn parse_join(map: Map<String, Value>) -> Result<Join, ParseError> {
    let fields: JoinFields = serde_json::from_value(Value::Object(map))
        .map_err(|e| ParseError::new(ErrorCode::BadJson, format!("join: {e}")))?;
    let room = RoomName::parse(&fields.room).ok_or_else(|| {
        ParseError::new(
            ErrorCode::BadRoom,
            "room must be 1 to 64 of A-Z a-z 0-9 _ -",
        )
    })?;
    let name = match (fields.v.unwrap_or(1), &fields.key, fields.name) {
        (1, None, Some(name)) => check_name(&name)?,
        (1, None, None) => return Err(bad("join: missing field `name`")),
        (1, Some(_), _) => return Err(bad("join: field `key` needs `v: 2`")),
        (2, None, _) => return Err(bad("join: version 2 needs field `key`")),
        (2, Some(_), None) => String::new(),
        (2, Some(_), Some(_)) => {
            return Err(bad(
                "join: version 2 carries no `name` (names are sealed between members)",
            ))
        }
        (v, ..) => return Err(bad(format!("join: unknown protocol version {v}"))),
    };
    Ok(Join {
        room,
        name,
        kind: fields.kind,
        resume: fields.resume,
        key: fields.key,
    })
}

fn check_name(name: &str) -> Result<String, ParseError> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ParseError::new(
            ErrorCode::BadJson,
            format!("join: name must be 1 to {MAX_NAME_CHARS} printable characters"),
        ));
    }
    Ok(name.to_owned())
}

fn relay_kind(kind: &str) -> Option<RelayKind> {
    match kind {
        "offer" => Some(RelayKind::Offer),
        "answer" => Some(RelayKind::Answer),
        "ice-candidate" => Some(RelayKind::IceCandidate),
        "view" => Some(RelayKind::View),
        "sealed" => Some(RelayKind::Sealed),
        _ => None,
    }
}

fn relay_from_map(kind: RelayKind, mut map: Map<String, Value>) -> Result<Relay, ParseError> {
    let name = kind.as_str();
    let to = take_peer_id(&mut map, "to").map_err(|e| prefix(name, e))?;
    map.remove("from");
    let pc = match map.remove("pc") {
        None | Some(Value::Null) => None,
        Some(Value::String(pc)) => Some(pc),
        Some(_) => return Err(bad(format!("{name}: field `pc` must be a string"))),
    };
    match kind {
        RelayKind::Offer | RelayKind::Answer => match map.get("sdp") {
            Some(Value::String(_)) => {}
            Some(_) => return Err(bad(format!("{name}: field `sdp` must be a string"))),
            None => return Err(bad(format!("{name}: missing field `sdp`"))),
        },
        RelayKind::IceCandidate => match map.get("candidate") {
            Some(Value::Null) => {}
            Some(c @ Value::Object(_)) => {
                serde_json::from_value::<IceCandidateInit>(c.clone())
                    .map_err(|e| bad(format!("{name}: field `candidate`: {e}")))?;
            }
            Some(_) => {
                return Err(bad(format!(
                    "{name}: field `candidate` must be an object or null"
                )))
            }
            None => return Err(bad(format!("{name}: missing field `candidate`"))),
        },
        RelayKind::View => match map.get("videos") {
            Some(Value::Object(_)) => {}
            Some(_) => return Err(bad(format!("{name}: field `videos` must be an object"))),
            None => return Err(bad(format!("{name}: missing field `videos`"))),
        },
        // Opaque to the server: its checks are the members' (docs/protocol.md, version 2).
        RelayKind::Sealed => {}
    }
    Ok(Relay {
        kind,
        to,
        from: None,
        pc,
        fields: map,
    })
}

/// Checks that a frame is a JSON object with a string `type`; returns the type and the rest.
fn split_type(text: &str) -> Result<(String, Map<String, Value>), ParseError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let Value::Object(mut map) = value else {
        return Err(bad("a message must be a JSON object"));
    };
    match map.remove("type") {
        Some(Value::String(kind)) => Ok((kind, map)),
        Some(_) => Err(bad("field `type` must be a string")),
        None => Err(bad("missing field `type`")),
    }
}

fn take_peer_id(map: &mut Map<String, Value>, field: &str) -> Result<PeerId, ParseError> {
    match map.remove(field) {
        Some(Value::String(s)) => Ok(PeerId(s)),
        Some(_) => Err(bad(format!("field `{field}` must be a string"))),
        None => Err(bad(format!("missing field `{field}`"))),
    }
}

fn bad(message: impl Into<String>) -> ParseError {
    ParseError::new(ErrorCode::BadJson, message)
}

fn prefix(name: &str, e: ParseError) -> ParseError {
    ParseError::new(e.code, format!("{name}: {}", e.message))
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests;
