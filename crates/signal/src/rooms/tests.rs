use super::*;
use roombox_protocol::{PeerKind, Resume};

fn join(room: &str, name: &str, resume: Option<Resume>) -> Join {
    Join {
        room: RoomName::parse(room).unwrap(),
        name: name.into(),
        kind: PeerKind::Browser,
        resume,
        key: None,
    }
}

struct Client {
    conn: ConnId,
    rx: Outbox,
    outbox: Outbox,
}

fn client(n: u64) -> Client {
    let outbox = Outbox::new(8);
    Client {
        conn: ConnId(n),
        rx: outbox.clone(),
        outbox,
    }
}

fn drain(rx: &mut Outbox) -> Vec<ServerMessage> {
    let mut out = Vec::new();
    while let Some(frame) = rx.try_recv() {
        out.push(ServerMessage::parse(&frame).unwrap());
    }
    out
}

#[test]
fn join_announces_and_welcome_lists_others() {
    let mut rooms = Rooms::new(6);
    let mut a = client(1);
    let b = client(2);
    let wa = rooms
        .join(join("r", "A", None), a.conn, a.outbox.clone(), &[])
        .unwrap()
        .welcome;
    assert!(wa.peers.is_empty());
    let wb = rooms
        .join(join("r", "B", None), b.conn, b.outbox.clone(), &[])
        .unwrap()
        .welcome;
    assert_eq!(wb.peers.len(), 1);
    assert_eq!(wb.peers[0].id, wa.id);
    assert_ne!(wa.id, wb.id);
    let got = drain(&mut a.rx);
    assert!(
        matches!(&got[..], [ServerMessage::PeerJoined { peer }] if peer.id == wb.id && peer.name == "B")
    );
    assert_eq!(rooms.room_count(), 1);
    assert_eq!(rooms.peer_count(), 2);
}

#[test]
fn leave_announces_and_frees_empty_rooms() {
    let mut rooms = Rooms::new(6);
    let mut a = client(1);
    let b = client(2);
    let ida = rooms
        .join(join("r", "A", None), a.conn, a.outbox.clone(), &[])
        .unwrap()
        .welcome
        .id;
    let idb = rooms
        .join(join("r", "B", None), b.conn, b.outbox.clone(), &[])
        .unwrap()
        .welcome
        .id;
    drain(&mut a.rx);
    assert!(rooms.leave(&idb, b.conn));
    assert!(matches!(&drain(&mut a.rx)[..], [ServerMessage::PeerLeft { id }] if *id == idb));
    assert!(!rooms.leave(&idb, b.conn), "second leave is a no-op");
    assert!(rooms.leave(&ida, a.conn));
    assert_eq!(rooms.room_count(), 0);
    assert_eq!(rooms.peer_count(), 0);
}

#[test]
fn room_full_refuses_without_side_effects() {
    let mut rooms = Rooms::new(2);
    let clients: Vec<Client> = (1..=3).map(client).collect();
    for c in &clients[..2] {
        rooms
            .join(join("r", "x", None), c.conn, c.outbox.clone(), &[])
            .unwrap();
    }
    let e = rooms
        .join(
            join("r", "x", None),
            clients[2].conn,
            clients[2].outbox.clone(),
            &[],
        )
        .err()
        .unwrap();
    assert_eq!(e.code, ErrorCode::RoomFull);
    assert_eq!(rooms.peer_count(), 2);
    // A full room does not stop joining another.
    let other = rooms.join(
        join("s", "x", None),
        clients[2].conn,
        clients[2].outbox.clone(),
        &[],
    );
    assert!(other.is_ok());
}

#[test]
fn routes_only_within_a_room() {
    let mut rooms = Rooms::new(6);
    let [a, b, c] = [client(1), client(2), client(3)];
    let ida = rooms
        .join(join("r", "A", None), a.conn, a.outbox.clone(), &[])
        .unwrap()
        .welcome
        .id;
    let idb = rooms
        .join(join("r", "B", None), b.conn, b.outbox.clone(), &[])
        .unwrap()
        .welcome
        .id;
    let idc = rooms
        .join(join("s", "C", None), c.conn, c.outbox.clone(), &[])
        .unwrap()
        .welcome
        .id;
    assert!(rooms.route(&ida, &idb).is_some());
    assert!(rooms.route(&ida, &idc).is_none());
    assert!(rooms.route(&ida, &ida).is_none());
    assert!(rooms.route(&ida, &PeerId("nobody".into())).is_none());
}

#[test]
fn resume_with_token_replaces_the_live_socket_silently() {
    let mut rooms = Rooms::new(6);
    let old_outbox = Outbox::new(8);
    let old_closed = old_outbox.clone();
    let mut b = client(2);
    let w = rooms
        .join(join("r", "A", None), ConnId(1), old_outbox, &[])
        .unwrap()
        .welcome;
    rooms
        .join(join("r", "B", None), b.conn, b.outbox.clone(), &[])
        .unwrap();
    let fresh = client(3);
    let resume = Resume {
        id: w.id.clone(),
        token: w.resume_token.clone(),
    };
    let j = rooms
        .join(
            join("r", "A", Some(resume)),
            fresh.conn,
            fresh.outbox.clone(),
            &[],
        )
        .unwrap();
    assert!(j.replaced);
    assert_eq!(j.welcome.id, w.id);
    assert_eq!(j.welcome.peers.len(), 1);
    assert!(old_closed.is_closed(), "the old socket is told to close");
    assert!(drain(&mut b.rx).is_empty(), "nobody hears about a resume");
    // The old socket's late cleanup removes nothing.
    assert!(!rooms.leave(&w.id, ConnId(1)));
    assert!(rooms.holds(&w.id, fresh.conn));
}

#[test]
fn resume_with_wrong_token_gets_a_fresh_id() {
    let mut rooms = Rooms::new(6);
    let a = client(1);
    let w = rooms
        .join(join("r", "A", None), a.conn, a.outbox.clone(), &[])
        .unwrap()
        .welcome;
    let thief = client(2);
    let resume = Resume {
        id: w.id.clone(),
        token: "guess".into(),
    };
    let j = rooms
        .join(
            join("r", "T", Some(resume)),
            thief.conn,
            thief.outbox.clone(),
            &[],
        )
        .unwrap();
    assert!(!j.replaced);
    assert_ne!(j.welcome.id, w.id);
    assert!(rooms.holds(&w.id, a.conn));
}

#[test]
fn resume_after_restart_regrants_the_id() {
    let mut rooms = Rooms::new(6);
    let a = client(1);
    let resume = Resume {
        id: PeerId("kept42".into()),
        token: "secret".into(),
    };
    let j = rooms
        .join(join("r", "A", Some(resume)), a.conn, a.outbox.clone(), &[])
        .unwrap();
    assert_eq!(j.welcome.id, PeerId("kept42".into()));
    assert_eq!(j.welcome.resume_token, "secret");
    // An id in use in another room is not granted.
    let b = client(2);
    let resume = Resume {
        id: PeerId("kept42".into()),
        token: "other".into(),
    };
    let j = rooms
        .join(join("s", "B", Some(resume)), b.conn, b.outbox.clone(), &[])
        .unwrap();
    assert_ne!(j.welcome.id, PeerId("kept42".into()));
}

#[test]
fn a_peer_that_stops_reading_is_closed_not_buffered() {
    let mut rooms = Rooms::new(6);
    let slow_outbox = Outbox::new(2);
    let slow_closed = slow_outbox.clone();
    rooms
        .join(join("r", "S", None), ConnId(1), slow_outbox, &[])
        .unwrap();
    for n in 0..3 {
        let c = client(10 + n);
        rooms
            .join(join("r", "x", None), c.conn, c.outbox.clone(), &[])
            .unwrap();
    }
    assert!(slow_closed.is_closed());
}

fn sealed_join(room: &str, pk: &str) -> Join {
    Join {
        name: String::new(),
        key: Some(roombox_protocol::MemberKey {
            pk: pk.into(),
            mac: format!("mac-of-{pk}"),
        }),
        ..join(room, "unused", None)
    }
}

#[test]
fn version_2_keys_pass_through_untouched_and_a_room_keeps_one_version() {
    let mut rooms = Rooms::new(6);
    let mut a = client(1);
    let b = client(2);
    let c = client(3);
    rooms
        .join(sealed_join("r", "KA"), a.conn, a.outbox.clone(), &[])
        .unwrap();
    let wb = rooms
        .join(sealed_join("r", "KB"), b.conn, b.outbox.clone(), &[])
        .unwrap()
        .welcome;
    let key = wb.peers[0].key.as_ref().unwrap();
    assert_eq!((key.pk.as_str(), key.mac.as_str()), ("KA", "mac-of-KA"));
    assert_eq!(
        wb.peers[0].name, "",
        "a sealed member has no name on the server"
    );
    let got = drain(&mut a.rx);
    assert!(
        matches!(&got[..], [ServerMessage::PeerJoined { peer }] if peer.key.as_ref().is_some_and(|k| k.pk == "KB"))
    );
    // An old client in a sealed room is told so, and nothing changes.
    let err = rooms
        .join(join("r", "Old", None), c.conn, c.outbox.clone(), &[])
        .err()
        .unwrap();
    assert_eq!(err.code, ErrorCode::WrongVersion);
    assert_eq!(rooms.peer_count(), 2);
    assert!(drain(&mut a.rx).is_empty());
    // And the other way round.
    rooms
        .join(join("old", "Old", None), c.conn, c.outbox.clone(), &[])
        .unwrap();
    let d = client(4);
    let err = rooms
        .join(sealed_join("old", "KD"), d.conn, d.outbox.clone(), &[])
        .err()
        .unwrap();
    assert_eq!(err.code, ErrorCode::WrongVersion);
}
