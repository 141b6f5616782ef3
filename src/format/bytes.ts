import { MalformedMessageError, TruncatedMessageError } from '../errors.js'

const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder('utf-8', { fatal: true })

export function utf8(text: string): Uint8Array {
  return utf8Encoder.encode(text)
}

/** Decode UTF-8, refusing invalid sequences: the format stores only valid UTF-8 strings. */
export function fromUtf8(bytes: Uint8Array, what: string): string {
  try {
    return utf8Decoder.decode(bytes)
  } catch (error) {
    throw new MalformedMessageError(`The message's ${what} is not valid UTF-8.`, { cause: error })
  }
}

/** A copy that owns its memory. (`Buffer#slice` returns a view, so `.slice()` is no copy for Buffers.) */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes)
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0
  for (const part of parts) length += part.length
  const out = new Uint8Array(length)
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * Bounds-checked big-endian reader over a view of the input. Every read checks the remaining length
 * before touching (or allocating for) what a length field claims, so a hostile length costs nothing.
 * Slices returned are views into the input, not copies.
 */
export class ByteReader {
  private readonly view: DataView
  offset: number

  constructor(
    readonly bytes: Uint8Array,
    offset = 0,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.offset = offset
  }

  get remaining(): number {
    return this.bytes.length - this.offset
  }

  private need(count: number, what: string): void {
    if (count > this.remaining) {
      throw new TruncatedMessageError(
        `The message ends inside its ${what}: ${count} bytes needed at offset ${this.offset}, ${this.remaining} left.`,
        { minimumLength: this.offset + count },
      )
    }
  }

  uint8(what: string): number {
    this.need(1, what)
    return this.view.getUint8(this.offset++)
  }

  uint16(what: string): number {
    this.need(2, what)
    const value = this.view.getUint16(this.offset)
    this.offset += 2
    return value
  }

  uint32(what: string): number {
    this.need(4, what)
    const value = this.view.getUint32(this.offset)
    this.offset += 4
    return value
  }

  /** A uint64 that must fit a safe integer (lengths in this format never exceed 2^36). */
  uint64(what: string): number {
    this.need(8, what)
    const high = this.view.getUint32(this.offset)
    const low = this.view.getUint32(this.offset + 4)
    this.offset += 8
    if (high > 0x1fffff) throw new MalformedMessageError(`The message's ${what} is impossibly large.`)
    return high * 0x1_0000_0000 + low
  }

  slice(length: number, what: string): Uint8Array {
    this.need(length, what)
    const out = this.bytes.subarray(this.offset, this.offset + length)
    this.offset += length
    return out
  }

  /** A field prefixed by its uint16 length. */
  lengthPrefixed(what: string): Uint8Array {
    return this.slice(this.uint16(`${what} length`), what)
  }
}

/** Appends big-endian fields into a growable buffer. Used for headers and footers, never bulk data. */
export class ByteWriter {
  private buffer: Uint8Array
  private view: DataView
  length = 0

  constructor(initialCapacity = 256) {
    this.buffer = new Uint8Array(initialCapacity)
    this.view = new DataView(this.buffer.buffer)
  }

  private reserve(count: number): number {
    const start = this.length
    if (start + count > this.buffer.length) {
      const grown = new Uint8Array(Math.max(this.buffer.length * 2, start + count))
      grown.set(this.buffer.subarray(0, start))
      this.buffer = grown
      this.view = new DataView(grown.buffer)
    }
    this.length += count
    return start
  }

  uint8(value: number): this {
    const at = this.reserve(1)
    this.view.setUint8(at, value)
    return this
  }

  uint16(value: number): this {
    const at = this.reserve(2)
    this.view.setUint16(at, value)
    return this
  }

  uint32(value: number): this {
    const at = this.reserve(4)
    this.view.setUint32(at, value)
    return this
  }

  uint64(value: number): this {
    const at = this.reserve(8)
    this.view.setUint32(at, Math.floor(value / 0x1_0000_0000))
    this.view.setUint32(at + 4, value >>> 0)
    return this
  }

  bytes(value: Uint8Array): this {
    const at = this.reserve(value.length) // before reading this.buffer: reserve may replace it
    this.buffer.set(value, at)
    return this
  }

  /** A field prefixed by its uint16 length; refuses fields the format cannot represent. */
  lengthPrefixed(value: Uint8Array, what: string, onTooLong: (message: string) => Error): this {
    if (value.length > 0xffff) throw onTooLong(`${what} is ${value.length} bytes; the format allows at most 65535.`)
    return this.uint16(value.length).bytes(value)
  }

  toBytes(): Uint8Array {
    return this.buffer.slice(0, this.length)
  }
}

/** Lexicographic order of byte strings (shorter first on a shared prefix), as the spec sorts keys and data keys. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length)
  for (let i = 0; i < length; i++) {
    const difference = (a[i] as number) - (b[i] as number)
    if (difference !== 0) return difference
  }
  return a.length - b.length
}
