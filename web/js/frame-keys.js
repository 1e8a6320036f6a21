// The key schedule of a member's frame encryption (docs/protocol.md, "Frame encryption"), sans
// IO: its own sender key and when it moves. The box's is src/calls/frame_keys.rs; this one
// behaves the same.
//
// Someone joining (their pair's keys agreed: SealedSignaling's `peer-named`) moves our key on
// by ratchet, used at once, and every peer that holds our key gets the new one (the newcomer
// gets only that one, so it cannot read what came before). Someone leaving, or refused, gets a
// fresh random key with the next index, sent to the peers that remain and used a second later,
// once they have it (the leaver cannot read what comes after).
//
// Every method that moves the key returns the messages to send: [{to, key: {kid, key}}]. The
// caller calls them one at a time (peerReady awaits a ratchet) and seals with `sealingKey(now)`,
// asking again at `pollTimeout()`.

import { freshKey, generateKey, ratchet } from './frame-crypto.js';

/** How long after sending a fresh key a member starts sealing with it. */
export const FRESH_KEY_DELAY_MS = 1000;

export class FrameKeySchedule {
  constructor(initial = generateKey(1)) {
    /** The newest key, the one peers were sent. */
    this.key = initial;
    /** The key frames are sealed with now. */
    this.sealing = initial;
    /** A fresh key waiting for its moment: {at, key}, or null. */
    this.next = null;
    /** Peers that hold our key (they are sent every new one). */
    this.keyed = new Set();
  }

  /** A peer's pair is (again) ready: ratchet, and send the new key to every keyed peer. */
  async peerReady(id) {
    this.keyed.add(id);
    this.key = await ratchet(this.key);
    // A ratchet's successor is computed by whoever held the key: no need to wait. A fresh key
    // still waiting keeps its moment (its predecessor is what peers use now).
    if (this.next) this.next.key = this.key;
    else this.sealing = this.key;
    return this.sendAll();
  }

  /** A peer left or was refused: it must not read what comes after. */
  peerGone(id, now) {
    if (!this.keyed.delete(id)) return [];
    this.key = freshKey(this.key);
    this.next = { at: now + FRESH_KEY_DELAY_MS, key: this.key };
    return this.sendAll();
  }

  /** Everyone is gone (we left the room, or came back as somebody new). */
  clear() {
    this.keyed.clear();
    this.key = freshKey(this.key);
    this.sealing = this.key;
    this.next = null;
  }

  /** The newest key for every keyed peer (also after a reconnect: a key may have been lost). */
  sendAll() {
    return [...this.keyed].map((to) => ({ to, key: this.key }));
  }

  /** When the waiting key takes over, if one waits. */
  pollTimeout() {
    return this.next ? this.next.at : null;
  }

  /** The key to seal with at `now` (a waiting key whose moment came takes over). */
  sealingKey(now) {
    if (this.next && now >= this.next.at) {
      this.sealing = this.next.key;
      this.next = null;
    }
    return this.sealing;
  }
}
