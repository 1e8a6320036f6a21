//! Device discovery: the video inputs and ALSA devices this machine has. One inventory feeds
//! `roombox devices` (for installers) and the settings page's device choices, so both always
//! agree on what is there.

use serde::Serialize;

/// Everything an installer chooses from.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Inventory {
    pub video: Vec<VideoDevice>,
    pub audio_capture: Vec<AudioDevice>,
    pub audio_playback: Vec<AudioDevice>,
}

/// One V4L2 capture node.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VideoDevice {
    /// The device node, e.g. "/dev/video0"; `v4l2:` + this is the `video` setting.
    pub path: String,
    pub driver: String,
    pub card: String,
    pub bus_info: String,
    /// The node's inputs (an HDMI bridge has one, vivid several).
    pub inputs: Vec<VideoInputInfo>,
    /// Pixel formats as FourCC strings, e.g. "YUYV", "MJPG".
    pub formats: Vec<String>,
}

/// One input of a capture node.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VideoInputInfo {
    pub index: u32,
    pub name: String,
    /// "HDMI" (has DV timings), "camera" or "tuner".
    pub kind: String,
    /// Current DV timings as "1920x1080p60", when the input has them and a signal is locked.
    pub dv_timings: Option<String>,
    /// "ok", "no signal", "no sync", ... as the driver reports it.
    pub signal: String,
}

/// One ALSA PCM device.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AudioDevice {
    /// The ALSA name to open, e.g. "plughw:CARD=Loopback,DEV=0"; `alsa:` + this is the setting.
    pub name: String,
    /// Card and device names for people, e.g. "Loopback: Loopback PCM".
    pub description: String,
}

/// The inventory as text for people, one device a line, its details indented.
pub fn report(inv: &Inventory) -> String {
    use std::fmt::Write;
    let mut out = String::from("Video inputs:\n");
    if inv.video.is_empty() {
        out.push_str("  (none)\n");
    }
    for v in &inv.video {
        let _ = writeln!(
            out,
            "  v4l2:{}  {} ({}, {})",
            v.path, v.card, v.driver, v.bus_info
        );
        for i in &v.inputs {
            let timings = i.dv_timings.as_deref().unwrap_or("-");
            let _ = writeln!(
                out,
                "    input {} {:?}: {}, timings {}, signal {}",
                i.index, i.name, i.kind, timings, i.signal
            );
        }
        if !v.formats.is_empty() {
            let _ = writeln!(out, "    formats: {}", v.formats.join(" "));
        }
    }
    for (title, list) in [
        ("Audio capture", &inv.audio_capture),
        ("Audio playback", &inv.audio_playback),
    ] {
        let _ = writeln!(out, "{title}:");
        if list.is_empty() {
            out.push_str("  (none)\n");
        }
        for a in list {
            let _ = writeln!(out, "  alsa:{}  {}", a.name, a.description);
        }
    }
    out
}

/// Looks at every /dev/video* node and every ALSA card. Devices that cannot be opened are
/// skipped (the box may not have permission on nodes it does not use).
pub fn discover() -> Inventory {
    let (audio_capture, audio_playback) = alsa_devices();
    Inventory {
        video: video_devices(),
        audio_capture,
        audio_playback,
    }
}

fn video_devices() -> Vec<VideoDevice> {
    crate::capture::v4l2::video_nodes(std::path::Path::new("/dev"))
        .iter()
        .filter_map(|path| video_device(path))
        .collect()
}

fn video_device(path: &std::path::Path) -> Option<VideoDevice> {
    use crate::capture::v4l2;
    use v4l2r::ioctl::{self, Capabilities};
    let file = std::fs::File::open(path).ok()?;
    let cap: ioctl::Capability = ioctl::querycap(&file).ok()?;
    let caps = cap.device_caps();
    if !caps.intersects(Capabilities::VIDEO_CAPTURE | Capabilities::VIDEO_CAPTURE_MPLANE)
        || caps.intersects(Capabilities::VIDEO_M2M | Capabilities::VIDEO_M2M_MPLANE)
    {
        return None; // an output, metadata or codec node, not a capture input
    }
    let path = path.display().to_string();
    let inputs = v4l2::inventory::inputs(&file, &path)
        .into_iter()
        .map(|i| VideoInputInfo {
            index: i.index,
            name: i.name,
            kind: i.kind.to_owned(),
            dv_timings: i.dv_timings,
            signal: i.signal,
        })
        .collect();
    Some(VideoDevice {
        formats: v4l2::inventory::formats(&file),
        path,
        driver: cap.driver,
        card: cap.card,
        bus_info: cap.bus_info,
        inputs,
    })
}

/// The PCM devices of every card, split by direction, named the way `plughw:` opens them
/// (format, rate and channel conversion included).
fn alsa_devices() -> (Vec<AudioDevice>, Vec<AudioDevice>) {
    let (mut capture, mut playback) = (Vec::new(), Vec::new());
    for card in alsa::card::Iter::new().flatten() {
        let (Ok(card_id), Ok(card_name)) = (card_id(&card), card.get_name()) else {
            continue;
        };
        let Ok(ctl) = alsa::Ctl::from_card(&card, false) else {
            continue;
        };
        // Cards number their PCM devices from 0 with few gaps; 32 covers every real card.
        for d in 0..32u32 {
            for (dir, list) in [
                (alsa::Direction::Capture, &mut capture),
                (alsa::Direction::Playback, &mut playback),
            ] {
                let Ok(info) = ctl.pcm_info(d, 0, dir) else {
                    continue; // no such device, or none in this direction
                };
                let pcm_name = info.get_name().unwrap_or("").to_owned();
                list.push(AudioDevice {
                    name: format!("plughw:CARD={card_id},DEV={d}"),
                    description: format!("{card_name}: {pcm_name}"),
                });
            }
        }
    }
    (capture, playback)
}

/// The card's short id ("Loopback", "sndrpihifiberry"), stable across reboots unlike its index.
fn card_id(card: &alsa::Card) -> alsa::Result<String> {
    let ctl = alsa::Ctl::from_card(card, false)?;
    Ok(ctl.card_info()?.get_id()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_serializes_with_every_section() {
        let inv = Inventory {
            video: vec![VideoDevice {
                path: "/dev/video0".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let json = serde_json::to_value(&inv).expect("json");
        assert_eq!(json["video"][0]["path"], "/dev/video0");
        assert!(json["audio_capture"].is_array());
        assert!(json["audio_playback"].is_array());
    }

    #[test]
    fn discovery_on_a_machine_without_devices_is_empty_not_an_error() {
        // Build machines have no /dev/video* capture nodes and often no sound card: discovery
        // must still return (the real devices are listed in the VM tests under tests/vm).
        let inv = discover();
        for v in &inv.video {
            assert!(v.path.starts_with("/dev/video"), "{v:?}");
        }
        for a in inv.audio_capture.iter().chain(&inv.audio_playback) {
            assert!(a.name.starts_with("plughw:CARD="), "{a:?}");
        }
    }
}
