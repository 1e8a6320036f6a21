//! A member's side of sealed signaling (docs/protocol.md, version 2), sans-IO: what the server
//! says goes in, what to send and what the call should see comes out of [`Sealer::poll_output`].
//!
//! The call core above it keeps speaking plain relays: the sealer opens what arrives and seals
//! what leaves, holding a peer's messages back until the pair's keys are agreed.

use crate::crypto::{self, Encapsulated, Identity, PairKeys, RoomKeys};
use crate::frame::SenderKey;
use crate::RoomSecret;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use roombox_protocol::{
    parse_client_message, ClientMessage, Join, MemberKey, PeerId, PeerInfo, PeerKind, Relay,
    RelayKind, Resume, RoomName,
};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, VecDeque};

/// Messages held for a peer whose keys are not agreed yet; beyond this the oldest go.
const MAX_QUEUED: usize = 256;
/// `seq` stays below 2^53 so that JavaScript reads it exactly.
const MAX_SEQ: u64 = (1 << 53) - 1;

/// Why a peer was refused; `reason` is what people are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its announced key or its hello does not carry this room's secret.
    NotAMember,
    /// An envelope did not open under the pair's keys (or was not an envelope).
    Altered,
    /// An envelope's `seq` was not above the last one opened.
    Replayed,
    /// It sent an offer, answer, candidate or view in clear.
    Plain,
}

impl Refusal {
    /// A peer's state as a status line shows it.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::NotAMember => "refused: not signed with this room's secret",
            Refusal::Altered => "refused: a message was altered",
            Refusal::Replayed => "refused: a message was replayed or reordered",
            Refusal::Plain => "refused: sent signaling in clear",
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Refusal::NotAMember => "not signed with this room's secret",
            Refusal::Altered => "a message was altered",
            Refusal::Replayed => "a message was replayed or reordered",
            Refusal::Plain => "sent signaling in clear",
        }
    }
}

/// Who this member says it is, sealed in its first envelope to each peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hi {
    pub name: String,
    pub kind: PeerKind,
}

#[derive(Debug)]
pub enum SealOutput {
    /// A message for the signaling server.
    Send(ClientMessage),
    /// A relay opened from a peer's envelope, `from` set: the call's to handle.
    Relay(Relay),
    /// A peer's sealed `hi`: its name and kind.
    Named(PeerInfo),
    /// A peer refused, and why. Its call, if any, should end.
    Refused { id: PeerId, refusal: Refusal },
    /// The room's safety code changed.
    SafetyCode(String),
    /// A peer's frame encryption key (docs/protocol.md, "Sender keys").
    MediaKey { id: PeerId, key: SenderKey },
}

enum Pair {
    /// Our hello is sent; theirs has not come.
    Waiting(Encapsulated),
    Ready {
        keys: PairKeys,
        /// Their encapsulation in these keys: the same hello again is a duplicate.
        their_ct: Vec<u8>,
        next_send: u64,
        last_opened: Option<u64>,
    },
    Refused(Refusal),
}

struct Peer {
    ek: Vec<u8>,
    pair: Pair,
    queue: VecDeque<Relay>,
}

pub struct Sealer {
    room: RoomName,
    keys: RoomKeys,
    me: Identity,
    hi: Hi,
    my_id: Option<PeerId>,
    peers: BTreeMap<PeerId, Peer>,
    outputs: VecDeque<SealOutput>,
    code: String,
}

impl Sealer {
    /// A member of `room` with a fresh key pair.
    pub fn new(secret: &RoomSecret, room: RoomName, hi: Hi) -> Sealer {
        Sealer::with_identity(secret, room, hi, Identity::generate())
    }

    pub fn with_identity(secret: &RoomSecret, room: RoomName, hi: Hi, me: Identity) -> Sealer {
        let keys = RoomKeys::derive(secret, room.as_str());
        let code = crypto::safety_code(&[me.ek()]);
        Sealer {
            room,
            keys,
            me,
            hi,
            my_id: None,
            peers: BTreeMap::new(),
            outputs: VecDeque::new(),
            code,
        }
    }

    /// The `join` announcing this member's key (version 2: no name).
    pub fn join(&self, resume: Option<Resume>) -> ClientMessage {
        ClientMessage::Join(Join {
            room: self.room.clone(),
            name: String::new(),
            kind: self.hi.kind,
            resume,
            key: Some(MemberKey {
                pk: B64.encode(self.me.ek()),
                mac: B64.encode(self.keys.announce_mac(self.me.ek())),
            }),
        })
    }

    /// The room's safety code as this member sees it now.
    pub fn safety_code(&self) -> &str {
        &self.code
    }

    /// Peers refused so far, and why.
    pub fn refused(&self) -> impl Iterator<Item = (&PeerId, Refusal)> {
        self.peers.iter().filter_map(|(id, p)| match p.pair {
            Pair::Refused(r) => Some((id, r)),
            _ => None,
        })
    }

    pub fn poll_output(&mut self) -> Option<SealOutput> {
        self.outputs.pop_front()
    }

    /// `welcome`: our id, and everyone already in the room. Pairs with peers still there
    /// under the same key survive (a resume); the rest start over.
    pub fn handle_welcome(&mut self, my_id: PeerId, peers: &[PeerInfo]) {
        self.my_id = Some(my_id);
        let present: Vec<&PeerId> = peers.iter().map(|p| &p.id).collect();
        let gone: Vec<PeerId> = self
            .peers
            .keys()
            .filter(|id| !present.contains(id))
            .cloned()
            .collect();
        for id in gone {
            self.peers.remove(&id);
        }
        for peer in peers {
            self.meet(peer);
        }
        self.update_code();
    }

    pub fn handle_peer_joined(&mut self, peer: &PeerInfo) {
        self.meet(peer);
        self.update_code();
    }

    pub fn handle_peer_left(&mut self, id: &PeerId) {
        self.peers.remove(id);
        self.update_code();
    }

    /// The box left its room: every pair ends.
    pub fn reset(&mut self) {
        self.peers.clear();
        self.my_id = None;
        self.update_code();
    }

    /// A relay from the server: a sealed hello or envelope is checked and opened; a plain
    /// relay refuses its sender.
    pub fn handle_relay(&mut self, relay: Relay) {
        let Some(from) = relay.from.clone() else {
            return;
        };
        if !self.peers.contains_key(&from) {
            tracing::debug!(peer = %from, "a relay from a peer not (or no longer) in the room");
            return;
        }
        if relay.kind != RelayKind::Sealed {
            self.refuse(&from, Refusal::Plain);
        } else if let Some(hello) = relay.fields.get("hello") {
            self.handle_hello(&from, hello);
        } else {
            self.handle_envelope(&from, &relay.fields);
        }
        self.update_code();
    }

    /// A relay from the call: sealed to its peer now, or held until the pair's keys exist.
    pub fn send(&mut self, relay: Relay) {
        let Some(peer) = self.peers.get_mut(&relay.to) else {
            tracing::debug!(peer = %relay.to, "not sealing for a peer not in the room");
            return;
        };
        match peer.pair {
            Pair::Refused(_) => {}
            Pair::Waiting(_) => {
                if peer.queue.len() == MAX_QUEUED {
                    peer.queue.pop_front();
                }
                peer.queue.push_back(relay);
            }
            Pair::Ready { .. } => {
                let to = relay.to.clone();
                let plain = plaintext_of(&relay);
                self.seal_to(&to, &plain);
            }
        }
    }

    /// Our frame key for a peer whose pair is ready (sealed; dropped for any other: keys
    /// are sent only once a peer is named, which is after its keys).
    pub fn send_media_key(&mut self, to: &PeerId, key: &SenderKey) {
        let msg = json!({"type": "media-key", "kid": key.kid, "key": B64.encode(key.key)});
        if matches!(
            self.peers.get(to),
            Some(Peer {
                pair: Pair::Ready { .. },
                ..
            })
        ) {
            self.seal_to(to, &msg);
        } else {
            tracing::debug!(peer = %to, "no pair to seal a frame key in");
        }
    }

    /// A peer from `welcome` or `peer-joined`: its key checked, our hello sent.
    fn meet(&mut self, info: &PeerInfo) {
        let Some(ek) = self.verified_key(info) else {
            tracing::warn!(peer = %info.id, "refused: {} (its announced key)", Refusal::NotAMember.reason());
            self.peers.insert(
                info.id.clone(),
                Peer {
                    ek: Vec::new(),
                    pair: Pair::Refused(Refusal::NotAMember),
                    queue: VecDeque::new(),
                },
            );
            self.outputs.push_back(SealOutput::Refused {
                id: info.id.clone(),
                refusal: Refusal::NotAMember,
            });
            return;
        };
        if let Some(peer) = self.peers.get(&info.id) {
            if peer.ek == ek {
                // Seen again after a signaling outage: a pair with keys stands. One still
                // waiting may have lost a hello either way with the old socket, so it starts
                // afresh: a peer that made keys from our old hello takes the new one as
                // starting over and replies, one still waiting completes with it.
                if matches!(peer.pair, Pair::Waiting(_)) {
                    self.start_pair(&info.id, false);
                }
                return;
            }
        }
        self.peers.insert(
            info.id.clone(),
            Peer {
                ek,
                pair: Pair::Refused(Refusal::NotAMember), // replaced just below
                queue: VecDeque::new(),
            },
        );
        self.start_pair(&info.id, false);
    }

    fn verified_key(&self, info: &PeerInfo) -> Option<Vec<u8>> {
        let key = info.key.as_ref()?;
        let ek = B64.decode(&key.pk).ok()?;
        let mac = B64.decode(&key.mac).ok()?;
        crypto::mac_matches(&self.keys.announce_mac(&ek), &mac).then_some(ek)
    }

    /// Encapsulates afresh to the peer and sends the hello; the pair waits for theirs.
    fn start_pair(&mut self, id: &PeerId, reply: bool) -> Option<Encapsulated> {
        let peer = self.peers.get_mut(id)?;
        let Some(mine) = self.me.encapsulate_to(&peer.ek, rand::random()) else {
            peer.pair = Pair::Refused(Refusal::NotAMember);
            self.outputs.push_back(SealOutput::Refused {
                id: id.clone(),
                refusal: Refusal::NotAMember,
            });
            return None;
        };
        peer.pair = Pair::Waiting(mine.clone());
        self.send_hello(id, &mine, reply);
        Some(mine)
    }

    fn send_hello(&mut self, id: &PeerId, mine: &Encapsulated, reply: bool) {
        let Some(peer) = self.peers.get(id) else {
            return;
        };
        let mac = self.keys.hello_mac(self.me.ek(), &peer.ek, &mine.ct, reply);
        let mut fields = Map::new();
        fields.insert(
            "hello".into(),
            json!({"ct": B64.encode(&mine.ct), "reply": reply, "mac": B64.encode(mac)}),
        );
        self.outputs.push_back(sealed_relay(id, fields));
    }

    fn handle_hello(&mut self, from: &PeerId, hello: &Value) {
        let peer = self.peers.get(from).expect("checked by the caller");
        if matches!(peer.pair, Pair::Refused(_)) {
            return;
        }
        let ct = hello
            .get("ct")
            .and_then(Value::as_str)
            .and_then(|t| B64.decode(t).ok());
        let mac = hello
            .get("mac")
            .and_then(Value::as_str)
            .and_then(|t| B64.decode(t).ok());
        let reply = hello.get("reply").and_then(Value::as_bool);
        let (Some(ct), Some(mac), Some(reply)) = (ct, mac, reply) else {
            return self.refuse(from, Refusal::Altered);
        };
        let expected = self.keys.hello_mac(&peer.ek, self.me.ek(), &ct, reply);
        if !crypto::mac_matches(&expected, &mac) {
            return self.refuse(from, Refusal::NotAMember);
        }
        let Some(theirs) = self.me.decapsulate(&peer.ek, &ct) else {
            return self.refuse(from, Refusal::Altered);
        };
        let mine = match &peer.pair {
            Pair::Waiting(mine) => mine.clone(),
            Pair::Ready { their_ct, .. } if *their_ct == ct => return, // said again
            Pair::Ready { .. } if reply => return,
            Pair::Ready { .. } => {
                // The peer started over (its side lost the pair): so do we.
                tracing::info!(peer = %from, "the peer started its keys over");
                match self.start_pair(from, true) {
                    Some(mine) => mine,
                    None => return,
                }
            }
            Pair::Refused(_) => unreachable!("returned above"),
        };
        let keys = self.keys.pair_keys(&mine, &theirs);
        let peer = self.peers.get_mut(from).expect("present");
        peer.pair = Pair::Ready {
            keys,
            their_ct: ct,
            next_send: 0,
            last_opened: None,
        };
        tracing::debug!(peer = %from, "pair keys agreed");
        let hi = json!({"type": "hi", "name": self.hi.name, "kind": self.hi.kind});
        self.seal_to(from, &hi);
        let queued: Vec<Relay> = peer_queue(&mut self.peers, from);
        for relay in queued {
            let plain = plaintext_of(&relay);
            self.seal_to(from, &plain);
        }
    }

    fn handle_envelope(&mut self, from: &PeerId, fields: &Map<String, Value>) {
        let peer = self.peers.get_mut(from).expect("checked by the caller");
        let Pair::Ready {
            keys, last_opened, ..
        } = &mut peer.pair
        else {
            tracing::debug!(peer = %from, "an envelope before the pair's keys: dropped");
            return;
        };
        let pair = fields.get("pair").and_then(Value::as_str);
        let seq = fields
            .get("seq")
            .and_then(Value::as_u64)
            .filter(|s| *s <= MAX_SEQ);
        let sealed = fields
            .get("box")
            .and_then(Value::as_str)
            .and_then(|b| B64.decode(b).ok());
        let (Some(pair), Some(seq), Some(sealed)) = (pair, seq, sealed) else {
            return self.refuse(from, Refusal::Altered);
        };
        if pair != B64.encode(keys.id()) {
            tracing::debug!(peer = %from, "an envelope of an earlier pair: dropped");
            return;
        }
        if last_opened.is_some_and(|last| seq <= last) {
            return self.refuse(from, Refusal::Replayed);
        }
        let Some(plain) = crypto::open(&keys.recv, seq, &sealed) else {
            return self.refuse(from, Refusal::Altered);
        };
        *last_opened = Some(seq);
        let Ok(Value::Object(mut inner)) = serde_json::from_slice::<Value>(&plain) else {
            tracing::warn!(peer = %from, "a sealed message that is no JSON object: ignored");
            return;
        };
        if inner.get("type").and_then(Value::as_str) == Some("hi") {
            let name = inner
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim();
            let kind = inner
                .get("kind")
                .and_then(|k| serde_json::from_value(k.clone()).ok())
                .unwrap_or(PeerKind::Browser);
            let name: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
            self.outputs.push_back(SealOutput::Named(PeerInfo {
                id: from.clone(),
                name,
                kind,
                key: None,
            }));
            return;
        }
        if inner.get("type").and_then(Value::as_str) == Some("media-key") {
            let kid = inner
                .get("kid")
                .and_then(Value::as_u64)
                .filter(|k| (1..=255).contains(k));
            let key = inner
                .get("key")
                .and_then(Value::as_str)
                .and_then(|k| B64.decode(k).ok());
            match (kid, key.and_then(|k| <[u8; 32]>::try_from(k).ok())) {
                (Some(kid), Some(key)) => self.outputs.push_back(SealOutput::MediaKey {
                    id: from.clone(),
                    key: SenderKey {
                        kid: kid as u8,
                        key,
                    },
                }),
                _ => tracing::warn!(peer = %from, "a malformed frame key: ignored"),
            }
            return;
        }
        // A relay: checked as the server checks a client's, then given to the call.
        let to = self.my_id.clone().unwrap_or_else(|| PeerId(String::new()));
        inner.insert("to".into(), Value::String(to.0));
        match parse_client_message(&Value::Object(inner).to_string()) {
            Ok(ClientMessage::Relay(r)) if r.kind != RelayKind::Sealed => {
                self.outputs.push_back(SealOutput::Relay(Relay {
                    from: Some(from.clone()),
                    ..r
                }));
            }
            Ok(_) => tracing::debug!(peer = %from, "a sealed message of no use to the call"),
            Err(e) => tracing::warn!(peer = %from, "a sealed relay that does not parse: {e}"),
        }
    }

    fn seal_to(&mut self, id: &PeerId, plain: &Value) {
        let Some(Peer {
            pair: Pair::Ready {
                keys, next_send, ..
            },
            ..
        }) = self.peers.get_mut(id)
        else {
            return;
        };
        let seq = *next_send;
        *next_send += 1;
        let sealed = crypto::seal(&keys.send, seq, plain.to_string().as_bytes());
        let mut fields = Map::new();
        fields.insert("pair".into(), B64.encode(keys.id()).into());
        fields.insert("seq".into(), seq.into());
        fields.insert("box".into(), B64.encode(sealed).into());
        self.outputs.push_back(sealed_relay(id, fields));
    }

    fn refuse(&mut self, id: &PeerId, refusal: Refusal) {
        let Some(peer) = self.peers.get_mut(id) else {
            return;
        };
        if matches!(peer.pair, Pair::Refused(_)) {
            return;
        }
        tracing::warn!(peer = %id, "refused: {}", refusal.reason());
        peer.pair = Pair::Refused(refusal);
        peer.queue.clear();
        self.outputs.push_back(SealOutput::Refused {
            id: id.clone(),
            refusal,
        });
    }

    fn update_code(&mut self) {
        let mut eks: Vec<&[u8]> = vec![self.me.ek()];
        eks.extend(
            self.peers
                .values()
                .filter(|p| matches!(p.pair, Pair::Ready { .. }))
                .map(|p| p.ek.as_slice()),
        );
        let code = crypto::safety_code(&eks);
        if code != self.code {
            self.code.clone_from(&code);
            self.outputs.push_back(SealOutput::SafetyCode(code));
        }
    }
}

/// A `sealed` relay to `to` carrying `fields` (a hello, or an envelope), for the server.
fn sealed_relay(to: &PeerId, fields: Map<String, Value>) -> SealOutput {
    SealOutput::Send(ClientMessage::Relay(Relay {
        kind: RelayKind::Sealed,
        to: to.clone(),
        from: None,
        pc: None,
        fields,
    }))
}

fn peer_queue(peers: &mut BTreeMap<PeerId, Peer>, id: &PeerId) -> Vec<Relay> {
    peers
        .get_mut(id)
        .map(|p| p.queue.drain(..).collect())
        .unwrap_or_default()
}

/// A relay as sealed: everything but `to` and `from`.
fn plaintext_of(relay: &Relay) -> Value {
    let mut map = relay.fields.clone();
    map.insert("type".into(), relay.kind.as_str().into());
    if let Some(pc) = &relay.pc {
        map.insert("pc".into(), pc.clone().into());
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests;
