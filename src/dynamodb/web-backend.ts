// The item format's backend in browsers, Workers and React Native: the WebCrypto CryptoBackend, with HMAC and
// AES-256-CTR from crypto.subtle, or from @noble (loaded on demand) where there is no crypto.subtle.
import { webCryptoBackend } from '../backend/webcrypto.js'
import { loadNoble, source, subtleCrypto } from '../backend/webcrypto-rsa.js'
import type { ItemBackend } from './structured/item-backend.js'

const WEB_HASH = { sha384: 'SHA-384', sha512: 'SHA-512' } as const

export const webItemBackend: ItemBackend = {
  ...webCryptoBackend,
  async hmac(hash, key, data) {
    const subtle = subtleCrypto()
    if (subtle === undefined) return (await loadNoble()).hmac(hash, key, data)
    const imported = await subtle.importKey('raw', source(key), { name: 'HMAC', hash: WEB_HASH[hash] }, false, ['sign'])
    return new Uint8Array(await subtle.sign('HMAC', imported, source(data)))
  },
  async aesCtr(key, counter, length) {
    const subtle = subtleCrypto()
    if (subtle === undefined) return (await loadNoble()).aesCtr(key, counter, length)
    const imported = await subtle.importKey('raw', source(key), 'AES-CTR', false, ['encrypt'])
    return new Uint8Array(await subtle.encrypt({ name: 'AES-CTR', counter: source(counter), length: 128 }, imported, new Uint8Array(length)))
  },
}
