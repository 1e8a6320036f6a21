// The box's sender on a bad uplink, with a real `roombox run`, a real roombox-signal and a
// headless Chromium page on the box's LAN (namespaces of netlab.js; run through run.sh). The
// box's own uplink (its interface's egress) is impaired in steps while the page watches:
//   clean: the bitrate the box settles at;
//   capped at 1 Mbit/s (tbf): the box's target falls under the cap and the page keeps decoding;
//   200 ms more round trip on top (the box's packets held 200 ms by tests/e2e/delayline.py: this
//   kernel has no netem): still decoding;
//   2% random loss on top (nftables numgen): still decoding;
//   a 30% loss burst for 5 s: the longest freeze the page counts is measured (and bounded);
//   the cap and the loss lifted: the time until the target climbs back is measured.
// The numbers are recorded in bench/network/RESULTS.md.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CHROMIUM, joinRoom, launchBrowser, saveArtifacts, startServer, waitFor } from './lib.js';
import { saveBoxLog, startBox, videoFrom } from './box-lib.js';
import { PUBLIC_V4, chromiumIn, delayEgress, makePublic, makeSite, sh, teardown } from './netlab.js';

const [WIDTH, HEIGHT, FPS] = [640, 360, 30];
const BOX = 'Congested box';
const T = 45000;
const CAP_KBPS = 1000;

let tmp;
let server;
let box;
let browser;
let member;
let boxHost;
let failed = false;

const inBox = (...cmd) => sh('ip', 'netns', 'exec', boxHost.ns, ...cmd);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The encoder target the box last logged (its 5 s status line), in kbit/s. */
function boxKbps() {
  const lines = box.lines(/status: \[.*kbps=(\d+)/);
  const last = lines.at(-1);
  return last ? Number(/kbps=(\d+)/.exec(last)[1]) : null;
}

/** Chromium's counters for the box's video: frames, freezes, bytes. */
async function videoStats() {
  return member.page.evaluate(async (who) => {
    const peer = [...window.roombox.call.peers.values()].find((p) => p.name === who);
    const stats = await peer.pc.getStats();
    for (const s of stats.values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        return {
          at: performance.now(),
          frames: s.framesDecoded,
          freezes: s.freezeCount ?? 0,
          freezeMs: (s.totalFreezesDuration ?? 0) * 1000,
          bytes: s.bytesReceived,
          lost: s.packetsLost,
          nacks: s.nackCount,
          plis: s.pliCount,
          width: s.frameWidth,
        };
      }
    }
    return null;
  }, BOX);
}

/**
 * Watches the page for `seconds`: per second the decoded frames and received kbit/s; the
 * longest stretch without a new frame; the box's targets logged meanwhile.
 */
async function watch(seconds) {
  const samples = [await videoStats()];
  let stalled = 0;
  let longestStall = 0;
  let last = samples[0];
  const tick = 100;
  for (let i = 0; i < (seconds * 1000) / tick; i += 1) {
    await sleep(tick);
    const s = await videoStats();
    if (s.frames === last.frames) {
      stalled += s.at - last.at;
      longestStall = Math.max(longestStall, stalled);
    } else {
      stalled = 0;
    }
    last = s;
    if (i % 10 === 9) samples.push(s);
  }
  const first = samples[0];
  const end = samples.at(-1);
  const secs = (end.at - first.at) / 1000;
  return {
    fps: (end.frames - first.frames) / secs,
    kbps: ((end.bytes - first.bytes) * 8) / 1000 / secs,
    longestStallMs: Math.round(longestStall),
    freezes: end.freezes - first.freezes,
    freezeMs: Math.round(end.freezeMs - first.freezeMs),
    lost: end.lost - first.lost,
    plis: end.plis - first.plis,
    width: end.width,
  };
}

function impair({ capKbps, lossPercent }) {
  try { inBox('tc', 'qdisc', 'del', 'dev', 'eth0', 'root'); } catch { /* none yet */ }
  if (capKbps) {
    inBox('tc', 'qdisc', 'add', 'dev', 'eth0', 'root', 'tbf', 'rate', `${capKbps}kbit`, 'burst', '16kb', 'latency', '200ms');
  }
  try { inBox('nft', 'delete', 'table', 'ip', 'impair'); } catch { /* none yet */ }
  if (lossPercent) {
    inBox('nft', 'add', 'table', 'ip', 'impair');
    inBox('nft', 'add', 'chain', 'ip', 'impair', 'out', '{ type filter hook output priority 0; }');
    inBox('nft', 'add', 'rule', 'ip', 'impair', 'out', 'meta', 'l4proto', 'udp', 'numgen', 'random', 'mod', '100', '<', String(lossPercent), 'drop');
  }
}

const fmt = (r) => `${r.kbps.toFixed(0)} kbit/s received, ${r.fps.toFixed(1)} fps decoded, longest stall ${r.longestStallMs} ms, `
  + `${r.freezes} freezes (${r.freezeMs} ms), ${r.lost} packets lost, ${r.plis} PLIs, ${r.width} wide`;

describe('the box on a capped, lossy uplink', { timeout: 600000 }, () => {
  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'roombox-congestion-'));
    makePublic();
    const site = makeSite('q', 5);
    boxHost = site.host('box');
    const pageHost = site.host('page');
    // Moving noise over a test picture: a source that wants the box's whole bitrate (the test
    // pattern codes at under 200 kbit/s and would never meet the cap). Looped by the box.
    const y4m = path.join(tmp, 'noise.y4m');
    sh('ffmpeg', '-v', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${WIDTH}x${HEIGHT}:rate=${FPS},noise=alls=10:allf=t`,
      '-frames:v', String(4 * FPS), '-pix_fmt', 'yuv420p', y4m);
    const started = await startServer({ listen: '0.0.0.0:0' });
    server = { ...started, url: `http://${PUBLIC_V4}:${started.port}` };
    box = startBox({
      signalUrl: server.url, room: 'congestion', name: BOX, audioOut: 'none', video: `y4m:${y4m}`,
      width: WIDTH, height: HEIGHT, fps: FPS, iceLoopback: false, netns: boxHost.ns,
      extraArgs: ['--web', 'off', '--config', path.join(tmp, 'none.toml'), '--state-dir', tmp],
    });
    await box.waitForLog(/signaling: joined /, { timeout: T });
    browser = await launchBrowser({
      executablePath: chromiumIn(pageHost.ns, CHROMIUM),
      args: [`--unsafely-treat-insecure-origin-as-secure=${server.url}`],
    });
    member = await joinRoom(browser, server.url, 'congestion', 'Watcher');
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
    await server?.kill('SIGKILL').catch(() => {});
    teardown();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test('the picture adapts rather than freezes, and the bitrate comes back', async (t) => {
    t.after(() => { if (t.passed === false) failed = true; });
    const clean = await watch(15);
    const cleanKbps = boxKbps();
    t.diagnostic(`clean: ${fmt(clean)}; box target ${cleanKbps} kbit/s`);

    impair({ capKbps: CAP_KBPS });
    const capped = await watch(30);
    const cappedKbps = boxKbps();
    t.diagnostic(`capped at ${CAP_KBPS} kbit/s: ${fmt(capped)}; box target ${cappedKbps} kbit/s`);
    assert.ok(cappedKbps <= CAP_KBPS, `the box's target follows the cap: ${cappedKbps} kbit/s`);
    // Measured before any tuning of our own (bench/network/RESULTS.md); the bounds leave room
    // for a busy machine and catch it getting worse.
    // Measured: 22.6-23.9 fps; longest stall 1.9 and 4.8 s (when the cap falls on a sender at
    // 2.3 Mbit/s: the queue drops a burst and NACKs compete with media for the 1 Mbit/s).
    assert.ok(capped.fps >= 8, `the page keeps decoding under the cap: ${capped.fps.toFixed(1)} fps`);
    assert.ok(capped.longestStallMs < 8000, `no freeze of 8 s under the cap: ${capped.longestStallMs} ms`);

    const delay = await delayEgress(boxHost.ns, 200);
    const delayed = await watch(20);
    t.diagnostic(`capped + 200 ms RTT: ${fmt(delayed)}; box target ${boxKbps()} kbit/s; ${box.lines(/rtt=/).at(-1)?.match(/rtt=\d+ms/)?.[0]}`);
    assert.ok(delayed.fps >= 8, `decoding with 200 ms more RTT: ${delayed.fps.toFixed(1)} fps`);

    impair({ capKbps: CAP_KBPS, lossPercent: 2 });
    const lossy = await watch(20);
    t.diagnostic(`capped + 200 ms RTT + 2% loss: ${fmt(lossy)}; box target ${boxKbps()} kbit/s`);
    assert.ok(lossy.fps >= 8, `decoding with 2% loss: ${lossy.fps.toFixed(1)} fps`);

    impair({ capKbps: CAP_KBPS, lossPercent: 30 });
    const burst = watch(12);
    await sleep(5000);
    impair({ capKbps: CAP_KBPS, lossPercent: 2 });
    const afterBurst = await burst;
    t.diagnostic(`30% loss for 5 s, then 2%: ${fmt(afterBurst)}`);
    // Measured: longest stall 1.8-2.0 s.
    assert.ok(afterBurst.longestStallMs < 6000, `no freeze of 6 s around the burst: ${afterBurst.longestStallMs} ms`);

    impair({});
    delay.stop();
    const lifted = Date.now();
    let recovered = null;
    await waitFor(() => {
      const k = boxKbps();
      if (k !== null && k >= 0.8 * cleanKbps) recovered = Date.now() - lifted;
      return recovered !== null;
    }, { timeout: 60000, interval: 500, what: `the box's target back to 80% of ${cleanKbps} kbit/s` });
    const free = await watch(10);
    t.diagnostic(`lifted: target back to >= 80% of clean within ${recovered} ms (status lines every 5 s); ${fmt(free)}; box target ${boxKbps()} kbit/s`);
    assert.ok(free.fps >= clean.fps / 2, `decoding at the clean rate again: ${free.fps.toFixed(1)} fps (clean ${clean.fps.toFixed(1)})`);
  });
});
