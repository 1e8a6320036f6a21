//! Who may use the box: the room secret its join link carries (kept in the state directory)
//! and, until an admin password is set, the claim code of its settings page.
//!
//! The running box holds both in one [`Access`] on a `watch` channel: the settings page changes
//! it (a new room secret, a claim code made or used up), the pipeline hands the room secret to
//! signaling (a new one makes the box leave and join again, as a new room does) and shows the
//! join link and the claim code on the HDMI-out screen. Neither goes into a log, the status API
//! or an error message: `RoomSecret` and `ClaimCode` print redacted, and errors name the file
//! and the problem, never the contents.

use crate::config::{write_atomically, SignalUrl, SECRET_MODE};
use crate::web::ClaimCode;
use roombox_protocol::RoomName;
use roombox_seal::{RoomSecret, SecretError};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The room secret's file in the state directory (`--state-dir`).
pub const ROOM_SECRET_FILE: &str = "room-secret";

/// The secrets of the running box, as the settings page last set them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// The room's secret: whoever has the join link (which carries it) is a member.
    pub room_secret: RoomSecret,
    /// While no admin password is set: the one-time code the first-run form asks for.
    pub claim_code: Option<ClaimCode>,
}

impl Access {
    pub fn new(room_secret: RoomSecret) -> Access {
        Access {
            room_secret,
            claim_code: None,
        }
    }
}

/// The link people open to join the box's room: `<server>/r/<room>#k=<secret>`. The secret is
/// in the fragment, which browsers never send to the server (docs/protocol.md, "Room secret").
/// For the screen and the admin's page only, never for a log.
pub fn join_link(signal: &SignalUrl, room: &RoomName, secret: &RoomSecret) -> String {
    format!("{}/r/{room}#k={}", signal.page_origin(), secret.expose())
}

/// Why the room secret cannot be used. Names the file and the problem, never the contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RoomSecretError {
    #[error(
        "{}: {problem} (the file holds the room secret; fix it, or delete it to make a new \
         one: old join links then stop working)",
        path.display()
    )]
    Malformed { path: PathBuf, problem: SecretError },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot write the room secret: {message} (--state-dir names a directory the box can write)"
    )]
    Write { message: String },
}

/// `<state_dir>/room-secret`: the secret's 22 base64url characters and a newline, mode 0600,
/// replaced atomically (as the admin password's hash is).
pub struct RoomSecretFile {
    path: PathBuf,
}

impl RoomSecretFile {
    pub fn new(state_dir: &Path) -> RoomSecretFile {
        RoomSecretFile {
            path: state_dir.join(ROOM_SECRET_FILE),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The room secret at start: the file's; a new one, written, when there is no file (the
    /// state directory is made, 0700, if it is missing). A file that does not hold a secret is
    /// an error and is left as it is: overwriting it would silently break every join link
    /// handed out.
    pub fn load_or_create(&self) -> Result<RoomSecret, RoomSecretError> {
        if let Some(secret) = self.read()? {
            self.tighten_mode();
            return Ok(secret);
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // systemd's StateDirectory= makes it for the service; by hand, the box does.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| RoomSecretError::Write {
                    message: format!("cannot create {}: {e}", dir.display()),
                })?;
        }
        let secret = RoomSecret::generate();
        self.write(&secret)?;
        tracing::info!(
            "made a new room secret in {} (the join link is on the settings page and the screen)",
            self.path.display()
        );
        Ok(secret)
    }

    /// The secret in the file; `None` when there is no file.
    pub fn read(&self) -> Result<Option<RoomSecret>, RoomSecretError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(RoomSecretError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        RoomSecret::parse(&text)
            .map(Some)
            .map_err(|problem| RoomSecretError::Malformed {
                path: self.path.clone(),
                problem,
            })
    }

    /// Writes `secret` over the old one (0600 whatever mode an old file had; atomic).
    pub fn write(&self, secret: &RoomSecret) -> Result<(), RoomSecretError> {
        let failed = |message: String| RoomSecretError::Write { message };
        if self.path.exists() {
            // write_atomically keeps an existing file's mode: make sure that mode is 0600.
            std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(SECRET_MODE))
                .map_err(|e| {
                    failed(format!(
                        "cannot set the mode of {}: {e}",
                        self.path.display()
                    ))
                })?;
        }
        let text = format!("{}\n", secret.expose());
        write_atomically(&self.path, text.as_bytes(), SECRET_MODE).map_err(|e| failed(e.message))
    }

    /// A new secret in place of the old: every join link made with the old one stops working.
    pub fn renew(&self) -> Result<RoomSecret, RoomSecretError> {
        let secret = RoomSecret::generate();
        self.write(&secret)?;
        Ok(secret)
    }

    /// A file others can read (copied in by hand) is made 0600, as the box would have written it.
    fn tighten_mode(&self) {
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            return;
        }
        let made =
            std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(SECRET_MODE));
        match made {
            Ok(()) => tracing::warn!(
                "{} was readable by others (mode {mode:o}): made it 0600",
                self.path.display()
            ),
            Err(e) => tracing::warn!(
                "{} is readable by others (mode {mode:o}) and cannot be made 0600: {e}",
                self.path.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("roombox-access-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_missing_secret_is_made_once_and_kept() {
        let dir = temp_dir("made");
        let file = RoomSecretFile::new(&dir);
        let made = file.load_or_create().unwrap();
        let text = std::fs::read_to_string(dir.join(ROOM_SECRET_FILE)).unwrap();
        assert_eq!(text, format!("{}\n", made.expose()));
        assert_eq!(text.len(), 23, "22 base64url characters and a newline");
        assert_eq!(mode(file.path()), 0o600);
        assert_eq!(
            file.load_or_create().unwrap(),
            made,
            "read back, not made again"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_secret_written_by_someone_else_is_used_and_made_0600() {
        let dir = temp_dir("given");
        let known = RoomSecret::from_bytes([7; 16]);
        let path = dir.join(ROOM_SECRET_FILE);
        // As a test or an installer writes it: no newline needed, mode 0644.
        std::fs::write(&path, known.expose()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(RoomSecretFile::new(&dir).load_or_create().unwrap(), known);
        assert_eq!(mode(&path), 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_malformed_secret_stops_the_box_naming_the_file_and_is_kept() {
        let dir = temp_dir("bad");
        let path = dir.join(ROOM_SECRET_FILE);
        for (bad, problem) in [
            (
                "too-short-Secret\n",
                "22 base64url characters, this one has 16",
            ),
            ("!!!!!!!!!!!!!!!!!!!!!!\n", "A-Z a-z 0-9 - _"),
            ("", "this one has 0"),
        ] {
            std::fs::write(&path, bad).unwrap();
            let e = RoomSecretFile::new(&dir).load_or_create().unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains(problem), "{msg}");
            if !bad.is_empty() {
                assert!(
                    !msg.contains(bad.trim()),
                    "the contents are not echoed: {msg}"
                );
            }
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                bad,
                "not overwritten"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn renewing_replaces_the_secret() {
        let dir = temp_dir("renew");
        let file = RoomSecretFile::new(&dir);
        let old = file.load_or_create().unwrap();
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        let new = file.renew().unwrap();
        assert_ne!(new, old);
        assert_eq!(file.read().unwrap(), Some(new));
        assert_eq!(mode(file.path()), 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_state_directory_is_made_and_an_impossible_one_named() {
        let dir = temp_dir("nodir");
        let inner = dir.join("state").join("roombox");
        RoomSecretFile::new(&inner).load_or_create().unwrap();
        assert_eq!(mode(&inner), 0o700);
        // Under a file, no directory can be made (root or not).
        std::fs::write(dir.join("a-file"), "").unwrap();
        let e = RoomSecretFile::new(&dir.join("a-file").join("state"))
            .load_or_create()
            .unwrap_err();
        assert!(e.to_string().contains("a-file/state/room-secret"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_join_link_carries_the_secret_in_its_fragment() {
        let secret = RoomSecret::from_bytes([0; 16]);
        let room = RoomName::parse("board-room").unwrap();
        let url: SignalUrl = "wss://rooms.example.org/ws".parse().unwrap();
        assert_eq!(
            join_link(&url, &room, &secret),
            "https://rooms.example.org/r/board-room#k=AAAAAAAAAAAAAAAAAAAAAA"
        );
        let url: SignalUrl = "http://127.0.0.1:8080".parse().unwrap();
        assert_eq!(
            join_link(&url, &room, &secret),
            "http://127.0.0.1:8080/r/board-room#k=AAAAAAAAAAAAAAAAAAAAAA"
        );
    }
}
