// The box records what people send it (`roombox run --record-remote DIR`): a page shares its
// screen (a magenta canvas with a moving bar) and talks (Chromium's fake microphone beeps) for a
// few seconds, then leaves. The box has finished that person's file when they left: ffprobe
// finds an H.264 track whose frames decode (the last one magenta) and an Opus track whose
// packets decode, in one Matroska file named after them.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { joinRoom, launchBrowser, saveArtifacts, startServer, waitFor } from './lib.js';
import { saveBoxLog, startBox } from './box-lib.js';

const ROOM = `record-${process.pid}`;
const T = 30000;
/** How long the page shares and talks. */
const SHARE_MS = 5000;

let server;
let browser;
let box;
let member;
let dir;

function ffprobe(file, entries, ...extra) {
  const out = execFileSync('ffprobe', ['-v', 'error', ...extra, '-show_entries', entries, '-of', 'json', file], { encoding: 'utf8' });
  return JSON.parse(out);
}

/** The decoded video scaled to 16x9 RGB, every frame; the last frame's pixels. */
function lastFrameRgb(file) {
  const raw = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:v:0', '-vf', 'scale=16:9', '-pix_fmt', 'rgb24', '-f', 'rawvideo', '-'],
    { maxBuffer: 64 << 20 });
  const size = 16 * 9 * 3;
  assert.ok(raw.length >= size && raw.length % size === 0, `${raw.length} bytes of decoded video`);
  return raw.subarray(raw.length - size);
}

describe('the box records what people send it', { timeout: 180000 }, () => {
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'roombox-record-'));
    server = await startServer();
    browser = await launchBrowser();
    box = startBox({
      signalUrl: server.url, room: ROOM, name: 'Record Box', audioOut: 'none', width: 320, height: 180, fps: 10,
      extraArgs: ['--record-remote', dir],
    });
    await box.waitForLog(/signaling: joined /, { timeout: T });
  });

  after(async () => {
    await box?.kill('SIGTERM').catch(() => {});
    await browser?.close().catch(() => {});
    await server?.kill('SIGKILL').catch(() => {});
    if (dir && !process.env.KEEP_RECORDING) rmSync(dir, { recursive: true, force: true });
  });

  test('a page that shares and talks, then leaves: its file has both, and they decode', async (t) => {
    t.after(async () => {
      if (t.passed === false) {
        await saveArtifacts('record', member ? [member] : []);
        saveBoxLog('record', box);
      }
    });
    member = await joinRoom(browser, server.url, ROOM, 'Rita Recorder', { secret: box.secret });
    await member.page.evaluate(() => {
      const canvas = document.createElement('canvas');
      canvas.width = 640;
      canvas.height = 360;
      const g = canvas.getContext('2d');
      let n = 0;
      const draw = () => {
        g.fillStyle = '#ff00ff';
        g.fillRect(0, 0, 640, 360);
        g.fillStyle = '#ffffff';
        g.fillRect((n++ * 8) % 640, 150, 32, 60);
      };
      draw();
      window.e2eTimer = setInterval(draw, 50);
      window.roombox.call.startScreen(canvas.captureStream(20));
    });
    // The box opens a file at the person's first packet, and shows their screen.
    const opened = await box.waitForLog(/recording what they send into .*Rita_Recorder-.*\.mkv/, { timeout: T });
    await box.waitForLog(/showing their video.* name="?Rita Recorder"? kind="screen"/, { timeout: T });
    t.diagnostic(opened[0]);
    await new Promise((r) => setTimeout(r, SHARE_MS));
    await member.page.evaluate(() => clearInterval(window.e2eTimer));
    await member.page.getByRole('button', { name: 'Leave', exact: true }).click();
    // Leaving finishes the file (Cues, Duration) while the box goes on.
    const done = await box.waitForLog(/recorded .*Rita_Recorder-.*\.mkv: /, { timeout: T });
    t.diagnostic(done[0]);
    assert.ok(box.running(), 'the box carries on');

    const files = readdirSync(dir).filter((f) => f.endsWith('.mkv'));
    assert.equal(files.length, 1, `one file: ${files}`);
    assert.match(files[0], /^Rita_Recorder-.+-\d{10}\.mkv$/);
    const file = path.join(dir, files[0]);

    const info = ffprobe(file, 'stream=index,codec_type,codec_name,width,height,nb_read_frames,nb_read_packets:format=duration,format_name',
      '-count_frames', '-count_packets');
    t.diagnostic(JSON.stringify(info));
    assert.match(info.format.format_name, /matroska/);
    const duration = Number(info.format.duration);
    assert.ok(duration >= SHARE_MS / 1000 - 1 && duration < 60, `duration ${duration} s`);
    const video = info.streams.filter((s) => s.codec_type === 'video');
    const audio = info.streams.filter((s) => s.codec_type === 'audio');
    assert.equal(video.length, 1, 'one video track (the screen; no camera track)');
    assert.equal(audio.length, 1, 'one audio track');
    assert.equal(video[0].codec_name, 'h264');
    assert.ok(video[0].width > 0 && video[0].height > 0, `${video[0].width}x${video[0].height}`);
    // The box asks a sender for what its display shows; whatever the rate, a few seconds of
    // a moving canvas are several decoded frames.
    const frames = Number(video[0].nb_read_frames);
    assert.ok(frames >= 5, `${frames} video frames decoded`);
    assert.equal(audio[0].codec_name, 'opus');
    const packets = Number(audio[0].nb_read_packets);
    const decoded = Number(audio[0].nb_read_frames);
    assert.ok(packets >= (SHARE_MS / 20) * 0.8, `${packets} Opus packets`);
    assert.equal(decoded, packets, 'every Opus packet decodes');

    // The picture is what the page shared: magenta.
    const rgb = lastFrameRgb(file);
    let magenta = 0;
    for (let i = 0; i < rgb.length; i += 3) if (rgb[i] > 180 && rgb[i + 1] < 90 && rgb[i + 2] > 180) magenta++;
    t.diagnostic(`${magenta} of 144 pixels magenta in the last frame`);
    assert.ok(magenta >= 100, `${magenta} of 144 pixels magenta`);
    // The sound is the fake microphone's beep: not silence.
    const pcm = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:a:0', '-ac', '1', '-ar', '48000', '-f', 's16le', '-'],
      { maxBuffer: 64 << 20 });
    let peak = 0;
    for (let i = 0; i + 1 < pcm.length; i += 2) peak = Math.max(peak, Math.abs(pcm.readInt16LE(i)));
    t.diagnostic(`${(pcm.length / 96000).toFixed(2)} s of audio decoded, peak ${peak}`);
    assert.ok(peak > 1000, `the voice is heard (peak ${peak})`);
  });

  test('SIGTERM finishes what is being recorded', async (t) => {
    t.after(async () => {
      if (t.passed === false) saveBoxLog('record-stop', box);
    });
    const page = await joinRoom(browser, server.url, ROOM, 'Sam Stays', { secret: box.secret });
    await box.waitForLog(/recording what they send into .*Sam_Stays-/, { timeout: T });
    await new Promise((r) => setTimeout(r, 2000));
    await box.kill('SIGTERM');
    const { code } = await box.exited;
    assert.equal(code, 0);
    assert.ok(box.lines(/recorded .*Sam_Stays-.*\.mkv: /).length === 1, 'finished at the stop');
    const file = readdirSync(dir).find((f) => f.startsWith('Sam_Stays-'));
    const info = ffprobe(path.join(dir, file), 'stream=codec_name,nb_read_packets:format=duration', '-count_packets');
    t.diagnostic(JSON.stringify(info));
    assert.equal(info.streams.length, 1, 'their voice only');
    assert.equal(info.streams[0].codec_name, 'opus');
    assert.ok(Number(info.streams[0].nb_read_packets) >= 50);
    assert.ok(Number(info.format.duration) >= 1.5);
    await page.context.close().catch(() => {});
  });
});
