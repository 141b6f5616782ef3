// The item format's header, footer and per-attribute encryption, derived step by step from the spec
// (structured-encryption/header.md, footer.md, encrypt-path-structure.md) with node:crypto, for a fixed data
// key, message ID, encrypted data key and signing keys; then round trips and tampering as properties.
import { createCipheriv, createHash, createHmac, createVerify, generateKeyPairSync, hkdfSync, sign, verify } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decompressPoint } from '../../src/backend/ec.js'
import { nodeBackend } from '../../src/backend/node.js'
import { nodeItemBackend } from '../../src/dynamodb/node-backend.js'
import type { ItemBackend } from '../../src/dynamodb/structured/item-backend.js'
import { webItemBackend } from '../../src/dynamodb/web-backend.js'
import { isAllZero } from '../../src/format/bytes.js'
import type { AeadKey, CryptoBackend } from '../../src/backend/types.js'
import { serializeAttribute } from '../../src/dynamodb/attributes/index.js'
import {
  canonicalPath,
  decryptStructure,
  ENCRYPTED_TYPE_ID,
  encryptStructure,
  fieldKey,
  fieldKeyAt,
  rememberedPaths,
  fieldKeys,
  fieldRootKey,
  parseHeader,
  serializeItemContext,
  serializePartialHeader,
  signatureOf103Bytes,
  type StructuredField,
} from '../../src/dynamodb/structured/index.js'
import type { AttributeValue, CryptoAction, Terminal } from '../../src/dynamodb/types.js'
import { EnvelopeError, InternalError } from '../../src/errors.js'
import { dbeSuite } from '../../src/suites-dbe.js'
import type { CompleteDecryptionMaterials, CompleteEncryptionMaterials, DecryptionRequest, EncryptionRequest, MaterialsManager } from '../../src/types.js'
import { DefaultMaterialsManager } from '../../src/index.js'
import { aesKeyring, countingAeadKeys, rejectionOf, thrownBy, withoutSubtle } from '../helpers/fixtures.js'
import { derIntegerContent, derIntegers, derSignature, P384_ORDER } from '../helpers/craft.js'
import { decryptTerminal, settledAll } from '../../src/dynamodb/structured/crypt.js'
import { withAttributeContext } from '../../src/dynamodb/structured/context.js'
import { InvalidItemError, MalformedItemError } from '../../src/dynamodb/errors.js'

const dataKey = Uint8Array.from({ length: 32 }, (_, i) => i + 1)
const messageId = Uint8Array.from({ length: 32 }, (_, i) => 0x80 + i)
const signingKey = Uint8Array.from({ length: 32 }, (_, i) => 0x40 + i)
const edk = { providerId: 'fixed', providerInfo: new Uint8Array([7]), ciphertext: new Uint8Array([8, 9]) }
const u64 = (n: number) => {
  const bytes = Buffer.alloc(8)
  bytes.writeBigUInt64BE(BigInt(n))
  return bytes
}
const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff])

/** Fixed materials, so every byte of an item is known in advance (0x6701 adds a fresh ECDSA key). */
class FixedMaterials implements MaterialsManager {
  signingPair: { privateKey: unknown; publicKey: Uint8Array } | undefined
  async getEncryptionMaterials(request: EncryptionRequest): Promise<CompleteEncryptionMaterials> {
    const encryptionContext = { ...request.encryptionContext }
    let key: unknown
    if (request.suite.signature !== undefined) {
      this.signingPair = await nodeBackend.generateSigningKey('P-384')
      key = this.signingPair.privateKey
      encryptionContext['aws-crypto-public-key'] = Buffer.from(this.signingPair.publicKey).toString('base64')
    }
    return {
      suite: request.suite,
      encryptionContext,
      plaintextDataKey: dataKey.slice(),
      encryptedDataKeys: [edk],
      symmetricSigningKeys: [signingKey.slice()],
      requiredEncryptionContextKeys: request.requiredEncryptionContextKeys ?? [],
      ...(key === undefined ? {} : { signingKey: key }),
    }
  }
  async getDecryptionMaterials(request: DecryptionRequest): Promise<CompleteDecryptionMaterials> {
    const encryptionContext = { ...request.encryptionContext, ...request.reproducedEncryptionContext }
    const verificationKey =
      request.suite.signature === undefined
        ? undefined
        : await nodeBackend.importVerificationKey('P-384', Buffer.from(encryptionContext['aws-crypto-public-key'] as string, 'base64'))
    return { suite: request.suite, encryptionContext, plaintextDataKey: dataKey.slice(), symmetricSigningKey: signingKey.slice(), verificationKey }
  }
}

const field = (name: string, value: AttributeValue, action: CryptoAction): StructuredField => ({ name, terminal: serializeAttribute(value), action })

describe('item format: known answers', () => {
  it('canonical path: table name, depth 1, "$", name length, name (8-byte integers)', () => {
    const expected = Buffer.concat([Buffer.from('t1'), u64(1), Buffer.from('$'), u64(2), Buffer.from('ab')])
    expect(Buffer.from(canonicalPath('t1', 'ab'))).toEqual(expected)
  })

  it('canonical paths are remembered per table and name, within bounds that stored items cannot push past', () => {
    const path = (table: string, name: string) =>
      Buffer.concat([Buffer.from(table), u64(1), Buffer.from('$'), u64(Buffer.byteLength(name)), Buffer.from(name)])
    // Names an item may carry (stored items choose them on decrypt): many, in many tables. The bounds hold after
    // every new path: at most 64 tables, at most 1,024 names in each.
    let cleared = false
    for (let table = 0; table < 100; table++) {
      for (let name = 0; name < (table === 7 ? 3000 : 20); name++) {
        const [t, n] = [`table-${table}`, `attr-${name}-é`]
        expect(Buffer.from(canonicalPath(t, n))).toEqual(path(t, n))
        const { tables, mostNames } = rememberedPaths()
        if (tables > 64 || mostNames > 1024) expect.fail(`${tables} tables, ${mostNames} names in one, after ${t} ${n}`)
        cleared ||= tables === 1 && table > 0
      }
    }
    expect(cleared).toBe(true) // the 65th table emptied the memory
    // Asked again, in any order, each path is still its own table's and name's; with room for the tables and names
    // asked (the memory was last emptied at table 64), the same bytes are handed out.
    for (const [t, n] of [['table-7', 'attr-2999-é'], ['table-99', 'attr-0-é'], ['table-7', 'attr-0-é'], ['t1', 'ab']] as const) {
      expect(Buffer.from(canonicalPath(t, n))).toEqual(path(t, n))
    }
    const first = canonicalPath('table-98', 'attr-0-é')
    canonicalPath('table-99', 'attr-0-é')
    canonicalPath('table-98', 'attr-1-é')
    expect(canonicalPath('table-98', 'attr-0-é')).toBe(first)
  })

  // The browser build's item backend takes the stream from WebCrypto's AES-CTR, or from @noble without crypto.subtle.
  it.each([
    ['node:crypto', nodeItemBackend, false],
    ['WebCrypto', webItemBackend, false],
    ['@noble (no crypto.subtle)', webItemBackend, true],
  ] as const)('field keys on %s: HKDF-SHA512 root key, then AES-256-CTR from "AwsDbeField" ‖ 0x2c ‖ uint32(3 × offset)', async (_name, backend, noSubtle) =>
    (noSubtle ? withoutSubtle : (run: () => Promise<void>) => run())(async () => {
    const info = Buffer.concat([Buffer.from('AWS_DBE_DERIVE_KEY'), messageId])
    const root = new Uint8Array(hkdfSync('sha512', dataKey, new Uint8Array(0), info, 32))
    expect(await fieldRootKey(backend, dbeSuite(0x6700), dataKey, messageId)).toEqual(root)
    // An item's keys come from one pass over the stream (fieldKeys); each must be the one its own counter gives.
    const keys = await fieldKeys(backend, root, 90)
    expect(keys).toHaveLength(90 * 48)
    for (const offset of [0, 1, 2, 85, 89]) {
      const counter = Buffer.concat([Buffer.from('AwsDbeField'), Buffer.from([44]), Buffer.alloc(4)])
      counter.writeUInt32BE(offset * 3, 12) // 89 × 3 carries into the third byte
      const stream = createCipheriv('aes-256-ctr', root, counter).update(Buffer.alloc(44))
      for (const { key, nonce } of [await fieldKey(backend, root, offset), fieldKeyAt(keys, offset)]) {
        expect(Buffer.from(key), `offset ${offset}`).toEqual(stream.subarray(0, 32))
        expect(Buffer.from(nonce), `offset ${offset}`).toEqual(stream.subarray(32))
      }
    }
  }))

  it('header, encrypted attribute and footer bytes of a 0x6700 item', async () => {
    const backend = nodeItemBackend
    const table = 'orders'
    const fields = [field('pk', { S: 'u1' }, 'SIGN_ONLY'), field('card', { S: '4111' }, 'ENCRYPT_AND_SIGN'), field('note', { S: 'n' }, 'DO_NOTHING')]
    const context = { 'aws-crypto-table-name': table }
    const out = await encryptStructure({ tableName: table, fields, materialsManager: new FixedMaterials(), backend, algorithmSuiteId: 0x6700, encryptionContext: context, messageId })

    // Partial header: version 1, flavor 0, message ID, legend (sorted by canonical path: "pk" (length 2) before
    // "card" (length 4), so 's' then 'e'), the context (count, key and value with 2-byte lengths), one EDK.
    const partial = Buffer.concat([
      Buffer.from([1, 0]),
      messageId,
      u16(2),
      Buffer.from('se'),
      u16(1),
      u16(21),
      Buffer.from('aws-crypto-table-name'),
      u16(6),
      Buffer.from(table),
      Buffer.from([1]),
      u16(5),
      Buffer.from('fixed'),
      u16(1),
      Buffer.from([7]),
      u16(2),
      Buffer.from([8, 9]),
    ])
    // Commitment: HMAC(commit key, partial header), first 32 bytes; commit key = HKDF-SHA512(data key, "AWS_DBE_COMMIT_KEY" ‖ message ID).
    const commitKey = Buffer.from(hkdfSync('sha512', dataKey, new Uint8Array(0), Buffer.concat([Buffer.from('AWS_DBE_COMMIT_KEY'), messageId]), 32))
    const header = Buffer.concat([partial, createHmac('sha512', commitKey).update(partial).digest().subarray(0, 32)])
    expect(Buffer.from(out.fields.get('aws_dbe_head')?.value as Uint8Array).toString('hex')).toBe(header.toString('hex'))

    // "card" is the first (offset 0) encrypted attribute: type ID ‖ AES-GCM(field key, field nonce, aad = path).
    const root = hkdfSync('sha512', dataKey, new Uint8Array(0), Buffer.concat([Buffer.from('AWS_DBE_DERIVE_KEY'), messageId]), 32)
    const stream = createCipheriv('aes-256-ctr', Buffer.from(root), Buffer.concat([Buffer.from('AwsDbeField'), Buffer.from([44, 0, 0, 0, 0])])).update(Buffer.alloc(44))
    const gcm = createCipheriv('aes-256-gcm', stream.subarray(0, 32), stream.subarray(32))
    gcm.setAAD(canonicalPath(table, 'card'))
    const card = Buffer.concat([u16(1), gcm.update('4111'), gcm.final(), gcm.getAuthTag()])
    expect(out.fields.get('card')).toEqual({ typeId: 0xffff, value: new Uint8Array(card) })
    expect(out.fields.get('note')).toEqual(serializeAttribute({ S: 'n' }))

    // Footer: HMAC-SHA384(signing key, SHA-384(header ‖ uint64(AAD length) ‖ AAD ‖ signed fields by path)).
    const aad = Buffer.concat([u16(1), u16(21), Buffer.from('aws-crypto-table-name'), u16(6), Buffer.from(table)])
    const record = Buffer.concat([
      header,
      u64(aad.length),
      aad,
      Buffer.from(canonicalPath(table, 'pk')),
      u64(2),
      Buffer.from('PLAINTEXT'),
      u16(1),
      Buffer.from('u1'),
      Buffer.from(canonicalPath(table, 'card')),
      u64(card.length - 2),
      Buffer.from('ENCRYPTED'),
      card,
    ])
    const hash = createHash('sha384').update(record).digest()
    expect(Buffer.from(out.fields.get('aws_dbe_foot')?.value as Uint8Array)).toEqual(createHmac('sha384', signingKey).update(hash).digest())
  })

  it('a 0x6701 footer ends with a 103-byte DER ECDSA P-384 signature over the canonical hash', async () => {
    const materials = new FixedMaterials()
    for (let i = 0; i < 6; i++) {
      const out = await encryptStructure({ tableName: 't12', fields: [field('pk', { S: `k${i}` }, 'SIGN_ONLY')], materialsManager: materials, backend: nodeItemBackend, messageId })
      const footer = out.fields.get('aws_dbe_foot')?.value as Uint8Array
      expect(footer.length).toBe(48 + 103)
      const header = out.fields.get('aws_dbe_head')?.value as Uint8Array
      const aad = Buffer.from(serializeItemContext(out.parsedHeader.encryptionContext))
      const record = Buffer.concat([header, u64(aad.length), aad, Buffer.from(canonicalPath('t12', 'pk')), u64(2), Buffer.from('PLAINTEXT'), u16(1), Buffer.from(`k${i}`)])
      const hash = createHash('sha384').update(record).digest()
      const publicKey = { key: Buffer.concat([Buffer.from('3076301006072a8648ce3d020106052b81040022036200', 'hex'), uncompressed(materials)]), format: 'der' as const, type: 'spki' as const }
      expect(createVerify('sha384').update(hash).verify(publicKey, footer.subarray(48))).toBe(true)
    }
  })
})

describe('item format: the encryption context of SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT attributes', () => {
  // The official item encryptor's own test: numbers and strings as they are, booleans and null as words, anything
  // else as base64 of type ID and value; the legend has one letter per attribute, sorted by name.
  it('values and legend as the DynamoDB Encryption SDK writes them', () => {
    const attributes = [
      ['sortKey', { B: Uint8Array.of(1, 2, 3, 4) }],
      ['sign4', { NULL: true }],
      ['bar', { N: '1234' }],
      ['sign3', { BOOL: false }],
      ['name', { S: 'é' }],
      ['sign', { BOOL: true }],
    ] as const
    const added = withAttributeContext(
      { purpose: 'test' },
      attributes.map(([name, value]) => ({ name, terminal: serializeAttribute(value as AttributeValue) })),
      InvalidItemError,
    )
    expect(added?.context).toEqual({
      purpose: 'test',
      'aws-crypto-attr.bar': '1234',
      'aws-crypto-attr.name': 'é',
      'aws-crypto-attr.sign': 'true',
      'aws-crypto-attr.sign3': 'false',
      'aws-crypto-attr.sign4': 'null',
      'aws-crypto-attr.sortKey': '//8BAgME',
      'aws-crypto-legend': 'NSLLLB',
    })
    expect(added?.addedKeys).toEqual([...Object.keys(added?.context ?? {})].filter((key) => key !== 'purpose').sort())
    expect(withAttributeContext({}, [], InvalidItemError)).toBeUndefined()
  })

  it('a set, list or map is base64 of its two type ID bytes, high then low, and its serialized value', () => {
    const attributes = [
      ['tags', { SS: ['a', 'b'] }, [0x01, 0x01]],
      ['sizes', { NS: ['1'] }, [0x01, 0x02]],
      ['list', { L: [{ S: 'x' }] }, [0x03, 0x00]],
      ['map', { M: { k: { N: '2' } } }, [0x02, 0x00]],
    ] as const
    const terminals = attributes.map(([name, value]) => ({ name, terminal: serializeAttribute(value as AttributeValue) }))
    const added = withAttributeContext({}, terminals, InvalidItemError)
    for (const [index, [name, , typeId]] of attributes.entries()) {
      const value = Buffer.concat([Buffer.from(typeId), terminals[index]?.terminal.value as Uint8Array])
      expect(added?.context[`aws-crypto-attr.${name}`]).toBe(value.toString('base64'))
    }
    expect(added?.context['aws-crypto-legend']).toBe('BBBB')
  })

  it('a context that already has one of the keys, and a stored string that is not UTF-8, are refused', () => {
    const one = [{ name: 'region', terminal: serializeAttribute({ S: 'eu' }) }]
    for (const key of ['aws-crypto-attr.region', 'aws-crypto-legend']) {
      expect(thrownBy(() => withAttributeContext({ [key]: 'x' }, one, InvalidItemError))).toMatchObject({
        code: 'INVALID_ITEM',
        message: `The encryption context already has "${key}", which a SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT attribute needs.`,
      })
    }
    expect(thrownBy(() => withAttributeContext({ 'aws-crypto-legend': 'x' }, one, MalformedItemError))).toMatchObject({ code: 'MALFORMED_ITEM' })
    const notUtf8 = [{ name: 'region', terminal: { typeId: 0x0001, value: Uint8Array.of(0xc3) } }]
    expect(thrownBy(() => withAttributeContext({}, notUtf8, MalformedItemError))).toMatchObject({
      code: 'MALFORMED_ITEM',
      message: 'A context attribute of the item is not valid UTF-8.',
    })
  })
})

describe('item materials: their secrets are zeroed once the item is done', () => {
  it('the data key and the symmetric signing keys, after encrypt and after a decrypt that succeeds or fails', async () => {
    const given: (CompleteEncryptionMaterials | CompleteDecryptionMaterials)[] = []
    class Recording extends FixedMaterials {
      override async getEncryptionMaterials(request: EncryptionRequest): Promise<CompleteEncryptionMaterials> {
        const materials = await super.getEncryptionMaterials(request)
        given.push(materials)
        return materials
      }
      override async getDecryptionMaterials(request: DecryptionRequest): Promise<CompleteDecryptionMaterials> {
        const materials = await super.getDecryptionMaterials(request)
        given.push(materials)
        return materials
      }
    }
    const manager = new Recording()
    const fields = [field('pk', { S: 'k' }, 'SIGN_ONLY'), field('card', { S: '4111' }, 'ENCRYPT_AND_SIGN')]
    const decrypting = (stored: Map<string, Terminal>) =>
      decryptStructure({ tableName: 't', fields: stored, authenticate: () => 'SIGN', materialsManager: manager, backend: nodeItemBackend })
    for (const algorithmSuiteId of [0x6700, 0x6701]) {
      given.length = 0
      const out = await encryptStructure({ tableName: 't', fields, materialsManager: manager, backend: nodeItemBackend, algorithmSuiteId })
      expect((await decrypting(out.fields)).fields.get('card')).toEqual(serializeAttribute({ S: '4111' }))
      const footer = (out.fields.get('aws_dbe_foot') as Terminal).value.slice()
      footer[0] = (footer[0] as number) ^ 1
      const tampered = new Map(out.fields).set('aws_dbe_foot', { typeId: ENCRYPTED_TYPE_ID, value: footer })
      expect(await rejectionOf(decrypting(tampered))).toMatchObject({ code: 'ITEM_AUTHENTICATION_FAILED' })
      const secrets = given.flatMap((materials) => [
        materials.plaintextDataKey,
        ...('symmetricSigningKeys' in materials ? (materials.symmetricSigningKeys ?? []) : []),
        ...('symmetricSigningKey' in materials && materials.symmetricSigningKey !== undefined ? [materials.symmetricSigningKey] : []),
      ])
      expect(secrets).toHaveLength(6) // encrypt, decrypt, failed decrypt: a data key and a signing key each
      for (const [index, secret] of secrets.entries()) expect(isAllZero(secret), `0x${algorithmSuiteId.toString(16)}: secret ${index}`).toBe(true)
    }
  })
})

describe('item keys: what is derived is zeroed once the item is done', () => {
  it('the commit key, the field root key, and every field key and nonce, after encrypt and after a decrypt that succeeds or fails; every AES-GCM key made is disposed of', async () => {
    const derived: Uint8Array[] = []
    const streams: Uint8Array[] = []
    const { backend: counting, live, made } = countingAeadKeys(nodeItemBackend)
    const recording: ItemBackend = {
      ...counting,
      hkdf: async (...args) => {
        const outputs = await nodeItemBackend.hkdf(...args)
        derived.push(...outputs)
        return outputs
      },
      aesCtr: async (...args) => {
        const stream = await nodeItemBackend.aesCtr(...args)
        derived.push(stream)
        streams.push(stream)
        return stream
      },
    }
    const manager = new DefaultMaterialsManager(aesKeyring())
    const fields = [field('pk', { S: 'k' }, 'SIGN_ONLY'), field('card', { S: '4111' }, 'ENCRYPT_AND_SIGN'), field('pin', { N: '1234' }, 'ENCRYPT_AND_SIGN')]
    const decrypting = (stored: Map<string, Terminal>) =>
      decryptStructure({ tableName: 't', fields: stored, authenticate: () => 'SIGN', materialsManager: manager, backend: recording })
    const out = await encryptStructure({ tableName: 't', fields, materialsManager: manager, backend: recording })
    expect((await decrypting(out.fields)).fields.get('pin')).toEqual(serializeAttribute({ N: '1234' }))
    const card = (out.fields.get('card') as Terminal).value.slice()
    card[5] = (card[5] as number) ^ 1
    expect(await rejectionOf(decrypting(new Map(out.fields).set('card', { typeId: ENCRYPTED_TYPE_ID, value: card })))).toMatchObject({ code: 'ITEM_AUTHENTICATION_FAILED' })
    // Two streams of two field keys (96 bytes): the failed decrypt stops at the footer, before any; the keys
    // HKDF made: per call the commit key, the field root key and the raw AES keyring's own.
    expect(streams.map((bytes) => bytes.length)).toEqual([96, 96])
    expect(derived.length).toBeGreaterThanOrEqual(3 * 2 + streams.length)
    for (const [index, bytes] of derived.entries()) expect(isAllZero(bytes), `derived ${index}`).toBe(true)
    // Every AES-GCM key made for the item is disposed of (its copy of the key zeroed): the attributes' keys, and the
    // keys intermediate wrapping seals and opens the data key with. One lives on: the raw AES keyring's own.
    expect(made()).toBeGreaterThanOrEqual(4 + 3)
    expect(live()).toBe(1)
  })
})

describe('item footer: the 103-byte signature', () => {
  it('a signature of 103 bytes is kept; one of 102 or 104 becomes its twin (r, n - s) when that is 103 bytes (else none, and the footer signs again)', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' })
    const twins = new Map<number, number>()
    for (let i = 0; i < 300; i++) {
      const message = Buffer.from(`message ${i}`)
      const der = new Uint8Array(sign('sha384', message, { key: privateKey, dsaEncoding: 'der' }))
      const stored = signatureOf103Bytes(der)
      if (der.length === 103) {
        expect(stored).toBe(der)
        continue
      }
      if (stored === undefined) continue
      twins.set(der.length, (twins.get(der.length) ?? 0) + 1)
      expect(stored.length).toBe(103)
      const [original, twin] = [integersOf(der), integersOf(stored)]
      expect(twin.r).toBe(original.r)
      expect(twin.s).toBe(P384_ORDER - original.s)
      expect(verify('sha384', message, { key: publicKey, dsaEncoding: 'der' }, stored)).toBe(true)
    }
    // Both kinds of twin happen in 300 signatures: about a quarter of them are 104 bytes, and as many 102.
    expect(twins.get(102)).toBeGreaterThan(0)
    expect(twins.get(104)).toBeGreaterThan(0)
  })

  it('a twin that is not 103 bytes either is not returned (made by hand: random signatures rarely give one)', () => {
    const high = 2n ** 383n // needs a leading zero byte in DER
    // 104 bytes whose twin is 103: r and s both need a leading zero; n - s does not.
    const twin = signatureOf103Bytes(derOf(high + 5n, high + 7n))
    expect(twin?.length).toBe(103)
    expect(integersOf(twin as Uint8Array)).toEqual({ r: high + 5n, s: P384_ORDER - high - 7n })
    // 104 bytes whose twin is 56: n - s is 1. And 8 bytes (r and s of one byte each) whose twin is 56.
    for (const [r, s] of [[high + 5n, P384_ORDER - 1n], [5n, 7n]] as const) expect(signatureOf103Bytes(derOf(r, s)), `${r}, ${s}`).toBeUndefined()
  })
})

/** DER of SEQUENCE { INTEGER r, INTEGER s } for positive r and s. */
function derOf(r: bigint, s: bigint): Uint8Array {
  return Uint8Array.from(derSignature(derIntegerContent(r), derIntegerContent(s)))
}

/** r and s of a DER ECDSA signature. */
function integersOf(der: Uint8Array): { r: bigint; s: bigint } {
  const [r, s] = derIntegers(Buffer.from(der)).map((bytes) => BigInt(`0x${bytes.toString('hex')}`)) as [bigint, bigint]
  return { r, s }
}

function uncompressed(materials: FixedMaterials): Buffer {
  return Buffer.from(decompressPoint('P-384', materials.signingPair?.publicKey as Uint8Array))
}

describe('item format: properties', () => {
  const actions: CryptoAction[] = ['ENCRYPT_AND_SIGN', 'SIGN_ONLY', 'SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT', 'DO_NOTHING']
  const value = fc.oneof(
    fc.record({ S: fc.string({ maxLength: 20 }) }),
    fc.record({ N: fc.integer().map(String) }),
    fc.record({ B: fc.uint8Array({ maxLength: 20 }) }),
    fc.record({ BOOL: fc.boolean() }),
    fc.constant({ NULL: true as const }),
    fc.record({ L: fc.array(fc.record({ S: fc.string({ maxLength: 5 }) }), { maxLength: 3 }) }),
  ) as fc.Arbitrary<AttributeValue>
  const fieldSet = fc
    .uniqueArray(fc.tuple(fc.stringMatching(/^[A-Za-z][A-Za-z0-9_.-]{0,12}$/), value, fc.constantFrom(...actions)), { minLength: 1, maxLength: 8, selector: ([name]) => name })
    .map((entries) => [field('pk', { S: 'key' }, 'SIGN_ONLY'), ...entries.filter(([name]) => name !== 'pk').map(([name, v, action]) => field(name, v, action))])
  const manager = new DefaultMaterialsManager(aesKeyring())
  const authenticate = (fields: StructuredField[]) => (name: string) => (fields.find((f) => f.name === name)?.action === 'DO_NOTHING' ? 'DO_NOT_SIGN' : 'SIGN')

  it('a signer that never gives a 103-byte signature fails the item with INTERNAL_ERROR after 17 attempts', async () => {
    let calls = 0
    // Bytes that are no DER signature at all, so neither the signature nor its (r, n - s) twin is 103 bytes.
    const brokenSigner = { ...nodeItemBackend, signMessage: async () => (calls++, new Uint8Array(10)) }
    const error = await encryptStructure({ tableName: 't12', fields: [field('pk', { S: 'k' }, 'SIGN_ONLY')], materialsManager: new FixedMaterials(), backend: brokenSigner, messageId }).then(
      () => undefined,
      (caught: unknown) => caught,
    )
    expect(error).toBeInstanceOf(InternalError)
    expect((error as InternalError).message).toBe('Could not make a 103-byte ECDSA signature for the item footer in 17 attempts.')
    expect(calls).toBe(17)
  })

  it('attributes are worked on side by side, and their field keys zeroed only once all of the work has settled', async () => {
    let lateSettled = false
    const late = new Promise((resolve) => setTimeout(() => ((lateSettled = true), resolve('late')), 20))
    const outcome = await settledAll([Promise.reject(new Error('first')), late, 'value']).catch((error: Error) => [error.message, lateSettled])
    expect(outcome).toEqual(['first', true])
    expect(await settledAll([1, Promise.resolve(2)])).toEqual([1, 2])
  })

  it('when one of the two derivations from the data key fails, the item fails with its error and the other root key is zeroed', async () => {
    const isCommitKey = (info: Uint8Array) => Buffer.from(info).toString('latin1').startsWith('AWS_DBE_COMMIT_KEY')
    const rootKeys: Uint8Array[] = []
    const failing = (which: 'commit' | 'root', delayMs: number): CryptoBackend =>
      ({
        ...nodeItemBackend,
        async hkdf(hash, ikm, salt, outputs) {
          const commit = isCommitKey(outputs[0]!.info)
          if (commit === (which === 'commit')) {
            await new Promise((resolve) => setTimeout(resolve, delayMs))
            throw new EnvelopeError(`${which} derivation failed`)
          }
          await new Promise((resolve) => setTimeout(resolve, 20 - delayMs))
          const keys = await nodeItemBackend.hkdf(hash, ikm, salt, outputs)
          if (!commit) rootKeys.push(keys[0]!)
          return keys
        },
      }) as CryptoBackend
    // The root key fails first, while the commitment is still under way (no rejection may go unhandled), and the
    // other way round, where a root key was made and must not outlive the failure.
    for (const [which, delayMs] of [['root', 0], ['commit', 20]] as const) {
      const backend = failing(which, delayMs) as typeof nodeItemBackend
      const error = await rejectionOf(encryptStructure({ tableName: 't', fields: [field('card', { S: '4111' }, 'ENCRYPT_AND_SIGN')], materialsManager: new FixedMaterials(), backend, messageId }))
      expect((error as Error).message, which).toBe(`${which} derivation failed`)
    }
    expect(rootKeys).toHaveLength(1)
    expect(isAllZero(rootKeys[0]!)).toBe(true)
  })

  it('when the key stream fails, encrypt and decrypt fail with its error and the field root key is zeroed', async () => {
    const rootKeys: Uint8Array[] = []
    const noStream = {
      ...nodeItemBackend,
      async hkdf(hash, ikm, salt, outputs) {
        const keys = await nodeItemBackend.hkdf(hash, ikm, salt, outputs)
        if (Buffer.from(outputs[0]!.info).toString('latin1').startsWith('AWS_DBE_DERIVE_KEY')) rootKeys.push(keys[0]!)
        return keys
      },
      aesCtr: async () => {
        throw new EnvelopeError('no key stream')
      },
    } as typeof nodeItemBackend
    const fields = [field('pk', { S: 'k' }, 'SIGN_ONLY'), field('card', { S: '4111' }, 'ENCRYPT_AND_SIGN')]
    const failedEncrypt = await rejectionOf(encryptStructure({ tableName: 't', fields, materialsManager: new FixedMaterials(), backend: noStream, messageId }))
    const out = await encryptStructure({ tableName: 't', fields, materialsManager: new FixedMaterials(), backend: nodeItemBackend, messageId })
    const failedDecrypt = await rejectionOf(decryptStructure({ tableName: 't', fields: out.fields, authenticate: () => 'SIGN', materialsManager: new FixedMaterials(), backend: noStream }))
    expect([(failedEncrypt as Error).message, (failedDecrypt as Error).message]).toEqual(['no key stream', 'no key stream'])
    expect(rootKeys).toHaveLength(2)
    for (const key of rootKeys) expect(isAllZero(key)).toBe(true)
  })

  it('field keys exist for offsets 0 to (2^32 - 1) / 3 only: the counter is 3 × offset in 32 bits', async () => {
    const last = Math.floor(0xffffffff / 3) - 1
    expect((await fieldKey(nodeItemBackend, dataKey, last)).key).toHaveLength(32)
    for (const offset of [last + 1, -1, 1.5, Number.NaN]) {
      expect(await rejectionOf(fieldKey(nodeItemBackend, dataKey, offset)), String(offset)).toMatchObject({ code: 'MALFORMED_ITEM' })
    }
    // A count past the last offset is refused before its stream is allocated.
    expect(await rejectionOf(fieldKeys(nodeItemBackend, dataKey, last + 2))).toMatchObject({ code: 'MALFORMED_ITEM' })
  })

  it('random attribute sets round-trip under both suites', async () => {
    await fc.assert(
      fc.asyncProperty(fieldSet, fc.constantFrom(0x6700, 0x6701), async (fields, suite) => {
        const out = await encryptStructure({ tableName: 'table', fields, materialsManager: manager, backend: nodeItemBackend, algorithmSuiteId: suite })
        const back = await decryptStructure({ tableName: 'table', fields: out.fields, authenticate: authenticate(fields), materialsManager: manager, backend: nodeItemBackend })
        for (const f of fields) expect(back.fields.get(f.name)).toEqual(f.terminal)
        expect(back.fields.size).toBe(fields.length)
        expect(back.cryptoActions).toEqual(Object.fromEntries(fields.map((f) => [f.name, f.action])))
      }),
      { numRuns: 40 },
    )
  })

  it('changing any byte of a signed or encrypted attribute, the header or the footer fails with a typed error', async () => {
    await fc.assert(
      fc.asyncProperty(fieldSet, fc.nat(), fc.nat(), fc.integer({ min: 1, max: 255 }), async (fields, pick, position, delta) => {
        const out = await encryptStructure({ tableName: 'table', fields, materialsManager: manager, backend: nodeItemBackend, algorithmSuiteId: 0x6700 })
        const targets = [...out.fields.entries()].filter(([name, terminal]) => authenticate(fields)(name) === 'SIGN' && terminal.value.length > 0)
        const [name, terminal] = targets[pick % targets.length] as [string, Terminal]
        const changed = terminal.value.slice()
        const index = position % changed.length
        changed[index] = ((changed[index] as number) + delta) & 0xff
        const tampered = new Map(out.fields).set(name, { typeId: terminal.typeId, value: changed })
        const failure = await decryptStructure({ tableName: 'table', fields: tampered, authenticate: authenticate(fields), materialsManager: manager, backend: nodeItemBackend }).then(
          () => undefined,
          (error: unknown) => error,
        )
        expect(failure).toBeInstanceOf(EnvelopeError)
      }),
      { numRuns: 80 },
    )
  })

  it('0x6701: a changed signature byte fails with SIGNATURE_INVALID (the recipient tags still match), a changed tag byte with ITEM_AUTHENTICATION_FAILED', async () => {
    const fields = [field('pk', { S: 'key' }, 'SIGN_ONLY'), field('card', { S: '4111' }, 'ENCRYPT_AND_SIGN')]
    const out = await encryptStructure({ tableName: 'table', fields, materialsManager: manager, backend: nodeItemBackend, algorithmSuiteId: 0x6701 })
    const footer = out.fields.get('aws_dbe_foot') as Terminal
    expect(footer.value.length).toBe(48 + 103)
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 48 + 102 }), fc.integer({ min: 1, max: 255 }), async (index, delta) => {
        const changed = footer.value.slice()
        changed[index] = ((changed[index] as number) + delta) & 0xff
        const tampered = new Map(out.fields).set('aws_dbe_foot', { typeId: footer.typeId, value: changed })
        const failure = await rejectionOf(decryptStructure({ tableName: 'table', fields: tampered, authenticate: authenticate(fields), materialsManager: manager, backend: nodeItemBackend }))
        expect(failure).toMatchObject({ code: index < 48 ? 'ITEM_AUTHENTICATION_FAILED' : 'SIGNATURE_INVALID' })
      }),
      { numRuns: 60 },
    )
  })
})

describe('item format: an encrypted attribute that does not open', () => {
  // The footer covers every encrypted byte and is checked first, so only a key holder could bring a changed
  // attribute this far: the attribute's own tag is the last line.
  it('fails with ITEM_AUTHENTICATION_FAILED when a byte changed, MALFORMED_ITEM when it is no encrypted binary value', async () => {
    const materials = new FixedMaterials()
    const out = await encryptStructure({
      tableName: 't',
      fields: [field('pk', { S: 'k' }, 'SIGN_ONLY'), field('card', { S: '4111 1111' }, 'ENCRYPT_AND_SIGN')],
      materialsManager: materials,
      backend: nodeItemBackend,
      messageId,
    })
    const stored = out.fields.get('card') as Terminal
    const rootKey = () => fieldRootKey(nodeBackend, dbeSuite(0x6700), dataKey, messageId)
    const path = canonicalPath('t', 'card')
    expect(await decryptTerminal(nodeBackend, await fieldKey(nodeItemBackend, await rootKey(), 0), path, stored, 'card')).toEqual(serializeAttribute({ S: '4111 1111' }))
    // The first two bytes, the plaintext's type, are outside AES-GCM (spec: the canonical path is its AAD): the
    // footer covers them, as the tampering property above checks.
    for (let index = 2; index < stored.value.length; index++) {
      const changed = stored.value.slice()
      changed[index] = (changed[index] as number) ^ 0x01
      const failure = await rejectionOf(decryptTerminal(nodeBackend, await fieldKey(nodeItemBackend, await rootKey(), 0), path, { typeId: stored.typeId, value: changed }, 'card'))
      expect(failure, `byte ${index}`).toMatchObject({ code: 'ITEM_AUTHENTICATION_FAILED' })
    }
    // What the failed tag left in the output (the plaintext with one bit flipped) is zeroed.
    const outputs: Uint8Array[] = []
    const capturing: CryptoBackend = {
      ...nodeItemBackend,
      aeadKey: (key) => {
        const aead = nodeBackend.aeadKey(key) as AeadKey
        return {
          seal: (...args) => aead.seal(...args),
          open: (...args) => (outputs.push(args[4]), aead.open(...args)),
          dispose: () => aead.dispose?.(),
        }
      },
    }
    const flipped = stored.value.slice()
    flipped[3] = (flipped[3] as number) ^ 0x01
    expect(await rejectionOf(decryptTerminal(capturing, await fieldKey(nodeItemBackend, await rootKey(), 0), path, { typeId: stored.typeId, value: flipped }, 'card'))).toMatchObject({ code: 'ITEM_AUTHENTICATION_FAILED' })
    expect(outputs).toHaveLength(1)
    expect(isAllZero(outputs[0]!)).toBe(true)
    // Another offset (the attribute's place among the encrypted ones) or path opens nothing either.
    expect(await rejectionOf(decryptTerminal(nodeBackend, await fieldKey(nodeItemBackend, await rootKey(), 1), path, stored, 'card'))).toMatchObject({ code: 'ITEM_AUTHENTICATION_FAILED' })
    expect(await rejectionOf(decryptTerminal(nodeBackend, await fieldKey(nodeItemBackend, await rootKey(), 0), canonicalPath('t', 'other'), stored, 'card'))).toMatchObject({ code: 'ITEM_AUTHENTICATION_FAILED' })
    for (const terminal of [{ typeId: 0x0001, value: stored.value }, { typeId: stored.typeId, value: stored.value.subarray(0, 17) }]) {
      expect(await rejectionOf(decryptTerminal(nodeBackend, await fieldKey(nodeItemBackend, await rootKey(), 0), path, terminal, 'card'))).toMatchObject({ code: 'MALFORMED_ITEM' })
    }
  })
})

describe('item header: what parsing refuses', () => {
  const text = (value: string) => Buffer.concat([u16(Buffer.byteLength(value)), Buffer.from(value)])
  /** An item header with the given context keys (in the order given) and number of encrypted data keys. */
  const headerOf = (keys: string[], dataKeys = 1, version = 2) =>
    Buffer.concat([
      Buffer.from([version, 0]),
      messageId,
      u16(1),
      Buffer.from('s'),
      u16(keys.length),
      ...keys.map((key) => Buffer.concat([text(key), text('v')])),
      Buffer.from([dataKeys]),
      ...Array.from({ length: dataKeys }, () => Buffer.concat([text('p'), u16(1), Buffer.from([7]), u16(2), Buffer.from([8, 9])])),
      Buffer.alloc(32),
    ])

  it('context keys out of ascending order (by UTF-8 bytes) or repeated, and no encrypted data key', () => {
    expect(parseHeader(headerOf(['a', 'b', 'é'])).header.storedEncryptionContext).toEqual({ a: 'v', b: 'v', é: 'v' })
    // A key that is a prefix of the next one sorts first; two keys that differ only after their first byte sort by that byte.
    expect(parseHeader(headerOf(['a', 'ab', 'ac', 'b'])).header.storedEncryptionContext).toEqual({ a: 'v', ab: 'v', ac: 'v', b: 'v' })
    expect(parseHeader(headerOf(['a'], 255)).header.encryptedDataKeys).toHaveLength(255)
    for (const keys of [['b', 'a'], ['é', 'z'], ['ab', 'a'], ['a', 'a']]) {
      expect(thrownBy(() => parseHeader(headerOf(keys))), keys.join(',')).toMatchObject({ code: 'MALFORMED_ITEM' })
    }
    expect(thrownBy(() => parseHeader(headerOf(['a'], 0)))).toMatchObject({ code: 'MALFORMED_ITEM' })
  })

  it('two-byte lengths and counts of 256 and more are read with their high byte', () => {
    const keys = Array.from({ length: 300 }, (_, index) => `k${String(index).padStart(3, '0')}`)
    const long = (length: number, fill: number) => Buffer.concat([u16(length), Buffer.alloc(length, fill)])
    const header = Buffer.concat([
      Buffer.from([2, 0]),
      messageId,
      long(0x0102, 0x73), // legend: 258 SIGN_ONLY bytes
      u16(keys.length),
      ...keys.map((key, index) => Buffer.concat([text(key), index === 0 ? text('v'.repeat(0x0201)) : text('v')])),
      Buffer.from([1]),
      Buffer.concat([text('p'.repeat(0x0100)), long(0x0300, 7), long(0x01ff, 8)]),
      Buffer.alloc(32, 9),
    ])
    const { header: parsed, partialHeader, commitment } = parseHeader(header)
    expect(Buffer.from(parsed.legend)).toEqual(Buffer.alloc(0x0102, 0x73))
    expect(Object.keys(parsed.storedEncryptionContext)).toEqual(keys)
    expect(parsed.storedEncryptionContext.k000).toBe('v'.repeat(0x0201))
    const [edk] = parsed.encryptedDataKeys
    expect(parsed.encryptedDataKeys).toHaveLength(1)
    expect(edk?.providerId).toBe('p'.repeat(0x0100))
    expect(Buffer.from(edk?.providerInfo ?? [])).toEqual(Buffer.alloc(0x0300, 7))
    expect(Buffer.from(edk?.ciphertext ?? [])).toEqual(Buffer.alloc(0x01ff, 8))
    expect(Buffer.from(commitment)).toEqual(Buffer.alloc(32, 9))
    expect(Buffer.from(serializePartialHeader(parsed))).toEqual(header.subarray(0, header.length - 32))
    expect(Buffer.from(partialHeader)).toEqual(header.subarray(0, header.length - 32))
  })

  it('a header cut short says which field it ends inside; bytes after the commitment and text that is not UTF-8 are refused', () => {
    const header = headerOf(['a'])
    // Field by field, with each length prefix counted in its field: headerOf(['a']) with one encrypted data key.
    const layout: [string, number][] = [
      ['the version', 1], ['the flavor', 1], ['the message ID', 32], ['the encrypt legend', 2 + 1], ['the context count', 2],
      ['a context key', 2 + 1], ['a context value', 2 + 1], ['the encrypted data key count', 1],
      ['a key provider ID', 2 + 1], ['a key provider info', 2 + 1], ['an encrypted data key', 2 + 2], ['the commitment', 32],
    ]
    expect(layout.reduce((sum, [, length]) => sum + length, 0)).toBe(header.length)
    let end = 0
    for (const [what, length] of layout) {
      for (let cut = end; cut < end + length; cut++) {
        expect(thrownBy(() => parseHeader(header.subarray(0, cut))), `${cut} bytes`).toMatchObject({
          code: 'MALFORMED_ITEM',
          message: `The item header ends inside ${what}.`,
        })
      }
      end += length
    }
    expect(thrownBy(() => parseHeader(Buffer.concat([header, Buffer.from([0])])))).toMatchObject({ code: 'MALFORMED_ITEM', message: '1 byte follows the item header.' })
    expect(thrownBy(() => parseHeader(Buffer.concat([header, Buffer.alloc(32)])))).toMatchObject({ code: 'MALFORMED_ITEM', message: '32 bytes follow the item header.' })
    const notUtf8 = Buffer.from(header)
    notUtf8[2 + 32 + 3 + 2 + 2] = 0xff // the context key 'a'
    expect(thrownBy(() => parseHeader(notUtf8))).toMatchObject({ code: 'MALFORMED_ITEM', message: 'The item header has a context key that is not UTF-8.' })
  })

  it('a version other than 1 and 2, a flavor other than 0 and 1, and a legend byte other than e, s and c', () => {
    const refusal = (header: Uint8Array) => (thrownBy(() => parseHeader(header)) as Error & { code: string })
    for (const version of [0, 3, 255]) {
      expect(refusal(headerOf(['a'], 1, version)), String(version)).toMatchObject({
        code: 'MALFORMED_ITEM',
        message: `The item header has version ${version}; versions 1 and 2 exist.`,
      })
    }
    const flavored = headerOf(['a'])
    flavored[1] = 2
    expect(refusal(flavored)).toMatchObject({ code: 'MALFORMED_ITEM', message: expect.stringMatching(/names flavor 2; flavors 0 and 1/) })
    const legend = headerOf(['a'])
    legend[2 + messageId.length + 2] = 0x78 // 'x'
    expect(refusal(legend)).toMatchObject({ code: 'MALFORMED_ITEM', message: expect.stringMatching(/legend has byte 0x78/) })
    expect(parseHeader(headerOf(['a'], 1, 1)).header.version).toBe(1)
  })

  it('a header or footer attribute that is not binary', async () => {
    const manager = new DefaultMaterialsManager(aesKeyring())
    const fields = [field('pk', { S: 'k' }, 'SIGN_ONLY')]
    const out = await encryptStructure({ tableName: 't', fields, materialsManager: manager, backend: nodeItemBackend })
    const decrypting = (changed: Map<string, Terminal>) =>
      rejectionOf(decryptStructure({ tableName: 't', fields: changed, authenticate: () => 'SIGN', materialsManager: manager, backend: nodeItemBackend }))
    for (const name of ['aws_dbe_head', 'aws_dbe_foot']) {
      const asString = { typeId: serializeAttribute({ S: 'x' }).typeId, value: (out.fields.get(name) as Terminal).value }
      expect(await decrypting(new Map(out.fields).set(name, asString)), name).toMatchObject({ code: 'MALFORMED_ITEM', message: `The item's ${name} attribute must be binary.` })
    }
  })

  it('a footer of another length than its recipient tags (and signature) take', async () => {
    const manager = new DefaultMaterialsManager(aesKeyring())
    for (const algorithmSuiteId of [0x6700, 0x6701]) {
      const out = await encryptStructure({ tableName: 't', fields: [field('pk', { S: 'k' }, 'SIGN_ONLY')], materialsManager: manager, backend: nodeItemBackend, algorithmSuiteId })
      const footer = (out.fields.get('aws_dbe_foot') as Terminal).value
      for (const changed of [footer.subarray(0, footer.length - 1), Uint8Array.of(...footer, 0), footer.subarray(0, 48)]) {
        if (algorithmSuiteId === 0x6700 && changed.length === 48) continue // that is the whole 0x6700 footer
        const fields = new Map(out.fields).set('aws_dbe_foot', { typeId: ENCRYPTED_TYPE_ID, value: changed })
        const failure = await rejectionOf(decryptStructure({ tableName: 't', fields, authenticate: () => 'SIGN', materialsManager: manager, backend: nodeItemBackend }))
        const expected = algorithmSuiteId === 0x6700 ? 'must be 48: a 48-byte recipient tag per key.' : 'must be 151: a 48-byte recipient tag per key and a 103-byte signature.'
        expect(failure, `${algorithmSuiteId.toString(16)}: ${changed.length} bytes`).toMatchObject({
          code: 'MALFORMED_ITEM',
          message: `The item footer is ${changed.length} bytes; with 1 encrypted data key it ${expected}`,
        })
      }
    }
  })

  it('a version 1 header whose legend has a context attribute (only version 2 has them)', async () => {
    const manager = new DefaultMaterialsManager(aesKeyring())
    const decryptAs = async (action: CryptoAction) => {
      const fields = [field('pk', { S: 'k' }, action)]
      const out = await encryptStructure({ tableName: 't', fields, materialsManager: manager, backend: nodeItemBackend })
      const head = (out.fields.get('aws_dbe_head') as Terminal).value.slice()
      expect(head[0]).toBe(action === 'SIGN_ONLY' ? 1 : 2) // version 2 only when needed
      head[0] = 3 - (head[0] as number)
      const changed = new Map(out.fields).set('aws_dbe_head', { typeId: ENCRYPTED_TYPE_ID, value: head })
      return rejectionOf(decryptStructure({ tableName: 't', fields: changed, authenticate: () => 'SIGN', materialsManager: manager, backend: nodeItemBackend }))
    }
    expect(await decryptAs('SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT')).toMatchObject({ code: 'MALFORMED_ITEM' })
    // Version 1 made 2 has nothing to refuse: the changed byte is caught by the commitment, later.
    expect(await decryptAs('SIGN_ONLY')).toMatchObject({ code: 'COMMITMENT_MISMATCH' })
  })
})

describe('item materials: the request', () => {
  it('bounds the plaintext by the encrypted values and two type ID bytes each (what a caching manager charges)', async () => {
    const requests: EncryptionRequest[] = []
    class Recording extends FixedMaterials {
      override async getEncryptionMaterials(request: EncryptionRequest): Promise<CompleteEncryptionMaterials> {
        requests.push(request)
        return super.getEncryptionMaterials(request)
      }
    }
    const fields = [
      field('pk', { S: 'k' }, 'SIGN_ONLY'),
      field('a', { S: 'hello' }, 'ENCRYPT_AND_SIGN'),
      field('b', { N: '12' }, 'ENCRYPT_AND_SIGN'),
      field('c', { S: 'not counted' }, 'DO_NOTHING'),
    ]
    await encryptStructure({ tableName: 't', fields, materialsManager: new Recording(), backend: nodeItemBackend })
    await encryptStructure({ tableName: 't', fields: [fields[0] as StructuredField], materialsManager: new Recording(), backend: nodeItemBackend })
    expect(requests.map((request) => request.maxPlaintextLength)).toEqual([2 + 5 + 2 + 2, 0])
  })
})

describe('item structure: what encrypting refuses', () => {
  const manager = new DefaultMaterialsManager(aesKeyring())
  const pk = field('pk', { S: 'k' }, 'SIGN_ONLY')
  const encrypting = (fields: StructuredField[], more: { encryptionContext?: Record<string, string>; materialsManager?: MaterialsManager } = {}) =>
    rejectionOf(encryptStructure({ tableName: 't', fields, materialsManager: more.materialsManager ?? manager, backend: nodeItemBackend, ...more }))

  it('a reserved attribute name, an attribute twice, no signed attribute', async () => {
    expect(await encrypting([pk, field('aws_dbe_head', { S: 'x' }, 'SIGN_ONLY')])).toMatchObject({ code: 'INVALID_ITEM', message: '"aws_dbe_head" is reserved for the encryptor.' })
    expect(await encrypting([pk, field('aws_dbe_foot', { S: 'x' }, 'DO_NOTHING')])).toMatchObject({ code: 'INVALID_ITEM', message: '"aws_dbe_foot" is reserved for the encryptor.' })
    expect(await encrypting([pk, field('pk', { S: 'k' }, 'SIGN_ONLY')])).toMatchObject({ code: 'INVALID_ITEM', message: 'Attribute "pk" appears twice.' })
    expect(await encrypting([field('pk', { S: 'k' }, 'DO_NOTHING')])).toMatchObject({ code: 'INVALID_ITEM', message: 'An item needs at least one signed attribute.' })
  })

  it('a context that already holds a pair an attribute in the context needs', async () => {
    const region = field('region', { S: 'eu' }, 'SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT')
    const fields = [field('pk', { S: 'k' }, 'SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT'), region]
    expect((await encryptStructure({ tableName: 't', fields, materialsManager: manager, backend: nodeItemBackend, encryptionContext: { tenant: 'a' } })).fields.size).toBe(4)
    for (const key of ['aws-crypto-attr.region', 'aws-crypto-legend']) {
      expect(await encrypting(fields, { encryptionContext: { [key]: 'x' } }), key).toMatchObject({
        code: 'INVALID_ITEM',
        message: `The encryption context already has "${key}", which a SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT attribute needs.`,
      })
    }
  })

  it('materials the item header cannot hold: none or 256 encrypted data keys, a field over 65535 bytes', async () => {
    const withKeys = (change: (materials: CompleteEncryptionMaterials) => CompleteEncryptionMaterials): MaterialsManager => ({
      getEncryptionMaterials: async (request, backend) => change(await manager.getEncryptionMaterials(request, backend)),
      getDecryptionMaterials: (request, backend) => manager.getDecryptionMaterials(request, backend),
    })
    const copies = (materials: CompleteEncryptionMaterials, count: number) => ({
      ...materials,
      encryptedDataKeys: Array.from({ length: count }, () => materials.encryptedDataKeys[0]!),
      symmetricSigningKeys: Array.from({ length: count }, () => materials.symmetricSigningKeys![0]!),
    })
    const out = await encryptStructure({ tableName: 't', fields: [pk], materialsManager: withKeys((materials) => copies(materials, 255)), backend: nodeItemBackend })
    expect(out.parsedHeader.encryptedDataKeys).toHaveLength(255)
    // None is refused with the materials (KEYRING_FAILURE); 256 by the header, which counts them in one byte.
    expect(await encrypting([pk], { materialsManager: withKeys((materials) => copies(materials, 0)) })).toMatchObject({ code: 'KEYRING_FAILURE' })
    expect(await encrypting([pk], { materialsManager: withKeys((materials) => copies(materials, 256)) })).toMatchObject({
      code: 'INVALID_ITEM',
      message: 'An item header holds 1 to 255 encrypted data keys; the materials have 256.',
    })
    const huge = withKeys((materials) => ({ ...materials, encryptedDataKeys: [{ ...materials.encryptedDataKeys[0]!, providerInfo: new Uint8Array(65_536) }] }))
    expect(await encrypting([pk], { materialsManager: huge })).toMatchObject({ code: 'INVALID_ITEM', message: 'A key provider info is 65536 bytes; the format allows at most 65535.' })
  })
})

