import {
  KeyObject,
  type DecipherGCM,
  constants,
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  createHash,
  createSecretKey,
  createSign,
  createVerify,
  createHmac,
  generateKeyPair,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  randomFillSync,
  sign,
  timingSafeEqual,
  verify,
  webcrypto,
} from 'node:crypto'
import { ConfigurationError, KeyringError } from '../errors.js'
import { sealBody } from '../sync-body.js'
import { offThreadJobsPending, startOffThreadSignature } from './signing-thread.js'
import { requireUnwrappedKeyLength } from './unwrapped-key.js'
import type { CurveName, HashName } from '../suites.js'
import { pkcs1DecryptImplicitRejection } from './node-pkcs1.js'
import { recentKeys } from './recent-keys.js'
import type { AeadKey, CryptoBackend, HkdfOutput, OffThreadSignature, RsaPadding, SigningKeyPair } from './types.js'

const GCM_BY_KEY_LENGTH: Record<number, 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm'> = {
  16: 'aes-128-gcm',
  24: 'aes-192-gcm',
  32: 'aes-256-gcm',
}

/**
 * An AES-GCM key as its own copy of the key bytes, zeroed by `dispose()`. A small message's key is used two
 * or three times (header tag, one frame), for which making a KeyObject (about 1.6 µs and a native object)
 * costs more than it saves; from the third use on (a long message, a stream) the key is handed to
 * node:crypto as a KeyObject, so each frame's cipher does not copy the key bytes into fresh native memory.
 */
const KEY_OBJECT_FROM_USE = 3

class NodeAeadKey implements AeadKey {
  private readonly algorithm: 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm'
  readonly #key: Uint8Array
  #keyObject: KeyObject | undefined
  #uses = 0

  /** `adopt`: keep `key` itself (see CryptoBackend.adoptAeadKey) rather than a copy. */
  constructor(key: Uint8Array, adopt = false) {
    const algorithm = GCM_BY_KEY_LENGTH[key.length]
    if (algorithm === undefined) throw new ConfigurationError(`AES-GCM keys are 16, 24 or 32 bytes; got ${key.length}.`)
    this.algorithm = algorithm
    this.#key = adopt ? key : key.slice()
  }

  /** Zeroes the key bytes; a KeyObject made from them is dropped (node:crypto clears its copy when freed). */
  dispose(): void {
    this.#key.fill(0)
    this.#keyObject = undefined
  }

  #cipherKey(): Uint8Array | KeyObject {
    if (this.#keyObject !== undefined) return this.#keyObject
    if (++this.#uses < KEY_OBJECT_FROM_USE) return this.#key
    return (this.#keyObject = createSecretKey(this.#key))
  }

  seal(iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): void {
    const cipher = createCipheriv(this.algorithm, this.#cipherKey(), iv, { authTagLength: 16 })
    cipher.setAAD(aad)
    // A header tag has no plaintext: no update call (a round trip into node:crypto) for it.
    if (plaintext.length > 0) out.set(cipher.update(plaintext), offset)
    cipher.final()
    out.set(cipher.getAuthTag(), offset + plaintext.length)
  }

  open(iv: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, out: Uint8Array, offset: number): boolean {
    const decipher = this.decipher(iv, aad, tag)
    if (ciphertext.length > 0) out.set(decipher.update(ciphertext), offset)
    return verified(decipher)
  }

  openDetached(iv: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array): Uint8Array | undefined {
    const decipher = this.decipher(iv, aad, tag)
    const output = decipher.update(ciphertext)
    // A plain Uint8Array over the cipher's own buffer (a Buffer's slice would be a view, unlike everywhere else).
    const plaintext = new Uint8Array(output.buffer, output.byteOffset, output.length)
    if (verified(decipher)) return plaintext
    plaintext.fill(0)
    return undefined
  }

  private decipher(iv: Uint8Array, aad: Uint8Array, tag: Uint8Array): DecipherGCM {
    const decipher = createDecipheriv(this.algorithm, this.#cipherKey(), iv, { authTagLength: 16 })
    decipher.setAAD(aad)
    decipher.setAuthTag(tag)
    return decipher
  }
}

/** Whether the tag verified (final throws when it does not). */
function verified(decipher: DecipherGCM): boolean {
  try {
    decipher.final()
    return true
  } catch {
    return false
  }
}

const COMPRESSED_POINT_LENGTH: Record<CurveName, number> = { 'P-256': 33, 'P-384': 49 }
const SIGNATURE_HASH: Record<CurveName, string> = { 'P-256': 'sha256', 'P-384': 'sha384' }
const HASH_LENGTH: Record<HashName, number> = { sha256: 32, sha384: 48, sha512: 64 }

const OAEP_HASH: Record<Exclude<RsaPadding, 'PKCS1'>, string> = {
  'OAEP-SHA1': 'sha1',
  'OAEP-SHA256': 'sha256',
  'OAEP-SHA384': 'sha384',
  'OAEP-SHA512': 'sha512',
}

function asKeyObject(key: unknown, kind: 'public' | 'private'): KeyObject {
  try {
    let keyObject: KeyObject
    if (key instanceof KeyObject) keyObject = key
    else if (typeof key === 'string') keyObject = kind === 'public' ? createPublicKey(key) : createPrivateKey(key)
    else if (key instanceof Uint8Array) {
      // DER as KMS GetPublicKey returns it (SPKI), or PKCS#8 for a private key.
      const der = Buffer.from(key.buffer, key.byteOffset, key.byteLength)
      keyObject = kind === 'public' ? createPublicKey({ key: der, format: 'der', type: 'spki' }) : createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
    } else throw new TypeError(`expected a PEM string, DER bytes or a KeyObject, got ${typeof key}`)
    if (keyObject.asymmetricKeyType !== 'rsa') throw new TypeError(`expected an RSA key, got ${keyObject.asymmetricKeyType ?? keyObject.type}`)
    if (keyObject.type !== kind) throw new TypeError(`expected a ${kind} key, got a ${keyObject.type} key`)
    return keyObject
  } catch (error) {
    // The cause may quote the input; a private PEM must never reach the message.
    throw new ConfigurationError(`The RSA ${kind} key could not be read: ${error instanceof TypeError ? error.message : 'invalid key encoding'}.`)
  }
}

/** Compress the uncompressed point that ends an SPKI encoding: 0x02/0x03 by the parity of y, then x. */
function compressSpkiPoint(spki: Uint8Array, curve: CurveName): Uint8Array {
  const coordinateLength = COMPRESSED_POINT_LENGTH[curve] - 1
  const point = spki.subarray(spki.length - 1 - 2 * coordinateLength)
  const compressed = new Uint8Array(1 + coordinateLength)
  compressed[0] = 0x02 | ((point[point.length - 1] as number) & 1)
  compressed.set(point.subarray(1, 1 + coordinateLength), 1)
  return compressed
}

/**
 * EC key pairs with the public half as SPKI DER and the private half as a KeyObject. Node accepts an encoding
 * for one half only; its typings want both, hence these narrower signatures.
 */
interface SpkiPairOptions {
  readonly namedCurve: string
  readonly publicKeyEncoding: { readonly type: 'spki'; readonly format: 'der' }
}
const generateSpkiPair = generateKeyPair as unknown as (
  type: 'ec',
  options: SpkiPairOptions,
  callback: (error: Error | null, spki: Buffer, privateKey: KeyObject) => void,
) => void
const generateSpkiPairSync = generateKeyPairSync as unknown as (type: 'ec', options: SpkiPairOptions) => { publicKey: Buffer; privateKey: KeyObject }
const spkiPairOptions = (curve: CurveName): SpkiPairOptions => ({ namedCurve: curve, publicKeyEncoding: { type: 'spki', format: 'der' } })

function generateInBackground(curve: CurveName): Promise<SigningKeyPair> {
  return new Promise((resolve, reject) => {
    // The SPKI encoding is made on the thread pool too. (Exporting a freshly generated key as JWK on
    // the main thread can deadlock Node 20 when a GC frees the key-generation job meanwhile.)
    generateSpkiPair('ec', spkiPairOptions(curve), (error, spki, privateKey) => {
      if (error !== null) reject(error)
      else resolve({ privateKey, publicKey: compressSpkiPoint(spki, curve) })
    })
  })
}

/**
 * Ephemeral signing keys, made ahead of need. A P-384 key pair costs about as much as the signature itself,
 * so making the next one while this message is signed nearly halves a small signed message's latency, and the
 * main thread never waits for key generation. Each pair is handed out once; the pool starts only after a curve
 * is first used, so importing starts no work.
 *
 * A pool is topped up once its message knows how it will be signed (`startSignature` below), or on the next
 * turn of the event loop at the latest. Signed inline, the main thread is busy: the keys are made on libuv's
 * thread pool beside it. Signed on the helper thread, the main thread has sealed the frames and would only wait
 * for the signature: it makes one key itself meanwhile. A key made on libuv's pool at that moment would compete
 * with the helper thread and the frames for the CPUs, and delayed a 1 MiB message by 15-20% on two vCPUs.
 */
const SIGNING_KEY_POOL_SIZE = 2
const signingKeyPools = new Map<CurveName, Promise<SigningKeyPair>[]>()
/** Curves whose pool has handed out keys since it was last topped up. */
const shortPools = new Set<CurveName>()
let topUpScheduled = false

/** How many spare signing keys (pool top-ups) were made on libuv's thread pool and on the calling thread (tests). */
export const signingKeysMade = { inBackground: 0, inline: 0 }

function takeSigningKey(curve: CurveName): Promise<SigningKeyPair> {
  let pool = signingKeyPools.get(curve)
  if (pool === undefined) signingKeyPools.set(curve, (pool = []))
  const next = pool.shift() ?? generateInBackground(curve)
  shortPools.add(curve)
  if (!topUpScheduled) {
    topUpScheduled = true
    setImmediate(topUpInBackground)
  }
  return next
}

/** Resolves once every key in the pools has been made (tests). */
export function signingKeysSettled(): Promise<unknown> {
  return Promise.allSettled([...signingKeyPools.values()].flat())
}

/** Fill every short pool with keys made on libuv's thread pool. */
function topUpInBackground(): void {
  topUpScheduled = false
  for (const curve of shortPools) {
    const pool = signingKeyPools.get(curve) as Promise<SigningKeyPair>[]
    while (pool.length < SIGNING_KEY_POOL_SIZE) {
      const job = generateInBackground(curve)
      job.catch(() => undefined) // a failed spare surfaces only if it is taken
      pool.push(job)
      signingKeysMade.inBackground++
    }
  }
  shortPools.clear()
}

/** Add one key made on this thread to a short pool (the rest are made by `topUpInBackground`). */
function topUpOneInline(curve: CurveName): void {
  const pool = signingKeyPools.get(curve)
  if (pool === undefined || pool.length >= SIGNING_KEY_POOL_SIZE) return
  let pair: SigningKeyPair
  try {
    const { publicKey, privateKey } = generateSpkiPairSync('ec', spkiPairOptions(curve))
    pair = { privateKey, publicKey: compressSpkiPoint(publicKey, curve) }
  } catch {
    return // made on the thread pool instead, where a failure surfaces when the key is taken
  }
  pool.push(Promise.resolve(pair))
  signingKeysMade.inline++
}

/**
 * `sealBody`'s offer of the helper thread, with the pools topped up where it costs least (see above). Each
 * message is sealed within one turn, so this is called once the message's key is taken.
 */
function startSignature(curve: CurveName, privateKey: unknown, signedLength: number): OffThreadSignature | undefined {
  const job = startOffThreadSignature(curve, privateKey, signedLength)
  if (job === undefined) {
    topUpInBackground()
    return undefined
  }
  return {
    publish: job.publish,
    abandon: job.abandon,
    finish() {
      // The frames are sealed. Alone on the helper thread, this message's hash and signature take longer than
      // a key pair; with other jobs queued there, this thread has their frames to seal instead.
      if (offThreadJobsPending() === 1) topUpOneInline(curve)
      topUpInBackground()
      return job.finish()
    },
  }
}

/** CSPRNG output drawn in blocks: one OpenSSL call serves many data keys, IVs and message IDs. */
const RANDOM_BLOCK = 4096
let randomBlock = new Uint8Array(0)
let randomOffset = 0

function pooledRandomBytes(length: number): Uint8Array {
  if (length > RANDOM_BLOCK / 4) return new Uint8Array(randomBytes(length))
  if (randomOffset + length > randomBlock.length) {
    randomBlock = new Uint8Array(RANDOM_BLOCK)
    randomFillSync(randomBlock)
    randomOffset = 0
  }
  const out = randomBlock.slice(randomOffset, randomOffset + length)
  // Each byte is handed out once, and not left behind where a later reader could find a key.
  randomBlock.fill(0, randomOffset, randomOffset + length)
  randomOffset += length
  return out
}

const ZERO_SALTS: Record<HashName, Uint8Array> = { sha256: new Uint8Array(32), sha384: new Uint8Array(48), sha512: new Uint8Array(64) }

/** HKDF-Expand's one-byte block counters, made once. */
const COUNTERS = Array.from({ length: 255 }, (_, index) => Uint8Array.of(index + 1))

/**
 * RFC 5869 on HMAC objects: about twice as fast as hkdfSync for the short keys used here. The first block
 * has no previous one to feed. An output of one block is that block's own digest buffer, its unused tail
 * zeroed (no second buffer and copy).
 */
function hkdf(hash: HashName, ikm: Uint8Array, salt: Uint8Array, outputs: readonly HkdfOutput[]): Uint8Array[] {
  const hashLength = HASH_LENGTH[hash]
  // An empty salt is HKDF's "hash-length zeros".
  const prk = createHmac(hash, salt.length === 0 ? ZERO_SALTS[hash] : salt).update(ikm).digest()
  const results: Uint8Array[] = []
  for (const { info, length } of outputs) {
    if (length <= hashLength) {
      const block = createHmac(hash, prk).update(info).update(COUNTERS[0] as Uint8Array).digest()
      block.fill(0, length)
      results.push(new Uint8Array(block.buffer, block.byteOffset, length))
      continue
    }
    const out = new Uint8Array(length)
    let previous: Buffer | undefined
    for (let block = 1, offset = 0; offset < length; block++, offset += hashLength) {
      const hmac = createHmac(hash, prk)
      if (previous !== undefined) hmac.update(previous)
      const output = hmac.update(info).update(COUNTERS[block - 1] as Uint8Array).digest()
      out.set(output.subarray(0, Math.min(hashLength, length - offset)), offset)
      previous?.fill(0)
      previous = output
    }
    previous?.fill(0)
    results.push(out)
  }
  prk.fill(0)
  return results
}

const EC_NAMED_CURVE: Record<CurveName, string> = { 'P-256': 'P-256', 'P-384': 'P-384' }

/**
 * Decompresses and checks the point: WebCrypto does it about twice as fast as an SPKI import (about 0.1 ms on
 * P-384, a sixth of the verification), and `recentKeys` spares repeating it for the same signer.
 */
const importVerificationKey = recentKeys((curve: CurveName, compressedPoint: Uint8Array): Promise<KeyObject> => {
  if (compressedPoint.length !== COMPRESSED_POINT_LENGTH[curve] || (compressedPoint[0] !== 2 && compressedPoint[0] !== 3)) {
    return Promise.reject(new TypeError(`not a compressed ${curve} point`))
  }
  return webcrypto.subtle
    .importKey('raw', compressedPoint, { name: 'ECDSA', namedCurve: EC_NAMED_CURVE[curve] }, true, ['verify'])
    .then((imported) => KeyObject.from(imported))
})

/** The CryptoBackend on node:crypto (OpenSSL, AES-NI). */
export const nodeBackend: CryptoBackend = {
  name: 'node',
  randomBytes: pooledRandomBytes,
  allocate(length) {
    const buffer = Buffer.allocUnsafeSlow(length)
    return new Uint8Array(buffer.buffer, buffer.byteOffset, length)
  },
  hkdf,
  aeadKey: (key) => new NodeAeadKey(key),
  // A derived key is already outside the JavaScript heap (a digest's buffer); a small copy would be inside it,
  // and V8 would move it out again (an allocation) the first time node:crypto reads it.
  adoptAeadKey: (key) => new NodeAeadKey(key, true),
  sealBody(session, input) {
    return sealBody(this, session, input, startSignature)
  },
  digest: (hash, data) => new Uint8Array(createHash(hash).update(data).digest()),
  timingSafeEqual: (a, b) => a.length === b.length && timingSafeEqual(a, b),

  incrementalSignatures: true,
  generateSigningKey: takeSigningKey,
  createSigner(curve, privateKey) {
    const signer = createSign(SIGNATURE_HASH[curve])
    return {
      update: (bytes) => void signer.update(bytes),
      sign: () => new Uint8Array(signer.sign({ key: privateKey as KeyObject, dsaEncoding: 'der' })),
    }
  },
  signMessage(curve, privateKey, message) {
    // With a callback, node:crypto hashes and signs on libuv's thread pool.
    return new Promise((resolve, reject) => {
      sign(SIGNATURE_HASH[curve], message, { key: privateKey as KeyObject, dsaEncoding: 'der' }, (error, signature) =>
        error === null ? resolve(new Uint8Array(signature)) : reject(error),
      )
    })
  },
  importVerificationKey,
  createVerifier(curve, publicKey) {
    const verifier = createVerify(SIGNATURE_HASH[curve])
    return {
      update: (bytes) => void verifier.update(bytes),
      verify(signature) {
        try {
          return verifier.verify({ key: publicKey as KeyObject, dsaEncoding: 'der' }, signature)
        } catch {
          return false // undecodable DER is just a signature that does not verify
        }
      },
    }
  },

  verifyMessage(curve, publicKey, message, signature) {
    // With a callback, node:crypto hashes and verifies on libuv's thread pool (after copying the message).
    return new Promise((resolve) => {
      try {
        verify(SIGNATURE_HASH[curve], message, { key: publicKey as KeyObject, dsaEncoding: 'der' }, signature, (error, valid) =>
          resolve(error === null && valid),
        )
      } catch {
        resolve(false)
      }
    })
  },

  importRsaPublicKey: (key) => asKeyObject(key, 'public'),
  importRsaPrivateKey: (key) => asKeyObject(key, 'private'),
  rsaPublicFromPrivate: (privateKey) => createPublicKey(privateKey as KeyObject),
  rsaEncrypt(publicKey, padding, plaintext) {
    const key = publicKey as KeyObject
    const options =
      padding === 'PKCS1'
        ? { key, padding: constants.RSA_PKCS1_PADDING }
        : { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[padding] }
    return new Uint8Array(publicEncrypt(options, plaintext))
  },
  rsaDecrypt(privateKey, padding, ciphertext, expectedLength) {
    const key = privateKey as KeyObject
    if (padding === 'PKCS1') return pkcs1DecryptImplicitRejection(key, ciphertext, expectedLength)
    let plaintext: Uint8Array
    try {
      plaintext = new Uint8Array(privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[padding] }, ciphertext))
    } catch (error) {
      throw new KeyringError(`RSA ${padding} decryption of the data key failed.`, { cause: error })
    }
    return requireUnwrappedKeyLength(plaintext, expectedLength)
  },
}
