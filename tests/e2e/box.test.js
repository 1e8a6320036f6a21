// End to end with the room box: a real roombox-signal, a real `roombox run` process (test pattern,
// test tone, WAV output) and real headless Chromium pages, all on loopback (run through run.sh).
//
// One room, in order:
//   the box joins; its WAV output is silent while nobody is there ->
//   two pages join: both decode the box's 1280x720 video at (roughly) its frame rate, hear its
//   tone, show it as a "Room box" tile; the pages' fake microphones reach the box's WAV (and
//   it goes quiet when both mute) ->
//   a page leaves and joins again: it decodes the box's video again ->
//   the server is SIGKILLed: the connected pages keep receiving the box's frames; the server
//   restarts on the same port; the box (not restarted) rejoins; a new page reaches it ->
//   the box stops on SIGTERM: its tile goes, its WAV file is complete.
//
// Numbers (frame rate, time to first frame, jitter buffer, RTT, WAV levels) go to the test's
// diagnostics; only the frame rate has a (loose) floor: at least half the configured rate, in
// at least one 4 s window within a minute (the machine that runs this may be busy with others).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  joinRoom, launchBrowser, saveArtifacts, startServer, statsByName, tile, waitFor, waitForGrowth,
  waitForStatus,
} from './lib.js';
import {
  lastSeconds, measureFps, measureFpsUntil, readWav, rms, saveBoxLog, startBox, videoFrom, waitForVideo,
} from './box-lib.js';

const ROOM = `box-${process.pid}`;
const BOX = 'Board Room';
const WIDTH = 1280;
const HEIGHT = 720;
const FPS = 30;
const T = 30000; // generous: a small, shared machine runs the box and several browsers
const T_LONG = 60000; // the box reconnects with backoff (at most 15 s, plus jitter)
// Silence is digital zero; the fake microphone's beeps, after Opus and the mixer, are far above.
const SILENCE_RMS = 2;
const SOUND_RMS = 50;

let server;
let browser;
let box;
let tmp;
let wavPath;
const members = {}; // name -> {context, page, name, logs}
let anyFailed = false;

function fmt(n, digits = 1) {
  return n === null || n === undefined ? 'n/a' : Number(n).toFixed(digits);
}

async function onFailure(t, label) {
  if (t.passed !== false) return;
  anyFailed = true;
  await saveArtifacts(label, Object.values(members));
  saveBoxLog(label, box);
}

/**
 * `m` decodes the box's video at WIDTH x HEIGHT and its frames keep coming, each opened by the
 * page's frame encryption (the box seals every frame: docs/protocol.md, "Frame encryption").
 */
async function assertDecodesBox(m, label, timeout = T) {
  const first = await waitForVideo(m.page, BOX, { width: WIDTH, height: HEIGHT, timeout, what: `${label}: ${m.name} decoding ${BOX} at ${WIDTH}x${HEIGHT}` });
  const opened = await statsByName(m.page);
  await waitFor(async () => {
    const v = await videoFrom(m.page, BOX);
    return v && v.framesDecoded > first.framesDecoded + FPS;
  }, { timeout, what: `${label}: ${m.name}'s frames from ${BOX} advancing` });
  await waitForGrowth(m.page, [BOX], 'videoOpened', opened, { timeout, what: `${label}: ${m.name} opening ${BOX}'s video frames` });
  return first;
}

/** `m` hears the box: audio packets, audio frames opened and energy from BOX grow. */
async function assertHearsBox(m, label, timeout = T) {
  const first = await waitForGrowth(m.page, [BOX], 'audioPackets', {}, { timeout, what: `${label}: ${m.name} receiving ${BOX}'s audio` });
  await waitForGrowth(m.page, [BOX], 'audioOpened', first, { timeout, what: `${label}: ${m.name} opening ${BOX}'s audio frames` });
  await waitForGrowth(m.page, [BOX], 'audioEnergy', first, { timeout, what: `${label}: ${m.name}: ${BOX}'s audio energy growing` });
}

/** Join `name` and report how long it took from the click to the first decoded frame of the box. */
async function joinAndTime(t, name) {
  const t0 = Date.now();
  members[name] = await joinRoom(browser, server.url, ROOM, name, { secret: box.secret });
  await waitForVideo(members[name].page, BOX, { width: WIDTH, height: HEIGHT, timeout: T, what: `${name} decoding ${BOX}` });
  t.diagnostic(`${name}: first decoded frame of ${BOX} within ${Date.now() - t0} ms of joining (includes page load and polling)`);
}

async function reportFps(t, m, label) {
  const { best: r, windows } = await measureFpsUntil(m.page, BOX, { atLeast: FPS / 2, seconds: 4, timeout: T_LONG });
  t.diagnostic(`${label}: ${m.name} decodes ${BOX} at ${fmt(r.fps)} fps (${r.frames} frames in ${fmt(r.seconds, 2)} s; `
    + `Chromium's framesPerSecond ${fmt(r.last.framesPerSecond)}, jitter buffer ${r.last.jitterBufferMs ?? 'n/a'} ms, RTT ${r.last.rttMs ?? 'n/a'} ms)`
    + (windows.length > 1 ? `; windows measured: ${windows.map((f) => fmt(f)).join(', ')} fps` : ''));
  assert.ok(r.fps >= FPS / 2, `${label}: ${m.name} decodes ${BOX} at ${fmt(r.fps)} fps at best (windows: ${windows.map((f) => fmt(f)).join(', ')}), below half of the configured ${FPS}`);
  return r;
}

/** The box's own status line: its encode rate and peer count. */
function lastBoxStatus() {
  const line = box.lines(/status:/).at(-1);
  if (!line) return null;
  const peers = /peers=(\d+)/.exec(line)?.[1];
  const fps = /\bfps=([\d.]+)/.exec(line)?.[1];
  const kbps = /kbps=(\d+)/.exec(line)?.[1];
  return { peers: peers && Number(peers), fps: fps && Number(fps), kbps: kbps && Number(kbps), line };
}

describe('the room box with headless Chromium pages', { timeout: 600000 }, () => {
  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'roombox-e2e-'));
    wavPath = path.join(tmp, 'room.wav');
    server = await startServer();
    browser = await launchBrowser();
    box = startBox({
      signalUrl: server.url, room: ROOM, name: BOX, audioOut: `wav:${wavPath}`,
      width: WIDTH, height: HEIGHT, fps: FPS,
    });
    await box.waitForLog(/signaling: joined /, { timeout: T });
  });

  after(async () => {
    if (process.env.E2E_ARTIFACTS) {
      await saveArtifacts('box-end', Object.values(members));
      saveBoxLog('box-end', box);
    } else if (anyFailed) {
      saveBoxLog('box-end', box);
    }
    await box?.kill('SIGTERM').catch(() => {});
    await browser?.close().catch(() => {});
    await server?.kill('SIGKILL').catch(() => {});
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test('two pages see and hear the box; their microphones reach its WAV output', async (t) => {
    t.after(() => onFailure(t, 'box-join'));

    // Nobody has joined yet: the box writes silence, and the file is a valid WAV all along.
    const quiet = await waitFor(() => {
      const w = readWav(wavPath);
      return w.samples.length >= w.sampleRate ? w : null;
    }, { timeout: T, what: 'a second of WAV output before any page joins' });
    assert.equal(quiet.sampleRate, 48000);
    assert.equal(quiet.channels, 1);
    assert.equal(quiet.bitsPerSample, 16);
    const quietRms = rms(quiet.samples);
    t.diagnostic(`WAV before any page: ${fmt(quiet.samples.length / quiet.sampleRate, 2)} s, RMS ${fmt(quietRms, 2)}`);
    assert.ok(quietRms <= SILENCE_RMS, `the box's output is not silent before any page joined (RMS ${quietRms})`);

    await joinAndTime(t, 'Ada');
    await joinAndTime(t, 'Bea');

    for (const m of Object.values(members)) {
      await assertDecodesBox(m, 'two pages');
      await assertHearsBox(m, 'two pages');
      // Shown by its name, as a room box, with its video playing in the tile.
      const tl = tile(m.page, BOX);
      await tl.waitFor({ timeout: T });
      assert.equal((await tl.locator('.name').textContent()).trim(), BOX);
      assert.match(await tl.locator('.kind').textContent(), /Room box/);
      const video = tl.locator('video');
      await waitFor(
        async () => video.evaluate((v, [w, h]) => !v.hidden && v.readyState >= 2 && v.videoWidth === w && v.videoHeight === h, [WIDTH, HEIGHT]),
        { timeout: T, what: `${m.name}: ${BOX}'s video playing in its tile` },
      );
    }
    // Both pages at once: the encoder feeds both.
    for (const m of Object.values(members)) await reportFps(t, m, 'two pages');
    await waitFor(() => lastBoxStatus()?.peers === 2, { timeout: T, what: 'the box reporting 2 peers' });
    const st = lastBoxStatus();
    t.diagnostic(`box status: peers ${st.peers}, encoding ${st.fps} fps at ${st.kbps} kbps`);

    // The pages' fake microphones (beeps) reach the box: its WAV output now carries sound.
    let loud;
    await waitFor(() => {
      const w = readWav(wavPath);
      loud = { rms: rms(lastSeconds(w, 3)), seconds: w.samples.length / w.sampleRate, dataLen: w.dataLen, riffSize: w.riffSize, fileSize: w.fileSize };
      return loud.rms >= SOUND_RMS;
    }, { timeout: T, interval: 500, what: `sound in the last 3 s of the box's WAV (RMS >= ${SOUND_RMS})` }).catch((err) => {
      err.message += `; last: ${JSON.stringify(loud)}`;
      throw err;
    });
    t.diagnostic(`WAV with two pages: ${fmt(loud.seconds, 1)} s written, RMS of the last 3 s ${fmt(loud.rms)} (silence was ${fmt(quietRms, 2)})`);
    // The header stays consistent with the file while the box runs.
    assert.ok(loud.dataLen > 0 && loud.riffSize >= loud.dataLen + 36, `WAV header sizes: ${JSON.stringify(loud)}`);

    // The sound is the pages' (not, say, the box's own tone): both mute, the room goes quiet;
    // they unmute, it comes back.
    const setMuted = async (muted) => {
      for (const m of Object.values(members)) {
        await m.page.getByRole('button', { name: muted ? 'Mute' : 'Unmute', exact: true }).click();
        await m.page.getByRole('button', { name: muted ? 'Unmute' : 'Mute', exact: true }).waitFor({ timeout: T });
      }
    };
    const waitForLevel = async (ok, what) => {
      let level;
      await waitFor(() => {
        level = rms(lastSeconds(readWav(wavPath), 2));
        return ok(level);
      }, { timeout: T, interval: 500, what }).catch((err) => {
        err.message += `; last RMS of 2 s: ${level}`;
        throw err;
      });
      return level;
    };
    await setMuted(true);
    const muted = await waitForLevel((l) => l < SOUND_RMS / 10, 'the box\'s WAV quiet while both pages are muted');
    await setMuted(false);
    const unmuted = await waitForLevel((l) => l >= SOUND_RMS, 'sound in the box\'s WAV again after unmuting');
    t.diagnostic(`WAV RMS over the last 2 s: ${fmt(muted)} with both pages muted, ${fmt(unmuted)} after unmuting`);
  });

  test('a page leaves and joins again: it decodes the box again', async (t) => {
    t.after(() => onFailure(t, 'box-rejoin'));
    const ada = members.Ada;
    const left = box.lines(/call ended|peer left/).length;
    await ada.page.getByRole('button', { name: 'Leave', exact: true }).click();
    await ada.page.getByRole('button', { name: 'Join', exact: true }).waitFor({ timeout: T });
    // The box lets go of the call; Bea keeps receiving.
    await box.waitForLog(/call ended|peer left/, { count: left + 1, timeout: T });
    const bea0 = await videoFrom(members.Bea.page, BOX);
    await waitFor(async () => (await videoFrom(members.Bea.page, BOX))?.framesDecoded > bea0.framesDecoded + FPS, { timeout: T, what: `Bea still decoding ${BOX} after Ada left` });

    const t0 = Date.now();
    await ada.page.getByRole('button', { name: 'Join', exact: true }).click();
    await waitForStatus(ada.page, 'Connected', T);
    await assertDecodesBox(ada, 'joined again');
    t.diagnostic(`Ada: decoding ${BOX} again within ${Date.now() - t0} ms of clicking Join`);
    await assertHearsBox(ada, 'joined again');
    await reportFps(t, ada, 'joined again');
    await waitFor(() => lastBoxStatus()?.peers === 2, { timeout: T, what: 'the box reporting 2 peers again' });
  });

  test('the server is killed and restarted: the box rejoins by itself and a new page reaches it', async (t) => {
    t.after(() => onFailure(t, 'box-restart'));
    const port = server.port;
    const joins = box.lines(/signaling: joined /).length;
    const downs = box.lines(/signaling down/).length;
    await server.kill('SIGKILL');
    const killedAt = Date.now();

    // The outage: the box notices, the pages notice, and the box's frames keep arriving.
    await box.waitForLog(/signaling down/, { count: downs + 1, timeout: T });
    await Promise.all(Object.values(members).map((m) => waitForStatus(m.page, 'Reconnecting…', T)));
    await Promise.all(Object.values(members).map(async (m) => {
      const v0 = await videoFrom(m.page, BOX);
      await waitFor(async () => (await videoFrom(m.page, BOX))?.framesDecoded > v0.framesDecoded + 2 * FPS, { timeout: T, what: `${m.name} decoding ${BOX} while the server is down` });
      const a0 = await statsByName(m.page);
      await waitForGrowth(m.page, [BOX], 'audioEnergy', a0, { timeout: T, what: `${m.name} hearing ${BOX} while the server is down` });
    }));
    const during = await measureFps(members.Bea.page, BOX, 3);
    t.diagnostic(`during the outage: Bea decodes ${BOX} at ${fmt(during.fps)} fps`);
    assert.ok(server.proc.exitCode !== null || server.proc.signalCode !== null, 'the server is still down');

    server = await startServer({ listen: `127.0.0.1:${port}` });
    const restartedAt = Date.now();
    t.diagnostic(`server down for ${restartedAt - killedAt} ms`);

    // The box, never restarted, reconnects with backoff and rejoins the room.
    await box.waitForLog(/signaling: joined /, { count: joins + 1, timeout: T_LONG });
    t.diagnostic(`box rejoined ${Date.now() - restartedAt} ms after the server restarted`);
    await Promise.all(Object.values(members).map((m) => waitForStatus(m.page, 'Connected', T_LONG)));
    assert.equal(box.running(), true);

    // A newcomer reaches the box.
    await joinAndTime(t, 'Cy');
    await assertDecodesBox(members.Cy, 'after the restart');
    await assertHearsBox(members.Cy, 'after the restart');
    await tile(members.Cy.page, BOX).waitFor({ timeout: T });
    assert.match(await tile(members.Cy.page, BOX).locator('.kind').textContent(), /Room box/);
    await reportFps(t, members.Cy, 'after the restart');

    // The pages that were there all along still receive the box.
    for (const m of [members.Ada, members.Bea]) await assertDecodesBox(m, 'after the restart');
    await waitFor(() => lastBoxStatus()?.peers === 3, { timeout: T, what: 'the box reporting 3 peers' });
    const st = lastBoxStatus();
    t.diagnostic(`box status: peers ${st.peers}, encoding ${st.fps} fps at ${st.kbps} kbps`);
  });

  test('the box stops on SIGTERM: the pages see it go, its WAV file is complete', async (t) => {
    t.after(() => onFailure(t, 'box-stop'));
    await box.kill('SIGTERM');
    const { code, sig } = await box.exited;
    t.diagnostic(`box exited with ${code ?? sig}`);
    for (const m of Object.values(members)) {
      await tile(m.page, BOX).waitFor({ state: 'detached', timeout: T });
    }
    const w = readWav(wavPath);
    t.diagnostic(`WAV at the end: ${fmt(w.samples.length / w.sampleRate, 1)} s, header data length ${w.dataLen}, file ${w.fileSize} bytes`);
    assert.equal(w.fileSize, w.dataOffset + w.dataLen, 'the header names every byte of the data chunk');
    assert.equal(w.riffSize, w.fileSize - 8);
  });
});
