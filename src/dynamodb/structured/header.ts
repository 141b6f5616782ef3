// The item header stored in `aws_dbe_head` (spec: structured-encryption/header.md):
// version ‖ flavor ‖ message ID ‖ legend ‖ stored encryption context ‖ encrypted data keys ‖ commitment.
import { bytesThat } from '../../byte-count.js'
import { ByteWriter, utf8, utf8Decoder } from '../../format/bytes.js'
import { PUBLIC_KEY_CONTEXT_KEY, serializeContext } from '../../format/context.js'
import type { AlgorithmSuite } from '../../suites.js'
import type { EncryptedDataKey, EncryptionContext } from '../../types.js'
import { InvalidItemError, MalformedItemError } from '../errors.js'
import type { ItemBackend } from './item-backend.js'

export const MESSAGE_ID_LENGTH = 32
export const COMMITMENT_LENGTH = 32
const COMMIT_KEY_LABEL = utf8('AWS_DBE_COMMIT_KEY')
/** The suite family byte: the flavor is the second byte of suite 0x67XX. */
export const DBE_SUITE_FAMILY = 0x67

/** spec: header.md#encrypt-legend-bytes */
export const LEGEND = { ENCRYPT_AND_SIGN: 0x65, SIGN_ONLY: 0x73, SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT: 0x63 } as const

export interface ItemHeader {
  readonly version: 1 | 2
  readonly algorithmSuiteId: number
  readonly messageId: Uint8Array
  /** One legend byte per signed attribute, in canonical-path order. */
  readonly legend: Uint8Array
  readonly storedEncryptionContext: EncryptionContext
  readonly encryptedDataKeys: readonly EncryptedDataKey[]
}

/**
 * The header's context serialization: a 2-byte count then sorted key-value pairs; an empty context is the
 * count 0 (unlike the message format's AAD, which is then empty). spec: header.md#encryption-context
 */
export function serializeItemContext(context: EncryptionContext): Uint8Array {
  return Object.keys(context).length === 0 ? new Uint8Array(2) : serializeContext(context)
}

/** The partial header: everything the commitment covers. */
export function serializePartialHeader(header: ItemHeader): Uint8Array {
  const { encryptedDataKeys } = header
  if (encryptedDataKeys.length === 0 || encryptedDataKeys.length > 255) {
    throw new InvalidItemError(`An item header holds 1 to 255 encrypted data keys; the materials have ${encryptedDataKeys.length}.`)
  }
  const tooLong = (message: string) => new InvalidItemError(message)
  const writer = new ByteWriter(256)
  writer.uint8(header.version).uint8(header.algorithmSuiteId & 0xff).bytes(header.messageId)
  writer.lengthPrefixed(header.legend, 'The encrypt legend', tooLong)
  writer.bytes(serializeItemContext(header.storedEncryptionContext)).uint8(encryptedDataKeys.length)
  for (const edk of encryptedDataKeys) {
    writer.lengthPrefixed(utf8(edk.providerId), 'A key provider ID', tooLong)
    writer.lengthPrefixed(edk.providerInfo, 'A key provider info', tooLong)
    writer.lengthPrefixed(edk.ciphertext, 'An encrypted data key', tooLong)
  }
  return writer.toBytes() // a view: only hashed and copied into the header
}

/** spec: header.md#commit-key and #commitment-calculation: HMAC(commit key, partial header), first 32 bytes. */
export async function headerCommitment(
  backend: ItemBackend,
  suite: AlgorithmSuite,
  dataKey: Uint8Array,
  messageId: Uint8Array,
  partialHeader: Uint8Array,
): Promise<Uint8Array> {
  const info = new Uint8Array(COMMIT_KEY_LABEL.length + messageId.length)
  info.set(COMMIT_KEY_LABEL, 0)
  info.set(messageId, COMMIT_KEY_LABEL.length)
  const [commitKey] = await backend.hkdf(suite.kdfHash ?? 'sha512', dataKey, new Uint8Array(0), [{ info, length: suite.keyLength }])
  // The spec text says HMAC-SHA384; every implementation uses the suite's commit-key hash, SHA-512, and the
  // official SDKs' items only verify with it (test/dynamodb/vectors.test.ts).
  const commitment = (await backend.hmac('sha512', commitKey as Uint8Array, partialHeader)).subarray(0, COMMITMENT_LENGTH)
  ;(commitKey as Uint8Array).fill(0)
  return commitment
}

class Reader {
  offset = 0
  constructor(readonly bytes: Uint8Array) {}
  take(length: number, what: string): Uint8Array {
    if (length > this.bytes.length - this.offset) throw new MalformedItemError(`The item header ends inside ${what}.`)
    const out = this.bytes.subarray(this.offset, this.offset + length)
    this.offset += length
    return out
  }
  uint8(what: string): number {
    return this.take(1, what)[0] as number
  }
  uint16(what: string): number {
    const bytes = this.take(2, what)
    return ((bytes[0] as number) << 8) | (bytes[1] as number)
  }
  prefixed(what: string): Uint8Array {
    return this.take(this.uint16(what), what)
  }
  text(what: string): string {
    const bytes = this.prefixed(what)
    try {
      return utf8Decoder.decode(bytes)
    } catch (error) {
      throw new MalformedItemError(`The item header has ${what} that is not UTF-8.`, { cause: error })
    }
  }
}

/** Parse `aws_dbe_head`; the commitment is checked later, once the data key is known. */
export function parseHeader(bytes: Uint8Array): { header: ItemHeader; partialHeader: Uint8Array; commitment: Uint8Array } {
  const reader = new Reader(bytes)
  const version = reader.uint8('the version')
  if (version !== 1 && version !== 2) throw new MalformedItemError(`The item header has version ${version}; versions 1 and 2 exist.`)
  const flavor = reader.uint8('the flavor')
  if (flavor !== 0 && flavor !== 1) throw new MalformedItemError(`The item header names flavor ${flavor}; flavors 0 and 1 (suites 0x6700, 0x6701) exist.`)
  const messageId = reader.take(MESSAGE_ID_LENGTH, 'the message ID').slice()
  const legend = reader.prefixed('the encrypt legend').slice()
  for (const byte of legend) {
    if (byte !== LEGEND.ENCRYPT_AND_SIGN && byte !== LEGEND.SIGN_ONLY && byte !== LEGEND.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT) {
      throw new MalformedItemError(`The item header's legend has byte 0x${byte.toString(16)}; only 'e', 's' and 'c' exist.`)
    }
  }
  const pairs = reader.uint16('the context count')
  const contextPairs: [string, string][] = []
  let previous: Uint8Array | undefined
  for (let i = 0; i < pairs; i++) {
    const keyStart = reader.offset
    const key = reader.text('a context key')
    const keyBytes = bytes.subarray(keyStart + 2, reader.offset)
    if (previous !== undefined && !isAscending(previous, keyBytes)) throw new MalformedItemError('The item header context keys are not in ascending order.')
    previous = keyBytes
    contextPairs.push([key, reader.text('a context value')])
  }
  const storedEncryptionContext: EncryptionContext = Object.fromEntries(contextPairs)
  // The signing suite's public key is stored in the context, and only the signing suite's: checked here, so that an
  // item whose suite was changed is refused as an item, not by the materials manager as a message.
  const hasPublicKey = contextPairs.some(([key]) => key === PUBLIC_KEY_CONTEXT_KEY)
  if (hasPublicKey !== (flavor === 1)) {
    throw new MalformedItemError(
      flavor === 1
        ? `The item header names suite 0x6701, which signs, but its encryption context has no "${PUBLIC_KEY_CONTEXT_KEY}".`
        : `The item header names suite 0x6700, which does not sign, but its encryption context has "${PUBLIC_KEY_CONTEXT_KEY}".`,
    )
  }
  const keyCount = reader.uint8('the encrypted data key count')
  if (keyCount === 0) throw new MalformedItemError('The item header has no encrypted data key.')
  const encryptedDataKeys: EncryptedDataKey[] = []
  for (let i = 0; i < keyCount; i++) {
    const providerId = reader.text('a key provider ID')
    encryptedDataKeys.push({ providerId, providerInfo: reader.prefixed('a key provider info').slice(), ciphertext: reader.prefixed('an encrypted data key').slice() })
  }
  const partialHeader = bytes.subarray(0, reader.offset)
  const commitment = reader.take(COMMITMENT_LENGTH, 'the commitment')
  if (reader.offset !== bytes.length) throw new MalformedItemError(`${bytesThat(bytes.length - reader.offset, 'follow')} the item header.`)
  return {
    header: { version, algorithmSuiteId: (DBE_SUITE_FAMILY << 8) | flavor, messageId, legend, storedEncryptionContext, encryptedDataKeys },
    partialHeader,
    commitment,
  }
}

function isAscending(a: Uint8Array, b: Uint8Array): boolean {
  const length = Math.min(a.length, b.length)
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return (a[i] as number) < (b[i] as number)
  return a.length < b.length
}
