// End to end with the box's settings page: a real `roombox run` serving its page on loopback, a
// real roombox-signal, headless Chromium for the admin's browser and for people in the rooms.
//
// In order:
//   first visit: every page leads to "set the password", which asks for the claim code the box
//   printed to its log (as an installer reads the journal); a wrong code is refused, the right
//   one with the password claims the box, once; the hash file is 0600 Argon2id; the claim code
//   is in one log line only and the password in none ->
//   log out; a WRONG password is refused; the right one logs in ->
//   the room is changed on the page: the box leaves the old room (its tile goes there) and a
//   page already waiting in the new room sees it arrive and decodes its video; the config
//   file on disk has the new room ->
//   a new size and bitrate bound: only the media threads restart, the viewer decodes the new
//   size from the same box member ->
//   mute from the page: the page's meters show the tone captured and nothing sent, the status
//   says muted, the person in the room hears the box go silent; unmute brings it back ->
//   a bad value (fps 0, then an invalid room) is refused with the field named; the config file
//   is byte for byte unchanged ->
//   a page from another origin (another port) auto-submits a form to the settings endpoint in
//   the admin's logged-in browser: refused, nothing changes ->
//   the page shows the room's join link with the secret of <state_dir>/room-secret and its QR
//   code; "New room secret" writes a new one, the page shows the new link, and the box leaves
//   its room and joins again with it; no secret is ever in the box's log.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inboundStats, joinRoom, launchBrowser, saveArtifacts, startServer, tile, waitFor } from './lib.js';
import { saveBoxLog, startBox, videoFrom, waitForVideo } from './box-lib.js';

const ROOM_A = `first-${process.pid}`;
const ROOM_B = `second-${process.pid}`;
const BOX = 'Settings Box';
const PASSWORD = 'correct horse battery';
const T = 30000;

let server;
let browser;
let box;
let tmp;
let configPath;
let web; // the settings page's base URL, e.g. http://127.0.0.1:41234
let admin; // {context, page, name, logs}: the admin's browser
let claimCode; // as the box printed it: "1234-5678"
const members = {};

async function onFailure(t, label) {
  if (t.passed !== false) return;
  await saveArtifacts(label, [admin, ...Object.values(members)]);
  saveBoxLog(label, box);
}

/** The box's status as the page's JSON API gives it (in the admin's session). */
function apiStatus() {
  return admin.page.evaluate(async () => (await fetch('/api/status')).json());
}

describe('the settings page', { timeout: 300000 }, () => {
  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'roombox-settings-'));
    configPath = path.join(tmp, 'roombox.toml');
    server = await startServer();
    browser = await launchBrowser();
    box = startBox({
      signalUrl: server.url, room: ROOM_A, name: BOX, audioOut: 'none', width: 640, height: 360, fps: 15,
      extraArgs: ['--config', configPath, '--state-dir', tmp, '--web', '127.0.0.1:0'],
    });
    const [line] = await box.waitForLog(/settings page on http:\/\/127\.0\.0\.1:\d+\//, { timeout: T });
    web = /settings page on (http:\/\/127\.0\.0\.1:\d+)\//.exec(line)[1];
    // A new box prints its claim code once; the installer reads it in the journal.
    const [claim] = await box.waitForLog(/claim code for the settings page: \d{4}-\d{4}/, { timeout: T });
    claimCode = /claim code for the settings page: (\d{4}-\d{4})/.exec(claim)[1];
    await box.waitForLog(/signaling: joined /, { timeout: T });
    const context = await browser.newContext({ viewport: { width: 400, height: 800 } }); // a phone
    const page = await context.newPage();
    const logs = [];
    page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
    admin = { context, page, name: 'admin', logs };
  });

  after(async () => {
    await box?.kill('SIGTERM').catch(() => {});
    await browser?.close().catch(() => {});
    await server?.kill('SIGKILL').catch(() => {});
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test('first visit sets the admin password; its hash file is 0600', async (t) => {
    t.after(() => onFailure(t, 'settings-first-run'));
    const { page } = admin;
    for (const where of ['/', '/login']) {
      await page.goto(`${web}${where}`);
      assert.equal(new URL(page.url()).pathname, '/setup', `${where} before a password`);
    }
    await page.goto(`${web}/`);
    assert.equal(new URL(page.url()).pathname, '/setup');
    const hashFile = path.join(tmp, 'admin-password');
    // Without the claim code nobody on the LAN can take the box: a wrong one is refused.
    const wrong = `${claimCode.slice(0, 8)}${(Number(claimCode[8]) + 1) % 10}`;
    await page.getByLabel('Claim code').fill(wrong);
    await page.getByLabel('New password').fill(PASSWORD);
    await page.getByLabel('Again').fill(PASSWORD);
    await page.getByRole('button', { name: 'Set password' }).click();
    await page.getByText(/wrong claim code/).waitFor();
    assert.equal(new URL(page.url()).pathname, '/setup');
    assert.ok(!existsSync(hashFile), 'a wrong code sets nothing');
    // The right code with two different passwords: refused, naming the field.
    await page.getByLabel('Claim code').fill(claimCode);
    await page.getByLabel('New password').fill(PASSWORD);
    await page.getByLabel('Again').fill(`${PASSWORD}!`);
    await page.getByRole('button', { name: 'Set password' }).click();
    await page.getByText('new_password: the two passwords differ').waitFor();
    await page.getByLabel('Claim code').fill(claimCode);
    await page.getByLabel('New password').fill(PASSWORD);
    await page.getByLabel('Again').fill(PASSWORD);
    await page.getByRole('button', { name: 'Set password' }).click();
    await page.getByRole('heading', { name: 'Room box', exact: true }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/');
    assert.equal(statSync(hashFile).mode & 0o777, 0o600);
    assert.match(readFileSync(hashFile, 'utf8'), /^\$argon2id\$/);
    assert.ok(!readFileSync(hashFile, 'utf8').includes(PASSWORD));
    // Now the set-up page is closed, and the code opens nothing: another browser that has it
    // is sent to the login page.
    await page.goto(`${web}/setup`);
    assert.equal(new URL(page.url()).pathname, '/');
    const other = await browser.newContext();
    try {
      const p2 = await other.newPage();
      await p2.goto(`${web}/setup`);
      assert.equal(new URL(p2.url()).pathname, '/login', 'claimed: no second set-up');
    } finally {
      await other.close();
    }
    // The journal has the code in its one line, and the password nowhere.
    assert.equal(box.lines(new RegExp(claimCode)).length, 1, 'the claim code in one log line');
    assert.equal(box.lines(/claim code for the settings page/).length, 1, 'printed once');
    assert.ok(!box.text().includes(PASSWORD), 'the password is not in the log');
    const cookies = await admin.context.cookies(web);
    const session = cookies.find((c) => c.name === 'roombox_session');
    assert.ok(session, 'a session cookie');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(session.path, '/');
    assert.equal(session.value.length, 64);
  });

  test('log out, a wrong password is refused, the right one logs in', async (t) => {
    t.after(() => onFailure(t, 'settings-login'));
    const { page } = admin;
    await page.goto(`${web}/`);
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('button', { name: 'Log in' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/login');
    await page.goto(`${web}/`);
    assert.equal(new URL(page.url()).pathname, '/login', 'logged out: the settings are closed');
    const api = await page.evaluate(async () => (await fetch('/api/status')).status);
    assert.equal(api, 401);

    await page.getByLabel('Admin password').fill('not the password');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByText('Wrong password.').waitFor();
    assert.equal(new URL(page.url()).pathname, '/login');
    await page.goto(`${web}/`);
    assert.equal(new URL(page.url()).pathname, '/login', 'a wrong password opens nothing');

    await page.getByLabel('Admin password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Settings' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/');
  });

  test('changing the room moves the box to the new room', async (t) => {
    t.after(() => onFailure(t, 'settings-room'));
    members.old = await joinRoom(browser, server.url, ROOM_A, 'Old room', { secret: box.secret });
    await waitForVideo(members.old.page, BOX, { width: 640, height: 360, timeout: T, what: `${BOX} in ${ROOM_A}` });
    members.new = await joinRoom(browser, server.url, ROOM_B, 'New room', { secret: box.secret });
    assert.equal(await tile(members.new.page, BOX).count(), 0, 'the box is not in the new room yet');

    const { page } = admin;
    await page.goto(`${web}/`);
    assert.equal((await apiStatus()).room, ROOM_A);
    await page.getByLabel('Room', { exact: true }).fill(ROOM_B);
    await page.getByRole('button', { name: 'Save and apply' }).click();
    await page.getByText('Saved and applied.').waitFor();

    const first = await waitForVideo(members.new.page, BOX, { width: 640, height: 360, timeout: T, what: `${BOX} in ${ROOM_B}` });
    const flowing = await waitFor(async () => {
      const v = await videoFrom(members.new.page, BOX);
      return v && v.framesDecoded > first.framesDecoded + 15 ? v : null;
    }, { timeout: T, what: `${BOX}'s frames advancing in ${ROOM_B}` });
    await waitFor(async () => (await tile(members.old.page, BOX).count()) === 0, { timeout: T, what: `${BOX} gone from ${ROOM_A}` });
    t.diagnostic(`${BOX} decoded in ${ROOM_B}: ${flowing.framesDecoded} frames at ${flowing.frameWidth}x${flowing.frameHeight}`);
    assert.match(readFileSync(configPath, 'utf8'), new RegExp(`^room = "${ROOM_B}"$`, 'm'));
    await waitFor(async () => {
      const s = await apiStatus();
      return s.room === ROOM_B && s.signaling === 'online' && s.participants.some((p) => p.name === 'New room') ? s : null;
    }, { timeout: T, what: 'the status page showing the new room and its participant' });
    // The process was not restarted: one start line in its log.
    assert.equal(box.lines(/settings page on /).length, 1);
  });

  test('a new size restarts only the media pipeline; the call carries on', async (t) => {
    t.after(() => onFailure(t, 'settings-size'));
    const before = await videoFrom(members.new.page, BOX);
    const { page } = admin;
    await page.goto(`${web}/`);
    await page.getByLabel('Width (pixels)').fill('480');
    await page.getByLabel('Height (pixels)').fill('270');
    await page.getByLabel('Highest bitrate (kbit/s)').fill('900');
    await page.getByRole('button', { name: 'Save and apply' }).click();
    await page.getByText('Saved and applied.').waitFor();
    const after = await waitForVideo(members.new.page, BOX, { width: 480, height: 270, timeout: T, what: `${BOX} at 480x270` });
    assert.equal(after.id, before.id, 'the same box member: it did not leave and rejoin');
    assert.equal(box.lines(/settings changed: left the room/).length, 1, 'only the room change made it leave');
    await box.waitForLog(/restarting the media pipeline/);
    await box.waitForLog(/new bitrate limits.*max_kbps=900/);
    assert.match(readFileSync(configPath, 'utf8'), /^width = 480$/m);
  });

  test('mute from the page silences the box in the call, and the meters show it', async (t) => {
    t.after(() => onFailure(t, 'settings-mute'));
    const { page } = admin;
    const levels = () => page.evaluate(async () => (await fetch('/api/levels')).json());
    /** Growth of the box's audio energy heard by the person in the room over `ms`. */
    const energyOver = async (ms) => {
      const energy = async () => Object.values(await inboundStats(members.new.page)).find((e) => e.name === BOX)?.audioEnergy ?? 0;
      const a = await energy();
      await new Promise((r) => setTimeout(r, ms));
      return (await energy()) - a;
    };
    await page.goto(`${web}/`);
    // The live meters: the tone captured and sent (about -15 dBFS), shown on the page.
    const heard = await waitFor(async () => {
      const l = await levels();
      return l.mic_dbfs > -40 && l.sent_dbfs > -40 ? l : null;
    }, { timeout: T, what: 'the meters showing the test tone' });
    await page.locator('#v-mic').filter({ hasText: 'dBFS' }).waitFor();
    const loud = await energyOver(2000);
    assert.ok(loud > 0, `the room hears the box before muting (energy +${loud})`);

    await page.getByLabel('Mute the microphone').check();
    await page.getByRole('button', { name: 'Save and apply' }).click();
    await page.getByText('Saved and applied.').waitFor();
    const muted = await waitFor(async () => {
      const [s, l] = [await apiStatus(), await levels()];
      return s.mic === 'muted' && l.sent_dbfs <= -90 && l.mic_dbfs > -40 ? { s, l } : null;
    }, { timeout: T, what: 'status "muted", the tone still captured, silence sent' });
    await box.waitForLog(/processing none.*, muted/);
    await new Promise((r) => setTimeout(r, 1000)); // what was in flight plays out
    const quiet = await energyOver(2000);
    t.diagnostic(`levels before: mic ${heard.mic_dbfs} dBFS, sent ${heard.sent_dbfs}; muted: mic ${muted.l.mic_dbfs}, sent ${muted.l.sent_dbfs}; `
      + `the room's energy over 2 s: ${loud.toExponential(2)} before, ${quiet.toExponential(2)} muted`);
    assert.ok(quiet < loud / 100, `muted, the room still hears the box (energy +${quiet} against +${loud})`);
    assert.match(readFileSync(configPath, 'utf8'), /^mute = true$/m);

    await page.goto(`${web}/`);
    await page.getByLabel('Mute the microphone').uncheck();
    await page.getByRole('button', { name: 'Save and apply' }).click();
    await page.getByText('Saved and applied.').waitFor();
    await waitFor(async () => ((await apiStatus()).mic !== 'muted' ? true : null), { timeout: T, what: 'unmuted' });
    await waitFor(async () => ((await energyOver(1000)) > quiet * 10 ? true : null), { timeout: T, what: 'the room hearing the box again' });
  });

  test('a bad value is refused with the field named; the config file is unchanged', async (t) => {
    t.after(() => onFailure(t, 'settings-invalid'));
    const before = readFileSync(configPath);
    const { page } = admin;
    await page.goto(`${web}/`);
    await page.getByLabel('Frames per second').fill('0');
    await page.getByRole('button', { name: 'Save and apply' }).click();
    const fpsError = page.locator('.field-error[data-field="fps"]');
    await fpsError.waitFor();
    assert.equal(await fpsError.textContent(), 'must be 1 to 60');
    assert.equal(await page.getByLabel('Frames per second').inputValue(), '0', 'what was typed stays in the form');

    await page.goto(`${web}/`);
    await page.getByLabel('Room', { exact: true }).fill('not a room!');
    await page.getByRole('button', { name: 'Save and apply' }).click();
    const roomError = page.locator('.field-error[data-field="room"]');
    await roomError.waitFor();
    assert.match(await roomError.textContent(), /A-Z a-z 0-9/);

    assert.deepEqual(readFileSync(configPath), before, 'the config file is byte for byte the same');
    assert.equal((await apiStatus()).room, ROOM_B, 'the box stays in its room');
  });

  test('a forged cross-site POST is refused and changes nothing', async (t) => {
    t.after(() => onFailure(t, 'settings-csrf'));
    const before = readFileSync(configPath);
    // Another origin (another port): a page that auto-submits a form to the settings endpoint.
    const evil = createServer((req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(`<!doctype html><form method="post" action="${web}/settings">
        <input name="room" value="forged"><input name="fps" value="30"><input name="csrf" value="guess">
        </form><script>document.forms[0].submit()</script>`);
    });
    await new Promise((resolve) => evil.listen(0, '127.0.0.1', resolve));
    try {
      const evilUrl = `http://127.0.0.1:${evil.address().port}/`;
      const { page } = admin; // logged in: its session cookie exists
      const refused = page.waitForResponse((r) => r.url() === `${web}/settings` && r.request().method() === 'POST');
      await page.goto(evilUrl);
      const res = await refused;
      assert.equal(res.status(), 403);
      await page.getByText(/refused a request from another site/).waitFor();
    } finally {
      evil.close();
    }
    assert.deepEqual(readFileSync(configPath), before, 'the config file is unchanged');
    assert.equal(box.lines(/forged/).filter((l) => !/refused/.test(l)).length, 0);
    await admin.page.goto(`${web}/`);
    assert.equal((await apiStatus()).room, ROOM_B, 'the box stays in its room');
    assert.ok(existsSync(configPath));
  });

  test('the join link carries the room secret; a new secret replaces it and the box rejoins', async (t) => {
    t.after(() => onFailure(t, 'settings-secret'));
    const { page } = admin;
    const secretFile = path.join(tmp, 'room-secret');
    const secret = readFileSync(secretFile, 'utf8').trim();
    assert.equal(secret, box.secret, 'the secret startBox gave the box');
    assert.match(secret, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(statSync(secretFile).mode & 0o777, 0o600);
    await page.goto(`${web}/`);
    const link = page.locator('#join-link');
    assert.equal(await link.textContent(), `${server.url}/r/${ROOM_B}#k=${secret}`);
    assert.equal(await page.locator('.qr svg').count(), 1, 'its QR code');
    const status = await apiStatus();
    assert.ok(!JSON.stringify(status).includes(secret), 'the status API never has the secret');

    const joins = box.lines(/signaling: joined /).length;
    await page.getByRole('button', { name: 'New room secret' }).click();
    await page.getByText('the old one no longer works').waitFor();
    const renewed = readFileSync(secretFile, 'utf8').trim();
    assert.notEqual(renewed, secret);
    assert.equal(await link.textContent(), `${server.url}/r/${ROOM_B}#k=${renewed}`);
    await box.waitForLog(/signaling: joined /, { count: joins + 1, timeout: T });
    for (const s of [secret, renewed]) assert.ok(!box.text().includes(s), 'no room secret in the log');
  });
});
