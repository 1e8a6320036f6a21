//! The box's settings: a TOML file, defaults for every key, and validation that names the
//! field at fault. Command-line flags override the file.

use roombox_protocol::{RoomName, MAX_NAME_CHARS};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The signaling server (http(s):// or ws(s)://).
    pub signal_url: String,
    pub room: String,
    /// How the box appears to people in the room.
    pub name: String,
    /// `test`, `y4m:PATH` or `v4l2:DEVICE`.
    pub video: String,
    /// `test`, `alsa:DEVICE` or `none`.
    pub audio_in: String,
    /// `alsa:DEVICE`, `wav:PATH` or `none`.
    pub audio_out: String,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Bounds of the video bitrate; the encoder follows the slowest viewer between them.
    pub min_kbps: u32,
    pub max_kbps: u32,
    /// Offer loopback candidates too (for tests on one machine).
    pub ice_loopback: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            signal_url: "http://127.0.0.1:8080".into(),
            room: "demo".into(),
            name: "Room box".into(),
            video: "test".into(),
            audio_in: "test".into(),
            audio_out: "none".into(),
            width: 1280,
            height: 720,
            fps: 30,
            min_kbps: 300,
            max_kbps: 2500,
            ice_loopback: false,
        }
    }
}

/// A setting that cannot be used, and why.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{field}: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

fn bad(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        message: message.into(),
    }
}

impl Settings {
    /// Reads a TOML file; missing keys take their defaults.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad("config", format!("cannot read {}: {e}", path.display())))?;
        let settings: Settings = toml::from_str(&text).map_err(|e| {
            let field = e.message().split('`').nth(1).unwrap_or("config").to_owned();
            bad(&field, format!("{} ({})", e.message(), path.display()))
        })?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        crate::signaling::websocket_url(&self.signal_url).map_err(|m| bad("signal_url", m))?;
        if RoomName::parse(&self.room).is_none() {
            return Err(bad("room", "must be 1 to 64 of A-Z a-z 0-9 _ -"));
        }
        let name_chars = self.name.trim().chars().count();
        if name_chars == 0 || name_chars > MAX_NAME_CHARS {
            return Err(bad(
                "name",
                format!("must be 1 to {MAX_NAME_CHARS} characters"),
            ));
        }
        if !(16..=4096).contains(&self.width) || self.width % 2 != 0 {
            return Err(bad(
                "width",
                "must be an even number of pixels from 16 to 4096",
            ));
        }
        if !(16..=2160).contains(&self.height) || self.height % 2 != 0 {
            return Err(bad(
                "height",
                "must be an even number of pixels from 16 to 2160",
            ));
        }
        if !(1..=60).contains(&self.fps) {
            return Err(bad("fps", "must be 1 to 60"));
        }
        if !(50..=50_000).contains(&self.min_kbps) {
            return Err(bad("min_kbps", "must be 50 to 50000"));
        }
        if !(self.min_kbps..=50_000).contains(&self.max_kbps) {
            return Err(bad(
                "max_kbps",
                "must be at least min_kbps and at most 50000",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Settings::default().validate().unwrap();
    }

    #[test]
    fn errors_name_the_field() {
        let s = Settings {
            room: "a b".into(),
            ..Settings::default()
        };
        assert_eq!(s.validate().unwrap_err().field, "room");
        let s = Settings {
            width: 1281,
            ..Settings::default()
        };
        assert_eq!(s.validate().unwrap_err().field, "width");
        let s = Settings {
            min_kbps: 900,
            max_kbps: 800,
            ..Settings::default()
        };
        assert_eq!(s.validate().unwrap_err().field, "max_kbps");
        let s = Settings {
            signal_url: "localhost".into(),
            ..Settings::default()
        };
        assert_eq!(s.validate().unwrap_err().field, "signal_url");
    }

    #[test]
    fn loads_a_partial_file_and_names_unknown_keys() {
        let dir = std::env::temp_dir().join(format!("roombox-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("roombox.toml");
        std::fs::write(&path, "room = \"board\"\nfps = 25\n").unwrap();
        let s = Settings::load(&path).unwrap();
        assert_eq!((s.room.as_str(), s.fps, s.width), ("board", 25, 1280));
        std::fs::write(&path, "rooom = \"x\"\n").unwrap();
        assert_eq!(Settings::load(&path).unwrap_err().field, "rooom");
        std::fs::write(&path, "fps = 500\n").unwrap();
        assert_eq!(Settings::load(&path).unwrap_err().field, "fps");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
