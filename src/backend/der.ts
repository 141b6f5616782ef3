// Just enough DER for RSA keys, shared by the WebCrypto backend (which imports only SPKI and PKCS#8) and the
// KMS RSA keyring (which checks the modulus size of the key KMS GetPublicKey returns). No platform code.

import { ConfigurationError } from '../errors.js'
import { byteChars } from '../format/bytes.js'

const RSA_ENCRYPTION_OID = Uint8Array.of(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01) // 1.2.840.113549.1.1.1
export const SEQUENCE = 0x30
export const INTEGER = 0x02
const BIT_STRING = 0x03
export const OCTET_STRING = 0x04
const OID = 0x06
const NULL = 0x05

export interface Element {
  readonly tag: number
  readonly content: Uint8Array
  /** Offset just after the element in the buffer it was read from. */
  readonly end: number
}

/**
 * Read one DER element at `offset`; throws TypeError on another tag, anything truncated, an indefinite or over
 * 3-byte length, or a long-form length under 128. A long-form length with a leading zero byte passes, as in
 * OpenSSL's parser (Node imports such a key too): the modulus read from it is the same.
 */
export function readElement(bytes: Uint8Array, offset: number, expectedTag: number, what: string): Element {
  const tag = bytes[offset]
  if (tag !== expectedTag) throw new TypeError(`${what}: expected DER tag 0x${expectedTag.toString(16)}`)
  let length = bytes[offset + 1]
  if (length === undefined) throw new TypeError(`${what}: truncated`)
  let start = offset + 2
  if (length & 0x80) {
    const lengthBytes = length & 0x7f
    if (lengthBytes === 0 || lengthBytes > 3 || start + lengthBytes > bytes.length) throw new TypeError(`${what}: bad length`)
    length = 0
    for (let i = 0; i < lengthBytes; i++) length = length * 256 + (bytes[start + i] as number)
    start += lengthBytes
    if (length < 0x80) throw new TypeError(`${what}: length not minimally encoded`)
  }
  const end = start + length
  if (end > bytes.length) throw new TypeError(`${what}: truncated`)
  return { tag, content: bytes.subarray(start, end), end }
}

function lengthBytes(length: number): number[] {
  if (length < 0x80) return [length]
  const bytes: number[] = []
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff)
  return [0x80 | bytes.length, ...bytes]
}

export function element(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const contentLength = parts.reduce((sum, part) => sum + part.length, 0)
  const head = Uint8Array.of(tag, ...lengthBytes(contentLength))
  const out = new Uint8Array(head.length + contentLength)
  out.set(head, 0)
  let offset = head.length
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

export const RSA_ALGORITHM_IDENTIFIER = element(SEQUENCE, element(OID, RSA_ENCRYPTION_OID), Uint8Array.of(NULL, 0))

export function isRsaAlgorithm(identifier: Uint8Array): boolean {
  const oid = readElement(identifier, 0, OID, 'algorithm identifier')
  return oid.content.length === RSA_ENCRYPTION_OID.length && oid.content.every((byte, index) => byte === RSA_ENCRYPTION_OID[index])
}

/** Bit length of a DER INTEGER's unsigned value. */
function integerBits(content: Uint8Array): number {
  let index = 0
  while (index < content.length - 1 && content[index] === 0) index++
  const first = content[index] as number
  return first === 0 ? 0 : (content.length - index - 1) * 8 + (32 - Math.clz32(first))
}

/**
 * Refuse to encrypt under an RSA modulus under 2048 bits (NIST SP 800-131A disallows them). Only encryption is
 * checked, so data wrapped under a smaller key still decrypts.
 */
export function checkRsaEncryptBits(bits: number, what: string): void {
  if (bits < 2048) throw new ConfigurationError(`${what} has a ${bits}-bit modulus; encrypting needs at least 2048 bits.`)
}

/** The RSA public key inside an SPKI (its modulus size), or TypeError when `spki` is not one. */
export function rsaSpkiModulusBits(spki: Uint8Array): number {
  const outer = readElement(spki, 0, SEQUENCE, 'SubjectPublicKeyInfo')
  if (outer.end !== spki.length) throw new TypeError('SubjectPublicKeyInfo: bytes after the key')
  const algorithm = readElement(outer.content, 0, SEQUENCE, 'algorithm')
  if (!isRsaAlgorithm(algorithm.content)) throw new TypeError('not an RSA public key (algorithm is not rsaEncryption)')
  const bitString = readElement(outer.content, algorithm.end, BIT_STRING, 'subjectPublicKey')
  if (bitString.content[0] !== 0) throw new TypeError('subjectPublicKey: unused bits')
  const rsaKey = readElement(bitString.content, 1, SEQUENCE, 'RSAPublicKey')
  const modulus = readElement(rsaKey.content, 0, INTEGER, 'modulus')
  readElement(rsaKey.content, modulus.end, INTEGER, 'publicExponent')
  return integerBits(modulus.content)
}

/** PKCS#1 RSAPublicKey → SPKI. */
export function spkiFromPkcs1(rsaPublicKey: Uint8Array): Uint8Array {
  return element(SEQUENCE, RSA_ALGORITHM_IDENTIFIER, element(BIT_STRING, Uint8Array.of(0), rsaPublicKey))
}

export function toBase64(bytes: Uint8Array): string {
  return btoa(byteChars(bytes))
}

/**
 * Standard base64 with its padding (what DynamoDB JSON and the KMS API write), its length a multiple of 4. One loop
 * over a character class: a repeated group (`(?:…{4})*`) makes V8 keep a backtracking entry per repetition, and
 * overflows the stack on a text of some 5 million characters.
 */
const STANDARD_BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

export function isStandardBase64(text: string): boolean {
  return text.length % 4 === 0 && STANDARD_BASE64.test(text)
}

export function fromBase64(text: string): Uint8Array {
  const binary = atob(text)
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

/**
 * The DER inside one PEM block, with its label (`PUBLIC KEY`, `RSA PRIVATE KEY`, …). The block's body may hold
 * base64 and white space (and `_`, which the base64 decoder refuses), never `-`: matching any character up to a
 * label's END line (`[\s\S]*?`) took time quadratic in a text of BEGIN lines with no END line (1.6 s for 272 KB).
 */
export function fromPem(pem: string): { label: string; der: Uint8Array } {
  const match = /-----BEGIN ([A-Z0-9 ]+)-----([\w+/=\s]*)-----END \1-----/.exec(pem)
  if (match === null) throw new TypeError('not a PEM block')
  try {
    return { label: match[1] as string, der: fromBase64((match[2] as string).replace(/\s+/g, '')) }
  } catch {
    throw new TypeError('the PEM block is not valid base64')
  }
}

/** PEM armor, 64 characters a line. */
export function toPem(der: Uint8Array, label: string): string {
  const lines = toBase64(der).match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`
}
