//! Protocol v1 against a running `roombox-signal`, with real WebSocket clients.

mod common;

use common::{http_get, id_of, Frame, Server};
use futures_util::SinkExt;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn welcome_lists_peers_and_hands_out_ice_servers() {
    let server = Server::start(&[]);
    let mut a = server.client().await;
    let mut b = server.client().await;
    let wa = a.join("demo", "Ada").await;
    assert_eq!(wa["room"], "demo");
    assert_eq!(wa["peers"], json!([]));
    assert_eq!(wa["maxPeers"], 6);
    assert_eq!(
        wa["iceServers"],
        json!([{"urls": ["stun:stun.example.test:3478"]}])
    );
    assert!(wa["resumeToken"].as_str().is_some_and(|t| t.len() >= 16));

    b.send(json!({"type": "join", "room": "demo", "name": "Room 4", "kind": "appliance"}))
        .await;
    let wb = b.recv().await;
    assert_eq!(
        wb["peers"],
        json!([{"id": id_of(&wa), "name": "Ada", "kind": "browser"}])
    );
    let joined = a.recv().await;
    assert_eq!(
        joined,
        json!({"type": "peer-joined", "peer": {"id": id_of(&wb), "name": "Room 4", "kind": "appliance"}})
    );
}

#[tokio::test]
async fn relays_with_from_and_every_other_field_unchanged() {
    let server = Server::start(&[]);
    let mut a = server.client().await;
    let mut b = server.client().await;
    let ida = id_of(&a.join("r1", "A").await);
    let idb = id_of(&b.join("r1", "B").await);
    a.recv().await; // peer-joined

    let offer = json!({"type": "offer", "to": idb, "sdp": "v=0\r\n", "pc": "k1", "from": "forged", "nested": {"x": [1, null]}});
    a.send(offer).await;
    assert_eq!(
        b.recv().await,
        json!({"type": "offer", "to": idb, "from": ida, "sdp": "v=0\r\n", "pc": "k1", "nested": {"x": [1, null]}})
    );
    b.send(json!({"type": "answer", "to": ida, "sdp": "v=0 answer", "pc": "k2"}))
        .await;
    assert_eq!(
        a.recv().await,
        json!({"type": "answer", "to": ida, "from": idb, "sdp": "v=0 answer", "pc": "k2"})
    );
    let cand = json!({"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0", "sdpMLineIndex": 0});
    b.send(json!({"type": "ice-candidate", "to": ida, "candidate": cand}))
        .await;
    assert_eq!(
        a.recv().await,
        json!({"type": "ice-candidate", "to": ida, "from": idb, "candidate": cand})
    );
    b.send(json!({"type": "ice-candidate", "to": ida, "candidate": null}))
        .await;
    assert_eq!(a.recv().await["candidate"], json!(null));
}

#[tokio::test]
async fn peer_left_when_a_socket_closes_and_empty_rooms_are_freed() {
    let server = Server::start(&[]);
    let mut a = server.client().await;
    let mut b = server.client().await;
    a.join("r", "A").await;
    let idb = id_of(&b.join("r", "B").await);
    a.recv().await;
    b.ws.close(None).await.unwrap();
    assert_eq!(a.recv().await, json!({"type": "peer-left", "id": idb}));
    drop(a);
    // Both gone: the room is freed.
    let mut freed = false;
    for _ in 0..100 {
        let (_, metrics) = http_get(&server.addr, "/metrics").await;
        if metrics.contains("\nroombox_signal_rooms 0\n")
            && metrics.contains("\nroombox_signal_peers 0\n")
        {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(freed, "room freed after everyone left");
}

#[tokio::test]
async fn leave_announces_and_the_socket_may_join_again() {
    let server = Server::start(&[]);
    let mut a = server.client().await;
    let mut b = server.client().await;
    a.join("r", "A").await;
    let idb = id_of(&b.join("r", "B").await);
    a.recv().await;
    b.send(json!({"type": "leave"})).await;
    assert_eq!(a.recv().await, json!({"type": "peer-left", "id": idb}));
    let again = b.join("r", "B").await;
    assert_eq!(again["peers"].as_array().unwrap().len(), 1);
    assert_eq!(a.recv().await["type"], "peer-joined");
}

#[tokio::test]
async fn peer_left_when_a_peer_dies_silently() {
    // Pings every 200 ms; three silent intervals close the socket.
    let server = Server::start(&["--ping-interval-ms", "200"]);
    let mut a = server.client().await;
    let mut silent = server.client().await;
    a.join("r", "A").await;
    let id = id_of(&silent.join("r", "Silent").await);
    a.recv().await;
    // `silent` never reads again, so it never answers a ping: as a frozen or unplugged peer.
    let started = std::time::Instant::now();
    assert_eq!(a.recv().await, json!({"type": "peer-left", "id": id}));
    assert!(started.elapsed() < common::WAIT);
    // A peer that reads (and so answers pings) stays: `a` is still here after several intervals.
    a.expect_silence(Duration::from_millis(1200)).await;
    a.assert_alive().await;
    drop(silent);
}

#[tokio::test]
async fn room_full_is_refused_and_the_connection_stays_open() {
    let server = Server::start(&["--max-peers", "2"]);
    let mut a = server.client().await;
    let mut b = server.client().await;
    let mut c = server.client().await;
    a.join("small", "A").await;
    b.join("small", "B").await;
    let code = c
        .error_for(
            &json!({"type": "join", "room": "small", "name": "C", "kind": "browser"}).to_string(),
        )
        .await;
    assert_eq!(code, "room-full");
    c.assert_alive().await;
    let w = c.join("other", "C").await;
    assert_eq!(w["maxPeers"], 2);
}

#[tokio::test]
async fn every_refusal_has_its_code_and_the_connection_stays_open() {
    let server = Server::start(&[]);
    let mut a = server.client().await;
    let mut b = server.client().await;

    assert_eq!(a.error_for("{not json").await, "bad-json");
    assert_eq!(a.error_for("[]").await, "bad-json");
    assert_eq!(a.error_for(r#"{"room":"x"}"#).await, "bad-json");
    assert_eq!(a.error_for(r#"{"type":"teleport"}"#).await, "unknown-type");
    assert_eq!(
        a.error_for(r#"{"type":"offer","to":"x","sdp":"v=0"}"#)
            .await,
        "not-joined"
    );
    assert_eq!(a.error_for(r#"{"type":"leave"}"#).await, "not-joined");
    assert_eq!(
        a.error_for(r#"{"type":"join","room":"no spaces","name":"A","kind":"browser"}"#)
            .await,
        "bad-room"
    );
    assert_eq!(
        a.error_for(&format!(
            r#"{{"type":"join","room":"{}","name":"A","kind":"browser"}}"#,
            "x".repeat(65)
        ))
        .await,
        "bad-room"
    );
    assert_eq!(
        a.error_for(r#"{"type":"join","room":"r","kind":"browser"}"#)
            .await,
        "bad-json"
    );
    a.ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    let reply = a.recv().await;
    assert_eq!(reply["code"], "bad-json");

    let ida = id_of(&a.join("r", "A").await);
    assert_eq!(
        a.error_for(r#"{"type":"join","room":"r","name":"A","kind":"browser"}"#)
            .await,
        "already-joined"
    );
    assert_eq!(
        a.error_for(r#"{"type":"offer","to":"nobody","sdp":"v=0"}"#)
            .await,
        "unknown-peer"
    );
    assert_eq!(
        a.error_for(&json!({"type": "offer", "to": ida, "sdp": "v=0"}).to_string())
            .await,
        "unknown-peer",
        "no relaying to oneself"
    );
    assert_eq!(
        a.error_for(r#"{"type":"offer","to":"nobody"}"#).await,
        "bad-json"
    );
    assert_eq!(
        a.error_for(r#"{"type":"ice-candidate","to":"x","candidate":"c"}"#)
            .await,
        "bad-json"
    );

    // Still in the room, still relaying, after all of that.
    let idb = id_of(&b.join("r", "B").await);
    assert_eq!(a.recv().await["type"], "peer-joined");
    a.send(json!({"type": "offer", "to": idb, "sdp": "v=0"}))
        .await;
    assert_eq!(b.recv().await["from"], ida.as_str());

    let (_, metrics) = http_get(&server.addr, "/metrics").await;
    assert!(
        metrics.contains("roombox_signal_errors_total{code=\"bad-json\"} 7"),
        "{metrics}"
    );
    assert!(
        metrics.contains("roombox_signal_errors_total{code=\"unknown-peer\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("roombox_signal_messages_relayed_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_message_over_64_kib_is_refused_then_the_socket_closed() {
    let server = Server::start(&[]);
    let mut a = server.client().await;
    let mut b = server.client().await;
    a.join("r", "A").await;
    let idb = id_of(&b.join("r", "B").await);
    assert_eq!(a.recv().await["type"], "peer-joined");

    // Exactly at the limit is fine.
    let head = json!({"type": "offer", "to": idb, "sdp": ""}).to_string();
    let at_limit = head.replace(
        r#""sdp":"""#,
        &format!(r#""sdp":"{}""#, "a".repeat(64 * 1024 - head.len())),
    );
    assert_eq!(at_limit.len(), 64 * 1024);
    a.send_text(at_limit).await;
    let got = b.recv().await;
    assert_eq!(got["sdp"].as_str().unwrap().len(), 64 * 1024 - head.len());

    let over = format!(r#"{{"type":"ping","pad":"{}"}}"#, "a".repeat(64 * 1024));
    a.send_text(over).await;
    assert_eq!(a.recv().await["code"], "too-large");
    match a.next_frame().await {
        Frame::Closed(Some(frame)) => assert_eq!(u16::from(frame.code), 1009),
        other => panic!("expected close 1009, got {other:?}"),
    }
    // The rest of the room is told.
    assert_eq!(b.recv().await["type"], "peer-left");
}

#[tokio::test]
async fn a_flood_is_rate_limited_while_others_are_served() {
    let server = Server::start(&["--rate-burst", "20", "--rate-per-sec", "10"]);
    let mut flooder = server.client().await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    flooder.join("flood", "F").await;
    let ida = id_of(&a.join("calm", "A").await);
    let idb = id_of(&b.join("calm", "B").await);
    a.recv().await;

    for _ in 0..500 {
        flooder
            .ws
            .feed(Message::text(r#"{"type":"ping"}"#))
            .await
            .unwrap();
    }
    flooder.ws.flush().await.unwrap();

    // Others are served normally during the flood (10 offers stay within their own burst).
    for n in 0..10 {
        a.send(json!({"type": "offer", "to": idb, "sdp": format!("v={n}")}))
            .await;
        let got = b.recv().await;
        assert_eq!(got["sdp"], format!("v={n}"), "{got}");
        assert_eq!(got["from"], ida.as_str());
    }

    // The flooder got its burst of pongs and then rate-limited notices, but far fewer
    // replies than messages: the rest were dropped.
    let mut pongs = 0;
    let mut limited = 0;
    loop {
        match tokio::time::timeout(Duration::from_millis(500), flooder.recv()).await {
            Ok(v) if v["type"] == "pong" => pongs += 1,
            Ok(v) if v["code"] == "rate-limited" => limited += 1,
            Ok(v) => panic!("unexpected {v}"),
            Err(_) => break,
        }
    }
    assert!(pongs >= 19, "the burst, less the join, is served ({pongs})");
    assert!(
        pongs < 200,
        "the flood is cut ({pongs} pongs for 500 pings)"
    );
    assert!(limited >= 1, "the flooder is told");
    // Still connected, and served again once it slows down.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    flooder.assert_alive().await;
}

#[tokio::test]
async fn resume_keeps_the_id_without_telling_the_room() {
    let server = Server::start(&[]);
    let mut a = server.client().await;
    let mut b = server.client().await;
    let wa = a.join("r", "A").await;
    let idb = id_of(&b.join("r", "B").await);
    a.recv().await;

    // A's network drops; its old socket is still open on the server when it comes back.
    let mut a2 = server.client().await;
    a2.send(
        json!({"type": "join", "room": "r", "name": "A", "kind": "browser",
                   "resume": {"id": wa["id"], "token": wa["resumeToken"]}}),
    )
    .await;
    let w2 = a2.recv().await;
    assert_eq!(w2["id"], wa["id"]);
    assert_eq!(w2["peers"][0]["id"], idb.as_str());
    // The old socket is closed by the server; B hears nothing of it.
    assert!(matches!(a.next_frame().await, Frame::Closed(_)));
    b.expect_silence(Duration::from_millis(500)).await;
    // Relays reach the new socket.
    b.send(json!({"type": "offer", "to": wa["id"], "sdp": "v=0"}))
        .await;
    assert_eq!(a2.recv().await["from"], idb.as_str());

    // A wrong token does not take the id.
    let mut thief = server.client().await;
    thief
        .send(
            json!({"type": "join", "room": "r", "name": "T", "kind": "browser",
                     "resume": {"id": wa["id"], "token": "guess"}}),
        )
        .await;
    let wt = thief.recv().await;
    assert_ne!(wt["id"], wa["id"]);
}

#[tokio::test]
async fn serves_the_client_health_and_metrics() {
    let server = Server::start(&[]);
    let (status, body) = http_get(&server.addr, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, body) = http_get(&server.addr, "/r/demo").await;
    assert_eq!(status, 200);
    assert!(body.contains("<html"), "{body}");
    let (status, _) = http_get(&server.addr, "/r/bad%20room").await;
    assert_eq!(status, 400);
    let (status, _) = http_get(&server.addr, "/assets/nope.js").await;
    assert_eq!(status, 404);

    let mut a = server.client().await;
    a.join("m", "A").await;
    let (status, metrics) = http_get(&server.addr, "/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "roombox_signal_connections_open 1",
        "roombox_signal_rooms 1",
        "roombox_signal_peers 1",
        "# TYPE roombox_signal_errors_total counter",
        "roombox_signal_errors_total{code=\"rate-limited\"} 0",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
}

#[tokio::test]
async fn sigterm_closes_sockets_with_going_away_and_exits() {
    let mut server = Server::start(&[]);
    let mut a = server.client().await;
    a.join("r", "A").await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    match a.next_frame().await {
        Frame::Closed(Some(frame)) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected close 1001, got {other:?}"),
    }
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(true));
}
