// The CryptoBackend of the browser build, on WebCrypto. WebCrypto answers asynchronously, so AES-GCM keys
// are AsyncAeadKeys and HKDF and digests return promises; the engine awaits only those. @noble (loaded on
// demand) covers what WebCrypto cannot: AES-192 (Chromium refuses it) and pages without crypto.subtle.
import { UnsupportedOperationError } from '../errors.js'
import { loadOnDemand, loadOnce, onDemandLoaded } from '../load-on-demand.js'
import type { HashName } from '../suites.js'
import type { AsyncAeadKey, CryptoBackend, HkdfOutput } from './types.js'
import type { Bytes } from '../types.js'
import { importRsaPrivateKey, importRsaPublicKey, loadNoble, rsaDecrypt, rsaEncrypt, rsaPublicFromPrivate, source, subtleCrypto } from './webcrypto-rsa.js'

// Loaded on demand, so an application that never needs it does not download it (with code splitting).
const loadNobleEcdsa = /* @__PURE__ */ loadOnce(() => import('./noble-ecdsa.js'))

const WEB_HASH: Record<HashName, string> = { sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' }
/** getRandomValues fills at most this many bytes per call. */
const RANDOM_CHUNK = 65536

function randomBytes(length: number): Bytes {
  const random = globalThis.crypto
  if (typeof random?.getRandomValues !== 'function') throw new UnsupportedOperationError('kms-envelope needs crypto.getRandomValues.')
  const out = new Uint8Array(length)
  for (let offset = 0; offset < length; offset += RANDOM_CHUNK) random.getRandomValues(out.subarray(offset, offset + RANDOM_CHUNK))
  return out
}

/** AES-GCM through crypto.subtle; the key is imported once, and calls may be in flight together. */
class WebCryptoAeadKey implements AsyncAeadKey {
  readonly async = true
  #key: CryptoKey | undefined
  readonly #importing: Promise<CryptoKey>

  constructor(
    private readonly subtle: SubtleCrypto,
    key: Uint8Array,
  ) {
    // Our own copy, zeroed once imported: the caller zeroes its key as soon as this returns. (Made by the
    // constructor: a Buffer's slice(), where this build runs on Node, Bun or Deno, shares its memory.)
    const copy = new Uint8Array(key)
    this.#importing = subtle.importKey('raw', source(copy), 'AES-GCM', false, ['encrypt', 'decrypt'])
    const forget = () => copy.fill(0)
    this.#importing.then((imported) => {
      this.#key = imported
      forget()
    }, forget)
  }

  async seal(iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): Promise<void> {
    const key = this.#key ?? (await this.#importing)
    const sealed = await this.subtle.encrypt({ name: 'AES-GCM', iv: source(iv), additionalData: source(aad), tagLength: 128 }, key, source(plaintext))
    out.set(new Uint8Array(sealed), offset)
  }

  /** In the chunk loaded on demand (webcrypto-open.ts), which every decrypt loads: a page that only encrypts never opens. */
  async open(iv: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, out: Uint8Array, offset: number): Promise<boolean> {
    const key = this.#key ?? (await this.#importing)
    return (onDemandLoaded() ?? (await loadOnDemand())).webCryptoOpen(this.subtle, key, iv, aad, ciphertext, tag, out, offset)
  }
}

async function hkdf(hash: HashName, ikm: Uint8Array, salt: Uint8Array, outputs: readonly HkdfOutput[]): Promise<Uint8Array[]> {
  const subtle = subtleCrypto()
  if (subtle === undefined) return (await loadNoble()).hkdfAll(hash, ikm, salt, outputs)
  const key = await subtle.importKey('raw', source(ikm), 'HKDF', false, ['deriveBits'])
  return Promise.all(
    outputs.map(async ({ info, length }) =>
      new Uint8Array(await subtle.deriveBits({ name: 'HKDF', hash: WEB_HASH[hash], salt: source(salt), info: source(info) }, key, length * 8)),
    ),
  )
}

async function digest(hash: HashName, data: Uint8Array): Promise<Uint8Array> {
  const subtle = subtleCrypto()
  if (subtle === undefined) return (await loadNoble()).digest(hash, data)
  return new Uint8Array(await subtle.digest(WEB_HASH[hash], source(data)))
}

// Streams of signing suites load @noble/curves to sign or verify an incrementally computed digest.
type NobleEcdsa = typeof import('./noble-ecdsa.js')
let nobleEcdsa: NobleEcdsa | undefined

function unsupported(): never {
  throw new UnsupportedOperationError('Stream signatures need loadIncrementalSignatures, and keys this backend made.')
}

/**
 * The CryptoBackend on WebCrypto (browsers, Deno, Node's globalThis.crypto). Signing suites sign and verify
 * whole messages with WebCrypto; streams hash incrementally and sign with @noble/curves, loaded on demand.
 * RSA PKCS1 padding is Node-only.
 */
export const webCryptoBackend: CryptoBackend = {
  name: 'webcrypto',
  randomBytes,
  allocate: (length) => new Uint8Array(length),
  hkdf,
  aeadKey(key) {
    const subtle = subtleCrypto()
    if (subtle !== undefined && key.length !== 24) return new WebCryptoAeadKey(subtle, key)
    // AES-GCM in JavaScript (@noble/ciphers): AES-192 on Chromium, and any key size without crypto.subtle. A copy
    // made by the constructor: a Buffer's slice() (where this build runs on Node, Bun or Deno) shares its memory, and
    // the data key is zeroed after use.
    const copy = new Uint8Array(key)
    return {
      async: true,
      seal: async (iv, aad, plaintext, out, offset) => (await loadNoble()).gcmSeal(copy, iv, aad, plaintext, out, offset),
      open: async (iv, aad, ciphertext, tag, out, offset) => (await loadNoble()).gcmOpen(copy, iv, aad, ciphertext, tag, out, offset),
      dispose: () => void copy.fill(0),
    }
  },
  digest,
  timingSafeEqual(a, b) {
    if (a.length !== b.length) return false
    let difference = 0
    for (let i = 0; i < a.length; i++) difference |= (a[i] as number) ^ (b[i] as number)
    return difference === 0
  },

  incrementalSignatures: false,
  generateSigningKey: async (curve) => (await loadOnDemand()).generateSigningKey(curve),
  async loadIncrementalSignatures() {
    nobleEcdsa ??= await loadNobleEcdsa()
    return true
  },
  createSigner: (curve, privateKey) => nobleEcdsa?.createSigner(curve, privateKey) ?? unsupported(),
  signMessage: async (curve, privateKey, message) => (await loadOnDemand()).signMessage(curve, privateKey, message),
  importVerificationKey: async (curve, compressedPoint) => (await loadOnDemand()).importVerificationKey(curve, compressedPoint),
  createVerifier: (curve, publicKey) => nobleEcdsa?.createVerifier(curve, publicKey) ?? unsupported(),
  verifyMessage: async (curve, publicKey, message, signature) => (await loadOnDemand()).verifyMessage(curve, publicKey, message, signature),

  importRsaPublicKey,
  importRsaPrivateKey,
  rsaPublicFromPrivate,
  rsaEncrypt,
  rsaDecrypt,
}
