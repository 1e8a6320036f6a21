//! The box's frame encryption keys (docs/protocol.md, "Frame encryption"), sans-IO: its own
//! sender key and when it moves, and the keys each peer sent it.
//!
//! Someone joining (their pair's keys agreed: the sealed `hi` arrived) moves the box's key on
//! by ratchet, at once; someone leaving, or refused, gets a fresh random key that the box
//! starts using a second later, once the others have it.

use roombox_protocol::PeerId;
use roombox_seal::frame::{FrameCipher, KeyRing, SenderKey};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// How long after sending a fresh key the box starts sealing with it.
pub const FRESH_KEY_DELAY: Duration = Duration::from_secs(1);

pub struct FrameKeys {
    /// The newest key, the one peers were sent.
    key: SenderKey,
    sealing: FrameCipher,
    /// A fresh key waiting for its moment.
    next: Option<(Instant, FrameCipher)>,
    /// Peers that hold the box's key (they are sent every new one).
    keyed: BTreeSet<PeerId>,
    rings: HashMap<PeerId, KeyRing>,
}

impl Default for FrameKeys {
    fn default() -> Self {
        let key = SenderKey::generate(1);
        FrameKeys {
            sealing: key.cipher(),
            key,
            next: None,
            keyed: BTreeSet::new(),
            rings: HashMap::new(),
        }
    }
}

impl FrameKeys {
    /// A peer's pair is (again) ready: the key moves on by ratchet, and every keyed peer,
    /// the newcomer too, is sent it. Returns the messages to seal.
    pub fn peer_ready(&mut self, id: &PeerId) -> Vec<(PeerId, SenderKey)> {
        self.keyed.insert(id.clone());
        self.key = self.key.ratchet();
        // A ratchet's successor is computed by whoever held the key: no need to wait. A
        // fresh key still waiting keeps its moment (its predecessor is what peers use now).
        match &mut self.next {
            Some((_, next)) => *next = self.key.cipher(),
            None => self.sealing = self.key.cipher(),
        }
        self.send_all()
    }

    /// A peer left or was refused: it must not read what comes after.
    pub fn peer_gone(&mut self, id: &PeerId, now: Instant) -> Vec<(PeerId, SenderKey)> {
        self.rings.remove(id);
        if !self.keyed.remove(id) {
            return Vec::new();
        }
        self.key = self.key.fresh();
        self.next = Some((now + FRESH_KEY_DELAY, self.key.cipher()));
        self.send_all()
    }

    /// The newest key again for every keyed peer: after the signaling socket came back, a key
    /// sent into the dying one would otherwise wait for the next rotation.
    pub fn resend(&self) -> Vec<(PeerId, SenderKey)> {
        self.send_all()
    }

    /// Everyone is gone (the box left its room).
    pub fn clear(&mut self) {
        self.keyed.clear();
        self.rings.clear();
        self.key = self.key.fresh();
        self.sealing = self.key.cipher();
        self.next = None;
    }

    /// A key a peer sent the box.
    pub fn peer_key(&mut self, id: &PeerId, key: SenderKey) {
        self.rings.entry(id.clone()).or_default().insert(key);
    }

    fn send_all(&self) -> Vec<(PeerId, SenderKey)> {
        self.keyed
            .iter()
            .map(|id| (id.clone(), self.key.clone()))
            .collect()
    }

    /// When the waiting key takes over, if one waits.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next.as_ref().map(|(at, _)| *at)
    }

    fn cipher(&mut self, now: Instant) -> &FrameCipher {
        if self.next.as_ref().is_some_and(|(at, _)| now >= *at) {
            let (_, next) = self.next.take().expect("checked");
            self.sealing = next;
        }
        &self.sealing
    }

    /// The kid frames are sealed with now.
    pub fn sealing_kid(&mut self, now: Instant) -> u8 {
        self.cipher(now).kid()
    }

    /// An H.264 access unit, sealed once for every viewer.
    pub fn seal_video(&mut self, annex_b: &[u8], now: Instant) -> Vec<u8> {
        self.cipher(now).seal_h264(annex_b, rand::random)
    }

    pub fn seal_audio(&mut self, opus: &[u8], now: Instant) -> Vec<u8> {
        self.cipher(now).seal_opus(opus, rand::random())
    }

    /// A peer's access unit opened; `None` when it does not open (no key, or altered).
    pub fn open_video(&mut self, id: &PeerId, annex_b: &[u8]) -> Option<Vec<u8>> {
        self.rings.get_mut(id)?.open_h264(annex_b)
    }

    pub fn open_audio(&mut self, id: &PeerId, opus: &[u8]) -> Option<Vec<u8>> {
        self.rings.get_mut(id)?.open_opus(opus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> PeerId {
        PeerId(s.into())
    }

    #[test]
    fn a_joiner_gets_the_next_key_by_ratchet_at_once_and_cannot_read_before() {
        let now = Instant::now();
        let mut keys = FrameKeys::default();
        let sent = keys.peer_ready(&id("ada"));
        assert_eq!(sent.len(), 1);
        let mut ada = KeyRing::default();
        ada.insert(sent[0].1.clone());
        let before = keys.seal_audio(&[1, 2, 3], now);
        assert!(ada.open_audio_ok(&before), "ada has the key in use");
        let sent = keys.peer_ready(&id("bob"));
        assert_eq!(sent.len(), 2, "everyone gets the new key");
        let mut bob = KeyRing::default();
        bob.insert(
            sent.iter()
                .find(|(p, _)| *p == id("bob"))
                .unwrap()
                .1
                .clone(),
        );
        assert!(
            !bob.open_audio_ok(&before),
            "bob cannot read what came before him"
        );
        let after = keys.seal_audio(&[4], now);
        assert!(bob.open_audio_ok(&after), "used at once");
        assert!(ada.open_audio_ok(&after), "ada ratchets by herself");
    }

    #[test]
    fn a_leaver_cannot_read_what_comes_after_and_the_rest_switch_a_second_later() {
        let now = Instant::now();
        let mut keys = FrameKeys::default();
        keys.peer_ready(&id("ada"));
        let sent = keys.peer_ready(&id("bob"));
        let mut bob = KeyRing::default();
        bob.insert(sent[1].1.clone());
        let mut ada = KeyRing::default();
        ada.insert(sent[0].1.clone());
        let sent = keys.peer_gone(&id("bob"), now);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, id("ada"));
        ada.insert(sent[0].1.clone());
        let during = keys.seal_audio(&[1], now + Duration::from_millis(500));
        assert!(
            bob.open_audio_ok(&during),
            "the old key for one more second"
        );
        assert_eq!(keys.poll_timeout(), Some(now + FRESH_KEY_DELAY));
        let after = keys.seal_audio(&[1], now + FRESH_KEY_DELAY);
        assert!(
            !bob.open_audio_ok(&after),
            "bob has no key for what comes after"
        );
        assert!(ada.open_audio_ok(&after));
        assert_eq!(keys.poll_timeout(), None);
        assert!(
            keys.peer_gone(&id("cy"), now).is_empty(),
            "a stranger changes nothing"
        );
    }

    #[test]
    fn the_newest_key_is_sent_again_to_everyone_keyed() {
        let now = Instant::now();
        let mut keys = FrameKeys::default();
        assert!(keys.resend().is_empty(), "nobody keyed, nothing sent");
        keys.peer_ready(&id("ada"));
        let sent = keys.peer_ready(&id("bob"));
        assert_eq!(keys.resend(), sent, "the same key, to the same peers");
        keys.peer_gone(&id("bob"), now);
        let again = keys.resend();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].0, id("ada"));
    }

    trait OpenOk {
        fn open_audio_ok(&mut self, frame: &[u8]) -> bool;
    }

    impl OpenOk for KeyRing {
        fn open_audio_ok(&mut self, frame: &[u8]) -> bool {
            self.open_opus(frame).is_some()
        }
    }
}
