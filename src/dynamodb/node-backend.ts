// The item format's backend on Node: the Node CryptoBackend, with HMAC and AES-256-CTR from node:crypto.
import { createCipheriv, createHmac } from 'node:crypto'
import { nodeBackend } from '../backend/node.js'
import type { ItemBackend } from './structured/item-backend.js'

export const nodeItemBackend: ItemBackend = {
  ...nodeBackend,
  hmac: (hash, key, data) => createHmac(hash, key).update(data).digest(),
  aesCtr: (key, counter, length) => createCipheriv('aes-256-ctr', key, counter).update(new Uint8Array(length)),
}
