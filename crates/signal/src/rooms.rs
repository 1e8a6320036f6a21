//! The room table: who is in which room, and where to deliver their messages.
//!
//! Plain data behind one mutex in the server; every method is short and never awaits.
//! Deliveries go into each peer's bounded outbox; a peer whose outbox is full is not reading,
//! and is disconnected rather than allowed to grow the server's memory.

use crate::outbox::Outbox;
use roombox_protocol::{
    ErrorCode, IceServer, Join, ParseError, PeerId, PeerInfo, RoomName, ServerMessage, Welcome,
};
use std::collections::HashMap;

/// Which socket a member belongs to, so a replaced socket's late cleanup removes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

struct Member {
    info: PeerInfo,
    resume_token: String,
    conn: ConnId,
    outbox: Outbox,
}

/// At most a handful of members, in join order: a Vec costs only what it holds, where a
/// BTreeMap allocates a whole node (about 1.4 KB) for a single member.
#[derive(Default)]
struct Room {
    members: Members,
}

#[derive(Default)]
struct Members(Vec<Member>);

impl Members {
    fn get(&self, id: &PeerId) -> Option<&Member> {
        self.0.iter().find(|m| &m.info.id == id)
    }

    fn get_mut(&mut self, id: &PeerId) -> Option<&mut Member> {
        self.0.iter_mut().find(|m| &m.info.id == id)
    }

    fn insert(&mut self, member: Member) {
        self.0.reserve_exact(1);
        self.0.push(member);
    }

    fn remove(&mut self, id: &PeerId) {
        self.0.retain(|m| &m.info.id != id);
        self.0.shrink_to_fit();
    }

    fn values(&self) -> impl Iterator<Item = &Member> {
        self.0.iter()
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

pub struct Rooms {
    rooms: HashMap<RoomName, Room>,
    /// Every id in use, and its room: ids are unique server-wide so a resume cannot collide.
    ids: HashMap<PeerId, RoomName>,
    max_peers: usize,
}

/// What a successful join did.
pub struct Joined {
    pub welcome: Welcome,
    /// True when the join took over a live member's place (a resume before its old socket died).
    pub replaced: bool,
}

impl Rooms {
    pub fn new(max_peers: usize) -> Self {
        Rooms {
            rooms: HashMap::new(),
            ids: HashMap::new(),
            max_peers,
        }
    }

    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    pub fn peer_count(&self) -> usize {
        self.ids.len()
    }

    /// Adds a member, or resumes one (see docs/protocol.md, "Resume").
    pub fn join(
        &mut self,
        join: Join,
        conn: ConnId,
        outbox: Outbox,
        ice_servers: &[IceServer],
    ) -> Result<Joined, ParseError> {
        let room = self.rooms.entry(join.room.clone()).or_default();

        // Resume of a member whose old socket the server still holds: swap the socket in.
        if let Some(resume) = &join.resume {
            if let Some(member) = room.members.get_mut(&resume.id) {
                if member.resume_token == resume.token {
                    member.outbox.close();
                    member.outbox = outbox;
                    member.conn = conn;
                    member.info.name = join.name;
                    member.info.kind = join.kind;
                    member.info.key = join.key;
                    let welcome =
                        welcome_for(&join.room, room, &resume.id, ice_servers, self.max_peers);
                    return Ok(Joined {
                        welcome,
                        replaced: true,
                    });
                }
            }
        }

        // A room speaks one version: an old client in a sealed room is told so at once.
        if let Some(member) = room.members.values().next() {
            let theirs = if member.info.key.is_some() { 2 } else { 1 };
            if theirs != join.version() {
                return Err(ParseError::new(
                    ErrorCode::WrongVersion,
                    format!(
                        "room {} speaks signaling version {theirs}, this client {}",
                        join.room,
                        join.version()
                    ),
                ));
            }
        }

        if room.members.len() >= self.max_peers {
            return Err(ParseError::new(
                ErrorCode::RoomFull,
                format!("room {} is full ({} peers)", join.room, self.max_peers),
            ));
        }

        // A resumed id is granted again when nobody holds it (the server restarted, or the
        // peer was already announced as gone); otherwise the peer gets a fresh id.
        let (id, resume_token) = match join.resume {
            Some(r)
                if r.id.is_well_formed()
                    && !self.ids.contains_key(&r.id)
                    && !r.token.is_empty()
                    && r.token.len() <= 64 =>
            {
                (r.id, r.token)
            }
            _ => (self.fresh_id(), random_token(24)),
        };
        let info = PeerInfo {
            id: id.clone(),
            name: join.name,
            kind: join.kind,
            key: join.key,
        };
        let room = self
            .rooms
            .get_mut(&join.room)
            .expect("room entry made above");
        let joined = ServerMessage::PeerJoined { peer: info.clone() }
            .to_json()
            .into();
        for member in room.members.values() {
            member.outbox.deliver(&joined);
        }
        room.members.insert(Member {
            info,
            resume_token: resume_token.clone(),
            conn,
            outbox,
        });
        self.ids.insert(id.clone(), join.room.clone());
        let mut welcome = welcome_for(&join.room, room, &id, ice_servers, self.max_peers);
        welcome.resume_token = resume_token;
        Ok(Joined {
            welcome,
            replaced: false,
        })
    }

    /// Removes `id` if it still belongs to `conn`, telling the rest of its room.
    pub fn leave(&mut self, id: &PeerId, conn: ConnId) -> bool {
        let Some(room_name) = self.ids.get(id) else {
            return false;
        };
        let room = self
            .rooms
            .get_mut(room_name)
            .expect("every id's room exists");
        match room.members.get(id) {
            Some(m) if m.conn == conn => {}
            _ => return false,
        }
        room.members.remove(id);
        let left = ServerMessage::PeerLeft { id: id.clone() }.to_json().into();
        for member in room.members.values() {
            member.outbox.deliver(&left);
        }
        if room.members.is_empty() {
            self.rooms.remove(room_name);
        }
        self.ids.remove(id);
        true
    }

    /// The outbox of `to`, if it shares a room with `from` (and is not `from` itself).
    pub fn route(&self, from: &PeerId, to: &PeerId) -> Option<&Outbox> {
        if from == to {
            return None;
        }
        let room_name = self.ids.get(from)?;
        if self.ids.get(to)? != room_name {
            return None;
        }
        self.rooms
            .get(room_name)?
            .members
            .get(to)
            .map(|m| &m.outbox)
    }

    /// Whether `id` is currently held by `conn` (false once a resume took it over).
    pub fn holds(&self, id: &PeerId, conn: ConnId) -> bool {
        self.ids
            .get(id)
            .and_then(|room| self.rooms.get(room))
            .and_then(|room| room.members.get(id))
            .is_some_and(|m| m.conn == conn)
    }

    fn fresh_id(&self) -> PeerId {
        loop {
            let id = PeerId(random_token(10));
            if !self.ids.contains_key(&id) {
                return id;
            }
        }
    }
}

fn welcome_for(
    room_name: &RoomName,
    room: &Room,
    id: &PeerId,
    ice_servers: &[IceServer],
    max_peers: usize,
) -> Welcome {
    Welcome {
        id: id.clone(),
        resume_token: room
            .members
            .get(id)
            .map(|m| m.resume_token.clone())
            .unwrap_or_default(),
        room: room_name.clone(),
        peers: room
            .members
            .values()
            .filter(|m| &m.info.id != id)
            .map(|m| m.info.clone())
            .collect(),
        ice_servers: ice_servers.to_vec(),
        max_peers,
    }
}

fn random_token(len: usize) -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

#[cfg(test)]
mod tests;
