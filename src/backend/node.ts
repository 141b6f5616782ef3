import {
  KeyObject,
  constants,
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  createSign,
  createVerify,
  generateKeyPair,
  generateKeyPairSync,
  hkdfSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto'
import { ConfigurationError, KeyringError } from '../errors.js'
import type { CurveName } from '../suites.js'
import { pkcs1DecryptImplicitRejection } from './node-pkcs1.js'
import type { AeadKey, CryptoBackend, RsaPadding, SigningKeyPair } from './types.js'

const GCM_BY_KEY_LENGTH: Record<number, 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm'> = {
  16: 'aes-128-gcm',
  24: 'aes-192-gcm',
  32: 'aes-256-gcm',
}

class NodeAeadKey implements AeadKey {
  private readonly algorithm: 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm'
  private readonly key: KeyObject

  constructor(key: Uint8Array) {
    const algorithm = GCM_BY_KEY_LENGTH[key.length]
    if (algorithm === undefined) throw new ConfigurationError(`AES-GCM keys are 16, 24 or 32 bytes; got ${key.length}.`)
    this.algorithm = algorithm
    this.key = createSecretKey(key)
  }

  seal(iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): void {
    const cipher = createCipheriv(this.algorithm, this.key, iv, { authTagLength: 16 })
    cipher.setAAD(aad)
    const ciphertext = cipher.update(plaintext)
    out.set(ciphertext, offset)
    cipher.final()
    out.set(cipher.getAuthTag(), offset + ciphertext.length)
  }

  open(iv: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, out: Uint8Array, offset: number): boolean {
    const decipher = createDecipheriv(this.algorithm, this.key, iv, { authTagLength: 16 })
    decipher.setAAD(aad)
    decipher.setAuthTag(tag)
    out.set(decipher.update(ciphertext), offset)
    try {
      decipher.final()
      return true
    } catch {
      return false
    }
  }
}

// SubjectPublicKeyInfo prefixes for a compressed point: SEQUENCE { algorithm id-ecPublicKey + curve, BIT STRING }.
// Wrapping the point this way lets OpenSSL decompress and validate it natively.
const SPKI_PREFIX: Record<CurveName, Uint8Array> = {
  'P-256': Uint8Array.from(Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex')),
  'P-384': Uint8Array.from(Buffer.from('3046301006072a8648ce3d020106052b81040022033200', 'hex')),
}
const COMPRESSED_POINT_LENGTH: Record<CurveName, number> = { 'P-256': 33, 'P-384': 49 }
const SIGNATURE_HASH: Record<CurveName, string> = { 'P-256': 'sha256', 'P-384': 'sha384' }

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
    else throw new TypeError(`expected a PEM string or KeyObject, got ${typeof key}`)
    if (keyObject.asymmetricKeyType !== 'rsa') throw new TypeError(`expected an RSA key, got ${keyObject.asymmetricKeyType ?? keyObject.type}`)
    if (keyObject.type !== kind) throw new TypeError(`expected a ${kind} key, got a ${keyObject.type} key`)
    return keyObject
  } catch (error) {
    // The cause may quote the input; a private PEM must never reach the message.
    throw new ConfigurationError(`The RSA ${kind} key could not be read: ${error instanceof TypeError ? error.message : 'invalid key encoding'}.`)
  }
}

function toSigningKeyPair(publicKey: KeyObject, privateKey: KeyObject): SigningKeyPair {
  const jwk = publicKey.export({ format: 'jwk' })
  const x = Buffer.from(jwk.x as string, 'base64url')
  const y = Buffer.from(jwk.y as string, 'base64url')
  const point = new Uint8Array(1 + x.length)
  point[0] = 0x02 | ((y[y.length - 1] as number) & 1)
  point.set(x, 1)
  return { privateKey, publicKey: point }
}

/**
 * Ephemeral signing keys, made ahead of need on libuv's thread pool. A P-384 key pair costs about as
 * much as the signature itself, so taking it off the encrypt path nearly halves a small signed
 * message's latency. Each pair is handed out once; the pool starts filling only after a curve is first
 * used, so importing the library starts no work.
 */
const SIGNING_KEY_POOL_SIZE = 2
const signingKeyPools = new Map<CurveName, { ready: SigningKeyPair[]; pending: number }>()

function takeSigningKey(curve: CurveName): SigningKeyPair {
  let pool = signingKeyPools.get(curve)
  if (pool === undefined) signingKeyPools.set(curve, (pool = { ready: [], pending: 0 }))
  const pair = pool.ready.shift()
  const refilling = pool
  while (refilling.ready.length + refilling.pending < SIGNING_KEY_POOL_SIZE) {
    refilling.pending++
    generateKeyPair('ec', { namedCurve: curve }, (error, publicKey, privateKey) => {
      refilling.pending--
      if (error === null) refilling.ready.push(toSigningKeyPair(publicKey, privateKey))
    })
  }
  if (pair !== undefined) return pair
  const fresh = generateKeyPairSync('ec', { namedCurve: curve })
  return toSigningKeyPair(fresh.publicKey, fresh.privateKey)
}

/** The CryptoBackend on node:crypto (OpenSSL, AES-NI). */
export const nodeBackend: CryptoBackend = {
  name: 'node',
  randomBytes(length) {
    const bytes = randomBytes(length)
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length)
  },
  hkdf: (hash, ikm, salt, info, length) => new Uint8Array(hkdfSync(hash, ikm, salt, info, length)),
  aeadKey: (key) => new NodeAeadKey(key),
  timingSafeEqual: (a, b) => a.length === b.length && timingSafeEqual(a, b),

  generateSigningKey: takeSigningKey,
  createSigner(curve, privateKey) {
    const signer = createSign(SIGNATURE_HASH[curve])
    return {
      update: (bytes) => void signer.update(bytes),
      sign: () => new Uint8Array(signer.sign({ key: privateKey as KeyObject, dsaEncoding: 'der' })),
    }
  },
  importVerificationKey(curve, compressedPoint) {
    if (compressedPoint.length !== COMPRESSED_POINT_LENGTH[curve] || (compressedPoint[0] !== 2 && compressedPoint[0] !== 3)) {
      throw new TypeError(`not a compressed ${curve} point`)
    }
    const prefix = SPKI_PREFIX[curve]
    const der = new Uint8Array(prefix.length + compressedPoint.length)
    der.set(prefix, 0)
    der.set(compressedPoint, prefix.length)
    return createPublicKey({ key: Buffer.from(der.buffer), format: 'der', type: 'spki' })
  },
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
    if (plaintext.length !== expectedLength) {
      plaintext.fill(0)
      throw new KeyringError(`The RSA-wrapped data key is ${plaintext.length} bytes; the suite needs ${expectedLength}.`)
    }
    return plaintext
  },
}
