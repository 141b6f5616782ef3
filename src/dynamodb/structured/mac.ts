import { hmac } from '@noble/hashes/hmac.js'
import { sha384, sha512 } from '@noble/hashes/sha2.js'
import type { CryptoBackend } from '../../backend/types.js'

/** HMAC-SHA384 or -SHA512 on the backend's own HMAC where it has one (node:crypto, several times faster), else @noble's. */
export function itemHmac(backend: CryptoBackend, hash: 'sha384' | 'sha512', key: Uint8Array, data: Uint8Array): Uint8Array {
  return backend.hmac?.(hash, key, data) ?? hmac(hash === 'sha384' ? sha384 : sha512, key, data)
}
