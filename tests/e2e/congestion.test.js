// The box's sender on a bad uplink, with a real `roombox run`, a real roombox-signal and a
// headless Chromium page on the box's LAN (namespaces of netlab.js; run through run.sh), and
// beside it the anchor: a Chromium page sending the same 720p video to a Chromium page over the
// same kind of uplink (libwebrtc's congestion control and balanced degradation). Each sender's
// own uplink (its interface's egress) is impaired in steps while the watching page counts:
//   clean: the bitrate the sender settles at;
//   capped at 1 Mbit/s (tbf): the sender falls under the cap and the page keeps decoding;
//   200 ms more round trip on top (the sender's packets held 200 ms by tests/e2e/delayline.py:
//   this kernel has no netem): still decoding;
//   2% random loss on top (nftables numgen): still decoding;
//   a 30% loss burst for 5 s: the longest freeze the page counts is measured (and bounded);
//   the cap and the loss lifted: the time until the received bitrate climbs back is measured.
// With `degradation = balanced` (the default) the box sends a smaller picture under the cap and
// the full size again once it is lifted; both are asserted. CONGESTION_DEGRADATION and
// CONGESTION_SIZE (WxH) change the box's policy and the source for side-by-side runs.
// The numbers are recorded in bench/network/RESULTS.md.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CHROMIUM, joinRoom, launchBrowser, saveArtifacts, startServer, waitFor } from './lib.js';
import { saveBoxLog, startBox, videoFrom } from './box-lib.js';
import { PUBLIC_V4, chromiumIn, delayEgress, makePublic, makeSite, sh, teardown } from './netlab.js';

const [WIDTH, HEIGHT] = (process.env.CONGESTION_SIZE ?? '1280x720').split('x').map(Number);
const FPS = 30;
const DEGRADATION = process.env.CONGESTION_DEGRADATION ?? 'balanced';
const BOX = 'Congested box';
const T = 45000;
const CAP_KBPS = 1000;

let tmp;
let y4m;
let server;
let box;
let browser;
let anchorBrowser;
let member;
let anchor;
let boxHost;
let anchorHost;
let failed = false;
const results = {};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The encoder target the box last logged (its 5 s status line), in kbit/s. */
function boxKbps() {
  const lines = box.lines(/status: \[.*kbps=(\d+)/);
  const last = lines.at(-1);
  return last ? Number(/kbps=(\d+)/.exec(last)[1]) : null;
}

/** What the watching page counts of one sender's video and audio, read in the page. */
function readStats(pc) {
  return pc.getStats().then((stats) => {
    const out = { at: performance.now() };
    for (const s of stats.values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        Object.assign(out, {
          frames: s.framesDecoded ?? 0,
          freezes: s.freezeCount ?? 0,
          freezeMs: (s.totalFreezesDuration ?? 0) * 1000,
          bytes: s.bytesReceived,
          lost: s.packetsLost,
          plis: s.pliCount,
          width: s.frameWidth,
        });
      }
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        Object.assign(out, { samples: s.totalSamplesReceived ?? 0, concealed: s.concealedSamples ?? 0 });
      }
    }
    return out;
  });
}

/** `readStats` of the connection `pcExpr` (an expression in the page) names. */
const statsOf = (page, pcExpr) => () => page.evaluate(`(${readStats})(${pcExpr})`);

/**
 * Watches `stats` for `seconds`: decoded frames and received kbit/s; the longest stretch
 * without a new frame; the picture widths seen; the audio concealed.
 */
async function watch(stats, seconds) {
  const samples = [await stats()];
  let stalled = 0;
  let longestStall = 0;
  let last = samples[0];
  const widths = new Set();
  const tick = 100;
  for (let i = 0; i < (seconds * 1000) / tick; i += 1) {
    await sleep(tick);
    const s = await stats();
    if (s.frames === last.frames) {
      stalled += s.at - last.at;
      longestStall = Math.max(longestStall, stalled);
    } else {
      stalled = 0;
    }
    if (s.width) widths.add(s.width);
    last = s;
    if (i % 10 === 9) samples.push(s);
  }
  const first = samples[0];
  const end = samples.at(-1);
  const secs = (end.at - first.at) / 1000;
  const audio = end.samples - first.samples;
  return {
    fps: (end.frames - first.frames) / secs,
    kbps: ((end.bytes - first.bytes) * 8) / 1000 / secs,
    longestStallMs: Math.round(longestStall),
    freezes: end.freezes - first.freezes,
    freezeMs: Math.round(end.freezeMs - first.freezeMs),
    lost: end.lost - first.lost,
    plis: end.plis - first.plis,
    width: end.width,
    minWidth: Math.min(...widths),
    concealedPct: audio > 0 ? (100 * (end.concealed - first.concealed)) / audio : null,
  };
}

/** Milliseconds until the bitrate received over the last second reaches `kbps` (null: never). */
async function timeToBitrate(stats, kbps, timeoutMs) {
  const start = Date.now();
  const recent = [await stats()];
  while (Date.now() - start < timeoutMs) {
    await sleep(250);
    recent.push(await stats());
    while (recent.length > 5) recent.shift();
    const [a, b] = [recent[0], recent.at(-1)];
    const rate = ((b.bytes - a.bytes) * 8) / (b.at - a.at);
    if (recent.length === 5 && rate >= kbps) return Date.now() - start;
  }
  return null;
}

function impair(ns, { capKbps, lossPercent }) {
  const inNs = (...cmd) => sh('ip', 'netns', 'exec', ns, ...cmd);
  try { inNs('tc', 'qdisc', 'del', 'dev', 'eth0', 'root'); } catch { /* none yet */ }
  if (capKbps) {
    inNs('tc', 'qdisc', 'add', 'dev', 'eth0', 'root', 'tbf', 'rate', `${capKbps}kbit`, 'burst', '16kb', 'latency', '200ms');
  }
  try { inNs('nft', 'delete', 'table', 'ip', 'impair'); } catch { /* none yet */ }
  if (lossPercent) {
    inNs('nft', 'add', 'table', 'ip', 'impair');
    inNs('nft', 'add', 'chain', 'ip', 'impair', 'out', '{ type filter hook output priority 0; }');
    inNs('nft', 'add', 'rule', 'ip', 'impair', 'out', 'meta', 'l4proto', 'udp', 'numgen', 'random', 'mod', '100', '<', String(lossPercent), 'drop');
  }
}

const fmt = (r) => `${r.kbps.toFixed(0)} kbit/s received, ${r.fps.toFixed(1)} fps decoded, longest stall ${r.longestStallMs} ms, `
  + `${r.freezes} freezes (${r.freezeMs} ms), ${r.lost} packets lost, ${r.plis} PLIs, ${r.minWidth}-${r.width} wide, `
  + `${r.concealedPct === null ? '-' : r.concealedPct.toFixed(1)}% audio concealed`;

/**
 * The link profile on one sender's uplink (namespace `ns`), watched through `stats`; `target`
 * reads the sender's own target in kbit/s. Returns every phase's numbers.
 */
async function profile(t, label, { ns, stats, target }) {
  const r = {};
  const note = (phase, text) => t.diagnostic(`${label}, ${phase}: ${text}`);
  r.clean = await watch(stats, 15);
  r.clean.target = await target();
  note('clean', `${fmt(r.clean)}; target ${r.clean.target} kbit/s`);

  impair(ns, { capKbps: CAP_KBPS });
  r.capped = await watch(stats, 30);
  r.capped.target = await target();
  note(`capped at ${CAP_KBPS} kbit/s`, `${fmt(r.capped)}; target ${r.capped.target} kbit/s`);

  const delay = await delayEgress(ns, 200);
  r.delayed = await watch(stats, 20);
  r.delayed.target = await target();
  note('capped + 200 ms RTT', `${fmt(r.delayed)}; target ${r.delayed.target} kbit/s`);

  impair(ns, { capKbps: CAP_KBPS, lossPercent: 2 });
  r.lossy = await watch(stats, 20);
  r.lossy.target = await target();
  note('capped + 200 ms RTT + 2% loss', `${fmt(r.lossy)}; target ${r.lossy.target} kbit/s`);

  impair(ns, { capKbps: CAP_KBPS, lossPercent: 30 });
  const burst = watch(stats, 12);
  await sleep(5000);
  impair(ns, { capKbps: CAP_KBPS, lossPercent: 2 });
  r.burst = await burst;
  note('30% loss for 5 s, then 2%', fmt(r.burst));

  impair(ns, {});
  delay.stop();
  r.recoveredMs = await timeToBitrate(stats, 0.8 * r.clean.kbps, 60000);
  r.lifted = await watch(stats, 10);
  r.lifted.target = await target();
  note('lifted', `received back to >= 80% of clean (${(0.8 * r.clean.kbps).toFixed(0)} kbit/s) in ${r.recoveredMs} ms; `
    + `${fmt(r.lifted)}; target ${r.lifted.target} kbit/s`);
  return r;
}

/** A Chromium page on the anchor host sending the 720p file (its fake camera) to a page of the
 * watcher's browser: one RTCPeerConnection each, the SDP passed by this test (no server). */
async function startAnchor() {
  const context = await anchorBrowser.newContext();
  const sender = await context.newPage();
  await sender.goto(`${server.url}/`);
  const receiver = await member.context.newPage();
  await receiver.goto(`${server.url}/`);
  const gathered = (pc) => new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') resolve();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
  });
  // Defined by a string evaluation: the server's pages forbid eval (CSP), CDP does not.
  for (const page of [sender, receiver]) await page.evaluate(`window.gathered = ${gathered}`);
  const offer = await sender.evaluate(async ([w, h, fps]) => {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { width: w, height: h, frameRate: fps }, audio: true });
    const pc = new RTCPeerConnection();
    window.anchorPc = pc;
    for (const track of stream.getTracks()) {
      const tr = pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
      if (track.kind === 'video') {
        // H.264 first, as the box sends; RTX, RED and FEC kept.
        const codecs = RTCRtpSender.getCapabilities('video').codecs;
        const h264 = codecs.filter((c) => c.mimeType === 'video/H264');
        tr.setCodecPreferences([...h264, ...codecs.filter((c) => c.mimeType !== 'video/H264')]);
      }
    }
    await pc.setLocalDescription();
    await window.gathered(pc);
    return pc.localDescription.toJSON();
  }, [WIDTH, HEIGHT, FPS]);
  const answer = await receiver.evaluate(async (offer) => {
    const pc = new RTCPeerConnection();
    window.anchorPc = pc;
    pc.ontrack = (e) => {
      const el = document.createElement(e.track.kind);
      el.autoplay = true;
      el.muted = e.track.kind === 'video';
      el.srcObject = new MediaStream([e.track]);
      document.body.append(el);
    };
    await pc.setRemoteDescription(offer);
    await pc.setLocalDescription();
    await window.gathered(pc);
    return pc.localDescription.toJSON();
  }, offer);
  await sender.evaluate((a) => window.anchorPc.setRemoteDescription(a), answer);
  const stats = statsOf(receiver, 'window.anchorPc');
  await waitFor(async () => (await stats()).frames > FPS, { timeout: T, what: 'the anchor page decoding the anchor' });
  const codec = await receiver.evaluate(async () => {
    for (const s of (await window.anchorPc.getStats()).values()) {
      if (s.type === 'codec' && s.mimeType.startsWith('video/')) return s.mimeType;
    }
    return null;
  });
  const target = () => sender.evaluate(async () => {
    for (const s of (await window.anchorPc.getStats()).values()) {
      if (s.type === 'outbound-rtp' && s.kind === 'video') return Math.round((s.targetBitrate ?? 0) / 1000);
    }
    return null;
  });
  return { sender, receiver, stats, target, codec };
}

const row = (name, r) => `| ${name} | ${r.kbps.toFixed(0)} kbit/s | ${r.fps.toFixed(1)} fps | ${r.longestStallMs} ms | `
  + `${r.freezes} (${(r.freezeMs / 1000).toFixed(1)} s) | ${r.minWidth}-${r.width} | `
  + `${r.concealedPct === null ? '-' : `${r.concealedPct.toFixed(1)}%`} | ${r.target ?? '-'} kbit/s |`;

describe('the box on a capped, lossy uplink, beside a browser on the same link', { timeout: 900000 }, () => {
  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'roombox-congestion-'));
    makePublic();
    const site = makeSite('q', 5);
    boxHost = site.host('box');
    const pageHost = site.host('page');
    anchorHost = site.host('anchor');
    // Moving noise over a test picture: a source that wants the whole bitrate at 720p (the test
    // pattern codes at under 200 kbit/s and would never meet the cap). Looped by the box and
    // by Chromium's fake camera alike.
    y4m = path.join(tmp, 'noise.y4m');
    sh('ffmpeg', '-v', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${WIDTH}x${HEIGHT}:rate=${FPS},noise=alls=10:allf=t`,
      '-frames:v', String(4 * FPS), '-pix_fmt', 'yuv420p', y4m);
    const started = await startServer({ listen: '0.0.0.0:0' });
    server = { ...started, url: `http://${PUBLIC_V4}:${started.port}` };
    box = startBox({
      signalUrl: server.url, room: 'congestion', name: BOX, audioOut: 'none', video: `y4m:${y4m}`,
      width: WIDTH, height: HEIGHT, fps: FPS, iceLoopback: false, netns: boxHost.ns,
      extraArgs: ['--web', 'off', '--config', path.join(tmp, 'none.toml'), '--state-dir', tmp,
        '--degradation', DEGRADATION],
    });
    await box.waitForLog(/signaling: joined /, { timeout: T });
    const secure = `--unsafely-treat-insecure-origin-as-secure=${server.url}`;
    browser = await launchBrowser({ executablePath: chromiumIn(pageHost.ns, CHROMIUM), args: [secure] });
    anchorBrowser = await launchBrowser({
      executablePath: chromiumIn(anchorHost.ns, CHROMIUM),
      args: [secure, `--use-file-for-fake-video-capture=${y4m}`],
    });
    member = await joinRoom(browser, server.url, 'congestion', 'Watcher', { secret: box.secret });
    await waitFor(async () => (await videoFrom(member.page, BOX))?.framesDecoded > FPS,
      { timeout: T, what: 'the page decoding the box' });
  });

  after(async () => {
    if (failed || process.env.E2E_ARTIFACTS) {
      if (member) await saveArtifacts('congestion', [member]).catch(() => {});
      if (box) saveBoxLog('congestion', box);
    }
    await box?.kill('SIGTERM').catch(() => {});
    await browser?.close().catch(() => {});
    await anchorBrowser?.close().catch(() => {});
    await server?.kill('SIGKILL').catch(() => {});
    teardown();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test(`the box (degradation = ${DEGRADATION}): the picture adapts rather than freezes, and comes back`, async (t) => {
    t.after(() => { if (t.passed === false) failed = true; });
    const stats = statsOf(member.page, `[...window.roombox.call.peers.values()].find((p) => p.name === ${JSON.stringify(BOX)}).pc`);
    const r = await profile(t, 'box', { ns: boxHost.ns, stats, target: boxKbps });
    results.box = r;
    // One sample (the box's last status line) of an estimate that probes around the link's rate:
    // it may sit a few percent above the cap (1045 in one CI run); what matters is that it fell
    // from the clean 2500 to the cap.
    assert.ok(r.capped.target <= CAP_KBPS * 1.15 && r.capped.target < r.clean.target * 0.6,
      `the box's target follows the cap: ${r.capped.target} kbit/s (clean ${r.clean.target})`);
    // Bounds from bench/network/RESULTS.md with room for a busy machine; they catch it getting worse.
    assert.ok(r.capped.fps >= 8, `the page keeps decoding under the cap: ${r.capped.fps.toFixed(1)} fps`);
    // The cap falling on a sender at 2.5 Mbit/s is the worst moment: the tbf queue drops a few
    // hundred packets before the estimate follows (measured 0.9-5.5 s at 720p; RESULTS.md).
    assert.ok(r.capped.longestStallMs < 10000, `no freeze of 10 s under the cap: ${r.capped.longestStallMs} ms`);
    assert.ok(r.delayed.fps >= 8, `decoding with 200 ms more RTT: ${r.delayed.fps.toFixed(1)} fps`);
    assert.ok(r.lossy.fps >= 8, `decoding with 2% loss: ${r.lossy.fps.toFixed(1)} fps`);
    assert.ok(r.burst.longestStallMs < 6000, `no freeze of 6 s around the burst: ${r.burst.longestStallMs} ms`);
    assert.ok(r.lifted.fps >= r.clean.fps / 2, `decoding at the clean rate again: ${r.lifted.fps.toFixed(1)} fps (clean ${r.clean.fps.toFixed(1)})`);
    if (DEGRADATION === 'balanced' && WIDTH >= 960) {
      // 1 Mbit/s does not carry 1280x720 noise at 30 fps: a smaller picture, then the full size back.
      assert.ok(r.capped.minWidth < WIDTH, `a smaller picture under the cap: ${r.capped.minWidth} wide`);
      assert.ok(box.lines(/sending \d+x\d+ instead of/).length >= 2, 'the box logs its size changes');
      const back = Date.now();
      await waitFor(async () => (await stats()).width === WIDTH, { timeout: 30000, what: `the full ${WIDTH} width back` });
      t.diagnostic(`box: full size back ${Date.now() - back} ms after the lifted phase's watch`);
    }
  });

  test('the anchor: a Chromium page sending the same video over the same kind of uplink', async (t) => {
    // The box leaves first: the anchor has the machine's CPU as the box had.
    await box.kill('SIGTERM');
    const a = await startAnchor();
    t.diagnostic(`anchor codec: ${a.codec}`);
    const r = await profile(t, 'anchor', { ns: anchorHost.ns, stats: a.stats, target: a.target });
    results.anchor = r;
    assert.ok(r.capped.fps > 0 && r.lifted.fps > 0, 'the anchor decodes throughout');
    const phases = ['clean', 'capped', 'delayed', 'lossy', 'burst', 'lifted'];
    const table = ['| sender | phase | received | decoded | longest stall | freezes | width | audio concealed | target |',
      '|---|---|---|---|---|---|---|---|---|'];
    for (const who of ['box', 'anchor']) {
      if (!results[who]) continue;
      for (const p of phases) table.push(row(`${who} | ${p}`, results[who][p]));
      table.push(`| ${who} | recovery to 80% of clean received | ${results[who].recoveredMs} ms | | | | | | |`);
    }
    for (const line of ['side by side:', ...table]) t.diagnostic(line);
    const limited = await a.sender.evaluate(async () => {
      for (const s of (await window.anchorPc.getStats()).values()) {
        if (s.type === 'outbound-rtp' && s.kind === 'video') return s.qualityLimitationDurations;
      }
      return null;
    });
    // libwebrtc also scales for CPU: on a shared 2-core machine that can be the reason, not the link.
    t.diagnostic(`anchor's quality limitation (seconds by reason): ${JSON.stringify(limited)}`);
  });
});
