// Frame encryption end to end (docs/protocol.md, "Frame encryption"): real headless Chromium
// pages and a real `roombox run` in rooms on a real roombox-signal, all on loopback.
//
// The pages use the web client's test-only switches (`?e2ee-test=...`, web/js/e2ee.js):
// `withhold-keys` (the page's receive side is given no key), `withhold-own-key` (the page never
// sends its media-key), `tap` (the page keeps the frames it sends and receives as they are on
// the wire, and tells the keys it holds: window.roombox.frames.tapTake(), .keysHeld()) and
// `encoded-streams` (createEncodedStreams instead of RTCRtpScriptTransform).
//
// 1. The box's room: a page whose key the box never gets is silent in the box's WAV output while
//    its microphone beeps (the box logs its frames as not opening); a normal page is heard.
//    A page given no keys decodes no video and opens no audio frame, from the box or from a page
//    with its camera on, while the normal pages decode and hear both.
// 2. Rotation, in a room of the box and pages that tap: a page leaves; frames sealed from 2 s
//    after (the others switch to fresh keys 1 s after a departure) do not open with the keys
//    the leaver held, while those sealed before did. A newcomer cannot open the frames sealed
//    before it joined, and opens those after. The longest gap between frames shown
//    (requestVideoFrameCallback on each tile) around each rotation is reported and held under
//    1 s on the pages that stay; their frame encryption drops nothing at either rotation.
//
// Interop of the box's and the browser's frames both ways is box.test.js (the pages open and
// decode the box's video and audio, the box plays the pages' microphones).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  joinRoom, launchBrowser, peerList, saveArtifacts, startServer, statsByName, waitFor, waitForGrowth,
} from './lib.js';
import { lastSeconds, readWav, rms, saveBoxLog, startBox } from './box-lib.js';
import { KeyRing } from '../../web/js/frame-crypto.js';

const T = 30000;
const BOX = 'Frame Box';
const WIDTH = 640;
const HEIGHT = 360;
const FPS = 30;
const SILENCE_RMS = 2;
const SOUND_RMS = 50;
/** Generous: a small shared machine runs the box and four pages. */
const MAX_GAP_MS = 1000;
const VIEWPORT = { width: 1800, height: 1300 };

let server;
let browser;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function selfId(m) {
  return (await peerList(m.page)).selfId;
}

/** Peer ids by name, as `m` knows them. */
async function idsByName(m) {
  const { peers } = await peerList(m.page);
  return Object.fromEntries(peers.map((p) => [p.name, p.id]));
}

async function frameStats(m) {
  return m.page.evaluate(() => window.roombox.frameStats);
}

/** `m` opens audio (and video, when `video`) frames of every peer named in `names`. */
async function assertOpens(m, names, { video = false, what } = {}) {
  const first = await waitForGrowth(m.page, names, 'audioOpened', {}, { timeout: T, what: `${what}: ${m.name} opening audio of ${names.join(', ')}` });
  await waitForGrowth(m.page, names, 'audioOpened', first, { timeout: T, what: `${what}: ${m.name}: audio of ${names.join(', ')} keeps opening` });
  if (video) {
    await waitForGrowth(m.page, names, 'videoOpened', first, { timeout: T, what: `${what}: ${m.name} opening video of ${names.join(', ')}` });
    await waitForGrowth(m.page, names, 'framesDecoded', first, { timeout: T, what: `${what}: ${m.name} decoding video of ${names.join(', ')}` });
  }
}

async function cameraOn(m) {
  await m.page.getByRole('button', { name: 'Camera', exact: true }).click();
  await waitFor(() => m.page.evaluate(() => !!window.roombox.call?.cameraStream), { timeout: T, what: `${m.name}'s camera on` });
}

// ---- the tap --------------------------------------------------------------------------------

function tapStart(m) {
  return m.page.evaluate(() => window.roombox.frames.tapStart());
}

/** What `m` kept since the last take: [{dir, peer, kind, codec, at, kid, data: Uint8Array}]. */
async function tapTake(m) {
  const frames = await m.page.evaluate(async () => {
    const b64 = (bytes) => {
      let s = '';
      for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      return btoa(s);
    };
    return (await window.roombox.frames.tapTake()).map((f) => ({ ...f, data: b64(f.data) }));
  });
  return frames.map((f) => ({ ...f, data: Uint8Array.from(Buffer.from(f.data, 'base64')) }));
}

/** The keys `m` holds from each peer: {peerId: [{kid, key: Uint8Array}]}. */
async function keysHeld(m) {
  const keys = await m.page.evaluate(async () => {
    const k = await window.roombox.frames.keysHeld();
    return Object.fromEntries(Object.entries(k).map(([p, list]) => [p, list.map(({ kid, key }) => ({ kid, key: Array.from(key) }))]));
  });
  return Object.fromEntries(Object.entries(keys).map(([p, list]) => [p, list.map(({ kid, key }) => ({ kid, key: Uint8Array.from(key) }))]));
}

/** Whether `frame` (as received) opens with `keys` (a sender's, as some member held them). */
async function opensWith(keys, frame) {
  if (!keys?.length) return false;
  const ring = new KeyRing();
  for (const k of keys) ring.insert(k);
  const out = frame.codec === 'h264' ? await ring.openH264(frame.data) : await ring.openOpus(frame.data);
  return out !== null;
}

/** Of `frames` received from `senders`, how many open with `keys` ({peerId: keys}): {n, opened, bySender}. */
async function tryOpen(frames, senders, keys) {
  const bySender = {};
  let opened = 0;
  let n = 0;
  for (const f of frames) {
    if (f.dir !== 'received' || !senders.includes(f.peer) || f.data.length === 0) continue;
    const ok = await opensWith(keys[f.peer], f);
    n += 1;
    if (ok) opened += 1;
    const s = (bySender[`${f.peer} ${f.kind}`] ??= { n: 0, opened: 0 });
    s.n += 1;
    if (ok) s.opened += 1;
  }
  return { n, opened, bySender };
}

// ---- frames shown -----------------------------------------------------------------------------

/** Keep, per remote participant, when each video frame was shown (wall clock, ms). */
function watchFrames(m) {
  return m.page.evaluate(() => {
    window.e2eShown = {};
    window.e2eShownSince = Date.now();
    const watch = () => {
      for (const peer of window.roombox.call?.peers.values() ?? []) {
        const v = document.querySelector(`[data-peer-id="${peer.id}"] video`);
        if (!v || v.e2eWatched || !peer.name) continue;
        v.e2eWatched = true;
        const list = (window.e2eShown[peer.name] ??= []);
        const onFrame = (now) => {
          list.push(performance.timeOrigin + now);
          if (list.length > 20000) list.shift();
          v.requestVideoFrameCallback(onFrame);
        };
        v.requestVideoFrameCallback(onFrame);
      }
    };
    watch();
    window.e2eWatchTimer = setInterval(watch, 250);
  });
}

/** The longest gap between frames shown from each participant within [from, to] (wall clock). */
async function longestGaps(m, from0, to) {
  const [shown, since] = await m.page.evaluate(() => [window.e2eShown, window.e2eShownSince]);
  const from = Math.max(from0, since);
  const out = {};
  for (const [name, times] of Object.entries(shown)) {
    const inside = times.filter((t) => t >= from && t <= to);
    const before = times.filter((t) => t < from).at(-1);
    const after = times.find((t) => t > to);
    const edges = [before ?? from, ...inside, after ?? to];
    let gap = 0;
    for (let i = 1; i < edges.length; i++) gap = Math.max(gap, edges[i] - edges[i - 1]);
    out[name] = { gapMs: Math.round(gap), frames: inside.length };
  }
  return out;
}

// ---- 1: keys withheld -----------------------------------------------------------------------

describe('frame encryption: who can open what', { timeout: 600000 }, () => {
  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await server?.kill('SIGKILL').catch(() => {});
  });

  describe('keys withheld, in the box\'s room', () => {
    const ROOM = `frames-keys-${process.pid}`;
    const members = {};
    let box;
    let tmp;
    let wavPath;
    let failed = false;

    before(async () => {
      tmp = mkdtempSync(path.join(os.tmpdir(), 'roombox-e2e-frames-'));
      wavPath = path.join(tmp, 'room.wav');
      box = startBox({
        signalUrl: server.url, room: ROOM, name: BOX, audioOut: `wav:${wavPath}`, width: WIDTH, height: HEIGHT, fps: FPS,
      });
      await box.waitForLog(/signaling: joined /, { timeout: T });
    });

    after(async () => {
      if (failed || process.env.E2E_ARTIFACTS) {
        await saveArtifacts('frames-keys', Object.values(members));
        saveBoxLog('frames-keys', box);
      }
      for (const m of Object.values(members)) await m.context.close().catch(() => {});
      await box?.kill('SIGTERM').catch(() => {});
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    const quietFor = async (what) => {
      let level;
      await waitFor(() => {
        level = rms(lastSeconds(readWav(wavPath), 3));
        return level <= SILENCE_RMS;
      }, { timeout: T, interval: 500, what }).catch((err) => {
        err.message += `; RMS of the last 3 s: ${level}`;
        throw err;
      });
      return level;
    };

    test('the box plays nothing of a page whose key it never got, and plays a normal page', async (t) => {
      t.after(() => { if (t.passed === false) failed = true; });
      const wen = await joinRoom(browser, server.url, ROOM, 'Wen', { secret: box.secret, query: 'e2ee-test=withhold-own-key' });
      members.Wen = wen;
      // Wen's own receive side is normal: it opens and decodes the box.
      await assertOpens(wen, [BOX], { video: true, what: 'withheld key' });
      const wenId = await selfId(wen);
      // Its microphone beeps all along; the box gets its frames and drops every one.
      await box.waitForLog(new RegExp(`an audio frame that does not open: dropped peer=${wenId}`), { timeout: T });
      await sleep(3000);
      const silent = await quietFor('the box\'s WAV silent with only Wen (key withheld) in the room');
      const stats = await frameStats(wen);
      t.diagnostic(`Wen (no media-key sent): sealed ${stats.sealed.audio} audio frames; box WAV RMS of the last 3 s ${silent.toFixed(2)}; box log: ${box.lines(new RegExp(`does not open.*${wenId}`)).length} "does not open" lines for Wen`);

      const nia = await joinRoom(browser, server.url, ROOM, 'Nia', { secret: box.secret });
      members.Nia = nia;
      let loud;
      await waitFor(() => {
        loud = rms(lastSeconds(readWav(wavPath), 3));
        return loud >= SOUND_RMS;
      }, { timeout: T, interval: 500, what: `sound in the box's WAV once Nia (a normal page) joined (RMS >= ${SOUND_RMS})` });
      t.diagnostic(`with Nia: box WAV RMS of the last 3 s ${loud.toFixed(1)}`);
      // Nia muted: Wen still beeps, the room is silent again.
      await nia.page.getByRole('button', { name: 'Mute', exact: true }).click();
      const again = await quietFor('the box\'s WAV silent again with Nia muted and Wen still sending');
      t.diagnostic(`Nia muted, Wen unmuted: box WAV RMS ${again.toFixed(2)}`);
      await nia.page.getByRole('button', { name: 'Unmute', exact: true }).click();
      // Nobody else opens Wen either.
      const niaStats = await statsByName(nia.page);
      assert.equal(niaStats.Wen.audioOpened, 0, 'Nia opens none of Wen\'s frames');
      assert.ok(niaStats.Wen.audioDropped > 0, 'Nia drops Wen\'s frames');
    });

    test('a page given no keys decodes no video and opens no audio, from the box or a page; the others do', async (t) => {
      t.after(() => { if (t.passed === false) failed = true; });
      const { Nia: nia, Wen: wen } = members;
      await cameraOn(nia);
      await assertOpens(wen, ['Nia'], { video: true, what: 'Nia\'s camera' });
      const xia = await joinRoom(browser, server.url, ROOM, 'Xia', { secret: box.secret, query: 'e2ee-test=withhold-keys' });
      members.Xia = xia;
      // Xia's peers are all connected and sending to it.
      await waitForGrowth(xia.page, [BOX, 'Nia', 'Wen'], 'audioPackets', {}, { timeout: T, what: 'Xia receiving audio from everyone' });
      await waitForGrowth(xia.page, [BOX, 'Nia'], 'videoDropped', {}, { timeout: T, what: 'Xia receiving (and dropping) video frames of the box and Nia' });
      const x0 = await statsByName(xia.page);
      const n0 = await statsByName(nia.page);
      const w0 = await statsByName(wen.page);
      await sleep(6000);
      const x1 = await statsByName(xia.page);
      const n1 = await statsByName(nia.page);
      const w1 = await statsByName(wen.page);
      for (const who of [BOX, 'Nia']) {
        assert.equal(x1[who].framesDecoded, 0, `Xia decodes no frame of ${who}`);
        assert.equal(x1[who].videoOpened, 0, `Xia opens no video frame of ${who}`);
        assert.ok(x1[who].videoDropped > x0[who].videoDropped, `Xia keeps dropping ${who}'s video frames`);
      }
      for (const who of [BOX, 'Nia', 'Wen']) {
        assert.equal(x1[who].audioOpened, 0, `Xia opens no audio frame of ${who}`);
        assert.ok(x1[who].audioDropped > x0[who].audioDropped, `Xia keeps dropping ${who}'s audio frames`);
        assert.ok(x1[who].audioPackets > x0[who].audioPackets + 100, `${who}'s audio keeps reaching Xia`);
        assert.ok(x1[who].audioEnergy - x0[who].audioEnergy < 1e-6, `Xia hears nothing of ${who} (energy ${x1[who].audioEnergy - x0[who].audioEnergy})`);
      }
      // Meanwhile the normal pages decode and hear the box, and each other (not Wen: its key
      // was never sent).
      assert.ok(n1[BOX].framesDecoded > n0[BOX].framesDecoded + 2 * FPS, 'Nia decodes the box');
      assert.ok(n1[BOX].audioEnergy > n0[BOX].audioEnergy, 'Nia hears the box');
      assert.ok(w1.Nia.framesDecoded > w0.Nia.framesDecoded + 2 * 10, 'Wen decodes Nia\'s camera');
      assert.ok(w1.Nia.audioEnergy > w0.Nia.audioEnergy, 'Wen hears Nia');
      assert.ok(n1.Xia.audioOpened > n0.Xia.audioOpened, 'Nia opens Xia (Xia sends its key)');
      const xs = await frameStats(xia);
      t.diagnostic(`Xia (no keys) over 6 s: dropped ${x1[BOX].videoDropped - x0[BOX].videoDropped} video and ${x1[BOX].audioDropped - x0[BOX].audioDropped} audio frames of the box, `
        + `${x1.Nia.videoDropped - x0.Nia.videoDropped} video and ${x1.Nia.audioDropped - x0.Nia.audioDropped} audio of Nia; 0 decoded, 0 opened (transforms: ${xs.api})`);
      t.diagnostic(`the same 6 s: Nia decoded ${n1[BOX].framesDecoded - n0[BOX].framesDecoded} frames of the box, Wen ${w1.Nia.framesDecoded - w0.Nia.framesDecoded} of Nia's camera`);
    });
  });

  // ---- 2: rotation ----------------------------------------------------------------------------

  describe('rotation: a leaver and a newcomer', () => {
    const ROOM = `frames-rotation-${process.pid}`;
    const members = {};
    let box;
    let failed = false;
    let ids = {};

    before(async () => {
      box = startBox({
        signalUrl: server.url, room: ROOM, name: BOX, audioOut: 'none', width: WIDTH, height: HEIGHT, fps: FPS,
      });
      await box.waitForLog(/signaling: joined /, { timeout: T });
      members.Ada = await joinRoom(browser, server.url, ROOM, 'Ada', { secret: box.secret, query: 'e2ee-test=tap', viewport: VIEWPORT });
      members.Bea = await joinRoom(browser, server.url, ROOM, 'Bea', { secret: box.secret, query: 'e2ee-test=tap,encoded-streams', viewport: VIEWPORT });
      members.Cy = await joinRoom(browser, server.url, ROOM, 'Cy', { secret: box.secret, query: 'e2ee-test=tap' });
      await cameraOn(members.Ada);
      await cameraOn(members.Bea);
      await assertOpens(members.Ada, [BOX, 'Bea'], { video: true, what: 'three pages' });
      await assertOpens(members.Bea, [BOX, 'Ada'], { video: true, what: 'three pages' });
      await assertOpens(members.Cy, [BOX, 'Ada', 'Bea'], { video: true, what: 'three pages' });
      await assertOpens(members.Ada, ['Cy'], { what: 'three pages' });
      assert.equal((await frameStats(members.Bea)).api, 'encoded-streams');
      assert.equal((await frameStats(members.Ada)).api, 'script-transform');
      ids = await idsByName(members.Cy);
      ids.Cy = await selfId(members.Cy);
      // Let the joins settle (keyframes, bandwidth) before anything is measured.
      await sleep(3000);
      for (const m of [members.Ada, members.Bea]) {
        await watchFrames(m);
        await tapStart(m);
      }
    });

    after(async () => {
      if (failed || process.env.E2E_ARTIFACTS) {
        await saveArtifacts('frames-rotation', Object.values(members));
        saveBoxLog('frames-rotation', box);
      }
      for (const m of Object.values(members)) await m.context.close().catch(() => {});
      await box?.kill('SIGTERM').catch(() => {});
    });

    /**
     * On Ada and Bea, for every sender with a camera: the longest gap between its frames shown
     * from 1 s before to 2 s after its frames came with the new key (the moment this page's
     * frame worker first opened one), checked; and, for comparison, the longest over the whole
     * event (from 0.5 s before `at` to `span` after, a newcomer's page load and connections
     * included) and in a window as long just before it.
     */
    async function checkGaps(t, label, at, span) {
      for (const m of [members.Ada, members.Bea]) {
        const stats = await frameStats(m);
        const whole = await longestGaps(m, at - 500, at + span);
        const quiet = await longestGaps(m, at - 1000 - span, at - 500);
        for (const [name, id] of Object.entries(ids)) {
          if (!whole[name] || name === 'Cy') continue; // no camera (Cy), or the page itself
          const changed = stats.peers[id]?.kidChangedAt;
          assert.ok(changed && changed > at - 500, `${label}: ${m.name} saw ${name}'s frames under a new key (kid ${stats.peers[id]?.lastKid})`);
          const { gapMs, frames } = (await longestGaps(m, changed - 1000, changed + 2000))[name];
          t.diagnostic(`${label}: on ${m.name}, frames of ${name} came with the new key ${Math.round(changed - at)} ms after; the longest gap between them shown `
            + `from 1 s before to 2 s after: ${gapMs} ms (${frames} frames). Over the whole event (${((span + 500) / 1000).toFixed(1)} s): ${whole[name].gapMs} ms; `
            + `as long a window just before: ${quiet[name]?.gapMs ?? 'n/a'} ms`);
          assert.ok(frames > 0, `${label}: ${m.name} showed frames of ${name}`);
          assert.ok(gapMs < MAX_GAP_MS, `${label}: ${m.name} showed no frame of ${name} for ${gapMs} ms around the key change`);
        }
      }
    }

    async function dropped(m) {
      const s = await frameStats(m);
      return Object.fromEntries(Object.entries(s.peers).map(([id, p]) => [id, p.dropped.audio + p.dropped.video]));
    }

    test('a page leaves: what is sealed from 2 s after does not open with the keys it held', async (t) => {
      t.after(() => { if (t.passed === false) failed = true; });
      const { Ada: ada, Bea: bea, Cy: cy } = members;
      await Promise.all([tapTake(ada), tapTake(bea)]); // start afresh
      await sleep(2000);
      const beforeFrames = [...await tapTake(ada), ...await tapTake(bea)];
      const cyKeys = await keysHeld(cy);
      const senders = [ids.Ada, ids.Bea, ids[BOX]];
      assert.ok(senders.every((s) => cyKeys[s]?.length), `Cy holds keys of Ada, Bea and the box: ${Object.keys(cyKeys)}`);
      const drops0 = [await dropped(ada), await dropped(bea)];
      const kids0 = [(await frameStats(ada)).sealingKid, (await frameStats(bea)).sealingKid];

      const leftAt = Date.now();
      await cy.page.getByRole('button', { name: 'Leave', exact: true }).click();
      await sleep(4500);
      const afterFrames = [...await tapTake(ada), ...await tapTake(bea)];
      const kids1 = [(await frameStats(ada)).sealingKid, (await frameStats(bea)).sealingKid];

      const control = await tryOpen(beforeFrames, senders, cyKeys);
      const late = afterFrames.filter((f) => f.at > leftAt + 2000);
      const result = await tryOpen(late, senders, cyKeys);
      t.diagnostic(`before Cy left: ${control.opened} of ${control.n} frames received from Ada, Bea and the box open with Cy's keys`);
      t.diagnostic(`from 2 s after: ${result.opened} of ${result.n} open with them (${JSON.stringify(result.bySender)})`);
      t.diagnostic(`sealing kids of Ada and Bea: ${kids0.join(', ')} before, ${kids1.join(', ')} after`);
      assert.ok(control.n > 100 && control.opened === control.n, `Cy's keys opened what came before it left: ${control.opened} of ${control.n}`);
      assert.ok(result.n > 100, `frames captured after Cy left: ${result.n}`);
      for (const s of senders) {
        for (const kind of ['audio', 'video']) {
          assert.ok(result.bySender[`${s} ${kind}`]?.n > 0, `${kind} frames of ${s} captured after Cy left`);
        }
      }
      assert.equal(result.opened, 0, 'no frame sealed after Cy left opens with the keys Cy held');
      kids0.forEach((k, i) => assert.notEqual(kids1[i], k, 'a fresh key is in use'));
      // The pages that stayed lost nothing to the rotation.
      const drops1 = [await dropped(ada), await dropped(bea)];
      for (const [i, m] of [ada, bea].entries()) {
        for (const s of senders) {
          if (drops0[i][s] === undefined) continue;
          assert.equal(drops1[i][s] - drops0[i][s], 0, `${m.name} dropped frames of ${s} at the rotation`);
        }
      }
      await checkGaps(t, 'leave', leftAt, 4000);
    });

    test('a page joins: it cannot open what was sealed before, and opens what comes after', async (t) => {
      t.after(() => { if (t.passed === false) failed = true; });
      const { Ada: ada, Bea: bea } = members;
      await Promise.all([tapTake(ada), tapTake(bea)]);
      await sleep(2000);
      const beforeFrames = [...await tapTake(ada), ...await tapTake(bea)];
      const drops0 = [await dropped(ada), await dropped(bea)];
      const senders = [ids.Ada, ids.Bea, ids[BOX]];

      const joinedAt = Date.now();
      members.Dee = await joinRoom(browser, server.url, ROOM, 'Dee', { secret: box.secret, query: 'e2ee-test=tap' });
      const dee = members.Dee;
      await assertOpens(dee, [BOX, 'Ada', 'Bea'], { video: true, what: 'the newcomer' });
      const keyedAt = Date.now();
      await sleep(1500);
      const deeKeys = await keysHeld(dee);
      const afterFrames = [...await tapTake(ada), ...await tapTake(bea)];

      const old = await tryOpen(beforeFrames, senders, deeKeys);
      const fresh = await tryOpen(afterFrames.filter((f) => f.at > keyedAt), senders, deeKeys);
      t.diagnostic(`before Dee joined: ${old.opened} of ${old.n} frames open with Dee's keys (${JSON.stringify(old.bySender)})`);
      t.diagnostic(`after it had its keys: ${fresh.opened} of ${fresh.n}`);
      assert.ok(old.n > 100, `frames captured before Dee joined: ${old.n}`);
      assert.equal(old.opened, 0, 'Dee opens nothing sealed before it joined');
      assert.ok(fresh.n > 20 && fresh.opened === fresh.n, `Dee opens what came after: ${fresh.opened} of ${fresh.n}`);
      const drops1 = [await dropped(ada), await dropped(bea)];
      for (const [i, m] of [ada, bea].entries()) {
        for (const s of senders) {
          if (drops0[i][s] === undefined) continue;
          assert.equal(drops1[i][s] - drops0[i][s], 0, `${m.name} dropped frames of ${s} when Dee joined`);
        }
      }
      await checkGaps(t, 'join', joinedAt, Date.now() - joinedAt);
    });
  });
});
