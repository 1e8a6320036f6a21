//! `calls::turn` against a TURN server played in memory (turn-server-proto, sans-IO), on
//! virtual time: an allocation becomes a relayed candidate, a call's datagram reaches the peer
//! through it and the peer's answer comes back as from the peer, refused credentials are
//! reported plainly and not retried, a gone address takes its relay with it. The real-network
//! cases (coturn, NATs, TCP, TLS, Chromium) are tests/e2e/nat.test.js.

use super::turn::{RelayOutput, Relays};
use super::Datagram;
use crate::display::RelayState;
use roombox_protocol::IceServer;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use turn_server_proto::api::{TurnServerApi, TurnServerPollRet};
use turn_server_proto::server::TurnServer;
use turn_server_proto::stun::agent::Transmit;
use turn_server_proto::types::TransportType;

const SERVER: &str = "198.51.100.1:3478";
const LOCAL: &str = "10.1.0.2:40000";
const RELAYED: &str = "198.51.100.1:50000";
const PEER: &str = "198.51.100.20:6000";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("an address")
}

struct World {
    t0: Instant,
    now: Instant,
    server: TurnServer,
    relays: Relays,
    /// What reached the peer from the relayed address.
    at_peer: Vec<Vec<u8>>,
    /// What the relays gave back for the calls.
    out: Vec<RelayOutput>,
}

impl World {
    fn new(server_password: &str) -> World {
        let t0 = Instant::now();
        let mut server = TurnServer::new(TransportType::Udp, addr(SERVER), "roombox.test".into());
        server.add_user("1800000000:box".into(), server_password.into());
        let mut w = World {
            t0,
            now: t0,
            server,
            relays: Relays::new(vec![addr(LOCAL)], t0),
            at_peer: Vec::new(),
            out: Vec::new(),
        };
        let url = format!("turn:{SERVER}?transport=udp");
        w.relays.set_servers(
            &[IceServer {
                urls: vec![url.clone()],
                username: Some("1800000000:box".into()),
                credential: Some("secret".into()),
            }],
            w.now,
        );
        w.relays.resolved(&url, vec![addr(SERVER)], w.now);
        w
    }

    fn server_now(&self) -> turn_server_proto::types::Instant {
        let nanos = self.now.duration_since(self.t0).as_nanos();
        turn_server_proto::types::Instant::from_nanos(i64::try_from(nanos).unwrap())
    }

    /// Carries datagrams between the relays, the server and the peer until nothing moves.
    fn settle(&mut self) {
        for _ in 0..100 {
            let mut moved = false;
            while let Some(o) = self.relays.poll_output() {
                moved = true;
                match o {
                    RelayOutput::Transmit(d) => {
                        assert_eq!((d.source, d.destination), (addr(LOCAL), addr(SERVER)));
                        let t =
                            Transmit::new(d.contents, TransportType::Udp, d.source, d.destination);
                        let now = self.server_now();
                        if let Some(reply) = self.server.recv(t, now) {
                            let reply = reply.build();
                            self.deliver(reply.from, reply.to, reply.data);
                        }
                    }
                    other => self.out.push(other),
                }
            }
            let now = self.server_now();
            if let TurnServerPollRet::AllocateSocket {
                transport,
                listen_addr,
                client_addr,
                allocation_transport,
                family,
            } = self.server.poll(now)
            {
                moved = true;
                self.server.allocated_socket(
                    transport,
                    listen_addr,
                    client_addr,
                    allocation_transport,
                    family,
                    Ok(addr(RELAYED)),
                    now,
                );
            }
            while let Some(t) = self.server.poll_transmit(now) {
                moved = true;
                self.deliver(t.from, t.to, t.data);
            }
            if !moved {
                return;
            }
        }
        panic!("the relays and the server keep talking");
    }

    /// A datagram the server sends: to the box's socket, or out of the relay to the peer.
    fn deliver(&mut self, from: SocketAddr, to: SocketAddr, data: Vec<u8>) {
        if to == addr(PEER) {
            assert_eq!(from, addr(RELAYED));
            self.at_peer.push(data);
            return;
        }
        assert_eq!(to, addr(LOCAL));
        let d = Datagram {
            source: from,
            destination: to,
            contents: data,
        };
        let now = self.now;
        assert!(
            self.relays.handle_datagram(&d, now).is_none(),
            "the relay's own traffic"
        );
    }

    /// Lets `by` pass, waking the relays at each of their timeouts on the way.
    fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        self.settle();
        let mut wakes = 0;
        while let Some(t) = self.relays.poll_timeout().filter(|t| *t <= end) {
            wakes += 1;
            assert!(
                wakes < 10_000,
                "the relays keep asking to be woken at {:?}",
                t - self.t0
            );
            self.now = t.max(self.now);
            self.relays.handle_timeout(self.now);
            self.settle();
        }
        self.now = end;
    }

    fn added(&self) -> Vec<SocketAddr> {
        let added = self.out.iter().filter_map(|o| match o {
            RelayOutput::Added(c) => Some(c.addr()),
            _ => None,
        });
        added.collect()
    }
}

#[test]
fn an_allocation_relays_a_call_both_ways() {
    let mut w = World::new("secret");
    assert_eq!(w.relays.state(), RelayState::Allocating);
    w.advance(Duration::from_secs(1));
    assert_eq!(
        w.added(),
        vec![addr(RELAYED)],
        "the relayed address is a candidate"
    );
    assert_eq!(w.relays.state(), RelayState::Ready("udp".into()));

    // A call's datagram from the relayed candidate: the permission first, then the packet.
    let sent = Datagram {
        source: addr(RELAYED),
        destination: addr(PEER),
        contents: b"binding request".to_vec(),
    };
    assert!(
        w.relays.send(sent.clone(), w.now).is_none(),
        "taken by the relay"
    );
    w.advance(Duration::from_secs(1));
    assert_eq!(w.at_peer, vec![b"binding request".to_vec()]);
    // Later packets go at once (over a channel once it is bound).
    for i in 0..3u8 {
        let mut d = sent.clone();
        d.contents = vec![i; 100];
        assert!(w.relays.send(d, w.now).is_none());
        w.advance(Duration::from_millis(100));
    }
    assert_eq!(w.at_peer.len(), 4);
    assert_eq!(w.at_peer[3], vec![2u8; 100]);

    // The peer answers the relayed address: the call gets it as from the peer.
    let now = w.server_now();
    let t = Transmit::new(
        b"binding response".to_vec(),
        TransportType::Udp,
        addr(PEER),
        addr(RELAYED),
    );
    let reply = w.server.recv(t, now).expect("relayed to the box").build();
    w.deliver(reply.from, reply.to, reply.data);
    w.settle();
    let back: Vec<&Datagram> = (w.out.iter())
        .filter_map(|o| match o {
            RelayOutput::PeerData(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(back.len(), 1);
    assert_eq!(
        (back[0].source, back[0].destination),
        (addr(PEER), addr(RELAYED))
    );
    assert_eq!(back[0].contents, b"binding response");

    // Other datagrams are not the relay's business.
    let host = Datagram {
        source: addr(LOCAL),
        destination: addr(PEER),
        contents: vec![1],
    };
    assert_eq!(w.relays.send(host.clone(), w.now), Some(host));

    // An hour on, the allocation is still there (refreshed by the client).
    for _ in 0..60 {
        w.advance(Duration::from_secs(60));
    }
    assert_eq!(w.relays.state(), RelayState::Ready("udp".into()));
    assert_eq!(w.added().len(), 1, "no new allocation was needed");
}

#[test]
fn refused_credentials_are_said_plainly_and_not_retried() {
    let mut w = World::new("another secret");
    w.advance(Duration::from_secs(1));
    let RelayState::Failed(why) = w.relays.state() else {
        panic!("{:?}", w.relays.state());
    };
    assert!(why.contains("refused the allocation: 401"), "{why}");
    assert!(w.added().is_empty());
    // No retry with the same credentials, however long.
    w.advance(Duration::from_secs(600));
    assert!(w.relays.poll_output().is_none());
    assert!(matches!(w.relays.state(), RelayState::Failed(_)));
}

#[test]
fn a_gone_address_takes_its_relay_with_it() {
    let mut w = World::new("secret");
    w.advance(Duration::from_secs(1));
    assert_eq!(w.added(), vec![addr(RELAYED)]);
    w.relays.set_locals(vec![], w.now);
    let removed: Vec<SocketAddr> = std::iter::from_fn(|| w.relays.poll_output())
        .filter_map(|o| match o {
            RelayOutput::Removed(c) => Some(c.addr()),
            _ => None,
        })
        .collect();
    assert_eq!(removed, vec![addr(RELAYED)]);
    assert_eq!(w.relays.candidates().count(), 0);
}

#[test]
fn renewed_credentials_bring_a_refused_relay_back() {
    let mut w = World::new("another secret");
    w.advance(Duration::from_secs(1));
    assert!(matches!(w.relays.state(), RelayState::Failed(_)));
    // The signaling server renews the credentials (`ice-servers`): these ones the TURN
    // server knows.
    w.server
        .add_user("1800000030:box".into(), "renewed secret".into());
    let url = format!("turn:{SERVER}?transport=udp");
    w.relays.set_servers(
        &[IceServer {
            urls: vec![url],
            username: Some("1800000030:box".into()),
            credential: Some("renewed secret".into()),
        }],
        w.now,
    );
    w.advance(Duration::from_secs(1));
    assert_eq!(w.relays.state(), RelayState::Ready("udp".into()));
    assert_eq!(w.added(), vec![addr(RELAYED)]);
}
