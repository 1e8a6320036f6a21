// The browser's frame key schedule (web/js/frame-keys.js, mirroring src/calls/frame_keys.rs),
// the sealed `media-key` messages of web/js/seal.js, and web/js/e2ee.js driving both over an
// in-memory server: what each member's frame worker is told, checked by sealing and opening
// real frames with web/js/frame-crypto.js.
//
//   node --test tests/web/

import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameCipher, KeyRing, generateKey, ratchet } from '../../web/js/frame-crypto.js';
import { FRESH_KEY_DELAY_MS, FrameKeySchedule } from '../../web/js/frame-keys.js';
import { FrameEncryption, testSwitches } from '../../web/js/e2ee.js';
import { SealedSignaling, b64, generateSecret } from '../../web/js/seal.js';
import { FakeHub } from './fake-hub.mjs';

const seal = async (key, bytes = [0x78, 1, 2, 3]) => (await FrameCipher.create(key)).sealOpus(Uint8Array.from(bytes));
const opens = async (ring, frame) => (await ring.openOpus(frame)) !== null;
const ringOf = (...keys) => {
  const r = new KeyRing();
  for (const k of keys) r.insert(k);
  return r;
};

describe('FrameKeySchedule (as src/calls/frame_keys.rs)', () => {
  test('a joiner gets the next key by ratchet, used at once, and cannot read before', async () => {
    const now = 1000;
    const keys = new FrameKeySchedule();
    assert.equal(keys.sealingKey(now).kid, 1);
    let sent = await keys.peerReady('ada');
    assert.equal(sent.length, 1);
    assert.equal(sent[0].to, 'ada');
    assert.equal(sent[0].key.kid, 2);
    const ada = ringOf(sent[0].key);
    const before = await seal(keys.sealingKey(now));
    assert.ok(await opens(ada, before), 'ada has the key in use');
    sent = await keys.peerReady('bob');
    assert.deepEqual(sent.map((m) => m.to).sort(), ['ada', 'bob'], 'everyone gets the new key');
    const bob = ringOf(sent.find((m) => m.to === 'bob').key);
    assert.equal(await opens(bob, before), false, 'bob cannot read what came before him');
    const after = await seal(keys.sealingKey(now));
    assert.ok(await opens(bob, after), 'used at once');
    assert.ok(await opens(ada, after), 'ada ratchets by herself');
  });

  test('a leaver cannot read what comes after; the others switch a second later', async () => {
    const now = 5000;
    const keys = new FrameKeySchedule();
    await keys.peerReady('ada');
    const sent = await keys.peerReady('bob');
    const bob = ringOf(sent.find((m) => m.to === 'bob').key);
    const ada = ringOf(sent.find((m) => m.to === 'ada').key);
    const gone = keys.peerGone('bob', now);
    assert.deepEqual(gone.map((m) => m.to), ['ada']);
    ada.insert(gone[0].key);
    const during = await seal(keys.sealingKey(now + 500));
    assert.ok(await opens(bob, during), 'the old key for one more second');
    assert.equal(keys.pollTimeout(), now + FRESH_KEY_DELAY_MS);
    const after = await seal(keys.sealingKey(now + FRESH_KEY_DELAY_MS));
    assert.equal(await opens(bob, after), false, 'bob has no key for what comes after');
    assert.ok(await opens(ada, after));
    assert.equal(keys.pollTimeout(), null);
    assert.deepEqual(keys.peerGone('cy', now), [], 'a stranger changes nothing');
  });

  test('someone joining while a fresh key waits: its successor by ratchet keeps the moment', async () => {
    const now = 0;
    const keys = new FrameKeySchedule(generateKey(254));
    await keys.peerReady('ada'); // 255
    await keys.peerReady('bob'); // 1
    const old = keys.sealingKey(now);
    assert.equal(old.kid, 1);
    keys.peerGone('bob', now); // fresh 2, at 1000
    const sent = await keys.peerReady('cy'); // ratchet of the fresh key: 3
    assert.equal(sent[0].key.kid, 3);
    assert.equal(keys.sealingKey(now + 999), old, 'still the old key until the moment');
    assert.equal(keys.sealingKey(now + 1000).kid, 3);
    const cy = ringOf(sent.find((m) => m.to === 'cy').key);
    assert.ok(await opens(cy, await seal(keys.sealingKey(now + 1000))));
  });

  test('clear: nobody keyed, a fresh key in use at once', async () => {
    const keys = new FrameKeySchedule();
    await keys.peerReady('ada');
    const before = keys.sealingKey(0);
    keys.clear();
    assert.deepEqual(keys.sendAll(), []);
    assert.notEqual(keys.sealingKey(0), before);
    assert.equal(keys.pollTimeout(), null);
  });
});

// ---- over sealed signaling ---------------------------------------------------------------

const ROOM = 'frames-room';

async function until(fn, what, timeout = 5000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A stand-in for the frame worker: what it was told, as real rings and the sealing key. */
class FakeWorker {
  constructor() {
    this.posted = [];
    this.rings = new Map();
    this.sealing = null;
  }

  postMessage(m) {
    this.posted.push(m);
    if (m.op === 'sealing') this.sealing = { kid: m.kid, key: m.key };
    if (m.op === 'peer-key') {
      if (!this.rings.has(m.peer)) this.rings.set(m.peer, new KeyRing());
      this.rings.get(m.peer).insert({ kid: m.kid, key: m.key });
    }
    if (m.op === 'peer-gone') this.rings.delete(m.peer);
    if (m.op === 'forget-all') this.rings.clear();
  }

  terminate() {}
}

/** Members not stopped yet: a test that fails half way leaves none running (their timers would
 * keep the test process, and CI, waiting forever). */
const live = new Set();

function member(hub, name, secret, test = new Set()) {
  const signaling = new SealedSignaling({
    url: 'ws://fake/ws', room: ROOM, name, secret, transport: (o) => hub.transport(o),
  });
  const worker = new FakeWorker();
  const frames = new FrameEncryption({ signaling, test, api: 'script-transform', makeWorker: () => worker });
  const keys = [];
  signaling.addEventListener('media-key', (e) => keys.push(e.detail));
  const m = { name, signaling, frames, worker, keys };
  live.add(m);
  return m;
}

async function join(...members) {
  for (const m of members) {
    await m.signaling.connect();
    await until(() => m.signaling.connected && m.signaling.id, `${m.name} joined`);
  }
}

/** `from`'s frames (sealed with what its worker seals with now) open at `to`'s worker. */
async function canOpen(to, from) {
  const ring = to.worker.rings.get(from.signaling.id);
  if (!ring || !from.worker.sealing) return false;
  return opens(ring, await seal(from.worker.sealing));
}

function stop(...members) {
  for (const m of members) {
    if (!live.delete(m)) continue;
    m.frames.close();
    m.signaling.leave();
  }
}

describe('frame keys over sealed signaling (e2ee.js, seal.js)', () => {
  afterEach(() => stop(...live));
  test('media-key: sealed, only to a named peer, checked on arrival', async () => {
    const hub = new FakeHub();
    const secret = generateSecret();
    const ada = member(hub, 'Ada', secret);
    const bea = member(hub, 'Bea', secret);
    await join(ada, bea);
    await until(() => ada.keys.length && bea.keys.length, 'a key each way');
    // What was sent is what arrived, and the server saw none of it.
    const { key } = bea.keys.at(-1);
    assert.equal(bea.keys.at(-1).id, ada.signaling.id);
    assert.equal(key.key.length, 32);
    const wire = JSON.stringify(hub.log);
    for (const k of [...ada.keys, ...bea.keys]) assert.ok(!wire.includes(b64(k.key.key)), 'no key in clear on the wire');
    assert.ok(!wire.includes('media-key'));
    // Nothing goes to a stranger or with a malformed key.
    assert.equal(ada.signaling.sendMediaKey('nobody', generateKey(3)), false);
    assert.throws(() => ada.signaling.sendMediaKey(bea.signaling.id, { kid: 0, key: new Uint8Array(32) }));
    assert.throws(() => ada.signaling.sendMediaKey(bea.signaling.id, { kid: 1, key: new Uint8Array(16) }));
    // A malformed one from a member (sealed, so from the member itself): ignored.
    const n = bea.keys.length;
    const a = ada.signaling.members.get(bea.signaling.id);
    ada.signaling._sendEnvelope(a, { type: 'media-key', kid: 300, key: b64(new Uint8Array(32)) });
    ada.signaling._sendEnvelope(a, { type: 'media-key', kid: 4, key: 'not base64!' });
    ada.signaling._sendEnvelope(a, { type: 'media-key', kid: 5, key: b64(new Uint8Array(31)) });
    const good = generateKey(9);
    assert.equal(ada.signaling.sendMediaKey(bea.signaling.id, good), true);
    await until(() => bea.keys.length > n, 'the good key');
    assert.equal(bea.keys.length, n + 1);
    assert.deepEqual(bea.keys.at(-1).key, good);
    assert.equal(bea.signaling.pairs()[0].refused, null, 'a malformed key refuses nobody');
    stop(ada, bea);
  });

  test('three members: each opens the others; a leaver\'s keys stop opening a second later; a newcomer gets only the newest', async () => {
    const hub = new FakeHub();
    const secret = generateSecret();
    const ada = member(hub, 'Ada', secret);
    const bea = member(hub, 'Bea', secret);
    const cy = member(hub, 'Cy', secret);
    const all = [ada, bea, cy];
    await join(...all);
    for (const to of all) {
      for (const from of all) {
        if (to !== from) await until(() => canOpen(to, from), `${to.name} opening ${from.name}`);
      }
    }
    // What Cy holds when it leaves.
    const cyHeld = new Map([...cy.worker.rings].map(([id, r]) => [id, r.keys()]));
    const before = await seal(ada.worker.sealing);
    stop(cy);
    await until(() => ada.frames.schedule.next !== null, 'a fresh key waiting at Ada');
    // Within the second, Ada still seals with the key Cy holds.
    const cyRing = () => {
      const r = new KeyRing();
      for (const k of cyHeld.get(ada.signaling.id)) r.insert(k);
      return r;
    };
    assert.ok(await opens(cyRing(), await seal(ada.worker.sealing)), 'the old key for a second');
    await until(() => ada.frames.schedule.next === null && bea.frames.schedule.next === null, 'the fresh keys in use', 3000);
    assert.equal(await opens(cyRing(), await seal(ada.worker.sealing)), false, 'Cy cannot open what Ada seals now');
    assert.ok(await canOpen(bea, ada), 'Bea can');
    assert.ok(await canOpen(ada, bea), 'and Ada opens Bea');
    // A newcomer: it opens what Ada seals from now on, not what Ada sealed before it came.
    const dee = member(hub, 'Dee', secret);
    await join(dee);
    await until(() => canOpen(dee, ada), 'Dee opening Ada');
    assert.equal(await opens(dee.worker.rings.get(ada.signaling.id), before), false, 'Dee cannot open what came before');
    await until(() => canOpen(ada, dee) && canOpen(bea, dee), 'the others opening Dee');
    stop(ada, bea, dee);
  });

  test('test switches: withhold-keys gives the worker no key; withhold-own-key sends none', async () => {
    const hub = new FakeHub();
    const secret = generateSecret();
    const ada = member(hub, 'Ada', secret, testSwitches('?e2ee-test=withhold-keys'));
    const bea = member(hub, 'Bea', secret, testSwitches('?x=1&e2ee-test=withhold-own-key,bogus'));
    const cy = member(hub, 'Cy', secret);
    await join(ada, bea, cy);
    await until(() => canOpen(bea, cy) && canOpen(cy, ada), 'the normal paths');
    // Keys reach Ada as they reach everyone (on a loaded machine later than the paths above
    // open); she just never hands them to her worker.
    await until(() => ada.keys.length >= 2, 'keys arriving at Ada');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(ada.worker.rings.size, 0, 'Ada was given no key');
    assert.ok(ada.keys.length >= 2, 'though keys arrived');
    assert.equal(cy.worker.rings.has(bea.signaling.id), false, 'nobody got Bea\'s key');
    assert.deepEqual([...bea.frames.test], ['withhold-own-key']);
    assert.ok(ada.frames.active && bea.frames.active, 'these two switches keep frame encryption on');
    assert.deepEqual([...testSwitches('?e2ee-test=off,tap', 'roombox.example')], [], 'only on a loopback page');
    assert.deepEqual([...testSwitches('?e2ee-test=off,tap', '127.0.0.1')], ['off', 'tap']);
    const off = new FrameEncryption({ signaling: new EventTarget(), test: testSwitches('?e2ee-test=off') });
    assert.equal(off.active, false);
    assert.match(off.reason, /test switch/);
    stop(ada, bea, cy);
    off.close();
  });

  test('a resumed socket sends the newest key again; a new identity starts over', async () => {
    const hub = new FakeHub();
    const secret = generateSecret();
    const ada = member(hub, 'Ada', secret);
    const bea = member(hub, 'Bea', secret);
    await join(ada, bea);
    await until(() => canOpen(bea, ada), 'Bea opening Ada');
    const n = bea.keys.length;
    ada.signaling.transport.drop();
    await until(() => bea.keys.length > n, 'the key sent again after the resume');
    assert.equal(bea.keys.at(-1).key.kid, ada.frames.schedule.key.kid);
    const sealingBefore = ada.worker.sealing;
    ada.signaling.transport.dispatchEvent(new CustomEvent('welcome', {
      detail: { id: 'someone-new', peers: [], iceServers: [], resumed: false, sameId: false },
    }));
    await until(() => ada.worker.sealing !== sealingBefore, 'a fresh key');
    assert.ok(ada.worker.posted.some((m) => m.op === 'forget-all'), 'every ring forgotten');
    assert.deepEqual(ada.frames.schedule.sendAll(), []);
    stop(ada, bea);
  });
});

test('ratchet keeps up with a room\'s worth of joins (255 wraps to 1)', async () => {
  let k = generateKey(250);
  for (let i = 0; i < 10; i++) k = await ratchet(k);
  assert.equal(k.kid, 5);
});
