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
  createVerify,
  createHmac,
  getCiphers,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  randomFillSync,
  timingSafeEqual,
  verify,
  webcrypto,
} from 'node:crypto'
import { Buffer } from 'node:buffer'
import { isCryptoKey } from 'node:util/types'
import { checkRsaEncryptBits, fromPem } from './der.js'
import { isEncryptedPem } from './encrypted-pem.js'
import { ConfigurationError, KeyringError, UnsupportedOperationError } from '../errors.js'
import { sealBody } from '../sync-body.js'
import { copyBytes } from '../format/bytes.js'
import { COMPRESSED_POINT_LENGTH, createSigner, signedStreamSeen, signMessage, startSignature, takeSigningKey } from './node-signing.js'
import { checkSignatureKey, SIGNATURE_HASH } from './node-ec-keys.js'
import { startStreamDigest } from './signing-thread.js'
import { requireUnwrappedKeyLength } from './unwrapped-key.js'
import type { CurveName, HashName } from '../suites.js'
import { pkcs1DecryptImplicitRejection } from './node-pkcs1.js'
import { recentKeys } from './recent-keys.js'
import type { AeadKey, CryptoBackend, HkdfOutput, RsaPadding } from './types.js'
import type { Bytes } from '../types.js'
import { isBytes } from '../is-bytes.js'

const GCM_BY_KEY_LENGTH: Record<number, 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm'> = {
  16: 'aes-128-gcm',
  24: 'aes-192-gcm',
  32: 'aes-256-gcm',
}

let aes192Gcm: boolean | undefined

/**
 * Some runtimes' node:crypto has no AES-192-GCM (Deno's, at 2.9): a 24-byte key is then refused by name rather
 * than with the platform's "Unknown cipher" at its first use. Asked once, at the first 24-byte key.
 */
function checkAes192Gcm(): void {
  aes192Gcm ??= getCiphers().includes('aes-192-gcm')
  if (aes192Gcm) return
  throw new UnsupportedOperationError(
    "This runtime's node:crypto has no aes-192-gcm, which 24-byte AES keys need: the suites 0x0046, 0x0146 and 0x0346 and " +
      'raw AES keyrings with 24-byte wrapping keys. kms-envelope/browser, which runs on WebCrypto, has it.',
  )
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
    if (algorithm === 'aes-192-gcm') checkAes192Gcm()
    this.algorithm = algorithm
    // copyBytes, not slice(): a keyring on node:crypto may hand over a Buffer, whose slice() shares its memory, and
    // the data key it came from is zeroed once used.
    this.#key = adopt ? key : copyBytes(key)
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

  openDetached(iv: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array): Bytes | undefined {
    const decipher = this.decipher(iv, aad, tag)
    const output = decipher.update(ciphertext)
    // A plain Uint8Array over the cipher's own buffer (a Buffer's slice would be a view, unlike everywhere else).
    // Where that buffer is longer than the output (Bun's has one byte more, of stale memory), a copy of the output
    // alone, so that the plaintext's `.buffer` holds nothing else.
    const own = output.buffer.byteLength === output.length
    const plaintext = own ? new Uint8Array(output.buffer, 0, output.length) : new Uint8Array(output)
    if (!own) output.fill(0)
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

const HASH_LENGTH: Record<HashName, number> = { sha256: 32, sha384: 48, sha512: 64 }

const OAEP_HASH: Record<Exclude<RsaPadding, 'PKCS1'>, string> = {
  'OAEP-SHA1': 'sha1',
  'OAEP-SHA256': 'sha256',
  'OAEP-SHA384': 'sha384',
  'OAEP-SHA512': 'sha512',
}

/**
 * RSA-OAEP WebCrypto CryptoKeys are used through Node's WebCrypto, as the browser build uses them: node:crypto takes a
 * non-extractable one only by a conversion Node deprecates (DEP0204), and WebCrypto keeps each key to its hash.
 */
const WEB_OAEP_HASH: Record<Exclude<RsaPadding, 'PKCS1'>, string> = {
  'OAEP-SHA1': 'SHA-1',
  'OAEP-SHA256': 'SHA-256',
  'OAEP-SHA384': 'SHA-384',
  'OAEP-SHA512': 'SHA-512',
}

/** The public half of an extractable private CryptoKey, and the hash that key was imported for. */
const derivedHashes = new WeakMap<KeyObject, string>()

/** What a non-extractable private CryptoKey's public half is: none can be derived. */
const UNDERIVABLE = Symbol('the public half of a non-extractable CryptoKey')

function checkedCryptoKey(key: webcrypto.CryptoKey, kind: 'public' | 'private'): webcrypto.CryptoKey {
  const { name } = key.algorithm
  if (name !== 'RSA-OAEP' || key.type !== kind) throw new TypeError(`expected an RSA-OAEP ${kind} CryptoKey, got an ${name} ${key.type} one`)
  return key
}

/** Refuses a padding other than the OAEP of the hash the key was imported for, as WebCrypto does, but saying so. */
function checkHash(hash: string, kind: string, padding: RsaPadding): void {
  if (padding === 'PKCS1') throw new ConfigurationError(`The RSA ${kind} CryptoKey was imported for RSA-OAEP with ${hash}; PKCS1 padding cannot use it.`)
  if (WEB_OAEP_HASH[padding] !== hash) throw new ConfigurationError(`The RSA ${kind} CryptoKey was imported for ${hash}; this padding needs ${WEB_OAEP_HASH[padding]}.`)
}

const keyHash = (key: webcrypto.CryptoKey): string => (key.algorithm as webcrypto.RsaHashedKeyAlgorithm).hash.name

async function webRsaEncrypt(key: webcrypto.CryptoKey, padding: RsaPadding, plaintext: Uint8Array): Promise<Uint8Array> {
  checkHash(keyHash(key), 'public', padding)
  checkRsaEncryptBits((key.algorithm as webcrypto.RsaHashedKeyAlgorithm).modulusLength, 'The RSA public key')
  return new Uint8Array(await webcrypto.subtle.encrypt({ name: 'RSA-OAEP' }, key, plaintext))
}

async function webRsaDecrypt(key: webcrypto.CryptoKey, padding: RsaPadding, ciphertext: Uint8Array, expectedLength: number): Promise<Uint8Array> {
  checkHash(keyHash(key), 'private', padding)
  let plaintext: Uint8Array
  try {
    plaintext = new Uint8Array(await webcrypto.subtle.decrypt({ name: 'RSA-OAEP' }, key, ciphertext))
  } catch (error) {
    throw new KeyringError(`RSA ${padding} decryption of the data key failed.`, { cause: error })
  }
  return requireUnwrappedKeyLength(plaintext, expectedLength)
}

/** A KeyObject, or an RSA-OAEP CryptoKey as it is (see webRsaEncrypt). */
function asRsaKey(key: unknown, kind: 'public' | 'private'): KeyObject | webcrypto.CryptoKey {
  try {
    let keyObject: KeyObject
    if (isCryptoKey(key)) return checkedCryptoKey(key, kind)
    if (key instanceof KeyObject) keyObject = key
    else if (typeof key === 'string') {
      // createPublicKey takes a private key PEM too, and derives its public half: refused, as in the browser build.
      const label = /-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----/.exec(key)?.[1]
      if (kind === 'public' && label !== undefined) throw new TypeError(`a "${label}" PEM block is not a public key`)
      keyObject = kind === 'public' ? createPublicKey(key) : createPrivateKey(key)
    }
    else if (isBytes(key)) {
      // DER as KMS GetPublicKey returns it (SPKI), or PKCS#8 for a private key.
      const der = Buffer.from(key.buffer, key.byteOffset, key.byteLength)
      keyObject = kind === 'public' ? createPublicKey({ key: der, format: 'der', type: 'spki' }) : createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
    } else throw new TypeError(`expected a PEM string, DER bytes, a KeyObject or an RSA-OAEP CryptoKey, got ${typeof key}`)
    if (keyObject.asymmetricKeyType !== 'rsa') throw new TypeError(`expected an RSA key, got ${keyObject.asymmetricKeyType ?? keyObject.type}`)
    if (keyObject.type !== kind) throw new TypeError(`expected a ${kind} key, got a ${keyObject.type} key`)
    return keyObject
  } catch (error) {
    // The cause may quote the input; a private PEM must never reach the message.
    const reason = isEncryptedPem(key)
      ? 'it is encrypted with a passphrase; pass crypto.createPrivateKey({ key, passphrase }) instead'
      : error instanceof TypeError
        ? error.message
        : typeof key === 'string'
          ? pemProblem(key, kind)
          : 'invalid key encoding'
    throw new ConfigurationError(`The RSA ${kind} key could not be read: ${reason}.`)
  }
}

/**
 * Why node:crypto refused a PEM string, in the browser build's words where they apply (node:crypto says only that
 * it could not decode it): no PEM block at all (a file name, say), one that is not base64, or one of another kind.
 */
function pemProblem(pem: string, kind: 'public' | 'private'): string {
  let label: string
  try {
    ;({ label } = fromPem(pem))
  } catch (error) {
    return (error as Error).message
  }
  return kind === 'private' && !label.endsWith('PRIVATE KEY') ? `a "${label}" PEM block is not a private key` : 'invalid key encoding'
}

/** CSPRNG output drawn in blocks: one OpenSSL call serves many data keys, IVs and message IDs. */
const RANDOM_BLOCK = 4096
let randomBlock = new Uint8Array(0)
let randomOffset = 0

function pooledRandomBytes(length: number): Bytes {
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
    return new Uint8Array(buffer.buffer as ArrayBuffer, buffer.byteOffset, length) // an unpooled Buffer has an ArrayBuffer of its own
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
  checkSignatureKey,
  generateSigningKey: takeSigningKey,
  createSigner,
  signMessage,
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
  streamDigest: startStreamDigest,
  signedStreamSeen,

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

  importRsaPublicKey: (key) => asRsaKey(key, 'public'),
  importRsaPrivateKey: (key) => asRsaKey(key, 'private'),
  rsaPublicFromPrivate(privateKey) {
    if (!isCryptoKey(privateKey)) return createPublicKey(privateKey as KeyObject)
    // Converting an extractable CryptoKey is not deprecated; a non-extractable one's public half cannot be had.
    if (!privateKey.extractable) return UNDERIVABLE
    const publicKey = createPublicKey(KeyObject.from(privateKey))
    derivedHashes.set(publicKey, keyHash(privateKey))
    return publicKey
  },
  // CryptoKeys are compared by wrapping a value with one and unwrapping it with the other (checkRsaPair).
  rsaKeysArePair: (publicKey, privateKey) =>
    isCryptoKey(publicKey) || isCryptoKey(privateKey) ? undefined : createPublicKey(privateKey as KeyObject).equals(publicKey as KeyObject),
  rsaEncrypt(publicKey, padding, plaintext) {
    if (isCryptoKey(publicKey)) return webRsaEncrypt(publicKey, padding, plaintext)
    if (publicKey === UNDERIVABLE) {
      throw new ConfigurationError('The RSA private CryptoKey is not extractable, so its public half cannot be derived to encrypt with: give the keyring its publicKey too.')
    }
    const key = publicKey as KeyObject
    const derivedFrom = derivedHashes.get(key)
    if (derivedFrom !== undefined) checkHash(derivedFrom, 'private', padding)
    checkRsaEncryptBits(key.asymmetricKeyDetails?.modulusLength ?? 0, 'The RSA public key')
    const options =
      padding === 'PKCS1'
        ? { key, padding: constants.RSA_PKCS1_PADDING }
        : { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[padding] }
    return new Uint8Array(publicEncrypt(options, plaintext))
  },
  rsaDecrypt(privateKey, padding, ciphertext, expectedLength) {
    if (isCryptoKey(privateKey)) return webRsaDecrypt(privateKey, padding, ciphertext, expectedLength)
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
