import { InvalidEncryptionContextError, MalformedMessageError, TruncatedMessageError } from '../errors.js'
import type { EncryptionContext } from '../types.js'
import { quoteIdentifier } from '../quote.js'
import { ByteReader, EMPTY, LONE_SURROGATE_PROBLEM, byteChars, bytesEqual, compareBytes, fromUtf8, loneSurrogateAt, utf8, utf8Decoder } from './bytes.js'

/** Keys starting with this prefix are written by the library itself, never by callers. */
export const RESERVED_PREFIX = 'aws-crypto-'
/** Where signing suites store the base64 compressed ECDSA public key. */
export const PUBLIC_KEY_CONTEXT_KEY = 'aws-crypto-public-key'

const MAX_SERIALIZED_LENGTH = 0xffff

/**
 * A new null-prototype object for pairs. Made with setPrototypeOf, V8 keeps it in fast mode (Object.create(null)
 * makes a dictionary, and freezing one costs about 0.3 µs more). A key `__proto__` is an ordinary own property.
 */
export function emptyContext(): EncryptionContext {
  return Object.setPrototypeOf({}, null) as EncryptionContext
}

/**
 * Check a caller-supplied context: plain string pairs, no reserved keys. Returns a frozen null-prototype
 * copy, which materials managers and the header can share without copying again.
 */
/**
 * What a value is, as `Object.prototype.toString` names it: `Object` for a plain object (also one from another
 * realm, or without a prototype), `Map`, `Array`, `Null`, `String`... A context must be a plain object: a `Map`'s
 * pairs are not its own properties, so it would pass as an empty context.
 */
export function objectKind(value: unknown): string {
  return Object.prototype.toString.call(value).slice(8, -1)
}

export function validateCallerContext(context: unknown): EncryptionContext {
  if (context === undefined) return NO_PAIRS
  const kind = objectKind(context)
  if (kind !== 'Object') {
    throw new InvalidEncryptionContextError(`encryptionContext must be a plain object of string keys and string values; got ${kind}.`)
  }
  const copy = emptyContext()
  for (const [key, value] of Object.entries(context as Record<string, unknown>)) {
    if (typeof value !== 'string') {
      throw new InvalidEncryptionContextError(`encryptionContext value for key ${quoteIdentifier(key)} must be a string, got ${typeof value}.`)
    }
    if (key.startsWith(RESERVED_PREFIX)) {
      throw new InvalidEncryptionContextError(
        `encryptionContext key ${quoteIdentifier(key)} uses the reserved prefix "${RESERVED_PREFIX}"; choose another key.`,
      )
    }
    if (key === '') throw new InvalidEncryptionContextError('encryptionContext keys must not be empty.')
    copy[key] = value
  }
  const validated = Object.freeze(copy)
  // Serializing now refuses a context the message cannot hold (too long, or text UTF-8 would change) before
  // any keyring sees it; the header then reuses these bytes.
  serializeContext(validated)
  return validated
}

/**
 * Split a context into the pairs the message stores and the pairs it only authenticates (the header tag's
 * extra AAD). Without required keys, `stored` is `context` itself; otherwise both are frozen null-prototype
 * objects. spec: client-apis/encrypt.md#construct-the-header
 */
export function splitContext(
  context: EncryptionContext,
  requiredKeys: readonly string[] | undefined,
): { stored: EncryptionContext; authenticatedOnly: EncryptionContext } {
  // The usual case allocates nothing, so a frozen context keeps its memoized serialization.
  if (requiredKeys === undefined || requiredKeys.length === 0) return { stored: context, authenticatedOnly: NO_PAIRS }
  const stored = emptyContext()
  const authenticatedOnly = emptyContext()
  const required = new Set(requiredKeys)
  for (const [key, value] of Object.entries(context)) {
    if (required.has(key)) authenticatedOnly[key] = value
    else stored[key] = value
  }
  return { stored: Object.freeze(stored), authenticatedOnly: Object.freeze(authenticatedOnly) }
}

const NO_PAIRS: EncryptionContext = Object.freeze(Object.create(null) as EncryptionContext)

/** Whether a context has no pairs (without listing its keys when it is the shared empty one). */
export function isEmptyContext(context: EncryptionContext): boolean {
  return context === NO_PAIRS || Object.keys(context).length === 0
}
/** No required encryption context keys (shared, frozen). */
export const NO_KEYS: readonly string[] = Object.freeze([])

/**
 * Check a set of required encryption context keys against the context it belongs to: an array of keys (a
 * repeated one counts once), each present in the context and none reserved (the library's own pairs must stay in the message),
 * unless `reservedAllowed` (the DynamoDB item suites); the signing public key always stays.
 * spec: framework/structures.md#required-encryption-context-keys
 */
export function checkRequiredKeys(keys: unknown, context: EncryptionContext, who: string, reservedAllowed = false): readonly string[] {
  if (keys === undefined) return []
  if (!Array.isArray(keys)) throw new InvalidEncryptionContextError(`${who}: requiredEncryptionContextKeys must be an array of strings.`)
  for (const key of keys as unknown[]) {
    if (typeof key !== 'string' || key === '') {
      throw new InvalidEncryptionContextError(`${who}: required encryption context keys must be non-empty strings.`)
    }
    // The DynamoDB item format binds its own reserved pairs (table name, key names) without storing them.
    if (key.startsWith(RESERVED_PREFIX) && !(reservedAllowed && key !== PUBLIC_KEY_CONTEXT_KEY)) {
      throw new InvalidEncryptionContextError(`${who}: ${quoteIdentifier(key)} uses the reserved prefix "${RESERVED_PREFIX}" and cannot be left out of the message.`)
    }
    if (!Object.prototype.hasOwnProperty.call(context, key)) {
      throw new InvalidEncryptionContextError(`${who}: the encryption context has no key ${quoteIdentifier(key)}, which is required.`)
    }
  }
  return keys as string[]
}

/**
 * Serialize without the leading 2-byte length: this is the header's AAD field and the raw AES keyring's AAD.
 * An empty context serializes to zero bytes.
 * spec: data-format/message-header.md#aad and framework/structures.md#serialization
 */
export function serializeContext(context: EncryptionContext): Uint8Array {
  if (context === NO_PAIRS) return EMPTY
  // A frozen context cannot change, so its serialization is computed once (encrypt needs it for the
  // keyring's AAD and again for the header).
  const memo = Object.isFrozen(context)
  if (memo && context === last.context) return last.bytes
  const bytes = serializeUncached(context, byBytes)
  if (memo) remember(context, bytes)
  return bytes
}

/**
 * Older official JavaScript releases sorted the raw AES keyring's AAD with `localeCompare`, whose order is the
 * writer's default locale's: first en-US's (a Node server's, in the C and POSIX locales too), then this
 * runtime's own (the official SDK's choice when it decrypts). Collations differ: Thai passes over `_`, Danish
 * puts `aa` after `z`, and WebKit in the POSIX locale compares code points.
 */
const LEGACY_LOCALES = ['en-US', undefined] as const

/**
 * `serializeContext` in each legacy order (LEGACY_LOCALES) that differs from the spec's and from the ones before
 * it: the AADs to try after the spec order, most often none.
 */
export function legacyContextOrders(context: EncryptionContext): Uint8Array[] {
  const keys = Object.keys(context)
  const tried = [keys.map((key): Pair => [byteString(key), '', key]).sort(byBytes).map((pair) => pair[2])]
  const orders: Uint8Array[] = []
  for (const locale of LEGACY_LOCALES) {
    const compare = (a: string, b: string) => a.localeCompare(b, locale)
    const sorted = [...keys].sort(compare)
    if (tried.some((order) => order.every((key, index) => key === sorted[index]))) continue
    tried.push(sorted)
    orders.push(serializeUncached(context, (a, b) => compare(a[2], b[2])))
  }
  return orders
}

/**
 * The last frozen context serialized, by identity: a message needs it again within its own header work.
 * (A WeakMap entry per message cost about 5 µs in garbage collector upkeep.) Contexts are not secret.
 */
const last: { context?: EncryptionContext; bytes: Uint8Array } = { bytes: EMPTY }

function remember(context: EncryptionContext, bytes: Uint8Array): void {
  last.context = context
  last.bytes = bytes
}

/** Text whose characters are all ASCII: its UTF-8 bytes are its character codes. */
const ASCII = /^[\0-\x7f]*$/

/**
 * A string's UTF-8 bytes as a string of one character per byte (ASCII text is its own); `valueOf` names the
 * key when the text is a value. Text UTF-8 cannot carry is refused: the message would store other text, and
 * two such keys could serialize alike. This one check covers the caller's pairs (`validateCallerContext`
 * serializes them) and any a materials manager adds.
 */
function byteString(text: string, valueOf?: string): string {
  if (ASCII.test(text)) return text
  if (loneSurrogateAt(text) >= 0) {
    const which = valueOf === undefined ? 'key' : 'value for key'
    throw new InvalidEncryptionContextError(`The encryption context ${which} ${quoteIdentifier(valueOf ?? text)} ${LONE_SURROGATE_PROBLEM}.`)
  }
  return byteChars(utf8(text))
}

/** A pair as serialized: key and value as `byteString`s, and the key itself. */
type Pair = readonly [keyBytes: string, valueBytes: string, key: string]

/** The spec's order: comparing `byteString`s compares the UTF-8 bytes. */
const byBytes = ([a]: Pair, [b]: Pair): number => (a < b ? -1 : a > b ? 1 : 0)

function serializeUncached(context: EncryptionContext, order: (a: Pair, b: Pair) => number): Uint8Array {
  const keys = Object.keys(context)
  if (keys.length === 0) return EMPTY
  // Each key and value as its UTF-8 bytes, a character per byte, so lengths are byte counts. Most contexts
  // are ASCII and encode nothing.
  const pairs = keys.map((key): Pair => [byteString(key), byteString(context[key] as string, key), key]).sort(order)
  const size = pairs.reduce((sum, [key, value]) => sum + 4 + key.length + value.length, 2)
  // Checked before writing: then every length fits its uint16 field too.
  if (size > MAX_SERIALIZED_LENGTH) {
    throw new InvalidEncryptionContextError(`The serialized encryption context is ${size} bytes; the message format allows at most ${MAX_SERIALIZED_LENGTH}.`)
  }
  const out = new Uint8Array(size)
  let at = writeUint16(out, 0, pairs.length)
  for (const [key, value] of pairs) at = writeBytes(out, writeBytes(out, at, key), value)
  return out
}

function writeUint16(out: Uint8Array, at: number, value: number): number {
  out[at] = value >> 8
  out[at + 1] = value
  return at + 2
}

/** A uint16 length and a `byteString`; returns the offset after it. */
function writeBytes(out: Uint8Array, at: number, bytes: string): number {
  at = writeUint16(out, at, bytes.length)
  for (let index = 0; index < bytes.length; index++) out[at + index] = bytes.charCodeAt(index)
  return at + bytes.length
}

/**
 * The field as text when every byte is ASCII, length fields included (most contexts): one decoder call for
 * all the pairs, where decoding each string costs one. Undefined otherwise. The decoder refuses invalid UTF-8,
 * and every other multi-byte sequence decodes to fewer characters than bytes: text as long as its bytes is ASCII.
 */
function asciiText(bytes: Uint8Array): string | undefined {
  try {
    const text = utf8Decoder.decode(bytes)
    return text.length === bytes.length ? text : undefined
  } catch {
    return undefined // the pair that is not UTF-8 is found and reported one string at a time
  }
}

/**
 * Parse the header's AAD field (the bytes after its 2-byte length). `owned`: the bytes are a copy nothing will
 * change (the parsed header's own), kept as the context's serialization as they are rather than copied.
 */
export function parseContext(bytes: Uint8Array, owned = false): EncryptionContext {
  if (bytes.length === 0) return NO_PAIRS
  // Consecutive messages often share their context (the same application pairs on every message): the
  // same bytes give the same frozen object again, without splitting and interning its strings. ASCII text
  // (most contexts) stands for its bytes, and one string comparison is quicker than a loop over them.
  const ascii = asciiText(bytes)
  if (ascii !== undefined ? ascii === lastParsed.ascii : bytesEqual(bytes, lastParsed.bytes)) {
    if (lastParsed.canonical) remember(lastParsed.context, lastParsed.bytes)
    return lastParsed.context
  }
  try {
    return parsePairs(bytes, owned, ascii)
  } catch (error) {
    // The field's length was already read, so running out of bytes inside it is malformed, not truncated.
    if (error instanceof TruncatedMessageError) {
      throw new MalformedMessageError(`The message's encryption context is shorter than its pairs claim.`, { cause: error })
    }
    throw error
  }
}

/** `ascii`: the field as text when it is all ASCII (see asciiText). */
function parsePairs(bytes: Uint8Array, owned: boolean, ascii: string | undefined): EncryptionContext {
  const context = emptyContext()
  const reader = new ByteReader(bytes)
  const count = reader.uint16('encryption context pair count')
  if (count === 0) throw new MalformedMessageError('The message stores an encryption context with zero pairs but a non-zero length.')
  let previousKey: Uint8Array | string | undefined
  let canonical = true
  for (let index = 0; index < count; index++) {
    let key: string
    let value: string
    if (ascii !== undefined) {
      // Byte offsets are character offsets, and string order is byte order.
      key = ascii.slice(reader.skipLengthPrefixed('encryption context key'), reader.offset)
      value = ascii.slice(reader.skipLengthPrefixed('encryption context value'), reader.offset)
      if (previousKey !== undefined && previousKey >= key) canonical = false
      previousKey = key
    } else {
      const keyBytes = reader.lengthPrefixed('encryption context key')
      key = fromUtf8(keyBytes, 'encryption context key')
      value = fromUtf8(reader.lengthPrefixed('encryption context value'), 'encryption context value')
      if (previousKey !== undefined && compareBytes(previousKey as Uint8Array, keyBytes) >= 0) canonical = false
      previousKey = keyBytes
    }
    // Keys in strictly increasing order cannot repeat: only a key out of order needs the lookup.
    if (!canonical && Object.prototype.hasOwnProperty.call(context, key)) {
      throw new MalformedMessageError(`The message's encryption context has key ${quoteIdentifier(key)} twice.`)
    }
    context[key] = value
  }
  if (reader.remaining !== 0) {
    throw new MalformedMessageError(`The message's encryption context has bytes after its last pair.`)
  }
  // The parsed context is immutable; when the message stored it in the spec's order, its bytes are
  // already what serializeContext would produce (the raw AES keyring's AAD on decrypt).
  Object.freeze(context)
  const stable = owned ? bytes : bytes.slice()
  if (canonical) remember(context, stable)
  lastParsed = { bytes: stable, ascii, context, canonical }
  return context
}

/**
 * The last context parsed from a message: its bytes (which nothing changes), their text when ASCII, and
 * whether they were in the spec's order.
 */
let lastParsed: {
  readonly bytes: Uint8Array
  readonly ascii: string | undefined
  readonly context: EncryptionContext
  readonly canonical: boolean
} = { bytes: EMPTY, ascii: undefined, context: NO_PAIRS, canonical: true }
