//! The box's settings: a TOML file, defaults for every key, parsed once into typed values
//! (`values`) with an error that names the field at fault. Command-line flags override the
//! file. Every key is documented with its default in docs/configuration.md. Nothing here
//! depends on the rest of the box: the stages depend on the config.
//!
//! Saving is atomic: a power cut at any moment leaves either the old file or the new one, never
//! a mix (temp file in the same directory, fsync, rename over, fsync the directory).

pub mod limits;
mod values;

pub use values::*;

use roombox_protocol::{RoomName, MAX_NAME_CHARS};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Mode of a newly created config file: it holds no secret (the admin password hash has its
/// own 0600 file), and the operator may read it.
pub const CONFIG_MODE: u32 = 0o644;
/// Mode of a newly created file that holds a secret.
pub const SECRET_MODE: u32 = 0o600;

/// What `save` writes above the keys; the shipped, commented example is replaced on first save.
const SAVED_HEADER: &str = "# roombox settings, written by the box. Every key and its default: \
docs/configuration.md\n\n";

/// The settings as text: what the config file, the command line and the settings page write.
/// [`SettingsText::parse`] turns it into [`Settings`], once, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SettingsText {
    pub signal_url: String,
    pub room: String,
    pub name: String,
    pub video: String,
    pub audio_in: String,
    pub audio_out: String,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub encoder: String,
    pub decoder: String,
    pub min_kbps: u32,
    pub max_kbps: u32,
    pub degradation: String,
    pub echo_cancellation: bool,
    pub noise_suppression: bool,
    pub auto_gain: bool,
    pub high_pass: bool,
    pub mute: bool,
    pub ice_loopback: bool,
    pub web_listen: String,
}

impl Default for SettingsText {
    fn default() -> Self {
        SettingsText {
            signal_url: "http://127.0.0.1:8080".into(),
            room: "demo".into(),
            name: "Room box".into(),
            video: "test".into(),
            audio_in: "test".into(),
            audio_out: "none".into(),
            width: 1280,
            height: 720,
            fps: 30,
            encoder: "auto".into(),
            decoder: "auto".into(),
            min_kbps: 300,
            max_kbps: 2500,
            degradation: "balanced".into(),
            echo_cancellation: true,
            noise_suppression: true,
            auto_gain: true,
            high_pass: true,
            mute: false,
            ice_loopback: false,
            web_listen: "0.0.0.0:80".into(),
        }
    }
}

/// The box's settings, parsed and checked: what every part of the box works from. Made by
/// [`SettingsText::parse`] (or [`Settings::load`]); [`Settings::text`] gives the text back.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The signaling server.
    pub signal_url: SignalUrl,
    pub room: RoomName,
    /// How the box appears to people in the room (trimmed).
    pub name: String,
    pub video: VideoInput,
    pub audio_in: AudioInput,
    pub audio_out: AudioOutput,
    /// Even, within [`limits::WIDTH`] and [`limits::HEIGHT`].
    pub width: u32,
    pub height: u32,
    /// Within [`limits::FPS`].
    pub fps: u32,
    pub encoder: EncoderChoice,
    /// The decoder of the video people send, for the room's display.
    pub decoder: DecoderChoice,
    /// Bounds of the video bitrate; the encoder follows the slowest viewer between them.
    pub min_kbps: u32,
    pub max_kbps: u32,
    /// What gives when the bitrate is too low for the picture: its size or its frame rate.
    pub degradation: Degradation,
    /// What processes the room microphone (an ALSA input; the test tone is sent as made).
    pub processing: AudioProcessing,
    /// The microphone sends silence; the screen and the page say so.
    pub mute: bool,
    /// Offer loopback candidates too (for tests on one machine).
    pub ice_loopback: bool,
    /// Where the settings page listens; read at start.
    pub web_listen: Listen,
}

impl Default for Settings {
    fn default() -> Self {
        SettingsText::default()
            .parse()
            .expect("the defaults are valid settings")
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

impl SettingsText {
    /// Reads a TOML file; missing keys take their defaults. Nothing is checked but the syntax
    /// and the key names: command-line flags may still override a value before [`parse`].
    ///
    /// [`parse`]: SettingsText::parse
    pub fn read(path: &Path) -> Result<SettingsText, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad("config", format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| {
            let field = e.message().split('`').nth(1).unwrap_or("config").to_owned();
            bad(&field, format!("{} ({})", e.message(), path.display()))
        })
    }

    /// Every value parsed and checked against its limits; the first that fails is named.
    pub fn parse(&self) -> Result<Settings, ConfigError> {
        let signal_url = self.signal_url.parse().map_err(|m| bad("signal_url", m))?;
        let room = RoomName::parse(&self.room)
            .ok_or_else(|| bad("room", "must be 1 to 64 of A-Z a-z 0-9 _ -"))?;
        let name = self.name.trim();
        let name_chars = name.chars().count();
        if name_chars == 0 || name_chars > MAX_NAME_CHARS {
            return Err(bad(
                "name",
                format!("must be 1 to {MAX_NAME_CHARS} characters"),
            ));
        }
        let even_in = |field: &str, v: u32, range: &std::ops::RangeInclusive<u32>| {
            if v.is_multiple_of(2) && range.contains(&v) {
                Ok(v)
            } else {
                Err(bad(
                    field,
                    format!(
                        "must be an even number of pixels from {} to {}",
                        range.start(),
                        range.end()
                    ),
                ))
            }
        };
        let width = even_in("width", self.width, &limits::WIDTH)?;
        let height = even_in("height", self.height, &limits::HEIGHT)?;
        let video = self
            .video
            .parse()
            .map_err(|e: SpecError| bad("video", e.to_string()))?;
        let audio_in = self
            .audio_in
            .parse()
            .map_err(|e: SpecError| bad("audio_in", e.to_string()))?;
        let audio_out = self
            .audio_out
            .parse()
            .map_err(|e: SpecError| bad("audio_out", e.to_string()))?;
        let web_listen = self.web_listen.parse().map_err(|m| bad("web_listen", m))?;
        if !limits::fps_ok(self.fps) {
            return Err(bad(
                "fps",
                format!("must be {} to {}", limits::FPS.start(), limits::FPS.end()),
            ));
        }
        let encoder = self.encoder.parse().map_err(|m| bad("encoder", m))?;
        let decoder = self.decoder.parse().map_err(|m| bad("decoder", m))?;
        if !(50..=50_000).contains(&self.min_kbps) {
            return Err(bad("min_kbps", "must be 50 to 50000"));
        }
        if !(self.min_kbps..=50_000).contains(&self.max_kbps) {
            return Err(bad(
                "max_kbps",
                "must be at least min_kbps and at most 50000",
            ));
        }
        let degradation = self
            .degradation
            .parse()
            .map_err(|m| bad("degradation", m))?;
        Ok(Settings {
            signal_url,
            room,
            name: name.to_owned(),
            video,
            audio_in,
            audio_out,
            width,
            height,
            fps: self.fps,
            encoder,
            decoder,
            min_kbps: self.min_kbps,
            max_kbps: self.max_kbps,
            degradation,
            processing: AudioProcessing {
                echo_cancellation: self.echo_cancellation,
                noise_suppression: self.noise_suppression,
                auto_gain: self.auto_gain,
                high_pass: self.high_pass,
            },
            mute: self.mute,
            ice_loopback: self.ice_loopback,
            web_listen,
        })
    }
}

impl Settings {
    /// Reads and parses a TOML file; missing keys take their defaults.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        SettingsText::read(path)?.parse()
    }

    /// The settings as text again: each value prints as it was written.
    pub fn text(&self) -> SettingsText {
        SettingsText {
            signal_url: self.signal_url.to_string(),
            room: self.room.to_string(),
            name: self.name.clone(),
            video: self.video.to_string(),
            audio_in: self.audio_in.to_string(),
            audio_out: self.audio_out.to_string(),
            width: self.width,
            height: self.height,
            fps: self.fps,
            encoder: self.encoder.to_string(),
            decoder: self.decoder.to_string(),
            min_kbps: self.min_kbps,
            max_kbps: self.max_kbps,
            degradation: self.degradation.to_string(),
            echo_cancellation: self.processing.echo_cancellation,
            noise_suppression: self.processing.noise_suppression,
            auto_gain: self.processing.auto_gain,
            high_pass: self.processing.high_pass,
            mute: self.mute,
            ice_loopback: self.ice_loopback,
            web_listen: self.web_listen.to_string(),
        }
    }

    /// Replaces the file at `path` atomically. An existing file keeps its mode (an operator's
    /// 0600 or 0640 stays so); a new one gets [`CONFIG_MODE`]. On any error the old file is
    /// untouched.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let body = toml::to_string_pretty(&self.text())
            .map_err(|e| bad("config", format!("cannot serialize the settings: {e}")))?;
        write_atomically(
            path,
            format!("{SAVED_HEADER}{body}").as_bytes(),
            CONFIG_MODE,
        )
    }

    /// The bitrate bounds in bit/s.
    pub fn bitrate_bounds(&self) -> (u32, u32) {
        (self.min_kbps * 1000, self.max_kbps * 1000)
    }
}

/// Replaces `path` with `contents` so that a crash or power cut at any point leaves either the
/// old file or the new one: a temp file beside it (same filesystem, so rename is atomic) is
/// written and fsynced, renamed over `path`, then the directory is fsynced so the rename itself
/// is durable. The mode of an existing file is kept; a new file gets `new_mode`.
/// Errors are reported against the field `config` and name the path.
pub fn write_atomically(path: &Path, contents: &[u8], new_mode: u32) -> Result<(), ConfigError> {
    let fail = |what: &str, e: std::io::Error| bad("config", format!("{what}: {e}"));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| bad("config", format!("{} is not a file path", path.display())))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(bad(
            "config",
            format!(
                "cannot save {}: the directory {} does not exist",
                path.display(),
                dir.display()
            ),
        ));
    }
    let mode = match std::fs::metadata(path) {
        Ok(m) => m.permissions().mode() & 0o7777,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => new_mode,
        Err(e) => return Err(fail(&format!("cannot inspect {}", path.display()), e)),
    };
    // Unique per process and call, so two saves at once never share a temp file. A crash leaves
    // a dot-file that is never read; the next save sweeps those up.
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let prefix = format!(".{name}.tmp-");
    let tmp = dir.join(format!(
        "{prefix}{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    remove_leftovers(dir, &prefix);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true) // never follow or reuse someone else's file
            .mode(mode)
            .open(&tmp)
            .map_err(|e| fail(&format!("cannot create {}", tmp.display()), e))?;
        // The umask may have narrowed the mode given to open; set it exactly.
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| fail(&format!("cannot set the mode of {}", tmp.display()), e))?;
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .map_err(|e| fail(&format!("cannot write {}", tmp.display()), e))?;
        std::fs::rename(&tmp, path).map_err(|e| {
            fail(
                &format!("cannot replace {} with {}", path.display(), tmp.display()),
                e,
            )
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| fail(&format!("cannot sync the directory {}", dir.display()), e))
}

/// Removes temp files that an earlier save left behind when it was cut off. Best effort: a
/// leftover is harmless, only untidy.
fn remove_leftovers(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(prefix))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let s = Settings::default();
        assert_eq!(s.text(), SettingsText::default());
        assert_eq!(s.text().parse().unwrap(), s);
    }

    #[test]
    fn errors_name_the_field() {
        let s = SettingsText {
            room: "a b".into(),
            ..SettingsText::default()
        };
        assert_eq!(s.parse().unwrap_err().field, "room");
        let s = SettingsText {
            width: 1281,
            ..SettingsText::default()
        };
        assert_eq!(s.parse().unwrap_err().field, "width");
        let s = SettingsText {
            min_kbps: 900,
            max_kbps: 800,
            ..SettingsText::default()
        };
        assert_eq!(s.parse().unwrap_err().field, "max_kbps");
        let s = SettingsText {
            signal_url: "localhost".into(),
            ..SettingsText::default()
        };
        assert_eq!(s.parse().unwrap_err().field, "signal_url");
        let s = SettingsText {
            encoder: "x264".into(),
            ..SettingsText::default()
        };
        assert_eq!(s.parse().unwrap_err().field, "encoder");
        let s = SettingsText {
            decoder: "v4l2:video10".into(),
            ..SettingsText::default()
        };
        assert_eq!(s.parse().unwrap_err().field, "decoder");
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

    /// A fresh directory per test, removed on drop.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir =
                std::env::temp_dir().join(format!("roombox-config-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = TempDir::new("roundtrip");
        let path = dir.0.join("roombox.toml");
        let s = SettingsText {
            signal_url: "wss://signal.example/".into(),
            room: "board-room".into(),
            name: "Board \"room\" box".into(),
            video: "v4l2:/dev/video0".into(),
            audio_in: "alsa:hw:1,0".into(),
            audio_out: "alsa:default".into(),
            width: 1920,
            height: 1080,
            fps: 25,
            encoder: "v4l2:/dev/video11".into(),
            decoder: "v4l2:/dev/video10".into(),
            min_kbps: 400,
            max_kbps: 4000,
            degradation: "maintain-resolution".into(),
            echo_cancellation: false,
            noise_suppression: true,
            auto_gain: false,
            high_pass: true,
            mute: true,
            ice_loopback: true,
            web_listen: "127.0.0.1:8081".into(),
        }
        .parse()
        .unwrap();
        s.save(&path).unwrap();
        assert_eq!(Settings::load(&path).unwrap(), s);
        assert_eq!(mode_of(&path), CONFIG_MODE);
        // Saving again replaces the file and leaves no temp file behind.
        let t = Settings {
            room: RoomName::parse("other").unwrap(),
            ..s
        };
        t.save(&path).unwrap();
        assert_eq!(Settings::load(&path).unwrap(), t);
        assert_eq!(entries(&dir.0), ["roombox.toml"]);
    }

    #[test]
    fn save_keeps_the_mode_of_an_existing_file() {
        let dir = TempDir::new("mode");
        let path = dir.0.join("roombox.toml");
        std::fs::write(&path, "room = \"a\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        Settings::default().save(&path).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        let secret = dir.0.join("secret");
        write_atomically(&secret, b"x", SECRET_MODE).unwrap();
        assert_eq!(mode_of(&secret), 0o600);
    }

    #[test]
    fn a_failed_validation_leaves_the_old_file_untouched() {
        let dir = TempDir::new("invalid");
        let path = dir.0.join("roombox.toml");
        let old = "# hand-written\nroom = \"kitchen\"\n";
        std::fs::write(&path, old).unwrap();
        let bad = SettingsText {
            fps: 0,
            ..SettingsText::default()
        };
        assert_eq!(bad.parse().unwrap_err().field, "fps");
        // A save that cannot write (its directory is gone) leaves nothing either.
        let gone = dir.0.join("gone").join("roombox.toml");
        assert_eq!(Settings::default().save(&gone).unwrap_err().field, "config");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), old);
        assert_eq!(entries(&dir.0), ["roombox.toml"]);
    }

    #[test]
    fn a_crash_mid_write_never_leaves_a_broken_config() {
        let dir = TempDir::new("crash");
        let path = dir.0.join("roombox.toml");
        let good = Settings {
            room: RoomName::parse("before").unwrap(),
            ..Settings::default()
        };
        good.save(&path).unwrap();
        // A save cut off after writing half its temp file: the config itself is still whole.
        let torn = dir.0.join(".roombox.toml.tmp-99999-0");
        std::fs::write(&torn, "room = \"aft").unwrap();
        assert_eq!(Settings::load(&path).unwrap(), good);
        // The next save works despite the leftover and sweeps it up.
        let next = Settings {
            room: RoomName::parse("after").unwrap(),
            ..Settings::default()
        };
        next.save(&path).unwrap();
        assert_eq!(Settings::load(&path).unwrap(), next);
        assert_eq!(entries(&dir.0), ["roombox.toml"]);
    }

    #[test]
    fn a_missing_directory_is_named() {
        let dir = TempDir::new("missing");
        let path = dir.0.join("no-such-dir").join("roombox.toml");
        let e = Settings::default().save(&path).unwrap_err();
        assert_eq!(e.field, "config");
        assert!(
            e.message.contains("does not exist") && e.message.contains("no-such-dir"),
            "{e}"
        );
    }

    /// Every key of the shipped example is there, commented out with its default, and every
    /// key is documented; so neither can drift from the code.
    #[test]
    fn the_shipped_example_and_the_docs_cover_every_key() {
        let example = include_str!("../../systemd/roombox.toml");
        let docs = include_str!("../../docs/configuration.md");
        let parsed: SettingsText = toml::from_str(example).expect("the example parses");
        assert_eq!(parsed, SettingsText::default());
        let defaults = toml::to_string(&SettingsText::default()).unwrap();
        for line in defaults.lines() {
            let key = line.split(" = ").next().unwrap();
            assert!(
                example.lines().any(|l| l == format!("# {line}")),
                "the example lacks `# {line}`"
            );
            let documented = format!("| `{key}` | `{}` |", &line[key.len() + 3..]);
            assert!(docs.contains(&documented), "docs lack the row {documented}");
        }
    }
}
