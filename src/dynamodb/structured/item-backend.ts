import type { CryptoBackend, MaybePromise } from '../../backend/types.js'

/**
 * The CryptoBackend the item format runs on, with the two primitives only items need: HMAC (header commitment,
 * recipient tags) and the AES-256-CTR stream that gives each encrypted attribute its key and nonce. On Node both
 * come from node:crypto (node-backend.ts); in browsers, Workers and React Native from WebCrypto, or @noble where
 * there is no `crypto.subtle` (web-backend.ts).
 */
export interface ItemBackend extends CryptoBackend {
  hmac(hash: 'sha384' | 'sha512', key: Uint8Array, data: Uint8Array): MaybePromise<Uint8Array>
  /** `length` bytes of AES-256-CTR under `key`, the counter starting at the 16-byte block `counter` (all 128 bits count). */
  aesCtr(key: Uint8Array, counter: Uint8Array, length: number): MaybePromise<Uint8Array>
}
