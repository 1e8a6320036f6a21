use super::*;
use proptest::prelude::*;

fn code_of(text: &str) -> ErrorCode {
    parse_client_message(text).unwrap_err().code
}

#[test]
fn parses_join() {
    let m =
        parse_client_message(r#"{"type":"join","room":"demo","name":" Ada ","kind":"browser"}"#)
            .unwrap();
    let ClientMessage::Join(j) = m else {
        panic!("expected join")
    };
    assert_eq!(j.room.as_str(), "demo");
    assert_eq!(j.name, "Ada");
    assert_eq!(j.kind, PeerKind::Browser);
    assert_eq!(j.resume, None);
}

#[test]
fn join_errors_name_the_problem() {
    let e = parse_client_message(r#"{"type":"join","room":"demo","kind":"browser"}"#).unwrap_err();
    assert_eq!(e.code, ErrorCode::BadJson);
    assert!(e.message.contains("name"), "{}", e.message);
    assert_eq!(
        code_of(r#"{"type":"join","room":"a/b","name":"x","kind":"browser"}"#),
        ErrorCode::BadRoom
    );
    let e = parse_client_message(r#"{"type":"join","room":"a","name":"x","kind":"toaster"}"#)
        .unwrap_err();
    assert!(e.message.contains("toaster"), "{}", e.message);
    assert_eq!(
        code_of(r#"{"type":"join","room":"a","name":"   ","kind":"browser"}"#),
        ErrorCode::BadJson
    );
}

#[test]
fn classifies_bad_frames() {
    assert_eq!(code_of("not json"), ErrorCode::BadJson);
    assert_eq!(code_of("[1,2]"), ErrorCode::BadJson);
    assert_eq!(code_of(r#"{"room":"x"}"#), ErrorCode::BadJson);
    assert_eq!(code_of(r#"{"type":7}"#), ErrorCode::BadJson);
    assert_eq!(code_of(r#"{"type":"dance"}"#), ErrorCode::UnknownType);
    assert_eq!(
        code_of(r#"{"type":"offer","sdp":"v=0"}"#),
        ErrorCode::BadJson
    );
    assert_eq!(code_of(r#"{"type":"offer","to":"p1"}"#), ErrorCode::BadJson);
    assert_eq!(
        code_of(r#"{"type":"ice-candidate","to":"p1"}"#),
        ErrorCode::BadJson
    );
    assert_eq!(
        code_of(r#"{"type":"ice-candidate","to":"p1","candidate":5}"#),
        ErrorCode::BadJson
    );
}

#[test]
fn relay_keeps_every_other_field_and_replaces_from() {
    let text =
        r#"{"type":"offer","to":"p2","from":"forged","sdp":"v=0","pc":"k1","extra":{"a":[1,2]}}"#;
    let ClientMessage::Relay(mut r) = parse_client_message(text).unwrap() else {
        panic!("expected relay")
    };
    assert_eq!(r.kind, RelayKind::Offer);
    assert_eq!(r.to, PeerId("p2".into()));
    assert_eq!(r.sdp_text(), Some("v=0"));
    assert_eq!(r.pc(), Some("k1"));
    assert!(
        !r.fields.contains_key("pc"),
        "pc is a typed field, not a raw key"
    );
    r.from = Some(PeerId("p1".into()));
    let out: Value = serde_json::from_str(&ServerMessage::Relay(r).to_json()).unwrap();
    let expected: Value = serde_json::from_str(
        r#"{"type":"offer","to":"p2","from":"p1","sdp":"v=0","pc":"k1","extra":{"a":[1,2]}}"#,
    )
    .unwrap();
    assert_eq!(out, expected);
}

#[test]
fn media_labels_name_what_each_mline_carries_and_skip_what_is_not_a_label() {
    let text =
        r#"{"type":"answer","to":"p2","sdp":"v=0","media":{"0":"camera","2":"screen","3":7}}"#;
    let ClientMessage::Relay(r) = parse_client_message(text).unwrap() else {
        panic!("expected relay")
    };
    let labels = r.media_labels();
    assert_eq!(labels.len(), 2);
    assert_eq!(labels["0"], "camera");
    assert_eq!(labels["2"], "screen");
    let old = r#"{"type":"offer","to":"p2","sdp":"v=0"}"#;
    let ClientMessage::Relay(r) = parse_client_message(old).unwrap() else {
        panic!("expected relay")
    };
    assert!(r.media_labels().is_empty(), "an older client sends none");
}

#[test]
fn candidates_round_trip() {
    let c = IceCandidateInit {
        candidate: "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host".into(),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
        username_fragment: None,
    };
    let text = ClientMessage::Relay(Relay::candidate(PeerId("p9".into()), Some(&c))).to_json();
    let ClientMessage::Relay(r) = parse_client_message(&text).unwrap() else {
        panic!("expected relay")
    };
    assert_eq!(r.ice_candidate().unwrap(), Some(c));
    let end = ClientMessage::Relay(Relay::candidate(PeerId("p9".into()), None)).to_json();
    let ClientMessage::Relay(r) = parse_client_message(&end).unwrap() else {
        panic!("expected relay")
    };
    assert_eq!(r.ice_candidate().unwrap(), None);
}

#[test]
fn server_messages_round_trip() {
    let messages = vec![
        ServerMessage::Welcome(Welcome {
            id: PeerId("a1".into()),
            resume_token: "t".into(),
            room: RoomName::parse("demo").unwrap(),
            peers: vec![PeerInfo {
                id: PeerId("b2".into()),
                name: "Room 4".into(),
                kind: PeerKind::Appliance,
                key: None,
            }],
            ice_servers: vec![IceServer {
                urls: vec!["stun:stun.l.google.com:19302".into()],
                username: None,
                credential: None,
            }],
            max_peers: 6,
        }),
        ServerMessage::PeerJoined {
            peer: PeerInfo {
                id: PeerId("c3".into()),
                name: "Ada".into(),
                kind: PeerKind::Browser,
                key: None,
            },
        },
        ServerMessage::PeerLeft {
            id: PeerId("c3".into()),
        },
        ServerMessage::Pong,
        ServerMessage::Error {
            code: ErrorCode::RoomFull,
            message: "room demo is full".into(),
        },
        ServerMessage::Relay(Relay {
            from: Some(PeerId("a1".into())),
            ..Relay::sdp(RelayKind::Answer, PeerId("b2".into()), "v=0".into()).with_pc("k7")
        }),
        ServerMessage::IceServers {
            ice_servers: vec![IceServer {
                urls: vec!["turns:turn.example:443?transport=tcp".into()],
                username: Some("1800000000:a1".into()),
                credential: Some("cGFzcw==".into()),
            }],
        },
    ];
    for m in messages {
        let text = m.to_json();
        assert_eq!(ServerMessage::parse(&text).unwrap(), m, "{text}");
    }
    let w: Value = serde_json::from_str(
        &ServerMessage::PeerLeft {
            id: PeerId("x".into()),
        }
        .to_json(),
    )
    .unwrap();
    assert_eq!(w, serde_json::json!({"type": "peer-left", "id": "x"}));
}

#[test]
fn client_join_round_trips() {
    let join = ClientMessage::Join(Join {
        room: RoomName::parse("r").unwrap(),
        name: "Room 4".into(),
        kind: PeerKind::Appliance,
        resume: Some(Resume {
            id: PeerId("a1".into()),
            token: "tok".into(),
        }),
        key: None,
    });
    assert_eq!(parse_client_message(&join.to_json()).unwrap(), join);
}

#[test]
fn error_codes_index_their_table() {
    for (i, c) in ErrorCode::ALL.iter().enumerate() {
        assert_eq!(c.index(), i);
        let json = serde_json::to_string(c).unwrap();
        assert_eq!(json, format!("\"{}\"", c.as_str()));
    }
}

/// JSON-ish text built from the protocol's own vocabulary, so the fuzzer reaches deep paths.
fn json_like() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        prop::sample::select(vec![
            "\"join\"",
            "\"offer\"",
            "\"answer\"",
            "\"ice-candidate\"",
            "\"leave\"",
            "\"ping\"",
            "\"browser\"",
            "\"appliance\"",
            "\"demo\"",
            "\"\"",
            "\"\\u0000\"",
            "\"p1\"",
            "true",
            "1e999",
            "\"\u{1F600}\"",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
    ];
    let keys = prop::sample::select(vec![
        "type",
        "room",
        "name",
        "kind",
        "to",
        "from",
        "sdp",
        "candidate",
        "resume",
        "id",
        "token",
        "sdpMid",
        "sdpMLineIndex",
        "x",
    ]);
    leaf.prop_recursive(4, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|kv| {
                let body: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", body.join(","))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn never_panics_on_any_text(text in "\\PC{0,200}") {
        let _ = parse_client_message(&text);
        let _ = ServerMessage::parse(&text);
    }

    #[test]
    fn never_panics_on_json_like_text(text in json_like()) {
        if let Ok(ClientMessage::Relay(r)) = parse_client_message(&text) {
            // Whatever parses re-serializes and parses again to the same message.
            let again = parse_client_message(&ClientMessage::Relay(r.clone()).to_json()).unwrap();
            prop_assert_eq!(again, ClientMessage::Relay(r));
        }
        let _ = ServerMessage::parse(&text);
    }

    #[test]
    fn never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_client_message(&text);
    }
}

#[test]
fn a_pc_that_is_not_a_string_is_refused_naming_the_field() {
    let e = parse_client_message(r#"{"type":"offer","to":"p2","sdp":"v=0","pc":7}"#).unwrap_err();
    assert!(e.to_string().contains("`pc`"), "{e}");
}

#[test]
fn a_view_carries_wishes_by_mid_and_needs_its_videos() {
    let text = r#"{"type":"view","to":"p2","pc":"k","videos":{"1":{"width":640,"height":360,"fps":30},"2":"junk"}}"#;
    let ClientMessage::Relay(r) = parse_client_message(text).unwrap() else {
        panic!("expected relay")
    };
    assert_eq!(r.kind, RelayKind::View);
    let wishes = r.view_wishes();
    assert_eq!(wishes.len(), 1, "the junk entry is left out");
    let want = ViewWish {
        width: 640,
        height: 360,
        fps: 30,
    };
    assert_eq!(wishes["1"], want);
    let made = Relay::view(PeerId("p2".into()), &wishes);
    assert_eq!(made.view_wishes(), wishes, "round trip");

    let e = parse_client_message(r#"{"type":"view","to":"p2"}"#).unwrap_err();
    assert!(
        e.message.contains("missing field `videos`"),
        "{}",
        e.message
    );
    let e = parse_client_message(r#"{"type":"view","to":"p2","videos":[1]}"#).unwrap_err();
    assert!(
        e.message.contains("`videos` must be an object"),
        "{}",
        e.message
    );
}

#[test]
fn a_version_2_join_carries_a_key_and_no_name() {
    let text =
        r#"{"type":"join","room":"r","kind":"browser","v":2,"key":{"pk":"AAAA","mac":"BBBB"}}"#;
    let ClientMessage::Join(join) = parse_client_message(text).unwrap() else {
        panic!("a join")
    };
    assert_eq!(join.version(), 2);
    assert_eq!(join.name, "");
    assert_eq!(join.key.as_ref().unwrap().pk, "AAAA");
    assert_eq!(
        parse_client_message(&ClientMessage::Join(join.clone()).to_json()).unwrap(),
        ClientMessage::Join(join)
    );
    for (bad, why) in [
        (
            r#"{"type":"join","room":"r","kind":"browser","v":2}"#,
            "needs field `key`",
        ),
        (
            r#"{"type":"join","room":"r","kind":"browser","v":2,"name":"Ada","key":{"pk":"A","mac":"B"}}"#,
            "carries no `name`",
        ),
        (
            r#"{"type":"join","room":"r","kind":"browser","name":"Ada","key":{"pk":"A","mac":"B"}}"#,
            "needs `v: 2`",
        ),
        (
            r#"{"type":"join","room":"r","kind":"browser","v":3,"key":{"pk":"A","mac":"B"}}"#,
            "unknown protocol version 3",
        ),
        (
            r#"{"type":"join","room":"r","kind":"browser"}"#,
            "missing field `name`",
        ),
    ] {
        let err = parse_client_message(bad).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadJson, "{bad}");
        assert!(err.message.contains(why), "{bad}: {}", err.message);
    }
}

#[test]
fn a_sealed_relay_is_passed_through_whatever_it_holds() {
    let text = r#"{"type":"sealed","to":"b1","pair":"x","seq":3,"box":"opaque"}"#;
    let ClientMessage::Relay(r) = parse_client_message(text).unwrap() else {
        panic!("a relay")
    };
    assert_eq!(r.kind, RelayKind::Sealed);
    assert_eq!(r.fields["box"], "opaque");
    let back = ServerMessage::parse(
        &ServerMessage::Relay(Relay {
            from: Some(PeerId("a1".into())),
            ..r
        })
        .to_json(),
    )
    .unwrap();
    let ServerMessage::Relay(r) = back else {
        panic!("a relay")
    };
    assert_eq!(
        (r.kind, r.fields["seq"].as_u64()),
        (RelayKind::Sealed, Some(3))
    );
}
