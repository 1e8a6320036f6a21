//! The settings form: the values it shows, the device choices it offers, and turning what was
//! posted back into `Settings`, every error naming its field.

use crate::config::{ConfigError, Settings, SettingsText};
use crate::devices::Inventory;
use std::collections::HashMap;

/// The form's fields in order, with their labels. Each is a key of `Settings`.
pub const FIELDS: &[(&str, &str)] = &[
    ("signal_url", "Signaling server"),
    ("room", "Room"),
    ("name", "Display name"),
    ("video", "Video input"),
    ("width", "Width (pixels)"),
    ("height", "Height (pixels)"),
    ("fps", "Frames per second"),
    ("min_kbps", "Lowest bitrate (kbit/s)"),
    ("max_kbps", "Highest bitrate (kbit/s)"),
    ("degradation", "On a slow link"),
    ("audio_in", "Microphone"),
    ("audio_out", "Speaker"),
];

/// The on/off fields (checkboxes), in order, with their labels. Each is a boolean key of
/// `Settings`.
pub const SWITCHES: &[(&str, &str)] = &[
    ("echo_cancellation", "Echo cancellation"),
    ("noise_suppression", "Noise suppression"),
    ("auto_gain", "Automatic gain"),
    ("high_pass", "High-pass filter (rumble)"),
    ("mute", "Mute the microphone"),
];

/// The text of every field as the form shows it (switches as "true" or "false").
pub fn values_of(s: &Settings) -> HashMap<String, String> {
    let s = s.text();
    let pairs = [
        ("signal_url", s.signal_url),
        ("room", s.room),
        ("name", s.name),
        ("video", s.video),
        ("width", s.width.to_string()),
        ("height", s.height.to_string()),
        ("fps", s.fps.to_string()),
        ("min_kbps", s.min_kbps.to_string()),
        ("max_kbps", s.max_kbps.to_string()),
        ("degradation", s.degradation),
        ("audio_in", s.audio_in),
        ("audio_out", s.audio_out),
        ("echo_cancellation", s.echo_cancellation.to_string()),
        ("noise_suppression", s.noise_suppression.to_string()),
        ("auto_gain", s.auto_gain.to_string()),
        ("high_pass", s.high_pass.to_string()),
        ("mute", s.mute.to_string()),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// (value, label) pairs of a choice field.
pub type Options = Vec<(String, String)>;

/// What the device fields offer: the same discovery as `roombox devices`, plus the built-in
/// test sources, plus whatever is configured now (say a y4m file set in the config file).
pub struct Choices {
    pub video: Options,
    pub audio_in: Options,
    pub audio_out: Options,
    pub degradation: Options,
}

impl Choices {
    pub fn new(inv: &Inventory, current: &Settings) -> Choices {
        let mut video: Options = vec![("test".into(), "Test pattern".into())];
        video.extend(inv.video.iter().map(|v| {
            let hdmi = v.inputs.iter().any(|i| i.kind == "HDMI");
            let kind = if hdmi { "HDMI" } else { "camera" };
            (
                format!("v4l2:{}", v.path),
                format!("{} ({kind}, {})", v.card, v.path),
            )
        }));
        let mut audio_in: Options = vec![
            ("test".into(), "Test tone".into()),
            ("none".into(), "None".into()),
        ];
        audio_in.extend(alsa(&inv.audio_capture));
        let mut audio_out: Options = vec![("none".into(), "None".into())];
        audio_out.extend(alsa(&inv.audio_playback));
        for (list, value) in [
            (&mut video, current.video.to_string()),
            (&mut audio_in, current.audio_in.to_string()),
            (&mut audio_out, current.audio_out.to_string()),
        ] {
            if !list.iter().any(|(v, _)| *v == value) {
                list.push((value.clone(), format!("{value} (configured)")));
            }
        }
        let degradation = vec![
            (
                "balanced".into(),
                "Lower the resolution, keep motion smooth".into(),
            ),
            (
                "maintain-resolution".into(),
                "Keep the resolution (slides), fewer frames".into(),
            ),
        ];
        Choices {
            video,
            audio_in,
            audio_out,
            degradation,
        }
    }

    pub fn of(&self, field: &str) -> Option<&Options> {
        match field {
            "video" => Some(&self.video),
            "audio_in" => Some(&self.audio_in),
            "audio_out" => Some(&self.audio_out),
            "degradation" => Some(&self.degradation),
            _ => None,
        }
    }
}

fn alsa(devices: &[crate::devices::AudioDevice]) -> impl Iterator<Item = (String, String)> + '_ {
    devices
        .iter()
        .map(|d| (format!("alsa:{}", d.name), d.description.clone()))
}

fn bad(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        message: message.into(),
    }
}

/// The posted form as new settings: keys the form does not have (`ice_loopback`,
/// `web_listen`) keep their current values; a device must be one the page offered (a page
/// must not point the box at arbitrary files with `y4m:` or `wav:`); then every value is
/// parsed and checked.
pub fn parse(
    posted: &HashMap<String, String>,
    current: &Settings,
    choices: &Choices,
) -> Result<Settings, ConfigError> {
    let text = |field: &str| -> Result<String, ConfigError> {
        posted
            .get(field)
            .map(|v| v.trim().to_owned())
            .ok_or_else(|| bad(field, "is missing from the form"))
    };
    let number = |field: &str| -> Result<u32, ConfigError> {
        let v = text(field)?;
        v.parse()
            .map_err(|_| bad(field, format!("{v:?} is not a whole number")))
    };
    let choice = |field: &str| -> Result<String, ConfigError> {
        let v = text(field)?;
        let offered = choices.of(field).expect("a choice field");
        if offered.iter().any(|(o, _)| *o == v) {
            Ok(v)
        } else {
            Err(bad(
                field,
                format!("{v:?} is not one of the choices offered"),
            ))
        }
    };
    // A checked box posts "on"; an unchecked one posts nothing.
    let switch = |field: &str| -> Result<bool, ConfigError> {
        match posted.get(field).map(|v| v.trim()) {
            None | Some("false") => Ok(false),
            Some("on" | "true") => Ok(true),
            Some(v) => Err(bad(field, format!("{v:?} is not on or off"))),
        }
    };
    let s = SettingsText {
        signal_url: text("signal_url")?,
        room: text("room")?,
        name: text("name")?,
        video: choice("video")?,
        width: number("width")?,
        height: number("height")?,
        fps: number("fps")?,
        min_kbps: number("min_kbps")?,
        max_kbps: number("max_kbps")?,
        degradation: choice("degradation")?,
        audio_in: choice("audio_in")?,
        audio_out: choice("audio_out")?,
        echo_cancellation: switch("echo_cancellation")?,
        noise_suppression: switch("noise_suppression")?,
        auto_gain: switch("auto_gain")?,
        high_pass: switch("high_pass")?,
        mute: switch("mute")?,
        ..current.text()
    };
    s.parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posted(s: &Settings) -> HashMap<String, String> {
        values_of(s)
    }

    #[test]
    fn the_current_settings_round_trip() {
        let current = Settings::default();
        let choices = Choices::new(&Inventory::default(), &current);
        assert_eq!(
            parse(&posted(&current), &current, &choices).unwrap(),
            current
        );
    }

    #[test]
    fn switches_are_checkboxes() {
        let current = Settings::default();
        let choices = Choices::new(&Inventory::default(), &current);
        let mut form = posted(&current);
        // Unchecked boxes post nothing; a checked one posts "on".
        form.remove("echo_cancellation");
        form.remove("auto_gain");
        form.insert("mute".into(), "on".into());
        let s = parse(&form, &current, &choices).unwrap();
        assert!(!s.processing.echo_cancellation && !s.processing.auto_gain);
        assert!(s.processing.noise_suppression && s.processing.high_pass && s.mute);
        form.insert("high_pass".into(), "maybe".into());
        let e = parse(&form, &current, &choices).unwrap_err();
        assert_eq!(e.field, "high_pass");
    }

    #[test]
    fn degradation_is_one_of_two_policies() {
        let current = Settings::default();
        let choices = Choices::new(&Inventory::default(), &current);
        let offered: Vec<&str> = choices
            .degradation
            .iter()
            .map(|(v, _)| v.as_str())
            .collect();
        assert_eq!(offered, ["balanced", "maintain-resolution"]);
        let mut form = posted(&current);
        form.insert("degradation".into(), "maintain-resolution".into());
        let s = parse(&form, &current, &choices).unwrap();
        assert_eq!(
            s.degradation,
            crate::config::Degradation::MaintainResolution
        );
    }

    #[test]
    fn errors_name_the_field() {
        let current = Settings::default();
        let choices = Choices::new(&Inventory::default(), &current);
        let cases = [
            ("fps", "0", "fps"),
            ("fps", "thirty", "fps"),
            ("room", "no spaces", "room"),
            ("name", "   ", "name"),
            ("width", "1281", "width"),
            ("signal_url", "localhost", "signal_url"),
            ("min_kbps", "10", "min_kbps"),
            ("max_kbps", "100", "max_kbps"),
            ("video", "y4m:/etc/passwd", "video"),
            ("audio_out", "wav:/etc/roombox/roombox.toml", "audio_out"),
            ("audio_in", "alsa:nonesuch", "audio_in"),
            ("degradation", "maintain-framerate", "degradation"),
        ];
        for (field, value, named) in cases {
            let mut form = posted(&current);
            form.insert(field.into(), value.into());
            let e = parse(&form, &current, &choices).unwrap_err();
            assert_eq!(e.field, named, "{field}={value:?} gave {e}");
        }
        let mut form = posted(&current);
        form.remove("room");
        assert_eq!(parse(&form, &current, &choices).unwrap_err().field, "room");
    }

    #[test]
    fn offers_discovered_devices_and_keeps_unlisted_current_ones() {
        let inv = Inventory {
            video: vec![crate::devices::VideoDevice {
                path: "/dev/video0".into(),
                card: "vivid".into(),
                ..Default::default()
            }],
            audio_capture: vec![crate::devices::AudioDevice {
                name: "hw:CARD=Loopback,DEV=1".into(),
                description: "Loopback".into(),
            }],
            audio_playback: vec![],
        };
        let current = Settings {
            audio_out: crate::config::AudioOutput::Wav("/tmp/x.wav".into()),
            ..Settings::default()
        };
        let choices = Choices::new(&inv, &current);
        let mut form = posted(&current);
        form.insert("video".into(), "v4l2:/dev/video0".into());
        form.insert("audio_in".into(), "alsa:hw:CARD=Loopback,DEV=1".into());
        let s = parse(&form, &current, &choices).unwrap();
        assert_eq!(s.video.to_string(), "v4l2:/dev/video0");
        assert_eq!(s.audio_out.to_string(), "wav:/tmp/x.wav");
        assert!(s.ice_loopback == current.ice_loopback && s.web_listen == current.web_listen);
    }
}
