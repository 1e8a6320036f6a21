//! The room secret: what makes someone a member of a room (docs/protocol.md, version 2).
//!
//! It travels in a room link's URL fragment, which browsers never send to a server, and the
//! box keeps it in `<state dir>/room-secret`. It never goes into a log: `Debug` and `Display` are redacted,
//! and the only way to its text is [`RoomSecret::expose`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use std::fmt;

/// Bytes of randomness in a room secret: 128 bits, out of reach of an offline guess by a
/// server that sees the MACs made with it.
pub const SECRET_BYTES: usize = 16;

#[derive(Clone, PartialEq, Eq)]
pub struct RoomSecret([u8; SECRET_BYTES]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a room secret is {expected} base64url characters, this one has {got}")]
    Length { expected: usize, got: usize },
    #[error("a room secret uses only the base64url letters A-Z a-z 0-9 - _")]
    Alphabet,
}

impl RoomSecret {
    /// A fresh random secret (a new room, a new box).
    pub fn generate() -> RoomSecret {
        let mut bytes = [0; SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        RoomSecret(bytes)
    }

    pub fn from_bytes(bytes: [u8; SECRET_BYTES]) -> RoomSecret {
        RoomSecret(bytes)
    }

    /// Parses the base64url text of a link's `#k=` fragment.
    pub fn parse(text: &str) -> Result<RoomSecret, SecretError> {
        let text = text.trim();
        let expected = SECRET_BYTES.div_ceil(3) * 4 - (3 - SECRET_BYTES % 3) % 3;
        if text.len() != expected {
            return Err(SecretError::Length {
                expected,
                got: text.chars().count(),
            });
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| SecretError::Alphabet)?;
        let bytes: [u8; SECRET_BYTES] = bytes.try_into().map_err(|_| SecretError::Alphabet)?;
        Ok(RoomSecret(bytes))
    }

    /// The secret's text, for a join link or the settings file; never for a log.
    pub fn expose(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    pub(crate) fn bytes(&self) -> &[u8; SECRET_BYTES] {
        &self.0
    }
}

impl fmt::Debug for RoomSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RoomSecret(…)")
    }
}

impl fmt::Display for RoomSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(room secret)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_never_prints_itself() {
        let s = RoomSecret::generate();
        let text = s.expose();
        assert_eq!(text.len(), 22);
        assert_eq!(RoomSecret::parse(&text).unwrap(), s);
        assert!(!format!("{s:?} {s}").contains(&text));
        assert_ne!(RoomSecret::generate(), s);
    }

    #[test]
    fn bad_text_is_named() {
        assert_eq!(
            RoomSecret::parse("abc"),
            Err(SecretError::Length {
                expected: 22,
                got: 3
            })
        );
        assert_eq!(
            RoomSecret::parse("!!!!!!!!!!!!!!!!!!!!!!"),
            Err(SecretError::Alphabet)
        );
    }
}
