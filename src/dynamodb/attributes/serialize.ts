// DynamoDB attribute values to terminals (type ID + value bytes) and back.
// spec: dynamodb-encryption-client/ddb-attribute-serialization.md, ddb-item-conversion.md
import { EnvelopeError } from '../../errors.js'
import { byteCount, bytesThat } from '../../byte-count.js'
import { notBytes } from '../../input-refusal.js'
import { ByteWriter, LONE_SURROGATE_PROBLEM, compareBytes, loneSurrogateAt, setUint32At, utf8Decoder } from '../../format/bytes.js'
import { quoteIdentifier } from '../../quote.js'
import { InvalidItemError, MalformedItemError } from '../errors.js'
import type { AttributeValue, Terminal } from '../types.js'
import { normalizeNumber } from './numbers.js'
import { objectKind } from '../../format/context.js'
import { isBytes } from '../../is-bytes.js'

/** spec: ddb-attribute-serialization.md#type-id */
export const TYPE_ID = Object.freeze({
  NULL: 0x0000,
  S: 0x0001,
  N: 0x0002,
  B: 0xffff,
  BOOL: 0x0004,
  SS: 0x0101,
  NS: 0x0102,
  BS: 0x01ff,
  M: 0x0200,
  L: 0x0300,
} as const)

type TypeName = keyof typeof TYPE_ID
const TYPE_NAMES = Object.keys(TYPE_ID) as TypeName[]
const NAME_OF_TYPE = new Map<number, TypeName>(TYPE_NAMES.map((name) => [TYPE_ID[name], name]))

/** DynamoDB nests lists and maps at most 32 levels deep. */
export const MAX_DEPTH = 32

const encoder = new TextEncoder()

/** The one member set on `value`; InvalidItemError unless exactly one known member is. */
function memberOf(value: AttributeValue, path: string): TypeName {
  if (typeof value !== 'object' || value === null) throw new InvalidItemError(`${path} is not a DynamoDB attribute value.`)
  const members = TYPE_NAMES.filter((name) => (value as Record<string, unknown>)[name] !== undefined)
  if (members.length !== 1) {
    throw new InvalidItemError(`${path} must have exactly one of ${TYPE_NAMES.join(', ')} set; it has ${members.length === 0 ? 'none' : members.join(', ')}.`)
  }
  return members[0] as TypeName
}

/** The format's writer, plus strings encoded in place and a nested value's type and length filled in after it. */
class Writer extends ByteWriter {
  constructor() {
    super(64) // V8 keeps typed arrays of up to 64 bytes on its heap, cheaper to make than larger ones
  }
  /** UTF-8 of `text`, encoded in place (a UTF-16 unit takes at most 3 bytes); returns its length. */
  text(text: string): number {
    const at = this.reserve(text.length * 3)
    let written: number
    // TextEncoder polyfills (fast-text-encoding, which React Native applications load where the engine has none) may lack encodeInto.
    if (typeof encoder.encodeInto === 'function') written = encoder.encodeInto(text, this.buffer.subarray(at)).written
    else {
      const bytes = encoder.encode(text)
      this.buffer.set(bytes, at)
      written = bytes.length
    }
    this.length = at + written
    return written
  }
  /** Room for a nested value's type and length (`nested`), before the value is written; returns where it is. */
  nestedStart(): number {
    return this.reserve(6)
  }
  /** Fill in the type and length of the nested value written since `at` (from `nestedStart`). */
  nested(at: number, typeId: number): void {
    this.buffer[at] = typeId >>> 8
    this.buffer[at + 1] = typeId & 0xff
    setUint32At(this.buffer, at + 2, this.length - at - 6)
  }
  /** What was written, in an array of its own length. */
  finish(): Uint8Array {
    return this.buffer.slice(0, this.length)
  }
}

function stringMember(value: unknown, path: string): string {
  if (typeof value !== 'string') throw new InvalidItemError(`${path} must be a string.`)
  encodable(value, () => path)
  return value
}

/** Refuse text UTF-8 would change: decrypt would return, and signatures cover, another string. `what` names it. */
function encodable(text: string, what: () => string): void {
  if (loneSurrogateAt(text) >= 0) throw new InvalidItemError(`${what()} ${LONE_SURROGATE_PROBLEM}.`)
}

/** Why a binary is a string: the item came unconverted from DynamoDB JSON. */
export const BASE64_BINARIES = `DynamoDB JSON (a stream record in a Lambda event, the AWS CLI's output) holds binaries as base64`

function binaryMember(value: unknown, path: string): Uint8Array {
  if (isBytes(value)) return value
  const got = typeof value === 'string' ? `got a string: ${BASE64_BINARIES}; convert such an item with itemFromDynamoDbJson` : notBytes(value)
  throw new InvalidItemError(`${path} must be a Uint8Array; ${got}.`)
}

function setEntries(kind: 'SS' | 'NS' | 'BS', value: unknown, path: string): Uint8Array[] {
  if (!Array.isArray(value)) throw new InvalidItemError(`${path}.${kind} must be an array.`)
  if (value.length === 0) throw new InvalidItemError(`${path}.${kind} is empty; DynamoDB sets have at least one member.`)
  let entries: Uint8Array[]
  if (kind === 'BS') {
    entries = value.map((entry, index) => binaryMember(entry, `${path}.BS[${index}]`)).sort(compareBytes)
  } else {
    // spec: UTF-16 binary order, which is JavaScript's default string order; numbers after normalization.
    const strings = value.map((entry, index) =>
      kind === 'NS' ? normalizeNumber(stringMember(entry, `${path}.NS[${index}]`), `${path}.NS[${index}]`) : stringMember(entry, `${path}.SS[${index}]`),
    )
    entries = strings.sort().map((entry) => encoder.encode(entry))
  }
  for (let i = 1; i < entries.length; i++) {
    if (compareBytes(entries[i - 1] as Uint8Array, entries[i] as Uint8Array) === 0) {
      throw new InvalidItemError(`${path}.${kind} has a duplicate member; DynamoDB sets hold distinct values.`)
    }
  }
  return entries
}

function writeValue(writer: Writer, value: AttributeValue, path: string, depth: number): number {
  const type = memberOf(value, path)
  const member = (value as Record<string, unknown>)[type]
  switch (type) {
    case 'NULL':
      if (member !== true) throw new InvalidItemError(`${path}.NULL must be true.`)
      break
    case 'S':
      writer.text(stringMember(member, `${path}.S`))
      break
    case 'N':
      writer.text(normalizeNumber(stringMember(member, `${path}.N`), `${path}.N`))
      break
    case 'B':
      writer.bytes(binaryMember(member, `${path}.B`))
      break
    case 'BOOL':
      if (typeof member !== 'boolean') throw new InvalidItemError(`${path}.BOOL must be a boolean.`)
      writer.uint8(member ? 1 : 0)
      break
    case 'SS':
    case 'NS':
    case 'BS': {
      const entries = setEntries(type, member, path)
      writer.uint32(entries.length)
      for (const entry of entries) {
        writer.uint32(entry.length)
        writer.bytes(entry)
      }
      break
    }
    case 'L': {
      if (!Array.isArray(member)) throw new InvalidItemError(`${path}.L must be an array.`)
      if (depth >= MAX_DEPTH) throw new InvalidItemError(`${path} nests lists and maps more than ${MAX_DEPTH} levels deep.`)
      writer.uint32(member.length)
      member.forEach((entry, index) => writeNested(writer, entry, `${path}.L[${index}]`, depth + 1))
      break
    }
    case 'M': {
      // A Map's entries are not its own properties: read as an object it would be stored as an empty map.
      const kind = objectKind(member)
      if (kind !== 'Object') throw new InvalidItemError(`${path}.M must be a plain object of attribute values; got ${kind}.`)
      if (depth >= MAX_DEPTH) throw new InvalidItemError(`${path} nests lists and maps more than ${MAX_DEPTH} levels deep.`)
      // spec: map entries in UTF-16 binary order of their keys
      const keys = Object.keys(member as object).sort()
      writer.uint32(keys.length)
      for (const key of keys) {
        if (key === '') throw new InvalidItemError(`${path}.M has an empty key; DynamoDB map keys are non-empty.`)
        encodable(key, () => `${path}.M key ${quoteIdentifier(key)}`) // quoted only when refused
        // A map key is written as a nested string, its length filled in once it is encoded.
        const keyAt = writer.nestedStart()
        writer.text(key)
        writer.nested(keyAt, TYPE_ID.S)
        writeNested(writer, (member as Record<string, AttributeValue>)[key] as AttributeValue, `${path}.M.${key}`, depth + 1)
      }
      break
    }
  }
  return TYPE_ID[type]
}

/** A list entry or map value: type, length, value. The length is known only after the value is written. */
function writeNested(writer: Writer, value: AttributeValue, path: string, depth: number): void {
  const at = writer.nestedStart()
  writer.nested(at, writeValue(writer, value, path, depth))
}

/** Serialize one attribute value; InvalidItemError (naming `name`) for anything DynamoDB would refuse. */
export function serializeAttribute(value: AttributeValue, name = 'attribute'): Terminal {
  const writer = new Writer()
  const typeId = writeValue(writer, value, name, 0)
  return { typeId, value: writer.finish() }
}

class Reader {
  offset = 0
  constructor(
    readonly bytes: Uint8Array,
    readonly path: string,
  ) {}

  #need(length: number, what: string): void {
    if (length > this.bytes.length - this.offset) {
      throw new MalformedItemError(`${this.path}: ${what} needs ${byteCount(length)}; only ${bytesThat(this.bytes.length - this.offset, 'remain')}.`)
    }
  }
  take(length: number, what: string): Uint8Array {
    this.#need(length, what)
    const out = this.bytes.subarray(this.offset, this.offset + length)
    this.offset += length
    return out
  }
  // Read in place: no view, no destructuring.
  uint16(what: string): number {
    this.#need(2, what)
    const { bytes, offset } = this
    this.offset = offset + 2
    return ((bytes[offset] as number) << 8) | (bytes[offset + 1] as number)
  }
  uint32(what: string): number {
    this.#need(4, what)
    const { bytes, offset } = this
    this.offset = offset + 4
    return (bytes[offset] as number) * 0x1000000 + (((bytes[offset + 1] as number) << 16) | ((bytes[offset + 2] as number) << 8) | (bytes[offset + 3] as number))
  }
  /** A count of entries, each at least `minimumEntryLength` bytes: refused before anything is allocated for it. */
  count(what: string, minimumEntryLength: number): number {
    const count = this.uint32(what)
    if (count * minimumEntryLength > this.bytes.length - this.offset) {
      throw new MalformedItemError(`${this.path}: ${what} of ${count} cannot fit: only ${bytesThat(this.bytes.length - this.offset, 'remain')}.`)
    }
    return count
  }
}

function text(bytes: Uint8Array, path: string): string {
  try {
    return utf8Decoder.decode(bytes)
  } catch (error) {
    throw new MalformedItemError(`${path} is not valid UTF-8.`, { cause: error })
  }
}

function number(bytes: Uint8Array, path: string): string {
  const value = text(bytes, path)
  try {
    if (normalizeNumber(value, path) === value) return value
  } catch (error) {
    if (!(error instanceof EnvelopeError)) throw error
  }
  // A decrypted value may be secret: it stays out of the message.
  throw new MalformedItemError(`${path} holds a number not in the form DynamoDB stores (the value is not shown: it may be secret).`)
}

function readSet(reader: Reader, type: 'SS' | 'NS' | 'BS'): AttributeValue {
  const count = reader.count('set count', 4)
  const entries: Uint8Array[] = []
  for (let i = 0; i < count; i++) entries.push(reader.take(reader.uint32('set entry length'), 'set entry'))
  for (let i = 1; i < entries.length; i++) {
    if (compareBytes(entries[i - 1] as Uint8Array, entries[i] as Uint8Array) === 0) throw new MalformedItemError(`${reader.path}: the set has a duplicate member.`)
  }
  if (type === 'BS') return { BS: entries.map((entry) => entry.slice()) }
  const strings = entries.map((entry, index) => (type === 'NS' ? number(entry, `${reader.path}[${index}]`) : text(entry, `${reader.path}[${index}]`)))
  return type === 'NS' ? { NS: strings } : { SS: strings }
}

function readValue(typeId: number, bytes: Uint8Array, path: string, depth: number): AttributeValue {
  const type = NAME_OF_TYPE.get(typeId)
  if (type === undefined) throw new MalformedItemError(`${path} has unknown type ID 0x${typeId.toString(16).padStart(4, '0')}.`)
  const reader = new Reader(bytes, path)
  let value: AttributeValue
  switch (type) {
    case 'NULL':
      reader.take(0, 'null')
      value = { NULL: true }
      break
    case 'S':
      return { S: text(bytes, path) }
    case 'N':
      return { N: number(bytes, path) }
    case 'B':
      return { B: bytes.slice() }
    case 'BOOL': {
      const flag = reader.take(1, 'boolean')[0]
      if (flag !== 0 && flag !== 1) throw new MalformedItemError(`${path} holds boolean byte ${flag}; only 0 and 1 exist.`)
      value = { BOOL: flag === 1 }
      break
    }
    case 'SS':
    case 'NS':
    case 'BS':
      value = readSet(reader, type)
      break
    case 'L':
    case 'M': {
      if (depth >= MAX_DEPTH) throw new MalformedItemError(`${path} nests lists and maps more than ${MAX_DEPTH} levels deep.`)
      if (type === 'L') {
        const count = reader.count('list count', 6)
        const list: AttributeValue[] = []
        for (let i = 0; i < count; i++) {
          const entryType = reader.uint16('list entry type')
          list.push(readValue(entryType, reader.take(reader.uint32('list entry length'), 'list entry'), `${path}[${i}]`, depth + 1))
        }
        value = { L: list }
        break
      }
      const count = reader.count('map count', 12)
      const map: Record<string, AttributeValue> = Object.create(null)
      for (let i = 0; i < count; i++) {
        if (reader.uint16('map key type') !== TYPE_ID.S) throw new MalformedItemError(`${path}: a map key is not a string.`)
        const key = text(reader.take(reader.uint32('map key length'), 'map key'), `${path} map key`)
        if (key === '') throw new MalformedItemError(`${path}: a map key is empty; DynamoDB map keys are non-empty.`)
        if (Object.prototype.hasOwnProperty.call(map, key)) throw new MalformedItemError(`${path}: a map key appears twice.`)
        const valueType = reader.uint16('map value type')
        map[key] = readValue(valueType, reader.take(reader.uint32('map value length'), 'map value'), `${path}.${key}`, depth + 1)
      }
      value = { M: { ...map } }
      break
    }
  }
  if (reader.offset !== bytes.length) throw new MalformedItemError(`${path}: ${bytesThat(bytes.length - reader.offset, 'follow')} the value.`)
  return value
}

/** The attribute value a terminal holds; MalformedItemError for bytes no serialization produces. */
export function deserializeAttribute(terminal: Terminal, name = 'attribute'): AttributeValue {
  return readValue(terminal.typeId, terminal.value, name, 0)
}
