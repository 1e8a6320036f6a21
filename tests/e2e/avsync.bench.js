// Audio and video in sync on the room's display and speaker: a page shares a canvas that turns
// white for 100 ms at every whole second and sends, instead of its microphone, a 1 kHz beep on
// the same seconds; the box shows the share on its display sink (`--display-out y4m:PATH`,
// PATH.times: when each picture was shown) and plays the voices into a WAV file (`--audio-out
// wav:PATH`, written on a 20 ms schedule whose start the box logs in unix time). For every
// second, when the beep starts playing minus when the flash is shown is one sample: positive
// means the sound comes after the picture.
//
// A benchmark (bench/display/run.sh), not a test: it prints
// `avsync: pairs N of S seconds, audio after video: median X ms, p10 Y ms, p90 Z ms`.
// The sender's own capture paths (canvas and WebAudio) are in the numbers; the WAV file has no
// device buffer, a real speaker adds its own (ALSA's buffer).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { joinRoom, launchBrowser, startServer, waitFor } from './lib.js';
import { readWav, saveBoxLog, startBox } from './box-lib.js';
import { openY4m, shownTimes, yuvAt } from './sink-lib.js';

const ROOM = `avsync-${process.pid}`;
const SECONDS = Number(process.env.AVSYNC_SECONDS || 20);
const T = 30000;

let server;
let browser;
let box;
let dir;

/** When the picture turned white (its centre), each time, in unix ms. */
function flashes(sink) {
  const y4m = openY4m(sink);
  const times = shownTimes(sink);
  const out = [];
  let white = false;
  for (let i = 0; i < Math.min(y4m.count, times.length); i++) {
    const now = yuvAt(y4m, y4m.frame(i), Math.floor(y4m.w / 2), Math.floor(y4m.h / 2)).y > 200;
    if (now && !white) out.push(times[i]);
    white = now;
  }
  return out;
}

/** When a beep starts in the WAV (1 ms windows, loud after quiet), in unix ms. */
function beeps(wavPath, startUnixMs) {
  const wav = readWav(wavPath);
  const perMs = wav.sampleRate / 1000;
  const out = [];
  let quietFor = 0;
  for (let ms = 0; (ms + 1) * perMs <= wav.samples.length; ms++) {
    let peak = 0;
    for (let i = ms * perMs; i < (ms + 1) * perMs; i++) peak = Math.max(peak, Math.abs(wav.samples[i]));
    if (peak > 3000) {
      if (quietFor >= 300) out.push(startUnixMs + ms);
      quietFor = 0;
    } else {
      quietFor += 1;
    }
  }
  return out;
}

describe('audio and video in sync on the room display', { timeout: 180000 }, () => {
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'roombox-avsync-'));
    server = await startServer();
    browser = await launchBrowser();
    box = startBox({
      signalUrl: server.url, room: ROOM, name: 'AV Box', audioOut: `wav:${path.join(dir, 'out.wav')}`,
      width: 640, height: 360, fps: 15, audioIn: 'none',
      extraArgs: ['--display-out', `y4m:${path.join(dir, 'display.y4m')}`],
    });
    await box.waitForLog(/signaling: joined /, { timeout: T });
  });

  after(async () => {
    await box?.kill('SIGTERM').catch(() => {});
    await browser?.close().catch(() => {});
    await server?.kill('SIGKILL').catch(() => {});
    if (dir && !process.env.AVSYNC_KEEP) rmSync(dir, { recursive: true, force: true });
  });

  test('flash and beep on the same seconds', async (t) => {
    t.after(() => { if (t.passed === false) saveBoxLog('avsync', box); });
    const [line] = await box.waitForLog(/audio out wav:.*frame n plays at unix (\d+) us/, { timeout: T });
    const wavStart = Number(/unix (\d+) us/.exec(line)[1]) / 1000;
    const member = await joinRoom(browser, server.url, ROOM, 'Flasher', { secret: box.secret });
    await member.page.evaluate(async () => {
      const canvas = document.createElement('canvas');
      canvas.width = 1280;
      canvas.height = 720;
      const g = canvas.getContext('2d');
      const ctx = new AudioContext();
      await ctx.resume();
      const osc = ctx.createOscillator();
      osc.frequency.value = 1000;
      const gain = ctx.createGain();
      gain.gain.value = 0;
      const dest = ctx.createMediaStreamDestination();
      osc.connect(gain).connect(dest);
      osc.start();
      let scheduled = 0;
      window.avTimer = setInterval(() => {
        const now = Date.now();
        g.fillStyle = now % 1000 < 100 ? '#ffffff' : '#202020';
        g.fillRect(0, 0, 1280, 720);
        // The next second's beep, on the audio clock, once.
        const next = Math.ceil(now / 1000) * 1000;
        if (next !== scheduled && next - now < 300) {
          scheduled = next;
          const at = ctx.currentTime + (next - now) / 1000;
          gain.gain.setValueAtTime(0.8, at);
          gain.gain.setValueAtTime(0, at + 0.1);
        }
      }, 5);
      await window.roombox.call.setMicStream(dest.stream);
      window.roombox.call.startScreen(canvas.captureStream(30));
    });
    await waitFor(() => flashes(path.join(dir, 'display.y4m')).length > 0, { timeout: T, what: 'a flash on the sink' });
    const from = Date.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const until = Date.now();
    const seen = flashes(path.join(dir, 'display.y4m')).filter((f) => f >= from && f < until);
    const heard = beeps(path.join(dir, 'out.wav'), wavStart).filter((b) => b >= from - 500 && b < until + 500);
    const offsets = seen
      .map((f) => heard.reduce((best, b) => (Math.abs(b - f) < Math.abs(best - f) ? b : best), Infinity) - f)
      .filter((d) => Math.abs(d) < 500)
      .sort((a, b) => a - b);
    assert.ok(offsets.length >= SECONDS / 2, `only ${offsets.length} flashes paired with a beep (${seen.length} flashes, ${heard.length} beeps)`);
    const q = (p) => offsets[Math.min(offsets.length - 1, Math.floor(p * offsets.length))];
    console.log(`avsync: pairs ${offsets.length} of ${SECONDS} seconds, audio after video: median ${q(0.5).toFixed(0)} ms, `
      + `p10 ${q(0.1).toFixed(0)} ms, p90 ${q(0.9).toFixed(0)} ms (flashes ${seen.length}, beeps ${heard.length})`);
    await member.page.evaluate(() => { clearInterval(window.avTimer); window.roombox.call.stopScreen(); });
    await member.context.close();
  });
});
