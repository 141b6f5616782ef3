// DynamoDB attribute serialization (spec: dynamodb-encryption-client/ddb-attribute-serialization.md).
// Expected bytes are written out by hand from the spec's tables: 2-byte type IDs, 4-byte big-endian counts and
// lengths, sets in UTF-16 (strings, normalized numbers) or byte order, map entries in key order.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { deserializeAttribute, normalizeNumber, serializeAttribute } from '../../src/dynamodb/attributes/index.js'
import { itemFromDynamoDbJson, itemToDynamoDbJson } from '../../src/dynamodb/index.js'
import type { AttributeValue } from '../../src/dynamodb/types.js'
import { thrownBy } from '../helpers/fixtures.js'
import { uint16, uint32 } from '../helpers/wire.js'

const hex = (value: AttributeValue) => {
  const { typeId, value: bytes } = serializeAttribute(value)
  return `${typeId.toString(16).padStart(4, '0')}:${Buffer.from(bytes).toString('hex')}`
}
const codeOf = (run: () => unknown): string | undefined => {
  try {
    run()
  } catch (error) {
    return (error as { code?: string }).code
  }
  return undefined
}
const terminal = (typeId: number, bytes: string) => ({ typeId, value: new Uint8Array(Buffer.from(bytes.replace(/\s/g, ''), 'hex')) })

describe('attribute serialization: known answers', () => {
  const cases: [string, AttributeValue, string][] = [
    ['NULL: type 0000, empty value', { NULL: true }, '0000:'],
    ['S: UTF-8', { S: 'héllo' }, '0001:68c3a96c6c6f'],
    ['S: empty', { S: '' }, '0001:'],
    ['N: normalized "-01.500e1" is "-15"', { N: '-01.500e1' }, '0002:2d3135'],
    ['N: "0.00100" is "0.001"', { N: '0.00100' }, '0002:302e303031'],
    ['B: as is', { B: new Uint8Array([1, 2, 3]) }, 'ffff:010203'],
    ['BOOL true', { BOOL: true }, '0004:01'],
    ['BOOL false', { BOOL: false }, '0004:00'],
    // count 3; "a", "b", "é" (UTF-16 order), each with a 4-byte length
    ['SS sorted', { SS: ['b', 'é', 'a'] }, '0101:00000003' + '00000001' + '61' + '00000001' + '62' + '00000002' + 'c3a9'],
    // "10", "9.0" -> "9", "-1": sorted as strings after normalization: "-1" < "10" < "9"
    ['NS normalized then sorted', { NS: ['10', '9.0', '-1'] }, '0102:00000003' + '00000002' + '2d31' + '00000002' + '3130' + '00000001' + '39'],
    // [1, 0] < [2] by bytes
    ['BS sorted by bytes', { BS: [new Uint8Array([2]), new Uint8Array([1, 0])] }, '01ff:00000002' + '00000002' + '0100' + '00000001' + '02'],
    // count 2; key type 0001, key length, key, value type, value length, value; keys "a" < "b"
    ['M', { M: { b: { N: '1' }, a: { S: 'x' } } }, '0200:00000002' + '0001' + '00000001' + '61' + '0001' + '00000001' + '78' + '0001' + '00000001' + '62' + '0002' + '00000001' + '31'],
    // count 3; entries keep their order: S "x", NULL (length 0), BOOL false
    ['L', { L: [{ S: 'x' }, { NULL: true }, { BOOL: false }] }, '0300:00000003' + '0001' + '00000001' + '78' + '0000' + '00000000' + '0004' + '00000001' + '00'],
    // L [ M { k: L [ N 5 ] } ]: the inner list is 00000001 0002 00000001 35 (11 bytes = 0x0b); the map is
    // 00000001 0001 00000001 6b 0300 0000000b <inner list> (28 bytes = 0x1c)
    [
      'nested L and M',
      { L: [{ M: { k: { L: [{ N: '5' }] } } }] },
      '0300:00000001' + '0200' + '0000001c' + '00000001' + '0001' + '00000001' + '6b' + '0300' + '0000000b' + '00000001' + '0002' + '00000001' + '35',
    ],
    ['M empty', { M: {} }, '0200:00000000'],
    ['L empty', { L: [] }, '0300:00000000'],
  ]
  it('values longer than the first 64 bytes the writer holds, also inside nested values whose lengths come after them', () => {
    const [small, large] = [Buffer.alloc(300, 7), Buffer.alloc(600, 9)]
    const text = 'é'.repeat(400) // 800 bytes of UTF-8
    const u32 = (value: number) => Buffer.from([value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff])
    const map = Buffer.concat([u32(1), Buffer.from('0001', 'hex'), u32(1), Buffer.from('k'), Buffer.from('ffff', 'hex'), u32(large.length), large])
    const list = Buffer.concat([
      u32(3),
      Buffer.from('ffff', 'hex'), u32(small.length), small,
      Buffer.from('0001', 'hex'), u32(800), Buffer.from(text),
      Buffer.from('0200', 'hex'), u32(map.length), map,
    ])
    const value: AttributeValue = { L: [{ B: new Uint8Array(small) }, { S: text }, { M: { k: { B: new Uint8Array(large) } } }] }
    expect(hex(value)).toBe(`0300:${list.toString('hex')}`)
    expect(deserializeAttribute(serializeAttribute(value))).toEqual(value)
  })

  for (const [what, value, expected] of cases) {
    it(what, () => {
      expect(hex(value)).toBe(expected)
      const [typeId, bytes] = expected.split(':') as [string, string]
      expect(serializeAttribute(deserializeAttribute(terminal(parseInt(typeId, 16), bytes)))).toEqual(serializeAttribute(value))
    })
  }
})

/** What a value looks like after a round trip: numbers normalized, sets in their serialized order. */
function canonical(value: AttributeValue): AttributeValue {
  if ('N' in value) return { N: normalizeNumber(value.N) }
  if ('NS' in value) return { NS: value.NS.map((n) => normalizeNumber(n)).sort() }
  if ('SS' in value) return { SS: [...value.SS].sort() }
  if ('BS' in value) return { BS: [...value.BS].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))) }
  if ('L' in value) return { L: value.L.map(canonical) }
  if ('M' in value) return { M: Object.fromEntries(Object.entries(value.M).map(([key, entry]) => [key, canonical(entry)])) }
  return value
}

const numberText = fc
  .tuple(fc.constantFrom('', '-', '+'), fc.stringMatching(/^[0-9]{1,20}$/), fc.option(fc.stringMatching(/^[0-9]{1,15}$/)), fc.integer({ min: -90, max: 90 }))
  .map(([sign, whole, fraction, exponent]) => `${sign}${whole}${fraction === null ? '' : `.${fraction}`}e${exponent}`)
const bytes = fc.uint8Array({ maxLength: 24 })
const { value: attribute } = fc.letrec<{ value: AttributeValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ S: fc.string({ unit: 'grapheme', maxLength: 12 }) }),
    fc.record({ N: numberText }),
    fc.record({ B: bytes }),
    fc.record({ BOOL: fc.boolean() }),
    fc.constant({ NULL: true }),
    fc.record({ SS: fc.uniqueArray(fc.string({ maxLength: 8 }), { minLength: 1, maxLength: 5 }) }),
    fc.record({ NS: fc.uniqueArray(numberText, { minLength: 1, maxLength: 5, selector: (n) => normalizeNumber(n) }) }),
    fc.record({ BS: fc.uniqueArray(bytes, { minLength: 1, maxLength: 4, comparator: (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0 }) }),
    fc.record({ L: fc.array(tie('value'), { maxLength: 4 }) }),
    fc.record({ M: fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), tie('value'), { maxKeys: 4 }) }),
  ) as fc.Arbitrary<AttributeValue>,
}))

describe('attribute serialization: properties', () => {
  it('strings and string sets keep a leading U+FEFF (byte order mark)', () => {
    for (const value of [{ S: '\uFEFF' }, { S: '\uFEFFx' }, { SS: ['\uFEFFa', 'a'] }, { M: { '\uFEFFk': { S: '\uFEFFv' } } }] as AttributeValue[]) {
      expect(deserializeAttribute(serializeAttribute(value))).toEqual(canonical(value))
    }
  })

  it('values serialize the same where TextEncoder has no encodeInto (polyfills such as fast-text-encoding)', () => {
    const own = Object.getOwnPropertyDescriptor(TextEncoder.prototype, 'encodeInto') as PropertyDescriptor
    fc.assert(
      fc.property(attribute, (value) => {
        const expected = serializeAttribute(value)
        delete (TextEncoder.prototype as Partial<TextEncoder>).encodeInto
        try {
          expect(serializeAttribute(value)).toEqual(expected)
        } finally {
          Object.defineProperty(TextEncoder.prototype, 'encodeInto', own)
        }
      }),
      { numRuns: 200 },
    )
    expect(typeof new TextEncoder().encodeInto).toBe('function')
  })

  it('every value of every type round-trips to its canonical form', () => {
    fc.assert(
      fc.property(attribute, (value) => {
        const restored = deserializeAttribute(serializeAttribute(value))
        expect(restored).toEqual(canonical(value))
        expect(serializeAttribute(restored)).toEqual(serializeAttribute(value))
      }),
      { numRuns: 400 },
    )
  })

  it('numbers keep their DynamoDB form: normalization is idempotent and moves no digit', () => {
    fc.assert(
      fc.property(numberText, (text) => {
        const normal = normalizeNumber(text)
        expect(normalizeNumber(normal)).toBe(normal)
        expect(normal).toMatch(/^-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?$|^-?0\.[0-9]*[1-9]$/)
        expect(normalizeNumber(`${normal}e0`)).toBe(normal)
        // Ten times the number, written two ways (exponent + 1 on the input, e1 on the normal form), agrees.
        const timesTen = text.replace(/e(-?\d+)$/, (_, exponent: string) => `e${Number(exponent) + 1}`)
        expect(normalizeNumber(timesTen)).toBe(normalizeNumber(`${normal}e1`))
        expect(deserializeAttribute(serializeAttribute({ N: text }))).toEqual({ N: normal })
      }),
      { numRuns: 500 },
    )
  })

  it("numbers at DynamoDB's bounds are taken: 38 significant digits, 1E-130, 9.99…E+125, 1,024 characters", () => {
    expect(normalizeNumber('9'.repeat(38))).toBe('9'.repeat(38))
    expect(normalizeNumber('1e-130')).toBe(`0.${'0'.repeat(129)}1`)
    expect(normalizeNumber('-9.9e125')).toBe(`-99${'0'.repeat(124)}`)
    expect(normalizeNumber(`${'0'.repeat(1023)}1`)).toBe('1')
    // An exponent of six digits is read, and then out of range; of seven, not read at all.
    expect(thrownBy(() => normalizeNumber('1e100000'))).toMatchObject({ message: "A number is outside DynamoDB's number range (magnitude 1E-130 to 9.99…E+125)." })
    expect(thrownBy(() => normalizeNumber('1e1000000'))).toMatchObject({ message: 'A number is not a DynamoDB number, such as -12.5 or 1.5E+3; got 9 characters (the value is not shown: it may be secret).' })
    expect(thrownBy(() => normalizeNumber(5 as never))).toMatchObject({ message: 'A number is not a DynamoDB number, such as -12.5 or 1.5E+3; got a number (the value is not shown: it may be secret).' })
  })

  it('any truncation or extension of a serialized value is refused as malformed', () => {
    fc.assert(
      fc.property(attribute, fc.nat(), (value, cut) => {
        const { typeId, value: serialized } = serializeAttribute(value)
        if (![0x0101, 0x0102, 0x01ff, 0x0200, 0x0300, 0x0004].includes(typeId) || serialized.length === 0) return
        const shorter = serialized.subarray(0, cut % serialized.length)
        expect(codeOf(() => deserializeAttribute({ typeId, value: shorter }))).toBe('MALFORMED_ITEM')
        const longer = new Uint8Array(serialized.length + 1)
        longer.set(serialized)
        expect(codeOf(() => deserializeAttribute({ typeId, value: longer }))).toBe('MALFORMED_ITEM')
      }),
      { numRuns: 300 },
    )
  })
})

describe('attribute serialization: a stored value cut short', () => {
  // The entry count fits (the first entry is long), so each field of the last entry finds itself short.
  it.each([
    ['a list', { L: [{ S: 'x'.repeat(20) }, { NULL: true }] }, 'list entry'],
    ['a map', { M: { a: { S: 'x'.repeat(20) }, b: { NULL: true } } }, 'map value'],
  ] as const)('%s: a cut within its last entry names the field it cuts', (_, value, entry) => {
    const { typeId, value: serialized } = serializeAttribute(value as AttributeValue)
    const cut = (kept: number) => () => deserializeAttribute({ typeId, value: serialized.subarray(0, serialized.length - 6 + kept) }, 'data')
    expect(cut(1)).toThrow(`data: ${entry} type needs 2 bytes; only 1 byte remains.`)
    expect(cut(2)).toThrow(`data: ${entry} length needs 4 bytes; only 0 bytes remain.`)
    expect(cut(5)).toThrow(`data: ${entry} length needs 4 bytes; only 3 bytes remain.`)
  })
})

describe('attribute serialization: refusals', () => {
  const deep = (levels: number): AttributeValue => (levels === 0 ? { S: 'x' } : { L: [deep(levels - 1)] })
  const invalid: [string, unknown][] = [
    ['two members', { S: 'a', N: '1' }],
    ['no member', {}],
    ['an empty string set', { SS: [] }],
    ['a duplicate string', { SS: ['a', 'a'] }],
    ['numbers equal after normalization', { NS: ['1', '1.0'] }],
    ['a duplicate binary', { BS: [new Uint8Array([1]), new Uint8Array([1])] }],
    ['a number with letters', { N: '12a' }],
    ['an empty number', { N: '' }],
    ['a bare exponent', { N: 'e5' }],
    ['39 significant digits', { N: '1'.repeat(39) }],
    ['a number too large', { N: '1e126' }],
    ['a number too small', { N: '1e-131' }],
    // Refused on its length alone, before any work: its value is 1.
    ['a number of 1,025 characters', { N: `${'0'.repeat(1024)}1` }],
    ['a number given as a JavaScript number', { N: 5 }],
    ['NULL false', { NULL: false }],
    ['a map with an empty key', { M: { '': { S: 'x' } } }],
    // Its entries are not own properties: read as an object, it would be stored as an empty map.
    ['a map given as a Map', { M: new Map([['a', { S: 'x' }]]) }],
    ['a map given as an array', { M: [{ S: 'x' }] }],
    ['a binary that is not bytes', { B: 'AQID' }],
    ['nesting 33 levels deep', deep(33)],
    ['maps nested 33 levels deep', Array.from({ length: 33 }).reduce<AttributeValue>((inner) => ({ M: { a: inner } }), { S: 'x' })],
    ['no object at all', 'x'],
    ['null', null],
    ['a string member that is no string', { S: 5 }],
    ['a string set given as a string', { SS: 'a' }],
    ['a string set with a number in it', { SS: ['a', 1] }],
    ['BOOL given as a string', { BOOL: 'true' }],
    ['a list given as an object', { L: { 0: { S: 'x' } } }],
    ['a list holding no attribute value', { L: ['x'] }],
  ]
  for (const [what, value] of invalid) {
    it(`refuses ${what} on encrypt`, () => expect(codeOf(() => serializeAttribute(value as AttributeValue))).toBe('INVALID_ITEM'))
  }
  it('says what a binary that is not a Uint8Array is, and how to pass its bytes', () => {
    // DynamoDB JSON (a stream record, the AWS CLI's output) holds binaries as base64 text.
    expect(() => serializeAttribute({ B: 'AQID' } as never, 'data')).toThrow(
      /^data\.B must be a Uint8Array; got a string: DynamoDB JSON \(a stream record in a Lambda event, the AWS CLI's output\) holds binaries as base64; convert such an item with itemFromDynamoDbJson\.$/,
    )
    expect(() => serializeAttribute({ BS: [new ArrayBuffer(2)] } as never, 'data')).toThrow(/^data\.BS\[0\] must be a Uint8Array; got an ArrayBuffer: pass new Uint8Array\(buffer\)\.$/)
  })

  it('refuses text with a lone surrogate (UTF-8 would store U+FFFD), naming where: a string, a set member, a map key, nested', () => {
    const problem = 'has a lone UTF-16 surrogate, which UTF-8 cannot store (it would become U+FFFD): fix or remove that character.'
    for (const [value, where] of [
      [{ S: 'a\ud800' }, 'data.S'],
      [{ SS: ['ok', '\udfffb'] }, 'data.SS[1]'],
      [{ M: { 'k\ud800': { S: 'x' } } }, 'data.M key "k\\ud800"'],
      [{ L: [{ M: { x: { S: '\ud83d' } } }] }, 'data.L[0].M.x.S'],
    ] as const) {
      expect(() => serializeAttribute(value as AttributeValue, 'data'), where).toThrow(`${where} ${problem}`)
    }
    // A pair is a character: kept.
    expect(deserializeAttribute(serializeAttribute({ M: { '\ud83d\ude00': { S: '\ud83d\ude00' } } }))).toEqual({ M: { '\ud83d\ude00': { S: '\ud83d\ude00' } } })
  })

  it('says what a map given as a Map is, and accepts one without a prototype', () => {
    expect(() => serializeAttribute({ M: new Map() } as never, 'data')).toThrow(/^data\.M must be a plain object of attribute values; got Map\.$/)
    const bare = Object.assign(Object.create(null) as Record<string, AttributeValue>, { a: { S: 'x' } })
    expect(deserializeAttribute(serializeAttribute({ M: bare }))).toEqual({ M: { a: { S: 'x' } } })
  })
  it('accepts nesting 32 levels deep', () => expect(deserializeAttribute(serializeAttribute(deep(32)))).toEqual(deep(32)))
  it('refuses a stored value nested 33 levels deep (encrypt writes none)', () => {
    const inner = serializeAttribute(deep(32))
    const header = Buffer.alloc(10)
    header.writeUInt32BE(1, 0) // one entry: its type ID and length, then the 32-deep list
    header.writeUInt16BE(inner.typeId, 4)
    header.writeUInt32BE(inner.value.length, 6)
    const stored = { typeId: inner.typeId, value: new Uint8Array(Buffer.concat([header, inner.value])) }
    expect(thrownBy(() => deserializeAttribute(stored, 'card'))).toMatchObject({
      code: 'MALFORMED_ITEM',
      message: `card${'[0]'.repeat(32)} nests lists and maps more than 32 levels deep.`,
    })
  })

  it('maps as lists: 32 levels deep are written and read back, a stored 33rd level is refused, and 40 in bounded time', () => {
    const deepMaps = (levels: number): AttributeValue => (levels === 0 ? { S: 'x' } : { M: { a: deepMaps(levels - 1) } })
    expect(deserializeAttribute(serializeAttribute(deepMaps(32)))).toEqual(deepMaps(32))
    // One more level by hand: a one-entry map, its key "a" a nested string, then its value.
    const [mapId, stringId] = [serializeAttribute({ M: {} }).typeId, serializeAttribute({ S: 'a' }).typeId]
    const wrap = (inner: { typeId: number; value: Uint8Array }) => ({
      typeId: mapId,
      value: new Uint8Array(Buffer.concat([uint32(1), uint16(stringId), uint32(1), Buffer.from('a'), uint16(inner.typeId), uint32(inner.value.length), inner.value])),
    })
    expect(wrap(serializeAttribute({ S: 'x' }))).toEqual(serializeAttribute(deepMaps(1))) // as the writer writes it
    expect(thrownBy(() => deserializeAttribute(wrap(serializeAttribute(deepMaps(32))), 'card'))).toMatchObject({
      code: 'MALFORMED_ITEM',
      message: `card${'.a'.repeat(32)} nests lists and maps more than 32 levels deep.`,
    })
    let stored = serializeAttribute({ S: 'x' })
    for (let level = 0; level < 40; level++) stored = wrap(stored)
    expect(codeOf(() => deserializeAttribute(stored))).toBe('MALFORMED_ITEM')
  })

  const malformed: [string, number, string, string][] = [
    ['an unknown type ID', 0x0005, '', 'card has unknown type ID 0x0005.'],
    ['an unknown type ID with hex letters', 0x00ab, '', 'card has unknown type ID 0x00ab.'],
    ['a list cut right after an entry\'s type ID', 0x0300, '00000002 0001 0000000a 61616161616161616161 0001', 'card: list entry length needs 4 bytes; only 0 bytes remain.'],
    ['a boolean byte of 2', 0x0004, '02', 'card holds boolean byte 2; only 0 and 1 exist.'],
    ['a boolean with no byte', 0x0004, '', 'card: boolean needs 1 byte; only 0 bytes remain.'],
    ['a NULL with bytes', 0x0000, '00', 'card: 1 byte follows the value.'],
    ['a set count beyond the bytes', 0x0101, 'ffffffff', 'card: set count of 4294967295 cannot fit: only 0 bytes remain.'],
    ['a set count one entry beyond the bytes', 0x0101, '00000002 00000000 00', 'card: set count of 2 cannot fit: only 5 bytes remain.'],
    ['a set entry longer than the bytes', 0x0101, '00000001 00000010 61', 'card: set entry needs 16 bytes; only 1 byte remains.'],
    ['a list count beyond the bytes', 0x0300, '7fffffff', 'card: list count of 2147483647 cannot fit: only 0 bytes remain.'],
    ['a list entry longer than the bytes', 0x0300, '00000001 0001 00000005 61', 'card: list entry needs 5 bytes; only 1 byte remains.'],
    ['a map key that is not a string', 0x0200, '00000001 0002 00000001 31 0001 00000000', 'card: a map key is not a string.'],
    ['an empty map key', 0x0200, '00000001 0001 00000000 0001 00000000', 'card: a map key is empty; DynamoDB map keys are non-empty.'],
    ['a repeated map key', 0x0200, '00000002 0001 00000001 61 0001 00000000 0001 00000001 61 0001 00000000', 'card: a map key appears twice.'],
    ['invalid UTF-8', 0x0001, 'c3', 'card is not valid UTF-8.'],
    ['a number that is not normalized', 0x0002, '3031', 'card holds a number not in the form DynamoDB stores (the value is not shown: it may be secret).'],
    ['a number that is no number at all ("4111-1111")', 0x0002, '343131312d31313131', 'card holds a number not in the form DynamoDB stores (the value is not shown: it may be secret).'],
    ['a duplicate set member', 0x0101, '00000002 00000001 61 00000001 61', 'card: the set has a duplicate member.'],
    ['trailing bytes after a list', 0x0300, '00000000 00', 'card: 1 byte follows the value.'],
    ['trailing bytes after a map', 0x0200, '00000000 0000', 'card: 2 bytes follow the value.'],
  ]
  for (const [what, typeId, bytesHex, message] of malformed) {
    it(`refuses ${what} on decrypt`, () => {
      expect(thrownBy(() => deserializeAttribute(terminal(typeId, bytesHex), 'card'))).toMatchObject({ code: 'MALFORMED_ITEM', message })
    })
  }
  it('a value with no type, or with two, is refused on encrypt, naming what it has', () => {
    const one = 'card must have exactly one of NULL, S, N, B, BOOL, SS, NS, BS, M, L set; it has'
    expect(thrownBy(() => serializeAttribute({} as never, 'card'))).toMatchObject({ code: 'INVALID_ITEM', message: `${one} none.` })
    expect(thrownBy(() => serializeAttribute({ S: 'x', N: '1' } as never, 'card'))).toMatchObject({ code: 'INVALID_ITEM', message: `${one} S, N.` })
  })

  it('a number refused on encrypt or on decrypt is named, and its value left out of the message (it may be secret)', () => {
    const card = '4111 1111 1111 1111'
    for (const value of [{ N: card }, { NS: ['1', card] }, { M: { pan: { N: card } } }]) {
      const message = (thrownBy(() => serializeAttribute(value as AttributeValue, 'card')) as Error).message
      expect(message, JSON.stringify(value)).toMatch(/^card(\.NS\[1\]|\.M\.pan\.N|\.N) is not a DynamoDB number, such as -12\.5 or 1\.5E\+3; got 19 characters \(the value is not shown: it may be secret\)\.$/)
      expect(message).not.toContain('4111')
    }
    expect(() => serializeAttribute({ N: `${'0'.repeat(1024)}1` }, 'n')).toThrow(/^n\.N is not a DynamoDB number, such as -12\.5 or 1\.5E\+3; got 1025 characters /)
    // What a decrypted attribute holds: "04111" is no number DynamoDB stores.
    const decrypted = thrownBy(() => deserializeAttribute(terminal(0x0002, Buffer.from('04111').toString('hex')), 'card')) as Error & { code: string }
    expect([decrypted.code, decrypted.message]).toEqual(['MALFORMED_ITEM', 'card holds a number not in the form DynamoDB stores (the value is not shown: it may be secret).'])
  })
  it('refuses nesting deeper than 32 levels on decrypt, in bounded time', () => {
    // 40 nested one-entry lists, written by hand.
    let bytes = Buffer.from('78', 'hex')
    let typeId = 0x0001
    for (let i = 0; i < 40; i++) {
      const header = Buffer.alloc(10)
      header.writeUInt32BE(1, 0)
      header.writeUInt16BE(typeId, 4)
      header.writeUInt32BE(bytes.length, 6)
      bytes = Buffer.concat([header, bytes])
      typeId = 0x0300
    }
    expect(codeOf(() => deserializeAttribute({ typeId: 0x0300, value: bytes }))).toBe('MALFORMED_ITEM')
  })
})

describe('itemFromDynamoDbJson: DynamoDB JSON (stream records, the AWS CLI) to items', () => {
  // The JSON DynamoDB writes: every binary as standard base64 text.
  const asJson = (item: Record<string, AttributeValue>): unknown =>
    JSON.parse(JSON.stringify(item, (_key, value: unknown) => (value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value)))
  const refusal = (image: unknown): { code?: string; message?: string } => {
    try {
      itemFromDynamoDbJson(image)
    } catch (error) {
      return error as { code?: string; message?: string }
    }
    return {}
  }

  it('decodes every B and BS value at any depth and keeps the rest: random items come back as they were; itemToDynamoDbJson writes that JSON', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), attribute, { maxKeys: 5 }), (item) => {
        expect(itemFromDynamoDbJson(asJson(item))).toEqual(item)
        expect(JSON.parse(JSON.stringify(itemToDynamoDbJson(item)))).toEqual(asJson(item))
      }),
      { numRuns: 300 },
    )
  })

  it('itemToDynamoDbJson refuses, with INVALID_ITEM, a value DynamoDB would refuse', () => {
    for (const item of [{ a: { $unknown: ['X', 1] } }, { a: { SS: [] } }, { a: { B: 'AQI=' } }, null]) {
      let code: string | undefined
      try {
        itemToDynamoDbJson(item as never)
      } catch (error) {
        code = (error as { code?: string }).code
      }
      expect(code, JSON.stringify(item)).toBe('INVALID_ITEM')
    }
  })

  it('an attribute or map key named "__proto__" stays an own entry; bytes already decoded are kept', () => {
    const image = JSON.parse('{"__proto__":{"M":{"__proto__":{"B":"AQI="}}},"b":{"B":"AA=="}}') as unknown
    const item = itemFromDynamoDbJson(image)
    expect(Object.keys(item)).toEqual(['__proto__', 'b'])
    expect(Object.getPrototypeOf(item)).toBe(Object.prototype)
    const nested = (item['__proto__'] as { M: Record<string, AttributeValue> }).M
    expect(Object.keys(nested)).toEqual(['__proto__'])
    expect(nested['__proto__']).toEqual({ B: Uint8Array.of(1, 2) })
    expect(itemFromDynamoDbJson({ b: { B: Uint8Array.of(9) } })).toEqual({ b: { B: Uint8Array.of(9) } })
  })

  it.each([
    ['an image that is no object', null, 'The item must be a plain object; got Null.'],
    ['an array', [{ S: 'x' }], 'The item must be a plain object; got Array.'],
    ['a value that is no object', { a: 'text' }, '"a" must be a plain object; got String.'],
    ['a value of two types', { a: { S: 'x', N: '1' } }, '"a" must have exactly one of B, BOOL, BS, L, M, N, NS, NULL, S, SS; it has 2.'],
    ['a value of no type', { a: {} }, '"a" must have exactly one of B, BOOL, BS, L, M, N, NS, NULL, S, SS; it has 0.'],
    ['an unknown type', { a: { X: '1' } }, '"a" has a value of unknown type "X"; DynamoDB\'s are B, BOOL, BS, L, M, N, NS, NULL, S, SS.'],
    ['a binary that is not base64', { a: { B: 'not base64!' } }, '"a".B must be base64 text; got text that is not base64.'],
    ['a binary without its padding', { a: { B: 'AQI' } }, '"a".B must be base64 text; got text that is not base64.'],
    ['a binary that is a number', { a: { B: 12 } }, '"a".B must be base64 text; got Number.'],
    ['a binary set that is no array', { a: { BS: 'AA==' } }, '"a".BS must be an array; got String.'],
    ['a bad binary set entry', { a: { BS: ['AA==', '%%'] } }, '"a".BS[1] must be base64 text; got text that is not base64.'],
    ['a list that is no array', { a: { L: {} } }, '"a".L must be an array; got Object.'],
    ['a map that is a Map', { a: { M: new Map() } }, '"a".M must be a plain object; got Map.'],
    ['a binary deep inside', { a: { L: [{ M: { k: { B: '***' } } }] } }, '"a".L[0].M.k.B must be base64 text; got text that is not base64.'],
  ])('refuses %s with INVALID_ITEM, naming where', (_name, image, message) => {
    const error = refusal(image)
    expect(error.code).toBe('INVALID_ITEM')
    expect(error.message).toBe(message)
  })

  it('a binary of millions of characters is read, or refused as not base64, without a stack overflow', () => {
    const text = Buffer.alloc(6 << 20, 7).toString('base64') // 8 million characters
    expect((itemFromDynamoDbJson({ a: { B: text } }).a as { B: Uint8Array }).B).toHaveLength(6 << 20)
    for (const bad of [`${text}!`, `${text}A`, `A${text.slice(1, -1)}=A`]) expect(refusal({ a: { B: bad } })).toMatchObject({ code: 'INVALID_ITEM' })
  })

  it('nesting deeper than DynamoDB allows is refused without a stack overflow, however deep: lists, maps, and the two mixed', () => {
    const nest = (depth: number, level: (inner: unknown, index: number) => unknown) => {
      let value: unknown = { S: 'x' }
      for (let i = 0; i < depth; i++) value = level(value, i)
      return { a: value }
    }
    const kinds = {
      lists: (inner: unknown) => ({ L: [inner] }),
      maps: (inner: unknown) => ({ M: { k: inner } }),
      mixed: (inner: unknown, index: number) => (index % 2 === 0 ? { L: [inner] } : { M: { k: inner } }),
    }
    for (const [kind, level] of Object.entries(kinds)) {
      const deepest = nest(32, level)
      expect(itemFromDynamoDbJson(deepest), kind).toEqual(deepest)
      for (const depth of [33, 100_000]) {
        expect(refusal(nest(depth, level)), `${kind} ${depth}`).toMatchObject({ code: 'INVALID_ITEM', message: expect.stringMatching(/more than 32 levels deep/) })
      }
    }
  })
})
