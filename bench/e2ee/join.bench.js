// How long a join takes with frame encryption (docs/protocol.md, "Frame encryption"): from a
// fresh Chromium page opening a room's link (/r/ROOM#k=SECRET) to the first frames it opens and
// shows. Two cases, each over TRIALS trials, a new browser context (no cache, no storage) each:
//
// 1. box: the box (`roombox run` with the demo's settings: test pattern 1280x720 at 30 fps and
//    the tone, on the bench's roombox-signal) waits in its room; a page joins it. Measured to the
//    first video frame of the box that opened in the page's frame worker, to the first video frame
//    shown (requestVideoFrameCallback on the box's tile), and to the first audio frame opened.
// 2. pages: a first page waits in a room sending its camera (Chromium's fake device, 30 fps); a
//    second page joins; measured to the first frame of that camera shown. Frame encryption on
//    and off (the web client's test-only switch `?e2ee-test=off`, web/js/e2ee.js: no transforms
//    at all; both pages of a trial alike), trials of the two alternating.
//
// Every time is measured twice: from the start of `page.goto` (loading the page, typing the name
// and pressing Join included) and from the moment the page sends its `join` on the signaling
// socket. The web client is not changed: the bench adds an init script to each page that reads
// the clock at the page's own events (the `join` sent through WebSocket.prototype.send, the
// `welcome`, the RTCPeerConnection made and connected, the first frame shown), listens to the
// frame worker's stats, and in case 1 uses the worker's test tap (`?e2ee-test=tap`: the worker
// stamps every frame it receives) to tell when the first frame that opened arrived: the stats
// come only four times a second. Results go to bench/e2ee/RESULTS.md, the section between the
// join.bench.js markers (the rest of the file is left as it is). No time is asserted.
//
//   node bench/e2ee/join.bench.js        as root: it runs itself in a loopback-only network
//                                        namespace (unshare --net)
//   TRIALS=10                            trials of each case (and of each mode in case 2)
//   CASES=box,pages                      which cases (default both)
//   WARMUP=1                             trials before the measured ones, not counted
//   PACKETS=1                            also when the first packet (padding too) and the first
//                                        whole frame came on the video stream: getStats every
//                                        10 ms in the page (diagnosis: it costs the page CPU)
//   JOIN_BENCH_VERBOSE=1                 every trial's numbers, and the box's log at the end
//   RESULTS_JSON=file, REPORT_FROM=file  keep a run's numbers; write the report from them
//   SIGNAL_BIN, BOX_BIN, CHROMIUM        as in tests/e2e
//
// Needs tests/e2e's npm packages (npm ci in tests/e2e), a built roombox-signal (cargo build -p
// roombox-signal: the web client is embedded in it) and roombox (cargo build --bin roombox).

import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine, writeSection } from './results-section.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const resultsFile = path.join(here, 'RESULTS.md');

if (!process.env.JOIN_BENCH_IN_NETNS) {
  // Loopback only, as the e2e tests: nothing leaves the machine, nothing waits on STUN.
  const r = spawnSync('unshare', ['--net', '--', 'bash', '-c', 'ip link set lo up && exec node "$0"', fileURLToPath(import.meta.url)], {
    stdio: 'inherit',
    env: { ...process.env, JOIN_BENCH_IN_NETNS: '1' },
  });
  process.exit(r.status ?? 1);
}

const { launchBrowser, newSecret, roomUrl, startServer, waitFor, CHROMIUM } = await import('../../tests/e2e/lib.js');
const { startBox } = await import('../../tests/e2e/box-lib.js');

const TRIALS = Number(process.env.TRIALS || 10);
const WARMUP = Number(process.env.WARMUP ?? 1);
const CASES = (process.env.CASES || 'box,pages').split(',');
/** The demo's video (SettingsText::default, src/config/mod.rs). */
const BOX = { name: 'Room box', width: 1280, height: 720, fps: 30 };
const TRIAL_TIMEOUT = 30000;
const VIEWPORT = { width: 1000, height: 760 };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * The page's instruments (an init script: it runs before the page's own scripts). Times are
 * wall clock in ms (performance.timeOrigin + now), as node's Date.now().
 */
function instrument({ packets = false } = {}) {
  const T = () => performance.timeOrigin + performance.now();
  const b = { marks: {}, shown: {}, opened: {}, received: {}, tap: false };
  Object.defineProperty(window, 'joinBench', { value: b });
  const mark = (k, t = T()) => { if (!(k in b.marks)) b.marks[k] = t; };
  mark('script');
  document.addEventListener('DOMContentLoaded', () => mark('domContentLoaded'));
  document.addEventListener('submit', () => mark('joinClicked'), true);

  // The join the client sends, and the server's welcome (our listener comes before the client's).
  const WS = window.WebSocket;
  window.WebSocket = class extends WS {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => {
        if (!('welcome' in b.marks) && typeof e.data === 'string' && e.data.includes('"type":"welcome"')) mark('welcome');
      });
    }
  };
  const send = WS.prototype.send;
  WS.prototype.send = function sendMarked(data) {
    if (typeof data === 'string' && data.startsWith('{"type":"join"')) mark('joinSent');
    return send.call(this, data);
  };

  // The first connection (one remote member in every room of this bench).
  const PC = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends PC {
    constructor(...args) {
      super(...args);
      mark('pcCreated');
      this.addEventListener('connectionstatechange', () => {
        if (this.connectionState === 'connected') mark('pcConnected');
      });
      // PACKETS=1: when the first video packet and the first whole video frame came (getStats
      // every 10 ms until then; it costs the page some CPU, so not in the measured runs).
      if (packets) {
        const poll = setInterval(async () => {
          if (this.connectionState === 'closed') { clearInterval(poll); return; }
          const report = await this.getStats();
          report.forEach((st) => {
            if (st.type !== 'inbound-rtp' || st.kind !== 'video') return;
            if (st.packetsReceived > 0) mark('videoFirstPacket');
            if (st.framesReceived > 0) {
              mark('videoFirstFrameReceived');
              b.firstFrameBytes ??= st.bytesReceived;
              clearInterval(poll);
            }
          });
        }, 10);
      }
      this.addEventListener('track', (e) => mark(`track ${e.track.kind}`));
    }
  };

  // The first frame shown on each remote tile.
  const watched = new WeakSet();
  const watch = setInterval(() => {
    for (const v of document.querySelectorAll('li[data-peer-id] video')) {
      if (watched.has(v)) continue;
      watched.add(v);
      const peer = v.closest('li').dataset.peerId;
      v.requestVideoFrameCallback((now, meta) => {
        const o = performance.timeOrigin;
        b.shown[peer] = {
          at: o + now,
          expectedDisplayTime: o + meta.expectedDisplayTime,
          receiveTime: meta.receiveTime === undefined ? null : o + meta.receiveTime,
          captureTime: meta.captureTime === undefined ? null : o + meta.captureTime,
          processingMs: meta.processingDuration === undefined ? null : meta.processingDuration * 1000,
          width: meta.width,
          height: meta.height,
        };
      });
    }
  }, 10);
  addEventListener('pagehide', () => clearInterval(watch));

  // Frame encryption: the worker's stats (first opened per peer and kind; only every 250 ms),
  // and with ?e2ee-test=tap the worker's stamp on every frame it receives.
  const find = setInterval(() => {
    const frames = window.roombox?.frames;
    if (!frames) return;
    clearInterval(find);
    mark('framesMade');
    frames.addEventListener('stats', (e) => {
      for (const [peer, s] of Object.entries(e.detail.peers ?? {})) {
        for (const kind of ['audio', 'video']) {
          const k = `${peer} ${kind}`;
          if (s.opened[kind] > 0 && !b.opened[k]) {
            b.opened[k] = { seenAt: T(), n: s.opened[kind], droppedBefore: s.dropped[kind], lastVideoAt: kind === 'video' ? s.lastVideoAt : null };
          }
        }
      }
    });
    if (!frames.test?.has('tap')) return;
    frames.tapStart();
    b.tap = true;
    const take = async () => {
      if (b.stopTap) return;
      try {
        for (const f of await frames.tapTake()) {
          if (f.dir !== 'received') continue;
          const list = (b.received[`${f.peer} ${f.kind}`] ??= []);
          if (list.length < 200) list.push(f.at);
        }
      } catch { /* closed */ }
      setTimeout(take, 100);
    };
    setTimeout(take, 100);
  }, 2);
}

/** What the page measured so far. */
function readings(page) {
  return page.evaluate(() => {
    const b = window.joinBench;
    const peers = [...(window.roombox.call?.peers.values() ?? [])].map((p) => ({ id: p.id, name: p.name }));
    return { firstFrameBytes: b.firstFrameBytes, marks: b.marks, shown: b.shown, opened: b.opened, received: b.received, tap: b.tap, peers, selfId: window.roombox.signaling?.id ?? null, frames: window.roombox.frameStats };
  });
}

async function newPage(browser) {
  const context = await browser.newContext({ viewport: VIEWPORT });
  await context.addInitScript(instrument, { packets: !!process.env.PACKETS });
  const page = await context.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
  return { context, page, logs };
}

/** Open the link, type the name, press Join; returns the node-side times. */
async function join(m, url, name) {
  const t0 = Date.now();
  await m.page.goto(url);
  const loaded = Date.now();
  await m.page.getByLabel('Your name').fill(name);
  await m.page.getByRole('button', { name: 'Join', exact: true }).click();
  return { t0, loaded, clicked: Date.now() };
}

/** Node-side and page-side times of one trial as ms from the start of goto and from the join sent. */
function spans(t0, r, ends) {
  const joinSent = r.marks.joinSent;
  const out = { fromGoto: {}, fromJoin: {}, marks: {} };
  for (const [k, v] of Object.entries(r.marks)) out.marks[k] = v - t0;
  for (const [k, v] of Object.entries(ends)) {
    if (v === null || v === undefined) continue;
    out.fromGoto[k] = v - t0;
    out.fromJoin[k] = v - joinSent;
  }
  return out;
}

// ---- case 1: a page joins the box ----------------------------------------------------------

async function boxTrial(browser, server, box, room, trial) {
  const m = await newPage(browser);
  try {
    const { t0 } = await join(m, roomUrl(server.url, room, box.secret, 'e2ee-test=tap'), `Guest ${trial}`);
    let r;
    await waitFor(async () => {
      r = await readings(m.page);
      const id = r.peers.find((p) => p.name === BOX.name)?.id;
      return id && r.shown[id] && r.opened[`${id} video`] && r.opened[`${id} audio`]
        && r.received[`${id} video`]?.length && r.received[`${id} audio`]?.length;
    }, { timeout: TRIAL_TIMEOUT, interval: 100, what: `trial ${trial}: the box's first frames` }).catch((err) => {
      err.message += `; last: ${JSON.stringify(r)}; page log: ${m.logs.slice(-20).join(' | ')}`;
      throw err;
    });
    const id = r.peers.find((p) => p.name === BOX.name).id;
    // The first frame that opened: the frames dropped before it (no key yet) were received first.
    const firstOpened = (kind) => {
      const o = r.opened[`${id} ${kind}`];
      const list = r.received[`${id} ${kind}`];
      return { at: list[o.droppedBefore] ?? null, dropped: o.droppedBefore, firstReceived: list[0], stats: o };
    };
    // The box's side, from its log (its clock is this machine's): the page seen, named, connected.
    const boxSaw = {};
    for (const [k, re] of [['boxPeerJoined', 'peer joined'], ['boxPeerNamed', 'peer named \\(sealed\\)'], ['boxConnected', 'media connected']]) {
      const line = box.lines(new RegExp(`${re} peer=${r.selfId}\\b`))[0];
      const at = line && Date.parse(line.split(/\s+/)[0]);
      if (Number.isFinite(at)) boxSaw[k] = at;
    }
    const video = firstOpened('video');
    const audio = firstOpened('audio');
    const shown = r.shown[id];
    const result = {
      case: 'box',
      trial,
      ...spans(t0, r, {
        videoOpened: video.at,
        videoShown: shown.at,
        audioOpened: audio.at,
        pcConnected: r.marks.pcConnected,
        welcome: r.marks.welcome,
        joinSent: r.marks.joinSent,
        ...boxSaw,
      }),
      dropped: { video: video.dropped, audio: audio.dropped },
      // Checks: the stats' newest opened frame is no earlier than the first one from the tap.
      statsLastVideoMinusTap: video.stats.lastVideoAt - video.at,
      statsVideoN: video.stats.n,
      shownSize: `${shown.width}x${shown.height}`,
      shownReceiveToShownMs: shown.receiveTime === null ? null : shown.at - shown.receiveTime,
      shownCapture: shown.captureTime === null ? null : shown.captureTime - t0,
      active: r.frames?.active ?? false,
    };
    await m.page.evaluate(() => { window.joinBench.stopTap = true; });
    return result;
  } finally {
    await m.context.close().catch(() => {});
  }
}

async function runBox(browser, server) {
  const room = `bench-join-box-${process.pid}`;
  const box = startBox({
    signalUrl: server.url, room, name: BOX.name, audioOut: 'none', width: BOX.width, height: BOX.height, fps: BOX.fps,
    extraArgs: ['--web', 'off'],
  });
  const results = [];
  try {
    await box.waitForLog(/signaling: joined /, { timeout: 30000 });
    await sleep(2000);
    for (let i = 1 - WARMUP; i <= TRIALS; i++) {
      const ended = box.lines(/peer left/).length;
      const r = await boxTrial(browser, server, box, room, i);
      if (i >= 1) results.push(r);
      const g = r.fromGoto;
      const j = r.fromJoin;
      process.stdout.write(`box ${i < 1 ? 'warm-up' : `trial ${i}`}: from goto / from join: video opened ${ms(g.videoOpened)} / ${ms(j.videoOpened)}, `
        + `shown ${ms(g.videoShown)} / ${ms(j.videoShown)}, audio opened ${ms(g.audioOpened)} / ${ms(j.audioOpened)}; `
        + `join sent at ${ms(g.joinSent)}, connected ${ms(j.pcConnected)} after it; dropped before the first opened: ${r.dropped.video} video, ${r.dropped.audio} audio\n`);
      if (process.env.JOIN_BENCH_VERBOSE) process.stdout.write(`  ${JSON.stringify(r)}\n`);
      // The box saw the page leave (its key rotation after a departure is due 1 s later).
      await box.waitForLog(/peer left/, { count: ended + 1, timeout: 30000 });
      await sleep(2000);
    }
  } finally {
    await box.kill();
    if (process.env.JOIN_BENCH_VERBOSE) process.stdout.write(`${box.text()}\n`);
  }
  return results;
}

// ---- case 2: a page joins a page that sends its camera -----------------------------------------

async function cameraOn(page) {
  await page.getByRole('button', { name: 'Camera', exact: true }).click();
  await waitFor(() => page.evaluate(() => !!window.roombox.call?.cameraStream), { what: 'camera on' });
}

async function pagesTrial(browser, server, mode, trial) {
  const room = `bench-join-pages-${mode}-${trial < 1 ? `w${-trial}` : trial}-${process.pid}`;
  const query = mode === 'off' ? 'e2ee-test=off' : '';
  const url = roomUrl(server.url, room, newSecret(), query);
  const first = await newPage(browser);
  let second = null;
  try {
    await join(first, url, 'Ada');
    await waitFor(() => first.page.evaluate(() => !!window.joinBench.marks.welcome), { what: 'Ada in the room' });
    await cameraOn(first.page);
    await sleep(1000);
    second = await newPage(browser);
    const { t0 } = await join(second, url, 'Bea');
    let r;
    await waitFor(async () => {
      r = await readings(second.page);
      const id = r.peers.find((p) => p.name === 'Ada')?.id;
      return id && r.shown[id];
    }, { timeout: TRIAL_TIMEOUT, interval: 100, what: `${mode} trial ${trial}: Ada's camera shown` }).catch((err) => {
      err.message += `; last: ${JSON.stringify(r)}; page log: ${second.logs.slice(-20).join(' | ')}`;
      throw err;
    });
    const id = r.peers.find((p) => p.name === 'Ada').id;
    const shown = r.shown[id];
    return {
      case: 'pages',
      mode,
      trial,
      ...spans(t0, r, { videoShown: shown.at, pcConnected: r.marks.pcConnected, welcome: r.marks.welcome, joinSent: r.marks.joinSent }),
      shownSize: `${shown.width}x${shown.height}`,
      active: r.frames?.active ?? false,
      transforming: r.frames?.transforming ?? false,
    };
  } finally {
    await second?.context.close().catch(() => {});
    await first.context.close().catch(() => {});
  }
}

async function runPages(browser, server) {
  const results = [];
  for (let i = 1 - WARMUP; i <= TRIALS; i++) {
    // Alternating, the order reversed every other trial.
    for (const mode of i % 2 ? ['on', 'off'] : ['off', 'on']) {
      const r = await pagesTrial(browser, server, mode, i);
      if (i >= 1) results.push(r);
      process.stdout.write(`pages ${mode} ${i < 1 ? 'warm-up' : `trial ${i}`}: from goto / from join: shown ${ms(r.fromGoto.videoShown)} / ${ms(r.fromJoin.videoShown)}; `
        + `join sent at ${ms(r.fromGoto.joinSent)}, connected ${ms(r.fromJoin.pcConnected)} after it (${r.shownSize}, frame encryption ${r.active ? 'on' : 'off'})\n`);
      await sleep(1000);
    }
  }
  return results;
}

// ---- the report ----------------------------------------------------------------------------

function ms(x) {
  return x === undefined || x === null ? '-' : `${Math.round(x)} ms`;
}

/** Percentile by linear interpolation between the closest ranks. */
function pct(xs, p) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return null;
  const i = (s.length - 1) * p;
  const lo = Math.floor(i);
  return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (i - lo);
}

const triple = (xs) => `${ms(pct(xs, 0.5))} | ${ms(pct(xs, 0.95))} | ${ms(pct(xs, 1))}`;

const MEASURES = {
  videoOpened: 'first video frame of the box opened (frame worker)',
  videoShown: 'first video frame shown',
  audioOpened: 'first audio frame of the box opened (frame worker)',
};

function report(results) {
  const lines = [];
  const box = results.filter((r) => r.case === 'box');
  const summary = {};
  if (box.length) {
    lines.push(`### 1. A page joins the box (${box.length} trials)`);
    lines.push('');
    lines.push('| to | from goto: p50 | p95 | max | from join sent: p50 | p95 | max |');
    lines.push('|---|---|---|---|---|---|---|');
    for (const [k, label] of Object.entries(MEASURES)) {
      lines.push(`| ${label} | ${triple(box.map((r) => r.fromGoto[k]))} | ${triple(box.map((r) => r.fromJoin[k]))} |`);
      summary[`box ${k}`] = { goto: [0.5, 0.95, 1].map((p) => pct(box.map((r) => r.fromGoto[k]), p)), join: [0.5, 0.95, 1].map((p) => pct(box.map((r) => r.fromJoin[k]), p)) };
    }
    lines.push('');
    lines.push(`Where the time goes (medians, ms from the start of goto): ${stages(box)}.`);
    const dropped = box.filter((r) => r.dropped.video || r.dropped.audio).length;
    const after = (f) => ms(pct(box.map(f), 0.5));
    lines.push(`From the box's "media connected" to the first frame opened, medians: video ${after((r) => r.fromGoto.videoOpened - r.fromGoto.boxConnected)}, `
      + `audio ${after((r) => r.fromGoto.audioOpened - r.fromGoto.boxConnected)}; from the page's connected to the first video opened ${after((r) => r.fromGoto.videoOpened - r.marks.pcConnected)}.`);
    lines.push(`In ${dropped} of ${box.length} trials the worker dropped frames before the first that opened (its key had not come yet). `
      + `Video shown ${box[0].shownSize}; from the first frame's last packet received to shown (requestVideoFrameCallback's receiveTime): median ${ms(pct(box.map((r) => r.shownReceiveToShownMs), 0.5))}. `
      + 'The worker stamps with its own clock (performance.timeOrigin + now) and the page with its own: they differ by a few ms, so "shown" can come out a few ms before "opened".');
    lines.push('');
  }
  const pages = results.filter((r) => r.case === 'pages');
  if (pages.length) {
    const of = (mode) => pages.filter((r) => r.mode === mode);
    lines.push(`### 2. A page joins a page that sends its camera (${of('on').length} trials on, ${of('off').length} off, alternating)`);
    lines.push('');
    lines.push('| first camera frame shown | from goto: p50 | p95 | max | from join sent: p50 | p95 | max |');
    lines.push('|---|---|---|---|---|---|---|');
    for (const mode of ['on', 'off']) {
      if (!of(mode).length) continue;
      lines.push(`| frame encryption ${mode} | ${triple(of(mode).map((r) => r.fromGoto.videoShown))} | ${triple(of(mode).map((r) => r.fromJoin.videoShown))} |`);
    }
    if (of('on').length && of('off').length) {
      const ratio = (f, p) => pct(of('on').map(f), p) / pct(of('off').map(f), p);
      summary.ratio = {
        goto: [0.5, 0.95].map((p) => ratio((r) => r.fromGoto.videoShown, p)),
        join: [0.5, 0.95].map((p) => ratio((r) => r.fromJoin.videoShown, p)),
      };
      lines.push(`| on / off | x${summary.ratio.goto[0].toFixed(2)} | x${summary.ratio.goto[1].toFixed(2)} | | x${summary.ratio.join[0].toFixed(2)} | x${summary.ratio.join[1].toFixed(2)} | |`);
    }
    for (const mode of ['on', 'off']) {
      summary[`pages ${mode}`] = {
        goto: [0.5, 0.95, 1].map((p) => pct(of(mode).map((r) => r.fromGoto.videoShown), p)),
        join: [0.5, 0.95, 1].map((p) => pct(of(mode).map((r) => r.fromJoin.videoShown), p)),
      };
    }
    lines.push('');
    for (const mode of ['on', 'off']) {
      if (!of(mode).length) continue;
      lines.push(`Where the time goes, ${mode} (medians, ms from the start of goto): ${stages(of(mode))}; `
        + `from connected to the first frame shown ${ms(pct(of(mode).map((r) => r.fromGoto.videoShown - r.marks.pcConnected), 0.5))}.`);
    }
    lines.push(`The first camera frame shown was ${[...new Set(pages.map((r) => r.shownSize))].join(', ')} (the sender starts small and grows as its bandwidth estimate does).`);
    lines.push('');
  }
  return { text: lines.join('\n').trimEnd(), summary };
}

/** Median time of each step, from the start of goto. */
function stages(rs) {
  const med = (f) => pct(rs.map(f), 0.5);
  const steps = [
    ['page loaded (DOMContentLoaded)', (r) => r.marks.domContentLoaded],
    ['Join pressed', (r) => r.marks.joinClicked],
    ['join sent', (r) => r.marks.joinSent],
    ['welcome', (r) => r.marks.welcome],
    ['connection made', (r) => r.marks.pcCreated],
    ['the box sees the page join', (r) => r.fromGoto.boxPeerJoined],
    ['the box has its name (sealed hello)', (r) => r.fromGoto.boxPeerNamed],
    ['connected (ICE + DTLS)', (r) => r.marks.pcConnected],
    ['the box connected', (r) => r.fromGoto.boxConnected],
    ['first packet on the video stream, padding included (getStats, PACKETS=1)', (r) => r.marks.videoFirstPacket],
    ['first whole video frame received (getStats, PACKETS=1)', (r) => r.marks.videoFirstFrameReceived],
    ['first video opened', (r) => r.fromGoto.videoOpened],
    ['first audio opened', (r) => r.fromGoto.audioOpened],
    ['first video shown', (r) => r.fromGoto.videoShown],
  ];
  return steps.filter(([, f]) => rs.some((r) => Number.isFinite(f(r))))
    .map(([name, f]) => [name, med(f)])
    .sort((a, b) => a[1] - b[1])
    .map(([name, t]) => `${name} ${Math.round(t)}`)
    .join(', ');
}

function writeResults(body, m) {
  writeSection(resultsFile, 'join.bench.js', [
    '## Join to first frame, with frame encryption',
    '',
    `\`node bench/e2ee/join.bench.js\` (TRIALS=${TRIALS}, WARMUP=${WARMUP}), ${new Date().toISOString().slice(0, 10)}; ${m.cpu}, ${m.memory}, ${m.kernel}; ${m.chromium} headless; Node ${m.node}; `
      + 'debug builds of roombox and roombox-signal, as tests/e2e uses; everything on loopback in a network namespace of its own.',
    '',
    'Each trial a fresh browser context (nothing cached) opens the room\'s link `/r/ROOM#k=SECRET`, types a name and presses Join. '
      + '**From goto** starts when the bench calls `page.goto` (loading the page, typing and pressing Join included); '
      + '**from join sent** starts when the page sends its `join` on the signaling socket (read in the page). Both end at: '
      + '**video opened / audio opened**, when the first frame that opened in the page\'s frame worker arrived there (the worker\'s test tap, `?e2ee-test=tap`, stamps each frame it receives; '
      + 'the frames it dropped before, for want of a key, are skipped; opening a frame takes about a millisecond more); '
      + '**video shown**, the first frame decoded and presented on the tile (requestVideoFrameCallback). '
      + `Case 1: the box (\`roombox run\` with the demo's settings: test pattern ${BOX.width}x${BOX.height} at ${BOX.fps} fps and a tone) is in its room all along; each page leaves before the next joins. `
      + 'Case 2: per trial a new room; a first page joins, turns its camera on (Chromium\'s fake device, 30 fps), and a second page joins; trials with frame encryption on and off '
      + '(`?e2ee-test=off` on both pages: no transforms at all) alternate. '
      + `p50 and p95 interpolate between ranks: with ${TRIALS} trials p95 is close to the max. `
      + (WARMUP ? `The first ${WARMUP === 1 ? 'trial' : `${WARMUP} trials`} of each kind (a cold browser) ${WARMUP === 1 ? 'is' : 'are'} not counted. ` : '')
      + '"Where the time goes" gives the median moment of each step, in the page (DOMContentLoaded; Join pressed: Playwright typing the name and clicking is in "from goto"; '
      + 'the `join` sent; the `welcome`; the RTCPeerConnection made, and connected) and in the box (its log: the page seen joining, its sealed hello opened, media connected). '
      + 'The box\'s encoder idles while nobody watches, so every join wakes it (as a box alone in its room).',
    '',
    body,
    '',
  ]);
}

let results = [];
if (process.env.REPORT_FROM) {
  results = JSON.parse(readFileSync(process.env.REPORT_FROM, 'utf8'));
} else {
  const server = await startServer();
  const browser = await launchBrowser({ args: ['--use-fake-device-for-media-stream=fps=30'] });
  try {
    if (CASES.includes('box')) results.push(...await runBox(browser, server));
    if (CASES.includes('pages')) results.push(...await runPages(browser, server));
  } finally {
    await browser.close().catch(() => {});
    await server.kill().catch(() => {});
  }
  if (process.env.RESULTS_JSON) writeFileSync(process.env.RESULTS_JSON, JSON.stringify(results));
}
for (const r of results) {
  const on = r.case === 'box' || r.mode === 'on';
  if (r.active !== on) throw new Error(`${r.case} ${r.mode ?? ''} trial ${r.trial}: frame encryption ${r.active ? 'on' : 'off'}`);
}
const { text, summary } = report(results);
process.stdout.write(`${text}\n`);
process.stdout.write(`${JSON.stringify(summary)}\n`);
writeResults(text, machine(CHROMIUM));
process.stdout.write(`written to ${resultsFile}\n`);
