import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { legacyContextOrders, parseContext, serializeContext } from '../src/format/context.js'
import { ByteReader, ByteWriter, byteChars, bytesEqual, compareBytes, concatBytes, isAllZero, utf8 } from '../src/format/bytes.js'
import { readFrame, skipFrame } from '../src/format/frame.js'
import { parseHeader } from '../src/format/header.js'
import { MalformedMessageError, MultiKeyring, RawAesKeyring, TruncatedMessageError, decrypt, encrypt, type Keyring, type MessageHeader } from '../src/index.js'
import { rejectionOf, rsaKeyring, runModuleScript, spyKeyring, thrownBy } from './helpers/fixtures.js'
import { frameFields } from './helpers/craft.js'

/** The keys of a serialized context in the order stored (the parser gives them in the spec's order). */
function storedKeys(bytes: Uint8Array): string[] {
  const view = Buffer.from(bytes)
  const keys: string[] = []
  let at = 2
  for (let pair = 0; pair < view.readUInt16BE(0); pair++) {
    const keyLength = view.readUInt16BE(at)
    keys.push(view.toString('utf8', at + 2, at + 2 + keyLength))
    at += 2 + keyLength
    at += 2 + view.readUInt16BE(at)
  }
  return keys
}

/** The context in its first legacy order, or the spec's when every legacy order is the spec's. */
const inLegacyOrder = (context: Record<string, string>) => legacyContextOrders(context)[0] ?? serializeContext(context).slice()

const contextArbitrary = fc.dictionary(
  fc.string({ minLength: 1, maxLength: 8, unit: 'binary' }),
  fc.string({ maxLength: 8, unit: 'binary' }),
  { maxKeys: 8 },
)

describe('encryption context serialization', () => {
  it('round trips and is sorted by the UTF-8 bytes of the keys', () => {
    fc.assert(
      fc.property(contextArbitrary, (context) => {
        const bytes = serializeContext(context)
        expect({ ...parseContext(bytes) }).toEqual({ ...context })
        const keys = Object.keys(parseContext(bytes))
        const utf8Keys = keys.map((key) => Buffer.from(key, 'utf8'))
        for (let i = 1; i < utf8Keys.length; i++) expect(Buffer.compare(utf8Keys[i - 1]!, utf8Keys[i]!)).toBeLessThan(0)
      }),
    )
  })

  it('writes exactly the bytes of a reference serializer, for ASCII and any other strings', () => {
    // Reference: UTF-8 of each pair, sorted by key bytes, each field uint16-length-prefixed after a uint16 count.
    const reference = (context: Record<string, string>): Buffer => {
      const pairs = Object.entries(context)
        .map(([key, value]) => [Buffer.from(key, 'utf8'), Buffer.from(value, 'utf8')] as const)
        .sort(([a], [b]) => Buffer.compare(a, b))
      const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff])
      return Buffer.concat([u16(pairs.length), ...pairs.flatMap(([key, value]) => [u16(key.length), key, u16(value.length), value])])
    }
    const text = (minLength: number) =>
      fc.oneof(fc.string({ minLength, maxLength: 12, unit: 'grapheme-ascii' }), fc.string({ minLength, maxLength: 12, unit: 'binary' }))
    fc.assert(
      fc.property(fc.dictionary(text(1), text(0), { minKeys: 1, maxKeys: 8 }), (context) => {
        expect(Buffer.from(serializeContext(context)).equals(reference(context))).toBe(true)
      }),
      { numRuns: 500 },
    )
    // Fields of 256 bytes and more, whose uint16 lengths have a high byte, and a pair count over 255.
    const long = { ['k'.repeat(256)]: 'v'.repeat(300), ['\u00e9'.repeat(200)]: '\u{1F600}'.repeat(100), short: 'x'.repeat(255) }
    const many = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`key-${i}`, i % 2 === 0 ? `${i}` : '\u00fc']))
    for (const context of [long, many]) expect(Buffer.from(serializeContext(context)).equals(reference(context))).toBe(true)
  })

  it('orders astral characters after U+FFFD, unlike UTF-16 code unit order', () => {
    const bytes = serializeContext({ '\u{1F600}': '1', '\uFFFD': '2' })
    expect(Object.keys(parseContext(bytes))).toEqual(['\uFFFD', '\u{1F600}'])
  })

  it('keeps a leading U+FEFF (byte order mark) in keys and values, and tells such a key from the same key without it', () => {
    const context = { '\uFEFFa': '\uFEFFone', a: 'two', b: '\uFEFF' }
    const parsed = parseContext(serializeContext(context))
    expect({ ...parsed }).toEqual(context)
    expect(Object.keys(parsed)).toHaveLength(3)
  })

  it('empty context serializes to nothing', () => {
    expect(serializeContext({})).toHaveLength(0)
    expect(Object.keys(parseContext(new Uint8Array(0)))).toEqual([])
  })

  it('legacy localeCompare orders: only those that differ from the spec order and from each other', () => {
    // Orders every locale agrees on: case aside, a before b.
    expect(legacyContextOrders({ a: '1', B: '2' }).map(storedKeys)).toEqual([['a', 'B']])
    expect(legacyContextOrders({ a: '1', b: '2' })).toEqual([])
    expect(legacyContextOrders({})).toEqual([])
    expect(storedKeys(serializeContext({ a: '1', B: '2' }))).toEqual(['B', 'a'])
  })

  it.each([
    // en-US, then Danish (aa after z), each differing from the spec's byte order (Zeta, aa, z).
    ['da_DK.UTF-8', [['aa', 'z', 'Zeta'], ['z', 'Zeta', 'aa']]],
    // Thai passes over _ (it sorts _x as x); en-US puts it before letters, the spec's byte order after capitals.
    ['th_TH.UTF-8', [['_x', 'aa', 'z', 'Zeta'], ['aa', '_x', 'z', 'Zeta']]],
    // The C locale is en-US to Node: one legacy order.
    ['C', [['aa', 'z', 'Zeta']]],
  ])('legacy orders in a process whose locale is %s: en-US first, then the locale\'s own', async (locale, expected) => {
    const keys = expected[0] as string[]
    const script = `
      const { legacyContextOrders } = await import(${JSON.stringify(new URL('../src/format/context.ts', import.meta.url).href)})
      const context = Object.fromEntries(${JSON.stringify(keys)}.map((key) => [key, 'v']))
      console.log(JSON.stringify(legacyContextOrders(context).map((bytes) => Buffer.from(bytes).toString('base64'))))`
    const orders = await runModuleScript<string[]>(script, { LC_ALL: locale, LANG: locale })
    expect(orders.map((order) => storedKeys(Buffer.from(order, 'base64')))).toEqual(expected)
  })

  it('refuses a context too large for the format', () => {
    // One field longer than its uint16 length can say.
    expect(() => serializeContext({ big: 'x'.repeat(70000) })).toThrow(/serialized encryption context is 70009 bytes; the message format allows at most 65535/)
    expect(() => serializeContext({ ['k'.repeat(70000)]: 'v' })).toThrow(/serialized encryption context is 70007 bytes/)
    // Every field fits, the whole does not.
    const many = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`key${i}`, 'v'.repeat(3000)]))
    expect(() => serializeContext(many)).toThrow(/serialized encryption context is \d+ bytes; the message format allows at most 65535/)
  })

  it('encrypt refuses a context too large for the format, or one UTF-8 would change, before any keyring runs', async () => {
    const { keyring, calls } = spyKeyring(new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: new Uint8Array(32).fill(7) }))
    for (const encryptionContext of [{ big: 'x'.repeat(0xffff - 8) }, { lone: 'a\uD800b' }]) {
      const oneShot = await rejectionOf(encrypt(keyring, 'x', { encryptionContext, algorithmSuite: 0x0478 }))
      const streamed = await rejectionOf(encrypt(keyring, (async function* () { yield new Uint8Array(1) })(), { encryptionContext, algorithmSuite: 0x0478 }))
      for (const refused of [oneShot, streamed]) expect(refused).toMatchObject({ code: 'INVALID_ENCRYPTION_CONTEXT' })
    }
    expect(calls.encrypt).toBe(0)
  })

  it('takes a context of exactly 65535 bytes, the most its length field can say, and not one byte more', async () => {
    // 2 bytes of pair count, 2 + 3 of key, 2 + the value.
    const largest = { big: 'x'.repeat(0xffff - 9) }
    expect(serializeContext(largest)).toHaveLength(0xffff)
    const keyring = new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: new Uint8Array(32).fill(7) })
    // A signing suite would add its public key to the stored context, past the limit.
    const { ciphertext, header } = await encrypt(keyring, 'x', { encryptionContext: largest, algorithmSuite: 0x0478 })
    expect(header.encryptionContext).toEqual(largest)
    expect((await decrypt(keyring, ciphertext)).header.encryptionContext).toEqual(largest)
    expect(() => serializeContext({ big: 'x'.repeat(0xffff - 8) })).toThrow(/serialized encryption context is 65536 bytes; the message format allows at most 65535/)
  })
})

describe('bytes', () => {
  it('isAllZero: true exactly when every byte is zero', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(64), (bytes, at) => {
        expect(isAllZero(bytes)).toBe(bytes.every((byte) => byte === 0))
        const zeros = new Uint8Array(bytes.length)
        expect(isAllZero(zeros)).toBe(true)
        if (bytes.length > 0) {
          zeros[at % bytes.length] = 1 + (at % 255)
          expect(isAllZero(zeros)).toBe(false)
        }
      }),
    )
  })

  it('the writer grows and the reader reads back every field (a uint64 as two uint32s: only the reader needs one)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 300 }), fc.nat()), { maxLength: 20 }), (rows) => {
        const writer = new ByteWriter(1)
        for (const [small, bytes, big] of rows) writer.uint16(small).uint8(small & 0xff).uint32(big).uint32(Math.floor((big * 3) / 2 ** 32)).uint32((big * 3) >>> 0).lengthPrefixed(bytes, 'f', (m) => new Error(m))
        const reader = new ByteReader(writer.toBytes())
        for (const [small, bytes, big] of rows) {
          expect(reader.uint16('a')).toBe(small)
          expect(reader.uint8('b')).toBe(small & 0xff)
          expect(reader.uint32('c')).toBe(big)
          expect(reader.uint64('d')).toBe(big * 3)
          expect(Array.from(reader.lengthPrefixed('e'))).toEqual(Array.from(bytes))
        }
        expect(reader.remaining).toBe(0)
      }),
    )
  })

  it('toBytes gives exactly what was written and then `room` zero bytes, whether or not the buffer had the room', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 6 }), fc.nat({ max: 40 }), (capacity, parts, room) => {
        const writer = new ByteWriter(capacity)
        for (const part of parts) writer.bytes(part)
        const written = parts.flatMap((part) => Array.from(part))
        expect(Array.from(writer.toBytes(room))).toEqual([...written, ...new Array<number>(room).fill(0)])
      }),
    )
  })

  it('reads past the end are truncation errors', () => {
    const reader = new ByteReader(new Uint8Array([0, 5, 1]))
    expect(() => reader.lengthPrefixed('thing')).toThrow(TruncatedMessageError)
  })

  it('each number reads from input that holds exactly it, and input one byte short needs that byte', () => {
    for (const [width, read] of [
      [1, (reader: ByteReader) => reader.uint8('n')],
      [2, (reader: ByteReader) => reader.uint16('n')],
      [4, (reader: ByteReader) => reader.uint32('n')],
      [8, (reader: ByteReader) => reader.uint64('n')],
    ] as const) {
      // Distinct bytes (a uint64 whose top bytes are zero, as the format's lengths are).
      const bytes = Uint8Array.from({ length: width }, (_, index) => (index === 0 && width < 8 ? 0x80 : 7 * index))
      const reader = new ByteReader(bytes)
      expect(read(reader), `width ${width}`).toBe(bytes.reduce((value, byte) => value * 256 + byte, 0))
      expect(reader.remaining).toBe(0)
      const short = thrownBy(() => read(new ByteReader(new Uint8Array(width - 1))))
      expect(short, `width ${width}`).toBeInstanceOf(TruncatedMessageError)
      expect((short as TruncatedMessageError).minimumLength).toBe(width)
    }
  })

  it('a uint64 reads up to 2^53 - 1 and refuses more: no length in the format comes near', () => {
    expect(new ByteReader(new Uint8Array([0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])).uint64('n')).toBe(Number.MAX_SAFE_INTEGER)
    const large = thrownBy(() => new ByteReader(new Uint8Array([0, 0x20, 0, 0, 0, 0, 0, 0])).uint64('body content length'))
    expect(large).toBeInstanceOf(MalformedMessageError)
    expect((large as Error).message).toBe("The message's body content length is impossibly large.")
  })

  it('a length-prefixed field holds at most 65535 bytes, and says so beyond', () => {
    const tooLong = (message: string) => new Error(message)
    const most = new ByteWriter(1).lengthPrefixed(new Uint8Array(0xffff).fill(3), 'field', tooLong).toBytes()
    expect(new ByteReader(most).lengthPrefixed('field')).toEqual(new Uint8Array(0xffff).fill(3))
    expect(() => new ByteWriter(1).lengthPrefixed(new Uint8Array(0x10000), 'field', tooLong)).toThrow('field is 65536 bytes; the format allows at most 65535.')
  })

  it('byteChars gives a character per byte, across its 32 KiB pieces', () => {
    const bytes = Uint8Array.from({ length: 3 * 0x8000 + 5 }, (_, index) => (index * 131 + (index >>> 8)) & 0xff)
    for (const length of [0, 1, 0x8000, 0x8001, bytes.length]) {
      expect(byteChars(bytes.subarray(0, length)) === Buffer.from(bytes.subarray(0, length)).toString('latin1'), `${length} bytes`).toBe(true)
    }
  })

  it('utf8 writes what TextEncoder writes, short ASCII included', () => {
    const encoder = new TextEncoder()
    const edges = ['', '\x7f', '\x80', 'a\x80', '\u07ff', '\u0800', 'é', 'a'.repeat(63) + '\x80', 'a'.repeat(64), 'a'.repeat(65), '\u{1f600}']
    for (const text of edges) expect(Array.from(utf8(text)), JSON.stringify(text)).toEqual(Array.from(encoder.encode(text)))
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (text) => {
        expect(Array.from(utf8(text))).toEqual(Array.from(encoder.encode(text)))
      }),
    )
  })

  /** Two byte strings that are often alike: equal, one byte changed, or one a prefix of the other. */
  const pairArbitrary = fc
    .tuple(fc.uint8Array({ maxLength: 12 }), fc.nat(), fc.integer({ min: 1, max: 255 }), fc.constantFrom('same', 'changed', 'longer', 'shorter', 'other'), fc.uint8Array({ maxLength: 12 }))
    .map(([a, at, delta, how, other]): [Uint8Array, Uint8Array] => {
      const b = a.slice()
      if (how === 'changed' && a.length > 0) b[at % a.length] = (b[at % a.length]! + delta) & 0xff
      if (how === 'longer') return [a, Uint8Array.of(...a, delta)]
      if (how === 'shorter') return [a, a.subarray(0, at % (a.length + 1))]
      return [a, how === 'other' ? other : b]
    })

  it('bytesEqual and compareBytes agree with Buffer.equals and Buffer.compare', () => {
    fc.assert(
      fc.property(pairArbitrary, ([a, b]) => {
        expect(bytesEqual(a, b)).toBe(Buffer.from(a).equals(b))
        expect(Math.sign(compareBytes(a, b))).toBe(Buffer.compare(a, b))
        expect(Math.sign(compareBytes(b, a))).toBe(Buffer.compare(b, a))
      }),
    )
  })

  it('concatBytes joins its parts into a buffer of its own', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 20 }), { maxLength: 5 }), (parts) => {
        const joined = concatBytes(parts)
        expect(Array.from(joined)).toEqual(Array.from(Buffer.concat(parts)))
        expect([joined.byteOffset, joined.buffer.byteLength]).toEqual([0, joined.length])
      }),
    )
  })
})

/** A framed body: `regular.length` regular frames of `frameLength` content bytes, then a final frame. */
function framedBody(frameLength: number, regular: Uint8Array[], finalContent: Uint8Array): Uint8Array {
  const iv = (sequenceNumber: number) => new Uint8Array(12).fill(sequenceNumber & 0xff)
  const tag = (sequenceNumber: number) => new Uint8Array(16).fill(0xa0 ^ (sequenceNumber & 0xff))
  const last = regular.length + 1
  // A buffer of its own (not a view into Node's pool): the tests compare offsets within it.
  return new Uint8Array(
    Buffer.concat([
      ...regular.map((content, index) => frameFields(index + 1, iv(index + 1), content.subarray(0, frameLength), tag(index + 1), false)),
      frameFields(last, iv(last), finalContent, tag(last), true),
    ]),
  )
}

describe('frames', () => {
  const frameLengthArbitrary = fc.integer({ min: 1, max: 48 })
  const bodyArbitrary = frameLengthArbitrary.chain((frameLength) =>
    fc.record({
      frameLength: fc.constant(frameLength),
      regular: fc.array(fc.uint8Array({ minLength: frameLength, maxLength: frameLength }), { maxLength: 4 }),
      finalContent: fc.uint8Array({ maxLength: frameLength }),
    }),
  )

  it('readFrame gives views of each field in place, and skipFrame steps over the same bytes giving the final content length', () => {
    fc.assert(
      fc.property(bodyArbitrary, ({ frameLength, regular, finalContent }) => {
        const body = framedBody(frameLength, regular, finalContent)
        const reader = new ByteReader(body)
        const skipper = new ByteReader(body)
        const contents = [...regular, finalContent]
        contents.forEach((content, index) => {
          const sequenceNumber = index + 1
          const final = sequenceNumber === contents.length
          const start = reader.offset
          const frame = readFrame(reader, frameLength, sequenceNumber)
          expect(frame.final).toBe(final)
          expect(frame.sequenceNumber).toBe(sequenceNumber)
          expect(frame.iv.byteOffset).toBe(start + (final ? 8 : 4))
          expect(Array.from(frame.iv)).toEqual(new Array<number>(12).fill(sequenceNumber))
          expect(Array.from(frame.content)).toEqual(Array.from(content))
          expect(frame.content.byteOffset).toBe(start + (final ? 24 : 16))
          expect(Array.from(frame.tag)).toEqual(new Array<number>(16).fill(0xa0 ^ sequenceNumber))
          expect(frame.tag.byteOffset + 16).toBe(reader.offset)
          expect(skipFrame(skipper, frameLength, sequenceNumber)).toBe(final ? content.length : undefined)
          expect(skipper.offset).toBe(reader.offset)
        })
        expect(reader.remaining).toBe(0)
      }),
    )
  })

  it('skipFrame and readFrame refuse a body cut anywhere as truncated, at the frame the cut is in', () => {
    fc.assert(
      fc.property(bodyArbitrary, fc.nat(), ({ frameLength, regular, finalContent }, cut) => {
        const whole = framedBody(frameLength, regular, finalContent)
        const body = whole.subarray(0, cut % whole.length)
        const frameOf = (at: number) => Math.min(Math.floor(at / (frameLength + 32)), regular.length) + 1
        for (const read of [readFrame, skipFrame]) {
          const reader = new ByteReader(body)
          let sequenceNumber = 1
          const error = thrownBy(() => {
            for (; ; sequenceNumber++) read(reader, frameLength, sequenceNumber)
          })
          expect(error).toBeInstanceOf(TruncatedMessageError)
          expect(sequenceNumber).toBe(frameOf(body.length))
          expect((error as TruncatedMessageError).minimumLength).toBeGreaterThan(body.length)
          expect((error as TruncatedMessageError).minimumLength).toBeLessThanOrEqual(whole.length)
        }
      }),
    )
  })

  it('skipFrame and readFrame refuse a frame out of order and a final frame longer than the frame length, and say which', () => {
    const body = framedBody(8, [new Uint8Array(8), new Uint8Array(8)], new Uint8Array(3))
    const finalAt = 2 * (8 + 32)
    const tooLong = body.slice()
    new DataView(tooLong.buffer).setUint32(finalAt + 20, 9)
    for (const read of [readFrame, skipFrame]) {
      expect(thrownBy(() => read(new ByteReader(body), 8, 2))).toMatchObject({ code: 'MALFORMED_MESSAGE', message: 'Frame sequence number 1 is out of order; expected 2.' })
      expect(thrownBy(() => read(new ByteReader(body, finalAt), 8, 2))).toMatchObject({ code: 'MALFORMED_MESSAGE', message: 'Frame sequence number 3 is out of order; expected 2.' })
      const reader = new ByteReader(tooLong, finalAt)
      expect(thrownBy(() => read(reader, 8, 3))).toMatchObject({
        code: 'MALFORMED_MESSAGE',
        message: 'The final frame claims 9 content bytes, more than the frame length 8.',
      })
      expect(read(new ByteReader(body, finalAt), 8, 3)).not.toBeUndefined() // as it was, it reads
    }
  })
})

describe('a message whose context strings start with U+FEFF', () => {
  it('decrypts to exactly that context, which the caller can require', async () => {
    const keyring = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'bom', wrappingKey: new Uint8Array(32).fill(3) })
    const encryptionContext = { '\uFEFFtenant': '\uFEFFa', tenant: 'a' }
    const { ciphertext } = await encrypt(keyring, 'data', { encryptionContext, algorithmSuite: 0x0478 })
    const { header } = await decrypt(keyring, ciphertext, { encryptionContext })
    expect({ ...header.encryptionContext }).toEqual(encryptionContext)
  })
})

describe('context objects', () => {
  it('are frozen, have no prototype and keep keys such as __proto__ and constructor as plain pairs, on encrypt and decrypt', async () => {
    const context = JSON.parse('{"__proto__":"p","constructor":"c","toString":"t","hasOwnProperty":"h","0":"zero"}') as Record<string, string>
    expect(Object.keys(context)).toHaveLength(5)
    const keyring = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', wrappingKey: new Uint8Array(32).fill(1) })
    for (const algorithmSuite of [0x0478, 0x0578]) {
      const encrypted = await encrypt(keyring, 'x', { encryptionContext: context, algorithmSuite })
      const decrypted = await decrypt(keyring, encrypted.ciphertext, { encryptionContext: context })
      const parsed = parseContext(serializeContext(context))
      for (const result of [encrypted.header.encryptionContext, decrypted.header.encryptionContext, parsed]) {
        expect(Object.getPrototypeOf(result)).toBe(null)
        expect(Object.isFrozen(result)).toBe(true)
        const callerKeys = Object.keys(result).filter((key) => key !== 'aws-crypto-public-key')
        expect(callerKeys.sort()).toEqual(Object.keys(context).sort())
        for (const key of Object.keys(context)) expect(Object.getOwnPropertyDescriptor(result, key)?.value).toBe(context[key])
      }
    }
  })
})

describe('parsed contexts', () => {
  // Pairs in the order given, as any writer may have stored them.
  const stored = (pairs: readonly (readonly [string, string])[]): Uint8Array => {
    const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff])
    const fields = pairs.flatMap(([key, value]) => [key, value].map((text) => Buffer.from(text, 'utf8')))
    return new Uint8Array(Buffer.concat([u16(pairs.length), ...fields.flatMap((field) => [u16(field.length), field])]))
  }

  it('read ASCII pairs (one decoder call) and any others (one per string) alike, in any stored order and with long fields', () => {
    const text = (minLength: number) =>
      fc.oneof(
        fc.string({ minLength, maxLength: 12, unit: 'grapheme-ascii' }),
        fc.string({ minLength: Math.max(minLength, 120), maxLength: 300, unit: 'grapheme-ascii' }), // length bytes over 0x7f
        fc.string({ minLength, maxLength: 12, unit: 'binary' }),
      )
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(text(1), text(0)), { minLength: 1, maxLength: 6, selector: ([key]) => key }), (pairs) => {
        const parsed = parseContext(stored(pairs))
        expect({ ...parsed }).toEqual(Object.fromEntries(pairs))
        expect(Buffer.from(serializeContext(parsed)).equals(Buffer.from(serializeContext(Object.fromEntries(pairs))))).toBe(true)
      }),
      { numRuns: 300 },
    )
  })

  it('refuse a key stored twice and invalid UTF-8, whether the rest is ASCII or not', () => {
    for (const pairs of [
      [['a', '1'], ['a', '2']],
      [['\u00e9', '1'], ['\u00e9', '2']],
      [['a', '1'], ['c', '2'], ['b', '3'], ['c', '4']], // the repeat comes after the order breaks
      [['\u00e9', '1'], ['\u00f6', '2'], ['a', '3'], ['\u00e9', '4']],
    ] as const) {
      expect(() => parseContext(stored(pairs))).toThrow(/has key ".+" twice/)
    }
    // A hostile message's key is shown escaped and cut short: no control characters, no 60 KB in a log line.
    const hostile = `\u001b[2J\n${'k'.repeat(60_000)}`
    const message = (thrownBy(() => parseContext(stored([[hostile, '1'], [hostile, '2']]))) as Error).message
    expect(message).toMatch(/^The message's encryption context has key "\\u001b\[2J\\nkkk/)
    expect(message).not.toMatch(/[\u0000-\u001f]/)
    expect(message.length).toBeLessThan(300)
    const invalid = stored([['ab', '12']])
    invalid[4] = 0xff // the key's second byte
    expect(() => parseContext(invalid)).toThrow(/encryption context key is not valid UTF-8/)
  })

  it('are frozen and reserialize to the same bytes, in canonical order or not', () => {
    fc.assert(
      fc.property(contextArbitrary, (context) => {
        const bytes = serializeContext(context)
        const parsed = parseContext(bytes)
        expect(Object.isFrozen(parsed)).toBe(true)
        expect(Buffer.from(serializeContext(parsed)).equals(Buffer.from(bytes))).toBe(true)
      }),
    )
    // Stored out of order (another writer): reserialized in the spec's order, not copied.
    const swapped = new Uint8Array([0, 2, 0, 1, 98, 0, 1, 50, 0, 1, 97, 0, 1, 49])
    expect(Array.from(serializeContext(parseContext(swapped)))).toEqual(Array.from(serializeContext({ a: '1', b: '2' })))
  })
})

describe('the last parsed context', () => {
  it('is given again for the same bytes, and never for other bytes, in any sequence (canonical order or not)', () => {
    const pool = fc.uniqueArray(contextArbitrary, { minLength: 1, maxLength: 4, selector: (context) => JSON.stringify(Object.entries(context).sort()) })
    fc.assert(
      fc.property(pool, fc.array(fc.tuple(fc.nat(), fc.boolean()), { minLength: 1, maxLength: 12 }), (contexts, picks) => {
        let previous: { bytes: number[]; parsed: object } | undefined
        for (const [pick, legacy] of picks) {
          const context = contexts[pick % contexts.length] as Record<string, string>
          const bytes = legacy ? inLegacyOrder(context) : serializeContext(context).slice()
          const parsed = parseContext(bytes)
          expect({ ...parsed }).toEqual({ ...context })
          expect(Object.isFrozen(parsed)).toBe(true)
          // Always the spec's order, whichever order the bytes stored.
          expect(Array.from(serializeContext(parsed))).toEqual(Array.from(serializeContext({ ...context })))
          if (previous !== undefined && bytes.length > 0) {
            expect(parsed === previous.parsed).toBe(previous.bytes.join() === Array.from(bytes).join())
          }
          bytes.fill(0) // the caller's bytes change afterwards: what was parsed does not
          previous = { bytes: Array.from(legacy ? inLegacyOrder(context) : serializeContext(context)), parsed }
        }
      }),
    )
  })

  it('is not given for bytes that changed in place since', () => {
    const bytes = serializeContext({ a: '1', b: '2' }).slice()
    const first = parseContext(bytes)
    bytes[bytes.length - 1] = 0x33 // b: '3'
    const second = parseContext(bytes)
    expect(second).not.toBe(first)
    expect({ ...second }).toEqual({ a: '1', b: '3' })
    expect({ ...first }).toEqual({ a: '1', b: '2' })
  })
})

describe('parsed headers', () => {
  it('keep their fields and the context serialization when the caller overwrites the message afterwards', async () => {
    const keyring = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'name', wrappingKey: new Uint8Array(32).fill(7) })
    await fc.assert(
      fc.asyncProperty(contextArbitrary, fc.constantFrom(0x0478, 0x0578, 0x0178), async (context, algorithmSuite) => {
        const commitmentPolicy = algorithmSuite === 0x0178 ? 'FORBID_ENCRYPT_ALLOW_DECRYPT' : 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT'
        const { ciphertext } = await encrypt(keyring, 'x', { encryptionContext: context, algorithmSuite, commitmentPolicy })
        const message = new Uint8Array(ciphertext)
        const { header } = parseHeader(message)
        const snapshot = (h: MessageHeader) => ({
          messageId: Array.from(h.messageId),
          keys: h.encryptedDataKeys.map((key) => [key.providerId, Array.from(key.providerInfo), Array.from(key.ciphertext)]),
          context: Array.from(serializeContext(h.encryptionContext)),
        })
        const before = snapshot(header)
        message.fill(0xff)
        expect(snapshot(header)).toEqual(before)
        expect(snapshot(header)).toEqual(snapshot(parseHeader(ciphertext).header))
      }),
      { numRuns: 50 },
    )
  })

  it('are authenticated over the bytes parsed: a header rewritten while the keyrings work does not lend its tag to the one read', async () => {
    // A keyring that does not bind the encryption context (RSA), and a message whose stored context is changed
    // before decrypt reads it, then put back while the keyring works: the context returned would be the changed
    // one, with the plaintext the original header authenticates.
    const rsa = rsaKeyring()
    for (const algorithmSuite of [0x0478, 0x0178] as const) {
      const commitmentPolicy = algorithmSuite === 0x0178 ? 'FORBID_ENCRYPT_ALLOW_DECRYPT' : 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT'
      const { ciphertext } = await encrypt(rsa, 'paid', { encryptionContext: { tenant: 'a' }, algorithmSuite, commitmentPolicy })
      const original = ciphertext.slice()
      const at = Buffer.from(original).indexOf('tenant') + 'tenant'.length + 2 // the value's one byte, after its length
      expect(String.fromCharCode(original[at]!)).toBe('a')
      const message = original.slice()
      message[at] = 'b'.charCodeAt(0)
      const restoring: Keyring = {
        onEncrypt: (materials, backend) => rsa.onEncrypt(materials, backend),
        onDecrypt: async (materials, keys, backend) => {
          message.set(original) // back as it was, while the keyring works
          return rsa.onDecrypt(materials, keys, backend)
        },
      }
      const decrypting = decrypt(restoring, message, { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' })
      expect(await rejectionOf(decrypting)).toMatchObject({ code: 'HEADER_AUTHENTICATION_FAILED' })
    }
  })

  it('keep their own bytes while other headers are parsed, small ones sharing blocks and larger ones not', async () => {
    const keyring = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'name', wrappingKey: new Uint8Array(32).fill(7) })
    // Headers from about 150 to about 1,100 bytes: several blocks' worth of small ones, and some too large to share.
    const messages = await Promise.all(
      Array.from({ length: 120 }, async (_, index) => {
        const encryptionContext = { pad: 'x'.repeat((index * 37) % 900) }
        return (await encrypt(keyring, 'x', { encryptionContext })).ciphertext
      }),
    )
    const snapshot = (h: MessageHeader) => [
      Array.from(h.messageId),
      ...h.encryptedDataKeys.flatMap((key) => [Array.from(key.providerInfo), Array.from(key.ciphertext)]),
      Array.from(serializeContext(h.encryptionContext)),
    ]
    const parsed = messages.map((message) => {
      const { header, body } = parseHeader(message)
      return { header, length: body.length, before: snapshot(header) }
    })
    for (const { header, length, before } of parsed) {
      expect(snapshot(header)).toEqual(before)
      // Its own copy: nothing but its header body.
      if (length > 512) expect(header.messageId.buffer.byteLength).toBe(length)
    }
    const blocks = new Set(parsed.filter(({ length }) => length <= 512).map(({ header }) => header.messageId.buffer))
    expect(blocks.size).toBeGreaterThan(1)
    expect(blocks.size).toBeLessThan(parsed.length / 4)
  })

  it('cut short, report a length they need at least, counting every key entry and field still to come', async () => {
    const aes = (name: string) => new RawAesKeyring({ keyNamespace: 'ns', keyName: name, wrappingKey: new Uint8Array(32).fill(7) })
    await fc.assert(
      fc.asyncProperty(
        contextArbitrary,
        fc.constantFrom(0x0478, 0x0578, 0x0178, 0x0014),
        fc.integer({ min: 0, max: 5 }),
        async (context, algorithmSuite, children) => {
          const keyring = new MultiKeyring({ generator: aes('g'), children: Array.from({ length: children }, (_, index) => aes(`child-${'x'.repeat(index * 9)}`)) })
          const commitmentPolicy = algorithmSuite >= 0x0478 ? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' : 'FORBID_ENCRYPT_ALLOW_DECRYPT'
          const { ciphertext } = await encrypt(keyring, 'x', { encryptionContext: context, algorithmSuite, commitmentPolicy })
          const { header, length } = parseHeader(ciphertext)
          // Where each key entry starts: after the version (and type), suite, message ID, context and key count.
          const version = header.version
          let at = (version === 1 ? 4 : 3) + header.messageId.length + 2 + serializeContext(header.encryptionContext).length + 2
          const countAt = at - 2
          // Each entry's three length-prefixed fields: where each starts, how long its content is, which entry holds it.
          const fields = header.encryptedDataKeys.flatMap((key, entry) =>
            [Buffer.from(key.providerId), key.providerInfo, key.ciphertext].map((content, index) => {
              const field = { start: at, end: at + 2 + content.length, entry, index }
              at = field.end
              return field
            }),
          )
          const starts = fields.filter(({ index }) => index === 0).map(({ start }) => start)
          const tail = length - at
          // The least a header cut inside the key list needs: the field being read, then every length field still to
          // come (two bytes each, with nothing in it) and the fixed tail. Exact, so a stream waits for no byte more.
          const leastAfter = (cut: number): number => {
            if (cut < countAt + 2) return countAt + 2
            const field = fields.find(({ end }) => cut < end)!
            const readTo = cut < field.start + 2 ? field.start + 2 : field.end
            return readTo + 2 * (2 - field.index) + 6 * (header.encryptedDataKeys.length - field.entry - 1) + tail
          }
          for (let cut = 1; cut < length; cut++) {
            const error = thrownBy(() => parseHeader(ciphertext.subarray(0, cut)))
            expect(error).toBeInstanceOf(TruncatedMessageError)
            const { minimumLength } = error as TruncatedMessageError
            // Never past the header: a stream waiting for that many bytes would wait for bytes that never come.
            expect(minimumLength).toBeLessThanOrEqual(length)
            expect(minimumLength).toBeGreaterThan(cut)
            if (cut > starts[0]! && cut < at) {
              const entriesAfter = starts.filter((start) => start >= cut).length
              expect(minimumLength).toBeGreaterThanOrEqual(cut + 6 * entriesAfter + tail)
            }
            if (cut >= countAt && cut < at) expect(minimumLength, `cut at ${cut}`).toBe(leastAfter(cut))
          }
        },
      ),
      { numRuns: 40 },
    )
  })

  it('cut short among their keys, are refused as truncated before any key is decoded (a stream parses them again)', async () => {
    const keyring = new RawAesKeyring({ keyNamespace: 'ns', keyName: 'name', wrappingKey: new Uint8Array(32).fill(7) })
    const { ciphertext } = await encrypt(keyring, 'x', { algorithmSuite: 0x0478, commitmentPolicy: 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' })
    // v2, empty context: the key count at offset 37, the first provider ID's length at 39 and its bytes at 41.
    expect(ciphertext[37]! << 8 | ciphertext[38]!).toBe(1)
    const header = ciphertext.slice(0, parseHeader(ciphertext).length)
    header[38] = 2 // a second key that the cut header does not hold
    header[41] = 0xff // never valid UTF-8
    const error = thrownBy(() => parseHeader(header))
    expect(error).toBeInstanceOf(TruncatedMessageError)
    header[38] = 1
    expect((thrownBy(() => parseHeader(header)) as { code?: string }).code).toBe('MALFORMED_MESSAGE')
  })

  it('contexts parsed from bytes the caller owns keep their serialization when those bytes change', () => {
    const bytes = serializeContext({ a: '1', b: '2' }).slice()
    const parsed = parseContext(bytes)
    const expected = Array.from(bytes)
    bytes.fill(0)
    expect(Array.from(serializeContext(parsed))).toEqual(expected)
  })
})

