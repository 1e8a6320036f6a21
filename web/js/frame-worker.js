// The frame worker: seals every encoded frame the page sends and opens every frame it receives
// (docs/protocol.md, "Frame encryption"; the cipher is frame-crypto.js). One module worker per
// page serves every sender and receiver of every connection:
//
// - RTCRtpScriptTransform (`rtctransform` events), where the browser has it;
// - else the streams of `createEncodedStreams()`, transferred here by the page ({op: 'streams'}).
//
// A transform's options say what it is: {op: 'seal', kind} for a sender, {op: 'open', kind, peer}
// for a receiver (peer: the signaling id of the member the frames come from). Frames of a codec
// the spec does not cover (only Opus and H.264; e2ee.js restricts negotiation to them), frames
// that do not open (no key with their kid, or a failed tag) and frames that fail to seal are
// dropped, never passed on in clear, and counted. Empty frames (what a padding-only RTP packet
// becomes) carry nothing and pass as they are. With `passthrough` (a benchmark's test switch)
// every frame passes unchanged.
//
// Messages from the page (e2ee.js):
//   {op: 'sealing', kid, key}        seal with this sender key from now on
//   {op: 'peer-key', peer, kid, key} a key peer sent us (into its ring)
//   {op: 'peer-gone', peer}          forget peer's ring;  {op: 'forget-all'}
//   {op: 'streams', readable, writable, options}   the createEncodedStreams path
//   test hooks (the page's `?e2ee-test=tap` only): {op: 'tap', on}, {op: 'tap-take', id},
//   {op: 'keys-held', id}; {op: 'reset-gaps'}
// To the page: {op: 'stats', stats} four times a second while something changes;
// {op: 'reply', id, ...}.

import { FrameCipher, KeyRing } from './frame-crypto.js';

const STATS_EVERY_MS = 250;
const KEYFRAME_REQUEST_EVERY_MS = 500;
/** Audio frames between two looks at a stream's codec (`streamCodec`). */
const AUDIO_CODEC_RECHECK = 50;
/** What the tap keeps of each stream: the newest frames only. */
const TAP_KEEP = { audio: 250, video: 60 };

/** Promise<FrameCipher> of the key frames are sealed with, or null before the page sent one. */
let sealing = null;
/** The same once it is ready (no waiting per frame). */
let sealingReady = null;
let sealingKid = null;
/** peer id -> KeyRing */
const rings = new Map();
const stats = {
  sealingKid: null,
  sealed: { audio: 0, video: 0 },
  sealFailed: 0,
  /** Empty frames passed as they are (both ways). */
  empty: 0,
  /** Frames of a codec frame encryption does not cover, dropped (sent or received). */
  unsupported: {},
  /** The transforms running: {seal: n, open: n}. */
  transforms: { seal: 0, open: 0 },
  /** peer id -> {opened, dropped: {audio, video}, kids: newest kid opened, maxVideoGapMs, lastVideoAt} */
  peers: {},
  errors: [],
  /** Time each frame spent here, by op and kind: {n, totalMs, maxMs} since the worker started. */
  timing: {},
};
let dirty = true;
/** The test tap: 'dir peer kind' -> frames, or null when off. */
let tap = null;

const now = () => performance.timeOrigin + performance.now();

function peerStats(peer) {
  stats.peers[peer] ??= {
    opened: { audio: 0, video: 0 },
    dropped: { audio: 0, video: 0 },
    lastKid: null,
    /** When (wall clock, ms) a frame with another kid than the one before first opened. */
    kidChangedAt: null,
    lastVideoAt: null,
    maxVideoGapMs: 0,
  };
  return stats.peers[peer];
}

function ring(peer) {
  let r = rings.get(peer);
  if (!r) {
    r = new KeyRing();
    rings.set(peer, r);
  }
  return r;
}

function error(what, err) {
  stats.errors.push(`${what}: ${err?.message ?? err}`);
  if (stats.errors.length > 20) stats.errors.shift();
  dirty = true;
}

/** 'opus', 'h264', or the frame's mime type (lower case) when it is another codec. */
function codecOf(frame, kind, buf) {
  let mime;
  try {
    mime = frame.getMetadata?.().mimeType;
  } catch {
    mime = undefined;
  }
  if (typeof mime === 'string' && mime) {
    const m = mime.toLowerCase();
    return m === 'audio/opus' ? 'opus' : m === 'video/h264' ? 'h264' : m;
  }
  if (kind === 'audio') return 'opus';
  // No mime type (older browsers): H.264 frames are Annex B, and start with a start code.
  const d = new Uint8Array(buf, 0, Math.min(4, buf.byteLength));
  const annexB = d.length >= 3 && d[0] === 0 && d[1] === 0 && (d[2] === 1 || (d[2] === 0 && d[3] === 1));
  return annexB ? 'h264' : 'unknown';
}

/**
 * The codec of a stream's frame, asked of the frame (`getMetadata()` builds a whole dictionary
 * each time) only where it can change: at every video keyframe (an encoder or a decoder of
 * another codec starts with one) and every AUDIO_CODEC_RECHECK audio frames (negotiation allows
 * only Opus; sealing treats any audio frame alike, TOC byte clear, so a frame of another codec
 * before the next check still goes out sealed).
 */
function streamCodec(frame, options, buf, state) {
  const recheck = options.kind === 'video'
    ? frame.type === 'key'
    : state.framesSinceCodecCheck >= AUDIO_CODEC_RECHECK;
  if (state.codec === null || recheck) {
    state.codec = codecOf(frame, options.kind, buf);
    state.framesSinceCodecCheck = 0;
  }
  state.framesSinceCodecCheck += 1;
  return state.codec;
}

function unsupported(codec) {
  stats.unsupported[codec] = (stats.unsupported[codec] ?? 0) + 1;
  dirty = true;
}

function record(dir, peer, kind, codec, bytes) {
  if (!tap) return;
  const k = `${dir} ${peer} ${kind}`;
  const list = tap.get(k) ?? [];
  tap.set(k, list);
  list.push({ dir, peer, kind, codec, at: now(), kid: bytes[bytes.length - 1], data: bytes.slice() });
  if (list.length > TAP_KEEP[kind]) list.shift();
}

/**
 * An empty frame carries nothing to protect, and sealed it could never open (it would be
 * shorter than a sealed frame): it passes as it is. Receivers get them from padding-only RTP
 * packets.
 */
function passEmpty(frame, buf, controller) {
  if (buf.byteLength !== 0) return false;
  stats.empty += 1;
  dirty = true;
  controller.enqueue(frame);
  return true;
}

async function sealFrame(frame, options, controller, state) {
  const buf = frame.data; // a copy each time it is read
  if (passEmpty(frame, buf, controller)) return;
  const codec = streamCodec(frame, options, buf, state);
  if (codec !== 'opus' && codec !== 'h264') {
    unsupported(codec);
    return;
  }
  const cipher = sealingReady ?? await sealing;
  if (!cipher) return;
  let out;
  try {
    const data = new Uint8Array(buf);
    out = codec === 'opus' ? await cipher.sealOpus(data) : await cipher.sealH264(data);
  } catch (err) {
    stats.sealFailed += 1;
    error('seal', err);
    return;
  }
  frame.data = out.buffer;
  stats.sealed[options.kind] += 1;
  dirty = true;
  record('sent', 'self', options.kind, codec, out);
  controller.enqueue(frame);
}

async function openFrame(frame, options, controller, state) {
  const buf = frame.data;
  if (passEmpty(frame, buf, controller)) return;
  const codec = streamCodec(frame, options, buf, state);
  const ps = peerStats(options.peer);
  if (codec !== 'opus' && codec !== 'h264') {
    unsupported(codec);
    ps.dropped[options.kind] += 1;
    return;
  }
  const data = new Uint8Array(buf);
  record('received', options.peer, options.kind, codec, data);
  const r = rings.get(options.peer);
  let out = null;
  if (r) {
    try {
      out = codec === 'opus' ? await r.openOpus(data) : await r.openH264(data);
    } catch (err) {
      error('open', err);
    }
  }
  dirty = true;
  if (!out) {
    ps.dropped[options.kind] += 1;
    // The decoder lost a frame: it needs a keyframe it can open (as the box asks for one).
    const t = state.transformer;
    if (options.kind === 'video' && typeof t?.sendKeyFrameRequest === 'function'
        && now() - state.keyframeAskedAt > KEYFRAME_REQUEST_EVERY_MS) {
      state.keyframeAskedAt = now();
      t.sendKeyFrameRequest().catch(() => {});
    }
    return;
  }
  frame.data = out.buffer;
  ps.opened[options.kind] += 1;
  const kid = data[data.length - 1];
  if (ps.lastKid !== null && kid !== ps.lastKid) ps.kidChangedAt = now();
  ps.lastKid = kid;
  if (options.kind === 'video') {
    const at = now();
    if (ps.lastVideoAt !== null) ps.maxVideoGapMs = Math.max(ps.maxVideoGapMs, Math.round(at - ps.lastVideoAt));
    ps.lastVideoAt = at;
  }
  controller.enqueue(frame);
}

/** Pipe one sender's or receiver's encoded frames through sealing or opening. */
function run(readable, writable, options, transformer = null) {
  const op = options?.op === 'open' ? 'open' : 'seal';
  const kind = options?.kind === 'audio' ? 'audio' : 'video';
  const opts = { ...options, op, kind, peer: String(options?.peer ?? '') };
  const state = { transformer, keyframeAskedAt: 0, codec: null, framesSinceCodecCheck: 0 };
  const timingKey = `${op} ${kind}`;
  stats.transforms[op] += 1;
  dirty = true;
  const transform = opts.passthrough // the benchmark's measure of the machinery alone
    ? (frame, controller) => controller.enqueue(frame)
    : op === 'seal'
      ? (frame, controller) => sealFrame(frame, opts, controller, state)
      : (frame, controller) => openFrame(frame, opts, controller, state);
  readable
    .pipeThrough(new TransformStream({
      async transform(frame, controller) {
        const t0 = performance.now();
        const t = (stats.timing[timingKey] ??= { in: 0, n: 0, totalMs: 0, maxMs: 0 });
        t.in += 1;
        try {
          await transform(frame, controller);
        } catch (err) {
          error(op, err); // one frame lost, the stream goes on
        }
        const ms = performance.now() - t0;
        t.n += 1;
        t.totalMs += ms;
        if (ms > t.maxMs) t.maxMs = ms;
      },
    }))
    .pipeTo(writable)
    .catch((err) => error(`${op} stream`, err))
    .finally(() => {
      stats.transforms[op] -= 1;
      dirty = true;
    });
}

if ('RTCTransformEvent' in self || 'onrtctransform' in self) {
  self.onrtctransform = (event) => {
    const t = event.transformer;
    run(t.readable, t.writable, t.options, t);
  };
}

self.onmessage = async ({ data: m }) => {
  switch (m?.op) {
    case 'sealing': {
      const next = FrameCipher.create({ kid: m.kid, key: m.key });
      next.then((c) => { if (sealing === next) sealingReady = c; }, (err) => error('sealing key', err));
      sealing = next;
      sealingReady = null;
      sealingKid = m.kid;
      stats.sealingKid = sealingKid;
      dirty = true;
      break;
    }
    case 'peer-key':
      try {
        ring(m.peer).insert({ kid: m.kid, key: m.key });
      } catch (err) {
        error('peer key', err);
      }
      peerStats(m.peer);
      dirty = true;
      break;
    case 'peer-gone':
      rings.delete(m.peer);
      break;
    case 'forget-all':
      rings.clear();
      break;
    case 'streams':
      run(m.readable, m.writable, m.options);
      break;
    case 'reset-gaps':
      for (const ps of Object.values(stats.peers)) {
        ps.maxVideoGapMs = 0;
        ps.lastVideoAt = null;
      }
      dirty = true;
      break;
    // ---- test hooks (the page sends these only with ?e2ee-test=tap) ----
    case 'tap':
      tap = m.on ? new Map() : null;
      break;
    case 'tap-take': {
      const frames = tap ? [...tap.values()].flat().sort((a, b) => a.at - b.at) : [];
      if (tap) tap = new Map();
      self.postMessage({ op: 'reply', id: m.id, frames }, frames.map((f) => f.data.buffer));
      break;
    }
    case 'keys-held': {
      const keys = {};
      for (const [peer, r] of rings) keys[peer] = r.keys();
      self.postMessage({ op: 'reply', id: m.id, keys });
      break;
    }
    default:
      break;
  }
};

setInterval(() => {
  if (!dirty) return;
  dirty = false;
  self.postMessage({ op: 'stats', stats });
}, STATS_EVERY_MS);
