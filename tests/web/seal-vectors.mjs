// Checks web/js/seal.js against tests/vectors/seal.json, the fixed vectors crates/seal writes
// and checks (field names: tests/vectors/README.md).

import assert from 'node:assert/strict';
import * as xwing from '../../web/vendor/xwing.js';
import {
  announce, b64, deriveRoomKeys, derivePairKeys, makeHello, openBox, parseSecret, safetyCode,
  sealBox, unb64, verifyAnnouncement, verifyHello,
} from '../../web/js/seal.js';

const hex = (s) => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b) => Buffer.from(b).toString('hex');

export async function checkSealVectors(v) {
  const secret = parseSecret(v.secret_b64);
  assert.ok(secret, 'secret_b64 parses as a room secret');
  const keys = await deriveRoomKeys(secret, v.room);
  const members = {};
  for (const name of ['a', 'b']) {
    const m = v[name];
    const { ek, dk } = xwing.keygen(hex(m.seed));
    assert.equal(toHex(ek), m.ek, `${name}.ek from its seed`);
    const key = await announce(keys, ek);
    assert.equal(key.pk, b64(ek));
    assert.equal(key.mac, m.announce_mac_b64, `${name}.announce_mac_b64`);
    assert.deepEqual(await verifyAnnouncement(keys, key), ek);
    members[name] = { ...m, ekBytes: ek, dk };
  }
  const { a, b } = members;
  for (const [self, other, name] of [[a, b, 'a'], [b, a, 'b']]) {
    const { ct, ss } = xwing.encapsulate(other.ekBytes, hex(self.eseed));
    assert.equal(toHex(ct), self.ct, `${name}.ct`);
    assert.equal(toHex(ss), self.ss, `${name}.ss`);
    assert.equal(toHex(xwing.decapsulate(ct, other.dk)), self.ss, `${name}.ss decapsulated by the other`);
    const hello = await makeHello(keys, self.ekBytes, other.ekBytes, ct, self.hello_reply);
    assert.equal(hello.mac, self.hello_mac_b64, `${name}.hello_mac_b64 (reply ${self.hello_reply})`);
    assert.equal(hello.reply, self.hello_reply);
    assert.deepEqual(await verifyHello(keys, self.ekBytes, other.ekBytes, hello), ct);
  }
  const pairOf = (self, other) => derivePairKeys(keys.pairSalt, {
    ekSelf: self.ekBytes, ekPeer: other.ekBytes, ctSelf: hex(self.ct), ssSelf: hex(self.ss), ctPeer: hex(other.ct), ssPeer: hex(other.ss),
  });
  const pa = await pairOf(a, b);
  const pb = await pairOf(b, a);
  for (const [p, self, name] of [[pa, a, 'a'], [pb, b, 'b']]) {
    assert.equal(toHex(p.transcript), v.transcript, `transcript seen from ${name}`);
    assert.equal(p.pair, v.pair_b64, `pair_b64 seen from ${name}`);
    assert.equal(toHex(p.sendKey), self.send_key, `${name}.send_key`);
  }
  assert.equal(toHex(pa.recvKey), b.send_key);

  const env = v.envelope;
  const sender = members[env.from];
  const receiver = env.from === 'a' ? b : a;
  const box = await sealBox(hex(sender.send_key), env.seq, new TextEncoder().encode(env.plaintext));
  assert.equal(box, env.box_b64, 'envelope.box_b64');
  const opened = await openBox(env.from === 'a' ? pb.recvKey : pa.recvKey, env.seq, env.box_b64);
  assert.equal(new TextDecoder().decode(opened), env.plaintext, 'the receiver opens it');
  assert.equal(await openBox(hex(receiver.send_key), env.seq, env.box_b64), null, 'not under the other direction');
  assert.equal(await openBox(hex(sender.send_key), env.seq + 1, env.box_b64), null, 'not at another seq');

  assert.equal(await safetyCode([a.ekBytes, b.ekBytes]), v.safety_code, 'safety_code');
  assert.equal(unb64(v.secret_b64).length, 16);
}
