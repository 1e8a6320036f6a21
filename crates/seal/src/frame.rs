//! Frame encryption (docs/protocol.md, "Frame encryption"): each encoded frame sealed once by
//! its sender, Opus with its TOC byte clear, H.264 slice by slice with the NAL header and the
//! first slice-header byte clear and the result escaped against start code emulation, so
//! packetizers and depacketizers on the way see well-formed NAL units.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use hkdf::Hkdf;
use sha2::Sha256;
use std::collections::VecDeque;

const TAG: usize = 16;
const IV: usize = 12;
/// What sealing adds after the clear bytes: tag, iv, kid.
pub const OVERHEAD: usize = TAG + IV + 1;
/// Keys kept per sender, newest last.
const RING: usize = 4;
/// How far past its newest key a receiver ratchets by itself.
const MAX_RATCHET_AHEAD: u8 = 2;

/// A member's sender key and its index (1 to 255).
#[derive(Clone, PartialEq, Eq)]
pub struct SenderKey {
    pub kid: u8,
    pub key: [u8; 32],
}

impl std::fmt::Debug for SenderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SenderKey(kid {})", self.kid)
    }
}

/// The index after `kid`: 1 to 255, never 0.
pub fn next_kid(kid: u8) -> u8 {
    if kid == 255 {
        1
    } else {
        kid + 1
    }
}

impl SenderKey {
    pub fn generate(kid: u8) -> SenderKey {
        SenderKey {
            kid: kid.max(1),
            key: rand::random(),
        }
    }

    /// The next key by ratchet (someone joined): whoever holds this key can compute it.
    pub fn ratchet(&self) -> SenderKey {
        SenderKey {
            kid: next_kid(self.kid),
            key: hkdf(&self.key, b"roombox v2 ratchet"),
        }
    }

    /// A fresh random key with the next index (someone left).
    pub fn fresh(&self) -> SenderKey {
        SenderKey::generate(next_kid(self.kid))
    }

    pub fn cipher(&self) -> FrameCipher {
        let frame_key = hkdf(&self.key, b"roombox v2 frame");
        FrameCipher {
            kid: self.kid,
            aead: Aes256Gcm::new(&frame_key.into()),
        }
    }
}

fn hkdf(ikm: &[u8; 32], info: &[u8]) -> [u8; 32] {
    let mut okm = [0; 32];
    Hkdf::<Sha256>::new(Some(b""), ikm)
        .expand(info, &mut okm)
        .expect("32 bytes fit HKDF-SHA256");
    okm
}

/// A sender key ready to seal or open frames.
#[derive(Clone)]
pub struct FrameCipher {
    kid: u8,
    aead: Aes256Gcm,
}

impl FrameCipher {
    pub fn kid(&self) -> u8 {
        self.kid
    }

    /// `plain` sealed with `aad`, appended to `out` as ciphertext, tag, iv, kid.
    fn seal_into(&self, aad: &[u8], plain: &[u8], iv: [u8; IV], out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(plain);
        let tag = self
            .aead
            .encrypt_inout_detached(&iv.into(), aad, (&mut out[start..]).into())
            .expect("frames are far below AES-GCM's limits");
        out.extend_from_slice(&tag);
        out.extend_from_slice(&iv);
        out.push(self.kid);
    }

    /// Opens `sealed` (ciphertext, tag, iv, kid) with `aad`.
    fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let body = sealed.len().checked_sub(OVERHEAD)?;
        let (ct, rest) = sealed.split_at(body);
        let (tag, rest) = rest.split_at(TAG);
        let tag: &[u8; TAG] = tag.try_into().ok()?;
        let iv: [u8; IV] = rest[..IV].try_into().ok()?;
        let mut plain = ct.to_vec();
        self.aead
            .decrypt_inout_detached(&iv.into(), aad, plain.as_mut_slice().into(), tag.into())
            .ok()?;
        Some(plain)
    }

    /// An Opus frame: the TOC byte clear.
    pub fn seal_opus(&self, frame: &[u8], iv: [u8; IV]) -> Vec<u8> {
        let clear = frame.len().min(1);
        let mut out = Vec::with_capacity(frame.len() + OVERHEAD);
        out.extend_from_slice(&frame[..clear]);
        self.seal_into(&frame[..clear], &frame[clear..], iv, &mut out);
        out
    }

    /// An H.264 access unit (Annex B): each slice sealed on its own, the rest clear.
    pub fn seal_h264(&self, frame: &[u8], mut iv: impl FnMut() -> [u8; IV]) -> Vec<u8> {
        let mut out = Vec::with_capacity(frame.len() + 64);
        for (start_code, nal) in nal_units(frame) {
            out.extend_from_slice(start_code);
            if !is_slice(nal) || nal.len() < 2 {
                out.extend_from_slice(nal);
                continue;
            }
            let mut body = Vec::with_capacity(nal.len() + OVERHEAD);
            body.push(nal[1]);
            self.seal_into(&nal[..2], &nal[2..], iv(), &mut body);
            out.push(nal[0]);
            escape_into(&body, &mut out);
        }
        out
    }
}

/// The keys a receiver holds from one sender, newest last.
#[derive(Clone, Default)]
pub struct KeyRing {
    keys: VecDeque<(SenderKey, FrameCipher)>,
}

impl KeyRing {
    /// A key the sender sent (in an envelope); an index already held is replaced.
    pub fn insert(&mut self, key: SenderKey) {
        self.keys.retain(|(k, _)| k.kid != key.kid);
        let cipher = key.cipher();
        self.keys.push_back((key, cipher));
        while self.keys.len() > RING {
            self.keys.pop_front();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The cipher for `kid`, ratcheting the newest key forward when `kid` is just past it.
    fn cipher(&mut self, kid: u8) -> Option<&FrameCipher> {
        if !self.keys.iter().any(|(k, _)| k.kid == kid) {
            let (newest, _) = self.keys.back()?;
            let mut key = newest.clone();
            let mut steps = 0;
            while key.kid != kid && steps < MAX_RATCHET_AHEAD {
                key = key.ratchet();
                steps += 1;
            }
            if key.kid != kid {
                return None;
            }
            self.insert(key);
        }
        self.keys.iter().find(|(k, _)| k.kid == kid).map(|(_, c)| c)
    }

    pub fn open_opus(&mut self, frame: &[u8]) -> Option<Vec<u8>> {
        let kid = *frame.last()?;
        if frame.len() < 1 + OVERHEAD {
            return None;
        }
        let plain = self.cipher(kid)?.open(&frame[..1], &frame[1..])?;
        let mut out = Vec::with_capacity(1 + plain.len());
        out.push(frame[0]);
        out.extend_from_slice(&plain);
        Some(out)
    }

    /// An H.264 access unit sealed by [`FrameCipher::seal_h264`]; `None` if any slice does not
    /// open (the frame is dropped whole: a decoder must not see half a picture).
    pub fn open_h264(&mut self, frame: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(frame.len());
        for (start_code, nal) in nal_units(frame) {
            out.extend_from_slice(start_code);
            if !is_slice(nal) {
                out.extend_from_slice(nal);
                continue;
            }
            let body = unescape(&nal[1..]);
            if body.len() < 1 + OVERHEAD {
                return None;
            }
            let kid = *body.last()?;
            let aad = [nal[0], body[0]];
            let plain = self.cipher(kid)?.open(&aad, &body[1..])?;
            out.extend_from_slice(&aad);
            out.extend_from_slice(&plain);
        }
        Some(out)
    }
}

/// Slices (coded pictures): types 1 (non-IDR) and 5 (IDR).
fn is_slice(nal: &[u8]) -> bool {
    nal.first().is_some_and(|h| matches!(h & 0x1f, 1 | 5))
}

/// The NAL units of an Annex B stream, each with the start code before it (3 or 4 bytes;
/// bytes before the first start code come out with an empty one).
pub fn nal_units(stream: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut starts = Vec::new(); // (start code begins, NAL begins)
    let mut i = 0;
    while i + 2 < stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            let begin = if i > 0 && stream[i - 1] == 0 {
                i - 1
            } else {
                i
            };
            starts.push((begin, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut units = Vec::with_capacity(starts.len() + 1);
    if starts.first().is_none_or(|(b, _)| *b > 0) {
        let end = starts.first().map_or(stream.len(), |(b, _)| *b);
        units.push((&stream[..0], &stream[..end]));
    }
    for (n, (begin, nal)) in starts.iter().enumerate() {
        let end = starts.get(n + 1).map_or(stream.len(), |(b, _)| *b);
        units.push((&stream[*begin..*nal], &stream[*nal..end]));
    }
    units
}

/// Appends `bytes` with an emulation prevention byte after every `00 00` before 0 to 3.
fn escape_into(bytes: &[u8], out: &mut Vec<u8>) {
    let mut zeros = 0;
    for &b in bytes {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
}

/// Removes every `03` that follows `00 00`.
fn unescape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut zeros = 0;
    for &b in bytes {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    out
}

#[cfg(test)]
mod tests;
