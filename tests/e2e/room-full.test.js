// A full room refuses a newcomer with a clear message, and the others are not disturbed.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { joinRoom, launchBrowser, peerList, roomUrl, saveArtifacts, startServer, waitFor } from './lib.js';

const T = 30000;
let server;
let browser;
const members = [];

before(async () => {
  server = await startServer({ extraArgs: ['--max-peers', '2'] });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close().catch(() => {});
  await server?.kill('SIGKILL');
});

test('a third page in a room of two is told the room is full', async (t) => {
  t.after(async () => { if (t.passed === false) await saveArtifacts('full', members); });
  members.push(await joinRoom(browser, server.url, 'small', 'Ada'));
  members.push(await joinRoom(browser, server.url, 'small', 'Bea'));

  const context = await browser.newContext();
  const page = await context.newPage();
  members.push({ page, name: 'Cy', logs: [] });
  await page.goto(roomUrl(server.url, 'small'));
  await page.getByLabel('Your name').fill('Cy');
  await page.getByRole('button', { name: 'Join', exact: true }).click();
  await page.getByText('This room is full').waitFor({ timeout: T });
  // It can try again: the form is back.
  assert.equal(await page.getByRole('button', { name: 'Join', exact: true }).isEnabled(), true);

  for (const m of members.slice(0, 2)) {
    await waitFor(async () => {
      const { peers } = await peerList(m.page);
      return peers.length === 1 && peers[0].state === 'connected';
    }, { timeout: T, what: `${m.name} still connected to the other only` });
  }
  await context.close();
});
