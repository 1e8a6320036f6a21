// The room sees the call: a page shares its screen and the box's display sink
// (`--display-out y4m:PATH`, what its HDMI-out would show) shows it full screen, frames
// advancing; the page stops sharing and the status screen returns. Then two pages turn on
// cameras: side by side in a grid, each with its name, the one whose microphone is heard
// outlined in green.
//
// The shared "screen" is a canvas the page draws: magenta, a white bar that moves a step each
// frame and a frame counter, at 1280x720 (16:9, as the display), so full screen means magenta
// from edge to edge.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { joinRoom, launchBrowser, saveArtifacts, startServer, waitFor } from './lib.js';
import { saveBoxLog, startBox } from './box-lib.js';
import { openY4m, yuvAt } from './sink-lib.js';

const ROOM = `display-${process.pid}`;
const BOX = 'Display Box';
const T = 30000;

let server;
let browser;
let box;
let member;
let alice;
let dir;
let sink;

/** Magenta (R and B full, G none) in BT.601: U and V both far above 128. */
const isMagenta = (p) => p.u > 170 && p.v > 170;
/** Cyan (G and B full, R none): U far above 128, V far below. */
const isCyan = (p) => p.u > 150 && p.v < 80;
/** The speaking outline's green (#3cd070: Y 147, U 108, V 70). */
const isOutline = (p) => p.y > 110 && p.u < 122 && p.v < 95;
const isBlack = (p) => p.y < 30;

/**
 * Two 16:9 tiles in compose's grid on a `w` x `h` display (src/remote_video/compose.rs: two
 * columns, a gap of max(min(w, h) / 90, 2) around cells, each picture aspect-kept and centred):
 * the centre of each picture and a row inside each picture's top outline.
 */
function twoTiles({ w, h }) {
  const gap = Math.max(Math.floor(Math.min(w, h) / 90), 2);
  const cw = Math.floor((w - 3 * gap) / 2);
  const ch = h - 2 * gap;
  const ph = Math.floor((9 * cw + 8) / 16);
  const top = gap + Math.floor((ch - ph) / 2);
  return {
    centres: [[gap + Math.floor(cw / 2), Math.floor(h / 2)], [2 * gap + cw + Math.floor(cw / 2), Math.floor(h / 2)]],
    pictures: [{ x: gap, y: top, w: cw, h: ph }, { x: 2 * gap + cw, y: top, w: cw, h: ph }],
    outlineY: top + 1,
    letterboxY: Math.floor(top / 2),
  };
}

/**
 * The name bar at a picture's bottom left (compose on a 720-line display: 8 px in from the
 * edges, 28 px tall, the text 8 px in and 4 px down): how many of its pixels are white text,
 * and the luma of its top-left corner (the picture darkened to 40 %, no text there).
 */
function nameBar(y4m, frame, pic) {
  const top = pic.y + pic.h - 8 - 28;
  let text = 0;
  for (let y = top + 4; y < top + 24; y++) {
    for (let x = pic.x + 16; x < pic.x + 16 + 60; x++) if (yuvAt(y4m, frame, x, y).y > 200) text++;
  }
  return { text, corner: yuvAt(y4m, frame, pic.x + 9, top + 1).y };
}

/** What a page sends the room box: its outbound video's frame size and rate (getStats). */
function sentToBox(page) {
  return page.evaluate(async () => {
    const box = [...window.roombox.call.peers.values()].find((p) => p.kind === 'appliance');
    let out = null;
    (await box.pc.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video' && s.frameWidth) {
        out = { width: s.frameWidth, height: s.frameHeight, fps: s.framesPerSecond ?? 0 };
      }
    });
    return out;
  });
}

/** A page's camera that is a canvas: cyan with a moving white bar, 1280x720 at 20 fps. */
function cyanCamera(page) {
  return page.evaluate(() => {
    const canvas = document.createElement('canvas');
    canvas.width = 1280;
    canvas.height = 720;
    const g = canvas.getContext('2d');
    let n = 0;
    window.e2eCamTimer = setInterval(() => {
      g.fillStyle = '#00ffff';
      g.fillRect(0, 0, 1280, 720);
      g.fillStyle = '#ffffff';
      g.fillRect((n++ * 16) % 1280, 100, 64, 60);
    }, 50);
    window.roombox.call.startCamera(canvas.captureStream(20));
  });
}

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
    await alice?.context.close().catch(() => {});
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
    member = await joinRoom(browser, server.url, ROOM, 'Sharer', { secret: box.secret });
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
    // `decoder = auto` found no V4L2 H.264 decoder on this machine and said so.
    await box.waitForLog(/decoder: openh264 \(no V4L2 M2M H\.264 decoder found\)/, { timeout: T });
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

  test('two cameras side by side with their names; the voice heard outlined', async (t) => {
    t.after(async () => {
      if (t.passed === false) {
        await saveArtifacts('display-cameras', [member, alice].filter(Boolean));
        saveBoxLog('display-cameras', box);
      }
    });
    member ??= await joinRoom(browser, server.url, ROOM, 'Sharer', { secret: box.secret });
    alice = await joinRoom(browser, server.url, ROOM, 'Alice', { secret: box.secret });
    // Alice with the camera button (the browser's fake camera), the other page with a canvas.
    await alice.page.getByRole('button', { name: 'Camera', exact: true }).click();
    await alice.page.getByRole('button', { name: 'Stop camera' }).waitFor({ timeout: T });
    await cyanCamera(member.page);
    // The box says whose video it shows and what it is (which name is drawn on which tile is
    // checked by compose's unit tests; here, that each tile carries a name bar).
    await box.waitForLog(/showing their video.* name=Alice kind="camera"/, { timeout: T });
    await box.waitForLog(/showing their video.* name=Sharer kind="camera"/, { timeout: T });

    // Side by side: one picture cyan, the other not, black between and above them.
    let tiles;
    await waitFor(() => {
      const y4m = openY4m(sink);
      const last = y4m.last();
      tiles = twoTiles(y4m);
      const at = ([x, y]) => yuvAt(y4m, last, x, y);
      const cyan = tiles.centres.map((c) => isCyan(at(c)));
      return cyan.filter(Boolean).length === 1
        && isBlack(at([Math.floor(y4m.w / 2), Math.floor(y4m.h / 2)]))
        && tiles.centres.every(([x]) => isBlack(at([x, tiles.letterboxY])));
    }, { timeout: T, what: 'two camera tiles side by side in the display sink' });
    {
      const y4m = openY4m(sink);
      const last = y4m.last();
      const cyanAt = tiles.centres.findIndex((c) => isCyan(yuvAt(y4m, last, ...c)));
      const pic = tiles.pictures[cyanAt];
      const bar = nameBar(y4m, last, pic);
      t.diagnostic(`name bar on the canvas camera: ${bar.text} text pixels, corner luma ${bar.corner}`);
      assert.ok(bar.text >= 30, `${bar.text} white text pixels in the name bar`);
      assert.ok(bar.corner > 50 && bar.corner < 110, `the bar darkens the cyan picture (luma ${bar.corner})`);
      assert.ok(isCyan(yuvAt(y4m, last, pic.x + pic.w - 20, pic.y + pic.h - 20)), 'no bar at the bottom right');
      const other = nameBar(y4m, last, tiles.pictures[1 - cyanAt]);
      assert.ok(other.text >= 30, `${other.text} white text pixels in the other tile's name bar`);
    }

    // The box asks each camera for its tile's size (half of 1080p less the gaps: 942 wide), so
    // the 1280x720 canvas goes to it scaled down (past the 320x180 a call starts at), and stays.
    let sent;
    await waitFor(async () => (sent = await sentToBox(member.page)) && sent.width > 320 && sent.width <= 942,
      { timeout: T, what: 'the camera sent to the box at its tile size' });
    await new Promise((r) => setTimeout(r, 2000));
    sent = await sentToBox(member.page);
    assert.ok(sent.width <= 942, `the camera went up to ${sent.width} wide, over its tile`);
    t.diagnostic(`camera to the box in the grid: ${sent.width}x${sent.height}`);

    // Both pages' microphones are Chromium's fake device, which beeps: within a few seconds a
    // tile is outlined. Muted, no outline for two seconds.
    const outlined = () => {
      const y4m = openY4m(sink);
      const last = y4m.last();
      return tiles.centres.filter(([x]) => isOutline(yuvAt(y4m, last, x, tiles.outlineY))).length;
    };
    await waitFor(() => outlined() > 0, { timeout: 10000, what: 'a speaking tile outlined in green' });
    for (const p of [member.page, alice.page]) await p.evaluate(() => window.roombox.call.setMuted(true));
    await new Promise((r) => setTimeout(r, 1500));
    const quietFrom = openY4m(sink).count;
    await new Promise((r) => setTimeout(r, 2000));
    const y4m = openY4m(sink);
    for (let i = quietFrom; i < y4m.count; i++) {
      const f = y4m.frame(i);
      assert.ok(!tiles.centres.some(([x]) => isOutline(yuvAt(y4m, f, x, tiles.outlineY))),
        `picture ${i} outlines a tile while both microphones are muted`);
    }
    t.diagnostic(`${y4m.count - quietFrom} pictures while muted, none outlined`);

    // Alice shares a screen: it fills the display and the cameras behind it are asked for
    // 320x180 at 5 fps (getStats counts over a second: 5-6 measured); after the share, for
    // their tiles again.
    await alice.page.evaluate(() => {
      const canvas = document.createElement('canvas');
      canvas.width = 1280;
      canvas.height = 720;
      const g = canvas.getContext('2d');
      let n = 0;
      window.e2eShareTimer = setInterval(() => {
        g.fillStyle = '#ff00ff';
        g.fillRect(0, 0, 1280, 720);
        g.fillStyle = '#ffffff';
        g.fillRect((n++ * 16) % 1280, 300, 64, 120);
      }, 50);
      window.roombox.call.startScreen(canvas.captureStream(20));
    });
    await waitFor(async () => (sent = await sentToBox(member.page)) && sent.width <= 320 && sent.fps <= 8,
      { timeout: T, what: 'the hidden camera sent small and slow' });
    t.diagnostic(`camera to the box behind a share: ${sent.width}x${sent.height} at ${sent.fps} fps`);
    await alice.page.evaluate(() => { clearInterval(window.e2eShareTimer); window.roombox.call.stopScreen(); });
    await waitFor(async () => (sent = await sentToBox(member.page)) && sent.width > 320,
      { timeout: T, what: 'the camera back at its tile size after the share' });
    t.diagnostic(`camera to the box after the share: ${sent.width}x${sent.height}`);

    // Both cameras off: the status screen.
    await member.page.evaluate(() => { clearInterval(window.e2eCamTimer); window.roombox.call.stopCamera(); });
    await alice.page.getByRole('button', { name: 'Stop camera' }).click();
    await waitFor(() => {
      const s = openY4m(sink);
      const last = s.last();
      return !tiles.centres.some((c) => isCyan(yuvAt(s, last, ...c)))
        && !isBlack(yuvAt(s, last, Math.floor(s.w / 2), Math.floor(s.h / 2)));
    }, { timeout: T, what: 'the status screen back after the cameras' });
  });
});
