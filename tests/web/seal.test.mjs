// web/js/seal.js, the browser's side of protocol version 2 (docs/protocol.md, "Version 2:
// sealed signaling"): the X-Wing draft's vectors through web/vendor/xwing.js, the fixed
// cross-implementation vectors of tests/vectors/seal.json (the box's crates/seal checks the
// same file), and SealedSignaling between members over an in-memory server that tampers.
//
//   node --test tests/web/

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as xwing from '../../web/vendor/xwing.js';
import {
  REASONS, SealedSignaling, announce, b64, compareBytes, deriveRoomKeys, derivePairKeys,
  generateSecret, helloMac, hkdf, hmac, makeHello, memberKeys, openBox, parseSecret, roomPath,
  safetyCode, sealBox, secretFromFragment, u64be, unb64, verifyAnnouncement, verifyHello,
} from '../../web/js/seal.js';
import { FakeHub } from './fake-hub.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const vectorsDir = path.join(here, '..', 'vectors');
const hex = (s) => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b) => Buffer.from(b).toString('hex');
const text = (s) => new TextEncoder().encode(s);

// ---- X-Wing -------------------------------------------------------------------------------

describe('X-Wing (web/vendor/xwing.js)', () => {
  const vectors = JSON.parse(readFileSync(path.join(vectorsDir, 'xwing-draft.json'), 'utf8'));

  test('the draft\'s vectors: pk from seed, ct and ss from eseed, ss again by decapsulation', () => {
    assert.ok(vectors.length >= 3, 'the draft publishes at least three vectors');
    for (const [i, v] of vectors.entries()) {
      const { ek, dk } = xwing.keygen(hex(v.seed));
      assert.equal(toHex(ek), v.pk, `vector ${i}: pk`);
      assert.equal(toHex(dk), v.sk, `vector ${i}: sk`);
      const { ct, ss } = xwing.encapsulate(ek, hex(v.eseed));
      assert.equal(toHex(ct), v.ct, `vector ${i}: ct`);
      assert.equal(toHex(ss), v.ss, `vector ${i}: ss`);
      assert.equal(toHex(xwing.decapsulate(hex(v.ct), hex(v.sk))), v.ss, `vector ${i}: decapsulated ss`);
    }
  });

  test('sizes, and random encapsulations that decapsulate', () => {
    const { ek, dk } = memberKeys();
    assert.equal(ek.length, 1216);
    assert.equal(dk.length, 32);
    const a = xwing.encapsulate(ek);
    const b = xwing.encapsulate(ek);
    assert.equal(a.ct.length, 1120);
    assert.notEqual(toHex(a.ct), toHex(b.ct));
    assert.equal(toHex(xwing.decapsulate(a.ct, dk)), toHex(a.ss));
  });
});

// ---- pure functions -----------------------------------------------------------------------

describe('seal.js building blocks', () => {
  test('HKDF and HMAC are RFC 5869 and RFC 4231 SHA-256', async () => {
    // RFC 5869 A.1
    const okm = await hkdf(hex('0b'.repeat(22)), hex('000102030405060708090a0b0c'), hex('f0f1f2f3f4f5f6f7f8f9'), 42);
    assert.equal(toHex(okm), '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
    // RFC 4231 test case 2
    const mac = await hmac(text('Jefe'), text('what do ya want for nothing?'));
    assert.equal(toHex(mac), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  });

  test('base64url without padding, strict', () => {
    for (let n = 0; n < 40; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff);
      const t = b64(bytes);
      assert.equal(t, Buffer.from(bytes).toString('base64url'));
      assert.deepEqual(unb64(t), bytes);
    }
    assert.equal(unb64('ab=='), null, 'padding');
    assert.equal(unb64('a+b/'), null, 'standard alphabet');
    assert.equal(unb64('abc').length, 2);
    assert.equal(unb64('abd'), null, 'non-zero unused bits');
    assert.equal(unb64('a'), null, 'one character is no byte');
    assert.equal(unb64(' abc'), null, 'white space');
  });

  test('room secret: 22 base64url characters, in the #k= fragment', () => {
    const s = generateSecret();
    assert.match(s, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(parseSecret(s).length, 16);
    assert.notEqual(generateSecret(), s);
    assert.equal(parseSecret(s.slice(1)), null);
    assert.equal(parseSecret(`${s}A`), null);
    assert.equal(parseSecret('!'.repeat(22)), null);
    // The last character carries 2 bits: only A, Q, g and w end a canonical secret.
    assert.equal(parseSecret(`${'A'.repeat(21)}B`), null);
    assert.ok(parseSecret(`${'A'.repeat(21)}Q`));
    assert.equal(secretFromFragment(`#k=${s}`), s);
    assert.equal(secretFromFragment(`#x=1&k=${s}`), s);
    assert.equal(secretFromFragment(''), null);
    assert.equal(secretFromFragment('#k='), null);
    assert.equal(secretFromFragment(`#k=${s.slice(2)}`), null);
    assert.equal(roomPath('board-room', s), `/r/board-room#k=${s}`);
  });

  test('u64be', () => {
    assert.equal(toHex(u64be(0)), '0000000000000000');
    assert.equal(toHex(u64be(258)), '0000000000000102');
    assert.equal(toHex(u64be(2 ** 53 - 1)), '001fffffffffffff');
    assert.throws(() => u64be(2 ** 53));
    assert.throws(() => u64be(-1));
  });

  test('announcements verify only with the room\'s secret and name', async () => {
    const secret = generateSecret();
    const keys = await deriveRoomKeys(secret, 'room-a');
    const { ek } = memberKeys();
    const key = await announce(keys, ek);
    assert.equal(unb64(key.pk).length, 1216);
    assert.deepEqual(await verifyAnnouncement(keys, key), ek);
    assert.equal(await verifyAnnouncement(await deriveRoomKeys(secret, 'room-b'), key), null, 'another room');
    assert.equal(await verifyAnnouncement(await deriveRoomKeys(generateSecret(), 'room-a'), key), null, 'another secret');
    const other = memberKeys().ek;
    assert.equal(await verifyAnnouncement(keys, { ...key, pk: b64(other) }), null, 'a swapped key');
    assert.equal(await verifyAnnouncement(keys, { pk: key.pk }), null, 'no mac');
    assert.equal(await verifyAnnouncement(keys, null), null);
  });

  test('two members derive the same pair keys, each other\'s directions', async () => {
    const keys = await deriveRoomKeys(generateSecret(), 'r');
    const a = memberKeys();
    const b = memberKeys();
    const ab = xwing.encapsulate(b.ek); // made by a, to b
    const ba = xwing.encapsulate(a.ek); // made by b, to a
    const helloA = await makeHello(keys, a.ek, b.ek, ab.ct, false);
    assert.deepEqual(await verifyHello(keys, a.ek, b.ek, helloA), ab.ct);
    assert.equal(await verifyHello(keys, b.ek, a.ek, helloA), null, 'the eks are bound in order');
    assert.equal(await verifyHello(keys, a.ek, b.ek, { ...helloA, reply: true }), null, 'reply is bound');
    assert.deepEqual(unb64(helloA.mac), await helloMac(keys.helloKey, a.ek, b.ek, ab.ct, false));
    const ka = await derivePairKeys(keys.pairSalt, {
      ekSelf: a.ek, ekPeer: b.ek, ctSelf: ab.ct, ssSelf: ab.ss, ctPeer: ba.ct, ssPeer: xwing.decapsulate(ba.ct, a.dk),
    });
    const kb = await derivePairKeys(keys.pairSalt, {
      ekSelf: b.ek, ekPeer: a.ek, ctSelf: ba.ct, ssSelf: ba.ss, ctPeer: ab.ct, ssPeer: xwing.decapsulate(ab.ct, b.dk),
    });
    assert.equal(ka.pair, kb.pair);
    assert.equal(ka.pair.length, 11);
    assert.equal(ka.selfIsLo, compareBytes(a.ek, b.ek) < 0);
    assert.notEqual(ka.selfIsLo, kb.selfIsLo);
    assert.deepEqual(ka.sendKey, kb.recvKey);
    assert.deepEqual(ka.recvKey, kb.sendKey);
    assert.notDeepEqual(ka.sendKey, ka.recvKey);
  });

  test('envelopes open only under their key, seq and bytes', async () => {
    const key = crypto.getRandomValues(new Uint8Array(32));
    const box = await sealBox(key, 7, { type: 'offer', pc: 'x', sdp: 'v=0' });
    assert.equal(unb64(box).length, JSON.stringify({ type: 'offer', pc: 'x', sdp: 'v=0' }).length + 16);
    const plain = await openBox(key, 7, box);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(plain)), { type: 'offer', pc: 'x', sdp: 'v=0' });
    assert.equal(await openBox(key, 8, box), null, 'another seq');
    assert.equal(await openBox(crypto.getRandomValues(new Uint8Array(32)), 7, box), null, 'another key');
    const bytes = unb64(box);
    bytes[3] ^= 1;
    assert.equal(await openBox(key, 7, b64(bytes)), null, 'a flipped bit');
    assert.equal(await openBox(key, 7, 'not base64!'), null);
  });

  test('safety code: five groups of four digits, over the sorted keys', async () => {
    const eks = [memberKeys().ek, memberKeys().ek, memberKeys().ek];
    const code = await safetyCode(eks);
    assert.match(code, /^\d{4} \d{4} \d{4} \d{4} \d{4}$/);
    assert.equal(await safetyCode([eks[2], eks[0], eks[1]]), code, 'order does not matter');
    assert.notEqual(await safetyCode(eks.slice(0, 2)), code);
    // The definition, spelled out once more.
    const sorted = [...eks].sort(compareBytes);
    const h = new Uint8Array(await crypto.subtle.digest('SHA-256', Buffer.concat([text('roombox v2 safety'), ...sorted])));
    const dv = new DataView(h.buffer);
    const want = [0, 1, 2, 3, 4].map((i) => String(dv.getUint32(4 * i) % 10000).padStart(4, '0')).join(' ');
    assert.equal(code, want);
  });
});

// ---- the cross-implementation vectors -----------------------------------------------------

describe('tests/vectors/seal.json (the same vectors crates/seal checks)', () => {
  const file = path.join(vectorsDir, 'seal.json');
  const present = existsSync(file);
  test('seal.js reproduces every value', { skip: present ? false : 'tests/vectors/seal.json is not there yet' }, async () => {
    const { checkSealVectors } = await import('./seal-vectors.mjs');
    await checkSealVectors(JSON.parse(readFileSync(file, 'utf8')));
  });
});

// ---- SealedSignaling over a fake server ---------------------------------------------------

const ROOM = 'unit-room';

function member(hub, name, { secret, kind = 'browser', room = ROOM } = {}) {
  const s = new SealedSignaling({
    url: 'ws://fake/ws', room, name, kind, secret, transport: (o) => hub.transport(o),
  });
  const seen = {
    named: new Map(), refused: new Map(), signals: [], codes: [], joined: [], left: [], welcome: null,
  };
  s.addEventListener('peer-named', (e) => seen.named.set(e.detail.id, e.detail));
  s.addEventListener('peer-refused', (e) => seen.refused.set(e.detail.id, e.detail.reason));
  s.addEventListener('signal', (e) => seen.signals.push(e.detail));
  s.addEventListener('safety-code', (e) => seen.codes.push(e.detail.code));
  s.addEventListener('peer-joined', (e) => seen.joined.push(e.detail.peer));
  s.addEventListener('peer-left', (e) => seen.left.push(e.detail.id));
  s.addEventListener('welcome', (e) => { seen.welcome = e.detail; });
  s.seen = seen;
  return s;
}

async function until(fn, what, timeout = 5000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Let every pending delivery and seal run (setImmediate hops and WebCrypto promises). */
async function settle(ms = 50) {
  await new Promise((r) => setTimeout(r, ms));
}

async function joinAll(...members) {
  for (const m of members) {
    await m.connect();
    await until(() => m.state === 'connected' && m.seen.welcome, `${m.name} welcomed`);
  }
}

/** Everyone named everyone else. */
async function allNamed(members) {
  for (const m of members) {
    for (const o of members) {
      if (o === m) continue;
      await until(() => m.seen.named.get(o.id)?.name === o.name, `${m.name} knowing ${o.name}'s name`);
    }
  }
}

const sealedFrom = (from) => (msg, ctx) => msg.type === 'sealed' && msg.box && ctx.from === from;

describe('SealedSignaling between members', () => {
  test('honest: names, signals in order with from, and one safety code for everyone', async () => {
    const hub = new FakeHub();
    const secret = generateSecret();
    const ada = member(hub, 'Ada', { secret });
    const box = member(hub, 'Room 4', { secret, kind: 'appliance' });
    await joinAll(ada, box);
    // Sent before the pair's keys exist: queued, then delivered after the hi, in order.
    for (let i = 0; i < 5; i++) {
      assert.equal(ada.send({ type: 'ice-candidate', to: box.id, pc: 'k', candidate: { candidate: `candidate-${i}` } }), true);
    }
    assert.equal(ada.send({ type: 'offer', to: box.id, pc: 'k', sdp: 'v=0 offer', media: { 0: 'camera' } }), true);
    await allNamed([ada, box]);
    assert.deepEqual(box.seen.named.get(ada.id), { id: ada.id, name: 'Ada', kind: 'browser' });
    assert.deepEqual(ada.seen.named.get(box.id), { id: box.id, name: 'Room 4', kind: 'appliance' });
    await until(() => box.seen.signals.length === 6, 'six signals at the box');
    assert.deepEqual(box.seen.signals.map((s) => s.candidate?.candidate ?? s.type), ['candidate-0', 'candidate-1', 'candidate-2', 'candidate-3', 'candidate-4', 'offer']);
    const offer = box.seen.signals[5];
    assert.deepEqual(offer, { type: 'offer', pc: 'k', sdp: 'v=0 offer', media: { 0: 'camera' }, from: ada.id });
    box.send({ type: 'answer', to: ada.id, pc: 'k', sdp: 'v=0 answer' });
    await until(() => ada.seen.signals.length === 1, 'the answer');
    assert.deepEqual(ada.seen.signals[0], { type: 'answer', pc: 'k', sdp: 'v=0 answer', from: box.id });

    // The server saw no SDP, no candidate and no name: only hellos and envelopes.
    const wire = JSON.stringify(hub.log);
    for (const secretText of ['v=0 offer', 'v=0 answer', 'candidate-3', 'Ada', 'Room 4', secret]) {
      assert.ok(!wire.includes(secretText), `the server never sees ${secretText}`);
    }
    assert.ok(hub.log.every(({ msg }) => !['offer', 'answer', 'ice-candidate', 'view'].includes(msg.type)));

    await until(() => ada.safetyCode && ada.safetyCode === box.safetyCode, 'one safety code');
    assert.match(ada.safetyCode, /^\d{4} \d{4} \d{4} \d{4} \d{4}$/);
    assert.equal(ada.seen.refused.size + box.seen.refused.size, 0);
    const [p] = ada.pairs();
    assert.equal(p.pair, box.pairs()[0].pair);
    ada.leave();
    box.leave();
  });

  test('three members agree on the code; one leaving changes it for the two others', async () => {
    const hub = new FakeHub();
    const secret = generateSecret();
    const all = ['Ada', 'Bea', 'Cy'].map((n) => member(hub, n, { secret }));
    await joinAll(...all);
    await allNamed(all);
    await until(() => new Set(all.map((m) => m.safetyCode)).size === 1, 'three equal codes');
    const three = all[0].safetyCode;
    const cyId = all[2].id;
    // Every member says the same thing: the code depends only on who is in the room.
    assert.equal(three, await safetyCode(all.map((m) => unb64(m.publicKey))));
    all[2].leave();
    await until(() => all[0].safetyCode !== three && all[0].safetyCode === all[1].safetyCode, 'a new code for two');
    assert.equal(all[0].safetyCode, await safetyCode([unb64(all[0].publicKey), unb64(all[1].publicKey)]));
    assert.deepEqual(all[0].seen.left, [cyId]);
    all[0].leave();
    all[1].leave();
  });

  test('a socket that drops and resumes keeps its pairs (same pair, sequence going on)', async () => {
    const hub = new FakeHub();
    const secret = generateSecret();
    const ada = member(hub, 'Ada', { secret });
    const bea = member(hub, 'Bea', { secret });
    await joinAll(ada, bea);
    await allNamed([ada, bea]);
    ada.send({ type: 'offer', to: bea.id, pc: 'a', sdp: 'one' });
    await until(() => bea.seen.signals.length === 1, 'first offer');
    const before = ada.pairs()[0];
    ada.transport.drop();
    await until(() => ada.reconnects === 1 && ada.connected, 'resumed');
    await settle();
    ada.send({ type: 'offer', to: bea.id, pc: 'a', sdp: 'two' });
    await until(() => bea.seen.signals.length === 2, 'second offer');
    assert.equal(bea.seen.signals[1].sdp, 'two');
    const after = ada.pairs()[0];
    assert.equal(after.pair, before.pair);
    assert.ok(after.sent > before.sent);
    assert.equal(bea.seen.refused.size + ada.seen.refused.size, 0);
    ada.leave();
    bea.leave();
  });

  test('a peer that starts over (it dropped our pair) gets a fresh pair by a reply', async () => {
    const hub = new FakeHub();
    const secret = generateSecret();
    const ada = member(hub, 'Ada', { secret });
    const bea = member(hub, 'Bea', { secret });
    await joinAll(ada, bea);
    await allNamed([ada, bea]);
    const first = ada.pairs()[0].pair;
    // Bea is told Ada left and came back (as after a server restart), Ada is told nothing.
    hub.inject(bea.id, { type: 'peer-left', id: ada.id });
    hub.inject(bea.id, { type: 'peer-joined', peer: { id: ada.id, kind: 'browser', v: 2, key: ada.transport.key } });
    await until(() => ada.pairs()[0].pair !== first && ada.pairs()[0].pair === bea.pairs()[0]?.pair, 'a new pair');
    bea.send({ type: 'offer', to: ada.id, pc: 'b', sdp: 'after' });
    await until(() => ada.seen.signals.some((s) => s.sdp === 'after'), 'an offer on the new pair');
    assert.equal(ada.seen.refused.size + bea.seen.refused.size, 0);
    assert.equal(ada.safetyCode, bea.safetyCode);
    ada.leave();
    bea.leave();
  });

  /** Ada and Bea meet through `hub` with `tap` set; returns them once Bea refused Ada (or times out). */
  async function refusedBy(tapFor) {
    const hub = new FakeHub();
    const secret = generateSecret();
    const ada = member(hub, 'Ada', { secret });
    const bea = member(hub, 'Bea', { secret });
    hub.tap = tapFor(() => ada.id);
    await joinAll(ada, bea);
    // A few messages each way, as a call would send.
    for (let i = 0; i < 4; i++) ada.send({ type: 'ice-candidate', to: bea.id, pc: 'x', candidate: { candidate: `a${i}` } });
    for (let i = 0; i < 4; i++) bea.send({ type: 'ice-candidate', to: ada.id, pc: 'x', candidate: { candidate: `b${i}` } });
    await until(() => bea.seen.refused.has(ada.id), 'Bea refusing Ada');
    return { hub, ada, bea };
  }

  test('a flipped byte in an envelope: refused, "a message was altered"', async () => {
    const { ada, bea } = await refusedBy((adaId) => {
      let done = false;
      return (msg, ctx) => {
        if (!done && sealedFrom(adaId())(msg, ctx) && msg.seq === 2) {
          done = true;
          const bytes = unb64(msg.box);
          bytes[bytes.length - 20] ^= 0x01;
          return { ...msg, box: b64(bytes) };
        }
        return msg;
      };
    });
    assert.equal(bea.seen.refused.get(ada.id), REASONS.altered);
    // What opened before the altered one was delivered, nothing after it.
    await settle();
    assert.deepEqual(bea.seen.signals.map((s) => s.candidate.candidate), ['a0']);
    assert.equal(bea.send({ type: 'offer', to: ada.id, pc: 'x', sdp: 'no' }), false, 'nothing is sent to a refused peer');
    assert.equal(bea.pairs()[0].refused, REASONS.altered);
    ada.leave();
    bea.leave();
  });

  test('a changed seq: refused as altered (the seq is sealed in)', async () => {
    const { ada, bea } = await refusedBy((adaId) => (msg, ctx) => (
      sealedFrom(adaId())(msg, ctx) && msg.seq === 1 ? { ...msg, seq: 7 } : msg));
    assert.equal(bea.seen.refused.get(ada.id), REASONS.altered);
    ada.leave();
    bea.leave();
  });

  test('an envelope replayed: refused, "a message was replayed or reordered"', async () => {
    const { ada, bea } = await refusedBy((adaId) => (msg, ctx) => (
      sealedFrom(adaId())(msg, ctx) && msg.seq === 2 ? [msg, msg] : msg));
    assert.equal(bea.seen.refused.get(ada.id), REASONS.replayed);
    assert.deepEqual(bea.seen.signals.map((s) => s.candidate.candidate), ['a0', 'a1']);
    ada.leave();
    bea.leave();
  });

  test('two envelopes swapped: refused, "a message was replayed or reordered"', async () => {
    const { ada, bea } = await refusedBy((adaId) => {
      let held = null;
      return (msg, ctx) => {
        if (!sealedFrom(adaId())(msg, ctx)) return msg;
        if (msg.seq === 1) {
          held = msg;
          return null;
        }
        if (msg.seq === 2 && held) return [msg, held];
        return msg;
      };
    });
    assert.equal(bea.seen.refused.get(ada.id), REASONS.replayed);
    ada.leave();
    bea.leave();
  });

  test('a key swapped by the server: refused, "not signed with this room\'s secret"', async () => {
    const hub = new FakeHub();
    const secret = generateSecret();
    const ada = member(hub, 'Ada', { secret });
    const bea = member(hub, 'Bea', { secret });
    // The server gives Bea another key for Ada (its own, with Ada's mac: it has no secret).
    hub.announceTap = (peer) => (peer.key && peer.id === ada.id
      ? { ...peer, key: { ...peer.key, pk: b64(memberKeys().ek) } } : peer);
    await joinAll(ada, bea);
    await until(() => bea.seen.refused.has(ada.id), 'Bea refusing Ada');
    assert.equal(bea.seen.refused.get(ada.id), REASONS.key);
    assert.equal(bea.seen.joined[0]?.refused ?? bea.seen.welcome.peers[0]?.refused, REASONS.key);
    // Ada's hello reaches Bea, who ignores it; Ada never gets a pair, and sends nothing sealed.
    await settle(100);
    assert.equal(ada.pairs()[0].pair, null);
    assert.equal(bea.pairs()[0].pair, null);
    assert.ok(!ada.seen.named.has(bea.id) && !bea.seen.named.has(ada.id));
    ada.leave();
    bea.leave();
  });

  test('a hello altered: its mac fails, refused as "not signed with this room\'s secret"', async () => {
    const { ada, bea } = await refusedBy((adaId) => (msg, ctx) => {
      if (msg.type === 'sealed' && msg.hello && ctx.from === adaId()) {
        const ct = unb64(msg.hello.ct);
        ct[0] ^= 0x80;
        return { ...msg, hello: { ...msg.hello, ct: b64(ct) } };
      }
      return msg;
    });
    assert.equal(bea.seen.refused.get(ada.id), REASONS.key);
    ada.leave();
    bea.leave();
  });

  test('a plain offer from a member: refused, "sent signaling in clear"', async () => {
    const hub = new FakeHub();
    const secret = generateSecret();
    const ada = member(hub, 'Ada', { secret });
    const bea = member(hub, 'Bea', { secret });
    await joinAll(ada, bea);
    await allNamed([ada, bea]);
    hub.inject(bea.id, { type: 'offer', from: ada.id, to: bea.id, pc: 'p', sdp: 'v=0 forged' });
    await until(() => bea.seen.refused.has(ada.id), 'refused');
    assert.equal(bea.seen.refused.get(ada.id), REASONS.clear);
    assert.ok(!bea.seen.signals.some((s) => s.sdp === 'v=0 forged'), 'the plain offer is not passed on');
    // Ada's code no longer counts Bea... Bea's no longer counts Ada: the codes differ now.
    await until(() => bea.safetyCode !== ada.safetyCode, 'codes apart');
    ada.leave();
    bea.leave();
  });

  test('a member with a wrong secret: refused by both, and refuses both', async () => {
    const hub = new FakeHub();
    const secret = generateSecret();
    const ada = member(hub, 'Ada', { secret });
    const bea = member(hub, 'Bea', { secret });
    const eve = member(hub, 'Eve', { secret: generateSecret() });
    await joinAll(ada, bea, eve);
    await allNamed([ada, bea]);
    await until(() => ada.seen.refused.has(eve.id) && bea.seen.refused.has(eve.id)
      && eve.seen.refused.has(ada.id) && eve.seen.refused.has(bea.id), 'all refusals');
    for (const [who, whom] of [[ada, eve], [bea, eve], [eve, ada], [eve, bea]]) {
      assert.equal(who.seen.refused.get(whom.id), REASONS.key);
    }
    await settle(100);
    assert.equal(eve.seen.named.size, 0);
    assert.ok(!ada.seen.named.has(eve.id));
    assert.equal(ada.safetyCode, bea.safetyCode, 'Eve is in no one\'s code');
    assert.equal(ada.safetyCode, await safetyCode([unb64(ada.publicKey), unb64(bea.publicKey)]));
    for (const m of [ada, bea, eve]) m.leave();
  });

  test('the refusal lasts until the peer leaves; a new member with that id starts afresh', async () => {
    const hub = new FakeHub();
    const secret = generateSecret();
    const ada = member(hub, 'Ada', { secret });
    const bea = member(hub, 'Bea', { secret });
    await joinAll(ada, bea);
    await allNamed([ada, bea]);
    hub.inject(bea.id, { type: 'view', from: ada.id, pc: 'p', videos: {} });
    await until(() => bea.seen.refused.has(ada.id), 'refused');
    // Re-announced while still there: still refused.
    hub.inject(bea.id, { type: 'peer-joined', peer: ada.transport.info() });
    await settle();
    assert.equal(bea.pairs().find((p) => p.id === ada.id).refused, REASONS.clear);
    ada.leave();
    await until(() => bea.pairs().length === 0, 'Ada gone');
    bea.leave();
  });
});
