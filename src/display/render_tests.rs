//! Renders sample models at the sizes the box meets, writes PNGs to look at, and checks pixels:
//! background, the QR code decoding back to the URL, names drawn, long lists truncated.
//! PNGs go to `$ROOMBOX_PNG_DIR`, or `roombox-display` in the system temp dir.

use super::framebuffer::MemoryFramebuffer;
use super::model::*;
use super::render::{render, Layout, BACKGROUND, BAD, GOOD, HEADER};
use embedded_graphics::pixelcolor::{Rgb565, Rgb888, RgbColor};
use embedded_graphics::prelude::*;
use std::path::PathBuf;

const URL: &str = "http://192.168.1.42/";
const JOIN: &str = "https://rooms.example.org/r/Boardroom-3#k=q3Xv0aZbN4tW8yL1mC7dEg";

fn participant(name: &str, state: PeerState, quality: Quality) -> Participant {
    Participant {
        name: name.into(),
        state,
        quality,
    }
}

pub(crate) fn sample(n: usize) -> StatusModel {
    let people = [
        participant("Alice Johnson", PeerState::Connected, Quality::Good),
        participant("Bob", PeerState::Connecting, Quality::Unknown),
        participant("Chloé Martin", PeerState::Connected, Quality::Fair),
        participant(
            "Dmitri with a very long display name indeed",
            PeerState::Reconnecting,
            Quality::Poor,
        ),
    ];
    StatusModel {
        room: "Boardroom 3".into(),
        box_name: "roombox-7f3a".into(),
        signaling: SignalingState::Connected,
        participants: (0..n)
            .map(|i| {
                let mut p = people[i % people.len()].clone();
                if i >= people.len() {
                    p.name = format!("Guest {}", i + 1);
                }
                p
            })
            .collect(),
        hdmi_in: HdmiIn::signal(1920, 1080, 59.94),
        encoder: Some(EncoderStatus {
            name: "v4l2-m2m".into(),
            kbps: 2500,
            fps: 30,
            size: (1280, 720),
        }),
        settings_url: URL.into(),
        join_link: OnScreenOnly::new(JOIN.into()),
        ..StatusModel::default()
    }
}

fn png_dir() -> PathBuf {
    let dir = std::env::var_os("ROOMBOX_PNG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("roombox-display"));
    std::fs::create_dir_all(&dir).expect("temp dir is writable");
    dir
}

fn write_png(fb: &MemoryFramebuffer, name: &str) {
    let path = png_dir().join(name);
    let file = std::fs::File::create(&path).expect("create png");
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), fb.width(), fb.height());
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut rgb = Vec::with_capacity((fb.width() * fb.height() * 3) as usize);
    for y in 0..fb.height() {
        for x in 0..fb.width() {
            let p = fb.pixel(x, y);
            rgb.extend_from_slice(&[p.r(), p.g(), p.b()]);
        }
    }
    let mut w = enc.write_header().expect("png header");
    w.write_image_data(&rgb).expect("png data");
}

fn draw(model: &StatusModel, w: u32, h: u32, name: &str) -> (MemoryFramebuffer, Layout) {
    let mut fb = MemoryFramebuffer::new(w, h);
    let Ok(layout) = render(model, &mut fb);
    write_png(&fb, name);
    (fb, layout)
}

/// Decodes every QR code found in the frame's grayscale, sorted.
fn decode_qr(fb: &MemoryFramebuffer) -> Vec<String> {
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(
        fb.width() as usize,
        fb.height() as usize,
        |x, y| {
            let p = fb.pixel(x as u32, y as u32);
            ((u32::from(p.r()) * 3 + u32::from(p.g()) * 6 + u32::from(p.b())) / 10) as u8
        },
    );
    let mut found: Vec<String> = img
        .detect_grids()
        .iter()
        .filter_map(|g| g.decode().ok().map(|(_, s)| s))
        .collect();
    found.sort();
    found
}

/// The sample's two codes as `decode_qr` lists them.
fn both() -> Vec<&'static str> {
    let mut v = vec![URL, JOIN];
    v.sort_unstable();
    v
}

fn has_ink(fb: &MemoryFramebuffer, r: &embedded_graphics::primitives::Rectangle) -> bool {
    r.points()
        .any(|p| fb.pixel(p.x as u32, p.y as u32) != BACKGROUND)
}

fn check_screen(w: u32, h: u32, name: &str) {
    let model = sample(3);
    let (fb, layout) = draw(&model, w, h, name);
    assert_eq!(
        fb.pixel(w - 1, h - 1),
        BACKGROUND,
        "bottom-right is background"
    );
    assert_eq!(fb.pixel(0, 0), HEADER, "header band");
    assert_eq!(
        decode_qr(&fb),
        both(),
        "the QR codes read back as the join link and the settings URL"
    );
    let join = layout.join_qr.unwrap();
    let settings = layout.qr.unwrap();
    assert!(join.size.width >= h / 5, "join QR large enough: {join:?}");
    assert!(
        settings.size.width >= h / 8,
        "settings QR large enough: {settings:?}"
    );
    assert!(join.top_left.y < settings.top_left.y, "the join link first");
    assert_eq!(layout.participant_rows.len(), 3);
    assert_eq!(layout.hidden, 0);
    for row in &layout.participant_rows {
        assert!(has_ink(&fb, row), "participant row drawn");
    }
}

#[test]
fn screen_720p() {
    check_screen(1280, 720, "status-1280x720.png");
}

#[test]
fn screen_1080p() {
    check_screen(1920, 1080, "status-1920x1080.png");
}

#[test]
fn screen_800x480_panel() {
    check_screen(800, 480, "status-800x480.png");
}

#[test]
fn long_lists_end_in_n_more() {
    for (w, h) in [(800, 480), (1280, 720)] {
        let model = sample(14);
        let (fb, layout) = draw(&model, w, h, &format!("status-{w}x{h}-crowded.png"));
        assert!(layout.hidden > 0, "{w}x{h}: some hidden");
        assert_eq!(layout.participant_rows.len() + layout.hidden, 14);
        // The "+N more" line sits right under the last row.
        let last = layout.participant_rows.last().unwrap();
        let below = embedded_graphics::primitives::Rectangle::new(
            last.top_left + Point::new(0, last.size.height as i32 + 4),
            last.size,
        );
        assert!(has_ink(&fb, &below), "{w}x{h}: +N more drawn");
        assert_eq!(decode_qr(&fb), both());
    }
}

#[test]
fn empty_and_unconfigured_states() {
    let model = StatusModel {
        box_name: "roombox-7f3a".into(),
        settings_url: "http://roombox-7f3a.local:8080/settings".into(),
        ..Default::default()
    };
    let (fb, layout) = draw(&model, 1280, 720, "status-1280x720-unconfigured.png");
    assert!(layout.participant_rows.is_empty());
    assert_eq!(decode_qr(&fb), ["http://roombox-7f3a.local:8080/settings"]);

    let model = StatusModel {
        settings_url: String::new(),
        hdmi_in: HdmiIn::NoSignal,
        ..sample(2)
    };
    let (fb, layout) = draw(&model, 800, 480, "status-800x480-no-url.png");
    assert_eq!(layout.qr, None);
    assert_eq!(
        decode_qr(&fb),
        [JOIN],
        "the join link without a settings page"
    );
    assert_eq!(layout.participant_rows.len(), 2);
}

/// A new box: the claim code under the settings address, big and in amber, on every size; both
/// codes still read back.
#[test]
fn an_unclaimed_box_shows_its_claim_code() {
    const WARN: Rgb888 = Rgb888::new(0xf0, 0xb4, 0x28);
    for (w, h) in [(800, 480), (1280, 720), (1920, 1080)] {
        let model = StatusModel {
            claim_code: Some(OnScreenOnly::new("0417-9352".into())),
            ..sample(2)
        };
        let (fb, layout) = draw(&model, w, h, &format!("status-{w}x{h}-claim.png"));
        assert_eq!(decode_qr(&fb), both(), "{w}x{h}");
        let qr = layout.qr.unwrap();
        let below_qr = (qr.top_left.y as u32 + qr.size.height)..h;
        let amber = below_qr
            .flat_map(|y| (w / 2..w).map(move |x| (x, y)))
            .filter(|&(x, y)| fb.pixel(x, y) == WARN)
            .count();
        assert!(
            amber > 200,
            "{w}x{h}: the claim code drawn ({amber} amber pixels)"
        );
    }
    let (fb, _) = draw(&sample(2), 1280, 720, "status-1280x720-claimed.png");
    let amber = (0..720)
        .flat_map(|y| (640..1280).map(move |x| (x, y)))
        .filter(|&(x, y)| fb.pixel(x, y) == WARN)
        .count();
    assert_eq!(amber, 0, "no claim code once claimed");
}

#[test]
fn the_safety_code_is_shown_under_the_join_link() {
    const TEXT: Rgb888 = Rgb888::new(0xf2, 0xf4, 0xf8);
    let text_right = |fb: &MemoryFramebuffer, w: u32, h: u32| {
        (0..h)
            .flat_map(|y| (w / 2..w).map(move |x| (x, y)))
            .filter(|&(x, y)| fb.pixel(x, y) == TEXT)
            .count()
    };
    for (w, h) in [(800, 480), (1920, 1080)] {
        let coded = StatusModel {
            safety_code: Some("0412 9310 5577 0061 8234".into()),
            ..sample(2)
        };
        let (with, _) = draw(&coded, w, h, &format!("status-{w}x{h}-safety.png"));
        let (without, _) = draw(&sample(2), w, h, &format!("status-{w}x{h}-nosafety.png"));
        assert_eq!(
            decode_qr(&with),
            both(),
            "{w}x{h}: both QR codes still read"
        );
        let (a, b) = (text_right(&with, w, h), text_right(&without, w, h));
        assert!(
            a > b + 150,
            "{w}x{h}: the code's digits drawn ({a} text pixels against {b})"
        );
    }
}

/// Rgb565 panels: the same renderer through colour conversion.
#[test]
fn draws_into_rgb565_targets() {
    struct Panel(Vec<Rgb565>);
    impl OriginDimensions for Panel {
        fn size(&self) -> Size {
            Size::new(800, 480)
        }
    }
    impl DrawTarget for Panel {
        type Color = Rgb565;
        type Error = core::convert::Infallible;
        fn draw_iter<I: IntoIterator<Item = Pixel<Rgb565>>>(
            &mut self,
            px: I,
        ) -> Result<(), Self::Error> {
            for Pixel(p, c) in px {
                if (0..800).contains(&p.x) && (0..480).contains(&p.y) {
                    self.0[p.y as usize * 800 + p.x as usize] = c;
                }
            }
            Ok(())
        }
    }
    let mut panel = Panel(vec![Rgb565::BLACK; 800 * 480]);
    let Ok(layout) = render(&sample(2), &mut panel);
    assert_eq!(layout.participant_rows.len(), 2);
    assert_eq!(panel.0[800 * 480 - 1], Rgb565::from(BACKGROUND));
}

#[test]
fn the_microphone_row_shows_muted_in_red_and_speaking_in_green() {
    let count = |m: MicState, color: Rgb888| {
        let model = StatusModel {
            mic: m,
            ..sample(0)
        };
        let (fb, _) = draw(&model, 1280, 720, &format!("mic-{}.png", m.label()));
        // The footer's rows are the bottom fifth of the left half.
        (360..720)
            .flat_map(|y| (0..640).map(move |x| (x, y)))
            .filter(|&(x, y)| y > 576 && fb.pixel(x, y) == color)
            .count()
    };
    assert!(count(MicState::Muted, BAD) > 50, "a red dot when muted");
    assert_eq!(count(MicState::On, BAD), 0);
    assert!(count(MicState::Speaking, GOOD) > count(MicState::On, GOOD) + 50);
}
