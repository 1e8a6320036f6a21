//! A session against a second str0m peer standing in for the browser, wired back to back in
//! memory with virtual time: negotiation, glare and media, with no sockets and no clock.

use super::*;
use str0m::change::SdpPendingOffer;
use str0m::media::Mid;

const BOX_ADDR: &str = "127.0.0.1:10000";
const BROWSER_ADDR: &str = "127.0.0.1:20000";

struct Browser {
    rtc: Rtc,
    pending: Option<SdpPendingOffer>,
    audio_mid: Option<Mid>,
    connected: bool,
    video_frames: usize,
    audio_packets: usize,
    timeout: Instant,
    outbox: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
}

impl Browser {
    fn new(now: Instant) -> Browser {
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_h264(true)
            .build(now);
        rtc.add_local_candidate(Candidate::host(BROWSER_ADDR.parse().unwrap(), "udp").unwrap());
        Browser {
            rtc,
            pending: None,
            audio_mid: None,
            connected: false,
            video_frames: 0,
            audio_packets: 0,
            timeout: now,
            outbox: Vec::new(),
        }
    }

    /// As a newcomer with a microphone: one audio m-line, nothing for video.
    fn offer_audio(&mut self, now: Instant) -> String {
        let mut api = self.rtc.sdp_api();
        self.audio_mid =
            Some(api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None));
        let (offer, pending) = api.apply().unwrap();
        self.pending = Some(pending);
        self.drain(now);
        offer.to_sdp_string()
    }

    fn drain(&mut self, now: Instant) {
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Timeout(t) => {
                    self.timeout = t;
                    return;
                }
                Output::Transmit(t) => {
                    self.outbox
                        .push((t.source, t.destination, t.contents.into()));
                }
                Output::Event(Event::Connected) => self.connected = true,
                Output::Event(Event::MediaAdded(m)) if m.kind == MediaKind::Audio => {
                    self.audio_mid.get_or_insert(m.mid);
                }
                Output::Event(Event::MediaData(d)) => {
                    if d.params.spec().codec == Codec::H264 {
                        self.video_frames += 1;
                    } else {
                        self.audio_packets += 1;
                    }
                }
                Output::Event(_) => {}
            }
            let _ = now;
        }
    }

    fn write_audio(&mut self, n: u64, now: Instant) {
        let Some(mid) = self.audio_mid else { return };
        let Some(writer) = self.rtc.writer(mid) else {
            return;
        };
        let pt = writer.payload_params().next().unwrap().pt();
        let time = MediaTime::new(n * 960, Frequency::FORTY_EIGHT_KHZ);
        writer
            .write(pt, now, time, vec![0xf8u8, 0xff, 0xfe])
            .unwrap();
        self.drain(now);
    }
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
/// the box sending a video frame and an audio packet every 20 ms once connected.
fn run(
    session: &mut Session,
    browser: &mut Browser,
    now: &mut Instant,
    until: Duration,
) -> Vec<Notice> {
    let end = *now + until;
    let mut notices = Vec::new();
    let mut tick = 0u64;
    while *now < end {
        while let Some(relay) = session.poll_signal() {
            assert_eq!(relay.pc(), Some(session.pc()));
            match relay.kind {
                RelayKind::Offer => {
                    let offer = SdpOffer::from_sdp_string(relay.sdp_text().unwrap()).unwrap();
                    let answer = browser.rtc.sdp_api().accept_offer(offer).unwrap();
                    browser.drain(*now);
                    session
                        .handle_answer(&answer.to_sdp_string(), *now)
                        .unwrap();
                }
                RelayKind::Answer => {
                    let answer = SdpAnswer::from_sdp_string(relay.sdp_text().unwrap()).unwrap();
                    let pending = browser.pending.take().expect("the browser offered");
                    browser
                        .rtc
                        .sdp_api()
                        .accept_answer(pending, answer)
                        .unwrap();
                    browser.drain(*now);
                }
                RelayKind::IceCandidate => {}
            }
        }
        while let Some(d) = session.poll_transmit() {
            browser
                .rtc
                .handle_input(Input::Receive(
                    *now,
                    receive(d.source, d.destination, &d.contents).unwrap(),
                ))
                .unwrap();
            browser.drain(*now);
        }
        for (source, destination, contents) in std::mem::take(&mut browser.outbox) {
            assert!(session.accepts(source, destination, &contents));
            session.handle_datagram(source, destination, &contents, *now);
        }
        while let Some(n) = session.poll_notice() {
            notices.push(n);
        }
        *now += Duration::from_millis(5);
        if *now >= browser.timeout {
            browser.rtc.handle_input(Input::Timeout(*now)).unwrap();
            browser.drain(*now);
        }
        session.handle_timeout(*now);
        tick += 1;
        if tick % 4 == 0 && session.is_connected() {
            let frame: Arc<[u8]> = vec![0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21, 0xa0].into();
            let pts = Duration::from_millis(5 * tick);
            session.write_video(&frame, true, pts, *now, *now);
            session.write_audio(&Arc::from(vec![0xf8u8, 0xff, 0xfe]), pts, *now, *now);
            browser.write_audio(tick / 4, *now);
        }
    }
    notices
}

#[test]
fn answers_a_newcomer_adds_video_and_media_flows_both_ways() {
    let mut now = Instant::now();
    let mut browser = Browser::new(now);
    let offer = browser.offer_audio(now);
    let mut session = new_box(false, Some("pc-1".into()), now);
    session.handle_offer(&offer, now).unwrap();
    let notices = run(&mut session, &mut browser, &mut now, Duration::from_secs(3));

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
    let mut browser = Browser::new(now);
    let mut api = browser.rtc.sdp_api();
    api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let (offer, _pending) = api.apply().unwrap();
    let mut session = new_box(false, Some("pc-2".into()), now);
    session.handle_offer(&offer.to_sdp_string(), now).unwrap();
    assert_eq!(
        session.poll_signal().map(|r| r.kind),
        Some(RelayKind::Answer)
    );
    assert!(
        session.poll_signal().is_none(),
        "nothing left to add: no second offer"
    );
}

#[test]
fn offers_to_a_peer_already_in_the_room() {
    let mut now = Instant::now();
    let mut browser = Browser::new(now);
    let mut session = new_box(true, None, now);
    session.negotiate(now).unwrap();
    run(&mut session, &mut browser, &mut now, Duration::from_secs(3));
    assert!(browser.connected);
    assert!(browser.video_frames > 10 && browser.audio_packets > 10);
}

#[test]
fn glare_impolite_box_keeps_its_offer_polite_box_yields() {
    let now = Instant::now();
    // Impolite: the browser's colliding offer is ignored; ours stays pending.
    let mut browser = Browser::new(now);
    let mut session = new_box(false, None, now);
    session.negotiate(now).unwrap();
    let ours = session.poll_signal().unwrap();
    assert_eq!(ours.kind, RelayKind::Offer);
    session
        .handle_offer(&browser.offer_audio(now), now)
        .unwrap();
    assert!(
        session.poll_signal().is_none(),
        "no answer from the impolite side"
    );

    // Polite: our offer is rolled back, theirs answered, then we offer what is still missing.
    let mut browser = Browser::new(now);
    let mut session = new_box(true, None, now);
    session.negotiate(now).unwrap();
    let _ours = session.poll_signal().unwrap();
    session
        .handle_offer(&browser.offer_audio(now), now)
        .unwrap();
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
fn a_late_viewer_gets_nothing_until_a_keyframe() {
    let mut now = Instant::now();
    let mut browser = Browser::new(now);
    let mut session = new_box(true, None, now);
    session.negotiate(now).unwrap();
    run(&mut session, &mut browser, &mut now, Duration::from_secs(2));
    assert!(session.is_connected());
    // A fresh session (as for a new viewer) holds back delta frames until a keyframe.
    let mut fresh = new_box(true, None, now);
    fresh.connected = true;
    fresh.video_mid = session.video_mid;
    let delta: Arc<[u8]> = vec![0, 0, 0, 1, 0x41, 0x9a].into();
    assert!(!fresh.write_video(&delta, false, Duration::ZERO, now, now));
}
