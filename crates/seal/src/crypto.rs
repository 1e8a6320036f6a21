//! The primitives of protocol version 2, exactly as docs/protocol.md specifies them, so the
//! browser's `web/js/seal.js` gives the same bytes (tests/vectors/seal.json checks both).

use crate::RoomSecret;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use x_wing::{Decapsulate, Decapsulator, KeyExport};

/// The keys a room secret gives (docs/protocol.md, "Room secret").
#[derive(Clone)]
pub struct RoomKeys {
    announce: [u8; 32],
    hello: [u8; 32],
    pair_salt: [u8; 32],
}

impl RoomKeys {
    pub fn derive(secret: &RoomSecret, room: &str) -> RoomKeys {
        let salt = [b"roombox v2 ".as_slice(), room.as_bytes()].concat();
        let hk = Hkdf::<Sha256>::new(Some(&salt), secret.bytes());
        let expand = |info: &[u8]| {
            let mut okm = [0; 32];
            hk.expand(info, &mut okm).expect("32 bytes fit HKDF-SHA256");
            okm
        };
        RoomKeys {
            announce: expand(b"announce"),
            hello: expand(b"hello"),
            pair_salt: expand(b"pair"),
        }
    }

    /// The MAC that makes a member's announced key a member's: `HMAC(announce_key,
    /// "announce" || ek)`.
    pub fn announce_mac(&self, ek: &[u8]) -> [u8; 32] {
        hmac(&self.announce, &[b"announce", ek])
    }

    /// A hello's MAC: `HMAC(hello_key, "hello" || ek_sender || ek_receiver || ct || [reply])`.
    pub fn hello_mac(
        &self,
        ek_sender: &[u8],
        ek_receiver: &[u8],
        ct: &[u8],
        reply: bool,
    ) -> [u8; 32] {
        hmac(
            &self.hello,
            &[b"hello", ek_sender, ek_receiver, ct, &[u8::from(reply)]],
        )
    }

    /// The pair's keys from both encapsulations (docs/protocol.md, "Pair keys").
    pub fn pair_keys(&self, mine: &Encapsulated, theirs: &Encapsulated) -> PairKeys {
        let i_am_lo = mine.by_ek < theirs.by_ek;
        let (lo, hi) = if i_am_lo {
            (mine, theirs)
        } else {
            (theirs, mine)
        };
        let transcript: [u8; 32] = Sha256::new()
            .chain_update(&lo.by_ek)
            .chain_update(&hi.by_ek)
            .chain_update(&lo.ct)
            .chain_update(&hi.ct)
            .finalize()
            .into();
        let ikm = [lo.ss, hi.ss].concat();
        let hk = Hkdf::<Sha256>::new(Some(&self.pair_salt), &ikm);
        let mut okm = [0; 64];
        hk.expand(&[b"pair".as_slice(), &transcript].concat(), &mut okm)
            .expect("64 bytes fit HKDF-SHA256");
        let (lo_to_hi, hi_to_lo) = okm.split_at(32);
        let (send, recv) = if i_am_lo {
            (lo_to_hi, hi_to_lo)
        } else {
            (hi_to_lo, lo_to_hi)
        };
        PairKeys {
            send: send.try_into().expect("32 bytes"),
            recv: recv.try_into().expect("32 bytes"),
            transcript,
        }
    }
}

fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Constant-time MAC check.
pub fn mac_matches(expected: &[u8; 32], got: &[u8]) -> bool {
    got.len() == 32
        && expected
            .iter()
            .zip(got)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// One side's encapsulation to the other: made by the member whose key is `by_ek`.
#[derive(Clone)]
pub struct Encapsulated {
    pub by_ek: Vec<u8>,
    pub ct: Vec<u8>,
    pub ss: [u8; 32],
}

/// A pair's two direction keys and the transcript that names the pair.
#[derive(Clone, PartialEq, Eq)]
pub struct PairKeys {
    pub send: [u8; 32],
    pub recv: [u8; 32],
    pub transcript: [u8; 32],
}

impl PairKeys {
    /// The `pair` field of envelopes: the transcript's first 8 bytes.
    pub fn id(&self) -> [u8; 8] {
        self.transcript[..8].try_into().expect("8 bytes")
    }
}

impl std::fmt::Debug for PairKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PairKeys({:02x?}…)", &self.transcript[..4])
    }
}

/// A member's X-Wing key pair: fresh at each start, never written anywhere.
pub struct Identity {
    dk: x_wing::DecapsulationKey,
    ek: Vec<u8>,
}

impl Identity {
    pub fn generate() -> Identity {
        Identity::from_seed(rand::random())
    }

    /// From the 32-byte seed X-Wing keys are made of (the draft's `sk`).
    pub fn from_seed(seed: [u8; 32]) -> Identity {
        let dk = x_wing::DecapsulationKey::from(seed);
        let ek = dk.encapsulation_key().to_bytes().to_vec();
        Identity { dk, ek }
    }

    pub fn ek(&self) -> &[u8] {
        &self.ek
    }

    /// Encapsulates to a peer's key; `None` if its bytes are no X-Wing key.
    pub fn encapsulate_to(&self, their_ek: &[u8], randomness: [u8; 64]) -> Option<Encapsulated> {
        let ek = x_wing::EncapsulationKey::try_from(their_ek).ok()?;
        let (ct, ss) = ek.encapsulate_deterministic(&randomness.into());
        Some(Encapsulated {
            by_ek: self.ek.clone(),
            ct: ct.to_vec(),
            ss: ss.into(),
        })
    }

    /// The shared secret of a peer's encapsulation to us; `None` if `ct` has the wrong size.
    pub fn decapsulate(&self, by_ek: &[u8], ct: &[u8]) -> Option<Encapsulated> {
        let array = x_wing::Ciphertext::try_from(ct).ok()?;
        let ss = self.dk.decapsulate(&array);
        Some(Encapsulated {
            by_ek: by_ek.to_vec(),
            ct: ct.to_vec(),
            ss: ss.into(),
        })
    }
}

const ENVELOPE_AAD: &[u8] = b"roombox v2 envelope";

fn nonce(seq: u64) -> [u8; 12] {
    let mut n = [0; 12];
    n[4..].copy_from_slice(&seq.to_be_bytes());
    n
}

/// Seals one envelope's plaintext: AES-256-GCM, nonce from `seq`, `seq` in the AAD.
pub fn seal(key: &[u8; 32], seq: u64, plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.into());
    let aad = [ENVELOPE_AAD, &seq.to_be_bytes()].concat();
    cipher
        .encrypt(
            &nonce(seq).into(),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .expect("envelopes are far below AES-GCM's limits")
}

/// Opens an envelope; `None` if it was not sealed with this key and `seq`.
pub fn open(key: &[u8; 32], seq: u64, sealed: &[u8]) -> Option<Vec<u8>> {
    let cipher = Aes256Gcm::new(key.into());
    let aad = [ENVELOPE_AAD, &seq.to_be_bytes()].concat();
    cipher
        .decrypt(
            &nonce(seq).into(),
            Payload {
                msg: sealed,
                aad: &aad,
            },
        )
        .ok()
}

/// The safety code over members' encapsulation keys (docs/protocol.md, "Safety code").
pub fn safety_code(eks: &[&[u8]]) -> String {
    let mut sorted = eks.to_vec();
    sorted.sort();
    let mut hash = Sha256::new().chain_update(b"roombox v2 safety");
    for ek in sorted {
        hash.update(ek);
    }
    let hash: [u8; 32] = hash.finalize().into();
    hash.chunks(4)
        .take(5)
        .map(|c| {
            let n = u32::from_be_bytes(c.try_into().expect("4 bytes"));
            format!("{:04}", n % 10_000)
        })
        .collect::<Vec<_>>()
        .join(" ")
}
