//! A session against the web client's side played by str0m ([`WebClientPeer`]), wired back to
//! back in memory with virtual time: negotiation, glare and media, with no sockets and no clock.

use super::*;
use crate::calls::web_client::WebClientPeer;
use roombox_seal::frame::SenderKey;

const BOX_ADDR: &str = "127.0.0.1:10000";
const BROWSER_ADDR: &str = "127.0.0.1:20000";

/// The box's frame key in these tests: frames are sealed above the session (by `Calls`), so
/// the tests seal what they hand it, and the web client holds the key.
fn box_key() -> SenderKey {
    SenderKey {
        kid: 1,
        key: [5; 32],
    }
}

fn sealed_video(annex_b: &[u8]) -> Arc<[u8]> {
    box_key().cipher().seal_h264(annex_b, rand::random).into()
}

fn sealed_audio(opus: &[u8]) -> Arc<[u8]> {
    box_key().cipher().seal_opus(opus, rand::random()).into()
}

/// The web client's side, with the session's connection id (as after its offer or ours).
fn web_client(pc: &str, now: Instant) -> WebClientPeer {
    let mut peer = WebClientPeer::new(
        PeerId("browser".into()),
        PeerId("box".into()),
        BROWSER_ADDR.parse().unwrap(),
        pc.into(),
        now,
    );
    peer.add_box_key(box_key());
    peer
}

/// The browser's first offer as SDP (its trickled candidates are in the SDP too).
fn offer_sdp(browser: &mut WebClientPeer) -> String {
    let relays = browser.offer(false);
    relays[0].sdp_text().unwrap().to_owned()
}

fn new_box(polite: bool, pc: Option<String>, now: Instant) -> Session {
    let host = Candidate::host(BOX_ADDR.parse().unwrap(), "udp").unwrap();
    Session::new(
        PeerId("browser".into()),
        pc.unwrap_or_else(|| "box-pc".into()),
        polite,
        &[host],
        500_000,
        2_000_000,
        now,
    )
}

/// Moves signaling and datagrams between the two until `until` (virtual time) has passed,
/// the box sending audio every 20 ms once connected and, if `video`, a keyframe with it.
fn run(
    session: &mut Session,
    browser: &mut WebClientPeer,
    now: &mut Instant,
    until: Duration,
    video: bool,
) -> Vec<Notice> {
    let end = *now + until;
    let mut notices = Vec::new();
    let mut tick = 0u64;
    while *now < end {
        while let Some(relay) = session.poll_signal() {
            assert_eq!(relay.pc(), Some(session.pc()));
            let reply = browser.handle_relay(&relay).unwrap();
            if let Some(answer) = reply {
                session
                    .handle_answer(answer.sdp_text().unwrap(), *now)
                    .unwrap();
            }
        }
        while let Some(d) = session.poll_transmit() {
            assert_eq!(d.destination, browser.local());
            browser.handle_datagram(d.source, &d.contents, *now);
        }
        let (sent, _) = browser.poll().unwrap();
        for d in sent {
            assert!(session.accepts(d.source, d.destination, &d.contents));
            session.handle_datagram(d.source, d.destination, &d.contents, *now);
        }
        while let Some(n) = session.poll_notice() {
            notices.push(n);
        }
        *now += Duration::from_millis(5);
        if *now >= browser.timeout() {
            browser.handle_timeout(*now);
        }
        session.handle_timeout(*now);
        tick += 1;
        if tick.is_multiple_of(4) && session.is_connected() {
            let pts = Duration::from_millis(5 * tick);
            if video {
                let frame = sealed_video(&[0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21, 0xa0]);
                session.write_video(&frame, true, pts, *now, *now);
            }
            session.write_audio(&sealed_audio(&[0xf8, 0xff, 0xfe]), pts, *now, *now);
            browser.write_audio(&[0xf8, 0xff, 0xfe], *now);
        }
    }
    notices
}

/// The box offers to a browser already in the room; both run for `until`.
fn box_offers(now: &mut Instant, until: Duration, video: bool) -> (Session, WebClientPeer) {
    let mut browser = web_client("elsewhere", *now);
    let mut session = new_box(true, None, *now);
    session.negotiate(*now).unwrap();
    run(&mut session, &mut browser, now, until, video);
    (session, browser)
}

#[test]
fn answers_a_newcomer_adds_video_and_media_flows_both_ways() {
    let mut now = Instant::now();
    let mut browser = web_client("pc-1", now);
    let offer = offer_sdp(&mut browser);
    let mut session = new_box(false, Some("pc-1".into()), now);
    session.handle_offer(&offer, now).unwrap();
    let notices = run(
        &mut session,
        &mut browser,
        &mut now,
        Duration::from_secs(3),
        true,
    );

    assert!(browser.connected && session.is_connected());
    assert!(notices.iter().any(|n| matches!(n, Notice::Connected)));
    assert!(
        browser.video_frames > 10,
        "the box's video reached the browser ({})",
        browser.video_frames
    );
    assert!(
        browser.audio_packets > 10,
        "the box's audio reached the browser ({})",
        browser.audio_packets
    );
    let heard = notices
        .iter()
        .filter(|n| matches!(n, Notice::Audio { .. }))
        .count();
    assert!(
        heard > 10,
        "the browser's microphone reached the box ({heard})"
    );
}

#[test]
fn an_offer_with_audio_and_video_is_answered_without_renegotiating() {
    let now = Instant::now();
    let mut browser = web_client("pc-2", now);
    let offer = browser.offer(true);
    let mut session = new_box(false, Some("pc-2".into()), now);
    session
        .handle_offer(offer[0].sdp_text().unwrap(), now)
        .unwrap();
    assert_eq!(
        session.poll_signal().map(|r| r.kind),
        Some(RelayKind::Answer)
    );
    assert!(
        session.poll_signal().is_none(),
        "nothing left to add: no second offer"
    );
}

/// The payload types of each m-line ("audio"/"video") that carry transport-cc feedback.
fn transport_cc_by_kind(sdp: &str) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for line in sdp.lines() {
        if let Some(m) = line.strip_prefix("m=") {
            out.push((m.split(' ').next().unwrap_or("").to_owned(), 0));
        } else if line.starts_with("a=rtcp-fb:") && line.ends_with(" transport-cc") {
            out.last_mut().expect("rtcp-fb inside an m-line").1 += 1;
        }
    }
    out
}

#[test]
fn transport_cc_on_video_only_so_bandwidth_probes_never_ride_on_audio() {
    // The box's own offer.
    let now = Instant::now();
    let mut session = new_box(true, None, now);
    session.negotiate(now).unwrap();
    let offer = session.poll_signal().unwrap();
    let kinds = transport_cc_by_kind(offer.sdp_text().unwrap());
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert_eq!(kinds[0], ("audio".to_owned(), 0), "the offer: {kinds:?}");
    assert_eq!(kinds[1].0, "video");
    assert!(kinds[1].1 > 0, "video keeps transport-cc: {kinds:?}");

    // Its answer to a browser that offers transport-cc on audio too.
    let mut browser = web_client("pc-cc", now);
    let browser_offer = browser.offer(true);
    let offered = transport_cc_by_kind(browser_offer[0].sdp_text().unwrap());
    assert!(
        offered.iter().all(|(_, n)| *n > 0),
        "the browser offers it everywhere: {offered:?}"
    );
    let mut session = new_box(false, Some("pc-cc".into()), now);
    session
        .handle_offer(browser_offer[0].sdp_text().unwrap(), now)
        .unwrap();
    let answer = session.poll_signal().unwrap();
    let kinds = transport_cc_by_kind(answer.sdp_text().unwrap());
    for (kind, n) in &kinds {
        assert_eq!(*n > 0, kind == "video", "the answer: {kinds:?}");
    }
}

#[test]
fn offers_to_a_peer_already_in_the_room() {
    let mut now = Instant::now();
    let (session, browser) = box_offers(&mut now, Duration::from_secs(3), true);
    assert_eq!(
        browser.pc(),
        "box-pc",
        "the browser took the box's connection id"
    );
    assert!(browser.connected && session.is_connected());
    assert!(browser.video_frames > 10 && browser.audio_packets > 10);
}

#[test]
fn glare_impolite_box_keeps_its_offer_polite_box_yields() {
    let now = Instant::now();
    // Impolite: the browser's colliding offer is ignored; ours stays pending.
    let mut browser = web_client("box-pc", now);
    let mut session = new_box(false, None, now);
    session.negotiate(now).unwrap();
    let ours = session.poll_signal().unwrap();
    assert_eq!(ours.kind, RelayKind::Offer);
    session.handle_offer(&offer_sdp(&mut browser), now).unwrap();
    assert!(
        session.poll_signal().is_none(),
        "no answer from the impolite side"
    );

    // Polite: our offer is rolled back, theirs answered, then we offer what is still missing.
    let mut browser = web_client("box-pc", now);
    let mut session = new_box(true, None, now);
    session.negotiate(now).unwrap();
    let _ours = session.poll_signal().unwrap();
    session.handle_offer(&offer_sdp(&mut browser), now).unwrap();
    assert_eq!(
        session.poll_signal().map(|r| r.kind),
        Some(RelayKind::Answer)
    );
    assert_eq!(
        session.poll_signal().map(|r| r.kind),
        Some(RelayKind::Offer),
        "re-offers video after the rollback"
    );
}

#[test]
fn a_new_viewer_gets_no_delta_frame_until_a_keyframe_unblocks_it() {
    let mut now = Instant::now();
    // Connected, audio flowing, no video yet: the encoder is mid-GOP for this viewer.
    let (mut session, mut browser) = box_offers(&mut now, Duration::from_secs(2), false);
    assert!(session.is_connected() && browser.connected);
    assert_eq!(browser.video_frames, 0);

    let delta = sealed_video(&[0, 0, 0, 1, 0x41, 0x9a, 0x02, 0x03]);
    let key = sealed_video(&[0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21, 0xa0]);
    let pts = Duration::from_secs(2);
    assert!(
        !session.write_video(&delta, false, pts, now, now),
        "a delta frame before any keyframe is held back"
    );
    assert!(
        session.write_video(&key, true, pts + Duration::from_millis(33), now, now),
        "the keyframe goes out"
    );
    assert!(
        session.write_video(&delta, false, pts + Duration::from_millis(66), now, now),
        "and from then on delta frames do"
    );
    run(
        &mut session,
        &mut browser,
        &mut now,
        Duration::from_millis(500),
        false,
    );
    assert_eq!(
        browser.first_frame_was_keyframe,
        Some(true),
        "the viewer's first frame is the keyframe"
    );
    assert!(browser.video_frames >= 2, "{}", browser.video_frames);
}
