// The pure-JavaScript primitives the WebCrypto backend falls back to, loaded only when needed (a dynamic
// import, so a page with WebCrypto never downloads them when bundled with code splitting): AES-192-GCM,
// which Chromium's WebCrypto refuses, and AES-GCM, SHA-2, HKDF and RSA-OAEP encryption where `crypto.subtle`
// is missing (pages served over plain HTTP from another host, JavaScript engines without WebCrypto).
import { ctr, gcm } from '@noble/ciphers/aes.js'
import { hkdf } from '@noble/hashes/hkdf.js'
import { hmac as nobleHmac } from '@noble/hashes/hmac.js'
import { sha1 } from '@noble/hashes/legacy.js'
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js'
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js'
import type { HashName } from '../suites.js'
import type { HkdfOutput } from './types.js'
import type { OaepHash } from './webcrypto-rsa.js'
// No other module of kms-envelope is imported here: a bundler that splits code by the set of chunks that use a
// module (esbuild) would otherwise move the modules this one shares with the first load into a chunk of their own.

export const HASHES = { sha256, sha384, sha512 } as const

/** Write ciphertext || 16-byte tag into `out` at `offset`. */
export function gcmSeal(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, offset: number): void {
  out.set(gcm(key, iv, aad).encrypt(plaintext), offset)
}

/** Write the plaintext into `out` at `offset`; false (nothing written) when the tag does not verify. */
export function gcmOpen(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, out: Uint8Array, offset: number): boolean {
  // @noble takes ciphertext || tag in one array.
  const sealed = new Uint8Array(ciphertext.length + tag.length)
  sealed.set(ciphertext, 0)
  sealed.set(tag, ciphertext.length)
  let opened: Uint8Array
  try {
    opened = gcm(key, iv, aad).decrypt(sealed)
  } catch (error) {
    // A tag that does not verify is an Error ("invalid tag"); an input @noble refuses (a TypeError, say) is the
    // platform failing, and is not to be reported as a message that was altered.
    if (error instanceof TypeError || error instanceof RangeError) throw error
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

/** For DynamoDB items (src/dynamodb/web-backend.ts): HMAC, and the AES-256-CTR stream from a 16-byte counter block. */
export function hmac(hash: HashName, key: Uint8Array, data: Uint8Array): Uint8Array {
  return nobleHmac(HASHES[hash], key, data)
}

export function aesCtr(key: Uint8Array, counter: Uint8Array, length: number): Uint8Array {
  return ctr(key, counter).encrypt(new Uint8Array(length))
}

const OAEP_HASHES = { 'SHA-1': sha1, 'SHA-256': sha256, 'SHA-384': sha384, 'SHA-512': sha512 } as const

/**
 * RSAES-OAEP-ENCRYPT (RFC 8017, section 7.1.1: an empty label, MGF1 over the same hash) of `message` under the
 * RSA public key in `spki`, read and checked when the key was imported; `checkBits` refuses a modulus too small to
 * encrypt with. For pages without crypto.subtle, where the public-key encryption of a data key (KmsRsaKeyring, a
 * RawRsaKeyring's public key) is the one RSA operation JavaScript may do: the exponent is public. What the BigInt
 * arithmetic cannot do is run in constant time or be zeroed after use, as WebCrypto's can; the private-key
 * operations stay with WebCrypto.
 */
export function rsaOaepEncrypt(spki: Uint8Array, hash: OaepHash, message: Uint8Array, checkBits: (bits: number, what: string) => void): Uint8Array {
  const [modulus, exponent] = rsaPublicNumbers(spki)
  const bits = modulus.toString(2).length
  checkBits(bits, 'The RSA public key')
  // An exponent of over 64 bits (OpenSSL's limit; KMS keys use 65537) would make the exponentiation long.
  if (exponent < 3n || exponent % 2n === 0n || exponent >> 64n > 0n || modulus % 2n === 0n) throw new TypeError('The RSA public key is not a valid RSA key.')

  const hashFunction = OAEP_HASHES[hash]
  const hashLength = hashFunction.outputLen
  const length = Math.ceil(bits / 8)
  if (message.length > length - 2 * hashLength - 2) throw new TypeError(`A ${message.length}-byte message is too long for RSA-OAEP with this key and ${hash}.`)
  // EM = 0x00 || maskedSeed || maskedDB, where DB = lHash || PS (zeros) || 0x01 || M.
  const encoded = new Uint8Array(length)
  const seed = encoded.subarray(1, 1 + hashLength)
  const block = encoded.subarray(1 + hashLength)
  block.set(hashFunction(new Uint8Array(0)), 0)
  block[block.length - message.length - 1] = 1
  block.set(message, block.length - message.length)
  globalThis.crypto.getRandomValues(seed)
  xorMask(block, hashFunction, seed)
  xorMask(seed, hashFunction, block)
  const sealed = fromBigInt(power(toBigInt(encoded), exponent, modulus), length)
  encoded.fill(0)
  return sealed
}

/** The modulus and public exponent of an SPKI's RSA key (its DER walked as der.ts's rsaSpkiModulusBits walks it). */
function rsaPublicNumbers(spki: Uint8Array): [bigint, bigint] {
  const outer = derContent(spki, 0)
  const rsaKey = derContent(derContent(outer, derContent(outer, 0).end).subarray(1), 0) // past the algorithm, and the bit string's unused-bits byte
  const modulus = derContent(rsaKey, 0)
  return [toBigInt(modulus), toBigInt(derContent(rsaKey, modulus.end))]
}

/** The content of the DER element at `offset` (a view), with `end`, the offset after it. */
function derContent(bytes: Uint8Array, offset: number): Uint8Array & { end: number } {
  let length = bytes[offset + 1] as number
  let start = offset + 2
  if (length & 0x80) {
    const count = length & 0x7f
    length = 0
    for (let i = 0; i < count; i++) length = length * 256 + (bytes[start + i] as number)
    start += count
  }
  if (start + length > bytes.length) throw new TypeError('The RSA public key is truncated.')
  return Object.assign(bytes.subarray(start, start + length), { end: start + length })
}

/** `target` ^= MGF1(`seed`), over `hashFunction`. */
function xorMask(target: Uint8Array, hashFunction: (typeof OAEP_HASHES)[OaepHash], seed: Uint8Array): void {
  const counter = new Uint8Array(4)
  const counterView = new DataView(counter.buffer)
  for (let offset = 0, count = 0; offset < target.length; offset += hashFunction.outputLen, count++) {
    counterView.setUint32(0, count)
    const mask = hashFunction.create().update(seed).update(counter).digest()
    const end = Math.min(mask.length, target.length - offset)
    for (let i = 0; i < end; i++) target[offset + i] = (target[offset + i] as number) ^ (mask[i] as number)
  }
}

function toBigInt(bytes: Uint8Array): bigint {
  return BigInt(`0x${bytesToHex(bytes) || '0'}`)
}

function fromBigInt(value: bigint, length: number): Uint8Array {
  return hexToBytes(value.toString(16).padStart(length * 2, '0'))
}

/** `base`^`exponent` mod `modulus`, square and multiply. */
function power(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n
  for (let square = base % modulus, rest = exponent; rest > 0n; rest >>= 1n) {
    if (rest & 1n) result = (result * square) % modulus
    square = (square * square) % modulus
  }
  return result
}
