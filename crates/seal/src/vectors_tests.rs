//! The fixed vectors `web/js/seal.js` is tested against too (tests/vectors/seal.json), and the
//! X-Wing draft's own vectors (tests/vectors/xwing-draft.json) through our key handling.
//!
//! `ROOMBOX_WRITE_VECTORS=1 cargo test -p roombox-seal vectors` rewrites seal.json from this
//! code (then review the diff: a change here is a protocol change).

use crate::crypto::{self, Identity, RoomKeys};
use crate::RoomSecret;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::{json, Value};
use std::path::PathBuf;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

fn bytes<const N: usize>(start: u8) -> [u8; N] {
    std::array::from_fn(|i| start.wrapping_add(i as u8).wrapping_mul(7))
}

fn compute() -> Value {
    let room = "lab-4";
    let secret = RoomSecret::from_bytes(bytes(1));
    let keys = RoomKeys::derive(&secret, room);
    let (a_seed, b_seed): ([u8; 32], [u8; 32]) = (bytes(10), bytes(50));
    let (a_eseed, b_eseed): ([u8; 64], [u8; 64]) = (bytes(90), bytes(170));
    let a = Identity::from_seed(a_seed);
    let b = Identity::from_seed(b_seed);
    let by_a = a.encapsulate_to(b.ek(), a_eseed).unwrap();
    let by_b = b.encapsulate_to(a.ek(), b_eseed).unwrap();
    // Each side's view of the other's encapsulation, through decapsulation.
    let at_b = b.decapsulate(a.ek(), &by_a.ct).unwrap();
    let at_a = a.decapsulate(b.ek(), &by_b.ct).unwrap();
    assert_eq!(at_b.ss, by_a.ss);
    assert_eq!(at_a.ss, by_b.ss);
    let pair_a = keys.pair_keys(&by_a, &at_a);
    let pair_b = keys.pair_keys(&by_b, &at_b);
    assert_eq!(pair_a.send, pair_b.recv);
    assert_eq!(pair_a.recv, pair_b.send);
    assert_eq!(pair_a.transcript, pair_b.transcript);
    let plaintext = r#"{"type":"hi","name":"Ada","kind":"browser"}"#;
    let seq = 5u64;
    let sealed = crypto::seal(&pair_a.send, seq, plaintext.as_bytes());
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    json!({
        "about": "protocol version 2 (docs/protocol.md); hex unless a field says b64 (base64url, no padding)",
        "room": room,
        "secret_b64": secret.expose(),
        "a": {"seed": hex(&a_seed), "eseed": hex(&a_eseed), "ek": hex(a.ek()),
              "announce_mac_b64": B64.encode(keys.announce_mac(a.ek())),
              "ct": hex(&by_a.ct), "ss": hex(&by_a.ss),
              "hello_mac_b64": B64.encode(keys.hello_mac(a.ek(), b.ek(), &by_a.ct, false)),
              "hello_reply": false,
              "send_key": hex(&pair_a.send)},
        "b": {"seed": hex(&b_seed), "eseed": hex(&b_eseed), "ek": hex(b.ek()),
              "announce_mac_b64": B64.encode(keys.announce_mac(b.ek())),
              "ct": hex(&by_b.ct), "ss": hex(&by_b.ss),
              "hello_mac_b64": B64.encode(keys.hello_mac(b.ek(), a.ek(), &by_b.ct, true)),
              "hello_reply": true,
              "send_key": hex(&pair_b.send)},
        "transcript": hex(&pair_a.transcript),
        "pair_b64": B64.encode(pair_a.id()),
        "envelope": {"from": "a", "seq": seq, "plaintext": plaintext, "box_b64": B64.encode(sealed)},
        "safety_code": crypto::safety_code(&[a.ek(), b.ek()]),
    })
}

#[test]
fn seal_vectors_match_the_committed_file() {
    let path = vectors_dir().join("seal.json");
    let now = compute();
    if std::env::var_os("ROOMBOX_WRITE_VECTORS").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&now).unwrap() + "\n").unwrap();
    }
    let text = std::fs::read_to_string(&path).expect("tests/vectors/seal.json");
    let committed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(committed, now, "the protocol's bytes changed");
    // The envelope opens under the receiver's key, and not with one bit changed.
    let env = &now["envelope"];
    let a_send: [u8; 32] = unhex(now["a"]["send_key"].as_str().unwrap())
        .try_into()
        .unwrap();
    let mut sealed = B64.decode(env["box_b64"].as_str().unwrap()).unwrap();
    let opened = crypto::open(&a_send, 5, &sealed).unwrap();
    assert_eq!(opened, env["plaintext"].as_str().unwrap().as_bytes());
    assert!(crypto::open(&a_send, 6, &sealed).is_none(), "seq is bound");
    sealed[0] ^= 0x80;
    assert!(crypto::open(&a_send, 5, &sealed).is_none());
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn the_xwing_drafts_vectors_pass_through_our_keys() {
    let text = std::fs::read_to_string(vectors_dir().join("xwing-draft.json")).unwrap();
    let vectors: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(!vectors.is_empty());
    for v in &vectors {
        let field = |k: &str| unhex(v[k].as_str().unwrap());
        let me = Identity::from_seed(field("sk").try_into().unwrap());
        assert_eq!(me.ek(), field("pk").as_slice());
        let peer = Identity::from_seed([0; 32]);
        let enc = peer
            .encapsulate_to(me.ek(), field("eseed").try_into().unwrap())
            .unwrap();
        assert_eq!(enc.ct, field("ct"));
        assert_eq!(enc.ss.to_vec(), field("ss"));
        let dec = me.decapsulate(peer.ek(), &enc.ct).unwrap();
        assert_eq!(dec.ss.to_vec(), field("ss"));
    }
}

fn compute_frames() -> Value {
    use crate::frame::{KeyRing, SenderKey};
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let sender = SenderKey {
        kid: 200,
        key: bytes(33),
    };
    let cipher = sender.cipher();
    let opus = [0x78u8, 0x01, 0x00, 0x00, 0x02, 0xfe, 0x10];
    let opus_iv: [u8; 12] = bytes(5);
    let sealed_opus = cipher.seal_opus(&opus, opus_iv);
    // SPS, PPS, an IDR slice whose payload has zero runs, a second slice.
    let mut h264 = vec![
        0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80,
    ];
    h264.extend([
        0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0x00, 0x03, 0x01, 0x21, 0x00, 0x00, 0x00,
    ]);
    h264.extend((0..40u8).map(|i| i.wrapping_mul(29)));
    h264.extend([0, 0, 1, 0x41, 0x9a, 0x00, 0x00, 0x03, 0x00, 0x77]);
    let ivs: [[u8; 12]; 2] = [bytes(101), bytes(151)];
    let mut next = ivs.iter().copied();
    let sealed_h264 = cipher.seal_h264(&h264, || next.next().unwrap());
    let mut ring = KeyRing::default();
    ring.insert(sender.clone());
    assert_eq!(ring.open_h264(&sealed_h264).unwrap(), h264);
    assert_eq!(ring.open_opus(&sealed_opus).unwrap(), opus);
    let ratcheted = sender.ratchet();
    json!({
        "about": "frame encryption (docs/protocol.md, \"Frame encryption\"); hex",
        "sender_key": hex(&sender.key), "kid": sender.kid,
        "ratchet": {"key": hex(&ratcheted.key), "kid": ratcheted.kid},
        "opus": {"plain": hex(&opus), "iv": hex(&opus_iv), "sealed": hex(&sealed_opus)},
        "h264": {"plain": hex(&h264), "ivs": ivs.iter().map(|i| hex(i)).collect::<Vec<_>>(), "sealed": hex(&sealed_h264)},
    })
}

#[test]
fn frame_vectors_match_the_committed_file() {
    let path = vectors_dir().join("frame.json");
    let now = compute_frames();
    if std::env::var_os("ROOMBOX_WRITE_VECTORS").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&now).unwrap() + "\n").unwrap();
    }
    let text = std::fs::read_to_string(&path).expect("tests/vectors/frame.json");
    let committed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(committed, now, "the frame format's bytes changed");
}
