//! What the status screen shows: plain data, compared for equality so the screen redraws only
//! when something visible changed.

/// Everything on the screen. The pipeline publishes a new one through a `watch` channel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusModel {
    pub room: String,
    pub box_name: String,
    pub signaling: SignalingState,
    pub participants: Vec<Participant>,
    pub hdmi_in: HdmiIn,
    /// `None` while the encoder idles (no viewer).
    pub encoder: Option<EncoderStatus>,
    /// The settings page, e.g. `http://192.168.1.20/`; shown as text and as a QR code.
    pub settings_url: String,
    /// The capture device in use (the `video` setting), for the settings page.
    pub video_device: String,
    /// Why the capture/encode pipeline is not running (a device that failed to open after a
    /// settings change; retried), for the settings page.
    pub media_error: Option<String>,
    /// The TURN relay, for the settings page and the screen.
    pub relay: RelayState,
    /// The room microphone: muted, speaking, on or off.
    pub mic: MicState,
    /// Its processing stages as set, for the settings page ("none" for the test tone).
    pub mic_processing: String,
    /// Whose video the room's display shows (the HDMI-out and the display sink), in order.
    pub on_screen: Vec<(String, crate::media::VideoKind)>,
    /// The room's join link, `<server>/r/<room>#k=<secret>`, shown as a QR code and text for
    /// the people in the room. It carries the room secret: not on the settings page's status
    /// (`web::api`), and never logged.
    pub join_link: OnScreenOnly,
    /// While no admin password is set: the claim code the settings page asks for.
    pub claim_code: Option<OnScreenOnly>,
    /// The room's safety code as the box sees it (docs/protocol.md, "Safety code"): people
    /// compare it with the one their page shows. Public: it is a hash of public keys.
    pub safety_code: Option<String>,
}

/// Text the room may see on its screen but no log may hold (the join link with the room
/// secret, the claim code): `Debug` prints it redacted, so a `{:?}` of the model leaks nothing.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OnScreenOnly(String);

impl OnScreenOnly {
    pub fn new(text: String) -> OnScreenOnly {
        OnScreenOnly(text)
    }

    /// The text, for drawing.
    pub fn text(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for OnScreenOnly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnScreenOnly(…)")
    }
}

/// The room microphone as the screen shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MicState {
    /// No microphone (`audio_in = none`, or the audio thread is restarting).
    #[default]
    Off,
    /// Listening, nobody in the room speaking.
    On,
    /// The room is speaking (after echo cancellation: the far end's voice does not count).
    Speaking,
    /// The `mute` setting: silence is sent.
    Muted,
}

impl MicState {
    pub fn label(self) -> &'static str {
        match self {
            MicState::Off => "off",
            MicState::On => "on",
            MicState::Speaking => "speaking",
            MicState::Muted => "muted",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignalingState {
    Connected,
    Reconnecting,
    /// The box has no network address: nobody can reach it until one appears.
    NoNetwork,
    #[default]
    NotConfigured,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Participant {
    pub name: String,
    pub state: PeerState,
    pub quality: Quality,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerState {
    Connecting,
    Connected,
    Reconnecting,
    /// Failed the room's checks (sealed signaling): no call with it.
    Refused(roombox_seal::Refusal),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Quality {
    #[default]
    Unknown,
    Good,
    Fair,
    Poor,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HdmiIn {
    /// Frame rate in hundredths of a hertz, so 59.94 Hz stays exact and the type stays `Eq`.
    Signal {
        width: u32,
        height: u32,
        fps_x100: u32,
    },
    NoSignal,
    #[default]
    NoDevice,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncoderStatus {
    pub name: String,
    pub kbps: u32,
    /// Frames per second sent over the last few seconds.
    pub fps: u32,
    /// The picture's size as sent (smaller than the input's on a slow link).
    pub size: (u32, u32),
}

/// Whether the box holds a TURN relay (calls through NATs and firewalls need one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RelayState {
    /// The signaling server names no TURN server: calls go direct or not at all.
    #[default]
    NotConfigured,
    Allocating,
    /// Relays up, by how the box reaches them ("udp, tls").
    Ready(String),
    /// No relay, and why the last attempt failed.
    Failed(String),
}

impl RelayState {
    pub fn label(&self) -> String {
        match self {
            RelayState::NotConfigured => "none configured".into(),
            RelayState::Allocating => "allocating".into(),
            RelayState::Ready(via) => format!("ready ({via})"),
            RelayState::Failed(why) => format!("failed: {why}"),
        }
    }
}

impl SignalingState {
    pub fn label(self) -> &'static str {
        match self {
            SignalingState::Connected => "online",
            SignalingState::Reconnecting => "reconnecting",
            SignalingState::NoNetwork => "no network address",
            SignalingState::NotConfigured => "not configured",
        }
    }
}

impl PeerState {
    pub fn label(self) -> &'static str {
        match self {
            PeerState::Connecting => "joining",
            PeerState::Connected => "connected",
            PeerState::Reconnecting => "reconnecting",
            PeerState::Refused(refusal) => refusal.label(),
        }
    }
}

impl Quality {
    pub fn label(self) -> &'static str {
        match self {
            Quality::Unknown => "",
            Quality::Good => "good",
            Quality::Fair => "fair",
            Quality::Poor => "poor",
        }
    }
}

impl HdmiIn {
    /// A signal from timings as V4L2 reports them (fps may be fractional, e.g. 59.94).
    pub fn signal(width: u32, height: u32, fps: f64) -> Self {
        HdmiIn::Signal {
            width,
            height,
            fps_x100: (fps * 100.0).round().max(0.0) as u32,
        }
    }

    pub fn label(&self) -> String {
        match *self {
            HdmiIn::Signal {
                width,
                height,
                fps_x100,
            } => {
                let fps = if fps_x100 % 100 == 0 {
                    format!("{}", fps_x100 / 100)
                } else {
                    format!("{}.{:02}", fps_x100 / 100, fps_x100 % 100)
                };
                format!("{width}x{height}@{fps}")
            }
            HdmiIn::NoSignal => "no signal".into(),
            HdmiIn::NoDevice => "no device".into(),
        }
    }
}

impl Quality {
    /// A call's quality from its round-trip time (what people notice in conversation).
    pub fn from_rtt(rtt: Option<std::time::Duration>) -> Quality {
        match rtt.map(|r| r.as_millis()) {
            None => Quality::Unknown,
            Some(ms) if ms < 150 => Quality::Good,
            Some(ms) if ms < 400 => Quality::Fair,
            Some(_) => Quality::Poor,
        }
    }
}

impl EncoderStatus {
    /// Megabits with one decimal: small bitrate wobbles do not change the text.
    pub fn label(&self) -> String {
        let tenths = (self.kbps + 50) / 100;
        let (w, h) = self.size;
        format!(
            "{} {w}x{h} {}.{} Mbit/s",
            self.name,
            tenths / 10,
            tenths % 10
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(HdmiIn::signal(1920, 1080, 59.94).label(), "1920x1080@59.94");
        assert_eq!(HdmiIn::signal(1280, 720, 30.0).label(), "1280x720@30");
        assert_eq!(HdmiIn::NoSignal.label(), "no signal");
        let enc = EncoderStatus {
            name: "openh264".into(),
            kbps: 2470,
            fps: 30,
            size: (960, 540),
        };
        assert_eq!(enc.label(), "openh264 960x540 2.5 Mbit/s");
    }

    #[test]
    fn what_only_the_screen_shows_is_not_in_the_models_debug() {
        let m = StatusModel {
            join_link: OnScreenOnly::new("http://h/r/x#k=AAAAAAAAAAAAAAAAAAAAAA".into()),
            claim_code: Some(OnScreenOnly::new("1234-5678".into())),
            ..Default::default()
        };
        let debug = format!("{m:?}");
        assert!(
            !debug.contains("AAAAAAAA") && !debug.contains("1234"),
            "{debug}"
        );
        assert_ne!(
            m,
            StatusModel::default(),
            "and it still counts for a redraw"
        );
    }

    #[test]
    fn equality_drives_redraw() {
        let a = StatusModel {
            room: "blue".into(),
            ..Default::default()
        };
        let mut b = a.clone();
        assert_eq!(a, b);
        b.hdmi_in = HdmiIn::NoSignal;
        assert_ne!(a, b);
    }
}
