//! The typed values of the settings, parsed once from what a person writes (the config file, a
//! command-line flag, the settings page) and used as values everywhere after. Each parses with
//! `FromStr` and prints back the same text with `Display`, so a saved file reads as it was
//! written. Opening what they name is the job of the stage that uses them (capture, audio,
//! encode, web), not of the config.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// A source or sink name that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {given:?}: expected {expected}")]
pub struct SpecError {
    pub what: &'static str,
    pub given: String,
    pub expected: &'static str,
}

/// Where video comes from: `test` | `y4m:PATH` | `v4l2:DEVICE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoInput {
    Test,
    Y4m(PathBuf),
    V4l2(String),
}

impl FromStr for VideoInput {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        match s.split_once(':') {
            None if s == "test" => Ok(Self::Test),
            Some(("y4m", path)) if !path.is_empty() => Ok(Self::Y4m(path.into())),
            Some(("v4l2", dev)) if !dev.is_empty() => Ok(Self::V4l2(dev.to_owned())),
            _ => Err(SpecError {
                what: "video source",
                given: s.to_owned(),
                expected: "test, y4m:PATH or v4l2:DEVICE",
            }),
        }
    }
}

impl fmt::Display for VideoInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Test => f.write_str("test"),
            Self::Y4m(p) => write!(f, "y4m:{}", p.display()),
            Self::V4l2(d) => write!(f, "v4l2:{d}"),
        }
    }
}

/// Where room audio comes from: `test` | `alsa:DEVICE` | `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioInput {
    Test,
    Alsa(String),
    None,
}

impl FromStr for AudioInput {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        match s.split_once(':') {
            None if s == "test" => Ok(Self::Test),
            None if s == "none" => Ok(Self::None),
            Some(("alsa", dev)) if !dev.is_empty() => Ok(Self::Alsa(dev.to_owned())),
            _ => Err(SpecError {
                what: "audio input",
                given: s.to_owned(),
                expected: "test, alsa:DEVICE or none",
            }),
        }
    }
}

impl fmt::Display for AudioInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Test => f.write_str("test"),
            Self::Alsa(d) => write!(f, "alsa:{d}"),
            Self::None => f.write_str("none"),
        }
    }
}

/// Where the room hears remote participants: `alsa:DEVICE` | `wav:PATH` | `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioOutput {
    Alsa(String),
    Wav(PathBuf),
    None,
}

impl FromStr for AudioOutput {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        match s.split_once(':') {
            None if s == "none" => Ok(Self::None),
            Some(("alsa", dev)) if !dev.is_empty() => Ok(Self::Alsa(dev.to_owned())),
            Some(("wav", path)) if !path.is_empty() => Ok(Self::Wav(path.into())),
            _ => Err(SpecError {
                what: "audio output",
                given: s.to_owned(),
                expected: "alsa:DEVICE, wav:PATH or none",
            }),
        }
    }
}

impl fmt::Display for AudioOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Alsa(d) => write!(f, "alsa:{d}"),
            Self::Wav(p) => write!(f, "wav:{}", p.display()),
            Self::None => f.write_str("none"),
        }
    }
}

/// The H.264 encoder or decoder: `auto` (the hardware codec when there is one, else
/// openh264), `openh264`, or a V4L2 memory-to-memory node `v4l2:/dev/videoN`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CodecChoice {
    #[default]
    Auto,
    OpenH264,
    V4l2(PathBuf),
}

/// The `encoder` setting.
pub type EncoderChoice = CodecChoice;
/// The `decoder` setting (the room display's decoder of what people send).
pub type DecoderChoice = CodecChoice;

/// What `encoder` and `decoder` accept, for error messages.
pub const ENCODER_CHOICES: &str = "auto, openh264 or v4l2:/dev/videoN";

impl FromStr for CodecChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(CodecChoice::Auto),
            "openh264" => Ok(CodecChoice::OpenH264),
            _ => match s.strip_prefix("v4l2:") {
                Some(p) if p.starts_with('/') => Ok(CodecChoice::V4l2(p.into())),
                Some(_) => Err(format!("{s:?}: v4l2: needs an absolute device path")),
                None => Err(format!("{s:?} is not one of {ENCODER_CHOICES}")),
            },
        }
    }
}

impl fmt::Display for CodecChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecChoice::Auto => f.write_str("auto"),
            CodecChoice::OpenH264 => f.write_str("openh264"),
            CodecChoice::V4l2(p) => write!(f, "v4l2:{}", p.display()),
        }
    }
}

/// What the sender gives up when the bandwidth estimate is too low for the picture
/// (docs/decisions.md, "Degradation under a low bitrate").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Degradation {
    /// Scale the picture down a step at a time (as libwebrtc's `balanced`), keep the frame rate.
    #[default]
    Balanced,
    /// Keep every pixel (slides with small text); the encoder drops frames instead.
    MaintainResolution,
}

/// What `degradation` accepts, for error messages.
pub const DEGRADATION_CHOICES: &str = "balanced or maintain-resolution";

impl FromStr for Degradation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "balanced" => Ok(Degradation::Balanced),
            "maintain-resolution" => Ok(Degradation::MaintainResolution),
            _ => Err(format!("{s:?} is not one of {DEGRADATION_CHOICES}")),
        }
    }
}

impl fmt::Display for Degradation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Degradation::Balanced => "balanced",
            Degradation::MaintainResolution => "maintain-resolution",
        })
    }
}

/// Where the settings page listens: an address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    Off,
    Addr(SocketAddr),
}

impl FromStr for Listen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "off" {
            return Ok(Listen::Off);
        }
        s.parse()
            .map(Listen::Addr)
            .map_err(|_| format!("{s:?} is not ADDRESS:PORT (e.g. 0.0.0.0:80) or off"))
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Off => f.write_str("off"),
            Listen::Addr(a) => write!(f, "{a}"),
        }
    }
}

/// The signaling server as a person writes it (`http(s)://`, `ws(s)://`, a bare host gets
/// `/ws`), and the WebSocket URL the box connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalUrl {
    given: String,
    websocket: String,
}

impl SignalUrl {
    /// The `ws://` or `wss://` URL to connect to.
    pub fn websocket(&self) -> &str {
        &self.websocket
    }

    /// The server's pages, `http://HOST` or `https://HOST` (no trailing slash): where people
    /// open a room, `<page_origin>/r/<room>`.
    pub fn page_origin(&self) -> String {
        let (scheme, rest) = self
            .websocket
            .split_once("://")
            .expect("made with a scheme by from_str");
        let host = rest.split('/').next().unwrap_or(rest);
        let scheme = if scheme == "wss" { "https" } else { "http" };
        format!("{scheme}://{host}")
    }
}

impl FromStr for SignalUrl {
    type Err = String;
    fn from_str(url: &str) -> Result<Self, String> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            format!("signal URL {url:?} has no scheme (ws://, wss://, http:// or https://)")
        })?;
        let scheme = match scheme {
            "ws" | "http" => "ws",
            "wss" | "https" => "wss",
            other => {
                return Err(format!(
                    "signal URL scheme {other:?} is not ws, wss, http or https"
                ))
            }
        };
        let (host, path) = match rest.find('/') {
            Some(i) if i + 1 < rest.len() => (&rest[..i], &rest[i..]),
            Some(i) => (&rest[..i], "/ws"),
            None => (rest, "/ws"),
        };
        if host.is_empty() {
            return Err(format!("signal URL {url:?} has no host"));
        }
        Ok(SignalUrl {
            given: url.to_owned(),
            websocket: format!("{scheme}://{host}{path}"),
        })
    }
}

impl fmt::Display for SignalUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.given)
    }
}

/// Which stages process the room microphone (each a setting; a speakerphone with its own
/// echo canceller needs none). audio::processing runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioProcessing {
    pub echo_cancellation: bool,
    pub noise_suppression: bool,
    pub auto_gain: bool,
    pub high_pass: bool,
}

impl AudioProcessing {
    pub const ALL: AudioProcessing = AudioProcessing {
        echo_cancellation: true,
        noise_suppression: true,
        auto_gain: true,
        high_pass: true,
    };
    pub const NONE: AudioProcessing = AudioProcessing {
        echo_cancellation: false,
        noise_suppression: false,
        auto_gain: false,
        high_pass: false,
    };

    pub fn any(self) -> bool {
        self != AudioProcessing::NONE
    }

    /// "echo cancellation, noise suppression" or "none", for logs and the page.
    pub fn label(self) -> String {
        let names: Vec<&str> = [
            (self.high_pass, "high-pass"),
            (self.echo_cancellation, "echo cancellation"),
            (self.noise_suppression, "noise suppression"),
            (self.auto_gain, "automatic gain"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value prints back as the text it was parsed from.
    fn round_trips<T: FromStr + fmt::Display>(texts: &[&str])
    where
        T::Err: fmt::Debug,
    {
        for t in texts {
            assert_eq!(t.parse::<T>().expect(t).to_string(), *t);
        }
    }

    #[test]
    fn video_inputs() {
        assert_eq!("test".parse(), Ok(VideoInput::Test));
        assert_eq!(
            "y4m:/a/b.y4m".parse(),
            Ok(VideoInput::Y4m("/a/b.y4m".into()))
        );
        assert_eq!(
            "v4l2:/dev/video0".parse(),
            Ok(VideoInput::V4l2("/dev/video0".into()))
        );
        for bad in ["", "y4m:", "webcam", "test:x", "hdmi:0"] {
            let err = bad.parse::<VideoInput>().expect_err(bad);
            assert!(
                err.to_string()
                    .contains("expected test, y4m:PATH or v4l2:DEVICE"),
                "{err}"
            );
        }
        round_trips::<VideoInput>(&["test", "y4m:x.y4m", "v4l2:/dev/video0"]);
    }

    #[test]
    fn audio_inputs_and_outputs() {
        assert_eq!("test".parse(), Ok(AudioInput::Test));
        assert_eq!("none".parse(), Ok(AudioInput::None));
        assert_eq!("alsa:hw:1,0".parse(), Ok(AudioInput::Alsa("hw:1,0".into())));
        assert!("alsa:".parse::<AudioInput>().is_err());
        assert!("pulse".parse::<AudioInput>().is_err());
        round_trips::<AudioInput>(&["test", "none", "alsa:plughw:CARD=x,DEV=0"]);

        assert_eq!("none".parse(), Ok(AudioOutput::None));
        assert_eq!(
            "wav:/t/a.wav".parse(),
            Ok(AudioOutput::Wav("/t/a.wav".into()))
        );
        for bad in ["", "wav:", "alsa:", "test", "speaker"] {
            let err = bad.parse::<AudioOutput>().expect_err(bad);
            assert!(
                err.to_string().contains("alsa:DEVICE, wav:PATH or none"),
                "{err}"
            );
        }
        round_trips::<AudioOutput>(&["none", "wav:/t/a.wav", "alsa:default"]);
    }

    #[test]
    fn encoder_choices() {
        assert_eq!("auto".parse(), Ok(CodecChoice::Auto));
        assert_eq!(
            "v4l2:/dev/video11".parse(),
            Ok(CodecChoice::V4l2("/dev/video11".into()))
        );
        assert!("x264"
            .parse::<EncoderChoice>()
            .unwrap_err()
            .contains(ENCODER_CHOICES));
        assert!("v4l2:video11"
            .parse::<EncoderChoice>()
            .unwrap_err()
            .contains("absolute"));
        round_trips::<EncoderChoice>(&["auto", "openh264", "v4l2:/dev/video11"]);
        assert_eq!(CodecChoice::default(), CodecChoice::Auto);
    }

    #[test]
    fn listen_addresses() {
        assert_eq!("off".parse(), Ok(Listen::Off));
        assert!("80".parse::<Listen>().unwrap_err().contains("ADDRESS:PORT"));
        round_trips::<Listen>(&["off", "0.0.0.0:80", "[::]:8080"]);
    }

    #[test]
    fn signal_urls() {
        let ws = |u: &str| u.parse::<SignalUrl>().map(|s| s.websocket().to_owned());
        assert_eq!(
            ws("http://127.0.0.1:8080").unwrap(),
            "ws://127.0.0.1:8080/ws"
        );
        assert_eq!(
            ws("https://x.onrender.com/").unwrap(),
            "wss://x.onrender.com/ws"
        );
        assert_eq!(ws("ws://h:1/custom/ws").unwrap(), "ws://h:1/custom/ws");
        assert!(ws("ftp://h").unwrap_err().contains("ftp"));
        assert!(ws("localhost:8080").is_err());
        assert!(ws("https:///x").unwrap_err().contains("no host"));
        round_trips::<SignalUrl>(&["https://x.onrender.com/", "ws://h:1/custom/ws"]);
        let origin = |u: &str| u.parse::<SignalUrl>().unwrap().page_origin();
        assert_eq!(origin("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(origin("https://x.onrender.com/"), "https://x.onrender.com");
        assert_eq!(origin("wss://x.onrender.com/ws"), "https://x.onrender.com");
        assert_eq!(origin("ws://h:1/custom/ws"), "http://h:1");
    }
}
