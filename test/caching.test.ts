// The caching materials manager and the local materials cache (spec: framework/caching-cmm.md,
// framework/cryptographic-materials-cache.md, framework/local-cryptographic-materials-cache.md).
import { createHash } from 'node:crypto'
import { inspect } from 'node:util'
import fc from 'fast-check'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { nodeBackend } from '../src/backend/node.js'
import type { CryptoBackend } from '../src/backend/types.js'
import { webCryptoBackend } from '../src/backend/webcrypto.js'
import { decryptWith } from '../src/decrypt.js'
import { encryptWith } from '../src/encrypt.js'
import { decryptionIdentifier, encryptionIdentifier, identifierPrefix, serializeEncryptedDataKey } from '../src/cmm/cache-id.js'
import { expirySweeper } from '../src/cmm/expiry-sweep.js'
import {
  CachingMaterialsManager,
  ConfigurationError,
  DefaultMaterialsManager,
  decrypt,
  defaultKmsClientSupplier,
  encrypt,
  encryptStream,
  KmsKeyring,
  LocalMaterialsCache,
  RequiredEncryptionContextMaterialsManager,
  type CacheEntry,
  type CacheEvent,
  type MaterialsCache,
  type CompleteDecryptionMaterials,
  type CompleteEncryptionMaterials,
  type EncryptedDataKey,
  type EnvelopeError,
  type Keyring,
  type MaterialsManager,
} from '../src/index.js'
import { isAllZero } from '../src/format/bytes.js'
import { parseHeader, serializeHeaderBody } from '../src/format/header.js'
import { suiteFromOption } from '../src/suites.js'
import { startKmsEmulator, type KmsEmulator } from '../src/testing/index.js'
import { aesKeyring, bufferKeyring, collectGarbageFor, rejectionOf, rsaKeyring, runModuleScript, unhandledRejectionsDuring, withFailingImport } from './helpers/fixtures.js'

const KIB = new Uint8Array(1024).fill(0x5a)
const context = { tenant: 'acme', purpose: 'cache-test' }
const codeOf = async (promise: Promise<unknown>): Promise<string> => ((await rejectionOf(promise)) as EnvelopeError).code
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')
/** The wrapped data key of a single-keyring message: equal for messages that share a cached data key. */
const dataKeyOf = (edks: readonly EncryptedDataKey[]): string => edks.map((edk) => hex(edk.ciphertext)).join('|')

/** A materials manager counting its calls and keeping every data key it handed out (the cache's copies). */
function recording(inner: MaterialsManager = new DefaultMaterialsManager(aesKeyring())) {
  const seen = { encrypt: 0, decrypt: 0, encryptKeys: [] as Uint8Array[], decryptKeys: [] as Uint8Array[] }
  const manager: MaterialsManager = {
    async getEncryptionMaterials(request, backend): Promise<CompleteEncryptionMaterials> {
      seen.encrypt++
      const materials = await inner.getEncryptionMaterials(request, backend)
      seen.encryptKeys.push(materials.plaintextDataKey)
      return materials
    },
    async getDecryptionMaterials(request, backend): Promise<CompleteDecryptionMaterials> {
      seen.decrypt++
      const materials = await inner.getDecryptionMaterials(request, backend)
      seen.decryptKeys.push(materials.plaintextDataKey)
      return materials
    },
  }
  return { manager, seen }
}

/** `inner`, with `step` run (and awaited) before each encryption request is passed on: a slow or clock-moving manager. */
function beforeEncryption(inner: MaterialsManager, step: () => unknown): MaterialsManager {
  return {
    getEncryptionMaterials: async (request, backend) => {
      await step()
      return inner.getEncryptionMaterials(request, backend)
    },
    getDecryptionMaterials: (request, backend) => inner.getDecryptionMaterials(request, backend),
  }
}

/** A cache entry of partition "p", live from 0 to 1000, holding `materials` (its data key and whatever else). */
const cacheEntry = (operation: 'encrypt' | 'decrypt', materials: object): CacheEntry => ({
  operation,
  materials: { suite: suiteFromOption(0x0478), encryptionContext: {}, ...materials } as CacheEntry['materials'],
  partition: 'p',
  createdAt: 0,
  expiresAt: 1000,
  messagesEncrypted: 0,
  bytesEncrypted: 0,
  evicted: false,
})

function clock(start = 0) {
  const state = { now: start }
  return { state, clock: () => state.now }
}

describe('configuration', () => {
  const keyring = aesKeyring()
  it.each([
    ['no options', () => new CachingMaterialsManager(undefined as never), 'CachingMaterialsManager needs exactly one of keyring or materialsManager; got neither.'],
    ['no maxAge', () => new CachingMaterialsManager({ keyring } as never), 'CachingMaterialsManager maxAge must be a number of milliseconds above 0; got undefined.'],
    ['maxAge 0', () => new CachingMaterialsManager({ keyring, maxAge: 0 }), 'CachingMaterialsManager maxAge must be a number of milliseconds above 0; got 0.'],
    ['maxAge negative', () => new CachingMaterialsManager({ keyring, maxAge: -1 }), 'CachingMaterialsManager maxAge must be a number of milliseconds above 0; got -1.'],
    ['maxAge NaN', () => new CachingMaterialsManager({ keyring, maxAge: Number.NaN }), 'CachingMaterialsManager maxAge must be a number of milliseconds above 0; got NaN.'],
    ['maxAge infinite', () => new CachingMaterialsManager({ keyring, maxAge: Number.POSITIVE_INFINITY }), 'CachingMaterialsManager maxAge must be a number of milliseconds above 0; got Infinity.'],
    ['maxAge a string', () => new CachingMaterialsManager({ keyring, maxAge: '1000' as never }), 'CachingMaterialsManager maxAge must be a number of milliseconds above 0; got "1000".'],
    ['neither keyring nor manager', () => new CachingMaterialsManager({ maxAge: 1000 }), 'CachingMaterialsManager needs exactly one of keyring or materialsManager; got neither.'],
    ['both keyring and manager', () => new CachingMaterialsManager({ keyring, materialsManager: new DefaultMaterialsManager(keyring), maxAge: 1000 }), 'CachingMaterialsManager needs exactly one of keyring or materialsManager; got both.'],
    ['a keyring that is not one', () => new CachingMaterialsManager({ keyring: {} as never, maxAge: 1000 }), 'CachingMaterialsManager keyring must be a keyring.'],
    ['a keyring given as the manager', () => new CachingMaterialsManager({ materialsManager: keyring as never, maxAge: 1000 }), 'CachingMaterialsManager materialsManager must be a materials manager.'],
    ['a manager that is not one', () => new CachingMaterialsManager({ materialsManager: {} as never, maxAge: 1000 }), 'CachingMaterialsManager materialsManager must be a materials manager.'],
    ['maxMessagesEncrypted 0', () => new CachingMaterialsManager({ keyring, maxAge: 1000, maxMessagesEncrypted: 0 }), 'CachingMaterialsManager maxMessagesEncrypted must be an integer from 1 to 4294967296; got 0.'],
    ['maxMessagesEncrypted above 2^32', () => new CachingMaterialsManager({ keyring, maxAge: 1000, maxMessagesEncrypted: 2 ** 32 + 1 }), 'CachingMaterialsManager maxMessagesEncrypted must be an integer from 1 to 4294967296; got 4294967297.'],
    ['maxMessagesEncrypted fractional', () => new CachingMaterialsManager({ keyring, maxAge: 1000, maxMessagesEncrypted: 1.5 }), 'CachingMaterialsManager maxMessagesEncrypted must be an integer from 1 to 4294967296; got 1.5.'],
    ['maxBytesEncrypted 0', () => new CachingMaterialsManager({ keyring, maxAge: 1000, maxBytesEncrypted: 0 }), 'CachingMaterialsManager maxBytesEncrypted must be an integer from 1 to 9007199254740991; got 0.'],
    ['maxBytesEncrypted unsafe', () => new CachingMaterialsManager({ keyring, maxAge: 1000, maxBytesEncrypted: 2 ** 53 }), 'CachingMaterialsManager maxBytesEncrypted must be an integer from 1 to 9007199254740991; got 9007199254740992.'],
    ['an empty partition', () => new CachingMaterialsManager({ keyring, maxAge: 1000, partition: '' }), 'CachingMaterialsManager partition must be a non-empty string; got "".'],
    ['a numeric partition', () => new CachingMaterialsManager({ keyring, maxAge: 1000, partition: 5 as never }), 'CachingMaterialsManager partition must be a non-empty string; got 5.'],
    [
      'a partition that starts with a lone surrogate',
      () => new CachingMaterialsManager({ keyring, maxAge: 1000, partition: '\uD800b' }),
      'CachingMaterialsManager partition "\\ud800b" has a lone UTF-16 surrogate, which UTF-8 cannot store (it would become U+FFFD): fix or remove that character.',
    ],
    ['a cache that is not one', () => new CachingMaterialsManager({ keyring, maxAge: 1000, cache: {} as never }), 'CachingMaterialsManager cache must be a materials cache such as a LocalMaterialsCache.'],
    [
      'a manager with only getEncryptionMaterials',
      () => new CachingMaterialsManager({ materialsManager: { getEncryptionMaterials: async () => ({}) } as never, maxAge: 1000 }),
      'CachingMaterialsManager materialsManager must be a materials manager.',
    ],
    [
      'a cache whose ready is not a function',
      () => {
        const { get, put, evict, record, stats } = new LocalMaterialsCache({ capacity: 1 })
        return new CachingMaterialsManager({ keyring, maxAge: 1000, cache: { get, put, evict, record, stats, ready: true } as never })
      },
      'CachingMaterialsManager cache must be a materials cache such as a LocalMaterialsCache.',
    ],
    ['a clock that is not a function', () => new CachingMaterialsManager({ keyring, maxAge: 1000, clock: 5 as never }), 'CachingMaterialsManager clock must be a function.'],
    ['cache without options', () => new LocalMaterialsCache(undefined as never), 'LocalMaterialsCache capacity must be an integer from 0 to 1000000; got undefined.'],
    ['cache capacity negative', () => new LocalMaterialsCache({ capacity: -1 }), 'LocalMaterialsCache capacity must be an integer from 0 to 1000000; got -1.'],
    ['cache capacity fractional', () => new LocalMaterialsCache({ capacity: 1.5 }), 'LocalMaterialsCache capacity must be an integer from 0 to 1000000; got 1.5.'],
    ['cache capacity too large', () => new LocalMaterialsCache({ capacity: 10_000_000 }), 'LocalMaterialsCache capacity must be an integer from 0 to 1000000; got 10000000.'],
    ['cache capacity a string', () => new LocalMaterialsCache({ capacity: '10' as never }), 'LocalMaterialsCache capacity must be an integer from 0 to 1000000; got "10".'],
    ['cache onEvent not a function', () => new LocalMaterialsCache({ capacity: 1, onEvent: 'log' as never }), 'LocalMaterialsCache onEvent must be a function.'],
  ])('%s is a ConfigurationError that says what is wrong', (_name, build, message) => {
    expect(build).toThrow(ConfigurationError)
    expect(build).toThrow(expect.objectContaining({ code: 'INVALID_CONFIGURATION', message }))
  })

  it('limits at their largest are accepted: capacity 1,000,000, maxMessagesEncrypted 2^32, maxBytesEncrypted 2^53 - 1', () => {
    expect(new LocalMaterialsCache({ capacity: 1_000_000 }).capacity).toBe(1_000_000)
    const cmm = new CachingMaterialsManager({ keyring, maxAge: 1000, maxMessagesEncrypted: 2 ** 32, maxBytesEncrypted: Number.MAX_SAFE_INTEGER })
    expect([cmm.maxMessagesEncrypted, cmm.maxBytesEncrypted]).toEqual([2 ** 32, Number.MAX_SAFE_INTEGER])
  })

  it('without a cache of the caller\'s, a manager keeps its own of 1000 entries (as the README says)', () => {
    const cmm = new CachingMaterialsManager({ keyring, maxAge: 1000 })
    expect(cmm.cache).toBeInstanceOf(LocalMaterialsCache)
    expect((cmm.cache as LocalMaterialsCache).stats()).toMatchObject({ size: 0, capacity: 1000 })
  })

  it('where there is no crypto.getRandomValues (Node run with --no-experimental-global-webcrypto), the default partition is an UNSUPPORTED_OPERATION; a given partition needs none', () => {
    const global = globalThis as { crypto?: Crypto }
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'crypto')!
    Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true })
    try {
      expect(global.crypto).toBeUndefined()
      expect(() => new CachingMaterialsManager({ keyring: aesKeyring(), maxAge: 1000 })).toThrow(
        expect.objectContaining({ code: 'UNSUPPORTED_OPERATION', message: expect.stringContaining('pass a partition') }),
      )
      expect(new CachingMaterialsManager({ keyring: aesKeyring(), maxAge: 1000, partition: 'mine' }).partition).toBe('mine')
    } finally {
      Object.defineProperty(globalThis, 'crypto', saved)
    }
    expect(typeof global.crypto?.getRandomValues).toBe('function')
  })

  it('made where random values and timers are refused (a Cloudflare Worker\'s global scope), a manager takes neither until first used', async () => {
    const random = globalThis.crypto.getRandomValues
    const timer = globalThis.setTimeout
    const refuse = () => {
      throw new Error('Disallowed operation called within global scope.')
    }
    let cmm: CachingMaterialsManager
    let shown: string
    globalThis.crypto.getRandomValues = refuse as never
    globalThis.setTimeout = refuse as never
    try {
      cmm = new CachingMaterialsManager({ keyring: aesKeyring(), maxAge: 60_000 })
      shown = inspect(cmm)
    } finally {
      globalThis.crypto.getRandomValues = random
      globalThis.setTimeout = timer
    }
    expect(shown).toContain('partition random, made at first use')
    const first = await encrypt(cmm, 'one', { encryptionContext: { tenant: 'acme' } })
    const second = await encrypt(cmm, 'two', { encryptionContext: { tenant: 'acme' } })
    expect(cmm.cache.stats()).toMatchObject({ hits: 1, misses: 1 })
    expect(second.header.encryptedDataKeys).toEqual(first.header.encryptedDataKeys)
    expect(cmm.partition).toMatch(/^[0-9a-f]{32}$/)
    expect(inspect(cmm)).toContain(`partition ${cmm.partition}`)
    expect(cmm.partition).toBe(cmm.partition)
  })

  it('limits default to the spec values, and each manager gets its own partition', () => {
    const a = new CachingMaterialsManager({ keyring, maxAge: 1000 })
    const b = new CachingMaterialsManager({ keyring, maxAge: 1000 })
    expect(a.maxMessagesEncrypted).toBe(2 ** 32)
    expect(a.maxBytesEncrypted).toBe(Number.MAX_SAFE_INTEGER)
    expect(a.partition).not.toBe(b.partition)
    expect(a.cache).toBeInstanceOf(LocalMaterialsCache)
  })
})

// spec: framework/caching-cmm.md#appendix-a-cache-entry-identifier-formulas, checked against a direct
// transcription of the formulas onto node:crypto, and one pinned answer.
describe.each([
  ['node:crypto', nodeBackend],
  ['WebCrypto', webCryptoBackend],
] as const)('cache entry identifiers (%s)', (_name, backend) => {
  // The identifier is the map key: the SHA-384 digest, one character per byte.
  const idHex = async (id: string | Promise<string>) => Buffer.from(await id, 'latin1').toString('hex')
  const encryptionId = (prefix: Uint8Array, suiteId: number | undefined, context: Record<string, string>) =>
    idHex(encryptionIdentifier(backend, prefix, suiteId, context))
  const decryptionId = (prefix: Uint8Array, suiteId: number, keys: EncryptedDataKey[], context: Record<string, string>) =>
    idHex(decryptionIdentifier(backend, prefix, suiteId, keys, context))
  const sha384 = (...parts: Buffer[]) => createHash('sha384').update(Buffer.concat(parts)).digest('hex')
  const NULL = Buffer.of(0)
  const ec = { b: '2', a: '1' }
  const serializedEc = Buffer.from([0, 2, 0, 1, 0x61, 0, 1, 0x31, 0, 1, 0x62, 0, 1, 0x32])
  const edks: EncryptedDataKey[] = [
    { providerId: 'p2', providerInfo: Buffer.from('info-b'), ciphertext: Buffer.from([9, 9]) },
    { providerId: 'p1', providerInfo: Buffer.from('info-a'), ciphertext: Buffer.from([1, 2, 3]) },
  ]

  it('encryption materials with and without an algorithm suite', async () => {
    const prefix = identifierPrefix('partition-ü', 'encrypt')
    const partition = Buffer.from('partition-ü', 'utf8')
    expect(await encryptionId(prefix, 0x0578, ec)).toBe(
      sha384(Buffer.of(1), NULL, Buffer.of(1), NULL, partition, NULL, Buffer.of(1), NULL, Buffer.of(0x05, 0x78), NULL, serializedEc),
    )
    expect(await encryptionId(prefix, undefined, ec)).toBe(
      sha384(Buffer.of(1), NULL, Buffer.of(1), NULL, partition, NULL, Buffer.of(0), NULL, serializedEc),
    )
    // An empty context serializes to no bytes.
    expect(await encryptionId(prefix, 0x0478, {})).toBe(
      sha384(Buffer.of(1), NULL, Buffer.of(1), NULL, partition, NULL, Buffer.of(1), NULL, Buffer.of(0x04, 0x78), NULL),
    )
  })

  it('decryption materials: sorted serialized encrypted data keys', async () => {
    const prefix = identifierPrefix('p', 'decrypt')
    const serialized = (providerId: string, info: string, ciphertext: number[]) =>
      Buffer.concat([Buffer.of(0, providerId.length), Buffer.from(providerId), Buffer.of(0, info.length), Buffer.from(info), Buffer.of(0, ciphertext.length), Buffer.from(ciphertext)])
    const expected = sha384(
      Buffer.of(1), NULL, Buffer.of(2), NULL, Buffer.from('p'), NULL, Buffer.of(0x04, 0x78), NULL,
      serialized('p1', 'info-a', [1, 2, 3]), serialized('p2', 'info-b', [9, 9]), NULL, serializedEc,
    )
    expect(await decryptionId(prefix, 0x0478, edks, ec)).toBe(expected)
    expect(await decryptionId(prefix, 0x0478, [...edks].reverse(), ec)).toBe(expected)
    expect(hex(serializeEncryptedDataKey(edks[1] as EncryptedDataKey))).toBe(hex(serialized('p1', 'info-a', [1, 2, 3])))
  })

  it('known answer', async () => {
    expect(await encryptionId(identifierPrefix('kms-envelope', 'encrypt'), 0x0578, { tenant: 'acme' })).toBe(PINNED_ENCRYPT_ID)
  })

  it('partition, scope, suite and context all change the identifier', async () => {
    const ids = new Set([
      await encryptionId(identifierPrefix('a', 'encrypt'), 0x0478, ec),
      await encryptionId(identifierPrefix('b', 'encrypt'), 0x0478, ec),
      await encryptionId(identifierPrefix('a', 'encrypt'), 0x0578, ec),
      await encryptionId(identifierPrefix('a', 'encrypt'), 0x0478, { ...ec, c: '3' }),
      await decryptionId(identifierPrefix('a', 'decrypt'), 0x0478, edks, ec),
      await decryptionId(identifierPrefix('a', 'decrypt'), 0x0478, edks.slice(1), ec),
      await decryptionId(identifierPrefix('a', 'decrypt'), 0x0478, edks, { a: '1' }),
    ])
    expect(ids.size).toBe(7)
  })
})

/** SHA-384 identifier for partition "kms-envelope", suite 0x0578, context { tenant: 'acme' } (matches the transcription above). */
const PINNED_ENCRYPT_ID = '12aad9cedb7a15b32fef256c8f0e7706d4cd737c0ffa5d098880b9530e8195025eb457f3a8e01823fd833644ffb2f1b1'

describe('with the KMS emulator counting calls', () => {
  let kms: KmsEmulator
  let keyArn: string
  let keyring: KmsKeyring
  beforeAll(async () => {
    kms = await startKmsEmulator({ regions: ['us-east-1'] })
    keyArn = kms.createKey({ region: 'us-east-1' }).arn
    const clientSupplier = defaultKmsClientSupplier({
      clientConfig: { endpoint: kms.endpoint, credentials: { accessKeyId: 'AKIDCACHE', secretAccessKey: 'cache' } },
    })
    keyring = new KmsKeyring({ generatorKeyId: keyArn, clientSupplier })
  })
  afterAll(async () => {
    await kms.close()
  })
  beforeEach(() => {
    kms.faults.clear()
    kms.resetCalls()
  })
  const generateCalls = () => kms.callCount({ operation: 'GenerateDataKey' })

  it('10,000 encrypts of 1 KiB under one context with maxMessagesEncrypted 1000 make exactly 10 GenerateDataKey calls', async () => {
    const cache = new LocalMaterialsCache({ capacity: 10 })
    const cmm = new CachingMaterialsManager({ keyring, cache, maxAge: 3_600_000, maxMessagesEncrypted: 1000 })
    const uses = new Map<string, number>()
    for (let i = 0; i < 10_000; i++) {
      const { header } = await encrypt(cmm, KIB, { encryptionContext: context, algorithmSuite: 0x0478 })
      const key = dataKeyOf(header.encryptedDataKeys)
      uses.set(key, (uses.get(key) ?? 0) + 1)
    }
    expect(generateCalls()).toBe(10)
    expect(kms.calls.length).toBe(10)
    expect([...uses.values()]).toEqual(Array(10).fill(1000))
    expect(cache.stats()).toMatchObject({ hits: 9990, misses: 10, bypasses: 0, evictions: 10, size: 0 })
  })

  it('maxAge is honoured exactly on the injected clock', async () => {
    const { state, clock: now } = clock(5000)
    const cmm = new CachingMaterialsManager({ keyring, maxAge: 1000, clock: now })
    const keys: string[] = []
    const run = async () => keys.push(dataKeyOf((await encrypt(cmm, KIB, { encryptionContext: context })).header.encryptedDataKeys))
    await run() // t = 5000: miss
    state.now = 5999
    await run() // last instant of the entry's life: hit
    state.now = 6000
    await run() // expired: miss
    expect(generateCalls()).toBe(2)
    expect(keys[0]).toBe(keys[1])
    expect(keys[2]).not.toBe(keys[1])
  })

  it('a clock set back (Date.now after an NTP step, say) does not lengthen an entry\'s life: a reading before it was fetched expires it', async () => {
    const { state, clock: now } = clock(50_000)
    const cache = new LocalMaterialsCache({ capacity: 10 })
    const cmm = new CachingMaterialsManager({ keyring, cache, maxAge: 1000, clock: now })
    const keys: string[] = []
    const run = async () => keys.push(dataKeyOf((await encrypt(cmm, KIB, { encryptionContext: context })).header.encryptedDataKeys))
    await run() // t = 50000: miss
    state.now = 50_500
    await run() // hit
    state.now = 10_000 // set back by 40 s: the entry would otherwise live until the clock reads 51000 again
    await run()
    expect(generateCalls()).toBe(2)
    expect(keys[1]).toBe(keys[0])
    expect(keys[2]).not.toBe(keys[0])
    // Decrypt entries too, and prune() takes such entries out.
    const { ciphertext } = await encrypt(keyring, KIB)
    await decrypt(cmm, ciphertext) // t = 10000: miss
    state.now = 9_000
    await decrypt(cmm, ciphertext) // set back: miss
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 4 })
    // The lookup at 9000 also took out the entries fetched at 10000; the one fetched at 9000 is left.
    expect(cache.stats().size).toBe(1)
    cache.prune(8_000)
    expect(cache.stats().size).toBe(0)
    // A cache of one's own that keeps entries whatever the time: the manager refuses them itself.
    const held = new Map<string, CacheEntry>()
    const own: MaterialsCache = {
      get: (id) => held.get(id),
      put: (id, entry) => void held.set(id, entry),
      evict: (id) => void held.delete(id),
      record: () => undefined,
      stats: () => ({ hits: 0, misses: 0, bypasses: 0, evictions: 0, size: held.size, capacity: 10 }),
    }
    const withOwn = new CachingMaterialsManager({ keyring, cache: own, maxAge: 1000, clock: now })
    const decryptCalls = () => kms.callCount({ operation: 'Decrypt' })
    const [generated, decrypted] = [generateCalls(), decryptCalls()]
    state.now = 50_000
    await encrypt(withOwn, KIB, { encryptionContext: context })
    await decrypt(withOwn, ciphertext)
    state.now = 10_000
    await encrypt(withOwn, KIB, { encryptionContext: context })
    await decrypt(withOwn, ciphertext)
    expect([generateCalls() - generated, decryptCalls() - decrypted]).toEqual([2, 2])
  })

  it('a clock reading that is not a finite number fails the call with a ConfigurationError; nothing is cached with it', async () => {
    for (const reading of [Number.NaN, Number.POSITIVE_INFINITY, '5000', undefined]) {
      const cmm = new CachingMaterialsManager({ keyring, maxAge: 1000, clock: () => reading as number })
      const failure = await rejectionOf(encrypt(cmm, KIB, { encryptionContext: context }))
      expect(failure).toBeInstanceOf(ConfigurationError)
      expect((failure as Error).message).toMatch(/^CachingMaterialsManager clock must return a finite number of milliseconds; it returned /)
      expect(await rejectionOf(decrypt(cmm, (await encrypt(keyring, KIB)).ciphertext))).toBeInstanceOf(ConfigurationError)
    }
    const cache = new LocalMaterialsCache({ capacity: 10 })
    await cache.ready()
    for (const now of ['5', Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => cache.prune(now as number), String(now)).toThrow(
        expect.objectContaining({ code: 'INVALID_CONFIGURATION', message: `LocalMaterialsCache prune(now) takes a finite number of milliseconds; got ${typeof now === 'string' ? `"${now}"` : now}.` }),
      )
    }
    // A cache of capacity 0 has no entries to prune or clear.
    const none = new LocalMaterialsCache({ capacity: 0 })
    none.prune(5)
    none.clear()
    expect(none.stats()).toMatchObject({ size: 0, evictions: 0 })
  })

  it('an async clock is refused as such, and its rejection is not left unhandled', async () => {
    const unhandled = await unhandledRejectionsDuring(async () => {
      for (const read of [async () => 5000, async () => Promise.reject(new Error('clock service down'))]) {
        const cmm = new CachingMaterialsManager({ keyring, maxAge: 1000, clock: read as never })
        expect(await rejectionOf(encrypt(cmm, KIB, { encryptionContext: context }))).toMatchObject({
          code: 'INVALID_CONFIGURATION',
          message: 'CachingMaterialsManager clock returned a Promise: it must return a finite number of milliseconds, synchronously.',
        })
      }
    })
    expect(unhandled).toEqual([])
  })

  it('maxAge counts from the request to KMS, not from its answer', async () => {
    const { state, clock: now } = clock(0)
    const slow: Keyring = {
      onEncrypt: async (materials, backend) => {
        state.now += 600 // the KMS call takes 600 ms of the entry's 1000
        return keyring.onEncrypt(materials, backend)
      },
      onDecrypt: (materials, edks, backend) => keyring.onDecrypt(materials, edks, backend),
    }
    const cmm = new CachingMaterialsManager({ keyring: slow, maxAge: 1000, clock: now })
    await encrypt(cmm, KIB, { algorithmSuite: 0x0478 })
    state.now = 999
    await encrypt(cmm, KIB, { algorithmSuite: 0x0478 })
    state.now = 1000
    await encrypt(cmm, KIB, { algorithmSuite: 0x0478 })
    expect(generateCalls()).toBe(2)
  })

  it('maxBytesEncrypted is honoured exactly', async () => {
    const exact = new CachingMaterialsManager({ keyring, maxAge: 60_000, maxBytesEncrypted: 4096 })
    for (let i = 0; i < 12; i++) await encrypt(exact, KIB, { algorithmSuite: 0x0478 }) // 4 x 1 KiB per data key
    expect(generateCalls()).toBe(3)
    kms.resetCalls()
    const shortEvents: CacheEvent[] = []
    const short = new CachingMaterialsManager({ keyring, maxAge: 60_000, maxBytesEncrypted: 4095, cache: new LocalMaterialsCache({ capacity: 10, onEvent: (event) => shortEvents.push(event) }) })
    const uses = new Map<string, number>()
    for (let i = 0; i < 12; i++) {
      const key = dataKeyOf((await encrypt(short, KIB, { algorithmSuite: 0x0478 })).header.encryptedDataKeys)
      uses.set(key, (uses.get(key) ?? 0) + 1)
    }
    expect(generateCalls()).toBe(4)
    expect([...uses.values()]).toEqual([3, 3, 3, 3])
    // An entry that cannot take the next message is evicted for its limit before a new data key is fetched.
    expect(shortEvents.filter((event) => event.type === 'evict').map((event) => (event as { reason: string }).reason)).toEqual(['limit', 'limit', 'limit'])
    // A message larger than the limit is never cached.
    kms.resetCalls()
    const tiny = new CachingMaterialsManager({ keyring, maxAge: 60_000, maxBytesEncrypted: 1000 })
    for (let i = 0; i < 3; i++) await encrypt(tiny, KIB, { algorithmSuite: 0x0478 })
    expect(generateCalls()).toBe(3)
    expect(tiny.cache.stats()).toMatchObject({ bypasses: 3, hits: 0, misses: 0 })
    // One exactly as large as the limit goes through the cache (a miss, not a bypass), and uses its data key up:
    // it is not kept.
    const fit = new CachingMaterialsManager({ keyring, maxAge: 60_000, maxBytesEncrypted: 1024 })
    await encrypt(fit, KIB, { algorithmSuite: 0x0478 })
    expect(fit.cache.stats()).toMatchObject({ bypasses: 0, misses: 1, size: 0 })
  })

  it('100 concurrent encrypts on a cold cache make one KMS call; so do 100 concurrent decrypts', async () => {
    kms.faults.latency(20)
    const cmm = new CachingMaterialsManager({ keyring, maxAge: 60_000 })
    const results = await Promise.all(Array.from({ length: 100 }, () => encrypt(cmm, KIB, { encryptionContext: context })))
    expect(generateCalls()).toBe(1)
    expect(new Set(results.map((result) => dataKeyOf(result.header.encryptedDataKeys))).size).toBe(1)
    expect(cmm.cache.stats()).toMatchObject({ misses: 1, hits: 99 })
    const reader = new CachingMaterialsManager({ keyring, maxAge: 60_000 })
    const message = (results[0] as { ciphertext: Uint8Array }).ciphertext
    const decrypted = await Promise.all(Array.from({ length: 100 }, () => decrypt(reader, message, { encryptionContext: context })))
    expect(kms.callCount({ operation: 'Decrypt' })).toBe(1)
    expect(decrypted.every((result) => Buffer.from(result.plaintext).equals(Buffer.from(KIB)))).toBe(true)
  })

  it('identifiers hashed asynchronously (WebCrypto) keep single flight and the limits exact', async () => {
    kms.faults.latency(5)
    let digests = 0
    const asyncDigest: CryptoBackend = {
      ...nodeBackend,
      digest: async (hash, data) => {
        digests++
        await new Promise((resolve) => setImmediate(resolve))
        return nodeBackend.digest(hash, data)
      },
    }
    const cmm = new CachingMaterialsManager({ keyring, maxAge: 60_000, maxMessagesEncrypted: 10 })
    const results = await Promise.all(Array.from({ length: 100 }, () => encryptWith(asyncDigest, cmm, KIB, { encryptionContext: context })))
    expect(digests).toBeGreaterThanOrEqual(100)
    expect(generateCalls()).toBe(10)
    expect(new Set(results.map((result) => dataKeyOf(result.header.encryptedDataKeys))).size).toBe(10)
    const reader = new CachingMaterialsManager({ keyring, maxAge: 60_000 })
    const message = (results[0] as { ciphertext: Uint8Array }).ciphertext
    const decrypted = await Promise.all(Array.from({ length: 50 }, () => decryptWith(asyncDigest, reader, message, { encryptionContext: context })))
    expect(kms.callCount({ operation: 'Decrypt' })).toBe(1)
    expect(decrypted.every((result) => Buffer.from(result.plaintext).equals(Buffer.from(KIB)))).toBe(true)
  })

  it('limits are exact under concurrency: 1000 concurrent encrypts with maxMessagesEncrypted 10 use 100 data keys 10 times each', async () => {
    kms.faults.latency(5)
    const cmm = new CachingMaterialsManager({ keyring, maxAge: 60_000, maxMessagesEncrypted: 10 })
    const results = await Promise.all(Array.from({ length: 1000 }, () => encrypt(cmm, KIB, { algorithmSuite: 0x0478 })))
    const uses = new Map<string, number>()
    for (const { header } of results) {
      const key = dataKeyOf(header.encryptedDataKeys)
      uses.set(key, (uses.get(key) ?? 0) + 1)
    }
    expect(uses.size).toBe(100)
    expect(Math.max(...uses.values())).toBe(10)
    expect(generateCalls()).toBe(100)
  })

  it('a failing fetch reaches every waiter and is not cached', async () => {
    const cmm = new CachingMaterialsManager({ keyring, maxAge: 60_000 })
    kms.faults.deny(keyArn, { operation: 'GenerateDataKey' })
    kms.faults.latency(10)
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => encrypt(cmm, KIB, { encryptionContext: context })))
    expect(outcomes.every((outcome) => outcome.status === 'rejected' && (outcome.reason as EnvelopeError).code === 'KEYRING_FAILURE')).toBe(true)
    expect(generateCalls()).toBe(1)
    kms.faults.clear()
    await encrypt(cmm, KIB, { encryptionContext: context })
    await encrypt(cmm, KIB, { encryptionContext: context })
    expect(generateCalls()).toBe(2)
  })

  it('a cached decrypt entry never serves a message under a different context: KMS is asked and refuses', async () => {
    const writer = new CachingMaterialsManager({ keyring, maxAge: 60_000 })
    const reader = new CachingMaterialsManager({ keyring, maxAge: 60_000 })
    const { ciphertext } = await encrypt(writer, KIB, { encryptionContext: context, algorithmSuite: 0x0478 })
    await decrypt(reader, ciphertext)
    await decrypt(reader, ciphertext)
    expect(kms.callCount({ operation: 'Decrypt' })).toBe(1)
    // The same wrapped data key under another stored context (the header rewritten around it).
    const parsed = parseHeader(ciphertext)
    const forged = serializeHeaderBody({
      suite: parsed.suite,
      messageId: parsed.header.messageId,
      encryptionContext: { ...context, tenant: 'mallory' },
      encryptedDataKeys: parsed.header.encryptedDataKeys,
      frameLength: parsed.header.frameLength,
      suiteData: parsed.suiteData,
    })
    const message = new Uint8Array(Buffer.concat([forged, ciphertext.subarray(parsed.body.length)]))
    kms.resetCalls()
    const error = await rejectionOf(decrypt(reader, message))
    expect((error as EnvelopeError).code).toBe('NO_DECRYPTABLE_KEY')
    expect(kms.calls.map((call) => call.errorType)).toEqual(['InvalidCiphertextException'])
  })
})

describe('materials whose keys are Node Buffers (a custom keyring on node:crypto)', () => {
  // Buffer#slice() is a view, not a copy: an entry "copied" with it shared its data key with the caller's copy,
  // which kms-envelope zeroes after use, so every later hit failed ("a data key of zeros").
  const { keyring: buffers, made } = bufferKeyring()

  it.each([
    ['0x0478', 0x0478],
    ['0x0578', 0x0578],
    ['0x0178', 0x0178],
  ])('cache hits still encrypt and decrypt (%s)', async (_name, algorithmSuite) => {
    const commitmentPolicy = algorithmSuite < 0x0400 ? 'FORBID_ENCRYPT_ALLOW_DECRYPT' : 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT'
    const cmm = new CachingMaterialsManager({ keyring: buffers, maxAge: 60_000 })
    const messages = []
    const before = made.length
    for (let index = 0; index < 3; index++) messages.push((await encrypt(cmm, `message ${index}`, { algorithmSuite, commitmentPolicy })).ciphertext)
    expect(made.length - before).toBe(1) // the cache served the second and third
    const opened = []
    for (const message of [...messages, ...messages]) {
      opened.push(new TextDecoder().decode((await decrypt(cmm, message, { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' })).plaintext))
    }
    expect(opened).toEqual(['message 0', 'message 1', 'message 2', 'message 0', 'message 1', 'message 2'])
  })
})

describe('partitions, contexts and suites', () => {
  it('a new entry counts the message that fetched it: an encrypt entry its one message and its bytes, a decrypt entry nothing', async () => {
    const put: CacheEntry[] = []
    const cache = new (class extends LocalMaterialsCache {
      override put(id: string, entry: CacheEntry): void {
        put.push({ ...entry })
        super.put(id, entry)
      }
    })({ capacity: 10 })
    const cmm = new CachingMaterialsManager({ keyring: aesKeyring(), cache, maxAge: 60_000 })
    const { ciphertext } = await encrypt(cmm, KIB, { encryptionContext: context })
    await decrypt(cmm, ciphertext)
    expect(put.map(({ operation, messagesEncrypted, bytesEncrypted }) => ({ operation, messagesEncrypted, bytesEncrypted }))).toEqual([
      { operation: 'encrypt', messagesEncrypted: 1, bytesEncrypted: KIB.length },
      { operation: 'decrypt', messagesEncrypted: 0, bytesEncrypted: 0 },
    ])
  })

  it('different partitions never share entries; the same partition does', async () => {
    const { manager, seen } = recording()
    const cache = new LocalMaterialsCache({ capacity: 10 })
    const a = new CachingMaterialsManager({ materialsManager: manager, cache, maxAge: 60_000, partition: 'a' })
    const b = new CachingMaterialsManager({ materialsManager: manager, cache, maxAge: 60_000, partition: 'b' })
    const a2 = new CachingMaterialsManager({ materialsManager: manager, cache, maxAge: 60_000, partition: 'a' })
    const defaults = [new CachingMaterialsManager({ materialsManager: manager, cache, maxAge: 60_000 }), new CachingMaterialsManager({ materialsManager: manager, cache, maxAge: 60_000 })]
    for (const cmm of [a, b, a2, ...defaults]) await encrypt(cmm, KIB, { encryptionContext: context })
    expect(seen.encrypt).toBe(4) // a and a2 share; b and each unnamed manager have their own
    const { ciphertext } = await encrypt(a, KIB, { encryptionContext: context })
    for (const cmm of [a, b, a2]) await decrypt(cmm, ciphertext)
    expect(seen.decrypt).toBe(2)
  })

  it('different contexts and suites never share entries', async () => {
    const { manager, seen } = recording()
    const cmm = new CachingMaterialsManager({ materialsManager: manager, maxAge: 60_000 })
    const keys = new Set<string>()
    for (const [encryptionContext, algorithmSuite] of [
      [{ tenant: 'a' }, 0x0478],
      [{ tenant: 'b' }, 0x0478],
      [{ tenant: 'a', extra: '' }, 0x0478],
      [{}, 0x0478],
      [{ tenant: 'a' }, 0x0578],
      [{ tenant: 'a' }, 0x0478],
    ] as const) {
      keys.add(dataKeyOf((await encrypt(cmm, KIB, { encryptionContext, algorithmSuite })).header.encryptedDataKeys))
    }
    expect(seen.encrypt).toBe(5)
    expect(keys.size).toBe(5)
  })

  it('decrypt entries are keyed on the encrypted data keys: each message with its own data key is a miss', async () => {
    const { manager, seen } = recording()
    const reader = new CachingMaterialsManager({ materialsManager: manager, maxAge: 60_000 })
    const keyring = aesKeyring()
    const messages = await Promise.all([1, 2, 3].map(() => encrypt(keyring, KIB, { encryptionContext: context })))
    for (const { ciphertext } of [...messages, ...messages]) await decrypt(reader, ciphertext)
    expect(seen.decrypt).toBe(3)
  })

  it('suites without key derivation are never cached', async () => {
    const { manager, seen } = recording()
    const cmm = new CachingMaterialsManager({ materialsManager: manager, maxAge: 60_000 })
    const options = { algorithmSuite: 0x0078, commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT' } as const
    const { ciphertext } = await encrypt(cmm, KIB, options)
    await encrypt(cmm, KIB, options)
    await decrypt(cmm, ciphertext, { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' })
    await decrypt(cmm, ciphertext, { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' })
    expect(seen).toMatchObject({ encrypt: 2, decrypt: 2 })
    expect(cmm.cache.stats()).toMatchObject({ bypasses: 4, hits: 0, misses: 0, size: 0 })
    // The same through 0x0178 (HKDF) is cached.
    const hkdf = { algorithmSuite: 0x0178, commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT' } as const
    await encrypt(cmm, KIB, hkdf)
    await encrypt(cmm, KIB, hkdf)
    expect(seen.encrypt).toBe(3)
  })

  it('the commitment policy is checked on every request, cached or not', async () => {
    const cmm = new CachingMaterialsManager({ keyring: aesKeyring(), maxAge: 60_000 })
    const { ciphertext, header } = await encrypt(cmm, KIB, { algorithmSuite: 0x0178, commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT' })
    await decrypt(cmm, ciphertext, { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' })
    expect(await codeOf(decrypt(cmm, ciphertext))).toBe('COMMITMENT_POLICY_VIOLATION')
    // Straight to the manager, with both entries cached:
    const suite = suiteFromOption(0x0178)
    const encryptRequest = { suite, encryptionContext: {}, plaintextLength: 1 }
    expect(await codeOf(cmm.getEncryptionMaterials({ ...encryptRequest, commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' }, nodeBackend))).toBe(
      'COMMITMENT_POLICY_VIOLATION',
    )
    const decryptRequest = { suite, encryptionContext: header.encryptionContext, encryptedDataKeys: header.encryptedDataKeys }
    expect(await codeOf(cmm.getDecryptionMaterials({ ...decryptRequest, commitmentPolicy: 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' }, nodeBackend))).toBe(
      'COMMITMENT_POLICY_VIOLATION',
    )
    const allowed = await cmm.getDecryptionMaterials({ ...decryptRequest, commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' }, nodeBackend)
    expect(allowed.plaintextDataKey.length).toBe(32)
  })

  it('a reproduced value for a stored key is compared even when the entry is cached', async () => {
    const { manager, seen } = recording()
    const reader = new CachingMaterialsManager({ materialsManager: manager, maxAge: 60_000 })
    const { ciphertext, header } = await encrypt(aesKeyring(), KIB, { encryptionContext: context, algorithmSuite: 0x0478 })
    await decrypt(reader, ciphertext)
    const request = {
      suite: suiteFromOption(0x0478),
      encryptionContext: header.encryptionContext,
      encryptedDataKeys: header.encryptedDataKeys,
      commitmentPolicy: 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' as const,
    }
    expect((await reader.getDecryptionMaterials({ ...request, reproducedEncryptionContext: { tenant: 'acme' } }, nodeBackend)).plaintextDataKey).toHaveLength(32)
    expect(await codeOf(reader.getDecryptionMaterials({ ...request, reproducedEncryptionContext: { tenant: 'other' } }, nodeBackend))).toBe(
      'ENCRYPTION_CONTEXT_MISMATCH',
    )
    expect(seen.decrypt).toBe(1)
  })
})

describe('unknown plaintext length', () => {
  async function streamEncrypt(cmm: MaterialsManager, input: Uint8Array, options: { plaintextLength?: number; maxPlaintextLength?: number } = {}) {
    const stream = encryptStream(cmm, { ...options, algorithmSuite: 0x0478 })
    const writer = stream.writable.getWriter()
    const writing = (async () => {
      for (let offset = 0; offset < input.length; offset += 300) await writer.write(input.subarray(offset, offset + 300))
      await writer.close()
    })()
    writing.catch(() => undefined)
    const chunks: Uint8Array[] = []
    for await (const chunk of stream.readable as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk)
    await writing
    return { ciphertext: new Uint8Array(Buffer.concat(chunks)), header: await stream.header }
  }

  it('a stream without plaintextLength or maxPlaintextLength bypasses the cache; one-shot iterable input too', async () => {
    const { manager, seen } = recording()
    const cmm = new CachingMaterialsManager({ materialsManager: manager, maxAge: 60_000 })
    await streamEncrypt(cmm, KIB)
    await streamEncrypt(cmm, KIB)
    async function* chunks() {
      yield KIB
    }
    await encrypt(cmm, chunks(), { algorithmSuite: 0x0478 })
    expect(seen.encrypt).toBe(3)
    expect(cmm.cache.stats()).toMatchObject({ bypasses: 3, size: 0 })
  })

  it('with plaintextLength, a stream is cached and counted exactly', async () => {
    const { manager, seen } = recording()
    const cmm = new CachingMaterialsManager({ materialsManager: manager, maxAge: 60_000, maxBytesEncrypted: 2048 })
    for (let i = 0; i < 4; i++) await streamEncrypt(cmm, KIB, { plaintextLength: KIB.length })
    expect(seen.encrypt).toBe(2)
  })

  it('maxPlaintextLength opts a stream of unknown length in: the budget is charged, and a longer input errors', async () => {
    const { manager, seen } = recording()
    const cmm = new CachingMaterialsManager({ materialsManager: manager, maxAge: 60_000, maxBytesEncrypted: 10_000 })
    for (let i = 0; i < 4; i++) {
      const { ciphertext } = await streamEncrypt(cmm, KIB, { maxPlaintextLength: 4000 }) // charged 4000 each: 2 per data key
      expect(Buffer.from((await decrypt(cmm, ciphertext)).plaintext).equals(Buffer.from(KIB))).toBe(true)
    }
    expect(seen.encrypt).toBe(2)
    const error = await rejectionOf(streamEncrypt(cmm, new Uint8Array(5000), { maxPlaintextLength: 4000 }))
    expect((error as EnvelopeError).code).toBe('LIMIT_EXCEEDED')
    expect(() => encryptStream(cmm, { maxPlaintextLength: -1 })).toThrow(ConfigurationError)
    expect(await codeOf(streamEncrypt(cmm, KIB, { plaintextLength: 1024, maxPlaintextLength: 1000 }))).toBe('INVALID_CONFIGURATION')
    // A budget above maxBytesEncrypted can never be cached.
    const before = seen.encrypt
    await streamEncrypt(cmm, KIB, { maxPlaintextLength: 20_000 })
    await streamEncrypt(cmm, KIB, { maxPlaintextLength: 20_000 })
    expect(seen.encrypt).toBe(before + 2)
  })
})

describe('zeroing and ownership of cached data keys', () => {
  it('encrypt zeroes its own copy, never the cached key; expiry zeroes the cached key', async () => {
    const { manager, seen } = recording()
    const { state, clock: now } = clock()
    const cmm = new CachingMaterialsManager({ materialsManager: manager, maxAge: 1000, clock: now })
    const first = await encrypt(cmm, KIB, { encryptionContext: context })
    const cached = seen.encryptKeys[0] as Uint8Array
    expect(isAllZero(cached)).toBe(false)
    const second = await encrypt(cmm, KIB, { encryptionContext: context })
    expect(isAllZero(cached)).toBe(false)
    for (const { ciphertext } of [first, second]) expect(Buffer.from((await decrypt(aesKeyring(), ciphertext)).plaintext).equals(Buffer.from(KIB))).toBe(true)
    state.now = 1000
    await encrypt(cmm, KIB, { encryptionContext: context }) // finds the entry expired
    expect(isAllZero(cached)).toBe(true)
    expect(isAllZero(seen.encryptKeys[1] as Uint8Array)).toBe(false)
  })

  it('reaching a usage limit zeroes the key at once; so do capacity evictions, replacement and clear()', async () => {
    const { manager, seen } = recording()
    const events: CacheEvent[] = []
    const cache = new LocalMaterialsCache({ capacity: 2, onEvent: (event) => events.push(event) })
    const cmm = new CachingMaterialsManager({ materialsManager: manager, cache, maxAge: 60_000, maxMessagesEncrypted: 2 })
    await encrypt(cmm, KIB, { encryptionContext: { n: '0' } })
    await encrypt(cmm, KIB, { encryptionContext: { n: '0' } }) // second message: limit reached, evicted now
    expect(isAllZero(seen.encryptKeys[0] as Uint8Array)).toBe(true)
    for (const n of ['1', '2', '3']) await encrypt(cmm, KIB, { encryptionContext: { n } }) // capacity 2: '1' is evicted
    expect(seen.encryptKeys.slice(1).map(isAllZero)).toEqual([true, false, false])
    cache.clear()
    expect(seen.encryptKeys.every(isAllZero)).toBe(true)
    expect(events.filter((event) => event.type === 'evict').map((event) => (event as { reason: string }).reason)).toEqual([
      'limit',
      'capacity',
      'deleted',
      'deleted',
    ])
    expect(cache.stats()).toMatchObject({ size: 0, evictions: 4, misses: 4, hits: 1 })
  })

  it('an entry a cache of your own hands out expired (its get does not check) is evicted as expired and zeroed, not used', async () => {
    const { manager, seen } = recording()
    const state = { now: 0 }
    const inner = new LocalMaterialsCache({ capacity: 10 })
    const evictions: string[] = []
    const lax: MaterialsCache = {
      ready: () => inner.ready(),
      get: (id) => inner.get(id, 0),
      put: (id, entry) => inner.put(id, entry),
      evict: (id, entry, reason) => (evictions.push(reason), inner.evict(id, entry, reason)),
      record: (event) => inner.record(event),
      stats: () => inner.stats(),
    }
    const cmm = new CachingMaterialsManager({ materialsManager: manager, cache: lax, maxAge: 1000, clock: () => state.now })
    const first = await encrypt(cmm, KIB, { encryptionContext: context })
    state.now = 1000
    const second = await encrypt(cmm, KIB, { encryptionContext: context })
    expect(seen.encrypt).toBe(2)
    expect(dataKeyOf(second.header.encryptedDataKeys)).not.toBe(dataKeyOf(first.header.encryptedDataKeys))
    expect(evictions).toEqual(['expired'])
    expect(isAllZero(seen.encryptKeys[0] as Uint8Array)).toBe(true)
  })

  it('an entry put under an id already held replaces it: the old one is evicted as "replaced" and zeroed', async () => {
    const events: CacheEvent[] = []
    const cache = new LocalMaterialsCache({ capacity: 10, onEvent: (event) => events.push(event) })
    await cache.ready()
    const [first, second] = [1, 2].map((fill) => cacheEntry('decrypt', { plaintextDataKey: new Uint8Array(32).fill(fill) })) as [CacheEntry, CacheEntry]
    cache.put('id', first)
    cache.put('id', second)
    expect(events).toEqual([{ type: 'evict', operation: 'decrypt', partition: 'p', reason: 'replaced' }])
    expect([isAllZero(first.materials.plaintextDataKey), first.evicted]).toEqual([true, true])
    expect(cache.get('id', 10)).toBe(second)
    expect(isAllZero(second.materials.plaintextDataKey)).toBe(false)
    // An entry held under two ids leaves once: one eviction, one event.
    cache.put('other', second)
    cache.clear()
    expect(events.map((event) => (event as { reason: string }).reason)).toEqual(['replaced', 'deleted'])
    expect(cache.stats()).toMatchObject({ size: 0, evictions: 2 })
  })

  /** Wait (up to 3 s) for the expiry sweeps to empty `cache`. */
  const untilEmpty = async (cache: LocalMaterialsCache) => {
    for (let waited = 0; waited < 3000 && cache.stats().size > 0; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  /** Count the sweeps of `cache` (calls of its prune), which still prunes. */
  const countSweeps = (cache: LocalMaterialsCache): (() => number) => {
    let sweeps = 0
    const prune = cache.prune.bind(cache)
    cache.prune = (now?: number) => {
      sweeps++
      prune(now)
    }
    return () => sweeps
  }

  it('decrypt entries expire and are zeroed; pruning at the LRU tail and prune() find expired entries nobody asks for', async () => {
    const { manager, seen } = recording()
    const { state, clock: now } = clock()
    const cache = new LocalMaterialsCache({ capacity: 10 })
    const cmm = new CachingMaterialsManager({ materialsManager: manager, cache, maxAge: 1000, clock: now })
    const keyring = aesKeyring()
    const messages = await Promise.all(['a', 'b', 'c', 'd'].map((tenant) => encrypt(keyring, KIB, { encryptionContext: { tenant } })))
    for (const { ciphertext } of messages.slice(0, 3)) await decrypt(cmm, ciphertext)
    state.now = 500
    await decrypt(cmm, (messages[3] as { ciphertext: Uint8Array }).ciphertext)
    state.now = 1200 // the first three are expired, the fourth is not
    await decrypt(cmm, (messages[3] as { ciphertext: Uint8Array }).ciphertext) // a hit; the lookup prunes the tail
    expect(seen.decryptKeys.map(isAllZero)).toEqual([true, true, true, false])
    expect(cache.stats().size).toBe(1)
    cache.prune(1500)
    expect(cache.stats().size).toBe(0)
    expect(seen.decryptKeys.every(isAllZero)).toBe(true)
  })

  it('on the default clock, entries nobody asks for again are evicted and zeroed once they expire', async () => {
    const { manager, seen } = recording()
    const events: CacheEvent[] = []
    const cache = new LocalMaterialsCache({ capacity: 10, onEvent: (event) => events.push(event) })
    const cmm = new CachingMaterialsManager({ materialsManager: manager, cache, maxAge: 200 })
    const { ciphertext } = await encrypt(cmm, KIB, { encryptionContext: context })
    await decrypt(cmm, ciphertext)
    expect(seen.encryptKeys.length + seen.decryptKeys.length).toBe(2)
    await untilEmpty(cache)
    expect(cache.stats().size).toBe(0)
    expect([...seen.encryptKeys, ...seen.decryptKeys].every(isAllZero)).toBe(true)
    expect(events.filter((event) => event.type === 'evict').map((event) => (event as { reason: string }).reason)).toEqual(['expired', 'expired'])
  })

  it('managers sharing a cache share its sweeps: 100 of them, one entry each, make one or two', async () => {
    const cache = new LocalMaterialsCache({ capacity: 200 })
    const sweeps = countSweeps(cache)
    const managers = Array.from({ length: 100 }, (_, index) => new CachingMaterialsManager({ keyring: aesKeyring(), cache, maxAge: 500, partition: `tenant-${index}` }))
    await encrypt(new CachingMaterialsManager({ keyring: aesKeyring(), maxAge: 1 }), KIB) // loads what the first encrypt loads
    await Promise.all(managers.map((cmm) => encrypt(cmm, KIB, { encryptionContext: context, algorithmSuite: 0x0478 })))
    expect(cache.stats().size).toBe(100)
    await untilEmpty(cache)
    expect(cache.stats().size).toBe(0)
    expect(sweeps()).toBeGreaterThanOrEqual(1)
    expect(sweeps()).toBeLessThanOrEqual(2)
  })

  it('once the last entry is swept, no sweep comes again until another entry is put (a cache of one entry too)', async () => {
    const cache = new LocalMaterialsCache({ capacity: 1 })
    const sweeps = countSweeps(cache)
    const cmm = new CachingMaterialsManager({ keyring: aesKeyring(), cache, maxAge: 50 })
    await encrypt(cmm, KIB, { algorithmSuite: 0x0478 })
    await untilEmpty(cache)
    const afterEmpty = sweeps()
    expect(afterEmpty).toBeGreaterThanOrEqual(1)
    // Sweeps are at least a second apart: a stale due time left behind would bring one within 1.3 s.
    await new Promise((resolve) => setTimeout(resolve, 1300))
    expect(sweeps()).toBe(afterEmpty)
    await encrypt(cmm, KIB, { algorithmSuite: 0x0478 })
    await untilEmpty(cache)
    expect(sweeps()).toBeGreaterThan(afterEmpty)
  })

  it('a cache of capacity 0 keeps nothing, so it gets no sweeps', async () => {
    const cache = new LocalMaterialsCache({ capacity: 0 })
    const sweeps = countSweeps(cache)
    await encrypt(new CachingMaterialsManager({ keyring: aesKeyring(), cache, maxAge: 20 }), KIB, { algorithmSuite: 0x0478 })
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(cache.stats()).toMatchObject({ size: 0, misses: 1 })
    expect(sweeps()).toBe(0)
  })

  it('the expiry timer does not keep a cache no one uses any more (a manager made per request, say)', async () => {
    // Made in a function of their own: a suspended async function may keep its last loop iteration's values.
    const useOnce = async (): Promise<WeakRef<LocalMaterialsCache>[]> => {
      const caches: WeakRef<LocalMaterialsCache>[] = []
      for (let index = 0; index < 20; index++) {
        const cmm = new CachingMaterialsManager({ keyring: aesKeyring(), maxAge: 3_600_000 })
        await encrypt(cmm, KIB, { algorithmSuite: 0x0478 })
        sizes.push(cmm.cache.stats().size)
        caches.push(new WeakRef(cmm.cache as LocalMaterialsCache))
      }
      return caches
    }
    const sizes: number[] = []
    const caches = await useOnce()
    expect(sizes).toEqual(Array(20).fill(1))
    // No deref() before the last collection: an object a WeakRef hands out is kept until the current job ends.
    await collectGarbageFor(10)
    expect(caches.flatMap((cache, index) => (cache.deref() === undefined ? [] : [index]))).toEqual([])
  })

  it('a sweep that fails (a prune replaced by one that throws) does not end the process', async () => {
    const script = `
      const lib = await import(${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)})
      const keyring = new lib.RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: new Uint8Array(32).fill(3) })
      const cache = new lib.LocalMaterialsCache({ capacity: 10 })
      let sweeps = 0
      cache.prune = () => {
        sweeps++
        throw new Error('prune failed')
      }
      await lib.encrypt(new lib.CachingMaterialsManager({ keyring, cache, maxAge: 20 }), 'x', { algorithmSuite: 0x0478 })
      await new Promise((resolve) => setTimeout(resolve, 300))
      console.log(JSON.stringify({ sweeps }))
    `
    expect(await runModuleScript(script)).toEqual({ sweeps: 1 })
  })

  it('in a fresh process, a decrypt as the first call through a caching manager loads the cache and uses it', async () => {
    const script = `
      const lib = await import(${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)})
      const keyring = new lib.RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: new Uint8Array(32).fill(3) })
      const { ciphertext } = await lib.encrypt(keyring, 'first')
      const cmm = new lib.CachingMaterialsManager({ keyring, maxAge: 60_000 })
      const texts = []
      for (let i = 0; i < 2; i++) texts.push(new TextDecoder().decode((await lib.decrypt(cmm, ciphertext)).plaintext))
      const { hits, misses, size } = cmm.cache.stats()
      console.log(JSON.stringify({ texts, hits, misses, size }))
    `
    expect(await runModuleScript(script)).toEqual({ texts: ['first', 'first'], hits: 1, misses: 1, size: 1 })
  })

  it('the expiry timer never holds the process open, and a maxAge beyond what a timer can wait does not make it spin', async () => {
    const script = `
      const lib = await import(${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)})
      const keyring = new lib.RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: new Uint8Array(32).fill(3) })
      const warnings = []
      process.on('warning', (warning) => warnings.push(warning.name))
      let sweeps = 0
      const countedCache = () => {
        const cache = new lib.LocalMaterialsCache({ capacity: 10 })
        const prune = cache.prune.bind(cache)
        cache.prune = (now) => {
          sweeps++
          prune(now)
        }
        return cache
      }
      for (const maxAge of [3_600_000, 2 ** 40]) await lib.encrypt(new lib.CachingMaterialsManager({ keyring, cache: countedCache(), maxAge }), 'x')
      await new Promise((resolve) => setTimeout(resolve, 300))
      console.log(JSON.stringify({ warnings, sweeps }))
    `
    // The child exits by itself (runModuleScript waits for it) although both entries live for an hour or more; a
    // delay past setTimeout's limit would fire at once, again and again, each time sweeping for nothing.
    expect(await runModuleScript(script)).toEqual({ warnings: [], sweeps: 0 })
  })

  it('with maxMessagesEncrypted 1 no encryption entry is ever kept: each data key is zeroed once its message has it', async () => {
    const { manager, seen } = recording()
    const cmm = new CachingMaterialsManager({ materialsManager: manager, maxAge: 60_000, maxMessagesEncrypted: 1 })
    for (let i = 0; i < 3; i++) await encrypt(cmm, KIB, { encryptionContext: context })
    expect(seen.encrypt).toBe(3)
    expect(seen.encryptKeys.every(isAllZero)).toBe(true)
    expect(cmm.cache.stats().size).toBe(0)
  })

  it('materials that must not be shared are zeroed instead of cached: born expired, or from a manager that changed the suite', async () => {
    const { manager, seen } = recording()
    const { state, clock: now } = clock()
    const slow = beforeEncryption(manager, () => (state.now += 1500)) // longer than maxAge
    const late = new CachingMaterialsManager({ materialsManager: slow, maxAge: 1000, clock: now })
    const { ciphertext } = await encrypt(late, KIB)
    expect(late.cache.stats().size).toBe(0)
    expect(isAllZero(seen.encryptKeys[0] as Uint8Array)).toBe(true)
    await decrypt(aesKeyring(), ciphertext)

    const switching: MaterialsManager = {
      getEncryptionMaterials: async (request, backend) => manager.getEncryptionMaterials({ ...request, suite: suiteFromOption(0x0578) }, backend),
      getDecryptionMaterials: (request, backend) => manager.getDecryptionMaterials(request, backend),
    }
    const wrong = new CachingMaterialsManager({ materialsManager: switching, maxAge: 1000 })
    expect(await codeOf(encrypt(wrong, KIB, { algorithmSuite: 0x0478 }))).toBe('INVALID_CONFIGURATION')
    expect(wrong.cache.stats().size).toBe(0)
    expect(isAllZero(seen.encryptKeys[1] as Uint8Array)).toBe(true)
  })

  it('a request that waited for a fetch whose message used the entry up fetches its own data key, even for an empty message (which fits any byte limit)', async () => {
    const { manager, seen } = recording()
    const slow = beforeEncryption(manager, () => new Promise((resolve) => setTimeout(resolve, 20)))
    const cmm = new CachingMaterialsManager({ materialsManager: slow, maxAge: 60_000, maxBytesEncrypted: 1024 })
    const [full, empty] = await Promise.all([encrypt(cmm, KIB, { encryptionContext: context }), encrypt(cmm, new Uint8Array(0), { encryptionContext: context })])
    expect(seen.encrypt).toBe(2)
    expect(isAllZero(seen.encryptKeys[0] as Uint8Array)).toBe(true) // used up by the first message: zeroed, not cached
    expect(cmm.cache.stats()).toMatchObject({ size: 1, misses: 2 })
    expect((await decrypt(aesKeyring(), full.ciphertext)).plaintext).toEqual(KIB)
    expect((await decrypt(aesKeyring(), empty.ciphertext)).plaintext).toEqual(new Uint8Array(0))
  })

  it('a zero-capacity cache keeps nothing and still serves every request', async () => {
    const { manager, seen } = recording()
    const cmm = new CachingMaterialsManager({ materialsManager: manager, cache: new LocalMaterialsCache({ capacity: 0 }), maxAge: 60_000 })
    const results = await Promise.all(Array.from({ length: 5 }, () => encrypt(cmm, KIB, { encryptionContext: context })))
    expect(seen.encrypt).toBe(5)
    expect(seen.encryptKeys.every(isAllZero)).toBe(true)
    for (const { ciphertext } of results) await decrypt(aesKeyring(), ciphertext)
  })

  it('callers cannot corrupt a cached entry through what they receive', async () => {
    const cmm = new CachingMaterialsManager({ keyring: aesKeyring(), maxAge: 60_000 })
    const first = await encrypt(cmm, KIB, { encryptionContext: context })
    ;(first.header.encryptedDataKeys[0] as { ciphertext: Uint8Array }).ciphertext.fill(0)
    const second = await encrypt(cmm, KIB, { encryptionContext: context })
    expect(Buffer.from((await decrypt(aesKeyring(), second.ciphertext)).plaintext).equals(Buffer.from(KIB))).toBe(true)
  })

  it('inspect and toString show settings and counts, never key material', async () => {
    const { manager, seen } = recording()
    const cache = new LocalMaterialsCache({ capacity: 5 })
    const cmm = new CachingMaterialsManager({ materialsManager: manager, cache, maxAge: 60_000 })
    await encrypt(cmm, KIB, { encryptionContext: context })
    const key = Buffer.from(seen.encryptKeys[0] as Uint8Array)
    for (const shown of [inspect(cmm, { depth: 10 }), inspect(cache, { depth: 10 }), String(cmm), String(cache), JSON.stringify(cache.stats())]) {
      expect(shown).not.toContain(key.toString('hex'))
      expect(shown).not.toContain(key.toString('base64'))
      expect(shown).not.toMatch(/plaintextDataKey/)
    }
  })
})

describe('signing suites', () => {
  it('cached materials of 0x0578 carry the signing key: messages of one entry share the public key and all verify', async () => {
    const { manager, seen } = recording()
    const cmm = new CachingMaterialsManager({ materialsManager: manager, maxAge: 60_000, maxMessagesEncrypted: 3 })
    const results = []
    for (let i = 0; i < 6; i++) results.push(await encrypt(cmm, KIB, { encryptionContext: context, algorithmSuite: 0x0578 }))
    expect(seen.encrypt).toBe(2)
    const publicKeys = results.map((result) => result.header.encryptionContext['aws-crypto-public-key'])
    expect(new Set(publicKeys.slice(0, 3)).size).toBe(1)
    expect(new Set(publicKeys).size).toBe(2)
    for (const { ciphertext } of results) await decrypt(aesKeyring(), ciphertext, { encryptionContext: context })
  })

  it("a reader imports a signer's public key once (node:crypto): the same point gives the same key, and a bad signature still fails", async () => {
    const cmm = new CachingMaterialsManager({ keyring: aesKeyring(), maxAge: 60_000 })
    const [first, second] = [await encrypt(cmm, KIB, { algorithmSuite: 0x0578 }), await encrypt(cmm, KIB, { algorithmSuite: 0x0578 })]
    const point = (result: { header: { encryptionContext: Record<string, string> } }) =>
      Buffer.from(result.header.encryptionContext['aws-crypto-public-key'] as string, 'base64')
    expect(point(first).equals(point(second))).toBe(true)
    const key = await nodeBackend.importVerificationKey('P-384', point(first))
    expect(await nodeBackend.importVerificationKey('P-384', new Uint8Array(point(second)))).toBe(key)
    const other = await encrypt(aesKeyring(), KIB, { algorithmSuite: 0x0578 })
    expect(await nodeBackend.importVerificationKey('P-384', point(other))).not.toBe(key)
    // The cached key verifies nothing it should not: a changed signature byte is still refused.
    const tampered = Buffer.from(second.ciphertext)
    tampered.writeUInt8((tampered.at(-1) as number) ^ 1, tampered.length - 1)
    await expect(decrypt(aesKeyring(), tampered)).rejects.toMatchObject({ code: 'SIGNATURE_INVALID' })
    expect(Buffer.from((await decrypt(aesKeyring(), second.ciphertext)).plaintext).equals(Buffer.from(KIB))).toBe(true)
    // Invalid points are refused every time, never remembered.
    const invalid = new Uint8Array(49).fill(2)
    for (let i = 0; i < 2; i++) await expect(nodeBackend.importVerificationKey('P-384', invalid)).rejects.toThrow()
    // The cache is bounded: after 64 other signers the first key is imported afresh.
    for (let i = 0; i < 64; i++) await nodeBackend.importVerificationKey('P-256', point(await encrypt(aesKeyring(), KIB, { algorithmSuite: 0x0214, commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT' })))
    expect(await nodeBackend.importVerificationKey('P-384', point(first))).not.toBe(key)
  })
})

describe('with the required encryption context manager', () => {
  it('required manager outside the cache: the required pair stays out of every message and is still checked on decrypt', async () => {
    const { manager, seen } = recording()
    const caching = new CachingMaterialsManager({ materialsManager: manager, maxAge: 60_000 })
    const cmm = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], materialsManager: caching })
    const messages = []
    for (let i = 0; i < 3; i++) messages.push(await encrypt(cmm, KIB, { encryptionContext: context }))
    expect(seen.encrypt).toBe(1)
    for (const { header } of messages) expect(header.encryptionContext.tenant).toBeUndefined()
    for (const { ciphertext } of messages) await decrypt(cmm, ciphertext, { encryptionContext: { tenant: 'acme' } })
    expect(seen.decrypt).toBe(1)
    expect(await codeOf(decrypt(cmm, (messages[0] as { ciphertext: Uint8Array }).ciphertext))).toBe('ENCRYPTION_CONTEXT_MISMATCH')
  })

  it('an entry made without required keys never serves a request that requires them (it would store the pair)', async () => {
    const { manager, seen } = recording()
    const caching = new CachingMaterialsManager({ materialsManager: manager, maxAge: 60_000 })
    const required = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], materialsManager: caching })
    await encrypt(caching, KIB, { encryptionContext: context }) // cached, every pair stored
    const { header } = await encrypt(required, KIB, { encryptionContext: context })
    expect(header.encryptionContext.tenant).toBeUndefined()
    expect(seen.encrypt).toBe(2)
  })

  it('nor does one still being fetched: a request that requires a key waits for it, then fetches its own', async () => {
    const { manager, seen } = recording(beforeEncryption(new DefaultMaterialsManager(aesKeyring()), () => new Promise((resolve) => setTimeout(resolve, 20))))
    const caching = new CachingMaterialsManager({ materialsManager: manager, maxAge: 60_000 })
    const required = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], materialsManager: caching })
    const [plain, kept] = await Promise.all([encrypt(caching, KIB, { encryptionContext: context }), encrypt(required, KIB, { encryptionContext: context })])
    expect(plain.header.encryptionContext.tenant).toBe('acme')
    expect(kept.header.encryptionContext.tenant).toBeUndefined()
    expect(seen.encrypt).toBe(2)
  })

  it('decrypt entries are per reproduced pairs: a cached entry never lends its unstored pairs to another caller', async () => {
    const { manager, seen } = recording(new DefaultMaterialsManager(rsaKeyring()))
    const keyring = rsaKeyring()
    const writer = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], keyring })
    const { ciphertext } = await encrypt(writer, KIB, { encryptionContext: context, algorithmSuite: 0x0478 })
    const reader = new CachingMaterialsManager({ materialsManager: manager, maxAge: 60_000 })
    await decrypt(reader, ciphertext, { encryptionContext: { tenant: 'acme' } })
    await decrypt(reader, ciphertext, { encryptionContext: { tenant: 'acme' } })
    expect(seen.decrypt).toBe(1)
    // Without the pair, or with another value, the cached materials (which carry tenant = acme) must not be used.
    expect(await codeOf(decrypt(reader, ciphertext))).toBe('HEADER_AUTHENTICATION_FAILED')
    expect(await codeOf(decrypt(reader, ciphertext, { encryptionContext: { tenant: 'evil' } }))).toBe('HEADER_AUTHENTICATION_FAILED')
    expect(seen.decrypt).toBe(3)
    await decrypt(reader, ciphertext, { encryptionContext: { tenant: 'acme' } })
    // A wrong value for a stored key is refused by the caching manager itself.
    const direct = reader.getDecryptionMaterials(
      {
        suite: suiteFromOption(0x0478),
        encryptionContext: { purpose: 'cache-test' },
        encryptedDataKeys: parseHeader(ciphertext).header.encryptedDataKeys,
        commitmentPolicy: 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT',
        reproducedEncryptionContext: { purpose: 'other' },
      },
      nodeBackend,
    )
    expect(await codeOf(direct)).toBe('ENCRYPTION_CONTEXT_MISMATCH')
  })
})

describe('stats and events', () => {
  it('counts hits, misses, bypasses and evictions, and reports each to onEvent with the partition', async () => {
    const events: CacheEvent[] = []
    const cache = new LocalMaterialsCache({ capacity: 10, onEvent: (event) => events.push(event) })
    const { state, clock: now } = clock()
    const cmm = new CachingMaterialsManager({ keyring: aesKeyring(), cache, maxAge: 100, partition: 'metrics', clock: now })
    const { ciphertext } = await encrypt(cmm, KIB) // miss
    await encrypt(cmm, KIB) // hit
    await decrypt(cmm, ciphertext) // miss
    await decrypt(cmm, ciphertext) // hit
    await encrypt(cmm, KIB, { algorithmSuite: 0x0078, commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT' }) // bypass
    state.now = 100
    await encrypt(cmm, KIB) // the expired encrypt entry is evicted (and so is the decrypt one, at the LRU tail), then a miss
    expect(cache.stats()).toEqual({ hits: 2, misses: 3, bypasses: 1, evictions: 2, size: 1, capacity: 10 })
    expect(events.map((event) => event.type)).toEqual(['miss', 'hit', 'miss', 'hit', 'bypass', 'evict', 'evict', 'miss'])
    expect(events.every((event) => event.partition === 'metrics')).toBe(true)
    expect(events.filter((event) => event.type === 'evict').map((event) => [event.operation, (event as { reason: string }).reason])).toEqual([
      ['encrypt', 'expired'],
      ['decrypt', 'expired'],
    ])
    expect(String(cache)).toBe('LocalMaterialsCache(1/10 entries, 2 hits, 3 misses, 2 evictions)')
  })

  it('an onEvent hook that throws does not break encryption', async () => {
    let calls = 0
    const cache = new LocalMaterialsCache({
      capacity: 1,
      onEvent: () => {
        calls++
        throw new Error('metrics down')
      },
    })
    const cmm = new CachingMaterialsManager({ keyring: aesKeyring(), cache, maxAge: 1000 })
    const { ciphertext } = await encrypt(cmm, KIB)
    expect((await decrypt(cmm, ciphertext)).plaintext).toEqual(KIB)
    expect(calls).toBeGreaterThan(0)
  })

  it('an async onEvent hook that rejects is ignored too, not left an unhandled rejection (which ends a Node process)', async () => {
    let calls = 0
    const unhandled = await unhandledRejectionsDuring(async () => {
      const onEvent = async () => {
        calls += 1
        throw new Error('metrics down')
      }
      const cmm = new CachingMaterialsManager({ keyring: aesKeyring(), cache: new LocalMaterialsCache({ capacity: 1, onEvent }), maxAge: 1000 })
      const { ciphertext } = await encrypt(cmm, KIB)
      await decrypt(cmm, ciphertext)
    })
    expect(calls).toBeGreaterThan(1)
    expect(unhandled).toEqual([])
  })

  it('an underlying manager returning no data key is a KEYRING_FAILURE, not a crash', async () => {
    const broken: MaterialsManager = {
      getEncryptionMaterials: async () => ({}) as never,
      getDecryptionMaterials: async () => ({}) as never,
    }
    const cmm = new CachingMaterialsManager({ materialsManager: broken, maxAge: 1000 })
    expect(await codeOf(encrypt(cmm, KIB))).toBe('KEYRING_FAILURE')
  })
})

describe('property: random interleavings of encrypt, decrypt and expiry', () => {
  type Command =
    | { kind: 'encrypt'; context: number; size: number; concurrent: number }
    | { kind: 'decrypt'; message: number; concurrent: number }
    | { kind: 'advance'; ms: number }
  const command: fc.Arbitrary<Command> = fc.oneof(
    fc.record({ kind: fc.constant('encrypt' as const), context: fc.nat(2), size: fc.nat(3000), concurrent: fc.integer({ min: 1, max: 12 }) }),
    fc.record({ kind: fc.constant('decrypt' as const), message: fc.nat(), concurrent: fc.integer({ min: 1, max: 4 }) }),
    fc.record({ kind: fc.constant('advance' as const), ms: fc.nat(1500) }),
  )

  it('never lets a data key past a limit, and every message round-trips', async () => {
    const keyring = aesKeyring()
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          maxAge: fc.integer({ min: 1, max: 2000 }),
          maxMessagesEncrypted: fc.integer({ min: 1, max: 15 }),
          maxBytesEncrypted: fc.integer({ min: 1, max: 20_000 }),
          capacity: fc.nat(4),
        }),
        fc.array(command, { minLength: 1, maxLength: 25 }),
        async (limits, commands) => {
          const { manager, seen } = recording(new DefaultMaterialsManager(keyring))
          const { state, clock: now } = clock(1_000_000)
          const cmm = new CachingMaterialsManager({
            materialsManager: manager,
            cache: new LocalMaterialsCache({ capacity: limits.capacity }),
            clock: now,
            maxAge: limits.maxAge,
            maxMessagesEncrypted: limits.maxMessagesEncrypted,
            maxBytesEncrypted: limits.maxBytesEncrypted,
          })
          const messages: Array<{ ciphertext: Uint8Array; plaintext: Uint8Array }> = []
          const usage = new Map<string, { messages: number; bytes: number; first: number; last: number }>()
          for (const step of commands) {
            if (step.kind === 'advance') {
              state.now += step.ms
            } else if (step.kind === 'encrypt') {
              const plaintext = new Uint8Array(step.size).fill(step.context + 1)
              const encryptionContext = { tenant: `t${step.context}` }
              const results = await Promise.all(
                Array.from({ length: step.concurrent }, () => encrypt(cmm, plaintext, { encryptionContext, algorithmSuite: 0x0478 })),
              )
              for (const { ciphertext, header } of results) {
                messages.push({ ciphertext, plaintext })
                const key = dataKeyOf(header.encryptedDataKeys)
                const entry = usage.get(key) ?? { messages: 0, bytes: 0, first: state.now, last: state.now }
                usage.set(key, { messages: entry.messages + 1, bytes: entry.bytes + step.size, first: entry.first, last: state.now })
              }
            } else if (messages.length > 0) {
              const message = messages[step.message % messages.length] as { ciphertext: Uint8Array; plaintext: Uint8Array }
              const results = await Promise.all(Array.from({ length: step.concurrent }, () => decrypt(cmm, message.ciphertext)))
              for (const { plaintext } of results) expect(Buffer.from(plaintext).equals(Buffer.from(message.plaintext))).toBe(true)
            }
          }
          for (const entry of usage.values()) {
            expect(entry.messages).toBeLessThanOrEqual(limits.maxMessagesEncrypted)
            if (entry.messages > 1) {
              expect(entry.bytes).toBeLessThanOrEqual(limits.maxBytesEncrypted)
              expect(entry.last - entry.first).toBeLessThan(limits.maxAge)
            }
          }
          // One underlying call per data key: nothing fetched was wasted or reused outside the cache.
          expect(seen.encrypt).toBe(usage.size)
          for (const { ciphertext, plaintext } of messages) {
            expect(Buffer.from((await decrypt(keyring, ciphertext)).plaintext).equals(Buffer.from(plaintext))).toBe(true)
          }
        },
      ),
      { numRuns: 60 },
    )
  })
})

describe('LocalMaterialsCache on its own', () => {
  const suite = suiteFromOption(0x0478)
  function entry(expiresAt: number) {
    const materials: CompleteEncryptionMaterials = {
      suite,
      encryptionContext: {},
      encryptedDataKeys: [],
      plaintextDataKey: new Uint8Array(32).fill(7),
    }
    return { operation: 'encrypt' as const, materials, partition: 'p', createdAt: 0, expiresAt, messagesEncrypted: 1, bytesEncrypted: 0, evicted: false }
  }

  it('an entry is returned until the instant it expires, then evicted and zeroed', async () => {
    const events: CacheEvent[] = []
    const cache = new LocalMaterialsCache({ capacity: 8, onEvent: (event) => events.push(event) })
    await cache.ready()
    const live = entry(100)
    cache.put('id', live)
    for (const other of ['x', 'y', 'z']) cache.put(other, entry(1e9))
    expect(cache.get('id', 99)).toBe(live) // now the most recently used: outside the pruned tail
    expect(cache.get('id', 100)).toBeUndefined()
    expect(live.evicted).toBe(true)
    expect(isAllZero(live.materials.plaintextDataKey)).toBe(true)
    expect(events).toEqual([{ type: 'evict', operation: 'encrypt', partition: 'p', reason: 'expired' }])
  })

  it('evicts the least recently used entry beyond capacity; a put replaces and zeroes the old entry; evict removes only the same entry', async () => {
    const cache = new LocalMaterialsCache({ capacity: 2 })
    await cache.ready()
    const [a, b, c, a2] = [entry(1e9), entry(1e9), entry(1e9), entry(1e9)]
    cache.put('a', a)
    cache.put('b', b)
    cache.get('a', 0) // a is now more recent than b
    cache.put('c', c)
    expect([a, b, c].map((value) => value.evicted)).toEqual([false, true, false])
    cache.put('a', a2)
    expect(a.evicted).toBe(true)
    cache.evict('a', a, 'limit') // not the entry held any more: nothing happens
    expect(cache.get('a', 0)).toBe(a2)
    cache.evict('a', a2, 'limit')
    expect(cache.get('a', 0)).toBeUndefined()
    expect(cache.stats()).toMatchObject({ size: 1, evictions: 3 })
  })

  it('an lru-cache that cannot be loaded is an INVALID_CONFIGURATION error from ready(), and the next ready() tries again', async () => {
    await withFailingImport('lru-cache', new Error('Cannot find package lru-cache'), async (loadable) => {
      const { LocalMaterialsCache: FreshCache } = await import('../src/cmm/cache.js')
      const cache = new FreshCache({ capacity: 2 })
      const error = await rejectionOf(cache.ready() as Promise<void>)
      expect((error as EnvelopeError).code).toBe('INVALID_CONFIGURATION')
      expect((error as Error).message).toBe('LocalMaterialsCache could not load its lru-cache dependency.')
      loadable()
      await cache.ready()
      expect(cache.ready()).toBeUndefined()
    })
  })

  it('lru-cache loads on first use, not with the package: until ready() resolves, get finds nothing and put asks for ready()', async () => {
    // A fresh process: in this one, other tests have loaded it already.
    const script = `
      const { LocalMaterialsCache } = await import(${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)})
      const cache = new LocalMaterialsCache({ capacity: 1 }) // the smallest that keeps entries
      const pending = cache.ready()
      const before = { pending: pending instanceof Promise, get: cache.get('x', 0) === undefined, size: cache.stats().size }
      let putError
      try { cache.put('x', {}) } catch (error) { putError = error.code + ': ' + error.message }
      await pending
      const entry = { operation: 'encrypt', materials: { plaintextDataKey: new Uint8Array(1) }, partition: 'p', createdAt: 0, expiresAt: 10, messagesEncrypted: 0, bytesEncrypted: 0, evicted: false }
      cache.put('x', entry)
      const zero = new LocalMaterialsCache({ capacity: 0 })
      console.log(JSON.stringify({ before, putError, after: cache.ready() === undefined, found: cache.get('x', 1) === entry, second: new LocalMaterialsCache({ capacity: 1 }).ready() === undefined, zero: zero.ready() === undefined }))
    `
    expect(await runModuleScript(script)).toEqual({
      before: { pending: true, get: true, size: 0 },
      putError: 'INVALID_CONFIGURATION: LocalMaterialsCache: await cache.ready() before the first put (it loads lru-cache on first use).',
      after: true,
      found: true,
      second: true,
      zero: true,
    })
  })

  it('a lookup prunes expired entries among the three least recently used', async () => {
    const cache = new LocalMaterialsCache({ capacity: 10 })
    await cache.ready()
    const entries = [entry(10), entry(10), entry(10), entry(10), entry(1e9)]
    entries.forEach((value, index) => cache.put(String(index), value))
    cache.get('4', 50)
    expect(entries.map((value) => value.evicted)).toEqual([true, true, true, false, false])
    cache.prune(50)
    expect(entries.map((value) => value.evicted)).toEqual([true, true, true, true, false])
  })
})

describe('limits do not depend on the cache evicting', () => {
  /** A cache that keeps everything forever and never checks expiry: the manager alone must enforce the limits. */
  class ForgetfulCache extends Map<string, CacheEntry> implements MaterialsCache {
    override get(id: string) {
      return super.get(id)
    }
    put(id: string, value: CacheEntry) {
      this.set(id, value)
    }
    evict() {}
    record() {}
    stats() {
      return { hits: 0, misses: 0, bypasses: 0, evictions: 0, size: this.size, capacity: Number.POSITIVE_INFINITY }
    }
  }

  it('messages, bytes and age are checked by the manager itself', async () => {
    const { manager, seen } = recording()
    const { state, clock: now } = clock()
    const cmm = new CachingMaterialsManager({
      materialsManager: manager,
      cache: new ForgetfulCache(),
      clock: now,
      maxAge: 1000,
      maxMessagesEncrypted: 5,
      maxBytesEncrypted: 3 * 1024,
    })
    const uses = new Map<string, number>()
    const run = async (plaintext: Uint8Array) => {
      const key = dataKeyOf((await encrypt(cmm, plaintext, { algorithmSuite: 0x0478 })).header.encryptedDataKeys)
      uses.set(key, (uses.get(key) ?? 0) + 1)
    }
    for (let i = 0; i < 10; i++) await run(new Uint8Array(10)) // messages: 5 per key
    expect([...uses.values()]).toEqual([5, 5])
    uses.clear()
    for (let i = 0; i < 4; i++) await run(KIB) // bytes: 3 KiB per key
    expect([...uses.values()]).toEqual([3, 1])
    uses.clear()
    state.now = 10_000
    await run(new Uint8Array(1)) // a fresh key at t = 10000
    state.now = 10_999
    await run(new Uint8Array(1))
    state.now = 11_000
    await run(new Uint8Array(1))
    expect([...uses.values()]).toEqual([2, 1])
    expect(seen.encrypt).toBe(6)
    const { ciphertext } = await encrypt(aesKeyring(), KIB)
    await decrypt(cmm, ciphertext) // t = 11000
    state.now = 11_999
    await decrypt(cmm, ciphertext)
    expect(seen.decrypt).toBe(1)
    state.now = 12_000
    await decrypt(cmm, ciphertext)
    expect(seen.decrypt).toBe(2)
  })
})

describe('the expiry sweeper (on a clock and timers of the test)', () => {
  afterEach(() => vi.useRealTimers())

  /** The instants at which a sweeper on a clock starting at 0 prunes, while `puts` are put (each at `at`) and 10 s pass. */
  function sweepsFor(puts: Array<{ at: number; expiresAt: number }>, size = 1): number[] {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 0 })
    const pruned: number[] = []
    const sweeper = expirySweeper((now) => pruned.push(now), () => size, () => Date.now())
    for (const { at, expiresAt } of puts) {
      vi.advanceTimersByTime(at - Date.now())
      sweeper.entryPut(expiresAt)
    }
    vi.advanceTimersByTime(10_000)
    return pruned
  }

  it('entries that expire within a second of the last sweep due share it, moved to the latest of their expiries', () => {
    const puts = [2500, 2800, 2600].map((expiresAt, index) => ({ at: 10 * (index + 1), expiresAt }))
    expect(sweepsFor([{ at: 0, expiresAt: 1000 }, ...puts])).toEqual([1000, 2800])
    // The first sweep's timer is set already: an entry within a second of it is swept a second after it.
    expect(sweepsFor([{ at: 0, expiresAt: 1000 }, { at: 10, expiresAt: 1500 }, { at: 20, expiresAt: 1200 }])).toEqual([1000, 2000])
  })

  it('entries further apart get a sweep each, at least a second apart, and longer apart in a cache of more than 10,000 entries', () => {
    expect(sweepsFor([{ at: 0, expiresAt: 1000 }, { at: 10, expiresAt: 2500 }])).toEqual([1000, 2500])
    // Every size / 10 ms: 2 s for 20,000 entries.
    expect(sweepsFor([{ at: 0, expiresAt: 1000 }, { at: 10, expiresAt: 2500 }], 20_000)).toEqual([1000, 3000])
  })

  it('an entry put after a sweep gets its own, a second after the last at the soonest', () => {
    expect(sweepsFor([{ at: 0, expiresAt: 500 }, { at: 600, expiresAt: 700 }])).toEqual([500, 1500])
  })
})
