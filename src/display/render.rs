//! Lays a [`StatusModel`] out on a screen of any size: a header with the box and its signaling
//! state, the room and who is in it on the left, on the right the join link's QR code and text
//! over the settings page's (with the claim code while the box is unclaimed), the HDMI-in and
//! encoder state at the bottom.
//!
//! Sizes derive from the screen height so 800x480 panels, 720p and 1080p all read from across a
//! room: body text is the 10x20 font at `height / 360` (at least 1), titles one step larger.

use super::model::{HdmiIn, MicState, PeerState, Quality, SignalingState, StatusModel};
use super::qr::Qr;
use super::text::{truncate, wrap, Font};
use embedded_graphics::mono_font::iso_8859_1::{FONT_10X20, FONT_9X18_BOLD};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Circle, PrimitiveStyle, Rectangle};

pub const BACKGROUND: Rgb888 = Rgb888::new(0x12, 0x16, 0x20);
pub const HEADER: Rgb888 = Rgb888::new(0x1d, 0x2a, 0x44);
const TEXT: Rgb888 = Rgb888::new(0xf2, 0xf4, 0xf8);
const DIM: Rgb888 = Rgb888::new(0x94, 0x9c, 0xae);
pub(crate) const GOOD: Rgb888 = Rgb888::new(0x3c, 0xd0, 0x70);
const WARN: Rgb888 = Rgb888::new(0xf0, 0xb4, 0x28);
pub(crate) const BAD: Rgb888 = Rgb888::new(0xf0, 0x50, 0x50);
const OFF: Rgb888 = Rgb888::new(0x60, 0x66, 0x74);

/// Where things went; tests use it to look at the right pixels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// The settings page's QR code.
    pub qr: Option<Rectangle>,
    /// The join link's QR code.
    pub join_qr: Option<Rectangle>,
    /// One rectangle per drawn participant row (the "+N more" row excluded).
    pub participant_rows: Vec<Rectangle>,
    /// How many participants were left out, shown as "+N more".
    pub hidden: usize,
}

/// Draws the whole screen (it clears first).
pub fn render<D>(model: &StatusModel, target: &mut D) -> Result<Layout, D::Error>
where
    D: DrawTarget,
    D::Color: From<Rgb888>,
{
    let mut layout = Layout::default();
    let size = target.bounding_box().size;
    let (w, h) = (size.width, size.height);
    let s = (h / 360).max(1);
    let body = Font::new(&FONT_10X20, s);
    let title = Font::new(&FONT_9X18_BOLD, s + 1);
    let small = Font::new(&FONT_10X20, s.saturating_sub(1).max(1));
    let pad = 12 * s;
    let c = |c: Rgb888| D::Color::from(c);

    target.clear(c(BACKGROUND))?;

    // Header: "roombox  <box name>" left, signaling state right.
    let header_h = title.line_height() + 2 * pad;
    fill(
        target,
        Rectangle::new(Point::zero(), Size::new(w, header_h)),
        c(HEADER),
    )?;
    let (sig_color, sig_label) = signaling_look(model.signaling);
    let sig_w = body.width_of(sig_label) + body.line_height();
    let right = w.saturating_sub(pad + sig_w);
    let mid_y = (header_h - body.line_height()) / 2;
    dot(
        target,
        Point::new(right as i32, mid_y as i32),
        body,
        c(sig_color),
    )?;
    body.draw(
        target,
        sig_label,
        Point::new((right + body.line_height()) as i32, mid_y as i32),
        c(TEXT),
    )?;
    title.draw(target, "roombox", pt(pad, pad), c(TEXT))?;
    let name_x = pad + title.width_of("roombox ");
    let room_for_name = right.saturating_sub(name_x + pad);
    if !model.box_name.is_empty() {
        let name = truncate(&model.box_name, body.chars_in(room_for_name));
        body.draw(target, &name, pt(name_x, mid_y), c(DIM))?;
    }

    // Right column: the join link's QR code and text over the settings page's, with the claim
    // code under the settings address while the box has no admin password.
    let top = header_h + pad;
    let footer_h = 3 * body.line_height() + pad;
    let footer_y = h.saturating_sub(footer_h + pad / 2);
    let col_w = w * 2 / 5;
    let col_x = w - pad - col_w;
    let mut cards = Vec::new();
    if !model.join_link.is_empty() {
        let link = model.join_link.text();
        let mut lines = Vec::new();
        let font = fitting(link, col_w, body, small);
        for line in wrap(link, font.chars_in(col_w)) {
            lines.push((line, font, TEXT));
        }
        // What people compare with their page's code: nobody is in the middle if they match.
        if let Some(code) = &model.safety_code {
            lines.push(("Safety code".into(), small, DIM));
            lines.push((code.clone(), body, TEXT));
        }
        cards.push(Card {
            caption: "Join this room",
            qr: link,
            lines,
            share: 3,
            is_join: true,
        });
    }
    if !model.settings_url.is_empty() {
        let url = &model.settings_url;
        let font = fitting(url, col_w, body, small);
        let mut lines: Vec<_> = wrap(url, font.chars_in(col_w))
            .into_iter()
            .map(|l| (l, font, TEXT))
            .collect();
        if let Some(code) = &model.claim_code {
            lines.push(("Claim code".into(), small, DIM));
            lines.push((code.text().into(), title, WARN));
        }
        cards.push(Card {
            caption: "Settings",
            qr: url,
            lines,
            share: 2,
            is_join: false,
        });
    }
    if !cards.is_empty() {
        let gap = pad / 3;
        let text_h: u32 = cards
            .iter()
            .map(|c| small.line_height() + c.lines.iter().map(|l| l.1.line_height()).sum::<u32>())
            .sum();
        let gaps = cards.len() as u32 * 2 * gap + (cards.len() as u32 - 1) * pad;
        let qr_h = h.saturating_sub(top + pad + text_h + gaps);
        let shares: u32 = cards.iter().map(|c| c.share).sum();
        let mut y = top;
        for card in &cards {
            let x = col_x + (col_w - small.width_of(card.caption).min(col_w)) / 2;
            small.draw(target, card.caption, pt(x, y), c(DIM))?;
            y += small.line_height() + gap;
            let max_side = col_w.min(qr_h * card.share / shares);
            let qr = Qr::new(card.qr);
            let side = qr.as_ref().map_or(0, |q| q.side_for(max_side));
            if let Some(qr) = qr.filter(|_| side > 0) {
                let qr_x = col_x + (col_w - side) / 2;
                qr.draw(target, pt(qr_x, y), max_side)?;
                let at = Some(Rectangle::new(pt(qr_x, y), Size::new_equal(side)));
                if card.is_join {
                    layout.join_qr = at;
                } else {
                    layout.qr = at;
                }
            }
            y += side + gap;
            for (line, font, color) in &card.lines {
                let x = col_x + (col_w - font.width_of(line).min(col_w)) / 2;
                font.draw(target, line, pt(x, y), c(*color))?;
                y += font.line_height();
            }
            y += pad;
        }
    }
    let left_w = if cards.is_empty() {
        w - 2 * pad
    } else {
        col_x.saturating_sub(2 * pad)
    };

    // Left column: room, then participants.
    let mut y = top;
    small.draw(target, "Room", pt(pad, y), c(DIM))?;
    y += small.line_height();
    let room = if model.room.is_empty() {
        "not set"
    } else {
        &model.room
    };
    title.draw(
        target,
        &truncate(room, title.chars_in(left_w)),
        pt(pad, y),
        c(TEXT),
    )?;
    y += title.line_height() + pad;
    let heading = format!("In the room ({})", model.participants.len());
    small.draw(target, &heading, pt(pad, y), c(DIM))?;
    y += small.line_height() + pad / 3;

    let row_h = body.line_height() + pad / 3;
    let fit = (footer_y.saturating_sub(y) / row_h) as usize;
    let n = model.participants.len();
    let shown = if n > fit { fit.saturating_sub(1) } else { n };
    layout.hidden = n - shown;
    if n == 0 && fit > 0 {
        body.draw(target, "nobody yet", pt(pad, y), c(DIM))?;
    }
    // Columns: dot, name, state, quality; the name takes what is left.
    let state_w = body.width_of("reconnecting ");
    let quality_w = body.width_of("good");
    let name_w = left_w.saturating_sub(body.line_height() + state_w + quality_w + pad);
    for p in &model.participants[..shown] {
        let row = Rectangle::new(pt(pad, y), Size::new(left_w, body.line_height()));
        dot(target, pt(pad, y), body, c(peer_color(p.state)))?;
        let name = truncate(&p.name, body.chars_in(name_w));
        let x = pad + body.line_height();
        body.draw(target, &name, pt(x, y), c(TEXT))?;
        let x = x + name_w + pad;
        body.draw(target, p.state.label(), pt(x, y), c(DIM))?;
        let q = p.quality;
        body.draw(target, q.label(), pt(x + state_w, y), c(quality_color(q)))?;
        layout.participant_rows.push(row);
        y += row_h;
    }
    if layout.hidden > 0 {
        let more = format!("+{} more", layout.hidden);
        body.draw(target, &more, pt(pad + body.line_height(), y), c(DIM))?;
    }

    // Footer: what comes in on HDMI and what goes out.
    let (hdmi_color, hdmi) = hdmi_look(&model.hdmi_in);
    let label_w = body.width_of("Video  ");
    let value_chars = body.chars_in(left_w.saturating_sub(label_w + body.line_height()));
    let mut y = footer_y + pad / 2;
    body.draw(target, "HDMI", pt(pad, y), c(DIM))?;
    dot(target, pt(pad + label_w, y), body, c(hdmi_color))?;
    let x = pad + label_w + body.line_height();
    body.draw(target, &truncate(&hdmi, value_chars), pt(x, y), c(TEXT))?;
    y += body.line_height();
    body.draw(target, "Video", pt(pad, y), c(DIM))?;
    let (enc_color, enc) = match &model.encoder {
        Some(e) => (GOOD, e.label()),
        None => (OFF, "idle".to_string()),
    };
    dot(target, pt(pad + label_w, y), body, c(enc_color))?;
    body.draw(target, &truncate(&enc, value_chars), pt(x, y), c(TEXT))?;
    y += body.line_height();
    body.draw(target, "Mic", pt(pad, y), c(DIM))?;
    dot(target, pt(pad + label_w, y), body, c(mic_color(model.mic)))?;
    body.draw(target, model.mic.label(), pt(x, y), c(TEXT))?;
    Ok(layout)
}

/// One QR code of the right column: a caption over it, lines of text under it, and its share
/// of the column's height for the code.
struct Card<'a> {
    caption: &'static str,
    qr: &'a str,
    lines: Vec<(String, Font, Rgb888)>,
    share: u32,
    is_join: bool,
}

/// Body text when `text` fits in two lines of `width`, the smaller font otherwise.
fn fitting(text: &str, width: u32, body: Font, small: Font) -> Font {
    if wrap(text, body.chars_in(width)).len() <= 2 {
        body
    } else {
        small
    }
}

fn pt(x: u32, y: u32) -> Point {
    Point::new(x as i32, y as i32)
}

fn fill<D: DrawTarget>(target: &mut D, r: Rectangle, color: D::Color) -> Result<(), D::Error> {
    target.fill_solid(&r, color)
}

/// A status dot centred in a text-line-high square at `top_left`.
fn dot<D: DrawTarget>(
    target: &mut D,
    top_left: Point,
    font: Font,
    color: D::Color,
) -> Result<(), D::Error> {
    let line = font.line_height();
    let d = line / 2;
    let at = top_left + Point::new(((line - d) / 2) as i32, ((line - d) / 2) as i32);
    Circle::new(at, d)
        .into_styled(PrimitiveStyle::with_fill(color))
        .draw(target)
}

fn signaling_look(s: SignalingState) -> (Rgb888, &'static str) {
    let color = match s {
        SignalingState::Connected => GOOD,
        SignalingState::Reconnecting | SignalingState::NoNetwork => WARN,
        SignalingState::NotConfigured => OFF,
    };
    (color, s.label())
}

fn peer_color(s: PeerState) -> Rgb888 {
    match s {
        PeerState::Connected => GOOD,
        PeerState::Connecting | PeerState::Reconnecting => WARN,
        PeerState::Refused(_) => BAD,
    }
}

fn quality_color(q: Quality) -> Rgb888 {
    match q {
        Quality::Good => GOOD,
        Quality::Fair => WARN,
        Quality::Poor => BAD,
        Quality::Unknown => DIM,
    }
}

/// Muted is what the room must notice; speaking lights up as the room talks.
fn mic_color(m: MicState) -> Rgb888 {
    match m {
        MicState::Muted => BAD,
        MicState::Speaking => GOOD,
        MicState::On | MicState::Off => OFF,
    }
}

fn hdmi_look(h: &HdmiIn) -> (Rgb888, String) {
    let color = match h {
        HdmiIn::Signal { .. } => GOOD,
        HdmiIn::NoSignal => WARN,
        HdmiIn::NoDevice => OFF,
    };
    (color, h.label())
}
