// The materials a custom materials manager returns are checked before anything is built from them
// (src/cmm/materials-check.ts): materials that would make a message no one can decrypt, or that lack what the
// message needs, fail with KeyringError (KEYRING_FAILURE), another suite than the one asked for with
// ConfigurationError; no message is written, nothing is cached, and a refused data key is zeroed.
import { generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { nodeItemBackend } from '../src/dynamodb/node-backend.js'
import { serializeAttribute } from '../src/dynamodb/attributes/index.js'
import { decryptStructure, encryptStructure, type StructuredField } from '../src/dynamodb/structured/index.js'
import {
  CachingMaterialsManager,
  ConfigurationError,
  DefaultMaterialsManager,
  decrypt,
  decryptStream,
  encrypt,
  encryptStream,
  EncryptionContextMismatchError,
  EnvelopeError,
  type Keyring,
  type MaterialsManager,
  MultiKeyring,
  RequiredEncryptionContextMaterialsManager,
} from '../src/index.js'
import { isAllZero } from '../src/format/bytes.js'
import { suiteFromOption } from '../src/suites.js'
import { dbeSuite } from '../src/suites-dbe.js'
import { nodeBackend } from '../src/backend/node.js'
import type { CompleteDecryptionMaterials, CompleteEncryptionMaterials } from '../src/types.js'
import { aesKeyring, rejectionOf } from './helpers/fixtures.js'
import { chunked, readAll } from './helpers/web-streams.js'

const keyring = aesKeyring()
const inner = new DefaultMaterialsManager(keyring)
const plaintext = new Uint8Array(3000).fill(9)

type Change<M> = (materials: M) => unknown

/**
 * A manager returning the default manager's materials changed by `encrypting` / `decrypting`; `keys`: the data
 * keys it returned (those that are bytes: the caller owns and must zero them, refused or not).
 */
function changing(encrypting?: Change<CompleteEncryptionMaterials>, decrypting?: Change<CompleteDecryptionMaterials>) {
  const keys: Uint8Array[] = []
  const returned = <M>(materials: M): M => {
    const key = (materials as { plaintextDataKey?: unknown } | null | undefined)?.plaintextDataKey
    if (key instanceof Uint8Array) keys.push(key)
    return materials
  }
  const manager: MaterialsManager = {
    async getEncryptionMaterials(request, backend) {
      const materials = await inner.getEncryptionMaterials(request, backend)
      return returned((encrypting === undefined ? materials : encrypting(materials)) as CompleteEncryptionMaterials)
    },
    async getDecryptionMaterials(request, backend) {
      const materials = await inner.getDecryptionMaterials(request, backend)
      return returned((decrypting === undefined ? materials : decrypting(materials)) as CompleteDecryptionMaterials)
    },
  }
  return { manager, keys }
}

const codeOf = async (promise: Promise<unknown>): Promise<string | undefined> => {
  const error = await rejectionOf(promise)
  expect(error).toBeInstanceOf(EnvelopeError)
  return (error as EnvelopeError).code
}

const encryptCases: readonly (readonly [string, Change<CompleteEncryptionMaterials>, string])[] = [
  ['no materials', () => undefined, 'KEYRING_FAILURE'],
  ['no algorithm suite', (m) => ({ ...m, suite: undefined }), 'KEYRING_FAILURE'],
  ['another algorithm suite', (m) => ({ ...m, suite: suiteFromOption(0x0478) }), 'INVALID_CONFIGURATION'],
  ['a 16-byte data key', (m) => ({ ...m, plaintextDataKey: m.plaintextDataKey.subarray(0, 16) }), 'KEYRING_FAILURE'],
  ['a data key that is not bytes', (m) => ({ ...m, plaintextDataKey: 'key' }), 'KEYRING_FAILURE'],
  ['no encrypted data key', (m) => ({ ...m, encryptedDataKeys: [] }), 'KEYRING_FAILURE'],
  ['an encrypted data key of the wrong shape', (m) => ({ ...m, encryptedDataKeys: [{ providerId: 7, providerInfo: 'x', ciphertext: [] }] }), 'KEYRING_FAILURE'],
  ['no encryption context', (m) => ({ ...m, encryptionContext: null }), 'KEYRING_FAILURE'],
  ['a context value that is not a string', (m) => ({ ...m, encryptionContext: { ...m.encryptionContext, n: 5 } }), 'KEYRING_FAILURE'],
  ['a signing suite without its public key pair', (m) => ({ ...m, encryptionContext: { purpose: 'test' } }), 'KEYRING_FAILURE'],
  ['a signing suite without a signing key', (m) => ({ ...m, signingKey: undefined }), 'KEYRING_FAILURE'],
  ['a signing key on another curve', (m) => ({ ...m, signingKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey }), 'KEYRING_FAILURE'],
]

describe('encryption materials of a custom manager (suite 0x0578)', () => {
  it.each(encryptCases)('%s: refused by one-shot encrypt and by streams, the data key zeroed', async (_, change, code) => {
    const { manager, keys } = changing(change)
    expect(await codeOf(encrypt(manager, plaintext, { encryptionContext: { purpose: 'test' } }))).toBe(code)
    expect(await codeOf(readAll(chunked(plaintext, 1000).pipeThrough(encryptStream(manager))))).toBe(code)
    expect(keys.every(isAllZero)).toBe(true)
  })

  it.each(encryptCases)('%s: refused through the caching manager, which caches nothing', async (_, change, code) => {
    const { manager, keys } = changing(change)
    const caching = new CachingMaterialsManager({ materialsManager: manager, maxAge: 60_000 })
    expect(await codeOf(encrypt(caching, plaintext))).toBe(code)
    expect(caching.cache.stats().size).toBe(0)
    expect(keys.every(isAllZero)).toBe(true)
  })

  it.each([
    ['a provider ID that is not text', { providerId: 7 }, 'that is not { providerId: string, providerInfo: Uint8Array, ciphertext: Uint8Array }'],
    ['provider info that is not bytes', { providerInfo: 'x' }, 'that is not { providerId: string, providerInfo: Uint8Array, ciphertext: Uint8Array }'],
    ['a ciphertext that is not bytes', { ciphertext: [] }, 'that is not { providerId: string, providerInfo: Uint8Array, ciphertext: Uint8Array }'],
    ['a provider ID that starts with a lone surrogate', { providerId: '\udc00p' }, 'whose provider ID "\\udc00p" has a lone UTF-16 surrogate'],
  ])('an encrypted data key with %s alone is named by the materials check', async (_, field, named) => {
    const { manager } = changing((m) => ({ ...m, encryptedDataKeys: [{ ...m.encryptedDataKeys[0], ...field }] }))
    const error = await rejectionOf(encrypt(manager, plaintext))
    expect(error).toMatchObject({ code: 'KEYRING_FAILURE', message: expect.stringContaining(`have an encrypted data key ${named}`) })
  })

  it('a subclass of DefaultMaterialsManager is checked too', async () => {
    class Shortening extends DefaultMaterialsManager {
      override async getEncryptionMaterials(...args: Parameters<DefaultMaterialsManager['getEncryptionMaterials']>) {
        const materials = await super.getEncryptionMaterials(...args)
        return { ...materials, encryptedDataKeys: [] }
      }
    }
    expect(await codeOf(encrypt(new Shortening(keyring), plaintext))).toBe('KEYRING_FAILURE')
  })

  it('an encryption context that is a Map (its pairs are not own properties, so the header would store none) is refused', async () => {
    const mapped = {
      getEncryptionMaterials: async (...args: Parameters<DefaultMaterialsManager['getEncryptionMaterials']>) => {
        const materials = await inner.getEncryptionMaterials(...args)
        return { ...materials, encryptionContext: new Map(Object.entries(materials.encryptionContext)) as never }
      },
      getDecryptionMaterials: inner.getDecryptionMaterials.bind(inner),
    }
    const error = await rejectionOf(encrypt(mapped, plaintext, { algorithmSuite: 0x0478, encryptionContext: { tenant: 'acme' } }))
    expect((error as EnvelopeError).code).toBe('KEYRING_FAILURE')
    expect((error as Error).message).toContain('have an encryption context that is Map, not a plain object of string pairs')
  })

  it('materials that pass the check make a message the default manager decrypts', async () => {
    const { manager, keys } = changing((m) => ({ ...m, encryptedDataKeys: [...m.encryptedDataKeys] }))
    const { ciphertext } = await encrypt(manager, plaintext, { encryptionContext: { purpose: 'test' } })
    expect((await decrypt(keyring, ciphertext)).plaintext).toEqual(plaintext)
    expect(keys).toHaveLength(1)
    expect(keys.every(isAllZero)).toBe(true)
  })

  it("the header's encryption context is a frozen copy of the manager's: a change the manager makes afterwards is not seen", async () => {
    let given: Record<string, string> = {}
    const { manager } = changing((m) => {
      given = { ...m.encryptionContext }
      return { ...m, encryptionContext: given }
    })
    const { header } = await encrypt(manager, plaintext, { encryptionContext: { purpose: 'test' } })
    given.purpose = 'changed'
    expect(Object.isFrozen(header.encryptionContext)).toBe(true)
    expect(header.encryptionContext.purpose).toBe('test')
  })
})

const decryptCases: readonly (readonly [string, Change<CompleteDecryptionMaterials>, string])[] = [
  ['no materials', () => null, 'KEYRING_FAILURE'],
  ['no algorithm suite', (m) => ({ ...m, suite: undefined }), 'KEYRING_FAILURE'],
  ['another algorithm suite', (m) => ({ ...m, suite: suiteFromOption(0x0478) }), 'INVALID_CONFIGURATION'],
  // It would read as the message's fault (COMMITMENT_MISMATCH) otherwise.
  ['a 16-byte data key', (m) => ({ ...m, plaintextDataKey: m.plaintextDataKey.subarray(0, 16) }), 'KEYRING_FAILURE'],
  ['a data key that is not bytes', (m) => ({ ...m, plaintextDataKey: undefined }), 'KEYRING_FAILURE'],
  ['a verification key of another kind', (m) => ({ ...m, verificationKey: generateKeyPairSync('ed25519').publicKey }), 'KEYRING_FAILURE'],
]

describe('decryption materials of a custom manager', () => {
  it.each(decryptCases)('%s: refused by one-shot decrypt, streams and the caching manager; no plaintext', async (_, change, code) => {
    const { ciphertext } = await encrypt(keyring, plaintext)
    const { manager, keys } = changing(undefined, change)
    expect(await codeOf(decrypt(manager, ciphertext))).toBe(code)
    const chunks: Uint8Array[] = []
    const reading = chunked(ciphertext, 1000)
      .pipeThrough(decryptStream(manager))
      .pipeTo(new WritableStream({ write: (chunk) => void chunks.push(chunk) }))
    expect(await codeOf(reading)).toBe(code)
    expect(chunks).toHaveLength(0)
    const caching = new CachingMaterialsManager({ materialsManager: manager, maxAge: 60_000 })
    expect(await codeOf(decrypt(caching, ciphertext))).toBe(code)
    expect(caching.cache.stats().size).toBe(0)
    expect(keys.every(isAllZero)).toBe(true)
  })
})

describe('DynamoDB items', () => {
  const fields: StructuredField[] = [
    { name: 'pk', terminal: serializeAttribute({ S: 'key' }), action: 'SIGN_ONLY' },
    { name: 'secret', terminal: serializeAttribute({ S: 'value' }), action: 'ENCRYPT_AND_SIGN' },
  ]
  const authenticate = (): 'SIGN' => 'SIGN'

  it('a 16-byte data key is refused on encrypt and on decrypt', async () => {
    const short = <M extends { plaintextDataKey: Uint8Array }>(m: M): M => ({ ...m, plaintextDataKey: m.plaintextDataKey.subarray(0, 16) })
    const { manager, keys } = changing(short, short)
    const encrypting = encryptStructure({ tableName: 't', fields, materialsManager: manager, backend: nodeItemBackend, algorithmSuiteId: 0x6700 })
    expect(await codeOf(encrypting)).toBe('KEYRING_FAILURE')
    const out = await encryptStructure({ tableName: 't', fields, materialsManager: inner, backend: nodeItemBackend, algorithmSuiteId: 0x6700 })
    const decrypting = decryptStructure({ tableName: 't', fields: out.fields, authenticate, materialsManager: manager, backend: nodeItemBackend })
    expect(await codeOf(decrypting)).toBe('KEYRING_FAILURE')
    expect(keys.every(isAllZero)).toBe(true)
  })

  // spec (DB-ESDK decrypt-structure.md): decrypt goes on with the materials' suite, which may differ from the header's,
  // and fails when it is not an item suite.
  it("decrypt uses the materials' suite: another item suite is used, any other suite or none is refused", async () => {
    const refusal = async (algorithmSuiteId: number, change: Change<CompleteDecryptionMaterials>) => {
      const out = await encryptStructure({ tableName: 't', fields, materialsManager: inner, backend: nodeItemBackend, algorithmSuiteId })
      const { manager, keys } = changing(undefined, change)
      const error = (await rejectionOf(decryptStructure({ tableName: 't', fields: out.fields, authenticate, materialsManager: manager, backend: nodeItemBackend }))) as EnvelopeError
      expect(keys.every(isAllZero), `${error.code}: ${error.message}`).toBe(true)
      return `${error.code}: ${error.message}`
    }
    for (const algorithmSuiteId of [0x6700, 0x6701]) {
      expect(await refusal(algorithmSuiteId, (m) => ({ ...m, suite: suiteFromOption(0x0478) }))).toBe('UNSUPPORTED_ALGORITHM_SUITE: 0x0478 is not a DynamoDB item suite (0x6700 or 0x6701).')
      expect(await refusal(algorithmSuiteId, () => null)).toBe('KEYRING_FAILURE: The decryption materials are missing (from the materials manager, or its keyring).')
      expect(await refusal(algorithmSuiteId, (m) => ({ ...m, suite: undefined }))).toBe('KEYRING_FAILURE: The decryption materials have no algorithm suite (from the materials manager, or its keyring).')
      for (const id of ['0x6700', null, { toString: () => { throw new Error('no') } }]) {
        expect(await refusal(algorithmSuiteId, (m) => ({ ...m, suite: { ...m.suite, id } }))).toBe('INVALID_CONFIGURATION: The materials manager (or its keyring) changed the algorithm suite.')
      }
    }
    // The unsigned suite for a signed item: its footer is then one recipient tag too long. The signed suite for an
    // unsigned item: the materials have no verification key for it.
    expect(await refusal(0x6701, (m) => ({ ...m, suite: dbeSuite(0x6700) }))).toBe(
      'MALFORMED_ITEM: The item footer is 151 bytes; with 1 encrypted data key it must be 48: a 48-byte recipient tag per key.',
    )
    expect(await refusal(0x6700, (m) => ({ ...m, suite: dbeSuite(0x6701) }))).toMatch(/^KEYRING_FAILURE: The materials manager's verification key cannot verify this message/)
  })

  it('encrypt refuses materials of a suite that is not an item suite, their data key zeroed', async () => {
    const { manager, keys } = changing((m) => ({ ...m, suite: suiteFromOption(0x0478) }))
    const error = await rejectionOf(encryptStructure({ tableName: 't', fields, materialsManager: manager, backend: nodeItemBackend }))
    expect(error).toMatchObject({ code: 'UNSUPPORTED_ALGORITHM_SUITE', message: '0x0478 is not a DynamoDB item suite (0x6700 or 0x6701).' })
    expect(keys).toHaveLength(1)
    expect(keys.every(isAllZero)).toBe(true)
    // A suite ID that is no number is refused by the materials check, and named as such.
    const named = changing((m) => ({ ...m, suite: { ...m.suite, id: '0x6701' } }))
    expect(await rejectionOf(encryptStructure({ tableName: 't', fields, materialsManager: named.manager, backend: nodeItemBackend }))).toMatchObject({
      code: 'INVALID_CONFIGURATION',
      message: 'The materials manager (or its keyring) changed the algorithm suite.',
    })
    expect(named.keys).toHaveLength(1)
    expect(named.keys.every(isAllZero)).toBe(true)
  })

  it('a required key may have the reserved prefix (the table name), but never be the signing public key', async () => {
    const request = (requiredEncryptionContextKeys: string[]) =>
      ({ suite: dbeSuite(0x6701), encryptionContext: { 'aws-crypto-table': 't' }, commitmentPolicy: 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT', requiredEncryptionContextKeys }) as never
    const manager = new DefaultMaterialsManager(aesKeyring())
    const materials = await manager.getEncryptionMaterials(request(['aws-crypto-table']), nodeBackend)
    expect(materials.requiredEncryptionContextKeys).toEqual(['aws-crypto-table'])
    expect(Object.keys(materials.encryptionContext).sort()).toEqual(['aws-crypto-public-key', 'aws-crypto-table'])
    const error = await rejectionOf(manager.getEncryptionMaterials(request(['aws-crypto-public-key']), nodeBackend))
    expect((error as EnvelopeError).code).toBe('INVALID_ENCRYPTION_CONTEXT')
    expect((error as Error).message).toBe('DefaultMaterialsManager: "aws-crypto-public-key" uses the reserved prefix "aws-crypto-" and cannot be left out of the message.')
  })
})

describe('a custom keyring through the default manager', () => {
  const keyringReturning = (change: (materials: unknown) => unknown): Keyring => ({
    onEncrypt: async (materials, backend) => change(await keyring.onEncrypt(materials, backend)) as never,
    onDecrypt: async (materials, keys, backend) => change(await keyring.onDecrypt(materials, keys, backend)) as never,
  })

  const noMaterials = 'The keyring returned no decryption materials from onDecrypt (it must return the materials it was given, or new ones).'
  const noDataKey = 'The keyring returned no 32-byte data key (a Uint8Array), which the suite needs.'
  it.each([
    ['no materials', () => null, noMaterials],
    ['a data key that is a string of its length', (m: unknown) => ({ ...(m as object), plaintextDataKey: 'k'.repeat(32) }), noDataKey],
    ['a data key that is too short', (m: unknown) => ({ ...(m as object), plaintextDataKey: new Uint8Array(16) }), noDataKey],
  ])('%s: KEYRING_FAILURE on encrypt and on decrypt', async (_, change, onDecrypt) => {
    expect(await codeOf(encrypt(keyringReturning(change), plaintext))).toBe('KEYRING_FAILURE')
    const { ciphertext } = await encrypt(keyring, plaintext)
    const error = await rejectionOf(decrypt(keyringReturning(change), ciphertext))
    expect((error as EnvelopeError).code).toBe('KEYRING_FAILURE')
    // The manager's own words: not the TypeError of reading a data key from null.
    expect((error as Error).message).toBe(onDecrypt)
  })

  const withKeys = (keys: unknown) => (m: unknown) => ({ ...(m as object), encryptedDataKeys: keys })
  const good = { providerId: 'custom', providerInfo: new Uint8Array(3), ciphertext: new Uint8Array(40) }
  it.each([
    ['a provider ID that is a number', withKeys([{ ...good, providerId: 7 }])],
    ['provider info that is a string', withKeys([{ ...good, providerInfo: 'info' }])],
    ['a ciphertext that is an array of numbers', withKeys([{ ...good, ciphertext: [1, 2, 3] }])],
    ['a ciphertext that is an ArrayBuffer', withKeys([{ ...good, ciphertext: new ArrayBuffer(40) }])],
    ['a null encrypted data key after a good one', withKeys([good, null])],
    ['no encrypted data key list', withKeys(undefined)],
    ['an empty list', withKeys([])],
    ['a string for the list', withKeys('keys')],
    ['an object with a length for the list', withKeys({ length: 1, 0: good })],
  ])('encrypted data keys with %s: KEYRING_FAILURE from one-shot encrypt and from streams, the data key zeroed', async (_, change) => {
    const dataKeys: Uint8Array[] = []
    const bad = keyringReturning((m) => {
      dataKeys.push((m as { plaintextDataKey: Uint8Array }).plaintextDataKey)
      return change(m)
    })
    const error = await rejectionOf(encrypt(bad, plaintext, { algorithmSuite: 0x0478 }))
    expect(error).toBeInstanceOf(EnvelopeError)
    expect((error as EnvelopeError).code).toBe('KEYRING_FAILURE')
    expect((error as Error).message).toMatch(/encrypted data key/i)
    expect(await codeOf(readAll(chunked(plaintext, 1000).pipeThrough(encryptStream(bad))))).toBe('KEYRING_FAILURE')
    expect(dataKeys.length).toBe(2)
    expect(dataKeys.every(isAllZero)).toBe(true)
  })

  it('a child of a multi-keyring returning a key of the wrong shape: KEYRING_FAILURE', async () => {
    const child = keyringReturning((m) => {
      const materials = m as { encryptedDataKeys: unknown[] }
      return { ...materials, encryptedDataKeys: [...materials.encryptedDataKeys.slice(0, -1), { ...good, providerId: undefined }] }
    })
    expect(await codeOf(encrypt(new MultiKeyring({ generator: keyring, children: [child] }), plaintext))).toBe('KEYRING_FAILURE')
  })

  it('encrypted data keys of Buffers are bytes: the message decrypts', async () => {
    const buffers = keyringReturning((m) => {
      const materials = m as { encryptedDataKeys: readonly { providerId: string; providerInfo: Uint8Array; ciphertext: Uint8Array }[] }
      return {
        ...materials,
        encryptedDataKeys: materials.encryptedDataKeys.map((key) => ({ ...key, providerInfo: Buffer.from(key.providerInfo), ciphertext: Buffer.from(key.ciphertext) })),
      }
    })
    const { ciphertext } = await encrypt(buffers, plaintext)
    expect((await decrypt(keyring, ciphertext)).plaintext).toEqual(plaintext)
  })

  it.each([
    ['a pair added', (context: Record<string, string>) => ({ ...context, added: 'by the keyring' })],
    ['every pair dropped', () => ({})],
    ['a number for a value', (context: Record<string, string>) => ({ ...context, purpose: 5 })],
    ['null', () => null],
  ])('a keyring that changes the encryption context (%s) changes nothing: the message holds the caller\'s context and decrypts', async (_, change) => {
    const changingContext = keyringReturning((m) => {
      const materials = m as { encryptionContext: Record<string, string> }
      return { ...materials, encryptionContext: change(materials.encryptionContext) }
    })
    const requested = { purpose: 'test', tenant: 'acme' }
    for (const algorithmSuite of [0x0478, 0x0578]) {
      const { ciphertext, header } = await encrypt(changingContext, plaintext, { algorithmSuite, encryptionContext: requested })
      expect(header.encryptionContext).toMatchObject(requested)
      expect(Object.keys(header.encryptionContext).length).toBe(algorithmSuite === 0x0578 ? 3 : 2)
      const viaPlainKeyring = await decrypt(keyring, ciphertext, { encryptionContext: requested })
      expect(viaPlainKeyring.plaintext).toEqual(plaintext)
      const viaChanging = await decrypt(changingContext, ciphertext, { encryptionContext: requested })
      expect(viaChanging.plaintext).toEqual(plaintext)
      expect(viaChanging.header.encryptionContext).toEqual(viaPlainKeyring.header.encryptionContext)
    }
    // On decrypt the context matters where pairs are authenticated but not stored (required keys).
    const requiring = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], keyring })
    const { ciphertext } = await encrypt(requiring, plaintext, { encryptionContext: requested })
    expect((await decrypt(changingContext, ciphertext, { encryptionContext: { tenant: 'acme' } })).plaintext).toEqual(plaintext)
  })

  it('a data key that is too short is zeroed on decrypt', async () => {
    const { ciphertext } = await encrypt(keyring, plaintext)
    let returned: Uint8Array | undefined
    const short = keyringReturning((m) => {
      returned = (m as { plaintextDataKey: Uint8Array }).plaintextDataKey.slice(0, 16)
      return { ...(m as object), plaintextDataKey: returned }
    })
    expect(await codeOf(decrypt(short, ciphertext))).toBe('KEYRING_FAILURE')
    expect(returned !== undefined && isAllZero(returned)).toBe(true)
  })

  it('the context and the required keys a keyring returns are not taken on decrypt: each stays the manager\'s', async () => {
    const suite = suiteFromOption(0x0478) // unsigned: the keyring's own materials could be handed on as they are
    const encryptionContext = { tenant: 'a' }
    const request = { suite, encryptionContext, encryptedDataKeys: [] as never[], commitmentPolicy: 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' as const }
    const { encryptedDataKeys } = await new DefaultMaterialsManager(keyring).getEncryptionMaterials({ ...request, maxPlaintextLength: 1 }, nodeBackend)
    for (const change of [{ encryptionContext: { tenant: 'b' } }, { requiredEncryptionContextKeys: ['tenant'] }]) {
      const changing = keyringReturning((m) => ({ ...(m as object), ...change }))
      const materials = await new DefaultMaterialsManager(changing).getDecryptionMaterials({ ...request, encryptedDataKeys }, nodeBackend)
      expect({ ...materials.encryptionContext }).toEqual(encryptionContext)
      expect(materials.requiredEncryptionContextKeys).toEqual([])
    }
  })
})

describe('a data key handed out twice', () => {
  // kms-envelope zeroes a data key once it has used it; a manager or keyring that keeps and returns the same
  // buffer again would hand over zeros, and encrypt would seal the message under a key of zeros.
  it('a manager that returns the same encryption materials again: the second encrypt is refused, nothing sealed under zeros', async () => {
    let kept: CompleteEncryptionMaterials | undefined
    const reusing: MaterialsManager = {
      getEncryptionMaterials: async (request, backend) => (kept ??= await inner.getEncryptionMaterials(request, backend)),
      getDecryptionMaterials: (request, backend) => inner.getDecryptionMaterials(request, backend),
    }
    const { ciphertext } = await encrypt(reusing, plaintext, { algorithmSuite: 0x0478 })
    expect((await decrypt(keyring, ciphertext)).plaintext).toEqual(plaintext)
    const error = await rejectionOf(encrypt(reusing, plaintext, { algorithmSuite: 0x0478 }))
    expect((error as EnvelopeError).code).toBe('KEYRING_FAILURE')
    expect((error as Error).message).toMatch(/data key of zeros/)
  })

  it('a keyring that returns the same data key again, under the default manager: refused the same way', async () => {
    let kept: Uint8Array | undefined
    const reusing = {
      onEncrypt: async (materials: Parameters<Keyring['onEncrypt']>[0], backend: Parameters<Keyring['onEncrypt']>[1]) => {
        const wrapped = await keyring.onEncrypt(kept === undefined ? materials : { ...materials, plaintextDataKey: kept }, backend)
        kept = wrapped.plaintextDataKey
        return wrapped
      },
      onDecrypt: keyring.onDecrypt.bind(keyring),
    } satisfies Keyring
    const { ciphertext } = await encrypt(reusing, plaintext, { algorithmSuite: 0x0478 })
    expect((await decrypt(keyring, ciphertext)).plaintext).toEqual(plaintext)
    expect(await codeOf(encrypt(reusing, plaintext, { algorithmSuite: 0x0478 }))).toBe('KEYRING_FAILURE')
  })

  it('a manager that returns the same decryption materials again: KEYRING_FAILURE, not a fault of the message', async () => {
    const { ciphertext } = await encrypt(keyring, plaintext)
    let kept: CompleteDecryptionMaterials | undefined
    const reusing: MaterialsManager = {
      getEncryptionMaterials: (request, backend) => inner.getEncryptionMaterials(request, backend),
      getDecryptionMaterials: async (request, backend) => (kept ??= await inner.getDecryptionMaterials(request, backend)),
    }
    expect((await decrypt(reusing, ciphertext)).plaintext).toEqual(plaintext)
    expect(await codeOf(decrypt(reusing, ciphertext))).toBe('KEYRING_FAILURE')
  })
})

describe('what a custom manager or keyring throws', () => {
  const thrown: readonly (readonly [string, unknown])[] = [
    ['an Error', new RangeError('the HSM is unreachable')],
    ['a string', 'the HSM is unreachable'],
    ['undefined', undefined],
  ]
  const throwingManager = (value: unknown): MaterialsManager => ({
    getEncryptionMaterials: async () => {
      throw value
    },
    getDecryptionMaterials: () => {
      throw value // synchronously, from a method that is not async
    },
  })
  const throwingKeyring = (value: unknown): Keyring => ({
    onEncrypt: async () => {
      throw value
    },
    onDecrypt: async () => {
      throw value
    },
  })
  const expectKeyringFailure = async (promise: Promise<unknown>, value: unknown) => {
    const error = await rejectionOf(promise)
    expect(error).toBeInstanceOf(EnvelopeError)
    expect((error as EnvelopeError).code).toBe('KEYRING_FAILURE')
    expect((error as Error).cause).toBe(value)
    expect((error as Error).message).toContain(value instanceof Error ? value.message : String(value))
  }

  it.each(thrown)('%s from a manager: KeyringError with it as cause, from encrypt, decrypt, the streams and DynamoDB items', async (_, value) => {
    const manager = throwingManager(value)
    const { ciphertext } = await encrypt(keyring, plaintext)
    await expectKeyringFailure(encrypt(manager, plaintext), value)
    await expectKeyringFailure(decrypt(manager, ciphertext), value)
    await expectKeyringFailure(readAll(chunked(plaintext, 1000).pipeThrough(encryptStream(manager))), value)
    await expectKeyringFailure(readAll(chunked(ciphertext, 1000).pipeThrough(decryptStream(manager))), value)
    await expectKeyringFailure(encrypt(new CachingMaterialsManager({ materialsManager: manager, maxAge: 60_000 }), plaintext), value)
    const fields: StructuredField[] = [{ name: 'secret', terminal: serializeAttribute({ S: 'value' }), action: 'ENCRYPT_AND_SIGN' }]
    await expectKeyringFailure(encryptStructure({ tableName: 't', fields, materialsManager: manager, backend: nodeItemBackend, algorithmSuiteId: 0x6700 }), value)
    const item = await encryptStructure({ tableName: 't', fields, materialsManager: inner, backend: nodeItemBackend, algorithmSuiteId: 0x6700 })
    await expectKeyringFailure(decryptStructure({ tableName: 't', fields: item.fields, authenticate: () => 'SIGN', materialsManager: manager, backend: nodeItemBackend }), value)
  })

  it.each(thrown)('%s from a keyring on encrypt, alone or as a multi-keyring child: KeyringError with it as cause', async (_, value) => {
    await expectKeyringFailure(encrypt(throwingKeyring(value), plaintext), value)
    await expectKeyringFailure(encrypt(new MultiKeyring({ generator: keyring, children: [throwingKeyring(value)] }), plaintext), value)
  })

  it('a thrown object that is not an Error is named by its type only: its contents (key bytes, say) stay out of the message', async () => {
    const secret = new Uint8Array(32).fill(0xab)
    for (const value of [secret, { key: 'sk-secret' }]) {
      const error = await rejectionOf(encrypt(throwingKeyring(value), plaintext))
      expect((error as EnvelopeError).code).toBe('KEYRING_FAILURE')
      expect((error as Error).cause).toBe(value)
      expect((error as Error).message).toMatch(/a thrown object, not an Error/)
      expect((error as Error).message).not.toMatch(/171|sk-secret/)
      const { ciphertext } = await encrypt(keyring, plaintext)
      const decrypting = await rejectionOf(decrypt(throwingKeyring(value), ciphertext))
      expect((decrypting as EnvelopeError).code).toBe('NO_DECRYPTABLE_KEY')
      expect((decrypting as Error).message).not.toMatch(/171|sk-secret/)
    }
  })

  it('an error that cannot be read (a throwing message getter, a Proxy) or whose message is huge still becomes a typed error', async () => {
    const unreadable = new Error('hidden')
    Object.defineProperty(unreadable, 'message', {
      get() {
        throw new Error('the getter failed')
      },
    })
    const proxy = new Proxy(
      {},
      {
        getPrototypeOf() {
          throw new Error('the trap failed')
        },
      },
    )
    const huge = new Error('x'.repeat(100_000))
    const { ciphertext } = await encrypt(keyring, plaintext)
    for (const [value, shown] of [
      [unreadable, 'a thrown value that could not be read'],
      [proxy, 'a thrown value that could not be read'],
      [huge, `${'x'.repeat(500)}… (100000 characters)`],
    ] as const) {
      for (const failing of [throwingKeyring(value), throwingManager(value)]) {
        const encrypting = await rejectionOf(encrypt(failing, plaintext))
        expect((encrypting as EnvelopeError).code).toBe('KEYRING_FAILURE')
        expect((encrypting as Error).cause).toBe(value)
        expect((encrypting as Error).message).toBe(`The materials manager (or a keyring it called) failed: ${shown}.`)
        const decrypting = await rejectionOf(decrypt(failing, ciphertext))
        expect(decrypting).toBeInstanceOf(EnvelopeError)
        expect((decrypting as Error).message).toContain(shown)
        expect((decrypting as Error).message.length).toBeLessThan(700)
      }
    }
  })

  it('a kms-envelope error from a manager is passed on as it is', async () => {
    const own = new EncryptionContextMismatchError('not this tenant')
    const error = await rejectionOf(encrypt(throwingManager(own), plaintext))
    expect(error).toBe(own)
    const { ciphertext } = await encrypt(keyring, plaintext)
    expect(await rejectionOf(decrypt(throwingManager(own), ciphertext))).toBe(own)
  })
})

describe('built-in managers called directly by a manager of your own', () => {
  type AnyManager = MaterialsManager & { constructor: { name: string } }
  const managers: AnyManager[] = [
    new DefaultMaterialsManager(keyring),
    new CachingMaterialsManager({ keyring, maxAge: 60_000 }),
    new RequiredEncryptionContextMaterialsManager({ keyring, requiredKeys: ['tenant'] }),
  ]

  /** The requests and backend encrypt and decrypt hand a manager, captured by a manager in front. */
  async function captured(): Promise<{ encrypting: Record<string, unknown>; decrypting: Record<string, unknown>; backend: unknown }> {
    const seen: { encrypting?: object; decrypting?: object; backend?: unknown } = {}
    const spy: MaterialsManager = {
      getEncryptionMaterials: (request, backend) => ((seen.encrypting = request), (seen.backend = backend), inner.getEncryptionMaterials(request, backend)),
      getDecryptionMaterials: (request, backend) => ((seen.decrypting = request), inner.getDecryptionMaterials(request, backend)),
    }
    const encryptionContext = { tenant: 'acme' }
    const { ciphertext } = await encrypt(spy, plaintext, { encryptionContext, algorithmSuite: 0x0478 })
    await decrypt(spy, ciphertext, { encryptionContext })
    return { encrypting: { ...seen.encrypting }, decrypting: { ...seen.decrypting, reproducedEncryptionContext: encryptionContext }, backend: seen.backend }
  }

  it('a malformed request or a missing backend is a ConfigurationError naming the manager, method and problem', async () => {
    const { encrypting, decrypting, backend } = await captured()
    const broken: [string, (request: Record<string, unknown>) => unknown, RegExp][] = [
      ['no request', () => undefined, /the request is undefined/],
      ['a request that is an array', () => [], /the request is an array/],
      ['no suite', (request) => ({ ...request, suite: undefined }), /request\.suite is undefined/],
      ['a suite ID instead of the suite', (request) => ({ ...request, suite: 0x0478 }), /request\.suite is the number 1144/],
      ['a context of null', (request) => ({ ...request, encryptionContext: null }), /request\.encryptionContext is null/],
      ['a context value that is not a string', (request) => ({ ...request, encryptionContext: { tenant: 7 } }), /request\.encryptionContext value for key "tenant" is a number/],
      ['a context that is a Map', (request) => ({ ...request, encryptionContext: new Map([['tenant', 'acme']]) }), /request\.encryptionContext is a Map, not a plain object of string pairs/],
    ]
    for (const manager of managers) {
      const name = manager.constructor.name
      for (const [what, change, problem] of broken) {
        for (const [method, request] of [['getEncryptionMaterials', encrypting], ['getDecryptionMaterials', decrypting]] as const) {
          const error = await rejectionOf((manager[method] as (r: unknown, b: unknown) => Promise<unknown>).call(manager, change(request), backend))
          expect(error, `${name} ${method}: ${what}`).toBeInstanceOf(ConfigurationError)
          expect((error as Error).message, `${name} ${method}: ${what}`).toMatch(new RegExp(`^${name}\\.${method} got a malformed request: ${problem.source}`))
        }
      }
      const noEdks = await rejectionOf(manager.getDecryptionMaterials({ ...decrypting, encryptedDataKeys: 'none' } as never, backend as never))
      expect((noEdks as Error).message).toMatch(/request\.encryptedDataKeys is a string, not an array/)
      const mapped = await rejectionOf(manager.getDecryptionMaterials({ ...decrypting, reproducedEncryptionContext: new Map([['tenant', 'acme']]) } as never, backend as never))
      expect((mapped as Error).message).toMatch(/request\.reproducedEncryptionContext is a Map, not a plain object of string pairs/)
      for (const [method, request] of [['getEncryptionMaterials', encrypting], ['getDecryptionMaterials', decrypting]] as const) {
        const error = await rejectionOf((manager[method] as (r: unknown) => Promise<unknown>).call(manager, request))
        expect(error, `${name} ${method} without a backend`).toBeInstanceOf(ConfigurationError)
        expect((error as Error).message).toMatch(/the backend \(second argument\) is undefined/)
      }
    }
  })

  it('a context of your own that is not frozen: the materials hold a frozen copy, which later changes to your object do not reach', async () => {
    const { encrypting, backend } = await captured()
    for (const manager of managers) {
      const encryptionContext: Record<string, string> = { tenant: 'acme', order: '1' }
      const materials = await manager.getEncryptionMaterials({ ...encrypting, encryptionContext } as never, backend as never)
      encryptionContext.order = '2'
      delete encryptionContext.tenant
      expect(Object.isFrozen(materials.encryptionContext), manager.constructor.name).toBe(true)
      expect({ ...materials.encryptionContext }, manager.constructor.name).toEqual({ tenant: 'acme', order: '1' })
      materials.plaintextDataKey.fill(0)
    }
  })

  it('the request and backend it was given, or a copy with fields changed, are accepted', async () => {
    for (const manager of managers) {
      const inFront: MaterialsManager = {
        getEncryptionMaterials: (request, backend) => manager.getEncryptionMaterials({ ...request, encryptionContext: { ...request.encryptionContext, added: 'yes' } }, backend),
        getDecryptionMaterials: (request, backend) => manager.getDecryptionMaterials({ ...request }, backend),
      }
      for (const algorithmSuite of [0x0478, 0x0578]) {
        const { ciphertext, header } = await encrypt(inFront, plaintext, { encryptionContext: { tenant: 'acme' }, algorithmSuite })
        expect(header.encryptionContext.added).toBe('yes')
        const { plaintext: decrypted } = await decrypt(inFront, ciphertext, { encryptionContext: { tenant: 'acme' } })
        expect(decrypted).toEqual(plaintext)
      }
    }
  })
})
