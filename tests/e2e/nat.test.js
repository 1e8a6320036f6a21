// Calls across NATs and firewalls, through a real coturn, with real `roombox run` boxes, real
// roombox-signal servers and headless Chromium pages, each in its own network namespace of a
// small internet built by netlab.js (run through run.sh; every address private or documentation):
//   the box behind a symmetric NAT, the page behind another NAT: the call goes through a relay
//   (asserted from the page's selected candidate pair); the page decodes the box's video and
//   hears its audio, and the box's WAV hears the page;
//   a page on the box's own LAN: host candidates, no relay;
//   the box's network drops all UDP to the internet: the box connects through its TURN
//   allocation over TCP, and over TLS on port 443 (coturn with a certificate of a test CA);
//   wrong TURN credentials: the box says why in its log and status, and a call on its LAN
//   still connects;
//   an IPv6-only network: the box and a page call each other over IPv6, and the box holds an
//   IPv6 relay on coturn's IPv6 address.

import { after, before, describe, test as nodeTest } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CHROMIUM, artifactsDir, joinRoom, launchBrowser, saveArtifacts, startServer, waitFor, waitForGrowth } from './lib.js';
import { readWav, lastSeconds, rms, saveBoxLog, selectedPair, startBox, videoFrom, waitForVideo } from './box-lib.js';
import { PUBLIC_V4, PUBLIC_V6, chromiumIn, makePublic, makeSite, makeV6Host, sh, teardown } from './netlab.js';

const [WIDTH, HEIGHT, FPS] = [640, 360, 15];
const T = 45000;
const SECRET = 'nat-test-shared-secret';
const SOUND_RMS = 300;

let tmp;
let coturn;
const cleanups = [];
let failed = false;

/** coturn on the public bridge: UDP and TCP on 3478, TLS on 443, time-limited credentials. */
function startCoturn(dir, cert, key) {
  const log = [];
  const proc = spawn('turnserver', [
    `--listening-ip=${PUBLIC_V4}`, `--listening-ip=${PUBLIC_V6}`,
    `--relay-ip=${PUBLIC_V4}`, `--relay-ip=${PUBLIC_V6}`,
    '--listening-port=3478', '--tls-listening-port=443',
    `--cert=${cert}`, `--pkey=${key}`,
    '--use-auth-secret', `--static-auth-secret=${SECRET}`, '--realm=roombox.test',
    '--no-cli', '--no-dtls', '--no-multicast-peers', '--log-file=stdout', '--verbose',
    `--pidfile=${path.join(dir, 'turn.pid')}`,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  for (const s of [proc.stdout, proc.stderr]) s.on('data', (d) => log.push(d.toString()));
  return { proc, log: () => log.join('') };
}

/** A test CA and a certificate for the TURN server's address signed by it. */
function makeCertificates(dir) {
  const f = (n) => path.join(dir, n);
  const openssl = (...args) => sh('openssl', ...args);
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-subj', '/CN=roombox test CA', '-days', '2', '-keyout', f('ca.key'), '-out', f('ca.pem'),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-subj', `/CN=${PUBLIC_V4}`, '-keyout', f('turn.key'), '-out', f('turn.csr'));
  sh('bash', '-c', `printf 'subjectAltName=IP:${PUBLIC_V4}\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ${f('ext.cnf')}`);
  openssl('x509', '-req', '-in', f('turn.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
    '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('turn.pem'));
  return { ca: f('ca.pem'), cert: f('turn.pem'), key: f('turn.key') };
}

/** A signaling server reachable from every site, handing out `turnUrls` with credentials. */
async function signalServer(turnUrls, { secret = SECRET, iceServers = `stun:${PUBLIC_V4}:3478` } = {}) {
  const extraArgs = turnUrls ? ['--turn-secret', secret, '--turn-urls', turnUrls] : [];
  const server = await startServer({ listen: '0.0.0.0:0', iceServers, extraArgs });
  cleanups.push(() => server.kill('SIGKILL'));
  return { ...server, url: `http://${PUBLIC_V4}:${server.port}` };
}

/** A box in namespace `ns`. */
function boxIn(ns, server, room, name, opts = {}) {
  const box = startBox({
    signalUrl: server.url, room, name, audioOut: opts.audioOut ?? 'none',
    width: WIDTH, height: HEIGHT, fps: FPS, iceLoopback: false,
    extraArgs: ['--web', 'off', '--config', path.join(tmp, 'none.toml'), '--state-dir', tmp],
    netns: ns, env: opts.env ?? {},
  });
  cleanups.push(async () => {
    if (failed || process.env.E2E_ARTIFACTS) saveBoxLog(`nat-${name.replaceAll(' ', '-')}`, box);
    await box.kill('SIGTERM');
  });
  return box;
}

/** Chromium in namespace `ns`, and a page of it joined to `room`. */
async function pageIn(ns, server, room, name, { secret } = {}) {
  // The server is not on localhost: without this the page is no secure context (no microphone).
  const browser = await launchBrowser({
    executablePath: chromiumIn(ns, CHROMIUM),
    args: [`--unsafely-treat-insecure-origin-as-secure=${server.url}`],
  });
  const member = await joinRoom(browser, server.url, room, name, { secret });
  cleanups.push(async () => {
    if (failed || process.env.E2E_ARTIFACTS) await saveArtifacts(`nat-${name}`, [member]).catch(() => {});
    await browser.close().catch(() => {});
  });
  return member;
}

async function decodesAndHears(t, m, box, label) {
  await waitForVideo(m.page, box, { width: WIDTH, height: HEIGHT, timeout: T, what: `${label}: ${m.name} decoding ${box}` });
  const first = await videoFrom(m.page, box);
  await waitFor(async () => (await videoFrom(m.page, box)).framesDecoded > first.framesDecoded + FPS,
    { timeout: T, what: `${label}: ${m.name}'s frames from ${box} advancing` });
  const audio = await waitForGrowth(m.page, [box], 'audioPackets', {}, { timeout: T, what: `${label}: ${m.name} receiving ${box}'s audio` });
  await waitForGrowth(m.page, [box], 'audioEnergy', audio, { timeout: T, what: `${label}: ${box}'s audio energy growing` });
}

// NAT_ONLY=text runs only the tests whose name contains it (for working on one).
const test = (name, fn) => (process.env.NAT_ONLY && !name.includes(process.env.NAT_ONLY) ? nodeTest.skip(name, fn) : nodeTest(name, fn));

const onFailure = (t) => () => { if (t.passed === false) failed = true; };

describe('calls across NATs, firewalls and IPv6, through coturn', { timeout: 600000 }, () => {
  let sites;
  before(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'roombox-nat-'));
    makePublic();
    sites = {
      a: makeSite('a', 1, { symmetric: true }),
      b: makeSite('b', 2),
      c: makeSite('c', 3, { blockUdp: true }),
    };
    const certs = makeCertificates(tmp);
    coturn = startCoturn(tmp, certs.cert, certs.key);
    sites.certs = certs;
  });

  after(async () => {
    for (const f of cleanups.reverse()) await Promise.resolve(f()).catch(() => {});
    coturn?.proc.kill('SIGKILL');
    if (failed) writeFileSync(path.join(artifactsDir, 'nat-coturn.log'), coturn?.log() ?? '');
    teardown();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test('box behind a symmetric NAT, page behind another NAT: relayed, video and audio both ways', async (t) => {
    t.after(onFailure(t));
    const server = await signalServer(`turn:${PUBLIC_V4}:3478?transport=udp`);
    const boxHost = sites.a.host('box');
    const pageHost = sites.b.host('page');
    const wav = path.join(tmp, 'room.wav');
    const box = boxIn(boxHost.ns, server, 'nat', 'NAT box', { audioOut: `wav:${wav}` });
    await box.waitForLog(/TURN relay allocated/, { timeout: T });
    const m = await pageIn(pageHost.ns, server, 'nat', 'Ada', { secret: box.secret });
    await decodesAndHears(t, m, 'NAT box', 'two NATs');
    const pair = await selectedPair(m.page, 'NAT box');
    t.diagnostic(`selected pair: ${JSON.stringify(pair)}`);
    assert.ok(pair.local.type === 'relay' || pair.remote.type === 'relay', `the call is relayed: ${JSON.stringify(pair)}`);
    assert.ok([pair.local.address, pair.remote.address].includes(PUBLIC_V4), 'through coturn');
    // The page's fake microphone reaches the box's WAV.
    let level;
    await waitFor(() => {
      level = rms(lastSeconds(readWav(wav), 2));
      return level >= SOUND_RMS;
    }, { timeout: T, interval: 500, what: `the page's sound in the box's WAV (RMS >= ${SOUND_RMS})` }).catch(async (e) => {
      const out = await m.page.evaluate(async () => {
        const peer = [...window.roombox.call.peers.values()][0];
        const stats = await peer.pc.getStats();
        return [...stats.values()].filter((s) => s.type === 'outbound-rtp' || s.type === 'media-source')
          .map((s) => ({ type: s.type, kind: s.kind, sent: s.packetsSent, bytes: s.bytesSent, level: s.audioLevel, active: s.active }));
      });
      e.message += `; page outbound: ${JSON.stringify(out)}; wav level ${level}`;
      throw e;
    });
    t.diagnostic(`box WAV RMS of the last 2 s: ${level.toFixed(0)}`);

    // A page on the box's own LAN: host candidates, no relay.
    const lanHost = sites.a.host('page');
    const lan = await pageIn(lanHost.ns, server, 'nat', 'Bea', { secret: box.secret });
    await waitForVideo(lan.page, 'NAT box', { width: WIDTH, height: HEIGHT, timeout: T, what: 'Bea decoding the box on its LAN' });
    const lanPair = await selectedPair(lan.page, 'NAT box');
    t.diagnostic(`same LAN pair: ${JSON.stringify(lanPair)}`);
    assert.equal(lanPair.local.type, 'host', 'the page uses its LAN address');
    assert.equal(lanPair.remote.type, 'host', 'and the box\'s');
    assert.equal(lanPair.remote.address, boxHost.addr);
  });

  for (const [via, urls] of [
    ['tcp', `turn:${PUBLIC_V4}:3478?transport=tcp`],
    ['tls', `turns:${PUBLIC_V4}:443?transport=tcp`],
  ]) {
    test(`the box's network drops all UDP: it connects through TURN over ${via.toUpperCase()}`, async (t) => {
      t.after(onFailure(t));
      const server = await signalServer(urls);
      const boxHost = sites.c.host(`box${via}`);
      const pageHost = sites.b.host(`page${via}`);
      const name = `Firewalled box ${via}`;
      const box = boxIn(boxHost.ns, server, `fw-${via}`, name, { env: { SSL_CERT_FILE: sites.certs.ca } });
      await box.waitForLog(new RegExp(`TURN relay allocated.*via=${via}`), { timeout: T });
      const m = await pageIn(pageHost.ns, server, `fw-${via}`, `Cy${via}`, { secret: box.secret });
      await decodesAndHears(t, m, name, `UDP blocked, ${via}`);
      const pair = await selectedPair(m.page, name);
      t.diagnostic(`selected pair: ${JSON.stringify(pair)}`);
      assert.equal(pair.remote.type, 'relay', 'the page reaches the box at its relayed address');
      assert.equal(pair.remote.address, PUBLIC_V4);
    });
  }

  test('the box is refused by coturn (wrong credentials): it says why, and a LAN call still connects', async (t) => {
    t.after(onFailure(t));
    const server = await signalServer(`turn:${PUBLIC_V4}:3478?transport=udp`, { secret: 'not-the-secret' });
    const boxHost = sites.a.host('box2');
    const box = boxIn(boxHost.ns, server, 'refused', 'Refused box');
    const [line] = await box.waitForLog(/TURN: .*refused the allocation/, { timeout: T });
    t.diagnostic(line);
    assert.match(line, /401 Unauthorized/);
    await box.waitForLog(/relay \(TURN\): failed: .*401/, { timeout: T });
    const lanHost = sites.a.host('page2');
    const m = await pageIn(lanHost.ns, server, 'refused', 'Dee', { secret: box.secret });
    await waitForVideo(m.page, 'Refused box', { width: WIDTH, height: HEIGHT, timeout: T, what: 'Dee decoding the box without a relay' });
    assert.ok(box.running(), 'the box carries on');
  });

  test('IPv6 only: the box and a page call each other over IPv6; the box holds an IPv6 relay', async (t) => {
    t.after(onFailure(t));
    const started = await startServer({
      listen: `[${PUBLIC_V6}]:0`,
      extraArgs: ['--turn-secret', SECRET, '--turn-urls', `turn:[${PUBLIC_V6}]:3478?transport=udp`],
    });
    cleanups.push(() => started.kill('SIGKILL'));
    const server = { ...started, url: `http://[${PUBLIC_V6}]:${started.port}` };
    const boxHost = makeV6Host('box', 2);
    const pageHost = makeV6Host('page', 3);
    const box = boxIn(boxHost.ns, server, 'v6', 'V6 box');
    const [relay] = await box.waitForLog(/TURN relay allocated/, { timeout: T });
    t.diagnostic(relay);
    assert.match(relay, new RegExp(`relayed=\\[${PUBLIC_V6}\\]:\\d+`), 'an IPv6 relayed address');
    const m = await pageIn(pageHost.ns, server, 'v6', 'Eve', { secret: box.secret });
    await decodesAndHears(t, m, 'V6 box', 'IPv6');
    const pair = await selectedPair(m.page, 'V6 box');
    t.diagnostic(`selected pair: ${JSON.stringify(pair)}`);
    assert.equal(pair.remote.address, boxHost.addr, 'the box\'s IPv6 address');
    assert.equal(pair.local.address, pageHost.addr);
  });
});
