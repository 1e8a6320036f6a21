// Sealed signaling, protocol version 2 (docs/protocol.md, "Version 2: sealed signaling").
//
// The server routes envelopes it can neither read nor alter: members prove they hold the room
// secret (HMAC over their X-Wing key), agree keys for every pair with two X-Wing encapsulations
// (one each way), and seal every offer, answer, candidate, view and name with AES-256-GCM.
// X-Wing (ML-KEM-768 + X25519) comes from ../vendor/xwing.js (@noble/post-quantum, bundled by
// scripts/web-vendor.sh); everything else is WebCrypto. No DOM here.
//
// The pure functions come first (checked against tests/vectors/seal.json, which the box's
// implementation in crates/seal checks too), then `SealedSignaling`, which wraps the version 1
// transport (`Signaling` in signaling.js) and gives call.js the same API and events, plus:
//   peer-named    {id, name, kind}    the peer's sealed `hi`: who it says it is
//   peer-refused  {id, reason}        the peer is refused (reason: human text, REASONS below)
//   safety-code   {code}              the room's safety code changed
//   media-key     {id, key: {kid, key}}  the peer's frame key (docs/protocol.md, "Frame
//                                     encryption"; key: 32 bytes); `sendMediaKey` sends ours

import { keygen, encapsulate, decapsulate } from '../vendor/xwing.js';
import { Signaling } from './signaling.js';

export const PROTOCOL_VERSION = 2;
export const SECRET_BYTES = 16;
export const SECRET_CHARS = 22;
export const EK_BYTES = 1216;
export const CT_BYTES = 1120;
const MAC_BYTES = 32;
const MAX_NAME_CHARS = 64;
/** Messages kept for a peer whose pair keys are not derived yet (the oldest go first). */
const MAX_QUEUED = 1000;
/** Our hello has waited this long for the peer's: greet it afresh (its answer was lost). */
const HELLO_RETRY_MS = 10000;
const MAX_SEQ = 2 ** 53 - 1;

/** Why a peer is refused: the tile says "Refused: <reason>". */
export const REASONS = Object.freeze({
  key: "not signed with this room's secret",
  altered: 'a message was altered',
  replayed: 'a message was replayed or reordered',
  clear: 'sent signaling in clear',
});

/** Relayed message types that travel only sealed in version 2. */
const RELAY_TYPES = new Set(['offer', 'answer', 'ice-candidate', 'view']);

const subtle = () => globalThis.crypto.subtle;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

// ---- bytes --------------------------------------------------------------------------------

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Bytewise order: negative when `a` sorts first. */
export function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

export function equalBytes(a, b) {
  return a.length === b.length && compareBytes(a, b) === 0;
}

/** 8 bytes, big-endian, of an integer in [0, 2^53). */
export function u64be(n) {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not a u64 below 2^53: ${n}`);
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, Math.floor(n / 2 ** 32));
  view.setUint32(4, n >>> 0);
  return out;
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64URL_INDEX = new Map([...B64URL].map((c, i) => [c, i]));

/** base64url without padding. */
export function b64(bytes) {
  let out = '';
  let i = 0;
  for (; i + 3 <= bytes.length; i += 3) {
    const v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += B64URL[v >> 18] + B64URL[(v >> 12) & 63] + B64URL[(v >> 6) & 63] + B64URL[v & 63];
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const v = bytes[i] << 16;
    out += B64URL[v >> 18] + B64URL[(v >> 12) & 63];
  } else if (rest === 2) {
    const v = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += B64URL[v >> 18] + B64URL[(v >> 12) & 63] + B64URL[(v >> 6) & 63];
  }
  return out;
}

/**
 * Strict base64url without padding: only the 64 letters, no padding, no whitespace, unused
 * trailing bits zero (so every byte string has exactly one text). Null when it is not that.
 */
export function unb64(text) {
  if (typeof text !== 'string' || text.length % 4 === 1) return null;
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (const c of text) {
    const v = B64URL_INDEX.get(c);
    if (v === undefined) return null;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
    acc &= (1 << bits) - 1;
  }
  if (acc !== 0) return null; // non-zero unused bits: a second spelling of the same bytes
  return out;
}

function randomBytes(n) {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

// ---- primitives (WebCrypto) ---------------------------------------------------------------

export async function sha256(data) {
  return new Uint8Array(await subtle().digest('SHA-256', data));
}

/** HKDF-SHA256: `n` bytes expanded with `info` from `ikm` and `salt`. */
export async function hkdf(ikm, salt, info, n) {
  const key = await subtle().importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
  return new Uint8Array(await subtle().deriveBits({ name: 'HKDF', hash: 'SHA-256', salt, info }, key, n * 8));
}

function hmacKey(raw) {
  return subtle().importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
}

export async function hmac(raw, data) {
  return new Uint8Array(await subtle().sign('HMAC', await hmacKey(raw), data));
}

/** Constant-time check of an HMAC-SHA256 tag (WebCrypto's verify). */
async function hmacVerify(raw, data, mac) {
  if (!(mac instanceof Uint8Array) || mac.length !== MAC_BYTES) return false;
  return subtle().verify('HMAC', await hmacKey(raw), mac, data);
}

function aesKey(raw) {
  return subtle().importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']);
}

// ---- room secret --------------------------------------------------------------------------

/** A fresh room secret: 16 random bytes as 22 base64url characters. */
export function generateSecret() {
  return b64(randomBytes(SECRET_BYTES));
}

/** The 16 bytes of a room secret's text, or null when it is not exactly a secret. */
export function parseSecret(text) {
  if (typeof text !== 'string' || text.length !== SECRET_CHARS) return null;
  const bytes = unb64(text);
  return bytes && bytes.length === SECRET_BYTES ? bytes : null;
}

/**
 * The room secret of a link's fragment (`#k=SECRET`, other `&`-separated parameters allowed):
 * its text when valid, else null.
 */
export function secretFromFragment(hash) {
  const params = new URLSearchParams(String(hash ?? '').replace(/^#/, ''));
  const k = params.get('k');
  return k !== null && parseSecret(k) ? k : null;
}

/** The path and fragment of a room's link: `/r/ROOM#k=SECRET`. */
export function roomPath(room, secret) {
  return `/r/${encodeURIComponent(room)}#k=${secret}`;
}

// ---- room keys, announcements, hellos -----------------------------------------------------

/**
 * The room's keys from its secret (bytes or text) and name: HKDF-SHA256 with salt
 * "roombox v2 " || ROOM. Returns {announceKey, helloKey, pairSalt}, 32 bytes each.
 */
export async function deriveRoomKeys(secret, room) {
  const ikm = typeof secret === 'string' ? parseSecret(secret) : secret;
  if (!(ikm instanceof Uint8Array) || ikm.length !== SECRET_BYTES) throw new Error('not a room secret');
  const salt = utf8.encode(`roombox v2 ${room}`);
  const [announceKey, helloKey, pairSalt] = await Promise.all([
    hkdf(ikm, salt, utf8.encode('announce'), 32),
    hkdf(ikm, salt, utf8.encode('hello'), 32),
    hkdf(ikm, salt, utf8.encode('pair'), 32),
  ]);
  return { announceKey, helloKey, pairSalt };
}

/** The `key` of a join: {pk: b64(ek), mac: b64(HMAC(announce_key, "announce" || ek))}. */
export async function announce(roomKeys, ek) {
  const mac = await hmac(roomKeys.announceKey, concat(utf8.encode('announce'), ek));
  return { pk: b64(ek), mac: b64(mac) };
}

/** A peer's announced `key`: its `ek` when the mac verifies, else null. */
export async function verifyAnnouncement(roomKeys, key) {
  if (!key || typeof key !== 'object') return null;
  const ek = unb64(key.pk);
  const mac = unb64(key.mac);
  if (!ek || ek.length !== EK_BYTES || !mac) return null;
  const ok = await hmacVerify(roomKeys.announceKey, concat(utf8.encode('announce'), ek), mac);
  return ok ? ek : null;
}

/** HMAC(hello_key, "hello" || ek_sender || ek_receiver || ct || [reply]). */
export function helloMac(helloKey, ekSender, ekReceiver, ct, reply) {
  return hmac(helloKey, helloInput(ekSender, ekReceiver, ct, reply));
}

function helloInput(ekSender, ekReceiver, ct, reply) {
  return concat(utf8.encode('hello'), ekSender, ekReceiver, ct, Uint8Array.of(reply ? 1 : 0));
}

/** The `hello` object of a sealed message: {ct, reply, mac}. */
export async function makeHello(roomKeys, ekSender, ekReceiver, ct, reply) {
  const mac = await helloMac(roomKeys.helloKey, ekSender, ekReceiver, ct, reply);
  return { ct: b64(ct), reply: !!reply, mac: b64(mac) };
}

/** A peer's hello to us: its `ct` when well formed and the mac verifies, else null. */
export async function verifyHello(roomKeys, ekSender, ekReceiver, hello) {
  const r = await checkHello(roomKeys, ekSender, ekReceiver, hello);
  return r.ct ?? null;
}

/** {ct} for a good hello; {refusal: 'altered'} when malformed, {refusal: 'key'} when the mac fails. */
async function checkHello(roomKeys, ekSender, ekReceiver, hello) {
  if (!hello || typeof hello !== 'object' || typeof hello.reply !== 'boolean') return { refusal: 'altered' };
  const ct = unb64(hello.ct);
  const mac = unb64(hello.mac);
  if (!ct || ct.length !== CT_BYTES || !mac) return { refusal: 'altered' };
  const ok = await hmacVerify(roomKeys.helloKey, helloInput(ekSender, ekReceiver, ct, hello.reply), mac);
  return ok ? { ct } : { refusal: 'key' };
}

/**
 * The pair's keys from the two encapsulations: ours (`ctSelf`, `ssSelf`, made by us to the
 * peer) and the peer's (`ctPeer`, `ssPeer`, made by the peer to us, decapsulated). Returns
 * {transcript, okm, pair, keyLoToHi, keyHiToLo, selfIsLo, sendKey, recvKey} (raw bytes).
 */
export async function derivePairKeys(pairSalt, { ekSelf, ekPeer, ctSelf, ssSelf, ctPeer, ssPeer }) {
  const order = compareBytes(ekSelf, ekPeer);
  if (order === 0) throw new Error('a pair needs two different keys');
  const selfIsLo = order < 0;
  const [ekLo, ekHi] = selfIsLo ? [ekSelf, ekPeer] : [ekPeer, ekSelf];
  const [ctLo, ctHi] = selfIsLo ? [ctSelf, ctPeer] : [ctPeer, ctSelf];
  const [ssLo, ssHi] = selfIsLo ? [ssSelf, ssPeer] : [ssPeer, ssSelf];
  const transcript = await sha256(concat(ekLo, ekHi, ctLo, ctHi));
  const okm = await hkdf(concat(ssLo, ssHi), pairSalt, concat(utf8.encode('pair'), transcript), 64);
  const keyLoToHi = okm.slice(0, 32);
  const keyHiToLo = okm.slice(32, 64);
  return {
    transcript,
    okm,
    pair: b64(transcript.slice(0, 8)),
    keyLoToHi,
    keyHiToLo,
    selfIsLo,
    sendKey: selfIsLo ? keyLoToHi : keyHiToLo,
    recvKey: selfIsLo ? keyHiToLo : keyLoToHi,
  };
}

// ---- envelopes ----------------------------------------------------------------------------

const ENVELOPE_AAD = utf8.encode('roombox v2 envelope');

function envelopeNonce(seq) {
  return concat(new Uint8Array(4), u64be(seq));
}

/** AES-256-GCM of `plaintext` (bytes, or an object sent as JSON) under `key` (raw or CryptoKey) at `seq`: b64 of ciphertext || tag. */
export async function sealBox(key, seq, plaintext) {
  const k = key instanceof Uint8Array ? await aesKey(key) : key;
  const data = plaintext instanceof Uint8Array ? plaintext : utf8.encode(JSON.stringify(plaintext));
  const out = await subtle().encrypt(
    { name: 'AES-GCM', iv: envelopeNonce(seq), additionalData: concat(ENVELOPE_AAD, u64be(seq)), tagLength: 128 },
    k,
    data,
  );
  return b64(new Uint8Array(out));
}

/** The plaintext bytes of a box, or null when it does not open under `key` at `seq`. */
export async function openBox(key, seq, box) {
  const bytes = unb64(box);
  if (!bytes || bytes.length < 16 || !Number.isSafeInteger(seq) || seq < 0) return null;
  const k = key instanceof Uint8Array ? await aesKey(key) : key;
  try {
    const out = await subtle().decrypt(
      { name: 'AES-GCM', iv: envelopeNonce(seq), additionalData: concat(ENVELOPE_AAD, u64be(seq)), tagLength: 128 },
      k,
      bytes,
    );
    return new Uint8Array(out);
  } catch {
    return null;
  }
}

// ---- safety code --------------------------------------------------------------------------

/**
 * SHA-256("roombox v2 safety" || ek_1 || … || ek_n) over the given keys sorted bytewise, as
 * five groups of four digits: u32be(hash[4i..4i+4]) mod 10000, joined by spaces.
 */
export async function safetyCode(eks) {
  const sorted = [...eks].sort(compareBytes);
  const hash = await sha256(concat(utf8.encode('roombox v2 safety'), ...sorted));
  const view = new DataView(hash.buffer, hash.byteOffset, hash.byteLength);
  const groups = [];
  for (let i = 0; i < 5; i++) groups.push(String(view.getUint32(4 * i) % 10000).padStart(4, '0'));
  return groups.join(' ');
}

// ---- X-Wing -------------------------------------------------------------------------------

/** A member's X-Wing key pair: {ek, dk} from a 32-byte seed (random when not given). */
export function memberKeys(seed = randomBytes(32)) {
  return keygen(seed);
}

export { encapsulate, decapsulate };

// ---- the sealed transport -----------------------------------------------------------------

/** A peer's name from its `hi`: 1 to 64 characters after trimming, else null. */
function validName(name) {
  if (typeof name !== 'string') return null;
  const t = name.trim();
  const n = Array.from(t).length;
  return n >= 1 && n <= MAX_NAME_CHARS ? t : null;
}

/**
 * Version 2 signaling for the call: the same API and events as `Signaling` (signaling.js), with
 * every relayed message sealed for its one receiver.
 *
 * `send(msg)` seals `msg` (without `to`) for peer `msg.to`; until that pair's keys are derived
 * it queues it (and returns true), and flushes the queue in order right after the pair's `hi`.
 * Incoming envelopes are opened and emitted as `signal` events carrying `from`. The pair state
 * (keys, sequence numbers) survives reconnects and resumes of the socket: the page keeps its
 * key pair; a `peer-left` drops that peer's pair.
 */
export class SealedSignaling extends EventTarget {
  /**
   * @param {object} opts
   * @param {string} opts.url     ws:// or wss:// address of /ws
   * @param {string} opts.room
   * @param {string} opts.name    sent sealed in `hi`, never to the server
   * @param {'browser'|'appliance'} [opts.kind]
   * @param {string|Uint8Array} opts.secret  the room secret
   * @param {Uint8Array} [opts.seed]         X-Wing key seed (tests); random by default
   * @param {(opts: object) => EventTarget} [opts.transport] makes the version 1 transport
   *   (tests: an in-memory fake); by default a `Signaling`. Called with {url, room, kind, key, ...}.
   * Any other option goes to the transport (backoff, ping, timeouts).
   */
  constructor({ url, room, name, kind = 'browser', secret, seed, transport, ...rest }) {
    super();
    const secretBytes = typeof secret === 'string' ? parseSecret(secret) : secret;
    if (!(secretBytes instanceof Uint8Array) || secretBytes.length !== SECRET_BYTES) {
      throw new Error('SealedSignaling needs the room secret (22 base64url characters)');
    }
    const n = validName(name);
    if (!n) throw new Error('SealedSignaling needs a name of 1 to 64 characters');
    this.url = url;
    this.room = room;
    this.name = n;
    this.kind = kind;
    this.safetyCode = null;
    this.version = PROTOCOL_VERSION;
    /** id -> member state; a read-only summary is `pairs()`. */
    this.members = new Map();
    this.transport = null;

    this._secret = secretBytes;
    this._seed = seed;
    this._makeTransport = transport ?? ((o) => new Signaling(o));
    this._transportOpts = rest;
    this._inbox = Promise.resolve();
    this._ready = null;
    this._stopped = false;
    this._self = null; // {ek, dk}
    this._roomKeys = null;
  }

  // The transport's view of the session, for call.js, people and tests.
  get id() { return this.transport?.id ?? null; }
  get state() { return this.transport?.state ?? (this._stopped ? 'closed' : 'idle'); }
  get connected() { return !!this.transport?.connected; }
  get maxPeers() { return this.transport?.maxPeers ?? null; }
  get iceServers() { return this.transport?.iceServers ?? []; }
  get reconnects() { return this.transport?.reconnects ?? 0; }
  get lastError() { return this.transport?.lastError ?? null; }
  /** The transport's socket (tests close it to simulate a drop). */
  get _ws() { return this.transport?._ws ?? null; }
  /** Our encapsulation key, b64. */
  get publicKey() { return this._self ? b64(this._self.ek) : null; }

  /** Make our key pair and the room's keys, then open the socket and join; resolves once joining started. */
  connect() {
    if (!this._ready) {
      this._ready = this._start().catch((err) => {
        console.error('sealed signaling could not start', err);
        this._emit('server-error', { code: 'seal-failed', message: String(err?.message ?? err) });
        this._emit('state', { state: 'failed' });
        throw err;
      });
    }
    return this._ready;
  }

  async _start() {
    this._roomKeys = await deriveRoomKeys(this._secret, this.room);
    this._self = memberKeys(this._seed);
    const key = await announce(this._roomKeys, this._self.ek);
    if (this._stopped) return;
    const t = this._makeTransport({
      ...this._transportOpts, url: this.url, room: this.room, kind: this.kind, key, v: PROTOCOL_VERSION,
    });
    this.transport = t;
    const pass = (type) => t.addEventListener(type, (e) => this._emit(type, e.detail));
    pass('state');
    pass('ice-servers');
    pass('server-error');
    const inbox = (type, fn) => t.addEventListener(type, (e) => {
      const detail = e.detail;
      this._inbox = this._inbox
        .then(() => (this._stopped ? undefined : fn.call(this, detail)))
        .catch((err) => console.warn(`sealed signaling: ${type}`, err));
    });
    inbox('welcome', this._welcome);
    inbox('peer-joined', this._peerJoined);
    inbox('peer-left', this._peerLeft);
    inbox('sealed', this._sealed);
    inbox('signal', this._plain);
    this._helloTimer = setInterval(() => {
      this._inbox = this._inbox.then(() => this._retryHellos()).catch((err) => console.warn('hello retry', err));
    }, HELLO_RETRY_MS / 2);
    await this._updateCode();
    t.connect();
  }

  /** Leave for good: the socket closes, every pair is forgotten. */
  leave() {
    this._stopped = true;
    clearInterval(this._helloTimer);
    this.members.clear();
    if (this.transport) this.transport.leave();
    else this._emit('state', { state: 'closed' });
  }

  /**
   * Seal `msg` for peer `msg.to`. False when the peer is unknown or refused, or the socket is
   * down (the message is dropped: call.js re-sends what matters after `welcome`); true when
   * sent or queued for the pair's keys.
   */
  send(msg) {
    const m = this.members.get(msg?.to);
    if (!m || m.refused) return false;
    const { to, ...plaintext } = msg;
    if (!m.keys) {
      m.queue.push(plaintext);
      if (m.queue.length > MAX_QUEUED) m.queue.shift();
      return true;
    }
    if (!this.connected) return false;
    this._sendEnvelope(m, plaintext);
    return true;
  }

  /**
   * Our frame key `{kid, key}` (key: 32 bytes) for peer `to`, sealed as
   * `{"type":"media-key","kid":K,"key":b64(key)}`. Only to a peer whose pair is ready (named
   * peers are); false when it is not, or the socket is down (the caller sends it again later).
   */
  sendMediaKey(to, { kid, key }) {
    if (!Number.isInteger(kid) || kid < 1 || kid > 255 || !(key instanceof Uint8Array) || key.length !== 32) {
      throw new TypeError('a frame key is {kid: 1..255, key: 32 bytes}');
    }
    const m = this.members.get(to);
    if (!m || m.refused || !m.keys || !this.connected) return false;
    this._sendEnvelope(m, { type: 'media-key', kid, key: b64(key) });
    return true;
  }

  /** What we know of each peer, for tests and debugging. */
  pairs() {
    return [...this.members.values()].map((m) => ({
      id: m.id,
      name: m.name,
      kind: m.kind,
      refused: m.refused,
      pair: m.keys?.pair ?? null,
      confirmed: m.confirmed,
      helloPending: !!m.hello,
      queued: m.queue.length,
      sent: m.keys?.sendSeq ?? 0,
      lastOpened: m.keys?.recvSeq ?? -1,
    }));
  }

  // ---- membership -----------------------------------------------------------------------

  async _welcome(detail) {
    if (!(detail.resumed && detail.sameId)) {
      // A fresh identity: to the others we are a new member, whatever pairs we had are gone.
      this.members.clear();
    }
    const listed = new Set();
    const peers = [];
    for (const info of detail.peers ?? []) {
      if (!info || typeof info.id !== 'string' || info.id === detail.id) continue;
      listed.add(info.id);
      peers.push(await this._learn(info));
    }
    // Peers we had a pair with but the server does not list (it restarted and they have not
    // rejoined yet, or they left while our socket was down): out of the safety code until they
    // are announced again.
    for (const m of this.members.values()) if (!listed.has(m.id)) m.confirmed = false;
    this._emit('welcome', { ...detail, peers });
    for (const p of peers) if (p.refused) this._emit('peer-refused', { id: p.id, reason: p.refused });
    await this._updateCode();
  }

  async _peerJoined({ peer }) {
    if (!peer || typeof peer.id !== 'string' || peer.id === this.id) return;
    const info = await this._learn(peer);
    this._emit('peer-joined', { peer: info });
    if (info.refused) this._emit('peer-refused', { id: info.id, reason: info.refused });
    await this._updateCode();
  }

  async _peerLeft({ id }) {
    this.members.delete(id);
    this._emit('peer-left', { id });
    await this._updateCode();
  }

  /**
   * A peer announced by the server (welcome or peer-joined): check its key, keep or start the
   * pair. Returns what call.js gets: {id, kind, name (from its hi, when known), refused}.
   */
  async _learn(info) {
    const pk = typeof info.key?.pk === 'string' ? info.key.pk : null;
    let m = this.members.get(info.id);
    if (m && !m.refused && (m.pk !== pk || info.key?.mac !== m.mac)) {
      // The same id with another key: another member now (or a server playing games).
      this.members.delete(info.id);
      m = null;
    }
    if (!m) {
      m = this._newMember(info, pk);
      this.members.set(m.id, m);
      const ek = await verifyAnnouncement(this._roomKeys, info.key);
      if (!ek) {
        this._refuse(m, REASONS.key, { quiet: true });
      } else if (equalBytes(ek, this._self.ek)) {
        // Our own key announced as somebody else's.
        this._refuse(m, REASONS.replayed, { quiet: true });
      } else {
        m.ek = ek;
      }
    }
    m.confirmed = true;
    if (!m.refused) {
      if (m.hello) this._sendRaw({ type: 'sealed', to: m.id, hello: m.hello.wire }); // it may have been lost
      else if (!m.keys) await this._sendHello(m, false);
    }
    return {
      id: m.id, kind: m.namedKind ?? m.kind, name: m.name ?? undefined, v: info.v, refused: m.refused ?? undefined,
    };
  }

  _newMember(info, pk) {
    return {
      id: info.id,
      kind: info.kind === 'appliance' ? 'appliance' : 'browser',
      pk,
      mac: info.key?.mac,
      ek: null,
      refused: null,
      confirmed: true,
      hello: null, // our hello waiting for the peer's: {ct, ss, wire}
      keys: null, // {pair, sendKey, recvKey, sendSeq, recvSeq, ek}
      queue: [],
      name: null,
      namedKind: null,
      sendChain: Promise.resolve(),
    };
  }

  _refuse(m, reason, { quiet = false } = {}) {
    if (m.refused) return;
    m.refused = reason;
    m.keys = null;
    m.hello = null;
    m.queue = [];
    if (!quiet) this._emit('peer-refused', { id: m.id, reason });
  }

  // ---- hellos and pair keys -------------------------------------------------------------

  async _sendHello(m, reply) {
    const { ct, ss } = encapsulate(m.ek);
    const wire = await makeHello(this._roomKeys, this._self.ek, m.ek, ct, reply);
    m.hello = { ct, ss, wire, at: Date.now() };
    this._sendRaw({ type: 'sealed', to: m.id, hello: wire });
  }

  /**
   * Our hello has waited long for the peer's: the peer may hold keys from it while its own
   * hello was lost (a socket dropped), and it ignores ours said again. A fresh one makes it
   * start over and answer.
   */
  async _retryHellos() {
    if (!this.connected) return;
    const now = Date.now();
    for (const m of this.members.values()) {
      if (m.hello && !m.keys && !m.refused && m.confirmed && now - m.hello.at > HELLO_RETRY_MS) {
        await this._sendHello(m, false);
      }
    }
  }

  async _hello(m, hello) {
    const checked = await checkHello(this._roomKeys, m.ek, this._self.ek, hello);
    const ctPeer = checked.ct;
    if (!ctPeer) {
      this._refuse(m, REASONS[checked.refusal]);
      return;
    }
    if (m.keys && equalBytes(m.keys.theirCt, ctPeer)) return; // the same hello said again
    if (!(m.hello && !m.keys)) {
      if (hello.reply) return; // a reply that finds no hello of ours waiting
      // The peer started over (or we had not greeted it yet): a fresh pair, answered now.
      m.keys = null;
      const { ct, ss } = encapsulate(m.ek);
      const wire = await makeHello(this._roomKeys, this._self.ek, m.ek, ct, true);
      m.hello = { ct, ss, wire, at: Date.now() };
      this._sendRaw({ type: 'sealed', to: m.id, hello: wire });
    }
    const ssPeer = decapsulate(ctPeer, this._self.dk);
    const k = await derivePairKeys(this._roomKeys.pairSalt, {
      ekSelf: this._self.ek, ekPeer: m.ek, ctSelf: m.hello.ct, ssSelf: m.hello.ss, ctPeer, ssPeer,
    });
    const [sendKey, recvKey] = await Promise.all([aesKey(k.sendKey), aesKey(k.recvKey)]);
    if (m.refused || this.members.get(m.id) !== m) return;
    m.hello = null;
    m.keys = { pair: k.pair, sendKey, recvKey, sendSeq: 0, recvSeq: -1, theirCt: ctPeer };
    // Who we are goes first on every new pair, then whatever waited for the keys.
    this._sendEnvelope(m, { type: 'hi', name: this.name, kind: this.kind });
    const queued = m.queue;
    m.queue = [];
    for (const msg of queued) this._sendEnvelope(m, msg);
  }

  // ---- envelopes ------------------------------------------------------------------------

  _sendEnvelope(m, plaintext) {
    const keys = m.keys;
    const seq = keys.sendSeq;
    keys.sendSeq += 1;
    m.sendChain = m.sendChain.then(async () => {
      const box = await sealBox(keys.sendKey, seq, plaintext);
      if (m.keys !== keys || this._stopped) return; // the pair started over meanwhile
      this._sendRaw({ type: 'sealed', to: m.id, pair: keys.pair, seq, box });
    }).catch((err) => console.warn('seal', err));
  }

  _sendRaw(msg) {
    return this.transport?.send(msg) ?? false;
  }

  async _sealed(msg) {
    const m = this.members.get(msg.from);
    if (!m || m.refused) return;
    if (msg.hello !== undefined) {
      await this._hello(m, msg.hello);
    } else if (msg.box !== undefined) {
      await this._envelope(m, msg);
    }
    await this._updateCode();
  }

  async _envelope(m, msg) {
    const keys = m.keys;
    if (!keys) return; // before the pair's keys: dropped
    const { pair, seq, box } = msg;
    if (typeof pair !== 'string' || !Number.isSafeInteger(seq) || seq < 0 || seq > MAX_SEQ
        || typeof box !== 'string' || !unb64(box)) {
      this._refuse(m, REASONS.altered);
      return;
    }
    if (pair !== keys.pair) return; // sealed for a pair that is gone: dropped quietly
    if (seq <= keys.recvSeq) {
      this._refuse(m, REASONS.replayed);
      return;
    }
    const plain = await openBox(keys.recvKey, seq, box);
    if (m.keys !== keys || m.refused) return;
    if (!plain) {
      this._refuse(m, REASONS.altered);
      return;
    }
    keys.recvSeq = seq;
    let obj;
    try {
      obj = JSON.parse(fromUtf8.decode(plain));
    } catch {
      return; // sealed by the peer itself, so not an attack: a broken peer
    }
    if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return;
    if (obj.type === 'hi') {
      const name = validName(obj.name);
      if (!name) return;
      m.name = name;
      m.namedKind = obj.kind === 'appliance' ? 'appliance' : 'browser';
      this._emit('peer-named', { id: m.id, name, kind: m.namedKind });
    } else if (obj.type === 'media-key') {
      const key = typeof obj.key === 'string' ? unb64(obj.key) : null;
      if (!Number.isInteger(obj.kid) || obj.kid < 1 || obj.kid > 255 || !key || key.length !== 32) {
        console.warn(`sealed signaling: a malformed frame key from ${m.id}: ignored`);
        return;
      }
      this._emit('media-key', { id: m.id, key: { kid: obj.kid, key } });
    } else if (RELAY_TYPES.has(obj.type)) {
      const { to, ...rest } = obj;
      this._emit('signal', { ...rest, from: m.id });
    }
  }

  /** A plain offer, answer, candidate or view: a sealed room never takes one. */
  async _plain(msg) {
    const m = this.members.get(msg?.from);
    if (!m || m.refused || !RELAY_TYPES.has(msg.type)) return;
    this._refuse(m, REASONS.clear);
    await this._updateCode();
  }

  // ---- safety code ----------------------------------------------------------------------

  async _updateCode() {
    if (!this._self) return;
    const eks = [this._self.ek];
    for (const m of this.members.values()) {
      if (m.keys && !m.refused && m.confirmed) eks.push(m.ek);
    }
    const code = await safetyCode(eks);
    if (code !== this.safetyCode) {
      this.safetyCode = code;
      this._emit('safety-code', { code });
    }
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
