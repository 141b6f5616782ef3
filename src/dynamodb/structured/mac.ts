import { createHmac } from 'node:crypto'

/** HMAC-SHA384 or -SHA512 (node:crypto: the DynamoDB helper is Node's only, as crypt.ts says). */
export function itemHmac(hash: 'sha384' | 'sha512', key: Uint8Array, data: Uint8Array): Uint8Array {
  return createHmac(hash, key).update(data).digest()
}
