// The item footer stored in `aws_dbe_foot` (spec: structured-encryption/footer.md): one HMAC-SHA384 recipient
// tag per encrypted data key, then for 0x6701 an ECDSA P-384 signature, all over one canonical hash.
import { bigIntToBytes, bytesToBigInt, derToP1363, p1363ToDer } from '../../backend/ec.js'
import type { CryptoBackend } from '../../backend/types.js'
import { InternalError, SignatureVerificationError } from '../../errors.js'
import { setUint32At, utf8 } from '../../format/bytes.js'
import { byteCount, countOf } from '../../byte-count.js'
import type { AlgorithmSuite } from '../../suites.js'
import type { EncryptionContext } from '../../types.js'
import { ItemAuthenticationError, MalformedItemError } from '../errors.js'
import type { Terminal } from '../types.js'
import { serializeItemContext } from './header.js'
import type { ItemBackend } from './item-backend.js'

export const RECIPIENT_TAG_LENGTH = 48
/** The footer's signature is always a 103-byte DER ECDSA P-384 signature. */
export const SIGNATURE_LENGTH = 103
const ENCRYPTED = utf8('ENCRYPTED')
const PLAINTEXT = utf8('PLAINTEXT')
// Order of the P-384 group.
const P384_ORDER = 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n

/** A signed attribute as the canonical record sees it. */
export interface SignedField {
  readonly path: Uint8Array
  readonly terminal: Terminal
  readonly encrypted: boolean
}

/**
 * SHA-384 of header ‖ uint64(AAD length) ‖ AAD (the materials' whole context) ‖ each signed field in
 * canonical-path order. spec: footer.md#canonical-hash
 */
export async function canonicalHash(backend: CryptoBackend, header: Uint8Array, context: EncryptionContext, fields: readonly SignedField[]): Promise<Uint8Array> {
  const aad = serializeItemContext(context)
  let length = header.length + 8 + aad.length
  for (const { path, terminal, encrypted } of fields) length += path.length + 8 + (encrypted ? ENCRYPTED.length : PLAINTEXT.length + 2) + terminal.value.length
  // Written in place: one array, not one per length and type ID.
  const record = new Uint8Array(length)
  let at = 0
  const put = (bytes: Uint8Array): void => {
    record.set(bytes, at)
    at += bytes.length
  }
  const putLength = (value: number): void => {
    // 8 bytes big-endian; lengths here stay far below 2^32, so the first four are zero (as allocated).
    setUint32At(record, at + 4, value)
    at += 8
  }
  put(header)
  putLength(aad.length)
  put(aad)
  for (const { path, terminal, encrypted } of fields) {
    put(path)
    if (encrypted) {
      // The encrypted value starts with the plaintext's type ID: the length counts the rest.
      putLength(terminal.value.length - 2)
      put(ENCRYPTED)
    } else {
      putLength(terminal.value.length)
      put(PLAINTEXT)
      record[at++] = terminal.typeId >>> 8
      record[at++] = terminal.typeId & 0xff
    }
    put(terminal.value)
  }
  return backend.digest('sha384', record)
}

/**
 * Other implementations store exactly 103 bytes. A DER P-384 signature is 103 bytes when exactly one of r and s
 * needs a leading zero byte; (r, n - s) is the same signature's twin and usually flips s's need, so try it
 * before signing again. Only public values are handled here.
 */
export function signatureOf103Bytes(der: Uint8Array): Uint8Array | undefined {
  if (der.length === SIGNATURE_LENGTH) return der
  const raw = derToP1363(der, 48)
  if (raw === undefined) return undefined
  const twin = new Uint8Array(96)
  twin.set(raw.subarray(0, 48), 0)
  twin.set(bigIntToBytes(P384_ORDER - bytesToBigInt(raw.subarray(48)), 48), 48)
  const flipped = p1363ToDer(twin)
  return flipped.length === SIGNATURE_LENGTH ? flipped : undefined
}

export async function createFooter(
  backend: ItemBackend,
  suite: AlgorithmSuite,
  hash: Uint8Array,
  symmetricSigningKeys: readonly Uint8Array[],
  signingKey: unknown,
): Promise<Uint8Array> {
  const signed = suite.signature !== undefined
  const footer = new Uint8Array(symmetricSigningKeys.length * RECIPIENT_TAG_LENGTH + (signed ? SIGNATURE_LENGTH : 0))
  for (const [index, key] of symmetricSigningKeys.entries()) footer.set(await backend.hmac('sha384', key, hash), index * RECIPIENT_TAG_LENGTH)
  if (suite.signature !== undefined) {
    for (let attempt = 0; ; attempt++) {
      const signature = signatureOf103Bytes(await backend.signMessage(suite.signature.curve, signingKey, hash))
      if (signature !== undefined) {
        footer.set(signature, symmetricSigningKeys.length * RECIPIENT_TAG_LENGTH)
        break
      }
      // An attempt fails only when r or s starts with a zero byte (about 1 in 100), so 17 failures in a row mean
      // a broken signer, not bad luck.
      if (attempt === 16) throw new InternalError('Could not make a 103-byte ECDSA signature for the item footer in 17 attempts.')
    }
  }
  return footer
}

/**
 * spec: footer.md#footer-verification: at least one recipient tag must match the tag computed with this
 * reader's symmetric signing key (constant time), and a 0x6701 footer's signature must verify.
 */
export async function verifyFooter(
  backend: ItemBackend,
  suite: AlgorithmSuite,
  footer: Uint8Array,
  encryptedDataKeyCount: number,
  hash: Uint8Array,
  symmetricSigningKey: Uint8Array,
  verificationKey: unknown,
): Promise<void> {
  const tagsLength = encryptedDataKeyCount * RECIPIENT_TAG_LENGTH
  const expectedLength = tagsLength + (suite.signature !== undefined ? SIGNATURE_LENGTH : 0)
  if (footer.length !== expectedLength) {
    throw new MalformedItemError(
      `The item footer is ${byteCount(footer.length)}; with ${countOf(encryptedDataKeyCount, 'encrypted data key')} it must be ${expectedLength}: ` +
        `a ${RECIPIENT_TAG_LENGTH}-byte recipient tag per key${suite.signature !== undefined ? ` and a ${SIGNATURE_LENGTH}-byte signature` : ''}.`,
    )
  }
  const expected = await backend.hmac('sha384', symmetricSigningKey, hash)
  let matched = false
  for (let offset = 0; offset < tagsLength; offset += RECIPIENT_TAG_LENGTH) {
    // Every tag is compared, so the time does not say which one matched.
    if (backend.timingSafeEqual(expected, footer.subarray(offset, offset + RECIPIENT_TAG_LENGTH))) matched = true
  }
  if (!matched) {
    throw new ItemAuthenticationError('No recipient tag in the item footer matches: a signed attribute, the header or the footer was changed, or the item was moved.')
  }
  if (suite.signature !== undefined) {
    const valid = await backend.verifyMessage(suite.signature.curve, verificationKey, hash, footer.subarray(tagsLength))
    if (!valid) throw new SignatureVerificationError('The item signature does not verify: a signed attribute, the header or the footer was changed.')
  }
}
