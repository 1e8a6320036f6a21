// Helpers for the room box end-to-end test (box.test.js): the real `roombox` process, its WAV
// output, and the video counters a page reads with getStats. The shared helpers are in lib.js.
//
// Env: BOX_BIN (default target/debug/roombox; run.sh builds it), BOX_LOG (the box's RUST_LOG,
// default "info,str0m=warn"), E2E_VERBOSE=1 (the box's log on stderr as it runs).

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync, closeSync, fstatSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { artifactsDir, newSecret, repoRoot, waitFor } from './lib.js';

export const BOX_BIN = process.env.BOX_BIN || path.join(repoRoot, 'target', 'debug', 'roombox');

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/**
 * Start `roombox run` with the given flags. Its log (stdout and stderr, colours stripped) is kept
 * in `box.log` as lines; `waitForLog` polls it.
 *
 * The box's room secret (sealed signaling, docs/protocol.md version 2): a fresh one (or
 * `secret`) is written to `<state dir>/room-secret` (mode 0600), the state directory being the
 * one `extraArgs` names with `--state-dir`, else a new temporary directory passed as
 * `--state-dir` and removed when the box exits. Pages join the box's room with `box.secret`
 * (`joinRoom(..., { secret: box.secret })`).
 */
export function startBox({ signalUrl, room, name, video = 'test', audioIn = 'test', audioOut, width, height, fps, iceLoopback = true, extraArgs = [], netns, env = {}, secret = newSecret() }) {
  const given = extraArgs.indexOf('--state-dir');
  const stateDir = given >= 0 ? extraArgs[given + 1] : mkdtempSync(path.join(os.tmpdir(), 'roombox-e2e-state-'));
  const secretFile = path.join(stateDir, 'room-secret');
  writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  chmodSync(secretFile, 0o600);
  const args = [
    'run', '--signal-url', signalUrl, '--room', room, '--name', name,
    '--video', video, '--audio-in', audioIn, '--audio-out', audioOut,
    '--width', String(width), '--height', String(height), '--fps', String(fps),
    ...(iceLoopback ? ['--ice-loopback'] : []), ...extraArgs,
    ...(given >= 0 ? [] : ['--state-dir', stateDir]),
  ];
  // In a namespace of tests/e2e/netlab.js when asked (`ip netns exec` execs the box itself).
  const [cmd, argv] = netns ? ['ip', ['netns', 'exec', netns, BOX_BIN, ...args]] : [BOX_BIN, args];
  const proc = spawn(cmd, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.BOX_LOG || 'info,str0m=warn', NO_COLOR: '1', ...env },
  });
  const log = [];
  const t0 = Date.now();
  let partial = { out: '', err: '' };
  const feed = (which) => (d) => {
    const text = partial[which] + d.toString();
    const lines = text.split('\n');
    partial[which] = lines.pop();
    for (const l of lines) {
      const line = l.replace(ANSI, '');
      log.push(line);
      if (process.env.E2E_VERBOSE) process.stderr.write(`[box +${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}\n`);
    }
  };
  proc.stdout.on('data', feed('out'));
  proc.stderr.on('data', feed('err'));
  const exited = once(proc, 'exit').then(([code, sig]) => {
    if (given < 0) rmSync(stateDir, { recursive: true, force: true });
    return { code, sig };
  });
  const box = {
    proc,
    args,
    /** The room secret the box read from its state directory: pages need it to join. */
    secret,
    stateDir,
    log,
    exited,
    running: () => proc.exitCode === null && proc.signalCode === null,
    text: () => log.concat(partial.out || [], partial.err || []).join('\n'),
    /** Lines matching `re`. */
    lines: (re) => log.filter((l) => re.test(l)),
    /** Wait until at least `count` log lines match `re`; returns the matching lines. */
    async waitForLog(re, { count = 1, timeout = 30000 } = {}) {
      return waitFor(() => {
        if (!box.running()) throw new Error(`roombox exited (${proc.exitCode ?? proc.signalCode}):\n${box.text().slice(-4000)}`);
        const hits = box.lines(re);
        return hits.length >= count ? hits : null;
      }, { timeout, what: `box log ${re} x${count}` });
    },
    async kill(signal = 'SIGTERM') {
      if (!box.running()) return;
      proc.kill(signal);
      const timer = setTimeout(() => { if (box.running()) proc.kill('SIGKILL'); }, 5000);
      await exited;
      clearTimeout(timer);
    },
  };
  return box;
}

/**
 * Read a WAV file as it is now (the box keeps its header valid while it writes): parses the RIFF
 * chunks and returns {sampleRate, channels, bitsPerSample, samples} for 16-bit PCM, where
 * `samples` holds the first channel. The data length is the smaller of the header's and the
 * bytes actually present (the writer may be a little ahead of the header).
 */
export function readWav(file) {
  const fd = openSync(file, 'r');
  let buf;
  try {
    const size = fstatSync(fd).size;
    buf = Buffer.alloc(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    buf = buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') {
    throw new Error(`${file}: not a RIFF/WAVE file (${buf.length} bytes)`);
  }
  const riffSize = buf.readUInt32LE(4);
  let fmt = null;
  let data = null;
  let pos = 12;
  while (pos + 8 <= buf.length) {
    const id = buf.toString('ascii', pos, pos + 4);
    const len = buf.readUInt32LE(pos + 4);
    const body = pos + 8;
    if (id === 'fmt ') {
      if (len < 16) throw new Error(`${file}: fmt chunk of ${len} bytes`);
      fmt = {
        format: buf.readUInt16LE(body),
        channels: buf.readUInt16LE(body + 2),
        sampleRate: buf.readUInt32LE(body + 4),
        byteRate: buf.readUInt32LE(body + 8),
        blockAlign: buf.readUInt16LE(body + 12),
        bitsPerSample: buf.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      const end = Math.min(body + len, buf.length);
      data = { offset: body, headerLen: len, bytes: buf.subarray(body, end) };
      break;
    }
    pos = body + len + (len & 1);
  }
  if (!fmt) throw new Error(`${file}: no fmt chunk`);
  if (!data) throw new Error(`${file}: no data chunk`);
  if (fmt.format !== 1 || fmt.bitsPerSample !== 16) {
    throw new Error(`${file}: not 16-bit PCM (format ${fmt.format}, ${fmt.bitsPerSample} bits)`);
  }
  const frames = Math.floor(data.bytes.length / fmt.blockAlign);
  const samples = new Int16Array(frames);
  for (let i = 0; i < frames; i++) samples[i] = data.bytes.readInt16LE(i * fmt.blockAlign);
  return { ...fmt, riffSize, fileSize: buf.length, dataOffset: data.offset, dataLen: data.headerLen, samples };
}

/** Root mean square of 16-bit samples, in sample units (0..32768). */
export function rms(samples) {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (const s of samples) sum += s * s;
  return Math.sqrt(sum / samples.length);
}

/** The last `seconds` of a WAV read by readWav (fewer if the file is shorter). */
export function lastSeconds(wav, seconds) {
  const n = Math.min(wav.samples.length, Math.round(seconds * wav.sampleRate));
  return wav.samples.subarray(wav.samples.length - n);
}

/**
 * Inbound video on `page` from the peer named `name`, read with getStats, with the RTT of the
 * selected candidate pair: {state, framesDecoded, frameWidth, frameHeight, framesPerSecond,
 * jitterBufferMs, rttMs, at} or null when there is no such peer.
 */
export function videoFrom(page, name) {
  return page.evaluate(async (who) => {
    const call = window.roombox.call;
    if (!call) return null;
    const peer = [...call.peers.values()].find((p) => p.name === who);
    if (!peer) return null;
    const out = {
      id: peer.id,
      state: peer.pc?.connectionState ?? 'none',
      framesDecoded: 0,
      frameWidth: 0,
      frameHeight: 0,
      framesPerSecond: null,
      jitterBufferMs: null,
      rttMs: null,
      at: performance.now(),
    };
    if (!peer.pc) return out;
    const report = await peer.pc.getStats();
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        out.framesDecoded += s.framesDecoded ?? 0;
        out.frameWidth = s.frameWidth ?? out.frameWidth;
        out.frameHeight = s.frameHeight ?? out.frameHeight;
        out.framesPerSecond = s.framesPerSecond ?? out.framesPerSecond;
        if (s.jitterBufferEmittedCount) {
          out.jitterBufferMs = Math.round((1000 * s.jitterBufferDelay) / s.jitterBufferEmittedCount);
        }
        out.at = s.timestamp ?? out.at;
      }
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded' && s.currentRoundTripTime !== undefined) {
        out.rttMs = Math.round(s.currentRoundTripTime * 1000 * 10) / 10;
      }
    });
    return out;
  }, name);
}

/** Wait until `page` decodes video from `name` at width x height; returns the stats then. */
export async function waitForVideo(page, name, { width, height, timeout = 30000, what } = {}) {
  let last;
  return waitFor(async () => {
    last = await videoFrom(page, name);
    return last && last.framesDecoded > 0 && last.frameWidth === width && last.frameHeight === height ? last : null;
  }, { timeout, what: what ?? `video from ${name} at ${width}x${height}` }).catch((err) => {
    err.message += `; last: ${JSON.stringify(last)}`;
    throw err;
  });
}

/**
 * The decode rate of video from `name` on `page`: frames decoded over at least `seconds` of
 * getStats time. Returns {fps, frames, seconds, first, last}.
 */
export async function measureFps(page, name, seconds = 4) {
  const first = await videoFrom(page, name);
  if (!first) throw new Error(`no peer named ${name}`);
  let last = first;
  await waitFor(async () => {
    last = await videoFrom(page, name);
    return last && last.at - first.at >= seconds * 1000;
  }, { timeout: seconds * 1000 + 30000, interval: 200, what: `${seconds} s of stats from ${name}` });
  const dt = (last.at - first.at) / 1000;
  const frames = last.framesDecoded - first.framesDecoded;
  return { fps: frames / dt, frames, seconds: dt, first, last };
}

/**
 * Measure the decode rate in windows of `seconds` until one reaches `atLeast` fps or `timeout`
 * passes (a shared machine has bursts of load: one good window shows the pipeline can keep the
 * rate). Returns {best, windows} where `windows` lists every window's rate.
 */
export async function measureFpsUntil(page, name, { atLeast, seconds = 4, timeout = 60000 }) {
  const deadline = Date.now() + timeout;
  const windows = [];
  let best = null;
  do {
    const r = await measureFps(page, name, seconds);
    windows.push(r.fps);
    if (!best || r.fps > best.fps) best = r;
    if (r.fps >= atLeast) break;
  } while (Date.now() + seconds * 1000 < deadline);
  return { best, windows };
}

/** Save the box's log to the artifacts directory. */
export function saveBoxLog(label, box) {
  if (!box) return;
  mkdirSync(artifactsDir, { recursive: true });
  writeFileSync(path.join(artifactsDir, `${label}-roombox.log`), `${BOX_BIN} ${box.args.join(' ')}\n${box.text()}\n`);
}

/** The page's selected candidate pair with `who`: both ends' type, address and protocol. */
export async function selectedPair(page, who) {
  return page.evaluate(async (name) => {
    const peer = [...(window.roombox.call?.peers.values() ?? [])].find((x) => x.name === name);
    if (!peer?.pc) return null;
    const stats = await peer.pc.getStats();
    for (const s of stats.values()) {
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const pair = stats.get(s.selectedCandidatePairId);
        const end = (id) => {
          const c = stats.get(id);
          return c && { type: c.candidateType, address: c.address, port: c.port, protocol: c.protocol, relayProtocol: c.relayProtocol };
        };
        return { local: end(pair.localCandidateId), remote: end(pair.remoteCandidateId) };
      }
    }
    return null;
  }, who);
}
