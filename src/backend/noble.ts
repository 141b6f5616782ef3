// The pure-JavaScript primitives the WebCrypto backend falls back to, loaded only when needed (a dynamic
// import, so a page with WebCrypto never downloads them when bundled with code splitting): AES-192-GCM,
// which Chromium's WebCrypto refuses, and AES-GCM, SHA-2 and HKDF where `crypto.subtle` is missing
// (pages served over plain HTTP from another host).
import { gcm } from '@noble/ciphers/aes.js'
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js'
import type { HashName } from '../suites.js'
import type { HkdfOutput } from './types.js'

export const HASHES = { sha256, sha384, sha512 } as const

/** Write ciphertext || 16-byte tag into `out` at `offset`. */
export function gcmSeal(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): void {
  out.set(gcm(key, iv, aad).encrypt(plaintext), offset)
}

/** Write the plaintext into `out` at `offset`; false (nothing written) when the tag does not verify. */
export function gcmOpen(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, sealed: Uint8Array, out: Uint8Array, offset: number): boolean {
  let opened: Uint8Array
  try {
    opened = gcm(key, iv, aad).decrypt(sealed)
  } catch {
    return false
  }
  out.set(opened, offset)
  opened.fill(0)
  return true
}

export function hkdfAll(hash: HashName, ikm: Uint8Array, salt: Uint8Array, outputs: readonly HkdfOutput[]): Uint8Array[] {
  return outputs.map(({ info, length }) => hkdf(HASHES[hash], ikm, salt, info, length))
}

export function digest(hash: HashName, data: Uint8Array): Uint8Array {
  return HASHES[hash](data)
}
