// Sealed signaling (docs/protocol.md, version 2) against a dishonest server: a WebSocket proxy
// between the pages and a real roombox-signal plays the server in the middle. It sees no SDP
// at all (in version 1 it would have rewritten the DTLS fingerprints of plain offers and sat in
// the middle of the call), so it does what it can to the sealed messages: flips a byte in a box,
// swaps a member's announced key for a fresh one, replays an envelope, swaps two envelopes.
// Each time the two pages refuse each other, make no connection, and their tiles say why.
// Passing messages through honestly, the same proxy lets them connect and hear each other.
// A page with another room secret is refused and connects to nobody; a page without one
// cannot join.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { WebSocket, WebSocketServer } from 'ws';
import {
  joinRoom, launchBrowser, newSecret, peerList, roomUrl, saveArtifacts, startServer, waitFor,
  waitForGrowth,
} from './lib.js';
import { b64, memberKeys } from '../../web/js/seal.js';
import { saveBoxLog, startBox } from './box-lib.js';

const T = 30000;
const REASON = {
  key: "not signed with this room's secret",
  altered: 'a message was altered',
  replayed: 'a message was replayed or reordered',
};

/**
 * A WebSocket and HTTP proxy in front of roombox-signal on `port`. Pages load from it, so their
 * /ws is its /ws. `mode(room)` picks what it does to what the server sends the members of a
 * room: 'honest', 'flip', 'swap-key', 'replay' or 'reorder'. `seen` counts what went through.
 */
async function startProxy(port) {
  const modes = new Map();
  /** room -> what the reorder mode holds back: {held: [{from, text, send}], passed: Set of senders}. */
  const rooms = new Map();
  const roomState = (room) => {
    if (!rooms.has(room)) rooms.set(room, { held: [], passed: new Set(), timer: null });
    return rooms.get(room);
  };
  const seen = { frames: 0, sealed: 0, plainRelays: 0, sdpText: 0, flipped: 0, swapped: 0, replayed: 0, reordered: 0 };
  const server = http.createServer((req, res) => {
    const up = http.request({ host: '127.0.0.1', port, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    up.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  const wss = new WebSocketServer({ server, path: '/ws' });
  wss.on('connection', (client) => {
    const upstream = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const conn = { room: null, roomState: null };
    const early = [];
    const look = (text) => {
      seen.frames += 1;
      if (/a=fingerprint|"sdp"|candidate:/.test(text)) seen.sdpText += 1;
    };
    client.on('message', (data) => {
      const text = data.toString();
      look(text);
      try {
        const msg = JSON.parse(text);
        if (msg.type === 'join') {
          conn.room = msg.room;
          conn.roomState = roomState(msg.room);
        }
      } catch { /* passed on as it is */ }
      if (upstream.readyState === WebSocket.OPEN) upstream.send(text);
      else early.push(text);
    });
    upstream.on('open', () => { for (const t of early.splice(0)) upstream.send(t); });
    upstream.on('message', (data) => {
      const text = data.toString();
      look(text);
      const sendLater = (t) => { if (client.readyState === WebSocket.OPEN) client.send(t); };
      for (const out of tamper(modes.get(conn.room) ?? 'honest', text, conn, seen, sendLater)) {
        if (client.readyState === WebSocket.OPEN) client.send(out);
      }
    });
    const closeBoth = () => {
      if (client.readyState <= WebSocket.OPEN) client.terminate();
      if (upstream.readyState <= WebSocket.OPEN) upstream.terminate();
    };
    client.on('close', closeBoth);
    upstream.on('close', closeBoth);
    client.on('error', closeBoth);
    upstream.on('error', closeBoth);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    seen,
    setMode: (room, mode) => modes.set(room, mode),
    close: () => new Promise((resolve) => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.close(() => resolve());
      server.closeAllConnections?.();
    }),
  };
}

/** What the proxy hands the member instead of `text` (a list of frames, in order). */
function tamper(mode, text, conn, seen, sendLater) {
  if (mode === 'honest') return [text];
  let msg;
  try {
    msg = JSON.parse(text);
  } catch {
    return [text];
  }
  if (['offer', 'answer', 'ice-candidate', 'view'].includes(msg.type)) seen.plainRelays += 1;
  if (msg.type === 'sealed') seen.sealed += 1;
  const envelope = msg.type === 'sealed' && typeof msg.box === 'string';
  switch (mode) {
    case 'flip': {
      if (!envelope) return [text];
      const bytes = Buffer.from(msg.box, 'base64url');
      bytes[Math.floor(bytes.length / 2)] ^= 0x01;
      seen.flipped += 1;
      return [JSON.stringify({ ...msg, box: bytes.toString('base64url') })];
    }
    case 'swap-key': {
      const swap = (peer) => {
        if (!peer?.key) return peer;
        seen.swapped += 1;
        return { ...peer, key: { ...peer.key, pk: b64(memberKeys().ek) } };
      };
      if (msg.type === 'welcome') return [JSON.stringify({ ...msg, peers: (msg.peers ?? []).map(swap) })];
      if (msg.type === 'peer-joined') return [JSON.stringify({ ...msg, peer: swap(msg.peer) })];
      return [text];
    }
    case 'replay':
      if (!envelope) return [text];
      seen.replayed += 1;
      return [text, text];
    case 'reorder': {
      // Hold back every sender's first envelope (its hi) and pass its later ones; once each
      // sender's second envelope has passed (the newcomer's offer, the other's answer to it),
      // deliver the held ones: each receiver gets a sender's envelope 0 after its envelope 1.
      // (Swapping only the first two a sender sends would leave the side that answers with a
      // single envelope when the other already refused it.) Both members' hellos must be held
      // first: the newcomer's offer can pass before the other has sent its hi, and releasing
      // the newcomer's hi then would make the other refuse it before greeting it at all.
      // The rooms of this mode have two members.
      if (!envelope) return [text];
      const room = conn.roomState;
      if (msg.seq === 0) {
        room.held.push({ from: msg.from, text, send: sendLater });
        room.timer ??= setTimeout(() => release(room, seen, false), 10000);
        return [];
      }
      room.passed.add(msg.from);
      setImmediate(() => {
        const senders = new Set(room.held.map((h) => h.from));
        if (senders.size >= 2 && room.held.every((h) => room.passed.has(h.from))) release(room, seen, true);
      });
      return [text];
    }
    default:
      return [text];
  }
}

function release(room, seen, reordered) {
  clearTimeout(room.timer);
  room.timer = null;
  for (const h of room.held.splice(0)) {
    if (reordered) seen.reordered += 1;
    h.send(h.text);
  }
}

/** The text of the tiles of the others on `page`. */
function otherTiles(page) {
  return page.locator('#tiles li.tile:not(.self)').allTextContents();
}

/** `m` refuses every other peer (one at least) with `reason`: its tile says so, and no connection exists. */
async function assertRefusesAll(m, reason, count = 1) {
  await waitFor(async () => {
    const tiles = await otherTiles(m.page);
    return tiles.length === count && tiles.every((t) => t.includes(`Refused: ${reason}`));
  }, { timeout: T, what: `${m.name}'s tiles saying "Refused: ${reason}"` });
  const { peers } = await peerList(m.page);
  assert.equal(peers.length, count);
  for (const p of peers) {
    assert.equal(p.refused, reason);
    assert.equal(p.state, 'none', `${m.name} keeps no RTCPeerConnection for a refused peer`);
  }
}

async function connectedTo(m, names) {
  await waitFor(async () => {
    const { peers } = await peerList(m.page);
    return names.every((n) => peers.some((p) => p.name === n && p.state === 'connected' && !p.refused));
  }, { timeout: T, what: `${m.name} connected to ${names.join(', ')}` });
}

async function hears(m, names) {
  const first = await waitForGrowth(m.page, names, 'audioPackets', {}, { timeout: T, what: `${m.name} receiving audio` });
  await waitForGrowth(m.page, names, 'audioEnergy', first, { timeout: T, what: `${m.name}'s audio energy growing` });
}

const codeOn = (page) => page.evaluate(() => window.roombox.safetyCode);

describe('sealed signaling through a tampering proxy', { timeout: 300000 }, () => {
  let server;
  let proxy;
  let browser;
  const open = [];

  before(async () => {
    server = await startServer();
    proxy = await startProxy(server.port);
    browser = await launchBrowser();
  });

  after(async () => {
    if (process.env.E2E_ARTIFACTS) await saveArtifacts('tamper-end', open);
    await browser?.close().catch(() => {});
    await proxy?.close();
    await server?.kill('SIGKILL');
  });

  async function join(room, name, opts) {
    const m = await joinRoom(browser, proxy.url, room, name, opts);
    open.push(m);
    return m;
  }

  async function leaveAll(ms) {
    for (const m of ms) await m.context.close().catch(() => {});
  }

  test('honest proxy: the pages connect and hear each other; it saw only sealed messages', async (t) => {
    const room = `tamper-honest-${process.pid}`;
    proxy.setMode(room, 'honest');
    const sdpBefore = proxy.seen.sdpText;
    const ada = await join(room, 'Ada');
    const bea = await join(room, 'Bea');
    t.after(async () => { if (t.passed === false) await saveArtifacts('tamper-honest', [ada, bea]); });
    await connectedTo(ada, ['Bea']);
    await connectedTo(bea, ['Ada']);
    await hears(ada, ['Bea']);
    await hears(bea, ['Ada']);
    assert.equal(proxy.seen.sdpText, sdpBefore, 'no SDP, fingerprint or candidate in clear through the server');

    // The same safety code on both, shown on the page; "I compared the code" until it changes.
    await waitFor(async () => (await codeOn(ada.page)) && (await codeOn(ada.page)) === (await codeOn(bea.page)), { timeout: T, what: 'one safety code' });
    const code = await codeOn(ada.page);
    assert.match(code, /^\d{4} \d{4} \d{4} \d{4} \d{4}$/);
    for (const m of [ada, bea]) {
      assert.equal((await m.page.locator('#safety-code').textContent()).trim(), code);
      assert.ok(await m.page.getByText('End-to-end encrypted').isVisible());
    }
    await ada.page.getByRole('button', { name: 'I compared the code' }).click();
    await ada.page.getByText('Compared.').waitFor({ timeout: T });

    // A page with another secret in the same room: refused by both, refuses both, connects to nobody.
    const eve = await join(room, 'Eve', { secret: newSecret() });
    await assertRefusesAll(eve, REASON.key, 2);
    for (const m of [ada, bea]) {
      await waitFor(async () => (await otherTiles(m.page)).some((x) => x.includes(`Refused: ${REASON.key}`)), { timeout: T, what: `${m.name} refusing Eve` });
      const { peers } = await peerList(m.page);
      const refused = peers.filter((p) => p.refused);
      assert.equal(refused.length, 1);
      assert.equal(refused[0].state, 'none');
    }
    assert.equal(await codeOn(ada.page), code, 'a refused page does not count in the code');
    await hears(ada, ['Bea']);

    // A newcomer with the key changes the code: the page says to compare again.
    const cy = await join(room, 'Cy');
    await connectedTo(ada, ['Bea', 'Cy']);
    await waitFor(async () => (await codeOn(ada.page)) !== code, { timeout: T, what: 'a new code with Cy' });
    await ada.page.getByText('Code changed: compare again').waitFor({ timeout: T });
    await waitFor(async () => new Set([await codeOn(ada.page), await codeOn(bea.page), await codeOn(cy.page)]).size === 1, { timeout: T, what: 'three equal codes' });
    await leaveAll([ada, bea, eve, cy]);
  });

  test('a page without the room key cannot join', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(roomUrl(proxy.url, `tamper-nokey-${process.pid}`, null));
    await page.getByText('This link lacks the room key').waitFor({ timeout: T });
    assert.equal(await page.getByRole('button', { name: 'Join', exact: true }).isDisabled(), true);
    assert.equal(await page.evaluate(() => window.roombox.signaling), null, 'no signaling at all');
    await context.close();
  });

  for (const [mode, reason, what] of [
    ['flip', REASON.altered, 'a byte flipped in every sealed box'],
    ['swap-key', REASON.key, "each member's announced key swapped for a fresh one"],
    ['replay', REASON.replayed, 'every envelope delivered twice'],
    ['reorder', REASON.replayed, "each sender's first envelope delivered after its second"],
  ]) {
    test(`${what}: both pages refuse ("${reason}") and never connect`, async (t) => {
      const room = `tamper-${mode}-${process.pid}`;
      proxy.setMode(room, mode);
      const ada = await join(room, 'Ada');
      const bea = await join(room, 'Bea');
      t.after(async () => { if (t.passed === false) await saveArtifacts(`tamper-${mode}`, [ada, bea]); });
      await assertRefusesAll(ada, reason);
      await assertRefusesAll(bea, reason);
      // And it stays that way.
      await new Promise((r) => setTimeout(r, 2000));
      for (const m of [ada, bea]) {
        const { peers } = await peerList(m.page);
        assert.equal(peers[0].state, 'none');
        assert.equal(peers[0].refused, reason);
      }
      const counter = { flip: 'flipped', 'swap-key': 'swapped', replay: 'replayed', reorder: 'reordered' }[mode];
      assert.ok(proxy.seen[counter] > 0, `the proxy ${counter} something`);
      assert.equal(proxy.seen.plainRelays, 0, 'nothing plain relayed');
      t.diagnostic(`${mode}: ${JSON.stringify(proxy.seen)}`);
      await leaveAll([ada, bea]);
    });
  }

  // The room box's sealer (crates/seal) behind the same dishonest server: honest, it calls the
  // page; flipping a byte or swapping keys, the page refuses the box and the box the page.
  for (const [mode, reason] of [['honest', null], ['flip', REASON.altered], ['swap-key', REASON.key]]) {
    test(`the room box through the proxy, ${mode}: ${reason ? `both refuse ("${reason}")` : 'the call connects'}`, async (t) => {
      const room = `tamper-box-${mode}-${process.pid}`;
      proxy.setMode(room, mode);
      const box = startBox({
        signalUrl: proxy.url, room, name: 'Tamper Room', audioOut: 'none', width: 320, height: 180, fps: 10,
      });
      let ada;
      try {
        await box.waitForLog(/ joined/);
        ada = await join(room, 'Ada', { secret: box.secret });
        if (!reason) {
          await connectedTo(ada, ['Tamper Room']);
          await box.waitForLog(/media connected/);
          assert.equal(proxy.seen.plainRelays, 0, 'nothing plain relayed');
        } else {
          await assertRefusesAll(ada, reason);
          await box.waitForLog(new RegExp(`refused: ${reason}`));
          assert.equal(box.lines(/media connected/).length, 0, 'the box made no call');
        }
      } catch (e) {
        await saveArtifacts(`tamper-box-${mode}`, ada ? [ada] : []);
        saveBoxLog(`tamper-box-${mode}`, box);
        throw e;
      } finally {
        if (ada) await leaveAll([ada]);
        await box.kill();
      }
    });
  }
});
