// The room's safety code (docs/protocol.md, "Safety code") on the box and on every page: a
// real roombox-signal, a real `roombox run` and Chromium pages on loopback. Everyone shows the
// same code; a member joining changes it everywhere, and everyone agrees again. The box logs
// its code (public: a hash of public keys) as "room safety code: ...", as its screen and
// settings page show it.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { joinRoom, launchBrowser, saveArtifacts, startServer, waitFor } from './lib.js';
import { saveBoxLog, startBox } from './box-lib.js';

const ROOM = `safety-${process.pid}`;
const CODE = /room safety code: (\d{4} \d{4} \d{4} \d{4} \d{4})/;

let server;
let browser;
let box;
const pages = [];

before(async () => {

  server = await startServer();
  box = startBox({
    signalUrl: server.url, room: ROOM, name: 'Safety Room', audioOut: 'none',
    width: 320, height: 180, fps: 10,
  });
  await box.waitForLog(/ joined/);
  browser = await launchBrowser();
});

after(async () => {
  for (const p of pages) await p.context.close().catch(() => {});
  await browser?.close();
  await box?.kill();
  await server?.kill();

});

function boxCode() {
  const lines = box.lines(CODE);
  return lines.length ? CODE.exec(lines[lines.length - 1])[1] : null;
}

async function codes() {
  return Promise.all(pages.map((p) => p.page.evaluate(() => window.roombox.safetyCode)));
}

/** Waits until the box and every page show one code, different from each of `not`. */
async function agreed(not = []) {
  let last;
  await waitFor(async () => {
    last = [boxCode(), ...(await codes())];
    return last[0] && last.every((c) => c === last[0]) && !not.includes(last[0]);
  }, { timeout: 30000, what: 'one safety code on the box and every page' }).catch((e) => {
    throw new Error(`${e.message}: ${JSON.stringify(last)}`);
  });
  return last[0];
}

test('the box and every page show the same safety code, and a newcomer changes it', async (t) => {
  try {
    pages.push(await joinRoom(browser, server.url, ROOM, 'Ada', { secret: box.secret }));
    pages.push(await joinRoom(browser, server.url, ROOM, 'Bob', { secret: box.secret }));
    const two = await agreed();
    t.diagnostic(`box + 2 pages: ${two}`);
    // The page shows it where people read it.
    const shown = await pages[0].page.locator('#safety-code').textContent();
    assert.ok(shown.includes(two), `the page shows ${two}: "${shown}"`);

    pages.push(await joinRoom(browser, server.url, ROOM, 'Cy', { secret: box.secret }));
    const three = await agreed([two]);
    t.diagnostic(`box + 3 pages: ${three}`);
    assert.notEqual(three, two);
  } catch (e) {
    await saveArtifacts('safety', pages);
    saveBoxLog('safety', box);
    throw e;
  }
});
