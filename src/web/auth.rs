//! The settings page's locks: the claim code of a new box, the admin password (Argon2id hash in
//! a 0600 file), server-side sessions, CSRF checks and the login rate limit. Pure logic with time
//! passed in, so each rule is tested without a clock or a server.

use crate::config::{write_atomically, ConfigError, SECRET_MODE};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::http::{header, HeaderMap};
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The hash file's name in the state directory. Deleting it resets the password (first run).
pub const PASSWORD_FILE: &str = "admin-password";
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Bounds the work an attacker can make Argon2 do per attempt.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// The admin password's Argon2id hash (PHC string) in `<state_dir>/admin-password`.
pub struct PasswordFile {
    path: PathBuf,
}

impl PasswordFile {
    pub fn new(state_dir: &Path) -> PasswordFile {
        PasswordFile {
            path: state_dir.join(PASSWORD_FILE),
        }
    }

    /// The stored hash; `None` until a password is set (or after the file was deleted).
    pub fn hash(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        let hash = text.trim();
        (!hash.is_empty()).then(|| hash.to_owned())
    }

    pub fn is_set(&self) -> bool {
        self.hash().is_some()
    }

    pub fn verify(&self, password: &str) -> bool {
        self.hash().is_some_and(|h| verify_password(&h, password))
    }

    /// Hashes and stores a new password (checked with [`check_new_password`] first). The file
    /// is 0600 whatever mode an old one had; the write is atomic.
    pub fn set(&self, password: &str) -> Result<(), ConfigError> {
        let hash = hash_password(password);
        if self.path.exists() {
            // write_atomically keeps an existing file's mode: make sure that mode is 0600.
            std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(SECRET_MODE))
                .map_err(|e| ConfigError {
                    field: "password".into(),
                    message: format!("cannot set the mode of {}: {e}", self.path.display()),
                })?;
        }
        write_atomically(&self.path, format!("{hash}\n").as_bytes(), SECRET_MODE).map_err(|e| {
            ConfigError {
                field: "password".into(),
                message: e.message,
            }
        })
    }
}

/// Argon2id with the crate's defaults (19 MiB, 2 passes: OWASP's recommendation) and a random
/// 128-bit salt, as a PHC string.
pub fn hash_password(password: &str) -> String {
    let salt =
        SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes is a valid salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 with default parameters hashes any password")
        .to_string()
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return false;
    }
    PasswordHash::new(hash)
        .and_then(|h| Argon2::default().verify_password(password.as_bytes(), &h))
        .is_ok()
}

/// A new password and its confirmation; the error is shown next to the field `new_password`.
pub fn check_new_password(password: &str, confirm: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(format!(
            "must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        ));
    }
    if password != confirm {
        return Err("the two passwords differ".into());
    }
    Ok(())
}

/// Digits in a claim code.
pub const CLAIM_DIGITS: usize = 8;

/// The one-time code that claims a new box: until an admin password is set, the first-run form
/// asks for it, so only someone who can see the box's HDMI-out screen or read its journal sets
/// the password (not whoever on the LAN opens the page first). Eight digits, shown as
/// `1234-5678` (docs/decisions.md: easy to read off a screen and type on a phone's number pad;
/// with the login rate limit, out of reach of guessing). It never goes into a log but its one
/// journal line: `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct ClaimCode([u8; CLAIM_DIGITS]);

impl ClaimCode {
    /// A fresh code, uniform over all 10^8, from the OS-seeded CSPRNG.
    pub fn generate() -> ClaimCode {
        let n: u32 = rand::random_range(0..10u32.pow(CLAIM_DIGITS as u32));
        let text = format!("{n:0width$}", width = CLAIM_DIGITS);
        ClaimCode(
            text.into_bytes()
                .try_into()
                .expect("zero-padded to the width"),
        )
    }

    /// The code as people read and type it, `1234-5678`: for the screen and the one journal
    /// line, never for another log.
    pub fn expose(&self) -> String {
        let (a, b) = self.0.split_at(CLAIM_DIGITS / 2);
        format!(
            "{}-{}",
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b)
        )
    }

    /// Whether `given` is this code, spaces and dashes ignored; compared in constant time.
    pub fn matches(&self, given: &str) -> bool {
        let digits: Vec<u8> = given
            .bytes()
            .filter(|b| !matches!(b, b' ' | b'-'))
            .collect();
        digits.len() == CLAIM_DIGITS && bool::from(digits.as_slice().ct_eq(&self.0))
    }
}

impl fmt::Debug for ClaimCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClaimCode(…)")
    }
}

/// Why a claim code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimRefused {
    /// Too many wrong codes or passwords from this client (or from everyone): wait this long.
    Locked(Duration),
    /// Not the code of this start, or the code was used already (the box is claimed).
    Wrong,
}

/// Checks a claim code through the login rate limit: a wrong code counts as a wrong password
/// does, and while locked out even the right code waits. `code` is `None` once the code was
/// used, so a second use is refused.
pub fn check_claim(
    code: Option<&ClaimCode>,
    given: &str,
    throttle: &mut Throttle,
    ip: IpAddr,
    now: Instant,
) -> Result<(), ClaimRefused> {
    throttle.check(ip, now).map_err(ClaimRefused::Locked)?;
    if code.is_some_and(|c| c.matches(given)) {
        throttle.succeeded(ip);
        return Ok(());
    }
    throttle.failed(ip, now);
    Err(match throttle.check(ip, now) {
        Err(wait) => ClaimRefused::Locked(wait),
        Ok(()) => ClaimRefused::Wrong,
    })
}

/// A browser's session: anonymous ones carry only the CSRF token of the login or first-run
/// form; an admin one opens the settings.
#[derive(Clone, Debug)]
pub struct Session {
    pub csrf: String,
    pub admin: bool,
    created: Instant,
    last_seen: Instant,
}

/// An admin session ends after this long without a request...
pub const ADMIN_IDLE: Duration = Duration::from_secs(60 * 60);
/// ...and after this long in any case.
pub const ADMIN_MAX_AGE: Duration = Duration::from_secs(12 * 60 * 60);
/// A login form left open longer than this must be reloaded.
pub const ANONYMOUS_IDLE: Duration = Duration::from_secs(30 * 60);
/// Anonymous sessions cost memory for anyone who loads the login page: keep a bounded number.
const MAX_SESSIONS: usize = 512;

impl Session {
    fn expired(&self, now: Instant) -> bool {
        if self.admin {
            now.duration_since(self.last_seen) > ADMIN_IDLE
                || now.duration_since(self.created) > ADMIN_MAX_AGE
        } else {
            now.duration_since(self.last_seen) > ANONYMOUS_IDLE
        }
    }
}

/// Server-side sessions keyed by a random 256-bit token (the cookie holds only the token).
#[derive(Default)]
pub struct Sessions {
    map: HashMap<String, Session>,
}

impl Sessions {
    /// A new session; returns its token (for the cookie).
    pub fn create(&mut self, admin: bool, now: Instant) -> String {
        self.map.retain(|_, s| !s.expired(now));
        if self.map.len() >= MAX_SESSIONS {
            // Drop the oldest anonymous session; admins are few and never pushed out.
            let oldest = self
                .map
                .iter()
                .filter(|(_, s)| !s.admin)
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(t, _)| t.clone());
            if let Some(t) = oldest {
                self.map.remove(&t);
            }
        }
        let token = random_token();
        self.map.insert(
            token.clone(),
            Session {
                csrf: random_token(),
                admin,
                created: now,
                last_seen: now,
            },
        );
        token
    }

    /// The live session of `token`, touched; an expired one is removed.
    pub fn get(&mut self, token: &str, now: Instant) -> Option<Session> {
        let s = self.map.get_mut(token)?;
        if s.expired(now) {
            self.map.remove(token);
            return None;
        }
        s.last_seen = now;
        Some(s.clone())
    }

    pub fn remove(&mut self, token: &str) {
        self.map.remove(token);
    }

    /// After a password change: every other browser must log in again.
    pub fn remove_all_except(&mut self, keep: &str) {
        self.map.retain(|t, _| t == keep);
    }
}

/// 256 random bits from the OS-seeded CSPRNG, as 64 hex digits.
pub fn random_token() -> String {
    rand::random::<[u8; 32]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares a submitted token with the session's in constant time.
pub fn tokens_match(expected: &str, given: &str) -> bool {
    expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// The second CSRF lock, independent of the token: a state-changing request must come from a
/// page of this very origin. `Origin` (all current browsers send it on POST) must be
/// `http://<Host>`; without it, `Referer` must be on that origin; with neither, refused.
pub fn check_same_origin(headers: &HeaderMap) -> Result<(), String> {
    let get = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let host = get(header::HOST).ok_or("the request has no Host header")?;
    let ours = format!("http://{host}");
    if let Some(origin) = get(header::ORIGIN) {
        return if origin == ours {
            Ok(())
        } else {
            Err(format!("refused a request from another site ({origin})"))
        };
    }
    match get(header::REFERER) {
        Some(r) if r == ours || r.starts_with(&format!("{ours}/")) => Ok(()),
        Some(r) => Err(format!("refused a request from another site ({r})")),
        None => Err("refused a request that names no origin".into()),
    }
}

/// The session token from the `Cookie` header(s).
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(concat!("roombox_session", "=")))
        .map(str::to_owned)
}

/// The cookie that carries a session: script cannot read it, no other site's request carries
/// it. Not `Secure`: the page is plain HTTP on the LAN (docs/decisions.md).
pub fn session_cookie_header(token: &str) -> String {
    format!(
        "roombox_session={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        ADMIN_MAX_AGE.as_secs()
    )
}

pub fn clear_cookie_header() -> String {
    "roombox_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0".into()
}

/// Login failures of one client (or of everyone): a few are free, then each one doubles the
/// wait before the next attempt.
#[derive(Debug, Default, Clone)]
struct Strikes {
    failures: u32,
    last_failure: Option<Instant>,
    locked_until: Option<Instant>,
}

/// Failures per client IP before lockouts start.
pub const FREE_FAILURES_PER_IP: u32 = 5;
/// Failures of all clients together before everyone waits (a spread-out guessing attack).
pub const FREE_FAILURES_GLOBAL: u32 = 20;
/// The longest lockout.
pub const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Failures are forgotten after this long without one.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);

impl Strikes {
    fn wait(&self, now: Instant) -> Option<Duration> {
        self.locked_until
            .and_then(|t| t.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    fn fail(&mut self, free: u32, now: Instant) {
        if self
            .last_failure
            .is_some_and(|t| now.duration_since(t) > FORGET_AFTER)
        {
            self.failures = 0;
        }
        self.failures += 1;
        self.last_failure = Some(now);
        if self.failures >= free {
            let doublings = (self.failures - free).min(10);
            let lock = (Duration::from_secs(1) * (1 << doublings)).min(MAX_LOCKOUT);
            self.locked_until = Some(now + lock);
        }
    }
}

/// The login rate limit, per client IP and for all clients together.
#[derive(Default)]
pub struct Throttle {
    per_ip: HashMap<IpAddr, Strikes>,
    global: Strikes,
}

impl Throttle {
    /// `Err(wait)` while `ip` (or everyone) must wait before trying again.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let own = self.per_ip.get(&ip).and_then(|s| s.wait(now));
        match own.max(self.global.wait(now)) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    pub fn failed(&mut self, ip: IpAddr, now: Instant) {
        self.per_ip.retain(|_, s| {
            s.last_failure
                .is_some_and(|t| now.duration_since(t) <= FORGET_AFTER)
        });
        self.per_ip
            .entry(ip)
            .or_default()
            .fail(FREE_FAILURES_PER_IP, now);
        self.global.fail(FREE_FAILURES_GLOBAL, now);
    }

    pub fn succeeded(&mut self, ip: IpAddr) {
        self.per_ip.remove(&ip);
    }
}

#[cfg(test)]
mod tests;
