//! TURN relays for the call core, sans-IO: allocations on the TURN servers `welcome` names
//! (UDP, TCP, TLS over TCP; IPv4 and IPv6), relayed candidates for every call, and the
//! relayed traffic wrapped and unwrapped on its way to and from the server.
//!
//! The protocol (allocate, authenticate, refresh, permissions, channels) is `turn-client-proto`,
//! sans-IO like str0m (docs/decisions.md); this module decides which allocations to hold,
//! routes datagrams and stream bytes between the clients and the pump, and says what failed.
//! TLS is the stream's business: the pump opens `turns:` streams with rustls and carries the
//! plaintext. One allocation serves every call: str0m tells
//! the sessions apart by their ICE credentials, as for the host sockets.

use super::Datagram;
use crate::display::RelayState;
use roombox_protocol::IceServer;
use std::collections::{BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use str0m::Candidate;
use turn_client_proto::api::{TurnClientApi, TurnConfig, TurnEvent, TurnPollRet, TurnRecvRet};
use turn_client_proto::stun::agent::Transmit;
use turn_client_proto::tcp::TurnClientTcp;
use turn_client_proto::types::stun::attribute::ErrorCode;
use turn_client_proto::types::stun::message::{Message, MessageClass};
use turn_client_proto::types::{AddressFamily, TransportType, TurnCredentials};
use turn_client_proto::udp::TurnClientUdp;

turn_client_proto::impl_client!(Client, (Udp, TurnClientUdp), (Tcp, TurnClientTcp));

/// How the box reaches a TURN server (the relayed side is always UDP, as WebRTC needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    /// TLS over TCP (`turns:`), usually on port 443 where only HTTPS gets out.
    Tls,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

/// A `turn:` or `turns:` URL (RFC 7065).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnUrl {
    pub transport: Transport,
    pub host: String,
    pub port: u16,
}

/// Parses `turn:HOST[:PORT][?transport=udp|tcp]` and `turns:HOST[:PORT][?transport=tcp]`
/// (IPv6 hosts in brackets); `Err` says what is wrong. DTLS (`turns:` over UDP) is refused:
/// no browser offers it either.
pub fn parse_turn_url(url: &str) -> Result<TurnUrl, String> {
    let (secure, rest) = if let Some(r) = url.strip_prefix("turns:") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("turn:") {
        (false, r)
    } else {
        return Err(format!("{url:?} is not a turn: or turns: URL"));
    };
    let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
    let tcp = match query {
        "" => secure,
        "transport=udp" if !secure => false,
        "transport=tcp" => true,
        other => return Err(format!("{url:?}: unsupported {other:?}")),
    };
    let default_port = if secure { 5349 } else { 3478 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url:?}: unclosed ["))?;
        match after.strip_prefix(':') {
            Some(p) => (host, p),
            None if after.is_empty() => (host, ""),
            None => return Err(format!("{url:?}: junk after the address")),
        }
    } else {
        authority.split_once(':').unwrap_or((authority, ""))
    };
    if host.is_empty() {
        return Err(format!("{url:?}: no host"));
    }
    let port = if port.is_empty() {
        default_port
    } else {
        port.parse()
            .map_err(|_| format!("{url:?}: bad port {port:?}"))?
    };
    let transport = match (secure, tcp) {
        (true, _) => Transport::Tls,
        (false, true) => Transport::Tcp,
        (false, false) => Transport::Udp,
    };
    Ok(TurnUrl {
        transport,
        host: host.to_owned(),
        port,
    })
}

/// A stream to a TURN server (TCP or TLS), opened and carried by the pump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpCommand {
    /// `tls`: the name to check the server's certificate against (`turns:`).
    Connect {
        conn: u64,
        server: SocketAddr,
        tls: Option<String>,
    },
    Send {
        conn: u64,
        data: Vec<u8>,
    },
    Close {
        conn: u64,
    },
}

/// What happened to a stream the pump carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpEvent {
    Connected {
        local: SocketAddr,
    },
    Data(Vec<u8>),
    /// Closed by either side, or the connection could not be made.
    Closed,
}

/// What the relays ask of the call core.
#[derive(Debug)]
pub enum RelayOutput {
    Transmit(Datagram),
    Tcp(TcpCommand),
    /// Resolve this server's host; the addresses come back through [`Relays::resolved`].
    LookUp {
        url: String,
        host: String,
        port: u16,
    },
    /// A relayed candidate every call should offer.
    Added(Candidate),
    /// A relayed candidate that is gone (its allocation failed or its network went).
    Removed(Candidate),
    /// A datagram a peer sent to a relayed address: source the peer, destination the relay.
    PeerData(Datagram),
}

/// A failed server is tried again after this, doubling up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(120);
/// Packets held per allocation while a permission for their peer is being installed (ICE
/// checks: a few per peer; more would be media that can wait for a retransmission).
const WAITING_MAX: usize = 32;

struct Server {
    url: String,
    parsed: TurnUrl,
    username: String,
    password: String,
    /// Resolved addresses; empty until looked up.
    addrs: Vec<SocketAddr>,
    looked_up: bool,
    /// Not tried before this (after a failure).
    retry_at: Option<Instant>,
    failures: u32,
    /// The server refused these credentials: not tried again until `welcome` brings others.
    refused: bool,
}

struct Allocation {
    url: String,
    transport: Transport,
    server: SocketAddr,
    /// The UDP socket, or the stream's local end once connected.
    local: Option<SocketAddr>,
    conn: Option<u64>,
    client: Option<Client>,
    relayed: Option<Candidate>,
    wake: Option<Instant>,
    /// Waiting for a permission to their peer's address.
    waiting: Vec<(SocketAddr, Vec<u8>)>,
    permissions_asked: BTreeSet<IpAddr>,
    /// Peers the server would not give a permission for: not asked again.
    refused_peers: BTreeSet<IpAddr>,
    ever_permitted: BTreeSet<IpAddr>,
    channels_asked: BTreeSet<SocketAddr>,
    /// The last error response the server sent (UDP only: streams are not read here).
    last_error: Option<String>,
    /// 401 answers: the first is the challenge; one to the authenticated request is a refusal.
    unauthorized: u32,
    /// Finished (failed or closed): removed at the next sweep.
    done: bool,
}

pub struct Relays {
    /// Time zero of the TURN clients' clock (they count nanoseconds from a base).
    base: Instant,
    servers: Vec<Server>,
    allocations: Vec<Allocation>,
    locals: Vec<SocketAddr>,
    next_conn: u64,
    out: VecDeque<RelayOutput>,
    /// Why the last allocation failed, for the status.
    failure: Option<String>,
}

impl Relays {
    pub fn new(locals: Vec<SocketAddr>, now: Instant) -> Relays {
        Relays {
            base: now,
            servers: Vec::new(),
            allocations: Vec::new(),
            locals,
            next_conn: 1,
            out: VecDeque::new(),
            failure: None,
        }
    }

    pub fn poll_output(&mut self) -> Option<RelayOutput> {
        self.out.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let allocations = self.allocations.iter().filter_map(|a| a.wake);
        let retries = self.servers.iter().filter_map(|s| s.retry_at);
        allocations.chain(retries).min()
    }

    /// The relayed candidates up now.
    pub fn candidates(&self) -> impl Iterator<Item = &Candidate> {
        self.allocations.iter().filter_map(|a| a.relayed.as_ref())
    }

    /// For the status screen and the settings page.
    pub fn state(&self) -> RelayState {
        if self.servers.is_empty() {
            return RelayState::NotConfigured;
        }
        let mut up: Vec<&'static str> = (self.allocations.iter())
            .filter(|a| a.relayed.is_some())
            .map(|a| a.transport.name())
            .collect();
        up.sort_unstable();
        up.dedup();
        match (&self.failure, up.is_empty()) {
            (_, false) => RelayState::Ready(up.join(", ")),
            (Some(why), true) => RelayState::Failed(why.clone()),
            (None, true) => RelayState::Allocating,
        }
    }

    /// The TURN servers of a new `welcome` (STUN URLs in it are someone else's business). A
    /// server already in use keeps its allocations (they are refreshed with the credentials
    /// they were made with; a new allocation takes the new ones); servers no longer named are
    /// let go.
    pub fn set_servers(&mut self, ice_servers: &[IceServer], now: Instant) {
        let mut wanted = Vec::new();
        for s in ice_servers {
            for url in s.urls.iter().filter(|u| u.starts_with("turn")) {
                match parse_turn_url(url) {
                    Ok(parsed) => wanted.push((url.clone(), parsed, s)),
                    Err(e) => tracing::warn!("TURN server ignored: {e}"),
                }
            }
        }
        let gone: Vec<String> = (self.servers.iter())
            .filter(|s| !wanted.iter().any(|(u, ..)| *u == s.url))
            .map(|s| s.url.clone())
            .collect();
        for url in gone {
            self.servers.retain(|s| s.url != url);
            for a in self.allocations.iter_mut().filter(|a| a.url == url) {
                a.done = true;
            }
        }
        for (url, parsed, s) in wanted {
            let username = s.username.clone().unwrap_or_default();
            let password = s.credential.clone().unwrap_or_default();
            if let Some(known) = self.servers.iter_mut().find(|k| k.url == url) {
                if known.username != username || known.password != password {
                    known.username = username;
                    known.password = password;
                    // New credentials: a refused server is worth another try at once.
                    if known.refused {
                        known.refused = false;
                        known.retry_at = None;
                        known.failures = 0;
                    }
                }
                continue;
            }
            self.out.push_back(RelayOutput::LookUp {
                url: url.clone(),
                host: parsed.host.clone(),
                port: parsed.port,
            });
            self.servers.push(Server {
                url,
                parsed,
                username,
                password,
                addrs: Vec::new(),
                looked_up: false,
                retry_at: None,
                failures: 0,
                refused: false,
            });
        }
        if self.servers.is_empty() {
            self.failure = None;
        }
        self.sweep(now);
        self.ensure(now);
    }

    /// The addresses of a server asked for with [`RelayOutput::LookUp`] (none: not found).
    pub fn resolved(&mut self, url: &str, addrs: Vec<SocketAddr>, now: Instant) {
        let Some(s) = self.servers.iter_mut().find(|s| s.url == url) else {
            return;
        };
        s.looked_up = true;
        if addrs.is_empty() {
            tracing::warn!(url, "TURN server not found; calls go without it");
            self.failure = Some(format!("{}: host not found", s.parsed.host));
        }
        s.addrs = addrs;
        self.ensure(now);
    }

    /// The local addresses changed: allocations made from a gone address are dropped (their
    /// candidates with them); new addresses get allocations of their own.
    pub fn set_locals(&mut self, locals: Vec<SocketAddr>, now: Instant) {
        for a in &mut self.allocations {
            let gone = a
                .local
                .is_some_and(|l| !locals.iter().any(|n| n.ip() == l.ip()));
            if gone {
                tracing::info!(url = %a.url, local = ?a.local, "address gone: TURN allocation dropped");
                a.done = true;
            }
        }
        self.locals = locals;
        self.sweep(now);
        self.ensure(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.allocations.len() {
            if self.allocations[i].wake.is_some_and(|t| t <= now) {
                self.drive(i, now);
            }
        }
        self.sweep(now);
        self.ensure(now);
    }

    /// A datagram from a TURN server to one of our UDP allocations: consumed (and any peer
    /// data in it queued as [`RelayOutput::PeerData`]); anything else is handed back.
    pub fn handle_datagram<'d>(&mut self, d: &'d Datagram, now: Instant) -> Option<&'d Datagram> {
        let Some(i) = self.allocations.iter().position(|a| {
            a.transport == Transport::Udp && a.server == d.source && a.local == Some(d.destination)
        }) else {
            return Some(d);
        };
        let a = &mut self.allocations[i];
        if let Some((code, why)) = error_response(&d.contents) {
            a.last_error = Some(why);
            if code == 401 && a.relayed.is_none() {
                a.unauthorized += 1;
            }
        }
        if a.unauthorized >= 2 {
            // The client would wait out its retransmissions (~30 s) for a better answer.
            let why = format!(
                "{} refused the allocation: 401 Unauthorized (wrong or expired credentials)",
                a.url
            );
            self.fail(i, why, true, now);
            self.sweep(now);
            return None;
        }
        let Some(client) = a.client.as_mut() else {
            return Some(d);
        };
        let transmit = Transmit::new(&d.contents[..], TransportType::Udp, d.source, d.destination);
        let received = client.recv(transmit, to_turn(self.base, now));
        tracing::trace!(from = %d.source, len = d.contents.len(), ?received, "from the TURN server");
        let ours = match received {
            TurnRecvRet::Ignored(_) => false,
            TurnRecvRet::PeerData(p) => {
                if let Some(c) = &a.relayed {
                    self.out.push_back(RelayOutput::PeerData(Datagram {
                        source: p.peer,
                        destination: c.addr(),
                        contents: p.data().to_vec(),
                    }));
                }
                true
            }
            TurnRecvRet::Handled | TurnRecvRet::PeerIcmp { .. } => true,
        };
        if !ours {
            return Some(d); // the server's STUN side answering a Binding request, say
        }
        self.drive(i, now);
        self.sweep(now);
        None
    }

    /// What happened to a stream to a TURN server.
    pub fn handle_tcp(&mut self, conn: u64, ev: TcpEvent, now: Instant) {
        let Some(i) = self.allocations.iter().position(|a| a.conn == Some(conn)) else {
            return;
        };
        match ev {
            TcpEvent::Connected { local } => {
                let a = &self.allocations[i];
                let Some(server) = self.servers.iter().find(|s| s.url == a.url) else {
                    return;
                };
                let config = turn_config(server, a.server);
                // TCP and TLS alike: the pump's stream carries TLS's plaintext.
                let client = Client::Tcp(TurnClientTcp::allocate(local, a.server, config));
                let a = &mut self.allocations[i];
                a.local = Some(local);
                a.client = Some(client);
                tracing::debug!(url = %a.url, %local, "connected to the TURN server");
            }
            TcpEvent::Data(bytes) => {
                let a = &mut self.allocations[i];
                let (Some(client), Some(local)) = (a.client.as_mut(), a.local) else {
                    return;
                };
                let t = to_turn(self.base, now);
                let transmit = Transmit::new(&bytes[..], TransportType::Tcp, a.server, local);
                let mut peer_data = Vec::new();
                if let TurnRecvRet::PeerData(p) = client.recv(transmit, t) {
                    peer_data.push((p.peer, p.data().to_vec()));
                }
                while let Some(p) = client.poll_recv(t) {
                    peer_data.push((p.peer, p.data().to_vec()));
                }
                if let Some(c) = &a.relayed {
                    for (peer, contents) in peer_data {
                        self.out.push_back(RelayOutput::PeerData(Datagram {
                            source: peer,
                            destination: c.addr(),
                            contents,
                        }));
                    }
                }
            }
            TcpEvent::Closed => {
                let what = if self.allocations[i].client.is_some() {
                    "connection closed"
                } else {
                    "cannot connect"
                };
                let why = format!("{}: {what}", self.allocations[i].url);
                self.fail(i, why, false, now);
                self.sweep(now);
                return;
            }
        }
        self.drive(i, now);
        self.sweep(now);
    }

    /// A datagram a call sends: one from a relayed address goes through its allocation (the
    /// permission for the peer installed first), anything else is handed back.
    pub fn send(&mut self, d: Datagram, now: Instant) -> Option<Datagram> {
        let Some(i) = (self.allocations.iter())
            .position(|a| a.relayed.as_ref().is_some_and(|c| c.addr() == d.source))
        else {
            return Some(d);
        };
        let t = to_turn(self.base, now);
        let a = &mut self.allocations[i];
        let path = a.path();
        let client = a.client.as_mut()?;
        let peer = d.destination;
        if !relayable(peer.ip()) || a.refused_peers.contains(&peer.ip()) {
            return None; // the server refuses these (and coturn drops a TCP client that asks)
        }
        if !client.have_permission(TransportType::Udp, peer.ip()) {
            if a.permissions_asked.insert(peer.ip()) {
                if let Err(e) = client.create_permission(TransportType::Udp, peer.ip(), t) {
                    tracing::debug!(%peer, "TURN permission: {e}");
                }
            }
            if a.waiting.len() < WAITING_MAX {
                a.waiting.push((peer, d.contents));
            }
            self.drive(i, now);
            return None;
        }
        match client.send_to(TransportType::Udp, peer, d.contents, t) {
            Ok(Some(transmit)) => {
                let transmit = transmit.build();
                route(&mut self.out, path, transmit.transport, transmit.data);
            }
            Ok(None) => {}
            Err(e) => tracing::trace!(%peer, "TURN send: {e}"),
        }
        // A channel saves 32 bytes a packet and is what servers relay fastest; over TCP and
        // TLS turn-client-proto 0.7 neither pads ChannelData to 4 bytes nor skips the server's
        // padding (RFC 8656 12.5), which would break the stream's framing: Send indications
        // there (STUN messages, always aligned).
        if a.conn.is_none() && a.channels_asked.insert(peer) {
            if let Err(e) = client.bind_channel(TransportType::Udp, peer, t) {
                tracing::debug!(%peer, "TURN channel: {e}");
            }
            self.drive(i, now);
        }
        None
    }

    /// Lets go of every allocation (the box is stopping or leaving the room).
    pub fn close(&mut self, now: Instant) {
        let t = to_turn(self.base, now);
        for i in 0..self.allocations.len() {
            if let Some(c) = self.allocations[i].client.as_mut() {
                let _ = c.delete(t);
            }
            self.flush_transmits(i, now);
            self.allocations[i].done = true;
        }
        self.sweep(now);
    }

    /// Runs a client's timers and collects what it wants sent and what happened.
    fn drive(&mut self, i: usize, now: Instant) {
        let t = to_turn(self.base, now);
        let Some(client) = self.allocations[i].client.as_mut() else {
            return;
        };
        // A client that gives up on authenticating says so at the poll after: ask twice.
        let poll = match client.poll(t) {
            TurnPollRet::WaitUntil(_) => client.poll(t),
            other => other,
        };
        let mut events = Vec::new();
        while let Some(ev) = client.poll_event() {
            events.push(ev);
        }
        for ev in events {
            self.on_event(i, ev, now);
        }
        self.flush_transmits(i, now);
        let a = &mut self.allocations[i];
        match poll {
            TurnPollRet::WaitUntil(w) => a.wake = Some(from_turn(self.base, w).max(now)),
            TurnPollRet::Closed => {
                a.wake = None;
                let why = a.last_error.take().map_or_else(
                    || format!("{}: the allocation closed", a.url),
                    |e| format!("{}: {e}", a.url),
                );
                self.fail(i, why, false, now);
            }
            _ => a.wake = None,
        }
    }

    fn flush_transmits(&mut self, i: usize, now: Instant) {
        let t = to_turn(self.base, now);
        let a = &mut self.allocations[i];
        let path = a.path();
        let Some(client) = a.client.as_mut() else {
            return;
        };
        let mut transmits = Vec::new();
        while let Some(tx) = client.poll_transmit(t) {
            transmits.push((tx.transport, tx.data.to_vec()));
        }
        for (transport, data) in transmits {
            route(&mut self.out, path, transport, data);
        }
    }

    fn on_event(&mut self, i: usize, ev: TurnEvent, now: Instant) {
        let t = to_turn(self.base, now);
        match ev {
            TurnEvent::AllocationCreated(_, relayed) => {
                let a = &mut self.allocations[i];
                let local = a.local.expect("a client has its local address");
                match Candidate::relayed(relayed, local, "udp") {
                    Ok(c) => {
                        tracing::info!(url = %a.url, %relayed, via = %a.transport.name(), "TURN relay allocated");
                        a.relayed = Some(c.clone());
                        self.out.push_back(RelayOutput::Added(c));
                    }
                    Err(e) => tracing::warn!(%relayed, "relayed address unusable: {e}"),
                }
                self.failure = None;
                if let Some(s) = self.servers.iter_mut().find(|s| s.url == a.url) {
                    s.failures = 0;
                }
            }
            TurnEvent::AllocationCreateFailed(_) => {
                let a = &mut self.allocations[i];
                let why = match a.last_error.take() {
                    Some(e) => format!("{} refused the allocation: {e}", a.url),
                    None => format!(
                        "{} refused the allocation (wrong or expired credentials?)",
                        a.url
                    ),
                };
                self.fail(i, why, true, now);
            }
            TurnEvent::PermissionCreated(_, ip) => {
                let a = &mut self.allocations[i];
                a.ever_permitted.insert(ip);
                let (ready, still): (Vec<_>, Vec<_>) =
                    a.waiting.drain(..).partition(|(peer, _)| peer.ip() == ip);
                a.waiting = still;
                let path = a.path();
                let Some(client) = a.client.as_mut() else {
                    return;
                };
                for (peer, data) in ready {
                    if let Ok(Some(transmit)) = client.send_to(TransportType::Udp, peer, data, t) {
                        let transmit = transmit.build();
                        route(&mut self.out, path, transmit.transport, transmit.data);
                    }
                }
            }
            TurnEvent::PermissionCreateFailed(_, ip) => {
                let a = &mut self.allocations[i];
                tracing::debug!(url = %a.url, %ip, "TURN permission refused or expired");
                a.waiting.retain(|(peer, _)| peer.ip() != ip);
                // Expired ones are asked for again at the next packet; refused ones never.
                if a.permissions_asked.remove(&ip) && !a.ever_permitted.contains(&ip) {
                    a.refused_peers.insert(ip);
                }
                a.channels_asked.retain(|p| p.ip() != ip);
            }
            TurnEvent::ChannelCreateFailed(_, peer) => {
                self.allocations[i].channels_asked.remove(&peer);
            }
            _ => {}
        }
    }

    /// An allocation failed: it goes at the next sweep; its server is tried again later, or
    /// (credentials refused) when `welcome` brings new ones.
    fn fail(&mut self, i: usize, why: String, refused: bool, now: Instant) {
        let a = &mut self.allocations[i];
        if a.done {
            return;
        }
        a.done = true;
        tracing::warn!("TURN: {why}");
        self.failure = Some(why);
        if let Some(s) = self.servers.iter_mut().find(|s| s.url == a.url) {
            s.failures += 1;
            s.refused |= refused;
            let backoff = RETRY_FIRST * 2u32.pow(s.failures.min(7) - 1);
            // A refused server waits for new credentials, not for a time (no timer to wake).
            s.retry_at = (!s.refused).then(|| now + backoff.min(RETRY_MAX));
        }
    }

    /// Removes finished allocations, taking their candidates back and closing their streams.
    fn sweep(&mut self, _now: Instant) {
        let (done, keep): (Vec<_>, Vec<_>) = self.allocations.drain(..).partition(|a| a.done);
        self.allocations = keep;
        for a in done {
            if let Some(c) = a.relayed {
                tracing::info!(url = %a.url, relayed = %c.addr(), "TURN relay gone");
                self.out.push_back(RelayOutput::Removed(c));
            }
            if let Some(conn) = a.conn {
                self.out
                    .push_back(RelayOutput::Tcp(TcpCommand::Close { conn }));
            }
        }
    }

    /// Makes the allocations that should exist and do not: for UDP one per local address of
    /// the server's family (each network path gets its relay), for TCP and TLS one stream per
    /// address family (the kernel picks the route).
    fn ensure(&mut self, now: Instant) {
        for s in &mut self.servers {
            if !s.looked_up || s.refused || s.retry_at.is_some_and(|t| t > now) {
                continue;
            }
            s.retry_at = None;
            for &server in &s.addrs {
                let locals = (self.locals.iter()).filter(|l| {
                    l.is_ipv4() == server.is_ipv4()
                        && l.ip().is_loopback() == server.ip().is_loopback()
                });
                match s.parsed.transport {
                    Transport::Udp => {
                        for &local in locals {
                            let exists = self.allocations.iter().any(|a| {
                                a.url == s.url && a.local == Some(local) && a.server == server
                            });
                            if exists {
                                continue;
                            }
                            let config = turn_config(s, server);
                            let client =
                                Client::Udp(TurnClientUdp::allocate(local, server, config));
                            self.allocations.push(Allocation::new(
                                s,
                                server,
                                Some(local),
                                None,
                                Some(client),
                            ));
                        }
                    }
                    Transport::Tcp | Transport::Tls => {
                        let have_family = locals.count() > 0;
                        let exists = (self.allocations.iter())
                            .any(|a| a.url == s.url && a.server.is_ipv4() == server.is_ipv4());
                        if !have_family || exists {
                            continue;
                        }
                        let conn = self.next_conn;
                        self.next_conn += 1;
                        let tls =
                            (s.parsed.transport == Transport::Tls).then(|| s.parsed.host.clone());
                        self.out.push_back(RelayOutput::Tcp(TcpCommand::Connect {
                            conn,
                            server,
                            tls,
                        }));
                        self.allocations
                            .push(Allocation::new(s, server, None, Some(conn), None));
                    }
                }
            }
        }
        for i in 0..self.allocations.len() {
            if self.allocations[i].client.is_some() && self.allocations[i].wake.is_none() {
                self.drive(i, now);
            }
        }
    }
}

impl Allocation {
    fn path(&self) -> ServerPath {
        ServerPath {
            conn: self.conn,
            local: self.local,
            server: self.server,
        }
    }

    fn new(
        s: &Server,
        server: SocketAddr,
        local: Option<SocketAddr>,
        conn: Option<u64>,
        client: Option<Client>,
    ) -> Allocation {
        tracing::debug!(url = %s.url, %server, ?local, "asking for a TURN allocation");
        Allocation {
            url: s.url.clone(),
            transport: s.parsed.transport,
            server,
            local,
            conn,
            client,
            relayed: None,
            wake: None,
            waiting: Vec::new(),
            permissions_asked: BTreeSet::new(),
            refused_peers: BTreeSet::new(),
            ever_permitted: BTreeSet::new(),
            channels_asked: BTreeSet::new(),
            last_error: None,
            unauthorized: 0,
            done: false,
        }
    }
}

/// The relayed address comes in the server address's family: a peer of the other family is
/// reached through the other family's allocation.
fn turn_config(s: &Server, server: SocketAddr) -> TurnConfig {
    let mut config = TurnConfig::new(TurnCredentials::new(&s.username, &s.password));
    config.set_allocation_transport(TransportType::Udp);
    config.set_address_family(if server.is_ipv4() {
        AddressFamily::IPV4
    } else {
        AddressFamily::IPV6
    });
    config
}

/// Whether a relay could ever reach this peer: not loopback, unspecified, multicast or
/// link-local (a browser started with loopback candidates offers 127.0.0.1, say).
fn relayable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback() || v4.is_unspecified() || v4.is_multicast() || v4.is_link_local())
        }
        IpAddr::V6(v6) => {
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unicast_link_local())
        }
    }
}

/// How an allocation reaches its server.
#[derive(Clone, Copy)]
struct ServerPath {
    conn: Option<u64>,
    local: Option<SocketAddr>,
    server: SocketAddr,
}

/// Sends bytes to an allocation's server: a datagram from its socket, or the stream's bytes.
fn route(out: &mut VecDeque<RelayOutput>, a: ServerPath, transport: TransportType, data: Vec<u8>) {
    match (transport, a.conn, a.local) {
        (TransportType::Tcp, Some(conn), _) => {
            tracing::trace!(conn, len = data.len(), head = ?&data[..data.len().min(24)], "to the TURN stream");
            out.push_back(RelayOutput::Tcp(TcpCommand::Send { conn, data }));
        }
        (TransportType::Udp, _, Some(local)) => out.push_back(RelayOutput::Transmit(Datagram {
            source: local,
            destination: a.server,
            contents: data,
        })),
        _ => tracing::trace!(server = %a.server, "nothing to send a TURN message on"),
    }
}

/// The code and "401 Unauthorized" of a STUN error response, for saying why an allocation failed.
fn error_response(data: &[u8]) -> Option<(u16, String)> {
    let msg = Message::from_bytes(data).ok()?;
    if msg.class() != MessageClass::Error {
        return None;
    }
    let code = msg.attribute::<ErrorCode>().ok()?;
    Some((code.code(), format!("{} {}", code.code(), code.reason())))
}

fn to_turn(base: Instant, now: Instant) -> turn_client_proto::types::Instant {
    let nanos = now.saturating_duration_since(base).as_nanos();
    turn_client_proto::types::Instant::from_nanos(i64::try_from(nanos).unwrap_or(i64::MAX))
}

fn from_turn(base: Instant, t: turn_client_proto::types::Instant) -> Instant {
    base + t.saturating_duration_since(turn_client_proto::types::Instant::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_urls() {
        let u = parse_turn_url("turn:turn.example:3478?transport=udp").unwrap();
        assert_eq!(
            (u.transport, u.host.as_str(), u.port),
            (Transport::Udp, "turn.example", 3478)
        );
        let u = parse_turn_url("turn:10.0.0.1?transport=tcp").unwrap();
        assert_eq!((u.transport, u.port), (Transport::Tcp, 3478));
        let u = parse_turn_url("turns:turn.example:443?transport=tcp").unwrap();
        assert_eq!((u.transport, u.port), (Transport::Tls, 443));
        let u = parse_turn_url("turns:turn.example").unwrap();
        assert_eq!((u.transport, u.port), (Transport::Tls, 5349));
        let u = parse_turn_url("turn:[fd00::1]:3479").unwrap();
        assert_eq!(
            (u.transport, u.host.as_str(), u.port),
            (Transport::Udp, "fd00::1", 3479)
        );
        assert!(parse_turn_url("stun:x").unwrap_err().contains("not a turn"));
        assert!(parse_turn_url("turns:x?transport=udp")
            .unwrap_err()
            .contains("unsupported"));
        assert!(parse_turn_url("turn:x:http")
            .unwrap_err()
            .contains("bad port"));
        assert!(parse_turn_url("turn::3478")
            .unwrap_err()
            .contains("no host"));
    }

    #[test]
    fn turn_clock_round_trips() {
        let base = Instant::now();
        let later = base + Duration::from_millis(1234);
        assert_eq!(from_turn(base, to_turn(base, later)), later);
    }
}
