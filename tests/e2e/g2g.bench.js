// Glass to glass from a browser's screen to the box's display: a page shares a canvas that
// shows the time it was drawn (Date.now(), 42 bits as black and white blocks across the top);
// the box writes what its display shows to a y4m sink with the time each picture was shown
// beside it (`--display-out y4m:PATH`, PATH.times). For every drawn time, its first picture
// on the sink minus the time itself is one glass-to-glass sample (same machine, same clock).
//
// A benchmark (bench/display/run.sh), not a test: it prints
// `g2g: senders N, samples S, p50 X ms, p95 Y ms, max Z ms, box CPU C% of a core`.
// G2G_VIEW=off runs the box with ROOMBOX_VIEW_WISHES=off: it does not ask the senders for their
// tile's size (the comparison for the `view` message).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { joinRoom, launchBrowser, startServer, waitFor } from './lib.js';
import { saveBoxLog, startBox } from './box-lib.js';

const ROOM = `g2g-${process.pid}`;
const SECONDS = Number(process.env.G2G_SECONDS || 20);
const BITS = 42;
const BLOCK = 30; // px a bit, from x = 10, rows 0-60: on a 1280x720 display at 1:1
const T = 30000;
const VIEW = process.env.G2G_VIEW !== 'off';

/** CPU seconds the process has used (user + system), from /proc. */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ (100)
}

let server;
let browser;
let box;
let dir;

/**
 * Where the box draws the n-th of `n` senders' 1280x720 pictures on its 1280x720 display: the
 * full display for one, else the grid of src/remote_video/compose.rs (ceil(sqrt(n)) columns, a
 * gap of min(w, h) / 90, each picture aspect-kept and centred in its cell), mirrored here.
 */
function tiles(n, w = 1280, h = 720) {
  if (n === 1) return [{ x: 0, y: 0, w, h }];
  const cols = Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  const gap = Math.max(2, Math.floor(Math.min(w, h) / 90));
  const cw = Math.floor((w - gap * (cols + 1)) / cols);
  const ch = Math.floor((h - gap * (rows + 1)) / rows);
  return [...Array(n).keys()].map((i) => {
    const cell = { x: gap + (i % cols) * (cw + gap), y: gap + Math.floor(i / cols) * (ch + gap) };
    const ph = Math.floor((720 * cw + 640) / 1280); // 16:9 into a wider cell: full width
    return { x: cell.x, y: cell.y + Math.floor((ch - ph) / 2), w: cw, h: ph };
  });
}

/** Every picture of the sink: its shown time (ms) and, per tile, the time drawn in it (ms). */
function readSink(file, rects) {
  const buf = readFileSync(file);
  const times = readFileSync(`${file}.times`, 'utf8').trim().split('\n').map((l) => Number(l) / 1000);
  const headerEnd = buf.indexOf(0x0a);
  const header = buf.subarray(0, headerEnd).toString();
  const w = Number(/ W(\d+)/.exec(header)[1]);
  const h = Number(/ H(\d+)/.exec(header)[1]);
  const size = w * h * 3 / 2;
  const out = [];
  let at = headerEnd + 1;
  for (let i = 0; at + 6 + size <= buf.length; i++) {
    at = buf.indexOf(0x0a, at) + 1;
    const luma = buf.subarray(at, at + w * h);
    const drawn = rects.map((r) => {
      const s = r.w / 1280;
      let value = 0;
      for (let b = 0; b < BITS; b++) {
        const x = r.x + Math.floor((10 + b * BLOCK + BLOCK / 2) * s);
        const y = r.y + Math.floor(30 * s);
        const v = luma[y * w + x];
        if (v > 90 && v < 160) return null; // neither black nor white: not a readable code
        value = value * 2 + (v >= 128 ? 1 : 0);
      }
      return value;
    });
    out.push({ shown: times[i], drawn });
    at += size;
  }
  return out;
}

describe('glass to glass, a browser screen to the box display', { timeout: 240000 }, () => {
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'roombox-g2g-'));
    server = await startServer();
    browser = await launchBrowser();
    box = startBox({
      signalUrl: server.url, room: ROOM, name: 'G2G Box', audioOut: 'none', width: 640, height: 360, fps: 15,
      extraArgs: ['--display-out', `y4m:${path.join(dir, 'display.y4m')}`],
      env: VIEW ? {} : { ROOMBOX_VIEW_WISHES: 'off' },
    });
    await box.waitForLog(/signaling: joined /, { timeout: T });
  });

  after(async () => {
    await box?.kill('SIGTERM').catch(() => {});
    await browser?.close().catch(() => {});
    await server?.kill('SIGKILL').catch(() => {});
    if (dir && !process.env.G2G_KEEP) rmSync(dir, { recursive: true, force: true });
  });

  for (const senders of (process.env.G2G_SENDERS || '1,5').split(',').map(Number)) {
    test(`${senders} sending`, async (t) => {
      t.after(() => { if (t.passed === false) saveBoxLog(`g2g-${senders}`, box); });
      const pages = [];
      for (let i = 0; i < senders; i++) pages.push(await joinRoom(browser, server.url, ROOM, `Sender ${senders}-${i}`, { secret: box.secret }));
      for (const member of pages) {
        await member.page.evaluate(({ BITS, BLOCK }) => {
          const canvas = document.createElement('canvas');
          canvas.width = 1280;
          canvas.height = 720;
          const g = canvas.getContext('2d');
          const draw = () => {
            const now = Date.now();
            g.fillStyle = '#404040';
            g.fillRect(0, 0, 1280, 720);
            for (let b = 0; b < BITS; b++) {
              const bit = Math.floor(now / 2 ** (BITS - 1 - b)) % 2;
              g.fillStyle = bit ? '#ffffff' : '#000000';
              g.fillRect(10 + b * BLOCK, 0, BLOCK, 60);
            }
          };
          draw();
          window.g2gTimer = setInterval(draw, 10);
          window.roombox.call.startScreen(canvas.captureStream(30));
        }, { BITS, BLOCK });
      }
      const sink = path.join(dir, 'display.y4m');
      const rects = tiles(senders);
      const readable = (p) => p.drawn.every((d) => d !== null && Math.abs(p.shown - d) < 5000);
      await waitFor(() => readSink(sink, rects).slice(-5).some(readable),
        { timeout: T, what: `all ${senders} times readable on the sink` });
      const from = readSink(sink, rects).length;
      const cpuFrom = cpuSeconds(box.proc.pid);
      await new Promise((r) => setTimeout(r, SECONDS * 1000));
      const cpu = (100 * (cpuSeconds(box.proc.pid) - cpuFrom)) / SECONDS;
      const sent = await Promise.all(pages.map((m) => m.page.evaluate(async () => {
        const box = [...window.roombox.call.peers.values()].find((p) => p.kind === 'appliance');
        let size = '';
        (await box.pc.getStats()).forEach((s) => {
          if (s.type === 'outbound-rtp' && s.kind === 'video' && s.frameWidth) size = `${s.frameWidth}x${s.frameHeight}`;
        });
        return size;
      })));
      const pictures = readSink(sink, rects).slice(from);
      const firstShown = rects.map(() => new Map());
      for (const p of pictures) {
        p.drawn.forEach((d, i) => {
          if (d === null || Math.abs(p.shown - d) > 5000) return;
          if (!firstShown[i].has(d)) firstShown[i].set(d, p.shown);
        });
      }
      const delays = firstShown.flatMap((m) => [...m].map(([drawn, shown]) => shown - drawn)).sort((a, b) => a - b);
      assert.ok(delays.length > SECONDS * 5, `only ${delays.length} readable pictures`);
      const q = (p) => delays[Math.min(delays.length - 1, Math.floor(p * delays.length))];
      console.log(`g2g: senders ${senders}, samples ${delays.length} (${(delays.length / SECONDS / senders).toFixed(1)} a second a sender), `
        + `p50 ${q(0.5).toFixed(1)} ms, p95 ${q(0.95).toFixed(1)} ms, max ${delays.at(-1).toFixed(1)} ms, `
        + `pictures on the sink ${pictures.length}, box CPU ${cpu.toFixed(0)}% of a core, `
        + `view ${VIEW ? 'on' : 'off'}, sent ${[...new Set(sent)].join(' ')}`);
      for (const m of pages) {
        await m.page.evaluate(() => { clearInterval(window.g2gTimer); window.roombox.call.stopScreen(); });
        await m.context.close();
      }
      await new Promise((r) => setTimeout(r, 3000));
    });
  }
});
