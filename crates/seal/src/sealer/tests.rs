//! Members sealing through a server played here, honest or tampering: what each one sees.

use super::*;
use crate::frame::SenderKey;

/// What the test's server does to a relay on its way: pass it, change it, or hold it back.
type Tamper = Box<dyn FnMut(&mut Relay) -> Deliver>;

enum Deliver {
    Pass,
    /// Pass it, then once more (a replay).
    Twice,
    /// Keep it back and deliver it after the next one to the same peer (reordering).
    Hold,
}

struct Member {
    id: PeerId,
    sealer: Sealer,
    opened: Vec<Relay>,
    named: Vec<PeerInfo>,
    refused: Vec<(PeerId, Refusal)>,
    media_keys: Vec<(PeerId, SenderKey)>,
}

struct Server {
    members: Vec<Member>,
    info: Vec<PeerInfo>,
    tamper: Tamper,
    held: Option<Relay>,
    next_id: u32,
}

fn room() -> RoomName {
    RoomName::parse("lab").unwrap()
}

fn secret(n: u8) -> RoomSecret {
    RoomSecret::from_bytes([n; crate::SECRET_BYTES])
}

impl Server {
    fn honest() -> Server {
        Server::tampering(Box::new(|_| Deliver::Pass))
    }

    fn tampering(tamper: Tamper) -> Server {
        Server {
            members: Vec::new(),
            info: Vec::new(),
            tamper,
            held: None,
            next_id: 0,
        }
    }

    /// A member joins with `secret`; its key as the server announces it goes through
    /// `announce` (a key-swapping server changes it).
    fn join_with(
        &mut self,
        name: &str,
        secret: &RoomSecret,
        announce: impl FnOnce(&mut MemberKey),
    ) -> PeerId {
        self.next_id += 1;
        let id = PeerId(format!("p{}", self.next_id));
        let hi = Hi {
            name: name.into(),
            kind: PeerKind::Browser,
        };
        let sealer = Sealer::new(secret, room(), hi);
        let ClientMessage::Join(join) = sealer.join(None) else {
            panic!("a join")
        };
        assert!(join.name.is_empty(), "no name in a version 2 join");
        let mut key = join.key.clone().unwrap();
        announce(&mut key);
        let info = PeerInfo {
            id: id.clone(),
            name: String::new(),
            kind: join.kind,
            key: Some(key),
        };
        let mut member = Member {
            id: id.clone(),
            sealer,
            opened: Vec::new(),
            named: Vec::new(),
            refused: Vec::new(),
            media_keys: Vec::new(),
        };
        member.sealer.handle_welcome(id.clone(), &self.info);
        for m in &mut self.members {
            m.sealer.handle_peer_joined(&info);
        }
        self.members.push(member);
        self.info.push(info);
        self.run();
        id
    }

    fn join(&mut self, name: &str) -> PeerId {
        self.join_with(name, &secret(7), |_| {})
    }

    fn leave(&mut self, id: &PeerId) {
        self.members.retain(|m| &m.id != id);
        self.info.retain(|i| &i.id != id);
        for m in &mut self.members {
            m.sealer.handle_peer_left(id);
        }
        self.run();
    }

    fn member(&mut self, id: &PeerId) -> &mut Member {
        self.members.iter_mut().find(|m| &m.id == id).unwrap()
    }

    fn send(&mut self, from: &PeerId, relay: Relay) {
        self.member(from).sealer.send(relay);
        self.run();
    }

    /// Delivers until nobody has anything more to say.
    fn run(&mut self) {
        loop {
            let mut wire = Vec::new();
            for m in &mut self.members {
                while let Some(out) = m.sealer.poll_output() {
                    match out {
                        SealOutput::Send(ClientMessage::Relay(mut r)) => {
                            r.from = Some(m.id.clone());
                            wire.push(r);
                        }
                        SealOutput::Send(other) => panic!("unexpected {other:?}"),
                        SealOutput::Relay(r) => m.opened.push(r),
                        SealOutput::Named(info) => m.named.push(info),
                        SealOutput::Refused { id, refusal } => m.refused.push((id, refusal)),
                        SealOutput::MediaKey { id, key } => m.media_keys.push((id, key)),
                        SealOutput::SafetyCode(_) => {}
                    }
                }
            }
            if wire.is_empty() {
                return;
            }
            for mut relay in wire {
                match (self.tamper)(&mut relay) {
                    Deliver::Pass => self.deliver(relay),
                    Deliver::Twice => {
                        self.deliver(relay.clone());
                        self.deliver(relay);
                    }
                    Deliver::Hold => match self.held.take() {
                        None => self.held = Some(relay),
                        Some(held) => {
                            self.deliver(relay);
                            self.deliver(held);
                        }
                    },
                }
            }
        }
    }

    fn deliver(&mut self, relay: Relay) {
        let to = relay.to.clone();
        if let Some(m) = self.members.iter_mut().find(|m| m.id == to) {
            m.sealer.handle_relay(relay);
        }
    }

    fn codes(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| m.sealer.safety_code().to_owned())
            .collect()
    }
}

fn offer(to: &PeerId, sdp: &str) -> Relay {
    Relay::sdp(RelayKind::Offer, to.clone(), sdp.into()).with_pc("pc1")
}

fn is_envelope(r: &Relay) -> bool {
    r.kind == RelayKind::Sealed && r.fields.contains_key("box")
}

#[test]
fn members_learn_names_open_each_others_relays_and_agree_on_the_code() {
    let mut server = Server::honest();
    let ada = server.join("Ada");
    let bob = server.join("Bob");
    assert_eq!(server.member(&ada).named[0].name, "Bob");
    assert_eq!(server.member(&bob).named[0].name, "Ada");

    server.send(&bob, offer(&ada, "v=0 bob's offer"));
    let got = &server.member(&ada).opened;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].kind, RelayKind::Offer);
    assert_eq!(got[0].from.as_ref(), Some(&bob));
    assert_eq!(got[0].pc(), Some("pc1"));
    assert_eq!(got[0].sdp_text(), Some("v=0 bob's offer"));

    let two = server.codes();
    assert_eq!(two[0], two[1]);
    assert_eq!(two[0].len(), 24, "five groups of four digits: {}", two[0]);

    let cy = server.join("Cy");
    let three = server.codes();
    assert!(three.iter().all(|c| *c == three[0]), "{three:?}");
    assert_ne!(three[0], two[0], "a member joining changes the code");
    server.leave(&cy);
    assert_eq!(server.codes(), two, "and leaving changes it back");
    assert!(server.members.iter().all(|m| m.refused.is_empty()));
}

#[test]
fn what_the_call_sends_before_the_keys_waits_for_them_in_order() {
    // A server that holds every hello back until the test lets it go.
    let mut server = Server::honest();
    let ada = server.join("Ada");
    let mut ada_sealer_out = Vec::new();
    // Bob joins; before any hello is delivered, Bob's call offers and sends candidates.
    let bob_secret = secret(7);
    let mut bob = Sealer::new(
        &bob_secret,
        room(),
        Hi {
            name: "Bob".into(),
            kind: PeerKind::Appliance,
        },
    );
    bob.handle_welcome(PeerId("p9".into()), &server.info.clone());
    for i in 0..3 {
        bob.send(offer(&ada, &format!("offer {i}")));
    }
    while let Some(out) = bob.poll_output() {
        ada_sealer_out.push(out);
    }
    // Only the hello left Bob: the offers wait for the keys.
    assert_eq!(ada_sealer_out.len(), 1);
    let Some(SealOutput::Send(ClientMessage::Relay(hello))) = ada_sealer_out.pop() else {
        panic!("a hello")
    };
    assert!(hello.fields.contains_key("hello"));
    assert!(bob.poll_output().is_none());
    // Ada learns Bob and answers with her own hello; Bob gets the keys and sends hi + 3 offers.
    let ClientMessage::Join(join) = bob.join(None) else {
        panic!()
    };
    let bob_info = PeerInfo {
        id: PeerId("p9".into()),
        name: String::new(),
        kind: PeerKind::Appliance,
        key: join.key,
    };
    let a = server.member(&ada);
    a.sealer.handle_peer_joined(&bob_info);
    a.sealer.handle_relay(Relay {
        from: Some(PeerId("p9".into())),
        ..hello
    });
    let mut from_ada = Vec::new();
    while let Some(out) = a.sealer.poll_output() {
        if let SealOutput::Send(ClientMessage::Relay(r)) = out {
            from_ada.push(r);
        }
    }
    for r in from_ada {
        bob.handle_relay(Relay {
            from: Some(ada.clone()),
            ..r
        });
    }
    let mut envelopes = Vec::new();
    while let Some(out) = bob.poll_output() {
        if let SealOutput::Send(ClientMessage::Relay(r)) = out {
            envelopes.push(r);
        }
    }
    assert_eq!(envelopes.len(), 4, "hi, then the three offers");
    let a = server.member(&ada);
    for r in envelopes {
        a.sealer.handle_relay(Relay {
            from: Some(PeerId("p9".into())),
            ..r
        });
    }
    let mut sdps = Vec::new();
    while let Some(out) = a.sealer.poll_output() {
        match out {
            SealOutput::Relay(r) => sdps.push(r.sdp_text().unwrap().to_owned()),
            SealOutput::Named(info) => assert_eq!(
                (info.name.as_str(), info.kind),
                ("Bob", PeerKind::Appliance)
            ),
            SealOutput::Refused { .. } => panic!("refused"),
            _ => {}
        }
    }
    assert_eq!(sdps, ["offer 0", "offer 1", "offer 2"]);
}

#[test]
fn frame_keys_travel_sealed_and_only_to_a_ready_pair() {
    let mut server = Server::honest();
    let ada = server.join("Ada");
    let key = SenderKey::generate(7);
    // Nobody else yet: there is no pair to seal it in.
    server
        .member(&ada)
        .sealer
        .send_media_key(&PeerId("p9".into()), &key);
    server.run();
    let bob = server.join("Bob");
    server.member(&ada).sealer.send_media_key(&bob, &key);
    server.run();
    assert_eq!(server.member(&bob).media_keys, [(ada.clone(), key)]);
    assert!(server.member(&ada).media_keys.is_empty());
}

#[test]
fn a_wrong_secret_is_refused_both_ways() {
    let mut server = Server::honest();
    let ada = server.join("Ada");
    let eve = server.join_with("Eve", &secret(8), |_| {});
    assert_eq!(
        server.member(&ada).refused,
        [(eve.clone(), Refusal::NotAMember)]
    );
    assert_eq!(
        server.member(&eve).refused,
        [(ada.clone(), Refusal::NotAMember)]
    );
    assert!(server.member(&ada).named.is_empty());
    server.send(&eve, offer(&ada, "let me in"));
    assert!(server.member(&ada).opened.is_empty());
}

#[test]
fn a_server_that_swaps_a_members_key_is_refused() {
    let mut server = Server::honest();
    let ada = server.join("Ada");
    // The server announces Bob with a key of its own (it has no room secret to sign it).
    let mallory = Identity::generate();
    let bob = server.join_with("Bob", &secret(7), |key| {
        key.pk = B64.encode(mallory.ek());
    });
    assert_eq!(
        server.member(&ada).refused,
        [(bob.clone(), Refusal::NotAMember)]
    );
    // Replaying Bob's real MAC with the swapped key does not help either: MACs cover the key.
    assert!(server.member(&ada).opened.is_empty());
}

#[test]
fn an_altered_envelope_refuses_its_sender() {
    let mut flip = false;
    let mut server = Server::tampering(Box::new(move |r| {
        if flip && is_envelope(r) {
            let b = r.fields["box"].as_str().unwrap().to_owned();
            let mut bytes = B64.decode(b).unwrap();
            bytes[3] ^= 1;
            r.fields.insert("box".into(), B64.encode(bytes).into());
        }
        flip = true; // after the first message (everything once keys exist)
        Deliver::Pass
    }));
    let ada = server.join("Ada");
    let bob = server.join("Bob");
    server.send(&bob, offer(&ada, "v=0"));
    assert!(server
        .member(&ada)
        .refused
        .contains(&(bob.clone(), Refusal::Altered)));
    assert!(
        server.member(&ada).opened.is_empty(),
        "nothing altered reaches the call"
    );
}

#[test]
fn a_replayed_or_reordered_envelope_refuses_its_sender() {
    for replay in [true, false] {
        let mut server = Server::honest();
        let ada = server.join("Ada");
        let bob = server.join("Bob");
        // Keys agreed and names told; from now on the server replays or reorders envelopes.
        server.tamper = Box::new(move |r| match (is_envelope(r), replay) {
            (false, _) => Deliver::Pass,
            (true, true) => Deliver::Twice,
            (true, false) => Deliver::Hold,
        });
        server.send(&bob, offer(&ada, "first"));
        server.send(&bob, offer(&ada, "second"));
        let a = server.member(&ada);
        assert_eq!(
            a.refused,
            [(bob.clone(), Refusal::Replayed)],
            "replay {replay}"
        );
        let opened: Vec<&str> = a.opened.iter().map(|r| r.sdp_text().unwrap()).collect();
        let expected = if replay { ["first"] } else { ["second"] };
        assert_eq!(opened, expected, "replay {replay}");
    }
}

#[test]
fn a_plain_offer_refuses_its_sender() {
    let mut server = Server::honest();
    let ada = server.join("Ada");
    let bob = server.join("Bob");
    let plain = Relay {
        from: Some(bob.clone()),
        ..offer(&ada, "v=0 in clear")
    };
    server.member(&ada).sealer.handle_relay(plain);
    server.run();
    assert_eq!(server.member(&ada).refused, [(bob.clone(), Refusal::Plain)]);
    assert!(server.member(&ada).opened.is_empty());
}

#[test]
fn a_peer_that_starts_over_gets_a_new_pair_and_old_envelopes_are_dropped() {
    let mut server = Server::honest();
    let ada = server.join("Ada");
    let bob = server.join("Bob");
    let old_envelope = {
        let b = server.member(&bob);
        b.sealer.send(offer(&ada, "old"));
        let Some(SealOutput::Send(ClientMessage::Relay(r))) = b.sealer.poll_output() else {
            panic!()
        };
        Relay {
            from: Some(bob.clone()),
            ..r
        }
    };
    // Bob's side forgets the pair (as after a restart that kept its id and key) and says hello.
    let ada_info = server.info[0].clone();
    let b = server.member(&bob);
    b.sealer.handle_peer_left(&ada);
    b.sealer.handle_peer_joined(&ada_info);
    server.run();
    server.send(&bob, offer(&ada, "new"));
    server.member(&ada).sealer.handle_relay(old_envelope);
    server.run();
    let a = server.member(&ada);
    assert!(a.refused.is_empty(), "{:?}", a.refused);
    let opened: Vec<&str> = a.opened.iter().map(|r| r.sdp_text().unwrap()).collect();
    assert_eq!(
        opened,
        ["new"],
        "the earlier pair's envelope is dropped quietly"
    );
    let codes = server.codes();
    assert_eq!(codes[0], codes[1]);
}

#[test]
fn a_resumed_welcome_keeps_the_pairs() {
    let mut server = Server::honest();
    let ada = server.join("Ada");
    let bob = server.join("Bob");
    let others = vec![server.info[0].clone()];
    let b = server.members.iter_mut().find(|m| m.id == bob).unwrap();
    b.sealer.handle_welcome(bob.clone(), &others);
    assert!(
        b.sealer.poll_output().is_none(),
        "no new hello: the pair stands"
    );
    server.send(&bob, offer(&ada, "after the outage"));
    assert_eq!(server.member(&ada).opened.len(), 1);
}

#[test]
fn a_hello_lost_with_a_socket_is_made_good_when_the_peer_is_announced_again() {
    // Ada's hello to Bob is lost; Bob's reaches Ada, who makes keys and waits for nothing.
    let mut lose_first_from_ada = true;
    let mut server = Server::tampering(Box::new(|_| Deliver::Pass));
    let ada = server.join("Ada");
    server.tamper = Box::new(move |r| {
        if lose_first_from_ada
            && r.fields.contains_key("hello")
            && r.from.as_ref().is_some_and(|f| f.0 == "p1")
        {
            lose_first_from_ada = false;
            r.to = PeerId("nobody".into());
        }
        Deliver::Pass
    });
    let bob = server.join("Bob");
    assert!(
        server.member(&bob).named.is_empty(),
        "Bob still waits for Ada's hello"
    );
    // Both reconnect; the server announces each to the other again.
    let (ada_info, bob_info) = (server.info[0].clone(), server.info[1].clone());
    server
        .member(&bob)
        .sealer
        .handle_welcome(bob.clone(), &[ada_info]);
    server.member(&ada).sealer.handle_peer_joined(&bob_info);
    server.run();
    server.send(&bob, offer(&ada, "after"));
    assert_eq!(
        server.member(&ada).opened.len(),
        1,
        "{:?}",
        server.member(&ada).refused
    );
    assert_eq!(server.member(&bob).named.len(), 1);
    let codes = server.codes();
    assert_eq!(codes[0], codes[1]);
}
