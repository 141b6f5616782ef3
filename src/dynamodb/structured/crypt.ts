// Per-attribute encryption (spec: structured-encryption/encrypt-path-structure.md#calculate-cipherkey-and-nonce
// and #terminal-data-encryption): one HKDF per item gives the field root key; AES-256-CTR of it expands a
// 44-byte key-and-nonce per encrypted attribute, taken in canonical-path order.
import { ctr } from '@noble/ciphers/aes.js'
import { isAsyncAead, type CryptoBackend } from '../../backend/types.js'
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
const TAG_LENGTH = 16
/** Type ID of encrypted terminals (and of DynamoDB binary values). */
export const ENCRYPTED_TYPE_ID = 0xffff
// Each field key takes three AES blocks of the stream, so offsets are spaced by 3 (and must fit 32 bits).
const MAX_FIELDS = Math.floor(0xffffffff / 3)

/** HKDF(data key, no salt, "AWS_DBE_DERIVE_KEY" ‖ message ID). */
export async function fieldRootKey(backend: CryptoBackend, suite: AlgorithmSuite, dataKey: Uint8Array, messageId: Uint8Array): Promise<Uint8Array> {
  const info = new Uint8Array(DERIVE_KEY_LABEL.length + messageId.length)
  info.set(DERIVE_KEY_LABEL, 0)
  info.set(messageId, DERIVE_KEY_LABEL.length)
  const [key] = await backend.hkdf(suite.kdfHash ?? 'sha512', dataKey, new Uint8Array(0), [{ info, length: suite.keyLength }])
  return key as Uint8Array
}

/** The first 44 bytes of AES-256-CTR(root key) from counter block "AwsDbeField" ‖ 0x2c ‖ uint32(3 × offset). */
export function fieldKey(rootKey: Uint8Array, offset: number): { key: Uint8Array; nonce: Uint8Array } {
  if (!Number.isInteger(offset) || offset < 0 || offset >= MAX_FIELDS) throw new MalformedItemError('Too many encrypted attributes in one item.')
  const counter = new Uint8Array(16)
  counter.set(FIELD_NONCE_LABEL, 0)
  counter[11] = FIELD_KEY_LENGTH
  new DataView(counter.buffer).setUint32(12, offset * 3)
  const stream = ctr(rootKey, counter).encrypt(new Uint8Array(FIELD_KEY_LENGTH))
  return { key: stream.subarray(0, KEY_LENGTH), nonce: stream.subarray(KEY_LENGTH) }
}

/** Encrypted terminal: type 0xFFFF, value = plaintext type ID ‖ AES-GCM(value, aad = canonical path) ‖ tag. */
export async function encryptTerminal(backend: CryptoBackend, rootKey: Uint8Array, offset: number, path: Uint8Array, terminal: Terminal): Promise<Terminal> {
  const { key, nonce } = fieldKey(rootKey, offset)
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
  rootKey: Uint8Array,
  offset: number,
  path: Uint8Array,
  terminal: Terminal,
  name: string,
): Promise<Terminal> {
  if (terminal.typeId !== ENCRYPTED_TYPE_ID || terminal.value.length < 2 + TAG_LENGTH) {
    throw new MalformedItemError(`Attribute ${quoteIdentifier(name)} is encrypted in the header's legend but is not an encrypted binary value.`)
  }
  const { key, nonce } = fieldKey(rootKey, offset)
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
