// What web/js/seal.js needs of X-Wing (draft-connolly-cfrg-xwing-kem: ML-KEM-768 + X25519),
// from @noble/post-quantum. Bundled by scripts/web-vendor.sh into web/vendor/xwing.js.
import { ml_kem768_x25519 as xwing } from '@noble/post-quantum/hybrid.js';

/** Byte lengths: seed 32, encapsulation key 1216, ciphertext 1120, shared secret 32, eseed 64. */
export const lengths = Object.freeze({
  seed: 32, ek: 1216, ct: 1120, ss: 32, eseed: 64,
});

/** The key pair of a 32-byte seed: {ek, dk} (dk is the seed itself, the draft's secret key). */
export function keygen(seed) {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new Error('X-Wing seed: 32 bytes');
  const { publicKey, secretKey } = xwing.keygen(seed);
  return { ek: publicKey, dk: secretKey };
}

/** Encapsulate to `ek`: {ct, ss}; `eseed` (64 bytes) only for test vectors, else random. */
export function encapsulate(ek, eseed) {
  if (eseed !== undefined && (!(eseed instanceof Uint8Array) || eseed.length !== 64)) {
    throw new Error('X-Wing eseed: 64 bytes');
  }
  const { cipherText, sharedSecret } = eseed === undefined
    ? xwing.encapsulate(ek)
    : xwing.encapsulate(ek, eseed);
  return { ct: cipherText, ss: sharedSecret };
}

/** The shared secret of `ct` for the key pair whose secret key is `dk`. */
export function decapsulate(ct, dk) {
  return xwing.decapsulate(ct, dk);
}
