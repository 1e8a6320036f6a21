// The box's network address comes, goes and changes, with a real `roombox run`, a real
// roombox-signal and a headless Chromium page (run through run.sh: a namespace of its own,
// to which this test adds a veth pair as the LAN the box and the page share; the box
// runs without --ice-loopback, so that interface is its only way to be reached):
//   the box starts with no address: it says so and waits (it does not exit), and joins the room;
//   an address appears: the box takes it, and a page joins and decodes the box over it (its tile
//   says the path is direct);
//   the page's own network changes (an `online` event): it restarts ICE, the call stays;
//   the address is replaced by another (DHCP gave the box a new one): the box restarts ICE on
//   the call and the page decodes the box again, the same call; the time it took is reported;
//   the box moves to another subnet in one step (an address comes and one goes at once): again.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { joinRoom, launchBrowser, saveArtifacts, startServer, waitFor } from './lib.js';
import { saveBoxLog, selectedPair, startBox, videoFrom, waitForVideo } from './box-lib.js';

const ROOM = 'address-e2e';
const BOX = 'Moving box';
const [WIDTH, HEIGHT, FPS] = [640, 360, 15];
const T = 30000;
const IFACE = 'rbtest0';
const FIRST = '10.99.0.1';
const SECOND = '10.99.0.2';
const THIRD = '10.99.1.3';

const ip = (...args) => execFileSync('ip', args, { stdio: 'pipe' }).toString();

let server;
let browser;
let box;
let page;
let failed = false;

describe('the box follows its network address', { timeout: 300000 }, () => {
  before(async () => {
    // Only loopback here, and no address on the LAN yet.
    assert.doesNotMatch(ip('-o', 'addr'), /10\.99\./);
    ip('link', 'add', IFACE, 'type', 'veth', 'peer', 'name', `${IFACE}p`);
    ip('link', 'set', `${IFACE}p`, 'up');
    ip('link', 'set', IFACE, 'up');
    server = await startServer();
    browser = await launchBrowser();
    box = startBox({
      signalUrl: server.url, room: ROOM, name: BOX, audioOut: 'none',
      width: WIDTH, height: HEIGHT, fps: FPS, iceLoopback: false,
    });
  });

  after(async () => {
    if (failed || process.env.E2E_ARTIFACTS) {
      if (page) await saveArtifacts('address', [page]).catch(() => {});
      if (box) saveBoxLog('address', box);
    }
    await box?.kill('SIGTERM').catch(() => {});
    await browser?.close().catch(() => {});
    await server?.kill('SIGKILL').catch(() => {});
    try { ip('link', 'del', IFACE); } catch { /* already gone with the namespace */ }
  });

  test('no address at start: the box waits, says so, and stays in the room', async (t) => {
    t.after(() => { if (t.passed === false) failed = true; });
    await box.waitForLog(/no network address yet: waiting/, { timeout: T });
    await box.waitForLog(/signaling: joined /, { timeout: T });
    await new Promise((r) => setTimeout(r, 3000));
    assert.ok(box.running(), 'the box is still running without an address');
  });

  test('an address appears: the box takes it and a page decodes the box over it', async (t) => {
    t.after(() => { if (t.passed === false) failed = true; });
    ip('addr', 'add', `${FIRST}/24`, 'dev', IFACE);
    await box.waitForLog(new RegExp(`UDP socket for WebRTC.*${FIRST.replaceAll('.', '\\.')}`), { timeout: T });
    const t0 = Date.now();
    page = await joinRoom(browser, server.url, ROOM, 'Ada', { secret: box.secret });
    await waitForVideo(page.page, BOX, { width: WIDTH, height: HEIGHT, timeout: T, what: `Ada decoding ${BOX}` });
    t.diagnostic(`first decoded frame ${Date.now() - t0} ms after joining`);
    assert.equal(await selectedLocalAddress(page.page), FIRST, 'the call runs over the new address');
    // The tile says which way the call goes: straight to the box, no relay.
    const tileEl = page.page.locator(`li[aria-label="${BOX}"]`);
    await waitFor(async () => (await tileEl.getAttribute('data-path')) === 'direct', { timeout: T, what: 'the tile showing a direct path' });
    assert.match(await tileEl.locator('.quality').getAttribute('title'), /direct connection/);
  });

  test('the page changes network: it restarts ICE and keeps decoding the box', async (t) => {
    t.after(() => { if (t.passed === false) failed = true; });
    const restarts = await page.page.evaluate(() => window.roombox.call.counters.iceRestarts);
    const before = await videoFrom(page.page, BOX);
    // What the browser fires when it comes back online or its connection type changes.
    await page.page.evaluate(() => window.dispatchEvent(new Event('online')));
    await waitFor(() => page.page.evaluate((n) => window.roombox.call.counters.iceRestarts > n, restarts),
      { timeout: T, what: 'the page restarting ICE after the network event' });
    await waitFor(async () => (await videoFrom(page.page, BOX)).framesDecoded > before.framesDecoded + 2 * FPS,
      { timeout: T, what: `Ada still decoding ${BOX} after her ICE restart` });
    assert.equal(box.lines(/call ended/).length, 0, 'the same call');
  });

  test('the address changes: the call restarts ICE and the page decodes the box again', async (t) => {
    t.after(() => { if (t.passed === false) failed = true; });
    const restarts = box.lines(/restarting ICE/).length;
    // As a DHCP renumbering: the old address goes, then the new one comes.
    const gone = Date.now();
    ip('addr', 'del', `${FIRST}/24`, 'dev', IFACE);
    await new Promise((r) => setTimeout(r, 500));
    const before = await videoFrom(page.page, BOX);
    const came = Date.now();
    ip('addr', 'add', `${SECOND}/24`, 'dev', IFACE);
    // One restart, or two when the box saw the address go before the new one came.
    await box.waitForLog(new RegExp(`UDP socket for WebRTC.*${SECOND.replaceAll('.', '\\.')}`), { timeout: T });
    await box.waitForLog(/restarting ICE/, { count: restarts + 1, timeout: T });
    // Frames come again, over the new address.
    await waitFor(async () => {
      const v = await videoFrom(page.page, BOX);
      return v.framesDecoded > before.framesDecoded + 3 && (await selectedLocalAddress(page.page)) === SECOND;
    }, { timeout: T, interval: 100, what: `Ada decoding ${BOX} again over ${SECOND}` });
    const now = Date.now();
    t.diagnostic(`frames again over ${SECOND} ${now - came} ms after it appeared (${now - gone} ms after ${FIRST} went; `
      + 'the box looks at its addresses every 2 s, the page is polled every 100 ms)');
    const later = await videoFrom(page.page, BOX);
    await waitFor(async () => (await videoFrom(page.page, BOX)).framesDecoded > later.framesDecoded + FPS,
      { timeout: T, what: `Ada's frames from ${BOX} advancing after the change` });
    assert.equal(box.lines(/call ended/).length, 0, 'the call was never dropped');
  });

  test('the box moves to another network in one step: the call follows again', async (t) => {
    t.after(() => { if (t.passed === false) failed = true; });
    const before = await videoFrom(page.page, BOX);
    const t0 = Date.now();
    // Both at once, as a move between networks: the box sees one go and one come in one look.
    ip('addr', 'add', `${THIRD}/24`, 'dev', IFACE);
    ip('addr', 'del', `${SECOND}/24`, 'dev', IFACE);
    await waitFor(async () => {
      const v = await videoFrom(page.page, BOX);
      return v.framesDecoded > before.framesDecoded + FPS && (await selectedLocalAddress(page.page)) === THIRD;
    }, { timeout: T, interval: 100, what: `Ada decoding ${BOX} over ${THIRD}` });
    t.diagnostic(`a second of frames over ${THIRD} ${Date.now() - t0} ms after the move`);
    assert.equal(box.lines(/call ended/).length, 0, 'the call was never dropped');
  });
});

/** The box's address in the page's selected candidate pair with the box. */
async function selectedLocalAddress(p) {
  return (await selectedPair(p, BOX))?.remote?.address ?? null;
}
