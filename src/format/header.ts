import {
  Base64MessageError,
  KeyringError,
  LimitExceededError,
  MalformedMessageError,
  TooManyEncryptedDataKeysError,
} from '../errors.js'
import { suiteFromMessage, hex, type AlgorithmSuite } from '../suites.js'
import type { Bytes, EncryptedDataKey, EncryptionContext, MessageHeader } from '../types.js'
import { quoteIdentifier } from '../quote.js'
import { ByteReader, ByteWriter, EMPTY, LONE_SURROGATE_PROBLEM, ZERO_IV, byteChars, fromUtf8, loneSurrogateAt, utf8 } from './bytes.js'
import { parseContext, serializeContext } from './context.js'
import { isBytes } from '../is-bytes.js'

// spec: data-format/message-header.md#supported-types
const MESSAGE_TYPE_CUSTOMER_AED = 0x80
const CONTENT_TYPE_NON_FRAMED = 0x01
const CONTENT_TYPE_FRAMED = 0x02
/** The largest frame length the 4-byte field can carry. */
export const MAX_FRAME_LENGTH = 0xffff_ffff

/** A parsed header: the public view plus the raw pieces decrypt needs to authenticate it. */
export interface ParsedHeader {
  readonly header: MessageHeader
  readonly suite: AlgorithmSuite
  /** The header body bytes (a view into the input): the AAD of the header authentication tag. */
  readonly body: Uint8Array
  /** v2 only: the key commitment. Empty for v1. */
  readonly suiteData: Uint8Array
  readonly headerIv: Uint8Array
  readonly headerTag: Uint8Array
  /** Offset of the first body byte in the input. */
  readonly length: number
}

export interface HeaderFields {
  readonly suite: AlgorithmSuite
  readonly messageId: Uint8Array
  readonly encryptionContext: EncryptionContext
  readonly encryptedDataKeys: readonly EncryptedDataKey[]
  readonly frameLength: number
  /** The commitment key for v2 suites. */
  readonly suiteData: Uint8Array
}

/** Message ID length by format version (spec: data-format/message-header.md#message-id). */
export function messageIdLength(version: 1 | 2): number {
  return version === 1 ? 16 : 32
}

/**
 * Serialize a framed header body, followed by `room` zero bytes (where encrypt writes the header IV and tag,
 * saving a copy). spec: data-format/message-header.md#header-body
 */
export function serializeHeaderBody(fields: HeaderFields, room = 0): Uint8Array {
  const { suite } = fields
  const version = suite.messageFormatVersion
  const writer = new ByteWriter(512)
  writer.uint8(version)
  if (version === 1) writer.uint8(MESSAGE_TYPE_CUSTOMER_AED)
  writer.uint16(suite.id).bytes(fields.messageId)
  const context = serializeContext(fields.encryptionContext)
  writer.uint16(context.length).bytes(context)
  writer.uint16(fields.encryptedDataKeys.length)
  for (const key of fields.encryptedDataKeys) writeEncryptedDataKey(writer, key)
  writer.uint8(CONTENT_TYPE_FRAMED)
  if (version === 1) writer.uint32(0).uint8(suite.ivLength)
  writer.uint32(fields.frameLength)
  if (version === 2) writer.bytes(fields.suiteData)
  return writer.toBytes(room)
}

const BASE64_CHARS = /^[A-Za-z0-9+/=\r\n]+$/

/**
 * How many bytes of an input whose first byte is no version tell whether it is a message written out as base64 or
 * hex text: a decrypt stream waits for them (or the input's end) before it says which.
 */
export const TEXT_MESSAGE_PREFIX = 64

/** Whether the input is base64 text whose decoding starts like a message (version byte 1 or 2). */
function looksBase64(bytes: Uint8Array): boolean {
  if (bytes.length < 8) return false
  const prefix = byteChars(bytes.subarray(0, TEXT_MESSAGE_PREFIX))
  if (!BASE64_CHARS.test(prefix)) return false
  try {
    const firstByte = atob(prefix.slice(0, 4)).charCodeAt(0)
    return firstByte === 1 || firstByte === 2
  } catch {
    return false // not decodable: an ordinary unknown version
  }
}

/** A message written out in hex, as a text column holds it (PostgreSQL prints bytea so, after "\\x"): version 01 or 02 first. */
const HEX_MESSAGE = /^(\\x)?0[12][\dA-Fa-f]{14}/

export interface ParseHeaderOptions {
  readonly maxEncryptedDataKeys?: number | undefined
  /**
   * A decrypt stream's maxHeaderSize: LIMIT_EXCEEDED at the first field that the header's own length fields put past
   * it, before any later field is looked at, so one chunk and small pieces of the same bytes fail alike.
   */
  readonly maxHeaderSize?: number | undefined
}

/** Parse and validate a header at the start of `bytes`. spec: data-format/message-header.md */
export function parseHeader(bytes: Uint8Array, options: ParseHeaderOptions = {}): ParsedHeader {
  if (bytes.length === 0) throw new MalformedMessageError('The ciphertext is empty.')
  const reader = new ByteReader(bytes)
  const { maxHeaderSize } = options
  if (maxHeaderSize !== undefined) {
    reader.limit = maxHeaderSize
    reader.pastLimit = () => new LimitExceededError(`The message header is larger than maxHeaderSize (${maxHeaderSize} bytes).`)
  }
  const version = reader.uint8('version')
  if (version !== 1 && version !== 2) {
    if (looksBase64(bytes)) {
      throw new Base64MessageError('The ciphertext looks base64-encoded. Decode it to bytes before calling decrypt.')
    }
    if (HEX_MESSAGE.test(byteChars(bytes.subarray(0, 18)))) {
      throw new MalformedMessageError('The ciphertext looks hex-encoded. Decode it to bytes before calling decrypt.')
    }
    throw new MalformedMessageError(`Unknown message format version 0x${version.toString(16).padStart(2, '0')}; expected 0x01 or 0x02.`)
  }
  if (version === 1) {
    const type = reader.uint8('message type')
    if (type !== MESSAGE_TYPE_CUSTOMER_AED) throw new MalformedMessageError(`Unknown message type 0x${type.toString(16)}; expected 0x80.`)
  }
  const suite = suiteFromMessage(reader.uint16('algorithm suite ID'))
  if (suite.messageFormatVersion !== version) {
    throw new MalformedMessageError(`Algorithm suite ${hex(suite.id)} cannot appear in a version ${version} message.`)
  }
  const messageIdAt = reader.skip(messageIdLength(version), 'message ID')
  const contextAt = reader.skipLengthPrefixed('encryption context')
  const contextEnd = reader.offset
  // What follows the keys: content type, [reserved field, IV length,] frame length, suite data, [IV,] tag.
  const tail = 5 + (version === 1 ? 5 + suite.ivLength : 0) + suite.suiteDataLength + suite.tagLength
  const keyCount = skipEncryptedDataKeys(reader, options.maxEncryptedDataKeys, tail)
  const keysAt = contextEnd + 2 // past the key count

  const contentTypeByte = reader.uint8('content type')
  if (contentTypeByte !== CONTENT_TYPE_FRAMED && contentTypeByte !== CONTENT_TYPE_NON_FRAMED) {
    throw new MalformedMessageError(`Unknown content type 0x${contentTypeByte.toString(16)}; expected framed (2) or non-framed (1).`)
  }
  const contentType = contentTypeByte === CONTENT_TYPE_FRAMED ? 'framed' : 'non-framed'
  if (version === 1) {
    if (reader.uint32('reserved field') !== 0) throw new MalformedMessageError('The header reserved field is not zero.')
    const ivLength = reader.uint8('IV length')
    if (ivLength !== suite.ivLength) throw new MalformedMessageError(`The header IV length is ${ivLength}; suite ${hex(suite.id)} uses ${suite.ivLength}.`)
  }
  const frameLength = reader.uint32('frame length')
  if (contentType === 'framed' && frameLength === 0) throw new MalformedMessageError('A framed message has frame length 0.')
  if (contentType === 'non-framed' && frameLength !== 0) {
    throw new MalformedMessageError(`A non-framed message has frame length ${frameLength}; it must be 0.`)
  }
  const suiteData = reader.slice(suite.suiteDataLength, 'key commitment')
  const body = bytes.subarray(0, reader.offset)
  // spec: data-format/message-header.md#header-authentication (v2 stores no IV: it is all zeros)
  const headerIv = version === 1 ? reader.slice(suite.ivLength, 'header IV') : ZERO_IV
  const headerTag = reader.slice(suite.tagLength, 'header authentication tag')

  // The header's public fields, and the context's serialization, are views into one copy of the header body:
  // the message's caller may overwrite the message. Each field's own small copy would be moved out of the
  // JavaScript heap (about a microsecond each) the first time node:crypto or a view reads it.
  const own = headerCopy(body)
  const encryptionContext = parseContext(own.subarray(contextAt, contextEnd), true)
  const encryptedDataKeys = readEncryptedDataKeys(new ByteReader(own, keysAt), keyCount)
  const header: MessageHeader = {
    version,
    algorithmSuiteId: suite.id,
    messageId: own.subarray(messageIdAt, messageIdAt + messageIdLength(version)),
    encryptionContext,
    encryptedDataKeys,
    contentType,
    frameLength,
  }
  // The header is authenticated over the same copy: were it the caller's bytes, a caller (or whatever shares its
  // buffer) that rewrote them while the keyrings worked would have the tag checked over other bytes than those parsed.
  return { header, suite, body: own, suiteData, headerIv, headerTag, length: reader.offset }
}

/**
 * Header copies are carved from shared blocks. An array outside the JavaScript heap costs about a microsecond
 * to allocate and sweep, on a 1 KiB decrypt that takes about twenty; one block serves about thirty small
 * headers. A block holds nothing but header bytes, which every holder of a message can read: a field's
 * `.buffer` may show other messages' headers (as a pooled Buffer's does in Node), never a key or plaintext.
 * A larger header gets its own copy, and a header kept alive keeps at most one block alive.
 */
const HEADER_BLOCK = 4096
const LARGEST_SHARED_COPY = 512
let headerBlock = EMPTY
let headerBlockUsed = 0

function headerCopy(body: Uint8Array): Bytes {
  if (body.length > LARGEST_SHARED_COPY) return new Uint8Array(body)
  if (headerBlockUsed + body.length > headerBlock.length) {
    headerBlock = new Uint8Array(HEADER_BLOCK)
    headerBlockUsed = 0
  }
  const copy = headerBlock.subarray(headerBlockUsed, (headerBlockUsed += body.length))
  copy.set(body)
  return copy
}

/** The least an encrypted data key entry takes: its three length fields. */
const LEAST_KEY_ENTRY = 6

/** Refuse more wrapped data keys than `max` allows (none when undefined): `who` says whose they are. */
export function checkKeyCount(count: number, max: number | undefined, who: string): void {
  if (max !== undefined && count > max) {
    throw new TooManyEncryptedDataKeysError(`${who} ${count} encrypted data keys; maxEncryptedDataKeys allows ${max}.`)
  }
}

/**
 * Step over the key count and the entries, which `tail` more header bytes follow; returns the count. Only their
 * structure: nothing is decoded or allocated until the whole header is there (a stream parses a header again as
 * more of it arrives). A header that ends among them is reported as needing at least the fields still to come:
 * a stream fed a hostile header of 65,535 keys in small pieces then parses it a few times, not again for each
 * piece (7,169 times, 32 s, in 64-byte pieces).
 */
function skipEncryptedDataKeys(reader: ByteReader, maxEncryptedDataKeys: number | undefined, tail: number): number {
  const count = reader.uint16('encrypted data key count')
  if (count === 0) throw new MalformedMessageError('The message has no encrypted data keys.')
  // Checked before parsing a single key, so a hostile count costs nothing and no keyring runs.
  checkKeyCount(count, maxEncryptedDataKeys, 'The message has')
  for (let index = 0; index < count; index++) {
    const later = (count - index - 1) * LEAST_KEY_ENTRY + tail
    reader.following = later + 4 // this entry's two other length fields
    reader.skipLengthPrefixed('key provider ID')
    reader.following = later + 2
    reader.skipLengthPrefixed('key provider info')
    reader.following = later
    reader.skipLengthPrefixed('encrypted data key')
  }
  reader.following = 0
  return count
}

/** The `count` entries `skipEncryptedDataKeys` stepped over, read from the header's own copy at `reader`. */
function readEncryptedDataKeys(reader: ByteReader, count: number): EncryptedDataKey[] {
  const keys: EncryptedDataKey[] = []
  for (let index = 0; index < count; index++) {
    const providerId = fromUtf8(reader.lengthPrefixed('key provider ID'), 'key provider ID')
    keys.push({ providerId, providerInfo: reader.lengthPrefixed('key provider info'), ciphertext: reader.lengthPrefixed('encrypted data key') })
  }
  return keys
}

/** One encrypted data key entry: three uint16-length-prefixed fields. spec: data-format/message-header.md#encrypted-data-key-entries */
export function writeEncryptedDataKey(writer: ByteWriter, key: EncryptedDataKey): ByteWriter {
  const tooLong = (message: string) => new KeyringError(`Encrypted data key: ${message}`)
  const { providerId, providerInfo, ciphertext } = key ?? {}
  // A custom keyring's key of another shape would otherwise be written as garbage: a message no one can decrypt.
  if (typeof providerId !== 'string' || !isBytes(providerInfo) || !isBytes(ciphertext)) {
    throw tooLong('not { providerId: string; providerInfo, ciphertext: Uint8Array }.')
  }
  // Decrypt matches keyrings on the provider ID as stored: one UTF-8 would change could never match again.
  if (loneSurrogateAt(providerId) >= 0) throw tooLong(`provider ID ${quoteIdentifier(providerId)} ${LONE_SURROGATE_PROBLEM}.`)
  return writer
    .lengthPrefixed(utf8(providerId), 'provider ID', tooLong)
    .lengthPrefixed(providerInfo, 'provider info', tooLong)
    .lengthPrefixed(ciphertext, 'ciphertext', tooLong)
}
