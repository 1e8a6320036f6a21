// Helpers for the end-to-end tests: the real signaling server, headless Chromium, and polling.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');
export const artifactsDir = path.join(here, 'artifacts');

export const SIGNAL_BIN = process.env.SIGNAL_BIN
  || path.join(repoRoot, 'target', 'debug', 'roombox-signal');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--allow-loopback-in-peer-connection',
  // getDisplayMedia: with the fake UI and fake devices Chromium picks a fake screen (and a fake
  // audio track) by itself; these make it explicit for builds that ask otherwise.
  '--auto-accept-this-tab-capture',
  '--auto-select-desktop-capture-source=Entire screen',
  // Pages in background tabs must not be throttled: all of them are "in the room" at once.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
  '--autoplay-policy=no-user-gesture-required',
];

/** Poll `fn` until it returns a truthy value; throw with the last value seen on timeout. */
export async function waitFor(fn, { timeout = 30000, interval = 250, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  let lastErr;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      const detail = lastErr ? ` (last error: ${lastErr.message})` : ` (last value: ${JSON.stringify(last)})`;
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${detail}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Start roombox-signal on `listen` (default an ephemeral loopback port); resolves once it listens. */
export async function startServer({ listen = '127.0.0.1:0', iceServers = '', extraArgs = [] } = {}) {
  const proc = spawn(SIGNAL_BIN, ['--listen', listen, '--ice-servers', iceServers, ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
  });
  const stderr = [];
  proc.stderr.on('data', (d) => {
    stderr.push(d.toString());
    if (process.env.E2E_VERBOSE) process.stderr.write(`[signal] ${d}`);
  });
  const lines = createInterface({ input: proc.stdout });
  const exited = once(proc, 'exit').then(([code, sig]) => ({ code, sig }));
  const first = new Promise((resolve) => lines.once('line', resolve));
  let timer;
  const result = await Promise.race([
    first,
    exited.then(({ code, sig }) => {
      throw new Error(`roombox-signal exited (${code ?? sig}) before listening: ${stderr.join('')}`);
    }),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('roombox-signal did not start in 20 s')), 20000);
    }),
  ]).finally(() => clearTimeout(timer));
  const m = /^listening on (http:\/\/(\S+))$/.exec(result.trim());
  if (!m) throw new Error(`unexpected first line from roombox-signal: ${result}`);
  const url = m[1];
  const port = Number(new URL(url).port);
  lines.on('line', (l) => { if (process.env.E2E_VERBOSE) process.stderr.write(`[signal] ${l}\n`); });
  return {
    proc,
    url,
    port,
    exited,
    async kill(signal = 'SIGKILL') {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill(signal);
      await exited;
    },
  };
}

/** Headless Chromium; Playwright gives every launch a new, empty user-data-dir of its own. */
export function launchBrowser({ executablePath = CHROMIUM, args = [] } = {}) {
  return chromium.launch({ executablePath, args: [...CHROMIUM_ARGS, ...args], headless: true });
}

/** A fresh room secret (docs/protocol.md, version 2): 16 random bytes, 22 base64url characters. */
export function newSecret() {
  return randomBytes(16).toString('base64url');
}

const roomSecrets = new Map();

/** The secret of `room` for this test run: one per room name, so every page of a test agrees. */
export function roomSecret(room) {
  if (!roomSecrets.has(room)) roomSecrets.set(room, newSecret());
  return roomSecrets.get(room);
}

/**
 * A room's link: /r/ROOM#k=SECRET (no fragment when `secret` is null), with `query` (e.g. the
 * web client's test switches, `e2ee-test=tap`) when given.
 */
export function roomUrl(baseUrl, room, secret = roomSecret(room), query = '') {
  const path = `${baseUrl}/r/${room}${query ? `?${query}` : ''}`;
  return secret === null ? path : `${path}#k=${secret}`;
}

/**
 * Open the room's link (/r/<room>#k=<secret>; `secret` defaults to the room's secret of this run,
 * roomSecret; `query` is added to the address) in a fresh browser context, type the name, click
 * Join and wait until the page shows the signaling connection as "Connected". Returns
 * {context, page, name, logs}.
 */
export async function joinRoom(browser, baseUrl, room, name, { viewport, secret, query } = {}) {
  const context = await browser.newContext({ viewport: viewport ?? { width: 1000, height: 760 } });
  const page = await context.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
  await page.goto(roomUrl(baseUrl, room, secret ?? roomSecret(room), query));
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: 'Join', exact: true }).click();
  await waitForStatus(page, 'Connected');
  return { context, page, name, logs };
}

export async function statusText(page) {
  return (await page.getByRole('status').textContent())?.trim();
}

export async function waitForStatus(page, text, timeout = 30000) {
  await waitFor(async () => (await statusText(page)) === text, { timeout, what: `status "${text}"` });
}

/** Our signaling id and the call's peer list, from the page's debug handle. */
export function peerList(page) {
  return page.evaluate(() => ({
    selfId: window.roombox.signaling?.id ?? null,
    peers: window.roombox.call ? window.roombox.call.peerList() : [],
  }));
}

/**
 * Inbound RTP counters per remote peer, read with getStats on each RTCPeerConnection, and the
 * frames of that peer the page's frame encryption opened and dropped (`window.roombox.frameStats`;
 * audio that plays but was never opened is noise, so hearing is checked on both):
 * {peerId: {name, state, audioPackets, audioEnergy, framesDecoded, audioOpened, videoOpened,
 * audioDropped, videoDropped}}.
 */
export function inboundStats(page) {
  return page.evaluate(async () => {
    const out = {};
    const call = window.roombox.call;
    if (!call) return out;
    const frames = window.roombox.frameStats?.peers ?? {};
    for (const peer of call.peers.values()) {
      const f = frames[peer.id];
      const entry = {
        name: peer.name,
        state: peer.pc?.connectionState ?? 'none',
        audioPackets: 0,
        audioEnergy: 0,
        framesDecoded: 0,
        audioOpened: f?.opened.audio ?? 0,
        videoOpened: f?.opened.video ?? 0,
        audioDropped: f?.dropped.audio ?? 0,
        videoDropped: f?.dropped.video ?? 0,
      };
      out[peer.id] = entry;
      if (!peer.pc) continue;
      const report = await peer.pc.getStats();
      report.forEach((s) => {
        if (s.type !== 'inbound-rtp') return;
        if (s.kind === 'audio') {
          entry.audioPackets += s.packetsReceived ?? 0;
          entry.audioEnergy += s.totalAudioEnergy ?? 0;
        } else if (s.kind === 'video') {
          entry.framesDecoded += s.framesDecoded ?? 0;
        }
      });
    }
    return out;
  });
}

/** Wait until, on `page`, every peer named in `names` is connected and its counter `key` grew past `baseline`. */
export async function waitForGrowth(page, names, key, baseline = {}, { timeout = 30000, what } = {}) {
  let last;
  return waitFor(async () => {
    const stats = await inboundStats(page);
    last = stats;
    const byName = Object.fromEntries(Object.values(stats).map((s) => [s.name, s]));
    return names.every((n) => byName[n] && byName[n][key] > (baseline[n]?.[key] ?? 0)) ? byName : null;
  }, { timeout, what: what ?? `${key} growing from ${names.join(', ')}` }).catch((err) => {
    err.message += `; stats: ${JSON.stringify(last)}`;
    throw err;
  });
}

/** Counters keyed by peer name. */
export async function statsByName(page) {
  const stats = await inboundStats(page);
  return Object.fromEntries(Object.values(stats).map((s) => [s.name, s]));
}

/** The tile of participant `name` on `page` (a list item labelled with the name). */
export function tile(page, name) {
  return page.getByRole('list', { name: 'Participants' }).getByRole('listitem', { name, exact: true });
}

export async function saveArtifacts(label, members) {
  mkdirSync(artifactsDir, { recursive: true });
  for (const m of members) {
    if (!m?.page || m.page.isClosed()) continue;
    const base = path.join(artifactsDir, `${label}-${m.name}`);
    await m.page.screenshot({ path: `${base}.png`, fullPage: true }).catch(() => {});
    writeFileSync(`${base}.log`, m.logs.join('\n'));
  }
}
