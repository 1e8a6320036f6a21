// Frame encryption (docs/protocol.md, "Frame encryption"): every encoded frame a member sends is
// sealed with AES-256-GCM under its sender key, Opus with its TOC byte clear, H.264 slice by
// slice with the NAL header and the first slice-header byte clear and the result escaped against
// start code emulation, so packetizers and depacketizers on the way see well-formed NAL units.
//
// Pure and WebCrypto only (no DOM, no RTC): used by the frame worker (frame-worker.js), by the
// page's main thread when no worker transform is available, and by Node for the tests. The box's
// implementation is crates/seal/src/frame.rs; both check themselves against
// tests/vectors/frame.json.
//
//   sender key   {kid: 1..255, key: Uint8Array(32)}
//   ratchet(k)   the next key by ratchet (someone joined): HKDF(key, "roombox v2 ratchet"), kid + 1
//   freshKey(k)  a random key with the next kid (someone left)
//   FrameCipher  a sender key ready to seal (and open) frames: AES-256-GCM with
//                HKDF(key, "roombox v2 frame")
//   KeyRing      the last 4 keys a receiver holds from one sender; ratchets ahead up to 2 by itself

export const KEY_BYTES = 32;
export const TAG_BYTES = 16;
export const IV_BYTES = 12;
/** What sealing adds after the clear bytes: tag, iv, kid. */
export const OVERHEAD = TAG_BYTES + IV_BYTES + 1;
/** Keys kept per sender, newest last. */
export const RING_SIZE = 4;
/** How far past its newest key a receiver ratchets by itself. */
export const MAX_RATCHET_AHEAD = 2;

const utf8 = new TextEncoder();
const RATCHET_INFO = utf8.encode('roombox v2 ratchet');
const FRAME_INFO = utf8.encode('roombox v2 frame');
const EMPTY = new Uint8Array(0);

const subtle = () => globalThis.crypto.subtle;

/** The index after `kid`: 1 to 255, never 0. */
export function nextKid(kid) {
  return kid >= 255 ? 1 : kid + 1;
}

/** How many ratchet steps lead from `from` to `to` (0 to 254) in the cycle 1..255. */
export function kidDistance(from, to) {
  return (((to - from) % 255) + 255) % 255;
}

export function isKid(kid) {
  return Number.isInteger(kid) && kid >= 1 && kid <= 255;
}

export function randomIv() {
  return globalThis.crypto.getRandomValues(new Uint8Array(IV_BYTES));
}

async function hkdf32(ikm, info) {
  const key = await subtle().importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
  const bits = await subtle().deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: EMPTY, info }, key, 256);
  return new Uint8Array(bits);
}

/** A random sender key with index `kid` (1 at least). */
export function generateKey(kid = 1) {
  return { kid: Math.max(1, kid), key: globalThis.crypto.getRandomValues(new Uint8Array(KEY_BYTES)) };
}

/** The next key by ratchet: whoever holds `k` can compute it. */
export async function ratchet(k) {
  return { kid: nextKid(k.kid), key: await hkdf32(k.key, RATCHET_INFO) };
}

/** A fresh random key with the next index. */
export function freshKey(k) {
  return generateKey(nextKid(k.kid));
}

/** The AES-256-GCM key of a sender key's frames (raw bytes). */
export function frameKeyBytes(senderKey) {
  return hkdf32(senderKey, FRAME_INFO);
}

// ---- H.264 Annex B ------------------------------------------------------------------------

/** Slices (coded pictures): NAL unit types 1 (non-IDR) and 5 (IDR). */
export function isSlice(nal) {
  if (nal.length === 0) return false;
  const t = nal[0] & 0x1f;
  return t === 1 || t === 5;
}

/**
 * The NAL units of an Annex B stream, each with the start code before it (3 or 4 bytes; bytes
 * before the first start code come out with an empty one): [{startCode, nal}] of subarrays.
 * Exactly crates/seal's `nal_units`.
 */
export function nalUnits(stream) {
  const starts = []; // [start code begins, NAL begins]
  let i = 0;
  let from = 2;
  const n = stream.length;
  while (i + 2 < n) {
    const j = stream.indexOf(1, Math.max(from, i + 2));
    if (j < 0) break;
    const p = j - 2;
    if (stream[p] === 0 && stream[p + 1] === 0) {
      starts.push([p > 0 && stream[p - 1] === 0 ? p - 1 : p, p + 3]);
      i = p + 3;
      from = i + 2;
    } else {
      from = j + 1;
    }
  }
  const units = [];
  if (starts.length === 0 || starts[0][0] > 0) {
    const end = starts.length ? starts[0][0] : n;
    units.push({ startCode: stream.subarray(0, 0), nal: stream.subarray(0, end) });
  }
  for (let k = 0; k < starts.length; k++) {
    const [begin, nal] = starts[k];
    const end = k + 1 < starts.length ? starts[k + 1][0] : n;
    units.push({ startCode: stream.subarray(begin, nal), nal: stream.subarray(nal, end) });
  }
  return units;
}

// Escaping runs on every frame both ways, so it copies the stretches between zero bytes whole
// (`indexOf` finds them natively; in ciphertext a zero byte comes about every 256) and looks at
// bytes one at a time only around zeros.

/** Bytes written into `out` from `o`, escaped or unescaped; `zeros`: zero bytes just written. */
class EmulationWriter {
  constructor(out, o = 0) {
    this.out = out;
    this.o = o;
    this.zeros = 0;
  }

  /** Copies `bytes` as they are: clear bytes the escaping does not cover. */
  raw(bytes) {
    this.out.set(bytes, this.o);
    this.o += bytes.length;
    this.zeros = 0;
  }

  /** Appends `bytes` escaped: 0x03 after every `00 00` before 0 to 3 (across calls too). */
  escaped(bytes) {
    this.rewrite(bytes, (b) => {
      if (this.zeros >= 2 && b <= 3) {
        this.out[this.o++] = 3;
        this.zeros = 0;
      }
      return true;
    });
  }

  /** Appends `bytes` without every 0x03 that follows `00 00`. */
  unescaped(bytes) {
    this.rewrite(bytes, (b) => {
      if (this.zeros >= 2 && b === 3) {
        this.zeros = 0;
        return false;
      }
      return true;
    });
  }

  /**
   * Copies `bytes`: runs that cannot touch a `00 00` whole, and around zeros a byte at a time,
   * each after `decide(byte)` (which may write a byte before it; false drops it).
   */
  rewrite(bytes, decide) {
    const n = bytes.length;
    let k = 0;
    while (k < n) {
      if (this.zeros === 0 && bytes[k] !== 0) {
        const z = bytes.indexOf(0, k);
        const end = z < 0 ? n : z;
        this.out.set(bytes.subarray(k, end), this.o);
        this.o += end - k;
        k = end;
        continue;
      }
      const b = bytes[k++];
      if (!decide(b)) continue;
      this.out[this.o++] = b;
      this.zeros = b === 0 ? this.zeros + 1 : 0;
    }
  }
}

/** The most `n` bytes can grow to escaped: a 0x03 at most every two bytes. */
const escapedMax = (n) => n + (n >> 1) + 1;

/** `bytes` with an emulation prevention byte (0x03) after every `00 00` before 0 to 3. */
export function escape(bytes) {
  const w = new EmulationWriter(new Uint8Array(escapedMax(bytes.length)));
  w.escaped(bytes);
  return w.out.subarray(0, w.o);
}

/** Whether `bytes` holds a `00 00 03` anywhere. */
function hasEscape(bytes) {
  for (let z = bytes.indexOf(0); z >= 0 && z + 2 < bytes.length; z = bytes.indexOf(0, z + 1)) {
    if (bytes[z + 1] === 0 && bytes[z + 2] === 3) return true;
  }
  return false;
}

/**
 * `bytes` without every 0x03 that follows `00 00`. A sealed slice rarely has one, and then
 * `bytes` itself comes back (no copy).
 */
export function unescape(bytes) {
  if (!hasEscape(bytes)) return bytes;
  const w = new EmulationWriter(new Uint8Array(bytes.length));
  w.unescaped(bytes);
  return w.out.subarray(0, w.o);
}

/** The first `n` bytes of `out` in a Uint8Array of their own (its buffer exactly `n` long). */
function exactly(out, n) {
  if (out.byteOffset === 0 && out.buffer.byteLength === n) return out;
  if (out.byteOffset === 0 && typeof out.buffer.transfer === 'function') return new Uint8Array(out.buffer.transfer(n));
  return out.slice(0, n);
}

// ---- sealing and opening ------------------------------------------------------------------

/** A sender key ready to seal or open frames. Make it with `FrameCipher.create(senderKey)`. */
export class FrameCipher {
  constructor(kid, aesKey) {
    this.kid = kid;
    this.aesKey = aesKey;
  }

  static async create({ kid, key }) {
    if (!isKid(kid)) throw new RangeError(`a key index is 1 to 255, not ${kid}`);
    if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) throw new TypeError('a sender key is 32 bytes');
    const raw = await frameKeyBytes(key);
    const aesKey = await subtle().importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']);
    return new FrameCipher(kid, aesKey);
  }

  /** `plain` sealed with `aad`: ciphertext || tag || iv || kid. */
  async seal(aad, plain, iv = randomIv()) {
    const ctTag = await this.encrypt(aad, plain, iv);
    const out = new Uint8Array(ctTag.length + IV_BYTES + 1);
    this.trailer(out, 0, ctTag, iv);
    return out;
  }

  /** AES-256-GCM: ciphertext || tag. */
  async encrypt(aad, plain, iv) {
    return new Uint8Array(await subtle().encrypt(
      { name: 'AES-GCM', iv, additionalData: aad, tagLength: 128 }, this.aesKey, plain,
    ));
  }

  /** Writes ciphertext || tag || iv || kid into `out` at `o`. */
  trailer(out, o, ctTag, iv) {
    out.set(ctTag, o);
    out.set(iv, o + ctTag.length);
    out[o + ctTag.length + IV_BYTES] = this.kid;
  }

  /** The plaintext of `sealed` (ciphertext, tag, iv, kid) with `aad`, or null. */
  async open(aad, sealed) {
    const body = sealed.length - OVERHEAD;
    if (body < 0) return null;
    const iv = sealed.subarray(body + TAG_BYTES, body + TAG_BYTES + IV_BYTES);
    try {
      return new Uint8Array(await subtle().decrypt(
        { name: 'AES-GCM', iv, additionalData: aad, tagLength: 128 }, this.aesKey,
        sealed.subarray(0, body + TAG_BYTES),
      ));
    } catch {
      return null;
    }
  }

  /** An Opus frame: the TOC byte clear (the aad), the rest sealed. */
  async sealOpus(frame, iv = randomIv()) {
    const clear = Math.min(1, frame.length);
    const ctTag = await this.encrypt(frame.subarray(0, clear), frame.subarray(clear), iv);
    const out = new Uint8Array(clear + ctTag.length + IV_BYTES + 1);
    out.set(frame.subarray(0, clear), 0);
    this.trailer(out, clear, ctTag, iv);
    return out;
  }

  /**
   * An H.264 access unit (Annex B): each slice sealed on its own (NAL header and first
   * slice-header byte clear, the rest escaped), every other NAL unit clear. `iv` gives the iv
   * of each slice in order (a function; random by default).
   */
  async sealH264(frame, iv = randomIv) {
    const units = nalUnits(frame);
    const ivs = [];
    const jobs = units.map(({ nal }) => {
      if (!isSlice(nal) || nal.length < 2) return null;
      const slice = iv();
      ivs.push(slice);
      return this.encrypt(nal.subarray(0, 2), nal.subarray(2), slice);
    });
    const sealed = await Promise.all(jobs);
    let max = 0;
    units.forEach(({ startCode, nal }, k) => {
      max += startCode.length + (sealed[k] ? 1 + escapedMax(1 + sealed[k].length + IV_BYTES + 1) : nal.length);
    });
    // Escaped straight into the frame that goes out: NAL header clear, then the first slice
    // header byte, ciphertext, tag, iv and kid escaped as one run.
    const w = new EmulationWriter(new Uint8Array(max));
    const kid = Uint8Array.of(this.kid);
    let slice = 0;
    units.forEach(({ startCode, nal }, k) => {
      w.raw(startCode);
      if (!sealed[k]) {
        w.raw(nal);
        return;
      }
      w.raw(nal.subarray(0, 1));
      w.escaped(nal.subarray(1, 2));
      w.escaped(sealed[k]);
      w.escaped(ivs[slice++]);
      w.escaped(kid);
    });
    return exactly(w.out, w.o);
  }

}

/**
 * The keys a receiver holds from one sender, newest last (crates/seal's `KeyRing`). `insert`
 * takes effect at once; opening is asynchronous (WebCrypto).
 */
export class KeyRing {
  constructor() {
    /** [{kid, key, cipher: Promise<FrameCipher>}], newest last. */
    this.entries = [];
  }

  get size() {
    return this.entries.length;
  }

  /** The indexes held, oldest first. */
  kids() {
    return this.entries.map((e) => e.kid);
  }

  /** The keys held, oldest first (tests: what a member could open). */
  keys() {
    return this.entries.map(({ kid, key }) => ({ kid, key }));
  }

  /** A key the sender sent (in an envelope); an index already held is replaced. */
  insert({ kid, key }) {
    if (!isKid(kid) || !(key instanceof Uint8Array) || key.length !== KEY_BYTES) {
      throw new TypeError('not a sender key');
    }
    const cipher = FrameCipher.create({ kid, key });
    const entry = { kid, key, cipher, ready: null };
    cipher.then((c) => { entry.ready = c; }, () => {});
    this.entries = this.entries.filter((e) => e.kid !== kid);
    this.entries.push(entry);
    while (this.entries.length > RING_SIZE) this.entries.shift();
  }

  /** The cipher for `kid`, ratcheting the newest key forward when `kid` is just past it; or null. */
  async cipher(kid) {
    if (!isKid(kid)) return null;
    let entry = this.entries.find((e) => e.kid === kid);
    if (!entry) {
      const newest = this.entries.at(-1);
      if (!newest) return null;
      const steps = kidDistance(newest.kid, kid);
      if (steps < 1 || steps > MAX_RATCHET_AHEAD) return null;
      let k = { kid: newest.kid, key: newest.key };
      for (let s = 0; s < steps; s++) k = await ratchet(k);
      // An envelope may have brought it meanwhile: the sender's word wins.
      entry = this.entries.find((e) => e.kid === kid);
      if (!entry) {
        this.insert(k);
        entry = this.entries.find((e) => e.kid === kid);
      }
    }
    return entry.cipher;
  }

  /** The cipher for `kid` when it is held and ready (no waiting), else null. */
  readyCipher(kid) {
    for (const e of this.entries) if (e.kid === kid) return e.ready;
    return null;
  }

  /** An Opus frame sealed by `FrameCipher.sealOpus`, opened; null when it does not open. */
  async openOpus(frame) {
    if (frame.length < 1 + OVERHEAD) return null;
    const kid = frame[frame.length - 1];
    const cipher = this.readyCipher(kid) ?? await this.cipher(kid);
    if (!cipher) return null;
    const plain = await cipher.open(frame.subarray(0, 1), frame.subarray(1));
    if (!plain) return null;
    const out = new Uint8Array(1 + plain.length);
    out[0] = frame[0];
    out.set(plain, 1);
    return out;
  }

  /**
   * An H.264 access unit sealed by `FrameCipher.sealH264`, opened; null if any slice does not
   * open (the frame is dropped whole: a decoder must not see half a picture).
   */
  async openH264(frame) {
    const units = nalUnits(frame);
    const jobs = [];
    for (const { nal } of units) {
      if (!isSlice(nal)) {
        jobs.push(null);
        continue;
      }
      const body = unescape(nal.subarray(1));
      if (body.length < 1 + OVERHEAD) return null;
      const aad = Uint8Array.of(nal[0], body[0]);
      const kid = body[body.length - 1];
      const ready = this.readyCipher(kid);
      jobs.push((ready ? ready.open(aad, body.subarray(1)) : this.cipher(kid).then((c) => (c ? c.open(aad, body.subarray(1)) : null)))
        .then((plain) => (plain ? [aad, plain] : false)));
    }
    const opened = await Promise.all(jobs);
    let length = 0;
    for (let k = 0; k < units.length; k++) {
      if (opened[k] === false) return null;
      length += units[k].startCode.length + (opened[k] ? 2 + opened[k][1].length : units[k].nal.length);
    }
    const out = new Uint8Array(length);
    let o = 0;
    const put = (bytes) => {
      out.set(bytes, o);
      o += bytes.length;
    };
    units.forEach(({ startCode, nal }, k) => {
      put(startCode);
      if (opened[k] === null) {
        put(nal);
      } else {
        put(opened[k][0]);
        put(opened[k][1]);
      }
    });
    return out;
  }

}
