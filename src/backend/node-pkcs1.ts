/**
 * RSAES-PKCS1-v1_5 decryption with implicit rejection, for the raw RSA keyring's "PKCS1" padding.
 *
 * Why: since 20.11, Node refuses `privateDecrypt` with `RSA_PKCS1_PADDING` (CVE-2023-46809, the Marvin
 * attack) unless the process runs with `--security-revert`, which a library cannot demand. Raw RSA
 * (`RSA_NO_PADDING`) is still allowed, so we do the padding check here, the way OpenSSL 3.2+ does:
 * a bad padding does not raise an error but yields a synthetic key derived from the private key and the
 * ciphertext (draft-irtf-cfrg-rsa-guidance, "implicit rejection"). The caller then fails later with an
 * ordinary authentication error, and the two outcomes cannot be told apart by error type or output length.
 *
 * Guarantees, and their limits: the RSA operation itself is blinded by OpenSSL. The padding check and the
 * final selection run over the whole fixed-length buffer with bitwise masks: no branch, early exit or
 * secret-dependent index on decrypted bytes. Both the real and the synthetic key are always computed.
 * JavaScript engines give no hard constant-time guarantee, so this is best effort, not a proof.
 */
import { constants, createHash, createHmac, privateDecrypt, type KeyObject } from 'node:crypto'
import { Buffer } from 'node:buffer'
import { KeyringError } from '../errors.js'
import { byteCount } from '../byte-count.js'
import { rsaPrivateKeyParts } from './der-private.js'

/** Minimum PKCS#1 v1.5 overhead: 0x00 0x02, eight nonzero padding bytes, 0x00 separator. */
const PKCS1_OVERHEAD = 11
const SYNTHETIC_LABEL = new TextEncoder().encode('kms-envelope PKCS1 implicit rejection')

/** SHA-256 of the private exponent, per key. Only the hash is kept: the raw exponent is dropped at once. */
const exponentHashes = new WeakMap<KeyObject, Buffer>()

/** Decrypt an RSAES-PKCS1-v1_5 ciphertext with implicit rejection. Always returns expectedLength bytes. */
export function pkcs1DecryptImplicitRejection(privateKey: KeyObject, ciphertext: Uint8Array, expectedLength: number): Uint8Array {
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'rsa') {
    throw new KeyringError('PKCS1 decryption needs an RSA private key')
  }
  const bits = privateKey.asymmetricKeyDetails?.modulusLength
  if (bits === undefined) throw new KeyringError('Cannot determine the RSA modulus length')
  const k = Math.ceil(bits / 8)
  if (ciphertext.length !== k) {
    throw new KeyringError(`RSA ciphertext is ${byteCount(ciphertext.length)}, expected ${k} (the modulus length)`)
  }
  if (!Number.isInteger(expectedLength) || expectedLength < 1 || expectedLength > k - PKCS1_OVERHEAD) {
    throw new KeyringError(`Expected key length must be an integer from 1 to ${k - PKCS1_OVERHEAD}`)
  }

  let em: Buffer
  try {
    em = privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, ciphertext)
  } catch (cause) {
    // Depends only on public data (e.g. ciphertext >= modulus), so an explicit error leaks nothing.
    throw new KeyringError('RSA decryption failed', { cause })
  }
  if (em.length !== k) throw new KeyringError('RSA decryption returned an unexpected length')

  // Computed unconditionally, before looking at the padding, so its cost does not depend on it.
  const synthetic = syntheticKey(privateKey, k, ciphertext, expectedLength)

  // EM = 0x00 || 0x02 || PS (>= 8 nonzero bytes) || 0x00 || M. Find the first zero after the 0x02
  // without stopping early: `found` latches, and `zeroIndex` only takes the first hit.
  let good = isZero(em[0]!) & isZero(em[1]! ^ 0x02)
  let found = 0
  let zeroIndex = 0
  for (let i = 2; i < k; i++) {
    const hit = isZero(em[i]!) & ~found & 1
    zeroIndex = select(hit, i, zeroIndex)
    found |= hit
  }
  // With expectedLength <= k - 11 the length check alone implies a separator at index >= 10; the first
  // two checks are redundant but kept so the code reads as the spec and survives a change of bounds.
  good &= found
  good &= greaterOrEqual(zeroIndex, 2 + 8)
  good &= isZero(k - zeroIndex - 1 - expectedLength)

  // When the padding is good, M is exactly the last expectedLength bytes: a public offset, so the copy
  // does not depend on where the separator was.
  const mask = -good & 0xff
  const out = new Uint8Array(expectedLength)
  const offset = k - expectedLength
  for (let i = 0; i < expectedLength; i++) {
    out[i] = (em[offset + i]! & mask) | (synthetic[i]! & ~mask)
  }
  em.fill(0)
  synthetic.fill(0)
  return out
}

/**
 * KDK = HMAC-SHA256(SHA-256(I2OSP(d, k)), C), then a counter-mode PRF as in the draft and OpenSSL:
 * T(i) = HMAC-SHA256(KDK, I2OSP(i, 2) || label || I2OSP(8 * length, 2)). The length is fixed by the caller,
 * so unlike OpenSSL we need no PRF-chosen synthetic length; our own label keeps the outputs separate.
 */
function syntheticKey(privateKey: KeyObject, k: number, ciphertext: Uint8Array, length: number): Buffer {
  const kdk = createHmac('sha256', exponentHash(privateKey, k)).update(ciphertext).digest()
  const suffix = Buffer.alloc(2)
  suffix.writeUInt16BE(length * 8)
  const counter = Buffer.alloc(2)
  // Written block by block into a buffer of its own: Buffer.concat and Buffer.from would take it from Node's
  // shared pool of small buffers, whose memory is handed out again uncleared.
  const output = Buffer.alloc(length)
  for (let i = 0; i * 32 < length; i++) {
    counter.writeUInt16BE(i)
    const block = createHmac('sha256', kdk).update(counter).update(SYNTHETIC_LABEL).update(suffix).digest()
    block.copy(output, i * 32)
    block.fill(0)
  }
  kdk.fill(0)
  return output
}

function exponentHash(privateKey: KeyObject, k: number): Buffer {
  let hash = exponentHashes.get(privateKey)
  if (hash === undefined) {
    // Read from the key's PKCS#1 DER (RSAPrivateKey: version, modulus, public exponent, private exponent, ...), zeroed
    // after use: a JWK export would leave every part of the private key on the heap as strings, which nothing clears.
    const der = privateKey.export({ type: 'pkcs1', format: 'der' })
    const padded = Buffer.alloc(k)
    try {
      const d = rsaPrivateKeyParts(der).privateExponent
      // A DER INTEGER has one leading zero byte when its top bit is set; without it, d (below the modulus) fits k
      // bytes, padded like OpenSSL's BN_bn2binpad(d, k).
      const unsigned = d[0] === 0 ? d.subarray(1) : d
      padded.set(unsigned, k - unsigned.length)
      hash = createHash('sha256').update(padded).digest()
    } catch (cause) {
      throw new KeyringError('Cannot read the RSA private exponent', { cause })
    } finally {
      der.fill(0)
      padded.fill(0)
    }
    exponentHashes.set(privateKey, hash)
  }
  return hash
}

/** 1 when x (a byte or small integer) is zero, else 0. */
function isZero(x: number): number {
  return ((x | -x) >>> 31) ^ 1
}

/** 1 when a >= b, for non-negative integers below 2^31. */
function greaterOrEqual(a: number, b: number): number {
  return ((a - b) >>> 31) ^ 1
}

/** bit ? a : b, for bit in {0, 1}, without a branch. */
function select(bit: number, a: number, b: number): number {
  const mask = -bit
  return (a & mask) | (b & ~mask)
}
