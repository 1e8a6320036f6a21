// End to end: real roombox-signal, real headless Chromium pages, real WebRTC over loopback.
// Run through run.sh, which puts the whole run in a network namespace that has only loopback.
//
// One room, one story, in order (see README.md beside this file):
//   three pages hear each other -> mute/unmute -> one shares its screen, the others decode it,
//   it stops -> a screen without audio is announced -> two share at once (glare) ->
//   an appliance shows as a room box ->
//   the server is SIGKILLed: media keeps flowing, the pages show "Reconnecting…" ->
//   the server restarts on the same port: the pages rejoin by themselves with the same ids ->
//   a newcomer connects to everyone and hears them -> one page's socket drops, it resumes and
//   every connection is kept -> one leaves, the others see its tile go.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  joinRoom, launchBrowser, peerList, roomSecret, saveArtifacts, startServer, statsByName, statusText,
  tile, waitFor, waitForGrowth, waitForStatus,
} from './lib.js';

const ROOM = `e2e-${process.pid}`;
const T = 30000; // generous: a slow, shared 2-core machine runs four browsers' worth of WebRTC

let server;
let browser;
const members = {}; // name -> {context, page, name, logs}

function others(name) {
  return Object.keys(members).filter((n) => n !== name);
}

/**
 * Every member's page hears every other member: inbound audio packets, the audio frames its
 * frame encryption opens (docs/protocol.md, "Frame encryption") and the energy all grow.
 */
async function assertEveryoneHearsEveryone(label) {
  await Promise.all(Object.values(members).map(async (m) => {
    const names = others(m.name);
    const first = await waitForGrowth(m.page, names, 'audioPackets', {}, { timeout: T, what: `${label}: ${m.name} receiving audio` });
    await waitForGrowth(m.page, names, 'audioPackets', first, { timeout: T, what: `${label}: ${m.name}'s audio packets increasing` });
    await waitForGrowth(m.page, names, 'audioOpened', first, { timeout: T, what: `${label}: ${m.name} opening the others' audio frames` });
    await waitForGrowth(m.page, names, 'audioEnergy', first, { timeout: T, what: `${label}: ${m.name}'s audio energy increasing` });
  }));
}

async function assertConnectedTo(m, names) {
  await waitFor(async () => {
    const { peers } = await peerList(m.page);
    return names.every((n) => peers.some((p) => p.name === n && p.state === 'connected'));
  }, { timeout: T, what: `${m.name} connected to ${names.join(', ')}` });
}

describe('roombox in headless Chromium', { timeout: 300000 }, () => {
  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });

  after(async () => {
    if (process.env.E2E_ARTIFACTS) await saveArtifacts('end', Object.values(members));
    await browser?.close().catch(() => {});
    await server?.kill('SIGKILL');
  });

  test('three pages in one room all hear each other', async (t) => {
    for (const name of ['Ada', 'Bea', 'Cy']) {
      members[name] = await joinRoom(browser, server.url, ROOM, name);
    }
    t.after(async () => { if (t.passed === false) await saveArtifacts('hear', Object.values(members)); });
    for (const m of Object.values(members)) await assertConnectedTo(m, others(m.name));
    await assertEveryoneHearsEveryone('three pages');

    // Names appear as text in the tiles, with kind and connection state.
    for (const m of Object.values(members)) {
      for (const n of others(m.name)) {
        const tl = tile(m.page, n);
        await tl.waitFor({ timeout: T });
        assert.equal((await tl.locator('.name').textContent()).trim(), n);
        assert.match(await tl.textContent(), /Browser/);
        await waitFor(async () => /Connected/.test(await tl.textContent()), { timeout: T, what: `${m.name}: tile ${n} says Connected` });
      }
      assert.match(await tile(m.page, `${m.name} (you)`).textContent(), new RegExp(m.name));
    }
  });

  test('mute and unmute, device pickers', async () => {
    const { page } = members.Bea;
    const micEnabled = () => page.evaluate(() => window.roombox.call.micTrack.enabled);
    assert.equal(await micEnabled(), true);
    await page.getByRole('button', { name: 'Mute', exact: true }).click();
    await page.getByRole('button', { name: 'Unmute', exact: true }).waitFor({ timeout: T });
    assert.equal(await micEnabled(), false);
    await page.getByRole('button', { name: 'Unmute', exact: true }).click();
    await page.getByRole('button', { name: 'Mute', exact: true }).waitFor({ timeout: T });
    assert.equal(await micEnabled(), true);
    // The microphone picker lists the (fake) microphones; the speaker picker exists.
    await page.getByText('Devices').click();
    const mic = page.getByLabel('Microphone');
    await waitFor(async () => (await mic.locator('option').count()) > 0, { timeout: T, what: 'microphones listed' });
    await page.getByLabel('Speaker').waitFor({ timeout: T });
  });

  test('one shares its screen, the others decode it, then it stops sharing', async (t) => {
    const ada = members.Ada;
    t.after(async () => { if (t.passed === false) await saveArtifacts('share', Object.values(members)); });
    await ada.page.getByRole('button', { name: 'Share screen' }).click();
    await ada.page.getByRole('button', { name: 'Stop sharing' }).waitFor({ timeout: T });

    for (const viewer of [members.Bea, members.Cy]) {
      const first = await waitForGrowth(viewer.page, ['Ada'], 'framesDecoded', {}, { timeout: T, what: `${viewer.name} decoding Ada's screen` });
      await waitForGrowth(viewer.page, ['Ada'], 'framesDecoded', first, { timeout: T, what: `${viewer.name}: Ada's frames increasing` });
      // The screen is shown in Ada's tile.
      const video = tile(viewer.page, 'Ada').locator('video');
      await waitFor(async () => video.isVisible(), { timeout: T, what: `${viewer.name}: video in Ada's tile` });
      await waitFor(
        async () => video.evaluate((v) => v.videoWidth > 0 && v.readyState >= 2),
        { timeout: T, what: `${viewer.name}: Ada's video playing` },
      );
    }

    await ada.page.getByRole('button', { name: 'Stop sharing' }).click();
    await ada.page.getByRole('button', { name: 'Share screen' }).waitFor({ timeout: T });
    for (const viewer of [members.Bea, members.Cy]) {
      const video = tile(viewer.page, 'Ada').locator('video');
      await waitFor(async () => !(await video.isVisible()), { timeout: T, what: `${viewer.name}: Ada's screen gone` });
    }
    // Renegotiation left the calls intact.
    await assertEveryoneHearsEveryone('after screen share');
  });

  test('a screen without audio is announced; stopping from the browser UI stops sharing', async () => {
    const { page } = members.Cy;
    // As on a browser that offers no audio for a screen: drop the audio track it returns.
    await page.evaluate(() => {
      const md = navigator.mediaDevices;
      const original = md.getDisplayMedia.bind(md);
      md.getDisplayMedia = async (constraints) => {
        const stream = await original(constraints);
        for (const t of stream.getAudioTracks()) { stream.removeTrack(t); t.stop(); }
        return stream;
      };
    });
    assert.equal(await page.getByLabel('Share audio').isChecked(), true);
    await page.getByRole('button', { name: 'Share screen' }).click();
    await page.getByRole('button', { name: 'Stop sharing' }).waitFor({ timeout: T });
    await page.getByText('the browser gave no audio for this screen').waitFor({ timeout: T });
    await waitFor(async () => tile(members.Ada.page, 'Cy').locator('video').isVisible(), { timeout: T, what: "Ada sees Cy's screen" });
    // The browser's own "Stop sharing" ends the track (a real 'ended' cannot be caused from a
    // page: MediaStreamTrack.stop() does not fire it), so deliver the event the browser sends.
    await page.evaluate(() => window.roombox.call.screenStream.getVideoTracks()[0].dispatchEvent(new Event('ended')));
    await page.getByRole('button', { name: 'Share screen' }).waitFor({ timeout: T });
    await waitFor(async () => !(await tile(members.Ada.page, 'Cy').locator('video').isVisible()), { timeout: T, what: "Cy's screen gone at Ada" });
  });

  test('two pages start and stop sharing at the same moment (glare): both screens arrive', async (t) => {
    t.after(async () => { if (t.passed === false) await saveArtifacts('glare', Object.values(members)); });
    const sharers = [members.Ada, members.Bea];
    const baseline = {};
    for (const m of Object.values(members)) baseline[m.name] = await statsByName(m.page);
    // Capture first, then start both shares together, so both offers are likely in flight at once.
    await Promise.all(sharers.map((m) => m.page.evaluate(async () => {
      window.e2eScreen = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    })));
    await Promise.all(sharers.map((m) => m.page.evaluate(() => window.roombox.call.startScreen(window.e2eScreen))));
    for (const m of sharers) await m.page.getByRole('button', { name: 'Stop sharing' }).waitFor({ timeout: T });

    for (const viewer of Object.values(members)) {
      const from = sharers.map((s) => s.name).filter((n) => n !== viewer.name);
      const first = await waitForGrowth(viewer.page, from, 'framesDecoded', baseline[viewer.name], { timeout: T, what: `${viewer.name} decoding ${from.join(', ')}` });
      await waitForGrowth(viewer.page, from, 'framesDecoded', first, { timeout: T, what: `${viewer.name}: frames from ${from.join(', ')} increasing` });
      for (const n of from) {
        await waitFor(async () => tile(viewer.page, n).locator('video').isVisible(), { timeout: T, what: `${viewer.name}: video in ${n}'s tile` });
      }
    }

    await Promise.all(sharers.map((m) => m.page.evaluate(() => window.roombox.call.stopScreen())));
    for (const viewer of Object.values(members)) {
      for (const n of sharers.map((s) => s.name).filter((x) => x !== viewer.name)) {
        await waitFor(async () => !(await tile(viewer.page, n).locator('video').isVisible()), { timeout: T, what: `${viewer.name}: ${n}'s screen gone` });
      }
    }
    for (const m of Object.values(members)) {
      const { peers } = await peerList(m.page);
      assert.ok(peers.every((p) => p.signalingState === 'stable' || p.state === 'connected'), `${m.name}: negotiation settled`);
    }
    await assertEveryoneHearsEveryone('after simultaneous sharing');
    const counters = await Promise.all(sharers.map((m) => m.page.evaluate(() => window.roombox.call.counters)));
    t.diagnostic(`negotiation counters of ${sharers.map((m) => m.name).join(', ')}: ${JSON.stringify(counters)}`);
  });

  test('a room box (appliance) is shown as a room box tile', async () => {
    // A protocol client (seal.js, no call) joins as an appliance, from a page that is not in the
    // call (no key in its address: the page itself does not join).
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/r/${ROOM}`);
    await page.evaluate(async ({ room, secret }) => {
      const { SealedSignaling } = await import('/assets/js/seal.js');
      const s = new SealedSignaling({ url: `ws://${location.host}/ws`, room, name: 'Room 4', kind: 'appliance', secret });
      window.boxSignaling = s;
      await new Promise((resolve) => {
        s.addEventListener('welcome', resolve, { once: true });
        s.connect();
      });
    }, { room: ROOM, secret: roomSecret(ROOM) });
    for (const m of Object.values(members)) {
      const tl = tile(m.page, 'Room 4');
      await tl.waitFor({ timeout: T });
      assert.match(await tl.textContent(), /Room box/);
    }
    await page.evaluate(() => window.boxSignaling.leave());
    for (const m of Object.values(members)) {
      await tile(m.page, 'Room 4').waitFor({ state: 'detached', timeout: T });
    }
    await context.close();
  });

  test('server killed and restarted: media keeps flowing, pages rejoin, a newcomer connects', async (t) => {
    t.after(async () => { if (t.passed === false) await saveArtifacts('restart', Object.values(members)); });
    const before = {};
    const ids = {};
    const pcs = {};
    for (const m of Object.values(members)) {
      before[m.name] = await statsByName(m.page);
      const { selfId, peers } = await peerList(m.page);
      ids[m.name] = selfId;
      pcs[m.name] = Object.fromEntries(peers.map((p) => [p.name, p.pc]));
    }
    const port = server.port;
    await server.kill('SIGKILL');

    // The outage: every page notices, and media between the pages keeps flowing.
    await Promise.all(Object.values(members).map((m) => waitForStatus(m.page, 'Reconnecting…', T)));
    await Promise.all(Object.values(members).map(async (m) => {
      await waitForGrowth(m.page, others(m.name), 'audioPackets', before[m.name], { timeout: T, what: `${m.name} receiving audio while the server is down` });
      await waitForGrowth(m.page, others(m.name), 'audioEnergy', before[m.name], { timeout: T, what: `${m.name} audio energy while the server is down` });
    }));
    for (const m of Object.values(members)) {
      assert.equal(await statusText(m.page), 'Reconnecting…', `${m.name} still reconnecting during the outage`);
    }

    server = await startServer({ listen: `127.0.0.1:${port}` });

    // The pages rejoin by themselves, with the same ids, keeping their connections.
    await Promise.all(Object.values(members).map((m) => waitForStatus(m.page, 'Connected', T)));
    for (const m of Object.values(members)) {
      const { selfId } = await peerList(m.page);
      assert.equal(selfId, ids[m.name], `${m.name} resumed with its id`);
      await assertConnectedTo(m, others(m.name));
      const { peers } = await peerList(m.page);
      assert.deepEqual(Object.fromEntries(peers.map((p) => [p.name, p.pc])), pcs[m.name], `${m.name} kept its connections`);
    }
    await assertEveryoneHearsEveryone('after the restart');

    // A newcomer after the restart connects to everyone and hears them, and they hear it.
    members.Dee = await joinRoom(browser, server.url, ROOM, 'Dee');
    for (const m of Object.values(members)) await assertConnectedTo(m, others(m.name));
    await assertEveryoneHearsEveryone('with the newcomer');
    for (const n of ['Ada', 'Bea', 'Cy']) {
      await tile(members.Dee.page, n).waitFor({ timeout: T });
      await tile(members[n].page, 'Dee').waitFor({ timeout: T });
    }
  });

  test('one page loses its WebSocket while the server stays up: it resumes, calls untouched', async (t) => {
    t.after(async () => { if (t.passed === false) await saveArtifacts('blip', Object.values(members)); });
    const bea = members.Bea;
    const pcsBefore = {};
    const stats = {};
    for (const m of Object.values(members)) {
      const { peers } = await peerList(m.page);
      pcsBefore[m.name] = Object.fromEntries(peers.map((p) => [p.name, p.pc]));
      stats[m.name] = await statsByName(m.page);
    }
    const { selfId, reconnects } = await bea.page.evaluate(() => ({
      selfId: window.roombox.signaling.id, reconnects: window.roombox.signaling.reconnects,
    }));
    // A network blip on Bea's side: her socket closes (the server sees it and announces her
    // gone); her peer connections do not.
    await bea.page.evaluate(() => window.roombox.signaling._ws.close());
    await waitFor(
      () => bea.page.evaluate((n) => window.roombox.signaling.reconnects > n && window.roombox.signaling.state === 'connected', reconnects),
      { timeout: T, what: 'Bea re-joined' },
    );
    await waitForStatus(bea.page, 'Connected', T);
    assert.equal((await peerList(bea.page)).selfId, selfId, 'Bea kept her id');
    await assertEveryoneHearsEveryone('after the blip');
    for (const m of Object.values(members)) {
      await assertConnectedTo(m, others(m.name));
      const { peers } = await peerList(m.page);
      const pcsNow = Object.fromEntries(peers.map((p) => [p.name, p.pc]));
      assert.deepEqual(pcsNow, pcsBefore[m.name], `${m.name} kept its connections`);
      await waitForGrowth(m.page, others(m.name), 'audioPackets', stats[m.name], { timeout: T });
    }
  });

  test('one leaves and the others see its tile go', async (t) => {
    t.after(async () => { if (t.passed === false) await saveArtifacts('leave', Object.values(members)); });
    const cy = members.Cy;
    await cy.page.getByRole('button', { name: 'Leave' }).click();
    await cy.page.getByText('You left the room.').waitFor({ timeout: T });
    assert.equal(await statusText(cy.page), 'Not connected');
    delete members.Cy;
    for (const m of Object.values(members)) {
      await tile(m.page, 'Cy').waitFor({ state: 'detached', timeout: T });
      const { peers } = await peerList(m.page);
      assert.deepEqual(peers.map((p) => p.name).sort(), others(m.name).sort());
    }
    await cy.context.close();
    // The rest of the room is unaffected.
    await assertEveryoneHearsEveryone('after one left');
  });
});
