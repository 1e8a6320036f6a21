use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// A participant's id, assigned by the server (or resumed). Opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PeerId(pub String);

impl PeerId {
    /// Ids the server hands out and accepts on resume: 1 to 32 ASCII letters, digits, `-`, `_`.
    pub fn is_well_formed(&self) -> bool {
        is_token(&self.0, 32)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A room name: `[A-Za-z0-9_-]{1,64}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoomName(String);

impl RoomName {
    pub fn parse(name: &str) -> Option<RoomName> {
        is_token(name, 64).then(|| RoomName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_token(s: &str, max_len: usize) -> bool {
    !s.is_empty()
        && s.len() <= max_len
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names() {
        assert!(RoomName::parse("demo").is_some());
        assert!(RoomName::parse("Board_Room-2").is_some());
        assert!(RoomName::parse(&"a".repeat(64)).is_some());
        assert!(RoomName::parse(&"a".repeat(65)).is_none());
        assert!(RoomName::parse("").is_none());
        assert!(RoomName::parse("a b").is_none());
        assert!(RoomName::parse("ümlaut").is_none());
        assert!(RoomName::parse("../etc").is_none());
    }
}
