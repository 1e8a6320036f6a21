//! The page's HTML, rendered on the server. Every value that did not come from this file goes
//! through `esc`.

use super::api::StatusView;
use super::form::{Choices, FIELDS, SWITCHES};
use std::collections::HashMap;
use std::fmt::Write;

pub const STYLE: &str = include_str!("style.css");
pub const SCRIPT: &str = include_str!("status.js");

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn layout(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · roombox</title>
<link rel="stylesheet" href="/assets/style.css">
</head><body><main>
{body}
</main></body></html>
"#,
        title = esc(title)
    )
}

fn csrf_field(csrf: &str) -> String {
    format!(r#"<input type="hidden" name="csrf" value="{}">"#, esc(csrf))
}

fn error_line(error: Option<&str>) -> String {
    error
        .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, esc(e)))
        .unwrap_or_default()
}

/// First run: no password yet, so every page leads here. The claim code proves the visitor can
/// see the box's screen or read its journal.
pub fn setup(csrf: &str, error: Option<&str>) -> String {
    let body = format!(
        r#"<h1>Welcome to your room box</h1>
<p>To claim this box, type its claim code: it is on the screen connected to the box's HDMI
output, and in its log (<code>journalctl -u roombox | grep "claim code"</code>). Then choose the
admin password for this settings page ({min} characters or more). Anyone who knows it can
change the box's settings, so keep it safe.</p>
{error}
<form method="post" action="/setup">{csrf}
<label>Claim code <input type="text" name="claim_code" inputmode="numeric" autocomplete="one-time-code" placeholder="1234-5678" maxlength="16" required autofocus></label>
<label>New password <input type="password" name="new_password" autocomplete="new-password" required></label>
<label>Again <input type="password" name="confirm" autocomplete="new-password" required></label>
<button type="submit">Set password</button>
</form>"#,
        min = super::auth::MIN_PASSWORD_CHARS,
        error = error_line(error),
        csrf = csrf_field(csrf),
    );
    layout("Set the admin password", &body)
}

pub fn login(csrf: &str, error: Option<&str>) -> String {
    let body = format!(
        r#"<h1>Room box settings</h1>
{error}
<form method="post" action="/login">{csrf}
<label>Admin password <input type="password" name="password" autocomplete="current-password" required autofocus></label>
<button type="submit">Log in</button>
</form>"#,
        error = error_line(error),
        csrf = csrf_field(csrf),
    );
    layout("Log in", &body)
}

/// A refusal (CSRF, expired session): what happened and a way back.
pub fn refused(why: &str) -> String {
    layout(
        "Refused",
        &format!(
            r#"<h1>Refused</h1><p class="error" role="alert">{}</p><p><a href="/">Back to the settings</a></p>"#,
            esc(why)
        ),
    )
}

/// The status block; also served alone at /status for the refresh script.
pub fn status(v: &StatusView) -> String {
    let mut rows = vec![
        ("Signaling", v.signaling.clone()),
        ("Relay (TURN)", v.relay.clone()),
        ("Room", v.room.clone()),
        ("Name", v.name.clone()),
        ("Capture device", v.video_device.clone()),
        ("HDMI input", v.hdmi_in.clone()),
        ("Encoder", v.encoder.clone()),
        (
            "Bitrate",
            v.kbps.map(|k| format!("{k} kbit/s")).unwrap_or("-".into()),
        ),
        ("Picture sent", v.sent_size.clone().unwrap_or("-".into())),
        ("Microphone", v.mic.clone()),
        ("Microphone processing", v.mic_processing.clone()),
        (
            "Frame rate",
            v.fps.map(|f| format!("{f} fps")).unwrap_or("-".into()),
        ),
        (
            "CPU temperature",
            v.cpu_celsius
                .map(|c| format!("{c:.1} °C"))
                .unwrap_or("not readable".into()),
        ),
    ];
    let on_screen: Vec<String> = v
        .on_screen
        .iter()
        .map(|s| format!("{} ({})", s.name, s.kind))
        .collect();
    rows.push((
        "On the room's screen",
        if on_screen.is_empty() {
            "the status (nobody sends video)".into()
        } else {
            on_screen.join(", ")
        },
    ));
    rows.push((
        "Encryption",
        match &v.safety_code {
            Some(code) => {
                format!("end to end (signaling sealed between members); safety code {code}")
            }
            None => "not joined yet".into(),
        },
    ));
    if let Some(e) = &v.media_error {
        rows.push(("Media error", e.clone()));
    }
    let mut out = String::from("<dl>");
    for (k, val) in rows {
        let _ = write!(out, "<dt>{k}</dt><dd>{}</dd>", esc(&val));
    }
    out.push_str("</dl><h3>Participants</h3>");
    if v.participants.is_empty() {
        out.push_str(r#"<p class="muted">Nobody in the room.</p>"#);
    } else {
        out.push_str("<ul class=\"people\">");
        for p in &v.participants {
            let _ = write!(
                out,
                r#"<li><span class="who">{}</span> <span class="state">{}</span> <span class="q q-{}">{}</span></li>"#,
                esc(&p.name),
                esc(&p.state),
                esc(if p.quality.is_empty() {
                    "unknown"
                } else {
                    &p.quality
                }),
                esc(&p.quality),
            );
        }
        out.push_str("</ul>");
    }
    out
}

/// What the main page shows besides the status.
pub struct Home<'a> {
    pub csrf: &'a str,
    pub status: &'a StatusView,
    pub values: &'a HashMap<String, String>,
    pub choices: &'a Choices,
    /// Field name -> error message, shown next to the field.
    pub errors: &'a HashMap<String, String>,
    pub notice: Option<&'a str>,
    /// The room's join link (it carries the room secret) and its QR code as SVG.
    pub join_link: &'a str,
    pub join_qr: &'a str,
}

/// The message next to a field the box refused.
fn field_error(name: &str, error: Option<&String>) -> String {
    error
        .map(|e| {
            format!(
                r#"<span class="error field-error" data-field="{name}" role="alert">{}</span>"#,
                esc(e)
            )
        })
        .unwrap_or_default()
}

pub fn home(h: &Home) -> String {
    let mut fields = String::new();
    for (name, label) in FIELDS {
        let value = h.values.get(*name).map(String::as_str).unwrap_or("");
        let error = h.errors.get(*name);
        let invalid = if error.is_some() {
            r#" aria-invalid="true""#
        } else {
            ""
        };
        let input = match h.choices.of(name) {
            Some(options) => {
                let mut s = format!(r#"<select name="{name}" id="f-{name}"{invalid}>"#);
                for (v, l) in options {
                    let sel = if v == value { " selected" } else { "" };
                    let _ = write!(s, r#"<option value="{}"{sel}>{}</option>"#, esc(v), esc(l));
                }
                s + "</select>"
            }
            None => {
                let kind = if matches!(*name, "signal_url" | "room" | "name") {
                    "text"
                } else {
                    "number"
                };
                format!(
                    r#"<input type="{kind}" name="{name}" id="f-{name}" value="{}"{invalid}>"#,
                    esc(value)
                )
            }
        };
        let error_html = field_error(name, error);
        let _ = write!(
            fields,
            r#"<div class="field"><label for="f-{name}">{label}</label>{input}{error_html}</div>"#
        );
    }
    let mut switches = String::new();
    for (name, label) in SWITCHES {
        let checked = if h.values.get(*name).is_some_and(|v| v == "true") {
            " checked"
        } else {
            ""
        };
        let error_html = field_error(name, h.errors.get(*name));
        let _ = write!(
            switches,
            r#"<div class="field switch"><label for="f-{name}"><input type="checkbox" name="{name}" id="f-{name}"{checked}> {label}</label>{error_html}</div>"#
        );
    }
    let general = h
        .errors
        .get("config")
        .map(|e| error_line(Some(&format!("Not saved: {e}"))))
        .unwrap_or_default();
    let password_error = ["current_password", "new_password"]
        .iter()
        .filter_map(|f| h.errors.get(*f).map(|e| (f, e)))
        .map(|(f, e)| {
            format!(
                r#"<p class="error field-error" data-field="{f}" role="alert">{}</p>"#,
                esc(e)
            )
        })
        .collect::<String>();
    let secret_error = h
        .errors
        .get("room_secret")
        .map(|e| error_line(Some(&format!("No new secret: {e}"))))
        .unwrap_or_default();
    let notice = h
        .notice
        .map(|n| format!(r#"<p class="notice" role="status">{}</p>"#, esc(n)))
        .unwrap_or_default();
    let body = format!(
        r#"<header><h1>Room box</h1>
<form method="post" action="/logout" class="inline">{csrf}<button type="submit" class="link">Log out</button></form></header>
{notice}
<section><h2>Status</h2><div id="status">{status}</div></section>
<section><h2>Join link</h2>
<p>People join this room's calls from this link, on a phone or a laptop; the box's HDMI screen
shows it too. It carries the room's secret (after <code>#k=</code>, which browsers never send to
the server): whoever has the link can join, so share it only with them.</p>
<p class="join-link"><a href="{join_link}" id="join-link">{join_link}</a></p>
<div class="qr" role="img" aria-label="QR code of the join link">{join_qr}</div>
{secret_error}
<form method="post" action="/room-secret" id="room-secret">{csrf}
<p class="muted">A new room secret makes a new link. The old link stops working at once: people
who have it cannot join any more, and the box leaves its calls and joins again.</p>
<button type="submit">New room secret</button>
</form></section>
<section><h2>Audio</h2>
<div id="levels" class="levels">
<label>Microphone <meter id="m-mic" min="-60" max="0" low="-45" high="-6" optimum="-20" value="-90"></meter> <output id="v-mic">-</output></label>
<label>Sent to the call <meter id="m-sent" min="-60" max="0" low="-45" high="-6" optimum="-20" value="-90"></meter> <output id="v-sent">-</output></label>
<label>Speaker <meter id="m-speaker" min="-60" max="0" low="-45" high="-6" optimum="-20" value="-90"></meter> <output id="v-speaker">-</output></label>
<p class="muted">Echo canceller: <output id="v-echo">-</output></p>
</div></section>
<section><h2>Settings</h2>{general}
<form method="post" action="/settings" id="settings">{csrf}
{fields}
<fieldset><legend>Room microphone</legend>
{switches}
<p class="muted">For a microphone on the box's ALSA input; the test tone is sent as made. Turn the
first four off for a speakerphone that cancels echo itself.</p>
</fieldset>
<p class="muted">Room, name and server changes make the box leave and join again; device, size
and frame-rate changes restart only its capture and encoding; microphone processing and mute
apply at once.</p>
<button type="submit">Save and apply</button>
</form></section>
<section><h2>Admin password</h2>
<form method="post" action="/password" id="password">{csrf}
{password_error}
<label>Current password <input type="password" name="current_password" autocomplete="current-password" required></label>
<label>New password <input type="password" name="new_password" autocomplete="new-password" required></label>
<label>Again <input type="password" name="confirm" autocomplete="new-password" required></label>
<button type="submit">Change password</button>
</form></section>
<script src="/assets/status.js" defer></script>"#,
        csrf = csrf_field(h.csrf),
        status = status(h.status),
        join_link = esc(h.join_link),
        join_qr = h.join_qr, // made by display::qr from module colours only
    );
    layout("Room box", &body)
}
