// Per-attribute encryption (spec: structured-encryption/encrypt-path-structure.md#calculate-cipherkey-and-nonce
// and #terminal-data-encryption): one HKDF per item gives the field root key; AES-256-CTR of it expands a
// 44-byte key-and-nonce per encrypted attribute, taken in canonical-path order, all in one pass.
import { isAsyncAead, type CryptoBackend } from '../../backend/types.js'
import type { ItemBackend } from './item-backend.js'
import { utf8 } from '../../format/bytes.js'
import type { AlgorithmSuite } from '../../suites.js'
import { quoteIdentifier } from '../../quote.js'
import { ItemAuthenticationError, MalformedItemError } from '../errors.js'
import type { Terminal } from '../types.js'

const DERIVE_KEY_LABEL = utf8('AWS_DBE_DERIVE_KEY')
const FIELD_NONCE_LABEL = utf8('AwsDbeField')
const KEY_LENGTH = 32
const NONCE_LENGTH = 12
const FIELD_KEY_LENGTH = KEY_LENGTH + NONCE_LENGTH
/** Bytes of the stream per field key: three AES blocks, of which it uses 44. */
const FIELD_STRIDE = 48
const TAG_LENGTH = 16
/** Type ID of encrypted terminals (and of DynamoDB binary values). */
export const ENCRYPTED_TYPE_ID = 0xffff
// Offsets are spaced by 3 blocks, and 3 × offset must fit 32 bits.
const MAX_FIELDS = Math.floor(0xffffffff / 3)

/** HKDF(data key, no salt, "AWS_DBE_DERIVE_KEY" ‖ message ID). */
export async function fieldRootKey(backend: CryptoBackend, suite: AlgorithmSuite, dataKey: Uint8Array, messageId: Uint8Array): Promise<Uint8Array> {
  const info = new Uint8Array(DERIVE_KEY_LABEL.length + messageId.length)
  info.set(DERIVE_KEY_LABEL, 0)
  info.set(messageId, DERIVE_KEY_LABEL.length)
  const [key] = await backend.hkdf(suite.kdfHash ?? 'sha512', dataKey, new Uint8Array(0), [{ info, length: suite.keyLength }])
  return key as Uint8Array
}

/** An encrypted attribute's AES-GCM key and nonce. */
export interface FieldKey {
  readonly key: Uint8Array
  readonly nonce: Uint8Array
}

async function keyStream(backend: ItemBackend, rootKey: Uint8Array, firstOffset: number, fields: number): Promise<Uint8Array> {
  if (!Number.isInteger(firstOffset) || firstOffset < 0 || firstOffset + fields > MAX_FIELDS) throw new MalformedItemError('Too many encrypted attributes in one item.')
  const counter = new Uint8Array(16)
  counter.set(FIELD_NONCE_LABEL, 0)
  counter[11] = FIELD_KEY_LENGTH
  new DataView(counter.buffer).setUint32(12, firstOffset * 3)
  return backend.aesCtr(rootKey, counter, fields * FIELD_STRIDE)
}

/** The first 44 bytes of AES-256-CTR(root key) from counter block "AwsDbeField" ‖ 0x2c ‖ uint32(3 × offset). */
export async function fieldKey(backend: ItemBackend, rootKey: Uint8Array, offset: number): Promise<FieldKey> {
  return fieldKeyAt(await keyStream(backend, rootKey, offset, 1), 0)
}

/**
 * The field keys of offsets 0 to `count` - 1 in one pass of AES-256-CTR: offset k's bytes start at block 3k, so
 * they follow one another in the stream that starts at block 0 (44 bytes used of every 48). Read one with
 * `fieldKeyAt`; zero the whole array after use.
 */
export function fieldKeys(backend: ItemBackend, rootKey: Uint8Array, count: number): Promise<Uint8Array> {
  return keyStream(backend, rootKey, 0, count)
}

/** Offset `offset`'s key and nonce in what `fieldKeys` returned (views of it). */
export function fieldKeyAt(keys: Uint8Array, offset: number): FieldKey {
  const start = offset * FIELD_STRIDE
  return { key: keys.subarray(start, start + KEY_LENGTH), nonce: keys.subarray(start + KEY_LENGTH, start + FIELD_KEY_LENGTH) }
}

/** Encrypted terminal: type 0xFFFF, value = plaintext type ID ‖ AES-GCM(value, aad = canonical path) ‖ tag. */
export async function encryptTerminal(backend: CryptoBackend, { key, nonce }: FieldKey, path: Uint8Array, terminal: Terminal): Promise<Terminal> {
  const value = new Uint8Array(2 + terminal.value.length + TAG_LENGTH)
  value[0] = terminal.typeId >>> 8
  value[1] = terminal.typeId & 0xff
  const aead = backend.aeadKey(key)
  try {
    if (isAsyncAead(aead)) await aead.seal(nonce, path, terminal.value, value, 2)
    else aead.seal(nonce, path, terminal.value, value, 2)
  } finally {
    aead.dispose?.()
    key.fill(0)
  }
  return { typeId: ENCRYPTED_TYPE_ID, value }
}

/** The inverse of encryptTerminal; ItemAuthenticationError when the tag fails. */
export async function decryptTerminal(
  backend: CryptoBackend,
  { key, nonce }: FieldKey,
  path: Uint8Array,
  terminal: Terminal,
  name: string,
): Promise<Terminal> {
  if (terminal.typeId !== ENCRYPTED_TYPE_ID || terminal.value.length < 2 + TAG_LENGTH) {
    throw new MalformedItemError(`Attribute ${quoteIdentifier(name)} is encrypted in the header's legend but is not an encrypted binary value.`)
  }
  const sealed = terminal.value
  const plaintext = new Uint8Array(sealed.length - 2 - TAG_LENGTH)
  const ciphertext = sealed.subarray(2, sealed.length - TAG_LENGTH)
  const tag = sealed.subarray(sealed.length - TAG_LENGTH)
  const aead = backend.aeadKey(key)
  let ok: boolean
  try {
    ok = isAsyncAead(aead) ? await aead.open(nonce, path, ciphertext, tag, plaintext, 0) : aead.open(nonce, path, ciphertext, tag, plaintext, 0)
  } finally {
    aead.dispose?.()
    key.fill(0)
  }
  if (!ok) {
    plaintext.fill(0) // what a failed tag leaves behind is not to be kept, even unreturned
    throw new ItemAuthenticationError(`Attribute ${quoteIdentifier(name)} failed to decrypt: it was changed after encryption.`)
  }
  return { typeId: ((sealed[0] as number) << 8) | (sealed[1] as number), value: plaintext }
}

/**
 * The values of `work` once every promise in it has settled, or the first failure: the field keys the work reads
 * are zeroed only after all of it is done.
 */
export async function settledAll<T>(work: readonly (T | Promise<T>)[]): Promise<T[]> {
  const outcomes = await Promise.allSettled(work)
  const failure = outcomes.find((outcome) => outcome.status === 'rejected')
  if (failure !== undefined) throw failure.reason
  return outcomes.map((outcome) => (outcome as PromiseFulfilledResult<T>).value)
}
