//! Time-limited TURN credentials in the "TURN REST API" scheme that coturn's `use-auth-secret`
//! checks (draft-uberti-behave-turn-rest): the username is `EXPIRY:ID` (a Unix time and the
//! peer's id), the password is base64(HMAC-SHA1(shared secret, username)). The TURN server needs
//! only the shared secret; no long-term password reaches a client, and a credential stops
//! working at its expiry.

use hmac::{Hmac, Mac};
use roombox_protocol::{IceServer, PeerId};
use sha1::Sha1;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The TURN servers clients are given credentials for.
#[derive(Clone)]
pub struct TurnRest {
    secret: Vec<u8>,
    urls: Vec<String>,
    lifetime: Duration,
}

/// Why a TURN setting was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TurnConfigError {
    #[error("--turn-secret: must not be empty")]
    EmptySecret,
    #[error("--turn-urls: give at least one turn: or turns: URL")]
    NoUrls,
    #[error("--turn-urls: {0:?} is not a turn: or turns: URL")]
    NotTurn(String),
    #[error("--turn-ttl: must be 60 s to 7 days")]
    Lifetime,
}

/// Credentials last at most this long: a leaked one is of use for a week at the most.
const MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

impl TurnRest {
    /// `urls` is comma-separated (`turn:turn.example:3478?transport=udp,turns:turn.example:443`).
    pub fn new(secret: &str, urls: &str, lifetime: Duration) -> Result<TurnRest, TurnConfigError> {
        if secret.is_empty() {
            return Err(TurnConfigError::EmptySecret);
        }
        let urls: Vec<String> = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect();
        if urls.is_empty() {
            return Err(TurnConfigError::NoUrls);
        }
        if let Some(bad) = urls
            .iter()
            .find(|u| !(u.starts_with("turn:") || u.starts_with("turns:")))
        {
            return Err(TurnConfigError::NotTurn(bad.clone()));
        }
        if !(Duration::from_secs(60)..=MAX_LIFETIME).contains(&lifetime) {
            return Err(TurnConfigError::Lifetime);
        }
        Ok(TurnRest {
            secret: secret.as_bytes().to_vec(),
            urls,
            lifetime,
        })
    }

    /// The ICE server entry for `peer`, valid from `now` for the configured lifetime.
    /// How long a credential lasts.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    pub fn credentials(&self, peer: &PeerId, now: SystemTime) -> IceServer {
        let expiry = (now + self.lifetime)
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let username = format!("{expiry}:{peer}");
        IceServer {
            urls: self.urls.clone(),
            credential: Some(password(&self.secret, &username)),
            username: Some(username),
        }
    }
}

/// The TURN REST password of `username`: base64(HMAC-SHA1(secret, username)).
pub fn password(secret: &[u8], username: &str) -> String {
    use base64::Engine;
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

// The secret is not printed in logs or panics.
impl std::fmt::Debug for TurnRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnRest")
            .field("urls", &self.urls)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_hmac_sha1_of_the_username_in_base64() {
        // RFC 2202 test case 2 (HMAC-SHA1, key "Jefe"), in base64.
        assert_eq!(
            password(b"Jefe", "what do ya want for nothing?"),
            "7/zfauXrL6LSdBbV8YTfnCWafHk="
        );
    }

    #[test]
    fn credentials_name_the_expiry_and_the_peer() {
        let turn = TurnRest::new(
            "s3cret",
            "turn:198.51.100.7:3478?transport=udp, turns:turn.example:443",
            Duration::from_secs(3600),
        )
        .unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let server = turn.credentials(&PeerId("p-1".into()), now);
        assert_eq!(
            server.urls,
            [
                "turn:198.51.100.7:3478?transport=udp",
                "turns:turn.example:443"
            ]
        );
        let username = server.username.unwrap();
        assert_eq!(username, "1800003600:p-1");
        assert_eq!(server.credential.unwrap(), password(b"s3cret", &username));
        assert!(!format!("{turn:?}").contains("s3cret"), "{turn:?}");
    }

    #[test]
    fn bad_settings_are_named() {
        let day = Duration::from_secs(86_400);
        assert_eq!(
            TurnRest::new("", "turn:a", day).unwrap_err(),
            TurnConfigError::EmptySecret
        );
        assert_eq!(
            TurnRest::new("s", " , ", day).unwrap_err(),
            TurnConfigError::NoUrls
        );
        assert_eq!(
            TurnRest::new("s", "turn:a,stun:b", day).unwrap_err(),
            TurnConfigError::NotTurn("stun:b".into())
        );
        assert_eq!(
            TurnRest::new("s", "turn:a", Duration::from_secs(10)).unwrap_err(),
            TurnConfigError::Lifetime
        );
    }
}
