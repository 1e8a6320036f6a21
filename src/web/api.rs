//! The status as the page shows it: built from the `StatusModel` feed the HDMI-out screen uses,
//! plus the CPU temperature. Served as HTML (`/status`) and as JSON (`/api/status`).

use crate::display::StatusModel;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
pub struct StatusView {
    pub signaling: String,
    /// The TURN relay: "none configured", "allocating", "ready (udp, tls)", "failed: why".
    pub relay: String,
    pub room: String,
    pub name: String,
    pub participants: Vec<ParticipantView>,
    pub video_device: String,
    pub hdmi_in: String,
    /// "idle (no viewer)" or the encoder's name.
    pub encoder: String,
    pub kbps: Option<u32>,
    pub fps: Option<u32>,
    /// The picture as sent, e.g. "960x540" (smaller than the input's on a slow link).
    pub sent_size: Option<String>,
    pub cpu_celsius: Option<f64>,
    pub media_error: Option<String>,
    /// The room microphone: "off", "on", "speaking", "muted".
    pub mic: String,
    /// Its processing: "high-pass, echo cancellation, ..." or "none".
    pub mic_processing: String,
    /// Whose video the room's display shows.
    pub on_screen: Vec<OnScreenView>,
    /// The room's safety code as the box sees it ("0412 9310 5577 0061 8234"): the same on
    /// every member's page when nobody is in the middle.
    pub safety_code: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OnScreenView {
    pub name: String,
    /// "camera" or "screen".
    pub kind: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ParticipantView {
    pub name: String,
    pub state: String,
    /// good, fair, poor, or empty while unknown.
    pub quality: String,
}

impl StatusView {
    pub fn new(m: &StatusModel, cpu_celsius: Option<f64>) -> StatusView {
        StatusView {
            signaling: m.signaling.label().into(),
            relay: m.relay.label(),
            room: m.room.clone(),
            name: m.box_name.clone(),
            participants: m
                .participants
                .iter()
                .map(|p| ParticipantView {
                    name: p.name.clone(),
                    state: p.state.label().into(),
                    quality: p.quality.label().into(),
                })
                .collect(),
            video_device: m.video_device.clone(),
            hdmi_in: m.hdmi_in.label(),
            encoder: m
                .encoder
                .as_ref()
                .map(|e| e.name.clone())
                .unwrap_or_else(|| "idle (no viewer)".into()),
            kbps: m.encoder.as_ref().map(|e| e.kbps),
            fps: m.encoder.as_ref().map(|e| e.fps),
            sent_size: m
                .encoder
                .as_ref()
                .map(|e| format!("{}x{}", e.size.0, e.size.1)),
            cpu_celsius,
            media_error: m.media_error.clone(),
            mic: m.mic.label().into(),
            mic_processing: m.mic_processing.clone(),
            on_screen: m
                .on_screen
                .iter()
                .map(|(name, kind)| OnScreenView {
                    name: name.clone(),
                    kind: kind.label().into(),
                })
                .collect(),
            safety_code: m.safety_code.clone(),
        }
    }
}

/// The CPU's temperature from the kernel's thermal zones: the zone whose type names the CPU
/// (`cpu-thermal` on a Pi, `x86_pkg_temp` on a PC), else the first readable one. `None` where
/// there is none (a VM, a container).
pub fn cpu_celsius(thermal: &Path) -> Option<f64> {
    let mut zones: Vec<_> = std::fs::read_dir(thermal)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("thermal_zone"))
        })
        .collect();
    zones.sort();
    let read = |p: &Path| -> Option<f64> {
        let milli: i64 = std::fs::read_to_string(p.join("temp"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Some(milli as f64 / 1000.0)
    };
    let is_cpu = |p: &Path| {
        std::fs::read_to_string(p.join("type"))
            .is_ok_and(|t| t.contains("cpu") || t.contains("pkg"))
    };
    zones
        .iter()
        .filter(|z| is_cpu(z))
        .find_map(|z| read(z))
        .or_else(|| zones.iter().find_map(|z| read(z)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::display::RelayState;

    #[test]
    fn the_relay_state_is_on_the_page_and_in_the_json() {
        let mut m = StatusModel::default();
        let view = StatusView::new(&m, None);
        assert_eq!(view.relay, "none configured");
        m.relay = RelayState::Failed(
            "turn:turn.example:3478?transport=udp refused the allocation: 401 Unauthorized".into(),
        );
        let view = StatusView::new(&m, None);
        let html = crate::web::pages::status(&view);
        assert!(html.contains("<dt>Relay (TURN)</dt><dd>failed: turn:turn.example:3478?transport=udp refused the allocation: 401 Unauthorized</dd>"), "{html}");
        m.relay = RelayState::Ready("tls, udp".into());
        let json = serde_json::to_value(StatusView::new(&m, None)).unwrap();
        assert_eq!(json["relay"], "ready (tls, udp)");
    }

    #[test]
    fn reads_the_cpu_zone_in_degrees() {
        let dir = std::env::temp_dir().join(format!("roombox-thermal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (zone, kind, temp) in [
            ("thermal_zone0", "acpitz", "27800"),
            ("thermal_zone1", "cpu-thermal", "48312"),
        ] {
            std::fs::create_dir_all(dir.join(zone)).unwrap();
            std::fs::write(dir.join(zone).join("type"), format!("{kind}\n")).unwrap();
            std::fs::write(dir.join(zone).join("temp"), format!("{temp}\n")).unwrap();
        }
        assert_eq!(cpu_celsius(&dir), Some(48.312));
        std::fs::remove_dir_all(dir.join("thermal_zone1")).unwrap();
        assert_eq!(cpu_celsius(&dir), Some(27.8));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(cpu_celsius(&dir), None);
    }
}
