import { MalformedMessageError, TruncatedMessageError } from '../errors.js'
import type { Bytes } from '../types.js'

/** Zero bytes, shared (nothing can be written to it). */
export const EMPTY = new Uint8Array(0)
/** Twelve zero bytes, shared as an IV (the header tag's; intermediate key wrapping's): never written to. */
export const ZERO_IV = new Uint8Array(12)

const utf8Encoder = new TextEncoder()
/**
 * The one decoder for stored strings: throws on invalid UTF-8, and keeps a leading U+FEFF (without
 * ignoreBOM, TextDecoder drops it).
 */
export const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * An unpaired UTF-16 surrogate: UTF-8 has no encoding for one, and TextEncoder writes U+FFFD in its place. (With
 * the u flag a pair is one code point, outside the range. As a range, not \p{Cs}: Hermes has no property escapes.)
 */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u

/**
 * Where `text` has a lone UTF-16 surrogate, or -1. UTF-8 cannot carry such text unchanged, so a message
 * would store, and decrypt would return, a different string from the caller's.
 */
export function loneSurrogateAt(text: string): number {
  return text.search(LONE_SURROGATE)
}

/** How an error message ends when `loneSurrogateAt` finds one. */
export const LONE_SURROGATE_PROBLEM = 'has a lone UTF-16 surrogate, which UTF-8 cannot store (it would become U+FFFD): fix or remove that character'

/** Bytes as a string of one character per byte (what `btoa` takes), in one call per 32 KiB. */
export function byteChars(bytes: Uint8Array): string {
  let chars = ''
  for (let at = 0; at < bytes.length; at += 0x8000) chars += String.fromCharCode.apply(null, bytes.subarray(at, at + 0x8000) as unknown as number[])
  return chars
}

/** UTF-8 bytes of `text`; short ASCII text (most keys, names and context pairs) without a call into TextEncoder. */
export function utf8(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length > 64 ? 0 : text.length)
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index)
    if (code > 0x7f || index >= bytes.length) return utf8Encoder.encode(text)
    bytes[index] = code
  }
  return bytes
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
export function copyBytes(bytes: Uint8Array): Bytes {
  return new Uint8Array(bytes)
}

export function concatBytes(parts: readonly Uint8Array[]): Bytes {
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
 * True when every byte is zero, in time that depends only on the length. A data key of zeros is one the library
 * has already used and zeroed (a random one is all zeros with probability 2^-128 or less).
 */
export function isAllZero(bytes: Uint8Array): boolean {
  let bits = 0
  for (let i = 0; i < bytes.length; i++) bits |= bytes[i] as number
  return bits === 0
}

/** The big-endian uint32 at `offset` (in bounds). */
export function uint32At(bytes: Uint8Array, offset: number): number {
  return (((bytes[offset] as number) << 24) | ((bytes[offset + 1] as number) << 16) | ((bytes[offset + 2] as number) << 8) | (bytes[offset + 3] as number)) >>> 0
}

/** Write `value` as a big-endian uint32 at `offset` (in bounds). */
export function setUint32At(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 24
  bytes[offset + 1] = (value >>> 16) & 0xff
  bytes[offset + 2] = (value >>> 8) & 0xff
  bytes[offset + 3] = value & 0xff
}

/**
 * Bounds-checked big-endian reader over a view of the input. Every read checks the remaining length
 * before touching (or allocating for) what a length field claims, so a hostile length costs nothing.
 * Slices returned are views into the input, not copies.
 */
export class ByteReader {
  offset: number
  /**
   * Bytes known to follow the next field, counted in a truncation's `minimumLength`: how many bytes a stream
   * waits for before it parses again.
   */
  following = 0
  /**
   * Where the field being read may end at most, counting `following`: past it, `pastLimit()` is thrown, whether the
   * bytes are there or not, so the answer does not depend on how much of the input has come (a header's
   * maxHeaderSize in a decrypt stream).
   */
  limit = Number.POSITIVE_INFINITY
  pastLimit: (() => Error) | undefined

  constructor(
    readonly bytes: Uint8Array,
    offset = 0,
  ) {
    this.offset = offset
  }

  get remaining(): number {
    return this.bytes.length - this.offset
  }

  private need(count: number, what: string): void {
    const end = this.offset + count + this.following
    if (end > this.limit) throw (this.pastLimit as () => Error)()
    if (count > this.remaining) {
      // The plural is spelled here rather than by byteCount: this module is in a browser application's first load.
      throw new TruncatedMessageError(
        `The message ends inside its ${what}: ${count} byte${count === 1 ? '' : 's'} needed at offset ${this.offset}, ${this.remaining} left.`,
        { minimumLength: end },
      )
    }
  }

  uint8(what: string): number {
    this.need(1, what)
    return this.bytes[this.offset++] as number
  }

  uint16(what: string): number {
    this.need(2, what)
    return this.uint16At()
  }

  uint32(what: string): number {
    this.need(4, what)
    const value = uint32At(this.bytes, this.offset)
    this.offset += 4
    return value
  }

  /** A uint64 that must fit a safe integer (lengths in this format never exceed 2^36). */
  uint64(what: string): number {
    this.need(8, what)
    const high = uint32At(this.bytes, this.offset)
    const low = uint32At(this.bytes, this.offset + 4)
    this.offset += 8
    if (high > 0x1fffff) throw new MalformedMessageError(`The message's ${what} is impossibly large.`)
    return high * 0x1_0000_0000 + low
  }

  /** Step over `length` bytes; returns where they start. */
  skip(length: number, what: string): number {
    this.need(length, what)
    this.offset += length
    return this.offset - length
  }

  slice(length: number, what: string): Uint8Array {
    this.need(length, what)
    const out = this.bytes.subarray(this.offset, this.offset + length)
    this.offset += length
    return out
  }

  /** A field prefixed by its uint16 length. */
  lengthPrefixed(what: string): Uint8Array {
    const start = this.skipLengthPrefixed(what)
    return this.bytes.subarray(start, this.offset)
  }

  /** Step over a field prefixed by its uint16 length; returns where the field starts (it ends at the new offset). */
  skipLengthPrefixed(what: string): number {
    if (this.remaining < 2) this.need(2, `${what} length`) // the label is built only for the error
    const length = this.uint16At()
    this.need(length, what)
    const start = this.offset
    this.offset += length
    return start
  }

  /** The uint16 at the offset, whose 2 bytes the caller has checked are there. */
  private uint16At(): number {
    const value = ((this.bytes[this.offset] as number) << 8) | (this.bytes[this.offset + 1] as number)
    this.offset += 2
    return value
  }
}

/** Appends big-endian fields into a growable buffer. Used for headers and footers, never bulk data. */
export class ByteWriter {
  protected buffer: Uint8Array
  length = 0

  constructor(initialCapacity: number) {
    this.buffer = new Uint8Array(initialCapacity)
  }

  /** Room for `count` more bytes; returns where they start. */
  protected reserve(count: number): number {
    const start = this.length
    if (start + count > this.buffer.length) {
      const grown = new Uint8Array(Math.max(this.buffer.length * 2, start + count))
      grown.set(this.buffer.subarray(0, start))
      this.buffer = grown
    }
    this.length += count
    return start
  }

  uint8(value: number): this {
    const at = this.reserve(1)
    this.buffer[at] = value
    return this
  }

  uint16(value: number): this {
    const at = this.reserve(2)
    this.buffer[at] = value >>> 8
    this.buffer[at + 1] = value
    return this
  }

  uint32(value: number): this {
    const at = this.reserve(4)
    setUint32At(this.buffer, at, value)
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

  /**
   * What was written, followed by `room` zero bytes: a view of the writer's own buffer when that has the room
   * (no second buffer and copy; the writer must not be written to afterwards), else a copy.
   */
  toBytes(room = 0): Uint8Array {
    const end = this.length + room
    if (end <= this.buffer.length) return this.buffer.subarray(0, end)
    const out = new Uint8Array(end)
    out.set(this.buffer.subarray(0, this.length))
    return out
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
