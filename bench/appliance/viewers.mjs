// The box seen from real viewers: glass-to-glass latency read back from the test pattern's frame
// code, time from clicking Join to the first decoded frame, and the box's CPU and resident memory
// with 1 and with 5 viewers. Run it through run-viewers.sh (release binaries, a loopback-only
// network namespace, VIEWERS.md); it prints one JSON object on stdout.
//
// Env: SIGNAL_BIN, BOX_BIN (release binaries), CHROMIUM; WIDTH HEIGHT FPS (1280 720 30);
// JOINS (5), WINDOW_S (20), SETTLE_S (5), VIEWPORT ("480x360"), BENCH_VERBOSE=1 (box log);
// CHROMIUM_EXTRA: the executable for the browsers of viewers 2-5 (run-viewers.sh passes a wrapper
// that runs Chromium under SCHED_IDLE: those viewers stand for people on other machines, and
// should not starve the box or the measuring page of the two cores).

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { startServer, CHROMIUM, CHROMIUM_ARGS } from '../../tests/e2e/lib.js';

// playwright-core as tests/e2e installed it.
const { chromium } = createRequire(new URL('../../tests/e2e/lib.js', import.meta.url))('playwright-core');

const WIDTH = Number(process.env.WIDTH || 1280);
const HEIGHT = Number(process.env.HEIGHT || 720);
const FPS = Number(process.env.FPS || 30);
const JOINS = Number(process.env.JOINS || 5);
const WINDOW_S = Number(process.env.WINDOW_S || 20);
const SETTLE_S = Number(process.env.SETTLE_S || 5);
const [VW, VH] = (process.env.VIEWPORT || '480x360').split('x').map(Number);
const BOX_NAME = 'Board Room';
const ROOM = 'bench';
const CLK_TCK = Number(process.env.CLK_TCK || 100);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => process.stderr.write(`[viewers +${((Date.now() - T0) / 1000).toFixed(1)}s] ${a.join(' ')}\n`);
const T0 = Date.now();

// ---------------------------------------------------------------------------------------------
// Statistics and /proc

function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function summary(values) {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (s.length === 0) return { n: 0 };
  const r = (v) => Math.round(v * 10) / 10;
  return {
    n: s.length,
    min: r(s[0]),
    p50: r(quantile(s, 0.5)),
    p95: r(quantile(s, 0.95)),
    max: r(s[s.length - 1]),
    mean: r(s.reduce((a, b) => a + b, 0) / s.length),
  };
}

/** utime + stime of a process or thread, in clock ticks. */
function cpuTicks(statPath) {
  const text = readFileSync(statPath, 'utf8');
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ": state is field 3, utime field 14, stime field 15.
  return Number(rest[11]) + Number(rest[12]);
}

/**
 * Per thread: utime+stime in ticks, and from schedstat the time spent runnable but waiting for a
 * core (ns): the direct measure of being starved of CPU.
 */
function threadTicks(pid) {
  const out = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const [, waitNs, slices] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ').map(Number);
      out[`${comm}#${tid}`] = { ticks: cpuTicks(`/proc/${pid}/task/${tid}/stat`), waitNs, slices };
    } catch {
      // the thread ended
    }
  }
  return out;
}

function memKb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssKb: get('VmRSS'), hwmKb: get('VmHWM'), anonKb: get('RssAnon'), fileKb: get('RssFile') };
}

/** Busy and total jiffies of the whole machine (all cores), from /proc/stat. */
function machineTicks() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = f[3] + f[4];
  return { busy: total - idle, total };
}

/**
 * utime+stime summed over every Chromium process (the viewers), split by priority: nice 0 is the
 * measuring viewer's browser, lowered priority the other viewers' browsers. Processes that ended during
 * the window are not counted.
 */
function chromiumTicks() {
  const sum = { normal: 0, niced: 0 };
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      if (!comm.startsWith('chrom')) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(rest[11]) + Number(rest[12]);
      // nice (field 19) above 0 or policy (field 41) SCHED_IDLE (5): the other viewers.
      if (Number(rest[16]) > 0 || Number(rest[38]) === 5) sum.niced += ticks;
      else sum.normal += ticks;
    } catch {
      // gone
    }
  }
  return sum;
}

/**
 * Samples the box's CPU once a second for `seconds`: per-second percentages (of one core), the
 * window's average, per-thread shares, the machine's load and the viewers' (Chromium) CPU.
 */
async function sampleBox(box, seconds) {
  const pid = box.proc.pid;
  const wall0 = Date.now();
  const t0 = performance.now();
  const c0 = cpuTicks(`/proc/${pid}/stat`);
  const th0 = threadTicks(pid);
  const m0 = machineTicks();
  const ch0 = chromiumTicks();
  const perSecond = [];
  const rss = [];
  let prev = { t: t0, c: c0 };
  for (let i = 0; i < seconds; i++) {
    await sleep(1000 - ((performance.now() - t0) % 1000));
    const now = { t: performance.now(), c: cpuTicks(`/proc/${pid}/stat`) };
    perSecond.push((100 * (now.c - prev.c)) / CLK_TCK / ((now.t - prev.t) / 1000));
    rss.push(memKb(pid).rssKb);
    prev = now;
  }
  const dt = (prev.t - t0) / 1000;
  const th1 = threadTicks(pid);
  const m1 = machineTicks();
  const ch1 = chromiumTicks();
  const threads = {};
  const waits = {};
  for (const [k, v] of Object.entries(th1)) {
    const before = th0[k] ?? { ticks: 0, waitNs: 0, slices: 0 };
    const pct = (100 * (v.ticks - before.ticks)) / CLK_TCK / dt;
    const name = k.split('#')[0];
    threads[name] = Math.round(((threads[name] ?? 0) + pct) * 10) / 10;
    // Milliseconds per second spent waiting for a core, and per wake-up (scheduling slice).
    const w = (v.waitNs - before.waitNs) / 1e6;
    const n = v.slices - before.slices;
    const acc = waits[name] ?? { msPerS: 0, waitMs: 0, slices: 0 };
    acc.waitMs += w;
    acc.slices += n;
    acc.msPerS = Math.round((acc.waitMs / dt) * 10) / 10;
    acc.perSliceMs = acc.slices ? Math.round((acc.waitMs / acc.slices) * 100) / 100 : null;
    waits[name] = acc;
  }
  for (const v of Object.values(waits)) v.waitMs = Math.round(v.waitMs);
  const cores = (m1.total - m0.total) / CLK_TCK / dt;
  const mem = memKb(pid);
  // The driver's status lines in the window (each covers the 5 s before it): frames sent per
  // second, the encoder's target bitrate, and the encoder's "cannot keep up" warnings.
  const wall1 = Date.now();
  const inWindow = (l) => {
    const t = Date.parse(l.slice(0, l.indexOf(' ')));
    return t > wall0 + 2500 && t <= wall1 + 2500;
  };
  const status = box.lines.filter((l) => l.includes('status:') && inWindow(l));
  const num = (l, k) => Number(new RegExp(`${k}=([\\d.]+)`).exec(l)?.[1] ?? NaN);
  const sentFps = status.map((l) => num(l, 'fps'));
  const kbps = status.map((l) => num(l, 'kbps'));
  const skipped = box.lines.filter((l) => l.includes('cannot keep up') && inWindow(l)).length;
  return {
    seconds: Math.round(dt * 10) / 10,
    cpuPct: Math.round(((100 * (prev.c - c0)) / CLK_TCK / dt) * 10) / 10,
    cpuPerSecond: summary(perSecond),
    sentFps: sentFps.length ? Math.round((sentFps.reduce((a, b) => a + b, 0) / sentFps.length) * 10) / 10 : null,
    sentFpsEach: sentFps,
    targetKbps: kbps,
    encoderSkipWarnings: skipped,
    threadsPct: threads,
    threadsRunqueueWait: waits,
    rssKb: mem.rssKb,
    rssMaxInWindowKb: Math.max(...rss),
    hwmKb: mem.hwmKb,
    anonKb: mem.anonKb,
    fileKb: mem.fileKb,
    machine: {
      cores: Math.round(cores * 10) / 10,
      busyPct: Math.round((1000 * (m1.busy - m0.busy)) / (m1.total - m0.total)) / 10,
      chromiumPct: Math.round(((100 * (ch1.normal + ch1.niced - ch0.normal - ch0.niced)) / CLK_TCK / dt) * 10) / 10,
      chromiumMeasuringPct: Math.round(((100 * (ch1.normal - ch0.normal)) / CLK_TCK / dt) * 10) / 10,
      chromiumOthersPct: Math.round(((100 * (ch1.niced - ch0.niced)) / CLK_TCK / dt) * 10) / 10,
      loadavg: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The box

// The room's secret (docs/protocol.md, version 2): the box reads it from its state directory,
// the viewers' pages from the link's #k=.
const STATE_DIR = mkdtempSync(path.join(tmpdir(), 'roombox-viewers-'));
const SECRET = randomBytes(16).toString('base64url');
writeFileSync(path.join(STATE_DIR, 'room-secret'), `${SECRET}\n`, { mode: 0o600 });

function startBox(signalUrl) {
  const args = [
    'run', '--signal-url', signalUrl, '--room', ROOM, '--name', BOX_NAME, '--state-dir', STATE_DIR,
    '--video', 'test', '--audio-in', 'test', '--audio-out', 'none',
    '--width', String(WIDTH), '--height', String(HEIGHT), '--fps', String(FPS), '--ice-loopback',
  ];
  const proc = spawn(process.env.BOX_BIN, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.BOX_LOG || 'info,str0m=warn', NO_COLOR: '1' },
  });
  const lines = [];
  let partial = '';
  const feed = (d) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop();
    for (const l of parts) {
      // eslint-disable-next-line no-control-regex
      const line = l.replace(/\x1b\[[0-9;]*m/g, '');
      lines.push(line);
      if (process.env.BENCH_VERBOSE) process.stderr.write(`[box] ${line}\n`);
    }
  };
  proc.stdout.on('data', feed);
  proc.stderr.on('data', feed);
  const exited = once(proc, 'exit');
  return {
    proc,
    args,
    lines,
    running: () => proc.exitCode === null && proc.signalCode === null,
    /** The wall-clock time of frame 0 and the rate, from the test pattern's log line. */
    clock() {
      const hits = lines.filter((l) => l.includes('test pattern clock'));
      const last = hits[hits.length - 1];
      if (!last) return null;
      const ms = /unix_ms=([\d.]+)/.exec(last);
      const fps = /fps=(\d+)/.exec(last);
      return ms && fps ? { frame0UnixMs: Number(ms[1]), fps: Number(fps[1]), reopened: hits.length - 1 } : null;
    },
    async kill() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// In the page

/**
 * Installed in a page before it joins: finds the box's tile video, records the click on Join and
 * the first presented frame, and (when `window.__bench.measure` is set) decodes the frame code of
 * every presented frame into samples. All times are performance.now() of the page.
 */
function pageProbe({ boxName }) {
  const bench = {
    clickAt: null,
    trackAt: null,
    firstFrame: null,
    measure: false,
    samples: [],
    bad: 0,
    frames: 0,
    clockSkewMs: null,
  };
  window.__bench = bench;
  let canvas = null;
  let ctx = null;
  let hooked = null;

  function decode(video) {
    const vw = video.videoWidth;
    const vh = video.videoHeight;
    const b = Math.floor(vw / 24) & ~7;
    if (b < 8 || vh < 2 * b) return null;
    const w = 24 * b;
    if (!canvas || canvas.width !== w || canvas.height !== 2 * b) {
      canvas = document.createElement('canvas');
      canvas.width = w;
      canvas.height = 2 * b;
      ctx = canvas.getContext('2d', { willReadFrequently: true });
    }
    // Only the code rows, copied at the video's own pixel size.
    ctx.drawImage(video, 0, 0, w, 2 * b, 0, 0, w, 2 * b);
    const px = ctx.getImageData(0, 0, w, 2 * b).data;
    const q = b >> 2;
    const half = b >> 1;
    const mean = (x0, y0) => {
      let sum = 0;
      for (let y = y0 + q; y < y0 + q + half; y++) {
        for (let x = x0 + q; x < x0 + q + half; x++) {
          const i = (y * w + x) * 4;
          sum += px[i] + px[i + 1] + px[i + 2];
        }
      }
      return sum / (3 * half * half);
    };
    let code = 0;
    for (let i = 0; i < 24; i++) {
      const top = mean(i * b, 0) > 128;
      const bottom = mean(i * b, b) > 128;
      if (top === bottom) return null;
      code = code * 2 + (top ? 1 : 0);
    }
    return code;
  }

  function onFrame(video) {
    const cb = (now, meta) => {
      bench.frames++;
      if (bench.firstFrame === null) {
        bench.firstFrame = { now, presentationTime: meta.presentationTime, width: meta.width, height: meta.height };
      }
      if (bench.measure) {
        const n = decode(video);
        if (n === null) {
          bench.bad++;
        } else {
          bench.samples.push({
            n,
            now,
            expectedDisplayTime: meta.expectedDisplayTime,
            presentationTime: meta.presentationTime,
            receiveTime: meta.receiveTime ?? null,
            processingMs: meta.processingDuration !== undefined ? meta.processingDuration * 1000 : null,
            presentedFrames: meta.presentedFrames,
          });
        }
      }
      video.requestVideoFrameCallback(cb);
    };
    video.requestVideoFrameCallback(cb);
  }

  // The box's tile: a list item labelled with its name, whose video gets the box's track.
  const watch = () => {
    const li = document.querySelector(`li[aria-label="${CSS.escape(boxName)}"]`);
    const video = li?.querySelector('video');
    if (video && video.srcObject && video !== hooked) {
      hooked = video;
      if (bench.trackAt === null) bench.trackAt = performance.now();
      onFrame(video);
    }
  };
  new MutationObserver(watch).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['hidden', 'class'] });
  setInterval(watch, 20);

  document.addEventListener('click', (e) => {
    const button = e.target.closest?.('button');
    if (bench.clickAt === null && button && button.textContent.trim() === 'Join') bench.clickAt = performance.now();
  }, { capture: true });

  // performance.timeOrigin + now() against Date.now(): both should read the same wall clock.
  bench.clockSkewMs = performance.timeOrigin + performance.now() - Date.now();
}

async function openViewer(browser, baseUrl, name) {
  const context = await browser.newContext({ viewport: { width: VW, height: VH } });
  const page = await context.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
  await page.goto(`${baseUrl}/r/${ROOM}#k=${SECRET}`);
  await page.evaluate(pageProbe, { boxName: BOX_NAME });
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: 'Join', exact: true }).click();
  return { context, page, name, logs };
}

async function waitFirstFrame(v, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const b = await v.page.evaluate(() => ({
      clickAt: window.__bench.clickAt,
      trackAt: window.__bench.trackAt,
      firstFrame: window.__bench.firstFrame,
    }));
    if (b.firstFrame) return b;
    if (Date.now() > deadline) throw new Error(`${v.name}: no frame from the box within ${timeoutMs} ms; page log:\n${v.logs.join('\n')}`);
    await sleep(50);
  }
}

/** Video stats of the box's stream on a page (getStats inbound-rtp video). */
function videoStats(page) {
  return page.evaluate(async (who) => {
    const call = window.roombox?.call;
    const peer = call && [...call.peers.values()].find((p) => p.name === who);
    if (!peer?.pc) return null;
    const out = {};
    (await peer.pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        Object.assign(out, {
          framesDecoded: s.framesDecoded,
          framesDropped: s.framesDropped,
          keyFramesDecoded: s.keyFramesDecoded,
          frameWidth: s.frameWidth,
          frameHeight: s.frameHeight,
          framesPerSecond: s.framesPerSecond,
          freezeCount: s.freezeCount,
          packetsLost: s.packetsLost,
          nackCount: s.nackCount,
          pliCount: s.pliCount,
          jitterBufferDelay: s.jitterBufferDelay,
          jitterBufferEmittedCount: s.jitterBufferEmittedCount,
          totalDecodeTime: s.totalDecodeTime,
          totalProcessingDelay: s.totalProcessingDelay,
          totalAssemblyTime: s.totalAssemblyTime,
          framesAssembledFromMultiplePackets: s.framesAssembledFromMultiplePackets,
          bytesReceived: s.bytesReceived,
          decoderImplementation: s.decoderImplementation,
        });
      }
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') out.rttMs = (s.currentRoundTripTime ?? 0) * 1000;
    });
    return out;
  }, BOX_NAME);
}

function statsDelta(a, b) {
  if (!a || !b) return null;
  const frames = b.jitterBufferEmittedCount - a.jitterBufferEmittedCount;
  const decoded = b.framesDecoded - a.framesDecoded;
  const r = (v) => Math.round(v * 10) / 10;
  return {
    framesDecoded: decoded,
    framesDropped: (b.framesDropped ?? 0) - (a.framesDropped ?? 0),
    keyFrames: (b.keyFramesDecoded ?? 0) - (a.keyFramesDecoded ?? 0),
    freezes: (b.freezeCount ?? 0) - (a.freezeCount ?? 0),
    packetsLost: (b.packetsLost ?? 0) - (a.packetsLost ?? 0),
    nacks: (b.nackCount ?? 0) - (a.nackCount ?? 0),
    plis: (b.pliCount ?? 0) - (a.pliCount ?? 0),
    jitterBufferMs: frames > 0 ? r((1000 * (b.jitterBufferDelay - a.jitterBufferDelay)) / frames) : null,
    decodeMs: decoded > 0 ? r((1000 * (b.totalDecodeTime - a.totalDecodeTime)) / decoded) : null,
    processingMs: decoded > 0 && b.totalProcessingDelay !== undefined ? r((1000 * (b.totalProcessingDelay - a.totalProcessingDelay)) / decoded) : null,
    assemblyMs: b.totalAssemblyTime !== undefined && b.framesAssembledFromMultiplePackets > a.framesAssembledFromMultiplePackets
      ? r((1000 * (b.totalAssemblyTime - a.totalAssemblyTime)) / (b.framesAssembledFromMultiplePackets - a.framesAssembledFromMultiplePackets))
      : null,
    kbps: r((8 * (b.bytesReceived - a.bytesReceived)) / WINDOW_S / 1000),
    frameSize: `${b.frameWidth}x${b.frameHeight}`,
    rttMs: b.rttMs !== undefined ? r(b.rttMs) : null,
    decoder: b.decoderImplementation,
  };
}

/** Glass-to-glass over `seconds`, on a page already showing the box, with stats on the side. */
async function measureLatency(v, clock, seconds, sampler) {
  await v.page.evaluate(() => { window.__bench.samples = []; window.__bench.bad = 0; window.__bench.measure = true; });
  const s0 = await videoStats(v.page);
  const [cpu] = await Promise.all([sampler(), sleep(seconds * 1000)]);
  const s1 = await videoStats(v.page);
  const got = await v.page.evaluate(() => {
    window.__bench.measure = false;
    const b = window.__bench;
    return {
      origin: performance.timeOrigin,
      skew: performance.timeOrigin + performance.now() - Date.now(),
      skewAtLoad: b.clockSkewMs,
      bad: b.bad,
      samples: b.samples,
    };
  });
  const period = 1000 / clock.fps;
  const due = (n) => clock.frame0UnixMs + n * period;
  const wall = (t) => got.origin + t;
  const lat = [];
  const toDisplay = [];
  const toReceive = [];
  const receiveToPresent = [];
  const processing = [];
  let skipped = 0;
  let backwards = 0;
  for (let i = 0; i < got.samples.length; i++) {
    const s = got.samples[i];
    lat.push(wall(s.now) - due(s.n));
    toDisplay.push(wall(s.expectedDisplayTime) - due(s.n));
    if (s.receiveTime) {
      toReceive.push(wall(s.receiveTime) - due(s.n));
      receiveToPresent.push(s.presentationTime - s.receiveTime);
    }
    if (s.processingMs !== null) processing.push(s.processingMs);
    if (i > 0) {
      const d = s.n - got.samples[i - 1].n;
      if (d > 1) skipped += d - 1;
      if (d < 1) backwards++;
    }
  }
  const n = got.samples.length;
  return {
    framesRead: n,
    unreadable: got.bad,
    readFps: n > 1 ? Math.round(((n - 1) / ((got.samples[n - 1].now - got.samples[0].now) / 1000)) * 10) / 10 : null,
    counterGaps: skipped,
    counterRepeats: backwards,
    glassToGlassMs: summary(lat),
    toExpectedDisplayMs: summary(toDisplay),
    dueToReceiveMs: summary(toReceive),
    receiveToPresentMs: summary(receiveToPresent),
    rvfcProcessingMs: summary(processing),
    clockSkewMs: Math.round(got.skew * 100) / 100,
    clockSkewAtLoadMs: Math.round(got.skewAtLoad * 100) / 100,
    webrtc: statsDelta(s0, s1),
    box: cpu,
  };
}

// ---------------------------------------------------------------------------------------------

const cleanup = [];
async function cleanupAll() {
  while (cleanup.length) {
    const f = cleanup.pop();
    await Promise.race([f().catch(() => {}), sleep(10000)]);
  }
}
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, async () => {
    log(`${sig}: cleaning up`);
    await cleanupAll();
    process.exit(1);
  });
}

async function main() {
  const result = { config: { width: WIDTH, height: HEIGHT, fps: FPS, joins: JOINS, windowS: WINDOW_S, settleS: SETTLE_S, viewport: `${VW}x${VH}` } };
  const server = await startServer();
  cleanup.push(() => server.kill());
  log(`signaling server at ${server.url}`);

  const box = startBox(server.url);
  cleanup.push(() => box.kill());
  const deadline = Date.now() + 20000;
  while (!box.clock()) {
    if (!box.running()) throw new Error(`roombox exited:\n${box.lines.join('\n')}`);
    if (Date.now() > deadline) throw new Error(`no "test pattern clock" line from roombox:\n${box.lines.join('\n')}`);
    await sleep(100);
  }
  result.clock = box.clock();
  log(`box pid ${box.proc.pid}, frame 0 at ${result.clock.frame0UnixMs}`);
  await sleep(3000);
  result.idle = await sampleBox(box, 5);
  log(`idle box: ${result.idle.cpuPct}% CPU, ${result.idle.rssKb} kB`);

  const browsers = [];
  for (let i = 0; i < 3; i++) {
    const executablePath = i === 0 ? CHROMIUM : (process.env.CHROMIUM_EXTRA || CHROMIUM);
    const b = await chromium.launch({ executablePath, args: CHROMIUM_ARGS, headless: true });
    browsers.push(b);
    cleanup.push(() => b.close());
  }
  result.extraViewersBrowser = process.env.CHROMIUM_EXTRA ? 'lowered CPU priority' : 'same priority';

  // 1. Join to first frame, one viewer at a time, the box otherwise idle.
  result.joins = [];
  for (let i = 0; i < JOINS; i++) {
    const v = await openViewer(browsers[0], server.url, `joiner ${i + 1}`);
    const b = await waitFirstFrame(v);
    const j = {
      clickToTrackMs: Math.round((b.trackAt - b.clickAt) * 10) / 10,
      clickToFirstFrameMs: Math.round((b.firstFrame.now - b.clickAt) * 10) / 10,
      clickToPresentedMs: Math.round((b.firstFrame.presentationTime - b.clickAt) * 10) / 10,
      firstFrameSize: `${b.firstFrame.width}x${b.firstFrame.height}`,
    };
    result.joins.push(j);
    log(`join ${i + 1}: first frame ${j.clickToFirstFrameMs} ms after the click (track after ${j.clickToTrackMs} ms)`);
    await v.context.close();
    // Let the box notice the departure and go back to no viewers.
    const left = Date.now() + 10000;
    while (Date.now() < left && !box.lines.slice(-20).some((l) => l.includes('call ended') || l.includes('peer left'))) await sleep(100);
    await sleep(1500);
  }
  result.joinSummary = summary(result.joins.map((j) => j.clickToFirstFrameMs));

  // 2. One viewer: glass-to-glass on it, the box's CPU and memory meanwhile.
  const viewers = [await openViewer(browsers[0], server.url, 'viewer 1')];
  cleanup.push(() => Promise.all(viewers.map((v) => v.context.close().catch(() => {}))));
  await waitFirstFrame(viewers[0]);
  await sleep(SETTLE_S * 1000);
  log('1 viewer: measuring');
  result.one = await measureLatency(viewers[0], result.clock, WINDOW_S, () => sampleBox(box, WINDOW_S));
  log(`1 viewer: g2g p50 ${result.one.glassToGlassMs.p50} ms, box ${result.one.box.cpuPct}% CPU, ${result.one.box.rssKb} kB`);

  // 3. Five viewers (the other four in two more browser processes); viewer 1 keeps measuring.
  for (let i = 2; i <= 5; i++) {
    viewers.push(await openViewer(browsers[i <= 3 ? 1 : 2], server.url, `viewer ${i}`));
  }
  for (const v of viewers.slice(1)) await waitFirstFrame(v);
  await sleep(SETTLE_S * 1000);
  log('5 viewers: measuring');
  result.five = await measureLatency(viewers[0], result.clock, WINDOW_S, () => sampleBox(box, WINDOW_S));
  result.five.viewerStats = [];
  for (const v of viewers) result.five.viewerStats.push({ name: v.name, ...(await videoStats(v.page)) });
  log(`5 viewers: g2g p50 ${result.five.glassToGlassMs.p50} ms, box ${result.five.box.cpuPct}% CPU, ${result.five.box.rssKb} kB`);

  result.cpuRatio = Math.round((result.five.box.cpuPct / result.one.box.cpuPct) * 100) / 100;
  result.boxStatus = box.lines.filter((l) => l.includes('status:')).slice(-3);
  result.boxWarnings = box.lines.filter((l) => /WARN|ERROR/.test(l)).slice(-10);
  result.clockReopened = box.clock().reopened;
  return result;
}

main()
  .then(async (r) => {
    await cleanupAll();
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    process.exit(0);
  })
  .catch(async (err) => {
    log(`failed: ${err.stack || err}`);
    await cleanupAll();
    process.exit(1);
  });
