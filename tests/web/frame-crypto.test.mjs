// web/js/frame-crypto.js, the browser's frame encryption (docs/protocol.md, "Frame
// encryption"): every value of tests/vectors/frame.json (computed by the box's crates/seal),
// round trips, wrong keys, altered bytes, the key ring, and the escaping's edge cases.
//
//   node --test tests/web/

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  FrameCipher, KeyRing, OVERHEAD, escape, freshKey, generateKey, isSlice, kidDistance, nalUnits,
  nextKid, ratchet, unescape,
} from '../../web/js/frame-crypto.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const vectors = JSON.parse(readFileSync(path.join(here, '..', 'vectors', 'frame.json'), 'utf8'));
const hex = (s) => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b) => Buffer.from(b).toString('hex');

/** crates/seal's test key: kid, and 32 bytes of kid. */
const key = (kid) => ({ kid, key: new Uint8Array(32).fill(kid) });

/** ivs 01.., 02.., ... as crates/seal's tests make them. */
function counterIv() {
  let n = 0;
  return () => new Uint8Array(12).fill(++n);
}

/** crates/seal's test access unit: SPS, PPS, an IDR slice full of escaping patterns, a second slice. */
function accessUnit() {
  const au = [0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0x8c, 0x8d, 0x40];
  au.push(0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80);
  au.push(0, 0, 1, 0x65, 0x88, 0x84);
  for (let i = 0; i < 600; i++) {
    const m = i % 7;
    au.push(m === 0 || m === 1 ? 0 : m === 2 ? 3 : ((i * 37) % 251) + 1);
  }
  au.push(0, 0, 1, 0x65, 0x00, 0x9a, 0x00, 0x00, 0x03, 0x01, 0x55);
  return Uint8Array.from(au);
}

async function ringWith(...keys) {
  const ring = new KeyRing();
  for (const k of keys) ring.insert(k);
  return ring;
}

/** A deterministic byte source (xorshift) for the random cases. */
function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

describe('tests/vectors/frame.json (computed by crates/seal)', () => {
  const senderKey = { kid: vectors.kid, key: hex(vectors.sender_key) };

  test('ratchet: the next key and index', async () => {
    const next = await ratchet(senderKey);
    assert.equal(next.kid, vectors.ratchet.kid);
    assert.equal(toHex(next.key), vectors.ratchet.key);
  });

  test('opus: sealed with the given iv, byte for byte, and opened', async () => {
    const cipher = await FrameCipher.create(senderKey);
    const sealed = await cipher.sealOpus(hex(vectors.opus.plain), hex(vectors.opus.iv));
    assert.equal(toHex(sealed), vectors.opus.sealed);
    const ring = await ringWith(senderKey);
    assert.equal(toHex(await ring.openOpus(hex(vectors.opus.sealed))), vectors.opus.plain);
  });

  test('h264: the access unit sealed with the given ivs, byte for byte, and opened', async () => {
    const cipher = await FrameCipher.create(senderKey);
    const ivs = vectors.h264.ivs.map(hex);
    let n = 0;
    const sealed = await cipher.sealH264(hex(vectors.h264.plain), () => ivs[n++]);
    assert.equal(n, ivs.length, 'one iv per slice');
    assert.equal(toHex(sealed), vectors.h264.sealed);
    const ring = await ringWith(senderKey);
    assert.equal(toHex(await ring.openH264(hex(vectors.h264.sealed))), vectors.h264.plain);
  });

  test('the ratcheted key opens what the vector key\'s successor seals, and the vector key does not', async () => {
    const next = { kid: vectors.ratchet.kid, key: hex(vectors.ratchet.key) };
    const frame = await (await FrameCipher.create(next)).sealOpus(hex(vectors.opus.plain));
    const ring = await ringWith(senderKey);
    assert.equal(toHex(await ring.openOpus(frame)), vectors.opus.plain, 'ratcheted ahead by itself');
    assert.deepEqual(ring.kids(), [vectors.kid, vectors.ratchet.kid]);
  });
});

describe('H.264 access units', () => {
  test('round trip with parameter sets and headers clear, no start code emulated', async () => {
    const au = accessUnit();
    const sealed = await (await FrameCipher.create(key(3))).sealH264(au, counterIv());
    const plainUnits = nalUnits(au);
    const sealedUnits = nalUnits(sealed);
    assert.equal(sealedUnits.length, plainUnits.length, 'no start code emulated');
    plainUnits.forEach(({ startCode: sa, nal: a }, i) => {
      const { startCode: sb, nal: b } = sealedUnits[i];
      assert.deepEqual(sb, sa);
      assert.equal(b[0], a[0], 'NAL headers clear');
      if (isSlice(a)) {
        assert.equal(b[1], a[1], 'the first slice-header byte clear');
        assert.notDeepEqual(b, a);
        assert.ok(b.length >= a.length + OVERHEAD);
        assert.notEqual(b.at(-1), 0, 'no NAL unit ends in zero');
      } else {
        assert.deepEqual(b, a, 'SPS and PPS pass clear');
      }
    });
    const ring = await ringWith(key(3));
    assert.deepEqual(await ring.openH264(sealed), au);
  });

  test('does not open without its key, with another key, or once a byte changed', async () => {
    const au = accessUnit();
    const sealed = await (await FrameCipher.create(key(3))).sealH264(au, counterIv());
    assert.equal(await (await ringWith({ kid: 3, key: new Uint8Array(32).fill(9) })).openH264(sealed), null, 'wrong key');
    assert.equal(await new KeyRing().openH264(sealed), null, 'no key');
    assert.equal(await (await ringWith(key(4))).openH264(sealed), null, 'another index, not reachable by ratchet');
    const ring = await ringWith(key(3));
    const changed = sealed.slice();
    changed[changed.length - 40] ^= 0x10;
    assert.equal(await ring.openH264(changed), null, 'altered');
    // The clear slice-header byte is authenticated too.
    let at = -1;
    for (let i = 0; i + 4 <= sealed.length; i++) {
      if (sealed[i] === 0 && sealed[i + 1] === 0 && sealed[i + 2] === 1 && sealed[i + 3] === 0x65) {
        at = i + 4;
        break;
      }
    }
    const header = sealed.slice();
    header[at] ^= 0x01;
    assert.equal(await ring.openH264(header), null, 'altered clear byte');
    // So is the NAL header (IDR into non-IDR: still a slice, and the tag fails).
    const nalHeader = sealed.slice();
    nalHeader[at - 1] = 0x61;
    assert.equal(await ring.openH264(nalHeader), null, 'altered NAL header');
    // Every single byte of every slice matters.
    for (const i of [at + 1, at + 10, sealed.length - 1, sealed.length - 20]) {
      const c = sealed.slice();
      c[i] ^= 0x80;
      assert.equal(await ring.openH264(c), null, `byte ${i} altered`);
    }
    assert.deepEqual(await ring.openH264(sealed), au, 'the untouched frame still opens');
  });

  test('a frame whose slice was cut short is dropped; parameter sets alone pass', async () => {
    const ring = await ringWith(key(3));
    const cipher = await FrameCipher.create(key(3));
    const sealed = await cipher.sealH264(Uint8Array.of(0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21), counterIv());
    assert.equal(await ring.openH264(sealed.subarray(0, sealed.length - 1)), null, 'kid cut off');
    assert.equal(await ring.openH264(sealed.subarray(0, 4 + 2 + OVERHEAD - 1)), null, 'shorter than a sealed slice');
    // A slice NAL unit of a header byte only: passed clear by the sender, dropped by the receiver.
    const tiny = Uint8Array.of(0, 0, 0, 1, 0x65);
    assert.deepEqual(await cipher.sealH264(tiny), tiny);
    assert.equal(await ring.openH264(tiny), null);
    // A slice of exactly two bytes: nothing to encrypt, still sealed (the tag covers the two).
    const two = Uint8Array.of(0, 0, 1, 0x41, 0x9a);
    const s2 = await cipher.sealH264(two);
    assert.equal(s2.length >= two.length + OVERHEAD, true);
    assert.deepEqual(await ring.openH264(s2), two);
    // No slice at all: the same bytes both ways, even with no key.
    const params = Uint8Array.of(0, 0, 0, 1, 0x67, 0x42, 0, 0x1f, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80);
    assert.deepEqual(await cipher.sealH264(params), params);
    assert.deepEqual(await new KeyRing().openH264(params), params);
    assert.deepEqual(await new KeyRing().openH264(new Uint8Array(0)), new Uint8Array(0));
  });

  test('start codes of 3 and 4 bytes, bytes before the first, trailing zeros: all kept', async () => {
    const cipher = await FrameCipher.create(key(200));
    const ring = await ringWith(key(200));
    const cases = [
      [9, 9, 0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x65, 0x88, 2, 2],
      [0, 0, 1, 0x41, 0x9a, 0, 0, 0, 0, 0, 0, 1, 0x41, 0x9b, 7, 0, 0],
      [0x65, 0x88, 0x80, 0, 0, 1, 0x41, 0x9a, 1], // a slice before any start code is a slice too
      [0, 0, 0, 1, 0x65, 0x88, 0, 0, 0, 0, 0, 0, 0, 0],
    ];
    for (const c of cases) {
      const au = Uint8Array.from(c);
      const sealed = await cipher.sealH264(au);
      assert.equal(nalUnits(sealed).length, nalUnits(au).length, `${c}: same units`);
      assert.deepEqual(await ring.openH264(sealed), au, `${c}`);
    }
  });

  test('ivs and kids of 0 to 3 after zeros are escaped and undone (kid 1 after an iv ending 00 00)', async () => {
    for (const kid of [1, 2, 3, 255]) {
      const cipher = await FrameCipher.create(key(kid));
      const ring = await ringWith(key(kid));
      for (const iv of [new Uint8Array(12), Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 0)]) {
        const au = Uint8Array.from([0, 0, 0, 1, 0x65, 0x00, 0, 0, 3, 0, 3, 0, 0, 3, 1, 0, 0, 3, 2, 0x80]);
        const sealed = await cipher.sealH264(au, () => iv);
        const units = nalUnits(sealed);
        assert.equal(units.length, 1, 'one NAL unit still');
        const nal = units[0].nal;
        for (let i = 0; i + 2 < nal.length; i++) {
          assert.ok(!(nal[i] === 0 && nal[i + 1] === 0 && nal[i + 2] <= 2), `no 00 00 0${nal[i + 2]} at ${i}`);
        }
        assert.notEqual(nal.at(-1), 0);
        assert.deepEqual(await ring.openH264(sealed), au, `kid ${kid}`);
      }
    }
  });

  test('random access units full of zeros round trip, and keep their NAL units', async () => {
    const next = rng(7);
    const cipher = await FrameCipher.create(key(42));
    const ring = await ringWith(key(42));
    for (let round = 0; round < 150; round++) {
      const parts = [];
      const units = 1 + (next() % 4);
      for (let u = 0; u < units; u++) {
        parts.push(...(next() % 2 ? [0, 0, 0, 1] : [0, 0, 1]));
        const type = [1, 5, 6, 7, 8][next() % 5];
        parts.push((next() % 2 ? 0x60 : 0x40) | type);
        const len = next() % 300;
        for (let i = 0; i < len; i++) {
          const r = next() % 10;
          parts.push(r < 5 ? 0 : r < 7 ? next() % 4 : (next() % 255) + 1);
        }
        // Within a NAL unit, 00 00 followed by 0..3 never occurs: emulation prevention.
        for (let i = parts.length - len; i < parts.length; i++) {
          if (i >= 2 && parts[i - 2] === 0 && parts[i - 1] === 0 && parts[i] <= 3) parts.splice(i, 0, 3);
        }
        if (parts.at(-1) === 0) parts.push(0x80);
      }
      const au = Uint8Array.from(parts);
      const sealed = await cipher.sealH264(au);
      assert.equal(nalUnits(sealed).length, nalUnits(au).length, `round ${round}: units`);
      assert.deepEqual(await ring.openH264(sealed), au, `round ${round}`);
    }
  });
});

describe('Opus frames', () => {
  test('the TOC byte stays clear and authenticated; kid last', async () => {
    const frame = Uint8Array.of(0x78, 1, 2, 3, 0, 0, 0, 4);
    const sealed = await (await FrameCipher.create(key(1))).sealOpus(frame, new Uint8Array(12).fill(7));
    assert.equal(sealed[0], 0x78);
    assert.equal(sealed.length, frame.length + OVERHEAD);
    assert.equal(sealed.at(-1), 1, 'kid last');
    const ring = await ringWith(key(1));
    assert.deepEqual(await ring.openOpus(sealed), frame);
    const toc = sealed.slice();
    toc[0] = 0x79;
    assert.equal(await ring.openOpus(toc), null, 'altered TOC');
    const body = sealed.slice();
    body[3] ^= 1;
    assert.equal(await ring.openOpus(body), null, 'altered payload');
    const tag = sealed.slice();
    tag[frame.length + 2] ^= 1;
    assert.equal(await ring.openOpus(tag), null, 'altered tag');
    const iv = sealed.slice();
    iv[sealed.length - 5] ^= 1;
    assert.equal(await ring.openOpus(iv), null, 'altered iv');
    assert.equal(await (await ringWith({ kid: 1, key: new Uint8Array(32).fill(2) })).openOpus(sealed), null, 'wrong key');
    assert.equal(await new KeyRing().openOpus(sealed), null, 'no key');
    assert.equal(await ring.openOpus(sealed.subarray(0, OVERHEAD)), null, 'too short');
  });

  test('sizes 0 to 1275: round trips; an empty frame seals but never opens (as crates/seal)', async () => {
    const cipher = await FrameCipher.create(key(9));
    const ring = await ringWith(key(9));
    const next = rng(3);
    for (const n of [1, 2, 3, 20, 160, 1275]) {
      const frame = Uint8Array.from({ length: n }, () => next() & 0xff);
      assert.deepEqual(await ring.openOpus(await cipher.sealOpus(frame)), frame, `${n} bytes`);
    }
    const empty = await cipher.sealOpus(new Uint8Array(0));
    assert.equal(empty.length, OVERHEAD);
    assert.equal(await ring.openOpus(empty), null);
  });

  test('random ivs: the same frame never seals the same twice', async () => {
    const cipher = await FrameCipher.create(key(9));
    const frame = Uint8Array.of(0x78, 5, 5, 5);
    assert.notDeepEqual(await cipher.sealOpus(frame), await cipher.sealOpus(frame));
  });
});

describe('sender keys and the key ring', () => {
  test('kids run 1 to 255 and wrap to 1; ratchet and fresh keys move the kid on', async () => {
    assert.equal(nextKid(1), 2);
    assert.equal(nextKid(254), 255);
    assert.equal(nextKid(255), 1);
    assert.equal(kidDistance(254, 1), 2);
    assert.equal(kidDistance(3, 3), 0);
    assert.equal(kidDistance(5, 4), 254);
    assert.equal(generateKey(0).kid, 1);
    const k = generateKey(255);
    assert.equal((await ratchet(k)).kid, 1);
    assert.equal(freshKey(k).kid, 1);
    assert.notDeepEqual(freshKey(k).key, freshKey(k).key);
    assert.deepEqual((await ratchet(k)).key, (await ratchet(k)).key, 'a ratchet is deterministic');
    await assert.rejects(FrameCipher.create({ kid: 0, key: new Uint8Array(32) }));
    assert.throws(() => new KeyRing().insert({ kid: 256, key: new Uint8Array(32) }));
    assert.throws(() => new KeyRing().insert({ kid: 1, key: new Uint8Array(31) }));
  });

  test('receivers ratchet ahead a little by themselves and keep four keys (crates/seal\'s test)', async () => {
    const first = generateKey(254);
    const ring = await ringWith(first);
    const twoOn = await ratchet(await ratchet(first));
    assert.equal(twoOn.kid, 1, 'after 255 comes 1');
    const frame = await (await FrameCipher.create(twoOn)).sealOpus(Uint8Array.of(1, 2, 3), new Uint8Array(12).fill(1));
    assert.deepEqual(await ring.openOpus(frame), Uint8Array.of(1, 2, 3), 'ratcheted by itself');
    const threeOn = await ratchet(await ratchet(await ratchet(twoOn)));
    const far = await (await FrameCipher.create(threeOn)).sealOpus(Uint8Array.of(1, 2, 3));
    assert.equal(await ring.openOpus(far), null, 'three ahead: wait for the envelope');
    // A fresh key (someone left) cannot be guessed; sent, it opens; old ones stay a while.
    const fresh = freshKey(twoOn);
    const sealed = await (await FrameCipher.create(fresh)).sealOpus(Uint8Array.of(4));
    assert.equal(await ring.openOpus(sealed), null);
    ring.insert(fresh);
    assert.notEqual(await ring.openOpus(sealed), null);
    assert.notEqual(await ring.openOpus(frame), null, 'the previous key kept for late frames');
    let k = fresh;
    for (let i = 0; i < 4; i++) {
      k = freshKey(k);
      ring.insert(k);
    }
    assert.equal(ring.size, 4);
    assert.equal(await ring.openOpus(frame), null, 'only the last four are kept');
  });

  test('a frame naming kid 0 or an index behind the ring is dropped without touching the ring', async () => {
    const ring = await ringWith(key(10));
    const bogus = Uint8Array.of(0x78, ...new Uint8Array(OVERHEAD - 1), 0);
    assert.equal(await ring.openOpus(bogus), null);
    bogus[bogus.length - 1] = 9;
    assert.equal(await ring.openOpus(bogus), null);
    assert.deepEqual(ring.kids(), [10]);
  });

  test('a key sent again replaces the one with its index; a wrong guess by ratchet is replaced by the envelope', async () => {
    const ring = await ringWith(key(5));
    const fresh = freshKey(key(5)); // kid 6, not the ratchet of key 5
    const frame = await (await FrameCipher.create(fresh)).sealOpus(Uint8Array.of(0x78, 1));
    assert.equal(await ring.openOpus(frame), null, 'the ratchet guess fails');
    assert.deepEqual(ring.kids(), [5, 6], 'the guess is kept, as crates/seal keeps it');
    ring.insert(fresh);
    assert.deepEqual(ring.kids(), [5, 6]);
    assert.deepEqual(await ring.openOpus(frame), Uint8Array.of(0x78, 1));
  });

  test('concurrent frames ratcheting to the same index agree', async () => {
    const base = generateKey(7);
    const ring = await ringWith(base);
    const next = await ratchet(base);
    const c = await FrameCipher.create(next);
    const frames = await Promise.all([1, 2, 3, 4].map((i) => c.sealOpus(Uint8Array.of(0x78, i))));
    const opened = await Promise.all(frames.map((f) => ring.openOpus(f)));
    opened.forEach((o, i) => assert.deepEqual(o, Uint8Array.of(0x78, i + 1)));
    assert.deepEqual(ring.kids(), [7, 8]);
  });
});

describe('escaping (emulation prevention)', () => {
  test('undoes exactly, and leaves no 00 00 0x (x <= 2) behind', () => {
    const samples = [
      [0, 0, 0],
      [0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 4],
      [0, 0, 3, 0, 0, 3, 3],
      [1, 0, 0],
      new Array(9).fill(0),
      [],
      [0, 0],
      [0, 0, 3],
      [3, 0, 0, 3, 0, 0, 0, 3],
    ];
    const next = rng(11);
    for (let i = 0; i < 300; i++) {
      samples.push(Array.from({ length: next() % 40 }, () => (next() % 3 ? 0 : next() % 5)));
    }
    for (const s of samples) {
      const bytes = Uint8Array.from(s);
      const out = escape(bytes);
      for (let i = 0; i + 2 < out.length; i++) {
        assert.ok(!(out[i] === 0 && out[i + 1] === 0 && out[i + 2] <= 2), `${s} -> ${out}`);
      }
      assert.deepEqual(unescape(out), bytes, `${s}`);
    }
  });

  test('the same bytes as escaping a byte at a time, sparse zeros or dense (the copying fast path)', () => {
    // The rule written out plainly, as frame-crypto.js had it before it copied runs whole.
    const slowEscape = (bytes) => {
      const out = [];
      let zeros = 0;
      for (const b of bytes) {
        if (zeros >= 2 && b <= 3) {
          out.push(3);
          zeros = 0;
        }
        out.push(b);
        zeros = b === 0 ? zeros + 1 : 0;
      }
      return Uint8Array.from(out);
    };
    const slowUnescape = (bytes) => {
      const out = [];
      let zeros = 0;
      for (const b of bytes) {
        if (zeros >= 2 && b === 3) {
          zeros = 0;
          continue;
        }
        out.push(b);
        zeros = b === 0 ? zeros + 1 : 0;
      }
      return Uint8Array.from(out);
    };
    const next = rng(23);
    for (const zeroEvery of [2, 4, 16, 256, 5000]) {
      for (let i = 0; i < 60; i++) {
        const bytes = Uint8Array.from({ length: next() % 3000 }, () => (next() % zeroEvery === 0 ? 0 : next() % 256));
        assert.deepEqual(escape(bytes), slowEscape(bytes), `escape, a zero every ${zeroEvery}`);
        assert.deepEqual(unescape(bytes), slowUnescape(bytes), `unescape, a zero every ${zeroEvery}`);
      }
    }
  });

  test('known outputs', () => {
    assert.deepEqual(escape(Uint8Array.of(0, 0, 0)), Uint8Array.of(0, 0, 3, 0));
    assert.deepEqual(escape(Uint8Array.of(0, 0, 3)), Uint8Array.of(0, 0, 3, 3));
    assert.deepEqual(escape(Uint8Array.of(0, 0, 4)), Uint8Array.of(0, 0, 4));
    assert.deepEqual(escape(Uint8Array.of(0, 0, 0, 0, 0)), Uint8Array.of(0, 0, 3, 0, 0, 3, 0));
    assert.deepEqual(unescape(Uint8Array.of(0, 0, 3, 3)), Uint8Array.of(0, 0, 3));
  });

  test('NAL units split on three- and four-byte start codes (crates/seal\'s test)', () => {
    const s = Uint8Array.of(9, 9, 0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 2);
    const got = nalUnits(s).map(({ startCode, nal }) => [startCode.length, [...nal]]);
    assert.deepEqual(got, [[0, [9, 9]], [4, [0x67, 1]], [3, [0x68, 2, 2]]]);
    assert.deepEqual(nalUnits(new Uint8Array(0)).map((u) => [u.startCode.length, u.nal.length]), [[0, 0]]);
    assert.deepEqual(nalUnits(Uint8Array.of(0, 0, 1)).map((u) => [u.startCode.length, u.nal.length]), [[3, 0]]);
    assert.deepEqual(
      nalUnits(Uint8Array.of(0, 0, 1, 0, 0, 0, 1, 5)).map((u) => [u.startCode.length, [...u.nal]]),
      [[3, []], [4, [5]]],
    );
  });
});
