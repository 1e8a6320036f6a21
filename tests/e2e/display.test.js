// The room sees the call: a page shares its screen and the box's display sink
// (`--display-out y4m:PATH`, what its HDMI-out would show) shows it full screen, frames
// advancing; the page stops sharing and the status screen returns.
//
// The shared "screen" is a canvas the page draws: magenta, a white bar that moves a step each
// frame and a frame counter, at 1280x720 (16:9, as the display), so full screen means magenta
// from edge to edge.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  closeSync, fstatSync, mkdtempSync, openSync, readSync, rmSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { joinRoom, launchBrowser, saveArtifacts, startServer, waitFor } from './lib.js';
import { saveBoxLog, startBox } from './box-lib.js';

const ROOM = `display-${process.pid}`;
const BOX = 'Display Box';
const T = 30000;

let server;
let browser;
let box;
let member;
let dir;
let sink;

/**
 * The y4m file's picture size, its frame count and a reader of frame `i` (an I420 buffer). Reads
 * only what is asked: the file grows by a 1280x720 picture each time the display changes.
 */
function openY4m(file) {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(128);
    readSync(fd, head, 0, 128, 0);
    const headerEnd = head.indexOf(0x0a);
    const header = head.subarray(0, headerEnd).toString();
    const w = Number(/ W(\d+)/.exec(header)[1]);
    const h = Number(/ H(\d+)/.exec(header)[1]);
    const size = w * h + 2 * (Math.ceil(w / 2) * Math.ceil(h / 2));
    const record = 'FRAME\n'.length + size;
    const count = Math.max(0, Math.floor((fstatSync(fd).size - headerEnd - 1) / record));
    const frame = (i) => {
      const f = Buffer.alloc(size);
      const rfd = openSync(file, 'r');
      try {
        readSync(rfd, f, 0, size, headerEnd + 1 + i * record + 'FRAME\n'.length);
      } finally {
        closeSync(rfd);
      }
      return f;
    };
    return { w, h, count, frame, last: () => frame(count - 1) };
  } finally {
    closeSync(fd);
  }
}

/** The colour of the pixel at (x, y) as Y, U, V. */
function yuvAt({ w, h }, frame, x, y) {
  const cw = Math.ceil(w / 2);
  const ch = Math.ceil(h / 2);
  const c = Math.floor(y / 2) * cw + Math.floor(x / 2);
  return { y: frame[y * w + x], u: frame[w * h + c], v: frame[w * h + cw * ch + c] };
}

/** Magenta (R and B full, G none) in BT.601: U and V both far above 128. */
const isMagenta = (p) => p.u > 170 && p.v > 170;

/** Points spread over the picture, corners included (above the name bar at the bottom left). */
function samplePoints({ w, h }) {
  const pts = [];
  for (const fx of [0.02, 0.5, 0.98]) for (const fy of [0.02, 0.5, 0.9]) pts.push([Math.floor(fx * w), Math.floor(fy * h)]);
  return pts;
}

describe('the room display shows a shared screen', { timeout: 180000 }, () => {
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'roombox-display-'));
    sink = path.join(dir, 'display.y4m');
    server = await startServer();
    browser = await launchBrowser();
    box = startBox({
      signalUrl: server.url, room: ROOM, name: BOX, audioOut: 'none', width: 640, height: 360, fps: 15,
      extraArgs: ['--display-out', `y4m:${sink}`],
    });
    await box.waitForLog(/signaling: joined /, { timeout: T });
  });

  after(async () => {
    await box?.kill('SIGTERM').catch(() => {});
    await browser?.close().catch(() => {});
    await server?.kill('SIGKILL').catch(() => {});
    if (dir && !process.env.KEEP_SINK) rmSync(dir, { recursive: true, force: true });
  });

  test('full screen while shared, frames advancing; the status screen after', async (t) => {
    t.after(async () => {
      if (t.passed === false) {
        await saveArtifacts('display', member ? [member] : []);
        saveBoxLog('display', box);
      }
    });
    member = await joinRoom(browser, server.url, ROOM, 'Sharer');
    // Before anyone shares, the sink shows the status screen: no magenta anywhere.
    await waitFor(() => openY4m(sink).count > 0, { timeout: T, what: 'a first picture in the sink' });
    const before = openY4m(sink);
    const status = before.last();
    assert.ok(!samplePoints(before).some(([x, y]) => isMagenta(yuvAt(before, status, x, y))),
      'the status screen is not magenta');

    await member.page.evaluate(() => {
      const canvas = document.createElement('canvas');
      canvas.width = 1280;
      canvas.height = 720;
      const g = canvas.getContext('2d');
      let n = 0;
      const draw = () => {
        g.fillStyle = '#ff00ff';
        g.fillRect(0, 0, 1280, 720);
        g.fillStyle = '#ffffff';
        g.fillRect((n * 16) % 1280, 300, 64, 120);
        g.font = '64px sans-serif';
        g.fillText(String(n), 40, 100);
        n++;
      };
      draw();
      window.e2eTimer = setInterval(draw, 50);
      window.roombox.call.startScreen(canvas.captureStream(20));
    });
    const shownAt = Date.now();
    // Full screen: every sample point magenta but the bar's row, in the newest picture.
    await waitFor(() => {
      const y4m = openY4m(sink);
      const last = y4m.last();
      return samplePoints(y4m).every(([x, y]) => isMagenta(yuvAt(y4m, last, x, y)));
    }, { timeout: T, what: 'the shared screen full screen in the display sink' });
    t.diagnostic(`shared screen on the display sink ${Date.now() - shownAt} ms after startScreen`);
    // Frames advance: the moving bar changes the pictures the sink gets.
    const a = openY4m(sink).count;
    await new Promise((r) => setTimeout(r, 2000));
    const y4m = openY4m(sink);
    const added = y4m.count - a;
    assert.ok(added >= 5, `only ${added} new pictures in 2 s of a moving share`);
    // The bar's rows (y 300-420 of 720) differ from picture to picture.
    const rows = (f) => f.subarray(Math.floor(0.42 * y4m.h) * y4m.w, Math.floor(0.58 * y4m.h) * y4m.w);
    const distinct = new Set();
    for (let i = a; i < y4m.count; i++) distinct.add(rows(y4m.frame(i)).toString('base64'));
    t.diagnostic(`${added} pictures in 2 s, ${distinct.size} distinct`);
    assert.ok(distinct.size >= 3, 'the pictures change as the share moves');

    // Stop: the status screen returns.
    await member.page.evaluate(() => { clearInterval(window.e2eTimer); window.roombox.call.stopScreen(); });
    const stoppedAt = Date.now();
    await waitFor(() => {
      const s = openY4m(sink);
      const last = s.last();
      return !samplePoints(s).some(([x, y]) => isMagenta(yuvAt(s, last, x, y)));
    }, { timeout: T, what: 'the status screen back in the display sink' });
    t.diagnostic(`status screen back ${Date.now() - stoppedAt} ms after stopScreen`);
  });
});
