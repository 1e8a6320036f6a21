// Frame encryption in the page (docs/protocol.md, "Frame encryption"): the key schedule
// (frame-keys.js) driven by sealed signaling's events, keys sent and received as sealed
// `media-key` envelopes (seal.js), and the encoded transforms that seal what we send and open
// what we receive (frame-worker.js, with the cipher of frame-crypto.js). No DOM here; call.js
// attaches every sender and receiver, main.js shows whether it is active.
//
// Signaling events and what they do:
//   peer-named    the peer's pair is ready: our key moves on by ratchet (used at once) and
//                 every named peer is sent it
//   peer-left, peer-refused   a fresh key with the next kid, sent to the remaining named peers,
//                 used a second later
//   media-key     the peer's key, into the ring its frames are opened with
//   welcome       as somebody new: everything starts over; resumed with our id: our newest key
//                 is sent again (one sent while the socket was down is lost)
//
// Test-only switches (tests/e2e, bench/e2ee): the page's URL query `?e2ee-test=A,B`, read by
// `testSwitches`, and honoured only on a page served from a loopback address (127.0.0.1, ::1,
// localhost), where the tests and benchmarks run; a deployed server's pages ignore them:
//   withhold-keys    the receive side is given no key: nothing from others opens
//   withhold-own-key our media-key is never sent: nobody can open what we send
//   off              no frame encryption at all (benchmarks only; the page says it is off)
//   passthrough      transforms that pass every frame as it is (benchmarks only: what the
//                    encoded-transform machinery costs by itself; the page says it is off)
//   encoded-streams  createEncodedStreams even where RTCRtpScriptTransform exists
//   tap              keep the frames as sent and received, and let tests read the keys held
//                    (`window.roombox.frames.tapTake()`, `.keysHeld()`)
// A page with a switch that changes what it sends cannot make the others accept anything
// unsealed: they still drop whatever does not open.

import { FrameKeySchedule } from './frame-keys.js';

export const TEST_SWITCHES = Object.freeze(['withhold-keys', 'withhold-own-key', 'off', 'passthrough', 'encoded-streams', 'tap']);

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/**
 * The test switches in a URL query (`?e2ee-test=a,b`): a Set of the known ones; empty on a page
 * not served from a loopback address.
 */
export function testSwitches(search = globalThis.location?.search ?? '', hostname = globalThis.location?.hostname ?? 'localhost') {
  if (!LOOPBACK_HOSTS.has(hostname)) return new Set();
  const value = new URLSearchParams(search).get('e2ee-test') ?? '';
  return new Set(value.split(',').map((s) => s.trim()).filter((s) => TEST_SWITCHES.includes(s)));
}

/** Which encoded-transform API this browser offers: 'script-transform', 'encoded-streams' or null. */
export function transformApi({ preferStreams = false } = {}) {
  const streams = typeof RTCRtpSender !== 'undefined'
    && typeof RTCRtpSender.prototype.createEncodedStreams === 'function';
  const script = typeof RTCRtpScriptTransform === 'function';
  if (preferStreams && streams) return 'encoded-streams';
  if (script) return 'script-transform';
  return streams ? 'encoded-streams' : null;
}

const VIDEO_EXTRAS = /^video\/(rtx|red|ulpfec|flexfec-03)$/i;

/**
 * What a transceiver of `kind` may negotiate: Opus for audio, H.264 for video (the codecs frame
 * encryption covers), with video's retransmission and FEC; null when the browser has none.
 */
export function allowedCodecs(kind) {
  const caps = globalThis.RTCRtpReceiver?.getCapabilities?.(kind)?.codecs ?? [];
  if (kind === 'audio') {
    const opus = caps.filter((c) => /^audio\/opus$/i.test(c.mimeType));
    return opus.length ? opus : null;
  }
  const h264 = caps.filter((c) => /^video\/h264$/i.test(c.mimeType));
  if (!h264.length) return null;
  // Packetization mode 1 first: what the box and every browser speak.
  const mode1 = (c) => (/packetization-mode=1/.test(c.sdpFmtpLine ?? '') ? 0 : 1);
  h264.sort((a, b) => mode1(a) - mode1(b));
  return [...h264, ...caps.filter((c) => VIDEO_EXTRAS.test(c.mimeType))];
}

const TRANSPORT_CC = /transport-wide-cc/;

/**
 * An audio transceiver that does not negotiate the transport-wide congestion control header
 * extension (bandwidth estimation then rests on video, as it did in browsers for years).
 *
 * Why: the box (str0m 0.25) probes for bandwidth before its video exists with padding packets
 * of SSRC 0 on the first media that has transport-cc, the audio m-line. Chromium makes an
 * unsignaled receive stream for SSRC 0 on that m-line, and that stream takes the receiver's
 * frame transform too: the box's audio frames, once opened, then go to the SSRC 0 stream (or
 * nowhere), and the page plays none of them. Without transport-cc on audio the box probes only
 * on video, whose padding rides on its signaled RTX stream. Where the browser cannot choose
 * header extensions this does nothing.
 */
export function withoutTransportCc(transceiver) {
  if (typeof transceiver.getHeaderExtensionsToNegotiate !== 'function'
      || typeof transceiver.setHeaderExtensionsToNegotiate !== 'function') return;
  const exts = transceiver.getHeaderExtensionsToNegotiate();
  if (!exts.some((e) => TRANSPORT_CC.test(e.uri) && e.direction !== 'stopped')) return;
  try {
    transceiver.setHeaderExtensionsToNegotiate(exts.map((e) => (TRANSPORT_CC.test(e.uri) ? { ...e, direction: 'stopped' } : e)));
  } catch (err) {
    console.warn('setHeaderExtensionsToNegotiate', err);
  }
}

export class FrameEncryption extends EventTarget {
  /**
   * @param {object} opts
   * @param {import('./seal.js').SealedSignaling} opts.signaling
   * @param {Set<string>} [opts.test] test switches (testSwitches)
   * @param {() => Worker} [opts.makeWorker] tests: a stand-in for the frame worker
   * @param {string} [opts.api] tests: the transform API to assume
   */
  constructor({ signaling, test = new Set(), makeWorker, api }) {
    super();
    this.signaling = signaling;
    this.test = test;
    this.api = test.has('off') ? null : api ?? transformApi({ preferStreams: test.has('encoded-streams') });
    /** Why frames are not encrypted end to end, or null while they are. */
    this.passthrough = test.has('passthrough');
    this.reason = test.has('off') || this.passthrough ? 'turned off by a test switch'
      : this.api ? null : 'this browser cannot encrypt media frames (no encoded transforms)';
    this.schedule = new FrameKeySchedule();
    this.stats = { active: false, api: this.api, sealingKid: null, sealed: { audio: 0, video: 0 }, peers: {} };
    this.closed = false;
    this._attached = new WeakSet();
    this._chain = Promise.resolve();
    this._timer = null;
    this._sealingPosted = null;
    this._replies = new Map();
    this._nextReply = 1;
    this.worker = null;
    if (this.api) {
      try {
        this.worker = makeWorker ? makeWorker()
          : new Worker(new URL('./frame-worker.js', import.meta.url), { type: 'module', name: 'roombox frames' });
      } catch (err) {
        this.api = null;
        this.reason = `the frame worker did not start (${err?.message ?? err})`;
      }
    }
    if (this.worker) {
      this.worker.onmessage = (e) => this._fromWorker(e.data);
      this.worker.onerror = (e) => {
        console.error('frame worker', e.message ?? e);
        this._fail(`the frame worker failed (${e.message ?? 'error'})`);
      };
      this._postSealing();
    }
    this._listen();
    this._updateStats();
  }

  /** Every frame we send is sealed and every frame we play was opened. */
  get active() {
    return !!this.worker && !this.closed && this.reason === null;
  }

  /** Transforms run (frame encryption, or a benchmark's pass-through). */
  get transforming() {
    return !!this.worker && !this.closed && (this.reason === null || this.passthrough);
  }

  /** RTCPeerConnection options the transforms need. */
  pcConfig() {
    return this.transforming && this.api === 'encoded-streams' ? { encodedInsertableStreams: true } : {};
  }

  /** Seal what `sender` sends (`kind`: 'audio' or 'video'). Safe to call again. */
  attachSender(sender, kind) {
    this._attach(sender, { op: 'seal', kind });
  }

  /** Open what `receiver` gets from peer `peer` with that peer's ring. Safe to call again. */
  attachReceiver(receiver, peer) {
    this._attach(receiver, { op: 'open', kind: receiver.track?.kind ?? 'audio', peer });
  }

  _attach(target, opts) {
    if (!this.worker || this._attached.has(target)) return;
    const options = this.passthrough ? { ...opts, passthrough: true } : opts;
    this._attached.add(target);
    try {
      if (this.api === 'script-transform') {
        target.transform = new RTCRtpScriptTransform(this.worker, options);
      } else {
        const { readable, writable } = target.createEncodedStreams();
        this.worker.postMessage({ op: 'streams', readable, writable, options }, [readable, writable]);
      }
    } catch (err) {
      console.error('frame transform', err);
      this._fail(`a frame transform could not be set (${err?.message ?? err})`);
    }
  }

  /** The call dropped this peer: forget its keys. */
  forgetPeer(id) {
    this.worker?.postMessage({ op: 'peer-gone', peer: id });
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this._timer);
    for (const [type, fn] of this._listeners) this.signaling.removeEventListener(type, fn);
    this.worker?.terminate();
    for (const { reject } of this._replies.values()) reject(new Error('closed'));
    this._replies.clear();
    this._updateStats();
  }

  // ---- the key schedule ---------------------------------------------------------------

  _listen() {
    const on = {
      'peer-named': ({ id }) => this._serial(async () => this._send(await this.schedule.peerReady(id))),
      'peer-left': ({ id }) => this._serial(() => this._gone(id)),
      'peer-refused': ({ id }) => this._serial(() => {
        this.forgetPeer(id);
        this._gone(id);
      }),
      'media-key': ({ id, key }) => {
        if (this.test.has('withhold-keys')) return;
        this.worker?.postMessage({ op: 'peer-key', peer: id, kid: key.kid, key: key.key });
      },
      welcome: ({ resumed, sameId }) => this._serial(() => {
        if (resumed && sameId) {
          this._send(this.schedule.sendAll());
        } else {
          this.schedule.clear();
          this.worker?.postMessage({ op: 'forget-all' });
        }
      }),
    };
    this._listeners = Object.entries(on).map(([type, fn]) => [type, (e) => fn(e.detail)]);
    for (const [type, fn] of this._listeners) this.signaling.addEventListener(type, fn);
  }

  /** Key schedule steps run one at a time, in the order signaling told them. */
  _serial(step) {
    this._chain = this._chain
      .then(async () => {
        if (this.closed || !this.worker) return;
        await step();
        this._postSealing();
      })
      .catch((err) => console.warn('frame keys', err));
  }

  _gone(id) {
    this._send(this.schedule.peerGone(id, Date.now()));
  }

  _send(messages) {
    if (this.test.has('withhold-own-key')) return;
    for (const { to, key } of messages) this.signaling.sendMediaKey(to, key);
  }

  /** Tell the worker the key to seal with now; wake up when a waiting key's moment comes. */
  _postSealing() {
    const key = this.schedule.sealingKey(Date.now());
    if (key !== this._sealingPosted) {
      this._sealingPosted = key;
      this.worker.postMessage({ op: 'sealing', kid: key.kid, key: key.key });
      this.stats = { ...this.stats, sealingKid: key.kid };
    }
    clearTimeout(this._timer);
    const at = this.schedule.pollTimeout();
    if (at !== null) {
      this._timer = setTimeout(() => this._serial(() => {}), Math.max(0, at - Date.now()));
    }
  }

  // ---- the worker -----------------------------------------------------------------------

  _fromWorker(m) {
    if (m?.op === 'stats') {
      this._workerStats = m.stats;
      this._updateStats();
    } else if (m?.op === 'reply') {
      const r = this._replies.get(m.id);
      this._replies.delete(m.id);
      r?.resolve(m);
    }
  }

  _updateStats() {
    const w = this._workerStats ?? {};
    this.stats = Object.freeze({
      active: this.active,
      transforming: this.transforming,
      api: this.api,
      reason: this.reason,
      test: [...this.test],
      sealingKid: w.sealingKid ?? this.stats?.sealingKid ?? null,
      keyKid: this.schedule.key.kid,
      keyed: [...this.schedule.keyed],
      sealed: w.sealed ?? { audio: 0, video: 0 },
      sealFailed: w.sealFailed ?? 0,
      empty: w.empty ?? 0,
      timing: w.timing ?? {},
      unsupported: w.unsupported ?? {},
      transforms: w.transforms ?? { seal: 0, open: 0 },
      peers: w.peers ?? {},
      errors: w.errors ?? [],
    });
    this.dispatchEvent(new CustomEvent('stats', { detail: this.stats }));
  }

  _fail(reason) {
    if (this.reason && !this.passthrough) return;
    this.reason = reason;
    this._updateStats();
    this.dispatchEvent(new CustomEvent('change', { detail: { active: false, reason } }));
  }

  _ask(msg) {
    if (!this.worker || this.closed) return Promise.reject(new Error('no frame worker'));
    const id = this._nextReply++;
    return new Promise((resolve, reject) => {
      this._replies.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id });
    });
  }

  // ---- test hooks (?e2ee-test=tap) ------------------------------------------------------

  _tapOnly() {
    if (!this.test.has('tap')) throw new Error('a test hook: open the page with ?e2ee-test=tap');
  }

  /** Start keeping the newest frames sent and received (test hook). */
  tapStart() {
    this._tapOnly();
    this.worker?.postMessage({ op: 'tap', on: true });
  }

  /** The frames kept since the last take, oldest first: [{dir, peer, kind, codec, at, kid, data}]. */
  async tapTake() {
    this._tapOnly();
    return (await this._ask({ op: 'tap-take' })).frames;
  }

  /** The keys this page holds from each peer, oldest first: {peer: [{kid, key}]} (test hook). */
  async keysHeld() {
    this._tapOnly();
    return (await this._ask({ op: 'keys-held' })).keys;
  }

  /** Start measuring the longest gap between opened video frames of each peer afresh. */
  resetGaps() {
    this.worker?.postMessage({ op: 'reset-gaps' });
  }
}
